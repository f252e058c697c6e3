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
    /// Callbacks a lead may ask for (each dialed at the time they gave); apart from
    /// `max_attempts`, which counts unanswered retries.
    pub max_callbacks: u32,
    /// When a caller asks to be called back without a time: this long after the call.
    pub callback_delay_s: u64,
    /// Where call ends and opt-outs are pushed (signed with `TELEMARKETER_CRM_SECRET`);
    /// none: no CRM events for this campaign.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crm_webhook_url: Option<String>,
    /// Where the script's `transfer` nodes send a caller who wants a person; `None`: nobody
    /// takes transfers and those nodes go to their fallback.
    pub transfer: Option<TransferSettings>,
    /// Record every answered call (stereo WAV: caller left, agent right). Off by default: a
    /// recording is personal data, and the script's disclosure must then say the call is
    /// recorded (checked when the campaign is created).
    pub recording: bool,
    /// Days a recording is kept before the retention sweep deletes it (audited).
    pub recording_retention_days: u32,
}

/// A campaign's live transfer to a person: who, when they are staffed, how long to ring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransferSettings {
    /// The advisors' line (E.164), dialed with TwiML `<Dial><Number>`.
    pub number: String,
    /// Business hours ("HH:MM", `[start, end)`) in `timezone`, Monday to Friday unless
    /// `weekends`: outside them the script's transfer node goes to its fallback at once.
    pub hours_start: String,
    pub hours_end: String,
    /// IANA zone of the business hours (the advisors' zone, not the lead's).
    pub timezone: String,
    pub weekends: bool,
    /// Seconds the advisor's phone rings (`<Dial timeout>`) before the caller is told nobody
    /// is free and offered a callback.
    pub timeout_s: u32,
    /// Warm: the advisor first hears the agent's one-line summary (a whisper only they hear);
    /// cold: bridged at once.
    pub warm: bool,
}

impl Default for TransferSettings {
    fn default() -> Self {
        Self {
            number: String::new(),
            hours_start: "09:00".into(),
            hours_end: "17:00".into(),
            timezone: "America/New_York".into(),
            weekends: false,
            timeout_s: 20,
            warm: true,
        }
    }
}

impl TransferSettings {
    /// Every violation named: a transfer that cannot work is refused with the campaign.
    pub fn problems(&self) -> Vec<String> {
        let mut bad = Vec::new();
        let n = &self.number;
        let digits = n.strip_prefix('+').unwrap_or("");
        if !(digits.len() >= 8
            && digits.len() <= 15
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0'))
        {
            bad.push(format!(
                "transfer.number must be E.164 like +14155550100 (got {n:?})"
            ));
        }
        let hm = |s: &str| chrono::NaiveTime::parse_from_str(s.trim(), "%H:%M").ok();
        match (hm(&self.hours_start), hm(&self.hours_end)) {
            (Some(a), Some(b)) if a < b => {}
            _ => bad.push(format!(
                "transfer.hours_start/hours_end must be HH:MM with start before end (got {:?}-{:?})",
                self.hours_start, self.hours_end
            )),
        }
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            bad.push(format!(
                "transfer.timezone must be an IANA zone like America/New_York (got {:?})",
                self.timezone
            ));
        }
        if !(5..=120).contains(&self.timeout_s) {
            bad.push(format!(
                "transfer.timeout_s must be 5..=120 (got {})",
                self.timeout_s
            ));
        }
        bad
    }
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
            max_callbacks: 2,
            callback_delay_s: 24 * 3600,
            crm_webhook_url: None,
            transfer: None,
            recording: false,
            recording_retention_days: 30,
        }
    }
}

/// Longest wait between attempts: 30 days (also keeps clock arithmetic far from overflow).
pub const MAX_RETRY_DELAY_S: u64 = 30 * 24 * 3600;
/// Most entries in `retry_delays_s`.
pub const MAX_RETRY_DELAYS: usize = 10;
/// Longest a recording may be kept: ten years.
pub const MAX_RETENTION_DAYS: u32 = 3650;

/// Does a disclosure tell the caller the call is recorded? Recording without saying so is
/// unlawful in two-party-consent states, so a recording campaign's script must.
pub fn discloses_recording(disclosure: &str) -> bool {
    disclosure.to_lowercase().contains("record")
}

