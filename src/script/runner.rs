//! Runs a script against caller text with a real LLM: classification (rules, then the
//! grammar-constrained model), the state machine, and generated lines where a node asks for one.
//! Used by `telemarketer chat` and the scenario tests; the phone call drives the same pieces.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::classify::{self, Classified};
use super::context::{approx_tokens, Context, Role};
use super::format::Script;
use super::machine::{step, Action, CallState, Event};
use crate::engine::{GenerateRequest, LanguageModel, LlmEvent};
use crate::model::ChatMessage;
use crate::script::clauses::{ends_sentence, ClauseSplitter};

/// A script in progress for one conversation.
pub struct ScriptRunner {
    pub script: Arc<Script>,
    pub state: CallState,
    llm: Arc<dyn LanguageModel>,
    conversation_id: String,
    /// What was said so far, within a token budget, for generated lines.
    context: Context,
}

/// Tokens of history (plus system message and task) a generated line may see: small models
/// lose the thread in long prompts, and a short prompt keeps the first token fast.
pub const DEFAULT_CONTEXT_BUDGET: usize = 384;

/// One turn as `chat` shows it.
#[derive(Debug, Clone)]
pub struct TurnReport {
    pub node: String,
    pub classified: Option<Classified>,
    /// Actions with `Generate` already turned into text (as `Say`).
    pub actions: Vec<Action>,
}

impl ScriptRunner {
    pub fn new(script: Arc<Script>, llm: Arc<dyn LanguageModel>, conversation_id: &str) -> Self {
        Self {
            script,
            state: CallState::default(),
            llm,
            conversation_id: conversation_id.to_string(),
            context: Context::new(DEFAULT_CONTEXT_BUDGET),
        }
    }

    /// Sets the history budget (tokens) of generated lines.
    pub fn with_context_budget(mut self, tokens: usize) -> Self {
        self.context = Context::new(tokens);
        self
    }

    pub fn outcome(&self) -> Option<&str> {
        self.state.outcome.as_deref()
    }

    /// Applies an event and realises its actions.
    pub async fn event(&mut self, event: Event) -> TurnReport {
        let node = self.state.node.clone();
        let (next, actions) = step(&self.script, &self.state, &event);
        self.state = next;
        TurnReport {
            node,
            classified: None,
            actions: self.realize(actions).await,
        }
    }

    /// A caller line: classified, then stepped.
    pub async fn caller(&mut self, text: &str) -> TurnReport {
        let node = self.state.node.clone();
        let classified = self.classify(&node, text).await;
        self.context.push(Role::Caller, text);
        let event = Event::Utterance {
            intent: classified.intent.clone(),
            text: text.to_string(),
            captured: classified.captured.clone(),
        };
        let mut report = self.event(event).await;
        report.node = node;
        report.classified = Some(classified);
        report
    }

    async fn classify(&self, node: &str, text: &str) -> Classified {
        if let Some(intent) = classify::by_rules(&self.script, node, text) {
            let captured = classify::extract_by_rules(&self.script, node, &intent, text);
            return Classified {
                intent,
                captured,
                by: "rule",
            };
        }
        let output = self
            .complete(
                self.classify_id(),
                classify::prompt(&self.script, node, text),
                Some(classify::grammar(&self.script, node)),
                48,
            )
            .await;
        let mut c = classify::parse(&self.script, node, &output);
        // What the rules can read wins (the caller's own words for strings, the chosen yes/no for
        // booleans, a number that was said); the model only fills what they cannot.
        for (k, v) in classify::extract_by_rules(&self.script, node, &c.intent, text) {
            c.captured.insert(k, v);
        }
        c
    }

    /// Turns `Generate` actions into one spoken sentence each: persona first, the call's history
    /// within the token budget ([`Context`]), then goal and captured variables; a token and
    /// sentence limit.
    async fn realize(&mut self, actions: Vec<Action>) -> Vec<Action> {
        let mut out = Vec::new();
        for action in actions {
            match action {
                Action::Generate { instruction, goal } => {
                    let s = &self.script;
                    // Stable first (persona), changing last (goal, variables): KV reuse.
                    let system = format!(
                        "You are {}, a polite phone assistant for {}. You are on a phone call: speak one short sentence, no lists.",
                        s.persona, s.company
                    );
                    let messages = self.context.messages(
                        &system,
                        &self.state.vars,
                        &goal,
                        &instruction,
                        &approx_tokens,
                    );
                    let text = self
                        .complete(self.conversation_id.clone(), messages, None, 40)
                        .await;
                    let text = strip_preamble(&text);
                    let mut splitter = ClauseSplitter::new();
                    let mut sentence = String::new();
                    for clause in splitter.push(&text).into_iter().chain(splitter.finish()) {
                        if !sentence.is_empty() {
                            sentence.push(' ');
                        }
                        sentence.push_str(&clause);
                        if ends_sentence(&clause) {
                            break;
                        }
                    }
                    if !sentence.is_empty() {
                        out.push(Action::Say {
                            text: sentence,
                            interruptible: true,
                        });
                    }
                }
                other => out.push(other),
            }
        }
        for action in &out {
            if let Action::Say { text, .. } = action {
                self.context.push(Role::Agent, text);
            }
        }
        out
    }

    /// Classification runs as its own KV-cache conversation: its prompt (the node's labels) and
    /// the phrasing prompt (persona + history) would otherwise evict each other's prefix every
    /// turn.
    fn classify_id(&self) -> String {
        format!("{}/classify", self.conversation_id)
    }

    /// Frees the classification cache slot (the call's own conversation is ended by its owner).
    pub fn end(&self) {
        self.llm.end_conversation(&self.classify_id());
    }

    async fn complete(
        &self,
        conversation_id: String,
        messages: Vec<ChatMessage>,
        grammar: Option<String>,
        max_tokens: u32,
    ) -> String {
        let mut rx = self.llm.generate(GenerateRequest {
            conversation_id,
            messages,
            max_tokens,
            grammar,
            cancel: CancellationToken::new(),
        });
        let mut text = String::new();
        while let Some(ev) = rx.recv().await {
            match ev {
                LlmEvent::Token(t) => text.push_str(&t),
                LlmEvent::Done { .. } => break,
                LlmEvent::Error(e) => {
                    tracing::warn!(error = %e, "llm failed during a script turn");
                    break;
                }
            }
        }
        text
    }
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

/// What a report shows in `chat`: node, intent, captured variables, agent lines.
pub fn describe(report: &TurnReport) -> String {
    let mut s = String::new();
    if let Some(c) = &report.classified {
        let vars: BTreeMap<&String, &String> = c.captured.iter().collect();
        s.push_str(&format!(
            "  [{}] intent={} ({}) captured={:?}\n",
            report.node, c.intent, c.by, vars
        ));
    }
    for a in &report.actions {
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
            Action::Generate { .. } => {}
        }
    }
    s
}

#[cfg(test)]
mod tests;
