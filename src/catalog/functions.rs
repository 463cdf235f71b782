//! Scalar functions bagbase adds or widens, so SQL written for PostgreSQL runs:
//! `length(bytea)` and `octet_length(bytea)` count bytes, as in PostgreSQL (DataFusion's
//! own read binary as text and fail on bytes that are not UTF-8, e.g. an image in
//! `messages.data`). Text arguments go to DataFusion's functions unchanged.

use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::length::length;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::type_coercion::functions::fields_with_udf;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::Arc;

/// The functions to register on every session.
pub fn all() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(ByteLength::new(
            "length",
            datafusion::functions::unicode::character_length(),
        )),
        ScalarUDF::new_from_impl(ByteLength::new(
            "octet_length",
            datafusion::functions::string::octet_length(),
        )),
    ]
}

fn is_binary(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

/// `name(x)`: the number of bytes of a binary `x` (PostgreSQL's `integer`), else what
/// `inner` (DataFusion's function) gives for it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ByteLength {
    name: &'static str,
    inner: Arc<ScalarUDF>,
    signature: Signature,
}

impl ByteLength {
    fn new(name: &'static str, inner: Arc<ScalarUDF>) -> Self {
        ByteLength {
            name,
            inner,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ByteLength {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if let [t] = arg_types {
            if is_binary(t) {
                return Ok(vec![DataType::Binary]);
            }
        }
        let fields: Vec<_> = arg_types
            .iter()
            .map(|t| Arc::new(Field::new("x", t.clone(), true)))
            .collect();
        Ok(fields_with_udf(&fields, self.inner.as_ref())?
            .iter()
            .map(|f| f.data_type().clone())
            .collect())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [t] if is_binary(t) => Ok(DataType::Int32),
            _ => self.inner.return_type(arg_types),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !matches!(&args.arg_fields[..], [f] if is_binary(f.data_type())) {
            return self.inner.invoke_with_args(args);
        }
        let to_int = |a| cast(&length(&a)?, &DataType::Int32);
        Ok(match &args.args[0] {
            ColumnarValue::Array(a) => ColumnarValue::Array(to_int(Arc::clone(a))?),
            ColumnarValue::Scalar(s) => {
                let a = to_int(s.to_array()?)?;
                ColumnarValue::Scalar(ScalarValue::try_from_array(&a, 0)?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn bytes_count_bytes_and_text_counts_characters() {
        let ctx = SessionContext::new();
        for f in all() {
            ctx.register_udf(f);
        }
        let sql = "SELECT length(X'80ff00'), octet_length(X'80ff00'), length('héllo'), \
                   octet_length('héllo'), char_length('héllo'), length(CAST(NULL AS BYTEA))";
        let b = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let row: Vec<String> = b[0]
            .columns()
            .iter()
            .map(|c| datafusion::arrow::util::display::array_value_to_string(c, 0).unwrap())
            .collect();
        assert_eq!(row, ["3", "3", "5", "6", "5", ""]);
    }
}
