//! Paimon's `BinaryRow` encoding (used for `_MIN_KEY`, `_MAX_KEY`, stats, `_PARTITION`)
//! and the bucket function `abs(murmur(BinaryRow(bucket key)) % numBuckets)`.
//!
//! Layout: an 8-byte aligned header+null bitset (first byte = row kind, bit `i + 8`
//! marks field `i` null), one 8-byte little-endian slot per field, then a variable part.
//! Strings/bytes up to 7 bytes live inline (slot byte 7 = `0x80 | len`); longer ones are
//! word-padded in the variable part and the slot holds `offset << 32 | len`.
//! `TIMESTAMP(p > 3)` stores millis in the variable part and `offset << 32 | nanoOfMilli`.
//! `DECIMAL(p <= 18)` stores the unscaled value as a long in its slot; a wider one
//! reserves 16 bytes in the variable part for its unscaled bytes (Java's
//! `BigInteger.toByteArray`) and the slot holds `offset << 32 | len`. Those two reserve
//! their variable bytes even when null (offset kept, length 0), as Paimon's writer does.
//! Serialized (manifest) form prefixes the row with its arity as a big-endian i32.

use crate::decimal::{Decimal, MAX_COMPACT_PRECISION};
use crate::error::{Error, Result};
use crate::row::Datum;
use crate::spec::types::{DataType, TypeRoot};

const HEADER_BITS: usize = 8;

fn null_bits_width(arity: usize) -> usize {
    ((arity + 63 + HEADER_BITS) / 64) * 8
}

fn round_to_word(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Encodes `values` (typed by `types`) as BinaryRow bytes, without the arity prefix.
pub fn encode(types: &[DataType], values: &[&Datum]) -> Vec<u8> {
    let arity = types.len();
    let nb = null_bits_width(arity);
    let fixed = nb + arity * 8;
    let mut out = vec![0u8; fixed];
    let mut var: Vec<u8> = Vec::new();
    for (i, (ty, v)) in types.iter().zip(values.iter()).enumerate() {
        let slot = nb + i * 8;
        let put = |out: &mut Vec<u8>, bytes: &[u8]| out[slot..slot + bytes.len()].copy_from_slice(bytes);
        match (ty.root, v) {
            (_, Datum::Null) => {
                let bit = i + HEADER_BITS;
                out[bit / 8] |= 1 << (bit % 8);
                // Non-compact timestamps and decimals keep their variable bytes.
                let reserved = match ty.root {
                    TypeRoot::Timestamp { precision, .. } if precision > 3 => 8,
                    TypeRoot::Decimal(p, _) if p > MAX_COMPACT_PRECISION => 16,
                    _ => 0,
                };
                if reserved > 0 {
                    let offset = (fixed + var.len()) as u64;
                    var.resize(var.len() + reserved, 0);
                    put(&mut out, &(offset << 32).to_le_bytes());
                }
            }
            (TypeRoot::Decimal(p, _), Datum::Decimal(d)) if p <= MAX_COMPACT_PRECISION => {
                put(&mut out, &(d.unscaled as i64).to_le_bytes())
            }
            (_, Datum::Decimal(d)) => {
                let bytes = d.to_unscaled_bytes();
                let offset = (fixed + var.len()) as u64;
                let start = var.len();
                var.resize(start + 16, 0);
                var[start..start + bytes.len()].copy_from_slice(&bytes);
                put(&mut out, &((offset << 32) | bytes.len() as u64).to_le_bytes());
            }
            (_, Datum::Bool(b)) => put(&mut out, &[u8::from(*b)]),
            (TypeRoot::TinyInt, Datum::Int(x)) => put(&mut out, &(*x as i8).to_le_bytes()),
            (TypeRoot::SmallInt, Datum::Int(x)) => put(&mut out, &(*x as i16).to_le_bytes()),
            (_, Datum::Int(x)) => put(&mut out, &x.to_le_bytes()),
            (TypeRoot::Timestamp { precision, .. }, Datum::Long(x)) if precision > 3 => {
                let millis = x.div_euclid(1000);
                let nano_of_milli = (x.rem_euclid(1000) * 1000) as u64;
                let offset = (fixed + var.len()) as u64;
                var.extend_from_slice(&millis.to_le_bytes());
                put(&mut out, &((offset << 32) | nano_of_milli).to_le_bytes());
            }
            (_, Datum::Long(x)) => put(&mut out, &x.to_le_bytes()),
            (_, Datum::Float(x)) => put(&mut out, &x.to_le_bytes()),
            (_, Datum::Double(x)) => put(&mut out, &x.to_le_bytes()),
            (_, Datum::String(s)) => put_var(&mut out, &mut var, slot, fixed, s.as_bytes()),
            (_, Datum::Bytes(b)) => put_var(&mut out, &mut var, slot, fixed, b),
        }
    }
    out.extend_from_slice(&var);
    out
}

fn put_var(out: &mut [u8], var: &mut Vec<u8>, slot: usize, fixed: usize, bytes: &[u8]) {
    let len = bytes.len();
    if len <= 7 {
        out[slot..slot + len].copy_from_slice(bytes);
        out[slot + 7] = 0x80 | len as u8;
    } else {
        let offset = (fixed + var.len()) as u64;
        var.extend_from_slice(bytes);
        var.resize(var.len() + round_to_word(len) - len, 0);
        out[slot..slot + 8].copy_from_slice(&((offset << 32) | len as u64).to_le_bytes());
    }
}

/// Serialized form used in manifests: big-endian arity, then the BinaryRow bytes.
pub fn serialize(types: &[DataType], values: &[&Datum]) -> Vec<u8> {
    let mut out = (types.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&encode(types, values));
    out
}

/// Serialized form of the empty row (arity 0), e.g. the partition of an unpartitioned table.
pub fn serialize_empty() -> Vec<u8> {
    serialize(&[], &[])
}

/// Decodes the serialized form (with arity prefix). An empty input decodes as an empty row.
pub fn deserialize(types: &[DataType], bytes: &[u8]) -> Result<Vec<Datum>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let bad = |m: &str| Error::corrupt("<binary row>", m.to_string());
    if bytes.len() < 4 {
        return Err(bad("row shorter than its arity prefix"));
    }
    let arity = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if arity == 0 {
        return Ok(Vec::new());
    }
    if arity != types.len() {
        return Err(bad(&format!("row arity {arity} but {} types", types.len())));
    }
    decode(types, &bytes[4..])
}

