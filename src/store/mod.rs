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
//! Durability. SQLite runs in WAL mode with `synchronous = NORMAL`: a commit survives the
//! process dying (kill -9 included) but the last ones may be lost to a power cut or a kernel
//! crash. Two writes must survive even that, so they run with `synchronous = FULL` (an fsync
//! of the WAL at commit, about a millisecond on an SSD, tens on a spinning disk): a
//! do-not-call entry (the caller was told it is done) and a lead claim (a claim lost after
//! its call was placed would let the lead be dialed again). Transcript lines, statuses and
//! audit rows stay on NORMAL: there are many of them and each can be rebuilt or reconciled.
//! PostgreSQL commits durably by default (`synchronous_commit = on`).
//!
//! Claims. A claim names its appliance (`claimed_by`, `twilio.worker_id`) and carries a lease
//! (`claim_expires_at_ms`) the claimant renews while its create is in flight; restart
//! recovery and the periodic reconcile touch only their own claims from before the restart
//! and claims whose lease ran out, each with a compare-and-set, so two appliances never
//! settle the same lead differently.
//!
//! Layout: the row types are [`crate::model`]'s; `campaigns.rs`, `leads.rs`, `calls.rs`,
//! `compliance.rs`, `outbox.rs` (events for customers' CRMs) and `recordings.rs` (which call
//! has a recording, and the retention sweep that deletes them) hold the queries for each
//! table family.

mod calls;
pub use leads::InsertReport;
mod campaigns;
mod compliance;
mod console;
pub use console::{CallQuery, ConsoleAuditEntry, OperatorSession};
mod leads;
mod outbox;
mod recordings;
mod sink;
pub use outbox::MAX_DELIVERY_PAGE;
pub use recordings::{spawn_retention, SweepReport};
pub use sink::{spawn_sink, SINK_CAPACITY};

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, ConnectOptions};

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

    /// A pooled connection that commits with `synchronous = FULL` on SQLite (see the module
    /// docs); hand it back through [`Self::relax`]. If that is skipped on an error path, the
    /// connection merely stays on FULL: slower, never less safe.
    pub(crate) async fn durable(&self) -> Result<PoolConnection<Any>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA synchronous = FULL")
                .execute(&mut *conn)
                .await?;
        }
        Ok(conn)
    }

    /// Puts a [`Self::durable`] connection back on the pool's `synchronous = NORMAL`.
    pub(crate) async fn relax(&self, mut conn: PoolConnection<Any>) {
        if self.backend == Backend::Sqlite {
            if let Err(e) = sqlx::query("PRAGMA synchronous = NORMAL")
                .execute(&mut *conn)
                .await
            {
                tracing::debug!(error = %e, "connection stays on synchronous = FULL");
            }
        }
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
