//! Which `steps` columns become LeRobot features, under which names, and how a steps
//! batch turns into the columns of a LeRobot data file.
//!
//! Names: a column whose name has a `.` (`observation.state`, set with `name =` in the
//! ingest config) keeps it; `action`/`actions` → `action`, `reward`/`rewards` →
//! `next.reward`, `done`/`dones` → `next.done`; images → `observation.images.<name>`;
//! anything else → `observation.<name>` (the `obs_`, `observations_` and
//! `observations_images_` prefixes of HDF5 layouts dropped). A struct column (a whole ROS
//! message) gives one feature per numeric leaf, `<name>.<field>…` (a struct with one
//! numeric leaf, like `std_msgs/Float64`, just `<name>`); `header` is left out.
//!
//! Types: floats → float32, integers → int64, booleans → bool, numeric lists → a
//! fixed-length float32 vector (every step must have the first step's length), image
//! structs (`height`, `width`, `encoding`, `data`) and `CompressedImage` structs
//! (`format`, `data`) → `image` features (PNG bytes). Strings, times, bytes and lists of
//! structs are not features; columns with NULLs are left out (LeRobot has no missing
//! values) — both with a warning.

use super::image::{self, Shape};
use super::stats::Stats;
/// Step columns that are not sources.
use crate::ingest::steps::build::STEP_COLUMNS as FIXED;
use datafusion::arrow::array::*;
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::*;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Float,
    Int,
    Bool,
    Vector,
    Image,
    Compressed,
}

#[derive(Clone, Debug)]
pub struct Feature {
    /// The LeRobot key.
    pub name: String,
    pub column: String,
    /// Field names inside a struct column.
    pub path: Vec<String>,
    pub kind: Kind,
    /// Fixed by the first step exported.
    pub shape: Option<Vec<usize>>,
}

impl Feature {
    pub fn dtype(&self) -> &'static str {
        match self.kind {
            Kind::Float | Kind::Vector => "float32",
            Kind::Int => "int64",
            Kind::Bool => "bool",
            Kind::Image | Kind::Compressed => "image",
        }
    }

    pub fn is_image(&self) -> bool {
        matches!(self.kind, Kind::Image | Kind::Compressed)
    }

    /// Dimensions of its stats: vector length, image channels, else 1.
    pub fn dims(&self) -> usize {
        match (&self.kind, &self.shape) {
            (Kind::Vector, Some(s)) => s[0],
            (Kind::Image | Kind::Compressed, Some(s)) => s[2],
            _ => 1,
        }
    }

    pub fn arrow_type(&self) -> DataType {
        match self.kind {
            Kind::Float => DataType::Float32,
            Kind::Int => DataType::Int64,
            Kind::Bool => DataType::Boolean,
            Kind::Vector => DataType::FixedSizeList(
                Arc::new(Field::new("element", DataType::Float32, true)),
                self.dims() as i32,
            ),
            Kind::Image | Kind::Compressed => DataType::Struct(image_struct()),
        }
    }
}

fn image_struct() -> Fields {
    Fields::from(vec![
        Field::new("bytes", DataType::Binary, true),
        Field::new("path", DataType::Utf8, true),
    ])
}

fn base_name(column: &str, image: bool) -> String {
    if column.contains('.') {
        return column.to_string();
    }
    match column {
        "action" | "actions" => return "action".into(),
        "reward" | "rewards" => return "next.reward".into(),
        "done" | "dones" => return "next.done".into(),
        _ => {}
    }
    let rest = ["observations_images_", "obs_", "observations_"]
        .iter()
        .find_map(|p| column.strip_prefix(p))
        .filter(|r| !r.is_empty())
        .unwrap_or(column);
    if image {
        format!("observation.images.{rest}")
    } else {
        format!("observation.{rest}")
    }
}

fn numeric(dt: &DataType) -> bool {
    dt.is_integer() || dt.is_floating() || matches!(dt, DataType::Boolean)
}

fn has(fields: &Fields, name: &str, ok: fn(&DataType) -> bool) -> bool {
    fields.iter().any(|f| f.name() == name && ok(f.data_type()))
}

fn binary(dt: &DataType) -> bool {
    matches!(dt, DataType::Binary | DataType::LargeBinary)
}

fn text(dt: &DataType) -> bool {
    matches!(dt, DataType::Utf8 | DataType::LargeUtf8)
}

