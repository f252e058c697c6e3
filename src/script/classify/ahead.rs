//! Answers to a question further on: a time the caller names before the script asks for it.
//! "Yes, tomorrow at ten" to the pitch also answers the booking question after it; "tomorrow
//! at three" to the bill question asks for a callback then. Only times: they are unmistakable,
//! where a stray number ("yes, I have two minutes") must not answer a later question.

use std::collections::BTreeMap;

use chrono::DateTime;
use chrono_tz::Tz;

use super::{read, with_values, Classified};
use crate::leads::window::CallingWindow;
use crate::script::format::{intents, Node, Script, VarType, CALLBACK_NODE};
use crate::script::slots::parse_time;

/// The times the node `id` asks for, read from the answer where they parse inside the window.
pub(super) fn times_for(
    script: &Script,
    id: &str,
    text: &str,
    now: DateTime<Tz>,
    window: &CallingWindow,
) -> BTreeMap<String, String> {
    let Some(node) = script.nodes.get(id) else {
        return BTreeMap::new();
    };
    let (captured, _) = read(node, "", text, now, window);
    captured
        .into_iter()
        .filter(|(k, _)| node.capture.get(k) == Some(&VarType::Time))
        .collect()
}

/// Adds to an intent the time its next node asks for, when the answer already names one ("yes,
/// tomorrow at ten" to the pitch): the machine then does not ask for it. Only times: a stray
/// number ("yes, I have two minutes") must not answer a later question.
pub(super) fn ahead(
    script: &Script,
    n: &Node,
    mut c: Classified,
    text: &str,
    now: DateTime<Tz>,
    window: &CallingWindow,
) -> Classified {
    if let Some(i) = n.intents.iter().find(|i| i.name == c.intent) {
        for (k, v) in times_for(script, &i.next, text, now, window) {
            c.captured.entry(k).or_insert(v);
        }
    }
    c
}

/// A time named where the node asks none ("tomorrow at three" to the bill question) answers a
/// question further on: the node's one intent that leads to a node taking a time (the pitch's
/// "yes": book it then), else a callback then. Only a time that parses inside the window.
pub(super) fn time_elsewhere(
    script: &Script,
    n: &Node,
    text: &str,
    now: DateTime<Tz>,
    window: &CallingWindow,
) -> Option<Classified> {
    if n.capture.values().any(|t| *t == VarType::Time) || parse_time(text, now, window).is_err() {
        return None;
    }
    let to_time: Vec<&String> = n
        .intents
        .iter()
        .filter(|i| !times_for(script, &i.next, text, now, window).is_empty())
        .map(|i| &i.name)
        .collect();
    if let [only] = to_time[..] {
        return Some(ahead(
            script,
            n,
            with_values(n, only, text, now, window, "rule"),
            text,
            now,
            window,
        ));
    }
    let captured = times_for(script, CALLBACK_NODE, text, now, window);
    (!captured.is_empty()).then(|| Classified {
        captured,
        ..Classified::rule(intents::CALL_LATER)
    })
}
