use super::*;
use chrono::Utc;
use chrono_tz::America::{Los_Angeles, New_York};

fn local(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Tz> {
    tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("valid test time")
}

/// Wednesday 2026-12-02 10:15 in Los Angeles.
fn la_now() -> DateTime<Tz> {
    local(Los_Angeles, 2026, 12, 2, 10, 15)
}

/// Friday 2026-06-19 16:40 in New York (EDT).
fn ny_now() -> DateTime<Tz> {
    local(New_York, 2026, 6, 19, 16, 40)
}

fn la_naive(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|d| d.and_hms_opt(h, mi, 0))
        .expect("valid naive time")
}

use Precision::{Day, Exact, PartOfDay};

/// (answer, resolved local "YYYY-MM-DD HH:MM", precision)
fn check(now: DateTime<Tz>, window: &CallingWindow, cases: &[(&str, &str, Precision)]) {
    for (text, want, precision) in cases {
        let got = parse_time(text, now, window)
            .unwrap_or_else(|e| panic!("{text:?}: expected {want}, got {e:?}"));
        assert_eq!(
            (got.at.format("%Y-%m-%d %H:%M").to_string(), got.precision),
            (want.to_string(), *precision),
            "{text:?}"
        );
    }
}

#[test]
fn los_angeles_phrasings() {
    assert_eq!(la_now().weekday(), Weekday::Wed);
    check(
        la_now(),
        &CallingWindow::legal(),
        &[
            ("tomorrow at three p.m.", "2026-12-03 15:00", Exact),
            ("Tomorrow at 3 p.m.", "2026-12-03 15:00", Exact),
            ("Tomorrow at 3pm", "2026-12-03 15:00", Exact),
            ("tomorrow at 3 P M", "2026-12-03 15:00", Exact),
            ("Tomorrow at three.", "2026-12-03 15:00", Exact),
            ("Tomorrow at ten.", "2026-12-03 10:00", Exact),
            ("Friday morning works.", "2026-12-04 10:00", PartOfDay),
            ("In two hours", "2026-12-02 12:15", Exact),
            ("in an hour", "2026-12-02 11:15", Exact),
            ("an hour from now", "2026-12-02 11:15", Exact),
            ("in 30 minutes", "2026-12-02 10:45", Exact),
            ("in half an hour", "2026-12-02 10:45", Exact),
            ("in like an hour and a half", "2026-12-02 11:45", Exact),
            ("in a couple of hours", "2026-12-02 12:15", PartOfDay),
            ("Later today.", "2026-12-02 12:30", PartOfDay),
            ("next Tuesday at 10", "2026-12-08 10:00", Exact),
            (
                "uh, maybe next Tuesday around 10",
                "2026-12-08 10:00",
                Exact,
            ),
            ("December 5th at 2:30 pm", "2026-12-05 14:30", Exact),
            ("the 5th of December at 11 a.m.", "2026-12-05 11:00", Exact),
            ("the 5th at 2", "2026-12-05 14:00", Exact),
            ("12/7 at 9", "2026-12-07 09:00", Exact),
            ("Tuesday the 8th at 1", "2026-12-08 13:00", Exact),
            ("January 5th", "2027-01-05 10:00", Day),
            ("half past two tomorrow", "2026-12-03 14:30", Exact),
            ("quarter past four", "2026-12-02 16:15", Exact),
            ("quarter to five", "2026-12-02 16:45", Exact),
            ("ten to five tomorrow", "2026-12-03 16:50", Exact),
            ("tonight", "2026-12-02 19:00", PartOfDay),
            ("Tonight at 8", "2026-12-02 20:00", Exact),
            ("this evening", "2026-12-02 18:00", PartOfDay),
            ("seven in the evening", "2026-12-02 19:00", Exact),
            ("two in the afternoon", "2026-12-02 14:00", Exact),
            // 10 a.m. today has passed and no day was named: tomorrow's.
            ("10 in the morning", "2026-12-03 10:00", Exact),
            ("Amaro at 10 works.", "2026-12-03 10:00", Exact),
            ("at 9", "2026-12-03 09:00", Exact),
            // The morning is not over: the first half hour 30 minutes away.
            ("this morning", "2026-12-02 11:00", PartOfDay),
            ("Morning is fine.", "2026-12-02 11:00", PartOfDay),
            ("Monday afternoon", "2026-12-07 14:00", PartOfDay),
            ("lunchtime tomorrow", "2026-12-03 12:00", PartOfDay),
            ("at noon tomorrow", "2026-12-03 12:00", Exact),
            ("noon", "2026-12-02 12:00", Exact),
            ("the day after tomorrow at 9", "2026-12-04 09:00", Exact),
            ("After tomorrow at nine.", "2026-12-04 09:00", Exact),
            // "The day after tomorrow at nine" as Whisper tiny heard it.
            ("But then after tomorrow at 9.", "2026-12-04 09:00", Exact),
            ("three", "2026-12-02 15:00", Exact),
            ("3 works", "2026-12-02 15:00", Exact),
            ("How about three?", "2026-12-02 15:00", Exact),
            ("three thirty", "2026-12-02 15:30", Exact),
            ("two forty five", "2026-12-02 14:45", Exact),
            ("two oh five", "2026-12-02 14:05", Exact),
            ("at 15:00", "2026-12-02 15:00", Exact),
            ("3 o'clock tomorrow", "2026-12-03 15:00", Exact),
            ("9 a.m. Thursday", "2026-12-03 09:00", Exact),
            ("Thursday at 5:30 p.m.", "2026-12-03 17:30", Exact),
            ("this Friday at 4", "2026-12-04 16:00", Exact),
            ("Friday", "2026-12-04 10:00", Day),
            ("tomorrow", "2026-12-03 10:00", Day),
            ("next Friday", "2026-12-11 10:00", Day),
            // Today's weekday, its time passed: next week's.
            ("Wednesday", "2026-12-09 10:00", Day),
            ("Wednesday afternoon", "2026-12-02 14:00", PartOfDay),
            ("Thursday next week", "2026-12-10 10:00", Day),
            ("next week", "2026-12-07 10:00", Day),
            ("the weekend", "2026-12-05 10:00", Day),
            ("in 3 days", "2026-12-05 10:00", Day),
            ("today", "2026-12-02 11:00", Day),
            // A number next to a day is its hour, one elsewhere in the sentence is not.
            ("Friday 10", "2026-12-04 10:00", Exact),
            ("Tomorrow. I have 3 kids at home", "2026-12-03 10:00", Day),
            ("Not today, maybe tomorrow at 3", "2026-12-03 15:00", Exact),
            ("between 2 and 4", "2026-12-02 14:00", Exact),
        ],
    );
}

