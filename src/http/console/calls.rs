//! Calls: the live board (Server-Sent Events from the call registry: lead, node, elapsed
//! time, transcript, latency per turn, a hang-up button) and the records (search; one call's
//! status history, transcript with per-stage latency, variables, outcome, audit, recording).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Form;
use futures::Stream;
use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use super::auth::CsrfForm;
use super::{back, failed, page, store, when, Operator, Reply};
use crate::http::AppState;
use crate::model::{CallRecord, Outcome, Speaker, TurnLatency};
use crate::store::CallQuery;

/// How often the live board looks at the registry.
const TICK: Duration = Duration::from_millis(400);

/// One live call as the board shows it.
#[derive(Serialize, PartialEq)]
struct LiveCall {
    sid: String,
    campaign: Option<String>,
    lead: String,
    node: Option<String>,
    status: String,
    started_at_ms: Option<i64>,
    outcome: Option<String>,
    turns: Vec<LiveTurn>,
}

#[derive(Serialize, PartialEq)]
struct LiveTurn {
    speaker: &'static str,
    text: String,
    interrupted: bool,
    /// End of the caller's speech -> first agent audio (agent turns).
    latency_ms: Option<u64>,
}

fn live_call(r: &CallRecord) -> LiveCall {
    let lead = [
        r.metadata.lead.get("name").cloned(),
        r.metadata.their_number().map(str::to_string),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    LiveCall {
        sid: r.metadata.call_sid.clone(),
        campaign: r.metadata.campaign_id.clone(),
        lead: if lead.is_empty() {
            "browser".into()
        } else {
            lead
        },
        node: r.path.last().cloned(),
        status: r.status.clone(),
        started_at_ms: r.started_at_ms,
        outcome: r.outcome.map(|o| o.as_str().to_string()),
        turns: r
            .turns
            .iter()
            .map(|t| LiveTurn {
                speaker: match t.speaker {
                    Speaker::Agent => "agent",
                    Speaker::Caller => "caller",
                },
                text: t.text.clone(),
                interrupted: t.interrupted,
                latency_ms: t
                    .latency
                    .as_ref()
                    .and_then(|l| l.voice_to_voice_ms)
                    .map(|v| v.round() as u64),
            })
            .collect(),
    }
}

pub async fn live_page(op: Operator) -> Response {
    page(
        &op,
        "Live calls",
        html! {
            p.muted { "Calls in progress, updated as they happen. Latency: end of the caller's speech to the agent's first audio." }
            div #live data-feed="/live/events" { p.muted.empty { "No calls in progress." } }
        },
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct Feed {
    /// One call (live or just finished) instead of every live call: the softphone's transcript.
    sid: Option<String>,
}

/// `text/event-stream`: the board's JSON each time it changes (and a keep-alive).
pub async fn live_events(
    _: Operator,
    State(state): State<AppState>,
    Query(feed): Query<Feed>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let registry = state.registry.clone();
    let stream = futures::stream::unfold(
        (registry, feed.sid, None::<String>),
        |(registry, sid, last)| async move {
            loop {
                let calls: Vec<LiveCall> = match &sid {
                    Some(sid) => registry.get(sid).iter().map(live_call).collect(),
                    None => registry.live().iter().map(live_call).collect(),
                };
                let json = serde_json::to_string(&calls).unwrap_or_else(|_| "[]".into());
                if last.as_deref() != Some(json.as_str()) {
                    let event = Event::default().event("calls").data(json.clone());
                    return Some((Ok(event), (registry, sid, Some(json))));
                }
                tokio::time::sleep(TICK).await;
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

pub async fn hang_up(
    op: Operator,
    State(state): State<AppState>,
    Path(sid): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Reply {
    op.check_csrf(&f.csrf)?;
    if state.registry.hang_up(&sid) {
        if let Some(store) = state.store.as_ref() {
            super::auth::audit(store, &op.username, "hang_up", &sid).await;
        }
        Ok(back("/live", Ok(format!("Call {sid} hung up."))))
    } else {
        Ok(back(
            "/live",
            Err(format!("Call {sid} is not in progress here.")),
        ))
    }
}

#[derive(Deserialize, Default)]
pub struct Search {
    phone: Option<String>,
    outcome: Option<String>,
    campaign: Option<String>,
    /// `YYYY-MM-DD` (UTC), inclusive.
    from: Option<String>,
    to: Option<String>,
    ok: Option<String>,
    error: Option<String>,
}

fn day_ms(s: Option<&str>, end: bool) -> Result<Option<i64>, String> {
    let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("dates are YYYY-MM-DD (got {s:?})"))?;
    let d = if end { d.succ_opt().unwrap_or(d) } else { d };
    Ok(d.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis()))
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

pub async fn search(op: Operator, State(state): State<AppState>, Query(q): Query<Search>) -> Reply {
    let store = store(&state)?;
    let range =
        day_ms(q.from.as_deref(), false).and_then(|f| Ok((f, day_ms(q.to.as_deref(), true)?)));
    let (calls, error) = match range {
        Ok((from_ms, to_ms)) => {
            let query = CallQuery {
                phone: nonempty(&q.phone),
                outcome: nonempty(&q.outcome),
                campaign: nonempty(&q.campaign),
                from_ms,
                to_ms,
                limit: 200,
            };
            (
                store.search_calls(&query).await.map_err(failed)?,
                q.error.clone(),
            )
        }
        Err(e) => (Vec::new(), Some(e)),
    };
    let v = |s: &Option<String>| s.clone().unwrap_or_default();
    Ok(page(
        &op,
        "Call records",
        html! {
            (super::flash(q.ok.as_deref(), error.as_deref()))
            form.search method="get" action="/calls" {
                label { "Phone" input name="phone" value=(v(&q.phone)) placeholder="+1415"; }
                label { "Outcome" select name="outcome" {
                    option value="" { "any" }
                    @for o in Outcome::ALL { option value=(o.as_str()) selected[q.outcome.as_deref() == Some(o.as_str())] { (o.as_str()) } }
                } }
                label { "Campaign" input name="campaign" value=(v(&q.campaign)); }
                label { "From" input type="date" name="from" value=(v(&q.from)); }
                label { "To" input type="date" name="to" value=(v(&q.to)); }
                button type="submit" { "Search" }
            }
            table.calls {
                thead { tr { th { "When" } th { "Call" } th { "Campaign" } th { "From" } th { "To" } th { "Status" } th { "Outcome" } } }
                tbody {
                    @for c in &calls {
                        tr {
                            td { (when(c.created_at_ms)) }
                            td { a href={ "/calls/" (c.sid) } { (c.sid) } }
                            td { (c.campaign_id.as_deref().unwrap_or("")) }
                            td { (c.from.as_deref().unwrap_or("")) }
                            td { (c.to.as_deref().unwrap_or("")) }
                            td { (c.status) }
                            td { (c.outcome.as_deref().unwrap_or("")) }
                        }
                    }
                    @if calls.is_empty() { tr { td colspan="7" .muted { "No calls match." } } }
                }
            }
        },
    )
    .into_response())
}

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}")).unwrap_or_default()
}

fn stages(l: &TurnLatency) -> Markup {
    html! {
        span.stages title="endpointing / STT / LLM first token / TTS first audio / first frame" {
            "end " (ms(Some(l.endpointing_ms))) " · stt " (ms(Some(l.stt_ms)))
            " · llm " (ms(l.llm_first_token_ms)) " · tts " (ms(l.tts_first_audio_ms))
            " · frame " (ms(l.first_frame_ms))
        }
    }
}

pub async fn record(op: Operator, State(state): State<AppState>, Path(sid): Path<String>) -> Reply {
    let store = store(&state)?;
    let d = store.call_detail(&sid).await.map_err(failed)?;
    let audit = match (&d.call.campaign_id, d.call.lead_id) {
        (Some(c), Some(lead)) => store
            .audit_log(c)
            .await
            .map_err(failed)?
            .into_iter()
            .filter(|e| e.lead_id == Some(lead))
            .collect(),
        _ => Vec::new(),
    };
    let recording = super::recording_url(&state, &sid).await;
    let c = &d.call;
    Ok(page(
        &op,
        &format!("Call {}", c.sid),
        html! {
            dl.facts {
                dt { "Campaign" } dd { @if let Some(id) = &c.campaign_id { a href={ "/campaigns/" (id) } { (id) } } }
                dt { "From → to" } dd { (c.from.as_deref().unwrap_or("?")) " → " (c.to.as_deref().unwrap_or("?")) }
                dt { "Started" } dd { (when(c.created_at_ms)) }
                dt { "Status" } dd { (c.status) @if let Some(a) = &c.answered_by { " (" (a) ")" } @if let Some(s) = c.duration_s { ", " (s) " s" } }
                dt { "Outcome" } dd.outcome { (c.outcome.as_deref().unwrap_or("none")) }
                dt { "Path" } dd { (c.path.join(" → ")) }
            }
            h2 { "Recording" }
            @match &recording {
                Some(url) => audio #recording controls preload="metadata" src=(url) {},
                None => p.muted { "No recording (the campaign does not record, or it was deleted after its retention period)." },
            }
            h2 { "Transcript" }
            ol.transcript {
                @for t in &d.turns {
                    li class={ "turn " (t.speaker) } {
                        span.who { (t.speaker) } " "
                        span.at { (format!("{:.1} s", t.at_ms as f64 / 1000.0)) } " "
                        span.text { (t.text) }
                        @if t.interrupted { " " em { "(interrupted)" } }
                        @if let Some(l) = &t.latency {
                            br; span.latency { "voice to voice " strong { (ms(l.voice_to_voice_ms)) " ms" } } " " (stages(l))
                        }
                    }
                }
            }
            h2 { "Variables" }
            @if c.variables.is_empty() { p.muted { "None captured." } }
            dl.variables { @for (k, v) in &c.variables { dt { (k) } dd { (v) } } }
            h2 { "Status history" }
            table.events {
                thead { tr { th { "Received" } th { "Source" } th { "Sequence" } th { "Status" } th { "Answered by" } th { "Applied" } } }
                tbody { @for e in &d.events { tr {
                    td { (when(e.received_at_ms)) } td { (e.source) } td { (e.sequence) } td { (e.status) }
                    td { (e.answered_by.as_deref().unwrap_or("")) } td { (if e.applied { "yes" } else { "late" }) }
                } } }
            }
            h2 { "Audit" }
            table.audit {
                thead { tr { th { "When" } th { "Decision" } th { "Why" } } }
                tbody { @for a in &audit { tr { td { (when(a.at_ms)) } td { (a.decision) } td { (a.reason) } } } }
            }
        },
    )
    .into_response())
}

/// The call's stereo WAV (caller left, agent right), with HTTP range requests for seeking.
pub async fn recording(
    _: Operator,
    State(state): State<AppState>,
    Path(sid): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    crate::http::recordings::serve_recording(&state, &sid, &headers).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_dates_are_whole_utc_days() {
        assert_eq!(day_ms(None, false), Ok(None));
        assert_eq!(day_ms(Some(" "), true), Ok(None));
        assert_eq!(
            day_ms(Some("2026-12-03"), false),
            Ok(Some(1_796_256_000_000))
        );
        assert_eq!(
            day_ms(Some("2026-12-03"), true),
            Ok(Some(1_796_342_400_000))
        );
        assert!(day_ms(Some("03/12/2026"), false)
            .unwrap_err()
            .contains("YYYY-MM-DD"));
    }

    #[test]
    fn a_live_call_shows_its_node_and_each_reply_latency() {
        let mut r = CallRecord::default();
        r.metadata.call_sid = "CA1".into();
        r.metadata.to = Some("+14155550100".into());
        r.metadata.lead.insert("name".into(), "Ann".into());
        r.path = vec!["start".into(), "bill".into()];
        let mut t = crate::model::Turn::agent("Hello", 0, 1);
        t.latency = Some(TurnLatency {
            voice_to_voice_ms: Some(812.4),
            ..Default::default()
        });
        r.turns.push(t);
        let live = live_call(&r);
        assert_eq!(live.lead, "Ann +14155550100");
        assert_eq!(live.node.as_deref(), Some("bill"));
        assert_eq!(live.turns[0].latency_ms, Some(812));
    }
}
