//! The admin API's request and response bodies, shared by the server's handlers and the typed
//! client ([`crate::client`]), so the two cannot drift apart.

use serde::{Deserialize, Serialize};

use super::{Campaign, CampaignSettings, DialerFault, LeadCounts};
use crate::leads::RowError;

/// `POST /v1/campaigns`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    /// Letters, digits, `-` and `_` (it appears in URLs).
    pub id: String,
    pub name: String,
    /// The script as TOML text; omitted: the shipped example campaign.
    #[serde(default)]
    pub script: Option<String>,
    #[serde(default)]
    pub settings: CampaignSettings,
}

/// A campaign with its lead counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignView {
    #[serde(flatten)]
    pub campaign: Campaign,
    pub leads: LeadCounts,
    /// The campaign loop on the appliance that answered is failing and retrying: what and
    /// since when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialer_error: Option<DialerFault>,
}

/// `POST /v1/campaigns/{id}/leads`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportResult {
    pub imported: u64,
    /// Phones already in the campaign.
    pub duplicates: Vec<String>,
    /// Rows that could not be imported, with the reason (good rows were still imported).
    pub errors: Vec<RowError>,
}

/// `POST /v1/dnc`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDnc {
    pub phone: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `GET /v1/campaigns/{id}/deliveries` query: a page of the CRM delivery log.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeliveryPage {
    /// Rows (default 100, at most 500).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only rows with a smaller id: the last id of the previous page.
    #[serde(default)]
    pub before: Option<i64>,
}

/// `POST /v1/campaigns/{id}/{action}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignAction {
    Start,
    Pause,
    Resume,
    Stop,
}

impl CampaignAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Stop => "stop",
        }
    }
}
