//! Versioned migrations, applied on connect under an advisory lock.

use deadpool_postgres::Object;
use workflow_core::StoreError;

/// The migrations, in order. Version `i + 1` is `MIGRATIONS[i]`. Append only: a released
/// migration is never edited.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/0001_init.sql")];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Brings the schema `schema` up to [`SCHEMA_VERSION`]. Several processes may call this at
/// once: an advisory lock (per schema) lets one migrate while the others wait, after which
/// they find nothing to do. A schema newer than this build is refused.
pub(crate) async fn migrate(conn: &mut Object, schema: &str, describe: &str) -> Result<(), StoreError> {
    let err = |e: tokio_postgres::Error| crate::connect::error_for(describe, &e);
    let lock_key = advisory_key(schema);
    conn.execute("SELECT pg_advisory_lock($1)", &[&lock_key]).await.map_err(err)?;
    let result = migrate_locked(conn, schema, describe).await;
    // Unlock even after a failure (the lock is the session's; the pool keeps the session).
    let unlocked = conn.execute("SELECT pg_advisory_unlock($1)", &[&lock_key]).await.map_err(err);
    result?;
    unlocked.map(|_| ())
}

async fn migrate_locked(conn: &mut Object, schema: &str, describe: &str) -> Result<(), StoreError> {
    let err = |e: tokio_postgres::Error| crate::connect::error_for(describe, &e);
    conn.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.wf_migrations (
             version    int PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(err)?;
    let row = conn
        .query_one(&format!("SELECT coalesce(max(version), 0) FROM {schema}.wf_migrations"), &[])
        .await
        .map_err(err)?;
    let found: i32 = row.get(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::UnsupportedVersion { found: found as u32, supported: SCHEMA_VERSION as u32 });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i32 + 1;
        let tx = conn.transaction().await.map_err(err)?;
        tx.batch_execute(&format!("SET LOCAL search_path TO {schema}; {sql}")).await.map_err(|e| {
            let mut e = err(e);
            if let StoreError::Backend { reason, .. } = &mut e {
                *reason = format!("migration {version} failed: {reason}");
            }
            e
        })?;
        tx.execute(&format!("INSERT INTO {schema}.wf_migrations (version) VALUES ($1)"), &[&version])
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        tracing::info!(schema, version, "applied workflow-store-postgres migration");
    }
    Ok(())
}

/// The advisory lock key of a schema: a fixed tag mixed with an FNV-1a hash of its name.
fn advisory_key(schema: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"workflow-store-postgres/".iter().chain(schema.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// Checks a schema name: a plain lower-case SQL identifier, so it needs no quoting.
pub(crate) fn check_schema_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Backend {
            reason: format!(
                "invalid schema name {name:?}: use 1 to 48 lower-case letters, digits and underscores, not starting with a digit"
            ),
            retryable: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        assert!(check_schema_name("public").is_ok());
        assert!(check_schema_name("wf_test_1").is_ok());
        for bad in ["", "1abc", "Public", "a;drop", "a b", "\"x\"", &"a".repeat(49)] {
            assert!(check_schema_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn advisory_keys_differ_per_schema() {
        assert_ne!(advisory_key("public"), advisory_key("other"));
        assert_eq!(advisory_key("public"), advisory_key("public"));
    }
}
