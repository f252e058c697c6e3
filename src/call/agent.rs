//! The agent side of a call: what to say and when.
//!
//! Speaks the greeting (the AI disclosure; not interruptible), answers each caller turn with a
//! streamed reply (LLM tokens -> clauses -> TTS -> pacer, TTS starting on the first clause), keeps
//! the history to what the caller actually heard, resumes after a false interruption (a
//! backchannel or noise), and honours the opt-out key at once. The script engine replaces
//! [`reply_messages`] and the fixed lines here; the speaking machinery stays.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::output::{OutputCommand, OutputEvent};
use super::speech::SpeechBoard;
use super::turn::is_backchannel;
use super::SessionDeps;
use crate::engine::{GenerateRequest, LlmEvent};
use crate::model::{CallMetadata, ChatMessage, Turn, TurnLatency};
use crate::script::clauses::{ends_sentence, ClauseSplitter};

use crate::script::machine::{Action, Event};
use crate::script::runner::{CallContext, ScriptRunner};

/// What the inbound loop tells the agent.
#[derive(Debug)]
pub enum AgentInput {
    Turn(CallerTurn),
    Dtmf(String),
}

/// A finished caller turn.
#[derive(Debug)]
pub struct CallerTurn {
    pub text: String,
    /// When the caller started and stopped speaking (ms since the stream started).
    pub start_ms: u64,
    pub end_ms: u64,
    pub stt_ms: f64,
    /// Silence from the last speech to the end-of-turn decision.
    pub endpointing_ms: f64,
    pub decided_at: Instant,
    /// The agent was audible when the caller started speaking.
    pub over_agent: bool,
    /// The caller's speech cut the agent off.
    pub barged_in: bool,
}

impl CallerTurn {
    /// The transcript line: what was said, from when to when.
    fn to_record(&self) -> Turn {
        Turn {
            end_ms: Some(self.end_ms),
            ..Turn::caller(self.text.clone(), self.start_ms)
        }
    }
}

/// A history line, tied to the agent utterance it came from (to trim it after a barge-in).
struct HistoryEntry {
    speech_id: Option<u64>,
    message: ChatMessage,
}

struct Agent {
    deps: SessionDeps,
    call_sid: String,
    out: mpsc::Sender<OutputCommand>,
    out_events: mpsc::UnboundedReceiver<OutputEvent>,
    board: SpeechBoard,
    cancel: CancellationToken,
    stream_started: Instant,
    history: Vec<HistoryEntry>,
    system_prompt: String,
    /// The most recent utterance (a barge-in may have emptied its history entry).
    last_speech: Option<u64>,
}

