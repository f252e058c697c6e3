//! The browser softphone over loopback: a client that speaks exactly what the page speaks
//! (16-bit PCM frames in real time, marks echoed once played, the page's Origin) talks to the
//! shipped solar script with the real (tiny) models; the guards on the upgrade; and the page
//! itself in Debian's Chromium (Playwright for Python) with a fake microphone.
//! One thread per engine; real time, so run with `--test-threads=1`.

mod common;

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use telemarketer::app::{AppBuilder, Engines, LocalApp};
use telemarketer::client::AdminClient;
use telemarketer::config::{Config, RawConfig, Secrets};
use telemarketer::model::api::NewCampaign;
use telemarketer::model::{CallMetadata, CampaignSettings, Speaker};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const CAMPAIGN: &str = "solar-soft";

fn config(extra: &str) -> Config {
    let toml = format!(
        "[models]\ndir = {:?}\n{extra}",
        common::models_dir().display().to_string()
    );
    RawConfig::from_toml(&toml)
        .unwrap()
        .single_threaded()
        .validate(common::call_secrets())
        .unwrap()
}

/// Models load once per test binary.
fn engines() -> &'static Engines {
    static ENGINES: OnceLock<Engines> = OnceLock::new();
    ENGINES.get_or_init(|| Engines::load(&config("")).expect("models load"))
}

/// The appliance with a store, the real models and a campaign on the shipped solar script
/// that has never dialed (a script writer tries it first).
const OPERATOR: &str = "writer";
const PASSWORD: &str = "a long enough password";

/// The softphone is the console's: an operator account to log in with.
async fn operator(local: &LocalApp) {
    let hash = telemarketer::http::console::hash_password(PASSWORD).unwrap();
    let store = local
        .state
        .store
        .as_ref()
        .expect("the console needs a store");
    store.set_operator(OPERATOR, &hash).await.unwrap();
}

