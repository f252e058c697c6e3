//! Lead rows: import, the atomic claim, and state changes.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{corrupt, now_ms, Backend, Store, StoreError};
use crate::leads::NewLead;
use crate::model::{Lead, LeadCounts, LeadMemory, LeadState, NewEvent};

fn lead_from_row(row: &AnyRow) -> Result<Lead, StoreError> {
    let fields: String = row.try_get("fields_json")?;
    let state: String = row.try_get("state")?;
    let memory = match row.try_get::<Option<String>, _>("memory_json")? {
        Some(json) => {
            let mut memory: LeadMemory =
                serde_json::from_str(&json).map_err(|e| corrupt("lead memory", e))?;
            memory.summary = row
                .try_get::<Option<String>, _>("memory_summary")?
                .unwrap_or_default();
            Some(memory)
        }
        None => None,
    };
    let mut lead = Lead {
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
        claimed_by: row.try_get("claimed_by")?,
        claimed_at_ms: row.try_get("claimed_at_ms")?,
        claim_expires_at_ms: row.try_get("claim_expires_at_ms")?,
        outcome: row.try_get("outcome")?,
        callbacks: row.try_get::<i64, _>("callbacks")?.max(0) as u32,
        memory,
        callback_at: None,
    };
    lead.callback_at = lead.callback_line();
    Ok(lead)
}

/// The claim a compare-and-set expects, binding `$n..$n+4` (see [`bind_same_claim`]): same
/// lead, state, claimant and claim time, and a lease that ended by the last one (`i64::MAX`
/// when any lease will do).
fn same_claim(n: usize) -> String {
    format!(
        "id = ${} AND state = ${} AND COALESCE(claimed_by, '') = ${}
         AND COALESCE(claimed_at_ms, -1) = ${} AND COALESCE(claim_expires_at_ms, -1) <= ${}",
        n,
        n + 1,
        n + 2,
        n + 3,
        n + 4
    )
}

