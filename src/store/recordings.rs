//! Call recordings: which call has one and where, and their end after the campaign's
//! retention.
//!
//! A recording's row is written when the call is answered, before the first sample is
//! recorded: a WAV on disk is always one the store knows, so the retention sweep can always
//! find it. The sweep deletes the file, then clears the row and audits `recording_deleted` in
//! one transaction; a file already gone (a crash before it was written) is cleared the same way.
//!
//! Several appliances on one PostgreSQL database each keep their own recordings on their own
//! disk: there a row whose file is not on this disk is another appliance's, and left to it.
//! With SQLite there is one appliance, so such a row is stale and cleared.

use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_ms, Backend, Store, StoreError};
use crate::model::{CampaignSettings, StoredRecording};

/// One day, the shortest retention: younger recordings are never looked at.
const DAY_MS: i64 = 24 * 3600 * 1000;

/// What a retention sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Calls whose recording was deleted (or found gone) and forgotten.
    pub deleted: Vec<String>,
    /// Expired, but on another appliance's disk (PostgreSQL only).
    pub elsewhere: usize,
    /// Expired, but the file could not be deleted (kept, tried again next sweep).
    pub failed: usize,
}

fn recording_from_row(row: &AnyRow) -> Result<StoredRecording, StoreError> {
    Ok(StoredRecording {
        call_sid: row.try_get("sid")?,
        campaign_id: row.try_get("campaign_id")?,
        lead_id: row.try_get("lead_id")?,
        path: row.try_get("recording_path")?,
        recorded_at_ms: row.try_get("recorded_at_ms")?,
    })
}

impl Store {
    /// Notes that `call_sid` is recorded to `path` from `at_ms` on (its row must exist).
    pub async fn set_recording(
        &self,
        call_sid: &str,
        path: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE calls SET recording_path = $1, recorded_at_ms = $2, updated_at_ms = $3
             WHERE sid = $4",
        )
        .bind(path)
        .bind(at_ms)
        .bind(now_ms())
        .bind(call_sid)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("call {call_sid}")));
        }
        Ok(())
    }

    /// The call's recording, if it has one.
    pub async fn recording(&self, call_sid: &str) -> Result<Option<StoredRecording>, StoreError> {
        sqlx::query(
            "SELECT sid, campaign_id, lead_id, recording_path, recorded_at_ms FROM calls
             WHERE sid = $1 AND recording_path IS NOT NULL",
        )
        .bind(call_sid)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(recording_from_row)
        .transpose()
    }

    /// Recordings past their campaign's `recording_retention_days` at `now_ms`, oldest first.
    /// A recording whose campaign is gone or unreadable keeps the default retention.
    pub async fn expired_recordings(
        &self,
        now_ms: i64,
    ) -> Result<Vec<StoredRecording>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.sid, c.campaign_id, c.lead_id, c.recording_path, c.recorded_at_ms,
                    k.settings_json
             FROM calls c LEFT JOIN campaigns k ON k.id = c.campaign_id
             WHERE c.recording_path IS NOT NULL AND c.recorded_at_ms <= $1
             ORDER BY c.recorded_at_ms, c.sid",
        )
        .bind(now_ms - DAY_MS)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let rec = recording_from_row(row)?;
            let settings: Option<String> = row.try_get("settings_json")?;
            let days = retention_days(settings.as_deref());
            if rec.recorded_at_ms <= now_ms - days as i64 * DAY_MS {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Forgets `rec` (its file is deleted) and audits `recording_deleted` for its campaign,
    /// naming the call, in one transaction. False when the row no longer points at that file
    /// (another sweep got there first): nothing is audited twice.
    pub async fn forget_recording(
        &self,
        rec: &StoredRecording,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let cleared = sqlx::query(
            "UPDATE calls SET recording_path = NULL, recorded_at_ms = NULL, updated_at_ms = $1
             WHERE sid = $2 AND recording_path = $3",
        )
        .bind(now)
        .bind(&rec.call_sid)
        .bind(&rec.path)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if cleared == 1 {
            sqlx::query(
                "INSERT INTO audit_log (at_ms, campaign_id, lead_id, phone, decision, reason)
                 VALUES ($1, $2, $3, NULL, 'recording_deleted', $4)",
            )
            .bind(now)
            .bind(rec.campaign_id.clone().unwrap_or_default())
            .bind(rec.lead_id)
            .bind(format!("call {}: {reason}", rec.call_sid))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(cleared == 1)
    }

    /// The retention sweep at `now_ms`: each expired recording's file is deleted (with a
    /// half-written `.part` a crash left), then its row cleared and audited. A file that cannot
    /// be deleted keeps its row, to be tried again.
    pub async fn sweep_recordings(&self, now_ms: i64) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        for rec in self.expired_recordings(now_ms).await? {
            let path = std::path::Path::new(&rec.path);
            let _ = tokio::fs::remove_file(path.with_extension("wav.part")).await;
            let reason = match tokio::fs::remove_file(path).await {
                Ok(()) => "recording deleted at the end of its retention",
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if self.backend() == Backend::Postgres {
                        report.elsewhere += 1;
                        continue;
                    }
                    "recording past its retention was already gone"
                }
                Err(e) => {
                    tracing::error!(call_sid = %rec.call_sid, path = %rec.path, error = %e, "cannot delete an expired recording");
                    report.failed += 1;
                    continue;
                }
            };
            if self.forget_recording(&rec, reason).await? {
                tracing::info!(call_sid = %rec.call_sid, "{reason}");
                report.deleted.push(rec.call_sid);
            }
        }
        Ok(report)
    }
}

/// A campaign's retention from its stored settings (the default when they cannot be read).
fn retention_days(settings: Option<&str>) -> u32 {
    let default = CampaignSettings::default().recording_retention_days;
    settings
        .and_then(|s| serde_json::from_str::<CampaignSettings>(s).ok())
        .map_or(default, |s| s.recording_retention_days)
        .max(1)
}

/// Sweeps now and then `every` (hourly in production) until the process ends. A failed
/// sweep is logged and tried again at the next tick.
pub fn spawn_retention(store: Store, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match store.sweep_recordings(now_ms()).await {
                Ok(r) if r.deleted.is_empty() && r.failed == 0 => {}
                Ok(r) => tracing::info!(
                    deleted = r.deleted.len(),
                    failed = r.failed,
                    "recording retention sweep"
                ),
                Err(e) => tracing::error!(error = %e, "recording retention sweep failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn retention_comes_from_the_campaign_or_the_default() {
        assert_eq!(
            super::retention_days(Some(r#"{"recording_retention_days": 7}"#)),
            7
        );
        assert_eq!(super::retention_days(Some("{}")), 30);
        assert_eq!(super::retention_days(Some("not json")), 30);
        assert_eq!(super::retention_days(None), 30);
    }
}
