//! Call rows, their status history (ordered by Twilio's `SequenceNumber`) and transcripts.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{corrupt, now_ms, Store, StoreError};
use crate::model::{
    is_terminal_status, Applied, CallDetail, CallEvent, CallMetadata, NewCall, Speaker,
    StatusUpdate, StoredCall, StoredTurn, Turn,
};

pub(super) fn call_from_row(row: &AnyRow) -> Result<StoredCall, StoreError> {
    let vars: String = row.try_get("variables_json")?;
    Ok(StoredCall {
        sid: row.try_get("sid")?,
        campaign_id: row.try_get("campaign_id")?,
        lead_id: row.try_get("lead_id")?,
        from: row.try_get("from_number")?,
        to: row.try_get("to_number")?,
        status: row.try_get("status")?,
        last_sequence: row.try_get("last_sequence")?,
        answered_by: row.try_get("answered_by")?,
        duration_s: row.try_get("duration_s")?,
        outcome: row.try_get("outcome")?,
        variables: serde_json::from_str::<BTreeMap<String, String>>(&vars)
            .map_err(|e| corrupt("call variables", e))?,
        path: match row.try_get::<Option<String>, _>("path_json")? {
            Some(p) => serde_json::from_str(&p).map_err(|e| corrupt("call path", e))?,
            None => Vec::new(),
        },
        created_at_ms: row.try_get("created_at_ms")?,
        ended_at_ms: row.try_get("ended_at_ms")?,
    })
}