/// Decodes BinaryRow bytes without the arity prefix.
pub fn decode(types: &[DataType], row: &[u8]) -> Result<Vec<Datum>> {
    let bad = |m: String| Error::corrupt("<binary row>", m);
    let nb = null_bits_width(types.len());
    if row.len() < nb + types.len() * 8 {
        return Err(bad(format!("row of {} bytes too short", row.len())));
    }
    let mut out = Vec::with_capacity(types.len());
    for (i, ty) in types.iter().enumerate() {
        let bit = i + HEADER_BITS;
        if row[bit / 8] & (1 << (bit % 8)) != 0 {
            out.push(Datum::Null);
            continue;
        }
        let slot = nb + i * 8;
        let s = &row[slot..slot + 8];
        let word = u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
        let var = |word: u64| -> Result<Vec<u8>> {
            if s[7] & 0x80 != 0 {
                let len = (s[7] & 0x7f) as usize;
                Ok(s[..len.min(7)].to_vec())
            } else {
                let off = (word >> 32) as usize;
                let len = (word & 0xffff_ffff) as usize;
                row.get(off..off + len)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| bad(format!("variable field {i} out of bounds")))
            }
        };
        let d = match ty.root {
            TypeRoot::Boolean => Datum::Bool(s[0] != 0),
            TypeRoot::TinyInt => Datum::Int(s[0] as i8 as i32),
            TypeRoot::SmallInt => Datum::Int(i16::from_le_bytes([s[0], s[1]]) as i32),
            TypeRoot::Int | TypeRoot::Date => Datum::Int(i32::from_le_bytes([s[0], s[1], s[2], s[3]])),
            TypeRoot::BigInt => Datum::Long(word as i64),
            TypeRoot::Timestamp { precision, .. } if precision <= 3 => Datum::Long(word as i64),
            TypeRoot::Timestamp { .. } => {
                let off = (word >> 32) as usize;
                let nano = (word & 0xffff_ffff) as i64;
                let m = row.get(off..off + 8).ok_or_else(|| bad(format!("timestamp field {i} out of bounds")))?;
                let millis = i64::from_le_bytes([m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]]);
                Datum::Long(millis * 1000 + nano / 1000)
            }
            TypeRoot::Float => Datum::Float(f32::from_le_bytes([s[0], s[1], s[2], s[3]])),
            TypeRoot::Double => Datum::Double(f64::from_bits(word)),
            TypeRoot::Varchar(_) | TypeRoot::Char(_) => {
                Datum::String(String::from_utf8(var(word)?).map_err(|_| bad(format!("field {i} not UTF-8")))?)
            }
            TypeRoot::Varbinary(_) => Datum::Bytes(var(word)?),
            TypeRoot::Decimal(p, sc) if p <= MAX_COMPACT_PRECISION => Datum::Decimal(
                Decimal::new(i128::from(word as i64), p, sc)
                    .ok_or_else(|| bad(format!("decimal field {i} too wide")))?,
            ),
            TypeRoot::Decimal(p, sc) => {
                let off = (word >> 32) as usize;
                let len = (word & 0xffff_ffff) as usize;
                let bytes = row.get(off..off + len).ok_or_else(|| bad(format!("decimal field {i} out of bounds")))?;
                Datum::Decimal(
                    Decimal::from_unscaled_bytes(bytes, p, sc).ok_or_else(|| bad(format!("bad decimal field {i}")))?,
                )
            }
        };
        out.push(d);
    }
    Ok(out)
}

