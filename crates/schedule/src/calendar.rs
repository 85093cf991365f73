//! Business calendars (SPEC §6): a calendar's business days are its work days minus
//! its dated holidays. Frequency `BD` counts business days within a month, and a
//! schedule's `CALRULE` says what a slot on another day does.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};

/// How far a search for a business day goes before it gives up: a calendar with no
/// business day in a year (no work days, or every day a holiday) has none to find.
const SEARCH_DAYS: u64 = 366;

/// The weekdays, Monday first, as `WORKDAYS` spells them.
const WEEKDAYS: [(&str, Weekday); 7] = [
    ("MON", Weekday::Mon),
    ("TUE", Weekday::Tue),
    ("WED", Weekday::Wed),
    ("THU", Weekday::Thu),
    ("FRI", Weekday::Fri),
    ("SAT", Weekday::Sat),
    ("SUN", Weekday::Sun),
];

/// The weekday an abbreviation (`MON`..`SUN`, any case) names.
pub(crate) fn weekday(text: &str) -> Option<Weekday> {
    let upper = text.trim().to_ascii_uppercase();
    WEEKDAYS
        .iter()
        .find(|(name, _)| *name == upper)
        .map(|(_, day)| *day)
}

/// A business calendar: `DMS_CALENDAR` with its `DMS_CALDATE` rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    name: String,
    /// Bit `n` set: weekday `n` (Monday = 0) is a work day.
    workdays: u8,
    holidays: BTreeMap<NaiveDate, String>,
}

impl Calendar {
    /// A calendar of `workdays` without holidays.
    pub fn new(name: impl Into<String>, workdays: &[Weekday]) -> Self {
        Self {
            name: name.into(),
            workdays: workdays
                .iter()
                .fold(0, |bits, day| bits | 1 << day.num_days_from_monday()),
            holidays: BTreeMap::new(),
        }
    }

    /// Monday to Friday without holidays: what `BD` counts on when a schedule names no
    /// calendar.
    pub fn weekdays() -> Self {
        Self::new(
            "",
            &[
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
        )
    }

    /// The calendar a stored record describes; an unreadable `WORKDAYS` is refused
    /// with the reason.
    pub fn from_record(record: &dwsched_model::CalendarRecord) -> Result<Self, String> {
        let workdays = match record.workdays.as_deref().map(str::trim) {
            None | Some("") => Self::weekdays().workdays(),
            Some(text) => {
                parse_workdays(text).map_err(|why| format!("WORKDAYS '{text}': {why}"))?
            }
        };
        let mut calendar = Self::new(record.name.trim(), &workdays);
        for holiday in &record.holidays {
            calendar.add_holiday(
                holiday.date,
                holiday.description.clone().unwrap_or_default(),
            );
        }
        Ok(calendar)
    }

    /// Adds a holiday (its description may be empty); a date given twice keeps the
    /// last description.
    pub fn add_holiday(&mut self, date: NaiveDate, description: impl Into<String>) {
        self.holidays.insert(date, description.into());
    }

    pub fn with_holiday(mut self, date: NaiveDate, description: impl Into<String>) -> Self {
        self.add_holiday(date, description);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The work days, Monday first.
    pub fn workdays(&self) -> Vec<Weekday> {
        WEEKDAYS
            .iter()
            .map(|(_, day)| *day)
            .filter(|day| self.is_workday(*day))
            .collect()
    }

    /// `WORKDAYS` as stored: `MON,TUE,WED,THU,FRI`.
    pub fn workdays_text(&self) -> String {
        WEEKDAYS
            .iter()
            .filter(|(_, day)| self.is_workday(*day))
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn holidays(&self) -> &BTreeMap<NaiveDate, String> {
        &self.holidays
    }

    fn is_workday(&self, day: Weekday) -> bool {
        self.workdays & (1 << day.num_days_from_monday()) != 0
    }

    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        self.is_workday(date.weekday()) && !self.holidays.contains_key(&date)
    }

    /// Why `date` is not a business day: the holiday's description, "weekend" for a
    /// Saturday or Sunday that is not a work day, or which weekday it is. `None` on a
    /// business day.
    pub fn why_not(&self, date: NaiveDate) -> Option<String> {
        if let Some(description) = self.holidays.get(&date) {
            return Some(if description.trim().is_empty() {
                "holiday".to_string()
            } else {
                description.clone()
            });
        }
        match date.weekday() {
            day if self.is_workday(day) => None,
            Weekday::Sat | Weekday::Sun => Some("weekend".to_string()),
            day => Some(format!("{day} is not a work day")),
        }
    }

    /// The first business day after `date`.
    pub fn next_business_day(&self, date: NaiveDate) -> Option<NaiveDate> {
        (1..=SEARCH_DAYS)
            .filter_map(|n| date.checked_add_days(Days::new(n)))
            .find(|d| self.is_business_day(*d))
    }

    /// The last business day before `date`.
    pub fn previous_business_day(&self, date: NaiveDate) -> Option<NaiveDate> {
        (1..=SEARCH_DAYS)
            .filter_map(|n| date.checked_sub_days(Days::new(n)))
            .find(|d| self.is_business_day(*d))
    }

    /// Business day `n` of a month: `1`.. counts from its first business day, `-1`..
    /// back from its last. `None` when the month has fewer business days.
    pub fn business_day_of_month(&self, year: i32, month: u32, n: i32) -> Option<NaiveDate> {
        let first = NaiveDate::from_ymd_opt(year, month, 1)?;
        let last = first.checked_add_months(Months::new(1))?.pred_opt()?;
        let wanted = usize::try_from(n.unsigned_abs()).ok()?.checked_sub(1)?;
        if n > 0 {
            first
                .iter_days()
                .take_while(|d| *d <= last)
                .filter(|d| self.is_business_day(*d))
                .nth(wanted)
        } else {
            std::iter::successors(Some(last), |d| d.pred_opt())
                .take_while(|d| *d >= first)
                .filter(|d| self.is_business_day(*d))
                .nth(wanted)
        }
    }
}

/// Reads `WORKDAYS`: weekdays `MON`..`SUN` separated by commas, in any case and order.
pub fn parse_workdays(text: &str) -> Result<Vec<Weekday>, String> {
    let mut days = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let day = weekday(part).ok_or_else(|| {
            format!("'{part}' is not a weekday; use MON, TUE, WED, THU, FRI, SAT or SUN")
        })?;
        if !days.contains(&day) {
            days.push(day);
        }
    }
    if days.is_empty() {
        return Err("a calendar needs at least one work day".to_string());
    }
    days.sort_by_key(Weekday::num_days_from_monday);
    Ok(days)
}

/// A schedule's calendar (`CALNM`) and its `CALRULE`.
#[derive(Debug, Clone)]
pub struct ScheduleCalendar {
    pub calendar: std::sync::Arc<Calendar>,
    pub rule: HolidayRule,
}

/// `CALRULE`: what a slot on a day that is not a business day does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HolidayRule {
    /// The fire does not happen.
    #[default]
    Skip,
    /// It fires on the next business day at the same wall-clock time.
    Next,
    /// It fires on the previous business day at the same wall-clock time, never
    /// before the previous fire.
    Prev,
}

