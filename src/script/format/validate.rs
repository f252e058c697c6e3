//! From raw TOML to a [`Script`] that cannot be inconsistent: every problem is collected (not
//! just the first) with its key path, so a script writer fixes them in one pass.

use std::collections::{BTreeMap, BTreeSet};

use super::builtin::{self, BUILTIN_FAQS};
use super::{
    admits_automation, intents, placeholders, Faq, Intent, Node, Problem, RawScript, Script,
    VarType,
};
use crate::model::Outcome;

/// Names every line may use besides captured variables.
const BUILTIN_VARS: &[&str] = &["persona", "company", "callback_number", "name"];

pub(super) fn validate(raw: RawScript) -> Result<Script, Vec<Problem>> {
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
    if !admits_automation(&h.disclosure) {
        problem(
            "script.disclosure".into(),
            "must say the caller is talking to an AI / automated voice",
        );
    }
    // A caller who never comes back is let go by the silence re-prompts after this wait: it
    // bounds how long a line can sit quiet on our side.
    let hold_seconds = h.hold_seconds.unwrap_or(builtin::HOLD_SECONDS);
    if !(1..=builtin::MAX_HOLD_SECONDS).contains(&hold_seconds) {
        problem(
            "script.hold_seconds".into(),
            &format!("1 to {} seconds", builtin::MAX_HOLD_SECONDS),
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

    // FAQs: the built-ins, the old globals aliases, the script's own.
    let builtin_ids: BTreeSet<&str> = BUILTIN_FAQS.iter().map(|(id, _, _)| *id).collect();
    let mut own: Vec<Faq> = Vec::new();
    for (i, f) in raw.faqs.iter().enumerate() {
        let at = |k: &str| format!("faq[{i}] ({}).{k}", f.id);
        if f.id.trim().is_empty() || intents::RESERVED.contains(&f.id.as_str()) {
            problem(at("id"), &format!("{:?} is empty or reserved", f.id));
        }
        if own.iter().any(|o| o.id == f.id) {
            problem(at("id"), &format!("duplicate faq id {:?}", f.id));
        }
        if f.answer.trim().is_empty() {
            problem(at("answer"), "must not be empty");
        }
        if f.examples.is_empty() && !builtin_ids.contains(f.id.as_str()) {
            problem(at("examples"), "give at least one example question");
        }
        own.push(Faq {
            id: f.id.clone(),
            examples: f.examples.clone(),
            answer: f.answer.clone(),
        });
    }
    for (key, id, alias) in [
        (
            "globals.are_you_a_robot",
            "are_you_a_robot",
            &raw.globals.are_you_a_robot,
        ),
        (
            "globals.who_is_this",
            "who_is_this",
            &raw.globals.who_is_this,
        ),
    ] {
        if let Some(answer) = alias {
            if own.iter().any(|f| f.id == id) {
                problem(
                    key.into(),
                    &format!("also given as [[faq]] id = {id:?}: keep one"),
                );
            } else {
                own.push(Faq {
                    id: id.into(),
                    examples: Vec::new(),
                    answer: answer.clone(),
                });
            }
        }
    }
    if let Some(f) = own.iter().find(|f| f.id == "are_you_a_robot") {
        if !admits_automation(&f.answer) {
            problem(
                "faq (are_you_a_robot).answer".into(),
                "must say the caller is talking to an AI / automated voice",
            );
        }
    }
    let faqs = builtin::faqs(own);
    let faq_ids: BTreeSet<&str> = faqs.iter().map(|f| f.id.as_str()).collect();

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
    let inbound_start = h.inbound_start.clone().unwrap_or_else(|| h.start.clone());
    if !ids.contains(&inbound_start) {
        problem(
            "script.inbound_start".into(),
            &format!("no node {inbound_start:?}"),
        );
    }
    let mut nodes = BTreeMap::new();
    let mut vars: BTreeMap<String, VarType> = BTreeMap::new();
    for (i, n) in raw.nodes.iter().enumerate() {
        let at = |k: &str| format!("node[{i}] ({}).{k}", n.id);
        let end = match n.end.as_deref() {
            None => None,
            Some(o) => {
                let parsed = Outcome::parse(o);
                if parsed.is_none() {
                    let all: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
                    problem(
                        at("end"),
                        &format!("unknown outcome {o:?} (one of {})", all.join(", ")),
                    );
                }
                parsed
            }
        };
        if n.open {
            if n.generate.is_none() {
                problem(
                    at("generate"),
                    "an open node needs `generate` (its reply instruction)",
                );
            }
            if !n.intents.is_empty() || n.end.is_some() {
                problem(at("open"), "an open node has no intents and no end");
            }
        } else if n.say.is_none() && n.generate.is_none() {
            problem(at("say"), "a node needs `say` or `generate`");
        }
        if n.end.is_some() && !n.intents.is_empty() {
            problem(at("intent"), "an end node has no intents");
        }
        if n.transfer.is_some() {
            if n.open || n.end.is_some() || !n.intents.is_empty() {
                problem(
                    at("transfer"),
                    "a transfer node has no intents, no end and is not open",
                );
            }
            if n.say.is_none() {
                problem(at("say"), "a transfer node needs `say` (the handoff line)");
            }
            match &n.fallback {
                None => problem(
                    at("fallback"),
                    "a transfer node needs `fallback` (where the call goes when nobody can take it)",
                ),
                Some(f) if *f == n.id => problem(at("fallback"), "must be another node"),
                Some(_) => {}
            }
            if n.transfer.as_deref().is_some_and(|t| t.trim().is_empty()) {
                problem(at("transfer"), "the advisor's summary must not be empty");
            }
        } else if n.end.is_none() && !n.open && n.intents.is_empty() {
            problem(
                at("intent"),
                "a node that is not an end or open needs intents",
            );
        }
        if n.sentences == Some(0) {
            problem(at("sentences"), "at least 1");
        }
        if let Some(f) = n.fallback.as_ref().filter(|f| !ids.contains(*f)) {
            problem(at("fallback"), &format!("no node {f:?}"));
        }
        if let Some(k) = &n.skip_if_known {
            if !ids.contains(k) || *k == n.id {
                problem(at("skip_if_known"), &format!("no other node {k:?}"));
            }
            if n.capture.is_empty() {
                problem(
                    at("skip_if_known"),
                    "the node captures nothing that could be known",
                );
            }
        }
        let mut capture = BTreeMap::new();
        for (name, ty) in &n.capture {
            let Some(t) = VarType::parse(ty) else {
                problem(
                    at(&format!("capture.{name}")),
                    &format!("type {ty:?} is not bool, number, string or time"),
                );
                continue;
            };
            if vars.get(name).is_some_and(|seen| *seen != t) {
                problem(
                    at(&format!("capture.{name}")),
                    "captured with another type at another node",
                );
            }
            vars.insert(name.clone(), t);
            capture.insert(name.clone(), t);
        }
        let mut names = BTreeSet::new();
        for (j, it) in n.intents.iter().enumerate() {
            let key = |k: &str| at(&format!("intent[{j}].{k}"));
            if !names.insert(&it.name)
                || intents::RESERVED.contains(&it.name.as_str())
                || faq_ids.contains(it.name.as_str())
            {
                problem(
                    key("name"),
                    &format!("{:?} is duplicate, reserved or an faq id", it.name),
                );
            }
            if !ids.contains(&it.next) {
                problem(key("next"), &format!("no node {:?}", it.next));
            }
            if it.examples.is_empty() {
                problem(key("examples"), "give at least one example phrase");
            }
            for v in &it.needs {
                if !n.capture.contains_key(v) {
                    problem(key("needs"), &format!("{v:?} is not captured at this node"));
                }
            }
            // Without a fallback, running out of tries goes to `next`: it must not speak the
            // value that could not be read.
            if n.fallback.is_none() {
                let next_lines = raw
                    .nodes
                    .iter()
                    .filter(|m| m.id == it.next)
                    .flat_map(|m| [m.say.as_deref(), m.generate.as_deref()])
                    .flatten();
                for line in next_lines {
                    if let Some(v) = placeholders(line)
                        .into_iter()
                        .find(|p| it.needs.iter().any(|x| x == p))
                    {
                        problem(
                            key("needs"),
                            &format!("node {:?} says {{{v}}}, which may be missing: give this node a `fallback`", it.next),
                        );
                    }
                }
            }
        }
        nodes.insert(
            n.id.clone(),
            Node {
                id: n.id.clone(),
                goal: n.goal.clone().unwrap_or_default(),
                say: n.say.clone(),
                generate: n.generate.clone(),
                end,
                open: n.open,
                sentences: n.sentences.unwrap_or(1).max(1),
                retry: n.retry.clone(),
                fallback: n.fallback.clone(),
                skip_if_known: n.skip_if_known.clone(),
                transfer: n.transfer.clone(),
                intents: n
                    .intents
                    .iter()
                    .map(|i| Intent {
                        name: i.name.clone(),
                        examples: i.examples.clone(),
                        next: i.next.clone(),
                        needs: i.needs.clone(),
                    })
                    .collect(),
                capture,
            },
        );
    }
    // Every node reachable from the start.
    let mut seen = BTreeSet::new();
    let mut stack = vec![h.start.clone(), inbound_start.clone()];
    while let Some(id) = stack.pop() {
        if seen.insert(id.clone()) {
            if let Some(n) = nodes.get(&id) {
                stack.extend(n.intents.iter().map(|i| i.next.clone()));
                stack.extend(n.fallback.clone());
                stack.extend(n.skip_if_known.clone());
            }
        }
    }
    for id in &ids {
        if !seen.contains(id) {
            problem(
                format!("node ({id})"),
                "unreachable from script.start and script.inbound_start",
            );
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let globals = builtin::globals(raw.globals);
    let voicemail = h
        .voicemail
        .clone()
        .unwrap_or_else(|| builtin::VOICEMAIL.into());
    let callback_greeting = h
        .callback_greeting
        .clone()
        .unwrap_or_else(|| builtin::CALLBACK_GREETING.into());
    let inbound_opening = h
        .inbound_opening
        .clone()
        .unwrap_or_else(|| builtin::INBOUND_OPENING.into());
    let warnings = unknown_vars(
        &raw.script,
        [&voicemail, &callback_greeting, &inbound_opening],
        &globals,
        &faqs,
        &nodes,
        &vars,
    );
    Ok(Script {
        name: h.name.clone(),
        persona: h.persona.clone(),
        company: h.company.clone(),
        callback_number: h.callback_number.clone(),
        opening: h.opening.clone(),
        disclosure: h.disclosure.clone(),
        start: h.start.clone(),
        persona_prompt: h.persona_prompt.clone(),
        opt_out_digit,
        max_call_seconds: h.max_call_seconds.unwrap_or(300),
        silence_reprompt_seconds: h.silence_reprompt_seconds.unwrap_or(6),
        max_silence_reprompts: h.max_silence_reprompts.unwrap_or(2),
        hold_seconds,
        voicemail: Some(voicemail),
        callback_greeting,
        inbound_opening,
        inbound_start,
        globals,
        faqs,
        nodes,
        vars,
        warnings,
    })
}

/// `{names}` no node captures and the script does not define: only a lead column can fill
/// them, and a lead without it leaves them out.
fn unknown_vars(
    h: &super::RawHeader,
    [voicemail, callback_greeting, inbound_opening]: [&str; 3],
    g: &super::Globals,
    faqs: &[Faq],
    nodes: &BTreeMap<String, Node>,
    vars: &BTreeMap<String, VarType>,
) -> Vec<Problem> {
    let mut lines: Vec<(String, &str)> = vec![
        ("script.opening".into(), &h.opening),
        ("script.disclosure".into(), &h.disclosure),
        ("script.voicemail".into(), voicemail),
        ("script.callback_greeting".into(), callback_greeting),
        ("script.inbound_opening".into(), inbound_opening),
        ("globals.opt_out".into(), &g.opt_out),
        ("globals.decline".into(), &g.decline),
        ("globals.unknown_question".into(), &g.unknown_question),
        ("globals.call_later".into(), &g.call_later),
        ("globals.wrong_person".into(), &g.wrong_person),
        ("globals.unclear".into(), &g.unclear),
        ("globals.silence".into(), &g.silence),
        ("globals.hold".into(), &g.hold),
        ("globals.max_duration".into(), &g.max_duration),
        ("globals.transfer_closed".into(), &g.transfer_closed),
        ("globals.transfer_failed".into(), &g.transfer_failed),
        ("globals.transfer_no_answer".into(), &g.transfer_no_answer),
    ];
    for f in faqs {
        lines.push((format!("faq ({}).answer", f.id), &f.answer));
    }
    for n in nodes.values() {
        for (k, line) in [
            ("say", &n.say),
            ("generate", &n.generate),
            ("retry", &n.retry),
            ("transfer", &n.transfer),
        ] {
            if let Some(line) = line {
                lines.push((format!("node ({}).{k}", n.id), line));
            }
        }
    }
    let mut out = Vec::new();
    for (key, line) in lines {
        for v in placeholders(line) {
            // The closed line's `{hours}` is the business hours, filled by the machine.
            let hours = v == "hours" && key == "globals.transfer_closed";
            if !BUILTIN_VARS.contains(&v) && !vars.contains_key(v) && !hours {
                out.push(Problem {
                    key: key.clone(),
                    reason: format!(
                        "{{{v}}} is captured by no node: only a lead column of that name fills it (left out otherwise)"
                    ),
                });
            }
        }
    }
    out
}
