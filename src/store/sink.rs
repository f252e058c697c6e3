//! The registry's [`CallSink`] backed by the store: one writer task applies changes off the
//! media path (the session only queues).
//!
//! Two lanes, both first in, first out:
//! - do-not-call entries: the writer takes them before anything else, writes them durably,
//!   answers each one's ack once committed, and never drops one: a failed write is retried with
//!   back-off until it lands (its ack says `Err` after a few failures, so the call is not kept
//!   waiting on a dead database). Opt-outs are a handful per call, so this lane needs no bound;
//! - everything else (transcript lines, verdicts): bounded at [`SINK_CAPACITY`]. When the
//!   database stalls long enough to fill it, new changes are dropped with an error log instead
//!   of blocking the live call's audio or growing without limit.
//!
//! [`CallSink::flush`] waits until everything queued before it is written (shutdown uses it).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::{oneshot, watch, Notify};

use super::Store;
use crate::model::{CallRecord, CallSink, Turn};

/// Changes (other than opt-outs) that may wait for the database; at a few per second per call
/// that is minutes of a full appliance's transcripts.
pub const SINK_CAPACITY: usize = 10_000;
/// Failed do-not-call writes before its ack reports the failure (the writer keeps trying).
const ACK_AFTER_FAILURES: u32 = 3;

enum Change {
    Turn(String, usize, Turn),
    Verdict(CallRecord),
}

struct OptOut {
    call_sid: String,
    phone: String,
    ack: oneshot::Sender<Result<(), String>>,
}

#[derive(Default)]
struct Lanes {
    opt_outs: VecDeque<OptOut>,
    changes: VecDeque<Change>,
    /// Ever queued per lane (opt-outs, changes); the writer counts what it finished in `done`.
    queued: (u64, u64),
    dropped: u64,
    /// The sink is gone: the writer ends once the lanes are empty.
    closed: bool,
}

struct Shared {
    lanes: Mutex<Lanes>,
    wake: Notify,
    /// Finished per lane (opt-outs, changes); in order within each lane.
    done: watch::Sender<(u64, u64)>,
}

impl Shared {
    fn lanes(&self) -> MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, change: Change) {
        let mut lanes = self.lanes();
        if lanes.changes.len() >= SINK_CAPACITY {
            lanes.dropped += 1;
            let dropped = lanes.dropped;
            drop(lanes);
            // Loud, but not once per dropped line.
            if dropped == 1 || dropped.is_multiple_of(1000) {
                tracing::error!(
                    dropped,
                    capacity = SINK_CAPACITY,
                    "store writer far behind: call changes dropped (transcript lines, verdicts); \
                     do-not-call entries are still written"
                );
            }
            return;
        }
        lanes.changes.push_back(change);
        lanes.queued.1 += 1;
        drop(lanes);
        self.wake.notify_one();
    }
}

struct StoreSink {
    shared: Arc<Shared>,
}

impl Drop for StoreSink {
    fn drop(&mut self) {
        self.shared.lanes().closed = true;
        self.shared.wake.notify_one();
    }
}

impl CallSink for StoreSink {
    fn turn(&self, call_sid: &str, idx: usize, turn: &Turn) {
        self.shared
            .push(Change::Turn(call_sid.to_string(), idx, turn.clone()));
    }

    fn verdict(&self, record: &CallRecord) {
        self.shared.push(Change::Verdict(record.clone()));
    }

