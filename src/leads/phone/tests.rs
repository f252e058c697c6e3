use super::*;

#[test]
fn accepts_common_formats() {
    let cases = [
        ("(415) 555-0123", "+14155550123"),
        ("415.555.0123", "+14155550123"),
        ("1-415-555-0123", "+14155550123"),
        ("+1 415 555 0123", "+14155550123"),
        ("4155550123", "+14155550123"),
        ("14155550123", "+14155550123"),
        ("  +1 (415) 555-0123\t", "+14155550123"),
        ("415/555 0123", "+14155550123"),
        ("\u{a0}415\u{a0}555\u{a0}0123", "+14155550123"),
        ("001 415 555 0123", "+14155550123"),
        ("212-555-0100", "+12125550100"),
        ("212-555-0199", "+12125550199"),
        ("+1 (604) 555-0199", "+16045550199"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+44 (0)20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("011 44 20 7946 0958", "+442079460958"),
        ("+49 30 123456", "+4930123456"),
        ("+61 2 9876 5432", "+61298765432"),
    ];
    for (raw, want) in cases {
        assert_eq!(normalize_phone(raw).as_deref(), Ok(want), "input {raw:?}");
    }
}

#[test]
fn rejects_with_reason() {
    use PhoneError::*;
    let nanp = |s: &str| InvalidNanp(s.to_owned());
    let cases: Vec<(&str, PhoneError)> = vec![
        ("", Empty),
        ("   ", Empty),
        ("()-.", Empty),
        ("+", Empty),
        ("415-555-0123 x123", Extension("123".into())),
        ("415-555-0123 ext. 5", Extension("5".into())),
        ("415-555-0123 Ext 5", Extension("5".into())),
        ("415-555-0123 extension 42", Extension("42".into())),
        ("+1 415 555 0123;ext=7", Extension("7".into())),
        ("415-555-0123 #9", Extension("9".into())),
        ("415-555-0123,,9", Extension("9".into())),
        ("415-555-O123", BadCharacters("O".into())),
        ("1-800-FLOWERS", BadCharacters("FLOWERS".into())),
        ("415+555-0123", BadCharacters("+".into())),
        ("415-555-0123 x", BadCharacters("x".into())),
        ("4155550123@home", BadCharacters("@home".into())),
        ("415_555_0123", BadCharacters("_".into())),
        ("555-0123", WrongLength { digits: 7 }),
        ("24155550123", WrongLength { digits: 11 }),
        ("415555012345", WrongLength { digits: 12 }),
        ("+1 415 555 012", WrongLength { digits: 10 }),
        ("+44 123", WrongLength { digits: 5 }),
        ("+1234567890123456", WrongLength { digits: 16 }),
        ("020 7946 0958", WrongLength { digits: 11 }),
        (
            "+0 20 7946 0958",
            InvalidCountryCode("country codes never start with 0".into()),
        ),
        (
            "(115) 555-0123",
            nanp("area code 115 cannot start with 0 or 1"),
        ),
        (
            "(015) 555-0123",
            nanp("area code 015 cannot start with 0 or 1"),
        ),
        (
            "(911) 555-0123",
            nanp("area code 911 is a service code (N11), not an area code"),
        ),
        (
            "(495) 555-0123",
            nanp("area code 495 is reserved (N9X codes are never assigned)"),
        ),
        (
            "(415) 155-0123",
            nanp("exchange 155 cannot start with 0 or 1"),
        ),
        (
            "+1 415 055 0123",
            nanp("exchange 055 cannot start with 0 or 1"),
        ),
        (
            "(415) 411-0123",
            nanp("exchange 411 is a service code (N11)"),
        ),
    ];
    for (raw, want) in cases {
        assert_eq!(normalize_phone(raw), Err(want), "input {raw:?}");
    }
}

#[test]
fn error_messages_are_readable() {
    let e = normalize_phone("415-555-0123 x12").unwrap_err();
    assert!(
        e.to_string().contains("extensions are not supported"),
        "{e}"
    );
    let e = normalize_phone("555-0123").unwrap_err();
    assert!(
        e.to_string().starts_with("phone number has 7 digits"),
        "{e}"
    );
}

#[test]
fn e164_syntax() {
    for ok in ["+14155550123", "+15005550006", "+442079460958", "+12"] {
        assert!(is_e164(ok), "{ok}");
    }
    for bad in [
        "14155550123",
        "+0123456",
        "+1 415 555 0123",
        "+1234567890123456",
        "+",
        "+1",
        "=1+2",
        "+1415555012a",
    ] {
        assert!(!is_e164(bad), "{bad}");
    }
}
