//! The dialer and Twilio webhooks without models (fake engines, real store, real emulator, real
//! HTTP): signatures on status callbacks, duplicates and out-of-order callbacks, pause / resume /
//! stop, the concurrency limit and pacing. Seconds, not minutes.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use telemarketer::config::Secrets;
use telemarketer::dialer::Dialer;
use telemarketer::leads::NewLead;
use telemarketer::model::{CampaignSettings, CampaignState, LeadState, NewCall};
use telemarketer::store::Store;
use telemarketer::testbed::emulator::{EmulatorConfig, Persona, RunningEmulator};
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut toml = format!(
        "[server]\npublic_url = \"http://{addr}\"\n[store]\nurl = \"sqlite://{}\"\n",
        tempdir().join("dialer.db").display()
    );
    let mut secrets = Secrets {
        api_token: Some("api".into()),
        twilio_auth_token: Some(TOKEN.into()),
        ..Default::default()
    };
    if let Some(base) = twilio_base {
        toml.push_str(&format!("[twilio]\nbase_url = {base:?}\n"));
        secrets.twilio_account_sid = Some(ACCOUNT.into());
    }
    let (app, _) = fake_app(test_config(&toml, secrets), &[], "");
    let local = app
        .dialer_poll(Duration::from_millis(100))
        .spawn(listener)
        .await
        .unwrap();
    let store = local.state.store.clone().unwrap();
    (local.base_url(), store, local.state.dialer.clone())
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
