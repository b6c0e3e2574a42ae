//! One authenticated connection to a broker, for the native clients: TCP with
//! a connect timeout, then TLS (rustls) when the protocol says so, then SASL
//! (SaslHandshake v1 + SaslAuthenticate v1: PLAIN or SCRAM, RFC 5802 / 7677),
//! as KIP-152 describes. What comes back is a [`Stream`] the Kafka requests
//! are written to as on a plain socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::{digest, hmac, pbkdf2};

use super::fetcher::{ReadError, read_response};
use super::security::{Mechanism, Sasl, Secret, Security};
use super::wire::{API_VERSIONS, Decoder, Encoder, decode_api_versions};

const API_SASL_HANDSHAKE: i16 = 17;
const API_SASL_AUTHENTICATE: i16 = 36;
/// SASL exchanges are tiny; anything bigger is not a SASL answer.
const SASL_LIMIT: usize = 1 << 20;
const SASL_AUTHENTICATION_FAILED: i16 = 58;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Network, TLS or protocol trouble: worth retrying.
    #[error("{0}")]
    Io(String),
    /// The broker refused the credentials or the mechanism, or its certificate
    /// is not trusted: retrying with the same settings cannot help.
    #[error("{0}")]
    Auth(String),
}

impl ConnectError {
    pub fn is_auth(&self) -> bool {
        matches!(self, ConnectError::Auth(_))
    }
}

impl From<ConnectError> for String {
    fn from(e: ConnectError) -> Self {
        e.to_string()
    }
}

/// A broker connection, plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(buf),
            Stream::Tls(s) => {
                s.write_all(buf)?;
                s.flush()
            }
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Connects to `broker` (`host:port`) as `security` says. `timeouts` are the
/// read and write timeouts of the socket, also bounding the handshakes.
pub fn connect(
    broker: &str,
    security: &Security,
    client_id: &str,
    connect_timeout: Duration,
    timeouts: Duration,
) -> Result<Stream, ConnectError> {
    let tcp = super::fetcher::connect_timeout(broker, connect_timeout).map_err(ConnectError::Io)?;
    let io = |e: std::io::Error| ConnectError::Io(format!("{broker}: {e}"));
    tcp.set_nodelay(true).map_err(io)?;
    tcp.set_read_timeout(Some(timeouts)).map_err(io)?;
    tcp.set_write_timeout(Some(timeouts)).map_err(io)?;
    let mut stream = match &security.tls {
        None => Stream::Plain(tcp),
        Some(config) => {
            let host = broker.rsplit_once(':').map_or(broker, |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let name = rustls::pki_types::ServerName::try_from(host.to_string())
                .map_err(|e| ConnectError::Io(format!("{broker}: not a TLS server name: {e}")))?;
            let conn = rustls::ClientConnection::new(config.clone(), name)
                .map_err(|e| ConnectError::Io(format!("{broker}: TLS setup: {e}")))?;
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            // Finish the handshake here so certificate problems surface as such.
            while tls.conn.is_handshaking() {
                tls.conn.complete_io(&mut tls.sock).map_err(|e| {
                    let message = format!("{broker}: TLS handshake: {e}");
                    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                        // An untrusted or wrong certificate (ours or theirs) stays so.
                        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::AlertReceived(_)) => {
                            ConnectError::Auth(format!(
                                "{message} (check ssl.ca.location and the broker's certificate; for mutual TLS \
                                 ssl.certificate.location and ssl.key.location)"
                            ))
                        }
                        _ => ConnectError::Io(message),
                    }
                })?;
            }
            Stream::Tls(Box::new(tls))
        }
    };
    if let Some(sasl) = &security.sasl {
        authenticate(&mut stream, broker, sasl, client_id)?;
    }
    Ok(stream)
}