fn bind_same_claim<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    seen: &Lead,
    lapsed_by: Option<i64>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(seen.id)
        .bind(seen.state.as_str())
        .bind(seen.claimed_by.clone().unwrap_or_default())
        .bind(seen.claimed_at_ms.unwrap_or(-1))
        .bind(lapsed_by.unwrap_or(i64::MAX))
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

    /// Atomically takes the next due pending lead of a campaign (`dialing`, claimed by
    /// `worker` until `lease_until_ms` unless renewed), durably. Two dialers, on one appliance
    /// or several sharing Postgres, never get the same lead.
    pub async fn claim_next_lead(
        &self,
        campaign_id: &str,
        now_ms: i64,
        worker: &str,
        lease_until_ms: i64,
    ) -> Result<Option<Lead>, StoreError> {
        self.claim_due_lead(campaign_id, now_ms, now_ms, worker, lease_until_ms)
            .await
    }

    /// [`Self::claim_next_lead`] with the due time apart from the claim's own time: the
    /// dialer's clock (injected in tests) decides what is due, the wall clock stamps the claim
    /// (leases and restart recovery compare it with other appliances' clocks).
    pub async fn claim_due_lead(
        &self,
        campaign_id: &str,
        due_by_ms: i64,
        now_ms: i64,
        worker: &str,
        lease_until_ms: i64,
    ) -> Result<Option<Lead>, StoreError> {
        let lock = match self.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE leads SET state = 'dialing', claimed_by = $1, claimed_at_ms = $2,
                    claim_expires_at_ms = $3, updated_at_ms = $2
             WHERE id = (SELECT id FROM leads
                         WHERE campaign_id = $4 AND state = 'pending' AND next_attempt_at_ms <= $5
                         ORDER BY next_attempt_at_ms, id LIMIT 1 {lock})
               AND state = 'pending'
             RETURNING *"
        );
        let mut conn = self.durable().await?;
        let row = sqlx::query(&sql)
            .bind(worker)
            .bind(now_ms)
            .bind(lease_until_ms)
            .bind(campaign_id)
            .bind(due_by_ms)
            .fetch_optional(&mut *conn)
            .await?;
        self.relax(conn).await;
        row.as_ref().map(lead_from_row).transpose()
    }

    /// Extends the lease of `worker`'s claims on these leads (its creates in flight).
    pub async fn renew_claims(
        &self,
        worker: &str,
        lead_ids: &[i64],
        until_ms: i64,
    ) -> Result<(), StoreError> {
        if lead_ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = (0..lead_ids.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "UPDATE leads SET claim_expires_at_ms = $1
             WHERE claimed_by = $2 AND state = 'dialing' AND id IN ({})",
            ids.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(until_ms).bind(worker);
        for id in lead_ids {
            query = query.bind(*id);
        }
        query.execute(self.pool()).await?;
        Ok(())
    }

    /// Leads whose create may or may not have reached Twilio and that nobody alive is working
    /// on: `dialing` claims of `worker` made before `boot_ms` (a previous run of this
    /// appliance), `dialing` claims whose lease ran out (anyone's), and every `dial_unknown`.
    pub async fn unsettled_claims(
        &self,
        worker: &str,
        boot_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<Lead>, StoreError> {
        sqlx::query(
            "SELECT * FROM leads
             WHERE (state = 'dialing'
                    AND ((claimed_by = $1 AND claimed_at_ms < $2)
                         OR claim_expires_at_ms IS NULL OR claim_expires_at_ms < $3))
                OR state = 'dial_unknown'
             ORDER BY id",
        )
        .bind(worker)
        .bind(boot_ms)
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(lead_from_row)
        .collect()
    }

    /// Moves a claimed lead, as it was `seen`, to `dial_unknown`, claimed by `worker`, to be
    /// settled by Twilio's call list after `settle_at_ms`. A compare-and-set: false when the
    /// lead moved on, was claimed anew, or (with `lapsed_by`) had its lease renewed past that
    /// time since it was read.
    pub async fn mark_dial_unknown(
        &self,
        seen: &Lead,
        lapsed_by: Option<i64>,
        worker: &str,
        settle_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE leads SET state = 'dial_unknown', claimed_by = $1, claim_expires_at_ms = $2,
                    updated_at_ms = $3
             WHERE {}",
            same_claim(4)
        );
        let query = sqlx::query(&sql)
            .bind(worker)
            .bind(settle_at_ms)
            .bind(now_ms());
        let done = bind_same_claim(query, seen, lapsed_by)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a claimed lead back, as it was `seen`: `pending`, due at `next_attempt_at_ms`, no
    /// attempt used. The same compare-and-set as [`Self::mark_dial_unknown`].
    pub async fn release_claim(
        &self,
        seen: &Lead,
        lapsed_by: Option<i64>,
        next_attempt_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE leads SET state = 'pending', next_attempt_at_ms = $1, claimed_by = NULL,
                    claim_expires_at_ms = NULL, updated_at_ms = $2
             WHERE {}",
            same_claim(3)
        );
        let query = sqlx::query(&sql).bind(next_attempt_at_ms).bind(now_ms());
        let done = bind_same_claim(query, seen, lapsed_by)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whose call this is when `from` rings `to`: the campaign that calls from `to` (a running
    /// one first, then the newest) and its lead with that phone. A stranger becomes a new lead
    /// (`source` inbound, no consent: ringing us is not consent to be dialed; state `done`, so
    /// the dialer never calls them). `None`: no campaign uses that number.
    pub async fn inbound_lead(
        &self,
        to: &str,
        from: &str,
        timezone: &str,
    ) -> Result<Option<(crate::model::Campaign, Lead)>, StoreError> {
        let mut campaigns: Vec<_> = self
            .campaigns()
            .await?
            .into_iter()
            .filter(|c| c.settings.from_number == to)
            .collect();
        campaigns.sort_by_key(|c| {
            (
                c.state != crate::model::CampaignState::Running,
                -c.created_at_ms,
            )
        });
        let Some(campaign) = campaigns.into_iter().next() else {
            return Ok(None);
        };
        let now = now_ms();
        sqlx::query(
            "INSERT INTO leads (campaign_id, phone, name, fields_json, timezone, consent, source,
                                state, created_at_ms, updated_at_ms)
             VALUES ($1, $2, NULL, '{}', $3, 0, 'inbound', 'done', $4, $4)
             ON CONFLICT (campaign_id, phone) DO NOTHING",
        )
        .bind(&campaign.id)
        .bind(from)
        .bind(timezone)
        .bind(now)
        .execute(self.pool())
        .await?;
        let row = sqlx::query("SELECT * FROM leads WHERE campaign_id = $1 AND phone = $2")
            .bind(&campaign.id)
            .bind(from)
            .fetch_one(self.pool())
            .await?;
        Ok(Some((campaign, lead_from_row(&row)?)))
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

    /// Leads of a campaign in one state (the reconcile looks at `in_call`).
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
                    claimed_by = NULL, claim_expires_at_ms = NULL, updated_at_ms = $4
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

    /// [`Self::set_lead_state`] only if the lead is still in `from`; false if it moved on
    /// (another appliance settled it first).
    pub async fn move_lead(
        &self,
        lead_id: i64,
        from: LeadState,
        to: LeadState,
        next_attempt_at_ms: i64,
        outcome: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.move_lead_counting(lead_id, from, to, next_attempt_at_ms, outcome, false, None)
            .await
    }

    /// [`Self::move_lead`]; `callback`: the next attempt is a callback the caller asked for,
    /// counted in `callbacks` in the same write; `event`: put in the CRM outbox in the same
    /// transaction, if the lead moved (a crash cannot keep the move and lose the event).
    #[allow(clippy::too_many_arguments)]
    pub async fn move_lead_counting(
        &self,
        lead_id: i64,
        from: LeadState,
        to: LeadState,
        next_attempt_at_ms: i64,
        outcome: Option<&str>,
        callback: bool,
        event: Option<&NewEvent>,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE leads SET state = $1, next_attempt_at_ms = $2, outcome = COALESCE($3, outcome),
                    claimed_by = NULL, claim_expires_at_ms = NULL, updated_at_ms = $4,
                    callbacks = callbacks + $7
             WHERE id = $5 AND state = $6",
        )
        .bind(to.as_str())
        .bind(next_attempt_at_ms)
        .bind(outcome.map(str::to_string))
        .bind(now)
        .bind(lead_id)
        .bind(from.as_str())
        .bind(i64::from(callback))
        .execute(&mut *tx)
        .await?;
        let moved = done.rows_affected() == 1;
        if let (true, Some(event)) = (moved, event) {
            super::outbox::insert_event(&mut tx, event, now).await?;
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Stores what a lead's last answered call left behind (see [`LeadMemory`]).
    pub async fn set_lead_memory(
        &self,
        lead_id: i64,
        memory: &LeadMemory,
    ) -> Result<(), StoreError> {
        let json = serde_json::json!({
            "at_ms": memory.at_ms,
            "outcome": memory.outcome,
            "variables": memory.variables,
        });
        sqlx::query(
            "UPDATE leads SET memory_summary = $1, memory_json = $2, updated_at_ms = $3
             WHERE id = $4",
        )
        .bind(&memory.summary)
        .bind(json.to_string())
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
                Some(LeadState::DialUnknown) => counts.dial_unknown = n,
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