impl HolidayRule {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_uppercase().as_str() {
            "SKIP" => Self::Skip,
            "NEXT" => Self::Next,
            "PREV" | "PREVIOUS" => Self::Prev,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "SKIP",
            Self::Next => "NEXT",
            Self::Prev => "PREV",
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    /// England's bank holidays of 2026 and 2027, as gov.uk publishes them, Monday to
    /// Friday, named `ENGLAND`.
    pub(crate) fn england() -> Calendar {
        let mut calendar = Calendar::new("ENGLAND", &Calendar::weekdays().workdays());
        for (day, name) in [
            ("2026-01-01", "New Year's Day"),
            ("2026-04-03", "Good Friday"),
            ("2026-04-06", "Easter Monday"),
            ("2026-05-04", "Early May bank holiday"),
            ("2026-05-25", "Spring bank holiday"),
            ("2026-08-31", "Summer bank holiday"),
            ("2026-12-25", "Christmas Day"),
            ("2026-12-28", "Boxing Day (substitute day)"),
            ("2027-01-01", "New Year's Day"),
            ("2027-03-26", "Good Friday"),
            ("2027-03-29", "Easter Monday"),
            ("2027-05-03", "Early May bank holiday"),
            ("2027-05-31", "Spring bank holiday"),
            ("2027-08-30", "Summer bank holiday"),
            ("2027-12-27", "Christmas Day (substitute day)"),
            ("2027-12-28", "Boxing Day (substitute day)"),
        ] {
            calendar.add_holiday(date(day), name);
        }
        calendar
    }

    #[test]
    fn business_days_of_a_month_count_from_either_end() {
        let uk = england();
        // (year, month, n, expected): month ends and year ends on holidays and weekends.
        for (year, month, n, expected) in [
            (2026, 1, 1, "2026-01-02"),   // 1 January is a holiday
            (2026, 1, 3, "2026-01-06"),   // over the first weekend
            (2026, 1, -1, "2026-01-30"),  // 31 January is a Saturday
            (2026, 5, -1, "2026-05-29"),  // 31 May is a Sunday
            (2026, 8, -1, "2026-08-28"),  // 31 August is a bank holiday
            (2026, 12, -1, "2026-12-31"), // a Thursday
            (2026, 12, -2, "2026-12-30"),
            (2026, 12, -3, "2026-12-29"), // 28 December is a substitute day
            (2027, 12, -1, "2027-12-31"),
            (2027, 12, -4, "2027-12-24"), // 27 and 28 December are holidays
            (2026, 4, 1, "2026-04-01"),
            (2026, 4, 3, "2026-04-07"), // Good Friday and Easter Monday skipped
            (2026, 2, 20, "2026-02-27"),
        ] {
            assert_eq!(
                uk.business_day_of_month(year, month, n),
                Some(date(expected)),
                "BD {n} of {year}-{month:02}"
            );
        }
        assert_eq!(
            uk.business_day_of_month(2026, 2, 21),
            None,
            "February has 20"
        );
        assert_eq!(uk.business_day_of_month(2026, 2, -21), None);
        assert_eq!(uk.business_day_of_month(2026, 2, 0), None);
    }

