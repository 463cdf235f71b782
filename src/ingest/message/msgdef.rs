//! Message definitions in `.msg` text (ROS1 connection headers, and MCAP `ros2msg`
//! schemas: the type's text, then each dependency after a `====` line and a
//! `MSG: pkg/Type` header) parsed into a resolved type tree. Constants and default
//! values are skipped. Never panics on bad text: every problem is an error naming the line.

use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prim {
    Bool,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
    Str,
    Time,
    Duration,
}

/// Which `.msg` language: the two differ in `byte` (ROS1: int8; ROS2: octet) and ROS2
/// adds bounded strings and sequences (`string<=10`, `int32[<=5]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Ros1,
    Ros2,
}

impl Prim {
    fn parse(t: &str, dialect: Dialect) -> Option<Prim> {
        Some(match t {
            "bool" => Prim::Bool,
            "byte" if dialect == Dialect::Ros2 => Prim::U8,
            "int8" | "byte" => Prim::I8,
            "uint8" | "char" => Prim::U8,
            "int16" => Prim::I16,
            "uint16" => Prim::U16,
            "int32" => Prim::I32,
            "uint32" => Prim::U32,
            "int64" => Prim::I64,
            "uint64" => Prim::U64,
            "float32" => Prim::F32,
            "float64" => Prim::F64,
            "string" => Prim::Str,
            "time" if dialect == Dialect::Ros1 => Prim::Time,
            "duration" if dialect == Dialect::Ros1 => Prim::Duration,
            _ => return None,
        })
    }
}

/// A resolved field type.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    Prim(Prim),
    /// `uint8[]` / `char[]` (and fixed-size ones): raw bytes, not a list of integers.
    Bytes(Option<usize>),
    List(Box<Type>, Option<usize>),
    Msg(String, Vec<(String, Type)>),
}

const MAX_DEPTH: usize = 32;

struct RawField {
    ty: String,
    array: Option<Option<usize>>,
    name: String,
}

/// Parses a connection's `message_definition` for `msg_type` into its field list.
pub fn parse(msg_type: &str, text: &str, dialect: Dialect) -> Result<Vec<(String, Type)>, String> {
    let mut sections: HashMap<String, Vec<RawField>> = HashMap::new();
    let mut current = msg_type.to_string();
    let mut fields = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.len() >= 3 && line.chars().all(|c| c == '=') {
            sections.insert(std::mem::take(&mut current), std::mem::take(&mut fields));
            continue;
        }
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix("MSG:") {
            current = name.trim().to_string();
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(ty), Some(name)) = (parts.next(), parts.next()) else {
            return Err(format!(
                "definition line {}: expected 'type name', found '{line}'",
                n + 1
            ));
        };
        if name.contains('=') || parts.next().is_some_and(|p| p.starts_with('=')) {
            continue; // constant
        }
        let (base, array) = match ty.find('[') {
            Some(i) => {
                let inside = ty[i + 1..]
                    .strip_suffix(']')
                    .ok_or_else(|| format!("definition line {}: bad array type '{ty}'", n + 1))?;
                // A bounded sequence is read like an unbounded one (its length is sent).
                let bounded = dialect == Dialect::Ros2 && inside.starts_with("<=");
                let size = if inside.is_empty() || bounded {
                    None
                } else {
                    Some(inside.parse::<usize>().map_err(|_| {
                        format!("definition line {}: bad array size in '{ty}'", n + 1)
                    })?)
                };
                (&ty[..i], Some(size))
            }
            None => (ty, None),
        };
        let base = match base.split_once("<=") {
            Some(("string", _)) if dialect == Dialect::Ros2 => "string",
            _ => base,
        };
        if base == "wstring" || base.starts_with("wstring<=") {
            return Err(format!(
                "definition line {}: field '{name}' is a wstring, which bagbase does not decode",
                n + 1
            ));
        }
        fields.push(RawField {
            ty: base.to_string(),
            array,
            name: name.to_string(),
        });
    }
    sections.insert(current, fields);
    resolve(msg_type, &sections, dialect, 0)
}

