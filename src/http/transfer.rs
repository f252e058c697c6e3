//! Twilio's requests during a transfer to a person (see `call::agent`'s transfer): our media
//! stream is gone by then, so what the advisor and the caller hear is TwiML `<Play>` of audio
//! the agent rendered with our TTS.
//!
//! - `POST /twilio/whisper?handoff=T` (signed): the advisor answered; the TwiML played to them
//!   alone before the bridge (the warm transfer's summary).
//! - `POST /twilio/transfer?handoff=T` (signed): the `<Dial>` ended. Answered: the call is done
//!   (`<Hangup/>` once the advisor's leg ends). Not answered (`no-answer`, `busy`, `failed`,
//!   `canceled`): the caller hears that nobody is free and a callback is offered, and the call's
//!   outcome becomes `callback`, so the dialer calls them back.
//! - `GET /twilio/audio/{T}/{whisper,no-answer}.wav`: that audio. Twilio fetches `<Play>` media
//!   unsigned; the token (122 random bits, expiring) is the credential.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;

use super::twilio_webhooks::{param, SignedForm};
use super::{AppError, AppState};
use crate::call::handoff::Handoff;
use crate::model::{Outcome, Turn};
use crate::twilio::twiml;

fn xml(body: String) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/xml")], body)
}

/// The handoff named in the request's query (`handoff=T`) and its token.
fn handoff(state: &AppState, form: &SignedForm) -> Result<(String, Handoff), AppError> {
    let query = form.query();
    let token = param(&query, "handoff").unwrap_or_default();
    let found = state.session.handoffs.get(&token);
    found
        .map(|h| (token, h))
        .ok_or_else(|| AppError::NotFound("no such transfer (or it expired)".into()))
}

pub(super) async fn whisper(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<impl IntoResponse, AppError> {
    let (token, h) = handoff(&state, &form)?;
    tracing::info!(call_sid = %h.call_sid, "transfer: the advisor answered; whispering the summary");
    // A cold transfer has no whisper URL; an empty response bridges at once.
    Ok(xml(match h.whisper {
        Some(_) => twiml::play(
            &format!("{}/twilio/audio/{token}/whisper.wav", form.base),
            false,
        ),
        None => r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#.to_string(),
    }))
}

pub(super) async fn dial_ended(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<impl IntoResponse, AppError> {
    let (token, h) = handoff(&state, &form)?;
    if param(&form.params, "CallSid").as_deref() != Some(h.call_sid.as_str()) {
        return Err(AppError::BadRequest(
            "CallSid is not the transferred call".into(),
        ));
    }
    let status = param(&form.params, "DialCallStatus").unwrap_or_default();
    let duration = param(&form.params, "DialCallDuration").unwrap_or_default();
    let at_ms = state
        .registry
        .get(&h.call_sid)
        .and_then(|r| r.turns.last().map(|t| t.end_ms.unwrap_or(t.at_ms)))
        .unwrap_or(0);
    if status == "completed" || status == "answered" {
        tracing::info!(call_sid = %h.call_sid, %duration, "transfer: the advisor talked to the caller");
        let note = format!("[the advisor talked to the caller for {duration} s]");
        note_turn(&state, &h.call_sid, note, at_ms);
        return Ok(xml(twiml::hangup()));
    }
    tracing::info!(call_sid = %h.call_sid, %status, "transfer: nobody answered; offering a callback");
    state.registry.set_outcome(&h.call_sid, Outcome::Callback);
    note_turn(
        &state,
        &h.call_sid,
        format!("[transfer {status}] {}", h.no_answer_line),
        at_ms,
    );
    let url = format!("{}/twilio/audio/{token}/no-answer.wav", form.base);
    Ok(xml(twiml::play(&url, true)))
}

/// An agent line in the transcript that no speech id stands behind.
fn note_turn(state: &AppState, call_sid: &str, text: String, at_ms: u64) {
    let turn = Turn {
        speech_id: None,
        ..Turn::agent(text, at_ms, 0)
    };
    state.registry.add_turn(call_sid, turn);
}

pub(super) async fn audio(
    State(state): State<AppState>,
    Path((token, name)): Path<(String, String)>,
) -> Result<impl IntoResponse, AppError> {
    let h = state
        .session
        .handoffs
        .get(&token)
        .ok_or_else(|| AppError::NotFound("no such transfer (or it expired)".into()))?;
    let wav = match name.as_str() {
        "whisper.wav" => h.whisper,
        "no-answer.wav" => Some(h.no_answer),
        _ => None,
    }
    .ok_or_else(|| AppError::NotFound(format!("no audio {name}")))?;
    Ok(([(header::CONTENT_TYPE, "audio/wav")], wav.as_ref().clone()))
}
