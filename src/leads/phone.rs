//! Phone number normalisation to E.164.
//!
//! Lead lists arrive in every human format, and Twilio wants E.164. Region
//! rules, decided here once:
//! - a bare number (no `+`) is NANP (US/Canada): 10 digits, or 11 starting with `1`;
//! - `+`, `00` (the international prefix in most of the world) and `011` (the
//!   NANP one) all introduce a country code. National numbers of other
//!   countries (e.g. UK `020 7946 0958`) have no country code and are rejected;
//! - `+1` numbers get the full NANP checks; other country codes only the E.164
//!   length check (8..=15 digits), because we have no per-country plan;
//! - the fictional 555-0100..0199 range is accepted: tests and demos dial it;
//! - extensions are rejected: the dialer cannot key them in after the answer.

use thiserror::Error;

/// Why a phone number was refused. Messages are shown to the operator who
/// uploaded the list, so they say what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PhoneError {
    #[error("phone number is empty")]
    Empty,
    #[error("phone number contains invalid characters {0:?} (only digits, spaces, '-', '.', '/', '(', ')' and a leading '+' are allowed)")]
    BadCharacters(String),
    #[error("phone extensions are not supported (found extension {0:?}); give the direct number")]
    Extension(String),
    #[error("phone number has {digits} digits: a US/Canada number has 10 (or 11 starting with 1), an international one '+', the country code and 8 to 15 digits in all")]
    WrongLength { digits: usize },
    #[error("not a valid US/Canada number: {0}")]
    InvalidNanp(String),
    #[error("invalid country code: {0}")]
    InvalidCountryCode(String),
}

/// Whether `s` is written exactly as E.164: `+`, a country code not starting with 0, and 15
/// digits at most in all. Syntax only (no numbering-plan checks), for numbers we did not
/// normalise ourselves: a caller ID, a spreadsheet cell.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Normalises a phone number to E.164 (`"+14155550123"`); see the module docs
/// for the accepted formats and region rules.
pub fn normalize_phone(raw: &str) -> Result<String, PhoneError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(PhoneError::Empty);
    }
    if let Some(ext) = find_extension(s) {
        return Err(PhoneError::Extension(ext));
    }
    let (plus, body) = match s.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    // "+44 (0)20 ..." marks the national trunk prefix, which is not dialled
    // from abroad. It can only appear in international numbers.
    let body = if plus || body.starts_with('0') {
        body.replace("(0)", "")
    } else {
        body.to_owned()
    };

    let mut digits = String::with_capacity(16);
    let mut bad = String::new();
    for c in body.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '-' | '.' | '/' | '(' | ')' => {}
            c if c.is_whitespace() => {}
            c => {
                if !bad.contains(c) {
                    bad.push(c);
                }
            }
        }
    }
    if !bad.is_empty() {
        return Err(PhoneError::BadCharacters(bad));
    }
    if digits.is_empty() {
        return Err(PhoneError::Empty);
    }

    if plus {
        return international(&digits);
    }
    if let Some(rest) = digits
        .strip_prefix("011")
        .or_else(|| digits.strip_prefix("00"))
    {
        return international(rest);
    }
    match digits.len() {
        10 => nanp(&digits),
        11 if digits.starts_with('1') => nanp(&digits[1..]),
        n => Err(PhoneError::WrongLength { digits: n }),
    }
}

/// Digits after the international prefix: country code + national number.
fn international(d: &str) -> Result<String, PhoneError> {
    if d.is_empty() {
        return Err(PhoneError::Empty);
    }
    if d.starts_with('0') {
        return Err(PhoneError::InvalidCountryCode(
            "country codes never start with 0".into(),
        ));
    }
    if let Some(national) = d.strip_prefix('1') {
        if national.len() != 10 {
            return Err(PhoneError::WrongLength { digits: d.len() });
        }
        return nanp(national);
    }
    if !(8..=15).contains(&d.len()) {
        return Err(PhoneError::WrongLength { digits: d.len() });
    }
    Ok(format!("+{d}"))
}

/// NANP checks on the 10-digit national number NPA-NXX-XXXX. Only rules that
/// hold for every assignable number, so no real lead is ever refused.
fn nanp(ten: &str) -> Result<String, PhoneError> {
    let &[a, b, c, d, e, f, _, _, _, _] = ten.as_bytes() else {
        return Err(PhoneError::WrongLength { digits: ten.len() });
    };
    let npa = &ten[..3];
    let nxx = &ten[3..6];
    let bad = |why: String| Err(PhoneError::InvalidNanp(why));
    if a < b'2' {
        return bad(format!("area code {npa} cannot start with 0 or 1"));
    }
    if b == b'1' && c == b'1' {
        return bad(format!(
            "area code {npa} is a service code (N11), not an area code"
        ));
    }
    if b == b'9' {
        return bad(format!(
            "area code {npa} is reserved (N9X codes are never assigned)"
        ));
    }
    if d < b'2' {
        return bad(format!("exchange {nxx} cannot start with 0 or 1"));
    }
    if e == b'1' && f == b'1' {
        return bad(format!("exchange {nxx} is a service code (N11)"));
    }
    Ok(format!("+1{ten}"))
}

/// Finds an extension such as "x123", "ext. 5", "extension 42", ";ext=7",
/// "#12" or ",,12" (pause-dial) after at least one digit of the number.
fn find_extension(s: &str) -> Option<String> {
    // ASCII lower-casing keeps byte offsets, so indices into `lower` are valid.
    let lower = s.to_ascii_lowercase();
    for marker in ["extension", "ext", "x", "#", ",", ";"] {
        let Some(i) = lower.find(marker) else {
            continue;
        };
        if !lower[..i].bytes().any(|b| b.is_ascii_digit()) {
            continue;
        }
        let tail = lower[i + marker.len()..]
            .trim_start_matches(|c: char| {
                matches!(c, '.' | ':' | '=' | '#' | ',') || c.is_whitespace()
            })
            .trim_end();
        if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
            return Some(tail.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests;
