//! DWTOOL's report and file-upload schedules (`DMS_RPRT_SCHD`, `DMS_FLUPLD_SCHD`):
//! `FRQNCY` and `TM_PRM` read into the same rules job schedules use (SPEC §7.2, §7.3),
//! so that they keep wall-clock time across DST and month ends instead of adding a
//! fixed delta to the last run.

use chrono_tz::Tz;
use dwsched_model::ScheduleRow;

use crate::{Schedule, ScheduleError, parse_schedule};

/// When a report schedule runs.
#[derive(Debug, Clone)]
pub enum ReportTimes {
    /// Again and again, by the rule.
    Recurring(Schedule),
    /// `IMMEDIATE`: once, after which the row is `PAUSED`.
    Once,
}

/// `TM_PRM` as the original reads it: parts split on `_`, the last one `HH:MM`, and with
/// three parts or more the second is the day (a weekday, or a day of the month).
struct TimeParameter {
    day: Option<String>,
    hour: i64,
    minute: i64,
}

fn time_parameter(tm_prm: Option<&str>) -> Result<TimeParameter, ScheduleError> {
    let text = tm_prm.map(str::trim).unwrap_or("");
    let mut parsed = TimeParameter {
        day: None,
        hour: 0,
        minute: 0,
    };
    if text.is_empty() {
        return Ok(parsed);
    }
    let parts: Vec<&str> = text.split('_').collect();
    let bad = |why: &str| ScheduleError::new("TM_PRM", text, why);
    let time = parts.last().copied().unwrap_or("");
    let (hour, minute) = time
        .split_once(':')
        .ok_or_else(|| bad("expected HH:MM as its last part, such as DL_09:30"))?;
    parsed.hour = hour
        .trim()
        .parse()
        .ok()
        .filter(|h| (0..=23).contains(h))
        .ok_or_else(|| bad("the hour is not 0..23"))?;
    parsed.minute = minute
        .trim()
        .parse()
        .ok()
        .filter(|m| (0..=59).contains(m))
        .ok_or_else(|| bad("the minute is not 0..59"))?;
    if parts.len() >= 3 {
        parsed.day = Some(parts[1].trim().to_string());
    }
    Ok(parsed)
}

/// The rule of a `DMS_RPRT_SCHD` row. `DAILY`, `WEEKLY` and `MONTHLY` (or `DL`, `WK`,
/// `MN`) follow `TM_PRM` (`DL_HH:MM`, `WK_DOW_HH:MM`, `MN_DD_HH:MM`, a day past the
/// month's end meaning its last day); `HOURLY` is every hour at the `TM_PRM` minute;
/// `QUARTERLY` and `YEARLY` are the `MN_` day (else the 1st) of January, April, July,
/// October, or of January; `IMMEDIATE` runs once. An empty `FRQNCY` is `DAILY`. Times
/// are wall-clock times in `zone`.
pub fn report_schedule(
    schdid: i64,
    rprtid: i64,
    frqncy: Option<&str>,
    tm_prm: Option<&str>,
    zone: Tz,
) -> Result<ReportTimes, ScheduleError> {
    let frequency = frqncy.map(str::trim).unwrap_or("").to_ascii_uppercase();
    let time = time_parameter(tm_prm)?;
    let (code, day, cron) = match frequency.as_str() {
        "" | "DAILY" | "DL" => ("DL", None, None),
        "WEEKLY" | "WK" => (
            "WK",
            Some(time.day.clone().unwrap_or_else(|| "MON".into())),
            None,
        ),
        "MONTHLY" | "MN" => ("MN", Some(month_day(&time)?), None),
        "QUARTERLY" => ("QT", Some(month_day(&time)?), None),
        "YEARLY" => ("YR", Some(month_day(&time)?), None),
        "HOURLY" => ("CR", None, Some(format!("{} * * * *", time.minute))),
        "IMMEDIATE" => return Ok(ReportTimes::Once),
        _ => {
            return Err(ScheduleError::new(
                "FRQNCY",
                frqncy.unwrap_or(""),
                "expected DAILY, WEEKLY, MONTHLY, HOURLY, QUARTERLY, YEARLY or IMMEDIATE",
            ));
        }
    };
    let row = dwtool_row(schdid, format!("REPORT:{rprtid}"), code, day, cron, &time);
    parse_schedule(&row, zone).map(ReportTimes::Recurring)
}

