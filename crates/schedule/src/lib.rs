//! The rules of SPEC §6: a `DMS_JOBSCH` row parsed into a validated [`Schedule`], the
//! next fire after an instant, and the misfire plan after downtime.
//!
//! *Architecture Invariant:* this crate is pure. It reads no clock, no database and no
//! environment: "now" and the default zone are arguments. That is what lets its tests
//! pin every DST change of every zone they care about.

mod calendar;
mod dwtool;
mod fires;
mod misfire;
mod parse;
mod rule;
mod zone;

#[cfg(test)]
mod calendar_tests;
#[cfg(test)]
mod tests;

pub use calendar::{Calendar, HolidayRule, ScheduleCalendar, parse_workdays};
pub use dwtool::{ReportTimes, report_schedule, upload_schedule};
pub use fires::{Fire, Fires};
pub use misfire::{CATCHUP_LIMIT, MisfirePlan, MisfirePolicy, plan_fires, plan_misfires};
pub use parse::{
    ScheduleError, ScheduleParser, parse_frequency_code, parse_schedule, parse_timezone,
};
pub use rule::{Frequency, MonthDay, Rule};
pub use zone::{resolve_local, to_local};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// A validated schedule: one `DMS_JOBSCH` row that the service can fire.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub jobschid: i64,
    pub mapref: String,
    /// `None` for a dependent schedule, which fires after its parent's run succeeds and
    /// never by time.
    pub rule: Option<Rule>,
    pub zone: Tz,
    /// The first instant a fire may have (`STRTDT` read in `zone`).
    pub start: Option<DateTime<Utc>>,
    /// The last instant a fire may have (`ENDDT` read in `zone`).
    pub end: Option<DateTime<Utc>>,
    pub misfire: MisfirePolicy,
    /// `DPND_JOBSCHID`: the schedule whose successful run triggers this one.
    pub parent: Option<i64>,
    /// `MAXFAIL`: consecutive failed runs after which the schedule is disabled.
    pub max_failures: Option<u32>,
    /// `CALNM` and `CALRULE`: the business calendar and what a slot on another day does.
    pub calendar: Option<ScheduleCalendar>,
}

impl Schedule {
    /// The dedupe key of a fire (SPEC §3): `sch:<JOBSCHID>:<slot UTC>`.
    pub fn dedupe_key(&self, slot: DateTime<Utc>) -> String {
        format!("sch:{}:{}", self.jobschid, format_slot(slot))
    }
}

/// A slot as RFC 3339 UTC, to the second (to the nanosecond when it has a fraction).
pub fn format_slot(slot: DateTime<Utc>) -> String {
    slot.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
