//! The store suite, run against SQLite (a temporary file) and a real PostgreSQL
//! (`TELEMARKETER_TEST_POSTGRES_URL`, each test in a schema of its own; `.ci/run` installs and
//! starts one, and in CI its absence fails the test instead of skipping it): the queries, the
//! claims with their owners and leases, and the call sink's do-not-call guarantee.

mod common;

use std::collections::{BTreeMap, HashSet};

use telemarketer::leads::NewLead;
use telemarketer::model::{
    Applied, CampaignSettings, CampaignState, Lead, LeadState, NewCall, StatusUpdate, Turn,
    TurnLatency,
};
use telemarketer::store::{spawn_sink, Store, StoreError};

fn lead(phone: &str, consent: bool) -> NewLead {
    NewLead {
        phone: phone.into(),
        name: Some(format!("Lead {phone}")),
        fields: BTreeMap::from([("city".to_string(), "Springfield".to_string())]),
        timezone: "America/New_York".into(),
        consent,
        source: Some("web form".into()),
    }
}

fn status(sid: &str, seq: i64, status: &str) -> StatusUpdate {
    StatusUpdate {
        call_sid: sid.into(),
        source: "status".into(),
        sequence: seq,
        status: status.into(),
        answered_by: None,
        duration_s: (status == "completed").then_some(42),
        params: vec![
            ("CallSid".into(), sid.into()),
            ("CallStatus".into(), status.into()),
        ],
    }
}