#[allow(clippy::too_many_arguments)]
pub async fn run_agent(
    deps: SessionDeps,
    metadata: CallMetadata,
    mut inputs: mpsc::Receiver<AgentInput>,
    out: mpsc::Sender<OutputCommand>,
    out_events: mpsc::UnboundedReceiver<OutputEvent>,
    board: SpeechBoard,
    cancel: CancellationToken,
    hangup: CancellationToken,
    stream_started: Instant,
) {
    let open = &deps.conversation.script;
    let mut system_prompt = open.persona_prompt.clone().unwrap_or_default();
    if let Some(name) = metadata.lead.get("name") {
        system_prompt.push_str(&format!(" You are speaking with {name}."));
    }
    let mut agent = Agent {
        deps,
        call_sid: metadata.call_sid.clone(),
        out,
        out_events,
        board,
        cancel,
        stream_started,
        history: Vec::new(),
        system_prompt,
        last_speech: None,
    };

    // With a script, the script decides every line and the end of the call: the campaign's
    // script for a dialed call, else the configured one.
    let script_source = metadata
        .campaign_id
        .as_deref()
        .and_then(|c| agent.deps.scripts.get(c))
        .or_else(|| Some(agent.deps.conversation.script.clone()));
    // An answering machine (AMD waited for the beep): leave the script's voicemail and go.
    if let Some(answered_by) = metadata.lead.get("answered_by") {
        if answered_by.starts_with("machine") {
            agent
                .leave_voicemail(script_source.as_deref(), answered_by, &metadata)
                .await;
            hangup.cancel();
            return;
        }
    }
    let (llm, ctx) = (
        agent.deps.llm.clone(),
        CallContext::from_lead(&metadata.lead),
    );
    let mut script = script_source.map(|s| ScriptRunner::new(s, llm, &agent.call_sid, ctx));
    match script.as_mut() {
        Some(runner) => {
            let plan = runner.event(Event::Started).await;
            let plan = runner.realize(plan).await;
            if agent.perform(plan.actions, &hangup).await {
                return;
            }
        }
        None => {
            // The disclosure comes first and cannot be interrupted.
            let greeting = agent.deps.conversation.script.opening.clone();
            if agent.say(&greeting, false).await.is_none() {
                return;
            }
        }
    }

    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_activity = Instant::now();
    loop {
        let input = tokio::select! {
            i = inputs.recv() => i,
            _ = agent.cancel.cancelled() => None,
            _ = tick.tick(), if script.is_some() => {
                let Some(runner) = script.as_mut() else { continue };
                // The script's clocks: silence since the agent stopped talking, call duration.
                let now = Instant::now();
                if agent.board.live().is_some() {
                    last_activity = now;
                }
                let elapsed = agent.stream_started.elapsed().as_secs() as u32;
                let event = if elapsed >= runner.script().max_call_seconds {
                    Some(Event::Elapsed(elapsed))
                } else if now.duration_since(last_activity).as_secs() >= runner.script().silence_reprompt_seconds as u64 {
                    last_activity = now;
                    Some(Event::Silence)
                } else {
                    None
                };
                if let Some(event) = event {
                    let plan = runner.event(event).await;
                    let plan = runner.realize(plan).await;
                    if agent.perform(plan.actions, &hangup).await {
                        break;
                    }
                }
                continue;
            }
        };
        let Some(input) = input else { break };
        last_activity = Instant::now();
        match (input, script.as_mut()) {
            (AgentInput::Turn(turn), Some(runner)) => {
                if agent.on_script_turn(runner, turn, &hangup).await {
                    break;
                }
            }
            (AgentInput::Dtmf(digit), Some(runner)) => {
                agent.record(Turn::caller(format!("[keypad {digit}]"), agent.at_ms()));
                let Some(d) = digit.chars().next() else {
                    continue;
                };
                let plan = runner.event(Event::Dtmf(d)).await;
                let plan = runner.realize(plan).await;
                if agent.perform(plan.actions, &hangup).await {
                    break;
                }
            }
            (AgentInput::Turn(turn), None) => agent.on_turn(turn).await,
            (AgentInput::Dtmf(digit), None) => {
                let opt_out = agent
                    .deps
                    .conversation
                    .script
                    .opt_out_digit
                    .is_some_and(|d| digit.starts_with(d));
                if opt_out {
                    agent.record(Turn::caller(format!("[keypad {digit}]"), agent.at_ms()));
                    agent.opt_out().await;
                    hangup.cancel();
                    break;
                }
                // Other keys are caller input like words (menu choices reach the reply logic).
                agent
                    .on_turn(CallerTurn {
                        text: format!("[keypad {digit}]"),
                        start_ms: agent.at_ms(),
                        end_ms: agent.at_ms(),
                        stt_ms: 0.0,
                        endpointing_ms: 0.0,
                        decided_at: Instant::now(),
                        over_agent: false,
                        barged_in: false,
                    })
                    .await;
            }
        }
    }
    agent.reconcile();
    // The caller hung up (or the stream dropped) before the script reached an end node: the
    // script records how far it got instead of leaving the call without an outcome.
    if let Some(runner) = script.as_mut() {
        runner.end();
        if runner.outcome().is_none() {
            runner.event(Event::HangUp).await;
            if let Some(outcome) = runner.outcome().map(|o| o.as_str()) {
                agent.deps.registry.set_outcome(&agent.call_sid, outcome);
            }
        }
    }
}

impl Agent {
    fn at_ms(&self) -> u64 {
        self.stream_started.elapsed().as_millis() as u64
    }

    fn record(&self, turn: Turn) {
        self.deps.registry.add_turn(&self.call_sid, turn);
    }

    /// Speaks fixed text as one utterance; returns its id, or None when the call is over.
    async fn say(&mut self, text: &str, interruptible: bool) -> Option<u64> {
        let (id, speech_cancel) = self.board.begin(interruptible, &self.cancel);
        self.last_speech = Some(id);
        let mut splitter = ClauseSplitter::new();
        let mut clauses = splitter.push(text);
        clauses.extend(splitter.finish());
        for clause in clauses {
            let (ok, _) = speak_clause(
                &self.deps,
                &self.out,
                &self.board,
                id,
                clause,
                &speech_cancel,
            )
            .await;
            if !ok {
                return None;
            }
        }
        self.board.complete(id);
        self.out
            .send(OutputCommand::EndSpeech { speech_id: id })
            .await
            .ok()?;
        self.history.push(HistoryEntry {
            speech_id: Some(id),
            message: ChatMessage::new("assistant", text),
        });
        self.record(Turn::agent(text, self.at_ms(), id));
        Some(id)
    }

