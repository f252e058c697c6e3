//! Transfer to a person, end to end over loopback: the dialer places the call on the Twilio
//! emulator, the caller asks for an advisor, the agent says the handoff line and replaces the
//! call's TwiML with a `<Dial>`; the emulator's scripted advisor answers (and hears the warm
//! whisper, our TTS's audio) or never does (the caller hears the no-answer line and the lead is
//! scheduled for a callback). Fake engines: the TTS is 60 ms of tone per character, so the
//! whisper's length says which line it is. Seconds each.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use telemarketer::app::LocalApp;
use telemarketer::config::Secrets;
use telemarketer::leads::NewLead;
use telemarketer::model::{CampaignSettings, LeadState, TransferSettings};
use telemarketer::store::Store;
use telemarketer::testbed::emulator::{
    CallerLine, EmulatedCall, EmulatorConfig, Persona, Played, RunningEmulator, WebhookKind,
};

const ACCOUNT: &str = "AC00000000000000000000000000000007";
const TOKEN: &str = "transfer-test-token";
const LEAD: &str = "+14155550170";
const ADVISOR: &str = "+14155550199";
const ASK: &str = "I would like to talk to an advisor.";
const SUMMARY: &str = "Lead Kim Park wants an advisor.";
const NO_ANSWER: &str = "Nobody is free right now. We will call you back. Goodbye.";

/// A short script: the greeting, one question, the transfer node and its fallback.
const SCRIPT: &str = r#"
[script]
name = "Transfer test"
persona = "Nova"
company = "Sunrise Solar"
callback_number = "+1 555 010 0200"
opening = "Hi, this is {persona}."
disclosure = "I am an AI assistant."
start = "intro"

[globals]
transfer_no_answer = "Nobody is free right now. We will call you back. Goodbye."

[[node]]
id = "intro"
say = "Want an advisor?"
  [[node.intent]]
  name = "advisor"
  examples = ["I would like to talk to an advisor"]
  next = "transfer"

[[node]]
id = "transfer"
say = "Connecting you now."
transfer = "Lead {name} wants an advisor."
fallback = "later"

[[node]]
id = "later"
say = "We will call you back. Goodbye."
end = "callback"
"#;

/// The emulator (the lead asks for an advisor, then stays on the line; the advisor's number
/// answers as `advisor`), our server with a store and a dialer, and the campaign started.
async fn transfer_call(advisor: Persona) -> (RunningEmulator, LocalApp, Store) {
    let mut config = EmulatorConfig::new(ACCOUNT, TOKEN);
    config.ring = Duration::from_millis(200);
    config.tts = Some(std::sync::Arc::new(VoicedTts));
    config.personas.insert(
        LEAD.into(),
        Persona::Human {
            lines: vec![
                CallerLine::Say(ASK.into()),
                // Still there when the line changes hands.
                CallerLine::Silence(Duration::from_secs(20)),
            ],
        },
    );
    config.personas.insert(ADVISOR.into(), advisor);
    let emulator = RunningEmulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let db = format!("sqlite://{}", tempdir().join("transfer.db").display());
    let toml = format!(
        "[server]\npublic_url = \"http://{addr}\"\n[store]\nurl = {db:?}\n\
         [twilio]\nbase_url = {:?}\nworker_id = \"test-worker\"\n",
        emulator.base_url()
    );
    let secrets = Secrets {
        api_token: Some("api".into()),
        twilio_auth_token: Some(TOKEN.into()),
        twilio_account_sid: Some(ACCOUNT.into()),
        ..Default::default()
    };
    let (app, _) = fake_app(test_config(&toml, secrets), &[ASK], "");
    let app = app
        .dialer_poll(Duration::from_millis(100))
        .spawn(listener)
        .await
        .unwrap();
    let store = app.state.store.clone().unwrap();
    let settings = CampaignSettings {
        from_number: "+15005550006".into(),
        max_concurrent: 1,
        calls_per_second: 10.0,
        max_attempts: 1,
        machine_detection: false,
        transfer: Some(TransferSettings {
            number: ADVISOR.into(),
            // Always staffed, so the test does not depend on the hour.
            hours_start: "00:00".into(),
            hours_end: "23:59".into(),
            timezone: "UTC".into(),
            weekends: true,
            timeout_s: 5,
            warm: true,
        }),
        ..Default::default()
    };
    store
        .create_campaign("t", "Transfer", SCRIPT, &settings)
        .await
        .unwrap();
    let lead = NewLead {
        phone: LEAD.into(),
        name: Some("Kim Park".into()),
        fields: BTreeMap::new(),
        timezone: zone_where_window_is(true).into(),
        consent: true,
        source: None,
    };
    store.insert_leads("t", &[lead]).await.unwrap();
    app.state.dialer.clone().unwrap().start("t").await.unwrap();
    (emulator, app, store)
}

