//! Speaking: fixed lines clause by clause, generated lines streamed LLM -> clauses -> TTS,
//! each clause queued for the pacer only while its utterance still stands.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Agent, Said};
use crate::call::output::{OutputCommand, OutputEvent};
use crate::call::speech::SpeechBoard;
use crate::call::voice::Line;
use crate::call::SessionDeps;
use crate::engine::{GenerateRequest, LlmEvent, SpeechAudio};
use crate::model::{ChatMessage, Turn, TurnLatency};
use crate::script::clauses::{ends_sentence, unfit_in_call, ClauseSplitter};

impl Agent {
    /// The pacer's news: the first frame of an answer completes its turn's latency.
    pub(super) fn output_event(&mut self, event: OutputEvent) {
        let OutputEvent::FirstAudible {
            speech_id,
            plays_at,
        } = event
        else {
            return;
        };
        let Some(pending) = self.latency.take_if(|p| p.speech_id == speech_id) else {
            return;
        };
        let mut latency = pending.latency;
        let first = plays_at
            .saturating_duration_since(pending.decided_at)
            .as_secs_f64()
            * 1000.0;
        latency.first_frame_ms = Some(first);
        latency.voice_to_voice_ms = Some(latency.endpointing_ms + first);
        crate::telemetry::observe_turn(&latency);
        self.deps
            .registry
            .set_turn_latency(&self.call_sid, speech_id, latency);
    }

    /// Speaks fixed text as one utterance, clause by clause.
    pub(super) async fn say(&mut self, text: &str, interruptible: bool) -> Said {
        let (id, speech_cancel) = self.board.begin(interruptible, &self.cancel);
        self.last_speech = Some(id);
        let mut splitter = ClauseSplitter::new();
        let mut clauses = splitter.push(text);
        clauses.extend(splitter.finish());
        let mut queued = false;
        let mut complete = true;
        for clause in clauses {
            let (deps, out, board) = (&self.deps, &self.out, &self.board);
            if !speak_clause(deps, out, board, id, clause, Line::Fixed, &speech_cancel).await {
                complete = false;
                break;
            }
            queued = true;
        }
        self.finish_utterance(id, text, queued, complete).await
    }

    /// Records an utterance in the transcript once any of it is queued, and closes it.
    pub(super) async fn finish_utterance(
        &mut self,
        id: u64,
        text: &str,
        queued: bool,
        complete: bool,
    ) -> Said {
        if queued {
            self.deps
                .registry
                .add_turn(&self.call_sid, Turn::agent(text, self.at_ms(), id));
            self.unsettled.push_back(id);
        }
        if !complete {
            return Said::Cut;
        }
        self.board.complete(id);
        if self
            .out
            .send(OutputCommand::EndSpeech { speech_id: id })
            .await
            .is_err()
        {
            return Said::Cut;
        }
        Said::Queued(id)
    }

