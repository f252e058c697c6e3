//! `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + sorted params)).
//!
//! Twilio signs the full URL it requested (with query string), then appends each POST parameter
//! name in sorted order followed by each of its values in sorted order. Proxies and load balancers
//! may add or strip the default port, so both forms are accepted. Comparison is constant-time.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The signature Twilio would send for this request.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The URL with the scheme's default port added and removed: either may be what Twilio signed.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let port = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return out,
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let with_port = format!(":{port}");
    if let Some(host) = hostport.strip_suffix(&with_port) {
        out.push(format!("{scheme}://{userinfo}{host}{path}"));
    } else if !hostport.rsplit(']').next().unwrap_or("").contains(':') {
        out.push(format!("{scheme}://{userinfo}{hostport}{with_port}{path}"));
    }
    out
}

/// Checks a form-encoded webhook's signature.
pub fn validate(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    if signature.is_empty() {
        return false;
    }
    url_variants(url).iter().any(|u| {
        let expected = compute(auth_token, u, params);
        bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
    })
}

/// Checks a JSON-bodied webhook: the URL carries `bodySHA256`, which must match the body, and
/// the signature covers the URL alone.
pub fn validate_json(auth_token: &str, url: &str, body: &[u8], signature: &str) -> bool {
    let Some((_, query)) = url.split_once('?') else {
        return false;
    };
    let claimed = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "bodySHA256")
        .map(|(_, v)| v.into_owned());
    let actual = hex(&Sha256::digest(body));
    match claimed {
        Some(c) if bool::from(c.to_ascii_lowercase().as_bytes().ct_eq(actual.as_bytes())) => {
            validate(auth_token, url, &[], signature)
        }
        _ => false,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
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

    #[test]
    fn official_test_vectors() {
        assert_eq!(
            compute("12345", URL, &official_params()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert_eq!(
            compute(
                "12345",
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                &official_params()
            ),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
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
        let body = br#"{"property": "value", "boolean": true}"#;
        assert_eq!(
            hex(&Sha256::digest(body)),
            "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
        let json_url = format!(
            "{URL}&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
        assert_eq!(
            compute("12345", &json_url, &[]),
            "a9nBmqA0ju/hNViExpshrM61xv4="
        );
        assert!(validate_json(
            "12345",
            &json_url,
            body,
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
        assert!(!validate_json(
            "12345",
            &json_url,
            b"{}",
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
    }

    #[test]
    fn validation_accepts_port_variants_and_rejects_tampering() {
        let params = official_params();
        assert!(validate(
            "12345",
            URL,
            &params,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        // Signed with the port, received without it (and the other way round).
        assert!(validate(
            "12345",
            URL,
            &params,
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        ));
        assert!(validate(
            "12345",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &params,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!validate(
            "54321",
            URL,
            &params,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        let mut tampered = params.clone();
        tampered[2].1 = "9999".into();
        assert!(!validate(
            "12345",
            URL,
            &tampered,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!validate("12345", URL, &params, ""));
    }

    #[test]
    fn url_variants_cover_default_ports() {
        assert_eq!(
            url_variants("https://a.com/x?y=1"),
            vec![
                "https://a.com/x?y=1".to_string(),
                "https://a.com:443/x?y=1".to_string()
            ]
        );
        assert_eq!(
            url_variants("http://a.com:80/x"),
            vec![
                "http://a.com:80/x".to_string(),
                "http://a.com/x".to_string()
            ]
        );
        assert_eq!(url_variants("http://a.com:8080/x").len(), 1);
    }
}
