//! Just enough of the Kafka wire protocol for the Bronze data path:
//! ApiVersions v0, Fetch v4 to v11 (the newest non-flexible versions), and
//! record batches (magic 2) with every compression codec Kafka defines.
//!
//! librdkafka keeps group membership, metadata and watermarks; fetching and
//! decoding records is done here because it is the per-message hot path:
//! records are read in place from the fetch response (one copy from the
//! socket), where librdkafka allocates, queues and locks per message.

use bytes::Bytes;

/// Fetch v4 is the oldest version that returns record batches (magic 2) with
/// `last_stable_offset` and aborted transactions; every broker since Kafka
/// 0.11 speaks it, Kafka 4 included (whose oldest is v4).
pub const FETCH_MIN_VERSION: i16 = 4;
/// Fetch v10 is the first a broker serves zstd batches to (older versions get
/// UNSUPPORTED_COMPRESSION_TYPE); v11 is the newest that is not "flexible"
/// (v12 changes the framing to compact types and tagged fields, v13 names
/// topics by id). The fetcher speaks the newest of v4..=v11 the broker offers.
pub const FETCH_MAX_VERSION: i16 = 11;
/// The oldest Fetch version that may return zstd batches.
pub const FETCH_ZSTD_VERSION: i16 = 10;

/// The Fetch version to speak to a broker that offers `min..=max`, if any.
pub fn negotiate_fetch(min: i16, max: i16) -> Option<i16> {
    let v = max.min(FETCH_MAX_VERSION);
    (v >= FETCH_MIN_VERSION && v >= min).then_some(v)
}
pub const API_FETCH: i16 = 1;
pub const API_VERSIONS: i16 = 18;

/// Errors of the wire format; each names what was malformed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("truncated Kafka response while reading {0}")]
    Truncated(&'static str),
    #[error("malformed Kafka data: {0}")]
    Invalid(String),
    #[error("unsupported by this client: {0}")]
    Unsupported(String),
    #[error("corrupt Kafka data: {0}")]
    Corrupt(String),
    #[error("Kafka data over the memory bound: {0}")]
    TooLarge(String),
}

/// Big-endian request encoder.
#[derive(Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// Starts a request: size placeholder and the v1 request header.
    pub fn request(api_key: i16, api_version: i16, correlation_id: i32, client_id: &str) -> Self {
        let mut e = Self { buf: Vec::with_capacity(256) };
        e.i32(0);
        e.i16(api_key);
        e.i16(api_version);
        e.i32(correlation_id);
        e.string(client_id);
        e
    }
    pub fn i8(&mut self, v: i8) {
        self.buf.push(v as u8);
    }
    pub fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn string(&mut self, s: &str) {
        self.i16(i16::try_from(s.len()).unwrap_or(i16::MAX));
        self.buf.extend_from_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
    }
    /// Bytes as they are (UUIDs, pre-encoded fields).
    pub fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    /// Unsigned varint (the "flexible" versions' lengths and tag counts).
    pub fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    /// The framed request, size prefix filled in.
    pub fn finish(mut self) -> Vec<u8> {
        let size = (self.buf.len() - 4) as i32;
        self.buf[..4].copy_from_slice(&size.to_be_bytes());
        self.buf
    }
}

