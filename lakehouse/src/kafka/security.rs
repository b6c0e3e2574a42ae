//! Connection security of the native Kafka clients (the record fetcher and
//! the topic-id lookup), read from the same librdkafka properties that
//! configure group membership, so one `kafka.properties` serves both:
//!
//! | property | values |
//! |---|---|
//! | `security.protocol` | `plaintext` (default), `ssl`, `sasl_plaintext`, `sasl_ssl` |
//! | `sasl.mechanism` / `sasl.mechanisms` | `SCRAM-SHA-512`, `SCRAM-SHA-256`, `PLAIN` |
//! | `sasl.username`, `sasl.password` | the credentials (`LAKEHOUSE_KAFKA_SASL_PASSWORD` overrides the password) |
//! | `ssl.ca.location` / `ssl.ca.pem` | CA certificates (PEM file or directory / inline); default: the system bundle |
//! | `ssl.certificate.location`, `ssl.key.location` | client certificate and unencrypted key (PEM), for mutual TLS |
//! | `ssl.endpoint.identification.algorithm` | `https` (default: the broker's certificate must name its host) or `none` |
//!
//! Anything else under `ssl.` / `sasl.` that the native clients cannot honour
//! (keystores, encrypted keys, GSSAPI, OAUTHBEARER) is refused at validation
//! rather than silently ignored. Secrets never reach `Debug`, `Display`, logs
//! or errors: the password lives in a [`Secret`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// Property names whose values are secrets: redacted wherever configuration is printed.
pub const SECRET_PROPERTIES: &[&str] = &[
    "sasl.password",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl.keystore.password",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.config",
];

/// Whether the value of property `key` must never be shown.
pub fn is_secret(key: &str) -> bool {
    SECRET_PROPERTIES.contains(&key) || key.contains("password") || key.contains("secret")
}

/// A value that prints as `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A SASL mechanism the native clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    /// Kafka's name of the mechanism (SaslHandshake).
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials.
#[derive(Debug, Clone)]
pub struct Sasl {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: Secret,
}

/// How connections to brokers are made.
#[derive(Clone, Default)]
pub struct Security {
    /// `Some` for `ssl` and `sasl_ssl`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// `Some` for `sasl_plaintext` and `sasl_ssl`.
    pub sasl: Option<Sasl>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security").field("tls", &self.tls.is_some()).field("sasl", &self.sasl).finish()
    }
}

