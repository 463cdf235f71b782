//! Client probes DataFusion cannot plan as sent, rewritten into what they mean before
//! datafusion-postgres sees them.
//!
//! PgJDBC (and DBeaver through it) asks whether a type is an array with
//! `typinput = 'pg_catalog.array_in'::regproc`. PostgreSQL compares function oids;
//! datafusion-pg-catalog keeps `pg_type`'s regproc columns as the function's display
//! name (`array_in`, as PostgreSQL prints a regproc) and turns the cast into an oid
//! lookup, so the comparison is Utf8 = Int32 and fails. Compared with one of those
//! columns, a regproc literal therefore becomes its display name: the name without
//! `pg_catalog.`. Nothing else is touched, and SQL that does not mention `regproc`
//! is not even parsed.

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Value, ValueWithSpan, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use std::ops::ControlFlow;

/// `pg_type` columns of type regproc, which datafusion-pg-catalog holds as names.
const REGPROC_COLUMNS: &[&str] = &[
    "typinput",
    "typoutput",
    "typreceive",
    "typsend",
    "typmodin",
    "typmodout",
    "typanalyze",
    "typsubscript",
];

/// `sql` rewritten, or `None` when there is nothing to rewrite (or it does not parse:
/// the normal path then reports the error).
pub fn rewrite(sql: &str) -> Option<String> {
    if !sql
        .as_bytes()
        .windows(7)
        .any(|w| w.eq_ignore_ascii_case(b"regproc"))
    {
        return None;
    }
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    let mut v = RegprocAsName { changed: false };
    let _ = statements.visit(&mut v);
    v.changed.then(|| {
        statements
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })
}

struct RegprocAsName {
    changed: bool,
}

fn is_regproc_column(e: &Expr) -> bool {
    let name = match e {
        Expr::Identifier(i) => &i.value,
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(i) => &i.value,
            None => return false,
        },
        _ => return false,
    };
    REGPROC_COLUMNS.contains(&name.to_ascii_lowercase().as_str())
}

/// The display name of `'name'::regproc` (or `pg_catalog.regproc`), if `e` is one.
fn regproc_literal(e: &Expr) -> Option<String> {
    let Expr::Cast {
        expr, data_type, ..
    } = e
    else {
        return None;
    };
    let ty = data_type.to_string().to_ascii_lowercase();
    if ty != "regproc" && ty != "pg_catalog.regproc" {
        return None;
    }
    let Expr::Value(ValueWithSpan {
        value: Value::SingleQuotedString(name),
        ..
    }) = expr.as_ref()
    else {
        return None;
    };
    Some(name.strip_prefix("pg_catalog.").unwrap_or(name).to_string())
}

impl RegprocAsName {
    fn replace(&mut self, e: &mut Expr) {
        if let Some(name) = regproc_literal(e) {
            *e = Expr::Value(Value::SingleQuotedString(name).into());
            self.changed = true;
        }
    }
}

impl VisitorMut for RegprocAsName {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::BinaryOp { left, op, right } = expr else {
            return ControlFlow::Continue(());
        };
        if !matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq) {
            return ControlFlow::Continue(());
        }
        if is_regproc_column(left) {
            self.replace(right);
        }
        if is_regproc_column(right) {
            self.replace(left);
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn regproc_literal_compared_with_a_regproc_column_becomes_its_name() {
        let sql = "SELECT typinput='pg_catalog.array_in'::regproc as is_array, typtype \
                   FROM pg_catalog.pg_type WHERE pg_type.oid = 1034";
        let out = rewrite(sql).unwrap();
        assert!(out.contains("typinput = 'array_in' AS is_array"), "{out}");
        let out =
            rewrite("SELECT 1 FROM pg_type t WHERE 'array_in'::regproc <> t.typinput").unwrap();
        assert!(out.contains("'array_in' <> t.typinput"), "{out}");
    }

    #[test]
    fn everything_else_is_left_alone() {
        assert_eq!(rewrite("SELECT 1"), None);
        assert_eq!(rewrite("SELECT 'array_in'::regproc"), None);
        assert_eq!(rewrite("SELECT proname = 'f'::regproc FROM pg_proc"), None);
        assert_eq!(rewrite("SELECT typinput = 'x'::regproc FROM"), None);
    }
}
