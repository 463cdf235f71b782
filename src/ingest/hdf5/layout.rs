//! Which HDF5 layouts bagbase reads as episodes, and where each episode's datasets are:
//! robomimic (`data/demo_N/{obs/*, actions, rewards, dones}`), robosuite raw demos
//! (`data/demo_N/{states, actions, ...}`) and ALOHA (`observations/{qpos, qvel,
//! images/*}`, `action`; one episode per file). Anything else is an error that lists
//! what the file holds. Reads names and shapes only, never data.

use hdf5::{Dataset, Group};

/// One episode: its group and the datasets that become step columns.
#[derive(Debug, Clone)]
pub struct EpisodeLayout {
    /// The episode's group path (`data/demo_1`, or `/` for ALOHA).
    pub group: String,
    /// (column name, dataset path), in column order.
    pub columns: Vec<(String, String)>,
    /// The dataset whose last value marks a terminal episode (robomimic `dones`).
    pub dones: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Layout {
    pub name: &'static str,
    pub episodes: Vec<EpisodeLayout>,
}

/// What the layouts expect, for errors.
pub const EXPECTED: &str = "robomimic data/demo_N/{obs/*, actions, rewards, dones}, robosuite data/demo_N/{states, actions}, or ALOHA observations/{qpos, qvel, images/*} with action";

fn datasets(g: &Group) -> hdf5::Result<Vec<(String, Dataset)>> {
    let mut out = Vec::new();
    for n in g.member_names()? {
        if let Ok(d) = g.dataset(&n) {
            out.push((n, d));
        }
    }
    Ok(out)
}

/// `demo_10` sorts after `demo_9`.
fn demo_number(name: &str) -> Option<u64> {
    name.strip_prefix("demo_")?.parse().ok()
}

pub fn detect(file: &Group) -> Result<Layout, String> {
    let e = |err: hdf5::Error| format!("reading the file's groups: {err}");
    if let Ok(data) = file.group("data") {
        let mut demos: Vec<(u64, String)> = data
            .member_names()
            .map_err(e)?
            .into_iter()
            .filter_map(|n| demo_number(&n).map(|k| (k, n)))
            .collect();
        demos.sort();
        let mut episodes = Vec::new();
        let mut name = "";
        for (_, demo) in &demos {
            let g = data.group(demo).map_err(e)?;
            let path = format!("data/{demo}");
            let own = datasets(&g).map_err(e)?;
            let has = |n: &str| own.iter().any(|(m, _)| m == n);
            let mut columns = Vec::new();
            let mut dones = None;
            if let Ok(obs) = g.group("obs") {
                name = "robomimic";
                for (n, _) in datasets(&obs).map_err(e)? {
                    columns.push((format!("obs_{n}"), format!("{path}/obs/{n}")));
                }
                for n in ["actions", "rewards", "dones"] {
                    if has(n) {
                        columns.push((n.to_string(), format!("{path}/{n}")));
                    }
                }
                if has("dones") {
                    dones = Some(format!("{path}/dones"));
                }
            } else if has("states") && has("actions") {
                name = "robosuite";
                for (n, _) in &own {
                    columns.push((n.clone(), format!("{path}/{n}")));
                }
            } else {
                return Err(format!(
                    "{path} has neither obs/ (robomimic) nor states and actions (robosuite); it holds: {}; expected {EXPECTED}",
                    listing(&g)
                ));
            }
            episodes.push(EpisodeLayout {
                group: path,
                columns,
                dones,
            });
        }
        if !episodes.is_empty() {
            return Ok(Layout { name, episodes });
        }
    }
    if let (Ok(obs), Ok(_)) = (file.group("observations"), file.dataset("action")) {
        let mut columns = Vec::new();
        for (n, _) in datasets(&obs).map_err(e)? {
            columns.push((format!("observations_{n}"), format!("observations/{n}")));
        }
        if let Ok(images) = obs.group("images") {
            for (n, _) in datasets(&images).map_err(e)? {
                columns.push((
                    format!("observations_images_{n}"),
                    format!("observations/images/{n}"),
                ));
            }
        }
        columns.push(("action".into(), "action".into()));
        return Ok(Layout {
            name: "aloha",
            episodes: vec![EpisodeLayout {
                group: "/".into(),
                columns,
                dones: None,
            }],
        });
    }
    Err(format!(
        "a known episode layout ({EXPECTED}); the file holds: {}",
        listing(file)
    ))
}

/// Up to 24 members, two levels deep, with dataset shapes and types.
fn listing(g: &Group) -> String {
    let mut out = Vec::new();
    walk(g, "", 0, &mut out);
    if out.is_empty() {
        return "nothing".into();
    }
    if out.len() > 24 {
        let more = out.len() - 24;
        out.truncate(24);
        out.push(format!("… {more} more"));
    }
    out.join(", ")
}

fn walk(g: &Group, prefix: &str, depth: usize, out: &mut Vec<String>) {
    let Ok(names) = g.member_names() else { return };
    for n in names {
        if out.len() > 24 {
            return;
        }
        let path = format!("{prefix}{n}");
        if let Ok(d) = g.dataset(&n) {
            let shape: Vec<String> = d.shape().iter().map(|s| s.to_string()).collect();
            out.push(format!("{path} [{}]", shape.join("x")));
        } else if let Ok(sub) = g.group(&n) {
            out.push(format!("{path}/"));
            if depth < 2 {
                walk(&sub, &format!("{path}/"), depth + 1, out);
            }
        }
    }
}