/// Connects to the first of `brokers` (`host:port,…`) that answers, with TLS
/// and SASL as configured, and asks it for its API versions (one full
/// request and answer on the connection); returns the broker that accepted.
/// An authentication refusal is returned at once.
pub fn check_brokers(brokers: &str, security: &Security, client_id: &str) -> Result<String, ConnectError> {
    let mut last = ConnectError::Io(format!("no broker in {brokers:?}"));
    for broker in brokers.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        let broker = broker.rsplit("://").next().unwrap_or(broker);
        let checked = connect(broker, security, client_id, Duration::from_secs(10), Duration::from_secs(10))
            .and_then(|mut stream| api_versions(&mut stream, broker, 1, client_id));
        match checked {
            Ok(_) => return Ok(broker.to_string()),
            Err(e) if e.is_auth() => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// ApiVersions v0 on a connection: the `(api key, min, max)` versions the
/// broker offers. Being the first request on a new connection, it is also the
/// first read after the TLS handshake: with TLS 1.3 the broker judges our
/// client certificate (or its absence, on a listener with
/// `ssl.client.auth=required`) only after our side of the handshake is done,
/// so its refusal — a TLS alert — arrives here, and is an authentication
/// failure rather than a network error to retry.
pub fn api_versions(
    stream: &mut Stream,
    broker: &str,
    correlation: i32,
    client_id: &str,
) -> Result<Vec<(i16, i16, i16)>, ConnectError> {
    /// An ApiVersions answer lists a few hundred bytes of versions.
    const LIMIT: usize = 1 << 20;
    let request = Encoder::request(API_VERSIONS, 0, correlation, client_id).finish();
    stream.write_all(&request).map_err(|e| refused_or_io(broker, "sending ApiVersions", &e))?;
    let body = read_response(stream, correlation, LIMIT).map_err(|e| match e {
        ReadError::Io(e) => refused_or_io(broker, "reading ApiVersions", &e),
        ReadError::Frame(m) => ConnectError::Io(format!("{broker}: ApiVersions: {m}")),
    })?;
    let (code, keys) = decode_api_versions(&body).map_err(|e| ConnectError::Io(format!("{broker}: {e}")))?;
    if code != 0 {
        return Err(ConnectError::Io(format!("ApiVersions error {code} from {broker}")));
    }
    Ok(keys)
}

/// A TLS alert from the broker after the handshake is its verdict on our
/// client certificate: retrying with the same settings cannot help.
fn refused_or_io(broker: &str, doing: &str, e: &std::io::Error) -> ConnectError {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::AlertReceived(alert)) => ConnectError::Auth(format!(
            "{broker}: the broker ended the TLS session with alert {alert:?} right after the handshake: it refuses \
             our client certificate or its absence (mutual TLS: check ssl.certificate.location and \
             ssl.key.location, and that the broker trusts the CA that signed them)"
        )),
        _ => ConnectError::Io(format!("{broker}: {doing}: {e}")),
    }
}

fn authenticate(stream: &mut Stream, broker: &str, sasl: &Sasl, client_id: &str) -> Result<(), ConnectError> {
    let io = |e: String| ConnectError::Io(format!("{broker}: SASL: {e}"));
    // SaslHandshake v1: the mechanism; the answer lists the enabled ones. It is
    // the first request after the TLS handshake, so on a listener that also
    // requires a client certificate the broker's TLS 1.3 refusal of ours (or
    // of its absence) arrives as its answer (see `api_versions`).
    let mut e = Encoder::request(API_SASL_HANDSHAKE, 1, 1, client_id);
    e.string(sasl.mechanism.name());
    stream.write_all(&e.finish()).map_err(|e| refused_or_io(broker, "SASL: sending SaslHandshake", &e))?;
    let body = read_response(stream, 1, SASL_LIMIT).map_err(|e| match e {
        ReadError::Io(e) => refused_or_io(broker, "SASL: reading SaslHandshake", &e),
        ReadError::Frame(m) => io(m),
    })?;
    let mut d = Decoder::new(&body);
    let code = d.i16("handshake error").map_err(|e| io(e.to_string()))?;
    let mut enabled = Vec::new();
    for _ in 0..d.len("mechanisms").map_err(|e| io(e.to_string()))? {
        enabled.push(d.string("mechanism").map_err(|e| io(e.to_string()))?.to_string());
    }
    if code == UNSUPPORTED_SASL_MECHANISM {
        return Err(ConnectError::Auth(format!(
            "{broker}: the broker does not enable SASL mechanism {} on this listener (it enables {enabled:?})",
            sasl.mechanism.name()
        )));
    }
    if code != 0 {
        return Err(io(format!("SaslHandshake error {code}")));
    }
    let mut correlation = 1;
    let mut exchange = |token: &[u8]| -> Result<Vec<u8>, ConnectError> {
        correlation += 1;
        let mut e = Encoder::request(API_SASL_AUTHENTICATE, 1, correlation, client_id);
        e.i32(token.len() as i32);
        e.raw(token);
        stream.write_all(&e.finish()).map_err(|e| io(e.to_string()))?;
        let body = read_response(stream, correlation, SASL_LIMIT).map_err(|e| io(e.to_string()))?;
        let (code, message, bytes) = decode_authenticate(&body).map_err(io)?;
        if code != 0 {
            let what = if code == SASL_AUTHENTICATION_FAILED { "authentication failed" } else { "SASL error" };
            return Err(ConnectError::Auth(format!(
                "{broker}: {what} for user {:?} with {} (error {code}): {}",
                sasl.username,
                sasl.mechanism.name(),
                message.unwrap_or_default()
            )));
        }
        Ok(bytes)
    };
    match sasl.mechanism {
        Mechanism::Plain => {
            exchange(&plain_token(&sasl.username, &sasl.password))?;
        }
        Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
            let mut scram = Scram::new(sasl.mechanism, &sasl.username, &sasl.password, &nonce());
            let server_first = exchange(scram.client_first().as_bytes())?;
            let client_final = scram
                .client_final(&server_first)
                .map_err(|e| ConnectError::Auth(format!("{broker}: SCRAM with user {:?}: {e}", sasl.username)))?;
            let server_final = exchange(client_final.as_bytes())?;
            scram
                .verify_server_final(&server_final)
                .map_err(|e| ConnectError::Auth(format!("{broker}: SCRAM with user {:?}: {e}", sasl.username)))?;
        }
    }
    tracing::debug!(%broker, mechanism = sasl.mechanism.name(), user = %sasl.username, "SASL authenticated");
    Ok(())
}

