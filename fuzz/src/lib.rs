//! The fuzz targets' bodies: plain functions of the input bytes that panic on a broken invariant.
//!
//! `fuzz/fuzz_targets/<name>.rs` hands libFuzzer's input to one of them (`cargo +nightly fuzz
//! run <name>`); the main package's `tests/fuzz_corpus.rs` includes this file as a module and
//! replays the committed corpus (`fuzz/corpus/<name>/`) plus a short deterministic mutation pass
//! through the same functions on stable. So nothing here may use libFuzzer or a crate the main
//! package does not depend on.
//!
//! Each function checks only what the code under test documents: a parser never panics, a
//! message it accepts re-serialises to itself, a signature it computes validates, an import
//! report accounts for every row, a resolved time lies in the future and inside the window.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use chrono::{DateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;
use sha2::{Digest, Sha256};

use telemarketer::leads::{self, CallingWindow};
use telemarketer::script::format::{intents, Script, VarType};
use telemarketer::script::{classify, machine, slots};
use telemarketer::twilio::{media, signature, twiml};

/// The names of the targets, as `fuzz/fuzz_targets/` and `fuzz/corpus/` name them.
pub const TARGETS: &[&str] = &["media", "webhook", "leads", "script", "time_slot"];

/// Runs the target `name` on `data` (for the corpus replay); `false` for an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "media" => media(data),
        "webhook" => webhook(data),
        "leads" => leads(data),
        "script" => script(data),
        "time_slot" => time_slot(data),
        _ => return false,
    }
    true
}

// ------------------------------------------------------------------------------------------------
// media: Twilio Media Streams messages (src/twilio/media.rs)

/// `parse_inbound` / `parse_outbound` on one text frame: never a panic, every error carries a
/// Twilio code, and an accepted message serialises to JSON that parses back to itself (the module
/// promises byte-exact Twilio JSON from the types, so a second round trip is byte-identical).
pub fn media(data: &[u8]) {
    // A WebSocket text frame is UTF-8 by construction; other bytes never reach the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match media::parse_inbound(text) {
        Ok(msg) => {
            let json = msg.to_json();
            let again = media::parse_inbound(&json)
                .unwrap_or_else(|e| panic!("inbound {json} does not re-parse: {e}"));
            assert_eq!(again, msg, "inbound round trip through {json}");
            assert_eq!(again.to_json(), json, "inbound JSON is not stable");
            let sid = msg.stream_sid().map(str::to_string);
            match &sid {
                None => assert!(matches!(msg, media::InboundMessage::Connected { .. })),
                Some(sid) => {
                    assert!(media::check_stream_sid(sid, &msg).is_ok());
                    let other = format!("{sid}x");
                    let err = media::check_stream_sid(&other, &msg).expect_err("wrong streamSid");
                    assert_eq!(err.twilio_code(), Some(31951));
                }
            }
            if let media::InboundMessage::Media { media: m, .. } = &msg {
                match m.decode_audio() {
                    Ok(audio) => {
                        // The bound decode_audio enforces on the base64 length, before
                        // decoding: 1708 characters, which carry 1281 bytes, one more than
                        // MAX_INBOUND_AUDIO (reported; harmless: one extra sample).
                        let bound = media::MAX_INBOUND_AUDIO.div_ceil(3) * 3;
                        assert!(audio.len() <= bound, "{} bytes decoded", audio.len());
                    }
                    Err(e) => assert_eq!(e.twilio_code(), Some(31951)),
                }
            }
        }
        Err(e) => assert_eq!(e.twilio_code(), Some(31951), "{e}"),
    }
    match media::parse_outbound(text) {
        Ok(msg) => {
            let json = msg.to_json();
            let again = media::parse_outbound(&json)
                .unwrap_or_else(|e| panic!("outbound {json} does not re-parse: {e}"));
            assert_eq!(again, msg, "outbound round trip through {json}");
            assert_eq!(again.to_json(), json, "outbound JSON is not stable");
            let sid = msg.stream_sid().to_string();
            // The constructors build the same messages the parser accepts.
            let rebuilt = match &msg {
                media::OutboundMessage::Media { media: m, .. } => match m.decode_audio() {
                    Ok(audio) => {
                        let built = media::OutboundMessage::media(&sid, &audio);
                        let media::OutboundMessage::Media { media: b, .. } = &built else {
                            unreachable!("media() builds a media message");
                        };
                        assert_eq!(b.decode_audio().as_deref(), Ok(audio.as_slice()));
                        None
                    }
                    Err(e) => {
                        assert_eq!(e.twilio_code(), Some(31951));
                        None
                    }
                },
                media::OutboundMessage::Mark { mark, .. } => {
                    Some(media::OutboundMessage::mark(&sid, &mark.name))
                }
                media::OutboundMessage::Clear { .. } => Some(media::OutboundMessage::clear(&sid)),
            };
            if let Some(rebuilt) = rebuilt {
                assert_eq!(rebuilt, msg);
                assert_eq!(rebuilt.to_json(), json);
            }
        }
        Err(e) => assert_eq!(e.twilio_code(), Some(31951), "{e}"),
    }
}

