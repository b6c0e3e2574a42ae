//! Gathering rows of several Arrow arrays into one, what arrow's `interleave` does, with
//! a faster path for string and binary columns: values of up to 16 bytes are copied as
//! one fixed 16-byte move into a buffer with room to spare, instead of one `memcpy`
//! call per value. The values of a Paimon table's string columns are mostly a few bytes
//! long, where the call costs more than the copy (`memmove` was the largest single
//! symbol of the write path's profile). Every other type goes through `interleave`.

use arrow_array::cast::AsArray;
use arrow_array::types::{BinaryType, ByteArrayType, Utf8Type};
use arrow_array::{Array, ArrayRef, GenericByteArray, RecordBatch};
use arrow_buffer::{Buffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType};
use std::sync::Arc;

/// Bytes copied at once for a short value.
const CHUNK: usize = 16;

/// Row `refs[i].1` of `arrays[refs[i].0]` for every `i`, as one array.
pub fn gather(arrays: &[&dyn Array], refs: &[(usize, usize)]) -> Result<ArrayRef, ArrowError> {
    match arrays.first().map(|a| a.data_type()) {
        Some(DataType::Utf8) => gather_bytes::<Utf8Type>(arrays, refs),
        Some(DataType::Binary) => gather_bytes::<BinaryType>(arrays, refs),
        _ => arrow_select::interleave::interleave(arrays, refs),
    }
}

