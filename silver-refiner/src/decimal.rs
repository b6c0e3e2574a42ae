//! Exact decimal arithmetic on `(unscaled: i128, scale)` pairs.
//!
//! Silver decimals are Iceberg `decimal(p, s)` with `p ≤ 38`, so an `i128`
//! unscaled value always suffices. Every conversion here is exact: a value that
//! would lose a digit is refused, never rounded. The functions return a short
//! description of the problem; callers wrap it into a reject naming the column.

use base64::Engine as _;

/// The largest precision of an Iceberg decimal.
pub const MAX_PRECISION: u8 = 38;

/// `10^n` for `n ≤ 38`, `None` above.
pub fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// Whether `unscaled` has at most `precision` digits.
pub fn fits_precision(unscaled: i128, precision: u8) -> bool {
    match pow10(u32::from(precision)) {
        Some(limit) => unscaled.unsigned_abs() < limit.unsigned_abs(),
        // 10^39 does not fit an i128, but every i128 with ≤ 38 digits does.
        None => true,
    }
}

/// Parses decimal text: `[+-]digits[.digits][(e|E)[+-]digits]`, e.g. `12.30`,
/// `-0.5`, `1e-7`, `.5`. Keeps the written scale (`12.30` → `(1230, 2)`).
pub fn parse(text: &str) -> Result<(i128, i32), String> {
    let bad = || format!("`{text}` is not a decimal number");
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => {
            let exp: i32 = text[at + 1..].parse().map_err(|_| bad())?;
            (&text[..at], exp)
        }
        None => (text, 0),
    };
    let (negative, digits) = match mantissa.as_bytes().first() {
        Some(b'-') => (true, &mantissa[1..]),
        Some(b'+') => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(bad());
    }
    let mut unscaled: i128 = 0;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        if !b.is_ascii_digit() {
            return Err(bad());
        }
        unscaled = unscaled
            .checked_mul(10)
            .and_then(|u| u.checked_add(i128::from(b - b'0')))
            .ok_or_else(|| format!("`{text}` has more digits than a decimal can hold (38)"))?;
    }
    let frac_len = i32::try_from(frac_part.len()).map_err(|_| bad())?;
    let scale = frac_len.checked_sub(exponent).ok_or_else(bad)?;
    Ok((if negative { -unscaled } else { unscaled }, scale))
}

/// Reads a big-endian two's-complement integer (Kafka Connect `Decimal`,
/// Debezium `VariableScaleDecimal`). Longer than 16 bytes is fine as long as the
/// extra leading bytes are only sign extension.
pub fn from_be_bytes(bytes: &[u8]) -> Result<i128, String> {
    let Some(&first) = bytes.first() else {
        return Err("empty byte string is not a decimal".into());
    };
    let fill = if first & 0x80 != 0 { 0xff } else { 0x00 };
    let mut buf = [fill; 16];
    if bytes.len() > 16 {
        let (extra, rest) = bytes.split_at(bytes.len() - 16);
        let sign_ok = extra.iter().all(|&b| b == fill) && (rest[0] & 0x80 == fill & 0x80);
        if !sign_ok {
            return Err(format!("a {}-byte unscaled decimal does not fit 38 digits", bytes.len()));
        }
        buf.copy_from_slice(rest);
    } else {
        buf[16 - bytes.len()..].copy_from_slice(bytes);
    }
    Ok(i128::from_be_bytes(buf))
}

/// Decodes standard base64 (what Kafka Connect's JsonConverter writes for bytes).
pub fn base64_bytes(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| format!("`{text}` is not base64: {e}"))
}

/// Moves `unscaled` from scale `from` to scale `to` without losing a digit.
pub fn rescale(unscaled: i128, from: i32, to: u8) -> Result<i128, String> {
    let to_i = i32::from(to);
    if from == to_i {
        return Ok(unscaled);
    }
    if from < to_i {
        let factor = u32::try_from(to_i - from).ok().and_then(pow10);
        return factor
            .and_then(|f| unscaled.checked_mul(f))
            .ok_or_else(|| format!("{} does not fit 38 digits at scale {to}", render(unscaled, from)));
    }
    let Some(factor) = u32::try_from(from - to_i).ok().and_then(pow10) else {
        // More than 38 digits to drop: only zero survives.
        return if unscaled == 0 {
            Ok(0)
        } else {
            Err(format!("{} has more than {to} decimal places", render(unscaled, from)))
        };
    };
    if unscaled % factor != 0 {
        return Err(format!("{} has more than {to} decimal places", render(unscaled, from)));
    }
    Ok(unscaled / factor)
}

/// Exact text of an unscaled value at a scale (negative scales append zeros).
pub fn render(unscaled: i128, scale: i32) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale <= 0 {
        let zeros = if unscaled == 0 { 0 } else { scale.unsigned_abs() as usize };
        return format!("{sign}{digits}{}", "0".repeat(zeros));
    }
    let scale = scale as usize;
    if digits.len() > scale {
        let (i, f) = digits.split_at(digits.len() - scale);
        format!("{sign}{i}.{f}")
    } else {
        format!("{sign}0.{}{digits}", "0".repeat(scale - digits.len()))
    }
}