// ------------------------------------------------------------------------------------------------
// webhook: X-Twilio-Signature over a form, JSON webhooks, TwiML from form values
// (src/twilio/signature.rs, src/twilio/twiml.rs, src/http/twilio_webhooks.rs)

/// Input: `auth token \n URL \n x-www-form-urlencoded body` (missing parts are empty).
/// A computed signature validates (in any parameter order, with repeats, with the scheme's
/// default port added or removed); a changed, cut or empty one does not; `validate_json` accepts
/// exactly the body its URL's `bodySHA256` names; the form's values come out of TwiML escaped.
pub fn webhook(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let token = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let url = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();
    // As the webhook extractor decodes it: pairs in order, repeated names kept.
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();

    let sig = signature::compute(&token, &url, &params);
    assert_eq!(sig.len(), 28, "base64 of a 20-byte HMAC-SHA1: {sig}");
    assert!(signature::validate(&token, &url, &params, &sig));

    // Order and repeats do not matter: names, then each name's distinct values, sorted.
    let mut shuffled = params.clone();
    shuffled.reverse();
    shuffled.extend(params.first().cloned());
    assert_eq!(signature::compute(&token, &url, &shuffled), sig);
    assert!(signature::validate(&token, &url, &shuffled, &sig));

    // A changed character, a cut signature, an empty one: refused.
    let pos = data.len() % sig.len();
    let mut bad: Vec<u8> = sig.clone().into_bytes();
    bad[pos] = if bad[pos] == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).expect("base64 is ASCII");
    assert!(!signature::validate(&token, &url, &params, &bad), "{bad}");
    assert!(!signature::validate(&token, &url, &params, &sig[..27]));
    assert!(!signature::validate(&token, &url, &params, ""));
    // The signature covers the form: one more parameter changes it.
    let mut more = params.clone();
    more.push(("Fuzz".into(), format!("{}", data.len())));
    if !params.contains(&more[more.len() - 1]) {
        assert!(!signature::validate(&token, &url, &more, &sig));
    }

    // A proxy may add or strip the default port: both forms validate either way.
    if let Some(with_port) = with_default_port(&url) {
        let sig_port = signature::compute(&token, &with_port, &params);
        assert!(
            signature::validate(&token, &url, &params, &sig_port),
            "{url} vs {with_port}"
        );
        assert!(
            signature::validate(&token, &with_port, &params, &sig),
            "{with_port} vs {url}"
        );
    }

    // JSON webhooks: never a panic on anything; the signed URL naming the body's SHA-256 passes,
    // another body does not.
    let _ = signature::validate_json(&token, &url, body, &sig);
    let _ = signature::validate_json(&token, &url, body, &bad);
    if !url.contains(['?', '#']) {
        let digest: String = Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let json_url = format!("{url}?bodySHA256={digest}");
        let json_sig = signature::compute(&token, &json_url, &[]);
        assert!(signature::validate_json(&token, &json_url, body, &json_sig));
        let mut other = body.to_vec();
        other.push(b'x');
        assert!(!signature::validate_json(
            &token, &json_url, &other, &json_sig
        ));
        let upper = format!("{url}?bodySHA256={}", digest.to_uppercase());
        let upper_sig = signature::compute(&token, &upper, &[]);
        assert!(signature::validate_json(&token, &upper, body, &upper_sig));
    }

    // The voice webhook copies form values (From, To, AnsweredBy) and the lead's fields into
    // <Parameter>s: every value must come out escaped, the document's shape intact.
    for (name, value) in &params {
        assert_escaped(&twiml::escape_attr(name));
        assert_escaped(&twiml::escape_attr(value));
    }
    let xml = twiml::connect_stream(&format!("wss://{token}/twilio/media"), &params, true);
    assert_eq!(xml.matches("<Parameter ").count(), params.len(), "{xml}");
    // <?xml, Response, Connect, Stream (with </Stream> around parameters), Hangup, the closers.
    let tags = if params.is_empty() { 7 } else { 8 } + params.len();
    assert_eq!(xml.matches('<').count(), tags, "{xml}");
}

