//! A call as every room sees it: what the dialer tells the engine before the media stream
//! starts, the transcript with per-stage latency, the record the API returns, Twilio's status
//! callbacks and the stored rows they become.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// What the dialer (or any client) tells the engine about a call before it connects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallMetadata {
    /// Twilio's call SID (`CA` + 32 hex); the media stream's `start.callSid` matches it.
    pub call_sid: String,
    /// Twilio's `From` (E.164): our caller ID on a dialed call, the caller's on an inbound one.
    #[serde(default)]
    pub from: Option<String>,
    /// Twilio's `To` (E.164): the lead's number on a dialed call, ours on an inbound one.
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub campaign_id: Option<String>,
    /// Free lead fields (name, company, ...) the conversation may use.
    #[serde(default)]
    pub lead: BTreeMap<String, String>,
    /// The person rang us (Twilio's `Direction=inbound`): their number is `from`, ours `to`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inbound: bool,
    /// Keep a recording of this call: its campaign records (the voice webhook sets it from the
    /// campaign's settings; a call without a campaign never records).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub record: bool,
}

impl CallMetadata {
    /// The other party's number: the one an opt-out lists.
    pub fn their_number(&self) -> Option<&str> {
        if self.inbound {
            self.from.as_deref()
        } else {
            self.to.as_deref()
        }
    }
}

/// Who spoke a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    Agent,
    Caller,
}

/// Per-stage timings of one agent reply, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TurnLatency {
    /// Last caller speech -> end of turn decided.
    pub endpointing_ms: f64,
    pub stt_ms: f64,
    pub llm_first_token_ms: Option<f64>,
    pub llm_first_clause_ms: Option<f64>,
    /// Synthesis time of the reply's first clause.
    pub tts_first_audio_ms: Option<f64>,
    /// End of turn decided -> the reply's first audible frame plays at the caller.
    pub first_frame_ms: Option<f64>,
    /// The headline, as the caller hears it: last caller speech -> first audible agent frame.
    pub voice_to_voice_ms: Option<f64>,
    /// When the caller's speech ended, in ms of the call's inbound audio (Twilio sends a frame
    /// every 20 ms, so this is the caller's own clock): pairs the figure with a caller-side one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speech_end_ms: Option<u64>,
    /// How the answer was reached: latency differs by path, so it is reported per path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<TurnPath>,
}

/// How the agent reached its answer to a caller turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TurnPath {
    /// A rule read the turn; the answer is a fixed line (cached audio).
    Rule,
    /// The model classified the turn; the answer is a fixed line.
    Llm,
    /// A question the script's FAQ answers.
    Faq,
    /// The answer opens with a line the model writes.
    Generated,
    /// Nothing the script could read: the question again, after a pause kept on purpose
    /// (`[turn] unclear_hold_ms`), so its latency is not the engines'.
    Unclear,
}

impl TurnPath {
    pub const ALL: [TurnPath; 5] = [
        Self::Rule,
        Self::Llm,
        Self::Faq,
        Self::Generated,
        Self::Unclear,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rule => "rule",
            Self::Llm => "llm",
            Self::Faq => "faq",
            Self::Generated => "generated",
            Self::Unclear => "unclear",
        }
    }
}

/// One line of the transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub speaker: Speaker,
    pub text: String,
    /// Milliseconds since the stream started: when the line began (for the agent, when it was
    /// sent to be spoken; for the caller, when their speech started).
    pub at_ms: u64,
    /// When it ended: the caller's last speech, or Twilio's final mark for the agent (played).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<TurnLatency>,
    /// The agent utterance this turn is (agent turns only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speech_id: Option<u64>,
    /// The caller cut the agent off; `text` holds only what was heard.
    #[serde(default)]
    pub interrupted: bool,
}

impl Turn {
    pub fn caller(text: impl Into<String>, at_ms: u64) -> Self {
        Self {
            speaker: Speaker::Caller,
            text: text.into(),
            at_ms,
            end_ms: None,
            latency: None,
            speech_id: None,
            interrupted: false,
        }
    }

    pub fn agent(text: impl Into<String>, at_ms: u64, speech_id: u64) -> Self {
        Self {
            speaker: Speaker::Agent,
            text: text.into(),
            at_ms,
            end_ms: None,
            latency: None,
            speech_id: Some(speech_id),
            interrupted: false,
        }
    }
}