/// SaslAuthenticate v1 response: error code, error message, auth bytes (then
/// the session lifetime, unused: connections re-authenticate by reconnecting).
fn decode_authenticate(body: &[u8]) -> Result<(i16, Option<String>, Vec<u8>), String> {
    let mut d = Decoder::new(body);
    let w = |e: super::wire::WireError| e.to_string();
    let code = d.i16("authenticate error").map_err(w)?;
    let len = d.i16("error message length").map_err(w)?;
    let message = if len < 0 {
        None
    } else {
        Some(String::from_utf8_lossy(d.bytes(len as usize, "error message").map_err(w)?).into_owned())
    };
    let n = d.i32("auth bytes length").map_err(w)?;
    let bytes = if n < 0 { Vec::new() } else { d.bytes(n as usize, "auth bytes").map_err(w)?.to_vec() };
    Ok((code, message, bytes))
}

/// RFC 4616: `authzid NUL authcid NUL passwd`, the authorization id empty.
fn plain_token(user: &str, password: &Secret) -> Vec<u8> {
    let mut t = Vec::with_capacity(user.len() + password.expose().len() + 2);
    t.push(0);
    t.extend_from_slice(user.as_bytes());
    t.push(0);
    t.extend_from_slice(password.expose().as_bytes());
    t
}

fn nonce() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 24];
    ring::rand::SystemRandom::new().fill(&mut b).expect("the OS random source works");
    B64.encode(b)
}

/// Client side of SCRAM-SHA-256/512 (RFC 5802), without channel binding.
struct Scram {
    mechanism: Mechanism,
    password: Secret,
    client_first_bare: String,
    client_nonce: String,
    /// HMAC(SaltedPassword, "Server Key") and AuthMessage, kept to verify the server.
    expected_server_signature: Option<Vec<u8>>,
}

impl Scram {
    fn new(mechanism: Mechanism, user: &str, password: &Secret, nonce: &str) -> Self {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        Self {
            mechanism,
            password: password.clone(),
            client_first_bare: format!("n={user},r={nonce}"),
            client_nonce: nonce.to_string(),
            expected_server_signature: None,
        }
    }

    fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    fn algorithms(&self) -> (pbkdf2::Algorithm, hmac::Algorithm, &'static digest::Algorithm) {
        match self.mechanism {
            Mechanism::ScramSha256 => (pbkdf2::PBKDF2_HMAC_SHA256, hmac::HMAC_SHA256, &digest::SHA256),
            _ => (pbkdf2::PBKDF2_HMAC_SHA512, hmac::HMAC_SHA512, &digest::SHA512),
        }
    }

