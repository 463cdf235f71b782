//! Statement shapes: a query text with its number and string literals taken out by
//! the tokenizer alone, so that a statement of a known shape reaches its generic plan
//! (`template`) without being parsed. Parsing, rewriting and normalizing a point lookup
//! cost ≈ 15 % of serving it (docs/design.md "Shapes").
//!
//! - [`Shape::of`] tokenizes a text: its key is the token stream with each number
//!   and single-quoted string as `?n` / `?s` (whitespace and comments dropped, a
//!   trailing `;` too); the literals are kept in text order.
//! - [`Slots::learn`] is called where a statement of that text was parsed and
//!   normalized (`template::normalize`): it finds, for each placeholder value, the one
//!   literal of the text it came from. It learns only when that is certain: the
//!   parsed statement, printed again, has the same tokens as the text (no rewrite
//!   rule touched it), and each value matches exactly one literal (a literal or its
//!   negation after a `-`). Every other literal is *fixed*: a later text of the same
//!   shape must have it word for word (`LIMIT 3` is not `LIMIT 4`).
//! - [`Slots::values`] gives a later text's placeholder values, or `None`.
//!
//! Texts naming `pg_` objects, `current_setting` or `regproc`, or holding `$`, have
//! no shape: datafusion-pg-catalog replaces some client catalog queries by their
//! tokens (literals included) and `server::rewrite` rewrites regproc comparisons, so
//! for them the same shape need not mean the same statement.

use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// Texts longer than this are not shaped (the plan cache plans them every time).
const MAX_BYTES: usize = 16 << 10;

/// Substrings (ASCII, any case) that keep a text from having a shape.
const UNSHAPED: &[&[u8]] = &[b"pg_", b"current_setting", b"regproc", b"$"];

/// A text's tokens with its literals taken out.
#[derive(Debug, PartialEq)]
pub struct Shape {
    /// The tokens, literals as `?n` / `?s`, separated by spaces.
    pub key: String,
    /// The literals in text order.
    literals: Vec<Literal>,
    /// The tokens (no whitespace), for `folded`: only learning compares them.
    tokens: Vec<Token>,
}

#[derive(Debug, PartialEq)]
struct Literal {
    /// As written (a string with its quotes).
    text: String,
    kind: Kind,
    /// Whether the token before it is `-`.
    after_minus: bool,
}

#[derive(Debug, PartialEq)]
enum Kind {
    /// A number's digits.
    Number(String),
    /// A string's value (quotes removed, `''` unescaped).
    String(String),
}

impl Literal {
    /// The value DataFusion plans for this literal, negated if `negative`
    /// (`template::literal`).
    fn value(&self, negative: bool) -> Option<ScalarValue> {
        match (&self.kind, negative) {
            (Kind::Number(n), _) => super::template::number(n, negative),
            (Kind::String(s), false) => Some(ScalarValue::Utf8(Some(s.clone()))),
            (Kind::String(_), true) => None,
        }
    }
}

impl Shape {
    /// The shape of `sql`, if it has literals and nothing that keeps it from having
    /// a shape (module doc).
    pub fn of(sql: &str) -> Option<Shape> {
        if sql.len() > MAX_BYTES
            || UNSHAPED.iter().any(|u| {
                sql.as_bytes()
                    .windows(u.len())
                    .any(|w| w.eq_ignore_ascii_case(u))
            })
        {
            return None;
        }
        let mut tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
        tokens.retain(|t| !matches!(t, Token::Whitespace(_) | Token::EOF));
        while matches!(tokens.last(), Some(Token::SemiColon)) {
            tokens.pop();
        }
        let mut key = String::with_capacity(sql.len());
        let mut literals = Vec::new();
        let mut after_minus = false;
        for t in &tokens {
            if !key.is_empty() {
                key.push(' ');
            }
            let kind = match t {
                Token::Number(n, false) => Some(Kind::Number(n.clone())),
                Token::SingleQuotedString(s) => Some(Kind::String(s.clone())),
                _ => None,
            };
            match kind {
                Some(kind) => {
                    key.push_str(if matches!(kind, Kind::Number(_)) {
                        "?n"
                    } else {
                        "?s"
                    });
                    literals.push(Literal {
                        text: t.to_string(),
                        kind,
                        after_minus,
                    });
                }
                None => {
                    use std::fmt::Write;
                    let _ = write!(key, "{t}");
                }
            }
            after_minus = matches!(t, Token::Minus);
        }
        (!literals.is_empty()).then_some(Shape {
            key,
            literals,
            tokens,
        })
    }

    /// The tokens as the comparison with a printed statement sees them: unquoted
    /// words in lower case, literals as written.
    fn folded(&self) -> Vec<String> {
        self.tokens
            .iter()
            .map(|t| match t {
                Token::Word(w) if w.quote_style.is_none() => w.value.to_lowercase(),
                _ => t.to_string(),
            })
            .collect()
    }
}

/// Where a shape's placeholder values are among its literals.
#[derive(Debug, PartialEq)]
pub struct Slots {
    /// Per placeholder: the literal's index, and whether it is negated.
    slots: Vec<(usize, bool)>,
    /// The other literals: index and text as written.
    fixed: Vec<(usize, String)>,
}