async fn suite(store: Store) {
    // Campaigns.
    let settings = CampaignSettings {
        from_number: "+15005550006".into(),
        ..Default::default()
    };
    let c = store
        .create_campaign("solar", "Solar", "script", &settings)
        .await
        .unwrap();
    assert_eq!(c.state, CampaignState::Draft);
    assert_eq!(c.settings, settings);
    assert!(matches!(
        store
            .create_campaign("solar", "again", "s", &settings)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.campaign("nope").await,
        Err(StoreError::NotFound(_))
    ));
    store
        .set_campaign_state("solar", CampaignState::Running)
        .await
        .unwrap();
    assert_eq!(
        store.campaign("solar").await.unwrap().state,
        CampaignState::Running
    );

    // Leads: import reports duplicates instead of double-inserting.
    let phones: Vec<String> = (0..20).map(|i| format!("+1415555{:04}", 100 + i)).collect();
    let mut batch: Vec<NewLead> = phones.iter().map(|p| lead(p, true)).collect();
    batch.push(lead(&phones[0], true));
    let report = store.insert_leads("solar", &batch).await.unwrap();
    assert_eq!(report.inserted, 20);
    assert_eq!(report.duplicates, vec![phones[0].clone()]);
    let all = store.leads("solar").await.unwrap();
    assert_eq!(all.len(), 20);
    assert_eq!(all[0].fields["city"], "Springfield");
    assert!(all[0].consent);
    assert!(matches!(
        store.insert_leads("nope", &batch).await,
        Err(StoreError::NotFound(_))
    ));

    // A lead due later is not claimable now.
    let later = all[19].id;
    store
        .set_lead_state(later, LeadState::Pending, i64::MAX / 2, None)
        .await
        .unwrap();

    // Claims are atomic: many concurrent claimers, each lead taken exactly once.
    let now = telemarketer::store::now_ms();
    let mut tasks = Vec::new();
    for w in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(l) = store
                .claim_next_lead("solar", now, &format!("worker-{w}"), now + 60_000)
                .await
                .unwrap()
            {
                assert_eq!(l.state, LeadState::Dialing);
                assert_eq!(l.claimed_by, Some(format!("worker-{w}")));
                assert_eq!(l.claim_expires_at_ms, Some(now + 60_000));
                got.push(l.id);
            }
            got
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    let unique: HashSet<i64> = claimed.iter().copied().collect();
    assert_eq!(
        claimed.len(),
        19,
        "every due lead claimed once: {claimed:?}"
    );
    assert_eq!(unique.len(), 19);
    assert!(!unique.contains(&later));
    let counts = store.lead_counts("solar").await.unwrap();
    assert_eq!((counts.dialing, counts.pending), (19, 1));
    assert_eq!(
        store.next_due_ms("solar").await.unwrap(),
        Some(i64::MAX / 2)
    );

    // A placed call: recorded once, lead in_call with one attempt.
    let lead_id = all[0].id;
    let sid = "CA0123456789abcdef0123456789abcdef";
    let call = NewCall {
        sid: sid.into(),
        campaign_id: "solar".into(),
        lead_id,
        from: "+15005550006".into(),
        to: phones[0].clone(),
        status: "queued".into(),
    };
    store.record_dial(&call).await.unwrap();
    store.record_dial(&call).await.unwrap();
    let l = store.lead(lead_id).await.unwrap();
    assert_eq!((l.state, l.attempts), (LeadState::InCall, 1));
    assert_eq!((l.claimed_by, l.claim_expires_at_ms), (None, None));
    assert_eq!(
        store
            .leads_in_state("solar", LeadState::InCall)
            .await
            .unwrap()
            .len(),
        1
    );

    // Status callbacks: in order, a Twilio retry (duplicate), one out of order.
    assert_eq!(
        store
            .apply_status(&status(sid, 0, "initiated"))
            .await
            .unwrap(),
        Applied::Updated
    );
    assert_eq!(
        store
            .apply_status(&status(sid, 1, "ringing"))
            .await
            .unwrap(),
        Applied::Updated
    );
    assert_eq!(
        store
            .apply_status(&status(sid, 1, "ringing"))
            .await
            .unwrap(),
        Applied::Duplicate
    );
    let mut done = status(sid, 3, "completed");
    done.answered_by = Some("human".into());
    assert_eq!(store.apply_status(&done).await.unwrap(), Applied::Updated);
    // `answered` (seq 2) arrives after `completed`: history only.
    assert_eq!(
        store
            .apply_status(&status(sid, 2, "in-progress"))
            .await
            .unwrap(),
        Applied::Stale
    );
    assert_eq!(
        store
            .apply_status(&status(
                "CAffffffffffffffffffffffffffffffff",
                0,
                "initiated"
            ))
            .await
            .unwrap(),
        Applied::UnknownCall
    );
    let stored = store.call(sid).await.unwrap();
    assert_eq!(stored.status, "completed");
    assert_eq!(stored.last_sequence, 3);
    assert_eq!(stored.answered_by.as_deref(), Some("human"));
    assert_eq!(stored.duration_s, Some(42));
    assert!(stored.ended_at_ms.is_some());
    // Async AMD never moves the status.
    let amd = StatusUpdate {
        source: "amd".into(),
        sequence: 0,
        status: "amd".into(),
        answered_by: Some("machine_end_beep".into()),
        ..status(sid, 0, "amd")
    };
    assert_eq!(store.apply_status(&amd).await.unwrap(), Applied::Updated);
    assert_eq!(store.apply_status(&amd).await.unwrap(), Applied::Duplicate);
    let stored = store.call(sid).await.unwrap();
    assert_eq!(
        (stored.status.as_str(), stored.answered_by.as_deref()),
        ("completed", Some("machine_end_beep"))
    );

    // Outcome, variables and the transcript, turn by turn (a rewrite keeps one row).
    let vars = BTreeMap::from([("monthly_bill".to_string(), "200".to_string())]);
    store
        .set_call_outcome(sid, Some("interested"), &vars)
        .await
        .unwrap();
    let mut agent = Turn::agent("Hi, this is Nova", 10, 1);
    store.upsert_turn(sid, 0, &agent).await.unwrap();
    let caller = Turn {
        end_ms: Some(2600),
        ..Turn::caller("Sure", 2000)
    };
    store.upsert_turn(sid, 1, &caller).await.unwrap();
    agent.text = "Hi, this".into();
    agent.interrupted = true;
    agent.latency = Some(TurnLatency {
        endpointing_ms: 500.0,
        stt_ms: 120.0,
        ..Default::default()
    });
    store.upsert_turn(sid, 0, &agent).await.unwrap();
    let detail = store.call_detail(sid).await.unwrap();
    assert_eq!(detail.call.outcome.as_deref(), Some("interested"));
    assert_eq!(detail.call.variables, vars);
    assert_eq!(detail.turns.len(), 2);
    assert_eq!(detail.turns[0].text, "Hi, this");
    assert!(detail.turns[0].interrupted);
    assert_eq!(detail.turns[0].latency.as_ref().unwrap().stt_ms, 120.0);
    assert_eq!(detail.turns[1].speaker, "caller");
    assert_eq!(
        (detail.turns[1].at_ms, detail.turns[1].end_ms),
        (2000, Some(2600))
    );
    assert_eq!(detail.turns[0].end_ms, None);
    let seqs: Vec<(i64, bool)> = detail
        .events
        .iter()
        .filter(|e| e.source == "status")
        .map(|e| (e.sequence, e.applied))
        .collect();
    assert_eq!(seqs, vec![(0, true), (1, true), (3, true), (2, false)]);
    assert_eq!(store.calls("solar").await.unwrap().len(), 1);

    // The console's call search: every filter optional, each one narrowing.
    use telemarketer::store::CallQuery;
    let found = |q: CallQuery| {
        let store = store.clone();
        async move {
            store
                .search_calls(&CallQuery { limit: 50, ..q })
                .await
                .unwrap()
                .len()
        }
    };
    let call = detail.call.clone();
    let to = call.to.clone().expect("the call's number");
    assert_eq!(found(CallQuery::default()).await, 1);
    assert_eq!(
        found(CallQuery {
            phone: Some(to[to.len() - 4..].to_string()),
            outcome: Some("interested".into()),
            campaign: Some("solar".into()),
            from_ms: Some(call.created_at_ms),
            to_ms: Some(call.created_at_ms + 1),
            ..Default::default()
        })
        .await,
        1
    );
    for miss in [
        CallQuery {
            phone: Some("98765".into()),
            ..Default::default()
        },
        CallQuery {
            outcome: Some("opt_out".into()),
            ..Default::default()
        },
        CallQuery {
            campaign: Some("other".into()),
            ..Default::default()
        },
        CallQuery {
            from_ms: Some(call.created_at_ms + 1),
            ..Default::default()
        },
        CallQuery {
            to_ms: Some(call.created_at_ms),
            ..Default::default()
        },
    ] {
        assert_eq!(found(miss.clone()).await, 0, "{miss:?}");
    }

    // The turns of a call with no record (a practice call) are not written.
    let practice = "CA00000000000000000000000000000099";
    store.upsert_turn(practice, 0, &agent).await.unwrap();
    store
        .record_call(&telemarketer::model::CallMetadata {
            call_sid: practice.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(store.call_detail(practice).await.unwrap().turns.is_empty());
    assert_eq!(
        store
            .latest_call_for_lead(lead_id)
            .await
            .unwrap()
            .unwrap()
            .sid,
        sid
    );

    // Leads move to final states with an outcome.
    store
        .set_lead_state(lead_id, LeadState::Done, 0, Some("interested"))
        .await
        .unwrap();
    let l = store.lead(lead_id).await.unwrap();
    assert_eq!(
        (l.state, l.outcome.as_deref()),
        (LeadState::Done, Some("interested"))
    );

    // Do-not-call: first entry kept, removable.
    store
        .add_dnc("+14155550100", "asked to stop", "call")
        .await
        .unwrap();
    store.add_dnc("+14155550100", "again", "api").await.unwrap();
    let entry = store.dnc_entry("+14155550100").await.unwrap().unwrap();
    assert_eq!(
        (entry.reason.as_str(), entry.source.as_str()),
        ("asked to stop", "call")
    );
    assert!(store.dnc_entry("+14155550199").await.unwrap().is_none());
    assert_eq!(store.dnc_list().await.unwrap().len(), 1);
    assert!(store.remove_dnc("+14155550100").await.unwrap());
    assert!(!store.remove_dnc("+14155550100").await.unwrap());

    // The audit log keeps decisions in order.
    store
        .audit(
            "solar",
            Some(lead_id),
            Some(&phones[0]),
            "dial",
            "attempt 1",
        )
        .await
        .unwrap();
    store
        .audit("solar", None, None, "skip_dnc", "listed")
        .await
        .unwrap();
    let log = store.audit_log("solar").await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.decision.as_str()).collect::<Vec<_>>(),
        vec!["dial", "skip_dnc"]
    );
    assert_eq!(log[0].lead_id, Some(lead_id));
    store.close().await;
}

