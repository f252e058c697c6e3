use super::*;

fn err(row: usize, reason: &str) -> RowError {
    RowError {
        row,
        reason: reason.to_owned(),
    }
}

const CSV: &str = "\
phone,Name,TZ,consent,Source,Company
(415) 555-0123,Alice,,yes,web,Acme
212-555-0100,Bob,,no,,
not a phone,Carl,,yes,,
+44 20 7946 0958,Dana,,yes,,
+44 20 7946 0958,Dana,Europe/London,y,,
415.555.0123,Alice again,,yes,,

   
,,,,,
(604) 555-0199,Eve,Mars/Olympus,1,,
(416) 555-0100,Frank,,maybe,,
(416) 555-0101,Gina
\"(902) 555-0100\",\"Hal, Jr.\",america/halifax,TRUE,\"list vendor\",\"Multi
line\"
(709) 555-0100,Ivy,,,,
18885550100,Jo,,,,
";

#[test]
fn csv_mixed_rows() {
    let report = parse_csv(CSV.as_bytes()).expect("file is readable");
    let phones: Vec<&str> = report.leads.iter().map(|l| l.phone.as_str()).collect();
    assert_eq!(
        phones,
        [
            "+14155550123",
            "+12125550100",
            "+442079460958",
            "+19025550100",
            "+17095550100"
        ]
    );
    assert_eq!(
            report.errors,
            vec![
                err(4, "invalid phone \"not a phone\": phone number contains invalid characters \"notaphe\" (only digits, spaces, '-', '.', '/', '(', ')' and a leading '+' are allowed)"),
                err(5, "no timezone given and none can be derived from +442079460958; add a timezone column"),
                err(7, "duplicate of row 2"),
                err(11, "unknown timezone \"Mars/Olympus\": expected an IANA name such as America/New_York"),
                err(12, "invalid consent value \"maybe\": expected yes/no, true/false, y/n or 1/0"),
                err(13, "wrong number of columns: expected 6, found 2"),
                err(17, "no timezone given and none can be derived from +18885550100; add a timezone column"),
            ]
        );
    // 15 lines after the header: 3 blank (empty, spaces, ",,,,,"), one
    // record spanning two lines.
    assert_eq!(report.leads.len() + report.errors.len(), 12);

    let alice = &report.leads[0];
    assert_eq!(alice.name.as_deref(), Some("Alice"));
    assert_eq!(alice.timezone, "America/Los_Angeles");
    assert!(alice.consent);
    assert_eq!(alice.source.as_deref(), Some("web"));
    assert_eq!(
        alice.fields,
        BTreeMap::from([("company".to_owned(), "Acme".to_owned())])
    );

    let bob = &report.leads[1];
    assert_eq!(
        (bob.timezone.as_str(), bob.consent, bob.source.as_deref()),
        ("America/New_York", false, None)
    );
    assert_eq!(bob.fields.get("company").map(String::as_str), Some(""));

    let dana = &report.leads[2];
    assert_eq!(
        (dana.timezone.as_str(), dana.consent),
        ("Europe/London", true)
    );

    let hal = &report.leads[3];
    assert_eq!(hal.name.as_deref(), Some("Hal, Jr."));
    assert_eq!(hal.timezone, "America/Halifax");
    assert_eq!(hal.source.as_deref(), Some("list vendor"));
    assert_eq!(
        hal.fields.get("company").map(String::as_str),
        Some("Multi\nline")
    );

    let ivy = &report.leads[4];
    assert_eq!(
        (ivy.timezone.as_str(), ivy.consent),
        ("America/St_Johns", false)
    );
}

#[test]
fn csv_bom_crlf_aliases_and_unnamed_columns() {
    let data = "\u{feff} Phone_Number , Email ,\r\n4155550123, a@example.com ,\r\n4155550124,b@example.com,note\r\n";
    let report = parse_csv(data.as_bytes()).expect("readable");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.leads.len(), 2);
    assert_eq!(
        report.leads[0].fields,
        BTreeMap::from([("email".to_owned(), "a@example.com".to_owned())])
    );
    assert_eq!(
        report.leads[1].fields.get("column_3").map(String::as_str),
        Some("note")
    );
}

#[test]
fn csv_phone_beats_number_alias() {
    let data = "number,phone\n42,4155550123\n";
    let report = parse_csv(data.as_bytes()).expect("readable");
    assert_eq!(report.leads[0].phone, "+14155550123");
    assert_eq!(
        report.leads[0].fields.get("number").map(String::as_str),
        Some("42")
    );
}

#[test]
fn csv_missing_phone_and_other_file_errors() {
    assert_eq!(
        parse_csv("Name,Email\nAl,al@example.com\n".as_bytes()).unwrap_err(),
        ImportError::MissingPhoneColumn {
            found: vec!["name".into(), "email".into()]
        }
    );
    let msg = parse_csv("Name,Email\n".as_bytes())
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "no phone column: name one phone, phone_number or number (columns found: name, email)"
    );
    assert_eq!(parse_csv("".as_bytes()).unwrap_err(), ImportError::NoHeader);
    assert_eq!(
        parse_csv("\n\n".as_bytes()).unwrap_err(),
        ImportError::NoHeader
    );
    assert_eq!(
        parse_csv("phone,Name,name\n".as_bytes()).unwrap_err(),
        ImportError::DuplicateColumn("name".into())
    );
    let empty = parse_csv("phone\n".as_bytes()).expect("header only is fine");
    assert!(empty.leads.is_empty() && empty.errors.is_empty());
}

