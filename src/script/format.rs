//! Script files (TOML): persona, disclosure, nodes with intents, transitions, variables to
//! capture, end nodes with outcomes, and replies for the global intents every call must handle.
//! Raw serde structs are validated into [`Script`], which cannot be inconsistent (every
//! transition lands on a node, every node is reachable or an end, names are unique).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

/// Every problem found in a script, each with its location.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {}", .problems.iter().map(|p| format!("{}: {}", p.key, p.reason)).collect::<Vec<_>>().join("; "))]
pub struct ScriptError {
    pub file: String,
    pub problems: Vec<Problem>,
}

/// One problem: where (a key path like `node[2].intent[0].next`, with the line when known) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub key: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScript {
    script: RawHeader,
    #[serde(default)]
    globals: RawGlobals,
    #[serde(default, rename = "node")]
    nodes: Vec<RawNode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: String,
    persona: String,
    company: String,
    callback_number: String,
    opening: String,
    disclosure: String,
    start: String,
    #[serde(default)]
    opt_out_digit: Option<String>,
    #[serde(default)]
    max_call_seconds: Option<u32>,
    #[serde(default)]
    silence_reprompt_seconds: Option<u32>,
    #[serde(default)]
    max_silence_reprompts: Option<u32>,
    #[serde(default)]
    voicemail: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobals {
    opt_out: Option<String>,
    are_you_a_robot: Option<String>,
    who_is_this: Option<String>,
    call_later: Option<String>,
    wrong_person: Option<String>,
    unclear: Option<String>,
    silence: Option<String>,
    max_duration: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    id: String,
    #[serde(default)]
    goal: Option<String>,
    #[serde(default)]
    say: Option<String>,
    #[serde(default)]
    generate: Option<String>,
    #[serde(default)]
    end: Option<String>,
    #[serde(default, rename = "intent")]
    intents: Vec<RawIntent>,
    #[serde(default)]
    capture: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    name: String,
    #[serde(default)]
    examples: Vec<String>,
    next: String,
}

/// Type of a captured variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarType {
    Bool,
    Number,
    String,
}

/// Call outcomes an end node may carry.
pub const OUTCOMES: &[&str] = &[
    "interested",
    "not_interested",
    "callback",
    "do_not_call",
    "wrong_person",
    "voicemail",
    "no_answer",
    "max_duration",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    pub name: String,
    pub examples: Vec<String>,
    pub next: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: String,
    pub goal: String,
    /// Fixed line(s) spoken on entering the node.
    pub say: Option<String>,
    /// Instruction for a generated line (the LLM phrases it within the node's goal).
    pub generate: Option<String>,
    /// End node: the call ends with this outcome after `say`.
    pub end: Option<String>,
    pub intents: Vec<Intent>,
    pub capture: BTreeMap<String, VarType>,
}

/// Replies for the intents every node listens for.
#[derive(Debug, Clone, PartialEq)]
pub struct Globals {
    pub opt_out: String,
    pub are_you_a_robot: String,
    pub who_is_this: String,
    pub call_later: String,
    pub wrong_person: String,
    pub unclear: String,
    pub silence: String,
    pub max_duration: String,
}

/// A validated script.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub name: String,
    pub persona: String,
    pub company: String,
    pub callback_number: String,
    pub opening: String,
    pub disclosure: String,
    pub start: String,
    pub opt_out_digit: Option<char>,
    pub max_call_seconds: u32,
    pub silence_reprompt_seconds: u32,
    pub max_silence_reprompts: u32,
    pub voicemail: String,
    pub globals: Globals,
    pub nodes: BTreeMap<String, Node>,
}

impl Script {
    pub fn from_file(path: &Path) -> Result<Self, ScriptError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScriptError {
            file: file.clone(),
            problems: vec![Problem {
                key: "(file)".into(),
                reason: e.to_string(),
            }],
        })?;
        Self::from_toml(&file, &text)
    }

    /// Parses and validates; `file` names the source in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, ScriptError> {
        let raw: RawScript = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            ScriptError {
                file: file.to_string(),
                problems: vec![Problem {
                    key: line
                        .map(|l| format!("line {l}"))
                        .unwrap_or_else(|| "(syntax)".into()),
                    reason: e.message().to_string(),
                }],
            }
        })?;
        validate(raw).map_err(|problems| ScriptError {
            file: file.to_string(),
            problems,
        })
    }

    /// Fills `{persona}`, `{company}`, `{callback_number}` and captured `{variables}`.
    pub fn render(&self, text: &str, vars: &BTreeMap<String, String>) -> String {
        let mut out = text
            .replace("{persona}", &self.persona)
            .replace("{company}", &self.company)
            .replace("{callback_number}", &self.callback_number);
        for (k, v) in vars {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }

    /// The intents a caller turn at `node` is classified into: the node's, then the globals.
    pub fn intent_names(&self, node: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .nodes
            .get(node)
            .map(|n| n.intents.iter().map(|i| i.name.clone()).collect())
            .unwrap_or_default();
        names.extend(GLOBAL_INTENTS.iter().map(|s| s.to_string()));
        names.push("unclear".into());
        names
    }
}

/// Intents reachable from every node.
pub const GLOBAL_INTENTS: &[&str] = &[
    "opt_out",
    "are_you_a_robot",
    "who_is_this",
    "call_later",
    "wrong_person",
];