fn int(dt: &DataType) -> bool {
    dt.is_integer()
}

/// The feature kinds inside a column of type `dt` at `path`; what cannot be a feature
/// is pushed to `skipped` as "path (type)".
fn leaves(
    dt: &DataType,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, Kind)>,
    skipped: &mut Vec<String>,
) {
    let kind = match dt {
        DataType::Boolean => Some(Kind::Bool),
        d if d.is_floating() => Some(Kind::Float),
        d if d.is_integer() => Some(Kind::Int),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)
            if numeric(f.data_type()) =>
        {
            Some(Kind::Vector)
        }
        DataType::Struct(fs)
            if has(fs, "height", int)
                && has(fs, "width", int)
                && has(fs, "encoding", text)
                && has(fs, "data", binary) =>
        {
            Some(Kind::Image)
        }
        DataType::Struct(fs) if has(fs, "format", text) && has(fs, "data", binary) => {
            Some(Kind::Compressed)
        }
        DataType::Struct(fs) => {
            for f in fs.iter().filter(|f| f.name() != "header") {
                path.push(f.name().clone());
                leaves(f.data_type(), path, out, skipped);
                path.pop();
            }
            return;
        }
        _ => None,
    };
    match kind {
        Some(k) => out.push((path.clone(), k)),
        None => skipped.push(format!("{} ({dt})", path.join("."))),
    }
}

/// Why a column cannot be exported whole.
pub enum Gap {
    /// None of the exported episodes has it (another recording's column): left out
    /// without a warning.
    Foreign,
    /// Some steps lack it: left out with this warning.
    Partial(String),
}

/// Features of the steps columns `fields`; `gap(column)` says whether a column has
/// gaps, and such a column is left out. Returns the features and one warning per
/// column or field left out.
pub fn plan(fields: &Fields, gap: impl Fn(&str) -> Option<Gap>) -> (Vec<Feature>, Vec<String>) {
    let mut out: Vec<Feature> = Vec::new();
    let mut warnings = Vec::new();
    for f in fields
        .iter()
        .filter(|f| !FIXED.contains(&f.name().as_str()))
    {
        let col = f.name();
        match gap(col) {
            Some(Gap::Foreign) => continue,
            Some(Gap::Partial(why)) => {
                warnings.push(format!(
                    "column {col}: {why}; LeRobot features cannot be missing, so it is not exported"
                ));
                continue;
            }
            None => {}
        }
        let (mut found, mut skipped) = (Vec::new(), Vec::new());
        leaves(
            f.data_type(),
            &mut vec![col.clone()],
            &mut found,
            &mut skipped,
        );
        for s in skipped {
            warnings.push(format!("{s}: not a number, vector or image; not exported"));
        }
        let single = found.len() == 1;
        for (path, kind) in found {
            let image = matches!(kind, Kind::Image | Kind::Compressed);
            let mut name = base_name(col, image);
            if !single {
                for p in &path[1..] {
                    name.push('.');
                    name.push_str(p);
                }
            }
            let taken = |n: &str| out.iter().any(|o| o.name == n);
            if taken(&name) {
                let mut k = 2;
                while taken(&format!("{name}_{k}")) {
                    k += 1;
                }
                name = format!("{name}_{k}");
            }
            out.push(Feature {
                name,
                column: col.clone(),
                path: path[1..].to_vec(),
                kind,
                shape: None,
            });
        }
    }
    (out, warnings)
}

/// Where a step is, for error messages.
pub struct At<'a> {
    pub episode: &'a str,
    pub first_step: i64,
}

impl At<'_> {
    fn err(&self, f: &Feature, row: usize, what: impl std::fmt::Display) -> String {
        format!(
            "column {} ({}): episode {} step {}: {what}",
            f.column,
            f.name,
            self.episode,
            self.first_step + row as i64
        )
    }
}

/// The array of feature `f` in `batch`: the column, then the struct fields of its path.
fn source(batch: &RecordBatch, f: &Feature) -> Result<ArrayRef, String> {
    let mut a = batch
        .column_by_name(&f.column)
        .cloned()
        .ok_or_else(|| format!("column {} is missing from a steps segment", f.column))?;
    for p in &f.path {
        let s = a
            .as_struct_opt()
            .and_then(|s| s.column_by_name(p))
            .cloned()
            .ok_or_else(|| format!("column {}: field {p} is missing", f.column))?;
        a = s;
    }
    Ok(a)
}

