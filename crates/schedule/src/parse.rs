//! From a `DMS_JOBSCH` row to a validated [`Schedule`], or to an error that names the
//! field, the value and the reason (it becomes `SCHERR` and the CLI's message).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use dwsched_model::ScheduleRow;

use crate::calendar::{Calendar, HolidayRule, ScheduleCalendar};
use crate::rule::{Frequency, MonthDay, Rule};
use crate::zone::resolve_local;
use crate::{MisfirePolicy, Schedule};

/// Why a row cannot be scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    /// The column at fault (`FRQDD`, `TIMEZONE`, ...).
    pub field: &'static str,
    /// Its value as found, or `NULL`.
    pub value: String,
    pub reason: String,
}

impl ScheduleError {
    pub fn new(field: &'static str, value: impl fmt::Display, reason: impl Into<String>) -> Self {
        Self {
            field,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    fn missing(field: &'static str, reason: impl Into<String>) -> Self {
        Self::new(field, "NULL", reason)
    }
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value == "NULL" {
            write!(f, "{} is empty: {}", self.field, self.reason)
        } else {
            write!(f, "{} '{}': {}", self.field, self.value, self.reason)
        }
    }
}

impl std::error::Error for ScheduleError {}

/// Reads a `FRQCD`, in any case.
pub fn parse_frequency_code(code: &str) -> Result<Frequency, ScheduleError> {
    let upper = code.trim().to_ascii_uppercase();
    Frequency::ALL
        .into_iter()
        .find(|f| f.code() == upper)
        .ok_or_else(|| {
            let known: Vec<_> = Frequency::ALL.iter().map(|f| f.code()).collect();
            ScheduleError::new(
                "FRQCD",
                code,
                format!("unknown code; use one of {}", known.join(", ")),
            )
        })
}

/// Reads an IANA zone name, such as `Europe/London`.
pub fn parse_timezone(field: &'static str, name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name.trim()).map_err(|_| {
        ScheduleError::new(
            field,
            name,
            "not an IANA time zone name (such as Europe/London)",
        )
    })
}

fn parse_weekday(text: &str) -> Result<Weekday, ScheduleError> {
    crate::calendar::weekday(text)
        .ok_or_else(|| ScheduleError::new("FRQDD", text, "expected a weekday MON..SUN"))
}

fn parse_month_day(text: &str) -> Result<MonthDay, ScheduleError> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("L") {
        return Ok(MonthDay::Last);
    }
    match trimmed.parse::<u32>() {
        Ok(day @ 1..=31) => Ok(MonthDay::Day(day)),
        _ => Err(ScheduleError::new(
            "FRQDD",
            text,
            "expected a day 1..31 or L (last day)",
        )),
    }
}

fn parse_business_day(text: &str) -> Result<i32, ScheduleError> {
    match text.trim().parse::<i32>() {
        Ok(n @ (1..=23 | -23..=-1)) => Ok(n),
        _ => Err(ScheduleError::new(
            "FRQDD",
            text,
            "expected a business day 1..23, or -1..-23 counted back from the month's last",
        )),
    }
}

fn time_of_day(row: &ScheduleRow) -> Result<NaiveTime, ScheduleError> {
    let hour = row.frqhh.unwrap_or(0);
    let minute = row.frqmi.unwrap_or(0);
    if !(0..=23).contains(&hour) {
        return Err(ScheduleError::new("FRQHH", hour, "expected an hour 0..23"));
    }
    if !(0..=59).contains(&minute) {
        return Err(ScheduleError::new(
            "FRQMI",
            minute,
            "expected a minute 0..59",
        ));
    }
    Ok(NaiveTime::from_hms_opt(hour as u32, minute as u32, 0).expect("checked range"))
}

/// Parses a cron expression of 5 fields, or 6 with seconds first.
pub fn parse_cron(expression: &str) -> Result<croner::Cron, ScheduleError> {
    let fields = expression.split_whitespace().count();
    if !(fields == 5 || fields == 6) {
        return Err(ScheduleError::new(
            "CRONEXPR",
            expression,
            format!(
                "has {fields} fields; expected 5 (minute hour day month weekday) or 6 (seconds first)"
            ),
        ));
    }
    let seconds = if fields == 6 {
        croner::parser::Seconds::Required
    } else {
        croner::parser::Seconds::Disallowed
    };
    let cron = croner::parser::CronParser::builder()
        .seconds(seconds)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(expression)
        .map_err(|err| ScheduleError::new("CRONEXPR", expression, err.to_string()))?;
    // An expression such as "0 0 30 2 *" parses but never fires.
    let probe = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
    if cron.find_next_occurrence(&probe, false).is_err() {
        return Err(ScheduleError::new("CRONEXPR", expression, "never fires"));
    }
    Ok(cron)
}

