//! One call's media session: Twilio's WebSocket messages in, agent audio out.
//!
//! Three concurrent parts under one cancellation token:
//! - the **inbound loop** (this task): parses every message, decodes mu-law, runs VAD and the
//!   endpointer on 8 kHz 20 ms frames and hands finished utterances to the agent;
//! - the **agent** task: STT -> LLM (streamed) -> clause splitter -> TTS -> pacer, and the
//!   transcript with per-stage latency;
//! - the **pacer** task ([`super::output`]): 20 ms frames on a clock, marks, `clear`.
//!
//! Bad input never ends a call: malformed JSON, bad base64, a wrong streamSid or a binary frame
//! are logged with Twilio's error code and skipped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::clauses::{ends_sentence, ClauseSplitter};
use super::output::{run_pacer, OutputCommand, OutputEvent};
use super::registry::{CallMetadata, CallRegistry, Speaker, Turn, TurnLatency};
use crate::audio::resample::StreamResampler;
use crate::audio::vad::{EndpointConfig, Endpointer, SpeechDetector, VadEvent, WebRtcVad};
use crate::audio::{mulaw, FRAME_SAMPLES, STT_RATE, TWILIO_RATE};
use crate::config::{ConversationConfig, TurnConfig};
use crate::engine::{
    ChatMessage, GenerateRequest, LanguageModel, LlmEvent, SpeechToText, TextToSpeech,
};
use crate::twilio::media::{check_stream_sid, parse_inbound, InboundMessage, MediaError};

/// A WebSocket message as the session sees it (decoupled from axum/tungstenite types so tests
/// and other transports can drive a session with plain channels).
#[derive(Debug)]
pub enum WsIn {
    Text(String),
    Binary(usize),
    Closed,
}

/// Everything a session needs, shared by all calls.
#[derive(Clone)]
pub struct SessionDeps {
    pub stt: Arc<dyn SpeechToText>,
    pub llm: Arc<dyn LanguageModel>,
    pub tts: Arc<dyn TextToSpeech>,
    pub conversation: ConversationConfig,
    pub turn: TurnConfig,
    pub registry: CallRegistry,
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

/// What the inbound loop tells the agent.
#[derive(Debug)]
enum AgentInput {
    Utterance {
        /// 8 kHz PCM of the caller's turn.
        audio: Vec<i16>,
        /// Sample index (8 kHz, since stream start) of the last speech frame.
        last_speech_sample: u64,
        /// Sample index at which the end of turn was decided.
        decided_sample: u64,
        decided_at: Instant,
    },
    Mark(String),
    Dtmf(String),
}

/// How a session ended.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    pub call_sid: String,
    pub stream_sid: String,
    pub media_frames: u64,
    pub rejected_messages: u64,
}