fn field<'a>(s: &'a StructArray, name: &str) -> Option<&'a ArrayRef> {
    s.column_by_name(name)
}

fn uint_at(a: Option<&ArrayRef>, i: usize) -> Option<usize> {
    let a = cast(a?, &DataType::UInt64).ok()?;
    let a = a.as_primitive::<UInt64Type>();
    a.is_valid(i).then(|| a.value(i) as usize)
}

fn str_at(a: Option<&ArrayRef>, i: usize) -> Option<String> {
    let a = cast(a?, &DataType::Utf8).ok()?;
    let a = a.as_string::<i32>();
    a.is_valid(i).then(|| a.value(i).to_string())
}

fn bytes_at(a: Option<&ArrayRef>, i: usize) -> Option<&[u8]> {
    let a = a?;
    if let Some(b) = a.as_binary_opt::<i32>() {
        return b.is_valid(i).then(|| b.value(i));
    }
    let b = a.as_binary_opt::<i64>()?;
    b.is_valid(i).then(|| b.value(i))
}

/// Encodes row `i` of an image struct: PNG bytes, shape, and its stats added to `st`.
fn image_row(
    f: &Feature,
    s: &StructArray,
    i: usize,
    st: &mut Stats,
) -> Result<(Vec<u8>, Shape), String> {
    let data = bytes_at(field(s, "data"), i).ok_or("no image data")?;
    if f.kind == Kind::Compressed {
        let shape = image::encoded_shape(data)?;
        st.frames += 1;
        return Ok((data.to_vec(), shape));
    }
    let h = uint_at(field(s, "height"), i).ok_or("no image height")?;
    let w = uint_at(field(s, "width"), i).ok_or("no image width")?;
    let enc = str_at(field(s, "encoding"), i).ok_or("no image encoding")?;
    let step = uint_at(field(s, "step"), i).filter(|s| *s > 0);
    let be = uint_at(field(s, "is_bigendian"), i).unwrap_or(0) != 0;
    let px = image::pixels(h, w, &enc, step, be, data)?;
    st.ensure(px.channels);
    px.channel_stats(&mut st.min, &mut st.max, &mut st.sum, &mut st.sq);
    st.count += (h * w) as u64;
    st.frames += 1;
    Ok((image::png(&px), px.shape()))
}

/// One thread's share of a batch's images: (file bytes, shape) per row, and their stats.
type Encoded = Result<(Vec<(Vec<u8>, Shape)>, Stats), String>;

/// The images of `a` (rows in order) as LeRobot's `{bytes, path}` structs, encoded on
/// every core; checks each has the feature's shape.
fn images(f: &mut Feature, a: &ArrayRef, at: &At, st: &mut Stats) -> Result<ArrayRef, String> {
    let s = a
        .as_struct_opt()
        .ok_or_else(|| at.err(f, 0, "expected an image struct"))?;
    let n = s.len();
    let threads = std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .min(n.max(1));
    let per = n.div_ceil(threads.max(1)).max(1);
    let fr: &Feature = f;
    let parts: Vec<Encoded> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..n)
            .step_by(per)
            .map(|start| {
                let mut local = st.clone_empty();
                sc.spawn(move || {
                    let mut rows = Vec::new();
                    for i in start..(start + per).min(n) {
                        rows.push(image_row(fr, s, i, &mut local).map_err(|e| at.err(fr, i, e))?);
                    }
                    Ok((rows, local))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("an image encoder thread panicked".into()))
            })
            .collect()
    });
    let mut b = BinaryBuilder::new();
    let mut row = 0;
    for p in parts {
        let (rows, local) = p?;
        st.merge(&local);
        for (bytes, shape) in rows {
            check_shape(f, &shape, at, row)?;
            b.append_value(&bytes);
            row += 1;
        }
    }
    let bytes: ArrayRef = Arc::new(b.finish());
    let path: ArrayRef = Arc::new(StringArray::new_null(n));
    Ok(Arc::new(StructArray::new(
        image_struct(),
        vec![bytes, path],
        None,
    )))
}

fn check_shape(f: &mut Feature, shape: &[usize], at: &At, row: usize) -> Result<(), String> {
    match &f.shape {
        None => {
            f.shape = Some(shape.to_vec());
            Ok(())
        }
        Some(s) if s == shape => Ok(()),
        Some(s) => Err(at.err(
            f,
            row,
            format!("shape {shape:?}, but the first step exported had {s:?}; LeRobot features have one shape"),
        )),
    }
}