/// `https://host/...` -> `https://host:443/...` (likewise http/80) when the authority is a plain
/// host: the case the signature module promises to forgive.
fn with_default_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let port = match scheme {
        "https" | "wss" => "443",
        "http" | "ws" => "80",
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, tail) = rest.split_at(end);
    if host.is_empty() || host.contains([':', '@', '[', ']']) {
        return None;
    }
    Some(format!("{scheme}://{host}:{port}{tail}"))
}

/// An attribute value as `escape_attr` promises: no raw markup, quote, tab, newline, carriage
/// return or character XML cannot carry; every `&` starts a character reference.
fn assert_escaped(s: &str) {
    for c in s.chars() {
        assert!(
            !matches!(c, '<' | '>' | '"' | '\'' | '\u{FFFE}' | '\u{FFFF}') && (c >= ' '),
            "raw {c:?} in {s:?}"
        );
    }
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        rest = &rest[i + 1..];
        let entity = [
            "amp;", "lt;", "gt;", "quot;", "apos;", "#9;", "#10;", "#13;",
        ]
        .iter()
        .find(|e| rest.starts_with(**e));
        assert!(entity.is_some(), "bare & in {s:?}");
    }
}

// ------------------------------------------------------------------------------------------------
// leads: CSV / JSON lead lists and phone numbers (src/leads)

/// `parse_csv` and `parse_json` on the same bytes: never a panic; a report accounts for every
/// data row (`leads + errors = rows`), its leads have unique E.164 numbers and real zones. Each
/// line is also tried as a phone number: a normalised one is E.164 and normalises to itself.
pub fn leads(data: &[u8]) {
    if let Ok(report) = leads::parse_csv(data) {
        check_report(&report);
        let rows = csv_data_rows(data);
        assert_eq!(
            report.leads.len() + report.errors.len(),
            rows,
            "CSV rows: {} leads, {:?}",
            report.leads.len(),
            report.errors
        );
        // The header is line 1, so no data row is (also with lone "\r" line ends).
        assert!(
            report.errors.iter().all(|e| e.row >= 2),
            "{:?}",
            report.errors
        );
    }
    if let Ok(report) = leads::parse_json(data) {
        check_report(&report);
        let Ok(serde_json::Value::Array(items)) = serde_json::from_slice(data) else {
            panic!("parse_json accepted what is no JSON array");
        };
        assert_eq!(report.leads.len() + report.errors.len(), items.len());
        let rows: Vec<usize> = report.errors.iter().map(|e| e.row).collect();
        assert!(rows.windows(2).all(|w| w[0] < w[1]), "{rows:?}");
        assert!(rows.iter().all(|&r| (1..=items.len()).contains(&r)));
    }
    for line in String::from_utf8_lossy(data).lines().take(16) {
        if let Ok(phone) = leads::normalize_phone(line) {
            assert!(leads::is_e164(&phone), "{line:?} -> {phone:?}");
            assert_eq!(
                leads::normalize_phone(&phone).as_deref(),
                Ok(phone.as_str()),
                "{line:?}"
            );
            let _ = leads::timezone_for_number(&phone);
        }
    }
}

