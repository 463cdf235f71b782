//! ROS1 message definitions (`.msg` text with its dependencies after `====` lines and
//! `MSG: pkg/Type` headers) parsed into a resolved type tree. Constants are skipped.

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

impl Prim {
    fn parse(t: &str) -> Option<Prim> {
        Some(match t {
            "bool" => Prim::Bool,
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
            "time" => Prim::Time,
            "duration" => Prim::Duration,
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
pub fn parse(msg_type: &str, text: &str) -> Result<Vec<(String, Type)>, String> {
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
                let size = if inside.is_empty() {
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
        fields.push(RawField {
            ty: base.to_string(),
            array,
            name: name.to_string(),
        });
    }
    sections.insert(current, fields);
    resolve(msg_type, &sections, 0)
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
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        let base = match Prim::parse(&f.ty) {
            Some(p) => Type::Prim(p),
            None => {
                let (full, _) = find(&f.ty, msg, sections).ok_or_else(|| {
                    format!(
                        "field '{}' of {msg}: no definition for type '{}'",
                        f.name, f.ty
                    )
                })?;
                Type::Msg(full.clone(), resolve(&full, sections, depth + 1)?)
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
        let f = parse("sensor_msgs/Imu", IMU).unwrap();
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
        assert!(parse("a/B", "Foo x")
            .unwrap_err()
            .contains("no definition for type 'Foo'"));
        assert!(parse("a/B", "float64[x] y")
            .unwrap_err()
            .contains("bad array size"));
        assert!(parse("a/B", "B self\n===\nMSG: a/B\nB self")
            .unwrap_err()
            .contains("deeper"));
    }
}