/// Big-endian reader over a response or a record batch.
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    pub fn position(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.remaining() < n {
            return Err(WireError::Truncated(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], WireError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    pub fn i8(&mut self, what: &'static str) -> Result<i8, WireError> {
        Ok(self.array::<1>(what)?[0] as i8)
    }
    pub fn i16(&mut self, what: &'static str) -> Result<i16, WireError> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }
    pub fn i32(&mut self, what: &'static str) -> Result<i32, WireError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }
    pub fn i64(&mut self, what: &'static str) -> Result<i64, WireError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }
    pub fn string(&mut self, what: &'static str) -> Result<&'a str, WireError> {
        let n = self.i16(what)?;
        if n < 0 {
            return Ok("");
        }
        let b = self.take(n as usize, what)?;
        std::str::from_utf8(b).map_err(|_| WireError::Invalid(format!("{what} is not UTF-8")))
    }
    /// `n` bytes as they are.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        self.take(n, what)
    }
    /// Unsigned varint (the "flexible" versions' lengths and tag counts).
    pub fn uvarint(&mut self, what: &'static str) -> Result<u64, WireError> {
        let mut value: u64 = 0;
        let mut shift = 0;
        loop {
            let Some(&b) = self.buf.get(self.pos) else { return Err(WireError::Truncated(what)) };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift > 63 {
                return Err(WireError::Invalid(format!("varint of {what} is longer than 10 bytes")));
            }
        }
    }
    /// An array length; a null array (-1) reads as empty.
    pub fn len(&mut self, what: &'static str) -> Result<usize, WireError> {
        let n = self.i32(what)?;
        if n < -1 {
            return Err(WireError::Invalid(format!("negative length {n} of {what}")));
        }
        Ok(n.max(0) as usize)
    }
    /// `int32`-length bytes; `None` for null.
    pub fn nullable_bytes(&mut self, what: &'static str) -> Result<Option<(usize, usize)>, WireError> {
        let n = self.i32(what)?;
        if n < 0 {
            return Ok(None);
        }
        let start = self.pos;
        self.take(n as usize, what)?;
        Ok(Some((start, n as usize)))
    }
    /// Zig-zag varint (Kafka's record fields), at most 64 bits.
    pub fn varlong(&mut self, what: &'static str) -> Result<i64, WireError> {
        let mut value: u64 = 0;
        let mut shift = 0;
        loop {
            let Some(&b) = self.buf.get(self.pos) else { return Err(WireError::Truncated(what)) };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err(WireError::Invalid(format!("varint of {what} is longer than 10 bytes")));
            }
        }
        Ok(((value >> 1) as i64) ^ -((value & 1) as i64))
    }
    pub fn varint(&mut self, what: &'static str) -> Result<i32, WireError> {
        let v = self.varlong(what)?;
        i32::try_from(v).map_err(|_| WireError::Invalid(format!("{what} {v} does not fit 32 bits")))
    }
    /// Varint-length bytes; `None` for length -1.
    fn var_bytes(&mut self, what: &'static str) -> Result<Option<&'a [u8]>, WireError> {
        let n = self.varint(what)?;
        if n < 0 {
            return Ok(None);
        }
        self.take(n as usize, what).map(Some)
    }
}

/// Compression codec of a record batch (attributes bits 0–2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    fn from_attributes(attributes: i16) -> Result<Self, WireError> {
        Ok(match attributes & 0x7 {
            0 => Codec::None,
            1 => Codec::Gzip,
            2 => Codec::Snappy,
            3 => Codec::Lz4,
            4 => Codec::Zstd,
            c => return Err(WireError::Invalid(format!("unknown compression codec {c} in record batch attributes"))),
        })
    }
}

/// Size of the record batch header (magic 2) up to the first record.
pub const BATCH_HEADER_LEN: usize = 61;

/// The header of one record batch, and where its records are.
#[derive(Debug, Clone)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub attributes: i16,
    pub producer_id: i64,
    pub record_count: i32,
    /// CRC-32C of the batch from its attributes to its end, as sent.
    pub crc: u32,
}

impl BatchHeader {
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }
    pub fn codec(&self) -> Result<Codec, WireError> {
        Codec::from_attributes(self.attributes)
    }
    /// Timestamps are the broker's append time (`message.timestamp.type=LogAppendTime`).
    pub fn log_append_time(&self) -> bool {
        self.attributes & 0x8 != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
}

/// Splits a partition's `records` bytes into complete record batches:
/// `(header, records region)`. A trailing partial batch (the broker cut the
/// response at `max_bytes`) is not returned; the caller re-fetches from the
/// offset after the last complete batch.
pub fn split_batches(records: &[u8]) -> Result<Vec<(BatchHeader, std::ops::Range<usize>)>, WireError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while records.len() - pos >= 12 {
        let mut d = Decoder::new(&records[pos..]);
        let base_offset = d.i64("batch base offset")?;
        let batch_len = d.i32("batch length")?;
        if batch_len < 0 {
            return Err(WireError::Invalid(format!("record batch at offset {base_offset} has length {batch_len}")));
        }
        let end = pos + 12 + batch_len as usize;
        if end > records.len() {
            break; // partial trailing batch
        }
        if batch_len < (BATCH_HEADER_LEN - 12) as i32 {
            // Too short for a v2 header: look at the magic byte to say why.
            let magic = records.get(pos + 16).copied().unwrap_or(0);
            return Err(WireError::Unsupported(format!(
                "message format v{magic} at offset {base_offset}; only record batches (v2, Kafka ≥ 0.11) are read"
            )));
        }
        let _leader_epoch = d.i32("partition leader epoch")?;
        let magic = d.i8("magic")?;
        if magic != 2 {
            return Err(WireError::Unsupported(format!(
                "message format v{magic} at offset {base_offset}; only record batches (v2, Kafka ≥ 0.11) are read"
            )));
        }
        let crc = d.i32("batch crc")? as u32;
        let header = BatchHeader {
            crc,
            attributes: d.i16("batch attributes")?,
            last_offset_delta: d.i32("last offset delta")?,
            base_timestamp: d.i64("base timestamp")?,
            max_timestamp: d.i64("max timestamp")?,
            producer_id: d.i64("producer id")?,
            base_offset,
            record_count: {
                let _epoch = d.i16("producer epoch")?;
                let _seq = d.i32("base sequence")?;
                d.i32("record count")?
            },
        };
        debug_assert_eq!(d.position(), BATCH_HEADER_LEN);
        out.push((header, pos + BATCH_HEADER_LEN..end));
        pos = end;
    }
    Ok(out)
}

/// Offset of the attributes field in a batch: the CRC covers the batch from there.
const CRC_START: usize = 21;

static CRC32C: crc::Crc<u32, crc::Table<16>> = crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

/// Checks a batch's CRC-32C. `records` is the buffer [`split_batches`] split and
/// `range` the batch's records region in it (the header sits just before it).
pub fn check_crc(header: &BatchHeader, records: &[u8], range: &std::ops::Range<usize>) -> Result<(), WireError> {
    let start = range.start.checked_sub(BATCH_HEADER_LEN - CRC_START).ok_or(WireError::Truncated("batch header"))?;
    let covered = records.get(start..range.end).ok_or(WireError::Truncated("record batch"))?;
    let actual = CRC32C.checksum(covered);
    if actual != header.crc {
        return Err(WireError::Corrupt(format!(
            "record batch at offset {} fails its CRC-32C check (stored {:08x}, computed {actual:08x})",
            header.base_offset, header.crc
        )));
    }
    Ok(())
}

/// Decompresses a batch's records region with the batch's codec. Output past
/// `limit` bytes is refused: a batch's header or frame sizes are the sender's
/// word, and memory stays bounded by configuration, not by them.
pub fn decompress(codec: Codec, data: &[u8], limit: usize) -> Result<Vec<u8>, WireError> {
    use std::io::Read;
    let err = |what: &str, e: &dyn std::fmt::Display| WireError::Invalid(format!("{what} decompression failed: {e}"));
    let too_big = || {
        WireError::TooLarge(format!(
            "a {codec:?} batch of {} bytes decompresses to more than {limit} bytes",
            data.len()
        ))
    };
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(limit));
    // Reading one byte past the limit tells "exactly at" from "over".
    let cap = limit as u64 + 1;
    match codec {
        Codec::None => out.extend_from_slice(data),
        Codec::Gzip => {
            flate2::read::GzDecoder::new(data).take(cap).read_to_end(&mut out).map_err(|e| err("gzip", &e))?;
        }
        Codec::Snappy => snappy(data, &mut out, limit)?,
        Codec::Lz4 => {
            lz4_flex::frame::FrameDecoder::new(data).take(cap).read_to_end(&mut out).map_err(|e| err("lz4", &e))?;
        }
        Codec::Zstd => {
            zstd::stream::read::Decoder::new(data)
                .and_then(|d| d.take(cap).read_to_end(&mut out))
                .map_err(|e| err("zstd", &e))?;
        }
    }
    if out.len() > limit {
        return Err(too_big());
    }
    Ok(out)
}

