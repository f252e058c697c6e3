//! Campaign rows.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{corrupt, now_ms, Store, StoreError};
use crate::model::{Campaign, CampaignSettings, CampaignState};

fn campaign_from_row(row: &AnyRow) -> Result<Campaign, StoreError> {
    let settings: String = row.try_get("settings_json")?;
    let state: String = row.try_get("state")?;
    Ok(Campaign {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        script_toml: row.try_get("script_toml")?,
        settings: serde_json::from_str::<CampaignSettings>(&settings)
            .map_err(|e| corrupt("campaign settings", e))?,
        state: CampaignState::parse(&state).ok_or_else(|| corrupt("campaign state", &state))?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

impl Store {
    /// Creates a campaign in `draft`; the id must be new.
    pub async fn create_campaign(
        &self,
        id: &str,
        name: &str,
        script_toml: &str,
        settings: &CampaignSettings,
    ) -> Result<Campaign, StoreError> {
        let now = now_ms();
        let settings_json =
            serde_json::to_string(settings).map_err(|e| corrupt("campaign settings", e))?;
        let result = sqlx::query(
            "INSERT INTO campaigns (id, name, script_toml, settings_json, state, created_at_ms, updated_at_ms)
             VALUES ($1, $2, $3, $4, 'draft', $5, $5)",
        )
        .bind(id)
        .bind(name)
        .bind(script_toml)
        .bind(settings_json)
        .bind(now)
        .execute(self.pool())
        .await;
        match result {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Conflict(format!(
                    "campaign {id} already exists"
                )))
            }
            Err(e) => return Err(e.into()),
        }
        self.campaign(id).await
    }

    pub async fn campaign(&self, id: &str) -> Result<Campaign, StoreError> {
        let row = sqlx::query("SELECT * FROM campaigns WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("campaign {id}")))?;
        campaign_from_row(&row)
    }

    pub async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        sqlx::query("SELECT * FROM campaigns ORDER BY created_at_ms, id")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(campaign_from_row)
            .collect()
    }

    pub async fn set_campaign_state(
        &self,
        id: &str,
        state: CampaignState,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE campaigns SET state = $1, updated_at_ms = $2 WHERE id = $3")
            .bind(state.as_str())
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
