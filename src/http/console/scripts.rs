//! Scripts: each campaign's script edited in the page (validated on save, each problem shown
//! at its line), drawn as a graph of nodes and transitions, and a text chat against it with
//! the real LLM (what the `chat` command does), before anyone is dialed.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::auth::audit;
use super::{back, csrf, failed, flash, page, store, trusted, Bounded, Operator, Reply};
use crate::dialer::Dialer;
use crate::http::AppState;
use crate::model::Campaign;
use crate::script::format::{Problem, Script};
use crate::script::runner::{describe, CallContext, ScriptRunner};

/// Open chats (per operator session and campaign); the oldest is dropped beyond this.
const MAX_CHATS: usize = 32;
/// Lines a chat keeps.
const MAX_CHAT_LINES: usize = 400;

/// A chat with a script: the runner and what was said.
pub struct Chat {
    runner: ScriptRunner,
    lines: Vec<(String, String)>,
}

pub type Chats = Bounded<Arc<Mutex<Chat>>>;

pub async fn list(op: Operator, State(state): State<AppState>) -> Reply {
    let store = store(&state)?;
    let campaigns = store.campaigns().await.map_err(failed)?;
    Ok(page(
        &op,
        "Scripts",
        html! {
            p.muted { "Each campaign follows its own script. Edit it, see its graph, chat with it, or talk to it from this browser." }
            ul.scripts {
                @for c in &campaigns {
                    li { a href={ "/scripts/" (c.id) } { (c.name) } " " small.muted { (c.id) } }
                }
                @if campaigns.is_empty() { li.muted { "No campaigns yet." } }
            }
        },
    )
    .into_response())
}

#[derive(Deserialize, Default)]
pub struct Flash {
    ok: Option<String>,
    error: Option<String>,
}

pub async fn edit(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(f): Query<Flash>,
) -> Reply {
    let store = store(&state)?;
    let c = store.campaign(&id).await.map_err(failed)?;
    let chat = state.console.chats.get(&chat_key(&op, &id));
    let lines = match &chat {
        Some(chat) => chat.lock().await.lines.clone(),
        None => Vec::new(),
    };
    Ok(editor(&op, &c, &c.script_toml, &[], &f, &lines).into_response())
}

fn editor(
    op: &Operator,
    c: &Campaign,
    text: &str,
    problems: &[Problem],
    f: &Flash,
    chat: &[(String, String)],
) -> super::Page {
    let script = Script::from_toml(&c.id, &c.script_toml).ok();
    page(
        op,
        &format!("Script of {}", c.name),
        html! {
            (flash(f.ok.as_deref(), f.error.as_deref()))
            @if !problems.is_empty() { (listing(text, problems)) }
            form.script method="post" action={ "/scripts/" (c.id) } {
                (csrf(op))
                textarea name="script" rows="24" spellcheck="false" { (text) }
                button type="submit" { "Save" }
            }
            h2 { "Graph" }
            @if let Some(s) = &script { div.graph { (trusted(crate::script::graph::svg(s))) } }
            h2 { "Chat with this script" }
            p.muted { "Type what a caller says; the agent answers with the real model and this script (as saved). " code { "/silence" } ", " code { "/key 9" } " and " code { "/restart" } " work too." }
            div.chat #chat {
                @for (who, line) in chat { p class={ "line " (who) } { (line) } }
            }
            form.chat method="post" action={ "/scripts/" (c.id) "/chat" } {
                (csrf(op))
                input name="say" autocomplete="off" placeholder="Hi, who is this?" aria-label="caller says";
                button type="submit" { "Send" }
            }
            h2 { "Talk to this script" }
            div #softphone data-campaign=(c.id) {}
            script src="/softphone/softphone.js" defer {}
        },
    )
}

