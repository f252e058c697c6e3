//! Runs a script for one conversation: classification (rules, then the grammar-constrained
//! model), the pure state machine, and the prompt of each generated line. This is the whole
//! surface the call's agent uses; `chat` and the scenario tests use it too, with
//! [`ScriptRunner::realize`] standing in for the agent's streaming.
//!
//! The clock enters here and only here: `now = Utc::now() + clock_offset` in the lead's zone,
//! handed to the classifier so "tomorrow at ten" means the lead's tomorrow inside the calling
//! window. A caller turn is cancel-safe: it awaits the classification first and changes state
//! only after, so a turn the caller continues can be dropped (its LLM request is cancelled) or
//! undone with [`ScriptRunner::snapshot`] / [`ScriptRunner::restore`].

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use super::classify::{self, Classified};
use super::context::{approx_tokens, Context, Role};
use super::format::Script;
use super::machine::{self, step, Action, CallState, Desk, DeskHours, Event};
use crate::engine::{GenerateRequest, LanguageModel, LlmEvent};
use crate::leads::window::CallingWindow;
use crate::model::TurnPath;
use crate::model::{ChatMessage, Outcome};
use crate::script::clauses::{ends_sentence, ClauseSplitter};

/// What a call knows before its first line.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// Script variables from the first line: every lead column and `name` (empty values dropped).
    pub vars: BTreeMap<String, String>,
    /// The lead's zone and calling window: typed `time` answers resolve in them.
    pub timezone: Tz,
    pub window: CallingWindow,
    /// Added to the wall clock (rehearsals pretend it is mid-morning); zero in production.
    pub clock_offset: chrono::Duration,
    /// The lead's memory of earlier calls (one summary line): given to generated lines.
    pub memory: Option<String>,
    /// The caller asked for this call: the script's callback greeting follows the disclosure.
    pub callback: bool,
    /// The person rang us: the script's inbound greeting and entry node.
    pub inbound: bool,
    /// The campaign's transfer business hours; `None`: transfers are not offered.
    pub desk: Option<DeskHours>,
}

impl Default for CallContext {
    fn default() -> Self {
        Self {
            vars: BTreeMap::new(),
            timezone: chrono_tz::America::New_York,
            window: CallingWindow::legal(),
            clock_offset: chrono::Duration::zero(),
            memory: None,
            callback: false,
            inbound: false,
            desk: None,
        }
    }
}

impl CallContext {
    /// From a call's lead fields: all of them become variables; a `timezone` field (IANA name)
    /// sets the zone.
    pub fn from_lead(lead: &BTreeMap<String, String>) -> Self {
        let mut ctx = Self {
            vars: lead.clone(),
            ..Self::default()
        };
        if let Some(tz) = lead.get("timezone").and_then(|z| z.parse::<Tz>().ok()) {
            ctx.timezone = tz;
        }
        ctx
    }

    /// Pretends the wall clock reads `now` (tests, rehearsals).
    pub fn at(mut self, now: DateTime<Utc>) -> Self {
        self.clock_offset = now - Utc::now();
        self
    }
}

/// What the call must do after one event.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The node the event happened at (before any transition).
    pub node: String,
    /// The caller turn's verdict (none for other events).
    pub classified: Option<Classified>,
    pub actions: Vec<Action>,
}

impl Plan {
    /// How the answer was reached: a model-written first line outweighs how the turn was read
    /// (it costs the most), then an FAQ answer, then who classified the turn.
    pub fn path(&self, script: &Script) -> TurnPath {
        let first_line = self
            .actions
            .iter()
            .find(|a| matches!(a, Action::Say { .. } | Action::Generate { .. }));
        if matches!(first_line, Some(Action::Generate { .. })) {
            return TurnPath::Generated;
        }
        match &self.classified {
            Some(c) if script.faq(&c.intent).is_some() => TurnPath::Faq,
            Some(c) if c.by == "llm" => TurnPath::Llm,
            _ => TurnPath::Rule,
        }
    }
}

/// Everything a turn may change, to undo it.
#[derive(Debug, Clone)]
pub struct RunnerSnapshot {
    state: CallState,
    context: Context,
}

/// A script in progress for one conversation.
pub struct ScriptRunner {
    script: Arc<Script>,
    state: CallState,
    llm: Arc<dyn LanguageModel>,
    conversation_id: String,
    ctx: CallContext,
    /// What was said so far, within a token budget, for generated lines.
    context: Context,
    /// The classifier's answer to words heard while the caller was still pausing:
    /// (node, words, the model's output), used if the turn ends with exactly those words.
    foreseen: Option<(String, String, String)>,
}