#[tokio::test]
async fn store_suite_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("tm-store-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("test.db").display());
    suite(Store::connect(&url).await.unwrap()).await;
    // Reopening migrates nothing and keeps the data.
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(again.leads("solar").await.unwrap().len(), 20);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn store_suite_on_postgres() {
    let Some((url, schema)) = common::pg_test_url().await else {
        return;
    };
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.backend(), telemarketer::store::Backend::Postgres);
    suite(store).await;
    common::drop_pg_schema(&schema).await;
}

#[tokio::test]
async fn bad_database_urls_are_refused_with_the_password_hidden() {
    let err = Store::connect("mysql://u:hunter2@db/x")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not supported"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

/// Claims carry an owner and a lease: who may settle which claim, and every move on a claim
/// is a compare-and-set.
async fn claims_suite(store: &Store) {
    let settings = CampaignSettings {
        from_number: "+15005550006".into(),
        ..Default::default()
    };
    store
        .create_campaign("fleet", "Fleet", "script", &settings)
        .await
        .unwrap();
    let phones = ["+14155550201", "+14155550202", "+14155550203"];
    store
        .insert_leads("fleet", &phones.map(|p| lead(p, true)))
        .await
        .unwrap();
    let t0 = telemarketer::store::now_ms();
    let claim = |worker: &'static str, now: i64, lease: i64| {
        let store = store.clone();
        async move {
            store
                .claim_next_lead("fleet", now, worker, lease)
                .await
                .unwrap()
                .unwrap()
        }
    };
    // A holds one claim; B one whose lease ran out and one whose lease is live.
    let a1 = claim("A", t0, t0 + 60_000).await;
    let b_lapsed = claim("B", t0, t0 - 1).await;
    let b_live = claim("B", t0, t0 + 60_000).await;
    let ids = |v: Vec<Lead>| v.iter().map(|l| l.id).collect::<Vec<_>>();
    // A restarted after its claim: its own old claim and B's lapsed one are A's to settle;
    // B's live one is not.
    assert_eq!(
        ids(store.unsettled_claims("A", t0 + 1, t0).await.unwrap()),
        vec![a1.id, b_lapsed.id]
    );
    // A's claim from this run, B's live ones: in flight, left alone.
    assert_eq!(
        ids(store.unsettled_claims("A", t0, t0).await.unwrap()),
        vec![b_lapsed.id]
    );
    assert_eq!(
        ids(store.unsettled_claims("B", t0, t0).await.unwrap()),
        vec![b_lapsed.id]
    );

    // Taking over a lapsed claim happens once.
    assert!(store
        .mark_dial_unknown(&b_lapsed, Some(t0), "A", t0 + 5_000)
        .await
        .unwrap());
    assert!(!store
        .mark_dial_unknown(&b_lapsed, Some(t0), "A", t0 + 5_000)
        .await
        .unwrap());
    let unknown = store.lead(b_lapsed.id).await.unwrap();
    assert_eq!(unknown.state, LeadState::DialUnknown);
    assert_eq!(
        (unknown.claimed_by.as_deref(), unknown.claim_expires_at_ms),
        (Some("A"), Some(t0 + 5_000))
    );
    // The claim time stays: Twilio's list is searched from it.
    assert_eq!(unknown.claimed_at_ms, b_lapsed.claimed_at_ms);
    assert!(ids(store.unsettled_claims("B", t0, t0).await.unwrap()).contains(&unknown.id));

    // A lease renewed after it was read cannot be taken over; nobody renews another's claim.
    store
        .renew_claims("B", &[b_live.id], t0 + 120_000)
        .await
        .unwrap();
    store
        .renew_claims("A", &[b_live.id], t0 + 999_000)
        .await
        .unwrap();
    assert_eq!(
        store.lead(b_live.id).await.unwrap().claim_expires_at_ms,
        Some(t0 + 120_000)
    );
    assert!(!store
        .mark_dial_unknown(&b_live, Some(t0 + 90_000), "A", t0)
        .await
        .unwrap());

    // A dial_unknown lead goes back only once its settle time has passed, with no attempt used.
    assert!(!store.release_claim(&unknown, Some(t0), t0).await.unwrap());
    assert!(store
        .release_claim(&unknown, Some(t0 + 5_000), t0 + 7)
        .await
        .unwrap());
    let back = store.lead(unknown.id).await.unwrap();
    assert_eq!(
        (back.state, back.attempts, back.next_attempt_at_ms),
        (LeadState::Pending, 0, t0 + 7)
    );
    assert_eq!((back.claimed_by, back.claim_expires_at_ms), (None, None));

    // The owner gives its own claim back whatever the lease.
    assert!(store.release_claim(&a1, None, t0).await.unwrap());
    let counts = store.lead_counts("fleet").await.unwrap();
    assert_eq!(
        (counts.pending, counts.dialing, counts.dial_unknown),
        (2, 1, 0)
    );
    let again = claim("A", t0 + 10, t0 + 60_000).await;
    assert_eq!(again.id, a1.id);
    assert!(store
        .mark_dial_unknown(&again, None, "A", t0 + 60_000)
        .await
        .unwrap());
    let counts = store.lead_counts("fleet").await.unwrap();
    assert_eq!(counts.dial_unknown, 1);
    // dial_unknown may have a call on the line: open, and counted against max_concurrent.
    assert_eq!((counts.open(), counts.busy()), (3, 2));

    // Moving a lead on is a compare-and-set on its state.
    assert!(!store
        .move_lead(again.id, LeadState::InCall, LeadState::Done, 0, Some("x"))
        .await
        .unwrap());
    assert!(store
        .move_lead(
            again.id,
            LeadState::DialUnknown,
            LeadState::Failed,
            0,
            Some("x")
        )
        .await
        .unwrap());
}