    /// Streams one generated line: LLM tokens -> clauses -> TTS (beside the LLM) -> pacer.
    pub(super) async fn generate(
        &mut self,
        messages: Vec<ChatMessage>,
        sentences: usize,
        (instruction, goal): (&str, &str),
        latency: Option<&mut TurnLatency>,
    ) -> Said {
        let (id, speech_cancel) = self.board.begin(true, &self.cancel);
        let before = self.last_speech.replace(id);
        let llm_cancel = speech_cancel.child_token();
        let history = messages.clone();
        let mut tokens = self.deps.llm.generate(GenerateRequest {
            conversation_id: self.call_sid.clone(),
            messages,
            max_tokens: self.deps.conversation.max_reply_tokens,
            grammar: None,
            cancel: llm_cancel.clone(),
        });
        // TTS runs beside the LLM: clauses flow through this channel.
        let (clause_tx, mut clause_rx) = mpsc::channel::<String>(16);
        let (deps, out, board, tts_cancel) = (
            self.deps.clone(),
            self.out.clone(),
            self.board.clone(),
            speech_cancel.clone(),
        );
        let tts = tokio::spawn(async move {
            let mut queued = false;
            while let Some(clause) = clause_rx.recv().await {
                if !speak_clause(
                    &deps,
                    &out,
                    &board,
                    id,
                    clause,
                    Line::Generated,
                    &tts_cancel,
                )
                .await
                {
                    return (queued, false);
                }
                queued = true;
            }
            (queued, true)
        });
        let started = Instant::now();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (mut first_token, mut first_clause) = (None, None);
        let mut splitter = ClauseSplitter::new();
        let mut reply = String::new();
        let mut done = 0usize;
        let mut send = |clause: String, reply: &mut String| {
            first_clause.get_or_insert_with(|| ms(started.elapsed()));
            if !reply.is_empty() {
                reply.push(' ');
            }
            reply.push_str(&clause);
            clause
        };
        'stream: while let Some(event) = tokens.recv().await {
            match event {
                LlmEvent::Token(piece) => {
                    first_token.get_or_insert_with(|| ms(started.elapsed()));
                    for clause in splitter.push(&piece) {
                        // The model proposes; the script decides what may be said.
                        if let Some(why) =
                            unfit_in_call(&clause, reply.is_empty(), (instruction, goal), &history)
                        {
                            tracing::warn!(?why, "generated line stopped: unfit to say");
                            tracing::debug!(%clause, "the unfit clause");
                            llm_cancel.cancel();
                            break 'stream;
                        }
                        let end = ends_sentence(&clause);
                        let clause = send(clause, &mut reply);
                        let _ = clause_tx.send(clause).await;
                        done += usize::from(end);
                        if done >= sentences.max(1) {
                            // Enough said: a phone line stays short whatever the model wants.
                            llm_cancel.cancel();
                            break 'stream;
                        }
                    }
                }
                LlmEvent::Done { .. } => break,
                LlmEvent::Error(e) => {
                    tracing::error!(error = %e, "llm failed");
                    break;
                }
            }
        }
        if done < sentences.max(1) && !speech_cancel.is_cancelled() {
            if let Some(rest) = splitter.finish() {
                if unfit_in_call(&rest, reply.is_empty(), (instruction, goal), &history).is_none() {
                    let clause = send(rest, &mut reply);
                    let _ = clause_tx.send(clause).await;
                }
            }
        }
        drop(clause_tx);
        let (queued, complete) = tts.await.unwrap_or((false, false));
        if let Some(l) = latency {
            l.llm_first_token_ms = first_token;
            l.llm_first_clause_ms = first_clause;
        }
        if !queued && complete {
            // The model said nothing speakable: nothing was queued, nothing to close.
            tracing::warn!("generated line was empty");
            // Nothing will play under this id: the call's last line is still the one before.
            self.last_speech = before;
            return Said::Nothing;
        }
        self.finish_utterance(id, &reply, queued, complete).await
    }

    /// Waits for Twilio's final mark of an utterance: hanging up earlier clips it.
    pub(super) async fn wait_until_played(&self, id: u64, max: Duration) {
        let deadline = Instant::now() + max;
        while Instant::now() < deadline && !self.cancel.is_cancelled() {
            if self
                .board
                .get(id)
                .is_none_or(|r| r.fully_played || r.interrupted)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Synthesises one clause and queues it for the pacer, unless its utterance was cancelled
/// meanwhile (stale audio is never sent). False when the utterance is cut.
async fn speak_clause(
    deps: &SessionDeps,
    out: &mpsc::Sender<OutputCommand>,
    board: &SpeechBoard,
    speech_id: u64,
    clause: String,
    line: Line,
    cancel: &CancellationToken,
) -> bool {
    if cancel.is_cancelled() {
        return false;
    }
    let first = board.get(speech_id).is_none_or(|r| r.clauses.is_empty());
    match deps.voice.clause(&clause, line, first, cancel).await {
        Ok(audio) => queue_clause(out, board, speech_id, &clause, audio, cancel).await,
        Err(e) => {
            if !cancel.is_cancelled() {
                // One clause the voice could not say is skipped, not the call.
                tracing::error!(error = %e, "text to speech failed");
            }
            !cancel.is_cancelled()
        }
    }
}

/// Queues one clause's audio for the pacer, unless its utterance was cancelled meanwhile.
pub(super) async fn queue_clause(
    out: &mpsc::Sender<OutputCommand>,
    board: &SpeechBoard,
    speech_id: u64,
    clause: &str,
    audio: SpeechAudio,
    cancel: &CancellationToken,
) -> bool {
    if cancel.is_cancelled() {
        return false;
    }
    let clause_index = board.add_clause(speech_id, clause);
    out.send(OutputCommand::Clause {
        speech_id,
        clause_index,
        samples: audio.samples,
        sample_rate: audio.sample_rate.max(1),
        cancel: cancel.clone(),
    })
    .await
    .is_ok()
}
