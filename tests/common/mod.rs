//! Shared test helpers: fake engines for logic tests, a server on 127.0.0.1:0, caller speech.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use telemarketer::app::{AppBuilder, LocalApp};
use telemarketer::config::{Config, RawConfig, Secrets};
use telemarketer::engine::{
    EngineError, GenerateRequest, LanguageModel, LlmEvent, SpeechAudio, SpeechToText, StopReason,
    TextToSpeech, Transcript,
};
use telemarketer::model::ChatMessage;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// STT fake: returns the next scripted transcript for each utterance (`"[after 1500ms] text"`:
/// that long to transcribe, like a loaded machine).
pub struct FakeStt(pub Mutex<Vec<String>>);

impl SpeechToText for FakeStt {
    fn transcribe(&self, audio: Vec<f32>) -> BoxFuture<'static, Result<Transcript, EngineError>> {
        let mut lines = self.0.lock().unwrap();
        let text = if audio.is_empty() || lines.is_empty() {
            String::new()
        } else {
            lines.remove(0)
        };
        let (delay, text) = match text
            .strip_prefix("[after ")
            .and_then(|r| r.split_once("ms] "))
        {
            Some((ms, rest)) => (ms.parse().unwrap_or(0), rest.to_string()),
            None => (0, text),
        };
        async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            Ok(Transcript {
                text,
                elapsed: Duration::from_millis(5),
                confidence: 1.0,
            })
        }
        .boxed()
    }
}

/// LLM fake: streams scripted replies (the last one repeats) word by word and records the
/// prompts it saw. A request for no tokens (a KV-cache warm-up) is answered at once and not
/// recorded: it asks for no reply.
pub struct FakeLlm {
    pub replies: Vec<String>,
    pub prompts: Arc<Mutex<Vec<Vec<ChatMessage>>>>,
}

impl LanguageModel for FakeLlm {
    fn generate(&self, request: GenerateRequest) -> mpsc::Receiver<LlmEvent> {
        if request.max_tokens == 0 {
            let (tx, rx) = mpsc::channel(1);
            let _ = tx.try_send(LlmEvent::Done {
                prompt_evaluated: 1,
                prompt_cached: 0,
                generated: 0,
                stop: StopReason::MaxTokens,
            });
            return rx;
        }
        let n_prompts = {
            let mut p = self.prompts.lock().unwrap();
            p.push(request.messages.clone());
            p.len()
        };
        let reply = self.replies[(n_prompts - 1).min(self.replies.len() - 1)].clone();
        let (tx, rx) = mpsc::channel(64);
        let words: Vec<String> = reply.split_inclusive(' ').map(String::from).collect();
        tokio::spawn(async move {
            let n = words.len();
            for w in words {
                if request.cancel.is_cancelled() {
                    break;
                }
                let _ = tx.send(LlmEvent::Token(w)).await;
            }
            let _ = tx
                .send(LlmEvent::Done {
                    prompt_evaluated: 1,
                    prompt_cached: 0,
                    generated: n,
                    stop: StopReason::EndOfTurn,
                })
                .await;
        });
        rx
    }

    fn end_conversation(&self, _conversation_id: &str) {}
}

/// TTS fake: a 440 Hz tone, 60 ms per character, at Piper's 22050 Hz.
pub struct FakeTts;

impl TextToSpeech for FakeTts {
    fn synthesize(
        &self,
        clause: String,
        _cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<SpeechAudio, EngineError>> {
        async move {
            let n = (clause.len() as f32 * 0.06 * 22050.0) as usize;
            let samples = (0..n)
                .map(|i| 0.3 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 22050.0).sin())
                .collect();
            Ok(SpeechAudio {
                samples,
                sample_rate: 22050,
                elapsed: Duration::from_millis(1),
            })
        }
        .boxed()
    }

    fn sample_rate(&self) -> u32 {
        22050
    }
}

/// The Twilio auth token and API token of test servers that take simulated calls.
pub const AUTH_TOKEN: &str = "test-auth-token";
pub const API_TOKEN: &str = "test-api-token";

