//! A simulated Twilio call over a real WebSocket: the test bed for end-to-end tests and a way to
//! rehearse a conversation without a phone line.
//!
//! It behaves like Twilio's Media Streams as documented: `connected`, then `start` with custom
//! parameters, then one 20 ms mu-law `media` frame every 20 ms (silence when the caller is quiet),
//! and `stop` at hang-up. It plays the agent's audio in real time from a buffer, echoes each
//! `mark` only when the audio before it has been played, and on `clear` drops the buffer and
//! echoes the pending marks. JSON is written by hand from Twilio's documented shapes (not with our
//! own serializer) so a mistake in `twilio::media` cannot hide itself.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::measure::{self, TurnSpan, TurnTiming};
use super::voice::LineNoise;
use crate::audio::{mulaw, FRAME_SAMPLES};

/// One thing the simulated caller does, in order.
#[derive(Debug, Clone)]
pub enum CallerStep {
    /// Speak this 8 kHz PCM.
    Say(Vec<i16>),
    /// Stay quiet.
    Silence(Duration),
    /// Wait until the agent has spoken and then been quiet for `quiet`, at most `max`.
    WaitForAgent { quiet: Duration, max: Duration },
    /// Press a key.
    Dtmf(char),
    /// Send this text frame as is (malformed input tests).
    SendRaw(String),
    /// Send a binary frame (Twilio itself never does; our server must shrug it off).
    SendBinary(Vec<u8>),
    /// Talk over the agent: wait until agent speech is heard (at once if it is playing
    /// already), then `after` more; at most `max` in all. The next step starts then.
    Over { after: Duration, max: Duration },
    /// From now on mix line noise at this level (dBFS RMS) under every frame the caller sends,
    /// silence included; `None` stops it. Takes no time.
    Noise(Option<f32>),
    /// The `Say` and `Dtmf` steps up to the next `Turn` are one caller turn with this label
    /// (a pause mid-sentence does not end a turn); see [`SimReport::turn_timings`]. Takes no
    /// time. Without any, each `Say` and `Dtmf` is a turn of its own.
    Turn(String),
}

/// The call to simulate.
#[derive(Debug, Clone)]
pub struct SimCall {
    pub call_sid: String,
    pub stream_sid: String,
    pub account_sid: String,
    /// The stream's custom parameters; with `api_token`, also the metadata registered.
    pub parameters: BTreeMap<String, String>,
    /// The account's auth token: the upgrade carries `X-Twilio-Signature`, as Twilio's does.
    pub auth_token: Option<String>,
    /// The engine API's token: the call is first registered with `POST /v1/calls` (its
    /// parameters as the metadata), as a dialer would. Without it the call must be known
    /// already (the emulator's voice webhook did that).
    pub api_token: Option<String>,
    /// The stream URL Twilio was given, which its signature covers, when the one connected to
    /// differs (an offline rehearsal connects to `ws://` what TwiML named `wss://`).
    pub signed_url: Option<String>,
}

impl SimCall {
    /// A call with random Twilio-shaped SIDs.
    pub fn random() -> Self {
        let hex = || uuid::Uuid::new_v4().simple().to_string();
        Self {
            call_sid: format!("CA{}", hex()),
            stream_sid: format!("MZ{}", hex()),
            account_sid: format!("AC{}", hex()),
            parameters: BTreeMap::new(),
            auth_token: None,
            api_token: None,
            signed_url: None,
        }
    }

    /// This call registered through the API and signed as Twilio signs, with these tokens.
    pub fn with_tokens(mut self, auth_token: &str, api_token: &str) -> Self {
        self.auth_token = Some(auth_token.to_string());
        self.api_token = Some(api_token.to_string());
        self
    }
}

/// A stretch of agent audio the caller heard without a gap.
#[derive(Debug, Clone)]
pub struct HeardSpeech {
    /// Milliseconds since the stream started when it began playing.
    pub start_ms: u64,
    pub samples: Vec<i16>,
}