/// How much of a node's examples (and of the FAQs') prime recognition: with the question
/// (~200 characters) they stay well inside Whisper's 224-token prompt.
const EAR_HINT_CHARS: usize = 160;
const QUESTION_HINT_CHARS: usize = 100;

/// Tokens of history (plus system message and task) a generated line may see: small models
/// lose the thread in long prompts, and a short prompt keeps the first token fast.
pub const DEFAULT_CONTEXT_BUDGET: usize = 384;

/// Tokens a generated sentence may take (the sentence limit cuts earlier).
const TOKENS_PER_SENTENCE: u32 = 40;

impl ScriptRunner {
    pub fn new(
        script: Arc<Script>,
        llm: Arc<dyn LanguageModel>,
        conversation_id: &str,
        ctx: CallContext,
    ) -> Self {
        let vars = ctx
            .vars
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| (k.clone(), v.trim().to_string()))
            .collect();
        Self {
            state: CallState {
                vars,
                tz: ctx.timezone,
                callback: ctx.callback,
                inbound: ctx.inbound,
                ..CallState::default()
            },
            script,
            llm,
            conversation_id: conversation_id.to_string(),
            ctx,
            context: Context::new(DEFAULT_CONTEXT_BUDGET),
            foreseen: None,
        }
    }

    /// Sets the history budget (tokens) of generated lines.
    pub fn with_context_budget(mut self, tokens: usize) -> Self {
        self.context = Context::new(tokens);
        self
    }

    /// The wall clock (plus the context's offset) in the lead's zone.
    pub fn now(&self) -> DateTime<Tz> {
        (Utc::now() + self.ctx.clock_offset).with_timezone(&self.ctx.timezone)
    }

    /// Whether a transfer node can hand the call to a person now.
    fn desk(&self) -> Desk {
        match &self.ctx.desk {
            Some(hours) => hours.at(Utc::now() + self.ctx.clock_offset),
            None => Desk::Unstaffed,
        }
    }

    /// A caller turn: classified (rules, then the LLM), then stepped. `Generate` actions stay
    /// in the plan (the agent streams them). Cancel-safe: dropping the future before it
    /// completes leaves the runner unchanged and cancels the LLM request.
    pub async fn caller(&mut self, text: &str) -> Plan {
        self.turn(text, true).await
    }

    /// A turn the ear was unsure of (low recogniser confidence): the rules still read it, so
    /// an opt-out or a decline is never lost, but the LLM does not guess a label from words
    /// that were probably misheard ("Not interested." heard as "That's interested.", which
    /// the tiny model calls a yes). What the rules cannot read is `unclear`: the agent asks
    /// again, as a person on a bad line would. So is a question the rules know only by its
    /// shape ("How is how a good time?" for "Now is not a good time."): "a good question for
    /// an advisor" would answer words nobody said.
    pub async fn caller_unsure(&mut self, text: &str) -> Plan {
        self.turn(text, false).await
    }

    async fn turn(&mut self, text: &str, sure: bool) -> Plan {
        let node = self.state.node.clone();
        let classified = if sure {
            self.classify(&node, text).await
        } else {
            self.by_rules(&node, text)
                .filter(|c| c.intent != crate::script::format::intents::UNKNOWN_QUESTION)
                .unwrap_or_else(Classified::unsure)
        };
        // Nothing above changed the runner; from here on nothing awaits.
        self.context.push(Role::Caller, text);
        self.state.desk = self.desk();
        let event = Event::Utterance {
            intent: classified.intent.clone(),
            text: text.to_string(),
            captured: classified.captured.clone(),
            rejected: classified.rejected.clone(),
        };
        let (next, actions) = step(&self.script, &self.state, &event);
        self.state = next;
        Plan {
            node,
            classified: Some(classified),
            actions,
        }
    }

    /// The caller spoke but no words came through (a mumble, a bad line): the script's
    /// "did not catch that" and the question again, without asking the classifier.
    pub fn unintelligible(&mut self) -> Plan {
        self.stepped(&Event::Utterance {
            intent: crate::script::format::intents::UNCLEAR.to_string(),
            text: String::new(),
            captured: BTreeMap::new(),
            rejected: BTreeMap::new(),
        })
    }

    /// Started, Silence, Dtmf, Elapsed, HangUp (an `Utterance` is stepped as given).
    pub async fn event(&mut self, event: Event) -> Plan {
        self.stepped(&event)
    }

    fn stepped(&mut self, event: &Event) -> Plan {
        let node = self.state.node.clone();
        self.state.desk = self.desk();
        let (next, actions) = step(&self.script, &self.state, event);
        self.state = next;
        Plan {
            node,
            classified: None,
            actions,
        }
    }

    /// The prompt for a `Generate` action: persona first, the call's history within the token
    /// budget ([`Context`]), then goal, the variables (spoken forms) and the instruction. At an
    /// open node the goal, variables and instruction join the persona in the system message
    /// (stable for the call) and the prompt ends with the caller's words, which a small model
    /// answers best.
    pub fn generation(&mut self, instruction: &str, goal: &str) -> Vec<ChatMessage> {
        let s = &self.script;
        // Stable first (persona), changing last (goal, variables): KV reuse.
        let mut system = s.persona_prompt.clone().unwrap_or_else(|| {
            format!(
                "You are {}, a polite phone assistant for {}. You are on a phone call: speak one short sentence, no lists.",
                s.persona, s.company
            )
        });
        if let Some(memory) = &self.ctx.memory {
            system.push(' ');
            system.push_str(&memory_line(memory, self.context.budget() / 4));
        }
        let vars: BTreeMap<String, String> = self
            .state
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), s.speak(k, v, self.state.tz)))
            .collect();
        if s.nodes.get(&self.state.node).is_some_and(|n| n.open) {
            let known: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let known = (!known.is_empty())
                .then(|| format!("Known about the caller: {}.", known.join(", ")));
            let goal = (!goal.is_empty()).then(|| format!("{}.", goal.trim_end_matches('.')));
            let parts = [Some(system), goal, Some(instruction.to_string()), known];
            let system = parts.into_iter().flatten().collect::<Vec<_>>().join(" ");
            return self.context.chat(&system, &approx_tokens);
        }
        self.context
            .messages(&system, &vars, goal, instruction, &approx_tokens)
    }

    /// Agent words the caller actually heard (after barge-ins only what was heard).
    pub fn said(&mut self, text: &str) {
        self.context.push(Role::Agent, text);
    }

    pub fn snapshot(&self) -> RunnerSnapshot {
        RunnerSnapshot {
            state: self.state.clone(),
            context: self.context.clone(),
        }
    }

    pub fn restore(&mut self, snapshot: RunnerSnapshot) {
        self.state = snapshot.state;
        self.context = snapshot.context;
    }

    /// How answers to the current question sound, to prime recognition ([`super::format::Node::answer_examples`]).
    /// The node's answers first, then how times sound where the script captures one
    /// ([`Script::time_examples`]), then the questions callers ask anywhere.
    pub fn ear_hint(&self) -> Option<String> {
        let node = self.script.nodes.get(&self.state.node)?;
        let answers = node.answer_examples(EAR_HINT_CHARS)?;
        let hint = [
            Some(answers),
            self.script.time_examples().map(str::to_string),
            self.script.question_examples(QUESTION_HINT_CHARS),
        ];
        Some(hint.into_iter().flatten().collect::<Vec<_>>().join(" "))
    }

    /// What a turn the ear doubts is listened to again against: the node's answers that carry
    /// no value ([`super::format::Node::answer_choices`]), a decline and an opt-out (heard at
    /// any node), the questions callers ask anywhere.
    pub fn ear_choices(&self) -> Vec<String> {
        let Some(node) = self.script.nodes.get(&self.state.node) else {
            return Vec::new();
        };
        let mut choices = node.answer_choices();
        for global in ["Not interested.", "Stop calling me."] {
            if !choices.iter().any(|c| c == global) {
                choices.push(global.to_string());
            }
        }
        let questions = self.script.faqs.iter().filter_map(|f| f.examples.first());
        choices.extend(questions.filter_map(|q| super::format::as_sentence(q, '?')));
        choices
    }

    /// The generated lines the caller's next answer may lead to ([`machine::upcoming_lines`]).
    pub fn upcoming_lines(&self) -> Vec<Action> {
        machine::upcoming_lines(&self.script, &self.state)
    }

    /// Quiet this long makes a silence re-prompt ([`machine::silence_seconds`]).
    pub fn silence_seconds(&self) -> u32 {
        machine::silence_seconds(&self.script, &self.state)
    }

    /// The current node's question again (a dead-air guard), as `Say` actions; no state change.
    pub fn reask(&self) -> Vec<Action> {
        machine::reask(&self.script, &self.state)
    }

    pub fn outcome(&self) -> Option<Outcome> {
        self.state.outcome
    }

    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.state.vars
    }

    pub fn script(&self) -> &Script {
        &self.script
    }

    /// Where the call is in its script.
    pub fn state(&self) -> &CallState {
        &self.state
    }

    /// Continues at another node without saying its line (tests and rehearsals of one node).
    pub fn goto(&mut self, node: &str) {
        self.state.node = node.to_string();
        self.state.started = true;
    }

    /// Frees the classification KV slot (the call's own conversation is ended by its owner).
    pub fn end(&self) {
        self.llm.end_conversation(&self.classify_id());
    }

    /// For `chat` and the scenario tests: turns `Generate` into `Say` (non-streaming, cut to
    /// its sentences) and records every line as said.
    pub async fn realize(&mut self, plan: Plan) -> Plan {
        let mut actions = Vec::new();
        for action in plan.actions {
            match action {
                Action::Generate {
                    instruction,
                    goal,
                    sentences,
                } => {
                    let messages = self.generation(&instruction, &goal);
                    let max = TOKENS_PER_SENTENCE * sentences as u32;
                    let text = self
                        .complete(self.conversation_id.clone(), messages, None, max)
                        .await;
                    let line = first_sentences(&strip_preamble(&text), sentences);
                    if !line.is_empty() {
                        actions.push(Action::Say {
                            text: line,
                            interruptible: true,
                        });
                    }
                }
                other => actions.push(other),
            }
        }
        for action in &actions {
            if let Action::Say { text, .. } = action {
                self.said(text);
            }
        }
        Plan { actions, ..plan }
    }

    async fn classify(&mut self, node: &str, text: &str) -> Classified {
        if let Some(c) = self.by_rules(node, text) {
            return c;
        }
        let output = match self.foreseen.take() {
            Some((n, t, output)) if n == node && t == text => output,
            _ => self.ask_classifier(node, text).await,
        };
        let (now, window) = (self.now(), &self.ctx.window);
        classify::from_llm(&self.script, node, text, &output, now, window)
    }

    /// Speculation: the caller paused and these may be their whole turn. Words the rules
    /// classify need nothing; otherwise the model classifies them now, during the silence
    /// that may end the turn, and [`ScriptRunner::caller`] uses its answer if the turn ends
    /// with the same words at the same node. Changes nothing else; dropping this future
    /// cancels the request.
    pub async fn foresee(&mut self, text: &str) {
        let node = self.state.node.clone();
        let known = self
            .foreseen
            .as_ref()
            .is_some_and(|(n, t, _)| *n == node && t == text);
        if known || self.by_rules(&node, text).is_some() {
            return;
        }
        let output = self.ask_classifier(&node, text).await;
        self.foreseen = Some((node, text.to_string(), output));
    }

    /// Puts the current node's classification prompt, all but the caller's words, into the
    /// model's KV cache, so that a turn the rules cannot read evaluates only its words. Meant
    /// for while the node's question plays (the model is idle then); `None` at a node with
    /// nothing to classify. Dropping the future cancels the request.
    pub fn warm_classifier(
        &self,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let node = self.script.nodes.get(&self.state.node)?;
        if node.intents.is_empty() || node.end.is_some() || self.state.outcome.is_some() {
            return None;
        }
        let cancel = CancellationToken::new();
        let mut rx = self.llm.generate(GenerateRequest {
            conversation_id: self.classify_id(),
            messages: classify::prompt(&self.script, &node.id, ""),
            max_tokens: 0,
            grammar: None,
            cancel: cancel.clone(),
        });
        Some(async move {
            let _guard = cancel.drop_guard();
            while let Some(ev) = rx.recv().await {
                if matches!(ev, LlmEvent::Done { .. } | LlmEvent::Error(_)) {
                    break;
                }
            }
        })
    }

    fn by_rules(&self, node: &str, text: &str) -> Option<Classified> {
        classify::by_rules(&self.script, node, text, self.now(), &self.ctx.window)
    }

    async fn ask_classifier(&self, node: &str, text: &str) -> String {
        self.complete(
            self.classify_id(),
            classify::prompt(&self.script, node, text),
            Some(classify::grammar(&self.script, node)),
            48,
        )
        .await
    }

    /// Classification runs as its own KV-cache conversation: its prompt (the node's labels) and
    /// the phrasing prompt (persona + history) would otherwise evict each other's prefix every
    /// turn.
    fn classify_id(&self) -> String {
        format!("{}/classify", self.conversation_id)
    }

    async fn complete(
        &self,
        conversation_id: String,
        messages: Vec<ChatMessage>,
        grammar: Option<String>,
        max_tokens: u32,
    ) -> String {
        let cancel = CancellationToken::new();
        // Dropping this future (a cancelled turn) cancels the request.
        let guard = cancel.clone().drop_guard();
        let mut rx = self.llm.generate(GenerateRequest {
            conversation_id,
            messages,
            max_tokens,
            grammar,
            cancel,
        });
        let mut text = String::new();
        let started = std::time::Instant::now();
        while let Some(ev) = rx.recv().await {
            match ev {
                LlmEvent::Token(t) => text.push_str(&t),
                LlmEvent::Done {
                    prompt_evaluated,
                    prompt_cached,
                    generated,
                    ..
                } => {
                    tracing::debug!(
                        prompt_evaluated,
                        prompt_cached,
                        generated,
                        ms = started.elapsed().as_millis() as u64,
                        "llm completion"
                    );
                    break;
                }
                LlmEvent::Error(e) => {
                    tracing::warn!(error = %e, "llm failed during a script turn");
                    break;
                }
            }
        }
        guard.disarm();
        text
    }
}

