//! Schedules with business calendars: data-driven cases on England's bank holidays,
//! across DST changes, month ends and year ends, and properties of `SKIP`, `NEXT`,
//! `PREV` and `BD` over random rows and calendars.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use dwsched_model::ScheduleRow;

use crate::calendar::tests::england;
use crate::{Calendar, Fire, Schedule, ScheduleParser, format_slot, to_local};

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn row(code: &str, dd: Option<&str>, hh: i64, mi: i64) -> ScheduleRow {
    ScheduleRow {
        jobschid: 7,
        mapref: "LOAD".into(),
        frqcd: Some(code.into()),
        frqdd: dd.map(str::to_string),
        frqhh: Some(hh),
        frqmi: Some(mi),
        timezone: Some("Europe/London".into()),
        ..ScheduleRow::default()
    }
}

fn with_calendar(mut row: ScheduleRow, name: &str, rule: &str) -> ScheduleRow {
    row.calnm = Some(name.into());
    row.calrule = Some(rule.into());
    row
}

fn parse(row: &ScheduleRow, calendars: Vec<Calendar>) -> Schedule {
    ScheduleParser::with_calendars(calendars)
        .parse(row, Tz::UTC)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Fires as `at <- slot` (`at` alone when it is the slot's own time), RFC 3339 UTC.
fn shown(fires: &[Fire]) -> Vec<String> {
    fires
        .iter()
        .map(|f| {
            if f.is_moved() {
                format!("{} <- {}", format_slot(f.at), format_slot(f.slot))
            } else {
                format_slot(f.at)
            }
        })
        .collect()
}

fn fires(schedule: &Schedule, after: &str, count: usize) -> Vec<String> {
    shown(&schedule.fires_after(utc(after), count))
}

#[test]
fn business_day_n_of_the_month() {
    // BD -1: the last business day; 31 August 2026 is a bank holiday, 31 December a
    // Thursday, and the year ends with Boxing Day moved to Monday 28th.
    let last = parse(
        &with_calendar(row("BD", Some("-1"), 18, 0), "ENGLAND", "SKIP"),
        vec![england()],
    );
    assert_eq!(
        fires(&last, "2026-07-31T17:00:00Z", 6),
        [
            "2026-08-28T17:00:00Z", // BST
            "2026-09-30T17:00:00Z",
            "2026-10-30T18:00:00Z", // GMT from 25 October
            "2026-11-30T18:00:00Z",
            "2026-12-31T18:00:00Z",
            "2027-01-29T18:00:00Z",
        ]
    );
    // BD 3: the third business day, after New Year's Day on a Friday.
    let third = parse(
        &with_calendar(row("BD", Some("3"), 6, 30), "ENGLAND", "SKIP"),
        vec![england()],
    );
    assert_eq!(
        fires(&third, "2026-12-01T00:00:00Z", 2),
        ["2026-12-03T06:30:00Z", "2027-01-06T06:30:00Z"]
    );
    // Without a calendar, BD counts Monday to Friday: 1 January 2027 counts.
    let plain = parse(&row("BD", Some("1"), 6, 30), vec![]);
    assert_eq!(
        fires(&plain, "2026-12-15T00:00:00Z", 2),
        ["2027-01-01T06:30:00Z", "2027-02-01T06:30:00Z"]
    );
}

#[test]
fn skip_drops_the_slots_on_holidays_and_weekends() {
    let daily = parse(
        &with_calendar(row("DL", None, 2, 0), "ENGLAND", "SKIP"),
        vec![england()],
    );
    // Christmas: Fri 25 holiday, the weekend, Mon 28 (Boxing Day substitute).
    assert_eq!(
        fires(&daily, "2026-12-23T12:00:00Z", 3),
        [
            "2026-12-24T02:00:00Z",
            "2026-12-29T02:00:00Z",
            "2026-12-30T02:00:00Z"
        ]
    );
    assert_eq!(
        daily.calendar_note(utc("2026-12-25T02:00:00Z")).as_deref(),
        Some("Christmas Day")
    );
    assert_eq!(
        daily.calendar_note(utc("2026-12-26T02:00:00Z")).as_deref(),
        Some("weekend")
    );
    assert_eq!(daily.calendar_note(utc("2026-12-24T02:00:00Z")), None);
}

#[test]
fn next_moves_a_slot_to_the_next_business_day_and_keeps_it() {
    // The Monday job moves to Tuesday after Easter Monday, and keeps its own slot.
    let monday = parse(
        &with_calendar(row("WK", Some("MON"), 7, 0), "ENGLAND", "NEXT"),
        vec![england()],
    );
    assert_eq!(
        fires(&monday, "2026-03-31T00:00:00Z", 3),
        [
            "2026-04-07T06:00:00Z <- 2026-04-06T06:00:00Z",
            "2026-04-13T06:00:00Z",
            "2026-04-20T06:00:00Z"
        ]
    );
    // A fire moved before `after` but landing after it still comes.
    assert_eq!(
        fires(&monday, "2026-04-06T12:00:00Z", 1),
        ["2026-04-07T06:00:00Z <- 2026-04-06T06:00:00Z"]
    );
    // Month end on a holiday, into the next month and year: 25 December → 29th, and
    // 1 January 2027 (Friday) → Monday 4th.
    let monthly = parse(
        &with_calendar(row("MN", Some("1"), 5, 0), "ENGLAND", "NEXT"),
        vec![england()],
    );
    assert_eq!(
        fires(&monthly, "2026-12-15T00:00:00Z", 2),
        [
            "2027-01-04T05:00:00Z <- 2027-01-01T05:00:00Z",
            "2027-02-01T05:00:00Z"
        ]
    );
    // A daily load over a long weekend: each slot fires once, in slot order.
    let daily = parse(
        &with_calendar(row("DL", None, 2, 0), "ENGLAND", "NEXT"),
        vec![england()],
    );
    assert_eq!(
        fires(&daily, "2026-04-02T12:00:00Z", 6),
        [
            "2026-04-07T01:00:00Z <- 2026-04-03T01:00:00Z",
            "2026-04-07T01:00:00Z <- 2026-04-04T01:00:00Z",
            "2026-04-07T01:00:00Z <- 2026-04-05T01:00:00Z",
            "2026-04-07T01:00:00Z <- 2026-04-06T01:00:00Z",
            "2026-04-07T01:00:00Z",
            "2026-04-08T01:00:00Z",
        ]
    );
}

#[test]
fn prev_moves_back_but_never_before_the_previous_fire() {
    let monthly = parse(
        &with_calendar(row("MN", Some("25"), 9, 0), "ENGLAND", "PREV"),
        vec![england()],
    );
    assert_eq!(
        fires(&monthly, "2026-11-30T00:00:00Z", 2),
        [
            "2026-12-24T09:00:00Z <- 2026-12-25T09:00:00Z",
            "2027-01-25T09:00:00Z"
        ]
    );
    // Every six hours: Saturday's and Sunday's slots (from Saturday 00:00 BST) go back
    // to Friday, and no earlier than Friday's last fire, 18:00 BST (17:00Z).
    let mut six_hourly = with_calendar(row("ID", None, 6, 0), "ENGLAND", "PREV");
    six_hourly.strtdt = Some(local("2026-06-01 00:00"));
    let six_hourly = parse(&six_hourly, vec![england()]);
    let got = fires(&six_hourly, "2026-06-05T16:00:00Z", 10);
    assert_eq!(
        got,
        [
            "2026-06-05T17:00:00Z",
            "2026-06-05T17:00:00Z <- 2026-06-05T23:00:00Z",
            "2026-06-05T17:00:00Z <- 2026-06-06T05:00:00Z",
            "2026-06-05T17:00:00Z <- 2026-06-06T11:00:00Z",
            "2026-06-05T17:00:00Z <- 2026-06-06T17:00:00Z",
            "2026-06-05T17:00:00Z <- 2026-06-06T23:00:00Z",
            "2026-06-05T17:00:00Z <- 2026-06-07T05:00:00Z",
            "2026-06-05T17:00:00Z <- 2026-06-07T11:00:00Z",
            "2026-06-05T17:00:00Z <- 2026-06-07T17:00:00Z",
            // Midnight BST, Monday.
            "2026-06-07T23:00:00Z",
        ],
        "{got:#?}"
    );
}

fn local(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
}

#[test]
fn moved_fires_keep_the_rules_wall_clock_time_across_dst() {
    // Every day is a work day; 8 March 2026 (New York springs forward, 02:30 does not
    // exist) and 1 November (01:30 happens twice) are holidays.
    let every_day = Calendar::new(
        "NY",
        &crate::parse_workdays("MON,TUE,WED,THU,FRI,SAT,SUN").unwrap(),
    )
    .with_holiday(
        NaiveDate::from_ymd_opt(2026, 3, 8).unwrap(),
        "spring forward",
    )
    .with_holiday(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(), "fall back");
    let mut spring = with_calendar(row("DL", None, 2, 30), "NY", "NEXT");
    spring.timezone = Some("America/New_York".into());
    let spring = parse(&spring, vec![every_day.clone()]);
    assert_eq!(
        fires(&spring, "2026-03-07T12:00:00Z", 2),
        [
            // The slot in the gap (03:00 EDT) fires on the 9th at 02:30.
            "2026-03-09T06:30:00Z <- 2026-03-08T07:00:00Z",
            "2026-03-09T06:30:00Z"
        ]
    );
    let mut fall = with_calendar(row("DL", None, 1, 30), "NY", "PREV");
    fall.timezone = Some("America/New_York".into());
    let fall = parse(&fall, vec![every_day]);
    assert_eq!(
        fires(&fall, "2026-10-30T12:00:00Z", 3),
        [
            "2026-10-31T05:30:00Z",
            "2026-10-31T05:30:00Z <- 2026-11-01T05:30:00Z",
            "2026-11-02T06:30:00Z"
        ]
    );
}

#[test]
fn an_unknown_calendar_or_rule_is_named() {
    let unknown = with_calendar(row("DL", None, 2, 0), "NOPE", "SKIP");
    let err = ScheduleParser::with_calendars(vec![england()])
        .parse(&unknown, Tz::UTC)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "CALNM 'NOPE': no such calendar in DMS_CALENDAR"
    );
    let bad_rule = with_calendar(row("DL", None, 2, 0), "ENGLAND", "LATER");
    let err = ScheduleParser::with_calendars(vec![england()])
        .parse(&bad_rule, Tz::UTC)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "CALRULE 'LATER': expected SKIP, NEXT or PREV"
    );
    for bad in ["0", "24", "-24", "L", "x"] {
        let err = ScheduleParser::default()
            .parse(&row("BD", Some(bad), 2, 0), Tz::UTC)
            .unwrap_err();
        assert_eq!(err.field, "FRQDD", "{bad}");
    }
}

