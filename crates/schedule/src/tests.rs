//! Data-driven tests of the schedule rules: one builder for a row, one `fires` check.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;
use dwsched_model::ScheduleRow;

use crate::{MisfirePolicy, Schedule, parse_schedule, plan_fires, plan_misfires};

struct Row(ScheduleRow);

/// The times of a plan's fires.
fn times(fires: &[crate::Fire]) -> Vec<DateTime<Utc>> {
    fires.iter().map(|f| f.at).collect()
}

fn sched(code: &str) -> Row {
    Row(ScheduleRow {
        jobschid: 1,
        mapref: "JOB".into(),
        frqcd: Some(code.into()),
        ..ScheduleRow::default()
    })
}

fn local(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
}

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

impl Row {
    fn dd(mut self, day: &str) -> Self {
        self.0.frqdd = Some(day.into());
        self
    }
    fn at(mut self, hour: i64, minute: i64) -> Self {
        self.0.frqhh = Some(hour);
        self.0.frqmi = Some(minute);
        self
    }
    fn tz(mut self, zone: &str) -> Self {
        self.0.timezone = Some(zone.into());
        self
    }
    fn start(mut self, wall_clock: &str) -> Self {
        self.0.strtdt = Some(local(wall_clock));
        self
    }
    fn end(mut self, wall_clock: &str) -> Self {
        self.0.enddt = Some(local(wall_clock));
        self
    }
    fn cron(mut self, expression: &str) -> Self {
        self.0.cronexpr = Some(expression.into());
        self
    }
    fn misfire(mut self, policy: &str) -> Self {
        self.0.misfire = Some(policy.into());
        self
    }
    fn parse(&self) -> Schedule {
        parse_schedule(&self.0, Tz::UTC).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The fires after `after` are exactly `expected` (RFC 3339 UTC), then no more if
    /// `expected` is shorter than asked.
    fn fires(&self, after: &str, expected: &[&str]) {
        let got: Vec<String> = self
            .parse()
            .fires_after(utc(after), expected.len() + 1)
            .iter()
            .map(|f| crate::format_slot(f.at))
            .collect();
        assert_eq!(
            &got[..expected.len().min(got.len())],
            expected,
            "{:?}",
            self.0
        );
    }

    fn fails(&self, message: &str) {
        let err = parse_schedule(&self.0, Tz::UTC)
            .expect_err("invalid row")
            .to_string();
        assert_eq!(err, message);
    }
}

#[test]
fn interval_is_elapsed_time_from_the_start() {
    sched("ID").at(1, 30).start("2026-01-01 00:00").fires(
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-01T01:30:00Z",
            "2026-01-01T03:00:00Z",
            "2026-01-01T04:30:00Z",
        ],
    );
    sched("ID")
        .at(0, 45)
        .start("2026-01-01 00:00")
        .fires("2025-06-01T00:00:00Z", &["2026-01-01T00:00:00Z"]);
    // New York springs forward at 02:00 local on 2026-03-08: elapsed hours go on evenly.
    sched("ID")
        .at(1, 0)
        .tz("America/New_York")
        .start("2026-03-08 00:00")
        .fires(
            "2026-03-08T05:00:00Z",
            &[
                "2026-03-08T06:00:00Z",
                "2026-03-08T07:00:00Z",
                "2026-03-08T08:00:00Z",
            ],
        );
}

#[test]
fn daily_in_utc_and_india() {
    sched("DL").at(6, 30).fires(
        "2026-03-01T06:30:00Z",
        &["2026-03-02T06:30:00Z", "2026-03-03T06:30:00Z"],
    );
    sched("dl").at(9, 0).tz("Asia/Kolkata").fires(
        "2026-03-01T00:00:00Z",
        &["2026-03-01T03:30:00Z", "2026-03-02T03:30:00Z"],
    );
}