const SINK_SID: &str = "CA00000000000000000000000000000077";
const SINK_PHONE: &str = "+14155550177";

/// The sink writes an opt-out ahead of the transcript queued before it and acks it once
/// committed; flush waits for the rest.
async fn sink_suite(store: &Store) {
    store
        .create_campaign("sink", "Sink", "script", &CampaignSettings::default())
        .await
        .unwrap();
    store
        .insert_leads("sink", &[lead(SINK_PHONE, true)])
        .await
        .unwrap();
    let lead_id = store.leads("sink").await.unwrap()[0].id;
    store
        .record_dial(&NewCall {
            sid: SINK_SID.into(),
            campaign_id: "sink".into(),
            lead_id,
            from: "+15005550006".into(),
            to: SINK_PHONE.into(),
            status: "in-progress".into(),
        })
        .await
        .unwrap();
    let sink = spawn_sink(store.clone());
    for i in 0..2000 {
        sink.turn(SINK_SID, i, &Turn::caller(format!("line {i}"), i as u64));
    }
    sink.do_not_call(SINK_SID, Some(SINK_PHONE)).await.unwrap();
    assert!(store.dnc_entry(SINK_PHONE).await.unwrap().is_some());
    let early = store.call_detail(SINK_SID).await.unwrap().turns.len();
    assert!(early < 2000, "the opt-out waited behind the transcript");
    sink.flush().await;
    let detail = store.call_detail(SINK_SID).await.unwrap();
    assert_eq!(detail.turns.len(), 2000);
    assert_eq!(detail.turns[1999].text, "line 1999");
    // No number to list: a clear error at once.
    let err = sink.do_not_call(SINK_SID, None).await.unwrap_err();
    assert!(err.contains("no known number"), "{err}");
    sink.flush().await;
}

