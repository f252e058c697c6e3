//! What the operator console keeps: accounts, login sessions, its audit trail, call search, the
//! nodes each call went through (the funnel) and script edits.
//!
//! A session row holds the SHA-256 of the cookie, never the cookie: a copy of the database
//! does not log anyone in.

use sqlx::Row;

use super::calls::call_from_row;
use super::{corrupt, now_ms, Store, StoreError};
use crate::model::StoredCall;

/// A logged-in operator, as a session row says.
#[derive(Debug, Clone)]
pub struct OperatorSession {
    pub username: String,
    /// The token every form of this session must carry.
    pub csrf: String,
    pub expires_at_ms: i64,
}

/// One console change (do-not-call edits, script saves, hang-ups, logins).
#[derive(Debug, Clone)]
pub struct ConsoleAuditEntry {
    pub at_ms: i64,
    pub username: String,
    pub action: String,
    pub detail: String,
}

/// The call records search; every field optional.
#[derive(Debug, Clone, Default)]
pub struct CallQuery {
    /// Part of either number (digits compared as typed).
    pub phone: Option<String>,
    pub outcome: Option<String>,
    pub campaign: Option<String>,
    /// Created at or after / before (Unix ms).
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: u32,
}

impl Store {
    /// Creates an operator or sets a new password; every session of theirs ends.
    pub async fn set_operator(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO operators (username, password_hash, created_at_ms) VALUES ($1, $2, $3)
             ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash",
        )
        .bind(username)
        .bind(password_hash)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        sqlx::query("DELETE FROM console_sessions WHERE username = $1")
            .bind(username)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn operator_hash(&self, username: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT password_hash FROM operators WHERE username = $1")
            .bind(username)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("password_hash")).transpose()?)
    }

    pub async fn operators(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query("SELECT username FROM operators ORDER BY username")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| Ok(r.try_get("username")?))
            .collect()
    }

    /// A new login session (expired ones are swept on the way).
    pub async fn create_session(
        &self,
        token_hash: &str,
        username: &str,
        csrf: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query("DELETE FROM console_sessions WHERE expires_at_ms <= $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, username, csrf, created_at_ms, expires_at_ms)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(username)
        .bind(csrf)
        .bind(now)
        .bind(expires_at_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The live session with this cookie hash, if any.
    pub async fn session(&self, token_hash: &str) -> Result<Option<OperatorSession>, StoreError> {
        let row = sqlx::query(
            "SELECT username, csrf, expires_at_ms FROM console_sessions
             WHERE token_hash = $1 AND expires_at_ms > $2",
        )
        .bind(token_hash)
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(OperatorSession {
                username: r.try_get("username")?,
                csrf: r.try_get("csrf")?,
                expires_at_ms: r.try_get("expires_at_ms")?,
            })
        })
        .transpose()
    }

    pub async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn console_audit(
        &self,
        username: &str,
        action: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_audit (at_ms, username, action, detail) VALUES ($1, $2, $3, $4)",
        )
        .bind(now_ms())
        .bind(username)
        .bind(action)
        .bind(detail)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The newest console changes first; `action_prefix` narrows it (`dnc_`).
    pub async fn console_audit_log(
        &self,
        action_prefix: &str,
        limit: u32,
    ) -> Result<Vec<ConsoleAuditEntry>, StoreError> {
        sqlx::query("SELECT * FROM console_audit WHERE action LIKE $1 ORDER BY id DESC LIMIT $2")
            .bind(format!("{}%", like_escape(action_prefix)))
            .bind(limit as i64)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                Ok(ConsoleAuditEntry {
                    at_ms: r.try_get("at_ms")?,
                    username: r.try_get("username")?,
                    action: r.try_get("action")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    /// Calls matching the search, newest first.
    pub async fn search_calls(&self, q: &CallQuery) -> Result<Vec<StoredCall>, StoreError> {
        let phone = q
            .phone
            .as_deref()
            .map(|p| format!("%{}%", like_escape(p.trim())));
        sqlx::query(
            "SELECT * FROM calls
             WHERE ($1 IS NULL OR from_number LIKE $1 OR to_number LIKE $1)
               AND ($2 IS NULL OR outcome = $2)
               AND ($3 IS NULL OR campaign_id = $3)
               AND created_at_ms >= $4 AND created_at_ms < $5
             ORDER BY created_at_ms DESC, sid DESC LIMIT $6",
        )
        .bind(phone)
        .bind(q.outcome.clone())
        .bind(q.campaign.clone())
        .bind(q.from_ms.unwrap_or(i64::MIN))
        .bind(q.to_ms.unwrap_or(i64::MAX))
        .bind(q.limit.clamp(1, 1000) as i64)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(call_from_row)
        .collect()
    }

    /// The nodes a live call went through so far (written as the call moves).
    pub async fn set_call_path(&self, sid: &str, path: &[String]) -> Result<(), StoreError> {
        let json = serde_json::to_string(path).map_err(|e| corrupt("call path", e))?;
        sqlx::query("UPDATE calls SET path_json = $1 WHERE sid = $2")
            .bind(json)
            .bind(sid)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A campaign's script, replaced (validated by the caller).
    pub async fn set_campaign_script(&self, id: &str, script_toml: &str) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE campaigns SET script_toml = $1, updated_at_ms = $2 WHERE id = $3")
                .bind(script_toml)
                .bind(now_ms())
                .bind(id)
                .execute(self.pool())
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("campaign {id}")));
        }
        Ok(())
    }
}

/// `LIKE` treats `%` and `_` as wildcards: a searched phone is matched as typed.
fn like_escape(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '%' | '_' | '\\'))
        .collect()
}
