//! The conversation context the LLM sees when it phrases a line: a token budget over the call's
//! history. The persona/rules system message and the captured variables are always kept; the
//! newest turns are kept verbatim as far as the budget allows; older turns are folded into a
//! one-line summary of what the caller said (or dropped when even that does not fit).
//!
//! The stable part comes first (system message, then history oldest to newest) and the part
//! that changes every turn last (goal, known variables, instruction), so llama.cpp's KV cache
//! reuses the whole prefix from one turn to the next. Turns leave the window in blocks of
//! several, not one per turn, so the prefix changes (and is re-evaluated) rarely.
//!
//! Pure: the token counter is a parameter (the real tokenizer, or [`approx_tokens`]).

use std::collections::BTreeMap;

use crate::model::ChatMessage;

/// A rough token count (about 4 characters per token for English, rounded up, plus a small
/// per-message overhead for the chat template): used where the real tokenizer is not at hand.
pub fn approx_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4) + 4
}

/// Who said a history line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Agent,
    Caller,
}

/// The call's history and budget.
#[derive(Debug, Clone)]
pub struct Context {
    /// Every line of the call, oldest first (the full transcript lives in the store).
    lines: Vec<(Role, String)>,
    /// Lines before this index are outside the verbatim window.
    window_start: usize,
    budget_tokens: usize,
    /// How many lines leave the window at once when it overflows.
    evict_block: usize,
}

impl Context {
    pub fn new(budget_tokens: usize) -> Self {
        Self {
            lines: Vec::new(),
            window_start: 0,
            budget_tokens,
            evict_block: 4,
        }
    }

    pub fn push(&mut self, role: Role, text: &str) {
        let text = text.trim();
        if !text.is_empty() {
            self.lines.push((role, text.to_string()));
        }
    }

    /// Tokens the whole prompt may take.
    pub fn budget(&self) -> usize {
        self.budget_tokens
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Builds the messages for one generated line within the budget. `system` (persona, rules)
    /// and `vars` are always included; `task` is the node's goal and instruction.
    pub fn messages(
        &mut self,
        system: &str,
        vars: &BTreeMap<String, String>,
        goal: &str,
        instruction: &str,
        count: &dyn Fn(&str) -> usize,
    ) -> Vec<ChatMessage> {
        let known = if vars.is_empty() {
            "nothing yet".to_string()
        } else {
            vars.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let tail = format!(
            "Goal now: {}. Known about the caller: {known}. {instruction}",
            goal.trim_end_matches('.')
        );
        self.window(system, Some(tail), count)
    }

    /// The messages of an open conversation's reply: the system message (persona and
    /// instruction, stable for the whole call), then the history within the budget, ending with
    /// the caller's newest words, which the model answers.
    pub fn chat(&mut self, system: &str, count: &dyn Fn(&str) -> usize) -> Vec<ChatMessage> {
        self.window(system, None, count)
    }

    fn window(
        &mut self,
        system: &str,
        tail: Option<String>,
        count: &dyn Fn(&str) -> usize,
    ) -> Vec<ChatMessage> {
        let fixed = count(system) + tail.as_deref().map(count).unwrap_or(0);
        // Slide the window forward, a block at a time, until summary + window fit.
        loop {
            let summary = self.summary(count);
            let used = fixed
                + summary.as_deref().map(count).unwrap_or(0)
                + self.lines[self.window_start..]
                    .iter()
                    .map(|(_, t)| count(t))
                    .sum::<usize>();
            if used <= self.budget_tokens || self.window_start >= self.lines.len() {
                break;
            }
            // Evict a block, but keep the newest line while it alone might still fit.
            let newest = self.lines.len() - 1;
            self.window_start = if self.window_start < newest {
                (self.window_start + self.evict_block).min(newest)
            } else {
                self.lines.len()
            };
        }
        let mut out = vec![ChatMessage::new("system", system.to_string())];
        if let Some(summary) = self.summary(count) {
            out.push(ChatMessage::new("system", summary));
        }
        for (role, text) in &self.lines[self.window_start..] {
            let role = match role {
                Role::Agent => "assistant",
                Role::Caller => "user",
            };
            out.push(ChatMessage::new(role, text.clone()));
        }
        out.extend(tail.map(|t| ChatMessage::new("user", t)));
        out
    }

    /// What the caller said before the window, newest kept when it is long (the agent's own
    /// lines are the script's and can be re-derived from the node; the caller's cannot).
    fn summary(&self, count: &dyn Fn(&str) -> usize) -> Option<String> {
        if self.window_start == 0 {
            return None;
        }
        let said: Vec<&str> = self.lines[..self.window_start]
            .iter()
            .filter(|(r, _)| *r == Role::Caller)
            .map(|(_, t)| t.as_str())
            .collect();
        if said.is_empty() {
            return None;
        }
        // At most a quarter of the budget for the summary: newest caller lines first.
        let cap = self.budget_tokens / 4;
        let mut kept: Vec<&str> = Vec::new();
        for s in said.iter().rev() {
            let candidate = format!("Earlier the caller said: \"{}\"", {
                let mut k = kept.clone();
                k.insert(0, s);
                k.join("\" / \"")
            });
            if count(&candidate) > cap {
                break;
            }
            kept.insert(0, s);
        }
        (!kept.is_empty()).then(|| format!("Earlier the caller said: \"{}\"", kept.join("\" / \"")))
    }
}

#[cfg(test)]
mod tests;
