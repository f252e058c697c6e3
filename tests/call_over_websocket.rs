//! A call over a real loopback WebSocket with fake engines: protocol, pacing, marks, robustness
//! and the HTTP surface (TwiML, signatures, bearer auth). Fast; the real models are exercised in
//! `e2e_real_models.rs`.

mod common;

use std::time::Duration;

use common::*;
use telemarketer::config::Secrets;
use telemarketer::model::Speaker;
use telemarketer::testbed::sim::{run_call, CallerStep, SimCall};

#[tokio::test]
async fn greeting_reply_marks_and_bad_input_over_loopback() {
    let config = test_config(
        "[turn]\nmin_endpoint_ms = 300\nendpoint_silence_ms = 400",
        call_secrets(),
    );
    let (app, prompts) = fake_app(
        config,
        &["yes tell me more"],
        "Great question. We install solar panels.",
    );
    let local = start(app).await;
    let (addr, registry) = (local.addr, local.state.registry.clone());
    let call = sim_call();
    let steps = vec![
        CallerStep::WaitForAgent { quiet: Duration::from_millis(400), max: Duration::from_secs(20) },
        // Garbage a real network or a buggy proxy could deliver: each is logged and skipped.
        CallerStep::SendRaw("{not json".into()),
        CallerStep::SendRaw(r#"{"event":"media","streamSid":"MZwrong","media":{"track":"inbound","chunk":"1","timestamp":"1","payload":"AAAA"}}"#.into()),
        CallerStep::SendRaw(format!(r#"{{"event":"media","streamSid":"{}","sequenceNumber":"9","media":{{"track":"inbound","chunk":"1","timestamp":"1","payload":"%%%not base64"}}}}"#, call.stream_sid)),
        CallerStep::SendRaw(r#"{"event":"bogus"}"#.into()),
        CallerStep::SendBinary(vec![1, 2, 3]),
        CallerStep::Say(voiced(900)),
        CallerStep::WaitForAgent { quiet: Duration::from_millis(500), max: Duration::from_secs(20) },
    ];
    let report = run_call(&format!("ws://{addr}/twilio/media"), &call, steps)
        .await
        .unwrap();

    assert_eq!(report.odd_frames, 0, "every frame is 160 bytes of mu-law");
    assert_eq!(
        report.heard.len(),
        2,
        "greeting, then one reply: {:?}",
        report.heard.iter().map(|h| h.start_ms).collect::<Vec<_>>()
    );
    assert_eq!(report.underruns, 0, "no gaps inside an utterance");
    assert_eq!(report.late_frames, 0, "paced without starving Twilio");
    // Greeting clause marks and reply clause marks all came back after playing.
    let names: Vec<&str> = report
        .marks_echoed
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    for expected in ["s1c0", "s1end", "s2c0", "s2end"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    // The final mark of the greeting comes back after all of its clause marks.
    let pos = |n: &str| names.iter().position(|m| *m == n).unwrap();
    assert!(pos("s1end") > pos("s1c0") && pos("s1end") < pos("s2c0"));
    // The reply started after the caller stopped speaking, within the endpointing + processing time.
    let latency = report.response_latencies_ms();
    assert_eq!(latency.len(), 1);
    assert!(latency[0] >= 400 && latency[0] < 2000, "{latency:?}");

    tokio::time::sleep(Duration::from_millis(200)).await;
    let record = registry.get(&call.call_sid).expect("call recorded");
    let speakers: Vec<Speaker> = record.turns.iter().map(|t| t.speaker).collect();
    assert_eq!(
        speakers,
        vec![Speaker::Agent, Speaker::Caller, Speaker::Agent]
    );
    assert_eq!(record.turns[1].text, "yes tell me more");
    let latency = record.turns[2].latency.as_ref().expect("reply latency");
    assert!(latency.first_frame_ms.is_some() && latency.voice_to_voice_ms.is_some());
    // Endpointing counts from the caller's last audible frame: the 400 ms rule plus the VAD's
    // hangover (it hears the end of the tone later than a listener does).
    assert!(
        (380.0..=700.0).contains(&latency.endpointing_ms),
        "{latency:?}"
    );
    // Where the server heard the caller stop is where the caller stopped, on the caller's own
    // clock (Twilio's inbound frames are it): the two latency figures start at the same frame.
    let caller_end = report.caller_speech_ends[0];
    let server_end = latency.speech_end_ms.expect("speech end");
    assert!(
        server_end.abs_diff(caller_end) <= 20,
        "{server_end} vs {caller_end}"
    );
    // The LLM saw the system prompt, the greeting and the caller's words.
    let prompt = &prompts.lock().unwrap()[0];
    assert_eq!(prompt[0].role, "system");
    assert_eq!(prompt.last().unwrap().content, "yes tell me more");
}

#[tokio::test]
async fn voice_webhook_requires_a_valid_signature_and_returns_twiml() {
    let secrets = Secrets {
        api_token: Some("api-secret".into()),
        twilio_auth_token: Some("12345".into()),
        ..Default::default()
    };
    let config = test_config("[server]\npublic_url = \"https://example.test\"", secrets);
    let (app, _) = fake_app(config, &[], "");
    let addr = start(app).await.addr;
    let client = reqwest::Client::new();
    let form = [
        ("CallSid", "CA0123456789abcdef0123456789abcdef"),
        ("From", "+15005550006"),
        ("To", "+14155550100"),
    ];
    let params: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let good = telemarketer::twilio::signature::compute(
        "12345",
        "https://example.test/twilio/voice",
        &params,
    );

    let unsigned = client
        .post(format!("http://{addr}/twilio/voice"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    let forged = client
        .post(format!("http://{addr}/twilio/voice"))
        .header("X-Twilio-Signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let ok = client
        .post(format!("http://{addr}/twilio/voice"))
        .header("X-Twilio-Signature", good)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let xml = ok.text().await.unwrap();
    assert!(
        xml.contains(r#"<Stream url="wss://example.test/twilio/media">"#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<Parameter name="call_sid" value="CA0123456789abcdef0123456789abcdef"/>"#),
        "{xml}"
    );
    assert!(xml.contains("<Hangup/>"), "{xml}");
}

#[tokio::test]
async fn engine_api_needs_the_bearer_token() {
    let secrets = Secrets {
        api_token: Some("api-secret".into()),
        twilio_auth_token: None,
        ..Default::default()
    };
    let (app, _) = fake_app(test_config("", secrets), &[], "");
    let addr = start(app).await.addr;
    let client = reqwest::Client::new();
    let body = serde_json::json!({
        "call_sid": "CA0123456789abcdef0123456789abcdef",
        "from": "+15005550006", "to": "+14155550100", "campaign_id": "solar-q4",
        "lead": {"name": "Dana"}
    });
    let url = format!("http://{addr}/v1/calls");
    let r = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .post(&url)
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .post(&url)
        .bearer_auth("api-secret")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("invalid JSON"));
    let r = client
        .post(&url)
        .bearer_auth("api-secret")
        .json(&serde_json::json!({"call_sid": "CA1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client
        .post(&url)
        .bearer_auth("api-secret")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .get(format!("{url}/CA0123456789abcdef0123456789abcdef"))
        .bearer_auth("api-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let record: serde_json::Value = r.json().await.unwrap();
    assert_eq!(record["metadata"]["lead"]["name"], "Dana");
    assert_eq!(record["status"], "registered");

    let metrics = format!("http://{addr}/metrics");
    assert_eq!(client.get(&metrics).send().await.unwrap().status(), 401);
    let text = client
        .get(&metrics)
        .bearer_auth("api-secret")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("# TYPE telemarketer_stage_seconds histogram"),
        "{text}"
    );
    assert!(text.contains("telemarketer_active_calls"));
    assert!(text.contains("telemarketer_engine_queue_depth{engine=\"llm\"} 0"));
}

#[tokio::test]
async fn registered_metadata_reaches_the_conversation() {
    let secrets = Secrets {
        api_token: Some("t".into()),
        twilio_auth_token: Some(AUTH_TOKEN.into()),
        ..Default::default()
    };
    let (app, prompts) = fake_app(
        test_config(
            "[turn]\nmin_endpoint_ms = 300\nendpoint_silence_ms = 300",
            secrets,
        ),
        &["who is this"],
        "This is Nova.",
    );
    let addr = start(app).await.addr;
    // Registered here, with its lead; the stream is only signed.
    let mut call = SimCall::random();
    call.auth_token = Some(AUTH_TOKEN.into());
    reqwest::Client::new()
        .post(format!("http://{addr}/v1/calls"))
        .bearer_auth("t")
        .json(&serde_json::json!({"call_sid": call.call_sid, "campaign_id": "solar", "lead": {"name": "Dana Whitfield"}}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let steps = vec![
        CallerStep::WaitForAgent {
            quiet: Duration::from_millis(300),
            max: Duration::from_secs(20),
        },
        CallerStep::Say(voiced(600)),
        CallerStep::WaitForAgent {
            quiet: Duration::from_millis(300),
            max: Duration::from_secs(20),
        },
    ];
    run_call(&format!("ws://{addr}/twilio/media"), &call, steps)
        .await
        .unwrap();
    let prompts = prompts.lock().unwrap();
    assert!(
        prompts[0][0].content.contains("Dana Whitfield"),
        "{:?}",
        prompts[0][0]
    );
}