/// Kafka's snappy: the Java client writes xerial-framed blocks, librdkafka
/// and others plain snappy; both are read.
fn snappy(data: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), WireError> {
    const XERIAL: &[u8] = b"\x82SNAPPY\x00";
    let raw = |block: &[u8], out: &mut Vec<u8>| -> Result<(), WireError> {
        let n = snap::raw::decompress_len(block).map_err(|e| WireError::Invalid(format!("snappy: {e}")))?;
        if n > limit.saturating_sub(out.len()) {
            // The length is the block header's claim: checked before allocating for it.
            return Err(WireError::TooLarge(format!(
                "a snappy batch of {} bytes decompresses to more than {limit} bytes",
                data.len()
            )));
        }
        let start = out.len();
        out.resize(start + n, 0);
        snap::raw::Decoder::new()
            .decompress(block, &mut out[start..])
            .map_err(|e| WireError::Invalid(format!("snappy: {e}")))?;
        Ok(())
    };
    if !data.starts_with(XERIAL) {
        return raw(data, out);
    }
    // magic (8), version (4), compatible version (4), then [len u32 BE][block]*
    let mut pos = 16;
    while pos < data.len() {
        let len_bytes = data.get(pos..pos + 4).ok_or(WireError::Truncated("xerial snappy block length"))?;
        let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        pos += 4;
        let block = data.get(pos..pos + len).ok_or(WireError::Truncated("xerial snappy block"))?;
        raw(block, out)?;
        pos += len;
    }
    Ok(())
}

/// One record, borrowed from its batch.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub offset: i64,
    /// Milliseconds since the epoch; `None` when the producer set none (-1).
    pub timestamp_ms: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    header_count: usize,
    headers: &'a [u8],
}

