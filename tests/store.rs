//! The store suite, run against SQLite (a temporary file) and a real PostgreSQL
//! (`TELEMARKETER_TEST_POSTGRES_URL`; `.ci/run` installs and starts one, and in CI its absence
//! fails the test instead of skipping it).

use std::collections::{BTreeMap, HashSet};

use telemarketer::leads::NewLead;
use telemarketer::model::{
    Applied, CampaignSettings, CampaignState, LeadState, NewCall, StatusUpdate, Turn, TurnLatency,
};
use telemarketer::store::{Store, StoreError};

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
                .claim_next_lead("solar", now, &format!("worker-{w}"))
                .await
                .unwrap()
            {
                assert_eq!(l.state, LeadState::Dialing);
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
    let Ok(url) = std::env::var("TELEMARKETER_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must run the store suite on PostgreSQL: set TELEMARKETER_TEST_POSTGRES_URL"
        );
        eprintln!("skipped: TELEMARKETER_TEST_POSTGRES_URL is not set");
        return;
    };
    // A clean schema each run.
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.backend(), telemarketer::store::Backend::Postgres);
    suite(store).await;
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
