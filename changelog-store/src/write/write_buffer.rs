//! The write buffer of one bucket: rows appended straight into Arrow column builders
//! (no per-value allocation), with their sequence numbers and kinds. A flush turns it
//! into one record batch in the key/value file layout, in arrival order, or sorted by
//! key with one record per key.
//!
//! Rows written as Arrow batches ([`WriteBuffer::push_batch`]) stay Arrow arrays: the
//! buffer keeps the batch (or the bucket's rows of it, gathered sequentially) and the
//! flush gathers every buffered row once, straight into the order it is written in.

use crate::data::arrow_conv::{self, kv_columns_to_batch};
use crate::data::gather::gather;
use crate::data::sort_key::{KeyForm, SortKeys};
use crate::error::{Error, Result};
use crate::lsm::columnar;
use crate::row::{Datum, RowKind};
use crate::spec::types::{DataType, TypeRoot};
use crate::table_info::TableInfo;
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder, Int8Builder,
    Int16Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use std::sync::Arc;

/// A typed Arrow builder for one column.
enum ColumnBuilder {
    Bool(BooleanBuilder),
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    Date(Date32Builder),
    I64(Int64Builder),
    TsMillis(TimestampMillisecondBuilder),
    TsMicros(TimestampMicrosecondBuilder),
    F32(Float32Builder),
    F64(Float64Builder),
    Str(StringBuilder),
    Bin(BinaryBuilder),
    Dec(Decimal128Builder),
}

impl ColumnBuilder {
    /// A builder with room for `rows` values of `bytes` bytes in all (variable-width types).
    fn with_capacity(ty: &DataType, rows: usize, bytes: usize) -> Self {
        match ty.root {
            TypeRoot::Boolean => ColumnBuilder::Bool(BooleanBuilder::with_capacity(rows)),
            TypeRoot::TinyInt => ColumnBuilder::I8(Int8Builder::with_capacity(rows)),
            TypeRoot::SmallInt => ColumnBuilder::I16(Int16Builder::with_capacity(rows)),
            TypeRoot::Int => ColumnBuilder::I32(Int32Builder::with_capacity(rows)),
            TypeRoot::Date => ColumnBuilder::Date(Date32Builder::with_capacity(rows)),
            TypeRoot::BigInt => ColumnBuilder::I64(Int64Builder::with_capacity(rows)),
            TypeRoot::Timestamp { precision, .. } if precision <= 3 => ColumnBuilder::TsMillis(
                TimestampMillisecondBuilder::with_capacity(rows).with_data_type(arrow_conv::arrow_type(ty)),
            ),
            TypeRoot::Timestamp { .. } => ColumnBuilder::TsMicros(
                TimestampMicrosecondBuilder::with_capacity(rows).with_data_type(arrow_conv::arrow_type(ty)),
            ),
            TypeRoot::Float => ColumnBuilder::F32(Float32Builder::with_capacity(rows)),
            TypeRoot::Double => ColumnBuilder::F64(Float64Builder::with_capacity(rows)),
            TypeRoot::Varchar(_) | TypeRoot::Char(_) => ColumnBuilder::Str(StringBuilder::with_capacity(rows, bytes)),
            TypeRoot::Varbinary(_) => ColumnBuilder::Bin(BinaryBuilder::with_capacity(rows, bytes)),
            TypeRoot::Decimal(p, s) => ColumnBuilder::Dec(
                Decimal128Builder::with_capacity(rows).with_data_type(arrow_schema::DataType::Decimal128(p, s as i8)),
            ),
        }
    }

    /// Bytes of variable-width values appended so far (0 for fixed-width types).
    fn value_bytes(&self) -> usize {
        match self {
            ColumnBuilder::Str(b) => b.values_slice().len(),
            ColumnBuilder::Bin(b) => b.values_slice().len(),
            _ => 0,
        }
    }

