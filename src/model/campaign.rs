//! Campaigns and their leads: settings every campaign carries, where a lead is in its life.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A campaign's dial settings. Every field has a lawful, conservative default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignSettings {
    /// Our caller ID (E.164), a number on the Twilio account.
    pub from_number: String,
    /// Calls in flight at once.
    pub max_concurrent: u32,
    /// Calls.json requests per second (Twilio's default account limit is 1).
    pub calls_per_second: f64,
    /// Dial attempts per lead, the first included.
    pub max_attempts: u32,
    /// Wait before attempt 2, 3, ... after busy / no-answer / failed (seconds; the last repeats).
    pub retry_delays_s: Vec<u64>,
    /// Local calling window of the lead ("HH:MM"); never wider than the legal 08:00-21:00.
    pub window_start: String,
    pub window_end: String,
    /// Answering machine detection (`DetectMessageEnd`, so voicemail starts after the beep).
    pub machine_detection: bool,
    /// Seconds to let the phone ring (Twilio `Timeout`).
    pub ring_timeout_s: u32,
    /// Hard cap on a call's length (Twilio `TimeLimit`, seconds).
    pub time_limit_s: u32,
}

impl Default for CampaignSettings {
    fn default() -> Self {
        Self {
            from_number: String::new(),
            max_concurrent: 2,
            calls_per_second: 1.0,
            max_attempts: 3,
            retry_delays_s: vec![3600, 4 * 3600],
            window_start: "08:00".into(),
            window_end: "21:00".into(),
            machine_detection: true,
            ring_timeout_s: 30,
            time_limit_s: 600,
        }
    }
}

/// Where a campaign is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    Draft,
    Running,
    Paused,
    Stopped,
    Completed,
}

impl CampaignState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
            Self::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => Self::Draft,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "stopped" => Self::Stopped,
            "completed" => Self::Completed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    /// The telemarketing script (TOML) the calls follow.
    pub script_toml: String,
    pub settings: CampaignSettings,
    pub state: CampaignState,
    pub created_at_ms: i64,
}

/// Where a lead is. `dialing` is claimed with a Twilio create in flight; `in_call` has a call
/// row; `done`, `skipped` and `failed` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadState {
    Pending,
    Dialing,
    InCall,
    Done,
    Skipped,
    Failed,
}

impl LeadState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Dialing => "dialing",
            Self::InCall => "in_call",
            Self::Done => "done",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "dialing" => Self::Dialing,
            "in_call" => Self::InCall,
            "done" => Self::Done,
            "skipped" => Self::Skipped,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Skipped | Self::Failed)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lead {
    pub id: i64,
    pub campaign_id: String,
    pub phone: String,
    pub name: Option<String>,
    pub fields: BTreeMap<String, String>,
    pub timezone: String,
    pub consent: bool,
    pub source: Option<String>,
    pub state: LeadState,
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    pub claimed_at_ms: Option<i64>,
    pub outcome: Option<String>,
}

/// Counts per lead state, for progress and completion.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LeadCounts {
    pub pending: u64,
    pub dialing: u64,
    pub in_call: u64,
    pub done: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl LeadCounts {
    /// Leads not yet in a final state.
    pub fn open(&self) -> u64 {
        self.pending + self.dialing + self.in_call
    }
}
