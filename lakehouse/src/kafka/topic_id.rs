//! Topic ids (KIP-516): the broker's UUID of a topic, which changes when a
//! topic is deleted and created again under the same name. Offsets stored for
//! the old topic mean nothing in the new one, and a position that happens to
//! fall inside the new log would silently skip its first records; comparing
//! the topic id recorded with the offsets to the broker's current one is how
//! the workers tell (Fetch v4..=v11 names topics, not ids).
//!
//! Ids come from a Metadata v12 request (the first version whose topics carry
//! an id and that Apache Kafka 3.1+ and tansu 0.6 both serve), sent on a
//! short-lived connection to a bootstrap broker. librdkafka's metadata API
//! does not expose topic ids.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use super::fetcher::read_response;
use super::security::Security;
use super::transport;
use super::wire::{Decoder, Encoder, WireError, errors};

/// The Metadata version asked for (flexible: compact strings and arrays, tagged fields).
const METADATA_VERSION: i16 = 12;
const API_METADATA: i16 = 3;

/// A topic id. Displayed the way Kafka's tools print it (`kafka-topics.sh
/// --describe`: URL-safe base64 without padding), which is also how it is
/// stored in table commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TopicId(pub [u8; 16]);

impl TopicId {
    /// The all-zero id, which brokers send for "no id".
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl std::fmt::Display for TopicId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::with_capacity(22);
        for chunk in self.0.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize] as char);
            }
        }
        f.write_str(&out)
    }
}

/// What the cluster answered about topic ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicIds {
    /// `topic → id` for every requested topic the broker knows.
    Known(HashMap<String, TopicId>),
    /// The broker serves no Metadata v12 (Kafka before 3.1): ids cannot be checked.
    Unsupported,
}

