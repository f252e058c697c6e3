//! The dialer and Twilio webhooks without models (fake engines, real store, real emulator, real
//! HTTP): signatures on status callbacks, duplicates and out-of-order callbacks, pause / resume /
//! stop, the concurrency limit and pacing. Seconds, not minutes.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use telemarketer::app::LocalApp;
use telemarketer::client::AdminClient;
use telemarketer::config::Secrets;
use telemarketer::dialer::Dialer;
use telemarketer::leads::NewLead;
use telemarketer::model::{CampaignSettings, CampaignState, LeadState, NewCall};
use telemarketer::store::Store;
use telemarketer::testbed::emulator::{EmulatorConfig, Fault, Persona, RunningEmulator};
use telemarketer::twilio::signature;

const ACCOUNT: &str = "AC00000000000000000000000000000002";
const TOKEN: &str = "dialer-test-token";

fn lead(phone: &str) -> NewLead {
    NewLead {
        phone: phone.into(),
        name: None,
        fields: BTreeMap::new(),
        timezone: zone_where_window_is(true).into(),
        consent: true,
        source: None,
    }
}

/// A server with fake engines, a real store and (optionally) a dialer towards `twilio_base`.
async fn server(twilio_base: Option<&str>) -> (String, Store, Option<Dialer>) {
    let secrets = Secrets {
        api_token: Some("api".into()),
        twilio_auth_token: Some(TOKEN.into()),
        ..Default::default()
    };
    let db = format!("sqlite://{}", tempdir().join("dialer.db").display());
    let app = server_with(twilio_base, &db, secrets).await;
    let store = app.state.store.clone().unwrap();
    (app.base_url(), store, app.state.dialer.clone())
}

/// [`server`] on a given store and secrets (the account SID is added with a Twilio base), with
/// the dialer's clocks short: 6 s leases, 2 s to settle an unknown create, a reconcile pass
/// every second.
async fn server_with(twilio_base: Option<&str>, store_url: &str, secrets: Secrets) -> LocalApp {
    server_hearing(twilio_base, store_url, secrets, &[]).await
}

/// [`server_with`], its fake STT hearing `transcripts` in order.
async fn server_hearing(
    twilio_base: Option<&str>,
    store_url: &str,
    mut secrets: Secrets,
    transcripts: &[&str],
) -> LocalApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut toml = format!(
        "[server]\npublic_url = \"http://{addr}\"\n[store]\nurl = {store_url:?}\n\
         [dialer]\nlease_s = 6\nsettle_unknown_s = 2\nreconcile_s = 1\n"
    );
    if let Some(base) = twilio_base {
        toml.push_str(&format!(
            "[twilio]\nbase_url = {base:?}\nworker_id = \"test-worker\"\n"
        ));
        secrets.twilio_account_sid = Some(ACCOUNT.into());
    }
    let (app, _) = fake_app(test_config(&toml, secrets), transcripts, "");
    app.dialer_poll(Duration::from_millis(100))
        .spawn(listener)
        .await
        .unwrap()
}

async fn post_status(
    base: &str,
    params: &[(&str, &str)],
    signature: Option<String>,
) -> reqwest::StatusCode {
    let url = format!("{base}/twilio/status");
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let mut req = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(sig) = signature {
        req = req.header("x-twilio-signature", sig);
    }
    req.send().await.unwrap().status()
}

fn sign(base: &str, params: &[(&str, &str)]) -> String {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    signature::compute(TOKEN, &format!("{base}/twilio/status"), &owned)
}

#[tokio::test]
async fn status_callbacks_are_signed_deduplicated_and_ordered() {
    let (base, store, _) = server(None).await;
    store
        .create_campaign("c", "C", "s", &CampaignSettings::default())
        .await
        .unwrap();
    store
        .insert_leads("c", &[lead("+14155550120")])
        .await
        .unwrap();
    let lead_id = store.leads("c").await.unwrap()[0].id;
    let sid = "CA11111111111111111111111111111111";
    store
        .record_dial(&NewCall {
            sid: sid.into(),
            campaign_id: "c".into(),
            lead_id,
            from: "+15005550006".into(),
            to: "+14155550120".into(),
            status: "queued".into(),
        })
        .await
        .unwrap();
    let cb = |seq: &'static str, status: &'static str| {
        vec![
            ("CallSid", sid),
            ("AccountSid", ACCOUNT),
            ("CallStatus", status),
            ("SequenceNumber", seq),
        ]
    };

    // Unsigned and badly signed: 403, nothing recorded.
    let p = cb("0", "initiated");
    assert_eq!(post_status(&base, &p, None).await, 403);
    assert_eq!(post_status(&base, &p, Some("bm90IGl0".into())).await, 403);
    let mut tampered = p.clone();
    tampered[2] = ("CallStatus", "completed");
    assert_eq!(
        post_status(&base, &tampered, Some(sign(&base, &p))).await,
        403
    );
    assert!(store.call_detail(sid).await.unwrap().events.is_empty());

    // Signed, in a scrambled order, one sent twice.
    for (seq, status) in [
        ("0", "initiated"),
        ("3", "completed"),
        ("1", "ringing"),
        ("3", "completed"),
        ("2", "in-progress"),
    ] {
        let p = cb(seq, status);
        assert_eq!(post_status(&base, &p, Some(sign(&base, &p))).await, 204);
    }
    let detail = store.call_detail(sid).await.unwrap();
    assert_eq!(detail.call.status, "completed");
    assert_eq!(detail.events.len(), 4, "{:?}", detail.events);
    assert_eq!(detail.events.iter().filter(|e| !e.applied).count(), 2);

    // Malformed: a clear 400, not a crash.
    let p = vec![
        ("CallSid", sid),
        ("CallStatus", "ringing"),
        ("SequenceNumber", "x"),
    ];
    assert_eq!(post_status(&base, &p, Some(sign(&base, &p))).await, 400);
    let p = vec![
        ("CallSid", "nope"),
        ("CallStatus", "ringing"),
        ("SequenceNumber", "1"),
    ];
    assert_eq!(post_status(&base, &p, Some(sign(&base, &p))).await, 400);
}