fn check_report(report: &leads::ImportReport) {
    let mut phones = BTreeSet::new();
    for lead in &report.leads {
        assert!(leads::is_e164(&lead.phone), "{lead:?}");
        assert!(phones.insert(lead.phone.as_str()), "duplicate {lead:?}");
        assert!(lead.timezone.parse::<Tz>().is_ok(), "{lead:?}");
    }
    assert!(report.errors.iter().all(|e| !e.reason.is_empty()));
}

/// The data rows `parse_csv` promises to account for, counted independently: records after the
/// header (same reader settings), less those whose cells are all empty once trimmed.
fn csv_data_rows(data: &[u8]) -> usize {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data);
    let mut rows = 0;
    for (i, rec) in reader.byte_records().enumerate() {
        let Ok(rec) = rec else { break };
        if i == 0 {
            continue;
        }
        let blank = match csv::StringRecord::from_byte_record(rec) {
            Ok(mut r) => {
                r.trim();
                r.iter().all(str::is_empty)
            }
            Err(_) => false,
        };
        if !blank {
            rows += 1;
        }
    }
    rows
}

// ------------------------------------------------------------------------------------------------
// script: the script TOML and what runs on a loaded script (src/script)

/// `Script::from_toml` on the text: never a panic, a refusal names its problems. A script it
/// loads holds what validation promises (the start and every transition land on a node, every
/// node is reachable, the disclosure admits automation), and rendering, the classifier's labels
/// and grammar, and a walk through the state machine run without a panic, never leaving the
/// script's nodes.
pub fn script(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let script = match Script::from_toml("fuzz.toml", &text) {
        Ok(s) => s,
        Err(e) => {
            assert!(!e.problems.is_empty());
            let _ = e.to_string();
            return;
        }
    };
    check_script(&script);
    walk(&script, data);
}

fn check_script(s: &Script) {
    assert!(s.nodes.contains_key(&s.start), "start {}", s.start);
    assert!(telemarketer::script::format::admits_automation(
        &s.disclosure
    ));
    if let Some(robot) = s.faq("are_you_a_robot") {
        assert!(telemarketer::script::format::admits_automation(
            &robot.answer
        ));
    }
    let mut reachable = BTreeSet::new();
    let mut stack = vec![s.start.as_str()];
    while let Some(id) = stack.pop() {
        if reachable.insert(id) {
            let n = &s.nodes[id];
            stack.extend(n.intents.iter().map(|i| i.next.as_str()));
            stack.extend(n.fallback.as_deref());
        }
    }
    for (id, n) in &s.nodes {
        assert_eq!(id, &n.id);
        assert!(reachable.contains(id.as_str()), "unreachable {id}");
        assert!(n.sentences >= 1);
        for i in &n.intents {
            assert!(s.nodes.contains_key(&i.next), "{id}: next {}", i.next);
            assert!(!intents::RESERVED.contains(&i.name.as_str()));
            for v in &i.needs {
                assert!(n.capture.contains_key(v), "{id}: needs {v}");
            }
        }
        if let Some(f) = &n.fallback {
            assert!(s.nodes.contains_key(f), "{id}: fallback {f}");
        }
        for (name, ty) in &n.capture {
            assert_eq!(s.vars.get(name), Some(ty));
        }
        let names = s.intent_names(id);
        for label in classify::llm_labels(s, id) {
            assert!(names.contains(&label), "{id}: label {label} not an intent");
        }
        let _ = classify::grammar(s, id);
        let _ = classify::prompt(s, id, "fuzz");
    }
    let vars = sample_vars(s);
    for line in s.fixed_lines() {
        assert!(!line.is_empty());
    }
    for n in s.nodes.values() {
        for line in [&n.say, &n.generate, &n.retry].into_iter().flatten() {
            let _ = s.render(line, &vars, chrono_tz::America::New_York);
            let _ = s.render(line, &BTreeMap::new(), chrono_tz::UTC);
        }
    }
}

