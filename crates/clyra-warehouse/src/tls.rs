//! TLS for warehouse connections, with libpq's `sslmode` semantics.
//!
//! The `postgres` driver only knows `disable`, `prefer` and `require`, so Clyra reads `sslmode`
//! and `sslrootcert` from the connection string itself ([`split`]), hands the driver the mode it
//! understands, and builds the rustls configuration ([`client_config`]):
//!
//! | `sslmode`            | TLS                      | certificate check                          |
//! |----------------------|--------------------------|--------------------------------------------|
//! | `disable`            | never                    | —                                          |
//! | `allow`, `prefer` (default) | if the server offers it | none (encryption, not authentication) |
//! | `require`            | mandatory                | none; with `sslrootcert`: as `verify-ca`   |
//! | `verify-ca`          | mandatory                | chain to `sslrootcert` (or Mozilla roots)  |
//! | `verify-full`        | mandatory                | chain and host name                        |
//!
//! Handshake signatures are always verified. Client certificates (`sslcert`, `sslkey`) are
//! refused. Unix-socket connections never use TLS (as libpq).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain connections only.
    Disable,
    /// libpq tries plain first; Clyra treats it as `prefer`.
    Allow,
    /// TLS when the server offers it, no certificate check (the default).
    Prefer,
    /// TLS mandatory, no certificate check unless `sslrootcert` is set.
    Require,
    /// TLS mandatory, certificate chain checked, host name not checked.
    VerifyCa,
    /// TLS mandatory, certificate chain and host name checked.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// The mode the `postgres` driver is given.
    fn driver(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow | SslMode::Prefer => "prefer",
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
        }
    }
}

/// Where trusted root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// `sslrootcert=system`: the Mozilla roots built into Clyra (webpki-roots).
    System,
    /// A PEM file of one or more CA certificates.
    File(PathBuf),
}

/// The TLS settings of a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// The effective mode (`require` with `sslrootcert` is already `verify-ca`).
    pub mode: SslMode,
    /// `sslrootcert`, if set.
    pub root_cert: Option<RootCert>,
}

/// Keys refused with an explanation.
const CLIENT_CERT_KEYS: &[&str] = &["sslcert", "sslkey", "sslpassword"];

/// Extracts the TLS settings from a connection string (URL query or `key=value` pairs) and
/// returns them with the string the driver should parse (`sslrootcert` removed, `sslmode`
/// mapped to one the driver knows). A string that does not tokenize is returned unchanged, for
/// the driver to report. Errors name the setting that is wrong; they never contain the string.
pub fn split(dsn: &str) -> Result<(TlsOptions, String), String> {
    let mut mode = None;
    let mut root = None;
    let mut take = |key: &str, value: &str| -> Result<bool, String> {
        if CLIENT_CERT_KEYS.contains(&key) {
            return Err(format!(
                "`{key}` is set, but client certificates (sslcert/sslkey) are not supported by \
                 Clyra; authenticate with a password, or connect through a proxy that presents \
                 the client certificate"
            ));
        }
        match key {
            "sslmode" => {
                mode = Some(SslMode::parse(value).ok_or_else(|| {
                    format!(
                        "invalid sslmode `{}`: expected disable, allow, prefer, require, \
                         verify-ca or verify-full",
                        value.chars().take(32).collect::<String>()
                    )
                })?);
            }
            "sslrootcert" => {
                root = Some(if value == "system" {
                    RootCert::System
                } else {
                    RootCert::File(PathBuf::from(value))
                });
            }
            _ => return Ok(false),
        }
        Ok(true)
    };
    // The driver reads these two schemes as URLs; any other `x://` string is left to it (and to
    // `suggest`), unchanged, so that its error message stays what it was.
    let is_url = dsn.starts_with("postgres://") || dsn.starts_with("postgresql://");
    if !is_url && dsn.contains("://") {
        return Ok((
            TlsOptions {
                mode: SslMode::Prefer,
                root_cert: None,
            },
            dsn.to_string(),
        ));
    }
    let rest = if let Some((head, query)) = dsn.split_once('?').filter(|_| is_url) {
        let (query, fragment) = match query.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (query, None),
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !take(&percent_decode(k), &percent_decode(v))? {
                kept.push(pair.to_string());
            }
        }
        (head.to_string(), kept, fragment)
    } else if is_url {
        (dsn.to_string(), Vec::new(), None)
    } else {
        match crate::suggest::tokenize(dsn) {
            Ok(pairs) => {
                let mut kept = Vec::new();
                for p in pairs {
                    if !take(&p.key, &p.value)? {
                        kept.push(format!(
                            "{}={}",
                            p.key,
                            crate::suggest::quote_value(&p.value)
                        ));
                    }
                }
                (kept.join(" "), Vec::new(), None)
            }
            Err(_) => (dsn.to_string(), Vec::new(), None),
        }
    };
    let mode =
        match (mode, &root) {
            // libpq: sslrootcert=system makes verify-full the default, and refuses weaker modes.
            (None, Some(RootCert::System)) => SslMode::VerifyFull,
            (Some(m), Some(RootCert::System)) if m != SslMode::VerifyFull => return Err(
                "sslrootcert=system requires sslmode=verify-full (as libpq): checking a public \
                 CA chain without the host name proves nothing"
                    .to_string(),
            ),
            // libpq: require with a root certificate file behaves like verify-ca.
            (Some(SslMode::Require), Some(RootCert::File(_))) => SslMode::VerifyCa,
            (m, _) => m.unwrap_or(SslMode::Prefer),
        };
    let (head, mut query, fragment) = rest;
    let driver_mode = format!("sslmode={}", mode.driver());
    let out = if is_url {
        query.push(driver_mode);
        let mut s = format!("{head}?{}", query.join("&"));
        if let Some(f) = fragment {
            s.push('#');
            s.push_str(f);
        }
        s
    } else if head.is_empty() {
        driver_mode
    } else {
        format!("{head} {driver_mode}")
    };
    Ok((
        TlsOptions {
            mode,
            root_cert: root,
        },
        out,
    ))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration for `options`; `None` for `disable`.