/// Secrets of a server that takes simulated calls: they register through the API and sign
/// their upgrade, as the real path does.
pub fn call_secrets() -> Secrets {
    Secrets {
        api_token: Some(API_TOKEN.into()),
        twilio_auth_token: Some(AUTH_TOKEN.into()),
        ..Default::default()
    }
}

/// A simulated call that registers and signs with [`call_secrets`]'s tokens.
pub fn sim_call() -> telemarketer::testbed::sim::SimCall {
    telemarketer::testbed::sim::SimCall::random().with_tokens(AUTH_TOKEN, API_TOKEN)
}

pub fn test_config(toml: &str, secrets: Secrets) -> Config {
    RawConfig::from_toml(toml)
        .unwrap()
        .validate(secrets)
        .unwrap()
}

/// The app on fake engines (in memory unless a test wants the store).
pub fn fake_app(
    config: Config,
    transcripts: &[&str],
    reply: &str,
) -> (AppBuilder, Arc<Mutex<Vec<Vec<ChatMessage>>>>) {
    fake_app_replies(config, transcripts, &[reply])
}

/// The app on fake engines with several scripted LLM replies (the last one repeats).
pub fn fake_app_replies(
    config: Config,
    transcripts: &[&str],
    replies: &[&str],
) -> (AppBuilder, Arc<Mutex<Vec<Vec<ChatMessage>>>>) {
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let app = AppBuilder::with_engines(
        config,
        Arc::new(FakeStt(Mutex::new(
            transcripts.iter().map(|s| s.to_string()).collect(),
        ))),
        Arc::new(FakeLlm {
            replies: replies.iter().map(|r| r.to_string()).collect(),
            prompts: prompts.clone(),
        }),
        Arc::new(FakeTts),
    );
    (app, prompts)
}

/// Serves the app (in memory) on an ephemeral loopback port. `TEST_LOG=telemarketer=debug`
/// shows the server's log in a failing test's output.
pub async fn start(app: AppBuilder) -> LocalApp {
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    app.in_memory().spawn_local().await.unwrap()
}

/// Voiced test signal at 8 kHz: harmonics of 140 Hz with a syllable-rate envelope. The real VAD
/// calls it speech; the fake STT decides what it "said".
/// The emulator's callee voice: a voiced signal the real VAD takes for speech, as long as the
/// line would take to say; the server's fake STT decides what it said.
pub struct VoicedTts;

impl TextToSpeech for VoicedTts {
    fn synthesize(
        &self,
        clause: String,
        _cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<SpeechAudio, EngineError>> {
        let ms = (clause.len() as u32 * 60).clamp(500, 3000);
        let samples = voiced(ms).iter().map(|s| *s as f32 / 32768.0).collect();
        Box::pin(async move {
            Ok(SpeechAudio {
                samples,
                sample_rate: 8000,
                elapsed: Duration::ZERO,
            })
        })
    }

    fn sample_rate(&self) -> u32 {
        8000
    }
}

pub fn voiced(ms: u32) -> Vec<i16> {
    let n = (ms * 8) as usize;
    (0..n)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let env = 0.6 + 0.4 * (2.0 * std::f32::consts::PI * 4.0 * t).sin();
            let s: f32 = (1..8)
                .map(|h| (2.0 * std::f32::consts::PI * 140.0 * h as f32 * t).sin() / h as f32)
                .sum();
            (s * env * 6000.0) as i16
        })
        .collect()
}

/// Caller speech from espeak-ng, as the phone line carries it (8 kHz). 130 words per minute:
/// tiny.en on 8 kHz espeak speech is fragile, and slower speech is what phone callers do anyway.
pub fn espeak(text: &str) -> Vec<i16> {
    let dir = tempdir();
    let wav = dir.join("say.wav");
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "130", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect("espeak-ng is needed for caller speech (apt-get install espeak-ng)");
    assert!(status.success());
    let mut reader = hound::WavReader::open(&wav).unwrap();
    let rate = reader.spec().sample_rate;
    let pcm: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| s.unwrap() as f32 / 32768.0)
        .collect();
    let narrow = telemarketer::audio::resample::resample_all(&pcm, rate, 8000).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    telemarketer::audio::f32_to_i16(&narrow)
}

