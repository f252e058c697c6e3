//! The agent side of a call: what to say and when, under the call's script.
//!
//! Every call follows a script (the campaign's, the configured one, or the open-conversation
//! script), so the disclosure, the opt-out, silence re-prompts and the maximum duration hold on
//! every call. The script decides; the agent speaks: each caller turn becomes a plan (classify,
//! step), whose lines are spoken as they are ready (fixed lines clause by clause; generated
//! lines streamed LLM -> clauses -> TTS), and the script's context keeps only what the caller
//! heard.
//!
//! A turn's work is a job the caller can preempt: going on before hearing the answer
//! (`Continued`) undoes the turn (the runner's snapshot, the captured variables) and drops the
//! answer; the opt-out key stops it at once. Cancelled speech is never "call over": only an end
//! node, an opt-out, the caller hanging up or the stream ending end the call. If a caller turn
//! got no answer at all, the dead-air guard logs it and asks the node's question again.
//! A transfer node hands the call to a person (`transfer`).

mod ending;
mod prepare;
mod speak;
mod transfer;
mod undo;

pub use transfer::{PUBLIC_URL_PARAM, TRANSFER_PARAM};

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::detector::TurnEnd;
use super::output::{OutputCommand, OutputEvent};
use super::speech::SpeechBoard;
use super::turn::is_backchannel;
use super::SessionDeps;
use crate::model::{CallMetadata, Turn, TurnLatency, TurnPath};
use crate::script::machine::{Action, Event};
use crate::script::runner::{CallContext, RunnerSnapshot, ScriptRunner};

/// What the inbound loop tells the agent.
#[derive(Debug)]
pub enum AgentInput {
    Turn(CallerTurn),
    /// The caller went on after this turn before hearing its answer.
    Continued(u64),
    Dtmf(String),
    /// Words of a turn that has not ended yet (the caller is pausing): worth classifying now.
    Heard(String),
}

/// A finished caller turn, and when it was decided (latency runs from there).
#[derive(Debug, Clone)]
pub struct CallerTurn {
    pub turn: TurnEnd,
    pub decided_at: Instant,
}

