//! Sort keys of key/value batches: the trimmed primary key of every row in a form that
//! is cheap to compare. A single integer key becomes an `i64`; any other key becomes
//! memcomparable bytes (byte order equals [`Datum`](crate::row::Datum) order).
//!
//! Which form a table uses depends only on its key types ([`KeyForm::of`]), so the keys
//! of all batches of one table compare with each other.

use crate::error::{Error, Result};
use crate::spec::types::{DataType, TypeRoot};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType as ArrowType, TimeUnit};
use std::cmp::Ordering;

/// The comparison form of a table's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForm {
    /// One integer-like column (TINYINT..BIGINT, DATE, TIMESTAMP).
    Int,
    /// Anything else: memcomparable bytes.
    Bytes,
}

impl KeyForm {
    pub fn of(key_types: &[DataType]) -> KeyForm {
        match key_types {
            [t] if matches!(
                t.root,
                TypeRoot::TinyInt
                    | TypeRoot::SmallInt
                    | TypeRoot::Int
                    | TypeRoot::BigInt
                    | TypeRoot::Date
                    | TypeRoot::Timestamp { .. }
            ) =>
            {
                KeyForm::Int
            }
            _ => KeyForm::Bytes,
        }
    }
}

/// The keys of the rows of one batch.
#[derive(Debug, Clone)]
pub enum SortKeys {
    Int(Vec<i64>),
    Bytes { data: Vec<u8>, offsets: Vec<usize> },
}

/// One key held on its own (the key of the group being merged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedKey {
    Int(i64),
    Bytes(Vec<u8>),
}

fn int_value(col: &ArrayRef, row: usize) -> Option<i64> {
    Some(match col.data_type() {
        ArrowType::Int8 => col.as_primitive::<Int8Type>().value(row) as i64,
        ArrowType::Int16 => col.as_primitive::<Int16Type>().value(row) as i64,
        ArrowType::Int32 => col.as_primitive::<Int32Type>().value(row) as i64,
        ArrowType::Int64 => col.as_primitive::<Int64Type>().value(row),
        ArrowType::Date32 => col.as_primitive::<Date32Type>().value(row) as i64,
        ArrowType::Timestamp(TimeUnit::Millisecond, _) => col.as_primitive::<TimestampMillisecondType>().value(row),
        ArrowType::Timestamp(TimeUnit::Microsecond, _) => col.as_primitive::<TimestampMicrosecondType>().value(row),
        _ => return None,
    })
}