mod properties {
    use super::*;
    use crate::HolidayRule;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const CODES: [&str; 5] = ["DL", "WK", "MN", "ID", "BD"];
    const ZONES: [&str; 4] = [
        "UTC",
        "Europe/London",
        "America/New_York",
        "Australia/Sydney",
    ];

    fn any_calendar() -> impl Strategy<Value = Calendar> {
        (
            prop::collection::vec(0_i64..800, 0..40),
            prop_oneof![
                Just("MON,TUE,WED,THU,FRI"),
                Just("SUN,MON,TUE,WED,THU"),
                Just("MON,WED,FRI")
            ],
        )
            .prop_map(|(days, workdays)| {
                let mut calendar = Calendar::new("CAL", &crate::parse_workdays(workdays).unwrap());
                for day in days {
                    let date = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Duration::days(day);
                    calendar.add_holiday(date, format!("holiday {day}"));
                }
                calendar
            })
    }

    fn any_row() -> impl Strategy<Value = ScheduleRow> {
        (
            0..CODES.len(),
            0..ZONES.len(),
            0_i64..24,
            0_i64..60,
            1_u32..=31,
            prop_oneof![1_i32..=12, -12_i32..=-1],
            prop_oneof![Just("SKIP"), Just("NEXT"), Just("PREV")],
        )
            .prop_map(|(code, zone, hh, mi, day, business_day, rule)| {
                let code = CODES[code];
                let mut row = with_calendar(
                    row(
                        code,
                        match code {
                            "WK" => Some("MON".to_string()),
                            "MN" => Some(day.to_string()),
                            "BD" => Some(business_day.to_string()),
                            _ => None,
                        }
                        .as_deref(),
                        if code == "ID" { 1 + hh % 7 } else { hh },
                        mi,
                    ),
                    "CAL",
                    rule,
                );
                row.timezone = Some(ZONES[zone].into());
                row.strtdt = Some(local("2026-01-01 00:00"));
                row
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Every slot of a window fires once (`NEXT`, `PREV`) or once when it is on a
        /// business day (`SKIP`); every fire is on a business day; fires come in time
        /// order; and the fires after an instant are the same wherever the
        /// enumeration started.
        #[test]
        fn each_slot_fires_once_on_a_business_day(row in any_row(), calendar in any_calendar(), offset in 0_i64..(300 * 24 * 60)) {
            let schedule = parse(&row, vec![calendar.clone()]);
            let zone = schedule.zone;
            let from = utc("2026-02-01T00:00:00Z") + Duration::minutes(offset);
            let to = from + Duration::days(60);
            let fires: Vec<Fire> = schedule.fires(from).take_while(|f| f.at <= to).collect();
            for pair in fires.windows(2) {
                prop_assert!(pair[0].at <= pair[1].at, "{:?} after {:?}", pair[0], pair[1]);
            }
            let business = |t: DateTime<Utc>| calendar.is_business_day(to_local(zone, t).date());
            for fire in &fires {
                prop_assert!(fire.at > from);
                prop_assert!(business(fire.at), "{fire:?} is not on a business day");
            }
            let mut by_slot: HashMap<DateTime<Utc>, usize> = HashMap::new();
            for fire in &fires {
                *by_slot.entry(fire.slot).or_default() += 1;
            }
            prop_assert!(by_slot.values().all(|n| *n == 1), "a slot fired twice: {fires:?}");
            // The slots well inside the window, and what became of each.
            let inner_from = from + Duration::days(10);
            let inner_to = to - Duration::days(10);
            let rule = schedule.calendar.as_ref().unwrap().rule;
            for slot in schedule.slots(inner_from).take_while(|s| *s <= inner_to) {
                let fired = by_slot.contains_key(&slot);
                match rule {
                    HolidayRule::Skip => prop_assert_eq!(fired, business(slot), "{}", slot),
                    HolidayRule::Next | HolidayRule::Prev => prop_assert!(fired, "slot {slot} never fired"),
                }
            }
            for fire in &fires {
                match rule {
                    HolidayRule::Next | HolidayRule::Skip => prop_assert!(fire.at >= fire.slot),
                    HolidayRule::Prev => prop_assert!(fire.at <= fire.slot),
                }
            }
            // Starting later gives the same fires from there on.
            let later = from + Duration::days(20);
            let expected: Vec<Fire> = fires.iter().copied().filter(|f| f.at > later).collect();
            let again: Vec<Fire> = schedule.fires(later).take_while(|f| f.at <= to).collect();
            prop_assert_eq!(again, expected);
        }

        /// `BD -1` is a business day, and the last of its month.
        #[test]
        fn bd_minus_one_is_the_last_business_day(calendar in any_calendar(), offset in 0_i64..(300 * 24 * 60)) {
            let schedule = parse(&with_calendar(row("BD", Some("-1"), 17, 0), "CAL", "SKIP"), vec![calendar.clone()]);
            let after = utc("2026-01-01T00:00:00Z") + Duration::minutes(offset);
            for fire in schedule.fires_after(after, 6) {
                let day = to_local(schedule.zone, fire.at).date();
                prop_assert!(calendar.is_business_day(day));
                let later_in_month = day.iter_days().skip(1).take_while(|d| d.month() == day.month());
                for other in later_in_month {
                    prop_assert!(!calendar.is_business_day(other), "{other} is a later business day than {day}");
                }
            }
        }
    }
}
