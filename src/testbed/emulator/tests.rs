//! The emulator against a small stub of our server: an axum app that answers the voice webhook
//! with `<Connect><Stream>` + `<Hangup/>`, records (and signature-checks) every webhook, and runs
//! a minimal media WebSocket. No models: the callee's voice is a fake TTS tone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use futures::future::BoxFuture;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::engine::{EngineError, SpeechAudio, TextToSpeech};
use crate::twilio::{signature, twiml};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "f00dfacecafebabe0123456789abcdef";
const TO: &str = "+15550000001";
const FROM: &str = "+15559999999";

/// 300 ms of a 300 Hz tone at 16 kHz, whatever the text.
struct ToneTts;

impl TextToSpeech for ToneTts {
    fn synthesize(
        &self,
        _clause: String,
        _cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<SpeechAudio, EngineError>> {
        Box::pin(async {
            let samples = (0..4800)
                .map(|i| 0.4 * (2.0 * std::f32::consts::PI * 300.0 * i as f32 / 16000.0).sin())
                .collect();
            Ok(SpeechAudio {
                samples,
                sample_rate: 16000,
                elapsed: Duration::ZERO,
            })
        })
    }
    fn sample_rate(&self) -> u32 {
        16000
    }
}

/// How the stub's media WebSocket behaves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MediaMode {
    /// Plays 200 ms of audio and a mark, waits for the mark's echo, closes.
    SpeakAndClose,
    /// Plays 200 ms of audio and a mark, then keeps listening until the caller side ends.
    HoldOpen,
}

#[derive(Debug, Clone)]
struct Hook {
    path: String,
    params: Vec<(String, String)>,
    signature_ok: bool,
}

impl Hook {
    fn param(&self, name: &str) -> Option<&str> {
        first(&self.params, name)
    }
}

#[derive(Debug, Clone, Default)]
struct MediaSeen {
    call_sid: String,
    custom: HashMap<String, String>,
    /// Inbound frames that were not silence (the callee speaking).
    loud_frames: usize,
    got_stop: bool,
}

#[derive(Clone)]
struct StubState {
    base: String,
    mode: MediaMode,
    /// TwiML for the voice webhook; `None`: connect a stream then hang up.
    twiml: Option<String>,
    hooks: Arc<Mutex<Vec<Hook>>>,
    media: Arc<Mutex<Vec<MediaSeen>>>,
}

struct Stub {
    base: String,
    hooks: Arc<Mutex<Vec<Hook>>>,
    media: Arc<Mutex<Vec<MediaSeen>>>,
}

