//! Result types as drivers expect them.
//! - PostgreSQL has no 1-byte integer: arrow-pg describes an `Int8` column as `int2`
//!   but sends one byte in binary format, which binary-format drivers (asyncpg, JDBC)
//!   reject. An analyzer rule widens top-level `Int8` result columns to `Int16` before
//!   execution; names stay as they were.
//! - JSON text columns (Utf8 marked `arrow.json`: `experiments.params`, `metrics`) are
//!   described as `json` (OID 114), which arrow-pg 0.16 does not know. Only the row
//!   description changes: json's text and binary forms are both the UTF-8 text that
//!   arrow-pg already sends for a `text` column. Simple queries get it in
//!   `super::select` (which keeps the arrow schema), prepared ones from their plan
//!   ([`json_fields`]).

use crate::catalog::user_tables::JSON_EXTENSION;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{Column, Result};
use datafusion::logical_expr::{cast, Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::optimizer::AnalyzerRule;
use pgwire::api::results::{FieldInfo, Response};
use pgwire::api::Type;
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct WidenTinyInts;

impl AnalyzerRule for WidenTinyInts {
    fn name(&self) -> &str {
        "bagbase_widen_tiny_ints"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        let returns_rows = !matches!(
            plan,
            LogicalPlan::Dml(_)
                | LogicalPlan::Ddl(_)
                | LogicalPlan::Explain(_)
                | LogicalPlan::Analyze(_)
                | LogicalPlan::Statement(_)
                | LogicalPlan::DescribeTable(_)
                | LogicalPlan::Copy(_)
        );
        let schema = plan.schema();
        if !returns_rows
            || !schema
                .fields()
                .iter()
                .any(|f| f.data_type() == &DataType::Int8)
        {
            return Ok(plan);
        }
        let exprs: Vec<Expr> = schema
            .iter()
            .map(|(q, f)| {
                let c = Expr::Column(Column::new(q.cloned(), f.name()));
                if f.data_type() == &DataType::Int8 {
                    cast(c, DataType::Int16).alias(f.name())
                } else {
                    c
                }
            })
            .collect();
        LogicalPlanBuilder::from(plan).project(exprs)?.build()
    }
}

fn is_json(f: &datafusion::arrow::datatypes::Field) -> bool {
    f.extension_type_name() == Some(JSON_EXTENSION)
}

/// `fields` (arrow-pg's description of a result with arrow schema `schema`) with the
/// JSON text columns typed `json`; `None` when there are none.
pub fn json_fields(fields: &[FieldInfo], schema: &Schema) -> Option<Vec<FieldInfo>> {
    let marked = schema.fields();
    if fields.len() != marked.len() || !marked.iter().any(|f| is_json(f)) {
        return None;
    }
    let retyped = fields.iter().zip(marked.iter()).map(|(info, f)| {
        if !is_json(f) || info.datatype() != &Type::TEXT {
            return info.clone();
        }
        FieldInfo::new(
            info.name().to_string(),
            info.table_id(),
            info.column_id(),
            Type::JSON,
            info.format(),
        )
        .with_format_options(Arc::clone(info.format_options()))
        .with_type_size(info.type_size())
        .with_type_modifier(info.type_modifier())
    });
    Some(retyped.collect())
}

/// `resp` with its row description's JSON text columns typed `json`.
pub fn with_json_fields(resp: Response, schema: &Schema) -> Response {
    match resp {
        Response::Query(mut q) => {
            if let Some(fields) = json_fields(&q.row_schema, schema) {
                q.row_schema = Arc::new(fields);
            }
            Response::Query(q)
        }
        other => other,
    }
}
