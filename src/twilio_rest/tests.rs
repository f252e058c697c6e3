use super::*;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use base64::Engine as _;
use serde_json::json;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

const AC: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CA: &str = "CA0123456789abcdef0123456789abcdef";
const TOKEN: &str = "tok-s3cret-7f00";
const TO: &str = "+14155551212";
const FROM: &str = "+15017122661";

/// One request as the fake saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    form: Vec<(String, String)>,
    auth: Option<String>,
}

struct Reply {
    status: u16,
    body: String,
    headers: Vec<(&'static str, String)>,
    delay: Duration,
}

fn reply(status: u16, body: serde_json::Value) -> Reply {
    Reply {
        status,
        body: body.to_string(),
        headers: vec![],
        delay: Duration::ZERO,
    }
}

type Script = Box<dyn FnOnce(&Seen) -> Reply + Send>;

/// Fake Twilio: records every request and answers from a scripted queue (500 when empty).
#[derive(Clone, Default)]
struct Fake {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Script>>>,
}

impl Fake {
    fn push(&self, f: impl FnOnce(&Seen) -> Reply + Send + 'static) {
        self.script.lock().unwrap().push_back(Box::new(f));
    }
    fn push_reply(&self, status: u16, body: serde_json::Value) {
        self.push(move |_| reply(status, body));
    }
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn handle(State(fake): State<Fake>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let pairs = |s: &[u8]| -> Vec<(String, String)> {
        url::form_urlencoded::parse(s).into_owned().collect()
    };
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: pairs(parts.uri.query().unwrap_or("").as_bytes()),
        form: pairs(&bytes),
        auth: parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    fake.seen.lock().unwrap().push(seen.clone());
    let next = fake.script.lock().unwrap().pop_front();
    let r = match next {
        Some(f) => f(&seen),
        None => reply(
            500,
            json!({"code": 20500, "message": "unscripted", "status": 500}),
        ),
    };
    if !r.delay.is_zero() {
        tokio::time::sleep(r.delay).await;
    }
    let mut resp = Response::builder()
        .status(r.status)
        .header("content-type", "application/json");
    for (k, v) in r.headers {
        resp = resp.header(k, v);
    }
    resp.body(Body::from(r.body)).unwrap()
}

async fn start_fake() -> (Fake, String) {
    let fake = Fake::default();
    let app = Router::new().fallback(handle).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (fake, format!("http://{addr}/"))
}

fn tiny_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

fn client(base: &str) -> TwilioClient {
    TwilioClient::new(base, AC, TwilioAuth::AuthToken(TOKEN.into()))
        .unwrap()
        .with_retry(tiny_retry(5))
}

fn rfc2822(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// A call resource as Twilio returns it, with the many fields we ignore.
fn call_json(sid: &str, status: &str, date_created: &str) -> serde_json::Value {
    json!({
        "account_sid": AC,
        "annotation": null,
        "answered_by": null,
        "api_version": "2010-04-01",
        "caller_name": null,
        "date_created": date_created,
        "date_updated": date_created,
        "direction": "outbound-api",
        "duration": "0",
        "end_time": null,
        "forwarded_from": null,
        "from": FROM,
        "from_formatted": "(501) 712-2661",
        "group_sid": null,
        "parent_call_sid": null,
        "phone_number_sid": "PNaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "price": null,
        "price_unit": "USD",
        "sid": sid,
        "start_time": null,
        "status": status,
        "subresource_uris": {
            "notifications": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}/Notifications.json"),
            "recordings": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}/Recordings.json"),
            "payments": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}/Payments.json"),
            "events": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}/Events.json"),
            "siprec": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}/Siprec.json"),
            "streams": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}/Streams.json"),
            "user_defined_message_subscriptions": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}/UserDefinedMessageSubscriptions.json"),
            "user_defined_messages": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}/UserDefinedMessages.json")
        },
        "to": TO,
        "to_formatted": "(415) 555-1212",
        "trunk_sid": null,
        "uri": format!("/2010-04-01/Accounts/{AC}/Calls/{sid}.json"),
        "queue_time": "1000"
    })
}