fn encode_escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// Appends the memcomparable form of `col[row]` to `out`.
fn encode_value(col: &ArrayRef, row: usize, out: &mut Vec<u8>) -> Result<()> {
    if col.is_null(row) {
        out.push(0);
        return Ok(());
    }
    out.push(1);
    if let Some(v) = int_value(col, row) {
        out.extend_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
        return Ok(());
    }
    match col.data_type() {
        ArrowType::Boolean => out.push(u8::from(col.as_boolean().value(row))),
        ArrowType::Float32 => {
            let bits = col.as_primitive::<Float32Type>().value(row).to_bits();
            let ordered = if bits >> 31 == 1 { !bits } else { bits ^ (1 << 31) };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        ArrowType::Float64 => {
            let bits = col.as_primitive::<Float64Type>().value(row).to_bits();
            let ordered = if bits >> 63 == 1 { !bits } else { bits ^ (1 << 63) };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        ArrowType::Utf8 => encode_escaped(col.as_string::<i32>().value(row).as_bytes(), out),
        ArrowType::LargeUtf8 => encode_escaped(col.as_string::<i64>().value(row).as_bytes(), out),
        ArrowType::Binary => encode_escaped(col.as_binary::<i32>().value(row), out),
        ArrowType::LargeBinary => encode_escaped(col.as_binary::<i64>().value(row), out),
        // One scale per column: the unscaled values order as the decimals do.
        ArrowType::Decimal128(..) => {
            let v = col.as_primitive::<arrow_array::types::Decimal128Type>().value(row);
            out.extend_from_slice(&((v as u128) ^ (1 << 127)).to_be_bytes());
        }
        other => {
            return Err(Error::Unsupported(format!("primary key column of Arrow type {other}")));
        }
    }
    Ok(())
}

impl SortKeys {
    /// The keys of the rows of `key_columns` (the `_KEY_*` columns of a batch).
    pub fn new(form: KeyForm, key_columns: &[ArrayRef]) -> Result<SortKeys> {
        let n = key_columns.first().map_or(0, |c| c.len());
        match form {
            KeyForm::Int => {
                let col = key_columns
                    .first()
                    .ok_or_else(|| Error::Unsupported("integer sort key without a column".into()))?;
                if col.null_count() > 0 {
                    return Err(Error::corrupt("<data file>", "null in a primary key column"));
                }
                let values = match col.data_type() {
                    ArrowType::Int64 => col.as_primitive::<Int64Type>().values().to_vec(),
                    _ => (0..n).map(|r| int_value(col, r)).collect::<Option<Vec<i64>>>().ok_or_else(|| {
                        Error::corrupt("<data file>", format!("key column of type {}", col.data_type()))
                    })?,
                };
                Ok(SortKeys::Int(values))
            }
            KeyForm::Bytes => {
                let mut data = Vec::with_capacity(n * 12);
                let mut offsets = Vec::with_capacity(n + 1);
                offsets.push(0);
                for r in 0..n {
                    for c in key_columns {
                        encode_value(c, r, &mut data)?;
                    }
                    offsets.push(data.len());
                }
                Ok(SortKeys::Bytes { data, offsets })
            }
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SortKeys::Int(v) => v.len(),
            SortKeys::Bytes { offsets, .. } => offsets.len().saturating_sub(1),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bytes<'d>(data: &'d [u8], offsets: &[usize], i: usize) -> &'d [u8] {
        &data[offsets[i]..offsets[i + 1]]
    }

    /// Compares row `i` of `self` with row `j` of `other` (same [`KeyForm`]).
    pub fn cmp_rows(&self, i: usize, other: &SortKeys, j: usize) -> Ordering {
        match (self, other) {
            (SortKeys::Int(a), SortKeys::Int(b)) => a[i].cmp(&b[j]),
            (SortKeys::Bytes { data: a, offsets: ao }, SortKeys::Bytes { data: b, offsets: bo }) => {
                Self::bytes(a, ao, i).cmp(Self::bytes(b, bo, j))
            }
            // Both sides come from one table, so one form; order forms for totality.
            (SortKeys::Int(_), SortKeys::Bytes { .. }) => Ordering::Less,
            (SortKeys::Bytes { .. }, SortKeys::Int(_)) => Ordering::Greater,
        }
    }

    /// Whether row `i` has the key `key`.
    pub fn eq_owned(&self, i: usize, key: &OwnedKey) -> bool {
        match (self, key) {
            (SortKeys::Int(a), OwnedKey::Int(k)) => a[i] == *k,
            (SortKeys::Bytes { data, offsets }, OwnedKey::Bytes(k)) => Self::bytes(data, offsets, i) == k.as_slice(),
            _ => false,
        }
    }

    /// Compares row `i` with the key `key` (taken from a batch of the same form).
    pub fn cmp_owned(&self, i: usize, key: &OwnedKey) -> Ordering {
        match (self, key) {
            (SortKeys::Int(a), OwnedKey::Int(k)) => a[i].cmp(k),
            (SortKeys::Bytes { data, offsets }, OwnedKey::Bytes(k)) => Self::bytes(data, offsets, i).cmp(k.as_slice()),
            (SortKeys::Int(_), OwnedKey::Bytes(_)) => Ordering::Less,
            (SortKeys::Bytes { .. }, OwnedKey::Int(_)) => Ordering::Greater,
        }
    }

    /// Stores the key of row `i` in `slot` (reusing its allocation).
    pub fn copy_into(&self, i: usize, slot: &mut OwnedKey) {
        match (self, &mut *slot) {
            (SortKeys::Int(a), _) => *slot = OwnedKey::Int(a[i]),
            (SortKeys::Bytes { data, offsets }, OwnedKey::Bytes(buf)) => {
                buf.clear();
                buf.extend_from_slice(Self::bytes(data, offsets, i));
            }
            (SortKeys::Bytes { data, offsets }, _) => *slot = OwnedKey::Bytes(Self::bytes(data, offsets, i).to_vec()),
        }
    }

    /// Row indices sorted by key; rows with equal keys keep their order (stable).
    pub fn sorted_indices(&self) -> Vec<u32> {
        match self {
            SortKeys::Int(v) => {
                let mut pairs: Vec<(i64, u32)> = v.iter().enumerate().map(|(i, k)| (*k, i as u32)).collect();
                pairs.sort_unstable();
                pairs.into_iter().map(|(_, i)| i).collect()
            }
            SortKeys::Bytes { data, offsets } => {
                let mut idx: Vec<u32> = (0..self.len() as u32).collect();
                idx.sort_by(|&a, &b| {
                    Self::bytes(data, offsets, a as usize).cmp(Self::bytes(data, offsets, b as usize))
                });
                idx
            }
        }
    }

    /// Indices of the smallest and largest key (first occurrence), `None` if empty.
    pub fn min_max(&self) -> Option<(usize, usize)> {
        if self.is_empty() {
            return None;
        }
        let (mut lo, mut hi) = (0, 0);
        for i in 1..self.len() {
            if self.cmp_rows(i, self, lo) == Ordering::Less {
                lo = i;
            }
            if self.cmp_rows(i, self, hi) == Ordering::Greater {
                hi = i;
            }
        }
        Some((lo, hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, Int64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn int_keys_sort_stably() {
        let col: ArrayRef = Arc::new(Int64Array::from(vec![3, -1, 3, 0]));
        let keys = SortKeys::new(KeyForm::Int, &[col]).expect("keys");
        assert_eq!(keys.sorted_indices(), vec![1, 3, 0, 2]);
        assert_eq!(keys.min_max(), Some((1, 0)));
    }

    #[test]
    fn byte_keys_follow_datum_order() {
        let s: ArrayRef = Arc::new(StringArray::from(vec!["a", "a\0", "", "b", "a"]));
        let d: ArrayRef = Arc::new(Float64Array::from(vec![1.0, 0.0, 5.0, -2.0, -0.5]));
        let keys = SortKeys::new(KeyForm::Bytes, &[s, d]).expect("keys");
        // ("",5) < ("a",-0.5) < ("a",1) < ("a\0",0) < ("b",-2)
        assert_eq!(keys.sorted_indices(), vec![2, 4, 0, 1, 3]);
    }

    #[test]
    fn negative_floats_order_below_positive() {
        let d: ArrayRef = Arc::new(Float64Array::from(vec![0.25, -0.5, -3.0, 0.0]));
        let keys = SortKeys::new(KeyForm::Bytes, &[d]).expect("keys");
        assert_eq!(keys.sorted_indices(), vec![2, 1, 3, 0]);
    }
}