/// The lead's memory for the system message, cut to at most `tokens` (a quarter of the
/// history budget: the memory is stable for the call, so it sits in the cached prefix, but it
/// must not crowd out this call's own words).
pub fn memory_line(memory: &str, tokens: usize) -> String {
    let line = format!("From earlier calls with this person: {}", memory.trim());
    if approx_tokens(&line) <= tokens {
        return line;
    }
    let mut cut = String::new();
    for word in line.split_whitespace() {
        if approx_tokens(&format!("{cut} {word}...")) > tokens {
            break;
        }
        if !cut.is_empty() {
            cut.push(' ');
        }
        cut.push_str(word);
    }
    format!("{cut}...")
}

/// The first `n` sentences of a text, by the clause splitter.
fn first_sentences(text: &str, n: usize) -> String {
    let mut splitter = ClauseSplitter::new();
    let mut out = String::new();
    let mut sentences = 0;
    for clause in splitter.push(text).into_iter().chain(splitter.finish()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&clause);
        if ends_sentence(&clause) {
            sentences += 1;
            if sentences >= n {
                break;
            }
        }
    }
    out
}

/// Small models like to announce their answer ("Here's a possible sentence: \"...\""):
/// keep what comes after such a preamble and drop the quotes.
pub fn strip_preamble(text: &str) -> String {
    let t = text.trim();
    let t = match t.find(':') {
        Some(i)
            if i < 60
                && t[..i].split_whitespace().count() <= 8
                && t[i + 1..].trim_start().starts_with(['"', '“']) =>
        {
            &t[i + 1..]
        }
        _ => t,
    };
    t.trim().trim_matches(['"', '“', '”']).trim().to_string()
}