    fn do_not_call(
        &self,
        call_sid: &str,
        phone: Option<&str>,
    ) -> BoxFuture<'static, Result<(), String>> {
        let Some(phone) = phone else {
            tracing::error!(
                call_sid,
                "opt-out on a call without a known number: cannot list it"
            );
            return futures::future::ready(Err(format!(
                "call {call_sid} has no known number to list"
            )))
            .boxed();
        };
        let (ack, acked) = oneshot::channel();
        {
            let mut lanes = self.shared.lanes();
            lanes.opt_outs.push_back(OptOut {
                call_sid: call_sid.to_string(),
                phone: phone.to_string(),
                ack,
            });
            lanes.queued.0 += 1;
        }
        self.shared.wake.notify_one();
        async move {
            acked
                .await
                .unwrap_or_else(|_| Err("the store writer stopped before the write".into()))
        }
        .boxed()
    }

    fn finished(&self, record: &CallRecord) {
        self.shared.push(Change::Verdict(record.clone()));
    }

    fn flush(&self) -> BoxFuture<'static, ()> {
        let target = self.shared.lanes().queued;
        let mut done = self.shared.done.subscribe();
        async move {
            // Err: the writer is gone (runtime shutting down); nothing more will be written.
            let _ = done.wait_for(|d| d.0 >= target.0 && d.1 >= target.1).await;
        }
        .boxed()
    }
}

/// Starts the writer task (on the current tokio runtime) and returns the sink to hand to
/// the call registry.
pub fn spawn_sink(store: Store) -> Arc<dyn CallSink> {
    let shared = Arc::new(Shared {
        lanes: Mutex::new(Lanes::default()),
        wake: Notify::new(),
        done: watch::channel((0, 0)).0,
    });
    tokio::spawn(write_loop(store, shared.clone()));
    Arc::new(StoreSink { shared })
}

enum Job {
    OptOut(OptOut),
    /// Boxed: a verdict carries a whole call record.
    Change(Box<Change>),
}

async fn write_loop(store: Store, shared: Arc<Shared>) {
    loop {
        let job = {
            let mut lanes = shared.lanes();
            if let Some(o) = lanes.opt_outs.pop_front() {
                Some(Job::OptOut(o))
            } else if let Some(c) = lanes.changes.pop_front() {
                Some(Job::Change(Box::new(c)))
            } else if lanes.closed {
                return;
            } else {
                None
            }
        };
        match job {
            // A wake-up sent before this await is kept as a permit, so none is lost.
            None => shared.wake.notified().await,
            Some(Job::OptOut(o)) => {
                write_opt_out(&store, o).await;
                shared.done.send_modify(|d| d.0 += 1);
            }
            Some(Job::Change(c)) => {
                write_change(&store, *c).await;
                shared.done.send_modify(|d| d.1 += 1);
            }
        }
    }
}

/// Writes one do-not-call entry, retrying until it is committed.
async fn write_opt_out(store: &Store, o: OptOut) {
    let reason = format!("asked to stop on call {}", o.call_sid);
    let mut ack = Some(o.ack);
    let mut failures = 0u32;
    let mut delay = Duration::from_millis(100);
    loop {
        match store.add_dnc(&o.phone, &reason, "call").await {
            Ok(()) => {
                if let Some(ack) = ack.take() {
                    let _ = ack.send(Ok(()));
                }
                if failures > 0 {
                    tracing::warn!(call_sid = %o.call_sid, failures, "do-not-call entry written after retries");
                }
                return;
            }
            Err(e) => {
                failures += 1;
                tracing::error!(call_sid = %o.call_sid, failures, error = %e, "do-not-call entry not written yet; retrying");
                if failures == ACK_AFTER_FAILURES {
                    if let Some(ack) = ack.take() {
                        let _ = ack.send(Err(format!(
                            "not committed yet ({e}); the store writer keeps retrying"
                        )));
                    }
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn write_change(store: &Store, change: Change) {
    let result = match &change {
        Change::Turn(sid, idx, turn) => store.upsert_turn(sid, *idx as i64, turn).await,
        Change::Verdict(r) => {
            let sid = &r.metadata.call_sid;
            match store
                .set_call_outcome(sid, r.outcome.map(|o| o.as_str()), &r.variables)
                .await
            {
                Ok(()) if !r.path.is_empty() => store.set_call_path(sid, &r.path).await,
                other => other,
            }
        }
    };
    // Calls not placed by the dialer (no call row) update nothing, which is fine; a database
    // error must not stop the writer.
    if let Err(e) = result {
        tracing::error!(error = %e, "store write from a live call failed");
    }
}
