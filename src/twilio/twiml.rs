//! TwiML we return to Twilio's voice webhook.
//!
//! `<Connect><Stream>` opens the bidirectional media stream; the stream URL takes no query
//! string, so call data travels as `<Parameter>`s (they arrive in `start.customParameters`).
//! TwiML after `<Connect>` runs only when we close the WebSocket: a `<Hangup/>` there ends the
//! call cleanly when the conversation engine is done.

/// Escapes text for an XML attribute value.
pub fn escape_attr(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `<Response><Connect><Stream url=..>` with parameters, optionally followed by `<Hangup/>`.
pub fn connect_stream(
    stream_url: &str,
    parameters: &[(String, String)],
    hangup_after: bool,
) -> String {
    let mut xml = String::from(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect>"#);
    xml.push_str(&format!(r#"<Stream url="{}">"#, escape_attr(stream_url)));
    for (name, value) in parameters {
        xml.push_str(&format!(
            r#"<Parameter name="{}" value="{}"/>"#,
            escape_attr(name),
            escape_attr(value)
        ));
    }
    xml.push_str("</Stream></Connect>");
    if hangup_after {
        xml.push_str("<Hangup/>");
    }
    xml.push_str("</Response>");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_stream_matches_twilio_shape() {
        let xml = connect_stream(
            "wss://host/twilio/media",
            &[("lead_id".into(), "42".into())],
            false,
        );
        assert_eq!(
            xml,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://host/twilio/media"><Parameter name="lead_id" value="42"/></Stream></Connect></Response>"#
        );
        assert!(connect_stream("wss://h/m", &[], true).ends_with("</Connect><Hangup/></Response>"));
    }

    #[test]
    fn values_are_escaped() {
        let xml = connect_stream(
            "wss://h/m",
            &[("name".into(), r#"Tom & "Jerry" <3 O'Neil"#.into())],
            false,
        );
        assert!(
            xml.contains(r#"value="Tom &amp; &quot;Jerry&quot; &lt;3 O&apos;Neil""#),
            "{xml}"
        );
    }
}