async fn sqlite_url() -> (String, std::path::PathBuf) {
    let dir = common::tempdir();
    (format!("sqlite://{}", dir.join("test.db").display()), dir)
}

#[tokio::test]
async fn claims_and_sink_on_sqlite() {
    let (url, dir) = sqlite_url().await;
    let store = Store::connect(&url).await.unwrap();
    claims_suite(&store).await;
    sink_suite(&store).await;
    store.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn claims_and_sink_on_postgres() {
    let Some((url, schema)) = common::pg_test_url().await else {
        return;
    };
    let store = Store::connect(&url).await.unwrap();
    claims_suite(&store).await;
    sink_suite(&store).await;
    store.close().await;
    common::drop_pg_schema(&schema).await;
}

/// The child half of the kill -9 test (a no-op unless started by it): queue a long transcript
/// and an opt-out, say `ACKED` once the opt-out is acknowledged, then wait to be killed.
#[test]
fn sink_child_process() {
    let Ok(url) = std::env::var("TM_SINK_CHILD_URL") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::connect(&url).await.unwrap();
        let sink = spawn_sink(store);
        for i in 0..5000 {
            sink.turn(SINK_SID, i, &Turn::caller("queued", 0));
        }
        sink.do_not_call(SINK_SID, Some(SINK_PHONE)).await.unwrap();
        println!("ACKED");
        std::future::pending::<()>().await;
    });
}

