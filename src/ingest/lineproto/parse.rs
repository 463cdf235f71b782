//! One line of InfluxDB line protocol → a `Point`. Our own parser (the
//! `influxdb-line-protocol` crate reports no positions): it works on one line at a
//! time, never allocates more than the line, and says at which column and why a line
//! is wrong. Grammar (InfluxDB 1.x/2.x):
//!
//! ```text
//! measurement[,tag=value...] field=value[,field=value...] [timestamp]
//! ```
//! Measurement names escape `,` and space; tag keys, tag values and field keys escape
//! `,`, `=` and space; string field values are double-quoted and escape `"` and `\`.
//! Field values: float (`1`, `-1.5e3`), integer (`1i`), unsigned (`1u`), string,
//! boolean (`t T true True TRUE f F false False FALSE`).

/// One field value, typed as InfluxDB types it.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(String),
}

impl FieldValue {
    /// InfluxDB's name for the type, used in conflict errors.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldValue::Float(_) => "float",
            FieldValue::Int(_) => "integer",
            FieldValue::UInt(_) => "unsigned",
            FieldValue::Bool(_) => "boolean",
            FieldValue::Str(_) => "string",
        }
    }
}

/// A parsed line. Tags are sorted by key; the timestamp is as written (no precision
/// applied).
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub measurement: String,
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, FieldValue)>,
    pub timestamp: Option<i64>,
}

/// Why a line was refused; `column` is 1-based, in bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct ParseError {
    pub column: usize,
    pub message: String,
}

type Res<T> = Result<T, ParseError>;

struct Cursor<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn err<T>(&self, message: impl Into<String>) -> Res<T> {
        Err(ParseError {
            column: self.at + 1,
            message: message.into(),
        })
    }

    /// An identifier up to an unescaped byte of `stop`; `\x` keeps `x` when `x` is one
    /// of `escapable`, else both bytes (as InfluxDB does).
    fn ident(&mut self, stop: &[u8], escapable: &[u8], what: What<'_>) -> Res<String> {
        let start = self.at;
        // Most identifiers have no escapes: one scan and one copy.
        let end = self.s[start..]
            .iter()
            .position(|b| stop.contains(b) || *b == b'\\')
            .map_or(self.s.len(), |n| start + n);
        if self.s.get(end) != Some(&b'\\') {
            if end == start {
                return self.err(format!("expected {what}"));
            }
            self.at = end;
            return std::str::from_utf8(&self.s[start..end])
                .map(str::to_string)
                .map_err(|_| ParseError {
                    column: start + 1,
                    message: format!("{what} is not valid UTF-8"),
                });
        }
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            if stop.contains(&b) {
                break;
            }
            if b == b'\\' {
                match self.s.get(self.at + 1) {
                    Some(n) if escapable.contains(n) => {
                        out.push(*n);
                        self.at += 2;
                        continue;
                    }
                    _ => {}
                }
            }
            out.push(b);
            self.at += 1;
        }
        if self.at == start {
            return self.err(format!("expected {what}"));
        }
        String::from_utf8(out).map_err(|_| ParseError {
            column: start + 1,
            message: format!("{what} is not valid UTF-8"),
        })
    }

    fn expect(&mut self, b: u8, what: What<'_>) -> Res<()> {
        if self.peek() == Some(b) {
            self.at += 1;
            Ok(())
        } else {
            self.err(format!("expected {what}"))
        }
    }
}

/// What the parser expected, for its error message; formatted only when a line is
/// refused.
#[derive(Clone, Copy)]
enum What<'a> {
    Text(&'static str),
    EqAfterTag(&'a str),
    TagValue(&'a str),
    EqAfterField(&'a str),
}

impl std::fmt::Display for What<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            What::Text(t) => f.write_str(t),
            What::EqAfterTag(k) => write!(f, "'=' after tag key \"{k}\""),
            What::TagValue(k) => write!(f, "a value for tag \"{k}\""),
            What::EqAfterField(k) => write!(f, "'=' after field key \"{k}\""),
        }
    }
}

