//! Taking a turn back: the caller went on after a turn before hearing its answer (the answer
//! is dropped and both parts answered together), or the call ended while it was being answered
//! (it is taken again, silently). Both undo the turn's steps in the script unless something
//! irreversible (an opt-out, a hang-up, a transfer) was committed.

use super::Agent;
use crate::call::output::OutputCommand;

impl Agent {
    /// Undoes turn `id`'s steps in the script (not its transcript line); false when there is
    /// nothing to undo or something irreversible happened.
    pub(super) fn rewind(&mut self, id: u64) -> bool {
        let Some(undo) = self.take_undo(id) else {
            return false;
        };
        self.runner.restore(undo.snapshot);
        self.deps
            .registry
            .set_variables(&self.call_sid, undo.variables);
        true
    }

    /// The caller went on after turn `id` before hearing its answer: undo it, unless something
    /// irreversible happened.
    pub(super) fn undo_turn(&mut self, id: u64) {
        let Some(undo) = self.take_undo(id) else {
            return;
        };
        let cut = self.board.interrupt();
        if !cut.is_empty() {
            // The session's barge-in already cleared Twilio's buffer; this catches what the
            // job queued since.
            let _ = self.out.try_send(OutputCommand::Clear);
        }
        self.runner.restore(undo.snapshot);
        self.deps
            .registry
            .set_variables(&self.call_sid, undo.variables);
        self.undone = Some((id, undo.transcript_idx));
        self.unanswered = None;
        self.latency = None;
        tracing::info!(turn = id, "answer dropped: the caller's turn continues");
    }

    /// Turn `id`'s undo, unless it is another turn's or something irreversible happened.
    fn take_undo(&mut self, id: u64) -> Option<super::Undo> {
        self.undo.take_if(|u| u.turn == id && !u.committed)
    }

    pub(super) fn commit(&mut self) {
        if let Some(u) = self.undo.as_mut() {
            u.committed = true;
        }
    }
}