pub fn client_config(options: &TlsOptions) -> Result<Option<ClientConfig>, String> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match options.mode {
        SslMode::Disable => return Ok(None),
        SslMode::Allow | SslMode::Prefer | SslMode::Require => Arc::new(NoCertCheck {
            provider: Arc::clone(&provider),
        }),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = roots(options.root_cert.as_ref())?;
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
                .build()
                .map_err(|e| format!("cannot use the root certificates: {e}"))?;
            if options.mode == SslMode::VerifyCa {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            }
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Some(config))
}

fn roots(root: Option<&RootCert>) -> Result<Arc<RootCertStore>, String> {
    let path = match root {
        None | Some(RootCert::System) => {
            return Ok(Arc::new(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            }))
        }
        Some(RootCert::File(p)) => p,
    };
    let shown = path.display();
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read sslrootcert `{shown}`: {e}"))?;
    let mut store = RootCertStore::empty();
    for cert in iter {
        let cert = cert.map_err(|e| format!("sslrootcert `{shown}` is not valid PEM: {e}"))?;
        store
            .add(cert)
            .map_err(|e| format!("sslrootcert `{shown}` holds an unusable certificate: {e}"))?;
    }
    if store.is_empty() {
        return Err(format!(
            "sslrootcert `{shown}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(Arc::new(store))
}

/// `prefer`/`require`: any certificate is accepted (libpq's "encryption, not authentication"),
/// but the handshake signatures are still checked with the provider's algorithms.
#[derive(Debug)]
struct NoCertCheck {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoCertCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `verify-ca`: the WebPKI verifier, whose name mismatch (checked after the chain) is ignored.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn mode(dsn: &str) -> (SslMode, String) {
        let (o, rest) = split(dsn).unwrap();
        (o.mode, rest)
    }

    #[test]
    fn extracts_modes_from_pairs_and_urls() {
        assert_eq!(
            mode("host=db user=ann"),
            (SslMode::Prefer, "host=db user=ann sslmode=prefer".into())
        );
        assert_eq!(
            mode("host=db sslmode = verify-full dbname='a b'"),
            (
                SslMode::VerifyFull,
                "host=db dbname='a b' sslmode=require".into()
            )
        );
        assert_eq!(
            mode("postgres://u@db/x?sslmode=disable&application_name=a"),
            (
                SslMode::Disable,
                "postgres://u@db/x?application_name=a&sslmode=disable".into()
            )
        );
        assert_eq!(
            mode("postgres://u@db/x"),
            (SslMode::Prefer, "postgres://u@db/x?sslmode=prefer".into())
        );
        assert_eq!(mode("host=db sslmode=allow").1, "host=db sslmode=prefer");
        // The last setting wins, as in libpq.
        assert_eq!(
            mode("sslmode=disable sslmode=verify-ca").0,
            SslMode::VerifyCa
        );
    }

    #[test]
    fn root_certs_and_their_effect_on_the_mode() {
        let (o, rest) =
            split("postgres://db/x?sslrootcert=%2Fetc%2Fca.pem&sslmode=require").unwrap();
        assert_eq!(o.mode, SslMode::VerifyCa, "require + rootcert is verify-ca");
        assert_eq!(o.root_cert, Some(RootCert::File("/etc/ca.pem".into())));
        assert_eq!(rest, "postgres://db/x?sslmode=require");
        let (o, _) = split("host=db sslrootcert=system").unwrap();
        assert_eq!(
            (o.mode, o.root_cert),
            (SslMode::VerifyFull, Some(RootCert::System))
        );
        let e = split("host=db sslrootcert=system sslmode=verify-ca").unwrap_err();
        assert!(e.contains("verify-full"), "{e}");
        let (o, _) = split("host=db sslmode=prefer sslrootcert=/x.pem").unwrap();
        assert_eq!(o.mode, SslMode::Prefer);
    }

    #[test]
    fn refuses_client_certificates_and_bad_modes() {
        for dsn in [
            "host=db sslcert=/c.pem sslkey=/k.pem",
            "postgres://db/x?sslkey=/k.pem",
        ] {
            let e = split(dsn).unwrap_err();
            assert!(e.contains("client certificates"), "{e}");
            assert!(e.contains("not supported"), "{e}");
        }
        let e = split("host=db sslmode=verify_full").unwrap_err();
        assert!(e.contains("invalid sslmode `verify_full`"), "{e}");
    }

    #[test]
    fn missing_or_empty_root_files_are_named() {
        let opts = |p: &str| TlsOptions {
            mode: SslMode::VerifyCa,
            root_cert: Some(RootCert::File(p.into())),
        };
        let e = client_config(&opts("/nonexistent/ca.pem")).unwrap_err();
        assert!(
            e.contains("cannot read sslrootcert `/nonexistent/ca.pem`"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = client_config(&opts(empty.to_str().unwrap())).unwrap_err();
        assert!(e.contains("holds no PEM certificate"), "{e}");
        assert!(client_config(&TlsOptions {
            mode: SslMode::Disable,
            root_cert: None
        })
        .unwrap()
        .is_none());
    }
}
