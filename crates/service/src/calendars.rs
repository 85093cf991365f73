//! Business calendars as operators keep them (`dwsched calendar`, `/api/calendars`):
//! work days, holidays added one by one or imported from the iCalendar files that
//! publish public holidays, or from CSV.

use chrono::{DateTime, NaiveDate, Utc};
use dwsched_model::payload::parse_business_date;
use dwsched_model::{CalendarRecord, Holiday};
use dwsched_schedule::{Calendar, parse_workdays};
use dwsched_store::Store;
use icalendar::{CalendarComponent, Component, DatePerhapsTime};

use crate::ops::{OpError, OpResult};

/// The longest calendar name `DMS_CALENDAR.CALNM` holds.
const NAME_LIMIT: usize = 100;
/// The longest all-day event taken as a run of holidays.
const LONGEST_EVENT_DAYS: i64 = 366;

fn check_name(name: &str) -> OpResult<&str> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > NAME_LIMIT {
        return Err(OpError::Invalid(format!(
            "calendar name '{name}': expected 1 to {NAME_LIMIT} characters"
        )));
    }
    Ok(trimmed)
}

/// Creates a calendar or changes its work days and description; whether it is new.
/// Work days not given keep the stored ones (Monday to Friday for a new calendar).
pub async fn put_calendar(
    store: &dyn Store,
    name: &str,
    workdays: Option<&str>,
    description: Option<&str>,
    now: DateTime<Utc>,
) -> OpResult<bool> {
    let name = check_name(name)?;
    let existing = store.get_calendar(name).await?;
    let workdays = match workdays {
        Some(text) => {
            let days = parse_workdays(text)
                .map_err(|why| OpError::Invalid(format!("calendar {name}: --workdays: {why}")))?;
            Calendar::new(name, &days).workdays_text()
        }
        None => existing
            .as_ref()
            .and_then(|c| c.workdays.clone())
            .unwrap_or_else(|| Calendar::weekdays().workdays_text()),
    };
    let description = description
        .map(str::to_string)
        .or_else(|| existing.and_then(|c| c.description));
    Ok(store
        .put_calendar(name, &workdays, description.as_deref(), now)
        .await?)
}

/// A stored calendar, or not found.
pub async fn get_calendar(store: &dyn Store, name: &str) -> OpResult<CalendarRecord> {
    store.get_calendar(name.trim()).await?.ok_or_else(|| {
        OpError::NotFound(format!(
            "calendar '{name}' does not exist; create it with `dwsched calendar put {name}`"
        ))
    })
}

/// Adds holidays in one transaction; how many dates were new.
pub async fn add_holidays(
    store: &dyn Store,
    name: &str,
    holidays: &[Holiday],
    now: DateTime<Utc>,
) -> OpResult<usize> {
    store
        .add_holidays(name.trim(), holidays, now)
        .await?
        .ok_or_else(|| {
            OpError::NotFound(format!(
                "calendar '{name}' does not exist; create it with `dwsched calendar put {name}`"
            ))
        })
}

/// Removes a holiday.
pub async fn remove_holiday(
    store: &dyn Store,
    name: &str,
    date: NaiveDate,
    now: DateTime<Utc>,
) -> OpResult<()> {
    get_calendar(store, name).await?;
    if store.remove_holiday(name.trim(), date, now).await? {
        Ok(())
    } else {
        Err(OpError::NotFound(format!(
            "calendar '{name}' has no holiday on {date}"
        )))
    }
}

/// Reads a date as `YYYY-MM-DD`, as business dates are read.
pub fn parse_date(field: &str, text: &str) -> OpResult<NaiveDate> {
    parse_business_date(text).map_err(|why| OpError::Invalid(format!("{field}: {why}")))
}

/// The holidays a file lists: iCalendar (`.ics`, or text that begins
/// `BEGIN:VCALENDAR`) or CSV (`date,description`). A file with any line that cannot be
/// read is refused whole, naming the line.
pub fn parse_holiday_file(file_name: &str, text: &str) -> OpResult<Vec<Holiday>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let is_ics = file_name.to_ascii_lowercase().ends_with(".ics")
        || text
            .trim_start()
            .to_ascii_uppercase()
            .starts_with("BEGIN:VCALENDAR");
    let parsed = if is_ics {
        parse_ics(text)
    } else {
        parse_csv(text)
    };
    parsed.map_err(|why| OpError::Invalid(format!("{file_name}: {why}")))
}

/// All-day `VEVENT`s; a multi-day event (`DTEND` after the next day) is a holiday on
/// each of its days.
fn parse_ics(text: &str) -> Result<Vec<Holiday>, String> {
    let calendar: icalendar::Calendar = text
        .parse()
        .map_err(|why: String| format!("not a readable iCalendar file: {}", why.trim()))?;
    // Where each VEVENT begins in the file as written (folded lines counted), for
    // messages: the parser keeps events in file order.
    let event_lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| line.trim().eq_ignore_ascii_case("BEGIN:VEVENT"))
        .map(|(index, _)| index + 1)
        .collect();
    let events: Vec<&icalendar::Event> = calendar
        .components
        .iter()
        .filter_map(|c| match c {
            CalendarComponent::Event(event) => Some(event),
            _ => None,
        })
        .collect();
    if events.is_empty() {
        return Err("no events (VEVENT) in the file".to_string());
    }
    let mut holidays = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let line = event_lines.get(index).copied().unwrap_or(0);
        let summary = event.get_summary().unwrap_or("").trim().to_string();
        let what = if summary.is_empty() {
            format!("line {line}: the event")
        } else {
            format!("line {line}: event '{summary}'")
        };
        if event.property_value("RRULE").is_some() {
            return Err(format!(
                "{what} repeats (RRULE); list each date as an event of its own"
            ));
        }
        let start = match event.get_start() {
            Some(DatePerhapsTime::Date(date)) => date,
            Some(DatePerhapsTime::DateTime(_)) => {
                return Err(format!(
                    "{what} is not an all-day event (its DTSTART has a time)"
                ));
            }
            None => return Err(format!("{what} has no readable DTSTART date")),
        };
        let days = match event.get_end() {
            Some(DatePerhapsTime::Date(end)) => (end - start).num_days().max(1),
            _ => 1,
        };
        if days > LONGEST_EVENT_DAYS {
            return Err(format!(
                "{what} lasts {days} days; a holiday is at most a year"
            ));
        }
        for offset in 0..days {
            holidays.push(Holiday {
                date: start + chrono::Duration::days(offset),
                description: (!summary.is_empty()).then(|| summary.clone()),
            });
        }
    }
    Ok(holidays)
}

