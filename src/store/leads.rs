//! Lead rows: import, the atomic claim, and state changes.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{corrupt, now_ms, Backend, Store, StoreError};
use crate::leads::NewLead;
use crate::model::{Lead, LeadCounts, LeadState};

fn lead_from_row(row: &AnyRow) -> Result<Lead, StoreError> {
    let fields: String = row.try_get("fields_json")?;
    let state: String = row.try_get("state")?;
    Ok(Lead {
        id: row.try_get("id")?,
        campaign_id: row.try_get("campaign_id")?,
        phone: row.try_get("phone")?,
        name: row.try_get("name")?,
        fields: serde_json::from_str::<BTreeMap<String, String>>(&fields)
            .map_err(|e| corrupt("lead fields", e))?,
        timezone: row.try_get("timezone")?,
        consent: row.try_get::<i64, _>("consent")? != 0,
        source: row.try_get("source")?,
        state: LeadState::parse(&state).ok_or_else(|| corrupt("lead state", &state))?,
        attempts: row.try_get::<i64, _>("attempts")?.max(0) as u32,
        next_attempt_at_ms: row.try_get("next_attempt_at_ms")?,
        claimed_at_ms: row.try_get("claimed_at_ms")?,
        outcome: row.try_get("outcome")?,
    })
}

/// What an import did with each lead.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct InsertReport {
    pub inserted: u64,
    /// Phones already in the campaign (not imported twice).
    pub duplicates: Vec<String>,
}

impl Store {
    /// Adds leads to a campaign in one transaction; a phone already in the campaign is reported,
    /// not duplicated.
    pub async fn insert_leads(
        &self,
        campaign_id: &str,
        leads: &[NewLead],
    ) -> Result<InsertReport, StoreError> {
        self.campaign(campaign_id).await?;
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let mut report = InsertReport::default();
        for lead in leads {
            let fields = serde_json::to_string(&lead.fields).map_err(|e| corrupt("fields", e))?;
            let done = sqlx::query(
                "INSERT INTO leads (campaign_id, phone, name, fields_json, timezone, consent, source,
                                    state, created_at_ms, updated_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8)
                 ON CONFLICT (campaign_id, phone) DO NOTHING",
            )
            .bind(campaign_id)
            .bind(&lead.phone)
            .bind(lead.name.clone())
            .bind(fields)
            .bind(&lead.timezone)
            .bind(lead.consent as i64)
            .bind(lead.source.clone())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                report.inserted += 1;
            } else {
                report.duplicates.push(lead.phone.clone());
            }
        }
        tx.commit().await?;
        Ok(report)
    }

    /// Atomically takes the next due pending lead of a campaign (`dialing`, claimed by `worker`).
    /// Two dialers, on one appliance or several sharing Postgres, never get the same lead.
    pub async fn claim_next_lead(
        &self,
        campaign_id: &str,
        now_ms: i64,
        worker: &str,
    ) -> Result<Option<Lead>, StoreError> {
        let lock = match self.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE leads SET state = 'dialing', claimed_by = $1, claimed_at_ms = $2, updated_at_ms = $2
             WHERE id = (SELECT id FROM leads
                         WHERE campaign_id = $3 AND state = 'pending' AND next_attempt_at_ms <= $2
                         ORDER BY next_attempt_at_ms, id LIMIT 1 {lock})
               AND state = 'pending'
             RETURNING *"
        );
        let row = sqlx::query(&sql)
            .bind(worker)
            .bind(now_ms)
            .bind(campaign_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(lead_from_row).transpose()
    }

    pub async fn lead(&self, id: i64) -> Result<Lead, StoreError> {
        let row = sqlx::query("SELECT * FROM leads WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("lead {id}")))?;
        lead_from_row(&row)
    }

    pub async fn leads(&self, campaign_id: &str) -> Result<Vec<Lead>, StoreError> {
        sqlx::query("SELECT * FROM leads WHERE campaign_id = $1 ORDER BY id")
            .bind(campaign_id)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(lead_from_row)
            .collect()
    }

    /// Leads of a campaign in one state (restart recovery looks at `dialing` and `in_call`).
    pub async fn leads_in_state(
        &self,
        campaign_id: &str,
        state: LeadState,
    ) -> Result<Vec<Lead>, StoreError> {
        sqlx::query("SELECT * FROM leads WHERE campaign_id = $1 AND state = $2 ORDER BY id")
            .bind(campaign_id)
            .bind(state.as_str())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(lead_from_row)
            .collect()
    }

    /// Moves a lead on: back to `pending` (due at `next_attempt_at_ms`), or to a final state with
    /// an outcome. The claim is released.
    pub async fn set_lead_state(
        &self,
        lead_id: i64,
        state: LeadState,
        next_attempt_at_ms: i64,
        outcome: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE leads SET state = $1, next_attempt_at_ms = $2, outcome = COALESCE($3, outcome),
                    claimed_by = NULL, updated_at_ms = $4
             WHERE id = $5",
        )
        .bind(state.as_str())
        .bind(next_attempt_at_ms)
        .bind(outcome.map(str::to_string))
        .bind(now_ms())
        .bind(lead_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn lead_counts(&self, campaign_id: &str) -> Result<LeadCounts, StoreError> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM leads WHERE campaign_id = $1 GROUP BY state",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?;
        let mut counts = LeadCounts::default();
        for row in rows {
            let state: String = row.try_get("state")?;
            let n = row.try_get::<i64, _>("n")?.max(0) as u64;
            match LeadState::parse(&state) {
                Some(LeadState::Pending) => counts.pending = n,
                Some(LeadState::Dialing) => counts.dialing = n,
                Some(LeadState::InCall) => counts.in_call = n,
                Some(LeadState::Done) => counts.done = n,
                Some(LeadState::Skipped) => counts.skipped = n,
                Some(LeadState::Failed) => counts.failed = n,
                None => return Err(corrupt("lead state", state)),
            }
        }
        Ok(counts)
    }

    /// The earliest time a pending lead of the campaign becomes due, if any.
    pub async fn next_due_ms(&self, campaign_id: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at_ms) AS due FROM leads WHERE campaign_id = $1 AND state = 'pending'",
        )
        .bind(campaign_id)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<Option<i64>, _>("due")?)
    }
}
