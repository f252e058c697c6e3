use super::*;

type Params = Vec<(String, String)>;

fn p(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn connect_stream_matches_twilio_shape() {
    assert_eq!(
        connect_stream("wss://host/twilio/media", &p(&[("lead_id", "42")]), false),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://host/twilio/media"><Parameter name="lead_id" value="42"/></Stream></Connect></Response>"#
    );
    assert_eq!(
        connect_stream("wss://h/m", &p(&[("a", "1"), ("b", "2")]), true),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://h/m"><Parameter name="a" value="1"/><Parameter name="b" value="2"/></Stream></Connect><Hangup/></Response>"#
    );
    assert_eq!(
        connect_stream("wss://h/m", &[], true),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://h/m"/></Connect><Hangup/></Response>"#
    );
}

#[test]
fn values_are_escaped() {
    let xml = connect_stream(
        "wss://h/m?a=1&b=2",
        &p(&[("n\"<&>'", r#"Tom & "Jerry" <3 O'Neil >"#)]),
        false,
    );
    assert!(xml.contains(r#"url="wss://h/m?a=1&amp;b=2""#), "{xml}");
    assert!(
        xml.contains(r#"name="n&quot;&lt;&amp;&gt;&apos;""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"value="Tom &amp; &quot;Jerry&quot; &lt;3 O&apos;Neil &gt;""#),
        "{xml}"
    );
    assert_eq!(escape_attr("a\nb\tc\rd"), "a&#10;b&#9;c&#13;d");
    assert_eq!(
        escape_attr("x\u{0}y\u{1B}z\u{FFFF}"),
        "x\u{FFFD}y\u{FFFD}z\u{FFFD}"
    );
    assert_eq!(escape_attr("Jürgen 🚀"), "Jürgen 🚀");
}

/// twilio-python 9.13.0's `VoiceResponse().connect().stream(url=..)` + `.parameter(..)` +
/// `.hangup()`, as printed by tests/python/twilio_crosscheck.py (which also checks, with
/// ElementTree, that our output parses to the same tree). The serializations differ only in
/// spelling: the library writes `<X />`, `&#09;`, and a raw `'` in attributes.
#[test]
fn matches_twilio_python_voice_response() {
    let cases: [(&str, Params, bool, &str); 3] = [
        (
            "wss://host/twilio/media",
            p(&[("lead_id", "42")]),
            false,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://host/twilio/media"><Parameter name="lead_id" value="42" /></Stream></Connect></Response>"#,
        ),
        (
            "wss://h/m",
            vec![],
            true,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://h/m" /></Connect><Hangup /></Response>"#,
        ),
        (
            "wss://h/m?a=1&b=2",
            p(&[
                ("name", r#"Tom & "Jerry" <3 O'Neil >"#),
                ("line", "a\nb\tc"),
                ("uni", "Jürgen 🚀"),
            ]),
            true,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://h/m?a=1&amp;b=2"><Parameter name="name" value="Tom &amp; &quot;Jerry&quot; &lt;3 O'Neil &gt;" /><Parameter name="line" value="a&#10;b&#09;c" /><Parameter name="uni" value="Jürgen 🚀" /></Stream></Connect><Hangup /></Response>"#,
        ),
    ];
    for (url, params, hangup, python) in cases {
        let normalized = python
            .replace(" />", "/>")
            .replace("&#09;", "&#9;")
            .replace("O'Neil", "O&apos;Neil");
        assert_eq!(connect_stream(url, &params, hangup), normalized);
    }
}

#[test]
fn busy_rejects_with_the_busy_reason() {
    assert_eq!(
        reject_busy(),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Reject reason="busy"/></Response>"#
    );
}

/// Byte for byte what twilio-python 9.13.0's `VoiceResponse().dial(action=.., timeout=..)
/// .number(.., url=..)` prints (tests/python/twilio_crosscheck.py, `dial`).
#[test]
fn dial_warm_and_cold() {
    assert_eq!(
        dial(
            "+14155550199",
            20,
            "https://h/twilio/transfer?handoff=ab&x=1",
            Some("https://h/twilio/whisper?handoff=ab")
        ),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial action="https://h/twilio/transfer?handoff=ab&amp;x=1" timeout="20"><Number url="https://h/twilio/whisper?handoff=ab">+14155550199</Number></Dial></Response>"#
    );
    assert_eq!(
        dial("+14155550199", 5, "https://h/t", None),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial action="https://h/t" timeout="5"><Number>+14155550199</Number></Dial></Response>"#
    );
}

#[test]
fn play_with_and_without_hangup() {
    assert_eq!(
        play("https://h/twilio/audio/ab/whisper.wav", false),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Play>https://h/twilio/audio/ab/whisper.wav</Play></Response>"#
    );
    assert_eq!(
        play("https://h/a.wav?x=1&y=2", true),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Play>https://h/a.wav?x=1&amp;y=2</Play><Hangup/></Response>"#
    );
}
