//! Exact decimals: a `DECIMAL(p, s)` value as its unscaled integer (`p` <= 38 digits fit
//! an `i128`), with the precision and scale of its column.

use std::cmp::Ordering;
use std::fmt;

/// Most digits a `DECIMAL` holds (Paimon's and Arrow's `Decimal128` limit).
pub const MAX_PRECISION: u8 = 38;

/// Most digits a compact decimal holds: Paimon stores those as a `long` (in `BinaryRow`
/// and as Parquet INT32/INT64), the rest as the bytes of their unscaled value.
pub const MAX_COMPACT_PRECISION: u8 = 18;

/// A decimal value: `unscaled × 10^-scale`, with at most `precision` digits. Equality
/// and order are numeric: `1.50` as DECIMAL(10, 2) equals `1.5` as DECIMAL(38, 1).
#[derive(Debug, Clone, Copy)]
pub struct Decimal {
    pub unscaled: i128,
    pub precision: u8,
    pub scale: u8,
}

fn pow10(n: u8) -> u128 {
    10u128.pow(u32::from(n))
}

impl Decimal {
    /// `unscaled` as a `DECIMAL(precision, scale)`, if it has at most `precision` digits.
    pub fn new(unscaled: i128, precision: u8, scale: u8) -> Option<Decimal> {
        (precision <= MAX_PRECISION && scale <= precision && unscaled.unsigned_abs() < pow10(precision))
            .then_some(Decimal { unscaled, precision, scale })
    }

    /// Parses decimal text (`-12.5`, `0.010`, `1.5e3`) exactly into `DECIMAL(precision,
    /// scale)`. Digits that the scale cannot hold (other than trailing zeros) and values
    /// with more than `precision` digits are errors: nothing is rounded.
    pub fn parse(text: &str, precision: u8, scale: u8) -> Result<Decimal, String> {
        let t = text.trim();
        let bad = || format!("`{text}` is not a decimal number");
        let (negative, t) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let (mantissa, exp) = match t.find(['e', 'E']) {
            Some(i) => (&t[..i], t[i + 1..].parse::<i32>().map_err(|_| bad())?),
            None => (t, 0),
        };
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int_part.is_empty() && frac_part.is_empty()
            || !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let mut digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).map(|b| b - b'0').collect();
        // digits × 10^-(frac_len - exp); bring it to 10^-scale.
        let shift = i64::from(scale) - (frac_part.len() as i64 - i64::from(exp));
        if shift >= 0 {
            if shift > 2 * i64::from(MAX_PRECISION) {
                return Err(format!("`{text}` does not fit DECIMAL({precision}, {scale})"));
            }
            digits.extend(std::iter::repeat_n(0, shift as usize));
        } else {
            let cut = usize::try_from(-shift).unwrap_or(usize::MAX).min(digits.len());
            if digits[digits.len() - cut..].iter().any(|&d| d != 0) {
                return Err(format!("`{text}` has more than {scale} fractional digits"));
            }
            digits.truncate(digits.len() - cut);
        }
        let first = digits.iter().position(|&d| d != 0).unwrap_or(digits.len());
        let significant = &digits[first..];
        if significant.len() > usize::from(precision) {
            return Err(format!("`{text}` does not fit DECIMAL({precision}, {scale})"));
        }
        let magnitude = significant.iter().fold(0i128, |acc, &d| acc * 10 + i128::from(d));
        let unscaled = if negative { -magnitude } else { magnitude };
        Decimal::new(unscaled, precision, scale).ok_or_else(|| format!("DECIMAL({precision}, {scale}) is not valid"))
    }

    /// The unscaled value's minimal big-endian two's-complement bytes (Java's
    /// `BigInteger.toByteArray`, what Paimon stores for a non-compact decimal).
    pub fn to_unscaled_bytes(&self) -> Vec<u8> {
        let bytes = self.unscaled.to_be_bytes();
        let sign = if self.unscaled < 0 { 0xff } else { 0 };
        // Drop leading sign bytes while the next byte still carries the sign bit.
        let mut start = 0;
        while start < 15 && bytes[start] == sign && (bytes[start + 1] & 0x80) == (sign & 0x80) {
            start += 1;
        }
        bytes[start..].to_vec()
    }

    /// The inverse of [`Decimal::to_unscaled_bytes`].
    pub fn from_unscaled_bytes(bytes: &[u8], precision: u8, scale: u8) -> Option<Decimal> {
        if bytes.is_empty() || bytes.len() > 16 {
            return None;
        }
        let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
        let mut full = [fill; 16];
        full[16 - bytes.len()..].copy_from_slice(bytes);
        Decimal::new(i128::from_be_bytes(full), precision, scale)
    }

    /// `self + other` (or `-`), `None` when the result has more digits than the
    /// precision (Paimon's decimal sum then yields null).
    pub fn checked_add(self, other: Decimal, negate: bool) -> Option<Decimal> {
        let other = other.rescale(self.scale)?;
        let sum = if negate { self.unscaled.checked_sub(other) } else { self.unscaled.checked_add(other) };
        Decimal::new(sum?, self.precision, self.scale)
    }

    /// The unscaled value at `scale` (`None` when digits would be lost or it overflows).
    fn rescale(&self, scale: u8) -> Option<i128> {
        match scale.cmp(&self.scale) {
            Ordering::Equal => Some(self.unscaled),
            Ordering::Greater => self.unscaled.checked_mul(i128::try_from(pow10(scale - self.scale)).ok()?),
            Ordering::Less => {
                let div = i128::try_from(pow10(self.scale - scale)).ok()?;
                (self.unscaled % div == 0).then_some(self.unscaled / div)
            }
        }
    }
}

