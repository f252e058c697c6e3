//! One call's media session: Twilio's WebSocket messages in, agent audio out.
//!
//! Three concurrent parts under one cancellation token:
//! - the **inbound loop** (this file): parses every message, decodes mu-law, runs VAD (with the
//!   echo guard) and the endpointer on 8 kHz 20 ms frames, starts speculative STT when the caller
//!   pauses, decides the end of turn from silence + transcript, and triggers **barge-in** (the
//!   priority lane: cancel, `clear`) without waiting for the agent;
//! - the **agent** ([`super::agent`]): greeting, replies (STT text -> LLM -> clauses -> TTS),
//!   history that keeps only what was heard, resume after a false interruption, DTMF opt-out;
//! - the **pacer** ([`super::output`]): 20 ms frames on a clock, marks, `clear`.
//!
//! Bad input never ends a call: malformed JSON, bad base64, a wrong streamSid or a binary frame
//! are logged with Twilio's error code and skipped.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::agent::{run_agent, AgentInput, CallerTurn};
use super::output::{end_mark_name, parse_mark, run_pacer, OutputCommand};
use super::speech::SpeechBoard;
use super::turn::{EchoGuard, EndpointRules, TurnDecision};
use super::SessionDeps;
use crate::audio::resample::resample_all;
use crate::audio::vad::{
    frame_dbfs, EndpointConfig, Endpointer, SpeechDetector, VadEvent, WebRtcVad,
};
use crate::audio::{i16_to_f32, mulaw, FRAME_SAMPLES, STT_RATE, TWILIO_RATE};

use crate::engine::{EngineError, SpeechToText, Transcript};
use crate::twilio::media::{check_stream_sid, parse_inbound, InboundMessage, MediaError};

/// A WebSocket message as the session sees it (decoupled from axum/tungstenite types so tests
/// and other transports can drive a session with plain channels).
#[derive(Debug)]
pub enum WsIn {
    Text(String),
    Binary(usize),
    Closed,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the stream closed before Twilio's `start` message")]
    NoStart,
    #[error("no `start` message within {0:?}")]
    StartTimeout(Duration),
    #[error("voice activity detector: {0}")]
    Vad(#[from] crate::audio::AudioError),
}

/// How a session ended.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    pub call_sid: String,
    pub stream_sid: String,
    pub media_frames: u64,
    pub rejected_messages: u64,
    /// The engine ended the call (opt-out, goodbye) rather than the caller.
    pub ended_by_agent: bool,
}

/// Silence before speculative STT starts: shorter pauses are usually between words.
const SPECULATIVE_STT_AFTER_MS: u32 = 120;

/// The caller's turn in progress.
struct PendingTurn {
    /// Bumped on every new attempt so late STT results of abandoned attempts are ignored.
    attempt: u64,
    speech_start_sample: u64,
    /// The agent was audible when the caller started: a short reply may be a backchannel.
    over_agent: bool,
    /// A barge-in cut the agent for this turn.
    barged_in: bool,
    /// Audio up to the silence start, waiting for speculative STT.
    audio: Option<Vec<i16>>,
    silence_start_sample: Option<u64>,
    stt_started: bool,
    transcript: Option<Result<Transcript, String>>,
    /// The endpointer reached its maximum: end as soon as the transcript is ready.
    forced: bool,
}