#[test]
fn new_york_phrasings() {
    assert_eq!(ny_now().weekday(), Weekday::Fri);
    check(
        ny_now(),
        &CallingWindow::legal(),
        &[
            ("tomorrow at 9", "2026-06-20 09:00", Exact),
            ("Monday", "2026-06-22 10:00", Day),
            ("next Monday", "2026-06-22 10:00", Day),
            ("Friday", "2026-06-26 10:00", Day),
            ("next Friday", "2026-06-26 10:00", Day),
            ("later today", "2026-06-19 19:00", PartOfDay),
            ("tonight", "2026-06-19 19:00", PartOfDay),
            ("in 20 minutes", "2026-06-19 17:00", Exact),
            ("at 5", "2026-06-19 17:00", Exact),
            ("at 4", "2026-06-20 16:00", Exact),
            ("the 1st", "2026-07-01 10:00", Day),
            ("July 4th at noon", "2026-07-04 12:00", Exact),
            ("January 3", "2027-01-03 10:00", Day),
            ("Sunday evening", "2026-06-21 18:00", PartOfDay),
        ],
    );
}

#[test]
fn errors() {
    let legal = CallingWindow::legal();
    let now = la_now();
    for text in [
        "yesterday",
        "yesterday at 3",
        "last Friday",
        "last night",
        "two hours ago",
        "December 1st",
        "today at 9 am",
    ] {
        assert_eq!(
            parse_time(text, now, &legal),
            Err(TimeError::Past),
            "{text:?}"
        );
    }
    for text in [
        "",
        "   ",
        "How much does it cost?",
        "No, really, I am not interested.",
        "I have three kids",
        "Three kids.",
        "Yeah, we own it.",
        "About two hundred dollars a month.",
        "$150",
        "Wait a second",
        "February 30",
        "this week",
        "Not today.",
        "I work until 5",
    ] {
        assert_eq!(
            parse_time(text, now, &legal),
            Err(TimeError::NoTime),
            "{text:?}"
        );
    }
    // The afternoon is over at 16:40.
    assert_eq!(
        parse_time("this afternoon", ny_now(), &legal),
        Err(TimeError::Past)
    );
    assert_eq!(parse_time("June 1", ny_now(), &legal), Err(TimeError::Past));
}