/// The one call, once it has ended and sent its last webhook.
async fn ended_call(emulator: &RunningEmulator) -> EmulatedCall {
    let t0 = Instant::now();
    while emulator.calls().is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(20), "no call placed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(emulator.wait_idle(Duration::from_secs(60)).await);
    let calls = emulator.calls();
    assert_eq!(calls.len(), 1, "one call (the dial is its leg): {calls:#?}");
    calls.into_iter().next().unwrap()
}

/// The lead once `done` (or waiting for its callback).
async fn settled_lead(store: &Store) -> telemarketer::model::Lead {
    let t0 = Instant::now();
    loop {
        let lead = store.leads("t").await.unwrap().remove(0);
        if lead.state == LeadState::Done || lead.callbacks > 0 {
            return lead;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "lead not settled: {lead:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Seconds of a WAV our server served, after checking it is the phone-rate PCM we promise.
fn wav_seconds(played: &Played) -> f64 {
    assert_eq!(played.status, Some(200), "{}", played.url);
    assert_eq!(played.content_type.as_deref(), Some("audio/wav"));
    let r = hound::WavReader::new(std::io::Cursor::new(played.audio.clone())).unwrap();
    let spec = r.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 8000, 16)
    );
    r.duration() as f64 / 8000.0
}

/// The fake TTS says a line in 60 ms per character.
fn fake_seconds(line: &str) -> f64 {
    line.len() as f64 * 0.06
}

fn signed_and_answered(call: &EmulatedCall, kind: WebhookKind) -> usize {
    let sent: Vec<_> = call.callbacks.iter().filter(|c| c.kind == kind).collect();
    for c in &sent {
        assert_eq!(c.status, Some(200), "{c:#?}");
        assert!(!c.signature.is_empty());
    }
    sent.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_reaches_the_advisor_who_hears_the_summary_first() {
    let (emulator, app, store) = transfer_call(Persona::Human { lines: Vec::new() }).await;
    let call = ended_call(&emulator).await;
    let dial = call
        .dial
        .clone()
        .expect("the call was transferred with <Dial>");
    assert_eq!(dial.number, ADVISOR);
    assert_eq!(dial.status, "completed", "{call:#?}");
    // The warm whisper: one <Play> of the summary, heard before the bridge.
    assert_eq!(dial.whisper.len(), 1, "{dial:#?}");
    let heard = wav_seconds(&dial.whisper[0]);
    assert!(
        (heard - fake_seconds(SUMMARY)).abs() < 0.05,
        "the whisper lasts {heard} s, the summary {} s",
        fake_seconds(SUMMARY)
    );
    assert_eq!(signed_and_answered(&call, WebhookKind::Whisper), 1);
    assert_eq!(signed_and_answered(&call, WebhookKind::DialAction), 1);
    assert_eq!(call.hung_up_by.as_deref(), Some("twiml"), "{call:#?}");

    let lead = settled_lead(&store).await;
    assert_eq!(lead.state, LeadState::Done, "{lead:#?}");
    assert_eq!(lead.outcome.as_deref(), Some("transferred"));
    let detail = store.call_detail(&call.sid).await.unwrap();
    let lines: Vec<String> = detail.turns.iter().map(|t| t.text.clone()).collect();
    // The caller heard the handoff line on our stream, then the line changed hands.
    let handoff = lines.iter().position(|l| l == "Connecting you now.");
    let note = format!("[transferred to {ADVISOR}; the advisor hears: {SUMMARY}]");
    let transferred = lines.iter().position(|l| *l == note);
    assert!(handoff.is_some() && transferred > handoff, "{lines:#?}");
    drop(app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_answers_the_caller_is_told_and_called_back() {
    let (emulator, app, store) = transfer_call(Persona::NoAnswer).await;
    let call = ended_call(&emulator).await;
    let dial = call
        .dial
        .clone()
        .expect("the call was transferred with <Dial>");
    assert_eq!(dial.status, "no-answer", "{call:#?}");
    assert!(dial.whisper.is_empty());
    assert_eq!(signed_and_answered(&call, WebhookKind::Whisper), 0);
    assert_eq!(signed_and_answered(&call, WebhookKind::DialAction), 1);
    // The action's TwiML: our no-answer line, then the hang-up.
    assert_eq!(call.played.len(), 1, "{call:#?}");
    let heard = wav_seconds(&call.played[0]);
    assert!(
        (heard - fake_seconds(NO_ANSWER)).abs() < 0.05,
        "the caller heard {heard} s, the no-answer line is {} s",
        fake_seconds(NO_ANSWER)
    );
    assert_eq!(call.hung_up_by.as_deref(), Some("twiml"));

    let lead = settled_lead(&store).await;
    assert_eq!(
        (lead.state, lead.callbacks, lead.outcome.as_deref()),
        (LeadState::Pending, 1, Some("callback")),
        "{lead:#?}"
    );
    let detail = store.call_detail(&call.sid).await.unwrap();
    assert!(
        detail
            .turns
            .iter()
            .any(|t| t.text == format!("[transfer no-answer] {NO_ANSWER}")),
        "{:#?}",
        detail.turns
    );
    drop(app);
}
