//! The operator console: login (cookie, CSRF, cross-site refusal, rate limit) over real HTTP,
//! and the whole console in real headless Chromium (Playwright for Python): log in, create a
//! campaign (an inline error first), import a CSV with one bad row, start it against the
//! Twilio emulator, watch the live transcript, open the record and play its recording, add and
//! remove a do-not-call number, edit a script (an error at its line), chat with it.
//! Screenshots land in `target/console-screenshots/` (CI keeps them as artifacts).

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use telemarketer::app::LocalApp;
use telemarketer::config::Secrets;
use telemarketer::http::console::hash_password;
use telemarketer::store::Store;
use telemarketer::testbed::emulator::{CallerLine, EmulatorConfig, Persona, RunningEmulator};

const ACCOUNT: &str = "AC00000000000000000000000000000015";
const TOKEN: &str = "console-test-token";
const USER: &str = "ops";
const PASSWORD: &str = "correct horse battery";

/// The appliance (fake engines, a SQLite store, an operator account), dialing `emulator`.
async fn console_app(
    emulator: Option<&RunningEmulator>,
    transcripts: &[&str],
) -> (LocalApp, Store) {
    console_app_at(emulator, transcripts, &tempdir().join("console.db")).await
}

/// [`console_app`] on the SQLite database at `db`.
async fn console_app_at(
    emulator: Option<&RunningEmulator>,
    transcripts: &[&str],
    db: &std::path::Path,
) -> (LocalApp, Store) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let db = format!("sqlite://{}", db.display());
    let mut toml = format!("[server]\npublic_url = \"http://{addr}\"\n[store]\nurl = {db:?}\n");
    let mut secrets = Secrets {
        api_token: Some("api".into()),
        twilio_auth_token: Some(TOKEN.into()),
        ..Default::default()
    };
    if let Some(e) = emulator {
        toml.push_str(&format!(
            "[twilio]\nbase_url = {:?}\nworker_id = \"console-test\"\n",
            e.base_url()
        ));
        secrets.twilio_account_sid = Some(ACCOUNT.into());
    }
    let (app, _) = fake_app(test_config(&toml, secrets), transcripts, "");
    let app = app
        .dialer_poll(Duration::from_millis(100))
        .spawn(listener)
        .await
        .unwrap();
    let store = app.state.store.clone().unwrap();
    store
        .set_operator(USER, &hash_password(PASSWORD).unwrap())
        .await
        .unwrap();
    (app, store)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn login(base: &str, user: &str, password: &str) -> reqwest::Response {
    client()
        .post(format!("{base}/login"))
        .form(&[("username", user), ("password", password), ("next", "/dnc")])
        .send()
        .await
        .unwrap()
}

/// The session cookie a login set, as a `Cookie` header value.
fn session_cookie(r: &reqwest::Response) -> String {
    let set = r
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_string()
}

