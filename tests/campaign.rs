//! Whole campaigns against the local Twilio emulator with the real (tiny) models: the dialer
//! places calls over REST, the emulator rings, answers as a person, a machine or a fax (or is
//! busy), fetches our TwiML, streams the call and sends signed status callbacks; the engine holds
//! the conversations; the store ends up with every lead's state, the audit trail, outcomes and
//! transcripts. Real time, so run with `--test-threads=1`.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use telemarketer::app::{self, Engines};
use telemarketer::config::{Config, RawConfig, Secrets};
use telemarketer::emulator::{CallerLine, EmulatorConfig, Fault, Persona, RunningEmulator};
use telemarketer::engine::SpeechToText;

const ACCOUNT: &str = "AC00000000000000000000000000000001";
const AUTH_TOKEN: &str = "emulated-auth-token";
const API_TOKEN: &str = "admin-token";
const FROM: &str = "+15005550006";

fn models_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    assert!(
        dir.join("llm.gguf").is_file(),
        "run `scripts/fetch_models.sh --profile test` first"
    );
    dir
}

fn secrets() -> Secrets {
    Secrets {
        api_token: Some(API_TOKEN.into()),
        twilio_auth_token: Some(AUTH_TOKEN.into()),
        twilio_account_sid: Some(ACCOUNT.into()),
        ..Default::default()
    }
}

fn engines() -> &'static Engines {
    static ENGINES: OnceLock<Engines> = OnceLock::new();
    ENGINES.get_or_init(|| {
        let toml = format!("[models]\ndir = {:?}", models_dir().display().to_string());
        let config = RawConfig::from_toml(&toml)
            .unwrap()
            .validate(Secrets::default())
            .unwrap()
            .single_threaded();
        Engines::load(&config).expect("models load")
    })
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&str, String)>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(API_TOKEN);
        if let Some((ct, b)) = body {
            req = req.header("content-type", ct).body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    async fn get(&self, path: &str) -> Value {
        let (s, v) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(s, 200, "{path}: {v}");
        v
    }
    async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            path,
            Some(("application/json", body.to_string())),
        )
        .await
    }
}

/// Our appliance (real store, real models, dialer pointed at the emulator) on a loopback port.
async fn start_appliance(
    store_url: &str,
    emulator: &RunningEmulator,
) -> (Api, telemarketer::http::AppState) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let toml = format!(
        "[models]\ndir = {:?}\n[server]\npublic_url = \"http://{addr}\"\n[store]\nurl = {store_url:?}\n[twilio]\nbase_url = {:?}\n",
        models_dir().display().to_string(),
        emulator.base_url()
    );
    let config: Config = RawConfig::from_toml(&toml)
        .unwrap()
        .validate(secrets())
        .unwrap()
        .single_threaded();
    let state = app::appliance(config, engines()).await.unwrap();
    tokio::spawn(app::serve(listener, state.clone(), std::future::pending()));
    (
        Api {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        },
        state,
    )
}

fn human(lines: &[&str]) -> Persona {
    Persona::Human {
        lines: lines
            .iter()
            .map(|l| CallerLine::Say(l.to_string()))
            .collect(),
    }
}

/// A lead of the test campaign: number, who answers (None: never dialed), consent, timezone,
/// expected lead state and outcome (or audit decision for skips).
type Case = (
    String,
    Option<Persona>,
    bool,
    &'static str,
    &'static str,
    &'static str,
);