    /// Carries out the script's actions; true when the call is over.
    async fn perform(&mut self, actions: Vec<Action>, hangup: &CancellationToken) -> bool {
        for action in actions {
            match action {
                Action::Say {
                    text,
                    interruptible,
                } => {
                    if self.say(&text, interruptible).await.is_none() {
                        return true;
                    }
                }
                Action::Capture { name, value } => {
                    self.deps
                        .registry
                        .set_variable(&self.call_sid, &name, &value)
                }
                Action::MarkDoNotCall => self
                    .deps
                    .registry
                    .set_outcome(&self.call_sid, "do_not_call"),
                Action::HangUp { outcome } => {
                    let outcome = outcome.as_str();
                    tracing::info!(%outcome, "script ended the call");
                    self.deps.registry.set_outcome(&self.call_sid, outcome);
                    if let Some(id) = self.last_speech {
                        self.wait_until_played(id, Duration::from_secs(30)).await;
                    }
                    hangup.cancel();
                    return true;
                }
                // The runner has already turned generated lines into `Say`.
                Action::Generate { .. } => {}
            }
        }
        false
    }

    /// A caller turn under a script: backchannels resume as in free mode; anything else is
    /// classified and stepped. True when the call is over.
    async fn on_script_turn(
        &mut self,
        runner: &mut ScriptRunner,
        turn: CallerTurn,
        hangup: &CancellationToken,
    ) -> bool {
        self.reconcile();
        let last_speech = self.last_speech.and_then(|id| self.board.get(id));
        let backchannel = turn.text.is_empty()
            || (turn.over_agent && is_backchannel(&turn.text, &self.deps.turn.backchannels));
        if backchannel {
            if !turn.text.is_empty() {
                self.record(turn.to_record());
            }
            if let Some(record) = last_speech.filter(|r| r.interrupted && turn.barged_in) {
                let rest = record.unheard_clauses().join(" ");
                if !rest.is_empty() {
                    self.say(&rest, true).await;
                }
            }
            return false;
        }
        self.record(turn.to_record());
        let before = self.last_speech;
        let plan = runner.caller(&turn.text).await;
        let report = runner.realize(plan).await;
        if let Some(c) = &report.classified {
            tracing::info!(node = %report.node, intent = %c.intent, by = c.by, "caller turn classified");
        }
        let ended = self.perform(report.actions, hangup).await;
        // Latency of the first line said in answer.
        if let Some(id) = self.last_speech.filter(|id| Some(*id) != before) {
            let first = before.map_or(id, |b| b + 1);
            if let Some(record) = self.board.get(first) {
                let mut latency = TurnLatency {
                    endpointing_ms: turn.endpointing_ms,
                    stt_ms: turn.stt_ms,
                    ..Default::default()
                };
                self.wait_first_frame(first, &record.cancel, turn.decided_at, &mut latency)
                    .await;
                crate::telemetry::observe_turn(&latency);
                self.deps
                    .registry
                    .set_turn_latency(&self.call_sid, first, latency);
            }
        }
        ended
    }

    /// Replaces interrupted utterances in the history (and transcript) by what was heard.
    fn reconcile(&mut self) {
        for entry in &mut self.history {
            let Some(id) = entry.speech_id else { continue };
            let Some(record) = self.board.get(id) else {
                continue;
            };
            if record.interrupted {
                let heard = record.heard_text();
                if entry.message.content != heard {
                    entry.message.content = heard.clone();
                    self.deps
                        .registry
                        .update_agent_turn(&self.call_sid, id, &heard, true);
                }
            }
        }
        self.history
            .retain(|e| e.speech_id.is_none() || !e.message.content.is_empty());
    }