/// Runs a session until Twilio sends `stop`, the socket closes, or the agent hangs up.
pub async fn run_session(
    mut ws_in: mpsc::Receiver<WsIn>,
    ws_out: mpsc::Sender<String>,
    deps: SessionDeps,
) -> Result<SessionSummary, SessionError> {
    let start_timeout = Duration::from_secs(10);
    let (call_sid, stream_sid, params) = tokio::time::timeout(start_timeout, async {
        loop {
            match ws_in.recv().await {
                None | Some(WsIn::Closed) => return Err(SessionError::NoStart),
                Some(WsIn::Binary(_)) => {
                    tracing::warn!(twilio_error = 31950, "binary frame before start")
                }
                Some(WsIn::Text(text)) => match parse_inbound(&text) {
                    Ok(InboundMessage::Connected { .. }) => {}
                    Ok(InboundMessage::Start { start, .. }) => {
                        return Ok((start.call_sid, start.stream_sid, start.custom_parameters))
                    }
                    Ok(other) => tracing::warn!(?other, "message before start ignored"),
                    Err(e) => {
                        tracing::warn!(twilio_error = ?e.twilio_code(), error = %e, "bad message before start")
                    }
                },
            }
        }
    })
    .await
    .map_err(|_| SessionError::StartTimeout(start_timeout))??;

    let span = tracing::info_span!("call", call_sid = %call_sid, stream_sid = %stream_sid);
    let _enter = span.enter();
    let metadata = deps.registry.start(&call_sid, &stream_sid, &params);
    tracing::info!(campaign = ?metadata.campaign_id, "media stream started");
    crate::telemetry::call_started();
    let stream_started = Instant::now();
    let cancel = CancellationToken::new();
    let hangup = CancellationToken::new();
    let board = SpeechBoard::default();
    let echo = Arc::new(Mutex::new(EchoGuard::new(
        deps.turn.echo_onset_ms as u64,
        deps.turn.echo_margin_db,
    )));

    let (out_tx, out_rx) = mpsc::channel::<OutputCommand>(64);
    let (out_events_tx, out_events_rx) = mpsc::unbounded_channel();
    let lead_frames = (deps.turn.output_lead_ms / 20).max(1);
    let pacer = tokio::spawn(run_pacer(
        stream_sid.clone(),
        out_rx,
        ws_out,
        out_events_tx,
        lead_frames,
        Some((echo.clone(), stream_started)),
        Some(board.clone()),
    ));

    let (agent_tx, agent_rx) = mpsc::channel::<AgentInput>(64);
    let agent = tokio::spawn(run_agent(
        deps.clone(),
        metadata,
        agent_rx,
        out_tx.clone(),
        out_events_rx,
        board.clone(),
        cancel.clone(),
        hangup.clone(),
        stream_started,
    ));

    let mut vad = WebRtcVad::new(deps.turn.vad_aggressiveness)?;
    // The endpointer's own limit is the maximum; the turn rules decide earlier.
    let mut endpointer = Endpointer::new(EndpointConfig {
        min_speech_ms: deps.turn.min_speech_ms,
        end_silence_ms: deps.turn.max_endpoint_ms,
        max_utterance_ms: deps.turn.max_utterance_ms,
        ..EndpointConfig::default()
    });
    let rules = EndpointRules {
        min_silence_ms: deps.turn.min_endpoint_ms,
        default_silence_ms: deps.turn.endpoint_silence_ms,
        max_silence_ms: deps.turn.max_endpoint_ms,
    };
    let (stt_tx, mut stt_rx) = mpsc::unbounded_channel::<(u64, Result<Transcript, EngineError>)>();
    let mut pending: Option<PendingTurn> = None;
    let mut attempts = 0u64;
    let mut carry: Vec<i16> = Vec::with_capacity(FRAME_SAMPLES * 2);
    let mut summary = SessionSummary {
        call_sid: call_sid.clone(),
        stream_sid: stream_sid.clone(),
        media_frames: 0,
        rejected_messages: 0,
        ended_by_agent: false,
    };

    loop {
        let msg = tokio::select! {
            m = ws_in.recv() => m,
            Some((attempt, result)) = stt_rx.recv() => {
                if let Some(p) = pending.as_mut().filter(|p| p.attempt == attempt) {
                    p.transcript = Some(result.map_err(|e| e.to_string()));
                    let silence_ms = p.silence_start_sample
                        .map(|s| ((endpointer.samples_seen() - s) * 1000 / TWILIO_RATE as u64) as u32)
                        .unwrap_or(0);
                    if p.forced || decide(&rules, p, silence_ms) == TurnDecision::EndTurn {
                        finish_turn(&mut pending, &mut endpointer, silence_ms, &agent_tx).await;
                    }
                }
                continue;
            }
            _ = hangup.cancelled() => {
                summary.ended_by_agent = true;
                break;
            }
        };
        let text = match msg {
            None | Some(WsIn::Closed) => break,
            Some(WsIn::Binary(len)) => {
                summary.rejected_messages += 1;
                tracing::warn!(
                    twilio_error = MediaError::BinaryFrame.twilio_code(),
                    len,
                    "binary frame ignored"
                );
                continue;
            }
            Some(WsIn::Text(text)) => text,
        };
        let parsed =
            parse_inbound(&text).and_then(|m| check_stream_sid(&stream_sid, &m).map(|_| m));
        let message = match parsed {
            Ok(m) => m,
            Err(e) => {
                summary.rejected_messages += 1;
                tracing::warn!(twilio_error = ?e.twilio_code(), error = %e, "media stream message rejected");
                continue;
            }
        };
        match message {
            InboundMessage::Media { media, .. } => {
                let bytes = match media.decode_audio() {
                    Ok(b) => b,
                    Err(e) => {
                        summary.rejected_messages += 1;
                        tracing::warn!(twilio_error = ?e.twilio_code(), error = %e, "bad media payload");
                        continue;
                    }
                };
                summary.media_frames += 1;
                carry.extend(mulaw::decode(&bytes));
                let whole = carry.len() - carry.len() % FRAME_SAMPLES;
                let frames: Vec<Vec<i16>> = carry[..whole]
                    .chunks(FRAME_SAMPLES)
                    .map(<[i16]>::to_vec)
                    .collect();
                carry.drain(..whole);
                for frame in frames {
                    let now_ms = stream_started.elapsed().as_millis() as u64;
                    let voiced = vad.is_speech(&frame).unwrap_or(false);
                    let echo_like = voiced
                        && echo
                            .lock()
                            .map(|g| g.is_probable_echo(now_ms, frame_dbfs(&frame)))
                            .unwrap_or(false);
                    let is_speech = voiced && !echo_like;
                    for event in endpointer.push(&frame, is_speech) {
                        match event {
                            VadEvent::SpeechStarted { at_sample } => {
                                attempts += 1;
                                let live = board.live();
                                pending = Some(PendingTurn {
                                    attempt: attempts,
                                    speech_start_sample: at_sample,
                                    over_agent: live.is_some(),
                                    barged_in: false,
                                    audio: None,
                                    silence_start_sample: None,
                                    stt_started: false,
                                    transcript: None,
                                    forced: false,
                                });
                            }
                            VadEvent::SilenceStarted {
                                at_sample,
                                audio_so_far,
                            } => {
                                if let Some(p) = pending.as_mut() {
                                    p.silence_start_sample = Some(at_sample);
                                    p.audio = Some(audio_so_far);
                                }
                            }
                            VadEvent::SpeechResumed { .. } => {
                                if let Some(p) = pending.as_mut() {
                                    // The caller went on: any speculative transcript is stale.
                                    attempts += 1;
                                    p.attempt = attempts;
                                    p.silence_start_sample = None;
                                    p.audio = None;
                                    p.stt_started = false;
                                    p.transcript = None;
                                }
                            }
                            VadEvent::UtteranceEnded { audio, .. } => {
                                if let Some(p) = pending.as_mut() {
                                    p.forced = true;
                                    if !p.stt_started {
                                        p.audio = Some(audio);
                                    }
                                }
                            }
                        }
                    }
                    // Barge-in: the priority lane, decided here, not in the (possibly busy) agent.
                    if let Some(p) = pending.as_mut() {
                        if !p.barged_in
                            && endpointer.is_in_speech()
                            && endpointer.speech_ms() >= deps.turn.barge_in_min_ms
                        {
                            let cut = board.interrupt();
                            if !cut.is_empty() {
                                p.barged_in = true;
                                let _ = out_tx.send(OutputCommand::Clear).await;
                                if let Ok(mut g) = echo.lock() {
                                    g.cut(now_ms);
                                }
                                let reaction_ms =
                                    (endpointer.samples_seen() - p.speech_start_sample) as f64
                                        * 1000.0
                                        / TWILIO_RATE as f64;
                                deps.registry.add_barge_in(&call_sid, reaction_ms);
                                crate::telemetry::observe_barge_in(reaction_ms);
                                tracing::info!(speech_ids = ?cut, reaction_ms, "barge-in: agent stopped");
                            }
                        }
                    }
                    // End of turn: speculative STT once the pause is long enough, then the rules.
                    let silence_ms = match pending.as_ref().and_then(|p| p.silence_start_sample) {
                        Some(s) => {
                            ((endpointer.samples_seen() - s) * 1000 / TWILIO_RATE as u64) as u32
                        }
                        None => 0,
                    };
                    if let Some(p) = pending.as_mut() {
                        if !p.stt_started
                            && (p.forced
                                || (p.silence_start_sample.is_some()
                                    && silence_ms >= SPECULATIVE_STT_AFTER_MS))
                        {
                            if let Some(audio) = p.audio.take() {
                                p.stt_started = true;
                                spawn_stt(deps.stt.clone(), p.attempt, audio, stt_tx.clone());
                            }
                        }
                        if p.transcript.is_some()
                            && (p.forced || decide(&rules, p, silence_ms) == TurnDecision::EndTurn)
                        {
                            finish_turn(&mut pending, &mut endpointer, silence_ms, &agent_tx).await;
                        }
                    }
                }
            }
            InboundMessage::Mark { mark, .. } => {
                if let Some((speech_id, clause)) = parse_mark(&mark.name) {
                    board.clause_played(speech_id, clause);
                } else if let Some(id) = mark
                    .name
                    .strip_prefix('s')
                    .and_then(|r| r.strip_suffix("end"))
                    .and_then(|n| n.parse().ok())
                {
                    debug_assert_eq!(end_mark_name(id), mark.name);
                    board.fully_played(id);
                    deps.registry.set_turn_end(
                        &call_sid,
                        id,
                        stream_started.elapsed().as_millis() as u64,
                    );
                }
            }
            InboundMessage::Dtmf { dtmf, .. } => {
                let _ = agent_tx.send(AgentInput::Dtmf(dtmf.digit)).await;
            }
            InboundMessage::Stop { .. } => {
                tracing::info!("Twilio sent stop");
                break;
            }
            InboundMessage::Start { .. } | InboundMessage::Connected { .. } => {
                tracing::warn!("repeated connected/start ignored");
            }
        }
    }

    cancel.cancel();
    drop(agent_tx);
    drop(out_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), agent).await;
    pacer.abort();
    deps.llm.end_conversation(&call_sid);
    // The agent hung up and Twilio has played our last audio (the agent waited for its final
    // mark): end the call through REST when we can; closing the stream also ends it, through
    // the `<Hangup/>` after `<Connect>` in our TwiML.
    if summary.ended_by_agent {
        if let Some(twilio) = &deps.twilio {
            if let Err(e) = twilio.hang_up(&call_sid).await {
                tracing::warn!(error = %e, "REST hang-up failed; closing the stream instead");
            }
        }
    }
    deps.registry.finish(&call_sid, "completed");
    crate::telemetry::call_ended("completed");
    tracing::info!(
        frames = summary.media_frames,
        rejected = summary.rejected_messages,
        "media stream ended"
    );
    Ok(summary)
}