/// A logged-in session's `Cookie` header (a real login through `/login`).
async fn cookie(local: &LocalApp) -> String {
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/login", local.base_url()))
        .form(&[("username", OPERATOR), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "login");
    let set = r.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

async fn appliance() -> LocalApp {
    let dir = common::tempdir();
    let store = format!("sqlite://{}", dir.join("softphone.db").display());
    let local = AppBuilder::new(config(&format!("[store]\nurl = {store:?}")), engines())
        .spawn_local()
        .await
        .unwrap();
    AdminClient::new(&local.base_url(), common::API_TOKEN)
        .create_campaign(&NewCampaign {
            id: CAMPAIGN.into(),
            name: "Solar, tried in the browser".into(),
            script: None,
            settings: CampaignSettings {
                from_number: "+15005550006".into(),
                ..Default::default()
            },
        })
        .await
        .unwrap();
    operator(&local).await;
    local
}

/// The HTTP status of a softphone upgrade (101 when it upgraded).
async fn upgrade_status(local: &LocalApp, query: &str, origin: Option<&str>) -> u16 {
    let url = format!("ws://{}/softphone/ws{query}", local.addr);
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Cookie", cookie(local).await.parse().unwrap());
    if let Some(o) = origin {
        request.headers_mut().insert("Origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        Err(e) => panic!("upgrade failed without an HTTP answer: {e}"),
    }
}

fn own_origin(local: &LocalApp) -> String {
    local.base_url()
}

/// What the page's playback worklet holds: audio and the marks between it.
enum Play {
    Audio(VecDeque<i16>),
    Mark(String),
}

/// What the browser side of a call saw.
struct BrowserCall {
    call_sid: String,
    /// Every agent sample played, in order.
    played: Vec<i16>,
    /// When the caller's speech started and ended (ms of the call).
    spoke: (u64, u64),
    marks_echoed: usize,
}

/// Whether the agent's lines (or, `answered`, its lines after the caller's words) have all
/// played to their end: each one's final mark came back to the server.
fn played_turns(local: &LocalApp, call_sid: &str, answered: bool) -> bool {
    let Some(record) = local.state.registry.get(call_sid) else {
        return false;
    };
    let turns = &record.turns;
    let from = if answered {
        match turns.iter().position(|t| t.speaker == Speaker::Caller) {
            Some(i) => i + 1,
            None => return false,
        }
    } else {
        0
    };
    let mut agent = turns[from..]
        .iter()
        .filter(|t| t.speaker == Speaker::Agent)
        .peekable();
    agent.peek().is_some() && agent.all(|t| t.end_ms.is_some())
}

fn loud(frame: &[i16]) -> bool {
    let mean = frame.iter().map(|s| s.unsigned_abs() as u64).sum::<u64>() / frame.len() as u64;
    mean > 300
}

/// A call as the page makes it: 20 ms PCM frames in real time (silence, then `caller` once the
/// agent has finished its greeting), the agent's audio played on the same clock with each mark
/// echoed when playback reaches it, `clear` honoured; hangs up once the agent has answered.
async fn browser_call(local: &LocalApp, caller: &[i16]) -> BrowserCall {
    let url = format!("ws://{}/softphone/ws?campaign={CAMPAIGN}", local.addr);
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Cookie", cookie(local).await.parse().unwrap());
    request
        .headers_mut()
        .insert("Origin", own_origin(local).parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    let first = match rx.next().await {
        Some(Ok(Message::Text(t))) => t.to_string(),
        other => panic!("the call message comes first: {other:?}"),
    };
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["event"], "call");
    let call_sid = first["call_sid"].as_str().unwrap().to_string();
    assert!(
        call_sid.starts_with("CA") && call_sid.len() == 34,
        "{call_sid}"
    );

    let mut queue: VecDeque<Play> = VecDeque::new();
    let mut out = BrowserCall {
        call_sid,
        played: Vec::new(),
        spoke: (0, 0),
        marks_echoed: 0,
    };
    let mut echo = Vec::new();
    let mut interval = tokio::time::interval(Duration::from_millis(20));
    let (mut tick, mut last_loud) = (0u64, 0u64);
    // 0: greeting, 1: speaking, 2: awaiting the answer, 3: hung up.
    let (mut phase, mut said, mut phase_since) = (0, 0usize, 0u64);
    loop {
        tokio::select! {
            msg = rx.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    assert!(b.len().is_multiple_of(2));
                    queue.push_back(Play::Audio(
                        b.chunks_exact(2).map(|p| i16::from_le_bytes([p[0], p[1]])).collect(),
                    ));
                }
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                    match v["event"].as_str() {
                        Some("mark") => queue.push_back(Play::Mark(v["name"].as_str().unwrap().into())),
                        Some("clear") => {
                            for item in queue.drain(..) {
                                if let Play::Mark(name) = item {
                                    echo.push(name);
                                }
                            }
                        }
                        other => panic!("unexpected message {other:?}: {t}"),
                    }
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("socket error: {e}"),
            },
            _ = interval.tick() => {
                tick += 1;
                let now = tick * 20;
                // Play 20 ms; marks are echoed when playback reaches them.
                let mut frame = Vec::with_capacity(160);
                while frame.len() < 160 {
                    match queue.front_mut() {
                        Some(Play::Mark(_)) => {
                            if let Some(Play::Mark(name)) = queue.pop_front() {
                                echo.push(name);
                            }
                        }
                        Some(Play::Audio(a)) => {
                            let n = (160 - frame.len()).min(a.len());
                            frame.extend(a.drain(..n));
                            if a.is_empty() {
                                queue.pop_front();
                            }
                        }
                        None => break,
                    }
                }
                while let Some(Play::Mark(_)) = queue.front() {
                    if let Some(Play::Mark(name)) = queue.pop_front() {
                        echo.push(name);
                    }
                }
                if !frame.is_empty() && loud(&frame) {
                    last_loud = now;
                }
                out.played.extend(&frame);
                for name in echo.drain(..) {
                    out.marks_echoed += 1;
                    let text = serde_json::json!({"event": "mark", "name": name}).to_string();
                    if tx.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                // The microphone: one frame per tick. The caller answers once the greeting has
                // played to its end mark (the server saw the echo), and hangs up once an answer
                // to their words has played.
                let mut mic = vec![0i16; 160];
                let quiet = now.saturating_sub(last_loud) >= 600;
                match phase {
                    0 if (quiet && played_turns(local, &out.call_sid, false))
                        || now - phase_since > 60_000 =>
                    {
                        phase = 1;
                        out.spoke.0 = now;
                    }
                    1 => {
                        let end = (said + 160).min(caller.len());
                        mic[..end - said].copy_from_slice(&caller[said..end]);
                        said = end;
                        if said == caller.len() {
                            phase = 2;
                            phase_since = now;
                            out.spoke.1 = now;
                        }
                    }
                    2 if (quiet && played_turns(local, &out.call_sid, true))
                        || now - phase_since > 90_000 =>
                    {
                        phase = 3;
                        phase_since = now;
                        let hangup = r#"{"event":"hangup"}"#.to_string();
                        let _ = tx.send(Message::Text(hangup.into())).await;
                    }
                    3 => assert!(now - phase_since < 30_000, "the call did not end after the hang-up"),
                    _ => {}
                }
                if phase < 3 {
                    let bytes: Vec<u8> = mic.iter().flat_map(|s| s.to_le_bytes()).collect();
                    if tx.send(Message::Binary(bytes.into())).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    out
}

async fn transcript(local: &LocalApp, call_sid: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .get(format!(
            "{}/softphone/transcript/{call_sid}",
            local.base_url()
        ))
        .header("cookie", cookie(local).await)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

fn words(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect()
}

async fn transcribe_8k(pcm: &[i16]) -> String {
    use telemarketer::engine::SpeechToText;
    let f = telemarketer::audio::i16_to_f32(pcm);
    let wide = telemarketer::audio::resample::resample_all(&f, 8000, 16000).unwrap();
    engines().stt.transcribe(wide).await.unwrap().text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_call_talks_to_the_campaigns_script_through_the_call_session() {
    let local = appliance().await;
    let call = browser_call(&local, &common::espeak("Yes, go ahead.")).await;

    // The agent's voice arrived as PCM, and it is the script's greeting.
    let secs = call.played.len() as f32 / 8000.0;
    assert!(secs > 4.0, "{secs:.1} s of agent audio played");
    assert!(call.marks_echoed > 0, "marks came and were echoed");
    let greeting_end = (call.spoke.0 * 8) as usize;
    let greeting = words(&transcribe_8k(&call.played[..greeting_end.min(call.played.len())]).await);
    let hits = [
        "nova",
        "automated",
        "assistant",
        "sunrise",
        "solar",
        "calling",
    ]
    .iter()
    .filter(|k| greeting.contains(*k))
    .count();
    assert!(hits >= 2, "greeting heard as: {greeting}");

    // The live transcript: the disclosure, the caller's words, the script's answer to them.
    let mut record = serde_json::Value::Null;
    for _ in 0..300 {
        let (status, r) = transcript(&local, &call.call_sid).await;
        assert_eq!(status, 200, "{r}");
        record = r;
        if record["status"] == "completed" && local.state.live.count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("greeting heard: {greeting}\ntranscript: {record:#}");
    assert_eq!(record["status"], "completed", "{record}");
    let turns: Vec<(String, String)> = record["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["speaker"].as_str().unwrap().to_string(),
                t["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        turns[0].0 == "agent" && turns[0].1.contains("I am an automated AI assistant"),
        "{turns:?}"
    );
    // Its end mark came back from the page's playback: the server knows it was heard.
    assert!(record["turns"][0]["end_ms"].is_u64(), "{record}");
    let caller = turns
        .iter()
        .position(|(who, _)| who == "caller")
        .unwrap_or_else(|| panic!("the caller's words: {turns:?}"));
    let said = words(&turns[caller].1);
    assert!(
        said.contains("yes") || said.contains("go ahead"),
        "{turns:?}"
    );
    assert!(
        turns[caller + 1..]
            .iter()
            .any(|(who, text)| who == "agent" && !text.trim().is_empty()),
        "the agent answered: {turns:?}"
    );
    assert_eq!(local.state.live.count(), 0, "the session's place is freed");
}

/// The guards, on fake engines: only this server's pages may open a call, an unknown
/// campaign is 404 and a full appliance 503 (all before the upgrade); the transcript route
/// serves softphone calls only; the page and its scripts are served as the console needs them.
#[tokio::test]
async fn upgrades_are_guarded_and_the_page_and_scripts_are_served() {
    let db = format!("sqlite://{}", common::tempdir().join("guards.db").display());
    let config = common::test_config(&format!("[store]\nurl = {db:?}"), Secrets::default());
    let (app, _) = common::fake_app(config, &[], "Sure.");
    let local = app.spawn_local().await.unwrap();
    operator(&local).await;
    let own = own_origin(&local);

    // Without a login: to the login page, before anything else is looked at.
    let url = format!("ws://{}/softphone/ws", local.addr);
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("Origin", own.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 303),
        other => panic!("an anonymous upgrade got {other:?}"),
    }
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in [
        "/softphone",
        "/softphone/softphone.js",
        "/softphone/transcript/CA1",
    ] {
        let r = anonymous
            .get(format!("{}{path}", local.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{path}");
    }

    assert_eq!(
        upgrade_status(&local, "", Some("http://evil.example")).await,
        403
    );
    assert_eq!(
        upgrade_status(&local, "", Some("http://127.0.0.1:1")).await,
        403
    );
    assert_eq!(upgrade_status(&local, "", Some("null")).await, 403);
    assert_eq!(upgrade_status(&local, "", None).await, 403);
    assert_eq!(
        upgrade_status(&local, "?campaign=no-such", Some(&own)).await,
        404
    );
    // Cross-origin is refused before anything about campaigns is said.
    assert_eq!(
        upgrade_status(&local, "?campaign=no-such", Some("http://evil.example")).await,
        403
    );
    let held: Vec<_> = std::iter::from_fn(|| local.state.live.enter()).collect();
    assert_eq!(upgrade_status(&local, "", Some(&own)).await, 503);
    drop(held);
    // A script the book knows (a campaign dialing now) is accepted.
    local
        .state
        .session
        .scripts
        .insert("known", local.state.session.conversation.script.clone());
    assert_eq!(
        upgrade_status(&local, "?campaign=known", Some(&own)).await,
        101
    );

    // A phone call's words are not served here, nor an unknown SID.
    let phone = "CA0123456789abcdef0123456789abcdef";
    local
        .state
        .registry
        .register(CallMetadata {
            call_sid: phone.into(),
            to: Some("+14155550100".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(transcript(&local, phone).await.0, 404);
    assert_eq!(transcript(&local, "CAffff").await.0, 404);

    let client = reqwest::Client::new();
    for (path, kind) in [
        ("/softphone/softphone.js", "text/javascript"),
        ("/softphone/worklet.js", "text/javascript"),
        ("/softphone?campaign=%22%3E%3Cb%3E", "text/html"),
    ] {
        let r = client
            .get(format!("{}{path}", local.base_url()))
            .header("cookie", cookie(&local).await)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let header = |name: &str| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        assert!(header("content-type").starts_with(kind), "{path}");
        assert_eq!(header("cache-control"), "no-cache", "{path}");
        let body = r.text().await.unwrap();
        if kind == "text/html" {
            assert!(
                body.contains(r#"<div id="softphone" data-campaign="&quot;&gt;&lt;b&gt;"></div>"#),
                "{body}"
            );
            assert!(body.contains(r#"<script src="softphone/softphone.js" defer></script>"#));
        } else {
            assert!(body.contains("softphone"), "{path}");
        }
    }
}

/// The caller's answer as Chromium's fake microphone plays it: espeak's voice (22050 Hz,
/// 16-bit mono) after a second of silence and before eight more (Chrome loops the file).
fn caller_wav(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let said = dir.join("said.wav");
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "130", "-w"])
        .arg(&said)
        .arg(text)
        .status()
        .expect("espeak-ng is needed for caller speech (apt-get install espeak-ng)");
    assert!(status.success());
    let mut reader = hound::WavReader::open(&said).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.bits_per_sample), (1, 16));
    let speech: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let wav = dir.join("caller.wav");
    let mut writer = hound::WavWriter::create(&wav, spec).unwrap();
    let rate = spec.sample_rate as usize;
    for s in std::iter::repeat_n(0, rate)
        .chain(speech)
        .chain(std::iter::repeat_n(0, rate * 8))
    {
        writer.write_sample(s).unwrap();
    }
    writer.finalize().unwrap();
    wav
}

/// Fails (never skips) without the browser tooling, saying how to get it.
fn browser_tooling() {
    let playwright = std::process::Command::new("python3")
        .args(["-c", "import playwright"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        playwright,
        "the browser test needs Playwright for Python: `python3 -m pip install playwright` \
         (no `playwright install`: it drives Debian's chromium)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").is_file(),
        "the browser test needs /usr/bin/chromium: `apt-get install chromium`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_softphone_page_holds_a_call_in_a_real_browser() {
    browser_tooling();
    let local = appliance().await;
    let dir = common::tempdir();
    let wav = caller_wav(&dir, "Yes, I own my home.");
    let out_dir = dir.join("out");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/softphone_browser.py");
    let run = tokio::process::Command::new("python3")
        .arg(script)
        .arg(local.base_url())
        .arg(CAMPAIGN)
        .arg(&wav)
        .arg(&out_dir)
        .arg(cookie(&local).await)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the browser test ends within five minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "{stdout}\n{stderr}\nscreenshot: {}",
        out_dir.join("softphone.png").display()
    );
    assert!(
        output.status.success(),
        "the browser call failed:\n{stderr}"
    );
    assert!(out_dir.join("softphone.png").is_file());
    // The page's call went through the session like any other.
    let sid = stdout
        .lines()
        .find_map(|l| l.strip_prefix("OK "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the script names the call");
    let (status, record) = transcript(&local, sid).await;
    assert_eq!(status, 200);
    assert!(
        record["turns"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("automated AI assistant")),
        "{record}"
    );
    // The page's playback worklet echoed the greeting's end mark.
    assert!(record["turns"][0]["end_ms"].is_u64(), "{record}");
}