    async fn on_turn(&mut self, turn: CallerTurn) {
        self.reconcile();
        let last_speech = self.last_speech.and_then(|id| self.board.get(id));
        let backchannel = turn.text.is_empty()
            || (turn.over_agent && is_backchannel(&turn.text, &self.deps.turn.backchannels));
        if backchannel {
            if !turn.text.is_empty() {
                self.record(turn.to_record());
            }
            // A false interruption: pick up where the caller cut in.
            if turn.barged_in {
                if let Some(record) = last_speech.filter(|r| r.interrupted) {
                    let rest = record.unheard_clauses().join(" ");
                    if !rest.is_empty() {
                        tracing::info!(caller = %turn.text, "false interruption: resuming");
                        self.say(&rest, true).await;
                    }
                }
            }
            return;
        }
        tracing::info!(caller = %turn.text, stt_ms = turn.stt_ms, "caller said");
        self.record(turn.to_record());
        self.history.push(HistoryEntry {
            speech_id: None,
            message: ChatMessage::new("user", turn.text.clone()),
        });
        let mut latency = TurnLatency {
            endpointing_ms: turn.endpointing_ms,
            stt_ms: turn.stt_ms,
            ..Default::default()
        };
        let (id, speech_cancel) = self.board.begin(true, &self.cancel);
        self.last_speech = Some(id);
        let reply = self.respond(id, &speech_cancel, &mut latency).await;
        if self.cancel.is_cancelled() {
            return;
        }
        if !reply.is_empty() {
            self.wait_first_frame(id, &speech_cancel, turn.decided_at, &mut latency)
                .await;
            tracing::info!(agent = %reply, ?latency, "agent replied");
            self.history.push(HistoryEntry {
                speech_id: Some(id),
                message: ChatMessage::new("assistant", reply.clone()),
            });
            crate::telemetry::observe_turn(&latency);
            let mut t = Turn::agent(reply, self.at_ms(), id);
            t.latency = Some(latency);
            self.record(t);
            self.reconcile();
        }
        let keep = 12;
        if self.history.len() > keep {
            let cut = self.history.len() - keep;
            self.history.drain(..cut);
        }
    }