/// Parses a row into a schedule. `default_zone` applies when `TIMEZONE` is empty.
pub fn parse_schedule(row: &ScheduleRow, default_zone: Tz) -> Result<Schedule, ScheduleError> {
    ScheduleParser::default().parse(row, default_zone)
}

/// Parses many rows, parsing each distinct cron expression once: a table of 100,000
/// schedules holds few distinct expressions, and parsing one costs far more than the
/// rest of a row.
///
/// It also holds the business calendars that rows name in `CALNM`.
#[derive(Debug, Default)]
pub struct ScheduleParser {
    crons: HashMap<String, Result<Arc<croner::Cron>, ScheduleError>>,
    /// Each calendar by name, or why it cannot be used.
    calendars: HashMap<String, Result<Arc<Calendar>, String>>,
}

impl ScheduleParser {
    /// A parser that knows `calendars` (by name).
    pub fn with_calendars(calendars: impl IntoIterator<Item = Calendar>) -> Self {
        let mut parser = Self::default();
        parser.set_calendars(calendars.into_iter().map(|c| (c.name().to_string(), Ok(c))));
        parser
    }

    /// A parser that knows the stored calendars; one that cannot be read makes the
    /// rows that name it invalid, with the reason.
    pub fn with_records<'r>(
        records: impl IntoIterator<Item = &'r dwsched_model::CalendarRecord>,
    ) -> Self {
        let mut parser = Self::default();
        parser.set_records(records);
        parser
    }

    /// Replaces the calendars rows may name with the stored ones.
    pub fn set_records<'r>(
        &mut self,
        records: impl IntoIterator<Item = &'r dwsched_model::CalendarRecord>,
    ) {
        self.set_calendars(
            records
                .into_iter()
                .map(|r| (r.name.trim().to_string(), Calendar::from_record(r))),
        );
    }

    /// Replaces the calendars rows may name: each by name, or why it cannot be used.
    fn set_calendars(
        &mut self,
        calendars: impl IntoIterator<Item = (String, Result<Calendar, String>)>,
    ) {
        self.calendars = calendars
            .into_iter()
            .map(|(name, calendar)| (name, calendar.map(Arc::new)))
            .collect();
    }

    pub fn parse(
        &mut self,
        row: &ScheduleRow,
        default_zone: Tz,
    ) -> Result<Schedule, ScheduleError> {
        let calendar = schedule_calendar(row, &self.calendars)?;
        parse_row(row, default_zone, calendar, &mut |expression| {
            self.crons
                .entry(expression.to_string())
                .or_insert_with(|| parse_cron(expression).map(Arc::new))
                .clone()
        })
    }
}

/// A row's `CALNM` and `CALRULE`, checked: the calendar must exist.
fn schedule_calendar(
    row: &ScheduleRow,
    calendars: &HashMap<String, Result<Arc<Calendar>, String>>,
) -> Result<Option<ScheduleCalendar>, ScheduleError> {
    let rule = match row.calrule.as_deref().map(str::trim) {
        None | Some("") => HolidayRule::Skip,
        Some(text) => HolidayRule::parse(text)
            .ok_or_else(|| ScheduleError::new("CALRULE", text, "expected SKIP, NEXT or PREV"))?,
    };
    let Some(name) = row
        .calnm
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    else {
        return Ok(None);
    };
    match calendars.get(name) {
        Some(Ok(calendar)) => Ok(Some(ScheduleCalendar {
            calendar: calendar.clone(),
            rule,
        })),
        Some(Err(why)) => Err(ScheduleError::new(
            "CALNM",
            name,
            format!("the calendar cannot be used: {why}"),
        )),
        None => Err(ScheduleError::new(
            "CALNM",
            name,
            "no such calendar in DMS_CALENDAR",
        )),
    }
}

type CronLookup<'a> = dyn FnMut(&str) -> Result<Arc<croner::Cron>, ScheduleError> + 'a;

