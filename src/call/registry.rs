//! Calls the engine knows about: metadata registered through `POST /v1/calls` before Twilio
//! connects the media stream, and the transcript of every call that ran.
//!
//! The registry is the live, in-memory view; a [`CallSink`] (the store's writer) receives every
//! change as it happens, so turns land in the database turn by turn and an opt-out reaches the
//! do-not-call list at once, not when the call ends.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{self, BoxFuture, FutureExt};

use crate::model::{CallMetadata, CallRecord, CallSink, Outcome, Turn, TurnLatency};

/// How long a finished call stays readable here (`simulate`, `GET /v1/calls/{sid}`, the
/// dialer's verdict); the store keeps it for good.
const KEEP_FINISHED: Duration = Duration::from_secs(600);
/// How long a registered call may wait for its stream (Twilio gives up ringing long before).
const KEEP_UNSTREAMED: Duration = Duration::from_secs(1800);
/// Calls known at once, live and recent: registration beyond it is refused, so memory stays
/// bounded whatever the API's clients do.
const MAX_KNOWN: usize = 20_000;
/// Nodes remembered per call: a call looping between two nodes cannot grow its record.
const MAX_PATH: usize = 200;

/// Why a media stream's `start` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartRefused {
    #[error("no webhook or API call registered this call")]
    Unknown,
    #[error("this call has streamed already")]
    AlreadyStreamed,
    #[error("the stream is for another Twilio account")]
    WrongAccount,
}

/// Why a call could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterRefused {
    #[error("call {0} has streamed already")]
    AlreadyStreamed(String),
    #[error("too many calls registered ({MAX_KNOWN})")]
    Full,
}

/// Who may start a stream.
#[derive(Debug, Clone, Default)]
pub struct StartPolicy {
    /// A stream must name this account (when one is configured).
    pub account_sid: Option<String>,
    /// Development only (loopback): an unregistered call starts from the stream's custom
    /// parameters.
    pub allow_unregistered: bool,
}

#[derive(Default)]
struct Calls {
    records: HashMap<String, CallRecord>,
    /// Registration times, oldest first: calls whose stream never came are dropped.
    registered: VecDeque<(Instant, String)>,
    /// End times, oldest first: finished calls are dropped after [`KEEP_FINISHED`].
    finished: VecDeque<(Instant, String)>,
    /// Live calls' hang-up switches (an operator ending a call from the console).
    hangups: HashMap<String, tokio_util::sync::CancellationToken>,
}

impl Calls {
    fn sweep(&mut self, now: Instant) {
        while let Some((at, sid)) = self.registered.front() {
            if now.duration_since(*at) < KEEP_UNSTREAMED {
                break;
            }
            if self
                .records
                .get(sid)
                .is_some_and(|r| r.stream_sid.is_none())
            {
                self.records.remove(sid);
            }
            self.registered.pop_front();
        }
        while let Some((at, sid)) = self.finished.front() {
            if now.duration_since(*at) < KEEP_FINISHED && self.records.len() < MAX_KNOWN {
                break;
            }
            self.records.remove(sid);
            self.finished.pop_front();
        }
    }
}

/// Shared registry; the lock is never held across an await.
#[derive(Clone, Default)]
pub struct CallRegistry {
    inner: Arc<Mutex<Calls>>,
    sink: Option<Arc<dyn CallSink>>,
    policy: Arc<StartPolicy>,
}

impl CallRegistry {
    /// A registry that also reports every change to `sink`.
    pub fn with_sink(sink: Arc<dyn CallSink>) -> Self {
        Self {
            sink: Some(sink),
            ..Self::default()
        }
    }

    /// The same registry under `policy` (set once, when the appliance is built).
    pub fn with_policy(mut self, policy: StartPolicy) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    /// Registers (or replaces, before it started) a call's metadata.
    pub fn register(&self, metadata: CallMetadata) -> Result<CallRecord, RegisterRefused> {
        let now = Instant::now();
        let mut calls = self.lock();
        calls.sweep(now);
        let sid = metadata.call_sid.clone();
        match calls.records.get(&sid) {
            // A replayed webhook or API call must not let one call stream twice.
            Some(r) if r.stream_sid.is_some() => return Err(RegisterRefused::AlreadyStreamed(sid)),
            Some(_) => {}
            None if calls.records.len() >= MAX_KNOWN => return Err(RegisterRefused::Full),
            None => {}
        }
        let record = CallRecord {
            status: "registered".into(),
            metadata,
            ..Default::default()
        };
        calls.records.insert(sid.clone(), record.clone());
        calls.registered.push_back((now, sid));
        Ok(record)
    }

    /// Metadata for a starting stream: the registered call's, never what the stream's custom
    /// parameters claim (anyone can write those), unless the policy allows unregistered calls.
    pub fn start(
        &self,
        call_sid: &str,
        stream_sid: &str,
        account_sid: &str,
        parameters: &BTreeMap<String, String>,
    ) -> Result<CallMetadata, StartRefused> {
        if let Some(ours) = &self.policy.account_sid {
            if ours != account_sid {
                return Err(StartRefused::WrongAccount);
            }
        }
        let mut calls = self.lock();
        calls.sweep(Instant::now());
        if !calls.records.contains_key(call_sid) {
            if !self.policy.allow_unregistered {
                return Err(StartRefused::Unknown);
            }
            let record = CallRecord {
                metadata: CallMetadata {
                    call_sid: call_sid.to_string(),
                    from: parameters.get("from").cloned(),
                    to: parameters.get("to").cloned(),
                    campaign_id: parameters.get("campaign_id").cloned(),
                    lead: parameters.clone(),
                    inbound: false,
                    record: false,
                },
                ..Default::default()
            };
            calls.records.insert(call_sid.to_string(), record);
        }
        let Some(record) = calls.records.get_mut(call_sid) else {
            return Err(StartRefused::Unknown);
        };
        if record.stream_sid.is_some() {
            return Err(StartRefused::AlreadyStreamed);
        }
        record.stream_sid = Some(stream_sid.to_string());
        record.status = "in-progress".into();
        record.started_at_ms = Some(chrono::Utc::now().timestamp_millis());
        Ok(record.metadata.clone())
    }