/// The script with line numbers, each problem under its line (or at the top when it has none).
fn listing(text: &str, problems: &[Problem]) -> Markup {
    let located: Vec<(Option<usize>, &Problem)> = problems
        .iter()
        .map(|p| (line_of(text, &p.key), p))
        .collect();
    html! {
        section.problems role="alert" {
            h2 { "Not saved: " (problems.len()) " problem" @if problems.len() != 1 { "s" } }
            @for (line, p) in located.iter().filter(|(l, _)| l.is_none()) {
                p.error { (p.key) ": " (p.reason) } (line.map(|_| "").unwrap_or(""))
            }
            ol.listing {
                @for (n, l) in text.lines().enumerate() {
                    @let here: Vec<&&Problem> = located.iter().filter(|(at, _)| *at == Some(n + 1)).map(|(_, p)| p).collect();
                    li value=(n + 1) class=[(!here.is_empty()).then_some("bad")] {
                        code { (l) }
                        @for p in here { div.error data-line=(n + 1) { "line " (n + 1) ": " (p.key) ": " (p.reason) } }
                    }
                }
            }
        }
    }
}

/// The line a problem's key points at: `line 12 ...`, `node[2]...` (the third `[[node]]`),
/// `faq[0]...`, `script.x` / `globals.x` (that key in its table, else the table's header).
fn line_of(text: &str, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    if let Some(rest) = key.strip_prefix("line ") {
        return rest
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok();
    }
    let header_at = |header: &str, nth: usize| {
        lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.trim() == header)
            .nth(nth)
            .map(|(i, _)| i)
    };
    for (prefix, header) in [("node[", "[[node]]"), ("faq[", "[[faq]]")] {
        if let Some(rest) = key.strip_prefix(prefix) {
            let nth: usize = rest.split(']').next()?.parse().ok()?;
            return header_at(header, nth).map(|i| i + 1);
        }
    }
    for table in ["script", "globals"] {
        if let Some(rest) = key.strip_prefix(&format!("{table}.")) {
            let start = header_at(&format!("[{table}]"), 0)?;
            let field = rest.split(['.', '[', ' ']).next().unwrap_or("");
            let within = lines[start + 1..]
                .iter()
                .take_while(|l| !l.trim_start().starts_with('['))
                .position(|l| l.trim_start().starts_with(field) && l.contains('='));
            return Some(within.map(|w| start + 2 + w).unwrap_or(start + 1));
        }
    }
    None
}

#[derive(Deserialize)]
pub struct SaveForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    script: String,
}

pub async fn save(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(f): Form<SaveForm>,
) -> Reply {
    op.check_csrf(&f.csrf)?;
    let store = store(&state)?;
    let c = store.campaign(&id).await.map_err(failed)?;
    let text = f.script.replace("\r\n", "\n");
    let problems = match Script::from_toml(&format!("campaign {id}"), &text) {
        Err(e) => e.problems,
        Ok(_) => {
            // The campaign's own checks too (settings that need the script to say something).
            let probe = Campaign {
                script_toml: text.clone(),
                ..c.clone()
            };
            match Dialer::check_campaign(&probe) {
                Ok(_) => Vec::new(),
                Err(reason) => vec![Problem {
                    key: "campaign".into(),
                    reason,
                }],
            }
        }
    };
    if !problems.is_empty() {
        let mut page = editor(&op, &c, &text, &problems, &Flash::default(), &[]).into_response();
        *page.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(page);
    }
    if let Err(e) = store.set_campaign_script(&id, &text).await {
        return Err(failed(e));
    }
    if let Ok(script) = Script::from_toml(&format!("campaign {id}"), &text) {
        // New calls follow it at once; calls in progress keep the script they started with.
        state.session.scripts.insert(&id, Arc::new(script));
    }
    state.console.chats.remove(&chat_key(&op, &id));
    audit(store, &op.username, "script_save", &id).await;
    Ok(back(
        &format!("/scripts/{id}"),
        Ok("Script saved: new calls follow it.".into()),
    ))
}

fn chat_key(op: &Operator, id: &str) -> String {
    format!("{}/{id}", op.csrf)
}

#[derive(Deserialize)]
pub struct ChatForm {
    #[serde(rename = "_csrf", default)]
    csrf: String,
    #[serde(default)]
    say: String,
}

