//! The registry's [`CallSink`] backed by the store: one writer task applies changes in the
//! order they happened, off the media path (the session only queues).

use std::sync::Arc;

use tokio::sync::mpsc;

use super::Store;
use crate::model::{CallRecord, CallSink, Turn};

enum Change {
    Turn(String, usize, Turn),
    Verdict(CallRecord),
    DoNotCall(String, String),
}

struct StoreSink {
    tx: mpsc::UnboundedSender<Change>,
}

impl CallSink for StoreSink {
    fn turn(&self, call_sid: &str, idx: usize, turn: &Turn) {
        let _ = self
            .tx
            .send(Change::Turn(call_sid.to_string(), idx, turn.clone()));
    }

    fn verdict(&self, record: &CallRecord) {
        let _ = self.tx.send(Change::Verdict(record.clone()));
    }

    fn do_not_call(&self, call_sid: &str, phone: Option<&str>) {
        match phone {
            Some(phone) => {
                let _ = self
                    .tx
                    .send(Change::DoNotCall(call_sid.to_string(), phone.to_string()));
            }
            None => tracing::error!(
                call_sid,
                "opt-out on a call without a known number: cannot list it"
            ),
        }
    }

    fn finished(&self, record: &CallRecord) {
        let _ = self.tx.send(Change::Verdict(record.clone()));
    }
}

/// Starts the writer task (on the current tokio runtime) and returns the sink to hand to
/// the call registry.
pub fn spawn_sink(store: Store) -> Arc<dyn CallSink> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Change>();
    tokio::spawn(async move {
        while let Some(change) = rx.recv().await {
            let result = match &change {
                Change::Turn(sid, idx, turn) => store.upsert_turn(sid, *idx as i64, turn).await,
                Change::Verdict(r) => {
                    store
                        .set_call_outcome(
                            &r.metadata.call_sid,
                            r.outcome.map(|o| o.as_str()),
                            &r.variables,
                        )
                        .await
                }
                Change::DoNotCall(sid, phone) => {
                    store
                        .add_dnc(phone, &format!("asked to stop on call {sid}"), "call")
                        .await
                }
            };
            // Calls not placed by the dialer (no call row) update nothing, which is fine; a
            // database error must not kill the writer.
            if let Err(e) = result {
                tracing::error!(error = %e, "store write from a live call failed");
            }
        }
    });
    Arc::new(StoreSink { tx })
}
