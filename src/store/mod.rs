//! The store: campaigns, leads, calls with their status history, turns, outcomes, the
//! do-not-call list and the audit log of dial decisions.
//!
//! One set of queries runs on SQLite (the embedded default: a file, zero setup) and PostgreSQL
//! (several appliances sharing campaigns), through sqlx's `Any` driver. To keep the SQL portable,
//! times are Unix milliseconds (`BIGINT`), flags are 0/1 and structured values are JSON text;
//! placeholders are `$1..$n`, which both engines accept. The only statement that differs is the
//! lead claim, which on Postgres takes `FOR UPDATE SKIP LOCKED` so two dialers never take the
//! same lead (SQLite serialises writers, which gives the same guarantee).
//!
//! Layout: the row types are [`crate::model`]'s; `campaigns.rs`, `leads.rs`, `calls.rs` and
//! `compliance.rs` hold the queries for each table family.

mod calls;
pub use leads::InsertReport;
mod campaigns;
mod compliance;
mod leads;
mod sink;
pub use sink::spawn_sink;

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL `{url}` is not supported: use sqlite://PATH or postgres://...")]
    UnsupportedUrl { url: String },
    #[error("cannot open the database: {0}")]
    Connect(sqlx::Error),
    #[error("migrating the database schema failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {0}")]
    Query(#[from] sqlx::Error),
    #[error("stored value is corrupt ({what}): {reason}")]
    Corrupt { what: &'static str, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
}

/// Which SQL engine the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool plus the backend it talks to. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never print it.
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the schema.
    /// `sqlite://telemarketer.db`, `sqlite::memory:` or `postgres://user:pass@host/db`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl {
                url: redact_url(url),
            });
        };
        let url = match backend {
            // Create the file on first use; a bare path means a file, as users expect.
            Backend::Sqlite if !url.contains("mode=") && !url.contains(":memory:") => {
                format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
            }
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(StoreError::Connect)?
            .disable_statement_logging();
        let pool = AnyPoolOptions::new()
            // One connection for an in-memory SQLite database: each connection would be its own db.
            .max_connections(if url.contains(":memory:") { 1 } else { 8 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets the API read while the dialer writes; wait for locks instead of
                        // failing with SQLITE_BUSY; enforce the schema's foreign keys.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA busy_timeout = 10000",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA synchronous = NORMAL",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(StoreError::Connect)?;
        match backend {
            Backend::Sqlite => {
                sqlx::migrate!("src/store/migrations/sqlite")
                    .run(&pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("src/store/migrations/postgres")
                    .run(&pool)
                    .await?
            }
        }
        Ok(Self { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool (waits for in-flight queries).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch, the store's clock unit.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db` for error messages.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.split('?').next().unwrap_or_default().to_string(),
    }
}

fn corrupt(what: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            super::redact_url("postgres://u:hunter2@db/x"),
            "postgres://u:***@db/x"
        );
    }
}