/// `MurmurHashUtils.hashBytesByWords` with Paimon's seed 42 (input length is a multiple of 4).
pub fn murmur_hash_words(data: &[u8]) -> i32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h1: u32 = 42;
    for chunk in data.chunks_exact(4) {
        let mut k1 = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k1 = k1.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    h1 ^= data.len() as u32;
    h1 ^= h1 >> 16;
    h1 = h1.wrapping_mul(0x85eb_ca6b);
    h1 ^= h1 >> 13;
    h1 = h1.wrapping_mul(0xc2b2_ae35);
    h1 ^= h1 >> 16;
    h1 as i32
}

/// `BinaryRow.hashCode()` of the bucket-key row.
pub fn hash_code(types: &[DataType], values: &[&Datum]) -> i32 {
    murmur_hash_words(&encode(types, values))
}

/// Paimon's fixed-bucket function: `Math.abs(hashCode % numBuckets)`.
pub fn bucket(types: &[DataType], values: &[&Datum], num_buckets: i32) -> i32 {
    (hash_code(types, values) % num_buckets).abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(t: &str) -> DataType {
        DataType::parse(t).expect("type")
    }

    #[test]
    fn matches_bytes_written_by_pypaimon() {
        // `_MIN_KEY` of a BIGINT key 1 as written by pypaimon 2.1.0.
        let bytes = serialize(&[ty("BIGINT NOT NULL")], &[&Datum::Long(1)]);
        assert_eq!(bytes, vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(serialize_empty(), vec![0u8; 12]);
    }

    #[test]
    fn bucket_matches_pypaimon_assignment() {
        // pypaimon 2.1.0 put ids 1,2,4,5 in bucket 0 and ids 0,3 in bucket 1 (bucket = 2).
        let t = [ty("BIGINT NOT NULL")];
        for (id, expected) in [(0, 1), (1, 0), (2, 0), (3, 1), (4, 0), (5, 0)] {
            assert_eq!(bucket(&t, &[&Datum::Long(id)], 2), expected, "id {id}");
        }
    }

    #[test]
    fn hash_matches_pypaimon_vectors() {
        // (types, values, hashCode, bucket of 7) computed by pypaimon 2.1.0's extractor.
        let s = Datum::String;
        let cases: Vec<(Vec<DataType>, Vec<Datum>, i32, i32)> = vec![
            (vec![ty("STRING")], vec![s("hello".into())], 243_722_546, 4),
            (vec![ty("STRING")], vec![s("a much longer string key".into())], -990_102_936, 4),
            (vec![ty("INT"), ty("STRING")], vec![Datum::Int(42), s("x".into())], 1_064_805_967, 1),
            (vec![ty("BIGINT"), ty("STRING")], vec![Datum::Long(-9), Datum::Null], 1_214_372_186, 6),
            (vec![ty("BIGINT")], vec![Datum::Long(123_456_789_012)], -290_760_731, 2),
        ];
        for (types, values, hash, b) in cases {
            let refs: Vec<&Datum> = values.iter().collect();
            assert_eq!(hash_code(&types, &refs), hash, "{values:?}");
            assert_eq!(bucket(&types, &refs, 7), b, "{values:?}");
        }
    }

    #[test]
    fn decimal_keys_match_pypaimon() {
        // (type, value, serialized row, hashCode, bucket of 7) from pypaimon 2.1.0's
        // GenericRowSerializer and bucket extractor.
        let cases = [
            ("DECIMAL(10, 2)", "12.50", "000000010000000000000000e204000000000000", 1_143_955_508, 3),
            ("DECIMAL(10, 2)", "-0.01", "000000010000000000000000ffffffffffffffff", -821_098_432, 0),
            ("DECIMAL(18, 0)", "999999999999999999", "000000010000000000000000ffff63a7b3b6e00d", 892_685_092, 5),
            (
                "DECIMAL(38, 4)",
                "12345678901234567890.1234",
                "0000000100000000000000000a000000100000001a249b1f10a06c96aff2000000000000",
                403_623_896,
                4,
            ),
            (
                "DECIMAL(38, 4)",
                "-1.0000",
                "0000000100000000000000000200000010000000d8f00000000000000000000000000000",
                1_045_104_933,
                5,
            ),
            (
                "DECIMAL(20, 0)",
                "0",
                "000000010000000000000000010000001000000000000000000000000000000000000000",
                728_486_185,
                0,
            ),
        ];
        for (t, v, hex, hash, b) in cases {
            let types = [ty(&format!("{t} NOT NULL"))];
            let TypeRoot::Decimal(p, sc) = types[0].root else { panic!("{t}") };
            let value = Datum::Decimal(Decimal::parse(v, p, sc).expect("fits"));
            let bytes = serialize(&types, &[&value]);
            let got: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(got, hex, "{t} {v}");
            assert_eq!(hash_code(&types, &[&value]), hash, "{t} {v}");
            assert_eq!(bucket(&types, &[&value], 7), b, "{t} {v}");
            assert_eq!(deserialize(&types, &bytes).expect("decodes"), vec![value]);
        }
        // A null wide decimal keeps its 16 variable bytes, as Paimon's Java writer does.
        let types = [ty("DECIMAL(20, 2)")];
        let bytes = serialize(&types, &[&Datum::Null]);
        assert_eq!(bytes.len(), 4 + 16 + 16);
        assert_eq!(deserialize(&types, &bytes).expect("decodes"), vec![Datum::Null]);
    }

    #[test]
    fn round_trips_mixed_rows() {
        let types = [
            ty("INT"),
            ty("STRING"),
            ty("STRING"),
            ty("DOUBLE"),
            ty("TIMESTAMP(6)"),
            ty("BYTES"),
            ty("SMALLINT"),
            ty("BOOLEAN"),
        ];
        let values = vec![
            Datum::Int(-7),
            Datum::String("short".into()),
            Datum::String("a rather longer string".into()),
            Datum::Null,
            Datum::Long(-1_234_567),
            Datum::Bytes(vec![1, 2, 3, 4, 5, 6, 7, 8, 9]),
            Datum::Int(-300),
            Datum::Bool(true),
        ];
        let refs: Vec<&Datum> = values.iter().collect();
        let bytes = serialize(&types, &refs);
        assert_eq!((bytes.len() - 4) % 8, 0);
        assert_eq!(deserialize(&types, &bytes).expect("decodes"), values);
    }
}