fn page(calls: Vec<serde_json::Value>, next: Option<&str>) -> serde_json::Value {
    json!({
        "calls": calls,
        "end": 0,
        "first_page_uri": format!("/2010-04-01/Accounts/{AC}/Calls.json?PageSize=50&Page=0"),
        "next_page_uri": next,
        "page": 0,
        "page_size": 50,
        "previous_page_uri": null,
        "start": 0,
        "uri": format!("/2010-04-01/Accounts/{AC}/Calls.json?PageSize=50&Page=0")
    })
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

fn full_request() -> CreateCall {
    CreateCall {
        to: TO.into(),
        from: FROM.into(),
        url: "https://dialer.example.com/twiml/outbound?lead=42".into(),
        method: Some("POST".into()),
        status_callback: Some("https://dialer.example.com/twilio/status".into()),
        status_callback_events: vec![],
        machine_detection: Some(MachineDetection::DetectMessageEnd),
        async_amd: true,
        async_amd_status_callback: Some("https://dialer.example.com/twilio/amd".into()),
        machine_detection_timeout: Some(30),
        timeout: Some(25),
        time_limit: Some(600),
    }
}

fn simple_request() -> CreateCall {
    CreateCall {
        to: TO.into(),
        from: FROM.into(),
        url: "https://dialer.example.com/twiml".into(),
        ..Default::default()
    }
}

fn calls_path() -> String {
    format!("/2010-04-01/Accounts/{AC}/Calls.json")
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn create_sends_documented_form_with_token_auth_and_parses_201() {
    let (fake, base) = start_fake().await;
    let created = "Tue, 31 Aug 2010 20:36:28 +0000";
    fake.push_reply(201, call_json(CA, "queued", created));
    let call = client(&base).create_call(&full_request()).await.unwrap();

    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, calls_path());
    assert!(seen[0].query.is_empty());
    assert_eq!(seen[0].auth.as_deref(), Some(basic(AC, TOKEN).as_str()));
    assert_eq!(
        seen[0].form,
        pairs(&[
            ("To", TO),
            ("From", FROM),
            ("Url", "https://dialer.example.com/twiml/outbound?lead=42"),
            ("Method", "POST"),
            ("StatusCallback", "https://dialer.example.com/twilio/status"),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
            ("MachineDetection", "DetectMessageEnd"),
            ("AsyncAmd", "true"),
            (
                "AsyncAmdStatusCallback",
                "https://dialer.example.com/twilio/amd"
            ),
            ("MachineDetectionTimeout", "30"),
            ("Timeout", "25"),
            ("TimeLimit", "600"),
        ])
    );
    assert_eq!(
        call,
        CallResource {
            sid: CA.into(),
            status: "queued".into(),
            to: TO.into(),
            from: FROM.into(),
            direction: Some("outbound-api".into()),
            date_created: Some(created.into()),
            start_time: None,
            duration: Some("0".into()),
            answered_by: None,
            account_sid: Some(AC.into()),
        }
    );
}

#[tokio::test]
async fn create_minimal_form_and_api_key_auth() {
    let (fake, base) = start_fake().await;
    fake.push_reply(
        201,
        call_json(CA, "queued", "Tue, 31 Aug 2010 20:36:28 +0000"),
    );
    let auth = TwilioAuth::ApiKey {
        sid: "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into(),
        secret: "key-secret-99".into(),
    };
    let c = TwilioClient::new(base.trim_end_matches('/'), AC, auth).unwrap();
    let mut req = simple_request();
    req.status_callback_events = vec!["answered".into(), "completed".into()];
    req.machine_detection = Some(MachineDetection::Enable);
    c.create_call(&req).await.unwrap();
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    // The AccountSid stays in the path; the key SID is the Basic user.
    assert_eq!(seen[0].path, calls_path());
    assert_eq!(
        seen[0].auth.as_deref(),
        Some(basic("SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "key-secret-99").as_str())
    );
    assert_eq!(
        seen[0].form,
        pairs(&[
            ("To", TO),
            ("From", FROM),
            ("Url", "https://dialer.example.com/twiml"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
            ("MachineDetection", "Enable"),
        ])
    );
}

#[tokio::test]
async fn create_400_maps_api_error_without_retry() {
    let (fake, base) = start_fake().await;
    fake.push_reply(
        400,
        json!({"code": 21211, "message": "The 'To' number +1415 is not a valid phone number.",
                   "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}),
    );
    let err = client(&base)
        .create_call(&simple_request())
        .await
        .unwrap_err();
    match &err {
        TwilioError::Api {
            status,
            code,
            message,
            more_info,
        } => {
            assert_eq!(*status, 400);
            assert_eq!(*code, Some(21211));
            assert!(message.contains("not a valid phone number"));
            assert_eq!(
                more_info.as_deref(),
                Some("https://www.twilio.com/docs/errors/21211")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.code(), Some(21211));
    assert!(!err.is_retryable());
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn create_retries_429_then_succeeds() {
    let (fake, base) = start_fake().await;
    let too_many = json!({"code": 20429, "message": "Too Many Requests", "status": 429});
    let t = too_many.clone();
    fake.push(move |_| Reply {
        headers: vec![("retry-after", "0".into())],
        ..reply(429, t)
    });
    fake.push_reply(429, too_many);
    fake.push_reply(
        201,
        call_json(CA, "queued", "Tue, 31 Aug 2010 20:36:28 +0000"),
    );
    let call = client(&base).create_call(&simple_request()).await.unwrap();
    assert_eq!(call.sid, CA);
    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    // A 429 means nothing was created: no list in between, just three creates.
    assert!(seen
        .iter()
        .all(|s| s.method == "POST" && s.path == calls_path()));
}

#[tokio::test]
async fn create_persistent_429_is_rate_limited() {
    let (fake, base) = start_fake().await;
    for _ in 0..3 {
        fake.push_reply(
            429,
            json!({"code": 20429, "message": "Too Many Requests", "status": 429}),
        );
    }
    let err = client(&base)
        .with_retry(tiny_retry(3))
        .create_call(&simple_request())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TwilioError::RateLimited { attempts: 3 }),
        "{err:?}"
    );
    assert_eq!(err.code(), Some(20429));
    assert!(err.is_retryable());
    assert_eq!(fake.seen().len(), 3);
}

#[tokio::test]
async fn create_500_after_twilio_created_returns_existing_call() {
    let (fake, base) = start_fake().await;
    let created_at = Arc::new(Mutex::new(None));
    let c2 = created_at.clone();
    fake.push(move |_| {
        // Twilio placed the call, then failed to answer.
        *c2.lock().unwrap() = Some(Utc::now());
        reply(
            500,
            json!({"code": 20500, "message": "Internal Server Error", "status": 500}),
        )
    });
    let c3 = created_at.clone();
    fake.push(move |_| {
        let t = c3.lock().unwrap().unwrap();
        reply(200, page(vec![call_json(CA, "ringing", &rfc2822(t))], None))
    });
    let call = client(&base).create_call(&simple_request()).await.unwrap();
    assert_eq!(call.sid, CA);
    assert_eq!(call.status, "ringing");

    let seen = fake.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen.iter().filter(|s| s.method == "POST").count(), 1);
    assert_eq!(seen[1].method, "GET");
    assert_eq!(seen[1].path, calls_path());
    let today = Utc::now().date_naive().format("%Y-%m-%d").to_string();
    assert_eq!(
        seen[1].query,
        pairs(&[("To", TO), ("From", FROM), ("StartTime>=", today.as_str())])
    );
    assert_eq!(seen[1].auth.as_deref(), Some(basic(AC, TOKEN).as_str()));
}

#[tokio::test]
async fn create_500_not_created_lists_then_retries() {
    let (fake, base) = start_fake().await;
    fake.push_reply(
        500,
        json!({"code": 20500, "message": "Internal Server Error", "status": 500}),
    );
    // Only an older call to the same number exists: it must not be mistaken for ours.
    let old = rfc2822(Utc::now() - chrono::Duration::minutes(30));
    fake.push_reply(
        200,
        page(
            vec![call_json(
                "CAold0000000000000000000000000000",
                "completed",
                &old,
            )],
            None,
        ),
    );
    fake.push_reply(201, call_json(CA, "queued", &rfc2822(Utc::now())));
    let call = client(&base).create_call(&simple_request()).await.unwrap();
    assert_eq!(call.sid, CA);
    let methods: Vec<_> = fake.seen().iter().map(|s| s.method.clone()).collect();
    assert_eq!(methods, ["POST", "GET", "POST"]);
}

#[tokio::test]
async fn create_timeout_after_send_is_checked_before_retry() {
    let (fake, base) = start_fake().await;
    fake.push(|_| Reply {
        delay: Duration::from_millis(800),
        ..reply(201, call_json(CA, "queued", &rfc2822(Utc::now())))
    });
    fake.push(|_| {
        reply(
            200,
            page(vec![call_json(CA, "ringing", &rfc2822(Utc::now()))], None),
        )
    });
    let c = client(&base)
        .with_timeout(Duration::from_millis(200))
        .unwrap();
    let call = c.create_call(&simple_request()).await.unwrap();
    assert_eq!(call.sid, CA);
    let methods: Vec<_> = fake.seen().iter().map(|s| s.method.clone()).collect();
    assert_eq!(methods, ["POST", "GET"]);
}

#[tokio::test]
async fn create_persistent_503_is_unavailable_and_never_double_creates() {
    let (fake, base) = start_fake().await;
    for _ in 0..3 {
        fake.push_reply(
            503,
            json!({"code": 20503, "message": "Service Unavailable", "status": 503}),
        );
        fake.push_reply(200, page(vec![], None));
    }
    let err = client(&base)
        .with_retry(tiny_retry(3))
        .create_call(&simple_request())
        .await
        .unwrap_err();
    match &err {
        TwilioError::CreateUnknown { attempts, last } => {
            assert_eq!(*attempts, 3);
            assert!(last.contains("503"), "{last}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // The call may exist: retrying blindly could place a second one.
    assert!(!err.is_retryable());
    let methods: Vec<_> = fake.seen().iter().map(|s| s.method.clone()).collect();
    // Each create is followed by a check, including a last one after the final attempt.
    assert_eq!(methods, ["POST", "GET", "POST", "GET", "POST", "GET"]);
}

#[tokio::test]
async fn create_does_not_retry_when_check_fails() {
    let (fake, base) = start_fake().await;
    fake.push_reply(502, json!({"message": "bad gateway"}));
    fake.push_reply(
        401,
        json!({"code": 20003, "message": "Authenticate", "status": 401}),
    );
    let err = client(&base)
        .create_call(&simple_request())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TwilioError::CreateUnknown { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn fetch_persistent_503_is_unavailable_after_max_attempts() {
    let (fake, base) = start_fake().await;
    for _ in 0..5 {
        fake.push(|_| Reply {
            headers: vec![("retry-after", "1".into())], // capped at max_delay (5 ms)
            ..reply(
                503,
                json!({"code": 20503, "message": "Service Unavailable", "status": 503}),
            )
        });
    }
    let started = std::time::Instant::now();
    let err = client(&base).fetch_call(CA).await.unwrap_err();
    assert!(
        matches!(err, TwilioError::Unavailable { attempts: 5, .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let seen = fake.seen();
    assert_eq!(seen.len(), 5);
    assert!(seen.iter().all(
        |s| s.method == "GET" && s.path == format!("/2010-04-01/Accounts/{AC}/Calls/{CA}.json")
    ));
}

#[tokio::test]
async fn connect_errors_retry_without_listing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let c = client(&format!("http://127.0.0.1:{port}")).with_retry(tiny_retry(3));
    let err = c.create_call(&simple_request()).await.unwrap_err();
    match &err {
        TwilioError::Unavailable { attempts, last } => {
            assert_eq!(*attempts, 3);
            assert!(!last.contains("could not check"), "{last}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn fetch_call_parses_resource() {
    let (fake, base) = start_fake().await;
    let mut body = call_json(CA, "completed", "Tue, 31 Aug 2010 20:36:28 +0000");
    body["answered_by"] = json!("machine_end_beep");
    body["duration"] = json!("37");
    body["start_time"] = json!("Tue, 31 Aug 2010 20:36:30 +0000");
    fake.push_reply(200, body);
    let call = client(&base).fetch_call(CA).await.unwrap();
    assert_eq!(call.answered_by.as_deref(), Some("machine_end_beep"));
    assert_eq!(call.duration.as_deref(), Some("37"));
    assert_eq!(
        call.start_time.as_deref(),
        Some("Tue, 31 Aug 2010 20:36:30 +0000")
    );
}

#[tokio::test]
async fn hang_up_sends_completed_and_treats_20404_as_done() {
    let (fake, base) = start_fake().await;
    fake.push_reply(
        200,
        call_json(CA, "completed", "Tue, 31 Aug 2010 20:36:28 +0000"),
    );
    fake.push_reply(
        404,
        json!({"code": 20404, "message": "The requested resource was not found",
                   "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}),
    );
    let c = client(&base);
    c.hang_up(CA).await.unwrap();
    c.hang_up(CA).await.unwrap();
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(s.method, "POST");
        assert_eq!(s.path, format!("/2010-04-01/Accounts/{AC}/Calls/{CA}.json"));
        assert_eq!(s.form, pairs(&[("Status", "completed")]));
    }
}

#[tokio::test]
async fn cancel_retries_5xx_and_plain_404_is_an_error() {
    let (fake, base) = start_fake().await;
    fake.push_reply(
        500,
        json!({"code": 20500, "message": "oops", "status": 500}),
    );
    fake.push_reply(
        200,
        call_json(CA, "canceled", "Tue, 31 Aug 2010 20:36:28 +0000"),
    );
    fake.push(|_| Reply {
        status: 404,
        body: "<html>not found</html>".into(),
        headers: vec![],
        delay: Duration::ZERO,
    });
    let c = client(&base);
    c.cancel(CA).await.unwrap();
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].form, pairs(&[("Status", "canceled")]));
    let err = c.cancel(CA).await.unwrap_err();
    assert!(
        matches!(&err, TwilioError::Api { status: 404, code: None, message, .. } if message.contains("not found")),
        "{err:?}"
    );
}

#[tokio::test]
async fn redirect_sends_url_and_post() {
    let (fake, base) = start_fake().await;
    fake.push_reply(
        200,
        call_json(CA, "in-progress", "Tue, 31 Aug 2010 20:36:28 +0000"),
    );
    let call = client(&base)
        .redirect(CA, "https://dialer.example.com/twiml/transfer?agent=7")
        .await
        .unwrap();
    assert_eq!(call.status, "in-progress");
    let seen = fake.seen();
    assert_eq!(
        seen[0].form,
        pairs(&[
            ("Url", "https://dialer.example.com/twiml/transfer?agent=7"),
            ("Method", "POST")
        ])
    );
}

#[tokio::test]
async fn update_twiml_sends_the_document() {
    let (fake, base) = start_fake().await;
    fake.push_reply(
        200,
        call_json(CA, "in-progress", "Tue, 31 Aug 2010 20:36:28 +0000"),
    );
    let dial = r#"<Response><Dial timeout="20"><Number>+14155550199</Number></Dial></Response>"#;
    let call = client(&base).update_twiml(CA, dial).await.unwrap();
    assert_eq!(call.status, "in-progress");
    assert_eq!(fake.seen()[0].form, pairs(&[("Twiml", dial)]));
}

#[tokio::test]
async fn list_calls_follows_next_page_uri() {
    let (fake, base) = start_fake().await;
    let next = format!(
            "/2010-04-01/Accounts/{AC}/Calls.json?To=%2B14155551212&StartTime%3E%3D=2024-05-01&PageSize=2&Page=1&PageToken=PACAbbb"
        );
    let d = "Wed, 01 May 2024 15:00:00 +0000";
    fake.push_reply(
        200,
        page(
            vec![
                call_json("CA1", "completed", d),
                call_json("CA2", "busy", d),
            ],
            Some(&next),
        ),
    );
    fake.push_reply(200, page(vec![call_json("CA3", "no-answer", d)], None));
    let filter = CallFilter {
        to: Some(TO.into()),
        start_time_after: chrono::NaiveDate::from_ymd_opt(2024, 5, 1),
        ..Default::default()
    };
    let calls = client(&base).list_calls(&filter).await.unwrap();
    let sids: Vec<_> = calls.iter().map(|c| c.sid.as_str()).collect();
    assert_eq!(sids, ["CA1", "CA2", "CA3"]);
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path, calls_path());
    assert_eq!(
        seen[0].query,
        pairs(&[("To", TO), ("StartTime>=", "2024-05-01")])
    );
    assert_eq!(seen[1].path, calls_path());
    assert_eq!(
        seen[1].query,
        pairs(&[
            ("To", TO),
            ("StartTime>=", "2024-05-01"),
            ("PageSize", "2"),
            ("Page", "1"),
            ("PageToken", "PACAbbb")
        ])
    );
    assert!(seen
        .iter()
        .all(|s| s.auth.as_deref() == Some(basic(AC, TOKEN).as_str())));
}

#[tokio::test]
async fn list_calls_refuses_foreign_next_page() {
    let (fake, base) = start_fake().await;
    fake.push_reply(200, page(vec![], Some("@evil.example.com/steal")));
    let err = client(&base)
        .list_calls(&CallFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(err, TwilioError::Decode(_)), "{err:?}");
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn undecodable_success_is_decode_error() {
    let (fake, base) = start_fake().await;
    fake.push(|_| Reply {
        status: 201,
        body: "not json".into(),
        headers: vec![],
        delay: Duration::ZERO,
    });
    let err = client(&base)
        .create_call(&simple_request())
        .await
        .unwrap_err();
    assert!(matches!(err, TwilioError::Decode(_)), "{err:?}");
    assert_eq!(fake.seen().len(), 1);
}

#[test]
fn debug_redacts_secrets() {
    let token = TwilioAuth::AuthToken(TOKEN.into());
    let key = TwilioAuth::ApiKey {
        sid: "SKkey".into(),
        secret: "key-secret-99".into(),
    };
    let t = format!("{token:?}");
    let k = format!("{key:?}");
    assert!(!t.contains(TOKEN), "{t}");
    assert!(!k.contains("key-secret-99"), "{k}");
    assert!(k.contains("SKkey"));
    let c = TwilioClient::new("https://api.twilio.com", AC, token).unwrap();
    let d = format!("{c:?}");
    assert!(!d.contains(TOKEN) && d.contains(AC), "{d}");
}

#[test]
fn new_validates_config() {
    let auth = || TwilioAuth::AuthToken(TOKEN.into());
    assert!(TwilioClient::new("ftp://x", AC, auth()).is_err());
    assert!(TwilioClient::new("not a url", AC, auth()).is_err());
    assert!(TwilioClient::new("https://u:p@api.twilio.com", AC, auth()).is_err());
    assert!(TwilioClient::new("https://api.twilio.com", "AC/../x", auth()).is_err());
    assert!(TwilioClient::new(
        "https://api.twilio.com",
        AC,
        TwilioAuth::AuthToken(String::new())
    )
    .is_err());
    let c = TwilioClient::new("https://api.twilio.com/", AC, auth()).unwrap();
    assert_eq!(c.account_sid(), AC);
    assert_eq!(
        c.calls_url(),
        format!("https://api.twilio.com/2010-04-01/Accounts/{AC}/Calls.json")
    );
    assert!(c.call_url("CA1/../../x").is_err());
}

#[test]
fn backoff_is_capped_and_honours_retry_after() {
    let p = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(5),
    };
    for attempt in 1..40 {
        let d = p.delay(attempt, None);
        let cap = Duration::from_millis(200 * 2u64.saturating_pow(attempt - 1)).min(p.max_delay);
        assert!(d <= cap, "attempt {attempt}: {d:?} > {cap:?}");
    }
    assert_eq!(
        p.delay(1, Some(Duration::from_secs(2))),
        Duration::from_secs(2)
    );
    assert_eq!(
        p.delay(1, Some(Duration::from_secs(60))),
        Duration::from_secs(5)
    );
    let mut h = HeaderMap::new();
    h.insert(RETRY_AFTER, " 3 ".parse().unwrap());
    assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(3)));
    h.insert(
        RETRY_AFTER,
        "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
    );
    assert_eq!(parse_retry_after(&h), None);
}

#[test]
fn error_mapping_tolerates_odd_bodies() {
    let e = api_error(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
    assert!(
        matches!(&e, TwilioError::Api { status: 502, code: None, message, .. } if message.contains("bad gateway"))
    );
    assert!(e.is_retryable());
    let e = api_error(StatusCode::BAD_REQUEST, br#"{"code":"21211","message":""}"#);
    assert!(
        matches!(&e, TwilioError::Api { code: Some(21211), message, .. } if message == "Bad Request")
    );
    let e = api_error(StatusCode::BAD_REQUEST, &[0xff, 0xfe]);
    assert!(matches!(e, TwilioError::Api { status: 400, .. }));
    assert_eq!(
        api_error(
            StatusCode::BAD_REQUEST,
            br#"{"code":21211,"message":"bad To","status":400}"#
        )
        .to_string(),
        "Twilio API error (HTTP 400, code 21211): bad To"
    );
}

#[test]
fn call_resource_tolerates_null_numbers() {
    let mut v = call_json(CA, "queued", "Tue, 31 Aug 2010 20:36:28 +0000");
    v["to"] = json!(null);
    let c: CallResource = serde_json::from_value(v).unwrap();
    assert_eq!(c.to, "");
}