pub async fn chat(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(f): Form<ChatForm>,
) -> Reply {
    use crate::script::machine::Event;
    op.check_csrf(&f.csrf)?;
    let store = store(&state)?;
    let c = store.campaign(&id).await.map_err(failed)?;
    let path = format!("/scripts/{id}#chat");
    let say: String = f.say.trim().chars().take(500).collect();
    let key = chat_key(&op, &id);
    if say == "/restart" {
        state.console.chats.remove(&key);
        return Ok(back(&path, Ok("Chat restarted.".into())));
    }
    let chat = match state.console.chats.get(&key) {
        Some(chat) => chat,
        None => {
            let script = match Script::from_toml(&format!("campaign {id}"), &c.script_toml) {
                Ok(s) => Arc::new(s),
                Err(e) => return Ok(back(&path, Err(e.to_string()))),
            };
            let mut runner = ScriptRunner::new(
                script,
                state.session.llm.clone(),
                "console chat",
                CallContext::default(),
            );
            let plan = runner.event(Event::Started).await;
            let plan = runner.realize(plan).await;
            let chat = Arc::new(Mutex::new(Chat {
                runner,
                lines: lines_of(&describe(&plan)),
            }));
            state.console.chats.put(&key, chat.clone(), MAX_CHATS);
            chat
        }
    };
    let mut chat = chat.lock().await;
    if chat.runner.outcome().is_some() {
        return Ok(back(
            &path,
            Err("The call has ended: send /restart to begin again.".into()),
        ));
    }
    if !say.is_empty() {
        chat.lines.push(("caller".into(), format!("caller: {say}")));
        let plan = match say.as_str() {
            "/silence" => chat.runner.event(Event::Silence).await,
            key if key.starts_with("/key ") => match key[5..].trim().chars().next() {
                Some(d) => chat.runner.event(Event::Dtmf(d)).await,
                None => return Ok(back(&path, Err("/key needs a digit".into()))),
            },
            text => chat.runner.caller(text).await,
        };
        let plan = chat.runner.realize(plan).await;
        let said = lines_of(&describe(&plan));
        chat.lines.extend(said);
        if let Some(outcome) = chat.runner.outcome() {
            chat.lines
                .push(("end".into(), format!("call ended: {outcome}")));
        }
    }
    let n = chat.lines.len();
    if n > MAX_CHAT_LINES {
        chat.lines.drain(..n - MAX_CHAT_LINES);
    }
    drop(chat);
    Ok(axum::response::Redirect::to(&path).into_response())
}

/// `describe`'s lines, each tagged `agent` (what would be said) or `meta` (intent, captures).
fn lines_of(described: &str) -> Vec<(String, String)> {
    described
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let who = if l.starts_with("agent") {
                "agent"
            } else {
                "meta"
            };
            (who.to_string(), l.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[script]\nname = \"x\"\npersona = \"Nova\"\n\n[globals]\nopt_out = \"bye\"\n\n[[node]]\nid = \"start\"\n\n[[node]]\nid = \"two\"\nnext = \"nowhere\"\n";

    #[test]
    fn a_problem_is_shown_at_the_line_its_key_names() {
        assert_eq!(line_of(TEXT, "line 7: expected a value"), Some(7));
        assert_eq!(line_of(TEXT, "node[0].id"), Some(8));
        assert_eq!(line_of(TEXT, "node[1].intent[0].next"), Some(11));
        assert_eq!(line_of(TEXT, "script.persona"), Some(3));
        assert_eq!(line_of(TEXT, "script.disclosure"), Some(1));
        assert_eq!(line_of(TEXT, "globals.opt_out"), Some(6));
        assert_eq!(line_of(TEXT, "faq[0]"), None);
        assert_eq!(line_of(TEXT, "campaign"), None);
    }

    #[test]
    fn the_real_validator_s_problems_land_on_lines() {
        let broken = crate::script::EXAMPLE_SCRIPT.replacen("next = \"", "next = \"nowhere", 1);
        let problems = Script::from_toml("x", &broken).unwrap_err().problems;
        assert!(!problems.is_empty());
        for p in &problems {
            let line = line_of(&broken, &p.key).unwrap_or_else(|| panic!("{p:?}"));
            assert!(line <= broken.lines().count());
        }
        let html = listing(&broken, &problems).into_string();
        assert!(html.contains("class=\"bad\""), "{html}");
    }
}
