//! TLS to a PostgreSQL store, as libpq (and so `psql`) does it, on the rustls llmbench already
//! carries for HTTPS.
//!
//! The URL's `sslmode` decides, as in libpq:
//! - `disable`: plain TCP;
//! - `prefer` (the default): TLS when the server offers it, else plain; `require`: TLS or fail.
//!   Both encrypt without checking the server's certificate, unless a root certificate is given
//!   (`sslrootcert=FILE` in the URL, or `PGSSLROOTCERT`): then the chain must lead to it;
//! - `verify-ca`: TLS, the chain must lead to the given root (else to the public roots llmbench
//!   knows, the Mozilla set: libpq would read `~/.postgresql/root.crt`); the host name is not
//!   checked; `verify-full`: the same and the certificate must name the host.
//!
//! The `postgres` crate knows only `disable`, `prefer` and `require` and no `sslrootcert`:
//! [`parse`] takes both out of the URL before handing it on.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    /// Encrypt only (libpq's `prefer` and `require` without a root certificate).
    None,
    /// The chain must lead to these roots (a PEM file, or the public roots when `None`); with
    /// `name`, the certificate must also name the host.
    Chain { roots: Option<PathBuf>, name: bool },
}

/// A PostgreSQL URL made ready to connect: the `postgres` crate's configuration and the check
/// its TLS gets.
#[derive(Debug)]
pub(crate) struct PgTarget {
    pub(crate) config: postgres::Config,
    pub(crate) check: Check,
}

/// Reads `url`: its `sslmode` (libpq's five) and `sslrootcert`, else `PGSSLROOTCERT`. Errors
/// name the parameter and the root file, not the URL (the caller shows it, password redacted).
pub(crate) fn parse(url: &str) -> anyhow::Result<PgTarget> {
    let (head, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept: Vec<&str> = Vec::new();
    let (mut mode, mut root) = (None::<String>, None::<PathBuf>);
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        match kv.split_once('=') {
            Some(("sslmode", v)) => mode = Some(v.to_ascii_lowercase()),
            Some(("sslrootcert", v)) => root = Some(PathBuf::from(percent_decode(v))),
            Some((k @ ("sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir"), _)) => {
                bail!("{k}: client certificates and revocation lists are not supported")
            }
            _ => kept.push(kv),
        }
    }
    let root = root.or_else(|| std::env::var_os("PGSSLROOTCERT").map(PathBuf::from));
    let (crate_mode, check) = match mode.as_deref().unwrap_or("prefer") {
        "disable" => ("disable", Check::None),
        m @ ("prefer" | "require") => match &root {
            None => (m, Check::None),
            Some(_) => (
                m,
                Check::Chain {
                    roots: root.clone(),
                    name: false,
                },
            ),
        },
        "verify-ca" | "verify-full" => (
            "require",
            Check::Chain {
                roots: root.clone(),
                name: mode.as_deref() == Some("verify-full"),
            },
        ),
        other => {
            bail!("sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full")
        }
    };
    if let Check::Chain { roots: Some(f), .. } = &check {
        roots_from(f).context("sslrootcert")?;
    }
    kept.push(match crate_mode {
        "disable" => "sslmode=disable",
        "require" => "sslmode=require",
        _ => "sslmode=prefer",
    });
    let cleaned = format!("{head}?{}", kept.join("&"));
    let config = cleaned
        .parse::<postgres::Config>()
        .map_err(|e| anyhow!("not a valid PostgreSQL URL ({e})"))?;
    Ok(PgTarget { config, check })
}

/// `%XX` escapes decoded (a path in a URL parameter).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The certificates of a PEM file.
fn roots_from(file: &std::path::Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(file)
        .map_err(|e| anyhow!("{}: {e}", file.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{}: {e}", file.display()))?;
    if certs.is_empty() {
        bail!("{}: no PEM certificate in it", file.display());
    }
    Ok(certs)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS connector for `check`.
pub(crate) fn connector(check: &Check) -> anyhow::Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS set-up")?;
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        Check::None => Arc::new(EncryptOnly(provider())),
        Check::Chain { roots, name } => {
            let (roots, pinned) = match roots {
                Some(f) => {
                    let pinned = roots_from(f)?;
                    let mut roots = RootCertStore::empty();
                    for c in &pinned {
                        // A certificate webpki cannot take as a root stays pinned only.
                        let _ = roots.add(c.clone());
                    }
                    (roots, pinned)
                }
                None => (
                    RootCertStore {
                        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                    },
                    Vec::new(),
                ),
            };
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .context("TLS set-up")?;
            Arc::new(Chain {
                webpki,
                pinned,
                name: *name,
            })
        }
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// libpq's `require`: any certificate, the handshake's signatures still checked.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca` (chain only) and `verify-full` (chain and host name).
#[derive(Debug)]
struct Chain {
    webpki: Arc<WebPkiServerVerifier>,
    /// The root file's certificates: a server presenting one of them exactly (a self-signed
    /// certificate given as its own root, as PostgreSQL's documentation sets it up) is trusted
    /// once its dates (and, for `verify-full`, its name) check out; webpki alone refuses a CA
    /// certificate as the end entity.
    pinned: Vec<CertificateDer<'static>>,
    name: bool,
}

impl Chain {
    fn pinned_ok(
        &self,
        cert: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use x509_cert::der::Decode;
        let bad = |e| rustls::Error::InvalidCertificate(e);
        let parsed = x509_cert::Certificate::from_der(cert.as_ref())
            .map_err(|_| bad(CertificateError::BadEncoding))?;
        let validity = &parsed.tbs_certificate.validity;
        let now = std::time::Duration::from_secs(now.as_secs());
        if now < validity.not_before.to_unix_duration() {
            return Err(bad(CertificateError::NotValidYet));
        }
        if now > validity.not_after.to_unix_duration() {
            return Err(bad(CertificateError::Expired));
        }
        if self.name {
            webpki::EndEntityCert::try_from(cert)
                .map_err(|_| bad(CertificateError::BadEncoding))?
                .verify_is_valid_for_subject_name(server_name)
                .map_err(|_| bad(CertificateError::NotValidForName))?;
        }
        Ok(ServerCertVerified::assertion())
    }
}

impl ServerCertVerifier for Chain {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return self.pinned_ok(end_entity, server_name, now);
        }
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmodes_map_to_the_crate_and_a_check() {
        let t = parse("postgres://u@h/db?sslmode=verify-full&application_name=x").unwrap();
        assert_eq!(t.config.get_ssl_mode(), postgres::config::SslMode::Require);
        assert_eq!(
            t.check,
            Check::Chain {
                roots: None,
                name: true
            }
        );
        let t = parse("postgres://u@h/db?sslmode=disable").unwrap();
        assert_eq!(t.config.get_ssl_mode(), postgres::config::SslMode::Disable);
        let t = parse("postgres://u@h/db").unwrap();
        assert_eq!(t.config.get_ssl_mode(), postgres::config::SslMode::Prefer);
        let e = parse("postgres://u:pw@h/db?sslmode=sometimes").unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains("sslmode=sometimes") && !e.contains("pw"), "{e}");
        let e = parse("postgres://u@h/db?sslmode=verify-ca&sslrootcert=/nonexistent%2Fca.pem")
            .unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent/ca.pem"), "{e:#}");
        let e = parse("postgres://u@h/db?sslcert=/c.pem").unwrap_err();
        assert!(format!("{e:#}").starts_with("sslcert: "), "{e:#}");
    }

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("%2Fetc%2Fca.pem"), "/etc/ca.pem");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("plain"), "plain");
    }
}