fn validate(raw: RawScript) -> Result<Script, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut problem = |key: String, reason: &str| {
        problems.push(Problem {
            key,
            reason: reason.to_string(),
        })
    };
    let h = &raw.script;
    for (key, value) in [
        ("script.name", &h.name),
        ("script.persona", &h.persona),
        ("script.company", &h.company),
        ("script.callback_number", &h.callback_number),
        ("script.opening", &h.opening),
        ("script.disclosure", &h.disclosure),
    ] {
        if value.trim().is_empty() {
            problem(key.into(), "must not be empty");
        }
    }
    if !h.disclosure.to_lowercase().contains("ai")
        && !h.disclosure.to_lowercase().contains("automated")
    {
        problem(
            "script.disclosure".into(),
            "must say the caller is talking to an AI / automated voice",
        );
    }
    let opt_out_digit = match h.opt_out_digit.as_deref() {
        None => Some('9'),
        Some(d) if d.len() == 1 && "0123456789*#".contains(d) => d.chars().next(),
        Some(_) => {
            problem("script.opt_out_digit".into(), "one of 0-9, * or #");
            None
        }
    };
    let mut ids = BTreeSet::new();
    for (i, n) in raw.nodes.iter().enumerate() {
        if !ids.insert(n.id.clone()) {
            problem(
                format!("node[{i}].id"),
                &format!("duplicate node id {:?}", n.id),
            );
        }
    }
    if !ids.contains(&h.start) {
        problem("script.start".into(), &format!("no node {:?}", h.start));
    }
    let mut nodes = BTreeMap::new();
    for (i, n) in raw.nodes.iter().enumerate() {
        let at = |k: &str| format!("node[{i}] ({}).{k}", n.id);
        if n.say.is_none() && n.generate.is_none() {
            problem(at("say"), "a node needs `say` or `generate`");
        }
        match &n.end {
            Some(outcome) => {
                if !OUTCOMES.contains(&outcome.as_str()) {
                    problem(
                        at("end"),
                        &format!(
                            "unknown outcome {outcome:?} (one of {})",
                            OUTCOMES.join(", ")
                        ),
                    );
                }
                if !n.intents.is_empty() {
                    problem(at("intent"), "an end node has no intents");
                }
            }
            None if n.intents.is_empty() => {
                problem(at("intent"), "a node that is not an end needs intents")
            }
            None => {}
        }
        let mut names = BTreeSet::new();
        for (j, it) in n.intents.iter().enumerate() {
            if !names.insert(&it.name)
                || GLOBAL_INTENTS.contains(&it.name.as_str())
                || it.name == "unclear"
            {
                problem(
                    at(&format!("intent[{j}].name")),
                    &format!("{:?} is duplicate or reserved", it.name),
                );
            }
            if !ids.contains(&it.next) {
                problem(
                    at(&format!("intent[{j}].next")),
                    &format!("no node {:?}", it.next),
                );
            }
            if it.examples.is_empty() {
                problem(
                    at(&format!("intent[{j}].examples")),
                    "give at least one example phrase",
                );
            }
        }
        let mut capture = BTreeMap::new();
        for (name, ty) in &n.capture {
            let t = match ty.as_str() {
                "bool" => VarType::Bool,
                "number" => VarType::Number,
                "string" => VarType::String,
                other => {
                    problem(
                        at(&format!("capture.{name}")),
                        &format!("type {other:?} is not bool, number or string"),
                    );
                    continue;
                }
            };
            capture.insert(name.clone(), t);
        }
        nodes.insert(
            n.id.clone(),
            Node {
                id: n.id.clone(),
                goal: n.goal.clone().unwrap_or_default(),
                say: n.say.clone(),
                generate: n.generate.clone(),
                end: n.end.clone(),
                intents: n
                    .intents
                    .iter()
                    .map(|i| Intent {
                        name: i.name.clone(),
                        examples: i.examples.clone(),
                        next: i.next.clone(),
                    })
                    .collect(),
                capture,
            },
        );
    }
    // Every node reachable from the start.
    let mut seen = BTreeSet::new();
    let mut stack = vec![h.start.clone()];
    while let Some(id) = stack.pop() {
        if seen.insert(id.clone()) {
            if let Some(n) = nodes.get(&id) {
                stack.extend(n.intents.iter().map(|i| i.next.clone()));
            }
        }
    }
    for id in &ids {
        if !seen.contains(id) {
            problem(format!("node ({id})"), "unreachable from script.start");
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let g = raw.globals;
    let d = |v: Option<String>, default: &str| v.unwrap_or_else(|| default.to_string());
    Ok(Script {
        name: h.name.clone(),
        persona: h.persona.clone(),
        company: h.company.clone(),
        callback_number: h.callback_number.clone(),
        opening: h.opening.clone(),
        disclosure: h.disclosure.clone(),
        start: h.start.clone(),
        opt_out_digit,
        max_call_seconds: h.max_call_seconds.unwrap_or(300),
        silence_reprompt_seconds: h.silence_reprompt_seconds.unwrap_or(6),
        max_silence_reprompts: h.max_silence_reprompts.unwrap_or(2),
        voicemail: h.voicemail.clone().unwrap_or_else(|| {
            "Hi, this is {persona}, an automated assistant calling from {company}. Please call us back at {callback_number}. To stop these calls, call that number and ask to be removed.".into()
        }),
        globals: Globals {
            opt_out: d(g.opt_out, "Understood. I have removed your number from our list and you will not be called again. Goodbye."),
            are_you_a_robot: d(g.are_you_a_robot, "Yes, I am an automated AI assistant calling for {company}."),
            who_is_this: d(g.who_is_this, "This is {persona}, an automated assistant calling from {company}. You can reach us at {callback_number}."),
            call_later: d(g.call_later, "No problem. When would be a better time to call you back?"),
            wrong_person: d(g.wrong_person, "I am sorry for the trouble. I will update our records. Goodbye."),
            unclear: d(g.unclear, "Sorry, I did not catch that. Could you say it again?"),
            silence: d(g.silence, "Are you still there?"),
            max_duration: d(g.max_duration, "I do not want to take more of your time. Thank you, goodbye."),
        },
        nodes,
    })
}
