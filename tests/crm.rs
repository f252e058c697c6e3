//! Results pushed to the customer's CRM, over real parts: the appliance on fake engines and a
//! real SQLite store dials the Twilio emulator, and a real HTTP receiver on loopback plays the
//! CRM. The receiver fails the first 3 deliveries; afterwards it must get every event exactly
//! once, each signature valid. The outbox is also run on PostgreSQL when
//! `TELEMARKETER_TEST_POSTGRES_URL` is set.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use common::*;
use telemarketer::client::AdminClient;
use telemarketer::config::Secrets;
use telemarketer::crm::webhook::{self, RetrySchedule};
use telemarketer::crm::{Courier, CourierOptions};
use telemarketer::leads::NewLead;
use telemarketer::model::api::{DeliveryPage, NewCampaign};
use telemarketer::model::{CampaignSettings, CampaignState, DeliveryState};
use telemarketer::store::Store;
use telemarketer::testbed::emulator::{CallerLine, EmulatorConfig, Persona, RunningEmulator};

const ACCOUNT: &str = "AC00000000000000000000000000000003";
const TOKEN: &str = "crm-test-token";
const SECRET: &str = "crm-shared-secret";
const API: &str = "api";

/// One POST the CRM received, and what it answered.
#[derive(Debug, Clone)]
struct Received {
    event_id: String,
    kind: String,
    signature_ok: bool,
    body: serde_json::Value,
    answered: u16,
}

