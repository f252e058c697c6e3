use super::*;

fn tz(num: &str) -> Option<&'static str> {
    timezone_for_number(num).map(|t| t.name())
}

#[test]
fn table_is_sorted_and_unique() {
    assert!(AREA_CODES.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(AREA_CODES.len() > 440);
}

#[test]
fn us_zones() {
    let cases = [
        ("+12125550100", "America/New_York"), // NYC
        ("+16175550100", "America/New_York"), // Boston
        ("+13055550100", "America/New_York"), // Miami
        ("+13135550100", "America/Detroit"),  // Detroit
        ("+13175550100", "America/Indiana/Indianapolis"),
        ("+12195550100", "America/Chicago"), // Gary, IN
        ("+13125550100", "America/Chicago"), // Chicago
        ("+12145550100", "America/Chicago"), // Dallas
        ("+18505550100", "America/Chicago"), // Pensacola (split)
        ("+13035550100", "America/Denver"),  // Denver
        ("+19155550100", "America/Denver"),  // El Paso
        ("+12085550100", "America/Boise"),   // Idaho
        ("+16025550100", "America/Phoenix"), // Phoenix, no DST
        ("+14805550100", "America/Phoenix"),
        ("+19285550100", "America/Phoenix"),
        ("+14155550123", "America/Los_Angeles"),
        ("+12065550100", "America/Los_Angeles"), // Seattle
        ("+17025550100", "America/Los_Angeles"), // Las Vegas
        ("+19075550100", "America/Anchorage"),
        ("+18085550100", "Pacific/Honolulu"),
        ("+17875550100", "America/Puerto_Rico"),
        ("+16715550100", "Pacific/Guam"),
    ];
    for (num, want) in cases {
        assert_eq!(tz(num), Some(want), "{num}");
    }
}

#[test]
fn canadian_zones() {
    let cases = [
        ("+14165550100", "America/Toronto"),   // Toronto
        ("+15145550100", "America/Toronto"),   // Montreal
        ("+16045550100", "America/Vancouver"), // Vancouver
        ("+14035550100", "America/Edmonton"),  // Calgary
        ("+13065550100", "America/Regina"),    // Saskatchewan, no DST
        ("+12045550100", "America/Winnipeg"),
        ("+19025550100", "America/Halifax"), // Halifax
        ("+15065550100", "America/Moncton"),
        ("+17095550100", "America/St_Johns"), // St. John's, UTC-3:30
        ("+18675550100", "America/Whitehorse"),
    ];
    for (num, want) in cases {
        assert_eq!(tz(num), Some(want), "{num}");
    }
}

#[test]
fn no_zone() {
    for num in [
        "+442079460958", // not NANP
        "+18005550100",  // toll-free
        "+18885550100",  // toll-free
        "+19005550100",  // premium
        "+15005550100",  // personal
        "+1415555012",   // too short
        "+1415555012x",  // garbage
        "14155550123",   // not E.164
        "",
        "+1",
    ] {
        assert_eq!(tz(num), None, "{num:?}");
    }
}