impl<'a> Record<'a> {
    pub fn has_headers(&self) -> bool {
        self.header_count > 0
    }
    /// `(name, value)` pairs; names that are not UTF-8 are rendered lossily.
    pub fn headers(&self) -> Result<Vec<(std::borrow::Cow<'a, str>, Option<&'a [u8]>)>, WireError> {
        let mut d = Decoder::new(self.headers);
        let mut out = Vec::with_capacity(self.header_count);
        for _ in 0..self.header_count {
            let name = d.var_bytes("header name")?.unwrap_or_default();
            let value = d.var_bytes("header value")?;
            out.push((String::from_utf8_lossy(name), value));
        }
        Ok(out)
    }
}

/// Iterates the records of one (decompressed) batch.
pub struct Records<'a> {
    d: Decoder<'a>,
    header: &'a BatchHeader,
    left: i32,
}

impl<'a> Records<'a> {
    pub fn new(header: &'a BatchHeader, records: &'a [u8]) -> Self {
        Self { d: Decoder::new(records), header, left: header.record_count.max(0) }
    }

    fn next_record(&mut self) -> Result<Record<'a>, WireError> {
        let len = self.d.varint("record length")?;
        if len < 0 {
            return Err(WireError::Invalid(format!("record length {len}")));
        }
        let start = self.d.position();
        let end = start + len as usize;
        if end > start + self.d.remaining() {
            return Err(WireError::Truncated("record"));
        }
        let _attributes = self.d.i8("record attributes")?;
        let ts_delta = self.d.varlong("timestamp delta")?;
        let offset_delta = self.d.varint("offset delta")?;
        let key = self.d.var_bytes("record key")?;
        let value = self.d.var_bytes("record value")?;
        let header_count = self.d.varint("header count")?;
        if header_count < 0 {
            return Err(WireError::Invalid(format!("header count {header_count}")));
        }
        let here = self.d.position();
        if here > end {
            return Err(WireError::Invalid("record fields overrun the record length".into()));
        }
        let headers = &self.d.buf[here..end];
        self.d.pos = end;
        let ts = if self.header.log_append_time() {
            self.header.max_timestamp
        } else {
            self.header.base_timestamp.wrapping_add(ts_delta)
        };
        Ok(Record {
            offset: self.header.base_offset + i64::from(offset_delta),
            timestamp_ms: (ts >= 0).then_some(ts),
            key,
            value,
            header_count: header_count as usize,
            headers,
        })
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, WireError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = self.next_record();
        if r.is_err() {
            self.left = 0;
        }
        Some(r)
    }
}

/// Whether a control batch's record is an ABORT marker (key: version, type 0).
pub fn control_is_abort(header: &BatchHeader, records: &[u8]) -> Result<bool, WireError> {
    let mut it = Records::new(header, records);
    match it.next() {
        Some(Ok(r)) => {
            let key = r.key.ok_or_else(|| WireError::Invalid("control record without a key".into()))?;
            let mut d = Decoder::new(key);
            let _version = d.i16("control record version")?;
            Ok(d.i16("control record type")? == 0)
        }
        Some(Err(e)) => Err(e),
        None => Err(WireError::Invalid("empty control batch".into())),
    }
}

/// A partition of a Fetch response (v4..=v11).
#[derive(Debug)]
pub struct FetchPartition {
    pub topic: String,
    pub partition: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    /// `(producer_id, first_offset)`
    pub aborted: Vec<(i64, i64)>,
    /// Slice of the response body holding the record batches.
    pub records: Bytes,
}

/// Fetch request body (v4..=v11): a full, sessionless fetch.
pub struct FetchRequest<'a> {
    pub version: i16,
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    /// 0 read_uncommitted, 1 read_committed
    pub isolation_level: i8,
    /// `(topic, [(partition, fetch_offset, partition_max_bytes)])`
    pub topics: Vec<(&'a str, Vec<(i32, i64, i32)>)>,
}

impl FetchRequest<'_> {
    pub fn encode(&self, correlation_id: i32, client_id: &str) -> Vec<u8> {
        let v = self.version;
        debug_assert!((FETCH_MIN_VERSION..=FETCH_MAX_VERSION).contains(&v), "Fetch v{v} is not encoded here");
        let mut e = Encoder::request(API_FETCH, v, correlation_id, client_id);
        e.i32(-1); // replica id: a consumer
        e.i32(self.max_wait_ms);
        e.i32(self.min_bytes);
        e.i32(self.max_bytes);
        e.i8(self.isolation_level);
        if v >= 7 {
            e.i32(0); // session id: none
            e.i32(-1); // session epoch: a full fetch outside any fetch session (KIP-227)
        }
        e.i32(self.topics.len() as i32);
        for (topic, partitions) in &self.topics {
            e.string(topic);
            e.i32(partitions.len() as i32);
            for &(partition, offset, max) in partitions {
                e.i32(partition);
                if v >= 9 {
                    e.i32(-1); // current leader epoch: unknown, not checked
                }
                e.i64(offset);
                if v >= 5 {
                    e.i64(-1); // log start offset: only followers send it
                }
                e.i32(max);
            }
        }
        if v >= 7 {
            e.i32(0); // forgotten topics: none
        }
        if v >= 11 {
            e.string(""); // rack id
        }
        e.finish()
    }
}