/// The current id of each of `topics`, asked of the first of `brokers`
/// (`host:port,host:port`) that answers. Topics the broker does not know
/// (deleted, not created yet) or reports with an error are left out, as are
/// zero ids.
pub fn topic_ids(
    brokers: &str,
    security: &Security,
    client_id: &str,
    topics: &[&str],
    timeout: Duration,
) -> Result<TopicIds, String> {
    let mut last = format!("no broker in {brokers:?}");
    for broker in brokers.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        let broker = broker.rsplit("://").next().unwrap_or(broker);
        match ask(broker, security, client_id, topics, timeout) {
            Ok(ids) => return Ok(ids),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn ask(
    broker: &str,
    security: &Security,
    client_id: &str,
    topics: &[&str],
    timeout: Duration,
) -> Result<TopicIds, String> {
    let mut stream = transport::connect(broker, security, client_id, timeout, timeout)?;
    const LIMIT: usize = 64 << 20;
    let keys = transport::api_versions(&mut stream, broker, 1, client_id).map_err(|e| e.to_string())?;
    if !keys.iter().any(|&(k, min, max)| k == API_METADATA && min <= METADATA_VERSION && METADATA_VERSION <= max) {
        return Ok(TopicIds::Unsupported);
    }
    stream.write_all(&encode_request(2, client_id, topics)).map_err(|e| format!("send to {broker}: {e}"))?;
    let body = read_response(&mut stream, 2, LIMIT).map_err(|e| format!("{broker}: {e}"))?;
    decode_response(&body).map(TopicIds::Known).map_err(|e| format!("{broker}: metadata response: {e}"))
}

/// Metadata v12 request with request header v2 (client id as a classic
/// string, then an empty tag section).
fn encode_request(correlation_id: i32, client_id: &str, topics: &[&str]) -> Vec<u8> {
    let mut e = Encoder::request(API_METADATA, METADATA_VERSION, correlation_id, client_id);
    e.uvarint(0); // header tags
    e.uvarint(topics.len() as u64 + 1); // compact array
    for t in topics {
        e.raw(&[0; 16]); // topic id: asking by name
        e.uvarint(t.len() as u64 + 1); // compact nullable string
        e.raw(t.as_bytes());
        e.uvarint(0); // tags
    }
    e.i8(0); // allow_auto_topic_creation: never create a topic by asking for it
    e.i8(0); // include_topic_authorized_operations
    e.uvarint(0); // tags
    e.finish()
}

fn skip_tags(d: &mut Decoder<'_>) -> Result<(), WireError> {
    for _ in 0..d.uvarint("tag count")? {
        let _tag = d.uvarint("tag")?;
        let n = d.uvarint("tag size")?;
        d.bytes(n as usize, "tag value")?;
    }
    Ok(())
}

/// Compact array length (`n + 1`, 0 = null).
fn compact_len(d: &mut Decoder<'_>, what: &'static str) -> Result<usize, WireError> {
    Ok(d.uvarint(what)?.saturating_sub(1) as usize)
}

fn compact_str<'a>(d: &mut Decoder<'a>, what: &'static str) -> Result<Option<&'a str>, WireError> {
    let n = d.uvarint(what)?;
    if n == 0 {
        return Ok(None);
    }
    let b = d.bytes(n as usize - 1, what)?;
    std::str::from_utf8(b).map(Some).map_err(|_| WireError::Invalid(format!("{what} is not UTF-8")))
}

/// Metadata v12 response body (after the correlation id; response header v1).
fn decode_response(body: &[u8]) -> Result<HashMap<String, TopicId>, WireError> {
    let mut d = Decoder::new(body);
    skip_tags(&mut d)?; // response header tags
    let _throttle = d.i32("throttle time")?;
    for _ in 0..compact_len(&mut d, "brokers")? {
        d.i32("node id")?;
        compact_str(&mut d, "host")?;
        d.i32("port")?;
        compact_str(&mut d, "rack")?;
        skip_tags(&mut d)?;
    }
    compact_str(&mut d, "cluster id")?;
    d.i32("controller id")?;
    let mut out = HashMap::new();
    for _ in 0..compact_len(&mut d, "topics")? {
        let error = d.i16("topic error")?;
        let name = compact_str(&mut d, "topic name")?.map(str::to_string);
        let mut id = [0u8; 16];
        id.copy_from_slice(d.bytes(16, "topic id")?);
        d.i8("is internal")?;
        for _ in 0..compact_len(&mut d, "partitions")? {
            d.i16("partition error")?;
            d.i32("partition")?;
            d.i32("leader")?;
            d.i32("leader epoch")?;
            for what in ["replicas", "isr", "offline replicas"] {
                for _ in 0..compact_len(&mut d, what)? {
                    d.i32("node id")?;
                }
            }
            skip_tags(&mut d)?;
        }
        d.i32("topic authorized operations")?;
        skip_tags(&mut d)?;
        let id = TopicId(id);
        if let Some(name) = name.filter(|_| error == errors::NONE && !id.is_zero()) {
            out.insert(name, id);
        }
    }
    skip_tags(&mut d)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_as_kafka_tools_do() {
        // Kafka's Uuid.toString(): URL-safe base64 of the 16 bytes, no padding.
        let id = TopicId(*b"lakehouse-kafka1");
        assert_eq!(id.to_string(), "bGFrZWhvdXNlLWthZmthMQ");
        let all = TopicId([0xff; 16]);
        assert_eq!(all.to_string(), "_____________________w");
        assert!(TopicId([0; 16]).is_zero());
    }

    /// A Metadata v12 answer as Apache Kafka 4.1 sent it for one topic (captured
    /// from a broker started by deploy/local/kafka.sh, correlation id removed).
    #[test]
    fn decodes_a_real_metadata_v12_response() {
        let hex = "00000000000200000001\
                   0a3132372e302e302e31000071a40000\
                   17624746725a57687664584e6c4c5774685a6d74684d51\
                   00000001\
                   0200000770726f626531\
                   7c82397314fa44a4870e6f8134d908d4\
                   00\
                   02000000000000000000010000000002000000010200000001010080000000\
                   0000";
        let body: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect();
        let ids = decode_response(&body).expect("decodes");
        let id = ids.get("probe1").expect("the topic is there");
        assert_eq!(id.0[..4], [0x7c, 0x82, 0x39, 0x73]);
        assert_eq!(ids.len(), 1);
        // Cut anywhere, it is an error, never a wrong answer.
        for cut in 0..body.len() {
            assert!(decode_response(&body[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn request_asks_by_name_without_creating() {
        let req = encode_request(9, "c", &["orders"]);
        let mut d = Decoder::new(&req);
        d.i32("size").expect("size");
        assert_eq!(d.i16("key").expect("key"), API_METADATA);
        assert_eq!(d.i16("version").expect("version"), 12);
        assert_eq!(d.i32("correlation").expect("correlation"), 9);
        assert_eq!(d.string("client").expect("client"), "c");
        skip_tags(&mut d).expect("header tags");
        assert_eq!(compact_len(&mut d, "topics").expect("topics"), 1);
        assert_eq!(d.bytes(16, "id").expect("id"), &[0; 16]);
        assert_eq!(compact_str(&mut d, "name").expect("name"), Some("orders"));
        skip_tags(&mut d).expect("topic tags");
        assert_eq!(d.i8("auto create").expect("auto create"), 0);
        assert_eq!(d.i8("authorized ops").expect("ops"), 0);
        skip_tags(&mut d).expect("tags");
        assert_eq!(d.remaining(), 0);
    }
}
