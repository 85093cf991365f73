//! The firing rules of the frequency codes, and their next fire.

use chrono::{DateTime, Datelike, Days, Duration, Months, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;

use crate::zone::{resolve_local, to_local};

/// How many months a `BD` search looks at before it gives up: a calendar whose months
/// all have fewer business days than asked for never fires.
const MONTHS_SEARCHED: usize = 25;

/// `FRQCD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Frequency {
    /// `ID`: every FRQHH hours + FRQMI minutes of elapsed time.
    Interval,
    /// `DL`
    Daily,
    /// `WK`
    Weekly,
    /// `FN`
    Fortnightly,
    /// `MN`
    Monthly,
    /// `QT`
    Quarterly,
    /// `HY`
    HalfYearly,
    /// `YR`
    Yearly,
    /// `CR`
    Cron,
    /// `BD`: business day ±N of each month.
    BusinessDay,
}

impl Frequency {
    pub const ALL: [Frequency; 10] = [
        Self::Interval,
        Self::Daily,
        Self::Weekly,
        Self::Fortnightly,
        Self::Monthly,
        Self::Quarterly,
        Self::HalfYearly,
        Self::Yearly,
        Self::Cron,
        Self::BusinessDay,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Interval => "ID",
            Self::Daily => "DL",
            Self::Weekly => "WK",
            Self::Fortnightly => "FN",
            Self::Monthly => "MN",
            Self::Quarterly => "QT",
            Self::HalfYearly => "HY",
            Self::Yearly => "YR",
            Self::Cron => "CR",
            Self::BusinessDay => "BD",
        }
    }

    /// Months between the fires of a day-of-month code.
    pub(crate) fn month_step(self) -> Option<u32> {
        match self {
            Self::Monthly => Some(1),
            Self::Quarterly => Some(3),
            Self::HalfYearly => Some(6),
            Self::Yearly => Some(12),
            _ => None,
        }
    }
}

/// `FRQDD` of the day-of-month codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MonthDay {
    /// Day 1..=31; past the month's end it means the month's last day.
    Day(u32),
    /// `L`: the month's last day.
    Last,
}

impl MonthDay {
    fn in_month(self, year: i32, month: u32) -> NaiveDate {
        let first = NaiveDate::from_ymd_opt(year, month, 1).expect("valid month");
        let last = first + Months::new(1) - Days::new(1);
        match self {
            Self::Day(day) => NaiveDate::from_ymd_opt(year, month, day).unwrap_or(last),
            Self::Last => last,
        }
    }
}

/// When a schedule fires, as validated from its row.
#[derive(Debug, Clone)]
pub enum Rule {
    /// Elapsed-time interval anchored at the schedule's start.
    Interval {
        every: Duration,
    },
    Daily {
        at: NaiveTime,
    },
    Weekly {
        weekday: Weekday,
        at: NaiveTime,
    },
    /// Every second week on `weekday`; the first fire is the first such weekday at `at`
    /// on or after the schedule's start.
    Fortnightly {
        weekday: Weekday,
        at: NaiveTime,
    },
    /// On `day` of every `step`-th month counted from January (1: every month, 3:
    /// quarters, 6: half years, 12: years).
    MonthDay {
        day: MonthDay,
        step: u32,
        at: NaiveTime,
    },
    Cron(std::sync::Arc<croner::Cron>),
    /// Business day `n` of every month in `calendar`: `1`.. from the first, `-1`.. back
    /// from the last.
    BusinessDay {
        n: i32,
        at: NaiveTime,
        calendar: std::sync::Arc<crate::Calendar>,
    },
}

impl Rule {
    /// The wall-clock time of day the rule fires at; `None` for intervals and cron
    /// expressions, whose slots each have their own.
    pub fn time_of_day(&self) -> Option<NaiveTime> {
        match self {
            Self::Daily { at }
            | Self::Weekly { at, .. }
            | Self::Fortnightly { at, .. }
            | Self::MonthDay { at, .. }
            | Self::BusinessDay { at, .. } => Some(*at),
            Self::Interval { .. } | Self::Cron(_) => None,
        }
    }