fn find<'a>(
    name: &str,
    parent: &str,
    sections: &'a HashMap<String, Vec<RawField>>,
) -> Option<(String, &'a Vec<RawField>)> {
    let candidates = if name == "Header" {
        vec!["std_msgs/Header".to_string()]
    } else if name.contains('/') {
        vec![name.to_string()]
    } else {
        let pkg = parent.split('/').next().unwrap_or("");
        vec![format!("{pkg}/{name}")]
    };
    for c in &candidates {
        if let Some(f) = sections.get(c) {
            return Some((c.clone(), f));
        }
    }
    let short = name.rsplit('/').next().unwrap_or(name);
    sections
        .iter()
        .find(|(k, _)| k.rsplit('/').next() == Some(short))
        .map(|(k, v)| (k.clone(), v))
}

fn resolve(
    msg: &str,
    sections: &HashMap<String, Vec<RawField>>,
    dialect: Dialect,
    depth: usize,
) -> Result<Vec<(String, Type)>, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "message types nest deeper than {MAX_DEPTH} levels at {msg} (a recursive definition?)"
        ));
    }
    let fields = sections
        .get(msg)
        .ok_or_else(|| format!("no definition for message type {msg}"))?;
    if fields.is_empty() && dialect == Dialect::Ros2 {
        // ROS 2 (rosidl) gives an empty message this one member, on the wire and in code.
        return Ok(vec![(
            "structure_needs_at_least_one_member".into(),
            Type::Prim(Prim::U8),
        )]);
    }
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        let base = match Prim::parse(&f.ty, dialect) {
            Some(p) => Type::Prim(p),
            None => {
                let (full, _) = find(&f.ty, msg, sections).ok_or_else(|| {
                    format!(
                        "field '{}' of {msg}: no definition for type '{}'",
                        f.name, f.ty
                    )
                })?;
                Type::Msg(full.clone(), resolve(&full, sections, dialect, depth + 1)?)
            }
        };
        let ty = match (f.array, &base) {
            (None, _) => base,
            (Some(n), Type::Prim(Prim::U8)) => Type::Bytes(n),
            (Some(n), _) => Type::List(Box::new(base), n),
        };
        out.push((f.name.clone(), ty));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMU: &str = "Header header\ngeometry_msgs/Quaternion orientation\nfloat64[9] orientation_covariance # row major\nuint8[] blob\nint32 X=3\nstring S = a # b\n================================================================================\nMSG: std_msgs/Header\nuint32 seq\ntime stamp\nstring frame_id\n================================================================================\nMSG: geometry_msgs/Quaternion\nfloat64 x\nfloat64 y\nfloat64 z\nfloat64 w\n";

    #[test]
    fn parses_nested_arrays_constants() {
        let f = parse("sensor_msgs/Imu", IMU, Dialect::Ros1).unwrap();
        let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["header", "orientation", "orientation_covariance", "blob"]
        );
        assert!(matches!(&f[0].1, Type::Msg(n, h) if n == "std_msgs/Header" && h.len() == 3));
        assert_eq!(f[2].1, Type::List(Box::new(Type::Prim(Prim::F64)), Some(9)));
        assert_eq!(f[3].1, Type::Bytes(None));
    }

    #[test]
    fn errors_name_the_problem() {
        let r1 = Dialect::Ros1;
        assert!(parse("a/B", "Foo x", r1)
            .unwrap_err()
            .contains("no definition for type 'Foo'"));
        assert!(parse("a/B", "float64[x] y", r1)
            .unwrap_err()
            .contains("bad array size"));
        assert!(parse("a/B", "B self\n===\nMSG: a/B\nB self", r1)
            .unwrap_err()
            .contains("deeper"));
        assert!(parse("a/B", "wstring w", Dialect::Ros2)
            .unwrap_err()
            .contains("wstring"));
    }

    #[test]
    fn ros2_bounded_types_defaults_and_byte() {
        let text = "byte b\nstring<=10 s\nint32[<=5] xs\nbool[3] flags [false, true, false]\nint32 X=1\nbuiltin_interfaces/Time stamp\n===\nMSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n";
        let f = parse("p/msg/M", text, Dialect::Ros2).unwrap();
        assert_eq!(f[0].1, Type::Prim(Prim::U8));
        assert_eq!(f[1].1, Type::Prim(Prim::Str));
        assert_eq!(f[2].1, Type::List(Box::new(Type::Prim(Prim::I32)), None));
        assert_eq!(
            f[3].1,
            Type::List(Box::new(Type::Prim(Prim::Bool)), Some(3))
        );
        assert!(
            matches!(&f[4].1, Type::Msg(n, t) if n == "builtin_interfaces/Time" && t.len() == 2)
        );
        assert_eq!(f.len(), 5);
    }
}
