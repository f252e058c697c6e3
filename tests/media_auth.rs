//! The media WebSocket on the internet: only Twilio, signing as it does, may open a stream, and
//! only for a call our signed webhook or the API registered, once. Anything else is refused
//! before it can write a transcript line or a do-not-call entry. Sizes and the call cap are
//! bounded. Real WebSockets over loopback, fake engines.

mod common;

use std::time::Duration;

use common::*;
use telemarketer::app::LocalApp;
use telemarketer::store::Store;
use telemarketer::testbed::sim::{run_call, CallerStep, SimCall};
use telemarketer::twilio::signature;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const LEAD: &str = "+14155550142";
const OURS: &str = "+18005550100";

/// The app on fake engines with a database of its own (do-not-call entries are checked there).
async fn app_with_store(extra: &str) -> (LocalApp, Store) {
    let db = format!("sqlite://{}", tempdir().join("calls.db").display());
    let toml = format!(
        "[store]\nurl = {db:?}\n[turn]\nmin_endpoint_ms = 300\nendpoint_silence_ms = 400\n{extra}"
    );
    let (app, _) = fake_app(test_config(&toml, call_secrets()), &[], "Sure.");
    let local = app.spawn_local().await.unwrap();
    let store = local.state.store.clone().unwrap();
    (local, store)
}

/// Greeting, then the opt-out key, then a moment for the confirmation.
fn press_nine() -> Vec<CallerStep> {
    vec![
        CallerStep::WaitForAgent {
            quiet: Duration::from_millis(300),
            max: Duration::from_secs(10),
        },
        CallerStep::Dtmf('9'),
        CallerStep::WaitForAgent {
            quiet: Duration::from_millis(300),
            max: Duration::from_secs(10),
        },
    ]
}

/// A stream that is signed but registers nothing: what an attacker with a stolen signature or
/// a replayed upgrade could at best do.
fn signed_only(to: &str) -> SimCall {
    let mut call = SimCall::random();
    call.auth_token = Some(AUTH_TOKEN.into());
    call.parameters.insert("to".into(), to.into());
    call
}

#[tokio::test]
async fn an_unsigned_or_badly_signed_upgrade_is_forbidden() {
    let (app, _) = fake_app(test_config("", call_secrets()), &[], "");
    let local = start(app).await;
    let url = local.media_url();
    assert_eq!(upgrade_status(&url, None).await, 403);
    let wrong = signature::compute("not-the-token", &url, &[]);
    assert_eq!(upgrade_status(&url, Some(&wrong)).await, 403);
    // Signed over another URL (the http form) is not the stream's signature either.
    let http = signature::compute(AUTH_TOKEN, &local.base_url(), &[]);
    assert_eq!(upgrade_status(&url, Some(&http)).await, 403);
    let good = signature::compute(AUTH_TOKEN, &url, &[]);
    assert_eq!(upgrade_status(&url, Some(&good)).await, 101);
}