/// 20 leads, every kind of ending: people with four different outcomes, machines, a fax,
/// busy / no-answer / failed lines (retried, then given up), numbers on the do-not-call list,
/// leads without consent and leads outside their calling hours. Twilio answers the first
/// creates with a 429 and an ambiguous 500.
#[tokio::test]
async fn a_twenty_lead_campaign_ends_every_lead_in_the_right_state() {
    let open_tz = common::zone_where_window_is(true);
    let closed_tz = common::zone_where_window_is(false);
    let n = |i: u32| format!("+1415555{:04}", 100 + i);
    // (number, persona, consent, timezone, expected lead state, expected outcome)
    let mut leads: Vec<Case> = vec![
        (
            n(0),
            Some(human(&[
                "Yes, go ahead.",
                "About two hundred dollars a month.",
                "Yes, we own the house.",
                "Yes, please book it.",
                "Tomorrow at ten works.",
            ])),
            true,
            open_tz,
            "done",
            "interested",
        ),
        (
            n(1),
            Some(human(&["Stop calling me."])),
            true,
            open_tz,
            "done",
            "do_not_call",
        ),
        (
            n(2),
            Some(human(&["Sorry, I think you have the wrong number."])),
            true,
            open_tz,
            "done",
            "wrong_person",
        ),
        (
            n(3),
            Some(human(&[
                "I'm busy right now, can you call me back later?",
                "Friday morning.",
            ])),
            true,
            open_tz,
            "done",
            "callback",
        ),
        (
            n(4),
            Some(Persona::Machine {
                greeting: "Hi, you have reached Sam. Leave a message after the tone.".into(),
            }),
            true,
            open_tz,
            "done",
            "voicemail",
        ),
        (
            n(5),
            Some(Persona::Machine {
                greeting: "The person you are calling is not available.".into(),
            }),
            true,
            open_tz,
            "done",
            "voicemail",
        ),
        (n(6), Some(Persona::Fax), true, open_tz, "done", "fax"),
        (n(7), Some(Persona::Busy), true, open_tz, "failed", "busy"),
        (n(8), Some(Persona::Busy), true, open_tz, "failed", "busy"),
        (
            n(9),
            Some(Persona::NoAnswer),
            true,
            open_tz,
            "failed",
            "no-answer",
        ),
        (
            n(10),
            Some(Persona::Failed),
            true,
            open_tz,
            "failed",
            "failed",
        ),
    ];
    for i in 11..14 {
        leads.push((n(i), None, true, open_tz, "skipped", "skip_dnc"));
    }
    for i in 14..17 {
        leads.push((n(i), None, false, open_tz, "skipped", "skip_consent"));
    }
    for i in 17..20 {
        leads.push((n(i), None, true, closed_tz, "pending", ""));
    }
    assert_eq!(leads.len(), 20);

    let mut config = EmulatorConfig::new(ACCOUNT, AUTH_TOKEN);
    config.ring = Duration::from_millis(200);
    config.tts = Some(Arc::new(engines().tts.clone()));
    config.personas = leads
        .iter()
        .filter_map(|(num, p, ..)| p.clone().map(|p| (num.clone(), p)))
        .collect::<HashMap<_, _>>();
    let emulator = RunningEmulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = common::tempdir();
    let store_url = format!("sqlite://{}", dir.join("campaign.db").display());
    let (api, state) = start_appliance(&store_url, &emulator).await;

    for i in 11..14 {
        let (s, v) = api
            .post_json(
                "/v1/dnc",
                serde_json::json!({"phone": n(i), "reason": "national registry"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = api
        .post_json(
            "/v1/campaigns",
            serde_json::json!({
                "id": "solar-test",
                "name": "Solar consultations",
                "settings": {
                    "from_number": FROM,
                    "max_concurrent": 2,
                    "calls_per_second": 5.0,
                    "max_attempts": 2,
                    "retry_delays_s": [1],
                    "machine_detection": true
                }
            }),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    // The lead file: the 20 leads, a duplicate and two bad rows (reported, not dropped).
    let mut csv = String::from("phone,name,timezone,consent,source,city\n");
    for (i, (num, _, consent, tz, ..)) in leads.iter().enumerate() {
        csv.push_str(&format!(
            "{num},Lead {i},{tz},{},web form,Springfield\n",
            if *consent { "yes" } else { "no" }
        ));
    }
    csv.push_str(&format!("{},Again,{open_tz},yes,web,X\n", n(0)));
    csv.push_str("not-a-number,Bad,America/New_York,yes,web,X\n");
    csv.push_str(&format!("{},Bad tz,Mars/Olympus,yes,web,X\n", n(50)));
    let (s, report) = api
        .call(
            reqwest::Method::POST,
            "/v1/campaigns/solar-test/leads",
            Some(("text/csv", csv)),
        )
        .await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["imported"], 20, "{report}");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{report}");
    let rows: Vec<u64> = errors.iter().map(|e| e["row"].as_u64().unwrap()).collect();
    assert_eq!(rows, vec![22, 23, 24], "{report}");
    assert!(
        errors[0]["reason"].as_str().unwrap().contains("duplicate"),
        "{report}"
    );

    // Twilio pushes back on the first creates: rate limit, then a 500 after creating the call.
    emulator.inject(vec![Fault::RateLimited, Fault::ServerErrorAfterCreate]);
    let (s, v) = api
        .call(
            reqwest::Method::POST,
            "/v1/campaigns/solar-test/start",
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");

    let dialer = state.dialer.clone().unwrap();
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if dialer
            .is_settled("solar-test", Duration::from_secs(3600))
            .await
            .unwrap()
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "campaign did not settle"
        );
    }
    assert!(emulator.wait_idle(Duration::from_secs(30)).await);
    // Let the last callbacks and store writes land.
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!(
        "campaign settled in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let stored_leads = api.get("/v1/campaigns/solar-test/leads").await;
    let audit = api.get("/v1/campaigns/solar-test/audit").await;
    let calls = api.get("/v1/campaigns/solar-test/calls").await;
    let by_phone: HashMap<String, &Value> = stored_leads
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["phone"].as_str().unwrap().to_string(), l))
        .collect();
    let mut summary = Vec::new();
    let mut wrong = Vec::new();
    for (num, _, _, _, want_state, want_outcome) in &leads {
        let lead = by_phone[num];
        let state = lead["state"].as_str().unwrap();
        let outcome = lead["outcome"].as_str().unwrap_or("");
        summary.push(format!("{num}: {state} {outcome}"));
        if state != *want_state || outcome != *want_outcome {
            wrong.push(format!(
                "{num}: want {want_state}/{want_outcome}, got {state}/{outcome}"
            ));
        }
        // Every decision about the lead is in the audit log.
        let id = lead["id"].as_i64().unwrap();
        let decisions: Vec<&str> = audit
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["lead_id"].as_i64() == Some(id))
            .map(|e| e["decision"].as_str().unwrap())
            .collect();
        let expected_decision = match *want_state {
            "skipped" => *want_outcome,
            "pending" => "defer_window",
            "failed" => "attempts_exhausted",
            _ => "call_finished",
        };
        if !decisions.contains(&expected_decision) {
            wrong.push(format!(
                "{num}: audit {decisions:?} lacks {expected_decision}"
            ));
        }
    }
    eprintln!("{}", summary.join("\n"));
    assert!(wrong.is_empty(), "{}\n{audit:#}", wrong.join("\n"));

    // Deferred leads wait for their window; nothing skipped or deferred was dialed.
    let created: Vec<(String, u16)> = emulator.create_requests();
    for (num, _, _, _, want_state, _) in &leads {
        let dials = emulator.calls().iter().filter(|c| &c.to == num).count();
        let expected = match *want_state {
            "skipped" | "pending" => 0,
            "failed" => 2,
            _ => 1,
        };
        assert_eq!(
            dials, expected,
            "{num} dialed {dials} times; creates {created:?}"
        );
        if *want_state == "pending" {
            assert!(
                by_phone[num]["next_attempt_at_ms"].as_i64().unwrap()
                    > chrono::Utc::now().timestamp_millis()
            );
        }
    }
    assert!(created.iter().any(|(_, s)| *s == 429), "{created:?}");
    assert!(created.iter().any(|(_, s)| *s == 500), "{created:?}");

    // Every emulated call has its record, and every callback passed our signature check.
    let stored_sids: Vec<&str> = calls
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sid"].as_str().unwrap())
        .collect();
    for call in emulator.calls() {
        assert!(
            stored_sids.contains(&call.sid.as_str()),
            "call {} has no record",
            call.sid
        );
        for cb in &call.callbacks {
            assert!(
                matches!(cb.status, Some(200..=299)),
                "{} {:?} answered {:?}: {:?}",
                call.sid,
                cb.kind,
                cb.status,
                cb.params
            );
        }
    }

    // The opt-out reached the do-not-call list during the call, marked as coming from a call.
    let dnc = api.get("/v1/dnc").await;
    let entry = dnc
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["phone"] == n(1).as_str())
        .expect("opted-out number listed");
    assert_eq!(entry["source"], "call");

    // The interested caller: transcript turn by turn with latencies, captured variables; the
    // agent ended the call over REST after its last words were played.
    let interested = emulator.calls().into_iter().find(|c| c.to == n(0)).unwrap();
    let record = api
        .get(&format!("/v1/calls/{}/record", interested.sid))
        .await;
    assert_eq!(record["call"]["outcome"], "interested", "{record:#}");
    assert!(
        record["call"]["variables"]["callback_time"].is_string(),
        "{record:#}"
    );
    let turns = record["turns"].as_array().unwrap();
    assert!(turns.len() >= 8, "{record:#}");
    assert!(turns
        .iter()
        .any(|t| t["speaker"] == "caller" && t["latency"].is_null()));
    assert!(
        turns
            .iter()
            .any(|t| t["speaker"] == "agent" && t["latency"]["stt_ms"].is_number()),
        "{record:#}"
    );
    // Every line has its start and end on the stream's clock (agent lines: when fully played).
    for t in turns {
        if t["speaker"] == "agent" && t["interrupted"] == true {
            continue;
        }
        let (at, end) = (t["at_ms"].as_u64().unwrap(), t["end_ms"].as_u64());
        assert!(end.is_some_and(|e| e > at), "{t}");
    }
    let statuses: Vec<&str> = record["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        vec!["initiated", "ringing", "in-progress", "completed"],
        "{record:#}"
    );
    assert_eq!(interested.hung_up_by.as_deref(), Some("api"));

    // The machines heard the voicemail after the beep: identification, callback number, opt-out.
    for num in [n(4), n(5)] {
        let call = emulator.calls().into_iter().find(|c| c.to == num).unwrap();
        assert_eq!(call.answered_by.as_deref(), Some("machine_end_beep"));
        let heard: Vec<i16> = call
            .media
            .as_ref()
            .unwrap()
            .heard
            .iter()
            .flat_map(|h| h.samples.clone())
            .collect();
        let f = telemarketer::audio::i16_to_f32(&heard);
        let wide = telemarketer::audio::resample::resample_all(&f, 8000, 16000).unwrap();
        let text = engines()
            .stt
            .transcribe(wide)
            .await
            .unwrap()
            .text
            .to_lowercase();
        eprintln!("voicemail on {num}: {text}");
        // Whisper (tiny) hears the identification; it sometimes stops after the first
        // sentence of a long clip, so the rest is proven by the protocol and the record:
        assert!(text.contains("solar") || text.contains("call"), "{text}");
        // the recorder echoed the utterance's final mark, so all of it was played after the
        // beep, before the call ended ...
        let media = call.media.as_ref().unwrap();
        assert!(
            media
                .marks_echoed
                .iter()
                .any(|(name, _)| name.ends_with("end")),
            "{:?}",
            media.marks_echoed
        );
        // ... and what was played carries the callback number and how to opt out.
        let record = api.get(&format!("/v1/calls/{}/record", call.sid)).await;
        let said = record["turns"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            said.contains("Call us back at") && said.contains("To stop these calls"),
            "{record:#}"
        );
        assert_eq!(record["turns"][0]["interrupted"], false, "{record:#}");
        assert_eq!(record["call"]["outcome"], "voicemail", "{record:#}");
    }

    // Results export: one row per lead plus the header.
    let (s, csv) = api
        .call(
            reqwest::Method::GET,
            "/v1/campaigns/solar-test/export.csv",
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(csv.as_str().unwrap().lines().count(), 21);
    emulator.shutdown();
}

/// The appliance as a separate process (`telemarketer serve`), so it can be killed for real.
struct Server {
    child: std::process::Child,
}

impl Server {
    async fn spawn(config_path: &std::path::Path, base: &str, log: &std::path::Path) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_telemarketer"))
            .args(["serve", "--config"])
            .arg(config_path)
            .env("TELEMARKETER_API_TOKEN", API_TOKEN)
            .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
            .env("TWILIO_ACCOUNT_SID", ACCOUNT)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Self { child };
        let started = Instant::now();
        while reqwest::get(format!("{base}/health")).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "server did not start"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        server
    }

    fn kill9(&mut self) {
        // SIGKILL: no shutdown path runs, exactly like a crash or a power cut of the process.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kill -9 mid-campaign (calls in progress, leads claimed), start again: no lead is dialed twice,
/// every call Twilio placed has its record, and every lead ends.
#[tokio::test]
async fn kill_nine_mid_campaign_then_restart_loses_nothing_and_dials_no_one_twice() {
    let numbers: Vec<String> = (0..6).map(|i| format!("+1415555{:04}", 150 + i)).collect();
    let mut config = EmulatorConfig::new(ACCOUNT, AUTH_TOKEN);
    config.ring = Duration::from_millis(300);
    config.tts = Some(Arc::new(engines().tts.clone()));
    config.default_persona = human(&["Sorry, I think you have the wrong number."]);
    let emulator = RunningEmulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = common::tempdir();
    let config_path = dir.join("telemarketer.toml");
    std::fs::write(
        &config_path,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = {base:?}\n\
             [models]\ndir = {:?}\n[store]\nurl = \"sqlite://{}\"\n[twilio]\nbase_url = {:?}\n\
             [stt]\nthreads = 1\n[llm]\nthreads = 1\n[tts]\nthreads = 1\n",
            models_dir().display().to_string(),
            dir.join("appliance.db").display(),
            emulator.base_url()
        ),
    )
    .unwrap();
    let log = dir.join("server.log");
    let mut server = Server::spawn(&config_path, &base, &log).await;
    let api = Api {
        base: base.clone(),
        http: reqwest::Client::new(),
    };
    let tz = common::zone_where_window_is(true);
    let (s, v) = api
        .post_json(
            "/v1/campaigns",
            serde_json::json!({"id": "crash", "name": "Crash test",
                "settings": {"from_number": FROM, "max_concurrent": 2, "calls_per_second": 1.0}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let mut csv = String::from("phone,timezone,consent\n");
    for n in &numbers {
        csv.push_str(&format!("{n},{tz},yes\n"));
    }
    let (s, v) = api
        .call(
            reqwest::Method::POST,
            "/v1/campaigns/crash/leads",
            Some(("text/csv", csv)),
        )
        .await;
    assert_eq!((s, v["imported"].as_u64()), (200, Some(6)), "{v}");
    let (s, v) = api
        .call(reqwest::Method::POST, "/v1/campaigns/crash/start", None)
        .await;
    assert_eq!(s, 200, "{v}");

    // Kill while calls are live: at least three placed, at least one still talking.
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let calls = emulator.calls();
        let live = calls.iter().filter(|c| c.status == "in-progress").count();
        if calls.len() >= 3 && live >= 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "calls did not start"
        );
    }
    server.kill9();
    let placed_before = emulator.calls().len();
    eprintln!("killed with {placed_before} calls placed");
    tokio::time::sleep(Duration::from_secs(3)).await;

    let _server = Server::spawn(&config_path, &base, &log).await;
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let c = api.get("/v1/campaigns/crash").await;
        let leads = &c["leads"];
        let open: u64 = ["pending", "dialing", "in_call"]
            .iter()
            .map(|k| leads[k].as_u64().unwrap())
            .sum();
        if open == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "campaign did not finish: {c}"
        );
    }
    assert!(emulator.wait_idle(Duration::from_secs(30)).await);

    let calls = emulator.calls();
    for n in &numbers {
        let dials = calls.iter().filter(|c| &c.to == n).count();
        assert_eq!(dials, 1, "{n} dialed {dials} times");
    }
    let stored = api.get("/v1/campaigns/crash/calls").await;
    let stored_sids: Vec<&str> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sid"].as_str().unwrap())
        .collect();
    for call in &calls {
        assert!(
            stored_sids.contains(&call.sid.as_str()),
            "call {} lost",
            call.sid
        );
    }
    let leads = api.get("/v1/campaigns/crash/leads").await;
    for lead in leads.as_array().unwrap() {
        assert_eq!(lead["state"], "done", "{lead}");
        assert_eq!(lead["attempts"], 1, "{lead}");
    }
    let stored_calls = stored.as_array().unwrap();
    assert!(
        stored_calls.iter().all(|c| c["status"] == "completed"),
        "{stored:#}"
    );
    // The call cut by the crash was settled from Twilio's side after the restart.
    let audit = api.get("/v1/campaigns/crash/audit").await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["decision"] == "reconciled_call" || e["decision"] == "recovered_call"),
        "{audit:#}"
    );
    emulator.shutdown();
}
