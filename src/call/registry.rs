//! Calls the engine knows about: metadata registered through `POST /v1/calls` before Twilio
//! connects the media stream, and the transcript of every call that ran.
//!
//! The registry is the live, in-memory view; a [`CallSink`] (the store's writer) receives every
//! change as it happens, so turns land in the database turn by turn and an opt-out reaches the
//! do-not-call list at once, not when the call ends.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::model::{CallMetadata, CallRecord, CallSink, Outcome, Turn, TurnLatency};

/// Shared registry; the lock is never held across an await.
#[derive(Clone, Default)]
pub struct CallRegistry {
    inner: Arc<Mutex<HashMap<String, CallRecord>>>,
    sink: Option<Arc<dyn CallSink>>,
}

impl CallRegistry {
    /// A registry that also reports every change to `sink`.
    pub fn with_sink(sink: Arc<dyn CallSink>) -> Self {
        Self {
            inner: Default::default(),
            sink: Some(sink),
        }
    }

    /// Registers (or replaces, before it started) a call's metadata.
    pub fn register(&self, metadata: CallMetadata) -> CallRecord {
        let record = CallRecord {
            status: "registered".into(),
            metadata,
            ..Default::default()
        };
        self.lock()
            .insert(record.metadata.call_sid.clone(), record.clone());
        record
    }

    /// Metadata for a starting stream: the registered one, else what Twilio's custom
    /// parameters carry.
    pub fn start(
        &self,
        call_sid: &str,
        stream_sid: &str,
        parameters: &BTreeMap<String, String>,
    ) -> CallMetadata {
        let mut map = self.lock();
        let record = map
            .entry(call_sid.to_string())
            .or_insert_with(|| CallRecord {
                metadata: CallMetadata {
                    call_sid: call_sid.to_string(),
                    from: parameters.get("from").cloned(),
                    to: parameters.get("to").cloned(),
                    campaign_id: parameters.get("campaign_id").cloned(),
                    lead: parameters.clone(),
                },
                ..Default::default()
            });
        record.stream_sid = Some(stream_sid.to_string());
        record.status = "in-progress".into();
        record.metadata.clone()
    }

    /// Adds a transcript line; returns its index (to rewrite it later).
    pub fn add_turn(&self, call_sid: &str, turn: Turn) -> Option<usize> {
        let mut map = self.lock();
        let r = map.get_mut(call_sid)?;
        let idx = r.turns.len();
        if let Some(sink) = &self.sink {
            sink.turn(call_sid, idx, &turn);
        }
        r.turns.push(turn);
        Some(idx)
    }

    /// Rewrites transcript line `idx` (a turn the caller continued now holds both parts).
    pub fn replace_turn(&self, call_sid: &str, idx: usize, turn: Turn) {
        if let Some(t) = self
            .lock()
            .get_mut(call_sid)
            .and_then(|r| r.turns.get_mut(idx))
        {
            *t = turn;
            if let Some(sink) = &self.sink {
                sink.turn(call_sid, idx, t);
            }
        }
    }

    /// Changes the agent turn of one utterance and reports it to the sink.
    fn edit_agent_turn(&self, call_sid: &str, speech_id: u64, edit: impl FnOnce(&mut Turn)) {
        if let Some(r) = self.lock().get_mut(call_sid) {
            if let Some((idx, t)) = r
                .turns
                .iter_mut()
                .enumerate()
                .find(|(_, t)| t.speech_id == Some(speech_id))
            {
                edit(t);
                if let Some(sink) = &self.sink {
                    sink.turn(call_sid, idx, t);
                }
            }
        }
    }

    /// Rewrites an agent turn once we know what the caller actually heard.
    pub fn update_agent_turn(
        &self,
        call_sid: &str,
        speech_id: u64,
        heard: &str,
        interrupted: bool,
    ) {
        self.edit_agent_turn(call_sid, speech_id, |t| {
            t.text = heard.to_string();
            t.interrupted = interrupted;
        });
    }

    /// An agent line finished playing (its final mark came back).
    pub fn set_turn_end(&self, call_sid: &str, speech_id: u64, end_ms: u64) {
        self.edit_agent_turn(call_sid, speech_id, |t| t.end_ms = Some(end_ms));
    }

    pub fn set_turn_latency(&self, call_sid: &str, speech_id: u64, latency: TurnLatency) {
        self.edit_agent_turn(call_sid, speech_id, |t| t.latency = Some(latency));
    }

    /// The engine's verdict. `DoNotCall` also lists the number at once (and sticks: a later
    /// hang-up outcome does not overwrite an opt-out).
    pub fn set_outcome(&self, call_sid: &str, outcome: Outcome) {
        if let Some(r) = self.lock().get_mut(call_sid) {
            if r.outcome == Some(Outcome::DoNotCall) {
                return;
            }
            r.outcome = Some(outcome);
            if let Some(sink) = &self.sink {
                if outcome == Outcome::DoNotCall {
                    sink.do_not_call(call_sid, r.metadata.to.as_deref());
                }
                sink.verdict(r);
            }
        }
    }

    /// The captured variables now (to restore them when a turn is undone).
    pub fn variables(&self, call_sid: &str) -> BTreeMap<String, String> {
        self.lock()
            .get(call_sid)
            .map(|r| r.variables.clone())
            .unwrap_or_default()
    }

    pub fn set_variables(&self, call_sid: &str, variables: BTreeMap<String, String>) {
        if let Some(r) = self.lock().get_mut(call_sid) {
            if r.variables != variables {
                r.variables = variables;
                if let Some(sink) = &self.sink {
                    sink.verdict(r);
                }
            }
        }
    }

    pub fn set_variable(&self, call_sid: &str, name: &str, value: &str) {
        if let Some(r) = self.lock().get_mut(call_sid) {
            r.variables.insert(name.to_string(), value.to_string());
            if let Some(sink) = &self.sink {
                sink.verdict(r);
            }
        }
    }

    pub fn add_barge_in(&self, call_sid: &str, reaction_ms: f64) {
        if let Some(r) = self.lock().get_mut(call_sid) {
            r.barge_in_reaction_ms.push(reaction_ms);
        }
    }

    pub fn finish(&self, call_sid: &str, status: &str) {
        if let Some(r) = self.lock().get_mut(call_sid) {
            r.status = status.to_string();
            if let Some(sink) = &self.sink {
                sink.finished(r);
            }
        }
    }

    pub fn get(&self, call_sid: &str) -> Option<CallRecord> {
        self.lock().get(call_sid).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CallRecord>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}
