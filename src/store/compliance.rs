//! The do-not-call list and the audit log of dial decisions (kept: the law asks for 5 years).

use sqlx::{Connection, Row};

use super::outbox::insert_event;
use super::{corrupt, now_ms, Store, StoreError};
use crate::model::crm::do_not_call_event;
use crate::model::{AuditEntry, CampaignSettings, DncEntry};

fn dnc_from_row(row: &sqlx::any::AnyRow) -> Result<DncEntry, StoreError> {
    Ok(DncEntry {
        phone: row.try_get("phone")?,
        reason: row.try_get("reason")?,
        source: row.try_get("source")?,
        added_at_ms: row.try_get("added_at_ms")?,
    })
}

impl Store {
    /// Adds a number to the do-not-call list, durably (it returns once a power cut can no
    /// longer undo it); adding it again keeps the first entry. Each campaign with a CRM webhook
    /// that holds the number as a lead gets a `lead.do_not_call` event in the same transaction.
    pub async fn add_dnc(&self, phone: &str, reason: &str, source: &str) -> Result<(), StoreError> {
        let now = now_ms();
        let mut conn = self.durable().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(
            "INSERT INTO do_not_call (phone, reason, source, added_at_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (phone) DO NOTHING",
        )
        .bind(phone)
        .bind(reason)
        .bind(source)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let leads = sqlx::query(
            "SELECT l.id, l.campaign_id, c.settings_json FROM leads l
             JOIN campaigns c ON c.id = l.campaign_id WHERE l.phone = $1",
        )
        .bind(phone)
        .fetch_all(&mut *tx)
        .await?;
        for row in &leads {
            let settings: String = row.try_get("settings_json")?;
            let settings: CampaignSettings =
                serde_json::from_str(&settings).map_err(|e| corrupt("campaign settings", e))?;
            if settings.crm_webhook_url.is_none() {
                continue;
            }
            let campaign: String = row.try_get("campaign_id")?;
            let event =
                do_not_call_event(&campaign, row.try_get("id")?, phone, source, reason, now);
            insert_event(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        self.relax(conn).await;
        Ok(())
    }

    /// Removes a number (an operator correcting a mistake); true if it was listed.
    pub async fn remove_dnc(&self, phone: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM do_not_call WHERE phone = $1")
            .bind(phone)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn dnc_entry(&self, phone: &str) -> Result<Option<DncEntry>, StoreError> {
        let row = sqlx::query("SELECT * FROM do_not_call WHERE phone = $1")
            .bind(phone)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(dnc_from_row).transpose()
    }

    pub async fn dnc_list(&self) -> Result<Vec<DncEntry>, StoreError> {
        sqlx::query("SELECT * FROM do_not_call ORDER BY added_at_ms, phone")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(dnc_from_row)
            .collect()
    }

    /// Records one dial decision (`dial`, `skip_dnc`, `skip_consent`, `defer_window`, ...) and why.
    pub async fn audit(
        &self,
        campaign_id: &str,
        lead_id: Option<i64>,
        phone: Option<&str>,
        decision: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at_ms, campaign_id, lead_id, phone, decision, reason)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(now_ms())
        .bind(campaign_id)
        .bind(lead_id)
        .bind(phone.map(str::to_string))
        .bind(decision)
        .bind(reason)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn audit_log(&self, campaign_id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        sqlx::query("SELECT * FROM audit_log WHERE campaign_id = $1 ORDER BY id")
            .bind(campaign_id)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    at_ms: row.try_get("at_ms")?,
                    campaign_id: row.try_get("campaign_id")?,
                    lead_id: row.try_get("lead_id")?,
                    phone: row.try_get("phone")?,
                    decision: row.try_get("decision")?,
                    reason: row.try_get("reason")?,
                })
            })
            .collect()
    }
}
