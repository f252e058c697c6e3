//! One call's media session: Twilio's WebSocket messages in, agent audio out.
//!
//! Three concurrent parts under one cancellation token:
//! - the **inbound loop** (this file): parses every message, decodes mu-law, runs VAD (gated by
//!   the line's noise floor and the echo guard) and the endpointer on 8 kHz 20 ms frames, starts
//!   speculative STT when the caller pauses, decides the end of turn from silence + transcript,
//!   and triggers **barge-in** (the priority lane: cancel, `clear`) without waiting for the agent;
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
use super::detector::{Command, DetectorConfig, TurnDetector};
use super::output::{parse_end_mark, parse_mark, run_pacer, OutputCommand};
use super::recording::{recording_file, Recording};
use super::speech::SpeechBoard;
use super::turn::{EchoGuard, EndpointRules};
use super::SessionDeps;
use crate::audio::resample::resample_all;
use crate::audio::vad::{frame_dbfs, NoiseFloor, SpeechDetector, WebRtcVad};
use crate::audio::{i16_to_f32, mulaw, FRAME_SAMPLES, STT_RATE, TWILIO_RATE};

use crate::config::TurnConfig;
use crate::engine::{EngineError, SpeechToText, Transcript, TurnHints};
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
    #[error("stream refused: {0}")]
    Refused(#[from] super::registry::StartRefused),
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
    /// The call's recording, when its campaign records and it was saved.
    pub recording: Option<std::path::PathBuf>,
}