    /// The first fire strictly after `after`. `start` anchors `ID` and `FN`.
    pub(crate) fn first_after(
        &self,
        zone: Tz,
        start: Option<DateTime<Utc>>,
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match self {
            Self::Interval { every } => {
                let anchor = start?;
                if after < anchor {
                    return Some(anchor);
                }
                let elapsed = (after - anchor).num_nanoseconds()?;
                let step = every.num_nanoseconds()?;
                let k = elapsed / step + 1;
                anchor.checked_add_signed(Duration::nanoseconds(step.checked_mul(k)?))
            }
            Self::Daily { at } => {
                let today = to_local(zone, after).date();
                // Yesterday is tried too: in a zone west of UTC a local date's fire can
                // still lie ahead of `after` for part of the next local day's span.
                (0..4)
                    .filter_map(|i| {
                        today
                            .checked_sub_days(Days::new(1))?
                            .checked_add_days(Days::new(i))
                    })
                    .map(|day| resolve_local(zone, day.and_time(*at)))
                    .find(|fire| *fire > after)
            }
            Self::Weekly { weekday, at } => {
                let from = to_local(zone, after)
                    .date()
                    .checked_sub_days(Days::new(1))?;
                let first = next_weekday_on_or_after(from, *weekday)?;
                (0..3)
                    .filter_map(|k| first.checked_add_days(Days::new(7 * k)))
                    .map(|day| resolve_local(zone, day.and_time(*at)))
                    .find(|fire| *fire > after)
            }
            Self::Fortnightly { weekday, at } => {
                let anchor = fortnight_anchor(zone, start?, *weekday, *at)?;
                let from = to_local(zone, after)
                    .date()
                    .checked_sub_days(Days::new(1))?;
                let weeks_from_anchor = (from - anchor).num_days().max(0) / 14;
                (weeks_from_anchor..weeks_from_anchor + 3)
                    .filter_map(|k| anchor.checked_add_days(Days::new(14 * u64::try_from(k).ok()?)))
                    .map(|day| resolve_local(zone, day.and_time(*at)))
                    .find(|fire| *fire > after)
            }
            Self::MonthDay { day, step, at } => {
                let local = to_local(zone, after).date();
                // Start one period back, at a month of the rule's cycle (Jan, Apr, ...).
                let month0 = (local.month0() / step) * step;
                let mut year = local.year();
                let mut month0 = i64::from(month0) - i64::from(*step);
                if month0 < 0 {
                    month0 += 12;
                    year -= 1;
                }
                for _ in 0..4 {
                    let date = day.in_month(year, u32::try_from(month0).ok()? + 1);
                    let fire = resolve_local(zone, date.and_time(*at));
                    if fire > after {
                        return Some(fire);
                    }
                    month0 += i64::from(*step);
                    if month0 >= 12 {
                        month0 -= 12;
                        year = year.checked_add(1)?;
                    }
                }
                None
            }
            Self::BusinessDay { n, at, calendar } => {
                // A business day of an earlier month is an earlier date, so its wall
                // time (and instant) is before `after`: the search starts this month.
                let local = to_local(zone, after).date();
                let (mut year, mut month) = (local.year(), local.month());
                for _ in 0..MONTHS_SEARCHED {
                    if let Some(day) = calendar.business_day_of_month(year, month, *n) {
                        let fire = resolve_local(zone, day.and_time(*at));
                        if fire > after {
                            return Some(fire);
                        }
                    }
                    (year, month) = if month == 12 {
                        (year.checked_add(1)?, 1)
                    } else {
                        (year, month + 1)
                    };
                }
                None
            }
            Self::Cron(cron) => cron
                .find_next_occurrence(&after.with_timezone(&zone), false)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        }
    }
}

fn next_weekday_on_or_after(date: NaiveDate, weekday: Weekday) -> Option<NaiveDate> {
    let ahead = (7 + weekday.num_days_from_monday() - date.weekday().num_days_from_monday()) % 7;
    date.checked_add_days(Days::new(u64::from(ahead)))
}

/// The local date of a fortnightly schedule's first fire: the first `weekday` at `at`
/// that is not before `start`.
fn fortnight_anchor(
    zone: Tz,
    start: DateTime<Utc>,
    weekday: Weekday,
    at: NaiveTime,
) -> Option<NaiveDate> {
    let first = next_weekday_on_or_after(to_local(zone, start).date(), weekday)?;
    if resolve_local(zone, first.and_time(at)) >= start {
        Some(first)
    } else {
        first.checked_add_days(Days::new(7))
    }
}