/// Numeric order, also across scales (values of one column share one).
impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        if self.scale == other.scale {
            return self.unscaled.cmp(&other.unscaled);
        }
        // Integer parts first (floored), then the fractions at the finer scale: each
        // fraction is below 10^38 there, so nothing overflows.
        let finer = self.scale.max(other.scale);
        let split = |d: &Decimal| {
            let unit = pow10(d.scale) as i128;
            let frac = d.unscaled.rem_euclid(unit) * (pow10(finer - d.scale) as i128);
            (d.unscaled.div_euclid(unit), frac)
        };
        split(self).cmp(&split(other))
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Decimal {}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Plain notation with exactly `scale` fractional digits: `-12.50`.
impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.unscaled.unsigned_abs().to_string();
        let scale = usize::from(self.scale);
        let sign = if self.unscaled < 0 { "-" } else { "" };
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str, p: u8, s: u8) -> Result<String, String> {
        Decimal::parse(text, p, s).map(|d| d.to_string())
    }

    #[test]
    fn parses_exactly_or_refuses() {
        assert_eq!(d("12.5", 10, 2).as_deref(), Ok("12.50"));
        assert_eq!(d("-0.01", 10, 2).as_deref(), Ok("-0.01"));
        assert_eq!(d("+7", 3, 0).as_deref(), Ok("7"));
        assert_eq!(d("1.5e3", 10, 2).as_deref(), Ok("1500.00"));
        assert_eq!(d("1250E-3", 10, 2).as_deref(), Ok("1.25"));
        assert_eq!(d("1.2300", 10, 2).as_deref(), Ok("1.23"), "trailing zeros are not digits lost");
        assert_eq!(d(".5", 3, 1).as_deref(), Ok("0.5"));
        assert!(d("1.234", 10, 2).expect_err("refused").contains("fractional digits"));
        assert!(d("1000", 5, 2).expect_err("refused").contains("does not fit"));
        assert_eq!(d("999.99", 5, 2).as_deref(), Ok("999.99"));
        for bad in ["", "-", ".", "1.2.3", "abc", "1e", "0x10", "1,5"] {
            assert!(d(bad, 10, 2).is_err(), "{bad:?}");
        }
        let max = "9".repeat(38);
        assert_eq!(d(&max, 38, 0).as_deref(), Ok(max.as_str()));
        assert!(d(&format!("{max}9"), 38, 0).is_err());
    }

    #[test]
    fn unscaled_bytes_are_javas_big_integer_bytes() {
        // BigInteger.valueOf(v).toByteArray() for these values.
        for (v, bytes) in [
            (0i128, vec![0u8]),
            (1, vec![1]),
            (127, vec![0x7f]),
            (128, vec![0x00, 0x80]),
            (-1, vec![0xff]),
            (-128, vec![0x80]),
            (-129, vec![0xff, 0x7f]),
            (65535, vec![0x00, 0xff, 0xff]),
        ] {
            let dec = Decimal::new(v, 38, 0).unwrap_or_else(|| panic!("{v} fits"));
            assert_eq!(dec.to_unscaled_bytes(), bytes, "{v}");
            assert_eq!(Decimal::from_unscaled_bytes(&bytes, 38, 0), Some(dec));
        }
        let big = Decimal::parse(&"9".repeat(38), 38, 0).expect("fits");
        assert_eq!(Decimal::from_unscaled_bytes(&big.to_unscaled_bytes(), 38, 0), Some(big));
    }

    #[test]
    fn sums_within_the_precision_and_orders_numerically() {
        let a = Decimal::parse("999.98", 5, 2).expect("fits");
        let b = Decimal::parse("0.01", 5, 2).expect("fits");
        assert_eq!(a.checked_add(b, false).map(|d| d.to_string()).as_deref(), Some("999.99"));
        assert_eq!(a.checked_add(a, false), None, "more digits than DECIMAL(5, 2) holds");
        assert_eq!(b.checked_add(a, true).map(|d| d.to_string()).as_deref(), Some("-999.97"));
        assert!(Decimal::parse("-1", 5, 2).expect("fits") < b);
        assert!(Decimal::parse("1.5", 5, 1).expect("fits") > Decimal::parse("1.49", 5, 2).expect("fits"));
        assert_eq!(Decimal::parse("1.5", 38, 1).expect("fits"), Decimal::parse("1.50", 10, 2).expect("fits"));
        // Across scales, where rescaling either to the other's scale would overflow.
        let five = Decimal::parse("5", 38, 0).expect("fits");
        let under_one = Decimal::parse(&format!("0.{}", "9".repeat(38)), 38, 38).expect("fits");
        assert_eq!(five.cmp(&under_one), Ordering::Greater);
        assert_eq!(under_one.cmp(&five), Ordering::Less);
        assert!(Decimal::parse("-0.5", 38, 1).expect("fits") < Decimal::parse("-0.49", 38, 2).expect("fits"));
    }
}