#[tokio::test]
async fn a_stream_for_an_unregistered_call_is_closed_and_writes_nothing() {
    let (local, store) = app_with_store("").await;
    let call = signed_only(LEAD);
    let report = run_call(&local.media_url(), &call, press_nine())
        .await
        .unwrap();
    assert_eq!(
        report.frames_received, 0,
        "no greeting: the stream was refused"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(local.state.registry.get(&call.call_sid).is_none());
    assert!(
        store.dnc_entry(LEAD).await.unwrap().is_none(),
        "nothing listed"
    );
    assert_eq!(local.state.live.count(), 0, "its place is free again");
}

#[tokio::test]
async fn a_registered_call_streams_once_and_a_replay_is_closed() {
    let (local, store) = app_with_store("").await;
    let other = "+14155550143";
    // The real call: registered through the API, signed, its number from the registration.
    let mut call = sim_call();
    call.parameters.insert("to".into(), other.into());
    let greeting_only = vec![CallerStep::WaitForAgent {
        quiet: Duration::from_millis(300),
        max: Duration::from_secs(10),
    }];
    let report = run_call(&local.media_url(), &call, greeting_only)
        .await
        .unwrap();
    assert!(
        report.frames_received > 0,
        "the registered call was greeted"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The same SID again, claiming another number: refused, nothing listed.
    let mut replay = signed_only(LEAD);
    replay.call_sid = call.call_sid.clone();
    let report = run_call(&local.media_url(), &replay, press_nine())
        .await
        .unwrap();
    assert_eq!(report.frames_received, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(store.dnc_entry(LEAD).await.unwrap().is_none());
    assert!(store.dnc_entry(other).await.unwrap().is_none());
    let record = local.state.registry.get(&call.call_sid).unwrap();
    assert_eq!(record.metadata.to.as_deref(), Some(other));
    assert_ne!(
        record.outcome.map(|o| o.as_str()),
        Some("do_not_call"),
        "the replay's key press did nothing"
    );

    // Registering a streamed call again is refused too.
    let r = reqwest::Client::new()
        .post(format!("{}/v1/calls", local.base_url()))
        .bearer_auth(API_TOKEN)
        .json(&serde_json::json!({"call_sid": call.call_sid, "to": LEAD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
}

#[tokio::test]
async fn a_dialed_calls_opt_out_lists_the_number_registered_not_the_streams_claim() {
    let (local, store) = app_with_store("").await;
    let registered = "+14155550144";
    let mut call = sim_call();
    call.parameters.insert("to".into(), registered.into());
    let report = run_call(&local.media_url(), &call, press_nine())
        .await
        .unwrap();
    assert!(report.frames_received > 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(store.dnc_entry(registered).await.unwrap().is_some());
    let record = local.state.registry.get(&call.call_sid).unwrap();
    assert_eq!(record.outcome.map(|o| o.as_str()), Some("do_not_call"));
}

#[tokio::test]
async fn an_inbound_calls_opt_out_lists_the_caller_not_our_number() {
    let (local, store) = app_with_store("").await;
    let call = signed_only(OURS);
    let twiml = signed_post(
        local.addr,
        "/twilio/voice",
        &[
            ("CallSid", &call.call_sid),
            ("AccountSid", &call.account_sid),
            ("From", LEAD),
            ("To", OURS),
            ("Direction", "inbound"),
        ],
    )
    .await;
    assert!(twiml.contains("<Connect><Stream"), "{twiml}");
    let report = run_call(&local.media_url(), &call, press_nine())
        .await
        .unwrap();
    assert!(report.frames_received > 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(store.dnc_entry(LEAD).await.unwrap().is_some(), "the caller");
    assert!(store.dnc_entry(OURS).await.unwrap().is_none(), "not us");
}

#[tokio::test]
async fn a_stream_for_another_account_is_refused() {
    let account = format!("AC{}", "0".repeat(32));
    let extra = format!("[twilio]\naccount_sid = {account:?}");
    let (app, _) = fake_app(test_config(&extra, call_secrets()), &[], "");
    let local = start(app).await;
    let mut call = sim_call();
    let report = run_call(&local.media_url(), &call, press_nine())
        .await
        .unwrap();
    assert_eq!(report.frames_received, 0, "a random account is not ours");
    call.call_sid = SimCall::random().call_sid;
    call.account_sid = account;
    let report = run_call(&local.media_url(), &call, press_nine())
        .await
        .unwrap();
    assert!(report.frames_received > 0, "ours is");
}

#[tokio::test]
async fn a_huge_message_is_refused_from_its_header() {
    let (app, _) = fake_app(test_config("", call_secrets()), &[], "");
    let local = start(app).await;
    let url = local.media_url();
    let sig = signature::compute(AUTH_TOKEN, &url, &[]);

    // By hand: a frame header that announces 64 MiB, and only 1 KiB after it. The server must
    // close without waiting for (or buffering) the rest.
    let mut tcp = tokio::net::TcpStream::connect(local.addr).await.unwrap();
    let handshake = format!(
        "GET /twilio/media HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         X-Twilio-Signature: {sig}\r\n\r\n",
        local.addr
    );
    tcp.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        tcp.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let mut frame = vec![0x81, 0xFF];
    frame.extend_from_slice(&(64u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend(std::iter::repeat_n(b'a', 1024));
    tcp.write_all(&frame).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = vec![0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue, // its close frame, then the end
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server closed the socket on the header alone"
    );

    // Through a real client too: a 64 MiB text message ends the connection.
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("X-Twilio-Signature", sig.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    use futures::{SinkExt, StreamExt};
    let huge = "a".repeat(64 << 20);
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        if ws.send(Message::Text(huge.into())).await.is_err() {
            return;
        }
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                return;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "refused, not read");
    tokio::time::timeout(Duration::from_secs(5), local.state.live.idle())
        .await
        .expect("both places freed");
}

#[tokio::test]
async fn at_the_call_limit_the_voice_webhook_says_busy_and_the_upgrade_503() {
    let (app, _) = fake_app(
        test_config("[server]\nmax_calls = 1", call_secrets()),
        &[],
        "",
    );
    let local = start(app).await;
    let call = sim_call();
    let url = local.media_url();
    let running = tokio::spawn(async move {
        let steps = vec![CallerStep::Silence(Duration::from_secs(3))];
        run_call(&url, &call, steps).await
    });
    tokio::time::timeout(Duration::from_secs(5), async {
        while local.state.live.count() < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the first call runs");

    let next = SimCall::random();
    let twiml = signed_post(
        local.addr,
        "/twilio/voice",
        &[("CallSid", &next.call_sid), ("From", LEAD), ("To", OURS)],
    )
    .await;
    assert!(twiml.contains(r#"<Reject reason="busy"/>"#), "{twiml}");
    assert!(local.state.registry.get(&next.call_sid).is_none());
    let sig = signature::compute(AUTH_TOKEN, &local.media_url(), &[]);
    assert_eq!(upgrade_status(&local.media_url(), Some(&sig)).await, 503);
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_development_switch_takes_unsigned_unregistered_streams_on_loopback() {
    let config = test_config(
        "[server]\nlisten = \"127.0.0.1:0\"\nallow_unregistered_media = true",
        Default::default(),
    );
    let (app, _) = fake_app(config, &[], "");
    let local = start(app).await;
    let mut call = SimCall::random();
    call.parameters.insert("to".into(), LEAD.into());
    let report = run_call(&local.media_url(), &call, press_nine())
        .await
        .unwrap();
    assert!(report.frames_received > 0);
    let record = local.state.registry.get(&call.call_sid).unwrap();
    assert_eq!(record.metadata.to.as_deref(), Some(LEAD));

    let refused = telemarketer::config::RawConfig::from_toml(
        "[server]\nlisten = \"0.0.0.0:8080\"\nallow_unregistered_media = true",
    )
    .unwrap()
    .validate(Default::default());
    assert!(refused.is_err(), "never on a public address");
}