/// The rule of a `DMS_FLUPLD_SCHD` row, as the original's triggers fire it: `DL_HH:MM`
/// daily; `WK_DOW_HH:MM` weekly (`FN` too, which the original fires weekly);
/// `MN_DD_HH:MM` monthly, a day past the month's end meaning its last day;
/// `HY_DD_HH:MM` on that day of January and July; `YR_DD_HH:MM` on that day of
/// January; `ID_HH:MM` (or none) every hour at that minute.
pub fn upload_schedule(
    schdid: i64,
    flupldref: &str,
    frqncy: Option<&str>,
    tm_prm: Option<&str>,
    zone: Tz,
) -> Result<Schedule, ScheduleError> {
    let frequency = frqncy.map(str::trim).unwrap_or("").to_ascii_uppercase();
    let time = time_parameter(tm_prm)?;
    let (code, day, cron) = match frequency.as_str() {
        "DL" => ("DL", None, None),
        "WK" | "FN" => (
            "WK",
            Some(time.day.clone().unwrap_or_else(|| "MON".into())),
            None,
        ),
        "MN" => ("MN", Some(month_day(&time)?), None),
        "HY" => (
            "CR",
            None,
            Some(format!(
                "{} {} {} 1,7 *",
                time.minute,
                time.hour,
                month_day(&time)?
            )),
        ),
        "YR" => ("YR", Some(month_day(&time)?), None),
        "ID" => ("CR", None, Some(format!("{} * * * *", time.minute))),
        _ => {
            return Err(ScheduleError::new(
                "FRQNCY",
                frqncy.unwrap_or(""),
                "expected DL, WK, MN, HY, YR or ID",
            ));
        }
    };
    let row = dwtool_row(
        schdid,
        format!("FLUPLD:{flupldref}"),
        code,
        day,
        cron,
        &time,
    );
    parse_schedule(&row, zone)
}

/// The day of the month `TM_PRM` names (the 1st when it names none).
fn month_day(time: &TimeParameter) -> Result<String, ScheduleError> {
    match &time.day {
        None => Ok("1".into()),
        Some(day) => match day.parse::<u32>() {
            Ok(n @ 1..=31) => Ok(n.to_string()),
            _ => Err(ScheduleError::new(
                "TM_PRM",
                day,
                "the day of the month is not 1..31",
            )),
        },
    }
}

