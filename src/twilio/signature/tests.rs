use super::*;

type Params = Vec<(String, String)>;

fn p(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn official_params() -> Vec<(String, String)> {
    p(&[
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ])
}

const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
const URL_443: &str = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
const SIG: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
const SIG_443: &str = "kvajT1Ptam85bY51eRf/AJRuM3w=";
const BODY: &[u8] = br#"{"property": "value", "boolean": true}"#;
const BODY_SHA256: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
const JSON_SIG: &str = "a9nBmqA0ju/hNViExpshrM61xv4=";

fn json_url() -> String {
    format!("{URL}&bodySHA256={BODY_SHA256}")
}

/// The four vectors from the official library's tests (shared/docs/twilio.md).
#[test]
fn official_test_vectors() {
    assert_eq!(compute("12345", URL, &official_params()), SIG);
    assert_eq!(compute("12345", URL_443, &official_params()), SIG_443);
    let repeated = p(&[
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
    ]);
    assert_eq!(
        compute("12345", URL, &repeated),
        "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    );
    assert_eq!(hex(&Sha256::digest(BODY)), BODY_SHA256);
    assert_eq!(compute("12345", &json_url(), &[]), JSON_SIG);
    assert!(validate_json("12345", &json_url(), BODY, JSON_SIG));
}

/// Pinned from twilio-python 9.13.0's `RequestValidator.compute_signature`, as printed by
/// tests/python/twilio_crosscheck.py (params passed as a MultiDict, i.e. with repeated keys).
#[test]
fn matches_twilio_python_request_validator() {
    let cases: [(&str, &str, Params, &str); 3] = [
        (
            "12345",
            "https://example.test/twilio/status",
            p(&[
                ("CallSid", "CA0123456789abcdef0123456789abcdef"),
                ("StatusCallbackEvent", "ringing"),
                ("StatusCallbackEvent", "answered"),
                ("StatusCallbackEvent", "initiated"),
                ("Digits", "1"),
                ("Digits", "1"),
                ("Digits", "0"),
                ("Sid", "CA123"),
                ("SidAccount", "AC123"),
            ]),
            "FrBaim9hjD80IKv8IDDyhUyZWyQ=",
        ),
        (
            "f00dfacecafebabe0123456789abcdef",
            "https://example.test/twilio/voice?lead=J%C3%BCrgen",
            p(&[
                ("CallerName", "Jürgen Müller"),
                ("SpeechResult", "Grüße aus 東京 🚀"),
                ("Nämé", "x"),
                ("Emoji", "\u{1F680}"),
                ("Emoji", "\u{FFFD}"),
                ("a", "lower"),
                ("B", "upper"),
                ("Empty", ""),
            ]),
            "oFmoxt9RhquTqji7NvgRMLJo0To=",
        ),
        (
            "secret",
            "http://10.0.0.5:8080/twilio/voice",
            vec![],
            "U0Rfxqi6Qh3jMNzdNyYn8IgTguU=",
        ),
    ];
    for (token, url, params, want) in cases {
        assert_eq!(compute(token, url, &params), want, "{url}");
        assert!(validate(token, url, &params, want), "{url}");
        // Parameter order on the wire must not matter.
        let mut reversed = params.clone();
        reversed.reverse();
        assert!(validate(token, url, &reversed, want), "{url}");
    }
}

#[test]
fn validation_rejects_wrong_token_tampering_and_missing_signatures() {
    let params = official_params();
    assert!(validate("12345", URL, &params, SIG));
    assert!(!validate("54321", URL, &params, SIG));
    assert!(!validate("", URL, &params, SIG));

    let mut tampered = params.clone();
    tampered[2].1 = "9999".into();
    assert!(!validate("12345", URL, &tampered, SIG));
    let mut extra = params.clone();
    extra.push(("Extra".into(), "1".into()));
    assert!(!validate("12345", URL, &extra, SIG));
    assert!(!validate("12345", URL, &params[1..], SIG));
    assert!(!validate(
        "12345",
        "https://mycompany.com/myapp.php?foo=1&bar=3",
        &params,
        SIG
    ));
    assert!(!validate(
        "12345",
        "http://mycompany.com/myapp.php?foo=1&bar=2",
        &params,
        SIG
    ));

    assert!(!validate("12345", URL, &params, ""));
    assert!(!validate(
        "12345",
        URL,
        &params,
        "RSOYDt4T1cUTdK1PDd93/VVr8B8"
    ));
    assert!(!validate(
        "12345",
        URL,
        &params,
        "rsoydt4t1cutdk1pdd93/vvr8b8="
    ));
    assert!(!validate("12345", URL, &params, &format!("{SIG} ")));
}

#[test]
fn default_port_may_be_added_or_stripped() {
    let params = official_params();
    // Signed without the port, received with it, and the other way round.
    assert!(validate("12345", URL_443, &params, SIG));
    assert!(validate("12345", URL, &params, SIG_443));
    assert!(validate("12345", URL_443, &params, SIG_443));
    // A non-default port is part of the signed URL.
    assert!(!validate(
        "12345",
        "https://mycompany.com:8443/myapp.php?foo=1&bar=2",
        &params,
        SIG
    ));
    // The same for JSON webhooks.
    let json_443 = json_url().replace("mycompany.com", "mycompany.com:443");
    assert!(validate_json("12345", &json_443, BODY, JSON_SIG));
}

#[test]
fn json_webhooks_check_the_body_hash() {
    assert!(!validate_json("12345", &json_url(), b"{}", JSON_SIG));
    assert!(!validate_json("12345", &json_url(), BODY, ""));
    assert!(!validate_json("54321", &json_url(), BODY, JSON_SIG));
    // Without bodySHA256 the body is unauthenticated: refuse.
    assert!(!validate_json(
        "12345",
        URL,
        BODY,
        &compute("12345", URL, &[])
    ));
    assert!(!validate_json("12345", "https://h/x", BODY, "x"));
    // A hash that merely starts like the real one.
    let short = format!("{URL}&bodySHA256={}", &BODY_SHA256[..10]);
    assert!(!validate_json(
        "12345",
        &short,
        BODY,
        &compute("12345", &short, &[])
    ));
    // Uppercase hex is tolerated (the URL, hence the case, is signed anyway).
    let upper = format!("{URL}&bodySHA256={}", BODY_SHA256.to_uppercase());
    assert!(validate_json(
        "12345",
        &upper,
        BODY,
        &compute("12345", &upper, &[])
    ));
}

#[test]
fn url_variants_cover_default_ports_only() {
    assert_eq!(
        url_variants("https://a.com/x?y=1"),
        ["https://a.com/x?y=1", "https://a.com:443/x?y=1"]
    );
    assert_eq!(
        url_variants("http://a.com:80/x"),
        ["http://a.com:80/x", "http://a.com/x"]
    );
    assert_eq!(
        url_variants("https://a.com"),
        ["https://a.com", "https://a.com:443"]
    );
    assert_eq!(
        url_variants("https://u:p@a.com?q"),
        ["https://u:p@a.com?q", "https://u:p@a.com:443?q"]
    );
    assert_eq!(
        url_variants("https://[::1]/x"),
        ["https://[::1]/x", "https://[::1]:443/x"]
    );
    assert_eq!(
        url_variants("https://[::1]:443/x"),
        ["https://[::1]:443/x", "https://[::1]/x"]
    );
    assert_eq!(url_variants("http://a.com:8080/x"), ["http://a.com:8080/x"]);
    assert_eq!(url_variants("ftp://a.com/x"), ["ftp://a.com/x"]);
    assert_eq!(url_variants("not a url"), ["not a url"]);
}

#[test]
fn query_param_finds_the_first_exact_name() {
    assert_eq!(query_param("https://h/x?a=1&b=2&a=3", "a"), Some("1"));
    assert_eq!(query_param("https://h/x?ab=1&b=2#f", "b"), Some("2"));
    assert_eq!(query_param("https://h/x?b=2#b=3", "b"), Some("2"));
    assert_eq!(query_param("https://h/x?xb=2", "b"), None);
    assert_eq!(query_param("https://h/x", "b"), None);
}

#[test]
fn a_stream_upgrade_is_signed_over_its_wss_url_with_or_without_the_port() {
    let sig = compute("12345", "wss://example.test/twilio/media", &[]);
    assert!(validate(
        "12345",
        "wss://example.test/twilio/media",
        &[],
        &sig
    ));
    assert!(validate(
        "12345",
        "wss://example.test:443/twilio/media",
        &[],
        &sig
    ));
    assert!(!validate(
        "12345",
        "https://example.test/twilio/media",
        &[],
        &sig
    ));
    assert!(!validate(
        "other",
        "wss://example.test/twilio/media",
        &[],
        &sig
    ));
}
