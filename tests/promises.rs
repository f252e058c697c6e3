//! Promises made to a lead are kept: a callback asked for "tomorrow at ten" is dialed at 10:00
//! in the lead's zone (the dialer's clock injected and moved on), and the callback opens with
//! its context and starts from what the first call learned (the lead's memory). Fake engines,
//! a real store, the real emulator over loopback; seconds.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use common::*;
use telemarketer::config::Secrets;
use telemarketer::dialer::Clock;
use telemarketer::leads::NewLead;
use telemarketer::model::{CampaignSettings, Lead, LeadState};
use telemarketer::store::Store;
use telemarketer::testbed::emulator::{CallerLine, EmulatorConfig, Persona, RunningEmulator};

const ACCOUNT: &str = "AC00000000000000000000000000000003";
const TOKEN: &str = "promises-test-token";

/// The dialer's clock: the wall clock until a test sets it (Unix ms; 0: the wall clock).
#[derive(Clone, Default)]
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn clock(&self) -> Clock {
        let set = self.0.clone();
        Clock::new(move || match set.load(Ordering::SeqCst) {
            0 => Utc::now(),
            ms => chrono::DateTime::from_timestamp_millis(ms).unwrap(),
        })
    }

    fn set(&self, at: chrono::DateTime<Utc>) {
        self.0.store(at.timestamp_millis(), Ordering::SeqCst);
    }
}

async fn lead_now(store: &Store) -> Lead {
    store.leads("cb").await.unwrap().remove(0)
}