/// `date,description` rows; a first row whose first field is not a date is a header.
fn parse_csv(text: &str) -> Result<Vec<Holiday>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut holidays = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("not a readable CSV file: {e}"))?;
        let line = record.position().map_or(index as u64 + 1, |p| p.line());
        let first = record.get(0).unwrap_or("");
        if record.iter().all(str::is_empty) {
            continue;
        }
        let date = match parse_business_date(first) {
            Ok(date) => date,
            Err(_) if index == 0 => continue,
            Err(_) => {
                return Err(format!("line {line}: '{first}' is not a date (YYYY-MM-DD)"));
            }
        };
        if record.len() > 2 {
            return Err(format!(
                "line {line}: {} fields; expected date,description (quote a description with commas)",
                record.len()
            ));
        }
        let description = record.get(1).filter(|d| !d.is_empty()).map(str::to_string);
        holidays.push(Holiday { date, description });
    }
    if holidays.is_empty() {
        return Err("no holidays in the file".to_string());
    }
    Ok(holidays)
}

/// Adds the holidays a file lists to a calendar; how many dates were new. A file that
/// cannot be read adds nothing.
pub async fn import_holidays(
    store: &dyn Store,
    name: &str,
    file_name: &str,
    text: &str,
    now: DateTime<Utc>,
) -> OpResult<(usize, usize)> {
    let holidays = parse_holiday_file(file_name, text)?;
    let added = add_holidays(store, name, &holidays, now).await?;
    Ok((holidays.len(), added))
}

/// The calendars with no holiday from `today` to a year after: the usual sign of a
/// calendar nobody loaded the new year into.
pub fn without_coming_holidays(calendars: &[CalendarRecord], today: NaiveDate) -> Vec<String> {
    let horizon = today + chrono::Duration::days(365);
    calendars
        .iter()
        .filter(|c| {
            !c.holidays
                .iter()
                .any(|h| h.date >= today && h.date <= horizon)
        })
        .map(|c| c.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dates(holidays: &[Holiday]) -> Vec<String> {
        holidays
            .iter()
            .map(|h| format!("{} {}", h.date, h.description.as_deref().unwrap_or("-")))
            .collect()
    }

    const ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
BEGIN:VEVENT\r\nUID:a@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20261225\r\n\
DTEND;VALUE=DATE:20261226\r\nSUMMARY:Christmas Day\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:b@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20261231\r\n\
DTEND;VALUE=DATE:20270102\r\nSUMMARY:Year end\\, closed\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn ics_all_day_events_are_holidays_on_each_of_their_days() {
        let holidays = parse_holiday_file("uk.ics", ICS).unwrap();
        assert_eq!(
            dates(&holidays),
            [
                "2026-12-25 Christmas Day",
                "2026-12-31 Year end, closed",
                "2027-01-01 Year end, closed"
            ]
        );
    }

    #[test]
    fn ics_problems_name_the_line() {
        let timed = ICS.replace("DTSTART;VALUE=DATE:20261231", "DTSTART:20261231T090000Z");
        let err = parse_holiday_file("uk.ics", &timed)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "uk.ics: line 11: event 'Year end, closed' is not an all-day event (its DTSTART has a time)"
        );
        let repeating = ICS.replace(
            "SUMMARY:Christmas Day",
            "SUMMARY:Christmas Day\r\nRRULE:FREQ=YEARLY",
        );
        let err = parse_holiday_file("uk.ics", &repeating)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("uk.ics: line 4: event 'Christmas Day' repeats"),
            "{err}"
        );
        let broken = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nthis is not a property\r\n";
        let err = parse_holiday_file("x.ics", broken).unwrap_err().to_string();
        assert!(
            err.starts_with("x.ics: not a readable iCalendar file"),
            "{err}"
        );
    }

    #[test]
    fn csv_rows_with_an_optional_header() {
        let text = "date,description\n2026-12-25,Christmas Day\n2026-12-28,\"Boxing Day, substitute\"\n\n2027-01-01\n";
        assert_eq!(
            dates(&parse_holiday_file("h.csv", text).unwrap()),
            [
                "2026-12-25 Christmas Day",
                "2026-12-28 Boxing Day, substitute",
                "2027-01-01 -"
            ]
        );
        let err = parse_holiday_file("h.csv", "2026-12-25,Christmas\n25/12/2026,Boxing\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "h.csv: line 2: '25/12/2026' is not a date (YYYY-MM-DD)"
        );
        let err = parse_holiday_file("h.csv", "2026-12-25,Christmas,extra\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("h.csv: line 1: 3 fields"), "{err}");
    }
}
