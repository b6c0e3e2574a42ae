//! MD5 of many messages at once (Bronze's `record_hash`).
//!
//! MD5 is a chain of dependent 32-bit operations: one message keeps one
//! execution unit busy and the rest of the core idle (~5 cycles per byte even
//! in assembly). Hashing [`LANES`] messages side by side — the same step for
//! every lane, each lane's state in one slot of a fixed-size array — lets the
//! compiler keep the lanes in SIMD registers (and the CPU overlap them), which
//! is how bulk MD5 gets its throughput. Messages are grouped by block count so
//! lanes rarely idle. Same digests as any MD5 (tested against the `md-5` crate).

use std::sync::OnceLock;

/// Messages hashed side by side.
pub const LANES: usize = 8;

type Lane = [u32; LANES];

const SHIFTS: [u32; 64] = {
    let r = [[7, 12, 17, 22], [5, 9, 14, 20], [4, 11, 16, 23], [6, 10, 15, 21]];
    let mut s = [0u32; 64];
    let mut i = 0;
    while i < 64 {
        s[i] = r[i / 16][i % 4];
        i += 1;
    }
    s
};

/// `K[i] = floor(|sin(i + 1)| · 2^32)` (RFC 1321); f64 is exact enough for all 64.
fn constants() -> &'static [u32; 64] {
    static K: OnceLock<[u32; 64]> = OnceLock::new();
    K.get_or_init(|| {
        let mut k = [0u32; 64];
        for (i, v) in k.iter_mut().enumerate() {
            *v = ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32;
        }
        k
    })
}

/// Number of 64-byte blocks of `len` bytes after padding.
fn blocks(len: usize) -> usize {
    (len + 8) / 64 + 1
}

/// The padded last one or two blocks of `msg`.
fn tail(msg: &[u8], out: &mut [u8; 128]) {
    let full = msg.len() / 64 * 64;
    let rest = &msg[full..];
    out.fill(0);
    out[..rest.len()].copy_from_slice(rest);
    out[rest.len()] = 0x80;
    let end = if rest.len() + 9 <= 64 { 64 } else { 128 };
    out[end - 8..end].copy_from_slice(&((msg.len() as u64).wrapping_mul(8)).to_le_bytes());
}

/// Digests of up to [`LANES`] messages with the same block count.
fn hash_group(msgs: &[&[u8]], digests: &mut [[u8; 16]]) {
    debug_assert!(!msgs.is_empty() && msgs.len() <= LANES);
    let k = constants();
    let n_blocks = blocks(msgs[0].len());
    debug_assert!(msgs.iter().all(|m| blocks(m.len()) == n_blocks));
    let mut tails = [[0u8; 128]; LANES];
    for (m, t) in msgs.iter().zip(tails.iter_mut()) {
        tail(m, t);
    }
    let mut a0: Lane = [0x6745_2301; LANES];
    let mut b0: Lane = [0xefcd_ab89; LANES];
    let mut c0: Lane = [0x98ba_dcfe; LANES];
    let mut d0: Lane = [0x1032_5476; LANES];
    let mut w = [[0u32; LANES]; 16];
    for block in 0..n_blocks {
        // Gather word j of this block of every lane (unused lanes hash zeros).
        for (lane, m) in msgs.iter().enumerate() {
            let full = m.len() / 64;
            let bytes: &[u8] = if block < full {
                &m[block * 64..block * 64 + 64]
            } else {
                let off = (block - full) * 64;
                &tails[lane][off..off + 64]
            };
            for (j, word) in w.iter_mut().enumerate() {
                word[lane] = u32::from_le_bytes([bytes[4 * j], bytes[4 * j + 1], bytes[4 * j + 2], bytes[4 * j + 3]]);
            }
        }
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        let mut i = 0;
        round(&mut i, (&mut a, &mut b, &mut c, &mut d), &w, k, |b, c, d| (b & c) | (!b & d), |i| i);
        round(&mut i, (&mut a, &mut b, &mut c, &mut d), &w, k, |b, c, d| (d & b) | (!d & c), |i| (5 * i + 1) % 16);
        round(&mut i, (&mut a, &mut b, &mut c, &mut d), &w, k, |b, c, d| b ^ c ^ d, |i| (3 * i + 5) % 16);
        round(&mut i, (&mut a, &mut b, &mut c, &mut d), &w, k, |b, c, d| c ^ (b | !d), |i| (7 * i) % 16);
        for l in 0..LANES {
            a0[l] = a0[l].wrapping_add(a[l]);
            b0[l] = b0[l].wrapping_add(b[l]);
            c0[l] = c0[l].wrapping_add(c[l]);
            d0[l] = d0[l].wrapping_add(d[l]);
        }
    }
    for (l, out) in digests.iter_mut().enumerate().take(msgs.len()) {
        out[..4].copy_from_slice(&a0[l].to_le_bytes());
        out[4..8].copy_from_slice(&b0[l].to_le_bytes());
        out[8..12].copy_from_slice(&c0[l].to_le_bytes());
        out[12..].copy_from_slice(&d0[l].to_le_bytes());
    }
}

