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

/// `<Response><Reject reason="busy"/></Response>`: the caller hears a busy tone and the call is
/// not answered (we are at our call limit).
pub fn reject_busy() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?><Response><Reject reason="busy"/></Response>"#
        .to_string()
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

/// A live transfer: `<Dial action=.. timeout=..><Number url=..>number</Number></Dial>`.
///
/// Twilio rings `number` for `timeout_s`; when the person answers it fetches `whisper_url`
/// (if any) and plays that TwiML to them alone before bridging (a warm transfer). When the
/// dial ends it requests `action` with `DialCallStatus`, and the TwiML returned continues the
/// caller's call.
pub fn dial(number: &str, timeout_s: u32, action: &str, whisper_url: Option<&str>) -> String {
    let mut xml = String::from(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial action=""#);
    xml.push_str(&escape_attr(action));
    xml.push_str(&format!(r#"" timeout="{timeout_s}"><Number"#));
    if let Some(url) = whisper_url {
        xml.push_str(r#" url=""#);
        xml.push_str(&escape_attr(url));
        xml.push('"');
    }
    xml.push('>');
    xml.push_str(&escape_attr(number));
    xml.push_str("</Number></Dial></Response>");
    xml
}

/// `<Response><Play>url</Play></Response>`, with `<Hangup/>` after it when `hangup`.
pub fn play(url: &str, hangup: bool) -> String {
    let mut xml = String::from(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Play>"#);
    xml.push_str(&escape_attr(url));
    xml.push_str("</Play>");
    if hangup {
        xml.push_str("<Hangup/>");
    }
    xml.push_str("</Response>");
    xml
}

#[cfg(test)]
mod tests;