/// A process killed with SIGKILL right after the opt-out's ack, its queue never flushed:
/// the entry is in the database when it is opened again.
async fn kill_nine_after_ack(url: &str) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "sink_child_process", "--nocapture"])
        .env("TM_SINK_CHILD_URL", url)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let acked = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .any(|l| l.is_ok_and(|l| l.contains("ACKED")))
    });
    let acked = tokio::time::timeout(std::time::Duration::from_secs(120), acked).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        matches!(acked, Ok(Ok(true))),
        "the child never got its ack: {acked:?}"
    );
    let store = Store::connect(url).await.unwrap();
    let entry = store.dnc_entry(SINK_PHONE).await.unwrap();
    assert_eq!(entry.map(|e| e.source).as_deref(), Some("call"));
    store.close().await;
}

#[tokio::test]
async fn an_acknowledged_opt_out_survives_kill_nine_on_sqlite() {
    let (url, dir) = sqlite_url().await;
    kill_nine_after_ack(&url).await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn an_acknowledged_opt_out_survives_kill_nine_on_postgres() {
    let Some((url, schema)) = common::pg_test_url().await else {
        return;
    };
    kill_nine_after_ack(&url).await;
    common::drop_pg_schema(&schema).await;
}

/// The way `serve` shuts down right after a caller's "stop calling me" (the opt-out's ack not
/// awaited, a transcript still queued): flush the registry's sink, close the store. Opened
/// again, the database holds the do-not-call entry, the call's outcome and every line.
async fn opt_out_then_shutdown(url: &str) {
    use telemarketer::call::registry::CallRegistry;
    use telemarketer::model::CallMetadata;
    const SID: &str = "CA00000000000000000000000000000078";
    const PHONE: &str = "+14155550178";
    let store = Store::connect(url).await.unwrap();
    store
        .create_campaign("bye", "Bye", "script", &CampaignSettings::default())
        .await
        .unwrap();
    store
        .insert_leads("bye", &[lead(PHONE, true)])
        .await
        .unwrap();
    let lead_id = store.leads("bye").await.unwrap()[0].id;
    store
        .record_dial(&NewCall {
            sid: SID.into(),
            campaign_id: "bye".into(),
            lead_id,
            from: "+15005550006".into(),
            to: PHONE.into(),
            status: "in-progress".into(),
        })
        .await
        .unwrap();
    let registry = CallRegistry::with_sink(spawn_sink(store.clone()));
    registry
        .register(CallMetadata {
            call_sid: SID.into(),
            to: Some(PHONE.into()),
            campaign_id: Some("bye".into()),
            ..Default::default()
        })
        .unwrap();
    for i in 0..500 {
        registry.add_turn(SID, Turn::caller(format!("line {i}"), i as u64));
    }
    // Not awaited: the process is told to stop at once.
    drop(registry.opt_out(SID));
    tokio::time::timeout(std::time::Duration::from_secs(30), registry.flush())
        .await
        .expect("flush finished");
    store.close().await;
    drop(registry);

    let store = Store::connect(url).await.unwrap();
    let entry = store.dnc_entry(PHONE).await.unwrap();
    assert_eq!(entry.map(|e| e.source).as_deref(), Some("call"));
    let detail = store.call_detail(SID).await.unwrap();
    assert_eq!(detail.turns.len(), 500);
    assert_eq!(detail.call.outcome.as_deref(), Some("do_not_call"));
    store.close().await;
}

#[tokio::test]
async fn an_opt_out_right_before_shutdown_is_flushed_on_sqlite() {
    let (url, dir) = sqlite_url().await;
    opt_out_then_shutdown(&url).await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn an_opt_out_right_before_shutdown_is_flushed_on_postgres() {
    let Some((url, schema)) = common::pg_test_url().await else {
        return;
    };
    opt_out_then_shutdown(&url).await;
    common::drop_pg_schema(&schema).await;
}