impl CampaignSettings {
    /// Range checks, every violation named, so a typo cannot dial a thousand lines at once or
    /// schedule a retry past the end of time. `from_number` and the window are the dialer's.
    pub fn check(&self) -> Result<(), String> {
        let mut bad = Vec::new();
        if !(1..=1000).contains(&self.max_concurrent) {
            bad.push(format!(
                "max_concurrent must be 1..=1000 (got {})",
                self.max_concurrent
            ));
        }
        // Written so that NaN fails too.
        if !(self.calls_per_second > 0.0 && self.calls_per_second <= 100.0) {
            bad.push(format!(
                "calls_per_second must be in (0, 100] (got {})",
                self.calls_per_second
            ));
        }
        if !(1..=20).contains(&self.max_attempts) {
            bad.push(format!(
                "max_attempts must be 1..=20 (got {})",
                self.max_attempts
            ));
        }
        if self.retry_delays_s.len() > MAX_RETRY_DELAYS {
            bad.push(format!(
                "retry_delays_s takes at most {MAX_RETRY_DELAYS} entries (got {})",
                self.retry_delays_s.len()
            ));
        }
        if let Some(d) = self.retry_delays_s.iter().find(|d| **d > MAX_RETRY_DELAY_S) {
            bad.push(format!(
                "retry_delays_s entries must be 0..={MAX_RETRY_DELAY_S} s (30 days; got {d})"
            ));
        }
        if !(5..=600).contains(&self.ring_timeout_s) {
            bad.push(format!(
                "ring_timeout_s must be 5..=600 (got {})",
                self.ring_timeout_s
            ));
        }
        if self.max_callbacks > 10 {
            bad.push(format!(
                "max_callbacks must be 0..=10 (got {})",
                self.max_callbacks
            ));
        }
        if !(60..=MAX_RETRY_DELAY_S).contains(&self.callback_delay_s) {
            bad.push(format!(
                "callback_delay_s must be 60..={MAX_RETRY_DELAY_S} s (got {})",
                self.callback_delay_s
            ));
        }
        if !(10..=14400).contains(&self.time_limit_s) {
            bad.push(format!(
                "time_limit_s must be 10..=14400 (got {})",
                self.time_limit_s
            ));
        }
        if !(1..=MAX_RETENTION_DAYS).contains(&self.recording_retention_days) {
            bad.push(format!(
                "recording_retention_days must be 1..={MAX_RETENTION_DAYS} (got {})",
                self.recording_retention_days
            ));
        }
        if let Some(url) = &self.crm_webhook_url {
            if let Err(reason) = check_webhook_url(url) {
                bad.push(format!("crm_webhook_url {reason}"));
            }
        }
        if let Some(t) = &self.transfer {
            bad.extend(t.problems());
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(format!("settings: {}", bad.join("; ")))
        }
    }

    /// The wait before the attempt after `attempts` unanswered ones (the last entry repeats;
    /// one hour without a schedule), capped at [`MAX_RETRY_DELAY_S`] even for settings stored
    /// before they were range-checked.
    pub fn retry_delay_s(&self, attempts: u32) -> u64 {
        self.retry_delays_s
            .get(attempts.saturating_sub(1) as usize)
            .or(self.retry_delays_s.last())
            .copied()
            .unwrap_or(3600)
            .min(MAX_RETRY_DELAY_S)
    }
}

/// Longest CRM webhook URL.
const MAX_URL_LEN: usize = 2048;

/// An absolute http(s) URL with a host, without credentials (the secret signs; a password in
/// the URL would show in every listing of the campaign).
fn check_webhook_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_LEN {
        return Err(format!("is longer than {MAX_URL_LEN} bytes"));
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must start with https:// or http://".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials (requests are signed instead)".into());
    }
    Ok(())
}

/// A campaign loop in trouble, as the API shows it: the last error and since when the loop
/// has been failing (it retries with back-off; cleared by the first pass that succeeds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DialerFault {
    pub error: String,
    /// When this run of failures began (Unix ms).
    pub since_ms: i64,
    pub last_at_ms: i64,
    /// Failed passes in this run.
    pub failures: u64,
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

