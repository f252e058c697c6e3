//! Shared records: the types that cross rooms, so every import points down to here.
//!
//! Plain data with serde, no I/O: the call room fills them, the store maps rows to them, the
//! dialer decides on them, the HTTP API returns them as JSON.
//!
//! - [`call`]: call metadata, transcript turns with per-stage latency, the call record and the
//!   sink that receives its changes; Twilio status callbacks and stored call rows.
//! - [`campaign`]: campaign settings and state, leads and their life cycle.
//! - [`compliance`]: do-not-call entries and the audit trail.
//! - [`crm`]: events for the customer's CRM (call ended, do-not-call) and their delivery log.
//! - [`outcome`]: how a conversation ended for the campaign.
//! - [`api`]: the admin API's request and response bodies.
//! - [`chat`]: a chat message between the script engine and the language model.

pub mod api;
pub mod call;
pub mod campaign;
pub mod chat;
pub mod compliance;
pub mod crm;
pub mod outcome;

pub use call::{
    is_terminal_status, Applied, CallDetail, CallEvent, CallMetadata, CallRecord, CallSink,
    NewCall, Speaker, StatusUpdate, StoredCall, StoredRecording, StoredTurn, Turn, TurnLatency,
    TurnPath,
};
pub use campaign::{
    discloses_recording, Campaign, CampaignSettings, CampaignState, DialerFault, Lead, LeadCounts,
    LeadMemory, LeadState, TransferSettings, MAX_RETENTION_DAYS, MAX_RETRY_DELAY_S,
};
pub use chat::ChatMessage;
pub use compliance::{AuditEntry, DncEntry};
pub use crm::{Delivery, DeliveryState, DueEvent, EventKind, NewEvent};
pub use outcome::Outcome;