/// What a plan shows in `chat`: node, intent, captured variables, agent lines.
pub fn describe(plan: &Plan) -> String {
    let mut s = String::new();
    if let Some(c) = &plan.classified {
        s.push_str(&format!(
            "  [{}] intent={} ({}) captured={:?}{}\n",
            plan.node,
            c.intent,
            c.by,
            c.captured,
            if c.rejected.is_empty() {
                String::new()
            } else {
                format!(" rejected={:?}", c.rejected)
            }
        ));
    }
    for a in &plan.actions {
        match a {
            Action::Say {
                text,
                interruptible,
            } => s.push_str(&format!(
                "  agent{}: {text}\n",
                if *interruptible {
                    ""
                } else {
                    " (not interruptible)"
                }
            )),
            Action::Capture { name, value } => s.push_str(&format!("  capture {name} = {value}\n")),
            Action::MarkDoNotCall => s.push_str("  >> do-not-call recorded\n"),
            Action::HangUp { outcome } => s.push_str(&format!("  >> hang up: {outcome}\n")),
            Action::Generate { instruction, .. } => {
                s.push_str(&format!("  (generate: {instruction})\n"))
            }
            Action::Transfer { summary, .. } => {
                s.push_str(&format!("  >> transfer to an advisor: {summary}\n"))
            }
        }
    }
    s
}

#[cfg(test)]
mod tests;