/// A `DMS_JOBSCH`-shaped row for the schedule parser.
fn dwtool_row(
    id: i64,
    mapref: String,
    code: &str,
    day: Option<String>,
    cron: Option<String>,
    time: &TimeParameter,
) -> ScheduleRow {
    ScheduleRow {
        jobschid: id,
        mapref,
        frqcd: Some(code.into()),
        frqdd: day,
        frqhh: Some(time.hour),
        frqmi: Some(time.minute),
        cronexpr: cron,
        ..ScheduleRow::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn fires(schedule: &Schedule, after: &str, count: usize) -> Vec<String> {
        schedule
            .fires_after(utc(after), count)
            .iter()
            .map(|f| crate::format_slot(f.at))
            .collect()
    }

    fn report(frqncy: &str, tm_prm: &str, zone: &str) -> Schedule {
        match report_schedule(4, 12, Some(frqncy), Some(tm_prm), zone.parse().unwrap()).unwrap() {
            ReportTimes::Recurring(schedule) => schedule,
            ReportTimes::Once => panic!("{frqncy} runs once"),
        }
    }

    #[test]
    fn report_schedules_keep_wall_clock_time_across_dst_and_month_ends() {
        // London springs forward on 29 March 2026: 09:00 stays 09:00.
        let daily = report("DAILY", "DL_09:00", "Europe/London");
        assert_eq!(
            fires(&daily, "2026-03-28T00:00:00Z", 2),
            ["2026-03-28T09:00:00Z", "2026-03-29T08:00:00Z"]
        );
        // MONTHLY means the day, not 30 days: the 31st is each month's last day.
        let monthly = report("MONTHLY", "MN_31_06:30", "UTC");
        assert_eq!(
            fires(&monthly, "2026-01-15T00:00:00Z", 4),
            [
                "2026-01-31T06:30:00Z",
                "2026-02-28T06:30:00Z",
                "2026-03-31T06:30:00Z",
                "2026-04-30T06:30:00Z"
            ]
        );
        let weekly = report("weekly", "WK_FRI_17:15", "UTC");
        assert_eq!(
            fires(&weekly, "2026-03-02T00:00:00Z", 2),
            ["2026-03-06T17:15:00Z", "2026-03-13T17:15:00Z"]
        );
        // HOURLY: every hour at the TM_PRM minute (the UI writes DL_HH:MM for it), a
        // wall-clock minute: :20 in India is :50 UTC.
        let hourly = report("HOURLY", "DL_00:20", "Asia/Kolkata");
        assert_eq!(
            fires(&hourly, "2026-03-02T10:00:00Z", 2),
            ["2026-03-02T10:50:00Z", "2026-03-02T11:50:00Z"]
        );
        let quarterly = report("QUARTERLY", "MN_05_09:00", "UTC");
        assert_eq!(
            fires(&quarterly, "2026-02-01T00:00:00Z", 2),
            ["2026-04-05T09:00:00Z", "2026-07-05T09:00:00Z"]
        );
        let yearly = report("YEARLY", "DL_09:00", "UTC");
        assert_eq!(
            fires(&yearly, "2026-02-01T00:00:00Z", 1),
            ["2027-01-01T09:00:00Z"]
        );
        // The aliases report_service accepts, and an empty frequency.
        assert_eq!(
            fires(
                &report("MN", "MN_1_00:00", "UTC"),
                "2026-02-01T00:00:00Z",
                1
            ),
            ["2026-03-01T00:00:00Z"]
        );
        assert_eq!(
            fires(&report("", "DL_01:00", "UTC"), "2026-02-01T00:00:00Z", 1),
            ["2026-02-01T01:00:00Z"]
        );
        assert!(matches!(
            report_schedule(4, 12, Some("IMMEDIATE"), None, Tz::UTC).unwrap(),
            ReportTimes::Once
        ));
    }

    #[test]
    fn upload_schedules_fire_as_the_original_triggers_do() {
        let zone: Tz = "Europe/London".parse().unwrap();
        let upload = |frqncy: &str, tm_prm: Option<&str>| {
            upload_schedule(9, "SALES_FEED", Some(frqncy), tm_prm, zone).unwrap()
        };
        assert_eq!(
            fires(
                &upload("HY", Some("HY_15_10:30")),
                "2026-02-01T00:00:00Z",
                2
            ),
            ["2026-07-15T09:30:00Z", "2027-01-15T10:30:00Z"]
        );
        assert_eq!(
            fires(
                &upload("YR", Some("YR_15_10:30")),
                "2026-02-01T00:00:00Z",
                1
            ),
            ["2027-01-15T10:30:00Z"]
        );
        assert_eq!(
            fires(&upload("ID", Some("ID_00:15")), "2026-03-02T10:00:00Z", 2),
            ["2026-03-02T10:15:00Z", "2026-03-02T11:15:00Z"]
        );
        assert_eq!(
            fires(&upload("ID", None), "2026-03-02T10:00:00Z", 1),
            ["2026-03-02T11:00:00Z"]
        );
        assert_eq!(
            fires(
                &upload("FN", Some("FN_MON_08:00")),
                "2026-03-03T00:00:00Z",
                2
            ),
            ["2026-03-09T08:00:00Z", "2026-03-16T08:00:00Z"]
        );
        assert_eq!(
            fires(
                &upload("MN", Some("MN_31_10:30")),
                "2026-04-01T00:00:00Z",
                1
            ),
            ["2026-04-30T09:30:00Z"]
        );
        assert_eq!(upload("DL", Some("DL_10:30")).mapref, "FLUPLD:SALES_FEED");
    }

    #[test]
    fn bad_rows_name_the_column() {
        for (frqncy, tm_prm, message) in [
            (
                "DAILY",
                "DL_25:00",
                "TM_PRM 'DL_25:00': the hour is not 0..23",
            ),
            (
                "DAILY",
                "DL_0930",
                "TM_PRM 'DL_0930': expected HH:MM as its last part, such as DL_09:30",
            ),
            (
                "MONTHLY",
                "MN_32_09:00",
                "TM_PRM '32': the day of the month is not 1..31",
            ),
            (
                "WEEKLY",
                "WK_XYZ_09:00",
                "FRQDD 'XYZ': expected a weekday MON..SUN",
            ),
            (
                "FORTNIGHTLY",
                "DL_09:00",
                "FRQNCY 'FORTNIGHTLY': expected DAILY, WEEKLY, MONTHLY, HOURLY, QUARTERLY, YEARLY or IMMEDIATE",
            ),
        ] {
            let err = report_schedule(1, 2, Some(frqncy), Some(tm_prm), Tz::UTC).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
        let err = upload_schedule(1, "F", Some("QT"), None, Tz::UTC).unwrap_err();
        assert_eq!(
            err.to_string(),
            "FRQNCY 'QT': expected DL, WK, MN, HY, YR or ID"
        );
    }
}
