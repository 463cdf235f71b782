//! The one place errors get their SQLSTATE, message, detail, hint and position, as
//! PostgreSQL would send them: syntax `42601`, unknown table `42P01`, unknown
//! column `42703`, not supported `0A000`, out of memory `53200`, division by zero
//! `22012`, cancelled `57014` (pgwire), bad password `28P01` (pgwire).

use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;
use pgwire::api::{ClientInfo, ErrorHandler};
use pgwire::error::{ErrorInfo, PgWireError};

/// Rewrites errors that reach pgwire without a SQLSTATE (the last line of defence;
/// query paths call `map` themselves, with the query text for the position).
pub struct ErrorMapper;

impl ErrorHandler for ErrorMapper {
    fn on_error<C: ClientInfo>(&self, client: &C, error: &mut PgWireError) {
        // SCRAM's client-first message carries no user name (libpq leaves it empty).
        if let PgWireError::InvalidPassword(user) = error {
            if user.is_empty() {
                if let Some(u) = client.metadata().get(pgwire::api::METADATA_USER) {
                    *user = u.clone();
                }
            }
        }
        if matches!(error, PgWireError::ApiError(_)) {
            let e = std::mem::replace(error, PgWireError::QueryCanceled);
            *error = map(e, None);
        }
    }
}

/// Gives an API error (DataFusion's, mostly) its PostgreSQL form.
pub fn map(e: PgWireError, query: Option<&str>) -> PgWireError {
    match e {
        PgWireError::ApiError(inner) => {
            let info = if let Some(df) = inner.downcast_ref::<DataFusionError>() {
                from_datafusion(df, query)
            } else if let Some(p) = inner.downcast_ref::<ParserError>() {
                let e = DataFusionError::SQL(Box::new(p.clone()), None);
                from_datafusion(&e, query)
            } else {
                ErrorInfo::new("ERROR".into(), "XX000".into(), inner.to_string())
            };
            PgWireError::UserError(Box::new(info))
        }
        other => other,
    }
}

pub fn from_datafusion(e: &DataFusionError, query: Option<&str>) -> ErrorInfo {
    let root = e.find_root();
    let text = root.to_string();
    let (code, message, detail) = match root {
        DataFusionError::SQL(p, _) => {
            let msg = match p.as_ref() {
                ParserError::ParserError(m) | ParserError::TokenizerError(m) => m.clone(),
                other => other.to_string(),
            };
            (
                "42601",
                format!("syntax error: {}", strip_location(&msg)),
                None,
            )
        }
        DataFusionError::NotImplemented(m) => ("0A000", m.clone(), None),
        DataFusionError::ResourcesExhausted(m) => (
            "53200",
            "out of memory: the query needs more than --memory-limit allows".to_string(),
            Some(m.clone()),
        ),
        DataFusionError::SchemaError(s, _) => {
            let m = s.to_string();
            let code = if m.contains("No field named") {
                "42703"
            } else if m.contains("Ambiguous") || m.contains("ambiguous") {
                "42702"
            } else {
                "42000"
            };
            (code, m, None)
        }
        DataFusionError::Plan(m) => {
            if let Some(name) = table_not_found(m) {
                (
                    "42P01",
                    format!("relation \"{name}\" does not exist"),
                    Some(m.clone()),
                )
            } else if m.contains("No field named") {
                ("42703", m.clone(), None)
            } else if m.contains("does not exist") || m.contains("not found") {
                ("42704", m.clone(), None)
            } else if m.contains("Cannot infer") || m.contains("coerc") {
                ("42804", m.clone(), None)
            } else {
                ("42000", m.clone(), None)
            }
        }
        DataFusionError::ArrowError(a, _) if a.to_string().contains("Divide by zero") => {
            ("22012", "division by zero".to_string(), None)
        }
        DataFusionError::ArrowError(a, _) if a.to_string().contains("Cast error") => {
            ("22P02", a.to_string(), None)
        }
        DataFusionError::Execution(m) if m.contains("Divide by zero") => {
            ("22012", "division by zero".to_string(), None)
        }
        DataFusionError::External(x) => match x.downcast_ref::<crate::version::VersionError>() {
            Some(crate::version::VersionError::Constraint {
                code,
                message,
                detail,
            }) => (*code, message.clone(), detail.clone()),
            _ => ("XX000", text.clone(), None),
        },
        _ => ("XX000", text.clone(), None),
    };
    let mut info = ErrorInfo::new("ERROR".into(), code.into(), message);
    info.detail = detail;
    info.position = query.and_then(|q| position(e, q));
    if code == "42P01" {
        info.hint = Some(
            "tables live in schema public (the connection's ref); other refs are schemas: \"v1\".files"
                .into(),
        );
    }
    info
}

/// `table 'bagbase.public.foo' not found` → `foo`.
fn table_not_found(m: &str) -> Option<String> {
    let start = m.find("table '")? + "table '".len();
    let rest = &m[start..];
    let end = rest.find("' not found")?;
    let full = &rest[..end];
    Some(full.rsplit('.').next().unwrap_or(full).to_string())
}

fn strip_location(m: &str) -> &str {
    match m.find(" at Line: ") {
        Some(i) => &m[..i],
        None => m,
    }
}

/// 1-based character position in the query, from DataFusion's span or the parser's
/// "at Line: L, Column: C".
fn position(e: &DataFusionError, query: &str) -> Option<String> {
    let (line, col) = match e.diagnostic().and_then(|d| d.span) {
        Some(s) if s.start.line > 0 => (s.start.line as usize, s.start.column as usize),
        _ => {
            let m = e.find_root().to_string();
            let i = m.find("at Line: ")? + "at Line: ".len();
            let rest = &m[i..];
            let (l, rest) = rest.split_once(", Column: ")?;
            let c: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            (l.trim().parse().ok()?, c.parse().ok()?)
        }
    };
    let mut offset = 0usize;
    for (n, text) in query.split('\n').enumerate() {
        if n + 1 == line {
            return Some((offset + col.max(1)).to_string());
        }
        offset += text.chars().count() + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters_across_lines() {
        let e = DataFusionError::SQL(
            Box::new(ParserError::ParserError(
                "Expected: an expression, found: FROM at Line: 2, Column: 3".into(),
            )),
            None,
        );
        let info = from_datafusion(&e, Some("SELECT\n  FROM t"));
        assert_eq!(info.code, "42601");
        assert_eq!(info.position.as_deref(), Some("10"));
        assert!(!info.message.contains("Line"));
    }

    #[test]
    fn unknown_table_is_42p01() {
        let e = DataFusionError::Plan("table 'bagbase.public.nope' not found".into());
        let info = from_datafusion(&e, None);
        assert_eq!(info.code, "42P01");
        assert_eq!(info.message, "relation \"nope\" does not exist");
    }
}