/// Where a lead is. `dialing` is claimed by one appliance (`claimed_by`, until
/// `claim_expires_at_ms` unless renewed) with a Twilio create about to go or in flight;
/// `dial_unknown` had a create whose outcome is unknown (Twilio may have placed the call) and
/// waits for Twilio's call list to settle it, never for a blind retry; `in_call` has a call row;
/// `done`, `skipped` and `failed` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadState {
    Pending,
    Dialing,
    DialUnknown,
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
            Self::DialUnknown => "dial_unknown",
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
            "dial_unknown" => Self::DialUnknown,
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
    /// The appliance (`twilio.worker_id`) that claimed it, while `dialing` or `dial_unknown`.
    #[serde(default)]
    pub claimed_by: Option<String>,
    pub claimed_at_ms: Option<i64>,
    /// `dialing`: the claim's lease; past it, another appliance may settle the lead.
    /// `dial_unknown`: when a call Twilio still does not list may be taken as never placed.
    #[serde(default)]
    pub claim_expires_at_ms: Option<i64>,
    pub outcome: Option<String>,
    /// Callbacks scheduled at the caller's request so far (their dials are not retries).
    #[serde(default)]
    pub callbacks: u32,
    /// What the last answered call left behind: the next call starts from it.
    #[serde(default)]
    pub memory: Option<LeadMemory>,
    /// "callback at 2026-12-03 10:00 EST": a callback the caller asked for is due then, in
    /// the lead's zone (filled when the lead is read; the API, the CLI show it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_at: Option<String>,
}

impl Lead {
    /// The [`Lead::callback_at`] line: a pending lead whose last outcome is a callback.
    pub fn callback_line(&self) -> Option<String> {
        if self.state != LeadState::Pending || self.outcome.as_deref() != Some("callback") {
            return None;
        }
        let tz: chrono_tz::Tz = self.timezone.parse().ok()?;
        let at = chrono::DateTime::from_timestamp_millis(self.next_attempt_at_ms)?;
        Some(format!(
            "callback at {}",
            at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")
        ))
    }
}

/// A lead's memory: stored after each answered call, loaded into the next one (its variables
/// as script variables, its summary into the model's context).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LeadMemory {
    /// When the call it remembers ended (Unix ms).
    pub at_ms: i64,
    /// That call's outcome (`callback`: the next call is the callback they asked for).
    pub outcome: String,
    /// Every answer captured so far, newest value per name.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// One line for people and the model: "Last call 2026-12-01: ...".
    #[serde(default)]
    pub summary: String,
}

/// Counts per lead state, for progress and completion.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LeadCounts {
    pub pending: u64,
    pub dialing: u64,
    #[serde(default)]
    pub dial_unknown: u64,
    pub in_call: u64,
    pub done: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl LeadCounts {
    /// Leads not yet in a final state.
    pub fn open(&self) -> u64 {
        self.pending + self.busy()
    }

    /// Leads that may have a call on the line (they count against `max_concurrent`).
    pub fn busy(&self) -> u64 {
        self.dialing + self.dial_unknown + self.in_call
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crm_webhook_url_must_be_plain_http_or_https() {
        let with = |url: &str| CampaignSettings {
            crm_webhook_url: Some(url.into()),
            ..Default::default()
        };
        assert_eq!(with("https://crm.example.com/hooks/tm?x=1").check(), Ok(()));
        assert_eq!(with("http://127.0.0.1:9000/hook").check(), Ok(()));
        for bad in [
            "ftp://crm.example.com/",
            "crm.example.com/hook",
            "https://user:pw@crm.example.com/",
            "",
        ] {
            let err = with(bad).check().unwrap_err();
            assert!(err.contains("crm_webhook_url"), "{bad}: {err}");
        }
        let long = format!("https://crm.example.com/{}", "a".repeat(3000));
        assert!(with(&long).check().is_err());
        // Settings stored before the key existed still load.
        let old: CampaignSettings = serde_json::from_str(r#"{"max_attempts": 2}"#).unwrap();
        assert_eq!(old.crm_webhook_url, None);
    }

    #[test]
    fn recording_is_off_by_default_and_its_retention_is_bounded() {
        let old: CampaignSettings = serde_json::from_str(r#"{"max_attempts": 2}"#).unwrap();
        assert_eq!((old.recording, old.recording_retention_days), (false, 30));
        let days = |d: u32| CampaignSettings {
            recording: true,
            recording_retention_days: d,
            ..Default::default()
        };
        assert_eq!(days(1).check(), Ok(()));
        assert_eq!(days(3650).check(), Ok(()));
        for bad in [0, 3651] {
            let err = days(bad).check().unwrap_err();
            assert!(err.contains("recording_retention_days"), "{bad}: {err}");
        }
        assert!(serde_json::from_str::<CampaignSettings>(r#"{"recordings": true}"#).is_err());
        assert!(discloses_recording("This call may be RECORDED."));
        assert!(!discloses_recording("I am an automated assistant."));
    }
}
