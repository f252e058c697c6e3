//! The call's end: what the caller said or keyed too late to be answered, and the voicemail
//! left on an answering machine.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Agent, AgentInput, Said};
use crate::model::{Outcome, Turn};
use crate::script::machine::Action;

impl Agent {
    /// After the call ended: what the caller said or keyed too late to be answered (over the
    /// goodbye, while hanging up) goes to the transcript, and an opt-out in it is honoured.
    /// Runs until the session closes the inputs (it bounds its wait for the last words).
    pub(super) async fn late_inputs(
        &mut self,
        mut backlog: VecDeque<AgentInput>,
        inputs: &mut mpsc::Receiver<AgentInput>,
    ) {
        let opt_out = self.runner.script().opt_out_digit;
        loop {
            let input = match backlog.pop_front() {
                Some(input) => input,
                None => match inputs.recv().await {
                    Some(input) => input,
                    None => break,
                },
            };
            let wants_out = match &input {
                AgentInput::Turn(t) => {
                    let text = t.turn.text.trim();
                    if !text.is_empty() && !self.recorded.contains(&t.turn.id) {
                        let line = Turn {
                            end_ms: Some(t.turn.end_sample / 8),
                            ..Turn::caller(text.to_string(), t.turn.start_sample / 8)
                        };
                        self.deps.registry.add_turn(&self.call_sid, line);
                    }
                    let out = crate::script::classify::is_opt_out(text);
                    // "No, I rent." and a click: the script still learns the answer (variables,
                    // a decline's outcome), though nobody hears the reply.
                    if !out && !text.is_empty() && self.runner.outcome().is_none() {
                        let plan = self.runner.caller(text).await;
                        self.apply_silently(plan.actions);
                    }
                    out
                }
                AgentInput::Dtmf(d) => opt_out.is_some_and(|o| d.starts_with(o)),
                AgentInput::Continued(_) | AgentInput::Heard(_) => false,
            };
            if wants_out {
                tracing::info!("opt-out after the call's end: listed");
                self.deps
                    .registry
                    .set_outcome(&self.call_sid, Outcome::DoNotCall);
            }
        }
    }

    /// A plan for a caller nobody can hear any more: what it records, not what it says.
    fn apply_silently(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Capture { name, value } => {
                    self.deps
                        .registry
                        .set_variable(&self.call_sid, &name, &value);
                }
                Action::MarkDoNotCall => self
                    .deps
                    .registry
                    .set_outcome(&self.call_sid, Outcome::DoNotCall),
                Action::HangUp { outcome } => {
                    self.deps.registry.set_outcome(&self.call_sid, outcome);
                }
                // Nobody hears a handoff line: there is no one to hand over.
                Action::Say { .. } | Action::Generate { .. } | Action::Transfer { .. } => {}
            }
        }
    }

    /// The voicemail message (identification, callback number and how to opt out, as the law
    /// asks) after the beep, then hang up. Without a beep (`machine_start`) talking would land
    /// on the greeting, so the call just ends.
    pub(super) async fn leave_voicemail(&mut self, answered_by: &str) {
        if !answered_by.starts_with("machine_end") {
            self.deps
                .registry
                .set_outcome(&self.call_sid, Outcome::Machine);
            return;
        }
        let script = self.runner.script();
        let Some(voicemail) = &script.voicemail else {
            self.deps
                .registry
                .set_outcome(&self.call_sid, Outcome::Machine);
            return;
        };
        let message = script.render(voicemail, self.runner.vars(), self.runner.now().timezone());
        tracing::info!(answered_by, "answering machine: leaving voicemail");
        if let Said::Queued(id) = self.say(&message, false).await {
            self.wait_until_played(id, Duration::from_secs(60)).await;
        }
        self.deps
            .registry
            .set_outcome(&self.call_sid, Outcome::Voicemail);
    }
}