fn parse_row(
    row: &ScheduleRow,
    default_zone: Tz,
    calendar: Option<ScheduleCalendar>,
    cron: &mut CronLookup<'_>,
) -> Result<Schedule, ScheduleError> {
    let zone = match row.timezone.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => parse_timezone("TIMEZONE", name)?,
        _ => default_zone,
    };
    let start = row.strtdt.map(|local| resolve_local(zone, local));
    let end = row.enddt.map(|local| resolve_local(zone, local));
    if let (Some(start_local), Some(end_local)) = (row.strtdt, row.enddt)
        && end_local < start_local
    {
        return Err(ScheduleError::new(
            "ENDDT",
            end_local,
            format!("is before STRTDT {start_local}"),
        ));
    }
    let misfire = match row.misfire.as_deref().map(str::trim) {
        None | Some("") => MisfirePolicy::Coalesce,
        Some(text) => MisfirePolicy::parse(text).ok_or_else(|| {
            ScheduleError::new("MISFIRE", text, "expected COALESCE, SKIP or CATCHUP")
        })?,
    };
    let max_failures = match row.maxfail {
        None => None,
        Some(n) if n >= 1 => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        Some(n) => {
            return Err(ScheduleError::new(
                "MAXFAIL",
                n,
                "expected 1 or more, or empty for never",
            ));
        }
    };
    if row.dpnd_jobschid == Some(row.jobschid) {
        return Err(ScheduleError::new(
            "DPND_JOBSCHID",
            row.jobschid,
            "a schedule cannot depend on itself",
        ));
    }
    // A dependent schedule fires after its parent, never by time; its time columns are
    // not read.
    let rule = match row.dpnd_jobschid {
        Some(_) => None,
        None => Some(parse_rule(row, start, calendar.as_ref(), cron)?),
    };
    Ok(Schedule {
        jobschid: row.jobschid,
        mapref: row.mapref.clone(),
        rule,
        zone,
        start,
        end,
        misfire,
        parent: row.dpnd_jobschid,
        max_failures,
        calendar,
    })
}

fn parse_rule(
    row: &ScheduleRow,
    start: Option<DateTime<Utc>>,
    calendar: Option<&ScheduleCalendar>,
    cron: &mut CronLookup<'_>,
) -> Result<Rule, ScheduleError> {
    let code = row
        .frqcd
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ScheduleError::missing("FRQCD", "a frequency code is required"))?;
    let frequency = parse_frequency_code(code)?;
    let frqdd = || {
        row.frqdd
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .ok_or_else(|| {
                ScheduleError::missing("FRQDD", format!("FRQCD {} needs a day", frequency.code()))
            })
    };
    let needs_start = |what: &str| {
        if start.is_none() {
            Err(ScheduleError::missing(
                "STRTDT",
                format!(
                    "FRQCD {} is anchored at the start date, {what}",
                    frequency.code()
                ),
            ))
        } else {
            Ok(())
        }
    };
    Ok(match frequency {
        Frequency::Interval => {
            needs_start("so it needs one")?;
            let hours = row.frqhh.unwrap_or(0);
            let minutes = row.frqmi.unwrap_or(0);
            if hours < 0 {
                return Err(ScheduleError::new(
                    "FRQHH",
                    hours,
                    "an interval cannot be negative",
                ));
            }
            if minutes < 0 {
                return Err(ScheduleError::new(
                    "FRQMI",
                    minutes,
                    "an interval cannot be negative",
                ));
            }
            let every = hours
                .checked_mul(60)
                .and_then(|h| h.checked_add(minutes))
                .filter(|total| *total <= 366 * 24 * 60)
                .ok_or_else(|| {
                    ScheduleError::new("FRQHH", hours, "the interval is longer than a year")
                })?;
            if every == 0 {
                return Err(ScheduleError::new(
                    "FRQMI",
                    minutes,
                    "the interval FRQHH hours + FRQMI minutes must be more than 0",
                ));
            }
            Rule::Interval {
                every: Duration::minutes(every),
            }
        }
        Frequency::Daily => Rule::Daily {
            at: time_of_day(row)?,
        },
        Frequency::Weekly => Rule::Weekly {
            weekday: parse_weekday(frqdd()?)?,
            at: time_of_day(row)?,
        },
        Frequency::Fortnightly => {
            let weekday = parse_weekday(frqdd()?)?;
            needs_start("so it needs one")?;
            Rule::Fortnightly {
                weekday,
                at: time_of_day(row)?,
            }
        }
        Frequency::Monthly | Frequency::Quarterly | Frequency::HalfYearly | Frequency::Yearly => {
            Rule::MonthDay {
                day: parse_month_day(frqdd()?)?,
                step: frequency.month_step().expect("a day-of-month code"),
                at: time_of_day(row)?,
            }
        }
        Frequency::BusinessDay => Rule::BusinessDay {
            n: parse_business_day(frqdd()?)?,
            at: time_of_day(row)?,
            // Without a calendar, Monday to Friday without holidays.
            calendar: calendar
                .map_or_else(|| Arc::new(Calendar::weekdays()), |c| c.calendar.clone()),
        },
        Frequency::Cron => {
            let expression = row
                .cronexpr
                .as_deref()
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(|| {
                    ScheduleError::missing("CRONEXPR", "FRQCD CR needs a cron expression")
                })?;
            Rule::Cron(cron(expression.trim())?)
        }
    })
}