/// A value of each captured variable, in its stored form.
fn sample_vars(s: &Script) -> BTreeMap<String, String> {
    s.vars
        .iter()
        .map(|(name, ty)| {
            let v = match ty {
                VarType::Bool => "true",
                VarType::Number => "150",
                VarType::String => "the blue house",
                VarType::Time => "2030-05-07T15:00:00-04:00",
            };
            (name.clone(), v.to_string())
        })
        .chain([("name".to_string(), "Alex".to_string())])
        .collect()
}

/// Drives the machine with events chosen by the input's bytes (read backwards, so the script's
/// text and the walk vary apart): the call's node stays one of the script's, and once the call
/// has an outcome nothing more happens.
fn walk(s: &Script, data: &[u8]) {
    let vars = sample_vars(s);
    let mut state = machine::CallState {
        tz: chrono_tz::America::Chicago,
        ..Default::default()
    };
    let (next, actions) = machine::step(s, &state, &machine::Event::Started);
    assert!(!actions.is_empty(), "the opening is said");
    state = next;
    for (k, &b) in data.iter().rev().take(24).enumerate() {
        let names = s.intent_names(&state.node);
        let event = match b % 8 {
            0 => machine::Event::Silence,
            1 => machine::Event::Dtmf(char::from(b'0' + b / 8 % 10)),
            2 => machine::Event::Elapsed(u32::from(b) * 3),
            _ => {
                let intent = names[usize::from(b) % names.len()].clone();
                let node = &s.nodes[&state.node];
                let (captured, rejected) = if b % 2 == 0 {
                    let captured = node
                        .capture
                        .keys()
                        .filter_map(|n| Some((n.clone(), vars.get(n)?.clone())))
                        .collect();
                    (captured, BTreeMap::new())
                } else {
                    let rejected = node
                        .capture
                        .keys()
                        .map(|n| (n.clone(), machine::Rejection::Unreadable))
                        .collect();
                    (BTreeMap::new(), rejected)
                };
                machine::Event::Utterance {
                    intent,
                    text: format!("turn {k}"),
                    captured,
                    rejected,
                }
            }
        };
        let done = state.outcome.is_some();
        let (next, actions) = machine::step(s, &state, &event);
        if done {
            assert!(actions.is_empty(), "{event:?} after the end: {actions:?}");
            assert_eq!(next, state);
        }
        assert!(
            s.nodes.contains_key(&next.node),
            "{event:?} left the script: {}",
            next.node
        );
        state = next;
    }
    let _ = machine::reask(s, &state);
}

// ------------------------------------------------------------------------------------------------
// time_slot: typed answers (src/script/slots.rs) and calling windows (src/leads/window.rs)