#[test]
fn daily_across_new_york_dst() {
    // 02:30 does not exist on 2026-03-08: it fires at 03:00 EDT.
    sched("DL").at(2, 30).tz("America/New_York").fires(
        "2026-03-07T00:00:00Z",
        &[
            "2026-03-07T07:30:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-09T06:30:00Z",
        ],
    );
    // 01:30 happens twice on 2026-11-01: it fires once, at the first (EDT).
    sched("DL").at(1, 30).tz("America/New_York").fires(
        "2026-10-31T12:00:00Z",
        &["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
    );
}

#[test]
fn daily_across_london_dst() {
    sched("DL").at(1, 30).tz("Europe/London").fires(
        "2026-03-28T12:00:00Z",
        &["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"],
    );
    sched("DL").at(1, 30).tz("Europe/London").fires(
        "2026-10-24T12:00:00Z",
        &["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
    );
}

#[test]
fn daily_across_lord_howe_half_hour_dst() {
    // Spring: 02:00 → 02:30 on 2026-10-04; 02:15 fires at 02:30 (+11:00).
    sched("DL").at(2, 15).tz("Australia/Lord_Howe").fires(
        "2026-10-02T12:00:00Z",
        &[
            "2026-10-02T15:45:00Z",
            "2026-10-03T15:30:00Z",
            "2026-10-04T15:15:00Z",
        ],
    );
    // Autumn: 02:00 → 01:30 on 2026-04-05; 01:45 fires once, at +11:00.
    sched("DL").at(1, 45).tz("Australia/Lord_Howe").fires(
        "2026-04-03T12:00:00Z",
        &[
            "2026-04-03T14:45:00Z",
            "2026-04-04T14:45:00Z",
            "2026-04-05T15:15:00Z",
        ],
    );
}

#[test]
fn weekly_and_fortnightly() {
    sched("WK").dd("mon").at(6, 0).fires(
        "2026-03-04T00:00:00Z",
        &["2026-03-09T06:00:00Z", "2026-03-16T06:00:00Z"],
    );
    // The first fire is the first Monday on or after the start, then every 14 days.
    sched("FN")
        .dd("MON")
        .at(6, 0)
        .start("2026-01-01 00:00")
        .fires(
            "2025-12-01T00:00:00Z",
            &[
                "2026-01-05T06:00:00Z",
                "2026-01-19T06:00:00Z",
                "2026-02-02T06:00:00Z",
            ],
        );
    sched("FN")
        .dd("MON")
        .at(6, 0)
        .start("2026-01-01 00:00")
        .fires(
            "2026-01-06T00:00:00Z",
            &["2026-01-19T06:00:00Z", "2026-02-02T06:00:00Z"],
        );
    // A start later that Monday than the fire time: the first fire is a week on.
    sched("FN")
        .dd("MON")
        .at(6, 0)
        .start("2026-01-05 10:00")
        .fires(
            "2026-01-01T00:00:00Z",
            &["2026-01-12T06:00:00Z", "2026-01-26T06:00:00Z"],
        );
}

#[test]
fn month_days_past_the_end_are_the_last_day() {
    sched("MN").dd("31").at(0, 0).fires(
        "2026-01-31T12:00:00Z",
        &[
            "2026-02-28T00:00:00Z",
            "2026-03-31T00:00:00Z",
            "2026-04-30T00:00:00Z",
        ],
    );
    sched("MN").dd("29").at(0, 0).fires(
        "2028-01-30T00:00:00Z",
        &["2028-02-29T00:00:00Z", "2028-03-29T00:00:00Z"],
    );
    sched("MN").dd("30").at(0, 0).fires(
        "2027-01-31T00:00:00Z",
        &["2027-02-28T00:00:00Z", "2027-03-30T00:00:00Z"],
    );
    sched("MN").dd("L").at(23, 0).fires(
        "2028-01-31T23:00:00Z",
        &["2028-02-29T23:00:00Z", "2028-03-31T23:00:00Z"],
    );
}

#[test]
fn quarterly_half_yearly_and_yearly() {
    sched("QT").dd("31").at(5, 0).fires(
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-31T05:00:00Z",
            "2026-04-30T05:00:00Z",
            "2026-07-31T05:00:00Z",
            "2026-10-31T05:00:00Z",
            "2027-01-31T05:00:00Z",
        ],
    );
    sched("HY").dd("31").at(5, 0).fires(
        "2026-02-01T00:00:00Z",
        &["2026-07-31T05:00:00Z", "2027-01-31T05:00:00Z"],
    );
    sched("YR").dd("31").at(5, 0).fires(
        "2026-01-31T05:00:00Z",
        &["2027-01-31T05:00:00Z", "2028-01-31T05:00:00Z"],
    );
}

#[test]
fn cron_with_five_and_six_fields() {
    sched("CR").cron("*/15 * * * *").fires(
        "2026-03-01T10:07:00Z",
        &["2026-03-01T10:15:00Z", "2026-03-01T10:30:00Z"],
    );
    sched("CR").cron("*/5 * * * * *").fires(
        "2026-03-01T10:00:00Z",
        &["2026-03-01T10:00:05Z", "2026-03-01T10:00:10Z"],
    );
    // The DST rules hold for cron too: 02:30 on the spring day fires at 03:00 EDT.
    sched("CR").cron("30 2 * * *").tz("America/New_York").fires(
        "2026-03-07T12:00:00Z",
        &["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"],
    );
    sched("CR").cron("30 1 * * *").tz("America/New_York").fires(
        "2026-10-31T12:00:00Z",
        &["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
    );
}

#[test]
fn start_and_end_bound_the_fires() {
    sched("DL")
        .at(6, 0)
        .start("2026-03-10 07:00")
        .fires("2026-03-01T00:00:00Z", &["2026-03-11T06:00:00Z"]);
    sched("DL")
        .at(6, 0)
        .start("2026-03-10 06:00")
        .fires("2026-03-01T00:00:00Z", &["2026-03-10T06:00:00Z"]);
    sched("DL").at(6, 0).end("2026-03-03 06:00").fires(
        "2026-03-01T00:00:00Z",
        &[
            "2026-03-01T06:00:00Z",
            "2026-03-02T06:00:00Z",
            "2026-03-03T06:00:00Z",
        ],
    );
    // Bounds are wall-clock times in the schedule's zone.
    sched("DL")
        .at(6, 0)
        .tz("Asia/Kolkata")
        .end("2026-03-02 05:59")
        .fires("2026-03-01T00:00:00Z", &["2026-03-01T00:30:00Z"]);
}

#[test]
fn invalid_rows_name_the_field_and_the_reason() {
    sched("XX")
        .fails("FRQCD 'XX': unknown code; use one of ID, DL, WK, FN, MN, QT, HY, YR, CR, BD");
    sched("WK")
        .dd("FUNDAY")
        .fails("FRQDD 'FUNDAY': expected a weekday MON..SUN");
    sched("WK").fails("FRQDD is empty: FRQCD WK needs a day");
    sched("MN")
        .dd("32")
        .fails("FRQDD '32': expected a day 1..31 or L (last day)");
    sched("MN")
        .dd("0")
        .fails("FRQDD '0': expected a day 1..31 or L (last day)");
    sched("DL")
        .at(24, 0)
        .fails("FRQHH '24': expected an hour 0..23");
    sched("DL")
        .at(1, 60)
        .fails("FRQMI '60': expected a minute 0..59");
    sched("FN")
        .dd("MON")
        .fails("STRTDT is empty: FRQCD FN is anchored at the start date, so it needs one");
    sched("ID")
        .at(1, 0)
        .fails("STRTDT is empty: FRQCD ID is anchored at the start date, so it needs one");
    sched("ID")
        .at(0, 0)
        .start("2026-01-01 00:00")
        .fails("FRQMI '0': the interval FRQHH hours + FRQMI minutes must be more than 0");
    sched("DL")
        .start("2026-02-01 00:00")
        .end("2026-01-01 00:00")
        .fails("ENDDT '2026-01-01 00:00:00': is before STRTDT 2026-02-01 00:00:00");
    sched("DL")
        .tz("Europe/Lndon")
        .fails("TIMEZONE 'Europe/Lndon': not an IANA time zone name (such as Europe/London)");
    sched("DL")
        .misfire("LATER")
        .fails("MISFIRE 'LATER': expected COALESCE, SKIP or CATCHUP");
    sched("CR").fails("CRONEXPR is empty: FRQCD CR needs a cron expression");
    sched("CR").cron("* * * *").fails(
        "CRONEXPR '* * * *': has 4 fields; expected 5 (minute hour day month weekday) or 6 (seconds first)",
    );
    sched("CR")
        .cron("0 0 30 2 *")
        .fails("CRONEXPR '0 0 30 2 *': never fires");
    assert!(parse_schedule(&sched("CR").cron("61 * * * *").0, Tz::UTC).is_err());
    let mut own_parent = sched("DL");
    own_parent.0.dpnd_jobschid = Some(1);
    own_parent.fails("DPND_JOBSCHID '1': a schedule cannot depend on itself");
}

#[test]
fn the_default_zone_applies_without_timezone() {
    let row = sched("DL").at(9, 0).0;
    let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
    let schedule = parse_schedule(&row, kolkata).unwrap();
    assert_eq!(
        schedule.next_fire(utc("2026-03-01T00:00:00Z")),
        Some(utc("2026-03-01T03:30:00Z"))
    );
}

#[test]
fn dependent_schedules_never_fire_by_time() {
    let mut child = sched("DL").at(6, 0);
    child.0.jobschid = 2;
    child.0.dpnd_jobschid = Some(1);
    let schedule = child.parse();
    assert_eq!(schedule.parent, Some(1));
    assert_eq!(schedule.next_fire(utc("2026-03-01T00:00:00Z")), None);
    // Its own time columns are not read.
    child.0.frqcd = None;
    assert!(parse_schedule(&child.0, Tz::UTC).is_ok());
}

#[test]
fn dedupe_keys_name_the_schedule_and_slot() {
    let schedule = sched("DL").parse();
    assert_eq!(
        schedule.dedupe_key(utc("2026-03-01T06:00:00Z")),
        "sch:1:2026-03-01T06:00:00Z"
    );
}

#[test]
fn misfire_policies_after_an_outage() {
    let hourly = |policy: &str| sched("CR").cron("0 * * * *").misfire(policy).parse();
    let last = Some(utc("2026-03-01T00:00:00Z"));
    let now = utc("2026-03-01T05:00:10Z");
    let grace = Duration::seconds(60);
    // Five slots were due: 01:00 .. 05:00; only 05:00 is on time.
    let coalesce = plan_misfires(&hourly("COALESCE"), last, now, grace);
    assert_eq!(times(&coalesce.run), [utc("2026-03-01T05:00:00Z")]);
    assert_eq!((coalesce.due, coalesce.merged, coalesce.dropped), (5, 4, 0));
    assert_eq!(coalesce.handled_through, Some(utc("2026-03-01T05:00:00Z")));

    let skip = plan_misfires(&hourly("SKIP"), last, now, grace);
    assert_eq!(times(&skip.run), [utc("2026-03-01T05:00:00Z")]);
    assert_eq!((skip.merged, skip.dropped), (0, 4));
    let skip_late = plan_misfires(&hourly("SKIP"), last, utc("2026-03-01T05:30:00Z"), grace);
    assert!(
        skip_late.run.is_empty(),
        "every slot is late: wait for the next"
    );
    assert_eq!(skip_late.dropped, 5);
    assert_eq!(skip_late.handled_through, Some(utc("2026-03-01T05:00:00Z")));

    let catchup = plan_misfires(&hourly("CATCHUP"), last, now, grace);
    assert_eq!(catchup.run.len(), 5);
    assert_eq!(catchup.run[0].at, utc("2026-03-01T01:00:00Z"));
    assert_eq!(catchup.dropped, 0);

    let nothing = plan_misfires(
        &hourly("COALESCE"),
        Some(utc("2026-03-01T05:00:00Z")),
        now,
        grace,
    );
    assert_eq!(nothing, Default::default());
    assert_eq!(MisfirePolicy::default(), MisfirePolicy::Coalesce);
}

/// An every-5-s schedule down for 22 s: four slots came, all within the grace, so only
/// "followed by another due slot" makes the first three missed.
#[test]
fn an_outage_shorter_than_the_grace_is_no_burst() {
    let every_5s = |policy: &str| sched("CR").cron("*/5 * * * * *").misfire(policy).parse();
    let last = Some(utc("2026-03-01T00:00:00Z"));
    let now = utc("2026-03-01T00:00:22Z");
    let grace = Duration::seconds(60);
    let check = |policy: &str, lead: i64, run: &[&str], merged: u64, dropped: u64| {
        let plan = plan_fires(&every_5s(policy), last, now, Duration::seconds(lead), grace);
        let run: Vec<_> = run.iter().map(|t| utc(t)).collect();
        assert_eq!(times(&plan.run), run, "{policy} with a lead of {lead} s");
        assert_eq!((plan.merged, plan.dropped), (merged, dropped), "{policy}");
    };
    check("SKIP", 0, &["2026-03-01T00:00:20Z"], 0, 3);
    check("COALESCE", 0, &["2026-03-01T00:00:20Z"], 3, 0);
    check(
        "CATCHUP",
        0,
        &[
            "2026-03-01T00:00:05Z",
            "2026-03-01T00:00:10Z",
            "2026-03-01T00:00:15Z",
            "2026-03-01T00:00:20Z",
        ],
        0,
        0,
    );
    // A slot queued ahead of its time is never missed, and fires beside the latest.
    check(
        "SKIP",
        3,
        &["2026-03-01T00:00:20Z", "2026-03-01T00:00:25Z"],
        0,
        3,
    );
    check(
        "COALESCE",
        3,
        &["2026-03-01T00:00:20Z", "2026-03-01T00:00:25Z"],
        3,
        0,
    );
    // In normal running only slots ahead are planned, and each of them fires.
    let plan = plan_fires(
        &every_5s("SKIP"),
        Some(utc("2026-03-01T00:00:20Z")),
        utc("2026-03-01T00:00:23Z"),
        Duration::seconds(8),
        grace,
    );
    assert_eq!(
        times(&plan.run),
        [utc("2026-03-01T00:00:25Z"), utc("2026-03-01T00:00:30Z")]
    );
    assert_eq!(plan.dropped, 0);
    // Late beyond the grace, SKIP waits for the next slot.
    let plan = plan_fires(
        &every_5s("SKIP"),
        last,
        utc("2026-03-01T00:01:02Z"),
        Duration::zero(),
        Duration::seconds(1),
    );
    assert!(plan.run.is_empty(), "{plan:?}");
    assert_eq!(plan.dropped, 12);
}

#[test]
fn catchup_is_capped_and_huge_outages_are_counted_cheaply() {
    let every_minute = sched("CR").cron("* * * * *").misfire("CATCHUP").parse();
    let last = Some(utc("2026-03-01T00:00:00Z"));
    let plan = plan_misfires(
        &every_minute,
        last,
        utc("2026-03-02T00:00:00Z"),
        Duration::seconds(60),
    );
    assert_eq!(plan.due, 1440);
    assert_eq!(plan.run.len(), crate::CATCHUP_LIMIT);
    assert_eq!(plan.dropped, 440);
    assert_eq!(plan.run.last().unwrap().at, utc("2026-03-02T00:00:00Z"));
    assert!(!plan.count_is_floor);

    let every_second = sched("CR").cron("* * * * * *").misfire("COALESCE").parse();
    let plan = plan_misfires(
        &every_second,
        last,
        utc("2026-03-10T00:00:00Z"),
        Duration::seconds(60),
    );
    assert!(plan.count_is_floor);
    assert!(plan.merged >= 100_000);
    assert_eq!(times(&plan.run), [utc("2026-03-10T00:00:00Z")]);
}

#[test]
fn a_new_schedule_owes_no_past_slots() {
    let hourly = sched("CR").cron("0 * * * *").misfire("CATCHUP").parse();
    let plan = plan_misfires(
        &hourly,
        None,
        utc("2026-03-01T05:00:30Z"),
        Duration::seconds(60),
    );
    assert_eq!(times(&plan.run), [utc("2026-03-01T05:00:00Z")]);
    let plan = plan_misfires(
        &hourly,
        None,
        utc("2026-03-01T05:30:00Z"),
        Duration::seconds(60),
    );
    assert!(plan.run.is_empty());
}

mod properties {
    use super::*;
    use crate::{Rule, resolve_local, to_local};
    use proptest::prelude::*;

    const ZONES: [&str; 7] = [
        "UTC",
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "Pacific/Chatham",
        "America/Santiago",
    ];
    const CODES: [&str; 9] = ["ID", "DL", "WK", "FN", "MN", "QT", "HY", "YR", "BD"];
    const DAYS: [&str; 7] = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

    fn any_row() -> impl Strategy<Value = ScheduleRow> {
        (
            0..CODES.len(),
            0..ZONES.len(),
            0_i64..24,
            0_i64..60,
            0..7_usize,
            prop_oneof![
                (1_u32..=31).prop_map(|d| d.to_string()),
                Just("L".to_string())
            ],
            0_i64..(10 * 365 * 24 * 60),
            prop::option::of(1_i64..(3 * 365 * 24 * 60)),
            // Every month has at least 20 work days Monday to Friday.
            prop_oneof![1_i32..=20, -20_i32..=-1],
        )
            .prop_map(
                |(code, zone, hh, mi, weekday, monthday, start_minutes, span, business_day)| {
                    let code = CODES[code];
                    let start = local("2020-01-01 00:00") + Duration::minutes(start_minutes);
                    ScheduleRow {
                        jobschid: 1,
                        mapref: "P".into(),
                        frqcd: Some(code.into()),
                        frqdd: Some(match code {
                            "WK" | "FN" => DAYS[weekday].to_string(),
                            "BD" => business_day.to_string(),
                            _ => monthday,
                        }),
                        frqhh: Some(if code == "ID" { hh % 5 } else { hh }),
                        frqmi: Some(if code == "ID" && hh % 5 == 0 {
                            mi.max(1)
                        } else {
                            mi
                        }),
                        strtdt: Some(start),
                        enddt: span.map(|s| start + Duration::minutes(s)),
                        timezone: Some(ZONES[zone].into()),
                        ..ScheduleRow::default()
                    }
                },
            )
    }

    /// Whether `fire` is on the rule's day at its time of day, or the documented DST
    /// substitute for it (the first instant after a gap; the first of a repeated time).
    fn matches_rule(schedule: &Schedule, fire: DateTime<Utc>) -> bool {
        let zone = schedule.zone;
        let date = to_local(zone, fire).date();
        let on_time = |at| resolve_local(zone, date.and_time(at)) == fire;
        match schedule.rule.as_ref().unwrap() {
            Rule::Interval { every } => {
                (fire - schedule.start.unwrap()).num_seconds() % every.num_seconds() == 0
            }
            Rule::Daily { at } => on_time(*at),
            Rule::Weekly { weekday, at } | Rule::Fortnightly { weekday, at } => {
                date.weekday() == *weekday && on_time(*at)
            }
            Rule::MonthDay { day, step, at } => {
                let last =
                    date.with_day(1).unwrap() + chrono::Months::new(1) - chrono::Days::new(1);
                let day_ok = match day {
                    crate::MonthDay::Day(d) => date.day() == (*d).min(last.day()),
                    crate::MonthDay::Last => date == last,
                };
                date.month0().is_multiple_of(*step) && day_ok && on_time(*at)
            }
            Rule::BusinessDay { n, at, calendar } => {
                calendar.business_day_of_month(date.year(), date.month(), *n) == Some(date)
                    && on_time(*at)
            }
            Rule::Cron(_) => true,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn fires_are_increasing_bounded_and_on_rule(row in any_row(), after_minutes in 0_i64..(12 * 365 * 24 * 60)) {
            let schedule = parse_schedule(&row, Tz::UTC).unwrap();
            let after = utc("2019-06-01T00:00:00Z") + Duration::minutes(after_minutes);
            let fires = times(&schedule.fires_after(after, 30));
            let mut previous = after;
            for fire in &fires {
                prop_assert!(*fire > previous, "{fire} not after {previous}");
                prop_assert!(*fire >= schedule.start.unwrap(), "{fire} before the start");
                if let Some(end) = schedule.end {
                    prop_assert!(*fire <= end, "{fire} after the end");
                }
                prop_assert!(matches_rule(&schedule, *fire), "{fire} does not match {row:?}");
                previous = *fire;
            }
            // No slot is skipped: consecutive calendar fires are one period apart.
            for pair in fires.windows(2) {
                let (a, b) = (to_local(schedule.zone, pair[0]).date(), to_local(schedule.zone, pair[1]).date());
                let days = (b - a).num_days();
                let months = (b.year() - a.year()) * 12 + b.month() as i32 - a.month() as i32;
                match schedule.rule.as_ref().unwrap() {
                    Rule::Daily { .. } => prop_assert_eq!(days, 1),
                    Rule::Weekly { .. } => prop_assert_eq!(days, 7),
                    Rule::Fortnightly { .. } => prop_assert_eq!(days, 14),
                    Rule::MonthDay { step, .. } => prop_assert_eq!(months, *step as i32),
                    Rule::BusinessDay { .. } => prop_assert_eq!(months, 1),
                    Rule::Interval { every } => prop_assert_eq!(pair[1] - pair[0], *every),
                    Rule::Cron(_) => {}
                }
            }
            // When the schedule has not ended, it keeps firing.
            if schedule.end.is_none() {
                prop_assert_eq!(fires.len(), 30);
            }
        }
    }
}
