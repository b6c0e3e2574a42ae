//! Arrow → text table / JSON rows, without pulling in a pretty-printing crate.

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::DataType;
use serde_json::{Map, Value};

/// One JSON object per row.
pub fn to_json_rows(batch: &RecordBatch) -> anyhow::Result<Vec<Value>> {
    let opts = FormatOptions::default().with_null("null");
    let mut rows = vec![Map::new(); batch.num_rows()];
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        let fmt = ArrayFormatter::try_new(col.as_ref(), &opts)?;
        for (i, row) in rows.iter_mut().enumerate() {
            let v = if col.is_null(i) {
                Value::Null
            } else {
                match field.data_type() {
                    DataType::Utf8 => Value::String(col.as_string::<i32>().value(i).to_string()),
                    DataType::Int32 => Value::from(col.as_primitive::<arrow_array::types::Int32Type>().value(i)),
                    DataType::Int64 => Value::from(col.as_primitive::<arrow_array::types::Int64Type>().value(i)),
                    DataType::Boolean => Value::Bool(col.as_boolean().value(i)),
                    DataType::Binary => {
                        Value::String(col.as_binary::<i32>().value(i).iter().map(|b| format!("{b:02x}")).collect())
                    }
                    DataType::LargeBinary => {
                        Value::String(col.as_binary::<i64>().value(i).iter().map(|b| format!("{b:02x}")).collect())
                    }
                    _ => Value::String(fmt.value(i).to_string()),
                }
            };
            row.insert(field.name().clone(), v);
        }
    }
    Ok(rows.into_iter().map(Value::Object).collect())
}

/// A plain text table, values cut at `width` characters.
pub fn to_text(batches: &[RecordBatch], width: usize) -> anyhow::Result<String> {
    let Some(first) = batches.first() else { return Ok("(no rows)\n".into()) };
    let opts = FormatOptions::default().with_null("∅");
    let names: Vec<String> = first.schema().fields().iter().map(|f| f.name().clone()).collect();
    let mut cells: Vec<Vec<String>> = vec![names];
    for batch in batches {
        let fmts: Vec<ArrayFormatter<'_>> =
            batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &opts)).collect::<Result<_, _>>()?;
        for i in 0..batch.num_rows() {
            cells.push(
                fmts.iter()
                    .map(|f| {
                        let s = f.value(i).to_string().replace(['\n', '\t'], " ");
                        if s.chars().count() > width {
                            format!("{}…", s.chars().take(width).collect::<String>())
                        } else {
                            s
                        }
                    })
                    .collect(),
            );
        }
    }
    let widths: Vec<usize> =
        (0..cells[0].len()).map(|c| cells.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for (n, row) in cells.iter().enumerate() {
        let line: Vec<String> = row.iter().zip(&widths).map(|(s, w)| format!("{s:<w$}")).collect();
        out.push_str(line.join(" | ").trim_end());
        out.push('\n');
        if n == 0 {
            out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-"));
            out.push('\n');
        }
    }
    Ok(out)
}