/// The CSRF token the page's forms carry.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"_csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 20;
    html[at..].split('"').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_need_a_login_and_refuse_forged_and_cross_site_writes() {
    let (app, store) = console_app(None, &[]).await;
    let base = app.base_url();
    let http = client();

    // Every page and every asset that shows data: to the login, with the way back.
    for path in [
        "/",
        "/campaigns",
        "/campaigns/x",
        "/live",
        "/live/events",
        "/calls",
        "/calls/CA1",
        "/dnc",
        "/dnc.csv",
        "/scripts",
        "/scripts/x",
        "/assets/console.js",
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        let to = r.headers()["location"].to_str().unwrap();
        if path != "/" {
            assert!(to.starts_with("/login?next="), "{path} -> {to}");
        }
    }
    // A write without a session does nothing either.
    let r = http
        .post(format!("{base}/dnc"))
        .form(&[("phone", "+14155550111"), ("reason", "x"), ("_csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(store.dnc_entry("+14155550111").await.unwrap().is_none());
    // The stylesheet shows nothing and styles the login page.
    let r = http
        .get(format!("{base}/assets/console.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A wrong password: refused, no cookie.
    let r = login(&base, USER, "wrong password!").await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let r = login(&base, "nobody", PASSWORD).await;
    assert_eq!(r.status(), 401);

    // The right one: a cookie only the server reads, never sent cross-site.
    let r = login(&base, USER, PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/dnc");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain http on loopback: {set}");
    let cookie = session_cookie(&r);
    let page = http
        .get(format!("{base}/dnc"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csrf = csrf_of(&page.text().await.unwrap());

    let add = |token: &str, origin: Option<&str>, phone: &str| {
        let mut req = http
            .post(format!("{base}/dnc"))
            .header("cookie", &cookie)
            .form(&[
                ("phone", phone),
                ("reason", "asked by email"),
                ("_csrf", token),
            ]);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    // A forged form (no or a wrong token), or one posted from another site: refused.
    assert_eq!(add("", None, "+14155550112").await.unwrap().status(), 403);
    assert_eq!(
        add("0000", None, "+14155550112").await.unwrap().status(),
        403
    );
    assert_eq!(
        add(&csrf, Some("https://evil.example"), "+14155550112")
            .await
            .unwrap()
            .status(),
        403
    );
    let r = http
        .post(format!("{base}/dnc"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("phone", "+14155550112"),
            ("reason", "x"),
            ("_csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(store.dnc_entry("+14155550112").await.unwrap().is_none());
    // The page's own form, from this origin: done and audited with who did it.
    let r = add(&csrf, Some(&base), "+14155550112").await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(store.dnc_entry("+14155550112").await.unwrap().is_some());
    let audit = store.console_audit_log("dnc_", 10).await.unwrap();
    assert_eq!(
        (audit[0].username.as_str(), audit[0].action.as_str()),
        (USER, "dnc_add")
    );
    assert!(audit[0].detail.contains("+14155550112"));

    // Logging out ends the session on the server, not only in the browser.
    let r = http
        .post(format!("{base}/logout"))
        .header("cookie", &cookie)
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = http
        .get(format!("{base}/dnc"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the old cookie no longer works");

    // Guessing: after five failures the name is locked out, even with the right password.
    for _ in 0..5 {
        assert_eq!(login(&base, USER, "guess guess guess").await.status(), 401);
    }
    assert_eq!(login(&base, USER, PASSWORD).await.status(), 429);
    // Another operator is not locked out by it.
    store
        .set_operator("auditor", &hash_password("another long one").unwrap())
        .await
        .unwrap();
    assert_eq!(
        login(&base, "auditor", "another long one").await.status(),
        303
    );
}

/// `telemarketer operator add NAME` makes an account in the appliance's own store: a short
/// password is refused with a clear error, the password comes from the environment or one line
/// of standard input (never echoed or printed), `operator list` lists it, and it logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_command_makes_an_account_that_logs_in() {
    let dir = tempdir();
    let db = dir.join("ops.db");
    let config = dir.join("appliance.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = {:?}\n",
            format!("sqlite://{}", db.display())
        ),
    )
    .unwrap();
    let password = "a long enough secret";
    let run = |args: &[&str], env_password: Option<&str>, stdin: &str| {
        use std::io::Write;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_telemarketer"));
        cmd.arg("-c").arg(&config).args(args);
        cmd.env_remove("TELEMARKETER_OPERATOR_PASSWORD");
        if let Some(p) = env_password {
            cmd.env("TELEMARKETER_OPERATOR_PASSWORD", p);
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, out) = run(&["operator", "add", "Ann.Ops"], Some("too short"), "");
    assert!(!ok && out.contains("at least 10 characters"), "{out}");
    let (ok, out) = run(&["operator", "add", "bad name!"], Some(password), "");
    assert!(!ok && out.contains("user names are"), "{out}");
    // From standard input this time.
    let (ok, out) = run(
        &["operator", "add", "Ann.Ops"],
        None,
        &format!("{password}\n"),
    );
    assert!(ok, "{out}");
    assert!(out.contains("operator ann.ops can log in"), "{out}");
    assert!(!out.contains(password), "the password was printed: {out}");
    let (ok, out) = run(&["operator", "list"], None, "");
    assert!(ok && out.lines().any(|l| l == "ann.ops"), "{out}");

    let (app, _store) = console_app_at(None, &[], &db).await;
    let base = app.base_url();
    assert_eq!(
        login(&base, "ann.ops", "a wrong password").await.status(),
        401
    );
    let r = login(&base, "ann.ops", password).await;
    assert_eq!(r.status(), 303);
    let page = client()
        .get(format!("{base}/campaigns"))
        .header("cookie", session_cookie(&r))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("ann.ops"));
}

/// An operator hangs up a live call from the console: the call's session ends at once (the
/// caller hears nothing more), Twilio's call completes, the lead is not redialed and the
/// audit says who did it. A second click answers that the call is no longer in progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_hangs_up_a_live_call() {
    let mut config = EmulatorConfig::new(ACCOUNT, TOKEN);
    config.ring = Duration::from_millis(200);
    config.tts = Some(Arc::new(VoicedTts));
    // Answers, then says nothing for a minute: the call stays up until someone ends it.
    config.default_persona = Persona::Human {
        lines: vec![
            CallerLine::Say("Yes.".into()),
            CallerLine::Silence(Duration::from_secs(60)),
        ],
    };
    let emulator = RunningEmulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (app, store) = console_app(Some(&emulator), &["Yes."]).await;
    let base = app.base_url();
    let settings = telemarketer::model::CampaignSettings {
        from_number: "+15005550006".into(),
        max_concurrent: 1,
        max_attempts: 3,
        machine_detection: false,
        ..Default::default()
    };
    store
        .create_campaign(
            "hang",
            "Hang up test",
            telemarketer::script::EXAMPLE_SCRIPT,
            &settings,
        )
        .await
        .unwrap();
    let lead = telemarketer::leads::NewLead {
        phone: "+14155550162".into(),
        name: Some("Ann Lee".into()),
        fields: Default::default(),
        timezone: zone_where_window_is(true).into(),
        consent: true,
        source: None,
    };
    store.insert_leads("hang", &[lead]).await.unwrap();
    app.state
        .dialer
        .clone()
        .unwrap()
        .start("hang")
        .await
        .unwrap();

    let cookie = session_cookie(&login(&base, USER, PASSWORD).await);
    let get = |path: &str| {
        client()
            .get(format!("{base}{path}"))
            .header("cookie", &cookie)
            .send()
    };
    // The call is live once the agent has asked its first question after the caller's "Yes.".
    let t0 = std::time::Instant::now();
    let sid = loop {
        let live = app.state.registry.live();
        if let Some(r) = live.iter().find(|r| r.turns.len() >= 3) {
            break r.metadata.call_sid.clone();
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no live call");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let csrf = csrf_of(&get("/live").await.unwrap().text().await.unwrap());
    let hang_up = || {
        client()
            .post(format!("{base}/live/{sid}/hangup"))
            .header("cookie", &cookie)
            .form(&[("_csrf", csrf.as_str())])
            .send()
    };
    let clicked = std::time::Instant::now();
    let r = hang_up().await.unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/live?ok="), "{to}");

    // Twilio's call ends by the appliance's REST hang-up.
    let ended = loop {
        let call = emulator.call(&sid).expect("the emulator placed the call");
        if call.status == "completed" {
            break call;
        }
        assert!(
            clicked.elapsed() < Duration::from_secs(10),
            "the call did not end: {call:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "hung up {:?} after the click, by {:?}",
        clicked.elapsed(),
        ended.hung_up_by
    );
    assert_eq!(ended.hung_up_by.as_deref(), Some("api"));
    // The session hangs up through REST first, then closes its stream and leaves the
    // registry: a few milliseconds apart (CI once polled in between).
    while !app.state.registry.live().is_empty() {
        assert!(
            clicked.elapsed() < Duration::from_secs(10),
            "the session did not end"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing of the agent's is spoken after the click: the session is gone, so is the stream.
    let record = app.state.registry.get(&sid).unwrap();
    assert_ne!(record.status, "in-progress");

    // The lead is done with, not redialed as a dropped call; the audit names the operator.
    let t1 = std::time::Instant::now();
    loop {
        let lead = &store.leads("hang").await.unwrap()[0];
        use telemarketer::model::LeadState;
        if !matches!(lead.state, LeadState::Dialing | LeadState::InCall) {
            assert_eq!(
                (lead.state, lead.attempts),
                (LeadState::Done, 1),
                "{lead:#?}"
            );
            break;
        }
        assert!(t1.elapsed() < Duration::from_secs(10), "{lead:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let audit = store.console_audit_log("", 20).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "hang_up" && a.username == USER && a.detail.contains(&sid)),
        "{audit:#?}"
    );
    // A second click: the call is not in progress any more.
    let again = hang_up().await.unwrap();
    let to = again.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/live?error="), "{to}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(emulator.calls().len(), 1, "the lead was dialed again");
}

/// The screenshots' folder (kept by CI as artifacts).
fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Python with Playwright and Debian's Chromium: the browser tests need both, and say how to
/// get them rather than skip.
fn browser_ready() {
    let playwright = std::process::Command::new("python3")
        .args(["-c", "import playwright.sync_api"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        playwright && std::path::Path::new("/usr/bin/chromium").exists(),
        "browser tests need Debian's chromium (apt-get install chromium) and Playwright for \
         Python (python3 -m pip install playwright); .ci/run installs both"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    browser_ready();
    let good = "+14155550161";
    let mut config = EmulatorConfig::new(ACCOUNT, TOKEN);
    config.ring = Duration::from_millis(200);
    config.tts = Some(Arc::new(VoicedTts));
    config.default_persona = Persona::Human {
        lines: vec![
            CallerLine::Say("Yes.".into()),
            CallerLine::Say("Yes, I own it.".into()),
            CallerLine::Say("About two hundred dollars.".into()),
            CallerLine::Say("No thanks, I am not interested.".into()),
        ],
    };
    let emulator = RunningEmulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (app, store) = console_app(
        Some(&emulator),
        &[
            "Yes.",
            "Yes, I own it.",
            "About two hundred dollars.",
            "No thanks, I am not interested.",
        ],
    )
    .await;
    let dir = tempdir();
    let csv = dir.join("leads.csv");
    std::fs::write(
        &csv,
        format!(
            "phone,name,timezone,consent\n{good},Ann Lee,{},yes\nnot a phone,Bad Row,America/New_York,yes\n",
            zone_where_window_is(true)
        ),
    )
    .unwrap();
    let shots = screenshots();
    let out = tokio::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/console_browser.py"
        ))
        .args([&app.base_url(), USER, PASSWORD])
        .arg(&csv)
        .arg(&shots)
        .arg(good)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), out)
        .await
        .expect("the browser run took over 4 minutes")
        .unwrap();
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{log}");
    assert!(out.status.success(), "the browser run failed:\n{log}");

    // What the clicks did, read back from the store.
    let c = store.campaign("spring").await.unwrap();
    assert_eq!(c.name, "Spring solar");
    assert!(c.settings.recording);
    let leads = store.leads("spring").await.unwrap();
    assert_eq!(leads.len(), 1, "the bad row was not imported");
    let calls = store.calls("spring").await.unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].outcome.as_deref(), Some("not_interested"));
    assert!(calls[0].path.len() >= 3, "{:?}", calls[0].path);
    let changes: Vec<String> = store
        .console_audit_log("", 50)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    for action in [
        "login",
        "leads_import",
        "campaign_action",
        "dnc_add",
        "dnc_remove",
        "script_save",
    ] {
        assert!(
            changes.iter().any(|a| a == action),
            "{action} in {changes:?}"
        );
    }
    assert!(store.dnc_entry("+14155550199").await.unwrap().is_none());
    for shot in [
        "login",
        "campaign-error",
        "import",
        "live",
        "record",
        "dnc",
        "script-error",
        "script",
    ] {
        assert!(shots.join(format!("{shot}.png")).exists(), "{shot}.png");
    }
}
