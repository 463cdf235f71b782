//! The alignment configuration a user gives with `ingest --config FILE` (TOML) or
//! `--main-topic`: which topic sets the step clock (or a fixed fps), how files split
//! into episodes, and which topic fields become step columns, matched how. docs/steps.md
//! describes every key; `AlignConfig::default()` is what an ingest without one uses.

use serde::Deserialize;
use std::path::Path;

/// How a source's message is picked for a step at time t.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The message closest in time (an earlier one on a tie).
    #[default]
    Nearest,
    /// The last message at or before t (zero-order hold).
    Previous,
}

/// One step column: a topic, optionally one field of it (a dotted path into the
/// decoded message), matched to steps by `method` within `tolerance_ms`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The column name in `steps`; default: the topic (and field) with every
    /// character that is not a letter or digit turned into `_`.
    pub name: Option<String>,
    pub topic: String,
    pub field: Option<String>,
    pub method: Option<Method>,
    pub tolerance_ms: Option<f64>,
}

/// How a file splits into episodes (default: one file = one episode).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EpisodeConfig {
    /// A gap between two steps longer than this starts a new episode.
    pub gap_s: Option<f64>,
    /// Every message on this topic starts a new episode at its time.
    pub event_topic: Option<String>,
}

/// The terminal flag: the last step of an episode is terminal when a message on
/// `topic` falls between its first step and the next episode's first step (and, with
/// `field`, that field is true or non-zero).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TerminalConfig {
    pub topic: String,
    pub field: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlignConfig {
    /// The topic whose messages are the steps (default: the image topic with the
    /// most messages, else the topic with the most messages).
    pub main_topic: Option<String>,
    /// A fixed step rate instead of a main topic.
    pub fps: Option<f64>,
    /// Defaults for every source.
    pub method: Option<Method>,
    pub tolerance_ms: Option<f64>,
    #[serde(default)]
    pub episodes: EpisodeConfig,
    /// Observation columns; when none is listed (and no action/reward), every
    /// topic of the file becomes a column holding its whole message.
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
    pub action: Option<SourceConfig>,
    pub reward: Option<SourceConfig>,
    pub terminal: Option<TerminalConfig>,
}

impl AlignConfig {
    /// Reads and checks a TOML file; errors say what is wrong (the caller names the file).
    pub fn from_file(path: &Path) -> Result<AlignConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<AlignConfig, String> {
        let c: AlignConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> Result<(), String> {
        if self.main_topic.is_some() && self.fps.is_some() {
            return Err("give either main_topic or fps, not both".into());
        }
        if let Some(f) = self.fps {
            if !(f.is_finite() && f > 0.0 && f <= 1e6) {
                return Err(format!("fps must be a number in (0, 1e6], found {f}"));
            }
        }
        let tols = self
            .sources
            .iter()
            .chain(&self.action)
            .chain(&self.reward)
            .filter_map(|s| s.tolerance_ms)
            .chain(self.tolerance_ms);
        for t in tols {
            if !(t.is_finite() && t >= 0.0) {
                return Err(format!("tolerance_ms must be a number ≥ 0, found {t}"));
            }
        }
        if let Some(g) = self.episodes.gap_s {
            if !(g.is_finite() && g > 0.0) {
                return Err(format!("episodes.gap_s must be a number > 0, found {g}"));
            }
        }
        Ok(())
    }

    /// The sources the user listed, action and reward last under those names.
    pub fn listed_sources(&self) -> Vec<SourceConfig> {
        let mut out = self.sources.clone();
        for (name, s) in [("action", &self.action), ("reward", &self.reward)] {
            if let Some(s) = s {
                let mut s = s.clone();
                s.name.get_or_insert_with(|| name.to_string());
                out.push(s);
            }
        }
        out
    }
}

/// A column name from a topic (and field): `/imu/data` → `imu_data`.
pub fn default_name(topic: &str, field: Option<&str>) -> String {
    let raw = match field {
        Some(f) => format!("{topic}_{f}"),
        None => topic.to_string(),
    };
    let mut s: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    while s.contains("__") {
        s = s.replace("__", "_");
    }
    let s = s.trim_matches('_').to_ascii_lowercase();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("t_{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config() {
        let c = AlignConfig::parse(
            r#"
            main_topic = "/camera/image_raw"
            method = "previous"
            tolerance_ms = 50
            [episodes]
            gap_s = 2.5
            [[source]]
            name = "observation.state"
            topic = "/joint_states"
            field = "position"
            method = "nearest"
            [action]
            topic = "/cmd"
            [terminal]
            topic = "/done"
            field = "data"
            "#,
        )
        .unwrap();
        assert_eq!(c.main_topic.as_deref(), Some("/camera/image_raw"));
        assert_eq!(c.method, Some(Method::Previous));
        assert_eq!(c.episodes.gap_s, Some(2.5));
        let s = c.listed_sources();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].name.as_deref(), Some("action"));
    }

    #[test]
    fn rejects_bad_configs() {
        for bad in [
            "main_topic = \"/a\"\nfps = 10",
            "fps = -1",
            "tolerance_ms = -3",
            "mystery = 1",
            "[[source]]\nname = \"x\"",
            "method = \"cubic\"",
        ] {
            assert!(AlignConfig::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_names() {
        assert_eq!(default_name("/imu/data", None), "imu_data");
        assert_eq!(
            default_name("/joint_states", Some("position")),
            "joint_states_position"
        );
        assert_eq!(default_name("/1/x", None), "t_1_x");
    }
}