    /// The client-final message for the server-first message.
    fn client_final(&mut self, server_first: &[u8]) -> Result<String, String> {
        let server_first =
            std::str::from_utf8(server_first).map_err(|_| "the server-first message is not UTF-8".to_string())?;
        let attr = |k: &str| server_first.split(',').find_map(|a| a.strip_prefix(k)).map(str::to_string);
        if let Some(e) = attr("e=") {
            return Err(format!("server error {e}"));
        }
        let nonce = attr("r=").ok_or("server-first message without a nonce")?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err("the server's nonce does not extend ours".into());
        }
        let salt = B64
            .decode(attr("s=").ok_or("server-first message without a salt")?)
            .map_err(|_| "the server's salt is not base64".to_string())?;
        let iterations: u32 = attr("i=")
            .and_then(|i| i.parse().ok())
            .filter(|&i| (1..=1_000_000).contains(&i))
            .ok_or("server-first message without a usable iteration count")?;
        let (kdf, mac, hash) = self.algorithms();
        let mut salted = vec![0u8; hash.output_len()];
        pbkdf2::derive(
            kdf,
            std::num::NonZeroU32::new(iterations).expect("checked above"),
            &salt,
            self.password.expose().as_bytes(),
            &mut salted,
        );
        let salted_key = hmac::Key::new(mac, &salted);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        let stored_key = digest::digest(hash, client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac::sign(&hmac::Key::new(mac, stored_key.as_ref()), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.as_ref().iter().zip(client_signature.as_ref()).map(|(a, b)| a ^ b).collect();
        let server_key = hmac::sign(&salted_key, b"Server Key");
        let server_signature = hmac::sign(&hmac::Key::new(mac, server_key.as_ref()), auth_message.as_bytes());
        self.expected_server_signature = Some(server_signature.as_ref().to_vec());
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Checks that the server knows the password too (mutual authentication).
    fn verify_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final).map_err(|_| "the server-final message is not UTF-8")?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!("server error {e}"));
        }
        let v = text.split(',').find_map(|a| a.strip_prefix("v=")).ok_or("server-final message without v=")?;
        let got = B64.decode(v).map_err(|_| "the server signature is not base64")?;
        let expected = self.expected_server_signature.as_deref().ok_or("server-final before client-final")?;
        // Compared without an early exit (the signature is public once sent, but cheap to do right).
        let differ =
            got.len() != expected.len() || got.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0;
        if differ {
            return Err("the server's signature is wrong: it does not know this user's credentials".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3's SCRAM-SHA-256 example, byte for byte.
    #[test]
    fn scram_sha256_matches_rfc7677() {
        let mut s = Scram::new(Mechanism::ScramSha256, "user", &Secret::new("pencil"), "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(s.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let final_ = s.client_final(server_first).expect("valid server-first");
        assert_eq!(
            final_,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").expect("server proves itself");
        assert!(s.verify_server_final(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").is_err());
        assert!(s.verify_server_final(b"e=invalid-proof").expect_err("must be refused").contains("invalid-proof"));
    }

    #[test]
    fn scram_refuses_a_nonce_that_is_not_ours() {
        let mut s = Scram::new(Mechanism::ScramSha512, "u,=x", &Secret::new("p"), "abc");
        assert_eq!(s.client_first(), "n,,n=u=2C=3Dx,r=abc");
        let err = s.client_final(b"r=zzzdef,s=c2FsdA==,i=4096").expect_err("must be refused");
        assert!(err.contains("nonce"), "{err}");
        let err = s.client_final(b"r=abcdef,s=c2FsdA==,i=0").expect_err("must be refused");
        assert!(err.contains("iteration"), "{err}");
        assert!(s.client_final(b"r=abcdef,s=c2FsdA==,i=4096").expect("valid").starts_with("c=biws,r=abcdef,p="));
    }

    /// TLS 1.3: the broker's verdict on our client certificate comes as an
    /// alert on the first read; that is an authentication failure, not a
    /// network error to retry, and the message names the broker.
    #[test]
    fn an_alert_after_the_handshake_is_an_authentication_failure() {
        let alert = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::BadCertificate),
        );
        let e = refused_or_io("127.0.0.1:29095", "reading ApiVersions", &alert);
        assert!(e.is_auth(), "{e}");
        assert!(e.to_string().contains("127.0.0.1:29095") && e.to_string().contains("client certificate"), "{e}");
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let e = refused_or_io("127.0.0.1:29095", "reading ApiVersions", &reset);
        assert!(!e.is_auth(), "{e}");
    }

    #[test]
    fn plain_token_layout() {
        assert_eq!(plain_token("alice", &Secret::new("pw")), b"\0alice\0pw");
    }
}