/// What happened on the simulated line.
#[derive(Debug, Clone, Default)]
pub struct SimReport {
    pub heard: Vec<HeardSpeech>,
    /// Marks echoed back, with the time (ms) they were echoed.
    pub marks_echoed: Vec<(String, u64)>,
    pub clears: Vec<u64>,
    /// When each `Say` step started and when its last audible frame went out (ms since start).
    pub caller_speech_starts: Vec<u64>,
    pub caller_speech_ends: Vec<u64>,
    /// Agent media frames received (20 ms each).
    pub frames_received: u64,
    /// Frames whose payload was not 160 bytes of mu-law (Twilio plays them, but we never should).
    pub odd_frames: u64,
    /// Short gaps (< 200 ms) between heard stretches: audible hiccups of any cause.
    pub underruns: u64,
    /// Ticks where the play buffer ran dry in the middle of a clause: the pacer sent a frame
    /// late. (A gap after a clause's mark is the next clause not being ready yet, not pacing.)
    pub late_frames: u64,
    /// The line as a recorder on it would hear it, one 20 ms frame per tick: what the caller
    /// sent and what Twilio played to the caller, sample-aligned (8 kHz).
    pub caller_track: Vec<i16>,
    pub agent_track: Vec<i16>,
    /// The caller's turns, when they were heard on the line (see [`CallerStep::Turn`]).
    pub turns: Vec<TurnSpan>,
}

impl SimReport {
    /// Writes the call as a stereo WAV: caller on the left, agent on the right.
    pub fn write_stereo_wav(&self, path: &std::path::Path) -> Result<(), hound::Error> {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec)?;
        let n = self.caller_track.len().max(self.agent_track.len());
        for i in 0..n {
            w.write_sample(self.caller_track.get(i).copied().unwrap_or(0))?;
            w.write_sample(self.agent_track.get(i).copied().unwrap_or(0))?;
        }
        w.finalize()
    }

    /// Response latency after each caller utterance: end of caller speech -> the first agent
    /// frame heard that is speech, not silence padding ([`measure::is_loud`]).
    pub fn response_latencies_ms(&self) -> Vec<u64> {
        let loud = measure::loud_times(&self.agent_track);
        self.caller_speech_ends
            .iter()
            .filter_map(|&end| measure::first_loud_after(&loud, end).map(|t| t - end))
            .collect()
    }

    /// Latency and dead air after each caller turn, at the caller's ear.
    pub fn turn_timings(&self) -> Vec<TurnTiming> {
        measure::turn_timings(&self.turns, &self.agent_track)
    }

    /// The turns the agent began answering before they were over (see
    /// [`measure::early_answers`]).
    pub fn early_answers(&self) -> Vec<usize> {
        measure::early_answers(&self.turns, &self.agent_track)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("websocket: {0}")]
    Socket(String),
    #[error("websocket closed by the server")]
    Closed,
    #[error("cannot register the call: {0}")]
    Register(String),
}

/// `POST /v1/calls` on the server behind the media URL: the call's parameters as its metadata.
async fn register(media_url: &str, call: &SimCall, api_token: &str) -> Result<(), SimError> {
    let base = media_url
        .replacen("wss://", "https://", 1)
        .replacen("ws://", "http://", 1);
    let base = base.split("/twilio/media").next().unwrap_or(&base);
    let p = |k: &str| call.parameters.get(k);
    let body = json!({
        "call_sid": call.call_sid,
        "from": p("from"),
        "to": p("to"),
        "campaign_id": p("campaign_id"),
        "lead": call.parameters,
    });
    let answer = reqwest::Client::new()
        .post(format!("{base}/v1/calls"))
        .bearer_auth(api_token)
        .json(&body)
        .send()
        .await
        .map_err(|e| SimError::Register(e.to_string()))?;
    if !answer.status().is_success() {
        return Err(SimError::Register(format!("{}", answer.status())));
    }
    Ok(())
}

/// The WebSocket upgrade, signed with the auth token when the call has one.
fn upgrade_request(
    url: &str,
    call: &SimCall,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, SimError> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let connect_error = |reason: String| SimError::Connect {
        url: url.to_string(),
        reason,
    };
    let mut request = url
        .into_client_request()
        .map_err(|e| connect_error(e.to_string()))?;
    if let Some(token) = &call.auth_token {
        let signed = call.signed_url.as_deref().unwrap_or(url);
        let signature = crate::twilio::signature::compute(token, signed, &[]);
        let value = signature
            .parse()
            .map_err(|_| connect_error("signature is not a header value".into()))?;
        request.headers_mut().insert("X-Twilio-Signature", value);
    }
    Ok(request)
}

fn socket_error(e: tokio_tungstenite::tungstenite::Error) -> SimError {
    use tokio_tungstenite::tungstenite::error::{Error, ProtocolError};
    match e {
        Error::ConnectionClosed
        | Error::AlreadyClosed
        | Error::Protocol(ProtocolError::SendAfterClosing) => SimError::Closed,
        e => SimError::Socket(e.to_string()),
    }
}

enum Play {
    /// A frame and whether it is speech (not padding).
    Frame(Vec<i16>, bool),
    Mark(String),
}