    /// Appends `d`; returns the bytes it adds to the buffer. Values were type-checked
    /// by the caller, so a variant that does not fit the column is stored as null.
    fn append(&mut self, d: &Datum) -> usize {
        macro_rules! prim {
            ($b:expr, $variant:ident, $conv:expr, $width:expr) => {{
                match d {
                    Datum::$variant(x) => $b.append_value($conv(*x)),
                    _ => $b.append_null(),
                }
                $width
            }};
        }
        match self {
            ColumnBuilder::Bool(b) => prim!(b, Bool, |x: bool| x, 1),
            ColumnBuilder::I8(b) => prim!(b, Int, |x: i32| x as i8, 1),
            ColumnBuilder::I16(b) => prim!(b, Int, |x: i32| x as i16, 2),
            ColumnBuilder::I32(b) => prim!(b, Int, |x: i32| x, 4),
            ColumnBuilder::Date(b) => prim!(b, Int, |x: i32| x, 4),
            ColumnBuilder::I64(b) => prim!(b, Long, |x: i64| x, 8),
            ColumnBuilder::TsMillis(b) => prim!(b, Long, |x: i64| x, 8),
            ColumnBuilder::TsMicros(b) => prim!(b, Long, |x: i64| x, 8),
            ColumnBuilder::F32(b) => prim!(b, Float, |x: f32| x, 4),
            ColumnBuilder::F64(b) => prim!(b, Double, |x: f64| x, 8),
            ColumnBuilder::Dec(b) => prim!(b, Decimal, |x: crate::decimal::Decimal| x.unscaled, 16),
            ColumnBuilder::Str(b) => match d {
                Datum::String(s) => {
                    b.append_value(s);
                    s.len() + 4
                }
                _ => {
                    b.append_null();
                    4
                }
            },
            ColumnBuilder::Bin(b) => match d {
                Datum::Bytes(s) => {
                    b.append_value(s);
                    s.len() + 4
                }
                _ => {
                    b.append_null();
                    4
                }
            },
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::I8(b) => Arc::new(b.finish()),
            ColumnBuilder::I16(b) => Arc::new(b.finish()),
            ColumnBuilder::I32(b) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::I64(b) => Arc::new(b.finish()),
            ColumnBuilder::TsMillis(b) => Arc::new(b.finish()),
            ColumnBuilder::TsMicros(b) => Arc::new(b.finish()),
            ColumnBuilder::F32(b) => Arc::new(b.finish()),
            ColumnBuilder::F64(b) => Arc::new(b.finish()),
            ColumnBuilder::Str(b) => Arc::new(b.finish()),
            ColumnBuilder::Bin(b) => Arc::new(b.finish()),
            ColumnBuilder::Dec(b) => Arc::new(b.finish()),
        }
    }
}

/// Buffered records of one bucket, columnar.
pub struct WriteBuffer {
    types: Vec<DataType>,
    columns: Vec<ColumnBuilder>,
    seqs: Vec<i64>,
    kinds: Vec<i8>,
    bytes: usize,
    /// Value columns of the batches rows were pushed from.
    sources: Vec<Vec<ArrayRef>>,
    /// Where each buffered record is, in arrival order, as (source, row); records
    /// appended to the builders have source [`BUILDERS`]. Empty while `sources` is.
    refs: Vec<(usize, usize)>,
    /// Records appended to the builders.
    builder_rows: usize,
}

/// The source index of records held in the column builders.
const BUILDERS: usize = usize::MAX;

/// Fixed per-record overhead counted against `write-buffer-size` (sequence, kind,
/// validity bits and the sort entry built at flush).
const RECORD_OVERHEAD: usize = 32;

