//! The CRM webhook's wire rules, pure: the signature header and the retry schedule.
//!
//! Signature (Stripe's scheme, so customers can reuse their verification code):
//! `X-Telemarketer-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! The timestamp is signed with the body, so a captured request cannot be replayed later than
//! the receiver's tolerance window; the event id ([`EVENT_ID_HEADER`], also in the body) lets
//! it drop a redelivery of an event it already took.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Telemarketer-Signature";
/// The event's id: stable across retries, receivers deduplicate by it.
pub const EVENT_ID_HEADER: &str = "X-Telemarketer-Event-Id";
/// The event's kind (`call.ended`, `lead.do_not_call`).
pub const EVENT_KIND_HEADER: &str = "X-Telemarketer-Event";

/// Hex HMAC-SHA256 of `"<t>.<body>"`.
fn mac_hex(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The header value for `body` sent at `t` (Unix seconds).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", mac_hex(secret, t, body))
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("signature header is malformed (want t=<unix>,v1=<hex>)")]
    Malformed,
    #[error("signature timestamp is {0} s away from now, outside the tolerance")]
    Stale(i64),
    #[error("signature does not match the body")]
    Mismatch,
}

/// Checks a header against `body` and the receiver's clock `now` (Unix seconds): the
/// timestamp within `tolerance` either way, and one `v1` matching (several are allowed, as
/// while a secret is rotated). Constant-time in the compared value.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| VerifyError::Malformed)?),
            Some(("v1", v)) => candidates.push(v),
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::Malformed)?;
    if candidates.is_empty() {
        return Err(VerifyError::Malformed);
    }
    let skew = now.saturating_sub(t);
    if skew.unsigned_abs() > tolerance.as_secs() {
        return Err(VerifyError::Stale(skew));
    }
    let expected = mac_hex(secret, t, body);
    let matched = candidates
        .iter()
        .any(|c| bool::from(c.as_bytes().ct_eq(expected.as_bytes())));
    if matched {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// When to try a failed delivery again: `base`, doubling per failure, at most `cap`; after
/// `max_attempts` deliveries the event is given up (kept in the outbox as `failed`, for the
/// delivery log). No jitter: one appliance's few CRMs do not stampede, and tests stay exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}

impl Default for RetrySchedule {
    /// 5 s, 10 s, 20 s ... one hour, 20 tries: a CRM down for about 13 hours loses nothing.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(3600),
            max_attempts: 20,
        }
    }
}

impl RetrySchedule {
    /// The wait after failed attempt number `attempts` (1 = the first); None: give up.
    pub fn after(&self, attempts: u32) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        // 2^(n-1), with the shift bounded so it cannot overflow.
        let factor = 1u32 << attempts.saturating_sub(1).min(20);
        Some(self.base.saturating_mul(factor).min(self.cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";
    const BODY: &[u8] = br#"{"event_id":"call.ended:CA1","kind":"call.ended"}"#;

    /// Cross-checked with Python:
    /// `hmac.new(b"whsec_test", b'1700000000.{"event_id":"call.ended:CA1","kind":"call.ended"}',
    /// hashlib.sha256).hexdigest()`.
    const GOLDEN: &str = "48150e93badc274115c6d0e23a6effed6bf9ab765fe73b0ff9e444d105694b46";

    #[test]
    fn signature_matches_the_golden_vector() {
        assert_eq!(
            sign(SECRET, 1_700_000_000, BODY),
            format!("t=1700000000,v1={GOLDEN}")
        );
    }

    #[test]
    fn verify_takes_a_fresh_signature_and_refuses_the_rest() {
        let tol = Duration::from_secs(300);
        let header = sign(SECRET, 1_700_000_000, BODY);
        assert_eq!(verify(SECRET, &header, BODY, 1_700_000_100, tol), Ok(()));
        assert_eq!(verify(SECRET, &header, BODY, 1_699_999_900, tol), Ok(()));
        assert_eq!(
            verify(SECRET, &header, BODY, 1_700_000_301, tol),
            Err(VerifyError::Stale(301))
        );
        assert_eq!(
            verify("other", &header, BODY, 1_700_000_000, tol),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, &header, b"{}", 1_700_000_000, tol),
            Err(VerifyError::Mismatch)
        );
        // A replay under a new timestamp does not carry a valid MAC.
        let moved = header.replace("t=1700000000", "t=1700000200");
        assert_eq!(
            verify(SECRET, &moved, BODY, 1_700_000_200, tol),
            Err(VerifyError::Mismatch)
        );
        for bad in ["", "v1=abc", "t=x,v1=abc", "t=1700000000"] {
            assert_eq!(
                verify(SECRET, bad, BODY, 1_700_000_000, tol),
                Err(VerifyError::Malformed),
                "{bad}"
            );
        }
        // During a rotation the sender may add a second v1; either may match.
        let two = format!("t=1700000000,v1=00,v1={GOLDEN}");
        assert_eq!(verify(SECRET, &two, BODY, 1_700_000_000, tol), Ok(()));
    }

    #[test]
    fn retries_double_up_to_the_cap_then_give_up() {
        let s = RetrySchedule {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
            max_attempts: 6,
        };
        let waits: Vec<Option<u64>> = (1..=7)
            .map(|n| s.after(n).map(|d| d.as_millis() as u64))
            .collect();
        assert_eq!(
            waits,
            [
                Some(100),
                Some(200),
                Some(400),
                Some(800),
                Some(1000),
                None,
                None
            ]
        );
        // Absurd attempt counts neither overflow nor exceed the cap.
        let long = RetrySchedule {
            max_attempts: u32::MAX,
            ..RetrySchedule::default()
        };
        assert_eq!(long.after(10_000), Some(Duration::from_secs(3600)));
        assert_eq!(
            RetrySchedule::default().after(1),
            Some(Duration::from_secs(5))
        );
    }
}