/// Runs a session until Twilio sends `stop` or the socket closes.
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
                Some(WsIn::Binary(_)) => tracing::warn!(twilio_error = 31950, "binary frame before start"),
                Some(WsIn::Text(text)) => match parse_inbound(&text) {
                    Ok(InboundMessage::Connected { .. }) => {}
                    Ok(InboundMessage::Start { start, .. }) => {
                        return Ok((start.call_sid, start.stream_sid, start.custom_parameters))
                    }
                    Ok(other) => tracing::warn!(?other, "message before start ignored"),
                    Err(e) => tracing::warn!(twilio_error = ?e.twilio_code(), error = %e, "bad message before start"),
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
    let stream_started = Instant::now();
    let cancel = CancellationToken::new();

    let (out_tx, out_rx) = mpsc::channel::<OutputCommand>(64);
    let (out_events_tx, out_events_rx) = mpsc::unbounded_channel();
    let lead_frames = (deps.turn.output_lead_ms / 20).max(1);
    let pacer = tokio::spawn(run_pacer(
        stream_sid.clone(),
        out_rx,
        ws_out,
        out_events_tx,
        lead_frames,
    ));

    let (agent_tx, agent_rx) = mpsc::channel::<AgentInput>(64);
    let agent = tokio::spawn(run_agent(
        deps.clone(),
        metadata,
        agent_rx,
        out_tx,
        out_events_rx,
        cancel.clone(),
        stream_started,
    ));

    let mut vad = WebRtcVad::new(deps.turn.vad_aggressiveness)?;
    let mut endpointer = Endpointer::new(EndpointConfig {
        min_speech_ms: deps.turn.min_speech_ms,
        end_silence_ms: deps.turn.endpoint_silence_ms,
        max_utterance_ms: deps.turn.max_utterance_ms,
        ..EndpointConfig::default()
    });
    let mut carry: Vec<i16> = Vec::with_capacity(FRAME_SAMPLES * 2);
    let mut summary = SessionSummary {
        call_sid: call_sid.clone(),
        stream_sid: stream_sid.clone(),
        media_frames: 0,
        rejected_messages: 0,
    };
    let mut last_speech_sample = 0u64;

    while let Some(msg) = ws_in.recv().await {
        let text = match msg {
            WsIn::Closed => break,
            WsIn::Binary(len) => {
                summary.rejected_messages += 1;
                tracing::warn!(
                    twilio_error = MediaError::BinaryFrame.twilio_code(),
                    len,
                    "binary frame ignored"
                );
                continue;
            }
            WsIn::Text(text) => text,
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
                for frame in carry[..whole].chunks(FRAME_SAMPLES) {
                    let is_speech = vad.is_speech(frame).unwrap_or(false);
                    for event in endpointer.push(frame, is_speech) {
                        match event {
                            VadEvent::SilenceStarted { at_sample, .. } => {
                                last_speech_sample = at_sample
                            }
                            VadEvent::UtteranceEnded {
                                audio, end_sample, ..
                            } => {
                                let input = AgentInput::Utterance {
                                    audio,
                                    last_speech_sample: end_sample.max(last_speech_sample),
                                    decided_sample: endpointer.samples_seen(),
                                    decided_at: Instant::now(),
                                };
                                if agent_tx.send(input).await.is_err() {
                                    tracing::warn!("agent stopped; utterance dropped");
                                }
                            }
                            VadEvent::SpeechStarted { .. } | VadEvent::SpeechResumed { .. } => {}
                        }
                    }
                }
                carry.drain(..whole);
            }
            InboundMessage::Mark { mark, .. } => {
                let name = mark.name;
                let _ = agent_tx.send(AgentInput::Mark(name)).await;
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
    let _ = tokio::time::timeout(Duration::from_secs(5), agent).await;
    pacer.abort();
    deps.llm.end_conversation(&call_sid);
    deps.registry.finish(&call_sid, "completed");
    tracing::info!(
        frames = summary.media_frames,
        rejected = summary.rejected_messages,
        "media stream ended"
    );
    Ok(summary)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The agent: speaks the greeting, then answers each caller turn.
async fn run_agent(
    deps: SessionDeps,
    metadata: CallMetadata,
    mut inputs: mpsc::Receiver<AgentInput>,
    out: mpsc::Sender<OutputCommand>,
    mut out_events: mpsc::UnboundedReceiver<OutputEvent>,
    cancel: CancellationToken,
    stream_started: Instant,
) {
    let call_sid = metadata.call_sid.clone();
    let mut system_prompt = deps.conversation.system_prompt.clone();
    if let Some(name) = metadata.lead.get("name") {
        system_prompt.push_str(&format!(" You are speaking with {name}."));
    }
    let mut history: Vec<ChatMessage> = Vec::new();
    let mut speech_id = 0u64;
    let at_ms = || stream_started.elapsed().as_millis() as u64;

    // The greeting is spoken as soon as the stream starts.
    speech_id += 1;
    let greeting = deps.conversation.greeting.clone();
    let mut splitter = ClauseSplitter::new();
    let mut clauses = splitter.push(&greeting);
    clauses.extend(splitter.finish());
    for (i, clause) in clauses.into_iter().enumerate() {
        if !speak_clause(&deps, &out, speech_id, i as u32, clause, &cancel)
            .await
            .0
        {
            return;
        }
    }
    if out
        .send(OutputCommand::EndSpeech { speech_id })
        .await
        .is_err()
    {
        return;
    }
    history.push(ChatMessage::new("assistant", greeting.clone()));
    deps.registry.add_turn(
        &call_sid,
        Turn {
            speaker: Speaker::Agent,
            text: greeting,
            at_ms: at_ms(),
            latency: None,
        },
    );

    while let Some(input) = tokio::select! {
        i = inputs.recv() => i,
        _ = cancel.cancelled() => None,
    } {
        let (audio, last_speech_sample, decided_sample, decided_at) = match input {
            AgentInput::Utterance {
                audio,
                last_speech_sample,
                decided_sample,
                decided_at,
            } => (audio, last_speech_sample, decided_sample, decided_at),
            AgentInput::Mark(name) => {
                tracing::debug!(mark = %name, "played");
                continue;
            }
            AgentInput::Dtmf(digit) => {
                tracing::info!(%digit, "dtmf");
                continue;
            }
        };
        let mut latency = TurnLatency {
            endpointing_ms: (decided_sample.saturating_sub(last_speech_sample)) as f64 * 1000.0
                / TWILIO_RATE as f64,
            ..Default::default()
        };
        // The utterance is one contiguous signal: one resampler over it, flushed at its end.
        let audio_16k = match StreamResampler::new(TWILIO_RATE, STT_RATE) {
            Ok(mut r) => {
                let mut v = r.process(&crate::audio::i16_to_f32(&audio));
                v.extend(r.flush());
                v
            }
            Err(e) => {
                tracing::error!(error = %e, "resampler");
                continue;
            }
        };
        let transcript = match deps.stt.transcribe(audio_16k).await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "speech to text failed");
                continue;
            }
        };
        latency.stt_ms = ms(transcript.elapsed);
        if transcript.text.is_empty() {
            tracing::debug!("utterance without words ignored");
            continue;
        }
        tracing::info!(caller = %transcript.text, stt_ms = latency.stt_ms, "caller said");
        deps.registry.add_turn(
            &call_sid,
            Turn {
                speaker: Speaker::Caller,
                text: transcript.text.clone(),
                at_ms: at_ms(),
                latency: None,
            },
        );
        history.push(ChatMessage::new("user", transcript.text));

        speech_id += 1;
        let reply = respond(
            &deps,
            &call_sid,
            &system_prompt,
            &history,
            speech_id,
            &out,
            &cancel,
            &mut latency,
        )
        .await;
        if cancel.is_cancelled() {
            return;
        }
        // First frame out: reported by the pacer.
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        if !reply.is_empty() {
            loop {
                tokio::select! {
                    ev = out_events.recv() => match ev {
                        Some(OutputEvent::FirstFrameSent { speech_id: id, at }) if id == speech_id => {
                            latency.first_frame_ms = Some(ms(at.saturating_duration_since(decided_at)));
                            latency.voice_to_voice_ms = Some(latency.endpointing_ms + ms(at.saturating_duration_since(decided_at)));
                            break;
                        }
                        Some(OutputEvent::Closed) | None => break,
                        Some(_) => {}
                    },
                    _ = &mut deadline => break,
                }
            }
            tracing::info!(agent = %reply, ?latency, "agent replied");
            history.push(ChatMessage::new("assistant", reply.clone()));
            deps.registry.add_turn(
                &call_sid,
                Turn {
                    speaker: Speaker::Agent,
                    text: reply,
                    at_ms: at_ms(),
                    latency: Some(latency),
                },
            );
        }
        let keep = deps.conversation.max_history_turns;
        if history.len() > keep {
            history.drain(..history.len() - keep);
        }
    }
}

