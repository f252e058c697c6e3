//! Work done ahead, while the caller hears a node's question and answers it and the LLM and
//! the voice are idle:
//! - the generated line their answer may lead to (the pitch after "And do you own your
//!   home?") is written and synthesised, so the turn that needs it answers as fast as a fixed
//!   line;
//! - the node's classification prompt, all but the caller's words, goes into the model's KV
//!   cache, so a turn the rules cannot read costs the model only those words.
//!
//! The script still decides: a prepared line is used only when the script asks for exactly its
//! instruction (one that uses a variable the answer captured renders otherwise, and is written
//! afresh), and it passes the same fitness checks as a streamed one. Lines no answer leads to
//! any more are dropped unsaid.

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::speak::queue_clause;
use super::{Agent, Said};
use crate::call::voice::Line;
use crate::call::SessionDeps;
use crate::engine::{GenerateRequest, LlmEvent, SpeechAudio};
use crate::model::ChatMessage;
use crate::script::clauses::{ends_sentence, unfit_in_call, ClauseSplitter};
use crate::script::machine::Action;

/// A model that wrote nothing fit to say is asked once more: off the caller's clock, a second
/// try costs nothing they hear.
const ATTEMPTS: usize = 2;

/// A generated line, written and synthesised; no clauses when the model wrote nothing fit.
pub(super) struct Prepared {
    clauses: Vec<(String, SpeechAudio)>,
}

/// What the line is for: its rendered instruction and the node's goal.
type Key = (String, String);

/// Lines being prepared for this call, and the classifier's warm-up. Dropping it stops them.
#[derive(Default)]
pub(super) struct Ahead {
    jobs: Vec<(Key, JoinHandle<Option<Prepared>>)>,
    /// The node whose classification prompt was last put in the KV cache, and that job.
    warmed: Option<(String, JoinHandle<()>)>,
}

impl Drop for Ahead {
    fn drop(&mut self) {
        for (_, job) in &self.jobs {
            job.abort();
        }
        if let Some((_, job)) = &self.warmed {
            job.abort();
        }
    }
}

impl Agent {
    /// Starts preparing the generated lines the caller's next answer may lead to, and stops
    /// those it no longer can.
    pub(super) fn prepare_upcoming(&mut self) {
        if !self.deps.conversation.prepare_lines {
            return;
        }
        self.warm_classifier();
        let wanted: Vec<(Key, usize)> = self
            .runner
            .upcoming_lines()
            .into_iter()
            .filter_map(|a| match a {
                Action::Generate {
                    instruction,
                    goal,
                    sentences,
                } => Some(((instruction, goal), sentences)),
                _ => None,
            })
            .collect();
        self.ahead.jobs.retain(|(key, job)| {
            let keep = wanted.iter().any(|(k, _)| k == key);
            if !keep {
                job.abort();
            }
            keep
        });
        for (key, sentences) in wanted {
            if self.ahead.jobs.iter().any(|(k, _)| *k == key) {
                continue;
            }
            let messages = self.runner.generation(&key.0, &key.1);
            let job = tokio::spawn(prepare(
                self.deps.clone(),
                self.call_sid.clone(),
                messages,
                sentences,
                key.clone(),
                self.cancel.child_token(),
            ));
            self.ahead.jobs.push((key, job));
        }
    }

    /// Once per node: its classification prompt into the KV cache while its question plays, so
    /// that a turn the rules cannot read costs the model only the caller's words.
    fn warm_classifier(&mut self) {
        let node = &self.runner.state().node;
        if self.ahead.warmed.as_ref().is_some_and(|(n, _)| n == node) {
            return;
        }
        if let Some(warm) = self.runner.warm_classifier() {
            let job = tokio::spawn(warm);
            if let Some((_, old)) = self.ahead.warmed.replace((node.clone(), job)) {
                old.abort();
            }
        }
    }