    async fn wait_first_frame(
        &mut self,
        id: u64,
        speech_cancel: &CancellationToken,
        decided_at: Instant,
        latency: &mut TurnLatency,
    ) {
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                ev = self.out_events.recv() => match ev {
                    Some(OutputEvent::FirstFrameSent { speech_id, at }) if speech_id == id => {
                        let first = at.saturating_duration_since(decided_at).as_secs_f64() * 1000.0;
                        latency.first_frame_ms = Some(first);
                        latency.voice_to_voice_ms = Some(latency.endpointing_ms + first);
                        return;
                    }
                    Some(OutputEvent::Closed) | None => return,
                    Some(_) => {}
                },
                _ = speech_cancel.cancelled() => return,
                _ = &mut deadline => return,
            }
        }
    }

    /// The messages for the LLM: system prompt plus the heard history.
    fn reply_messages(&self) -> Vec<ChatMessage> {
        let mut messages = vec![ChatMessage::new("system", self.system_prompt.clone())];
        messages.extend(self.history.iter().map(|e| e.message.clone()));
        messages
    }

    /// Streams one reply: LLM tokens -> clauses -> TTS (concurrently) -> pacer. Returns the text.
    async fn respond(
        &mut self,
        id: u64,
        speech_cancel: &CancellationToken,
        latency: &mut TurnLatency,
    ) -> String {
        let llm_cancel = speech_cancel.child_token();
        let mut tokens = self.deps.llm.generate(GenerateRequest {
            conversation_id: self.call_sid.clone(),
            messages: self.reply_messages(),
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
        let tts_task = tokio::spawn(async move {
            // Synthesis time of the first clause: the TTS share of time to first audio.
            let mut first_audio: Option<Duration> = None;
            while let Some(clause) = clause_rx.recv().await {
                let (ok, synth) = speak_clause(&deps, &out, &board, id, clause, &tts_cancel).await;
                if first_audio.is_none() {
                    first_audio = synth;
                }
                if !ok {
                    return first_audio;
                }
            }
            board.complete(id);
            let _ = out.send(OutputCommand::EndSpeech { speech_id: id }).await;
            first_audio
        });

        let started = Instant::now();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut splitter = ClauseSplitter::new();
        let mut reply = String::new();
        let mut sentences = 0usize;
        let max_sentences = self.deps.conversation.max_reply_sentences;
        let push_clause = |clause: String, reply: &mut String, latency: &mut TurnLatency| {
            if latency.llm_first_clause_ms.is_none() {
                latency.llm_first_clause_ms = Some(ms(started.elapsed()));
            }
            if !reply.is_empty() {
                reply.push(' ');
            }
            reply.push_str(&clause);
            clause
        };
        'stream: while let Some(event) = tokens.recv().await {
            match event {
                LlmEvent::Token(piece) => {
                    if latency.llm_first_token_ms.is_none() {
                        latency.llm_first_token_ms = Some(ms(started.elapsed()));
                    }
                    for clause in splitter.push(&piece) {
                        let sentence_end = ends_sentence(&clause);
                        let clause = push_clause(clause, &mut reply, latency);
                        let _ = clause_tx.send(clause).await;
                        if sentence_end {
                            sentences += 1;
                        }
                        if sentences >= max_sentences {
                            // Enough said: a phone reply stays short whatever the model wants.
                            llm_cancel.cancel();
                            break 'stream;
                        }
                    }
                }
                LlmEvent::Done {
                    prompt_evaluated,
                    prompt_cached,
                    generated,
                    stop,
                } => {
                    tracing::debug!(
                        prompt_evaluated,
                        prompt_cached,
                        generated,
                        ?stop,
                        "llm done"
                    );
                    break;
                }
                LlmEvent::Error(e) => {
                    tracing::error!(error = %e, "llm failed");
                    break;
                }
            }
        }
        if sentences < max_sentences && !speech_cancel.is_cancelled() {
            if let Some(rest) = splitter.finish() {
                let clause = push_clause(rest, &mut reply, latency);
                let _ = clause_tx.send(clause).await;
            }
        }
        drop(clause_tx);
        if let Ok(Some(first_audio)) = tts_task.await {
            latency.tts_first_audio_ms = Some(ms(first_audio));
        }
        reply
    }

    /// Opt-out: stop talking at once, confirm, record do-not-call, wait until heard.
    async fn opt_out(&mut self) {
        tracing::info!("caller opted out");
        self.board.interrupt_all();
        let _ = self.out.send(OutputCommand::Clear).await;
        self.deps
            .registry
            .set_outcome(&self.call_sid, "do_not_call");
        let message = self.deps.conversation.script.globals.opt_out.clone();
        if let Some(id) = self.say(&message, false).await {
            self.wait_until_played(id, Duration::from_secs(20)).await;
        }
    }

    /// The voicemail message (identification, callback number and how to opt out, as the law
    /// asks) after the beep, then hang up. Without a beep (`machine_start`) talking would land
    /// on the greeting, so the call just ends.
    async fn leave_voicemail(
        &mut self,
        script: Option<&crate::script::format::Script>,
        answered_by: &str,
        metadata: &CallMetadata,
    ) {
        let message = match script.and_then(|s| Some((s, s.voicemail.as_deref()?))) {
            Some((s, line)) if answered_by.starts_with("machine_end") => {
                let ctx = CallContext::from_lead(&metadata.lead);
                s.render(line, &ctx.vars, ctx.timezone)
            }
            _ => {
                self.deps.registry.set_outcome(&self.call_sid, "machine");
                return;
            }
        };
        tracing::info!(answered_by, "answering machine: leaving voicemail");
        if let Some(id) = self.say(&message, false).await {
            self.wait_until_played(id, Duration::from_secs(60)).await;
        }
        self.deps.registry.set_outcome(&self.call_sid, "voicemail");
    }

    /// Waits for Twilio's final mark of an utterance: hanging up earlier clips it.
    async fn wait_until_played(&self, id: u64, max: Duration) {
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
/// meanwhile (stale audio is never sent). Returns whether to go on, and the synthesis time.
async fn speak_clause(
    deps: &SessionDeps,
    out: &mpsc::Sender<OutputCommand>,
    board: &SpeechBoard,
    speech_id: u64,
    clause: String,
    cancel: &CancellationToken,
) -> (bool, Option<Duration>) {
    if cancel.is_cancelled() {
        return (false, None);
    }
    match deps.tts.synthesize(clause.clone(), cancel.clone()).await {
        Ok(audio) => {
            if cancel.is_cancelled() {
                return (false, Some(audio.elapsed));
            }
            let clause_index = board.add_clause(speech_id, &clause);
            let sent = out
                .send(OutputCommand::Clause {
                    speech_id,
                    clause_index,
                    samples: audio.samples,
                    sample_rate: audio.sample_rate.max(1),
                    cancel: cancel.clone(),
                })
                .await
                .is_ok();
            (sent, Some(audio.elapsed))
        }
        Err(e) => {
            if !cancel.is_cancelled() {
                tracing::error!(error = %e, "text to speech failed");
            }
            (!cancel.is_cancelled(), None)
        }
    }
}
