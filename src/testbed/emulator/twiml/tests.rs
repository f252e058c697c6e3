use super::*;
use crate::twilio::twiml::connect_stream;

fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn reads_our_own_connect_stream() {
    let params = p(&[("lead_id", "42"), ("name", "Tom & \"Jerry\" <3\nO'Neil")]);
    let doc = connect_stream("ws://127.0.0.1:9/twilio/media", &params, true);
    assert_eq!(
        parse(&doc).unwrap(),
        vec![
            Verb::Connect(Some(Stream {
                url: "ws://127.0.0.1:9/twilio/media".into(),
                parameters: params,
            })),
            Verb::Hangup,
        ]
    );
    let doc = connect_stream("wss://h/m", &[], false);
    assert_eq!(
        parse(&doc).unwrap(),
        vec![Verb::Connect(Some(Stream {
            url: "wss://h/m".into(),
            parameters: vec![]
        }))]
    );
}

#[test]
fn reads_other_verbs_with_twilio_python_spelling() {
    let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
            <!-- a comment <Hangup/> -->
            <Response>
              <Say voice="alice">Hello &amp; goodbye</Say>
              <Pause length="2" />
              <Play>https://x/a.mp3</Play>
              <Gather><Say>nested</Say></Gather>
              <Redirect method="get">https://h/next?a=1&amp;b=2</Redirect>
              <Reject />
            </Response>"#;
    assert_eq!(
        parse(doc).unwrap(),
        vec![
            Verb::Say("Hello & goodbye".into()),
            Verb::Pause(2),
            Verb::Play("https://x/a.mp3".into()),
            Verb::Other("Gather".into()),
            Verb::Redirect {
                url: "https://h/next?a=1&b=2".into(),
                method: "GET".into()
            },
            Verb::Reject,
        ]
    );
    assert_eq!(parse("<Response/>").unwrap(), vec![]);
    assert_eq!(parse("<Response></Response>").unwrap(), vec![]);
}

#[test]
fn rejects_garbage_without_panicking() {
    assert_eq!(parse(""), Err(TwimlError::NoResponse));
    assert_eq!(parse("hello"), Err(TwimlError::NoResponse));
    assert!(parse("<Response><Say").is_err());
    assert!(parse("<Response><Stream url=\"x></Response>").is_err());
    assert!(parse("<Response><Say a=b>x</Say></Response>").is_err());
    // Unclosed elements and stray text still yield what was readable.
    assert_eq!(
        parse("junk<Response><Hangup/>&bogus;").unwrap(),
        vec![Verb::Hangup]
    );
    assert_eq!(unescape("&#65;&#x42;&#xZZ;&"), "AB&#xZZ;&");
    for s in [
        "<",
        "<<<>>>",
        "<Response><Connect><Stream",
        "<Response>\u{1F680}<é/>",
    ] {
        let _ = parse(s);
    }
}

#[test]
fn dial_reads_number_whisper_action_and_timeout() {
    let doc = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial action="https://h/t?handoff=a&amp;b=1" timeout="7"><Number url="https://h/w">+14155550199</Number></Dial><Hangup/></Response>"#;
    assert_eq!(
        parse(doc).unwrap(),
        vec![
            Verb::Dial(Dial {
                number: "+14155550199".into(),
                whisper_url: Some("https://h/w".into()),
                action: Some("https://h/t?handoff=a&b=1".into()),
                method: "POST".into(),
                timeout: 7,
            }),
            Verb::Hangup,
        ]
    );
    let bare = parse("<Response><Dial>+14155550100</Dial></Response>").unwrap();
    assert_eq!(
        bare,
        vec![Verb::Dial(Dial {
            number: "+14155550100".into(),
            whisper_url: None,
            action: None,
            method: "POST".into(),
            timeout: 30,
        })]
    );
}