const MEASUREMENT_ESC: &[u8] = b", \\";
const KEY_ESC: &[u8] = b",= \\";

/// Parses one line (without its newline). Blank lines and comments are the caller's.
pub fn parse_line(line: &str) -> Res<Point> {
    let mut c = Cursor {
        s: line.as_bytes(),
        at: 0,
    };
    let measurement = c.ident(b", ", MEASUREMENT_ESC, What::Text("a measurement name"))?;
    let mut tags: Vec<(String, String)> = Vec::new();
    while c.peek() == Some(b',') {
        c.at += 1;
        let key = c.ident(b"=, ", KEY_ESC, What::Text("a tag key"))?;
        c.expect(b'=', What::EqAfterTag(&key))?;
        let value = c.ident(b", ", KEY_ESC, What::TagValue(&key))?;
        tags.push((key, value));
    }
    c.expect(b' ', What::Text("a space and then the fields"))?;
    let mut fields: Vec<(String, FieldValue)> = Vec::new();
    loop {
        let key = c.ident(b"=, ", KEY_ESC, What::Text("a field key"))?;
        c.expect(b'=', What::EqAfterField(&key))?;
        let value = field_value(&mut c, &key)?;
        if fields.iter().any(|(k, _)| *k == key) {
            fields.retain(|(k, _)| *k != key);
        }
        fields.push((key, value));
        if c.peek() == Some(b',') {
            c.at += 1;
            continue;
        }
        break;
    }
    let timestamp = match c.peek() {
        None => None,
        Some(b' ') => {
            c.at += 1;
            if c.peek().is_none() {
                None
            } else {
                let start = c.at;
                while c.peek().is_some_and(|b| b == b'-' || b.is_ascii_digit()) {
                    c.at += 1;
                }
                if c.at < c.s.len() {
                    return c.err("expected an integer timestamp and the end of the line");
                }
                let text = &line[start..];
                Some(text.parse::<i64>().map_err(|_| ParseError {
                    column: start + 1,
                    message: format!("timestamp \"{text}\" is not a 64-bit integer"),
                })?)
            }
        }
        Some(_) => return c.err("expected ',' and another field, or a space and a timestamp"),
    };
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    for w in tags.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(ParseError {
                column: 1,
                message: format!("duplicate tag key \"{}\"", w[0].0),
            });
        }
    }
    Ok(Point {
        measurement,
        tags,
        fields,
        timestamp,
    })
}