fn decide(rules: &EndpointRules, p: &PendingTurn, silence_ms: u32) -> TurnDecision {
    let text = match &p.transcript {
        Some(Ok(t)) => Some(t.text.as_str()),
        Some(Err(_)) => Some(""),
        None => None,
    };
    rules.decide(silence_ms, text)
}

/// Runs STT for one attempt on the engine's thread; the result comes back tagged.
fn spawn_stt(
    stt: Arc<dyn SpeechToText>,
    attempt: u64,
    audio: Vec<i16>,
    results: mpsc::UnboundedSender<(u64, Result<Transcript, EngineError>)>,
) {
    tokio::spawn(async move {
        // One contiguous utterance: resampled in one go, flushed at its end.
        let wide = match resample_all(&i16_to_f32(&audio), TWILIO_RATE, STT_RATE) {
            Ok(w) => w,
            Err(e) => {
                let _ = results.send((
                    attempt,
                    Err(EngineError::Inference {
                        engine: "resampler",
                        reason: e.to_string(),
                    }),
                ));
                return;
            }
        };
        let result = stt.transcribe(wide).await;
        let _ = results.send((attempt, result));
    });
}

/// Hands the finished turn to the agent and resets the endpointer for the next one.
async fn finish_turn(
    pending: &mut Option<PendingTurn>,
    endpointer: &mut Endpointer,
    silence_ms: u32,
    agent: &mpsc::Sender<AgentInput>,
) {
    let Some(p) = pending.take() else { return };
    // Inbound samples count the stream's time (8 kHz): when the caller spoke, not when we decided.
    let ms = |samples: u64| samples * 1000 / TWILIO_RATE as u64;
    let start_ms = ms(p.speech_start_sample);
    let end_ms = ms(p
        .silence_start_sample
        .unwrap_or_else(|| endpointer.samples_seen()));
    endpointer.reset();
    let (text, stt_ms) = match p.transcript {
        Some(Ok(t)) => (t.text, t.elapsed.as_secs_f64() * 1000.0),
        Some(Err(e)) => {
            tracing::error!(error = %e, "speech to text failed");
            (String::new(), 0.0)
        }
        None => (String::new(), 0.0),
    };
    let turn = CallerTurn {
        text,
        start_ms,
        end_ms,
        stt_ms,
        endpointing_ms: silence_ms as f64,
        decided_at: Instant::now(),
        over_agent: p.over_agent,
        barged_in: p.barged_in,
    };
    if agent.send(AgentInput::Turn(turn)).await.is_err() {
        tracing::warn!("agent stopped; caller turn dropped");
    }
}