/// Runs a session until Twilio sends `stop`, the socket closes, or the agent hangs up.
pub async fn run_session(
    mut ws_in: mpsc::Receiver<WsIn>,
    ws_out: mpsc::Sender<String>,
    deps: SessionDeps,
) -> Result<SessionSummary, SessionError> {
    let start_timeout = Duration::from_secs(10);
    let start = tokio::time::timeout(start_timeout, async {
        loop {
            match ws_in.recv().await {
                None | Some(WsIn::Closed) => return Err(SessionError::NoStart),
                Some(WsIn::Binary(_)) => {
                    tracing::warn!(twilio_error = 31950, "binary frame before start")
                }
                Some(WsIn::Text(text)) => match parse_inbound(&text) {
                    Ok(InboundMessage::Connected { .. }) => {}
                    Ok(InboundMessage::Start { start, .. }) => return Ok(start),
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

    let (call_sid, stream_sid) = (start.call_sid.clone(), start.stream_sid.clone());
    let span = tracing::info_span!("call", call_sid = %call_sid, stream_sid = %stream_sid);
    let _enter = span.enter();
    // Only a call our signed webhook or the API registered, once: the caller's data comes from
    // that record, never from the stream's parameters.
    let metadata = deps
        .registry
        .start(
            &call_sid,
            &stream_sid,
            &start.account_sid,
            &start.custom_parameters,
        )
        .inspect_err(
            |e| tracing::warn!(twilio_error = 31951, reason = %e, "media stream refused"),
        )?;
    tracing::info!(campaign = ?metadata.campaign_id, "media stream started");
    crate::telemetry::call_started();
    let stream_started = Instant::now();
    let recording = metadata.record.then(|| Recording::new(stream_started));
    let cancel = CancellationToken::new();
    let hangup = CancellationToken::new();
    deps.registry.on_hang_up(&call_sid, hangup.clone());
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
        recording.clone(),
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
    let mut noise = NoiseFloor::default();
    let mut detector = TurnDetector::new(detector_config(&deps.turn));
    let (stt_tx, mut stt_rx) = mpsc::unbounded_channel::<(u64, Result<Transcript, EngineError>)>();
    let mut carry: Vec<i16> = Vec::with_capacity(FRAME_SAMPLES * 2);
    let mut summary = SessionSummary {
        call_sid: call_sid.clone(),
        stream_sid: stream_sid.clone(),
        media_frames: 0,
        rejected_messages: 0,
        ended_by_agent: false,
        recording: None,
    };
    let stt_jobs = Mutex::new(Vec::new());
    let shell = Shell {
        deps: &deps,
        call_sid: &call_sid,
        board: &board,
        out: &out_tx,
        agent: &agent_tx,
        stt: &stt_tx,
        jobs: &stt_jobs,
    };

    loop {
        let msg = tokio::select! {
            m = ws_in.recv() => m,
            Some((attempt, result)) = stt_rx.recv() => {
                if let Err(e) = &result {
                    tracing::error!(error = %e, "speech to text failed");
                }
                let (text, stt_ms) = heard(&result);
                for cmd in detector.transcript(attempt, text, stt_ms) {
                    shell.command(cmd).await;
                }
                if let Some(words) = detector.awaits_end(attempt) {
                    let _ = agent_tx.try_send(AgentInput::Heard(words.to_string()));
                }
                shell.prune(&detector);
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
                let pcm = mulaw::decode(&bytes);
                if let Some(r) = &recording {
                    r.caller(media.timestamp, &pcm);
                }
                carry.extend(pcm);
                let whole = carry.len() - carry.len() % FRAME_SAMPLES;
                let frames: Vec<Vec<i16>> = carry[..whole]
                    .chunks(FRAME_SAMPLES)
                    .map(<[i16]>::to_vec)
                    .collect();
                carry.drain(..whole);
                for frame in frames {
                    let now_ms = stream_started.elapsed().as_millis() as u64;
                    let dbfs = frame_dbfs(&frame);
                    let voiced = noise.gate(vad.is_speech(&frame).unwrap_or(false), dbfs);
                    // Our own voice leaking back is not the caller; what plays now is what the
                    // caller hears.
                    let (echo_like, audible) = echo
                        .lock()
                        .map(|g| {
                            let echo = voiced && g.is_probable_echo(now_ms, dbfs);
                            (echo, g.is_playing(now_ms))
                        })
                        .unwrap_or((false, false));
                    for cmd in detector.frame(&frame, voiced && !echo_like, audible) {
                        shell.command(cmd).await;
                    }
                    shell.prune(&detector);
                }
            }
            InboundMessage::Mark { mark, .. } => {
                if let Some((speech_id, clause)) = parse_mark(&mark.name) {
                    board.clause_played(speech_id, clause);
                } else if let Some(id) = parse_end_mark(&mark.name) {
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

    let ended = Instant::now();
    // The agent stops talking; what it still gets are the caller's last words.
    cancel.cancel();
    last_words(&mut detector, &shell, &mut stt_rx).await;
    drop(agent_tx);
    drop(out_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), agent).await;
    // The agent hung up and Twilio has played our last audio (the agent waited for its final
    // mark): end the call through REST when we can, while the stream is still open (the pacer
    // holds its writer); closing the stream also ends it, through the `<Hangup/>` after
    // `<Connect>` in our TwiML.
    if summary.ended_by_agent {
        if let Some(twilio) = &deps.twilio {
            if let Err(e) = twilio.hang_up(&call_sid).await {
                tracing::warn!(error = %e, "REST hang-up failed; closing the stream instead");
            }
        }
    }
    pacer.abort();
    // Gone before the recording is closed, so no frame lands after it.
    let _ = pacer.await;
    if let Some(r) = &recording {
        // Sent ahead but never played: the stream was over.
        r.unplayed_from(ended);
    }
    deps.llm.end_conversation(&call_sid);
    deps.registry.finish(&call_sid, "completed");
    crate::telemetry::call_ended("completed");
    tracing::info!(
        frames = summary.media_frames,
        rejected = summary.rejected_messages,
        "media stream ended"
    );
    // Within the session (a live call to the shutdown), after the socket has closed and the
    // call was hung up: the write delays nobody.
    if let Some(r) = recording {
        let path = recording_file(&deps.recordings, &call_sid);
        match r.save(path.clone()).await {
            Ok(true) => {
                tracing::info!(path = %path.display(), "recording saved");
                summary.recording = Some(path);
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot save the recording")
            }
        }
    }
    Ok(summary)
}

/// How much of the agent's latest line steers recognition of the answer (Whisper's prompt
/// holds ~220 tokens; the question is at the end of the line).
const PROMPT_CHARS: usize = 200;

/// How long the end of a call waits for the transcript of the caller's last words.
const LAST_WORDS_LIMIT: Duration = Duration::from_secs(10);

/// The stream ended while the caller was talking (or their words were being transcribed):
/// finish that turn and hand it to the agent, which honours an opt-out in it. A caller who says
/// "stop calling me" and hangs up at once is listed.
async fn last_words(
    detector: &mut TurnDetector,
    shell: &Shell<'_>,
    stt_rx: &mut mpsc::UnboundedReceiver<(u64, Result<Transcript, EngineError>)>,
) {
    for cmd in detector.stream_ended() {
        shell.command(cmd).await;
    }
    let deadline = tokio::time::Instant::now() + LAST_WORDS_LIMIT;
    while !detector.is_idle() {
        let Ok(Some((attempt, result))) = tokio::time::timeout_at(deadline, stt_rx.recv()).await
        else {
            tracing::error!(
                limit_s = LAST_WORDS_LIMIT.as_secs(),
                "the caller's last words were not transcribed in time"
            );
            return;
        };
        let (text, stt_ms) = heard(&result);
        for cmd in detector.transcript(attempt, text, stt_ms) {
            shell.command(cmd).await;
        }
        shell.prune(detector);
    }
}

/// What the detector takes of an STT result: the words with the ear's confidence in them
/// (`None`: recognition failed), and how long recognition took in ms.
fn heard(result: &Result<Transcript, EngineError>) -> (Option<(&str, f32)>, f64) {
    match result {
        Ok(t) => (
            Some((t.text.as_str(), t.confidence)),
            t.elapsed.as_secs_f64() * 1000.0,
        ),
        Err(_) => (None, 0.0),
    }
}

/// Runs STT for one attempt on the engine's thread; the result comes back tagged.
fn spawn_stt(
    stt: Arc<dyn SpeechToText>,
    attempt: u64,
    hints: TurnHints,
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
        let result = stt.transcribe_turn(wide, hints).await;
        if !matches!(result, Err(EngineError::Cancelled)) {
            let _ = results.send((attempt, result));
        }
    });
}

fn detector_config(t: &TurnConfig) -> DetectorConfig {
    DetectorConfig {
        rules: EndpointRules {
            min_silence_ms: t.min_endpoint_ms,
            default_silence_ms: t.endpoint_silence_ms,
            max_silence_ms: t.max_endpoint_ms,
        },
        min_speech_ms: t.min_speech_ms,
        max_utterance_ms: t.max_utterance_ms,
        barge_in_min_ms: t.barge_in_min_ms,
        resume_window_ms: t.resume_window_ms,
        resume_heard_ms: t.resume_heard_ms,
        ..DetectorConfig::default()
    }
}

/// What the inbound loop does with the turn detector's commands.
struct Shell<'a> {
    deps: &'a SessionDeps,
    call_sid: &'a str,
    board: &'a SpeechBoard,
    out: &'a mpsc::Sender<OutputCommand>,
    agent: &'a mpsc::Sender<AgentInput>,
    stt: &'a mpsc::UnboundedSender<(u64, Result<Transcript, EngineError>)>,
    /// STT jobs by attempt, until their transcript is in or no longer wanted.
    jobs: &'a Mutex<Vec<(u64, CancellationToken)>>,
}

impl Shell<'_> {
    /// Stops the STT jobs whose transcripts the detector no longer awaits (the caller spoke
    /// on), so they do not delay the one that counts.
    fn prune(&self, detector: &TurnDetector) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.retain(|(attempt, cancel)| {
                let keep = detector.awaits(*attempt);
                if !keep {
                    cancel.cancel();
                }
                keep
            });
        }
    }

    async fn command(&self, cmd: Command) {
        match cmd {
            Command::Transcribe { attempt, audio } => {
                let cancel = CancellationToken::new();
                if let Ok(mut jobs) = self.jobs.lock() {
                    jobs.push((attempt, cancel.clone()));
                }
                let hints = TurnHints {
                    cancel,
                    prompt: self.board.latest_words(PROMPT_CHARS),
                    expect: self.board.expected(),
                    choices: self.board.choices(),
                    doubt_below: self.deps.turn.min_confidence,
                };
                spawn_stt(
                    self.deps.stt.clone(),
                    attempt,
                    hints,
                    audio,
                    self.stt.clone(),
                )
            }
            // The priority lane: decided here, not in the (possibly busy) agent.
            Command::BargeIn { reaction_ms } => {
                let cut = self.board.interrupt();
                if !cut.is_empty() {
                    let _ = self.out.send(OutputCommand::Clear).await;
                    self.deps.registry.add_barge_in(self.call_sid, reaction_ms);
                    crate::telemetry::observe_barge_in(reaction_ms);
                    tracing::info!(speech_ids = ?cut, reaction_ms, "barge-in: agent stopped");
                }
            }
            Command::Continued { id } => {
                tracing::info!(turn = id, "the caller went on: their turn continues");
                let _ = self.agent.send(AgentInput::Continued(id)).await;
            }
            Command::TurnEnded(turn) => {
                let turn = CallerTurn {
                    turn,
                    decided_at: Instant::now(),
                };
                if self.agent.send(AgentInput::Turn(turn)).await.is_err() {
                    tracing::error!("the agent has stopped; a caller turn was dropped");
                }
            }
        }
    }
}