fn outside(text: &str, now: DateTime<Tz>, window: &CallingWindow) -> String {
    match parse_time(text, now, window) {
        Err(TimeError::OutsideWindow { suggestion }) => {
            suggestion.format("%Y-%m-%d %H:%M").to_string()
        }
        other => panic!("{text:?}: expected OutsideWindow, got {other:?}"),
    }
}

#[test]
fn outside_the_window_suggests_the_nearest_time() {
    let legal = CallingWindow::legal();
    let now = la_now();
    // Too late: an hour before closing; too early: the opening.
    assert_eq!(outside("at 11 pm", now, &legal), "2026-12-02 20:00");
    assert_eq!(outside("Sunday at 10 pm", now, &legal), "2026-12-06 20:00");
    assert_eq!(
        outside("tomorrow at 9 at night", now, &legal),
        "2026-12-03 20:00"
    );
    assert_eq!(outside("6 am", now, &legal), "2026-12-03 08:00");
    assert_eq!(outside("midnight", now, &legal), "2026-12-03 08:00");
    // Closing hour already passed today: tomorrow's opening.
    let late = local(Los_Angeles, 2026, 12, 2, 20, 30);
    assert_eq!(outside("at 11 pm", late, &legal), "2026-12-03 08:00");
    assert_eq!(outside("today", late, &legal), "2026-12-03 08:00");

    let campaign = CallingWindow::parse("09:00", "17:00").expect("valid");
    assert_eq!(outside("at 6 pm", now, &campaign), "2026-12-02 16:00");
    assert_eq!(outside("at 6", now, &campaign), "2026-12-02 16:00");
    assert_eq!(
        outside("tomorrow evening", now, &campaign),
        "2026-12-03 16:00"
    );
    assert_eq!(outside("at 8", now, &campaign), "2026-12-03 09:00");
    // The legal window takes 6 p.m.
    check(now, &legal, &[("at 6 pm", "2026-12-02 18:00", Exact)]);
    check(now, &campaign, &[("at 4:30", "2026-12-02 16:30", Exact)]);
    // A day alone lands inside a window that opens after 10.
    let late_start = CallingWindow::parse("11:30", "17:00").expect("valid");
    check(now, &late_start, &[("Friday", "2026-12-04 11:30", Day)]);
}

#[test]
fn dst_transitions_resolve_to_real_instants() {
    let legal = CallingWindow::legal();
    let utc = |t: DateTime<Tz>| t.with_timezone(&Utc).format("%F %R").to_string();
    let la = la_naive;

    // Spring forward: 2026-03-08 02:00 PST -> 03:00 PDT.
    let before = local(Los_Angeles, 2026, 3, 7, 20, 0);
    let gap = localize(Los_Angeles, la(2026, 3, 8, 2, 30), before).expect("resolves");
    assert_eq!(utc(gap), "2026-03-08 10:00"); // 03:00 PDT, first instant after the gap
    assert_eq!(gap.format("%R %Z").to_string(), "03:00 PDT");
    for text in [
        "tomorrow at 2:30 am",
        "tomorrow at 2 a.m.",
        "tomorrow at 1:59 am",
    ] {
        assert_eq!(
            outside(text, before, &legal),
            "2026-03-08 08:00",
            "{text:?}"
        );
    }
    let ten = parse_time("tomorrow at 10", before, &legal).expect("in window");
    assert_eq!(utc(ten.at), "2026-03-08 17:00");
    assert_eq!(store_time(&ten), "2026-03-08T10:00:00-07:00");
    // Two real hours from 01:30 PST is 04:30 PDT.
    let night = local(Los_Angeles, 2026, 3, 8, 1, 30);
    assert_eq!(outside("in two hours", night, &legal), "2026-03-08 08:00");

    // Fall back: 2026-11-01 02:00 PDT -> 01:00 PST; 01:30 happens twice.
    let before = local(Los_Angeles, 2026, 10, 31, 20, 0);
    let twice = la(2026, 11, 1, 1, 30);
    assert_eq!(
        utc(localize(Los_Angeles, twice, before).expect("resolves")),
        "2026-11-01 08:30"
    );
    // Once the first 01:30 has passed, the second.
    let between = Los_Angeles.from_utc_datetime(&la(2026, 11, 1, 8, 40));
    assert_eq!(
        utc(localize(Los_Angeles, twice, between).expect("resolves")),
        "2026-11-01 09:30"
    );
    assert_eq!(
        outside("tomorrow at 1:30 am", before, &legal),
        "2026-11-01 08:00"
    );
    let ten = parse_time("tomorrow at 10", before, &legal).expect("in window");
    assert_eq!(utc(ten.at), "2026-11-01 18:00");
    assert_eq!(store_time(&ten), "2026-11-01T10:00:00-08:00");
    let just_after = local(Los_Angeles, 2026, 11, 1, 0, 30);
    assert_eq!(
        outside("in two hours", just_after, &legal),
        "2026-11-01 08:00"
    );
    for text in [
        "at 1 am",
        "at 2",
        "1:30 in the morning",
        "half past one at night",
    ] {
        let _ = parse_time(text, just_after, &legal);
        let _ = parse_time(text, between, &legal);
    }
}