/// How a simulated call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimEnd {
    /// The caller ran out of steps and hung up.
    StepsDone,
    /// Our server closed the WebSocket.
    ServerClosed,
    /// The `stop` token was cancelled (the call was ended from outside, e.g. a REST hang-up).
    Stopped,
}

/// Places the simulated call against a media WebSocket URL (`ws://host/twilio/media`).
pub async fn run_call(
    url: &str,
    call: &SimCall,
    steps: Vec<CallerStep>,
) -> Result<SimReport, SimError> {
    run_call_until(url, call, steps, CancellationToken::new())
        .await
        .map(|(report, _)| report)
}

/// [`run_call`] that also ends (sending `stop`, as Twilio does at hang-up) when `stop` is
/// cancelled, and says how the call ended.
pub async fn run_call_until(
    url: &str,
    call: &SimCall,
    steps: Vec<CallerStep>,
    stop: CancellationToken,
) -> Result<(SimReport, SimEnd), SimError> {
    if let Some(token) = &call.api_token {
        register(url, call, token).await?;
    }
    let connect = tokio_tungstenite::connect_async(upgrade_request(url, call)?);
    let connected = tokio::select! {
        r = connect => r,
        _ = stop.cancelled() => return Ok((SimReport::default(), SimEnd::Stopped)),
    };
    let (ws, _) = connected.map_err(|e| SimError::Connect {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    let (mut tx, mut rx) = ws.split();
    let send = |v: Value| Message::Text(v.to_string().into());
    let b64 = base64::engine::general_purpose::STANDARD;

    tx.send(send(
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
    ))
    .await
    .map_err(socket_error)?;
    tx.send(send(json!({
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": call.account_sid,
            "streamSid": call.stream_sid,
            "callSid": call.call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": call.parameters,
        },
        "streamSid": call.stream_sid,
    })))
    .await
    .map_err(socket_error)?;

    let mut report = SimReport::default();
    let mut seq: u64 = 1;
    let mut tick_n: u64 = 0;
    let mut play: VecDeque<Play> = VecDeque::new();
    // Speech frames waiting in `play` (padding does not keep a caller waiting).
    let mut loud_queued = 0usize;
    let mut steps: VecDeque<CallerStep> = steps.into();
    let mut say_pos = 0usize;
    let mut last_audible_ms: Option<u64> = None;
    let mut step_started_tick = 0u64;
    // The last tick any agent frame played (heard stretches), and the last one with speech.
    let mut last_played_tick: Option<u64> = None;
    let mut last_loud_tick: Option<u64> = None;
    let mut agent_started_in_step = false;
    let mut over_onset: Option<u64> = None;
    let mut playing_since: Option<u64> = None;
    let mut noise: Option<LineNoise> = None;
    let mut turns = Turns::default();
    // The last thing played was a clause's mark: a gap now is between clauses.
    let mut at_clause_boundary = true;
    let mut interval = tokio::time::interval(Duration::from_millis(20));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let silence = vec![0i16; FRAME_SAMPLES];

    // A send can find the socket already closed by our server (its close frame still unread):
    // that is the server hanging up, not a failure.
    let ended = async {
    let mut end = SimEnd::StepsDone;
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                end = SimEnd::Stopped;
                break;
            }
            msg = rx.next() => {
                // A close frame ends the call: sending after it is a protocol error.
                let Some(Ok(msg)) = msg.filter(|m| !matches!(m, Ok(Message::Close(_)))) else {
                    end = SimEnd::ServerClosed;
                    break;
                };
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                if v["streamSid"] != call.stream_sid.as_str() {
                    continue;
                }
                match v["event"].as_str() {
                    Some("media") => {
                        let payload = v["media"]["payload"].as_str().unwrap_or("");
                        let Ok(bytes) = b64.decode(payload) else { report.odd_frames += 1; continue };
                        if bytes.len() != FRAME_SAMPLES {
                            report.odd_frames += 1;
                        }
                        report.frames_received += 1;
                        let pcm = mulaw::decode(&bytes);
                        let loud = measure::is_loud(&pcm);
                        loud_queued += usize::from(loud);
                        play.push_back(Play::Frame(pcm, loud));
                    }
                    Some("mark") => {
                        let name = v["mark"]["name"].as_str().unwrap_or("").to_string();
                        play.push_back(Play::Mark(name));
                    }
                    Some("clear") => {
                        report.clears.push(tick_n * 20);
                        for item in play.drain(..) {
                            if let Play::Mark(name) = item {
                                echo_mark(&mut tx, &call.stream_sid, &mut seq, &name).await?;
                                report.marks_echoed.push((name, tick_n * 20));
                            }
                        }
                        loud_queued = 0;
                        playing_since = None;
                        at_clause_boundary = true;
                    }
                    _ => {}
                }
            }
            _ = interval.tick() => {
                tick_n += 1;
                let now_ms = tick_n * 20;
                // Steps that take no time.
                while let Some(step) = steps.front() {
                    match step {
                        CallerStep::Turn(label) => turns.open(label),
                        CallerStep::Noise(level) => noise = level.map(LineNoise::new),
                        _ => break,
                    }
                    steps.pop_front();
                }
                // Caller side: one inbound frame per tick.
                let mut frame = silence.clone();
                let mut step_done = false;
                match steps.front() {
                    Some(CallerStep::Say(pcm)) => {
                        if say_pos == 0 {
                            report.caller_speech_starts.push(now_ms);
                        }
                        let first = say_pos == 0;
                        let label = if first { format!("line {}", report.caller_speech_starts.len()) } else { String::new() };
                        let end = (say_pos + FRAME_SAMPLES).min(pcm.len());
                        frame[..end - say_pos].copy_from_slice(&pcm[say_pos..end]);
                        // A clip's trailing quiet is not speech: a line ends at its last audible
                        // frame (judged before any line noise is mixed in), as a listener hears it.
                        let audible = measure::is_loud(&frame);
                        if first {
                            last_audible_ms = None;
                        }
                        if audible {
                            last_audible_ms = Some(now_ms);
                        }
                        turns.heard(&mut report.turns, &label, first, audible, now_ms);
                        say_pos = end;
                        if say_pos >= pcm.len() {
                            step_done = true;
                            report.caller_speech_ends.push(last_audible_ms.unwrap_or(now_ms));
                        }
                    }
                    Some(CallerStep::Silence(d)) => {
                        step_done = (tick_n - step_started_tick) * 20 >= d.as_millis() as u64;
                    }
                    Some(CallerStep::WaitForAgent { quiet, max }) => {
                        let waited = (tick_n - step_started_tick) * 20;
                        let quiet_for = last_loud_tick.map(|t| (tick_n - t) * 20).unwrap_or(0);
                        step_done = waited >= max.as_millis() as u64
                            || (agent_started_in_step && loud_queued == 0 && quiet_for >= quiet.as_millis() as u64);
                    }
                    Some(CallerStep::Over { after, max }) => {
                        if over_onset.is_none() {
                            over_onset = last_loud_tick.filter(|&t| t >= step_started_tick);
                        }
                        let waited = (tick_n - step_started_tick) * 20;
                        step_done = waited >= max.as_millis() as u64
                            || over_onset.is_some_and(|t| (tick_n - t) * 20 >= after.as_millis() as u64);
                    }
                    Some(CallerStep::Dtmf(d)) => {
                        seq += 1;
                        tx.send(send(json!({
                            "event": "dtmf", "streamSid": call.stream_sid, "sequenceNumber": seq.to_string(),
                            "dtmf": {"track": "inbound_track", "digit": d.to_string()}
                        }))).await.map_err(socket_error)?;
                        turns.heard(&mut report.turns, &format!("[key {d}]"), true, true, now_ms);
                        step_done = true;
                    }
                    Some(CallerStep::SendRaw(text)) => {
                        tx.send(Message::Text(text.clone().into())).await.map_err(socket_error)?;
                        step_done = true;
                    }
                    Some(CallerStep::SendBinary(bytes)) => {
                        tx.send(Message::Binary(bytes.clone().into())).await.map_err(socket_error)?;
                        step_done = true;
                    }
                    Some(CallerStep::Turn(_) | CallerStep::Noise(_)) => unreachable!("taken above"),
                    None => break,
                }
                if let Some(n) = noise.as_mut() {
                    n.mix_into(&mut frame);
                }
                send_media(&mut tx, call, &mut seq, now_ms, &frame).await?;
                report.caller_track.extend_from_slice(&frame);
                if step_done {
                    steps.pop_front();
                    say_pos = 0;
                    step_started_tick = tick_n;
                    agent_started_in_step = false;
                    over_onset = None;
                }
                // Twilio side: play one frame of agent audio per tick, echo marks once reached.
                while let Some(Play::Mark(_)) = play.front() {
                    at_clause_boundary = true;
                    if let Some(Play::Mark(name)) = play.pop_front() {
                        echo_mark(&mut tx, &call.stream_sid, &mut seq, &name).await?;
                        report.marks_echoed.push((name, now_ms));
                    }
                }
                match play.pop_front() {
                    Some(Play::Frame(pcm, loud)) => {
                        let continuing = playing_since.is_some() && last_played_tick == Some(tick_n - 1);
                        if !continuing {
                            report.heard.push(HeardSpeech { start_ms: now_ms, samples: Vec::new() });
                            playing_since = Some(tick_n);
                        }
                        at_clause_boundary = false;
                        report.agent_track.extend_from_slice(&pcm);
                        if let Some(h) = report.heard.last_mut() {
                            h.samples.extend(pcm);
                        }
                        last_played_tick = Some(tick_n);
                        if loud {
                            loud_queued -= 1;
                            last_loud_tick = Some(tick_n);
                            agent_started_in_step = true;
                        }
                    }
                    Some(Play::Mark(_)) => unreachable!("marks are drained above"),
                    None => {
                        report.agent_track.extend_from_slice(&silence);
                        if playing_since.is_some() && !at_clause_boundary {
                            report.late_frames += 1;
                        }
                        if playing_since.is_some() && last_played_tick == Some(tick_n - 1) {
                            // A gap right after audio: either the utterance ended or we starved.
                            playing_since = None;
                        }
                    }
                }
                while let Some(Play::Mark(_)) = play.front() {
                    at_clause_boundary = true;
                    if let Some(Play::Mark(name)) = play.pop_front() {
                        echo_mark(&mut tx, &call.stream_sid, &mut seq, &name).await?;
                        report.marks_echoed.push((name, now_ms));
                    }
                }
            }
        }
    }
    Ok::<SimEnd, SimError>(end)
    }
    .await;
    let end = match ended {
        Ok(end) => end,
        Err(SimError::Closed) => SimEnd::ServerClosed,
        Err(e) => return Err(e),
    };
    seq += 1;
    let _ = tx
        .send(send(json!({
            "event": "stop", "sequenceNumber": seq.to_string(), "streamSid": call.stream_sid,
            "stop": {"accountSid": call.account_sid, "callSid": call.call_sid}
        })))
        .await;
    let _ = tx.close().await;
    report.underruns = count_underruns(&report);
    Ok((report, end))
}