impl Security {
    /// The protocol name, for logs.
    pub fn protocol(&self) -> &'static str {
        match (self.tls.is_some(), self.sasl.is_some()) {
            (false, false) => "plaintext",
            (true, false) => "ssl",
            (false, true) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        }
    }

    /// Reads `kafka.properties`. Errors name the property, never a secret value.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<Self, String> {
        let get = |k: &str| props.get(k).map(String::as_str);
        for key in props.keys() {
            let supported = matches!(
                key.as_str(),
                "security.protocol"
                    | "sasl.mechanism"
                    | "sasl.mechanisms"
                    | "sasl.username"
                    | "sasl.password"
                    | "ssl.ca.location"
                    | "ssl.ca.pem"
                    | "ssl.certificate.location"
                    | "ssl.key.location"
                    | "ssl.endpoint.identification.algorithm"
            );
            if !supported && (key.starts_with("ssl.") || key.starts_with("sasl.") || key.starts_with("ssl_")) {
                return Err(format!(
                    "kafka.properties.\"{key}\" is not supported by the record fetcher (it speaks TLS with PEM \
                     files: ssl.ca.location, ssl.certificate.location, ssl.key.location (unencrypted), and SASL \
                     PLAIN / SCRAM-SHA-256 / SCRAM-SHA-512)"
                ));
            }
        }
        let protocol = get("security.protocol").unwrap_or("plaintext").to_ascii_lowercase();
        let (tls, sasl) = match protocol.as_str() {
            "plaintext" => (false, false),
            "ssl" => (true, false),
            "sasl_plaintext" => (false, true),
            "sasl_ssl" => (true, true),
            other => {
                return Err(format!(
                    "kafka.properties.\"security.protocol\" = {other:?}: plaintext, ssl, sasl_plaintext or sasl_ssl"
                ));
            }
        };
        let sasl = if sasl {
            let m = get("sasl.mechanism").or(get("sasl.mechanisms")).unwrap_or("GSSAPI");
            let mechanism = match m.to_ascii_uppercase().as_str() {
                "PLAIN" => Mechanism::Plain,
                "SCRAM-SHA-256" => Mechanism::ScramSha256,
                "SCRAM-SHA-512" => Mechanism::ScramSha512,
                _ => {
                    return Err(format!(
                        "kafka.properties.\"sasl.mechanism\" = {m:?}: the record fetcher speaks PLAIN, \
                         SCRAM-SHA-256 and SCRAM-SHA-512 (set sasl.mechanism)"
                    ));
                }
            };
            let username = get("sasl.username")
                .filter(|u| !u.is_empty())
                .ok_or_else(|| format!("security.protocol = {protocol} needs kafka.properties.\"sasl.username\""))?;
            let password = get("sasl.password").ok_or_else(|| {
                format!(
                    "security.protocol = {protocol} needs a password: kafka.properties.\"sasl.password\" or \
                     LAKEHOUSE_KAFKA_SASL_PASSWORD"
                )
            })?;
            Some(Sasl { mechanism, username: username.to_string(), password: Secret::new(password) })
        } else {
            if let Some(k) = ["sasl.username", "sasl.password", "sasl.mechanism", "sasl.mechanisms"]
                .into_iter()
                .find(|k| props.contains_key(*k))
            {
                return Err(format!(
                    "kafka.properties.\"{k}\" is set but security.protocol = {protocol} does not use SASL \
                     (sasl_plaintext or sasl_ssl)"
                ));
            }
            None
        };
        let tls = if tls {
            Some(Arc::new(tls_config(props)?))
        } else {
            if let Some(k) = props.keys().find(|k| k.starts_with("ssl.")) {
                return Err(format!(
                    "kafka.properties.\"{k}\" is set but security.protocol = {protocol} does not use TLS \
                     (ssl or sasl_ssl)"
                ));
            }
            None
        };
        Ok(Self { tls, sasl })
    }
}

/// CA bundles of the common distributions, tried when `ssl.ca.location` is unset.
const SYSTEM_CA_BUNDLES: &[&str] =
    &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

