//! Connecting: the URL, TLS, the pool, and errors that name the server but never the password.

use std::str::FromStr;
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;
use workflow_core::StoreError;

/// Where a store connects: host, port, database and user, never the password.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) config: Config,
    pub(crate) tls: MakeRustlsConnect,
    /// `user@host:port/dbname`, for messages and logs.
    pub(crate) describe: String,
}

impl Target {
    pub(crate) fn parse(url: &str, schema: &str) -> Result<Target, StoreError> {
        // As libpq: `prefer` and `require` encrypt without checking the server's certificate;
        // `verify-ca` and `verify-full` check it against the Mozilla roots (and the host name).
        // tokio-postgres knows only the first three, so the verifying modes are read here.
        let verify = url.contains("sslmode=verify-full") || url.contains("sslmode=verify-ca");
        let url = url.replace("sslmode=verify-full", "sslmode=require").replace("sslmode=verify-ca", "sslmode=require");
        let mut config = Config::from_str(&url).map_err(|e| StoreError::Backend {
            // The parser's message never repeats the password.
            reason: format!("invalid PostgreSQL connection string: {e}"),
            retryable: false,
        })?;
        let mut options = config.get_options().unwrap_or("").to_string();
        if !options.is_empty() {
            options.push(' ');
        }
        options.push_str(&format!("-c search_path={schema}"));
        config.options(&options);
        if config.get_application_name().is_none() {
            config.application_name("workflow-store-postgres");
        }
        let describe = describe(&config);
        Ok(Target { config, tls: tls_connector(verify), describe })
    }

    /// Whether the URL asked for TLS (sslmode=prefer, the default, tries it; require insists).
    pub(crate) fn ssl_mode(&self) -> SslMode {
        self.config.get_ssl_mode()
    }

    pub(crate) fn pool(&self, max_size: usize) -> Result<Pool, StoreError> {
        let manager = Manager::from_config(
            self.config.clone(),
            self.tls.clone(),
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        Pool::builder(manager).max_size(max_size).build().map_err(|e| StoreError::Backend {
            reason: format!("cannot build the connection pool for {}: {e}", self.describe),
            retryable: false,
        })
    }

    /// Maps a driver error to a store error that names this server.
    pub(crate) fn error(&self, e: tokio_postgres::Error) -> StoreError {
        error_for(&self.describe, &e)
    }

    pub(crate) fn pool_error(&self, e: deadpool_postgres::PoolError) -> StoreError {
        match e {
            deadpool_postgres::PoolError::Backend(e) => self.error(e),
            other => StoreError::Backend {
                reason: format!("no connection to PostgreSQL at {}: {other}", self.describe),
                retryable: true,
            },
        }
    }
}

fn describe(config: &Config) -> String {
    let host = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",");
    let host = if host.is_empty() { "localhost".to_string() } else { host };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("(default user)");
    let db = config.get_dbname().unwrap_or(user);
    format!("{user}@{host}:{port}/{db}")
}

fn tls_connector(verify: bool) -> MakeRustlsConnect {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions");
    let config = if verify {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(EncryptOnly(provider))).with_no_client_auth()
    };
    MakeRustlsConnect::new(config)
}

/// `sslmode=prefer`/`require`: any certificate is accepted (libpq's behaviour), but the
/// handshake's signatures are still checked, so the session is encrypted end to end.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Whether a failed transaction can simply be run again: a serialization failure, a
/// deadlock, or a unique violation from a concurrent writer (the retry sees its row).
pub(crate) fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    )
}

pub(crate) fn error_for(describe: &str, e: &tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            return StoreError::Backend {
                reason: format!(
                    "PostgreSQL at {describe} refused the credentials ({}); check the user and password in the connection string",
                    db.message()
                ),
                retryable: false,
            };
        }
        if *code == SqlState::INVALID_CATALOG_NAME {
            return StoreError::Backend {
                reason: format!("PostgreSQL at {describe}: {}; create the database first", db.message()),
                retryable: false,
            };
        }
        let retryable = is_retryable(e)
            || code.code().starts_with("08")
            || code.code().starts_with("53")
            || code.code().starts_with("57");
        return StoreError::Backend {
            reason: format!("PostgreSQL at {describe}: {} (SQLSTATE {})", db.message(), code.code()),
            retryable,
        };
    }
    // No server answer: the connection failed or broke. Trying again later can help.
    let unreachable = e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    let what = if unreachable { "cannot reach PostgreSQL at" } else { "PostgreSQL at" };
    StoreError::Backend { reason: format!("{what} {describe}: {e}"), retryable: true }
}