/// [`gather`] for every column of batches of one schema.
pub fn gather_batch(batches: &[&RecordBatch], refs: &[(usize, usize)]) -> Result<RecordBatch, ArrowError> {
    let Some(first) = batches.first() else {
        return Err(ArrowError::InvalidArgumentError("gather from no batch".into()));
    };
    let columns = (0..first.num_columns())
        .map(|c| {
            let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
            gather(&arrays, refs)
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(first.schema(), columns)
}

fn gather_bytes<T: ByteArrayType<Offset = i32>>(
    arrays: &[&dyn Array],
    refs: &[(usize, usize)],
) -> Result<ArrayRef, ArrowError> {
    let typed: Vec<&GenericByteArray<T>> = arrays
        .iter()
        .map(|a| {
            a.as_bytes_opt::<T>().ok_or_else(|| {
                ArrowError::InvalidArgumentError(format!("gather of {} and {} arrays", T::DATA_TYPE, a.data_type()))
            })
        })
        .collect::<Result<_, _>>()?;
    let parts: Vec<(&[i32], &[u8])> = typed.iter().map(|a| (a.value_offsets(), a.value_data())).collect();
    let part = |a: usize| {
        parts
            .get(a)
            .copied()
            .ok_or_else(|| ArrowError::InvalidArgumentError(format!("gather from array {a} of {}", parts.len())))
    };
    // The values buffer is sized exactly (plus the room the last fixed move needs)
    // by a pass over the offsets: sized from an estimate, it grew by doubling past a
    // shortfall, and for the write buffer's long columns that doubling was the
    // largest allocation of a Silver batch (docs/benchmarks.md).
    let mut bytes = 0usize;
    for &(a, r) in refs {
        let (o, _) = part(a)?;
        if r + 1 >= o.len() {
            return Err(ArrowError::InvalidArgumentError(format!("gather of row {r} of {} rows", o.len() - 1)));
        }
        bytes += (o[r + 1] - o[r]) as usize;
    }
    i32::try_from(bytes).map_err(|_| ArrowError::OffsetOverflowError(bytes))?;
    let mut values: Vec<u8> = Vec::with_capacity(bytes + CHUNK);
    let mut offsets: Vec<i32> = Vec::with_capacity(refs.len() + 1);
    offsets.push(0);
    for &(a, r) in refs {
        let (o, data) = part(a)?;
        let (start, end) = (o[r] as usize, o[r + 1] as usize);
        let pos = values.len();
        match data.get(start..start + CHUNK).and_then(|c| <&[u8; CHUNK]>::try_from(c).ok()) {
            Some(chunk) if end - start <= CHUNK => {
                values.extend_from_slice(chunk);
                values.truncate(pos + end - start);
            }
            _ => values.extend_from_slice(&data[start..end]),
        }
        // Fits: the total was checked against i32 above.
        offsets.push(values.len() as i32);
    }
    let nulls = if typed.iter().any(|a| a.null_count() > 0) {
        let mut b = NullBufferBuilder::new(refs.len());
        for &(a, r) in refs {
            b.append(typed[a].is_valid(r));
        }
        b.finish()
    } else {
        None
    };
    let array = GenericByteArray::<T>::try_new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(values),
        nulls,
    )?;
    Ok(Arc::new(array))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow_array::{BinaryArray, Int64Array, StringArray};

    fn xorshift(s: &mut u64) -> u64 {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s
    }

    /// Agrees with arrow's `interleave` on strings and binaries of every length
    /// around the 16-byte chunk (including the last values of an array, where the
    /// fixed move would run past the source), nulls, sliced inputs and other types.
    #[test]
    fn agrees_with_interleave() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        for round in 0..200u32 {
            let arrays: Vec<StringArray> = (0..3)
                .map(|_| {
                    let n = (xorshift(&mut seed) % 40) as usize + 1;
                    (0..n)
                        .map(|_| {
                            let len = (xorshift(&mut seed) % 40) as usize;
                            (!xorshift(&mut seed).is_multiple_of(7)).then(|| "é".repeat(len / 2) + &"x".repeat(len % 2))
                        })
                        .collect()
                })
                .collect();
            let sliced: Vec<StringArray> = arrays
                .iter()
                .map(|a| if round.is_multiple_of(2) { a.clone() } else { a.slice(a.len() / 3, a.len() - a.len() / 3) })
                .collect();
            let refs: Vec<(usize, usize)> = (0..(xorshift(&mut seed) % 100) as usize)
                .map(|_| {
                    let a = (xorshift(&mut seed) % 3) as usize;
                    (a, (xorshift(&mut seed) % sliced[a].len() as u64) as usize)
                })
                .collect();
            let dyns: Vec<&dyn Array> = sliced.iter().map(|a| a as &dyn Array).collect();
            let want = arrow_select::interleave::interleave(&dyns, &refs).unwrap();
            let got = gather(&dyns, &refs).unwrap();
            assert_eq!(got.as_ref(), want.as_ref(), "strings, round {round}");

            let bins: Vec<BinaryArray> =
                sliced.iter().map(|a| a.iter().map(|v| v.map(str::as_bytes)).collect::<BinaryArray>()).collect();
            let dyns: Vec<&dyn Array> = bins.iter().map(|a| a as &dyn Array).collect();
            let want = arrow_select::interleave::interleave(&dyns, &refs).unwrap();
            assert_eq!(gather(&dyns, &refs).unwrap().as_ref(), want.as_ref(), "binary, round {round}");
        }
        let ints = [Int64Array::from(vec![1, 2, 3]), Int64Array::from(vec![Some(4), None])];
        let dyns: Vec<&dyn Array> = ints.iter().map(|a| a as &dyn Array).collect();
        let refs = [(1, 1), (0, 2), (1, 0)];
        assert_eq!(
            gather(&dyns, &refs).unwrap().as_ref(),
            &Int64Array::from(vec![None, Some(3), Some(4)]) as &dyn Array
        );
    }

    #[test]
    fn refuses_bad_positions_and_mixed_types() {
        let a = StringArray::from(vec!["a", "b"]);
        let b = BinaryArray::from(vec![b"a".as_ref()]);
        assert!(gather(&[&a], &[(0, 2)]).is_err());
        assert!(gather(&[&a], &[(1, 0)]).is_err());
        assert!(gather(&[&a, &b], &[(0, 0)]).is_err());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod speed {
    use super::*;
    use arrow_array::StringArray;
    use std::time::Instant;

    /// `gather` against `interleave` on the benchmark's shape: 1–10 digit strings,
    /// merged from 5 sorted runs (short stretches) and sorted from arrival order
    /// (random). Prints ns per value; run with `--ignored --nocapture` in release.
    #[test]
    #[ignore = "speed figures, not a test"]
    fn gather_speed() {
        let mut seed = 42u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let sources: Vec<StringArray> =
            (0..5).map(|_| (0..50_000).map(|_| Some((next() as u32 >> (next() % 28)).to_string())).collect()).collect();
        let dyns: Vec<&dyn Array> = sources.iter().map(|a| a as &dyn Array).collect();
        let mut pos = [0usize; 5];
        let merged: Vec<(usize, usize)> = (0..200_000)
            .map(|_| {
                let a = (next() % 5) as usize;
                pos[a] += 1;
                (a, pos[a] - 1)
            })
            .collect();
        let random: Vec<(usize, usize)> =
            (0..200_000).map(|_| ((next() % 5) as usize, (next() % 50_000) as usize)).collect();
        for (name, refs) in [("merge", &merged), ("random", &random)] {
            for round in 0..3 {
                let t = Instant::now();
                for _ in 0..20 {
                    std::hint::black_box(arrow_select::interleave::interleave(&dyns, refs).unwrap());
                }
                let a = t.elapsed().as_secs_f64() * 1e9 / (20.0 * refs.len() as f64);
                let t = Instant::now();
                for _ in 0..20 {
                    std::hint::black_box(gather(&dyns, refs).unwrap());
                }
                let b = t.elapsed().as_secs_f64() * 1e9 / (20.0 * refs.len() as f64);
                println!("{name} round {round}: interleave {a:.1} ns/value, gather {b:.1} ns/value");
            }
        }
    }
}