#[test]
fn csv_invalid_utf8_row_is_a_row_error() {
    let mut data = b"phone,name\n4155550123,Al\n4155550124,".to_vec();
    data.extend_from_slice(&[0xff, 0xfe]);
    data.extend_from_slice(b"\n4155550125,Cy\n");
    let report = parse_csv(data.as_slice()).expect("readable");
    assert_eq!(report.leads.len(), 2);
    assert_eq!(report.errors, vec![err(3, "row is not valid UTF-8 text")]);
}

/// Old Mac files end lines with a lone "\r": rows are still numbered by line (found by the
/// `leads` fuzz target: they were all reported on the header's line).
#[test]
fn csv_lone_carriage_returns_end_lines() {
    let data = b"phone,name\r4155550123,Al\r\rnot a phone,Bo\r\n4155550125,Cy\n";
    let report = parse_csv(&data[..]).expect("readable");
    assert_eq!(report.leads.len(), 2);
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].row, 4, "{:?}", report.errors);
}

#[test]
fn csv_read_error_is_whole_file() {
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    assert!(matches!(parse_csv(Broken), Err(ImportError::Read(m)) if m.contains("disk on fire")));
}

#[test]
fn consent_values() {
    for (v, want) in [
        ("yes", true),
        ("Y", true),
        ("TRUE", true),
        ("1", true),
        ("no", false),
        ("n", false),
        ("False", false),
        ("0", false),
        ("", false),
    ] {
        assert_eq!(parse_consent(v), Some(want), "{v:?}");
    }
    for v in ["maybe", "2", "si", "yes!"] {
        assert_eq!(parse_consent(v), None, "{v:?}");
    }
}

const JSON: &str = r#"[
        {"phone": "(415) 555-0123", "Name": "Alice", "consent": true, "fields": {"Plan": "gold", "age": 42}},
        {"Phone_Number": 4155550124, "consent": 1, "source": "web form", "zip": 94107},
        {"phone": "+44 20 7946 0958"},
        "not an object",
        {"phone": "415-555-0123"},
        {"phone": "415 555 0125", "consent": "sometimes"},
        {"phone": "415 555 0126", "tags": ["a"]},
        {"phone": "415 555 0127", "Phone": "x"},
        {"phone": null, "name": "Nobody"},
        {"phone": "+44 20 7946 0958", "tz": "Europe/London", "consent": false, "plan": "top", "fields": {"plan": "nested"}},
        {"phone": "415 555 0128", "fields": "nope"}
    ]"#;

#[test]
fn json_mixed_rows() {
    let report = parse_json(JSON.as_bytes()).expect("valid array");
    assert_eq!(
            report.errors,
            vec![
                err(3, "no timezone given and none can be derived from +442079460958; add a timezone column"),
                err(4, "expected a lead object, found a string"),
                err(5, "duplicate of row 1"),
                err(6, "invalid consent value \"sometimes\": expected yes/no, true/false, y/n or 1/0"),
                err(7, "tags: expected a string, number or bool, found an array"),
                err(8, "key \"phone\" is given twice (keys are case-insensitive)"),
                err(9, "missing phone number"),
                err(11, "fields: expected an object, found a string"),
            ]
        );
    assert_eq!(report.leads.len() + report.errors.len(), 11);
    let [alice, second, london] = report.leads.as_slice() else {
        panic!("expected 3 leads, got {:?}", report.leads);
    };
    assert_eq!(
        alice,
        &NewLead {
            phone: "+14155550123".into(),
            name: Some("Alice".into()),
            fields: BTreeMap::from([("age".into(), "42".into()), ("plan".into(), "gold".into())]),
            timezone: "America/Los_Angeles".into(),
            consent: true,
            source: None,
        }
    );
    assert_eq!(second.phone, "+14155550124");
    assert!(second.consent);
    assert_eq!(second.source.as_deref(), Some("web form"));
    assert_eq!(second.fields.get("zip").map(String::as_str), Some("94107"));
    assert_eq!(london.timezone, "Europe/London");
    assert!(!london.consent);
    assert_eq!(london.fields.get("plan").map(String::as_str), Some("top"));
}

#[test]
fn json_file_errors() {
    assert!(matches!(
        parse_json(b"{\"phone\": \"4155550123\"}"),
        Err(ImportError::NotAnArray("an object"))
    ));
    assert!(matches!(
        parse_json(b"[1,"),
        Err(ImportError::InvalidJson(_))
    ));
    assert!(matches!(parse_json(b""), Err(ImportError::InvalidJson(_))));
    let empty = parse_json(b"[]").expect("empty array is fine");
    assert!(empty.leads.is_empty() && empty.errors.is_empty());
}

#[test]
fn report_serializes() {
    let report = parse_csv("phone\n4155550123\nbad\n".as_bytes()).expect("readable");
    let json = serde_json::to_value(&report).expect("serializable");
    assert_eq!(json["leads"][0]["phone"], "+14155550123");
    assert_eq!(json["errors"][0]["row"], 3);
}