/// Agent lines of a call, joined in the order said.
async fn agent_said(store: &Store, sid: &str) -> String {
    let detail = store.call_detail(sid).await.unwrap();
    detail
        .turns
        .iter()
        .filter(|t| t.speaker == "agent")
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// First call: yes, a bill of about 200, then "call me back tomorrow at ten". The callback is
/// not dialed at 09:59 in the lead's zone and is dialed at 10:00 (the dialer's clock); it opens
/// with the disclosure, then its context, skips the bill question answered on the first call,
/// and the generated line's prompt holds the lead's memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_is_dialed_at_its_time_and_opens_with_its_context() {
    let mut config = EmulatorConfig::new(ACCOUNT, TOKEN);
    config.ring = Duration::from_millis(200);
    config.tts = Some(Arc::new(VoicedTts));
    config.default_persona = Persona::Human {
        lines: ["First answer.", "Second answer.", "Third answer."]
            .into_iter()
            .map(|l| CallerLine::Say(l.into()))
            .collect(),
    };
    let emulator = RunningEmulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let heard = [
        "Yes.",
        "About two hundred dollars.",
        "Call me back tomorrow at ten.",
        "Yes.",
        "Yes, I own it.",
        "No thanks.",
    ];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let db = format!("sqlite://{}", tempdir().join("promises.db").display());
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
    let (app, prompts) = fake_app(test_config(&toml, secrets), &heard, "");
    let clock = TestClock::default();
    let app = app
        .dialer_poll(Duration::from_millis(100))
        .dialer_clock(clock.clock())
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
        ..Default::default()
    };
    store
        .create_campaign("cb", "cb", telemarketer::script::EXAMPLE_SCRIPT, &settings)
        .await
        .unwrap();
    let zone = zone_where_window_is(true);
    let lead = NewLead {
        phone: "+14155550370".into(),
        name: None,
        fields: BTreeMap::new(),
        timezone: zone.into(),
        consent: true,
        source: None,
    };
    store.insert_leads("cb", &[lead]).await.unwrap();
    let dialer = app.state.dialer.clone().unwrap();
    dialer.start("cb").await.unwrap();

    // The first call ends with the callback scheduled.
    let t0 = Instant::now();
    let lead = loop {
        let lead = lead_now(&store).await;
        if lead.callbacks == 1 && lead.state == LeadState::Pending {
            break lead;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no callback scheduled: {lead:#?}\n{:#?}",
            store.audit_log("cb").await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let tz: chrono_tz::Tz = zone.parse().unwrap();
    let tomorrow = Utc::now()
        .with_timezone(&tz)
        .date_naive()
        .succ_opt()
        .unwrap();
    let ten = tz
        .from_local_datetime(&tomorrow.and_hms_opt(10, 0, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(lead.next_attempt_at_ms, ten.timestamp_millis(), "{lead:#?}");
    let shown = format!(
        "callback at {}",
        ten.with_timezone(&tz).format("%Y-%m-%d 10:00 %Z")
    );
    assert_eq!(lead.callback_at.as_deref(), Some(shown.as_str()));
    // The API (and so the CLI) shows it too.
    let api = telemarketer::client::AdminClient::new(&app.base_url(), "api");
    let listed = api.leads("cb").await.unwrap();
    assert_eq!(listed[0].callback_at.as_deref(), Some(shown.as_str()));
    // And the console's campaign page, in the lead's "Next" column.
    let password = "operator password 14";
    store
        .set_operator(
            "ops",
            &telemarketer::http::console::hash_password(password).unwrap(),
        )
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http
        .post(format!("{}/login", app.base_url()))
        .form(&[("username", "ops"), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    let page = http
        .get(format!("{}/campaigns/cb", app.base_url()))
        .header("cookie", cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("<td>{shown}</td>")),
        "the console page does not show {shown:?}"
    );
    // The memory of the first call: its answers and a summary line.
    let memory = lead.memory.clone().expect("the first call is remembered");
    assert_eq!(memory.outcome, "callback");
    assert_eq!(memory.variables["monthly_bill"], "200");
    assert!(
        memory.summary.starts_with("Last call ")
            && memory.summary.contains("asked to be called back")
            && memory.summary.contains("monthly_bill 200"),
        "{memory:#?}"
    );
    let first_sid = store.calls("cb").await.unwrap()[0].sid.clone();
    let first = agent_said(&store, &first_sid).await;
    assert!(first.contains("electricity bill each month"), "{first}");
    assert!(!first.contains("asked us to call back"), "{first}");

    // 09:59 in the lead's zone: not yet.
    clock.set(ten - chrono::Duration::minutes(1));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(emulator.calls().len(), 1, "dialed before 10:00");
    assert_eq!(lead_now(&store).await.state, LeadState::Pending);

    // 10:00: dialed.
    clock.set(ten);
    let t0 = Instant::now();
    while emulator.calls().len() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the callback was not dialed at 10:00: {:#?}",
            store.audit_log("cb").await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lead = loop {
        let lead = lead_now(&store).await;
        if lead.state.is_final() {
            break lead;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the callback did not end: {lead:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(lead.outcome.as_deref(), Some("not_interested"), "{lead:#?}");
    assert_eq!(lead.callback_at, None);

    // What the callback said: the disclosure, then the context; the bill not asked again.
    let calls = store.calls("cb").await.unwrap();
    assert_eq!(calls.len(), 2);
    let second = agent_said(&store, &calls[1].sid).await;
    let disclosure = second.find("automated AI assistant").expect(&second);
    let context = second
        .find("You asked us to call back today about solar for your home.")
        .expect(&second);
    assert!(disclosure < context, "{second}");
    assert!(!second.contains("electricity bill each month"), "{second}");
    assert!(second.contains("do you own your home"), "{second}");
    // The pitch's generated line saw the memory.
    let prompts = prompts.lock().unwrap();
    assert!(
        prompts.iter().any(|p| p.iter().any(|m| m
            .content
            .contains("From earlier calls with this person: Last call"))),
        "{prompts:#?}"
    );
    let memory = lead.memory.expect("remembered");
    assert_eq!(memory.outcome, "not_interested");
    assert_eq!(memory.variables["owns_home"], "true");
    assert_eq!(memory.variables["monthly_bill"], "200");
    emulator.shutdown();
}