/// A call's record as the API returns it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CallRecord {
    pub metadata: CallMetadata,
    pub stream_sid: Option<String>,
    pub status: String,
    pub turns: Vec<Turn>,
    /// How the call ended for the campaign, when the engine decided it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<super::Outcome>,
    /// Caller speech start -> `clear` sent, for every barge-in (ms).
    #[serde(default)]
    pub barge_in_reaction_ms: Vec<f64>,
    /// Variables the script captured (name -> value).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// The script nodes the call went through, in order (the console's funnel).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
    /// When the media stream started (Unix ms): a live call's elapsed time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<i64>,
}

/// Where call changes go besides memory (the store's writer).
///
/// Called with the registry's lock held, so changes arrive in order: every method only queues
/// and returns at once (never blocks, never awaits). What is queued is written in order, except
/// do-not-call entries, which overtake the queue.
pub trait CallSink: Send + Sync {
    /// Transcript line `idx` was added or rewritten.
    fn turn(&self, call_sid: &str, idx: usize, turn: &Turn);
    /// Outcome or captured variables changed.
    fn verdict(&self, record: &CallRecord);
    /// The caller asked not to be called again: list the number now. The entry is written
    /// ahead of anything queued and never dropped; the future resolves `Ok` once it is
    /// committed (durably), so the caller hears the confirmation only when it is true, or
    /// `Err` saying why it is not (yet): no number, or the database refusing (the writer
    /// keeps retrying it). Dropping the future does not cancel the write.
    fn do_not_call(
        &self,
        call_sid: &str,
        phone: Option<&str>,
    ) -> BoxFuture<'static, Result<(), String>>;
    /// The media session ended.
    fn finished(&self, record: &CallRecord);
    /// Resolves once every change queued before the call has been written (or given up on
    /// and logged): what shutdown awaits.
    fn flush(&self) -> BoxFuture<'static, ()>;
}

/// A call as stored: Twilio's view (status, answered_by, duration) and ours (outcome, variables).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredCall {
    pub sid: String,
    pub campaign_id: Option<String>,
    pub lead_id: Option<i64>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub status: String,
    pub last_sequence: i64,
    pub answered_by: Option<String>,
    pub duration_s: Option<i64>,
    pub outcome: Option<String>,
    pub variables: BTreeMap<String, String>,
    /// The script nodes the call went through, in order.
    #[serde(default)]
    pub path: Vec<String>,
    pub created_at_ms: i64,
    pub ended_at_ms: Option<i64>,
}

/// A call's recording as the store knows it: where the WAV is (on the appliance that took
/// the call) and since when, which the retention sweep counts from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecording {
    pub call_sid: String,
    pub campaign_id: Option<String>,
    pub lead_id: Option<i64>,
    pub path: String,
    /// When the recording began (Unix ms).
    pub recorded_at_ms: i64,
}

/// A status or AMD callback as received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallEvent {
    /// `status` (status callback) or `amd` (async AMD callback).
    pub source: String,
    pub sequence: i64,
    pub status: String,
    pub answered_by: Option<String>,
    /// False when it arrived after a later event (out of order) and only went to the history.
    pub applied: bool,
    pub received_at_ms: i64,
}

/// One transcript line as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredTurn {
    pub idx: i64,
    pub speaker: String,
    pub text: String,
    /// Start and end, ms since the media stream started.
    pub at_ms: i64,
    pub end_ms: Option<i64>,
    pub interrupted: bool,
    pub latency: Option<TurnLatency>,
}

/// A call with its history and transcript (the admin API's call detail).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallDetail {
    pub call: StoredCall,
    pub events: Vec<CallEvent>,
    pub turns: Vec<StoredTurn>,
}

/// What applying a status callback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Newer than anything seen: the call row now shows it.
    Updated,
    /// Older than the newest seen (out of order): kept in the history only.
    Stale,
    /// Seen before (Twilio retried): ignored.
    Duplicate,
    /// No call row with this SID (not ours, or created by hand): history only.
    UnknownCall,
}

/// A status callback's facts, parsed from Twilio's form.
#[derive(Debug, Clone, Default)]
pub struct StatusUpdate {
    pub call_sid: String,
    pub source: String,
    pub sequence: i64,
    pub status: String,
    pub answered_by: Option<String>,
    pub duration_s: Option<i64>,
    /// Every form parameter, kept for the history.
    pub params: Vec<(String, String)>,
}

/// Twilio call statuses that end a call.
pub fn is_terminal_status(status: &str) -> bool {
    matches!(
        status,
        "completed" | "busy" | "no-answer" | "failed" | "canceled"
    )
}

/// A call Twilio accepted, about to be recorded against its lead.
#[derive(Debug, Clone)]
pub struct NewCall {
    pub sid: String,
    pub campaign_id: String,
    pub lead_id: i64,
    pub from: String,
    pub to: String,
    /// Twilio's status in the create response (`queued`).
    pub status: String,
}