impl WriteBuffer {
    pub fn new(info: &TableInfo) -> Self {
        WriteBuffer {
            types: info.value_types.clone(),
            columns: info.value_types.iter().map(|t| ColumnBuilder::with_capacity(t, 1024, 1024)).collect(),
            seqs: Vec::new(),
            kinds: Vec::new(),
            bytes: 0,
            sources: Vec::new(),
            refs: Vec::new(),
            builder_rows: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    /// Approximate memory held, for the `write-buffer-size` bound.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Appends one record; returns the bytes it added.
    pub fn push(&mut self, row: &[Datum], seq: i64, kind: RowKind) -> usize {
        let mut added = RECORD_OVERHEAD;
        for (b, d) in self.columns.iter_mut().zip(row) {
            added += b.append(d);
        }
        if !self.sources.is_empty() {
            self.refs.push((BUILDERS, self.builder_rows));
        }
        self.builder_rows += 1;
        self.seqs.push(seq);
        self.kinds.push(kind.to_byte());
        self.bytes += added;
        added
    }

    /// Buffers rows `rows` of `columns` (the table's value columns, type-checked by
    /// the caller) with sequence numbers from `first_seq` on and their kinds. All
    /// rows of the batch, in order, are kept by reference; a subset is first gathered
    /// into a batch of its own (a sequential copy), so that the flush's sort reads only
    /// this bucket's values. Returns the bytes charged to the buffer.
    pub fn push_batch(
        &mut self,
        columns: &[ArrayRef],
        rows: &[u32],
        first_seq: i64,
        kinds: impl Iterator<Item = RowKind>,
    ) -> Result<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        let whole = columns.first().is_some_and(|c| c.len() == rows.len())
            && rows.iter().enumerate().all(|(i, &r)| r as usize == i);
        let kept: Vec<ArrayRef> = if whole {
            columns.to_vec()
        } else {
            let refs: Vec<(usize, usize)> = rows.iter().map(|&r| (0, r as usize)).collect();
            columns
                .iter()
                .map(|c| gather(&[c.as_ref()], &refs))
                .collect::<std::result::Result<_, _>>()
                .map_err(|source| Error::Arrow { op: "gathering a bucket's rows of a batch", source })?
        };
        if self.sources.is_empty() {
            // Records already in the builders come first.
            self.refs = (0..self.seqs.len()).map(|r| (BUILDERS, r)).collect();
        }
        let source = self.sources.len();
        let added = kept.iter().map(|c| c.get_array_memory_size()).sum::<usize>() + rows.len() * RECORD_OVERHEAD;
        self.sources.push(kept);
        self.refs.extend((0..rows.len()).map(|r| (source, r)));
        self.seqs.extend(first_seq..first_seq + rows.len() as i64);
        self.kinds.extend(kinds.map(RowKind::to_byte));
        self.bytes += added;
        Ok(added)
    }

    /// Empties the buffer into one batch in the key/value layout, in arrival order.
    pub fn take(&mut self, info: &TableInfo) -> Result<RecordBatch> {
        if self.sources.is_empty() {
            return self.take_builders(info);
        }
        let (sources, refs, seqs, kinds) = self.take_sources()?;
        let values = gather_columns_releasing(sources, &refs)?;
        kv_columns_to_batch(info, values, seqs, kinds)
    }

    /// Empties the buffer into one batch in the key/value layout sorted by key with one
    /// record per key (see [`columnar::sort_dedupe`]), plus the arrival-order batch when
    /// `arrival` is set (the `input` changelog). Pushed batches are gathered once,
    /// straight into key order.
    pub fn take_sorted(&mut self, info: &TableInfo, arrival: bool) -> Result<(RecordBatch, Option<RecordBatch>)> {
        if self.sources.is_empty() || arrival {
            let raw = self.take(info)?;
            let sorted = columnar::sort_dedupe(info, &raw)?;
            return Ok((sorted, arrival.then_some(raw)));
        }
        let (sources, refs, seqs, kinds) = self.take_sources()?;
        let keys = gather_columns(&sources, &refs, info.key_indices.iter().copied())?;
        let seq_columns = gather_columns(&sources, &refs, info.sequence_indices.iter().copied())?;
        let seq_fields = columnar::seq_keys(&seq_columns)?;
        let keys = SortKeys::new(KeyForm::of(&info.key_types), &keys)?;
        let order = columnar::dedupe_order(info, &keys, seq_fields.as_ref(), &kinds);
        let refs: Vec<(usize, usize)> = order.iter().map(|&i| refs[i as usize]).collect();
        let values = gather_columns_releasing(sources, &refs)?;
        let seqs = order.iter().map(|&i| seqs[i as usize]).collect();
        let kinds = order.iter().map(|&i| kinds[i as usize]).collect();
        Ok((kv_columns_to_batch(info, values, seqs, kinds)?, None))
    }

    /// Empties a buffer holding pushed batches: the builders become one more source.
    #[allow(clippy::type_complexity)]
    fn take_sources(&mut self) -> Result<(Vec<Vec<ArrayRef>>, Vec<(usize, usize)>, Vec<i64>, Vec<i8>)> {
        let mut sources = std::mem::take(&mut self.sources);
        let mut refs = std::mem::take(&mut self.refs);
        let n = self.seqs.len();
        let seqs = std::mem::replace(&mut self.seqs, Vec::with_capacity(n + n / 8));
        let kinds = std::mem::replace(&mut self.kinds, Vec::with_capacity(n + n / 8));
        if self.builder_rows > 0 {
            let sealed = sources.len();
            sources.push(self.finish_builders());
            for r in refs.iter_mut().filter(|r| r.0 == BUILDERS) {
                r.0 = sealed;
            }
        }
        self.bytes = 0;
        if refs.len() != seqs.len() {
            return Err(Error::Unsupported(format!(
                "write buffer out of step: {} positions for {} records",
                refs.len(),
                seqs.len()
            )));
        }
        Ok((sources, refs, seqs, kinds))
    }

    /// Empties the builders into one batch in the key/value layout.
    fn take_builders(&mut self, info: &TableInfo) -> Result<RecordBatch> {
        let rows = self.seqs.len();
        let values = self.finish_builders();
        let seqs = std::mem::replace(&mut self.seqs, Vec::with_capacity(rows + rows / 8));
        let kinds = std::mem::replace(&mut self.kinds, Vec::with_capacity(rows + rows / 8));
        self.bytes = 0;
        kv_columns_to_batch(info, values, seqs, kinds)
    }

    /// The builders' value columns; the builders are renewed.
    fn finish_builders(&mut self) -> Vec<ArrayRef> {
        let sizes: Vec<usize> = self.columns.iter().map(ColumnBuilder::value_bytes).collect();
        let values: Vec<ArrayRef> = self.columns.iter_mut().map(ColumnBuilder::finish).collect();
        // The next flush is likely about as big as this one: size the builders for it
        // up front instead of growing them by doubling.
        let rows = self.builder_rows;
        for ((b, t), bytes) in self.columns.iter_mut().zip(&self.types).zip(sizes) {
            *b = ColumnBuilder::with_capacity(t, rows + rows / 8, bytes + bytes / 8);
        }
        self.builder_rows = 0;
        values
    }
}

/// Gathers every column of the records at `refs` from `sources`, column by
/// column, letting each column of the sources go once it is gathered: the
/// buffer and its gathered copy are never both whole in memory.
fn gather_columns_releasing(mut sources: Vec<Vec<ArrayRef>>, refs: &[(usize, usize)]) -> Result<Vec<ArrayRef>> {
    let width = sources.first().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(width);
    for c in 0..width {
        let gathered = {
            let arrays: Vec<&dyn arrow_array::Array> = sources.iter().map(|s| s[c].as_ref()).collect();
            gather(&arrays, refs).map_err(|source| Error::Arrow { op: "gathering the write buffer", source })?
        };
        for s in &mut sources {
            s[c] = arrow_array::new_empty_array(s[c].data_type());
        }
        out.push(gathered);
    }
    Ok(out)
}

/// Gathers columns `columns` of the records at `refs` from `sources`.
fn gather_columns(
    sources: &[Vec<ArrayRef>],
    refs: &[(usize, usize)],
    columns: impl Iterator<Item = usize>,
) -> Result<Vec<ArrayRef>> {
    columns
        .map(|c| {
            let arrays: Vec<&dyn arrow_array::Array> = sources.iter().map(|s| s[c].as_ref()).collect();
            gather(&arrays, refs).map_err(|source| Error::Arrow { op: "gathering the write buffer", source })
        })
        .collect()
}