    /// The line prepared for this instruction, once it is ready (it started before the turn
    /// that needs it, so waiting is never slower than starting now). `None`: none was, or
    /// preparing failed; the line is then streamed as usual.
    pub(super) async fn take_prepared(
        &mut self,
        instruction: &str,
        goal: &str,
    ) -> Option<Prepared> {
        let at = self
            .ahead
            .jobs
            .iter()
            .position(|((i, g), _)| i == instruction && g == goal)?;
        let (_, job) = self.ahead.jobs.swap_remove(at);
        job.await.ok().flatten()
    }

    /// Speaks a prepared line as one interruptible utterance.
    pub(super) async fn say_prepared(&mut self, line: Prepared) -> Said {
        if line.clauses.is_empty() {
            tracing::warn!("generated line was empty");
            return Said::Nothing;
        }
        let text = line
            .clauses
            .iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let (id, speech_cancel) = self.board.begin(true, &self.cancel);
        self.last_speech = Some(id);
        let (mut queued, mut complete) = (false, true);
        for (clause, audio) in line.clauses {
            if !queue_clause(&self.out, &self.board, id, &clause, audio, &speech_cancel).await {
                complete = false;
                break;
            }
            queued = true;
        }
        self.finish_utterance(id, &text, queued, complete).await
    }
}

/// Writes the line (at most `sentences`, every clause fit to say), then synthesises it.
async fn prepare(
    deps: SessionDeps,
    conversation_id: String,
    messages: Vec<ChatMessage>,
    sentences: usize,
    (instruction, goal): Key,
    cancel: CancellationToken,
) -> Option<Prepared> {
    let mut clauses = Vec::new();
    for _ in 0..ATTEMPTS {
        clauses = write(
            &deps,
            &conversation_id,
            &messages,
            sentences,
            (&instruction, &goal),
            &cancel,
        )
        .await?;
        if !clauses.is_empty() {
            break;
        }
    }
    let mut spoken = Vec::with_capacity(clauses.len());
    for (i, clause) in clauses.into_iter().enumerate() {
        match deps
            .voice
            .clause(&clause, Line::Generated, i == 0, &cancel)
            .await
        {
            Ok(audio) => spoken.push((clause, audio)),
            // Streamed afresh instead: a voice that failed now may not then.
            Err(_) => return None,
        }
    }
    Some(Prepared { clauses: spoken })
}

/// The model's line as clauses, cut at the first unfit one or after `sentences` sentences.
/// `None` when the model failed or the call ended.
async fn write(
    deps: &SessionDeps,
    conversation_id: &str,
    messages: &[ChatMessage],
    sentences: usize,
    (instruction, goal): (&str, &str),
    cancel: &CancellationToken,
) -> Option<Vec<String>> {
    let stop = cancel.child_token();
    let mut tokens = deps.llm.generate(GenerateRequest {
        conversation_id: conversation_id.to_string(),
        messages: messages.to_vec(),
        max_tokens: deps.conversation.max_reply_tokens,
        grammar: None,
        cancel: stop.clone(),
    });
    let mut splitter = ClauseSplitter::new();
    let mut clauses: Vec<String> = Vec::new();
    let mut done = 0;
    let fit = |clause: &str, first: bool| {
        unfit_in_call(clause, first, (instruction, goal), messages).is_none()
    };
    while let Some(event) = tokens.recv().await {
        match event {
            LlmEvent::Token(piece) => {
                for clause in splitter.push(&piece) {
                    if !fit(&clause, clauses.is_empty()) {
                        tracing::debug!(%clause, "prepared line stopped: unfit to say");
                        stop.cancel();
                        return Some(clauses);
                    }
                    done += usize::from(ends_sentence(&clause));
                    clauses.push(clause);
                    if done >= sentences.max(1) {
                        stop.cancel();
                        return Some(clauses);
                    }
                }
            }
            LlmEvent::Done { .. } => break,
            LlmEvent::Error(e) => {
                tracing::warn!(error = %e, "preparing a generated line failed");
                return None;
            }
        }
    }
    if cancel.is_cancelled() {
        return None;
    }
    if let Some(rest) = splitter.finish().filter(|r| fit(r, clauses.is_empty())) {
        clauses.push(rest);
    }
    Some(clauses)
}