/// Input: 2 bytes zone (index into every IANA zone), 4 bytes `now` (seconds into 2000-2040),
/// 2 + 2 bytes calling window (minutes; kept inside the legal 08:00-21:00), then the caller's
/// words. `parse_time`, `parse_number` and `parse_yes_no` never panic; a time is after `now`,
/// inside the window, in the lead's zone and survives its stored form; an out-of-window answer's
/// suggestion is itself a later time inside the window. The classifier's rules read the same
/// words at a node of the shipped script.
pub fn time_slot(data: &[u8]) {
    let mut head = [0u8; 10];
    let n = data.len().min(head.len());
    head[..n].copy_from_slice(&data[..n]);
    let text = String::from_utf8_lossy(&data[n..]);

    let zones = chrono_tz::TZ_VARIANTS;
    let tz = zones[usize::from(u16::from_le_bytes([head[0], head[1]])) % zones.len()];
    let span = 40 * 365 * 86_400;
    let secs =
        946_684_800 + i64::from(u32::from_le_bytes([head[2], head[3], head[4], head[5]]) % span);
    let now: DateTime<Tz> = tz
        .timestamp_opt(secs, 0)
        .single()
        .expect("a UTC instant is one local time");
    let window = window_from(
        u16::from_le_bytes([head[6], head[7]]),
        u16::from_le_bytes([head[8], head[9]]),
    );

    match slots::parse_time(&text, now, &window) {
        Ok(t) => {
            assert!(t.at > now, "{text:?} at {now}: {} is not ahead", t.at);
            let time = t.at.time();
            assert!(
                window.start <= time && time < window.end,
                "{text:?} at {now}: {} outside {window:?}",
                t.at
            );
            assert_eq!(t.at.timezone(), tz);
            let stored = slots::store_time(&t);
            let back = slots::stored_time(&stored, tz).expect("stored form reads back");
            assert_eq!(back, t, "{stored}");
            assert!(!slots::speak_time(&t).is_empty());
            assert!(machine::coerce(VarType::Time, &stored).is_some());
        }
        Err(slots::TimeError::OutsideWindow { suggestion }) => {
            assert!(
                suggestion > now,
                "{text:?} at {now}: suggested {suggestion}"
            );
            let time = suggestion.time();
            assert!(
                window.start <= time && time < window.end,
                "{text:?} at {now}: suggested {suggestion} outside {window:?}"
            );
        }
        Err(_) => {}
    }
    if let Some(x) = slots::parse_number(&text) {
        assert!(!x.is_nan(), "{text:?}");
        let _ = machine::number(x);
    }
    if slots::parse_yes_no(&text).is_some() {
        assert!(!text.contains('?'), "a question is no answer: {text:?}");
    }
    let _ = classify::normalize(&text);
    let _ = classify::is_opt_out(&text);

    // The shipped script's classifier reads the same words at one of its nodes (one: the rules
    // are slow enough that all of them would cut the executions tenfold).
    let s = example_script();
    if let Some(node) = s.nodes.keys().nth(data.len() % s.nodes.len()) {
        if let Some(c) = classify::by_rules(s, node, &text, now, &window) {
            assert!(
                s.intent_names(node).contains(&c.intent),
                "{node}: {text:?} classified as {}",
                c.intent
            );
        }
    }

    // The window's own check: open now, or the next opening is ahead and inside the window.
    if let leads::WindowCheck::Closed { opens_at } = window.check(tz, now.to_utc()) {
        assert!(opens_at > now.to_utc(), "{window:?} in {tz} at {now}");
        let local = opens_at.with_timezone(&tz).time();
        assert!(
            window.start <= local && local < window.end,
            "opens {opens_at}"
        );
    }
}

/// A calling window inside the legal hours, from two numbers: start 08:00 plus `a` minutes, end
/// at least a minute later, at 21:00 the latest.
fn window_from(a: u16, b: u16) -> CallingWindow {
    let legal = 13 * 60;
    let start = u32::from(a) % legal;
    let end = start + 1 + u32::from(b) % (legal - start);
    let at =
        |m: u32| NaiveTime::from_hms_opt(8 + m / 60, m % 60, 0).expect("between 08:00 and 21:00");
    CallingWindow::new(at(start), at(end)).expect("inside the legal hours")
}

fn example_script() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        Script::from_toml("solar.toml", telemarketer::script::EXAMPLE_SCRIPT)
            .expect("the shipped script loads")
    })
}