pub fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("telemarketer-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A zone where the local time is inside (or outside) 08:00-21:00 right now.
pub fn zone_where_window_is(open: bool) -> &'static str {
    use chrono::Timelike;
    let now = chrono::Utc::now();
    [
        "America/New_York",
        "Pacific/Honolulu",
        "Asia/Tokyo",
        "Europe/London",
        "Asia/Kolkata",
        "Pacific/Kiritimati",
        "America/Los_Angeles",
        "Australia/Sydney",
        "Pacific/Pago_Pago",
    ]
    .into_iter()
    .find(|z| {
        let tz: chrono_tz::Tz = z.parse().unwrap();
        let h = now.with_timezone(&tz).hour();
        // A margin of an hour on each side, so the test never straddles the edge.
        if open {
            (9..20).contains(&h)
        } else {
            !(7..22).contains(&h)
        }
    })
    .expect("some zone is inside and some outside calling hours at any moment")
}

/// A PostgreSQL database URL confined to a fresh schema of its own (`search_path`), so tests
/// sharing one server (and engineers sharing one machine) never see each other's tables; None
/// (the test skips) without `TELEMARKETER_TEST_POSTGRES_URL`, which CI must set. Drop the
/// schema with [`drop_pg_schema`].
pub async fn pg_test_url() -> Option<(String, String)> {
    use sqlx::Connection;
    let Ok(base) = std::env::var("TELEMARKETER_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must run the PostgreSQL tests: set TELEMARKETER_TEST_POSTGRES_URL"
        );
        eprintln!("skipped: TELEMARKETER_TEST_POSTGRES_URL is not set");
        return None;
    };
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    Some((
        format!("{base}{sep}options=-c%20search_path%3D{schema}"),
        schema,
    ))
}

pub async fn drop_pg_schema(schema: &str) {
    use sqlx::Connection;
    let base = std::env::var("TELEMARKETER_TEST_POSTGRES_URL").unwrap();
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// The appliance as a separate process (`telemarketer serve`), so it can be killed and signalled
/// for real.
pub struct ServerProcess {
    pub child: std::process::Child,
}

impl ServerProcess {
    /// Starts `serve` with these secrets (account, Twilio auth token, API token) in its
    /// environment and waits for `/health` at `base`.
    pub async fn spawn(
        config_path: &std::path::Path,
        base: &str,
        log: &std::path::Path,
        (account, auth_token, api_token): (&str, &str, &str),
    ) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_telemarketer"))
            .args(["serve", "--config"])
            .arg(config_path)
            .env("TELEMARKETER_API_TOKEN", api_token)
            .env("TWILIO_AUTH_TOKEN", auth_token)
            .env("TWILIO_ACCOUNT_SID", account)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Self { child };
        let started = std::time::Instant::now();
        while reqwest::get(format!("{base}/health")).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "server did not start"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        server
    }

    pub fn kill9(&mut self) {
        // SIGKILL: no shutdown path runs, exactly like a crash or a power cut of the process.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, what `docker stop` and systemd send.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The exit status, once the process has ended (at most `limit`).
    pub async fn exited(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The HTTP status of a WebSocket upgrade with this signature (101 when it upgraded).
pub async fn upgrade_status(url: &str, signature: Option<&str>) -> u16 {
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    if let Some(sig) = signature {
        request
            .headers_mut()
            .insert("X-Twilio-Signature", sig.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("upgrade failed without an HTTP answer: {e}"),
    }
}

/// A form POST signed as Twilio signs it (the public URL is the Host's here).
pub async fn signed_post(addr: std::net::SocketAddr, path: &str, form: &[(&str, &str)]) -> String {
    let url = format!("http://{addr}{path}");
    let params: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let response = reqwest::Client::new()
        .post(&url)
        .header(
            "X-Twilio-Signature",
            telemarketer::twilio::signature::compute(AUTH_TOKEN, &url, &params),
        )
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The tiny model set (`TELEMARKETER_MODELS_DIR`, else `models/`); a clear failure without it.
pub fn models_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("TELEMARKETER_MODELS_DIR")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models"));
    assert!(
        dir.join("llm.gguf").is_file(),
        "the model tests need the tiny model set in {}: run `scripts/fetch_models.sh --profile test`",
        dir.display()
    );
    dir
}