#[test]
fn speaking() {
    let at = |h, m| local(Los_Angeles, 2026, 12, 2, h, m);
    let say = |h, m, precision| {
        speak_time(&SlotTime {
            at: at(h, m),
            precision,
        })
    };
    assert_eq!(say(15, 0, Exact), "Wednesday, December 2 at 3 p.m.");
    assert_eq!(say(15, 30, Exact), "Wednesday, December 2 at 3:30 p.m.");
    assert_eq!(say(9, 5, Exact), "Wednesday, December 2 at 9:05 a.m.");
    assert_eq!(say(12, 0, Exact), "Wednesday, December 2 at noon");
    assert_eq!(say(12, 30, Exact), "Wednesday, December 2 at 12:30 p.m.");
    assert_eq!(say(0, 0, Exact), "Wednesday, December 2 at midnight");
    assert_eq!(
        say(10, 0, PartOfDay),
        "Wednesday, December 2 in the morning"
    );
    assert_eq!(say(12, 0, PartOfDay), "Wednesday, December 2 around noon");
    assert_eq!(
        say(14, 0, PartOfDay),
        "Wednesday, December 2 in the afternoon"
    );
    assert_eq!(
        say(19, 0, PartOfDay),
        "Wednesday, December 2 in the evening"
    );
    assert_eq!(say(10, 0, Day), "Wednesday, December 2");

    let legal = CallingWindow::legal();
    let spoken = |text: &str| speak_time(&parse_time(text, la_now(), &legal).expect(text));
    assert_eq!(
        spoken("Friday morning"),
        "Friday, December 4 in the morning"
    );
    assert_eq!(spoken("tomorrow"), "Thursday, December 3");
    assert_eq!(
        spoken("Tomorrow at 10 works."),
        "Thursday, December 3 at 10 a.m."
    );
    assert_eq!(spoken("at noon tomorrow"), "Thursday, December 3 at noon");
    assert_eq!(
        spoken("December 5th at 2:30 pm"),
        "Saturday, December 5 at 2:30 p.m."
    );
    assert_eq!(spoken("tonight"), "Wednesday, December 2 in the evening");
}

#[test]
fn storing_round_trips() {
    let legal = CallingWindow::legal();
    let t = parse_time("tomorrow at 3 pm", la_now(), &legal).expect("time");
    assert_eq!(store_time(&t), "2026-12-03T15:00:00-08:00");
    let t = parse_time("Friday morning", la_now(), &legal).expect("time");
    assert_eq!(store_time(&t), "2026-12-04T10:00:00-08:00~");
    let t = parse_time("tomorrow", la_now(), &legal).expect("time");
    assert_eq!(store_time(&t), "2026-12-03T10:00:00-08:00~day");
    for text in [
        "tomorrow at 3 pm",
        "Friday morning",
        "tomorrow",
        "in 30 minutes",
    ] {
        let t = parse_time(text, la_now(), &legal).expect(text);
        assert_eq!(
            stored_time(&store_time(&t), Los_Angeles),
            Some(t),
            "{text:?}"
        );
    }
    // Read in another zone, the instant is the same.
    let t = stored_time("2026-12-03T15:00:00-08:00", New_York).expect("valid");
    assert_eq!(t.at.format("%H:%M").to_string(), "18:00");
    assert_eq!(t.precision, Exact);
    for bad in [
        "",
        "~",
        "~day",
        "tomorrow",
        "2026-12-03 15:00",
        "2026-13-03T15:00:00-08:00",
    ] {
        assert_eq!(stored_time(bad, Los_Angeles), None, "{bad:?}");
    }
}