impl Stub {
    async fn start(mode: MediaMode, twiml: Option<&str>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = StubState {
            base: base.clone(),
            mode,
            twiml: twiml.map(str::to_string),
            hooks: Arc::default(),
            media: Arc::default(),
        };
        let app = Router::new()
            .route("/voice", post(stub_hook))
            .route("/status", post(stub_hook))
            .route("/amd", post(stub_hook))
            .route("/media", get(stub_media))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base,
            hooks: state.hooks,
            media: state.media,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hooks(&self, path: &str) -> Vec<Hook> {
        self.hooks
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    fn media(&self) -> Vec<MediaSeen> {
        self.media.lock().unwrap().clone()
    }
}

async fn stub_hook(
    State(st): State<StubState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let sig = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let path = uri.path().to_string();
    let signature_ok = signature::validate(TOKEN, &format!("{}{path}", st.base), &params, sig);
    st.hooks.lock().unwrap().push(Hook {
        path: path.clone(),
        params,
        signature_ok,
    });
    if path == "/voice" {
        let doc = st.twiml.clone().unwrap_or_else(|| {
            let ws = format!("{}/media", st.base.replace("http://", "ws://"));
            twiml::connect_stream(&ws, &[("lead_id".into(), "42".into())], true)
        });
        ([("content-type", "text/xml")], doc).into_response()
    } else {
        axum::http::StatusCode::NO_CONTENT.into_response()
    }
}

async fn stub_media(State(st): State<StubState>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| media_session(socket, st))
}

async fn media_session(mut socket: WebSocket, st: StubState) {
    let idx = {
        let mut m = st.media.lock().unwrap();
        m.push(MediaSeen::default());
        m.len() - 1
    };
    let update = |f: &dyn Fn(&mut MediaSeen)| f(&mut st.media.lock().unwrap()[idx]);
    let mut stream_sid = String::new();
    while let Some(Ok(msg)) = socket.recv().await {
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(&t).unwrap_or_default();
        if v["event"] == "start" {
            stream_sid = v["streamSid"].as_str().unwrap_or("").to_string();
            let call_sid = v["start"]["callSid"].as_str().unwrap_or("").to_string();
            let custom: HashMap<String, String> =
                serde_json::from_value(v["start"]["customParameters"].clone()).unwrap_or_default();
            update(&|m| {
                m.call_sid = call_sid.clone();
                m.custom = custom.clone();
            });
            break;
        }
    }
    // 200 ms of agent speech, then a mark.
    let b64 = base64::engine::general_purpose::STANDARD;
    for n in 0..10 {
        let pcm: Vec<i16> = (0..160)
            .map(|i| {
                (8000.0
                    * (2.0 * std::f32::consts::PI * 440.0 * (n * 160 + i) as f32 / 8000.0).sin())
                    as i16
            })
            .collect();
        let payload = b64.encode(crate::audio::mulaw::encode(&pcm));
        let msg = json!({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}});
        if socket
            .send(Message::Text(msg.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
    }
    let mark = json!({"event": "mark", "streamSid": stream_sid, "mark": {"name": "m1"}});
    let _ = socket.send(Message::Text(mark.to_string().into())).await;
    while let Some(Ok(msg)) = socket.recv().await {
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(&t).unwrap_or_default();
        match v["event"].as_str() {
            Some("mark") if st.mode == MediaMode::SpeakAndClose => break,
            Some("media") => {
                let bytes = b64
                    .decode(v["media"]["payload"].as_str().unwrap_or(""))
                    .unwrap_or_default();
                let loud = crate::audio::mulaw::decode(&bytes)
                    .iter()
                    .any(|s| s.unsigned_abs() > 1000);
                if loud {
                    update(&|m| m.loud_frames += 1);
                }
            }
            Some("stop") => update(&|m| m.got_stop = true),
            _ => {}
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

fn config(personas: &[(&str, Persona)]) -> EmulatorConfig {
    let mut cfg = EmulatorConfig::new(ACCOUNT, TOKEN);
    cfg.ring = Duration::from_millis(200);
    cfg.tts = Some(Arc::new(ToneTts));
    cfg.personas = personas
        .iter()
        .map(|(to, p)| (to.to_string(), p.clone()))
        .collect();
    cfg
}

async fn emulator(personas: &[(&str, Persona)]) -> RunningEmulator {
    RunningEmulator::start(config(personas), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn calls_url(emu: &RunningEmulator) -> String {
    format!(
        "{}/2010-04-01/Accounts/{ACCOUNT}/Calls.json",
        emu.base_url()
    )
}

fn call_url(emu: &RunningEmulator, sid: &str) -> String {
    format!(
        "{}/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json",
        emu.base_url()
    )
}

async fn answer(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn post_form(url: &str, user: &str, pass: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(url)
        .basic_auth(user, Some(pass))
        .form(form)
        .send()
        .await
        .unwrap();
    answer(resp).await
}

async fn get_json(url: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(url)
        .basic_auth(ACCOUNT, Some(TOKEN))
        .send()
        .await
        .unwrap();
    answer(resp).await
}

async fn create(emu: &RunningEmulator, form: &[(&str, &str)]) -> (u16, Value) {
    post_form(&calls_url(emu), ACCOUNT, TOKEN, form).await
}

/// A create with a voice URL and a status callback for all four events.
async fn create_full(
    emu: &RunningEmulator,
    stub: &Stub,
    to: &str,
    extra: &[(&str, &str)],
) -> String {
    let (voice, status) = (stub.url("/voice"), stub.url("/status"));
    let mut form = vec![
        ("To", to),
        ("From", FROM),
        ("Url", voice.as_str()),
        ("StatusCallback", status.as_str()),
        ("StatusCallbackEvent", "initiated"),
        ("StatusCallbackEvent", "ringing"),
        ("StatusCallbackEvent", "answered"),
        ("StatusCallbackEvent", "completed"),
    ];
    form.extend_from_slice(extra);
    let (code, body) = create(emu, &form).await;
    assert_eq!(code, 201, "{body}");
    body["sid"].as_str().unwrap().to_string()
}

fn assert_twilio_error(body: &Value, status: u16, code: u64) {
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(
        body["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}"),
        "{body}"
    );
}

#[tokio::test]
async fn human_call_runs_the_whole_lifecycle() {
    let stub = Stub::start(MediaMode::HoldOpen, None).await;
    let human = Persona::Human {
        lines: vec![CallerLine::Say("Hello?".into()), CallerLine::HangUp],
    };
    let emu = emulator(&[(TO, human)]).await;
    let (voice, status) = (stub.url("/voice"), stub.url("/status"));
    let (code, body) = create(
        &emu,
        &[
            ("To", TO),
            ("From", FROM),
            ("Url", &voice),
            ("StatusCallback", &status),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
        ],
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let sid = body["sid"].as_str().unwrap().to_string();
    assert!(sid.starts_with("CA") && sid.len() == 34, "{sid}");
    assert_eq!(body["account_sid"], ACCOUNT);
    assert_eq!(body["to"], TO);
    assert_eq!(body["from"], FROM);
    assert_eq!(body["status"], "queued");
    assert_eq!(body["direction"], "outbound-api");
    assert_eq!(body["api_version"], "2010-04-01");
    assert!(body["answered_by"].is_null() && body["duration"].is_null());
    assert_eq!(
        body["uri"],
        format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json")
    );
    chrono::DateTime::parse_from_rfc2822(body["date_created"].as_str().unwrap()).unwrap();

    assert!(emu.wait_idle(Duration::from_secs(15)).await);
    let call = emu.call(&sid).unwrap();
    assert_eq!(call.status, "completed");
    assert_eq!(call.hung_up_by.as_deref(), Some("caller"), "{call:?}");
    assert_eq!(
        call.status_events(),
        ["initiated", "ringing", "in-progress", "completed"]
    );
    assert!(call.twiml.as_deref().unwrap().contains("<Connect>"));
    assert!(call.error.is_none(), "{:?}", call.error);
    assert!(call
        .callbacks
        .iter()
        .all(|c| c.status.is_some_and(|s| s < 300)));

    // Our server's view: in order, numbered, signed.
    let status_hooks = stub.hooks("/status");
    assert_eq!(status_hooks.len(), 4);
    for (i, h) in status_hooks.iter().enumerate() {
        assert!(h.signature_ok, "{h:?}");
        assert_eq!(h.param("SequenceNumber"), Some(i.to_string().as_str()));
        assert_eq!(h.param("CallSid"), Some(sid.as_str()));
        assert_eq!(h.param("AccountSid"), Some(ACCOUNT));
        assert_eq!(h.param("To"), Some(TO));
        assert_eq!(h.param("From"), Some(FROM));
        assert_eq!(h.param("Direction"), Some("outbound-api"));
        assert_eq!(h.param("ApiVersion"), Some("2010-04-01"));
        assert_eq!(h.param("CallbackSource"), Some("call-progress-events"));
        chrono::DateTime::parse_from_rfc2822(h.param("Timestamp").unwrap()).unwrap();
        assert!(h.param("AnsweredBy").is_none());
    }
    let last = &status_hooks[3];
    assert_eq!(last.param("CallStatus"), Some("completed"));
    assert!(last.param("CallDuration").unwrap().parse::<u64>().unwrap() >= 1);
    assert!(status_hooks[..3]
        .iter()
        .all(|h| h.param("CallDuration").is_none()));

    let voice_hooks = stub.hooks("/voice");
    assert_eq!(voice_hooks.len(), 1);
    assert!(voice_hooks[0].signature_ok);
    assert_eq!(voice_hooks[0].param("CallStatus"), Some("in-progress"));
    assert!(voice_hooks[0].param("AnsweredBy").is_none());

    // The media leg: our parameters arrived, the callee heard the agent and spoke.
    let media = stub.media();
    assert_eq!(media.len(), 1);
    assert_eq!(media[0].call_sid, sid);
    assert_eq!(
        media[0].custom.get("lead_id").map(String::as_str),
        Some("42")
    );
    assert!(media[0].loud_frames >= 10, "{:?}", media[0]);
    assert!(media[0].got_stop);
    let report = call.media.unwrap();
    assert_eq!(report.frames_received, 10);
    assert_eq!(report.marks_echoed.len(), 1);
    assert_eq!(report.caller_speech_ends.len(), 1);
    // The callee spoke only after the agent went quiet.
    assert!(report.caller_speech_starts[0] >= report.heard[0].start_ms + 200 + 800);

    let (code, fetched) = get_json(&call_url(&emu, &sid)).await;
    assert_eq!(code, 200);
    assert_eq!(fetched["status"], "completed");
    assert!(fetched["duration"].as_str().is_some());
    assert!(fetched["end_time"].as_str().is_some());
    emu.shutdown();
}

#[tokio::test]
async fn server_closing_the_stream_runs_the_hangup_after_connect() {
    let stub = Stub::start(MediaMode::SpeakAndClose, None).await;
    let emu = emulator(&[]).await;
    let (voice, status) = (stub.url("/voice"), stub.url("/status"));
    // No StatusCallbackEvent: Twilio still sends `completed`.
    let (code, body) = create(
        &emu,
        &[
            ("To", TO),
            ("From", FROM),
            ("Url", &voice),
            ("StatusCallback", &status),
        ],
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert!(emu.wait_idle(Duration::from_secs(10)).await);
    let call = &emu.calls()[0];
    assert_eq!(call.hung_up_by.as_deref(), Some("stream-closed"));
    assert_eq!(call.status, "completed");
    assert_eq!(call.status_events(), ["completed"]);
    let hooks = stub.hooks("/status");
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].param("SequenceNumber"), Some("0"));
    assert!(hooks[0].signature_ok);
    let report = call.media.as_ref().unwrap();
    assert_eq!(report.marks_echoed[0].0, "m1");
    assert_eq!(report.heard.len(), 1);
}

#[tokio::test]
async fn unanswered_calls_end_busy_no_answer_or_failed() {
    let stub = Stub::start(MediaMode::SpeakAndClose, None).await;
    let emu = emulator(&[
        ("+15550000002", Persona::Busy),
        ("+15550000003", Persona::NoAnswer),
        ("+15550000004", Persona::Failed),
    ])
    .await;
    let mut sids = Vec::new();
    for to in ["+15550000002", "+15550000003", "+15550000004"] {
        sids.push(create_full(&emu, &stub, to, &[]).await);
    }
    assert!(emu.wait_idle(Duration::from_secs(10)).await);
    let expect = [
        ("busy", vec!["initiated", "ringing", "busy"]),
        ("no-answer", vec!["initiated", "ringing", "no-answer"]),
        ("failed", vec!["initiated", "failed"]),
    ];
    for (sid, (status, events)) in sids.iter().zip(expect) {
        let call = emu.call(sid).unwrap();
        assert_eq!(call.status, status);
        assert_eq!(call.status_events(), events);
        assert!(call.hung_up_by.is_none() && call.media.is_none() && call.twiml.is_none());
        let last = call.callbacks.last().unwrap();
        assert_eq!(last.param("CallDuration"), Some("0"));
        let (_, fetched) = get_json(&call_url(&emu, sid)).await;
        assert_eq!(fetched["status"], status);
        assert_eq!(fetched["duration"], "0");
    }
    assert!(stub.hooks("/voice").is_empty());
    assert!(stub.hooks("/status").iter().all(|h| h.signature_ok));
}

#[tokio::test]
async fn sync_amd_answers_human_machine_and_fax() {
    let stub = Stub::start(MediaMode::SpeakAndClose, None).await;
    let machine = Persona::Machine {
        greeting: "Leave a message after the beep".into(),
    };
    let emu = emulator(&[
        ("+15550000011", Persona::Human { lines: vec![] }),
        ("+15550000012", machine.clone()),
        ("+15550000013", Persona::Fax),
        ("+15550000014", machine),
    ])
    .await;
    let cases = [
        ("+15550000011", "DetectMessageEnd", "human"),
        ("+15550000012", "DetectMessageEnd", "machine_end_beep"),
        ("+15550000013", "DetectMessageEnd", "fax"),
        ("+15550000014", "Enable", "machine_start"),
    ];
    let mut sids = Vec::new();
    for (to, mode, _) in cases {
        sids.push(create_full(&emu, &stub, to, &[("MachineDetection", mode)]).await);
    }
    assert!(emu.wait_idle(Duration::from_secs(30)).await);
    let voice = stub.hooks("/voice");
    for (sid, (_, _, want)) in sids.iter().zip(cases) {
        let call = emu.call(sid).unwrap();
        assert_eq!(call.answered_by.as_deref(), Some(want));
        let hook = voice
            .iter()
            .find(|h| h.param("CallSid") == Some(sid.as_str()))
            .unwrap();
        assert_eq!(hook.param("AnsweredBy"), Some(want));
        assert!(hook.signature_ok);
        let completed = call.callbacks.last().unwrap();
        assert_eq!(completed.param("CallStatus"), Some("completed"));
        assert_eq!(completed.param("AnsweredBy"), Some(want));
        let (_, fetched) = get_json(&call_url(&emu, sid)).await;
        assert_eq!(fetched["answered_by"], want);
    }
    // After the beep the voicemail recorded the agent's 200 ms.
    let voicemail = emu.call(&sids[1]).unwrap().media.unwrap();
    assert_eq!(voicemail.heard.len(), 1);
    assert_eq!(voicemail.heard[0].samples.len(), 1600);
    // machine_start: the greeting and beep still played on the stream; what overlapped them
    // was not recorded.
    // (Our stub closes after 200 ms, before the 800 ms greeting + beep end.)
    let early = emu.call(&sids[3]).unwrap().media.unwrap();
    assert_eq!(early.caller_speech_starts.len(), 1);
    assert!(early.caller_speech_ends.is_empty());
    assert!(early.heard.is_empty());
    assert_eq!(early.frames_received, 10);
}

#[tokio::test]
async fn async_amd_posts_its_own_callback() {
    let stub = Stub::start(MediaMode::HoldOpen, None).await;
    let human = Persona::Human {
        lines: vec![
            CallerLine::Silence(Duration::from_millis(1500)),
            CallerLine::HangUp,
        ],
    };
    let emu = emulator(&[(TO, human)]).await;
    let amd = stub.url("/amd");
    let sid = create_full(
        &emu,
        &stub,
        TO,
        &[
            ("MachineDetection", "Enable"),
            ("AsyncAmd", "true"),
            ("AsyncAmdStatusCallback", &amd),
        ],
    )
    .await;
    assert!(emu.wait_idle(Duration::from_secs(10)).await);
    let voice = stub.hooks("/voice");
    assert!(voice[0].param("AnsweredBy").is_none());
    let amd_hooks = stub.hooks("/amd");
    assert_eq!(amd_hooks.len(), 1);
    let h = &amd_hooks[0];
    assert!(h.signature_ok);
    assert_eq!(h.param("CallSid"), Some(sid.as_str()));
    assert_eq!(h.param("AccountSid"), Some(ACCOUNT));
    assert_eq!(h.param("AnsweredBy"), Some("human"));
    assert!(
        h.param("MachineDetectionDuration")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 900
    );
    let call = emu.call(&sid).unwrap();
    assert_eq!(call.answered_by.as_deref(), Some("human"));
    assert_eq!(call.hung_up_by.as_deref(), Some("caller"));
    let kinds: Vec<WebhookKind> = call.callbacks.iter().map(|c| c.kind).collect();
    assert_eq!(kinds.last(), Some(&WebhookKind::Status));
    assert!(kinds.contains(&WebhookKind::AsyncAmd));
}

#[tokio::test]
async fn faults_fail_creates_and_listing_finds_the_ambiguous_call() {
    let emu = emulator(&[]).await;
    let twiml = "<Response><Hangup/></Response>";
    let form = |to: &'static str| [("To", to), ("From", FROM), ("Twiml", twiml)];
    emu.inject(vec![
        Fault::RateLimited,
        Fault::ServerErrorBeforeCreate,
        Fault::ServerErrorAfterCreate,
    ]);
    let (code, body) = create(&emu, &form("+15550000021")).await;
    assert_eq!(code, 429);
    assert_twilio_error(&body, 429, 20429);
    let (code, body) = create(&emu, &form("+15550000022")).await;
    assert_eq!(code, 500);
    assert_eq!(body["status"], 500);
    let (code, _) = create(&emu, &form("+15550000023")).await;
    assert_eq!(code, 500);
    // The CLI's route queues faults too.
    let resp = reqwest::Client::new()
        .post(format!("{}/_emulator/faults", emu.base_url()))
        .body(r#"["RateLimited"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (code, _) = create(&emu, &form("+15550000024")).await;
    assert_eq!(code, 429);
    let (code, _) = create(&emu, &form("+15550000025")).await;
    assert_eq!(code, 201);
    assert_eq!(
        emu.create_requests(),
        [
            ("+15550000021".to_string(), 429),
            ("+15550000022".to_string(), 500),
            ("+15550000023".to_string(), 500),
            ("+15550000024".to_string(), 429),
            ("+15550000025".to_string(), 201),
        ]
    );
    let calls = emu.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].to, "+15550000023");

    // The client resolves the ambiguous 500 by listing.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let url = format!(
        "{}?To=%2B15550000023&StartTime%3E%3D={today}",
        calls_url(&emu)
    );
    let (code, list) = get_json(&url).await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["calls"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["calls"][0]["sid"], calls[0].sid.as_str());
    assert_eq!(list["page"], 0);
    assert_eq!(list["page_size"], 50);
    assert!(list["next_page_uri"].is_null());
    assert!(list["first_page_uri"].as_str().is_some());
    // An unencoded `StartTime>=` works too; a future date finds nothing.
    let (_, list) = get_json(&format!("{}?StartTime>=2999-01-01", calls_url(&emu))).await;
    assert_eq!(list["calls"].as_array().unwrap().len(), 0, "{list}");
    let (_, list) = get_json(&calls_url(&emu)).await;
    assert_eq!(list["calls"].as_array().unwrap().len(), 2);
    // Newest first.
    assert_eq!(list["calls"][0]["to"], "+15550000025");

    assert!(emu.wait_idle(Duration::from_secs(10)).await);
    let (_, list) = get_json(&format!("{}?Status=completed", calls_url(&emu))).await;
    assert_eq!(list["calls"].as_array().unwrap().len(), 2);
    assert!(emu
        .calls()
        .iter()
        .all(|c| c.hung_up_by.as_deref() == Some("twiml")));
    let (code, summary) = get_json(&format!("{}/_emulator/calls", emu.base_url())).await;
    assert_eq!(code, 200);
    assert_eq!(summary["calls"].as_array().unwrap().len(), 2, "{summary}");
    assert_eq!(summary["create_requests"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn rest_hangup_ends_the_media_leg() {
    let stub = Stub::start(MediaMode::HoldOpen, None).await;
    let patient = Persona::Human {
        lines: vec![CallerLine::Silence(Duration::from_secs(30))],
    };
    let emu = emulator(&[(TO, patient)]).await;
    let sid = create_full(&emu, &stub, TO, &[]).await;
    // Wait for the stream to be up.
    for _ in 0..200 {
        if !stub.media().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stub.media().len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, body) = post_form(
        &call_url(&emu, &sid),
        ACCOUNT,
        TOKEN,
        &[("Status", "completed")],
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "completed");
    assert!(emu.wait_idle(Duration::from_secs(5)).await);
    let call = emu.call(&sid).unwrap();
    assert_eq!(call.hung_up_by.as_deref(), Some("api"));
    assert_eq!(
        call.status_events().last().map(String::as_str),
        Some("completed")
    );
    assert_eq!(call.status_events().len(), 4);
    assert!(call.media.is_some());
    // Twilio sent `stop` on the stream.
    for _ in 0..100 {
        if stub.media()[0].got_stop {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stub.media()[0].got_stop);

    // Updating an ended call, and an unknown one.
    let (code, body) = post_form(
        &call_url(&emu, &sid),
        ACCOUNT,
        TOKEN,
        &[("Status", "completed")],
    )
    .await;
    assert_eq!(code, 400);
    assert_twilio_error(&body, 400, 21220);
    let unknown = format!("CA{}", "0".repeat(32));
    let (code, body) = post_form(
        &call_url(&emu, &unknown),
        ACCOUNT,
        TOKEN,
        &[("Status", "completed")],
    )
    .await;
    assert_eq!(code, 404);
    assert_twilio_error(&body, 404, 20404);
    let (code, body) = get_json(&call_url(&emu, &unknown)).await;
    assert_eq!(code, 404);
    assert_twilio_error(&body, 404, 20404);
}

#[tokio::test]
async fn canceling_a_ringing_call() {
    let stub = Stub::start(MediaMode::SpeakAndClose, None).await;
    let emu = emulator(&[]).await;
    let sid = create_full(&emu, &stub, TO, &[]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (code, body) = post_form(
        &call_url(&emu, &sid),
        ACCOUNT,
        TOKEN,
        &[("Status", "canceled")],
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "canceled");
    assert!(emu.wait_idle(Duration::from_secs(5)).await);
    let call = emu.call(&sid).unwrap();
    assert_eq!(call.hung_up_by.as_deref(), Some("api"));
    assert_eq!(
        call.status_events().last().map(String::as_str),
        Some("canceled")
    );
    assert!(stub.hooks("/voice").is_empty());
}

#[tokio::test]
async fn redirect_replaces_the_running_twiml() {
    let stub = Stub::start(MediaMode::HoldOpen, None).await;
    let patient = Persona::Human {
        lines: vec![CallerLine::Silence(Duration::from_secs(30))],
    };
    let emu = emulator(&[(TO, patient)]).await;
    let sid = create_full(&emu, &stub, TO, &[]).await;
    for _ in 0..200 {
        if !stub.media().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let twiml = "<Response><Say>Transferring you now</Say><Hangup/></Response>";
    let (code, body) = post_form(&call_url(&emu, &sid), ACCOUNT, TOKEN, &[("Twiml", twiml)]).await;
    assert_eq!(code, 200, "{body}");
    assert!(emu.wait_idle(Duration::from_secs(5)).await);
    let call = emu.call(&sid).unwrap();
    assert_eq!(call.said, ["Transferring you now"]);
    assert_eq!(call.twiml.as_deref(), Some(twiml));
    assert_eq!(call.hung_up_by.as_deref(), Some("twiml"));
}

#[tokio::test]
async fn auth_and_validation_errors_have_twilio_shapes() {
    let emu = emulator(&[]).await;
    let form = [("To", TO), ("From", FROM), ("Twiml", "<Response/>")];
    let (code, body) = post_form(&calls_url(&emu), ACCOUNT, "wrong", &form).await;
    assert_eq!(code, 401);
    assert_twilio_error(&body, 401, 20003);
    let other = format!(
        "{}/2010-04-01/Accounts/AC{}/Calls.json",
        emu.base_url(),
        "1".repeat(32)
    );
    let (code, body) = post_form(&other, ACCOUNT, TOKEN, &form).await;
    assert_eq!(code, 401);
    assert_twilio_error(&body, 401, 20003);
    let resp = reqwest::Client::new()
        .post(calls_url(&emu))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    let (code, _) = get_json(&format!("{}/nowhere", emu.base_url())).await;
    assert_eq!(code, 404);

    // An API key works as the user with the token as its secret.
    let (code, body) = post_form(&calls_url(&emu), "SK0123", TOKEN, &form).await;
    assert_eq!(code, 201, "{body}");

    let cases: [(&[(&str, &str)], u64); 4] = [
        (&[("From", FROM), ("Twiml", "<Response/>")], 21201),
        (
            &[("To", "555-1234"), ("From", FROM), ("Twiml", "<Response/>")],
            21211,
        ),
        (&[("To", TO), ("Twiml", "<Response/>")], 21213),
        (&[("To", TO), ("From", FROM)], 21205),
    ];
    for (form, want) in cases {
        let (code, body) = create(&emu, form).await;
        assert_eq!(code, 400, "{body}");
        assert_twilio_error(&body, 400, want);
    }
    let (code, _) = create(&emu, &[("To", TO), ("From", FROM), ("Url", "ftp://x/y")]).await;
    assert_eq!(code, 400);
    // Garbage in the body is a validation error, never a crash.
    let resp = reqwest::Client::new()
        .post(calls_url(&emu))
        .basic_auth(ACCOUNT, Some(TOKEN))
        .body(vec![0xff, 0xfe, b'&', b'=', b'%'])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(emu.calls().len(), 1);
}

#[tokio::test]
async fn start_refuses_say_lines_without_tts() {
    let mut cfg = config(&[(
        TO,
        Persona::Human {
            lines: vec![CallerLine::Say("hi".into())],
        },
    )]);
    cfg.tts = None;
    let err = RunningEmulator::start(cfg, "127.0.0.1:0".parse().unwrap()).await;
    assert!(matches!(err, Err(EmulatorError::Config(_))));
    let mut cfg = config(&[]);
    cfg.account_sid = "ACnope".into();
    let err = RunningEmulator::start(cfg, "127.0.0.1:0".parse().unwrap()).await;
    assert!(matches!(err, Err(EmulatorError::Config(_))));
}

/// Our own REST client against the emulator: a 429 is retried, and an ambiguous 500 is resolved
/// by listing instead of placing a second call.
#[tokio::test]
async fn our_rest_client_survives_faults_without_duplicate_calls() {
    use crate::twilio_rest::{CreateCall, RetryPolicy, TwilioAuth, TwilioClient};
    let stub = Stub::start(
        MediaMode::SpeakAndClose,
        Some("<Response><Hangup/></Response>"),
    )
    .await;
    let emu = emulator(&[]).await;
    let client = TwilioClient::new(
        &emu.base_url(),
        ACCOUNT,
        TwilioAuth::AuthToken(TOKEN.into()),
    )
    .unwrap()
    .with_retry(RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    });
    emu.inject(vec![Fault::RateLimited, Fault::ServerErrorAfterCreate]);
    let req = CreateCall {
        to: TO.into(),
        from: FROM.into(),
        url: stub.url("/voice"),
        status_callback: Some(stub.url("/status")),
        ..Default::default()
    };
    let call = client.create_call(&req).await.unwrap();
    let statuses: Vec<u16> = emu.create_requests().iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses, [429, 500]);
    assert_eq!(emu.calls().len(), 1);
    assert_eq!(call.sid, emu.calls()[0].sid);
    assert!(emu.wait_idle(Duration::from_secs(10)).await);
    let fetched = client.fetch_call(&call.sid).await.unwrap();
    assert_eq!(fetched.status, "completed");
    assert!(fetched.duration.unwrap().parse::<u64>().unwrap() <= 1);
    // All four default events arrived, signed and numbered.
    let hooks = stub.hooks("/status");
    assert_eq!(hooks.len(), 4);
    assert!(hooks.iter().all(|h| h.signature_ok));
    // Hanging up a call Twilio never had is "already gone".
    client
        .hang_up(&format!("CA{}", "0".repeat(32)))
        .await
        .unwrap();
}

#[tokio::test]
async fn time_limit_ends_a_long_call() {
    let stub = Stub::start(MediaMode::HoldOpen, None).await;
    let patient = Persona::Human {
        lines: vec![CallerLine::Silence(Duration::from_secs(30))],
    };
    let emu = emulator(&[(TO, patient)]).await;
    let sid = create_full(&emu, &stub, TO, &[("TimeLimit", "1")]).await;
    assert!(emu.wait_idle(Duration::from_secs(5)).await);
    let call = emu.call(&sid).unwrap();
    assert_eq!(call.hung_up_by.as_deref(), Some("time-limit"));
    assert_eq!(call.status, "completed");
    assert!(call.media.is_some());
    assert_eq!(
        call.callbacks.last().unwrap().param("CallDuration"),
        Some("1")
    );
}

#[test]
fn a_number_answers_each_call_as_its_next_persona() {
    let s = super::scenario::Scenario::from_toml(
        "t.toml",
        r#"
[numbers."+14155550107"]
kind = "human"
lines = ["Call me back tomorrow at ten."]
[numbers."+14155550107".then]
kind = "human"
lines = ["Yes, go ahead."]
[numbers."+14155550107".then.then]
kind = "busy"
"#,
    )
    .unwrap();
    let c = EmulatorConfig::from_scenario("AC1", "t", &s);
    let lines = |p: Persona| match p {
        Persona::Human { lines } => lines,
        other => panic!("{other:?}"),
    };
    let n = "+14155550107";
    assert_eq!(
        lines(c.persona_for(n, 0)),
        [CallerLine::Say("Call me back tomorrow at ten.".into())]
    );
    assert_eq!(
        lines(c.persona_for(n, 1)),
        [CallerLine::Say("Yes, go ahead.".into())]
    );
    assert!(matches!(c.persona_for(n, 2), Persona::Busy));
    assert!(matches!(c.persona_for(n, 5), Persona::Busy));
    // Other numbers: the default, every time.
    assert!(matches!(
        c.persona_for("+14155550999", 3),
        Persona::Human { .. }
    ));
}
