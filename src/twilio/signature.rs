//! `X-Twilio-Signature`: proof that a webhook came from Twilio.
//!
//! Twilio computes base64(HMAC-SHA1(key = auth token, message = the full URL it requested, query
//! string included, then for each POST parameter name in sorted order, each of its *distinct*
//! values in sorted order, `name + value`)). Sorting is by Unicode code point (= UTF-8 byte order),
//! as in twilio-python. Proxies and load balancers may add or strip the scheme's default port, so
//! both forms are accepted. JSON-bodied webhooks sign the URL alone, which carries
//! `bodySHA256=<hex sha256 of the body>`. All signature comparisons are constant-time.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The signature Twilio would send for a request to `url` with these form parameters.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    // Sorting the pairs orders names, then each name's values; dedup keeps distinct values.
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC accepts any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks a form-encoded webhook's signature against `url` as given, with the scheme's default
/// port added, and with it stripped. An empty signature never validates.
pub fn validate(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    if signature.is_empty() {
        return false;
    }
    url_variants(url).iter().any(|u| {
        // Timing may reveal which URL form matched or the (public) signature length, never how
        // much of the secret-derived value matched.
        bool::from(
            compute(auth_token, u, params)
                .as_bytes()
                .ct_eq(signature.as_bytes()),
        )
    })
}

/// Checks a JSON-bodied webhook: `url`'s `bodySHA256` query parameter must be the hex SHA-256 of
/// `body`, and the signature must cover the URL alone (no parameters; port variants as in
/// [`validate`]).
pub fn validate_json(auth_token: &str, url: &str, body: &[u8], signature: &str) -> bool {
    let Some(claimed) = query_param(url, "bodySHA256") else {
        return false;
    };
    let actual = hex(&Sha256::digest(body));
    // Twilio sends lowercase hex; case is not security-relevant (the URL itself is signed).
    let body_ok = claimed.len() == actual.len()
        && bool::from(
            claimed
                .to_ascii_lowercase()
                .as_bytes()
                .ct_eq(actual.as_bytes()),
        );
    // Evaluate both, so timing does not reveal which check failed.
    let signature_ok = validate(auth_token, url, &[], signature);
    body_ok & signature_ok
}

/// The first value of `name` in `url`'s query string. Not percent-decoded: used only for
/// `bodySHA256`, whose name and hex value need no encoding.
fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = url.split_once('?')?;
    let query = query.split('#').next().unwrap_or("");
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `url` as given, plus the same URL with the scheme's default port (443 https/wss, 80 http/ws) added
/// or removed. Other ports are left alone: unlike twilio-python, which strips any port, we only
/// forgive what a proxy legitimately normalizes.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    // A media stream's upgrade is signed over its `wss://` URL.
    let is = |names: [&str; 2]| names.iter().any(|n| scheme.eq_ignore_ascii_case(n));
    let port = if is(["https", "wss"]) {
        "443"
    } else if is(["http", "ws"]) {
        "80"
    } else {
        return out;
    };
    let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let with_port = format!(":{port}");
    if let Some(host) = hostport.strip_suffix(&with_port) {
        out.push(format!("{scheme}://{userinfo}{host}{path}"));
    } else if !hostport.rsplit(']').next().unwrap_or("").contains(':') {
        // No port at all (an IPv6 literal's colons are inside the brackets).
        out.push(format!("{scheme}://{userinfo}{hostport}{with_port}{path}"));
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