/// The feature's column for the rows of `batch`; the feature's shape is fixed by the
/// first row ever converted and `st` gets every frame's values.
pub fn convert(
    f: &mut Feature,
    batch: &RecordBatch,
    at: &At,
    st: &mut Stats,
) -> Result<ArrayRef, String> {
    let a = source(batch, f)?;
    if let Some(i) = (0..a.len()).find(|i| a.is_null(*i)) {
        return Err(at.err(f, i, "NULL; LeRobot features cannot be missing"));
    }
    let want = f.arrow_type();
    match f.kind {
        Kind::Image | Kind::Compressed => images(f, &a, at, st),
        Kind::Float | Kind::Int | Kind::Bool => {
            if f.shape.is_none() {
                f.shape = Some(vec![1]);
            }
            let out = cast(&a, &want).map_err(|e| at.err(f, 0, e))?;
            let v = cast(&out, &DataType::Float64).map_err(|e| at.err(f, 0, e))?;
            for x in v.as_primitive::<Float64Type>().values() {
                st.add([*x]);
            }
            Ok(out)
        }
        Kind::Vector => {
            let item = Arc::new(Field::new("item", DataType::Float32, true));
            let l = cast(&a, &DataType::List(item)).map_err(|e| at.err(f, 0, e))?;
            let l = l.as_list::<i32>();
            let offs = l.value_offsets();
            for i in 0..l.len() {
                let len = (offs[i + 1] - offs[i]) as usize;
                check_shape(f, &[len], at, i)?;
            }
            let n = f.dims();
            st.ensure(n);
            let start = offs[0] as usize;
            let values = l.values().slice(start, n * l.len());
            if values.null_count() > 0 {
                return Err(at.err(f, 0, "a NULL inside a vector"));
            }
            let vals = values.as_primitive::<Float32Type>().values();
            if n > 0 {
                for row in vals.chunks_exact(n) {
                    st.add(row.iter().map(|x| *x as f64));
                }
            }
            let field = Arc::new(Field::new("element", DataType::Float32, true));
            let fsl = FixedSizeListArray::try_new(field, n as i32, values, None::<NullBuffer>)
                .map_err(|e| at.err(f, 0, e))?;
            Ok(Arc::new(fsl))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(base_name("observation.state", false), "observation.state");
        assert_eq!(base_name("actions", false), "action");
        assert_eq!(base_name("rewards", false), "next.reward");
        assert_eq!(base_name("obs_eef_pos", false), "observation.eef_pos");
        assert_eq!(
            base_name("observations_images_cam_high", true),
            "observation.images.cam_high"
        );
        assert_eq!(
            base_name("camera_image", true),
            "observation.images.camera_image"
        );
        assert_eq!(base_name("obs_", false), "observation.obs_");
    }

    #[test]
    fn struct_leaves_and_skips() {
        let header = Field::new(
            "header",
            DataType::Struct(Fields::from(vec![Field::new(
                "seq",
                DataType::UInt32,
                true,
            )])),
            true,
        );
        let js = DataType::Struct(Fields::from(vec![
            header,
            Field::new("name", DataType::new_list(DataType::Utf8, true), true),
            Field::new(
                "position",
                DataType::new_list(DataType::Float64, true),
                true,
            ),
            Field::new(
                "velocity",
                DataType::new_list(DataType::Float64, true),
                true,
            ),
        ]));
        let reward = DataType::Struct(Fields::from(vec![Field::new(
            "data",
            DataType::Float64,
            true,
        )]));
        let fields = Fields::from(vec![
            Field::new("episode_id", DataType::Utf8, false),
            Field::new("joint_states", js, true),
            Field::new("reward", reward, true),
            Field::new("gaps", DataType::Float64, true),
        ]);
        let (f, w) = plan(&fields, |c| {
            (c == "gaps").then(|| Gap::Partial("NULL".into()))
        });
        let names: Vec<_> = f.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "observation.joint_states.position",
                "observation.joint_states.velocity",
                "next.reward"
            ]
        );
        assert_eq!(f[2].path, vec!["data".to_string()]);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("joint_states.name"));
        assert!(w[1].starts_with("column gaps"));
    }
}
