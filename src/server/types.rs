//! Result types as drivers expect them. PostgreSQL has no 1-byte integer: arrow-pg
//! describes an `Int8` column as `int2` but sends one byte in binary format, which
//! binary-format drivers (asyncpg, JDBC) reject. This analyzer rule widens top-level
//! `Int8` result columns to `Int16` before execution; names stay as they were.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::{Column, Result};
use datafusion::logical_expr::{cast, Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::optimizer::AnalyzerRule;

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