/// The 16 steps of one round, on every lane; unrolled so that shifts,
/// constants and message-word indices are immediates.
#[inline(always)]
fn round(
    i: &mut usize,
    (a, b, c, d): (&mut Lane, &mut Lane, &mut Lane, &mut Lane),
    w: &[Lane; 16],
    k: &[u32; 64],
    f: impl Fn(u32, u32, u32) -> u32,
    g: impl Fn(usize) -> usize,
) {
    macro_rules! step {
        ($a:ident, $b:ident, $c:ident, $d:ident) => {{
            let (ki, wi, s) = (k[*i], &w[g(*i)], SHIFTS[*i]);
            for l in 0..LANES {
                let t = f($b[l], $c[l], $d[l]).wrapping_add($a[l]).wrapping_add(ki).wrapping_add(wi[l]);
                $a[l] = $b[l].wrapping_add(t.rotate_left(s));
            }
            *i += 1;
        }};
    }
    // The classic register rotation: the new value lands in `a`, roles shift.
    for _ in 0..4 {
        step!(a, b, c, d);
        step!(d, a, b, c);
        step!(c, d, a, b);
        step!(b, c, d, a);
    }
}

/// MD5 digests of `msgs`, in order.
pub fn md5_many(msgs: &[&[u8]]) -> Vec<[u8; 16]> {
    let mut out = vec![[0u8; 16]; msgs.len()];
    // Group by block count: (blocks << 32 | index), sorted.
    let mut order: Vec<u64> =
        msgs.iter().enumerate().map(|(i, m)| ((blocks(m.len()) as u64) << 32) | i as u64).collect();
    order.sort_unstable();
    let mut group: Vec<&[u8]> = Vec::with_capacity(LANES);
    let mut idx: Vec<usize> = Vec::with_capacity(LANES);
    let mut digests = [[0u8; 16]; LANES];
    let mut flush = |group: &mut Vec<&[u8]>, idx: &mut Vec<usize>, out: &mut Vec<[u8; 16]>| {
        if group.is_empty() {
            return;
        }
        hash_group(group, &mut digests);
        for (j, &i) in idx.iter().enumerate() {
            out[i] = digests[j];
        }
        group.clear();
        idx.clear();
    };
    let mut current_blocks = u64::MAX;
    for key in order {
        let (b, i) = (key >> 32, (key & 0xffff_ffff) as usize);
        if b != current_blocks || group.len() == LANES {
            flush(&mut group, &mut idx, &mut out);
            current_blocks = b;
        }
        group.push(msgs[i]);
        idx.push(i);
    }
    flush(&mut group, &mut idx, &mut out);
    out
}

/// Lower-case hex of a digest.
pub fn hex(digest: &[u8; 16]) -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (i, b) in digest.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 0xf) as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use md5::{Digest, Md5};

    use super::*;

    #[test]
    fn same_digests_as_md5_for_every_length_and_mix() {
        // Every length across the padding boundaries, in a shuffled mix of
        // block counts so groups are partial and interleaved.
        let data: Vec<u8> = (0..3000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let mut msgs: Vec<&[u8]> = Vec::new();
        for len in 0..300 {
            msgs.push(&data[len % 7..len % 7 + len]);
        }
        for i in 0..500 {
            let len = (i * 37) % 2900;
            msgs.push(&data[..len]);
        }
        let got = md5_many(&msgs);
        for (m, d) in msgs.iter().zip(&got) {
            let want: [u8; 16] = Md5::digest(m).into();
            assert_eq!(*d, want, "length {}", m.len());
        }
        assert!(md5_many(&[]).is_empty());
    }

    /// `cargo test --release -p lakehouse md5x -- --ignored --nocapture`: figures, not a test.
    #[test]
    #[ignore]
    fn throughput() {
        let data: Vec<u8> = (0..400u32 * 20_000).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let msgs: Vec<&[u8]> = data.chunks(400).map(|c| &c[..300 + (c[0] as usize % 100)]).collect();
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let a = md5_many(&msgs);
            let multi = t.elapsed();
            let t = std::time::Instant::now();
            let b: Vec<[u8; 16]> = msgs.iter().map(|m| Md5::digest(m).into()).collect();
            let single = t.elapsed();
            assert_eq!(a, b);
            eprintln!("md5x {:?}/msg, md-5 {:?}/msg", multi / msgs.len() as u32, single / msgs.len() as u32);
        }
    }

    #[test]
    fn hex_is_lower_case() {
        let d: [u8; 16] = Md5::digest(b"abc").into();
        assert_eq!(std::str::from_utf8(&hex(&d)).expect("ascii"), "900150983cd24fb0d6963f7d28e17f72");
    }
}