/// Everyone is busy (no media), one attempt each: what is left to watch is the dialer's control
/// and limits.
#[tokio::test]
async fn pause_resume_stop_concurrency_and_pacing() {
    let mut config = EmulatorConfig::new(ACCOUNT, TOKEN);
    config.ring = Duration::from_millis(300);
    config.default_persona = Persona::Busy;
    let emulator = RunningEmulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (_, store, dialer) = server(Some(&emulator.base_url())).await;
    let dialer = dialer.unwrap();
    let settings = CampaignSettings {
        from_number: "+15005550006".into(),
        max_concurrent: 1,
        calls_per_second: 4.0,
        max_attempts: 1,
        machine_detection: false,
        ..Default::default()
    };
    store
        .create_campaign(
            "busy",
            "Busy",
            telemarketer::script::EXAMPLE_SCRIPT,
            &settings,
        )
        .await
        .unwrap();
    let leads: Vec<NewLead> = (0..6)
        .map(|i| lead(&format!("+1415555{:04}", 130 + i)))
        .collect();
    store.insert_leads("busy", &leads).await.unwrap();

    dialer.start("busy").await.unwrap();
    let t0 = Instant::now();
    while emulator.calls().is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    dialer
        .set_state("busy", CampaignState::Paused)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let while_paused = emulator.calls().len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        emulator.calls().len(),
        while_paused,
        "no dials while paused"
    );
    assert!(while_paused <= 2, "{while_paused}");

    dialer
        .set_state("busy", CampaignState::Running)
        .await
        .unwrap();
    let t0 = Instant::now();
    while store.lead_counts("busy").await.unwrap().open() > 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "campaign did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let calls = emulator.calls();
    assert_eq!(calls.len(), 6);
    assert!(store
        .leads("busy")
        .await
        .unwrap()
        .iter()
        .all(|l| l.state == LeadState::Failed));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.campaign("busy").await.unwrap().state,
        CampaignState::Completed
    );

    // max_concurrent 1: each call ended (its last callback) before the next was created.
    let mut spans: Vec<(String, String)> = calls
        .iter()
        .map(|c| {
            let first = c
                .callbacks
                .first()
                .and_then(|cb| cb.param("Timestamp").map(String::from));
            let last = c
                .callbacks
                .last()
                .and_then(|cb| cb.param("Timestamp").map(String::from));
            (first.unwrap_or_default(), last.unwrap_or_default())
        })
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        let end = chrono::DateTime::parse_from_rfc2822(&pair[0].1).unwrap();
        let next = chrono::DateTime::parse_from_rfc2822(&pair[1].0).unwrap();
        assert!(next >= end, "calls overlapped: {pair:?}");
    }

    // Stop while leads are left: no more dials; they stay pending.
    store
        .create_campaign(
            "busy2",
            "Busy 2",
            telemarketer::script::EXAMPLE_SCRIPT,
            &settings,
        )
        .await
        .unwrap();
    let more: Vec<NewLead> = (0..4)
        .map(|i| lead(&format!("+1415555{:04}", 140 + i)))
        .collect();
    store.insert_leads("busy2", &more).await.unwrap();
    dialer.start("busy2").await.unwrap();
    let t0 = Instant::now();
    while emulator.calls().len() < 7 {
        assert!(t0.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    dialer
        .set_state("busy2", CampaignState::Stopped)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_stop = emulator.calls().len();
    assert!(after_stop <= 8, "{after_stop}");
    let counts = store.lead_counts("busy2").await.unwrap();
    assert!(counts.pending >= 2, "{counts:?}");
    assert_eq!(
        store.campaign("busy2").await.unwrap().state,
        CampaignState::Stopped
    );
    emulator.shutdown();
}

/// The CLI is a thin client of the admin API: drive it as an operator would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_the_admin_api() {
    let (base, store, _) = server(None).await;
    let dir = tempdir();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_telemarketer"))
            .args(args)
            .args(["--server", &base])
            .env("TELEMARKETER_API_TOKEN", "api")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let settings = dir.join("settings.json");
    std::fs::write(
        &settings,
        r#"{"from_number": "+15005550006", "max_concurrent": 1}"#,
    )
    .unwrap();
    let settings = settings.display().to_string();
    let (ok, out, err) = tokio::task::block_in_place(|| {
        cli(&[
            "campaign",
            "create",
            "cli",
            "--name",
            "From the CLI",
            "--settings",
            &settings,
        ])
    });
    assert!(ok, "{out}{err}");
    assert!(out.contains("\"state\": \"draft\""), "{out}");

    let leads = dir.join("leads.csv");
    std::fs::write(
        &leads,
        "phone,name,consent\n(415) 555-0160,Ann,yes\nnope,Bad,yes\n",
    )
    .unwrap();
    let leads = leads.display().to_string();
    let (ok, out, err) =
        tokio::task::block_in_place(|| cli(&["campaign", "import", "cli", &leads]));
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("\"imported\": 1") && out.contains("\"row\": 3"),
        "{out}"
    );
    assert_eq!(store.leads("cli").await.unwrap()[0].phone, "+14155550160");

    let (ok, out, err) = tokio::task::block_in_place(|| {
        cli(&["dnc", "add", "(415) 555-0161", "--reason", "asked by email"])
    });
    assert!(ok, "{out}{err}");
    let (_, out, _) = tokio::task::block_in_place(|| cli(&["dnc", "list"]));
    assert!(
        out.contains("+14155550161") && out.contains("asked by email"),
        "{out}"
    );
    let (ok, _, _) = tokio::task::block_in_place(|| cli(&["dnc", "remove", "+14155550161"]));
    assert!(ok);
    assert!(store.dnc_entry("+14155550161").await.unwrap().is_none());

    let csv = dir.join("out.csv").display().to_string();
    let (ok, _, err) =
        tokio::task::block_in_place(|| cli(&["campaign", "export", "cli", "-o", &csv]));
    assert!(ok, "{err}");
    let exported = std::fs::read_to_string(&csv).unwrap();
    assert!(
        exported.starts_with("phone,name,state,outcome"),
        "{exported}"
    );
    assert!(exported.contains("+14155550160,Ann,pending"), "{exported}");

    // No Twilio credentials on this server: starting says why, and the CLI exits non-zero.
    let (ok, _, err) = tokio::task::block_in_place(|| cli(&["campaign", "start", "cli"]));
    assert!(!ok);
    assert!(
        err.contains("503") && err.contains("TWILIO_ACCOUNT_SID"),
        "{err}"
    );
    // A wrong token is refused.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_telemarketer"))
        .args(["campaign", "list", "--server", &base])
        .env("TELEMARKETER_API_TOKEN", "wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}

/// Busy lines, one attempt each, machine detection off: calls end in a blink, without media.
fn busy_settings(max_concurrent: u32, calls_per_second: f64) -> CampaignSettings {
    CampaignSettings {
        from_number: "+15005550006".into(),
        max_concurrent,
        calls_per_second,
        max_attempts: 1,
        machine_detection: false,
        ..Default::default()
    }
}

async fn busy_emulator() -> RunningEmulator {
    let mut config = EmulatorConfig::new(ACCOUNT, TOKEN);
    config.ring = Duration::from_millis(200);
    config.default_persona = Persona::Busy;
    RunningEmulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn campaign_with_leads(
    store: &Store,
    id: &str,
    settings: &CampaignSettings,
    phones: &[String],
) {
    store
        .create_campaign(id, id, telemarketer::script::EXAMPLE_SCRIPT, settings)
        .await
        .unwrap();
    let leads: Vec<NewLead> = phones.iter().map(|p| lead(p)).collect();
    store.insert_leads(id, &leads).await.unwrap();
}

/// Waits until every lead of the campaign is in a final state.
async fn until_finished(store: &Store, campaign: &str, limit: Duration) {
    let t0 = Instant::now();
    loop {
        let counts = store.lead_counts(campaign).await.unwrap();
        if counts.open() == 0 {
            return;
        }
        assert!(
            t0.elapsed() < limit,
            "campaign {campaign} did not finish: {counts:?}\n{:#?}",
            store.leads(campaign).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn decisions(audit: &[telemarketer::model::AuditEntry], lead_id: Option<i64>) -> Vec<String> {
    audit
        .iter()
        .filter(|e| e.lead_id == lead_id)
        .map(|e| e.decision.clone())
        .collect()
}

/// Twilio answers every create attempt with a 500 and never lists the call: the outcome is
/// unknown, so the lead waits in `dial_unknown` (no blind retry) until the settle time has
/// passed with the list still empty, and only then is dialed again, once.
#[tokio::test]
async fn an_unknown_create_waits_for_the_call_list_and_is_never_blindly_retried() {
    let emulator = busy_emulator().await;
    let (_, store, dialer) = server(Some(&emulator.base_url())).await;
    let phone = "+14155550301".to_string();
    campaign_with_leads(
        &store,
        "unknown",
        &busy_settings(1, 10.0),
        std::slice::from_ref(&phone),
    )
    .await;
    // Five attempts (the client's whole retry budget), each a 500 with no call behind it.
    emulator.inject(vec![Fault::ServerErrorBeforeCreate; 5]);
    dialer.unwrap().start("unknown").await.unwrap();

    let t0 = Instant::now();
    let lead = loop {
        let lead = store.leads("unknown").await.unwrap().remove(0);
        if lead.state == LeadState::DialUnknown {
            break lead;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{lead:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(lead.attempts, 0);
    let creates = emulator.create_requests().len();
    assert_eq!(creates, 5, "{:?}", emulator.create_requests());
    // Within the settle time, nothing is sent again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(emulator.create_requests().len(), 5);
    assert_eq!(
        store.lead(lead.id).await.unwrap().state,
        LeadState::DialUnknown
    );

    until_finished(&store, "unknown", Duration::from_secs(30)).await;
    let created: Vec<(String, u16)> = emulator.create_requests();
    assert_eq!(created.len(), 6, "{created:?}");
    assert_eq!(emulator.calls().len(), 1, "dialed once");
    let lead = store.lead(lead.id).await.unwrap();
    assert_eq!(
        (lead.state, lead.attempts, lead.outcome.as_deref()),
        (LeadState::Failed, 1, Some("busy"))
    );
    let audit = store.audit_log("unknown").await.unwrap();
    let trail = decisions(&audit, Some(lead.id));
    let at = |d: &str| {
        trail
            .iter()
            .position(|x| x == d)
            .unwrap_or_else(|| panic!("{d}: {trail:?}"))
    };
    assert!(at("dial_unknown") < at("recovered_unplaced"), "{trail:?}");
    assert!(
        at("recovered_unplaced") < at("attempts_exhausted"),
        "{trail:?}"
    );
    // The loop reported the trouble once and its end once.
    let loop_trail = decisions(&audit, None);
    assert_eq!(
        loop_trail,
        vec!["dialer_error".to_string(), "dialer_recovered".to_string()],
        "{audit:#?}"
    );
    emulator.shutdown();
}

/// A claim left `dial_unknown` by an appliance that is gone, for a call Twilio did place: the
/// reconcile adopts that call (no second dial) and the lead ends by it.
#[tokio::test]
async fn a_call_placed_under_an_unknown_outcome_is_adopted_not_redialed() {
    let emulator = busy_emulator().await;
    let (base, store, _dialer) = server(Some(&emulator.base_url())).await;
    let phone = "+14155550302".to_string();
    let settings = busy_settings(1, 10.0);
    campaign_with_leads(&store, "adopt", &settings, std::slice::from_ref(&phone)).await;
    let now = telemarketer::store::now_ms();
    let claimed = store
        .claim_next_lead("adopt", now, "gone-appliance", now + 600_000)
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .mark_dial_unknown(&claimed, None, "gone-appliance", now + 600_000)
        .await
        .unwrap());
    // The call that appliance's create placed before it lost the answer.
    let twilio = telemarketer::twilio_rest::TwilioClient::new(
        &emulator.base_url(),
        ACCOUNT,
        telemarketer::twilio_rest::TwilioAuth::AuthToken(TOKEN.into()),
    )
    .unwrap();
    let placed = twilio
        .create_call(&telemarketer::twilio_rest::CreateCall {
            to: phone.clone(),
            from: settings.from_number.clone(),
            url: format!("{base}/twilio/voice?campaign=adopt&lead={}", claimed.id),
            status_callback: Some(format!("{base}/twilio/status")),
            ..Default::default()
        })
        .await
        .unwrap();

    until_finished(&store, "adopt", Duration::from_secs(30)).await;
    assert_eq!(emulator.calls().len(), 1, "never dialed again");
    let lead = store.lead(claimed.id).await.unwrap();
    assert_eq!(
        (lead.state, lead.attempts, lead.outcome.as_deref()),
        (LeadState::Failed, 1, Some("busy"))
    );
    assert_eq!(store.calls("adopt").await.unwrap()[0].sid, placed.sid);
    let audit = store.audit_log("adopt").await.unwrap();
    let trail = decisions(&audit, Some(lead.id));
    assert!(trail.contains(&"recovered_call".to_string()), "{trail:?}");
    emulator.shutdown();
}

/// A number put on the do-not-call list after its lead was claimed (while the claim waits for
/// its pacing slot) is not dialed: the list is checked again right before the create.
#[tokio::test]
async fn a_number_listed_after_the_claim_is_not_dialed() {
    let emulator = busy_emulator().await;
    let (_, store, dialer) = server(Some(&emulator.base_url())).await;
    let phones = vec!["+14155550311".to_string(), "+14155550312".to_string()];
    // One call every 3 s: the second lead waits, claimed, for its slot.
    campaign_with_leads(&store, "late-dnc", &busy_settings(5, 1.0 / 3.0), &phones).await;
    dialer.unwrap().start("late-dnc").await.unwrap();
    let t0 = Instant::now();
    loop {
        let leads = store.leads("late-dnc").await.unwrap();
        if leads[0].state != LeadState::Pending && leads[1].state == LeadState::Dialing {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{leads:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store
        .add_dnc(&phones[1], "asked by email", "api")
        .await
        .unwrap();
    until_finished(&store, "late-dnc", Duration::from_secs(20)).await;
    let leads = store.leads("late-dnc").await.unwrap();
    assert_eq!(
        (leads[1].state, leads[1].outcome.as_deref()),
        (LeadState::Skipped, Some("skip_dnc"))
    );
    assert!(emulator.calls().iter().all(|c| c.to != phones[1]));
    assert!(emulator
        .create_requests()
        .iter()
        .all(|(to, _)| *to != phones[1]));
    assert_eq!(emulator.calls().len(), 1);
    emulator.shutdown();
}

/// REST credentials by API key but no auth token: webhooks could not be verified, so the
/// dialer stays off and a campaign start answers 503 naming the reason.
#[tokio::test]
async fn without_the_auth_token_the_dialer_refuses_to_start() {
    let emulator = busy_emulator().await;
    let secrets = Secrets {
        api_token: Some("api".into()),
        twilio_api_key: Some(("SK00000000000000000000000000000001".into(), TOKEN.into())),
        ..Default::default()
    };
    let db = format!("sqlite://{}", tempdir().join("dialer.db").display());
    let app = server_with(Some(&emulator.base_url()), &db, secrets).await;
    assert!(app.state.dialer.is_none());
    let store = app.state.store.clone().unwrap();
    campaign_with_leads(
        &store,
        "nokey",
        &busy_settings(1, 1.0),
        &["+14155550321".into()],
    )
    .await;
    let api = AdminClient::new(&app.base_url(), "api");
    let err = api
        .campaign_action("nokey", telemarketer::model::api::CampaignAction::Start)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503), "{err}");
    assert!(err.to_string().contains("TWILIO_AUTH_TOKEN"), "{err}");
    assert_eq!(
        store.campaign("nokey").await.unwrap().state,
        CampaignState::Draft
    );
    assert!(emulator.create_requests().is_empty());
    emulator.shutdown();
}

/// Twilio is down when the appliance starts (a campaign running, a claim left by the previous
/// run): it serves at once, shows the trouble on the campaign, and dials every lead once, the
/// orphaned one included, as soon as Twilio is up.
#[tokio::test]
async fn twilio_down_at_startup_then_up_every_lead_dialed_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let twilio_base = format!("http://127.0.0.1:{port}");
    let db = format!("sqlite://{}", tempdir().join("dialer.db").display());
    let phones: Vec<String> = (0..3).map(|i| format!("+1415555{:04}", 330 + i)).collect();
    {
        // The previous run: a running campaign and a claim it never finished.
        let store = Store::connect(&db).await.unwrap();
        campaign_with_leads(&store, "down", &busy_settings(2, 10.0), &phones).await;
        store
            .set_campaign_state("down", CampaignState::Running)
            .await
            .unwrap();
        let now = telemarketer::store::now_ms();
        store
            .claim_next_lead("down", now - 5_000, "test-worker", now + 60_000)
            .await
            .unwrap()
            .unwrap();
        store.close().await;
    }
    let secrets = Secrets {
        api_token: Some("api".into()),
        twilio_auth_token: Some(TOKEN.into()),
        ..Default::default()
    };
    let started = Instant::now();
    let app = server_with(Some(&twilio_base), &db, secrets).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "startup waited for Twilio: {:?}",
        started.elapsed()
    );
    assert_eq!(
        reqwest::get(format!("{}/health", app.base_url()))
            .await
            .unwrap()
            .status(),
        200
    );
    let api = AdminClient::new(&app.base_url(), "api");
    let t0 = Instant::now();
    let fault = loop {
        if let Some(f) = api.campaign("down").await.unwrap().dialer_error {
            break f;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no error shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(fault.error.contains("Twilio"), "{fault:?}");
    let store = app.state.store.clone().unwrap();
    assert_eq!(store.lead_counts("down").await.unwrap().open(), 3);

    // Twilio comes up on the address the appliance was given.
    let mut config = EmulatorConfig::new(ACCOUNT, TOKEN);
    config.ring = Duration::from_millis(200);
    config.default_persona = Persona::Busy;
    let emulator = RunningEmulator::start(config, format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap();
    until_finished(&store, "down", Duration::from_secs(90)).await;
    for phone in &phones {
        let dials = emulator.calls().iter().filter(|c| &c.to == phone).count();
        assert_eq!(dials, 1, "{phone} dialed {dials} times");
    }
    assert!(store
        .leads("down")
        .await
        .unwrap()
        .iter()
        .all(|l| l.state == LeadState::Failed && l.attempts == 1));
    let t0 = Instant::now();
    while api.campaign("down").await.unwrap().dialer_error.is_some() {
        assert!(t0.elapsed() < Duration::from_secs(10), "error still shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let audit = store.audit_log("down").await.unwrap();
    let loop_trail = decisions(&audit, None);
    assert_eq!(
        loop_trail.iter().filter(|d| *d == "dialer_error").count(),
        1,
        "{loop_trail:?}"
    );
    assert_eq!(
        loop_trail.last().map(String::as_str),
        Some("dialer_recovered"),
        "{loop_trail:?}"
    );
    emulator.shutdown();
}

/// The database is locked by another writer for longer than its busy timeout: the dialer's
/// writes fail, the loop shows the error, retries with back-off, audits it once, and finishes
/// the campaign once the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_is_retried_and_the_campaign_finishes() {
    use sqlx::Connection;
    let emulator = busy_emulator().await;
    let db = format!("sqlite://{}", tempdir().join("dialer.db").display());
    let secrets = Secrets {
        api_token: Some("api".into()),
        twilio_auth_token: Some(TOKEN.into()),
        ..Default::default()
    };
    let app = server_with(Some(&emulator.base_url()), &db, secrets).await;
    let store = app.state.store.clone().unwrap();
    let phones: Vec<String> = (0..3).map(|i| format!("+1415555{:04}", 340 + i)).collect();
    campaign_with_leads(&store, "locked", &busy_settings(2, 10.0), &phones).await;
    // Due in a moment, so nothing is in flight when the lock is taken.
    let due = telemarketer::store::now_ms() + 1_500;
    for l in store.leads("locked").await.unwrap() {
        store
            .set_lead_state(l.id, LeadState::Pending, due, None)
            .await
            .unwrap();
    }
    app.state
        .dialer
        .clone()
        .unwrap()
        .start("locked")
        .await
        .unwrap();
    let mut lock = sqlx::SqliteConnection::connect(&db).await.unwrap();
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .unwrap();
    let api = AdminClient::new(&app.base_url(), "api");
    let t0 = Instant::now();
    let fault = loop {
        if let Some(f) = api.campaign("locked").await.unwrap().dialer_error {
            break f;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no error shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(fault.error.contains("locked"), "{fault:?}");
    assert!(emulator.calls().is_empty());
    sqlx::raw_sql("COMMIT").execute(&mut lock).await.unwrap();
    lock.close().await.unwrap();

    until_finished(&store, "locked", Duration::from_secs(60)).await;
    assert_eq!(emulator.calls().len(), 3);
    for phone in &phones {
        assert_eq!(
            emulator.calls().iter().filter(|c| &c.to == phone).count(),
            1
        );
    }
    let t0 = Instant::now();
    while store.campaign("locked").await.unwrap().state != CampaignState::Completed {
        assert!(t0.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(api.campaign("locked").await.unwrap().dialer_error.is_none());
    let loop_trail = decisions(&store.audit_log("locked").await.unwrap(), None);
    assert_eq!(
        loop_trail,
        vec!["dialer_error".to_string(), "dialer_recovered".to_string()]
    );
    emulator.shutdown();
}

/// Settings out of range are refused with every violation named; an export cannot carry a
/// spreadsheet formula, while phone numbers read as they are.
#[tokio::test]
async fn bad_settings_are_refused_and_the_export_defuses_formulas() {
    let (base, store, _) = server(None).await;
    let api = AdminClient::new(&base, "api");
    let bad = telemarketer::model::api::NewCampaign {
        id: "bad".into(),
        name: "Bad".into(),
        script: None,
        settings: CampaignSettings {
            from_number: "+15005550006".into(),
            retry_delays_s: vec![u64::MAX],
            max_attempts: 0,
            max_concurrent: 100_000,
            ring_timeout_s: 1,
            ..Default::default()
        },
    };
    let err = api.create_campaign(&bad).await.unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    let msg = err.to_string();
    for field in [
        "retry_delays_s",
        "max_attempts",
        "max_concurrent",
        "ring_timeout_s",
    ] {
        assert!(msg.contains(field), "{field}: {msg}");
    }
    assert!(store.campaigns().await.unwrap().is_empty());

    let good = telemarketer::model::api::NewCampaign {
        id: "csv".into(),
        settings: busy_settings(1, 1.0),
        ..bad
    };
    api.create_campaign(&good).await.unwrap();
    let csv = "phone,name,consent,note\n+14155550350,\"=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",yes,\"@SUM(A1)\"\n";
    api.import_leads(
        "csv",
        csv.as_bytes().to_vec(),
        telemarketer::client::LeadFormat::Csv,
    )
    .await
    .unwrap();
    let exported = api.export_csv("csv").await.unwrap();
    let row = exported.lines().nth(1).unwrap();
    assert!(row.starts_with("+14155550350,"), "{row}");
    assert!(row.contains("'=HYPERLINK"), "{row}");
    assert!(
        !row.contains(",=HYPERLINK") && !row.contains(",\"=HYPERLINK"),
        "{row}"
    );
}

/// Every engine and admin route takes the bearer extractor: without the token, or with a
/// wrong one, each answers 401 before reading anything else of the request (an unknown
/// campaign or a malformed body would otherwise say 404 or 400), and changes nothing.
#[tokio::test]
async fn every_api_route_refuses_a_missing_or_wrong_bearer_token() {
    let (base, store, _) = server(None).await;
    let http = reqwest::Client::new();
    let sid = "CA0123456789abcdef0123456789abcdef";
    let routes: &[(&str, String)] = &[
        ("POST", "/v1/calls".into()),
        ("GET", format!("/v1/calls/{sid}")),
        ("GET", format!("/v1/calls/{sid}/record")),
        ("POST", "/v1/campaigns".into()),
        ("GET", "/v1/campaigns".into()),
        ("GET", "/v1/campaigns/nope".into()),
        ("POST", "/v1/campaigns/nope/leads".into()),
        ("GET", "/v1/campaigns/nope/leads".into()),
        ("GET", "/v1/campaigns/nope/calls".into()),
        ("GET", "/v1/campaigns/nope/audit".into()),
        ("GET", "/v1/campaigns/nope/export.csv".into()),
        ("POST", "/v1/campaigns/nope/start".into()),
        ("GET", "/v1/dnc".into()),
        ("POST", "/v1/dnc".into()),
        ("DELETE", "/v1/dnc/+14155550123".into()),
        ("GET", "/metrics".into()),
    ];
    for (method, path) in routes {
        for auth in [None, Some("Bearer wrong"), Some("api"), Some("Basic api")] {
            let mut req = http.request(method.parse().unwrap(), format!("{base}{path}"));
            if let Some(auth) = auth {
                req = req.header("authorization", auth);
            }
            let resp = req.body("{not json").send().await.unwrap();
            assert_eq!(resp.status(), 401, "{method} {path} with {auth:?}");
        }
    }
    assert!(store.campaigns().await.unwrap().is_empty());
    assert!(store.dnc_list().await.unwrap().is_empty());
    // The right token gets through (here to a 404 for the unknown campaign).
    let resp = http
        .get(format!("{base}/v1/campaigns/nope"))
        .bearer_auth("api")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

/// Two appliances on one database: this one (`test-worker`) starts while another
/// (`appliance-a`) holds a live claim and a lapsed one. Its recovery settles only the lapsed
/// claim (dialed once, by Twilio's list found empty); the live one is never released nor
/// dialed, and keeps its owner and lease.
/// The emulator, where everyone answers as a person saying `lines` (in the test voice), and
/// our server (SQLite) dialing it, whose recogniser hears `transcripts`.
async fn emulated_human(
    lines: Vec<telemarketer::testbed::emulator::CallerLine>,
    transcripts: &[&str],
) -> (RunningEmulator, LocalApp, Store) {
    let mut config = EmulatorConfig::new(ACCOUNT, TOKEN);
    config.ring = Duration::from_millis(200);
    config.tts = Some(std::sync::Arc::new(VoicedTts));
    config.default_persona = Persona::Human { lines };
    let emulator = RunningEmulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let db = format!("sqlite://{}", tempdir().join("dialer.db").display());
    let secrets = Secrets {
        api_token: Some("api".into()),
        twilio_auth_token: Some(TOKEN.into()),
        ..Default::default()
    };
    let app = server_hearing(Some(&emulator.base_url()), &db, secrets, transcripts).await;
    let store = app.state.store.clone().unwrap();
    (emulator, app, store)
}

#[tokio::test]
async fn recovery_leaves_another_appliances_live_claims_alone() {
    let emulator = busy_emulator().await;
    let db = format!("sqlite://{}", tempdir().join("dialer.db").display());
    let phones = vec!["+14155550361".to_string(), "+14155550362".to_string()];
    let now = telemarketer::store::now_ms();
    let (live, lapsed) = {
        let store = Store::connect(&db).await.unwrap();
        campaign_with_leads(&store, "shared", &busy_settings(2, 10.0), &phones).await;
        store
            .set_campaign_state("shared", CampaignState::Running)
            .await
            .unwrap();
        let live = store
            .claim_next_lead("shared", now, "appliance-a", now + 600_000)
            .await
            .unwrap()
            .unwrap();
        let lapsed = store
            .claim_next_lead("shared", now, "appliance-a", now - 1)
            .await
            .unwrap()
            .unwrap();
        store.close().await;
        (live, lapsed)
    };
    let secrets = Secrets {
        api_token: Some("api".into()),
        twilio_auth_token: Some(TOKEN.into()),
        ..Default::default()
    };
    let app = server_with(Some(&emulator.base_url()), &db, secrets).await;
    let store = app.state.store.clone().unwrap();
    let t0 = Instant::now();
    loop {
        let l = store.lead(lapsed.id).await.unwrap();
        if l.state == LeadState::Failed {
            assert_eq!((l.attempts, l.outcome.as_deref()), (1, Some("busy")));
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{l:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Several more reconcile passes (one a second) change nothing about the live claim.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let l = store.lead(live.id).await.unwrap();
    assert_eq!(l.state, LeadState::Dialing, "{l:?}");
    assert_eq!(l.claimed_by.as_deref(), Some("appliance-a"));
    assert_eq!(l.claim_expires_at_ms, Some(now + 600_000));
    assert_eq!(l.attempts, 0);
    let to_live = |to: &String| to == &live.phone;
    assert!(!emulator.create_requests().iter().any(|(to, _)| to_live(to)));
    assert_eq!(emulator.calls().len(), 1);
    let trail = decisions(&store.audit_log("shared").await.unwrap(), Some(live.id));
    assert!(trail.is_empty(), "{trail:?}");
    emulator.shutdown();
}

/// The confirmation of an opt-out is heard only once the do-not-call entry is committed: with
/// the database locked by another writer, the agent waits for the commit (up to its limit)
/// before saying it, and the entry is there when the caller hears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_opt_out_confirmation_waits_for_the_commit() {
    use sqlx::Connection;
    use telemarketer::model::Speaker;
    use telemarketer::testbed::sim::{run_call, CallerStep};
    const HOLD: Duration = Duration::from_millis(2500);
    let db = format!("sqlite://{}", tempdir().join("dialer.db").display());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let toml = format!(
        "[store]\nurl = {db:?}\n[turn]\nmin_endpoint_ms = 300\nendpoint_silence_ms = 400\n"
    );
    let (app, _) = fake_app(
        test_config(&toml, call_secrets()),
        &["stop calling me"],
        "Sure.",
    );
    let app = app.spawn(listener).await.unwrap();
    let store = app.state.store.clone().unwrap();
    let registry = app.state.registry.clone();
    let phone = "+14155550390";
    let mut call = sim_call();
    call.parameters.insert("to".into(), phone.into());
    let url = format!("ws://{}/twilio/media", app.addr);
    let steps = vec![
        CallerStep::WaitForAgent {
            quiet: Duration::from_millis(400),
            max: Duration::from_secs(30),
        },
        CallerStep::Say(voiced(900)),
        CallerStep::WaitForAgent {
            quiet: Duration::from_millis(600),
            max: Duration::from_secs(30),
        },
    ];
    let sim = {
        let call = call.clone();
        tokio::spawn(async move { run_call(&url, &call, steps).await })
    };
    // Another writer holds the database from the start of the call.
    let mut lock = sqlx::SqliteConnection::connect(&db).await.unwrap();
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .unwrap();
    let t0 = Instant::now();
    while !registry
        .get(&call.call_sid)
        .is_some_and(|r| r.turns.iter().any(|t| t.speaker == Speaker::Caller))
    {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the caller was never heard"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The opt-out is decided now; the entry cannot be committed until the lock is gone.
    tokio::time::sleep(HOLD).await;
    sqlx::raw_sql("COMMIT").execute(&mut lock).await.unwrap();
    lock.close().await.unwrap();

    let report = sim.await.unwrap().unwrap();
    let latency = report.response_latencies_ms();
    assert_eq!(latency.len(), 1, "{:?}", report.heard.len());
    assert!(
        latency[0] >= HOLD.as_millis() as u64,
        "confirmation heard {} ms after the caller, before the entry's commit",
        latency[0]
    );
    let entry = store.dnc_entry(phone).await.unwrap();
    assert_eq!(entry.map(|e| e.source).as_deref(), Some("call"));
    assert_eq!(
        registry.get(&call.call_sid).unwrap().outcome,
        Some(telemarketer::model::Outcome::DoNotCall)
    );
}

/// "Not now" then "tomorrow at ten": the call ends `callback` with the time, and the lead goes
/// back to pending for exactly that local time, its callback counted apart from retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_asks_for_a_callback_is_scheduled_for_that_time() {
    use telemarketer::testbed::emulator::CallerLine;
    let (emulator, app, store) = emulated_human(
        vec![
            CallerLine::Say("Not now.".into()),
            CallerLine::Say("Tomorrow at ten.".into()),
        ],
        &["Not now.", "Tomorrow at ten."],
    )
    .await;
    let settings = CampaignSettings {
        max_attempts: 1,
        ..busy_settings(1, 10.0)
    };
    let phone = "+14155550360".to_string();
    campaign_with_leads(&store, "cb", &settings, std::slice::from_ref(&phone)).await;
    let dialer = app.state.dialer.clone().unwrap();
    dialer.start("cb").await.unwrap();

    let t0 = Instant::now();
    let lead = loop {
        let lead = store.leads("cb").await.unwrap().remove(0);
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
    let tz: chrono_tz::Tz = lead.timezone.parse().unwrap();
    let at = chrono::DateTime::from_timestamp_millis(lead.next_attempt_at_ms)
        .unwrap()
        .with_timezone(&tz);
    let tomorrow = chrono::Utc::now()
        .with_timezone(&tz)
        .date_naive()
        .succ_opt()
        .unwrap();
    assert_eq!(
        (at.date_naive(), at.format("%H:%M").to_string()),
        (tomorrow, "10:00".to_string()),
        "{lead:#?}"
    );
    assert_eq!(lead.outcome.as_deref(), Some("callback"));
    let audit = store.audit_log("cb").await.unwrap();
    assert!(
        decisions(&audit, Some(lead.id)).contains(&"callback_scheduled".to_string()),
        "{audit:#?}"
    );
    dialer.set_state("cb", CampaignState::Stopped).await.ok();
    emulator.shutdown();
}

/// A caller says who they are not and hangs up at once; the recogniser is slow (a loaded box),
/// so Twilio's `completed` arrives before the session has its verdict. The lead still ends with
/// the session's outcome, not without one.
#[tokio::test]
async fn a_verdict_reached_after_the_hang_up_still_settles_the_lead() {
    use telemarketer::testbed::emulator::CallerLine;
    let (emulator, app, store) = emulated_human(
        vec![
            CallerLine::Say("Sorry, wrong number.".into()),
            CallerLine::HangUp,
        ],
        &["[after 1500ms] sorry wrong number"],
    )
    .await;
    let settings = CampaignSettings {
        max_attempts: 1,
        ..busy_settings(1, 10.0)
    };
    let phone = "+14155550361".to_string();
    campaign_with_leads(&store, "late", &settings, std::slice::from_ref(&phone)).await;
    let dialer = app.state.dialer.clone().unwrap();
    dialer.start("late").await.unwrap();
    until_finished(&store, "late", Duration::from_secs(60)).await;
    let lead = store.leads("late").await.unwrap().remove(0);
    let audit = store.audit_log("late").await.unwrap();
    assert_eq!(
        (lead.state, lead.outcome.as_deref()),
        (LeadState::Done, Some("wrong_person")),
        "{audit:#?}"
    );
    let call = &emulator.calls()[0];
    assert_eq!(call.hung_up_by.as_deref(), Some("caller"));
    dialer.set_state("late", CampaignState::Stopped).await.ok();
    emulator.shutdown();
}