    /// Adds a transcript line; returns its index (to rewrite it later).
    pub fn add_turn(&self, call_sid: &str, turn: Turn) -> Option<usize> {
        let mut calls = self.lock();
        let r = calls.records.get_mut(call_sid)?;
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
            .records
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
        if let Some(r) = self.lock().records.get_mut(call_sid) {
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

    /// The engine's verdict. `DoNotCall` goes through [`Self::opt_out`] (the write is queued
    /// either way; whoever must wait for it, the confirmation to the caller, awaits `opt_out`).
    pub fn set_outcome(&self, call_sid: &str, outcome: Outcome) {
        if outcome == Outcome::DoNotCall {
            drop(self.opt_out(call_sid));
            return;
        }
        if let Some(r) = self.lock().records.get_mut(call_sid) {
            // An opt-out sticks: a later hang-up outcome does not overwrite it.
            if r.outcome == Some(Outcome::DoNotCall) {
                return;
            }
            r.outcome = Some(outcome);
            if let Some(sink) = &self.sink {
                sink.verdict(r);
            }
        }
    }

    /// The caller opted out: outcome `do_not_call` (sticky), and the number listed at once.
    /// Resolves when the do-not-call entry is committed, so the confirmation the caller hears
    /// is true; `Err` says why it is not (the sink keeps retrying a failed write).
    pub fn opt_out(&self, call_sid: &str) -> BoxFuture<'static, Result<(), String>> {
        let mut calls = self.lock();
        let Some(r) = calls.records.get_mut(call_sid) else {
            return future::ready(Err(format!("call {call_sid} is not registered"))).boxed();
        };
        let first = r.outcome != Some(Outcome::DoNotCall);
        r.outcome = Some(Outcome::DoNotCall);
        let Some(sink) = &self.sink else {
            // In memory only: nothing to commit.
            return future::ready(Ok(())).boxed();
        };
        let ack = sink.do_not_call(call_sid, r.metadata.their_number());
        if first {
            sink.verdict(r);
        }
        ack
    }

    /// Resolves once every change reported so far is written (shutdown awaits it).
    pub fn flush(&self) -> BoxFuture<'static, ()> {
        match &self.sink {
            Some(sink) => sink.flush(),
            None => future::ready(()).boxed(),
        }
    }

    /// The captured variables now (to restore them when a turn is undone).
    pub fn variables(&self, call_sid: &str) -> BTreeMap<String, String> {
        self.lock()
            .records
            .get(call_sid)
            .map(|r| r.variables.clone())
            .unwrap_or_default()
    }

    pub fn set_variables(&self, call_sid: &str, variables: BTreeMap<String, String>) {
        if let Some(r) = self.lock().records.get_mut(call_sid) {
            if r.variables != variables {
                r.variables = variables;
                if let Some(sink) = &self.sink {
                    sink.verdict(r);
                }
            }
        }
    }

    pub fn set_variable(&self, call_sid: &str, name: &str, value: &str) {
        if let Some(r) = self.lock().records.get_mut(call_sid) {
            r.variables.insert(name.to_string(), value.to_string());
            if let Some(sink) = &self.sink {
                sink.verdict(r);
            }
        }
    }

    pub fn add_barge_in(&self, call_sid: &str, reaction_ms: f64) {
        if let Some(r) = self.lock().records.get_mut(call_sid) {
            r.barge_in_reaction_ms.push(reaction_ms);
        }
    }

    /// The call entered a script node (a repeat of the current one is not a step).
    pub fn enter_node(&self, call_sid: &str, node: &str) {
        if let Some(r) = self.lock().records.get_mut(call_sid) {
            if r.path.last().map(String::as_str) != Some(node) && r.path.len() < MAX_PATH {
                r.path.push(node.to_string());
                if let Some(sink) = &self.sink {
                    sink.verdict(r);
                }
            }
        }
    }

    /// Calls streaming now, oldest first.
    pub fn live(&self) -> Vec<CallRecord> {
        let mut live: Vec<CallRecord> = self
            .lock()
            .records
            .values()
            .filter(|r| r.status == "in-progress")
            .cloned()
            .collect();
        live.sort_by_key(|r| r.started_at_ms);
        live
    }

    /// What ends this live call's session when an operator hangs it up.
    pub fn on_hang_up(&self, call_sid: &str, switch: tokio_util::sync::CancellationToken) {
        self.lock().hangups.insert(call_sid.to_string(), switch);
    }

    /// Ends a live call (its session stops as if the agent hung up); false if it is not live.
    pub fn hang_up(&self, call_sid: &str) -> bool {
        match self.lock().hangups.get(call_sid) {
            Some(switch) => {
                switch.cancel();
                true
            }
            None => false,
        }
    }

    /// The stream ended: the store gets the record; it stays readable here a while.
    pub fn finish(&self, call_sid: &str, status: &str) {
        let mut calls = self.lock();
        calls.hangups.remove(call_sid);
        if let Some(r) = calls.records.get_mut(call_sid) {
            r.status = status.to_string();
            if let Some(sink) = &self.sink {
                sink.finished(r);
            }
            calls
                .finished
                .push_back((Instant::now(), call_sid.to_string()));
        }
    }

    pub fn get(&self, call_sid: &str) -> Option<CallRecord> {
        self.lock().records.get(call_sid).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests;
