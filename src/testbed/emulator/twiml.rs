//! A small, tolerant TwiML reader: the `<Response>`'s top-level verbs, enough to run what an
//! outbound dialer returns (`<Connect><Stream>`, `<Hangup/>`, `<Reject/>`, `<Say>`, `<Play>`,
//! `<Pause>`, `<Redirect>`, `<Dial><Number>`). Hand-written rather than an XML crate because the crate has none
//! and the documents are tiny; anything unknown is kept as [`Verb::Other`] and skipped, as
//! Twilio skips nothing but we only need to know it was there.

/// A top-level TwiML verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verb {
    /// `<Connect>`; the stream is `None` when it holds no `<Stream>` (e.g. `<Room>`).
    Connect(Option<Stream>),
    Hangup,
    Reject,
    Say(String),
    Play(String),
    Pause(u64),
    Redirect {
        url: String,
        method: String,
    },
    Dial(Dial),
    Other(String),
}

/// `<Dial>` of one `<Number>` (a bare number as its text is read as one too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Dial {
    pub number: String,
    /// `<Number url>`: TwiML played to the person who answers, before the bridge.
    pub whisper_url: Option<String>,
    pub action: Option<String>,
    pub method: String,
    /// Seconds to ring (Twilio's default is 30).
    pub timeout: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stream {
    pub url: String,
    pub parameters: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum TwimlError {
    #[error("no <Response> element")]
    NoResponse,
    #[error("malformed tag at byte {0}")]
    Malformed(usize),
}

#[derive(Debug)]
enum Token {
    Open {
        name: String,
        attrs: Vec<(String, String)>,
        closed: bool,
    },
    Close(String),
    Text(String),
}

/// Parses a TwiML document into its `<Response>`'s verbs.
pub(super) fn parse(doc: &str) -> Result<Vec<Verb>, TwimlError> {
    let tokens = tokenize(doc)?;
    let mut it = tokens.into_iter().peekable();
    // Skip to <Response>.
    loop {
        match it.next() {
            Some(Token::Open { name, closed, .. }) if name == "Response" => {
                if closed {
                    return Ok(Vec::new());
                }
                break;
            }
            Some(_) => continue,
            None => return Err(TwimlError::NoResponse),
        }
    }
    let mut verbs = Vec::new();
    while let Some(tok) = it.next() {
        match tok {
            Token::Close(name) if name == "Response" => break,
            Token::Open {
                name,
                attrs,
                closed,
            } => {
                // Gather the element's content (text and children) up to its close tag.
                let mut inner = Vec::new();
                if !closed {
                    let mut depth = 0usize;
                    for t in it.by_ref() {
                        match &t {
                            Token::Open { closed: false, .. } => depth += 1,
                            Token::Close(n) if depth == 0 && *n == name => break,
                            Token::Close(_) => depth = depth.saturating_sub(1),
                            _ => {}
                        }
                        inner.push(t);
                    }
                }
                verbs.push(verb(&name, &attrs, &inner));
            }
            _ => {}
        }
    }
    Ok(verbs)
}

fn verb(name: &str, attrs: &[(String, String)], inner: &[Token]) -> Verb {
    let attr = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let text = || {
        inner
            .iter()
            .filter_map(|t| match t {
                Token::Text(s) => Some(s.as_str()),
                _ => None,
            })
            .collect::<String>()
            .trim()
            .to_string()
    };
    match name {
        "Hangup" => Verb::Hangup,
        "Reject" => Verb::Reject,
        "Say" => Verb::Say(text()),
        "Play" => Verb::Play(text()),
        // Twilio's default pause is one second.
        "Pause" => Verb::Pause(
            attr("length")
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or(1),
        ),
        "Redirect" => Verb::Redirect {
            url: text(),
            method: attr("method")
                .unwrap_or_else(|| "POST".into())
                .to_uppercase(),
        },
        "Dial" => {
            let number = inner.iter().find_map(|t| match t {
                Token::Open { name, attrs, .. } if name == "Number" => Some(attrs),
                _ => None,
            });
            let url =
                number.and_then(|a| a.iter().find(|(k, _)| k == "url").map(|(_, v)| v.clone()));
            Verb::Dial(Dial {
                number: text(),
                whisper_url: url,
                action: attr("action"),
                method: attr("method")
                    .unwrap_or_else(|| "POST".into())
                    .to_uppercase(),
                timeout: attr("timeout")
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(30),
            })
        }
        "Connect" => {
            let mut stream: Option<Stream> = None;
            for t in inner {
                if let Token::Open { name, attrs, .. } = t {
                    let get = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
                    match name.as_str() {
                        "Stream" if stream.is_none() => {
                            stream = Some(Stream {
                                url: get("url").unwrap_or_default(),
                                parameters: Vec::new(),
                            })
                        }
                        "Parameter" => {
                            if let (Some(s), Some(n)) = (stream.as_mut(), get("name")) {
                                s.parameters.push((n, get("value").unwrap_or_default()));
                            }
                        }
                        _ => {}
                    }
                }
            }
            Verb::Connect(stream)
        }
        other => Verb::Other(other.to_string()),
    }
}

fn tokenize(doc: &str) -> Result<Vec<Token>, TwimlError> {
    let mut out = Vec::new();
    let mut rest = doc;
    let offset = |r: &str| doc.len() - r.len();
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            push_text(&mut out, rest);
            break;
        };
        push_text(&mut out, &rest[..lt]);
        rest = &rest[lt..];
        // Declarations, processing instructions, comments and CDATA carry no verbs.
        if let Some(r) = rest.strip_prefix("<!--") {
            rest = r.find("-->").map(|i| &r[i + 3..]).unwrap_or("");
            continue;
        }
        if let Some(r) = rest.strip_prefix("<![CDATA[") {
            let end = r.find("]]>").ok_or(TwimlError::Malformed(offset(rest)))?;
            out.push(Token::Text(r[..end].to_string()));
            rest = &r[end + 3..];
            continue;
        }
        if rest.starts_with("<?") || rest.starts_with("<!") {
            let end = rest.find('>').ok_or(TwimlError::Malformed(offset(rest)))?;
            rest = &rest[end + 1..];
            continue;
        }
        let end = tag_end(rest).ok_or(TwimlError::Malformed(offset(rest)))?;
        let tag = &rest[1..end];
        let at = offset(rest);
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            out.push(Token::Close(name.trim().to_string()));
            continue;
        }
        let (tag, closed) = match tag.strip_suffix('/') {
            Some(t) => (t, true),
            None => (tag, false),
        };
        let tag = tag.trim();
        let name_end = tag.find(|c: char| c.is_whitespace()).unwrap_or(tag.len());
        let name = &tag[..name_end];
        if name.is_empty() {
            return Err(TwimlError::Malformed(at));
        }
        out.push(Token::Open {
            name: name.to_string(),
            attrs: attributes(&tag[name_end..]).ok_or(TwimlError::Malformed(at))?,
            closed,
        });
    }
    Ok(out)
}

fn push_text(out: &mut Vec<Token>, text: &str) {
    if !text.trim().is_empty() {
        out.push(Token::Text(unescape(text)));
    }
}

/// The index of the `>` closing a tag that starts at 0, skipping quoted attribute values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(i),
            (None, '<') => return None,
            _ => {}
        }
    }
    None
}

/// `name="value"` pairs; `None` when malformed.
fn attributes(mut s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Some(out);
        }
        let eq = s.find('=')?;
        let name = s[..eq].trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return None;
        }
        let after = s[eq + 1..].trim_start();
        let q = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let close = after[1..].find(q)?;
        out.push((name.to_string(), unescape(&after[1..1 + close])));
        s = &after[close + 2..];
    }
}

/// XML entity references; unknown ones are kept as written.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|&i| i <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e => e
                .strip_prefix("#x")
                .or_else(|| e.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| e.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