fn field_value(c: &mut Cursor<'_>, key: &str) -> Res<FieldValue> {
    if c.peek() == Some(b'"') {
        c.at += 1;
        let mut out = Vec::new();
        loop {
            match c.peek() {
                None => return c.err(format!("unterminated string value of field \"{key}\"")),
                Some(b'"') => {
                    c.at += 1;
                    break;
                }
                Some(b'\\') if matches!(c.s.get(c.at + 1), Some(b'"' | b'\\')) => {
                    out.push(c.s[c.at + 1]);
                    c.at += 2;
                }
                Some(b) => {
                    out.push(b);
                    c.at += 1;
                }
            }
        }
        return String::from_utf8(out)
            .map(FieldValue::Str)
            .or_else(|_| c.err(format!("value of field \"{key}\" is not valid UTF-8")));
    }
    let start = c.at;
    while c.peek().is_some_and(|b| b != b',' && b != b' ') {
        c.at += 1;
    }
    // The line is a &str and we stopped at ASCII bytes, so this is a char boundary.
    let text = std::str::from_utf8(&c.s[start..c.at]).unwrap_or("");
    let bad = |what: &str| {
        Err(ParseError {
            column: start + 1,
            message: format!("invalid {what} value \"{text}\" for field \"{key}\""),
        })
    };
    match text {
        "" => Err(ParseError {
            column: start + 1,
            message: format!("missing value for field \"{key}\""),
        }),
        "t" | "T" | "true" | "True" | "TRUE" => Ok(FieldValue::Bool(true)),
        "f" | "F" | "false" | "False" | "FALSE" => Ok(FieldValue::Bool(false)),
        _ if text.ends_with('i') => match text[..text.len() - 1].parse::<i64>() {
            Ok(v) => Ok(FieldValue::Int(v)),
            Err(_) => bad("integer"),
        },
        _ if text.ends_with('u') => match text[..text.len() - 1].parse::<u64>() {
            Ok(v) => Ok(FieldValue::UInt(v)),
            Err(_) => bad("unsigned"),
        },
        _ => {
            let numeric = text
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
            match text.parse::<f64>() {
                Ok(v) if numeric && v.is_finite() => Ok(FieldValue::Float(v)),
                _ => bad("float"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_value_type_tags_and_timestamp() {
        let p = parse_line(
            r#"run_metrics,run=r1,lane=a loss=0.5,step=3i,n=7u,ok=t,note="a \"b\", c" 1700000000000000000"#,
        )
        .unwrap();
        assert_eq!(p.measurement, "run_metrics");
        assert_eq!(
            p.tags,
            vec![("lane".into(), "a".into()), ("run".into(), "r1".into())]
        );
        assert_eq!(
            p.fields,
            vec![
                ("loss".into(), FieldValue::Float(0.5)),
                ("step".into(), FieldValue::Int(3)),
                ("n".into(), FieldValue::UInt(7)),
                ("ok".into(), FieldValue::Bool(true)),
                ("note".into(), FieldValue::Str("a \"b\", c".into())),
            ]
        );
        assert_eq!(p.timestamp, Some(1_700_000_000_000_000_000));
    }

    #[test]
    fn escapes_and_no_timestamp() {
        let p = parse_line(r"my\ m,ta\=g=v\,1 f\ x=-1.5e3").unwrap();
        assert_eq!(p.measurement, "my m");
        assert_eq!(p.tags, vec![("ta=g".into(), "v,1".into())]);
        assert_eq!(p.fields, vec![("f x".into(), FieldValue::Float(-1500.0))]);
        assert_eq!(p.timestamp, None);
    }

    #[test]
    fn errors_name_the_column_and_what_was_expected() {
        let e = parse_line("m f=1x").unwrap_err();
        assert_eq!(e.column, 5);
        assert!(e.message.contains("invalid float value \"1x\""), "{e:?}");
        let e = parse_line("m").unwrap_err();
        assert!(e.message.contains("expected a space"), "{e:?}");
        let e = parse_line("m f=").unwrap_err();
        assert!(e.message.contains("missing value"), "{e:?}");
        let e = parse_line("m f=\"open").unwrap_err();
        assert!(e.message.contains("unterminated"), "{e:?}");
        let e = parse_line("m f=1 12a").unwrap_err();
        assert!(e.message.contains("integer timestamp"), "{e:?}");
        let e = parse_line("m,t=1,t=2 f=1").unwrap_err();
        assert!(e.message.contains("duplicate tag"), "{e:?}");
        let e = parse_line("m f=99999999999999999999i").unwrap_err();
        assert!(e.message.contains("invalid integer"), "{e:?}");
        assert!(parse_line("m f=inf").is_err());
        assert!(parse_line("m,t f=1").is_err());
    }

    /// A cheap stand-in for the fuzz target in `cargo test`: lines built from the
    /// grammar's special characters never panic and errors point inside the line.
    #[test]
    fn random_lines_never_panic() {
        let alphabet: Vec<char> = "ab1 ,=\\\"-.eiu tT9#".chars().collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut line = String::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for k in 0..(x % 24) {
                let r = x.rotate_left(k as u32 * 5);
                line.push(alphabet[(r % alphabet.len() as u64) as usize]);
            }
            if let Err(e) = parse_line(&line) {
                assert!(
                    e.column >= 1 && e.column <= line.len() + 1,
                    "{e:?} {line:?}"
                );
            }
        }
    }
}