impl Store {
    /// Records a placed call and moves its lead to `in_call` (one more attempt), atomically:
    /// after a crash either both happened or neither. Recording the same SID twice is a no-op.
    pub async fn record_dial(&self, call: &NewCall) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO calls (sid, campaign_id, lead_id, from_number, to_number, status,
                                created_at_ms, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
             ON CONFLICT (sid) DO NOTHING",
        )
        .bind(&call.sid)
        .bind(&call.campaign_id)
        .bind(call.lead_id)
        .bind(&call.from)
        .bind(&call.to)
        .bind(&call.status)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            sqlx::query(
                "UPDATE leads SET state = 'in_call', attempts = attempts + 1, claimed_by = NULL,
                        claim_expires_at_ms = NULL, updated_at_ms = $1
                 WHERE id = $2",
            )
            .bind(now)
            .bind(call.lead_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Applies a status (or AMD) callback: kept in the history once (Twilio retries are
    /// duplicates), and shown on the call only if newer than anything seen before (callbacks
    /// can arrive out of order).
    pub async fn apply_status(&self, update: &StatusUpdate) -> Result<Applied, StoreError> {
        let now = now_ms();
        let params: serde_json::Map<String, serde_json::Value> = update
            .params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let params = serde_json::Value::Object(params).to_string();
        let mut tx = self.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO call_events (call_sid, source, sequence, status, answered_by, applied,
                                      params_json, received_at_ms)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7)
             ON CONFLICT (call_sid, source, sequence) DO NOTHING",
        )
        .bind(&update.call_sid)
        .bind(&update.source)
        .bind(update.sequence)
        .bind(&update.status)
        .bind(update.answered_by.clone())
        .bind(params)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.commit().await?;
            return Ok(Applied::Duplicate);
        }
        let exists = sqlx::query("SELECT sid FROM calls WHERE sid = $1")
            .bind(&update.call_sid)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            tx.commit().await?;
            return Ok(Applied::UnknownCall);
        }
        let changed = if update.source == "amd" {
            // AMD answers "who picked up", not "where is the call": it never moves the status.
            sqlx::query("UPDATE calls SET answered_by = $1, updated_at_ms = $2 WHERE sid = $3")
                .bind(update.answered_by.clone())
                .bind(now)
                .bind(&update.call_sid)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        } else {
            let ended = is_terminal_status(&update.status).then_some(now);
            sqlx::query(
                "UPDATE calls SET status = $1, last_sequence = $2,
                        answered_by = COALESCE($3, answered_by),
                        duration_s = COALESCE($4, duration_s),
                        ended_at_ms = COALESCE($5, ended_at_ms), updated_at_ms = $6
                 WHERE sid = $7 AND last_sequence < $2",
            )
            .bind(&update.status)
            .bind(update.sequence)
            .bind(update.answered_by.clone())
            .bind(update.duration_s)
            .bind(ended)
            .bind(now)
            .bind(&update.call_sid)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        };
        if changed == 1 {
            sqlx::query(
                "UPDATE call_events SET applied = 1 WHERE call_sid = $1 AND source = $2 AND sequence = $3",
            )
            .bind(&update.call_sid)
            .bind(&update.source)
            .bind(update.sequence)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(if changed == 1 {
            Applied::Updated
        } else {
            Applied::Stale
        })
    }

    /// The engine's verdict on a call: outcome label and captured variables.
    pub async fn set_call_outcome(
        &self,
        sid: &str,
        outcome: Option<&str>,
        variables: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let vars = serde_json::to_string(variables).map_err(|e| corrupt("variables", e))?;
        sqlx::query(
            "UPDATE calls SET outcome = COALESCE($1, outcome), variables_json = $2, updated_at_ms = $3
             WHERE sid = $4",
        )
        .bind(outcome.map(str::to_string))
        .bind(vars)
        .bind(now_ms())
        .bind(sid)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Stores (or rewrites, once we know what the caller heard) transcript line `idx` of a
    /// recorded call. A call with no row (a console practice call) keeps its words in memory
    /// only: nothing personal is written that no call record, retention or export would find.
    pub async fn upsert_turn(&self, sid: &str, idx: i64, turn: &Turn) -> Result<(), StoreError> {
        let latency = turn
            .latency
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| corrupt("latency", e))?;
        let speaker = match turn.speaker {
            Speaker::Agent => "agent",
            Speaker::Caller => "caller",
        };
        sqlx::query(
            "INSERT INTO turns (call_sid, idx, speaker, text, at_ms, interrupted, latency_json, end_ms)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM calls WHERE sid = $1)
             ON CONFLICT (call_sid, idx) DO UPDATE SET text = excluded.text,
                 interrupted = excluded.interrupted,
                 latency_json = COALESCE(excluded.latency_json, turns.latency_json),
                 end_ms = COALESCE(excluded.end_ms, turns.end_ms)",
        )
        .bind(sid)
        .bind(idx)
        .bind(speaker)
        .bind(&turn.text)
        .bind(turn.at_ms as i64)
        .bind(turn.interrupted as i64)
        .bind(latency)
        .bind(turn.end_ms.map(|e| e as i64))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records a call the dialer did not place (inbound, or registered through the engine
    /// API), so its transcript and verdict outlive the process. One already recorded (a dialed
    /// call answering) is left as it is.
    pub async fn record_call(&self, metadata: &CallMetadata) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO calls (sid, campaign_id, lead_id, from_number, to_number, status,
                                created_at_ms, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5, 'in-progress', $6, $6)
             ON CONFLICT (sid) DO NOTHING",
        )
        .bind(&metadata.call_sid)
        .bind(&metadata.campaign_id)
        // A dialed call's row exists already (with its lead); an inbound one is linked here.
        .bind(
            metadata
                .lead
                .get("lead_id")
                .and_then(|l| l.parse::<i64>().ok()),
        )
        .bind(&metadata.from)
        .bind(&metadata.to)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn call(&self, sid: &str) -> Result<StoredCall, StoreError> {
        let row = sqlx::query("SELECT * FROM calls WHERE sid = $1")
            .bind(sid)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("call {sid}")))?;
        call_from_row(&row)
    }

    /// A call with its status history and transcript.
    pub async fn call_detail(&self, sid: &str) -> Result<CallDetail, StoreError> {
        let call = self.call(sid).await?;
        let events = sqlx::query(
            "SELECT * FROM call_events WHERE call_sid = $1 ORDER BY received_at_ms, id",
        )
        .bind(sid)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| {
            Ok(CallEvent {
                source: row.try_get("source")?,
                sequence: row.try_get("sequence")?,
                status: row.try_get("status")?,
                answered_by: row.try_get("answered_by")?,
                applied: row.try_get::<i64, _>("applied")? != 0,
                received_at_ms: row.try_get("received_at_ms")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let turns = sqlx::query("SELECT * FROM turns WHERE call_sid = $1 ORDER BY idx")
            .bind(sid)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| {
                let latency: Option<String> = row.try_get("latency_json")?;
                Ok(StoredTurn {
                    idx: row.try_get("idx")?,
                    speaker: row.try_get("speaker")?,
                    text: row.try_get("text")?,
                    at_ms: row.try_get("at_ms")?,
                    end_ms: row.try_get("end_ms")?,
                    interrupted: row.try_get::<i64, _>("interrupted")? != 0,
                    latency: latency
                        .map(|l| serde_json::from_str(&l))
                        .transpose()
                        .map_err(|e| corrupt("latency", e))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(CallDetail {
            call,
            events,
            turns,
        })
    }

    /// A campaign's calls, oldest first.
    pub async fn calls(&self, campaign_id: &str) -> Result<Vec<StoredCall>, StoreError> {
        sqlx::query("SELECT * FROM calls WHERE campaign_id = $1 ORDER BY created_at_ms, sid")
            .bind(campaign_id)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(call_from_row)
            .collect()
    }

    /// The most recent call placed for a lead.
    pub async fn latest_call_for_lead(
        &self,
        lead_id: i64,
    ) -> Result<Option<StoredCall>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM calls WHERE lead_id = $1 ORDER BY created_at_ms DESC, sid DESC LIMIT 1",
        )
        .bind(lead_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(call_from_row).transpose()
    }
}