/// Synthesises one clause and queues it for the pacer. Returns whether the call goes on, and
/// how long synthesis took.
async fn speak_clause(
    deps: &SessionDeps,
    out: &mpsc::Sender<OutputCommand>,
    speech_id: u64,
    clause_index: u32,
    clause: String,
    cancel: &CancellationToken,
) -> (bool, Option<Duration>) {
    match deps.tts.synthesize(clause, cancel.clone()).await {
        Ok(audio) => {
            let sent = out
                .send(OutputCommand::Clause {
                    speech_id,
                    clause_index,
                    samples: audio.samples,
                    sample_rate: audio.sample_rate.max(1),
                })
                .await
                .is_ok();
            (sent, Some(audio.elapsed))
        }
        Err(e) => {
            tracing::error!(error = %e, "text to speech failed");
            (!cancel.is_cancelled(), None)
        }
    }
}

/// Streams one reply: LLM tokens -> clauses -> TTS (concurrently) -> pacer. Returns the text.
#[allow(clippy::too_many_arguments)]
async fn respond(
    deps: &SessionDeps,
    call_sid: &str,
    system_prompt: &str,
    history: &[ChatMessage],
    speech_id: u64,
    out: &mpsc::Sender<OutputCommand>,
    cancel: &CancellationToken,
    latency: &mut TurnLatency,
) -> String {
    let mut messages = vec![ChatMessage::new("system", system_prompt)];
    messages.extend_from_slice(history);
    let llm_cancel = cancel.child_token();
    let mut tokens = deps.llm.generate(GenerateRequest {
        conversation_id: call_sid.to_string(),
        messages,
        max_tokens: deps.conversation.max_reply_tokens,
        grammar: None,
        cancel: llm_cancel.clone(),
    });

    // TTS runs beside the LLM: clauses flow through this channel.
    let (clause_tx, mut clause_rx) = mpsc::channel::<String>(16);
    let tts_deps = deps.clone();
    let tts_out = out.clone();
    let tts_cancel = cancel.clone();
    let tts_task = tokio::spawn(async move {
        // Synthesis time of the first clause: the TTS share of time to first audio.
        let mut first_audio: Option<Duration> = None;
        let mut index = 0u32;
        while let Some(clause) = clause_rx.recv().await {
            let (ok, synth) =
                speak_clause(&tts_deps, &tts_out, speech_id, index, clause, &tts_cancel).await;
            if first_audio.is_none() {
                first_audio = synth;
            }
            if !ok {
                return first_audio;
            }
            index += 1;
        }
        let _ = tts_out.send(OutputCommand::EndSpeech { speech_id }).await;
        first_audio
    });

    let started = Instant::now();
    let mut splitter = ClauseSplitter::new();
    let mut reply = String::new();
    let mut sentences = 0usize;
    let mut first_clause = true;
    'stream: while let Some(event) = tokens.recv().await {
        match event {
            LlmEvent::Token(piece) => {
                if latency.llm_first_token_ms.is_none() {
                    latency.llm_first_token_ms = Some(ms(started.elapsed()));
                }
                for clause in splitter.push(&piece) {
                    if first_clause {
                        latency.llm_first_clause_ms = Some(ms(started.elapsed()));
                        first_clause = false;
                    }
                    if !reply.is_empty() {
                        reply.push(' ');
                    }
                    reply.push_str(&clause);
                    if ends_sentence(&clause) {
                        sentences += 1;
                    }
                    let _ = clause_tx.send(clause).await;
                    if sentences >= deps.conversation.max_reply_sentences {
                        // Enough said: a phone reply stays short whatever the model wants.
                        llm_cancel.cancel();
                        break 'stream;
                    }
                }
            }
            LlmEvent::Done {
                prompt_evaluated,
                prompt_cached,
                generated,
                stop,
            } => {
                tracing::debug!(
                    prompt_evaluated,
                    prompt_cached,
                    generated,
                    ?stop,
                    "llm done"
                );
                break;
            }
            LlmEvent::Error(e) => {
                tracing::error!(error = %e, "llm failed");
                break;
            }
        }
    }
    if sentences < deps.conversation.max_reply_sentences {
        if let Some(rest) = splitter.finish() {
            if latency.llm_first_clause_ms.is_none() {
                latency.llm_first_clause_ms = Some(ms(started.elapsed()));
            }
            if !reply.is_empty() {
                reply.push(' ');
            }
            reply.push_str(&rest);
            let _ = clause_tx.send(rest).await;
        }
    }
    drop(clause_tx);
    if let Ok(Some(first_audio)) = tts_task.await {
        latency.tts_first_audio_ms = Some(ms(first_audio));
    }
    reply
}