/// Work the caller may preempt.
enum Job {
    Event(Event),
    Turn(CallerTurn),
    Key(String),
    /// The dead-air guard: the node's question again.
    Reask,
    /// Classify words heard in a pause, before the turn ends.
    Foresee(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    Over,
}

/// How an utterance went into the queue.
enum Said {
    Queued(u64),
    /// Cut before all of it was queued (a barge-in, or the call ended).
    Cut,
    /// Nothing to say (a generated line the model left empty or the script found unfit): the
    /// plan goes on with its next line.
    Nothing,
}

/// How to undo the caller's last turn if they go on before hearing the answer.
struct Undo {
    turn: u64,
    snapshot: RunnerSnapshot,
    variables: std::collections::BTreeMap<String, String>,
    /// The caller's line in the transcript.
    transcript_idx: Option<usize>,
    /// Something irreversible happened (do-not-call, hang-up): nothing to undo.
    committed: bool,
}

/// Latency of the first line said in answer to a turn, completed by its first frame.
struct PendingLatency {
    speech_id: u64,
    latency: TurnLatency,
    decided_at: Instant,
}

struct Agent {
    deps: SessionDeps,
    call_sid: String,
    out: mpsc::Sender<OutputCommand>,
    board: SpeechBoard,
    cancel: CancellationToken,
    stream_started: Instant,
    runner: ScriptRunner,
    undo: Option<Undo>,
    /// A turn undone by `Continued`: the next turn carries its words, and its transcript line.
    undone: Option<(u64, Option<usize>)>,
    /// Utterances not yet fully played or cut, oldest first: once they are, what was heard goes
    /// to the script's context and the transcript.
    unsettled: VecDeque<u64>,
    latency: Option<PendingLatency>,
    /// Caller turns whose words are in the transcript (a turn cut off by the call's end is
    /// finished after it without a second line).
    recorded: std::collections::HashSet<u64>,
    /// A caller turn with words got nothing queued in answer yet (turn id, since when).
    unanswered: Option<(u64, Instant)>,
    last_speech: Option<u64>,
    /// Where a transfer node sends the call (the campaign's transfer settings).
    route: Option<transfer::Route>,
    /// Work done while the caller answers: generated lines, the classifier's warm-up.
    ahead: prepare::Ahead,
}

/// Caller speech at least this long with no words recognised gets "did not catch that"
/// (shorter is a cough, a click, a breath).
const UNINTELLIGIBLE_MS: u64 = 700;

/// How long the opt-out confirmation waits for the do-not-call entry's commit.
const OPT_OUT_COMMIT_LIMIT: Duration = Duration::from_secs(5);

/// Lead columns the call carries that are not script variables.
const NOT_VARS: &[&str] = &[
    "call_sid",
    "from",
    "to",
    "campaign_id",
    "lead_id",
    "answered_by",
    "timezone",
    "window_start",
    "window_end",
    "memory",
    "last_outcome",
    TRANSFER_PARAM,
    PUBLIC_URL_PARAM,
];

/// What the script knows of the call before its first line.
fn call_context(metadata: &CallMetadata, clock_offset: chrono::Duration) -> CallContext {
    let lead = &metadata.lead;
    let mut ctx = CallContext {
        vars: lead
            .iter()
            .filter(|(k, v)| !NOT_VARS.contains(&k.as_str()) && !v.trim().is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        clock_offset,
        memory: lead.get("memory").filter(|m| !m.trim().is_empty()).cloned(),
        callback: lead.get("last_outcome").is_some_and(|o| o == "callback"),
        inbound: metadata.inbound,
        ..CallContext::default()
    };
    let zone = lead
        .get("timezone")
        .and_then(|z| z.parse().ok())
        .or_else(|| {
            metadata
                .their_number()
                .and_then(crate::leads::timezone_for_number)
        });
    if let Some(zone) = zone {
        ctx.timezone = zone;
    }
    if let (Some(a), Some(b)) = (lead.get("window_start"), lead.get("window_end")) {
        if let Ok(w) = crate::leads::CallingWindow::parse(a, b) {
            ctx.window = w;
        }
    }
    ctx
}

#[allow(clippy::too_many_arguments)]
pub async fn run_agent(
    deps: SessionDeps,
    metadata: CallMetadata,
    mut inputs: mpsc::Receiver<AgentInput>,
    out: mpsc::Sender<OutputCommand>,
    mut out_events: mpsc::UnboundedReceiver<OutputEvent>,
    board: SpeechBoard,
    cancel: CancellationToken,
    hangup: CancellationToken,
    stream_started: Instant,
) {
    // While the call is up the ear and the voice are its: fixed-line proofing waits.
    let _on_call = deps.voice.on_call();
    // The campaign's script for a dialed call, else the configured one.
    let script = metadata
        .campaign_id
        .as_deref()
        .and_then(|c| deps.scripts.get(c))
        .unwrap_or_else(|| deps.conversation.script.clone());
    let route = transfer::Route::from_call(&metadata);
    let context = CallContext {
        desk: route.as_ref().and_then(|r| r.desk()),
        ..call_context(&metadata, deps.clock_offset)
    };
    let runner = ScriptRunner::new(script, deps.llm.clone(), &metadata.call_sid, context);
    let mut agent = Agent {
        call_sid: metadata.call_sid.clone(),
        deps,
        out,
        board,
        cancel,
        stream_started,
        runner,
        undo: None,
        undone: None,
        unsettled: VecDeque::new(),
        latency: None,
        recorded: Default::default(),
        unanswered: None,
        last_speech: None,
        route,
        ahead: Default::default(),
    };
    // An answering machine (AMD waited for the beep): leave the script's voicemail and go.
    if let Some(answered_by) = metadata.lead.get("answered_by") {
        if answered_by.starts_with("machine") {
            agent.leave_voicemail(answered_by).await;
            hangup.cancel();
            return;
        }
    }

    let mut backlog = VecDeque::new();
    let mut flow = agent
        .job(Job::Event(Event::Started), &mut inputs, &mut backlog)
        .await;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_activity = Instant::now();
    while flow == Flow::Go {
        agent.settle();
        // The call is over: what is left in the backlog is taken silently below.
        if agent.cancel.is_cancelled() {
            break;
        }
        let input = match backlog.pop_front() {
            Some(input) => input,
            // The call's end first: a turn that comes with it (the caller's last words) is
            // taken silently after the loop, not answered into a closed stream.
            None => tokio::select! {
                biased;
                _ = agent.cancel.cancelled() => break,
                input = inputs.recv() => match input {
                    Some(input) => input,
                    None => break,
                },
                Some(event) = out_events.recv() => {
                    agent.output_event(event);
                    continue;
                }
                _ = tick.tick() => {
                    if let Some(job) = agent.clock(&mut last_activity) {
                        flow = agent.job(job, &mut inputs, &mut backlog).await;
                    }
                    continue;
                }
            },
        };
        last_activity = Instant::now();
        let job = match input {
            AgentInput::Continued(id) => {
                agent.undo_turn(id);
                continue;
            }
            AgentInput::Turn(turn) => Job::Turn(turn),
            AgentInput::Dtmf(digit) => Job::Key(digit),
            // Stale once anything else waits.
            AgentInput::Heard(words) if backlog.is_empty() => Job::Foresee(words),
            AgentInput::Heard(_) => continue,
        };
        flow = agent.job(job, &mut inputs, &mut backlog).await;
    }
    while let Ok(event) = out_events.try_recv() {
        agent.output_event(event);
    }
    agent.settle();
    // The session ends the stream on our hang-up, then sends the caller's last words.
    if flow == Flow::Over {
        hangup.cancel();
    }
    agent.late_inputs(backlog, &mut inputs).await;
    // The caller hung up (or the stream dropped) before the script reached an end node: the
    // script records how far it got instead of leaving the call without an outcome.
    if agent.runner.outcome().is_none() {
        agent.runner.event(Event::HangUp).await;
        if let Some(outcome) = agent.runner.outcome() {
            agent.deps.registry.set_outcome(&agent.call_sid, outcome);
        }
    }
    agent.runner.end();
}

impl Agent {
    fn at_ms(&self) -> u64 {
        self.stream_started.elapsed().as_millis() as u64
    }

    /// Runs a job until it ends or the caller preempts it (going on after the turn being
    /// answered, or the opt-out key); inputs that arrive meanwhile wait in `backlog`.
    async fn job(
        &mut self,
        job: Job,
        inputs: &mut mpsc::Receiver<AgentInput>,
        backlog: &mut VecDeque<AgentInput>,
    ) -> Flow {
        let opt_out = self.runner.script().opt_out_digit;
        let answering = match &job {
            Job::Turn(t) => Some(t.clone()),
            _ => None,
        };
        let turn = answering.as_ref().map(|t| t.turn.id);
        let call = self.cancel.clone();
        let preempted = {
            let work = self.run(job);
            tokio::pin!(work);
            loop {
                tokio::select! {
                    // The work starts before the call's end is looked at: a turn's first step
                    // records it and its undo, so a call that ended meanwhile takes it again
                    // below instead of losing it (an opt-out said as the caller hung up).
                    biased;
                    flow = &mut work => return flow,
                    Some(input) = inputs.recv() => {
                        let preempts = match &input {
                            AgentInput::Continued(id) => Some(*id) == turn,
                            AgentInput::Dtmf(d) => opt_out.is_some_and(|o| d.starts_with(o)),
                            AgentInput::Turn(_) | AgentInput::Heard(_) => false,
                        };
                        backlog.push_back(input);
                        if preempts {
                            break true;
                        }
                    }
                    _ = call.cancelled() => break false,
                }
            }
        };
        // The call ended while this turn was being answered: unless something irreversible
        // happened, it is taken again, silently, after the call.
        if !preempted {
            if let Some(t) = answering {
                if self.rewind(t.turn.id) {
                    backlog.push_front(AgentInput::Turn(t));
                }
            }
        }
        // The job's future is gone, and with it its LLM and TTS requests; what it queued and
        // the caller has not heard goes too.
        if preempted {
            let cut = self.board.interrupt();
            if !cut.is_empty() {
                let _ = self.out.send(OutputCommand::Clear).await;
            }
        }
        Flow::Go
    }

    async fn run(&mut self, job: Job) -> Flow {
        match job {
            Job::Event(event) => {
                let plan = self.runner.event(event).await;
                self.perform(plan.actions, None).await
            }
            Job::Turn(turn) => self.on_turn(turn).await,
            Job::Key(digit) => {
                self.deps.registry.add_turn(
                    &self.call_sid,
                    Turn::caller(format!("[keypad {digit}]"), self.at_ms()),
                );
                let Some(d) = digit.chars().next() else {
                    return Flow::Go;
                };
                let plan = self.runner.event(Event::Dtmf(d)).await;
                self.perform(plan.actions, None).await
            }
            Job::Reask => {
                let actions = self.runner.reask();
                self.perform(actions, None).await
            }
            Job::Foresee(words) => {
                self.runner.foresee(&words).await;
                Flow::Go
            }
        }
    }

    /// A caller turn: backchannels and noise resume or are ignored; anything else is
    /// classified, stepped and answered.
    async fn on_turn(&mut self, caller: CallerTurn) -> Flow {
        let CallerTurn { turn, decided_at } = caller;
        self.settle();
        // The earlier part was undone: answer both parts together.
        let merged = turn
            .continues
            .and_then(|id| self.undone.take().filter(|u| u.0 == id));
        let text = if merged.is_some() {
            turn.text.clone()
        } else {
            turn.part.clone()
        };
        let line = Turn {
            end_ms: Some(turn.end_sample / 8),
            ..Turn::caller(text.clone(), turn.start_sample / 8)
        };
        // Speech with no words, said to the agent (not over it), is a person the line or the
        // recogniser lost; a turn that ran to the endpointer's maximum with no words is the
        // line's noise, not a person.
        let turn_ms = turn.end_sample.saturating_sub(turn.start_sample) / 8;
        let unintelligible = text.is_empty()
            && !turn.over_agent
            && !turn.stt_failed
            && (UNINTELLIGIBLE_MS..self.deps.turn.max_utterance_ms as u64).contains(&turn_ms);
        let backchannel = (text.is_empty() && !unintelligible)
            || (turn.over_agent && is_backchannel(&text, &self.deps.turn.backchannels));
        if backchannel {
            if !text.is_empty() {
                self.deps.registry.add_turn(&self.call_sid, line);
            }
            // A false interruption: pick up where the caller cut in.
            let cut = self.last_speech.and_then(|id| self.board.get(id));
            if let Some(record) = cut.filter(|r| r.interrupted && turn.barged_in) {
                let rest = record.unheard_clauses().join(" ");
                if !rest.is_empty() {
                    tracing::info!("false interruption: resuming");
                    self.say(&rest, true).await;
                }
            }
            return Flow::Go;
        }
        tracing::debug!(caller = %text, confidence = turn.confidence, "caller said");
        let line = if unintelligible {
            Turn {
                text: "[inaudible]".into(),
                ..line
            }
        } else {
            line
        };
        let transcript_idx = match merged.and_then(|m| m.1) {
            Some(idx) => {
                self.deps.registry.replace_turn(&self.call_sid, idx, line);
                Some(idx)
            }
            None => self.deps.registry.add_turn(&self.call_sid, line),
        };
        self.recorded.insert(turn.id);
        self.undo = Some(Undo {
            turn: turn.id,
            snapshot: self.runner.snapshot(),
            variables: self.deps.registry.variables(&self.call_sid),
            transcript_idx,
            committed: false,
        });
        self.unanswered = Some((turn.id, Instant::now()));
        let unclear_before = self.runner.state().unclear_reprompts;
        let plan = if unintelligible {
            tracing::info!(turn_ms, "caller speech without words: asking again");
            self.runner.unintelligible()
        } else if turn.confidence < self.deps.turn.min_confidence {
            self.runner.caller_unsure(&text).await
        } else {
            self.runner.caller(&text).await
        };
        if let Some(c) = &plan.classified {
            tracing::info!(node = %plan.node, intent = %c.intent, by = c.by, "caller turn classified");
        }
        // A turn the script could not read is often a caller thinking aloud ("Hmm, let me
        // think." heard as "Um, last meeting."): a beat of silence before asking again lets
        // them go on, and the detector then joins both parts into one turn (this job is
        // dropped when it does). Said into the pause, "Sorry, I did not catch that" would
        // talk over the answer.
        let unclear = self.runner.state().unclear_reprompts > unclear_before;
        let hold = Duration::from_millis(self.deps.turn.unclear_hold_ms as u64);
        if unclear && !hold.is_zero() {
            tracing::info!(
                hold_ms = hold.as_millis() as u64,
                "turn not understood: holding before asking again"
            );
            tokio::time::sleep(hold).await;
        }
        let path = if unclear {
            TurnPath::Unclear
        } else {
            plan.path(self.runner.script())
        };
        let latency = TurnLatency {
            path: Some(path),
            ..turn.latency()
        };
        self.perform(plan.actions, Some((latency, decided_at)))
            .await
    }

    /// Carries out a plan; `Over` when the call ends.
    async fn perform(
        &mut self,
        actions: Vec<Action>,
        mut latency: Option<(TurnLatency, Instant)>,
    ) -> Flow {
        self.deps
            .registry
            .enter_node(&self.call_sid, &self.runner.state().node);
        self.board.expect(self.runner.ear_hint());
        self.board.offer(self.runner.ear_choices());
        // After a barge-in cut an interruptible line, the rest of the plan's interruptible
        // lines are stale: the caller's new words get the next answer.
        let mut cut = false;
        let mut actions = VecDeque::from(actions);
        while let Some(action) = actions.pop_front() {
            let said = match action {
                Action::Say {
                    text,
                    interruptible,
                } => {
                    if cut && interruptible {
                        continue;
                    }
                    self.say(&text, interruptible).await
                }
                Action::Generate {
                    instruction,
                    goal,
                    sentences,
                } => {
                    if cut {
                        continue;
                    }
                    if let Some(line) = self.take_prepared(&instruction, &goal).await {
                        self.say_prepared(line).await
                    } else {
                        let messages = self.runner.generation(&instruction, &goal);
                        let fit = (instruction.as_str(), goal.as_str());
                        self.generate(messages, sentences, fit, latency.as_mut().map(|l| &mut l.0))
                            .await
                    }
                }
                Action::Capture { name, value } => {
                    self.deps
                        .registry
                        .set_variable(&self.call_sid, &name, &value);
                    continue;
                }
                Action::MarkDoNotCall => {
                    self.commit();
                    // Stop talking at once: the confirmation comes next.
                    self.board.interrupt_all();
                    let _ = self.out.send(OutputCommand::Clear).await;
                    // The confirmation must be true when heard: wait for the entry's commit.
                    let committed = self.deps.registry.opt_out(&self.call_sid);
                    match tokio::time::timeout(OPT_OUT_COMMIT_LIMIT, committed).await {
                        Ok(Ok(())) => {}
                        // The store's writer keeps retrying; the call goes on meanwhile.
                        Ok(Err(e)) => {
                            tracing::error!(error = %e, "do-not-call entry not committed before the confirmation")
                        }
                        Err(_) => tracing::error!(
                            limit_s = OPT_OUT_COMMIT_LIMIT.as_secs(),
                            "do-not-call entry not committed within the limit; still being written"
                        ),
                    }
                    continue;
                }
                Action::HangUp { outcome } => {
                    self.commit();
                    tracing::info!(%outcome, "script ended the call");
                    self.deps.registry.set_outcome(&self.call_sid, outcome);
                    if let Some(id) = self.last_speech {
                        self.wait_until_played(id, Duration::from_secs(30)).await;
                    }
                    return Flow::Over;
                }
                Action::Transfer { summary, no_answer } => {
                    match self.transfer(&summary, &no_answer).await {
                        Ok(flow) => return flow,
                        // The caller stays: the failure line and the fallback node's.
                        Err(fallback) => actions.extend(fallback),
                    }
                    continue;
                }
            };
            match said {
                Said::Queued(id) => {
                    self.unanswered = None;
                    if let Some((latency, decided_at)) = latency.take() {
                        self.latency = Some(PendingLatency {
                            speech_id: id,
                            latency,
                            decided_at,
                        });
                    }
                }
                Said::Cut => cut = true,
                Said::Nothing => {}
            }
        }
        self.prepare_upcoming();
        Flow::Go
    }

    /// Utterances fully played or cut: what the caller heard goes to the script's context and,
    /// when cut, to the transcript.
    fn settle(&mut self) {
        while let Some(&id) = self.unsettled.front() {
            let Some(record) = self.board.get(id) else {
                self.unsettled.pop_front();
                continue;
            };
            if record.fully_played {
                self.runner.said(&record.clauses.join(" "));
            } else if record.interrupted {
                let heard = record.heard_text();
                self.deps
                    .registry
                    .update_agent_turn(&self.call_sid, id, &heard, true);
                if !heard.is_empty() {
                    self.runner.said(&heard);
                }
            } else {
                break;
            }
            self.unsettled.pop_front();
        }
    }

    /// The script's clocks (silence, call length) and the dead-air guard.
    fn clock(&mut self, last_activity: &mut Instant) -> Option<Job> {
        let now = Instant::now();
        if self.board.live().is_some() {
            *last_activity = now;
        }
        let script = self.runner.script();
        let elapsed = self.stream_started.elapsed().as_secs() as u32;
        if elapsed >= script.max_call_seconds {
            return Some(Job::Event(Event::Elapsed(elapsed)));
        }
        // The appliance stops: the call ends as at its maximum length, with a goodbye.
        if self.deps.shutdown.is_cancelled() && self.board.live().is_none() {
            tracing::info!("appliance stopping: ending the call");
            return Some(Job::Event(Event::Elapsed(u32::MAX)));
        }
        if let Some((turn, since)) = self.unanswered {
            let waited = since.elapsed();
            if waited >= Duration::from_millis(self.deps.turn.dead_air_ms as u64) {
                tracing::error!(
                    turn,
                    waited_ms = waited.as_millis() as u64,
                    node = %self.runner.state().node,
                    "dead air: no answer to a caller turn; asking again"
                );
                self.unanswered = None;
                *last_activity = now;
                return Some(Job::Reask);
            }
        }
        let quiet = self.runner.silence_seconds() as u64;
        if now.duration_since(*last_activity).as_secs() >= quiet {
            *last_activity = now;
            return Some(Job::Event(Event::Silence));
        }
        None
    }
}