impl Slots {
    /// The slots of `text` (a statement's text as it came), whose parsed statement
    /// printed again is `printed` and normalizes to `values`, if they are certain
    /// (module doc).
    pub fn learn(text: &Shape, printed: &Shape, values: &[ScalarValue]) -> Option<Slots> {
        if text.folded() != printed.folded() {
            return None;
        }
        let mut used = vec![false; text.literals.len()];
        let mut slots = Vec::with_capacity(values.len());
        for v in values {
            let mut found = None;
            for (i, l) in text.literals.iter().enumerate() {
                for negative in [false, true] {
                    if (!negative || l.after_minus) && l.value(negative).as_ref() == Some(v) {
                        if found.is_some() {
                            return None;
                        }
                        found = Some((i, negative));
                    }
                }
            }
            let (i, negative) = found?;
            if std::mem::replace(&mut used[i], true) {
                return None;
            }
            slots.push((i, negative));
        }
        let fixed = text
            .literals
            .iter()
            .enumerate()
            .filter(|(i, _)| !used[*i])
            .map(|(i, l)| (i, l.text.clone()))
            .collect();
        Some(Slots { slots, fixed })
    }

    /// The placeholder values of `text` (a shape with these slots), if its fixed
    /// literals are the ones learned and every value is one DataFusion would plan.
    pub fn values(&self, text: &Shape) -> Option<Vec<ScalarValue>> {
        let fixed_same = self
            .fixed
            .iter()
            .all(|(i, t)| text.literals.get(*i).is_some_and(|l| l.text == *t));
        if !fixed_same {
            return None;
        }
        self.slots
            .iter()
            .map(|(i, negative)| text.literals.get(*i)?.value(*negative))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(i: i64) -> ScalarValue {
        ScalarValue::Int64(Some(i))
    }

    fn text(s: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(s.into()))
    }

    #[test]
    fn literals_leave_the_key() {
        let a = Shape::of("SELECT x FROM t WHERE a = 5 AND b = 'it''s' LIMIT 3;").unwrap();
        let b = Shape::of("select x from t where a = 6 and b = 'no'   LIMIT 3").unwrap();
        assert_eq!(a.key, "SELECT x FROM t WHERE a = ?n AND b = ?s LIMIT ?n");
        assert_ne!(a.key, b.key, "the key keeps the case of words");
        assert_eq!(a.folded(), {
            let mut f = b.folded();
            f[7] = "5".into();
            f[11] = "'it's'".into();
            f
        });
        assert!(Shape::of("SELECT 1 FROM pg_class").is_none());
        assert!(Shape::of("SELECT x FROM t WHERE a = $1").is_none());
        assert!(Shape::of("SELECT x FROM t").is_none(), "no literals");
    }

    #[test]
    fn values_come_from_the_literal_they_were() {
        let sql = "SELECT x FROM t WHERE a = -5 AND b = 'k' AND c > 2.5 LIMIT 10";
        let s = Shape::of(sql).unwrap();
        let values = [int(-5), text("k"), ScalarValue::Float64(Some(2.5))];
        let slots = Slots::learn(&s, &s, &values).unwrap();
        let other =
            Shape::of("SELECT x FROM t WHERE a = -7 AND b = 'q' AND c > 1e3 LIMIT 10").unwrap();
        assert_eq!(
            slots.values(&other).unwrap(),
            vec![int(-7), text("q"), ScalarValue::Float64(Some(1000.0))]
        );
        let limit =
            Shape::of("SELECT x FROM t WHERE a = -7 AND b = 'q' AND c > 1 LIMIT 11").unwrap();
        assert_eq!(slots.values(&limit), None, "a fixed literal differs");
        let huge = Shape::of(
            "SELECT x FROM t WHERE a = -99999999999999999999 AND b = 'q' AND c > 1 LIMIT 10",
        )
        .unwrap();
        assert_eq!(slots.values(&huge), None, "planned as a decimal");
    }

    #[test]
    fn only_certain_slots_are_learned() {
        let s = Shape::of("SELECT x FROM t WHERE a = 5 AND b = 5").unwrap();
        assert_eq!(Slots::learn(&s, &s, &[int(5), int(5)]), None, "two 5s");
        let s = Shape::of("SELECT x + 5 FROM t WHERE a = 5").unwrap();
        assert_eq!(Slots::learn(&s, &s, &[int(5)]), None, "which 5");
        let s = Shape::of("SELECT x FROM t WHERE a = 5").unwrap();
        assert_eq!(
            Slots::learn(&s, &s, &[int(6)]),
            None,
            "not a literal of the text"
        );
        let printed = Shape::of("SELECT x FROM t WHERE a = 5 LIMIT 2").unwrap();
        let s = Shape::of("SELECT x FROM t WHERE a = 5 FETCH FIRST 2 ROWS ONLY").unwrap();
        assert_eq!(
            Slots::learn(&s, &printed, &[int(5)]),
            None,
            "printed differently"
        );
    }
}
