//! Compliance records: the do-not-call list and the audit trail of dial decisions.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DncEntry {
    pub phone: String,
    pub reason: String,
    pub source: String,
    pub added_at_ms: i64,
}

/// One dial decision, with why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub campaign_id: String,
    pub lead_id: Option<i64>,
    pub phone: Option<String>,
    pub decision: String,
    pub reason: String,
}