/// Parses a Fetch response body of `version` (after the correlation id). A
/// top-level error (v7+, fetch sessions) is an error of the whole response.
pub fn decode_fetch(body: &Bytes, version: i16) -> Result<Vec<FetchPartition>, WireError> {
    let mut d = Decoder::new(body);
    let _throttle = d.i32("throttle time")?;
    if version >= 7 {
        let error = d.i16("fetch error code")?;
        let _session = d.i32("fetch session id")?;
        if error != errors::NONE {
            return Err(WireError::Invalid(format!(
                "the fetch response carries error {} ({error})",
                errors::name(error)
            )));
        }
    }
    let mut out = Vec::new();
    for _ in 0..d.len("fetch topics")? {
        let topic = d.string("topic name")?.to_string();
        for _ in 0..d.len("fetch partitions")? {
            let partition = d.i32("partition")?;
            let error_code = d.i16("error code")?;
            let high_watermark = d.i64("high watermark")?;
            let _last_stable_offset = d.i64("last stable offset")?;
            if version >= 5 {
                let _log_start_offset = d.i64("log start offset")?;
            }
            let mut aborted = Vec::new();
            for _ in 0..d.len("aborted transactions")? {
                aborted.push((d.i64("producer id")?, d.i64("first offset")?));
            }
            if version >= 11 {
                let _preferred_read_replica = d.i32("preferred read replica")?;
            }
            let records = match d.nullable_bytes("records")? {
                Some((start, n)) => body.slice(start..start + n),
                None => Bytes::new(),
            };
            out.push(FetchPartition { topic: topic.clone(), partition, error_code, high_watermark, aborted, records });
        }
    }
    Ok(out)
}

/// ApiVersions v0 response: `api_key → (min, max)`; the error code first.
pub fn decode_api_versions(body: &[u8]) -> Result<(i16, Vec<(i16, i16, i16)>), WireError> {
    let mut d = Decoder::new(body);
    let error = d.i16("api versions error")?;
    let mut keys = Vec::new();
    for _ in 0..d.len("api keys")? {
        keys.push((d.i16("api key")?, d.i16("min version")?, d.i16("max version")?));
    }
    Ok((error, keys))
}

/// Kafka error codes the fetcher acts on.
pub mod errors {
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const REPLICA_NOT_AVAILABLE: i16 = 9;
    pub const NETWORK_EXCEPTION: i16 = 13;
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const INVALID_REQUEST: i16 = 42;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
    pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
    pub const OFFSET_NOT_AVAILABLE: i16 = 78;
    pub const THROTTLING_QUOTA_EXCEEDED: i16 = 89;

