//! TwiML we return to Twilio's voice webhook.
//!
//! `<Connect><Stream>` opens the bidirectional media stream; the stream URL takes no query
//! string, so call data travels as `<Parameter>`s (they arrive in `start.customParameters`).
//! TwiML after `<Connect>` runs only when we close the WebSocket: a `<Hangup/>` there ends the
//! call cleanly when the conversation engine is done.
//!
//! Built by string formatting rather than an XML library: the document is tiny and fixed, and
//! every interpolated value goes through [`escape_attr`].

/// Escapes text for a double-quoted XML attribute value.
///
/// Besides `& < > " '`, tab, newline and carriage return become character references, because a
/// parser normalizes literal ones in attributes to spaces and the value would not survive.
/// Characters XML 1.0 cannot carry at all (other C0 controls, U+FFFE, U+FFFF) become U+FFFD, so
/// a stray control byte in call data cannot make Twilio reject the whole document.
pub fn escape_attr(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\u{0}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `<Response><Hangup/></Response>`: end the call (a fax line, a call we will not take).
pub fn hangup() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>"#.to_string()
}

/// `<Response><Connect><Stream url=..>` with `<Parameter>`s in the given order, optionally
/// followed by `<Hangup/>` (which runs once we close the media WebSocket).
pub fn connect_stream(
    stream_url: &str,
    parameters: &[(String, String)],
    hangup_after: bool,
) -> String {
    let mut xml = String::from(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect>"#);
    xml.push_str(r#"<Stream url=""#);
    xml.push_str(&escape_attr(stream_url));
    if parameters.is_empty() {
        xml.push_str(r#""/>"#);
    } else {
        xml.push_str(r#"">"#);
        for (name, value) in parameters {
            xml.push_str(r#"<Parameter name=""#);
            xml.push_str(&escape_attr(name));
            xml.push_str(r#"" value=""#);
            xml.push_str(&escape_attr(value));
            xml.push_str(r#""/>"#);
        }
        xml.push_str("</Stream>");
    }
    xml.push_str("</Connect>");
    if hangup_after {
        xml.push_str("<Hangup/>");
    }
    xml.push_str("</Response>");
    xml
}

#[cfg(test)]
mod tests {
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
}