#[test]
fn numbers() {
    for (text, want) in [
        ("200", 200.0),
        ("$1,200", 1200.0),
        ("$1,200.50 a month", 1200.5),
        ("two hundred", 200.0),
        ("About two hundred dollars a month.", 200.0),
        ("a hundred and fifty", 150.0),
        ("one fifty", 150.0),
        ("one oh five", 105.0),
        ("twelve hundred", 1200.0),
        ("twenty five hundred", 2500.0),
        ("ninety", 90.0),
        ("about 90 bucks", 90.0),
        ("forty-five", 45.0),
        ("three hundred twenty five", 325.0),
        ("two thousand and five", 2005.0),
        ("2.5k", 2500.0),
        ("5 grand", 5000.0),
        ("2 hundred", 200.0),
        ("a thousand", 1000.0),
        ("a couple hundred", 200.0),
        ("$150", 150.0),
        ("It's like 150, maybe 200", 150.0),
        ("zero", 0.0),
    ] {
        assert_eq!(parse_number(text), Some(want), "{text:?}");
    }
    for text in [
        "",
        "nothing",
        "I don't know",
        "a lot",
        "a couple",
        "what?",
        "and",
    ] {
        assert_eq!(parse_number(text), None, "{text:?}");
    }
}

#[test]
fn yes_no() {
    for text in [
        "yes",
        "Yeah.",
        "Yep!",
        "Sure.",
        "Correct.",
        "I do.",
        "We do",
        "Absolutely.",
        "Of course.",
        "Yeah, we own it.",
        "Uh-huh.",
        "Yes, I do.",
        "Sure, why not.",
        "I think so.",
    ] {
        assert_eq!(parse_yes_no(text), Some(true), "{text:?}");
    }
    for text in [
        "no",
        "Nope.",
        "Nah.",
        "I don't.",
        "We don't.",
        "Not really.",
        "No, we rent.",
        "Of course not.",
        "No, I don't.",
        "I don’t think so.",
        "We're not.",
    ] {
        assert_eq!(parse_yes_no(text), Some(false), "{text:?}");
    }
    for text in [
        "",
        "maybe",
        "What?",
        "Is this a sales call?",
        "Yes, no wait.",
        "Yeah, no.",
        "I'm not sure.",
        "I don't know.",
        "We rent.",
        "Who is this",
        "I have no idea",
        "I do not know.",
    ] {
        assert_eq!(parse_yes_no(text), None, "{text:?}");
    }
}

/// Tiny deterministic generator (Knuth's MMIX LCG) so the junk is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = usize::try_from(self.next()).unwrap_or(0) % items.len();
        items.get(i).copied().unwrap_or("")
    }
}