    /// Kafka's name of an error code, for messages.
    pub fn name(code: i16) -> &'static str {
        match code {
            UNKNOWN_SERVER_ERROR => "UNKNOWN_SERVER_ERROR",
            NONE => "NONE",
            OFFSET_OUT_OF_RANGE => "OFFSET_OUT_OF_RANGE",
            CORRUPT_MESSAGE => "CORRUPT_MESSAGE",
            UNKNOWN_TOPIC_OR_PARTITION => "UNKNOWN_TOPIC_OR_PARTITION",
            LEADER_NOT_AVAILABLE => "LEADER_NOT_AVAILABLE",
            NOT_LEADER_OR_FOLLOWER => "NOT_LEADER_OR_FOLLOWER",
            REQUEST_TIMED_OUT => "REQUEST_TIMED_OUT",
            REPLICA_NOT_AVAILABLE => "REPLICA_NOT_AVAILABLE",
            NETWORK_EXCEPTION => "NETWORK_EXCEPTION",
            NOT_ENOUGH_REPLICAS => "NOT_ENOUGH_REPLICAS",
            TOPIC_AUTHORIZATION_FAILED => "TOPIC_AUTHORIZATION_FAILED",
            CLUSTER_AUTHORIZATION_FAILED => "CLUSTER_AUTHORIZATION_FAILED",
            UNSUPPORTED_VERSION => "UNSUPPORTED_VERSION",
            INVALID_REQUEST => "INVALID_REQUEST",
            KAFKA_STORAGE_ERROR => "KAFKA_STORAGE_ERROR",
            FENCED_LEADER_EPOCH => "FENCED_LEADER_EPOCH",
            UNKNOWN_LEADER_EPOCH => "UNKNOWN_LEADER_EPOCH",
            UNSUPPORTED_COMPRESSION_TYPE => "UNSUPPORTED_COMPRESSION_TYPE",
            OFFSET_NOT_AVAILABLE => "OFFSET_NOT_AVAILABLE",
            THROTTLING_QUOTA_EXCEEDED => "THROTTLING_QUOTA_EXCEEDED",
            _ => "an error code this client does not know",
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn put_varlong(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let b = (z & 0x7f) as u8;
            z >>= 7;
            if z == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    }

    /// Encodes a record the way the protocol guide lays it out (test only;
    /// the integration tests check real producers' batches).
    pub(crate) fn record(
        offset_delta: i64,
        ts_delta: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
    ) -> Vec<u8> {
        let mut body = vec![0u8];
        put_varlong(&mut body, ts_delta);
        put_varlong(&mut body, offset_delta);
        for f in [key, value] {
            match f {
                Some(b) => {
                    put_varlong(&mut body, b.len() as i64);
                    body.extend_from_slice(b);
                }
                None => put_varlong(&mut body, -1),
            }
        }
        put_varlong(&mut body, headers.len() as i64);
        for (k, v) in headers {
            put_varlong(&mut body, k.len() as i64);
            body.extend_from_slice(k.as_bytes());
            put_varlong(&mut body, v.len() as i64);
            body.extend_from_slice(v);
        }
        let mut out = Vec::new();
        put_varlong(&mut out, body.len() as i64);
        out.extend(body);
        out
    }

    fn batch(base_offset: i64, attributes: i16, records: &[Vec<u8>]) -> Vec<u8> {
        batch_of(base_offset, attributes, -1, records)
    }

    /// A record batch of `records` from producer `producer_id` (-1: none).
    pub(crate) fn batch_of(base_offset: i64, attributes: i16, producer_id: i64, records: &[Vec<u8>]) -> Vec<u8> {
        let payload: Vec<u8> = records.concat();
        let mut b = Vec::new();
        b.extend_from_slice(&base_offset.to_be_bytes());
        b.extend_from_slice(&((BATCH_HEADER_LEN - 12 + payload.len()) as i32).to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
        b.push(2); // magic
        let crc_at = b.len();
        b.extend_from_slice(&0i32.to_be_bytes()); // crc, set below
        b.extend_from_slice(&attributes.to_be_bytes());
        b.extend_from_slice(&((records.len() as i32) - 1).to_be_bytes());
        b.extend_from_slice(&1_000i64.to_be_bytes());
        b.extend_from_slice(&2_000i64.to_be_bytes());
        b.extend_from_slice(&producer_id.to_be_bytes());
        b.extend_from_slice(&(-1i16).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.extend_from_slice(&(records.len() as i32).to_be_bytes());
        b.extend(payload);
        let crc = CRC32C.checksum(&b[CRC_START..]);
        b[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn batches_split_and_records_decode() {
        let recs = vec![
            record(0, 5, Some(b"k1"), Some(b"v1"), &[("h", b"x")]),
            record(1, 7, None, None, &[]),
            record(2, -1, Some(b""), Some(&[0xff, 0x00]), &[]),
        ];
        let mut data = batch(100, 0, &recs);
        let second = batch(103, 0x8, &[record(0, 0, Some(b"k"), Some(b"v"), &[])]);
        data.extend_from_slice(&second);
        data.extend_from_slice(&second[..20]); // partial trailing batch
        let batches = split_batches(&data).expect("splits");
        assert_eq!(batches.len(), 2, "the partial batch is left for the next fetch");
        let (h, range) = &batches[0];
        assert_eq!((h.base_offset, h.last_offset(), h.record_count), (100, 102, 3));
        let rs: Vec<_> = Records::new(h, &data[range.clone()]).collect::<Result<_, _>>().expect("decodes");
        assert_eq!(rs.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![100, 101, 102]);
        assert_eq!(rs[0].timestamp_ms, Some(1005));
        assert_eq!((rs[0].key, rs[0].value), (Some(&b"k1"[..]), Some(&b"v1"[..])));
        let headers = rs[0].headers().expect("headers");
        assert_eq!(headers.len(), 1);
        assert_eq!((headers[0].0.as_ref(), headers[0].1), ("h", Some(&b"x"[..])));
        assert_eq!((rs[1].key, rs[1].value, rs[1].has_headers()), (None, None, false));
        assert_eq!((rs[2].key, rs[2].value), (Some(&b""[..]), Some(&[0xff, 0x00][..])));
        let (h2, r2) = &batches[1];
        let r: Vec<_> = Records::new(h2, &data[r2.clone()]).collect::<Result<_, _>>().expect("decodes");
        assert_eq!(r[0].timestamp_ms, Some(2000), "log-append time is the batch's max timestamp");
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        let recs = vec![record(0, 0, Some(b"key"), Some(b"value"), &[])];
        let data = batch(0, 0, &recs);
        let (h, range) = split_batches(&data).expect("splits").remove(0);
        for cut in 0..range.len() {
            let region = &data[range.start..range.start + cut];
            let r: Result<Vec<_>, _> = Records::new(&h, region).collect();
            assert!(r.is_err(), "a record cut at {cut} bytes must be an error");
        }
        let mut old = data.clone();
        old[16] = 1;
        assert!(matches!(split_batches(&old), Err(WireError::Unsupported(_))));
    }

    #[test]
    fn crc_catches_any_flipped_byte_after_the_crc_field() {
        let data = batch(7, 0, &[record(0, 0, Some(b"key"), Some(b"value"), &[])]);
        let (h, range) = split_batches(&data).expect("splits").remove(0);
        check_crc(&h, &data, &range).expect("a batch as built passes");
        for i in CRC_START..data.len() {
            let mut bad = data.clone();
            bad[i] ^= 0x01;
            let (h, range) = split_batches(&bad).expect("splits").remove(0);
            assert!(
                matches!(check_crc(&h, &bad, &range), Err(WireError::Corrupt(_))),
                "a flipped bit at byte {i} must fail the check"
            );
        }
    }

    #[test]
    fn decompression_is_bounded_for_every_codec() {
        use std::io::Write;
        let text = vec![b'x'; 100_000];
        let gzip = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&text).expect("writes");
            e.finish().expect("finishes")
        };
        let lz4 = {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(&text).expect("writes");
            e.finish().expect("finishes")
        };
        let zstd = zstd::bulk::compress(&text, 3).expect("compresses");
        let snappy = snap::raw::Encoder::new().compress_vec(&text).expect("compresses");
        for (codec, data) in [(Codec::Gzip, &gzip), (Codec::Lz4, &lz4), (Codec::Zstd, &zstd), (Codec::Snappy, &snappy)]
        {
            assert_eq!(decompress(codec, data, text.len()).expect("fits exactly"), text, "{codec:?}");
            assert!(
                matches!(decompress(codec, data, text.len() - 1), Err(WireError::TooLarge(_))),
                "{codec:?} past the bound must be refused"
            );
        }
        // A raw snappy block whose header claims 1 GiB is refused before allocating.
        let mut claim = vec![0x80, 0x80, 0x80, 0x80, 0x04];
        claim.extend_from_slice(&[0; 8]);
        assert!(matches!(decompress(Codec::Snappy, &claim, 1 << 20), Err(WireError::TooLarge(_))));
    }

    #[test]
    fn xerial_and_raw_snappy_both_decode() {
        let text = b"hello hello hello hello kafka".repeat(50);
        let raw = snap::raw::Encoder::new().compress_vec(&text).expect("compresses");
        assert_eq!(decompress(Codec::Snappy, &raw, 1 << 20).expect("raw"), text);
        let mut xerial = b"\x82SNAPPY\x00".to_vec();
        xerial.extend_from_slice(&1i32.to_be_bytes());
        xerial.extend_from_slice(&1i32.to_be_bytes());
        for chunk in text.chunks(500) {
            let block = snap::raw::Encoder::new().compress_vec(chunk).expect("compresses");
            xerial.extend_from_slice(&(block.len() as u32).to_be_bytes());
            xerial.extend_from_slice(&block);
        }
        assert_eq!(decompress(Codec::Snappy, &xerial, 1 << 20).expect("xerial"), text);
        assert!(decompress(Codec::Snappy, &xerial[..xerial.len() - 3], 1 << 20).is_err());
    }

    #[test]
    fn fetch_request_encodes_header_and_body() {
        let req = FetchRequest {
            version: 4,
            max_wait_ms: 100,
            min_bytes: 1,
            max_bytes: 1 << 20,
            isolation_level: 1,
            topics: vec![("t", vec![(3, 42, 4096)])],
        };
        let bytes = req.encode(7, "c");
        let mut d = Decoder::new(&bytes);
        assert_eq!(d.i32("size").expect("size") as usize, bytes.len() - 4);
        assert_eq!(d.i16("key").expect("key"), API_FETCH);
        assert_eq!(d.i16("version").expect("version"), 4);
        assert_eq!(d.i32("correlation").expect("correlation"), 7);
        assert_eq!(d.string("client").expect("client"), "c");
        assert_eq!(d.i32("replica").expect("replica"), -1);
    }

    #[test]
    fn fetch_versions_are_negotiated_within_v4_to_v11() {
        assert_eq!(negotiate_fetch(4, 18), Some(11), "Apache Kafka 4.x");
        assert_eq!(negotiate_fetch(0, 11), Some(11), "Kafka 2.3 and later");
        assert_eq!(negotiate_fetch(0, 6), Some(6), "an old broker: no zstd, still readable");
        assert_eq!(negotiate_fetch(0, 3), None, "no record batches");
        assert_eq!(negotiate_fetch(12, 18), None, "flexible versions only");
    }

    /// Fetch v11 as the protocol guide lays it out: session fields, leader
    /// epoch, log start offset, forgotten topics and rack id in their places.
    #[test]
    fn fetch_v11_request_layout() {
        let req = FetchRequest {
            version: 11,
            max_wait_ms: 100,
            min_bytes: 1,
            max_bytes: 1 << 20,
            isolation_level: 1,
            topics: vec![("t", vec![(3, 42, 4096)])],
        };
        let bytes = req.encode(9, "c");
        let mut d = Decoder::new(&bytes);
        d.i32("size").expect("size");
        assert_eq!(d.i16("key").expect("key"), API_FETCH);
        assert_eq!(d.i16("version").expect("version"), 11);
        d.i32("correlation").expect("correlation");
        d.string("client").expect("client");
        let head: Vec<i64> = vec![
            d.i32("replica").expect("replica").into(),
            d.i32("max wait").expect("max wait").into(),
            d.i32("min bytes").expect("min bytes").into(),
            d.i32("max bytes").expect("max bytes").into(),
            d.i8("isolation").expect("isolation").into(),
            d.i32("session id").expect("session id").into(),
            d.i32("session epoch").expect("session epoch").into(),
            d.i32("topics").expect("topics").into(),
        ];
        assert_eq!(head, vec![-1, 100, 1, 1 << 20, 1, 0, -1, 1]);
        assert_eq!(d.string("topic").expect("topic"), "t");
        let part: Vec<i64> = vec![
            d.i32("partitions").expect("n").into(),
            d.i32("partition").expect("p").into(),
            d.i32("leader epoch").expect("e").into(),
            d.i64("offset").expect("o"),
            d.i64("log start").expect("l"),
            d.i32("partition max").expect("m").into(),
            d.i32("forgotten").expect("f").into(),
        ];
        assert_eq!(part, vec![1, 3, -1, 42, -1, 4096, 0]);
        assert_eq!(d.string("rack").expect("rack"), "");
        assert_eq!(d.remaining(), 0);
    }

    /// A v11 response with a record batch and an aborted transaction parses to
    /// the same partition data as v4's layout carries.
    #[test]
    fn fetch_v11_response_decodes() {
        let records = batch(5, 0, &[record(0, 0, Some(b"k"), Some(b"v"), &[])]);
        let mut b = Vec::new();
        b.extend_from_slice(&0i32.to_be_bytes()); // throttle
        b.extend_from_slice(&0i16.to_be_bytes()); // error
        b.extend_from_slice(&0i32.to_be_bytes()); // session
        b.extend_from_slice(&1i32.to_be_bytes()); // topics
        b.extend_from_slice(&1i16.to_be_bytes());
        b.push(b't');
        b.extend_from_slice(&1i32.to_be_bytes()); // partitions
        b.extend_from_slice(&2i32.to_be_bytes()); // partition
        b.extend_from_slice(&0i16.to_be_bytes()); // error
        b.extend_from_slice(&6i64.to_be_bytes()); // high watermark
        b.extend_from_slice(&6i64.to_be_bytes()); // last stable
        b.extend_from_slice(&0i64.to_be_bytes()); // log start
        b.extend_from_slice(&1i32.to_be_bytes()); // aborted
        b.extend_from_slice(&77i64.to_be_bytes());
        b.extend_from_slice(&1i64.to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes()); // preferred read replica
        b.extend_from_slice(&(records.len() as i32).to_be_bytes());
        b.extend_from_slice(&records);
        let body = Bytes::from(b);
        let parts = decode_fetch(&body, 11).expect("decodes");
        assert_eq!(parts.len(), 1);
        let p = &parts[0];
        assert_eq!((p.topic.as_str(), p.partition, p.error_code, p.high_watermark), ("t", 2, 0, 6));
        assert_eq!(p.aborted, vec![(77, 1)]);
        assert_eq!(&p.records[..], &records[..]);
        // The same bytes read as v4 are garbage, not silently wrong data.
        assert!(decode_fetch(&body, 4).map_or(true, |ps| ps.iter().all(|p| p.records[..] != records[..])));
        // A session-level error fails the whole response.
        let mut bad = body.to_vec();
        bad[4..6].copy_from_slice(&70i16.to_be_bytes());
        assert!(decode_fetch(&Bytes::from(bad), 11).is_err());
    }
}