/// A CRM on 127.0.0.1 that answers 500 to its first `fail_first` requests, then 200.
#[derive(Clone)]
struct Crm {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Crm {
    async fn start(fail_first: usize) -> Self {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = got.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let log = log.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string()
                    };
                    let now = chrono::Utc::now().timestamp();
                    let signature_ok = webhook::verify(
                        SECRET,
                        &header(webhook::SIGNATURE_HEADER),
                        &body,
                        now,
                        Duration::from_secs(300),
                    )
                    .is_ok();
                    let mut log = log.lock().unwrap();
                    let answered = if log.len() < fail_first { 500 } else { 200 };
                    log.push(Received {
                        event_id: header(webhook::EVENT_ID_HEADER),
                        kind: header(webhook::EVENT_KIND_HEADER),
                        signature_ok,
                        body: serde_json::from_slice(&body).unwrap_or_default(),
                        answered,
                    });
                    StatusCode::from_u16(answered).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, got }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `n` distinct events were answered 200.
    async fn until_delivered(&self, n: usize, limit: Duration) -> Vec<Received> {
        let t0 = Instant::now();
        loop {
            let got = self.received();
            let ok: std::collections::BTreeSet<_> = got
                .iter()
                .filter(|r| r.answered == 200)
                .map(|r| r.event_id.clone())
                .collect();
            if ok.len() >= n {
                return got;
            }
            assert!(
                t0.elapsed() < limit,
                "{} of {n} events delivered: {got:#?}",
                ok.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The house rule the test checks: every event answered 200 exactly once, every request
/// signed right.
fn assert_exactly_once(got: &[Received]) {
    let mut ok: HashMap<&str, usize> = HashMap::new();
    for r in got {
        assert!(r.signature_ok, "bad signature on {r:#?}");
        assert_eq!(r.body["event_id"], r.event_id.as_str(), "{r:#?}");
        assert_eq!(r.body["kind"], r.kind.as_str(), "{r:#?}");
        if r.answered == 200 {
            *ok.entry(&r.event_id).or_default() += 1;
        }
    }
    for (id, n) in ok {
        assert_eq!(n, 1, "{id} delivered {n} times: {got:#?}");
    }
}

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

/// The agent's voice: a tone of 5 ms per character, so the script's long lines play in a
/// fraction of real time and the two calls take seconds.
struct QuickTts;

impl telemarketer::engine::TextToSpeech for QuickTts {
    fn synthesize(
        &self,
        clause: String,
        _cancel: tokio_util::sync::CancellationToken,
    ) -> futures::future::BoxFuture<
        'static,
        Result<telemarketer::engine::SpeechAudio, telemarketer::engine::EngineError>,
    > {
        let n = clause.len() * 5 * 8;
        let samples = (0..n)
            .map(|i| 0.3 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 8000.0).sin())
            .collect();
        Box::pin(async move {
            Ok(telemarketer::engine::SpeechAudio {
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

fn settings(crm: Option<&str>) -> CampaignSettings {
    CampaignSettings {
        from_number: "+15005550006".into(),
        max_concurrent: 1,
        calls_per_second: 10.0,
        max_attempts: 1,
        machine_detection: false,
        crm_webhook_url: crm.map(str::to_string),
        ..Default::default()
    }
}

/// Two calls through the emulator (one asks for a callback tomorrow at ten, one opts out) and
/// an operator listing a third lead's number: four events, the first delivered on its 4th try,
/// every one exactly once afterwards, signed, with outcome and variables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_that_fails_three_times_gets_every_event_once_signed() {
    let crm = Crm::start(3).await;
    let (callback, opt_out, listed) = ("+14155550701", "+14155550702", "+14155550703");
    let mut config = EmulatorConfig::new(ACCOUNT, TOKEN);
    config.ring = Duration::from_millis(200);
    config.tts = Some(Arc::new(VoicedTts));
    config.personas.insert(
        callback.into(),
        Persona::Human {
            lines: vec![
                CallerLine::Say("Not now.".into()),
                CallerLine::Say("Tomorrow at ten.".into()),
            ],
        },
    );
    config.personas.insert(
        opt_out.into(),
        Persona::Human {
            lines: vec![CallerLine::Say("Stop calling me.".into())],
        },
    );
    let emulator = RunningEmulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let db = format!("sqlite://{}", tempdir().join("crm.db").display());
    let toml = format!(
        "[server]\npublic_url = \"http://{addr}\"\n[store]\nurl = {db:?}\n\
         [twilio]\nbase_url = {:?}\nworker_id = \"crm-test\"\n\
         [crm]\nretry_base_ms = 50\nretry_cap_s = 1\npoll_ms = 20\n",
        emulator.base_url()
    );
    let secrets = Secrets {
        api_token: Some(API.into()),
        twilio_auth_token: Some(TOKEN.into()),
        twilio_account_sid: Some(ACCOUNT.into()),
        crm_secret: Some(SECRET.into()),
        ..Default::default()
    };
    // The calls run one after the other (max_concurrent 1), so the fake STT hears them in order.
    let heard = ["Not now.", "Tomorrow at ten.", "Stop calling me."];
    let app = telemarketer::app::AppBuilder::with_engines(
        test_config(&toml, secrets),
        Arc::new(FakeStt(Mutex::new(
            heard.iter().map(|s| s.to_string()).collect(),
        ))),
        Arc::new(FakeLlm {
            replies: vec![String::new()],
            prompts: Arc::default(),
        }),
        Arc::new(QuickTts),
    )
    .dialer_poll(Duration::from_millis(100))
    .spawn(listener)
    .await
    .unwrap();
    let client = AdminClient::new(&app.base_url(), API);
    client
        .create_campaign(&NewCampaign {
            id: "crm".into(),
            name: "CRM".into(),
            script: None,
            settings: settings(Some(&crm.url)),
        })
        .await
        .unwrap();
    let store = app.state.store.clone().unwrap();
    store
        .insert_leads("crm", &[lead(callback), lead(opt_out)])
        .await
        .unwrap();
    // A campaign not started: its lead hears of nothing but the operator's listing.
    client
        .create_campaign(&NewCampaign {
            id: "crm-later".into(),
            name: "Later".into(),
            script: None,
            settings: settings(Some(&crm.url)),
        })
        .await
        .unwrap();
    store
        .insert_leads("crm-later", &[lead(listed)])
        .await
        .unwrap();
    let dialer = app.state.dialer.clone().unwrap();
    dialer.start("crm").await.unwrap();

    let got = crm.until_delivered(3, Duration::from_secs(90)).await;
    client
        .dnc_add(listed, Some("asked by email"))
        .await
        .unwrap();
    let got = {
        let _ = got;
        crm.until_delivered(4, Duration::from_secs(20)).await
    };
    // Room for a wrong redelivery to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_after = crm.received();
    assert_eq!(got.len(), got_after.len(), "{got_after:#?}");
    let got = got_after;
    assert_exactly_once(&got);
    assert_eq!(got.iter().filter(|r| r.answered == 500).count(), 3);
    assert_eq!(got.len(), 3 + 4, "{got:#?}");
    // The first event took all three failures, then went through.
    let first = &got[0].event_id;
    assert!(got[..4].iter().all(|r| &r.event_id == first), "{got:#?}");

    let by_id: BTreeMap<String, serde_json::Value> = got
        .iter()
        .filter(|r| r.answered == 200)
        .map(|r| (r.event_id.clone(), r.body.clone()))
        .collect();
    let ended = |phone: &str| {
        by_id
            .values()
            .find(|b| b["kind"] == "call.ended" && b["lead"]["phone"] == phone)
            .unwrap_or_else(|| panic!("no call.ended for {phone}: {by_id:#?}"))
            .clone()
    };
    let cb = ended(callback);
    assert_eq!(cb["outcome"], "callback", "{cb:#}");
    assert!(cb["variables"]["callback_time"].is_string(), "{cb:#}");
    assert_eq!(cb["campaign_id"], "crm");
    let sid = cb["call_sid"].as_str().unwrap();
    assert_eq!(
        cb["transcript_url"],
        format!("http://{addr}/v1/calls/{sid}/record").as_str()
    );
    assert!(
        cb["summary"].as_str().unwrap().contains("callback"),
        "{cb:#}"
    );
    assert!(
        cb["ended_at_ms"].as_i64().unwrap() >= cb["started_at_ms"].as_i64().unwrap(),
        "{cb:#}"
    );
    // The transcript link works with the API token.
    client.call_record(sid).await.unwrap();
    let out = ended(opt_out);
    assert_eq!(out["outcome"], "do_not_call", "{out:#}");
    let dnc: Vec<&serde_json::Value> = by_id
        .values()
        .filter(|b| b["kind"] == "lead.do_not_call")
        .collect();
    assert_eq!(dnc.len(), 2, "{by_id:#?}");
    let from_call = dnc.iter().find(|b| b["lead"]["phone"] == opt_out).unwrap();
    assert_eq!(from_call["source"], "call");
    assert_eq!(from_call["campaign_id"], "crm");
    let from_api = dnc.iter().find(|b| b["lead"]["phone"] == listed).unwrap();
    assert_eq!(from_api["source"], "api");
    assert_eq!(from_api["campaign_id"], "crm-later");

    // The delivery log: newest first, the first event on its 4th try.
    let log = client
        .deliveries("crm", &DeliveryPage::default())
        .await
        .unwrap();
    assert_eq!(log.len(), 3, "{log:#?}");
    assert!(log.windows(2).all(|w| w[0].id > w[1].id), "{log:#?}");
    assert!(
        log.iter().all(|d| d.state == DeliveryState::Delivered
            && d.last_status == Some(200)
            && d.delivered_at_ms.is_some()),
        "{log:#?}"
    );
    let oldest = log.last().unwrap();
    assert_eq!(&oldest.event_id, first);
    assert_eq!(oldest.attempts, 4, "{log:#?}");
    assert!(log[..2].iter().all(|d| d.attempts == 1), "{log:#?}");
    let page = client
        .deliveries(
            "crm",
            &DeliveryPage {
                limit: Some(1),
                before: Some(log[0].id),
            },
        )
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, log[1].id);
    let later = client
        .deliveries("crm-later", &DeliveryPage::default())
        .await
        .unwrap();
    assert_eq!(later.len(), 1, "{later:#?}");

    dialer.set_state("crm", CampaignState::Stopped).await.ok();
    if let Some(courier) = &app.state.crm {
        courier.stop().await;
    }
    emulator.shutdown();
}

/// Without `TELEMARKETER_CRM_SECRET` a campaign with a webhook is refused, and a bad URL is
/// refused with the key named.
#[tokio::test]
async fn a_webhook_needs_the_secret_and_a_valid_url() {
    let db = format!("sqlite://{}", tempdir().join("crm.db").display());
    let toml = format!("[store]\nurl = {db:?}\n");
    let no_secret = Secrets {
        api_token: Some(API.into()),
        ..Default::default()
    };
    let (app, _) = fake_app(test_config(&toml, no_secret), &[], "");
    let app = app.spawn_local().await.unwrap();
    let client = AdminClient::new(&app.base_url(), API);
    let new = |url: &str| NewCampaign {
        id: "c".into(),
        name: "c".into(),
        script: None,
        settings: settings(Some(url)),
    };
    let e = client
        .create_campaign(&new("https://crm.example.com/hook"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert!(e.to_string().contains("TELEMARKETER_CRM_SECRET"), "{e}");
    for bad in [
        "ftp://crm.example.com/",
        "not a url",
        "https://user:pw@crm.example.com/",
    ] {
        let e = client.create_campaign(&new(bad)).await.unwrap_err();
        assert_eq!(e.status(), Some(400), "{bad}");
        assert!(e.to_string().contains("crm_webhook_url"), "{bad}: {e}");
    }
}

/// The outbox on one store: events written with their facts (only for campaigns with a
/// webhook), sent by a courier started afterwards (as after a restart), retried, logged.
async fn outbox_round_trip(url: &str) {
    let crm = Crm::start(1).await;
    let store = Store::connect(url).await.unwrap();
    store
        .create_campaign(
            "hooked",
            "hooked",
            telemarketer::script::EXAMPLE_SCRIPT,
            &settings(Some(&crm.url)),
        )
        .await
        .unwrap();
    store
        .create_campaign(
            "plain",
            "plain",
            telemarketer::script::EXAMPLE_SCRIPT,
            &settings(None),
        )
        .await
        .unwrap();
    let phone = "+14155550710";
    for c in ["hooked", "plain"] {
        store.insert_leads(c, &[lead(phone)]).await.unwrap();
    }
    store.add_dnc(phone, "asked", "api").await.unwrap();
    // Listing it again writes no second event.
    store.add_dnc(phone, "again", "api").await.unwrap();
    let log = store.deliveries("hooked", 10, None).await.unwrap();
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0].state, DeliveryState::Pending);
    assert!(store
        .deliveries("plain", 10, None)
        .await
        .unwrap()
        .is_empty());

    let courier = Courier::spawn(
        store.clone(),
        CourierOptions {
            secret: SECRET.into(),
            retry: RetrySchedule {
                base: Duration::from_millis(30),
                cap: Duration::from_secs(1),
                max_attempts: 5,
            },
            timeout: Duration::from_secs(5),
            poll: Duration::from_millis(20),
        },
    );
    let got = crm.until_delivered(1, Duration::from_secs(20)).await;
    courier.stop().await;
    assert_exactly_once(&got);
    assert_eq!(got.len(), 2, "{got:#?}");
    let log = store.deliveries("hooked", 10, None).await.unwrap();
    assert_eq!(
        (log[0].state, log[0].attempts, log[0].last_status),
        (DeliveryState::Delivered, 2, Some(200))
    );
    store.close().await;
}

#[tokio::test]
async fn the_outbox_on_sqlite() {
    let db = format!("sqlite://{}", tempdir().join("outbox.db").display());
    outbox_round_trip(&db).await;
}

#[tokio::test]
async fn the_outbox_on_postgres() {
    let Some((url, schema)) = pg_test_url().await else {
        return;
    };
    outbox_round_trip(&url).await;
    drop_pg_schema(&schema).await;
}

/// A CRM that never takes the event: given up after the last try, kept as `failed`.
#[tokio::test]
async fn an_event_is_given_up_after_the_last_try_and_kept() {
    let crm = Crm::start(usize::MAX).await;
    let db = format!("sqlite://{}", tempdir().join("outbox.db").display());
    let store = Store::connect(&db).await.unwrap();
    store
        .create_campaign(
            "hooked",
            "hooked",
            telemarketer::script::EXAMPLE_SCRIPT,
            &settings(Some(&crm.url)),
        )
        .await
        .unwrap();
    store
        .insert_leads("hooked", &[lead("+14155550720")])
        .await
        .unwrap();
    store
        .add_dnc("+14155550720", "asked", "call")
        .await
        .unwrap();
    let courier = Courier::spawn(
        store.clone(),
        CourierOptions {
            secret: SECRET.into(),
            retry: RetrySchedule {
                base: Duration::from_millis(20),
                cap: Duration::from_millis(40),
                max_attempts: 3,
            },
            timeout: Duration::from_secs(5),
            poll: Duration::from_millis(10),
        },
    );
    let t0 = Instant::now();
    let log = loop {
        let log = store.deliveries("hooked", 10, None).await.unwrap();
        if log[0].state == DeliveryState::Failed {
            break log;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{log:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // No try after giving up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    courier.stop().await;
    assert_eq!(crm.received().len(), 3);
    assert_eq!(
        (
            log[0].attempts,
            log[0].last_status,
            log[0].last_error.as_deref()
        ),
        (3, Some(500), Some("HTTP 500"))
    );
}