fn tls_config(props: &BTreeMap<String, String>) -> Result<rustls::ClientConfig, String> {
    let get = |k: &str| props.get(k).map(String::as_str);
    let mut roots = rustls::RootCertStore::empty();
    let mut add = |certs: Vec<CertificateDer<'static>>, origin: &str| -> Result<(), String> {
        if certs.is_empty() {
            return Err(format!("{origin}: no PEM certificate in it"));
        }
        for c in certs {
            roots.add(c).map_err(|e| format!("{origin}: unusable CA certificate: {e}"))?;
        }
        Ok(())
    };
    match (get("ssl.ca.location"), get("ssl.ca.pem")) {
        (Some(_), Some(_)) => return Err("set one of kafka.properties ssl.ca.location and ssl.ca.pem".into()),
        (Some(loc), None) if loc != "probe" => {
            let path = Path::new(loc);
            let files: Vec<std::path::PathBuf> = if path.is_dir() {
                let mut v: Vec<_> = std::fs::read_dir(path)
                    .map_err(|e| format!("ssl.ca.location {loc}: {e}"))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "pem" || x == "crt"))
                    .collect();
                v.sort();
                v
            } else {
                vec![path.to_path_buf()]
            };
            let mut certs = Vec::new();
            for f in &files {
                certs.extend(read_certs(f).map_err(|e| format!("ssl.ca.location: {e}"))?);
            }
            add(certs, &format!("ssl.ca.location {loc}"))?;
        }
        (None, Some(pem)) => {
            let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("ssl.ca.pem: {e}"))?;
            add(certs, "ssl.ca.pem")?;
        }
        _ => {
            let bundle = SYSTEM_CA_BUNDLES.iter().find(|p| Path::new(p).is_file()).ok_or_else(|| {
                format!("no ssl.ca.location given and no system CA bundle found (looked for {SYSTEM_CA_BUNDLES:?})")
            })?;
            let certs = read_certs(Path::new(bundle))?;
            add(certs, bundle)?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verify_names = match get("ssl.endpoint.identification.algorithm").unwrap_or("https") {
        "https" => true,
        "none" => false,
        v => {
            return Err(format!("kafka.properties.\"ssl.endpoint.identification.algorithm\" = {v:?}: https or none"));
        }
    };
    let roots = Arc::new(roots);
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = if verify_names {
        builder.with_root_certificates(roots)
    } else {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| format!("TLS setup: {e}"))?;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyName(inner)))
    };
    match (get("ssl.certificate.location"), get("ssl.key.location")) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key)) => {
            let certs = read_certs(Path::new(cert)).map_err(|e| format!("ssl.certificate.location: {e}"))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                format!("ssl.key.location {key}: {e} (an unencrypted PKCS#8, PKCS#1 or SEC1 PEM key is needed)")
            })?;
            builder.with_client_auth_cert(certs, key).map_err(|e| format!("client certificate {cert}: {e}"))
        }
        _ => Err("kafka.properties ssl.certificate.location and ssl.key.location go together".into()),
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `ssl.endpoint.identification.algorithm=none`: the chain must still lead to a
/// trusted CA, only the host name is not checked (as librdkafka does).
#[derive(Debug)]
struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn plaintext_by_default() {
        let s = Security::from_properties(&props(&[])).expect("plaintext");
        assert_eq!(s.protocol(), "plaintext");
    }

    #[test]
    fn sasl_needs_mechanism_user_and_password() {
        let err =
            Security::from_properties(&props(&[("security.protocol", "SASL_PLAINTEXT")])).expect_err("must be refused");
        assert!(err.contains("sasl.mechanism"), "{err}");
        let err = Security::from_properties(&props(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
        ]))
        .expect_err("must be refused");
        assert!(err.contains("sasl.username"), "{err}");
        let s = Security::from_properties(&props(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", "u"),
            ("sasl.password", "hunter2"),
        ]))
        .expect("valid");
        assert_eq!(s.protocol(), "sasl_plaintext");
        assert!(!format!("{s:?}").contains("hunter2"), "{s:?}");
    }

    #[test]
    fn unsupported_settings_are_refused_not_ignored() {
        for (k, v) in [
            ("ssl.keystore.location", "/x.p12"),
            ("ssl.key.password", "pw-VALUE"),
            ("sasl.kerberos.service.name", "krb-VALUE"),
        ] {
            let err = Security::from_properties(&props(&[("security.protocol", "ssl"), (k, v)]))
                .expect_err("must be refused");
            assert!(err.contains(k), "{err}");
            assert!(!err.contains("VALUE"), "values stay out of errors: {err}");
        }
        let err = Security::from_properties(&props(&[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "GSSAPI"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
        ]))
        .expect_err("must be refused");
        assert!(err.contains("GSSAPI"), "{err}");
        let err = Security::from_properties(&props(&[("security.protocol", "tls")])).expect_err("must be refused");
        assert!(err.contains("security.protocol"), "{err}");
        // SASL settings without a SASL protocol are a mistake, not a no-op.
        let err = Security::from_properties(&props(&[("sasl.username", "u")])).expect_err("must be refused");
        assert!(err.contains("does not use SASL"), "{err}");
    }

    #[test]
    fn missing_ca_file_is_a_clear_error() {
        let err = Security::from_properties(&props(&[
            ("security.protocol", "ssl"),
            ("ssl.ca.location", "/nonexistent/ca.pem"),
        ]))
        .expect_err("must be refused");
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
