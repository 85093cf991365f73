//! Wall-clock times in a zone, with the DST rules of SPEC §6.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// The instant of a wall-clock time in `zone`. A time that occurs twice (the clock
/// falls back) is its first occurrence; a time that does not exist (the clock springs
/// forward) is the first instant after the gap, e.g. 02:30 → 03:00.
pub fn resolve_local(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => first_instant_after_gap(zone, local),
    }
}

/// Gaps start and end on whole minutes in every zone of the tz database since 1970, so
/// walking whole minutes from the gap's inside finds its end. The longest gap on record
/// is a day (Samoa, 2011); the walk is bounded by that.
fn first_instant_after_gap(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(local);
    for _ in 0..=24 * 60 {
        probe += Duration::minutes(1);
        match zone.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => {}
        }
    }
    // Unreachable with real zone data; reading the time as UTC keeps the caller total.
    local.and_utc()
}

/// The wall-clock time of an instant in `zone`.
pub fn to_local(zone: Tz, instant: DateTime<Utc>) -> NaiveDateTime {
    instant.with_timezone(&zone).naive_local()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn local(y: i32, m: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn gaps_resolve_to_their_end() {
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            resolve_local(ny, local(2026, 3, 8, 2, 30)),
            utc("2026-03-08T07:00:00Z")
        );
        let lord_howe: Tz = "Australia/Lord_Howe".parse().unwrap();
        // Lord Howe springs forward half an hour: 02:00 → 02:30.
        assert_eq!(
            resolve_local(lord_howe, local(2026, 10, 4, 2, 15)),
            utc("2026-10-03T15:30:00Z")
        );
    }

    #[test]
    fn folds_resolve_to_their_first_occurrence() {
        let london: Tz = "Europe/London".parse().unwrap();
        // 01:30 happens twice on 2026-10-25: first in BST (00:30Z), then GMT (01:30Z).
        assert_eq!(
            resolve_local(london, local(2026, 10, 25, 1, 30)),
            utc("2026-10-25T00:30:00Z")
        );
        assert_eq!(
            to_local(london, utc("2026-10-25T01:30:00Z")),
            local(2026, 10, 25, 1, 30)
        );
    }
}
