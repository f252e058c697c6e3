use super::spreadsheet_safe;

#[test]
fn formulas_are_defused_and_phone_numbers_kept() {
    for (cell, want) in [
        ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("+14155550123", "+14155550123"),
        ("+1 415 555 0123", "'+1 415 555 0123"),
        ("Ann", "Ann"),
        ("a=b; c=-1", "a=b; c=-1"),
        ("", ""),
    ] {
        assert_eq!(spreadsheet_safe(cell), want, "{cell:?}");
    }
}
