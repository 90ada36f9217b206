//! Where a store is: a sled folder or a PostgreSQL URL, as `--db` takes it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use workflow_core::store::Store;
use workflow_core::StoreError;
use workflow_store_postgres::PostgresStore;
use workflow_store_sled::SledStore;

/// A store as `--db` names it: a `postgres://` (or `postgresql://`) URL, or else a folder
/// holding a sled store.
///
/// ```
/// use workflow_cli::location::StoreLocation;
/// let db: StoreLocation = "postgres://app:secret@db.internal/jobs".parse().unwrap();
/// assert_eq!(db.to_string(), "postgres://app:***@db.internal/jobs"); // never the password
/// let db: StoreLocation = "batch-data".parse().unwrap();
/// assert!(matches!(db, StoreLocation::Sled(_)));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A sled store's folder (one process at a time).
    Sled(PathBuf),
    /// A PostgreSQL connection URL (any number of processes).
    Postgres(String),
}

impl StoreLocation {
    /// Whether this is a PostgreSQL store.
    pub fn is_postgres(&self) -> bool {
        matches!(self, StoreLocation::Postgres(_))
    }

    /// Opens the store: a sled folder is created when missing; a PostgreSQL schema is
    /// created or upgraded by its migrations.
    pub async fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        match self {
            StoreLocation::Sled(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend {
                    reason: format!("cannot create the store folder {}: {e}", dir.display()),
                    retryable: false,
                })?;
                Ok(Arc::new(SledStore::open(dir)?))
            }
            StoreLocation::Postgres(url) => Ok(Arc::new(PostgresStore::connect(url).await?)),
        }
    }
}

impl FromStr for StoreLocation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("the store location is empty: give a folder or a postgres:// URL".into());
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(StoreLocation::Postgres(s.to_string()))
        } else {
            Ok(StoreLocation::Sled(PathBuf::from(s)))
        }
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sled(p) => write!(f, "{}", p.display()),
            StoreLocation::Postgres(url) => f.write_str(&mask_password(url)),
        }
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// `scheme://user:secret@host/...` with the secret replaced by `***` (and `password=` query
/// parameters likewise).
fn mask_password(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..].find(['/', '?']).map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    if let Some(i) = out.find("password=") {
        let start = i + "password=".len();
        let end = out[start..].find('&').map_or(out.len(), |j| start + j);
        out.replace_range(start..end, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(mask_password("postgres://u:p%40ss@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(mask_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            mask_password("postgres://h/db?password=x&sslmode=require"),
            "postgres://h/db?password=***&sslmode=require"
        );
        assert_eq!(mask_password("postgresql://u:a@b@h/db"), "postgresql://u:***@h/db");
    }

    #[test]
    fn parses_both_kinds() {
        assert!("postgresql://h/db".parse::<StoreLocation>().unwrap().is_postgres());
        assert!(!"./data".parse::<StoreLocation>().unwrap().is_postgres());
        assert!("".parse::<StoreLocation>().is_err());
    }
}