    #[test]
    fn the_reason_a_day_is_not_a_business_day() {
        let uk = england();
        assert_eq!(
            uk.why_not(date("2026-04-06")).as_deref(),
            Some("Easter Monday")
        );
        assert_eq!(uk.why_not(date("2026-04-04")).as_deref(), Some("weekend"));
        assert_eq!(uk.why_not(date("2026-04-07")), None);
        let four_days = Calendar::new(
            "short",
            &[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu],
        );
        assert_eq!(
            four_days.why_not(date("2026-04-10")).as_deref(),
            Some("Fri is not a work day")
        );
        assert_eq!(
            uk.next_business_day(date("2026-04-02")),
            Some(date("2026-04-07"))
        );
        assert_eq!(
            uk.previous_business_day(date("2026-04-07")),
            Some(date("2026-04-02"))
        );
        let never = Calendar::new("never", &[]);
        assert_eq!(never.next_business_day(date("2026-01-01")), None);
        assert_eq!(never.business_day_of_month(2026, 1, -1), None);
    }

    #[test]
    fn workdays_are_read_and_written_as_stored() {
        assert_eq!(
            parse_workdays("sun, MON,tue,Mon").unwrap(),
            [Weekday::Mon, Weekday::Tue, Weekday::Sun]
        );
        assert!(parse_workdays("MON,FUN").unwrap_err().contains("'FUN'"));
        assert!(parse_workdays(" , ").is_err());
        let calendar = Calendar::new("x", &parse_workdays("SUN,THU").unwrap());
        assert_eq!(calendar.workdays_text(), "THU,SUN");
        assert_eq!(Calendar::weekdays().workdays_text(), "MON,TUE,WED,THU,FRI");
        for rule in [HolidayRule::Skip, HolidayRule::Next, HolidayRule::Prev] {
            assert_eq!(HolidayRule::parse(rule.as_str()), Some(rule));
        }
        assert_eq!(HolidayRule::parse("later"), None);
    }

    fn any_calendar() -> impl Strategy<Value = Calendar> {
        (
            1u8..128,
            proptest::collection::vec((0i64..730, "[A-Za-z ]{0,12}"), 0..40),
        )
            .prop_map(|(bits, holidays)| {
                let workdays: Vec<Weekday> = WEEKDAYS
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, (_, day))| *day)
                    .collect();
                let mut calendar = Calendar::new("p", &workdays);
                for (offset, name) in holidays {
                    calendar.add_holiday(date("2026-01-01") + chrono::Duration::days(offset), name);
                }
                calendar
            })
    }

    proptest! {
        /// `BD -1` is a business day and the last one of its month; `BD 1` the first.
        #[test]
        fn first_and_last_business_days_are_what_they_say(
            calendar in any_calendar(),
            month in 1u32..=24,
        ) {
            let (year, month) = (2026 + i32::try_from((month - 1) / 12).unwrap(), (month - 1) % 12 + 1);
            let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap();
            let days: Vec<NaiveDate> = first
                .iter_days()
                .take_while(|d| d.month() == month)
                .filter(|d| calendar.is_business_day(*d))
                .collect();
            prop_assert_eq!(calendar.business_day_of_month(year, month, -1), days.last().copied());
            prop_assert_eq!(calendar.business_day_of_month(year, month, 1), days.first().copied());
            for (i, day) in days.iter().enumerate() {
                let n = i32::try_from(i).unwrap();
                prop_assert_eq!(calendar.business_day_of_month(year, month, n + 1), Some(*day));
                let back = i32::try_from(days.len()).unwrap() - n;
                prop_assert_eq!(calendar.business_day_of_month(year, month, -back), Some(*day));
            }
        }

        /// The next and previous business days are business days, with none between.
        #[test]
        fn next_and_previous_business_days_skip_only_other_days(
            calendar in any_calendar(),
            offset in 0i64..700,
        ) {
            let day = date("2026-01-01") + chrono::Duration::days(offset);
            if let Some(next) = calendar.next_business_day(day) {
                prop_assert!(next > day && calendar.is_business_day(next));
                prop_assert!(day.iter_days().skip(1).take_while(|d| *d < next).all(|d| !calendar.is_business_day(d)));
            }
            if let Some(previous) = calendar.previous_business_day(day) {
                prop_assert!(previous < day && calendar.is_business_day(previous));
                prop_assert_eq!(calendar.next_business_day(previous).map(|n| n >= day), Some(true));
            }
        }
    }
}