/// Which turn the caller is in, for [`SimReport::turns`].
#[derive(Default)]
struct Turns {
    /// A `Turn` step was seen: turns are what the steps say, not one per line.
    marked: bool,
    /// The label of a turn opened but not heard yet.
    pending: Option<String>,
}

impl Turns {
    fn open(&mut self, label: &str) {
        self.marked = true;
        self.pending = Some(label.to_string());
    }

    /// The caller sent audio or a key at `now_ms`; `first` when it starts a line or is a key
    /// (an unmarked turn, labelled `what`); the turn ends at its last `audible` frame.
    fn heard(
        &mut self,
        turns: &mut Vec<TurnSpan>,
        what: &str,
        first: bool,
        audible: bool,
        now_ms: u64,
    ) {
        let label = match self.pending.take() {
            Some(label) => Some(label),
            None if !self.marked && first => Some(what.to_string()),
            None => None,
        };
        if let Some(label) = label {
            turns.push(TurnSpan {
                label,
                start_ms: now_ms,
                end_ms: now_ms,
            });
        }
        if let Some(t) = turns.last_mut().filter(|_| audible) {
            t.end_ms = now_ms;
        }
    }
}

/// Gaps shorter than 200 ms between heard stretches are starvation, not turn boundaries.
fn count_underruns(report: &SimReport) -> u64 {
    report
        .heard
        .windows(2)
        .filter(|w| {
            let end = w[0].start_ms + (w[0].samples.len() as u64) / 8;
            w[1].start_ms.saturating_sub(end) < 200
        })
        .count() as u64
}

type WsSink = futures::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

async fn send_media(
    tx: &mut WsSink,
    call: &SimCall,
    seq: &mut u64,
    now_ms: u64,
    pcm: &[i16],
) -> Result<(), SimError> {
    *seq += 1;
    let payload = base64::engine::general_purpose::STANDARD.encode(mulaw::encode(pcm));
    let v = json!({
        "event": "media", "sequenceNumber": seq.to_string(),
        "media": {"track": "inbound", "chunk": (now_ms / 20).to_string(), "timestamp": now_ms.to_string(), "payload": payload},
        "streamSid": call.stream_sid,
    });
    tx.send(Message::Text(v.to_string().into()))
        .await
        .map_err(socket_error)
}

async fn echo_mark(
    tx: &mut WsSink,
    stream_sid: &str,
    seq: &mut u64,
    name: &str,
) -> Result<(), SimError> {
    *seq += 1;
    let v = json!({"event": "mark", "sequenceNumber": seq.to_string(), "streamSid": stream_sid, "mark": {"name": name}});
    tx.send(Message::Text(v.to_string().into()))
        .await
        .map_err(socket_error)
}

#[cfg(test)]
mod tests;