/// The shortest decimal text that reads back as `x` (Rust's `Display` for
/// floats: never an exponent). A double that came from a decimal with up to 15
/// significant digits prints as that decimal again.
pub fn from_f64(x: f64) -> Result<(i128, i32), String> {
    if !x.is_finite() {
        return Err(format!("{x} is not a decimal number"));
    }
    parse(&x.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_written_scale_and_exponents() {
        assert_eq!(parse("12.30"), Ok((1230, 2)));
        assert_eq!(parse("-0.5"), Ok((-5, 1)));
        assert_eq!(parse("+7"), Ok((7, 0)));
        assert_eq!(parse(".5"), Ok((5, 1)));
        assert_eq!(parse("1e-7"), Ok((1, 7)));
        assert_eq!(parse("12E3"), Ok((12, -3)));
        for bad in ["", "-", ".", "1.2.3", "12a", "1e", "0x10", " 1"] {
            assert!(parse(bad).is_err(), "{bad:?} must not parse");
        }
        assert!(parse(&"9".repeat(39)).is_err());
        assert_eq!(parse(&"9".repeat(38)).map(|(_, s)| s), Ok(0));
    }

    #[test]
    fn rescale_is_exact_or_refuses() {
        assert_eq!(rescale(123, 1, 3), Ok(12300));
        assert_eq!(rescale(12300, 3, 1), Ok(123));
        assert_eq!(rescale(12345, 3, 2), Err("12.345 has more than 2 decimal places".into()));
        assert_eq!(rescale(12, -2, 0), Ok(1200));
        assert_eq!(rescale(0, 60, 2), Ok(0));
        assert!(rescale(1, 60, 2).is_err());
        assert!(rescale(i128::MAX / 10, 0, 2).is_err());
    }

    #[test]
    fn precision_limits() {
        assert!(fits_precision(99_999, 5));
        assert!(!fits_precision(100_000, 5));
        assert!(!fits_precision(-100_000, 5));
        assert!(!fits_precision(i128::MAX, 38), "i128::MAX has 39 digits");
        assert!(fits_precision(10i128.pow(38) - 1, 38));
    }

    #[test]
    fn big_endian_twos_complement() {
        // "EtaH" is the decimal of Debezium's DBZ-147 test (scale 2, i.e. 12345.67):
        // the bytes are 0x12 0xd6 0x87 = 1234567.
        assert_eq!(from_be_bytes(&base64_bytes("EtaH").expect("base64")), Ok(1_234_567));
        assert_eq!(from_be_bytes(&[0xff]), Ok(-1));
        assert_eq!(from_be_bytes(&[0x00, 0x80]), Ok(128));
        assert_eq!(from_be_bytes(&[0x80]), Ok(-128));
        let mut long = vec![0xff; 4];
        long.extend_from_slice(&(-5i128).to_be_bytes());
        assert_eq!(from_be_bytes(&long), Ok(-5));
        let mut wrong = vec![0x00; 4];
        wrong.extend_from_slice(&(-5i128).to_be_bytes());
        assert!(from_be_bytes(&wrong).is_err());
        assert!(from_be_bytes(&[]).is_err());
    }

    #[test]
    fn renders_exact_text() {
        assert_eq!(render(1230, 2), "12.30");
        assert_eq!(render(-5, 3), "-0.005");
        assert_eq!(render(12, -2), "1200");
        assert_eq!(render(0, 2), "0.00");
    }

    #[test]
    fn doubles_read_as_their_shortest_text() {
        assert_eq!(from_f64(12.3), Ok((123, 1)));
        assert_eq!(from_f64(0.1 + 0.2), Ok((30000000000000004, 17)));
        assert_eq!(from_f64(1e-7), Ok((1, 7)));
        assert!(from_f64(f64::NAN).is_err());
    }

    proptest! {
        /// Text and Connect bytes both carry every value of every scale exactly.
        #[test]
        fn text_and_bytes_round_trip(unscaled in any::<i64>().prop_map(i128::from), mul in 0i128..1_000_000_000_000, scale in 0i32..30) {
            let unscaled = unscaled.saturating_mul(mul.max(1));
            prop_assert_eq!(parse(&render(unscaled, scale)), Ok((unscaled, scale)));
            // Minimal two's-complement bytes, as Java's BigInteger.toByteArray() writes them.
            let full = unscaled.to_be_bytes();
            let skip = full.windows(2).take_while(|w| (w[0] == 0x00 && w[1] & 0x80 == 0) || (w[0] == 0xff && w[1] & 0x80 != 0)).count();
            let text = base64::engine::general_purpose::STANDARD.encode(&full[skip..]);
            prop_assert_eq!(from_be_bytes(&base64_bytes(&text).expect("base64")), Ok(unscaled));
        }

        /// Rescaling up then down is the identity; down succeeds only when no digit is lost.
        #[test]
        fn rescale_never_rounds(unscaled in any::<i64>().prop_map(i128::from), from in 0u8..10, to in 0u8..10) {
            match rescale(unscaled, i32::from(from), to) {
                Ok(v) => prop_assert_eq!(rescale(v, i32::from(to), from), Ok(unscaled)),
                Err(_) => {
                    prop_assert!(to < from);
                    prop_assert!(unscaled % 10i128.pow(u32::from(from - to)) != 0);
                }
            }
        }
    }
}