#[test]
fn junk_never_panics() {
    const VOCAB: &[&str] = &[
        "at",
        "in",
        "the",
        "a",
        "an",
        "tomorrow",
        "today",
        "tonight",
        "yesterday",
        "day",
        "after",
        "next",
        "last",
        "this",
        "coming",
        "week",
        "weekend",
        "friday",
        "sundays",
        "quarter",
        "half",
        "past",
        "to",
        "of",
        "oh",
        "o",
        "clock",
        "o'clock",
        "p.m.",
        "a.m.",
        "pm",
        "am",
        "p",
        "m",
        "noon",
        "midnight",
        "morning",
        "night",
        "evening",
        "lunch",
        "later",
        "ago",
        "from",
        "now",
        "and",
        "couple",
        "few",
        "hour",
        "hours",
        "minutes",
        "days",
        "weeks",
        "december",
        "february",
        "may",
        "5th",
        "31st",
        "0th",
        "twenty",
        "thirty",
        "first",
        "second",
        "twelve",
        "thirteen",
        "zero",
        "one",
        "two",
        "nine",
        "hundred",
        "thousand",
        "grand",
        "million",
        "k",
        "0",
        "00",
        "12",
        "24",
        "99",
        "3:30",
        "24:61",
        "0:00",
        "9.45",
        "12/5",
        "2/30/2026",
        "13/40",
        "1/1/1",
        "99999999999999999999",
        "1.5",
        "2.5k",
        "$1,200",
        "1,2,3",
        "1..2",
        "2026",
        "2100",
        "yes",
        "no",
        "not",
        "sure",
        "i",
        "dont",
        "don't",
        "of course",
        "?",
        ",",
        ".",
        "-",
        "’",
        "٣",
        "é",
        "🙂",
        "\u{0}",
        "uh",
        "works",
        "kids",
    ];
    let legal = CallingWindow::legal();
    let narrow = CallingWindow::parse("09:00", "17:00").expect("valid");
    let nows = [
        la_now(),
        ny_now(),
        local(Los_Angeles, 2026, 3, 8, 1, 30),
        // 01:15 PST, the second pass through the repeated hour.
        Los_Angeles.from_utc_datetime(&la_naive(2026, 11, 1, 9, 15)),
        local(Los_Angeles, 2026, 12, 31, 23, 59),
        local(chrono_tz::Pacific::Apia, 2011, 12, 29, 20, 0),
        DateTime::<Utc>::MAX_UTC.with_timezone(&chrono_tz::UTC),
        DateTime::<Utc>::MIN_UTC.with_timezone(&chrono_tz::Asia::Tokyo),
        DateTime::<Utc>::MIN_UTC.with_timezone(&Los_Angeles),
        DateTime::<Utc>::MAX_UTC.with_timezone(&chrono_tz::Asia::Tokyo),
    ];
    let mut rng = Lcg(42);
    for n in 0..4000 {
        let text: String = if n % 2 == 0 {
            let len = rng.next() % 12;
            (0..len)
                .map(|_| rng.pick(VOCAB))
                .collect::<Vec<_>>()
                .join(if n % 4 == 0 { " " } else { "" })
        } else {
            let len = rng.next() % 40;
            (0..len)
                .filter_map(|_| char::from_u32(u32::try_from(rng.next() % 0x250).unwrap_or(0)))
                .collect()
        };
        let _ = parse_number(&text);
        let _ = parse_yes_no(&text);
        for (k, now) in nows.iter().enumerate() {
            let window = if k % 2 == 0 { &legal } else { &narrow };
            if let Ok(t) = parse_time(&text, *now, window) {
                assert!(t.at > *now, "{text:?}");
                let local = t.at.time();
                assert!(window.start <= local && local < window.end, "{text:?}");
                let _ = speak_time(&t);
                if k < 5 {
                    assert_eq!(
                        stored_time(&store_time(&t), now.timezone()),
                        Some(t),
                        "{text:?}"
                    );
                }
            }
        }
    }
}

/// How Whisper tiny writes times it heard on the phone line when primed with how times sound
/// (the ear probe): "4. 30" for 4:30, "after noon", a bare hour after "around".
#[test]
fn times_as_the_ear_writes_them() {
    check(
        la_now(),
        &CallingWindow::legal(),
        &[
            ("Thursday at 4. 30 p.m.", "2026-12-03 16:30", Exact),
            ("How about Friday at 1. 30.", "2026-12-04 13:30", Exact),
            ("Tomorrow evening at 7. 30.", "2026-12-03 19:30", Exact),
            ("The day after tomorrow at 9.", "2026-12-04 09:00", Exact),
            (
                "Tomorrow after noon would be better.",
                "2026-12-03 14:00",
                PartOfDay,
            ),
            ("Saturday around 4.", "2026-12-05 16:00", Exact),
            ("Later today, around 5.", "2026-12-02 17:00", Exact),
            ("Monday at half past 2.", "2026-12-07 14:30", Exact),
            ("Next Tuesday at 10.", "2026-12-08 10:00", Exact),
            (
                "Call me back next Monday at 9 a.m.",
                "2026-12-07 09:00",
                Exact,
            ),
            ("Call me tomorrow around noon.", "2026-12-03 12:00", Exact),
        ],
    );
}
