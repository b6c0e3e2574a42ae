//! The fast path of envelope decoding: a validating JSON scanner that reads
//! the few fields Bronze keeps straight from the value's bytes, with no
//! allocation and no intermediate tree.
//!
//! It accepts a strict subset of what serde_json accepts and answers `None`
//! for everything else: malformed JSON, escapes inside a key or inside a
//! string Bronze extracts, numbers that are not plain `i64` where one is
//! expected, nesting deeper than [`MAX_DEPTH`]. The caller then decodes the
//! same value with serde_json, which either succeeds the slow way or gives the
//! exact error message. So a value decodes to the same fields whichever path
//! reads it; `tests::agrees_with_serde` checks that on real and mutated
//! events.

use std::borrow::Cow;

/// Deeper values go to serde_json (whose own limit is 128).
const MAX_DEPTH: u32 = 100;

pub(super) struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

/// JSON whitespace.
static WS: [bool; 256] = {
    let mut t = [false; 256];
    t[b' ' as usize] = true;
    t[b'\t' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t
};

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Marks (high bit) the bytes of `w` that are `"`, `\` or below 0x20. The
/// lowest mark is exact (higher ones may be false after a true one).
#[inline]
fn specials(w: u64) -> u64 {
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let quote = zero(w ^ (LO * b'"' as u64));
    let backslash = zero(w ^ (LO * b'\\' as u64));
    let control = w.wrapping_sub(LO * 0x20) & !w & HI;
    quote | backslash | control
}

impl<'a> Scanner<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Self { text, b: text.as_bytes(), i: 0 }
    }

    /// True once only whitespace is left.
    fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if !WS[c as usize] {
                break;
            }
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// A string starting at its opening quote: its raw contents and whether
    /// they contain escapes. Escapes are validated, control characters are
    /// refused (as serde_json does).
    fn string(&mut self) -> Option<(&'a str, bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            // Eight bytes at a time up to the next special byte.
            while let Some(chunk) = self.b.get(self.i..self.i + 8) {
                let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
                let m = specials(w);
                if m != 0 {
                    self.i += (m.trailing_zeros() / 8) as usize;
                    break;
                }
                self.i += 8;
            }
            let c = *self.b.get(self.i)?;
            match c {
                b'"' => {
                    let s = self.text.get(start..self.i)?;
                    self.i += 1;
                    return Some((s, escaped));
                }
                b'\\' => {
                    escaped = true;
                    self.i += 1;
                    match *self.b.get(self.i)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            let hex = self.b.get(self.i + 1..self.i + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 5;
                        }
                        _ => return None,
                    }
                }
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
    }

    /// An object key followed by its colon; `None` if it has escapes.
    fn key(&mut self) -> Option<&'a str> {
        self.ws();
        let (k, escaped) = self.string()?;
        if escaped {
            return None;
        }
        self.ws();
        self.eat(b':')?;
        Some(k)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    /// The sign and integer part of a number (`-?(0|[1-9][0-9]*)`).
    fn integer(&mut self) -> Option<()> {
        if self.peek()? == b'-' {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        Some(())
    }

    /// A number by the JSON grammar.
    fn number(&mut self) -> Option<()> {
        self.integer()?;
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// Skips one value of any kind, validating it; iterative, so deep
    /// nesting cannot overflow the stack.
    pub(super) fn skip(&mut self) -> Option<()> {
        // Bit d of `objects`: the container at depth d+1 is an object.
        let mut objects: u128 = 0;
        let mut depth = 0u32;
        loop {
            // A value is expected here.
            self.ws();
            match self.peek()? {
                open @ (b'{' | b'[') => {
                    self.i += 1;
                    self.ws();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek()? == close {
                        self.i += 1;
                    } else {
                        depth += 1;
                        if depth > MAX_DEPTH {
                            return None;
                        }
                        objects = (objects << 1) | u128::from(open == b'{');
                        if open == b'{' {
                            self.key()?;
                        }
                        continue;
                    }
                }
                b'"' => {
                    self.string()?;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return None,
            }
            // A value ended: close containers until the next value starts.
            loop {
                if depth == 0 {
                    return Some(());
                }
                self.ws();
                let c = self.peek()?;
                self.i += 1;
                let in_object = objects & 1 == 1;
                match (c, in_object) {
                    (b',', true) => {
                        self.key()?;
                        break;
                    }
                    (b',', false) => break,
                    (b'}', true) | (b']', false) => {
                        depth -= 1;
                        objects >>= 1;
                    }
                    _ => return None,
                }
            }
        }
    }

    /// The text of the next value (after whitespace), validated.
    fn raw(&mut self) -> Option<&'a str> {
        self.ws();
        let start = self.i;
        self.skip()?;
        self.text.get(start..self.i)
    }

    /// `null`, consumed, or `false` with nothing consumed.
    fn null(&mut self) -> bool {
        self.ws();
        self.peek() == Some(b'n') && self.literal(b"null").is_some()
    }

    /// The members of an object: `field` is called with each key and must
    /// consume its value.
    pub(super) fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let k = self.key()?;
            field(self, k)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// A field the scanner can read into: what serde_json would produce for the
/// same JSON, or `None` where serde_json would not (or the scanner will not
/// decide).
pub(super) trait Scan<'a>: Sized {
    fn scan(s: &mut Scanner<'a>) -> Option<Self>;
}

impl<'a, T: Scan<'a>> Scan<'a> for Option<T> {
    fn scan(s: &mut Scanner<'a>) -> Option<Self> {
        if s.null() { Some(None) } else { T::scan(s).map(Some) }
    }
}

impl<'a> Scan<'a> for Cow<'a, str> {
    fn scan(s: &mut Scanner<'a>) -> Option<Self> {
        s.ws();
        match s.string()? {
            (v, false) => Some(Cow::Borrowed(v)),
            (_, true) => None,
        }
    }
}

impl<'a> Scan<'a> for i64 {
    fn scan(s: &mut Scanner<'a>) -> Option<Self> {
        s.ws();
        let start = s.i;
        s.integer()?;
        if matches!(s.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        s.text.get(start..s.i)?.parse().ok()
    }
}

impl<'a> Scan<'a> for serde::de::IgnoredAny {
    fn scan(s: &mut Scanner<'a>) -> Option<Self> {
        s.skip().map(|()| serde::de::IgnoredAny)
    }
}

/// A value kept as its JSON text (serde_json's `RawValue`, borrowed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Raw<'a>(pub &'a str);

impl<'a> Scan<'a> for Raw<'a> {
    fn scan(s: &mut Scanner<'a>) -> Option<Self> {
        s.raw().map(Raw)
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Raw<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'de serde_json::value::RawValue>::deserialize(d).map(|r| Raw(r.get()))
    }
}

/// `text` read whole as one `T` (nothing but whitespace after it), as
/// `serde_json::from_str` would; `None` means "ask serde_json".
pub(super) fn parse<'a, T: Scan<'a>>(text: &'a str) -> Option<T> {
    let mut s = Scanner::new(text);
    let v = T::scan(&mut s)?;
    s.at_end().then_some(v)
}

/// The members of the JSON object `text` (nothing but whitespace after it), in
/// order: each key with its value's text, validated and without surrounding
/// whitespace. `member` may stop the walk by answering `None`. `None` also when
/// the scanner will not read the text (not an object, malformed, an escaped
/// key, nesting deeper than [`MAX_DEPTH`]): ask serde_json then.
pub fn object_members<'a>(text: &'a str, mut member: impl FnMut(&'a str, &'a str) -> Option<()>) -> Option<()> {
    let mut s = Scanner::new(text);
    s.object(|s, key| {
        let raw = s.raw()?;
        member(key, raw)
    })?;
    s.at_end().then_some(())
}

/// The contents of a JSON string's text as [`object_members`] gives it, when it
/// has no escapes (then they are the string itself); `None` for any other value.
pub fn plain_string(raw: &str) -> Option<&str> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then_some(inner)
}

/// Whether `text` is one valid JSON value (fast path of the JSON format);
/// `None` means "ask serde_json".
pub(super) fn is_json(text: &str) -> Option<()> {
    parse::<serde::de::IgnoredAny>(text).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specials_marks_the_first_special_byte() {
        for pos in 0..8 {
            for special in [b'"', b'\\', 0u8, 0x1f] {
                let mut w = *b"abcdefgh";
                w[pos] = special;
                let m = specials(u64::from_le_bytes(w));
                assert_eq!(m.trailing_zeros() / 8, pos as u32, "{special:#x} at {pos}");
            }
        }
        assert_eq!(specials(u64::from_le_bytes(*b"ab\x7f\xc3\xa9 ~!")), 0);
    }

    #[test]
    fn skip_accepts_json_and_refuses_the_rest() {
        let good = [
            "0",
            "-0",
            "1.5e-3",
            "\"a\\u00e9\\n\"",
            "[]",
            "{}",
            "[1,[2,{\"a\":[null,true,false]}],\"x\"]",
            " { \"a\" : { \"b\" : [ ] } } ",
            "\"caf\u{e9}\"",
        ];
        for g in good {
            assert_eq!(is_json(g), Some(()), "{g}");
            assert!(serde_json::from_str::<serde::de::IgnoredAny>(g).is_ok(), "{g}");
        }
        let bad = [
            "",
            "01",
            "1.",
            "-",
            "1e",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\"}",
            "{a:1}",
            "[1 2]",
            "\"\\x\"",
            "\"\\u12\"",
            "\"a\u{1}\"",
            "tru",
            "nul",
            "[",
            "{\"a\":1",
            "1 2",
            "}",
            "[}",
            "{]",
        ];
        for b in bad {
            assert_eq!(is_json(b), None, "{b:?}");
            assert!(serde_json::from_str::<serde::de::IgnoredAny>(b).is_err(), "{b:?}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert_eq!(is_json(&deep), None, "deep nesting goes to serde_json");
        let ok = "[".repeat(100) + &"]".repeat(100);
        assert_eq!(is_json(&ok), Some(()));
    }

    #[test]
    fn object_members_give_each_value_text_in_order() {
        let members = |text| {
            let mut out = Vec::new();
            object_members(text, |k, v| {
                out.push(format!("{k}={v}"));
                Some(())
            })
            .map(|()| out)
        };
        assert_eq!(
            members(r#" { "a" : 1 , "b":{"c":[1, "x"]},"s":"t\"u", "n":null } "#),
            Some(vec!["a=1".into(), r#"b={"c":[1, "x"]}"#.into(), r#"s="t\"u""#.into(), "n=null".into()])
        );
        assert_eq!(members("{}"), Some(vec![]));
        for refused in ["[1]", "null", r#"{"a":1} x"#, r#"{"a\u0062":1}"#, r#"{"a":}"#, r#"{"a":1"#] {
            assert_eq!(members(refused), None, "{refused}");
        }
        assert_eq!(object_members(r#"{"a":1,"b":2}"#, |k, _| (k == "a").then_some(())), None, "stopped");
        assert_eq!(plain_string(r#""abc""#), Some("abc"));
        assert_eq!(plain_string(r#""""#), Some(""));
        for not in [r#""a\"b""#, "1", "null", r#"""#] {
            assert_eq!(plain_string(not), None, "{not}");
        }
    }
}
