//! The node's in-memory view of `DMS_JOBSCH`: the schedules it fires, a timer heap
//! ordered by next fire, and the incremental sync that keeps both true to the table.
//!
//! This part does no I/O: the node loads rows and writes states; here the rows are
//! diffed and the slots are planned. That keeps it fast to test and to measure.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use dwsched_model::{
    CalendarRecord, NewRequest, RequestType, RunParams, RunPayload, ScheduleRow, ScheduleState,
    Trigger,
};
use dwsched_schedule::{
    Fire, MisfirePlan, Schedule, ScheduleParser, format_slot, plan_fires, to_local,
};

/// One schedule as the node tracks it.
#[derive(Debug)]
struct Tracked {
    /// The row as last parsed; compared by `same_content`.
    content: ScheduleRow,
    /// `None` when the row cannot be scheduled (its reason is in `problem`).
    schedule: Option<Schedule>,
    problem: Option<String>,
    next: Option<DateTime<Utc>>,
    /// The latest slot already planned; slots after it and up to now are due.
    last_handled: Option<DateTime<Utc>>,
    /// Bumped on every change, so that stale heap entries are recognised.
    generation: u64,
}

/// What a sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub total: usize,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub invalid: usize,
    /// Rows whose problem is new or different since the last sync: (id, mapref, why).
    pub new_problems: Vec<(i64, String, String)>,
    /// Rows whose `NXT_RUN_DT` or `SCHERR` must be written.
    pub state_writes: Vec<ScheduleState>,
    /// Schedules whose timers were (re)computed.
    pub timers_touched: usize,
}

/// The slots of one schedule to fire now, and what the misfire policy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueSchedule {
    pub jobschid: i64,
    pub mapref: String,
    pub plan: MisfirePlan,
    pub policy: &'static str,
    pub requests: Vec<NewRequest>,
}

#[derive(Debug, Default)]
pub struct ScheduleSet {
    tracked: HashMap<i64, Tracked>,
    /// Rows marked as on a dependency cycle.
    on_cycle: HashSet<i64>,
    parser: ScheduleParser,
    timers: BinaryHeap<Reverse<(DateTime<Utc>, i64, u64)>>,
    generation: u64,
    /// The business calendars as last loaded, by name.
    calendars: HashMap<String, CalendarRecord>,
    /// Calendars changed since the last sync: the schedules naming them are parsed
    /// again at the next one.
    calendars_changed: HashSet<String>,
}

/// Whether two versions of a row schedule the same way: every column but those the
/// service writes (`LST_RUN_DT`, `NXT_RUN_DT`, `FAILCNT`, `SCHERR`, `RECUPDT`).
fn same_content(a: &ScheduleRow, b: &ScheduleRow) -> bool {
    a.jobschid == b.jobschid
        && a.jobflwid == b.jobflwid
        && a.mapref == b.mapref
        && a.frqcd == b.frqcd
        && a.frqdd == b.frqdd
        && a.frqhh == b.frqhh
        && a.frqmi == b.frqmi
        && a.strtdt == b.strtdt
        && a.enddt == b.enddt
        && a.stflg == b.stflg
        && a.schflg == b.schflg
        && a.curflg == b.curflg
        && a.dpnd_jobschid == b.dpnd_jobschid
        && a.timezone == b.timezone
        && a.cronexpr == b.cronexpr
        && a.misfire == b.misfire
        && a.maxfail == b.maxfail
        && a.calnm == b.calnm
        && a.calrule == b.calrule
}

impl ScheduleSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.tracked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracked.is_empty()
    }

    /// The earliest next fire of any schedule.
    pub fn next_wake(&mut self) -> Option<DateTime<Utc>> {
        while let Some(Reverse((at, id, generation))) = self.timers.peek().copied() {
            match self.tracked.get(&id) {
                Some(t) if t.generation == generation && t.next == Some(at) => return Some(at),
                _ => {
                    self.timers.pop();
                }
            }
        }
        None
    }

    /// The stored next fire of a schedule, for tests and status.
    pub fn next_fire_of(&self, jobschid: i64) -> Option<DateTime<Utc>> {
        self.tracked.get(&jobschid).and_then(|t| t.next)
    }

    /// Takes the business calendars as stored now. The schedules that name one that is
    /// new, changed or gone are parsed again, and get new timers, at the next sync;
    /// the others are left alone.
    pub fn use_calendars(&mut self, records: Vec<CalendarRecord>) {
        let records: HashMap<String, CalendarRecord> = records
            .into_iter()
            .map(|r| (r.name.trim().to_string(), r))
            .collect();
        let names: HashSet<&String> = records.keys().chain(self.calendars.keys()).collect();
        let changed: Vec<String> = names
            .into_iter()
            .filter(|name| records.get(*name) != self.calendars.get(*name))
            .cloned()
            .collect();
        if changed.is_empty() {
            return;
        }
        self.calendars_changed.extend(changed);
        self.parser.set_records(records.values());
        self.calendars = records;
    }

    /// Brings the set in line with all the scheduled rows of `DMS_JOBSCH`: rows are
    /// matched by JOBSCHID and compared by content, and only added, changed and removed
    /// rows are parsed and get new timers.
    pub fn sync(
        &mut self,
        rows: &[ScheduleRow],
        default_zone: Tz,
        now: DateTime<Utc>,
    ) -> SyncReport {
        let present: Vec<i64> = rows.iter().map(|r| r.jobschid).collect();
        self.sync_changes(&present, rows, default_zone, now)
    }

    /// The ids of `present` that the set does not track yet: their rows must be among
    /// those given to [`Self::sync_changes`].
    pub fn untracked(&self, present: &[i64]) -> Vec<i64> {
        present
            .iter()
            .copied()
            .filter(|id| !self.tracked.contains_key(id))
            .collect()
    }

    /// An incremental sync: `present` holds the ids of every scheduled row, `rows` the
    /// rows that may have changed (every untracked id among them). Rows not given keep
    /// their timers untouched.
    pub fn sync_changes(
        &mut self,
        present: &[i64],
        rows: &[ScheduleRow],
        default_zone: Tz,
        now: DateTime<Utc>,
    ) -> SyncReport {
        let mut report = SyncReport {
            total: present.len(),
            ..SyncReport::default()
        };
        let present: HashSet<i64> = present.iter().copied().collect();
        let before = self.tracked.len();
        self.tracked.retain(|id, _| present.contains(id));
        self.on_cycle.retain(|id| present.contains(id));
        report.removed = before - self.tracked.len();
        let mut retracked: HashSet<i64> = HashSet::new();

        for row in rows.iter().filter(|r| present.contains(&r.jobschid)) {
            let existing = self.tracked.get(&row.jobschid);
            if let Some(tracked) = existing.filter(|t| same_content(&t.content, row)) {
                // Another tool may have written these; keep the table true.
                if row.nxt_run_dt != tracked.next || row.scherr != tracked.problem {
                    report.state_writes.push(ScheduleState {
                        jobschid: row.jobschid,
                        next_fire: tracked.next,
                        scherr: tracked.problem.clone(),
                    });
                }
                continue;
            }
            if existing.is_some() {
                report.changed += 1;
            } else {
                report.added += 1;
            }
            let stored = (row.nxt_run_dt, row.scherr.clone());
            self.track(row.clone(), default_zone, now, stored, &mut report);
            retracked.insert(row.jobschid);
        }
        // Rows unchanged themselves whose calendar changed.
        let changed_calendars = std::mem::take(&mut self.calendars_changed);
        let follow: Vec<i64> = self
            .tracked
            .iter()
            .filter(|(id, t)| {
                !retracked.contains(id)
                    && t.content
                        .calnm
                        .as_deref()
                        .is_some_and(|name| changed_calendars.contains(name.trim()))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in follow {
            if let Some(t) = self.tracked.get(&id) {
                let stored = (t.next, t.problem.clone());
                let row = t.content.clone();
                report.changed += 1;
                self.track(row, default_zone, now, stored, &mut report);
            }
        }
        self.check_cycles(default_zone, now, &mut report);
        report.invalid = self
            .tracked
            .values()
            .filter(|t| t.problem.is_some())
            .count();
        report
    }

    /// Parses a row and (re)sets its timer. `stored` is the row's `NXT_RUN_DT` and
    /// `SCHERR` as the table holds them, to write only what differs.
    fn track(
        &mut self,
        row: ScheduleRow,
        default_zone: Tz,
        now: DateTime<Utc>,
        stored: (Option<DateTime<Utc>>, Option<String>),
        report: &mut SyncReport,
    ) {
        let existing = self.tracked.get(&row.jobschid);
        let previous_problem = existing
            .and_then(|t| t.problem.clone())
            .or_else(|| stored.1.clone());
        let parsed = if self.on_cycle.contains(&row.jobschid) {
            Err(existing.and_then(|t| t.problem.clone()).unwrap_or_default())
        } else {
            self.parser
                .parse(&row, default_zone)
                .map_err(|e| e.to_string())
        };
        let (schedule, problem) = match parsed {
            Ok(schedule) => (Some(schedule), None),
            Err(problem) => (None, Some(problem)),
        };
        if let Some(problem) = &problem
            && (previous_problem.as_ref() != Some(problem) || existing.is_none())
        {
            report
                .new_problems
                .push((row.jobschid, row.mapref.clone(), problem.clone()));
        }
        // A stored next fire that has passed marks where this schedule was left: its
        // slots from there on are due (and the misfire policy applies). A changed rule
        // owes nothing from before the change.
        let last_handled = match existing {
            None => stored
                .0
                .filter(|at| *at <= now)
                .map(|at| at - Duration::nanoseconds(1)),
            Some(_) => None,
        };
        let next = match (&schedule, last_handled) {
            (Some(s), Some(handled)) => s.next_fire(handled),
            (Some(s), None) => s.next_fire(now - Duration::nanoseconds(1)),
            (None, _) => None,
        };
        self.generation += 1;
        if let Some(at) = next {
            self.timers
                .push(Reverse((at, row.jobschid, self.generation)));
        }
        report.timers_touched += 1;
        if stored.0 != next || stored.1 != problem {
            report.state_writes.push(ScheduleState {
                jobschid: row.jobschid,
                next_fire: next,
                scherr: problem.clone(),
            });
        }
        let jobschid = row.jobschid;
        self.tracked.insert(
            jobschid,
            Tracked {
                content: row,
                schedule,
                problem,
                next,
                last_handled,
                generation: self.generation,
            },
        );
    }

    /// Marks the rows on a `DPND_JOBSCHID` cycle as unschedulable, and re-parses rows
    /// whose cycle was broken.
    fn check_cycles(&mut self, default_zone: Tz, now: DateTime<Utc>, report: &mut SyncReport) {
        let edges = self
            .tracked
            .iter()
            .filter_map(|(id, t)| t.content.dpnd_jobschid.map(|parent| (*id, parent)));
        let cycles = dependency_cycles(edges);
        let broken: Vec<i64> = self
            .on_cycle
            .iter()
            .copied()
            .filter(|id| !cycles.contains_key(id))
            .collect();
        for id in broken {
            self.on_cycle.remove(&id);
            if let Some(t) = self.tracked.get(&id) {
                let stored = (t.next, t.problem.clone());
                let row = t.content.clone();
                self.track(row, default_zone, now, stored, report);
            }
        }
        for (id, cycle) in cycles {
            let problem = format!("DPND_JOBSCHID: dependency cycle {cycle}");
            let Some(t) = self.tracked.get_mut(&id) else {
                continue;
            };
            if t.problem.as_ref() == Some(&problem) {
                continue;
            }
            self.on_cycle.insert(id);
            report
                .new_problems
                .push((id, t.content.mapref.clone(), problem.clone()));
            report.state_writes.push(ScheduleState {
                jobschid: id,
                next_fire: None,
                scherr: Some(problem.clone()),
            });
            t.schedule = None;
            t.next = None;
            t.problem = Some(problem);
        }
    }

    /// Plans every schedule whose next fire has come, advances its timer, and returns
    /// the requests to queue. `grace` is how late a slot may be and still count as on
    /// time.
    ///
    /// Slots up to `lead` ahead are queued now with `NOT_BEFORE` set to the slot, so that
    /// a burst of fires (ten thousand schedules on one minute) is written before its
    /// minute and becomes claimable on time.
    pub fn take_due(
        &mut self,
        now: DateTime<Utc>,
        lead: Duration,
        grace: Duration,
    ) -> Vec<DueSchedule> {
        let horizon = now + lead;
        let mut due = Vec::new();
        while let Some(Reverse((at, id, generation))) = self.timers.peek().copied() {
            if at > horizon {
                break;
            }
            self.timers.pop();
            let Some(tracked) = self.tracked.get_mut(&id) else {
                continue;
            };
            if tracked.generation != generation || tracked.next != Some(at) {
                continue;
            }
            let Some(schedule) = &tracked.schedule else {
                continue;
            };
            // At least this slot is due, also when it is later than the grace.
            let from = tracked
                .last_handled
                .unwrap_or(at - Duration::nanoseconds(1))
                .min(at - Duration::nanoseconds(1));
            let plan = plan_fires(schedule, Some(from), now, lead, grace);
            let requests = plan
                .run
                .iter()
                .map(|fire| fire_request(schedule, fire, (fire.at > now).then_some(fire.at)))
                .collect();
            tracked.last_handled = plan.handled_through.or(tracked.last_handled);
            let after = tracked.last_handled.map_or(horizon, |h| h.max(horizon));
            tracked.next = schedule.next_fire(after);
            if let Some(next) = tracked.next {
                self.timers.push(Reverse((next, id, generation)));
            }
            due.push(DueSchedule {
                jobschid: id,
                mapref: schedule.mapref.clone(),
                policy: schedule.misfire.as_str(),
                plan,
                requests,
            });
        }
        due
    }

    /// Puts a schedule's slots back when their requests could not be queued, so that
    /// the next attempt plans them again (dedupe keys make a repeat harmless).
    pub fn retry_later(
        &mut self,
        jobschid: i64,
        handled_before: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) {
        if let Some(tracked) = self.tracked.get_mut(&jobschid) {
            tracked.last_handled = handled_before;
            tracked.next = Some(at);
            self.timers
                .push(Reverse((at, jobschid, tracked.generation)));
        }
    }

    /// The `NXT_RUN_DT` values to write after fires.
    pub fn states_of(&self, ids: impl IntoIterator<Item = i64>) -> Vec<ScheduleState> {
        ids.into_iter()
            .filter_map(|id| {
                self.tracked.get(&id).map(|t| ScheduleState {
                    jobschid: id,
                    next_fire: t.next,
                    scherr: t.problem.clone(),
                })
            })
            .collect()
    }

    /// The last slot handled of a schedule.
    pub fn last_handled(&self, jobschid: i64) -> Option<DateTime<Utc>> {
        self.tracked.get(&jobschid).and_then(|t| t.last_handled)
    }
}

/// The request of one fire: `IMMEDIATE`, with its slot's business date and the dedupe
/// key `sch:<JOBSCHID>:<slot>` (also when a calendar moved the fire off its slot),
/// claimable from `not_before` when it is queued early.
pub fn fire_request(
    schedule: &Schedule,
    fire: &Fire,
    not_before: Option<DateTime<Utc>>,
) -> NewRequest {
    let slot = fire.slot;
    let payload = RunPayload {
        params: RunParams {
            run_date: Some(to_local(schedule.zone, slot).date()),
            ..RunParams::default()
        },
        trigger: Some(Trigger::Schedule {
            jobschid: schedule.jobschid,
            slot: format_slot(slot),
            fire: fire.is_moved().then(|| format_slot(fire.at)),
        }),
        from_step: None,
    };
    NewRequest {
        dedupe_key: Some(schedule.dedupe_key(slot)),
        not_before,
        ..NewRequest::new(
            schedule.mapref.clone(),
            RequestType::Immediate,
            payload.to_json(),
        )
    }
}

/// The rows on a `DPND_JOBSCHID` cycle, each with the cycle as text (`3 -> 5 -> 3`),
/// from (row, parent) edges.
fn dependency_cycles(edges: impl Iterator<Item = (i64, i64)>) -> HashMap<i64, String> {
    let parent: HashMap<i64, i64> = edges.collect();
    let mut on_cycle = HashMap::new();
    for &start in parent.keys() {
        let mut path = vec![start];
        let mut at = start;
        while let Some(&next) = parent.get(&at) {
            if let Some(position) = path.iter().position(|&p| p == next) {
                let cycle = &path[position..];
                let mut ids: Vec<i64> = cycle.to_vec();
                // The same text for every member: start the cycle at its smallest id.
                let smallest = ids
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, id)| **id)
                    .map_or(0, |(i, _)| i);
                ids.rotate_left(smallest);
                ids.push(ids[0]);
                let text = ids
                    .iter()
                    .map(|id| id.to_string())
                    .collect::<Vec<_>>()
                    .join(" -> ");
                for id in cycle {
                    on_cycle.entry(*id).or_insert_with(|| text.clone());
                }
                break;
            }
            if path.len() > parent.len() {
                break;
            }
            path.push(next);
            at = next;
        }
    }
    on_cycle
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn hourly(id: i64) -> ScheduleRow {
        ScheduleRow {
            jobschid: id,
            mapref: format!("JOB{id}"),
            frqcd: Some("CR".into()),
            cronexpr: Some("0 * * * *".into()),
            schflg: Some("Y".into()),
            curflg: Some("Y".into()),
            ..ScheduleRow::default()
        }
    }

    fn daily_on(id: i64, calendar: Option<&str>, rule: &str) -> ScheduleRow {
        ScheduleRow {
            jobschid: id,
            mapref: format!("JOB{id}"),
            frqcd: Some("DL".into()),
            frqhh: Some(2),
            calnm: calendar.map(str::to_string),
            calrule: Some(rule.into()),
            schflg: Some("Y".into()),
            curflg: Some("Y".into()),
            ..ScheduleRow::default()
        }
    }

    fn calendar(name: &str, holidays: &[&str]) -> CalendarRecord {
        CalendarRecord {
            name: name.into(),
            workdays: Some("MON,TUE,WED,THU,FRI".into()),
            holidays: holidays
                .iter()
                .map(|d| dwsched_model::Holiday {
                    date: d.parse().unwrap(),
                    description: Some(format!("holiday {d}")),
                })
                .collect(),
            ..CalendarRecord::default()
        }
    }

    /// A calendar edit reaches the schedules that use it, and only them; a schedule
    /// naming a calendar that does not exist is invalid until it does.
    #[test]
    fn calendar_edits_retime_only_the_schedules_that_use_them() {
        let mut set = ScheduleSet::new();
        // Wednesday 2026-12-23, after the day's fire.
        let now = utc("2026-12-23T12:00:00Z");
        let rows = vec![
            daily_on(1, Some("UK"), "SKIP"),
            daily_on(2, Some("US"), "SKIP"),
            daily_on(3, None, "SKIP"),
            daily_on(4, Some("NOPE"), "SKIP"),
        ];
        set.use_calendars(vec![calendar("UK", &[]), calendar("US", &[])]);
        let first = set.sync(&rows, Tz::UTC, now);
        assert_eq!((first.added, first.invalid), (4, 1));
        assert_eq!(set.next_fire_of(1), Some(utc("2026-12-24T02:00:00Z")));
        let stored: Vec<_> = rows
            .iter()
            .map(|r| ScheduleRow {
                nxt_run_dt: set.next_fire_of(r.jobschid),
                scherr: set.tracked[&r.jobschid].problem.clone(),
                ..r.clone()
            })
            .collect();
        assert_eq!(
            stored[3].scherr.as_deref(),
            Some("CALNM 'NOPE': no such calendar in DMS_CALENDAR")
        );

        // Christmas Eve becomes a holiday in UK: schedule 1 alone gets a new timer.
        set.use_calendars(vec![calendar("UK", &["2026-12-24"]), calendar("US", &[])]);
        let edit = set.sync(&stored, Tz::UTC, now);
        assert_eq!((edit.changed, edit.timers_touched), (1, 1));
        assert_eq!(set.next_fire_of(1), Some(utc("2026-12-25T02:00:00Z")));
        assert_eq!(set.next_fire_of(2), Some(utc("2026-12-24T02:00:00Z")));
        assert_eq!(
            edit.state_writes,
            [ScheduleState {
                jobschid: 1,
                next_fire: Some(utc("2026-12-25T02:00:00Z")),
                scherr: None,
            }]
        );

        // The calendar that was missing appears: its schedule becomes valid.
        set.use_calendars(vec![
            calendar("UK", &["2026-12-24"]),
            calendar("US", &[]),
            calendar("NOPE", &[]),
        ]);
        let created = set.sync(&stored, Tz::UTC, now);
        assert_eq!((created.changed, created.invalid), (1, 0));
        assert_eq!(set.next_fire_of(4), Some(utc("2026-12-24T02:00:00Z")));

        // The same calendars again: nothing to do.
        set.use_calendars(vec![
            calendar("UK", &["2026-12-24"]),
            calendar("US", &[]),
            calendar("NOPE", &[]),
        ]);
        let stored: Vec<_> = stored
            .iter()
            .map(|r| ScheduleRow {
                nxt_run_dt: set.next_fire_of(r.jobschid),
                scherr: None,
                ..r.clone()
            })
            .collect();
        assert_eq!(set.sync(&stored, Tz::UTC, now).timers_touched, 0);
    }

    /// Slots a calendar moves onto one instant are queued in slot order, each with its
    /// own business date and dedupe key.
    #[test]
    fn moved_fires_keep_their_slots_date_and_key() {
        let mut set = ScheduleSet::new();
        set.use_calendars(vec![calendar("UK", &["2026-12-25", "2026-12-28"])]);
        // Christmas Eve, before the day's fire; Friday 25th to Monday 28th move to
        // Tuesday 29th.
        let now = utc("2026-12-23T12:00:00Z");
        set.sync(&[daily_on(9, Some("UK"), "NEXT")], Tz::UTC, now);
        let keys = |due: &[DueSchedule]| -> Vec<String> {
            due.iter()
                .flat_map(|d| d.requests.iter().map(|r| r.dedupe_key.clone().unwrap()))
                .collect()
        };
        let thursday = utc("2026-12-24T02:00:00Z");
        let due = set.take_due(thursday, Duration::zero(), Duration::seconds(60));
        assert_eq!(keys(&due), ["sch:9:2026-12-24T02:00:00Z"]);
        assert_eq!(set.next_fire_of(9), Some(utc("2026-12-29T02:00:00Z")));
        // Five fires on Tuesday's instant, all on time, none merged.
        let tuesday = utc("2026-12-29T02:00:00Z");
        let due = set.take_due(tuesday, Duration::zero(), Duration::seconds(60));
        assert_eq!(due[0].plan.merged, 0);
        assert_eq!(
            keys(&due),
            [
                "sch:9:2026-12-25T02:00:00Z",
                "sch:9:2026-12-26T02:00:00Z",
                "sch:9:2026-12-27T02:00:00Z",
                "sch:9:2026-12-28T02:00:00Z",
                "sch:9:2026-12-29T02:00:00Z",
            ]
        );
        let first = RunPayload::parse(Some(due[0].requests[0].payload.as_str())).unwrap();
        assert_eq!(first.params.run_date, Some("2026-12-25".parse().unwrap()));
        assert_eq!(
            first.trigger,
            Some(Trigger::Schedule {
                jobschid: 9,
                slot: "2026-12-25T02:00:00Z".into(),
                fire: Some("2026-12-29T02:00:00Z".into()),
            })
        );
        assert_eq!(due[0].requests[0].not_before, None);
        assert_eq!(set.next_fire_of(9), Some(utc("2026-12-30T02:00:00Z")));
    }

    #[test]
    fn sync_adds_changes_and_removes_by_id_and_content() {
        let mut set = ScheduleSet::new();
        let now = utc("2026-03-01T10:30:00Z");
        let rows = vec![hourly(1), hourly(2)];
        let first = set.sync(&rows, Tz::UTC, now);
        assert_eq!(
            (first.added, first.changed, first.removed, first.invalid),
            (2, 0, 0, 0)
        );
        assert_eq!(set.next_fire_of(1), Some(utc("2026-03-01T11:00:00Z")));
        assert_eq!(first.state_writes.len(), 2, "NXT_RUN_DT is written");

        // Unchanged rows, with the states written: nothing to do.
        let mut stored: Vec<_> = rows
            .iter()
            .map(|r| ScheduleRow {
                nxt_run_dt: set.next_fire_of(r.jobschid),
                ..r.clone()
            })
            .collect();
        let again = set.sync(&stored, Tz::UTC, now);
        assert_eq!(
            (
                again.added,
                again.changed,
                again.removed,
                again.timers_touched
            ),
            (0, 0, 0, 0)
        );
        assert!(again.state_writes.is_empty());

        // An edited row is picked up; a removed one is dropped; an invalid one reported.
        stored[0].cronexpr = Some("30 * * * *".into());
        stored.remove(1);
        stored.push(ScheduleRow {
            frqdd: Some("XYZ".into()),
            frqcd: Some("WK".into()),
            ..hourly(3)
        });
        let edit = set.sync(&stored, Tz::UTC, now);
        assert_eq!(
            (edit.added, edit.changed, edit.removed, edit.invalid),
            (1, 1, 1, 1)
        );
        assert_eq!(edit.timers_touched, 2);
        assert_eq!(
            set.next_fire_of(1),
            Some(utc("2026-03-01T10:30:00Z")),
            "the slot of this very second is due"
        );
        assert_eq!(
            edit.new_problems,
            [(
                3,
                "JOB3".to_string(),
                "FRQDD 'XYZ': expected a weekday MON..SUN".to_string()
            )]
        );
        let problem = edit.state_writes.iter().find(|s| s.jobschid == 3).unwrap();
        assert_eq!(
            problem.scherr.as_deref(),
            Some("FRQDD 'XYZ': expected a weekday MON..SUN")
        );

        // Fixing the row clears SCHERR.
        stored[1] = ScheduleRow {
            scherr: problem.scherr.clone(),
            frqdd: Some("MON".into()),
            ..stored[1].clone()
        };
        let fixed = set.sync(&stored, Tz::UTC, now);
        assert_eq!(fixed.invalid, 0);
        let cleared = fixed.state_writes.iter().find(|s| s.jobschid == 3).unwrap();
        assert_eq!(cleared.scherr, None);
        assert!(cleared.next_fire.is_some());
    }

    #[test]
    fn slots_fire_once_with_dedupe_keys_and_the_timer_advances() {
        let mut set = ScheduleSet::new();
        set.sync(&[hourly(7)], Tz::UTC, utc("2026-03-01T10:30:00Z"));
        assert_eq!(set.next_wake(), Some(utc("2026-03-01T11:00:00Z")));
        assert!(
            set.take_due(
                utc("2026-03-01T10:59:59Z"),
                Duration::zero(),
                Duration::seconds(60)
            )
            .is_empty()
        );
        let due = set.take_due(
            utc("2026-03-01T11:00:00.010Z"),
            Duration::zero(),
            Duration::seconds(60),
        );
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].requests.len(), 1);
        let request = &due[0].requests[0];
        assert_eq!(
            request.dedupe_key.as_deref(),
            Some("sch:7:2026-03-01T11:00:00Z")
        );
        let payload = RunPayload::parse(Some(&request.payload)).unwrap();
        assert_eq!(payload.params.run_date.unwrap().to_string(), "2026-03-01");
        assert_eq!(set.next_wake(), Some(utc("2026-03-01T12:00:00Z")));
        assert!(
            set.take_due(
                utc("2026-03-01T11:00:01Z"),
                Duration::zero(),
                Duration::seconds(60)
            )
            .is_empty()
        );
    }

    #[test]
    fn slots_within_the_lead_are_queued_early_with_not_before() {
        let mut set = ScheduleSet::new();
        set.sync(&[hourly(8)], Tz::UTC, utc("2026-03-01T10:30:00Z"));
        let lead = Duration::seconds(2);
        assert!(
            set.take_due(utc("2026-03-01T10:59:57Z"), lead, Duration::seconds(60))
                .is_empty()
        );
        let due = set.take_due(utc("2026-03-01T10:59:58.5Z"), lead, Duration::seconds(60));
        assert_eq!(
            due[0].requests[0].not_before,
            Some(utc("2026-03-01T11:00:00Z"))
        );
        assert_eq!(
            due[0].plan.merged + due[0].plan.dropped,
            0,
            "an early slot is no misfire"
        );
        assert_eq!(set.next_wake(), Some(utc("2026-03-01T12:00:00Z")));
        // A slot queued at or after its time needs no NOT_BEFORE.
        let late = set.take_due(utc("2026-03-01T12:00:00.5Z"), lead, Duration::seconds(60));
        assert_eq!(late[0].requests[0].not_before, None);
    }

    #[test]
    fn a_restart_plans_the_slots_missed_since_the_stored_next_fire() {
        let mut set = ScheduleSet::new();
        let row = ScheduleRow {
            nxt_run_dt: Some(utc("2026-03-01T08:00:00Z")),
            misfire: Some("CATCHUP".into()),
            ..hourly(9)
        };
        set.sync(&[row], Tz::UTC, utc("2026-03-01T10:30:00Z"));
        assert_eq!(set.next_wake(), Some(utc("2026-03-01T08:00:00Z")));
        let due = set.take_due(
            utc("2026-03-01T10:30:00Z"),
            Duration::zero(),
            Duration::seconds(60),
        );
        let slots: Vec<_> = due[0].plan.run.iter().map(|f| format_slot(f.at)).collect();
        assert_eq!(
            slots,
            [
                "2026-03-01T08:00:00Z",
                "2026-03-01T09:00:00Z",
                "2026-03-01T10:00:00Z"
            ]
        );
        assert_eq!(set.next_wake(), Some(utc("2026-03-01T11:00:00Z")));

        let mut coalesce = ScheduleSet::new();
        let row = ScheduleRow {
            nxt_run_dt: Some(utc("2026-03-01T08:00:00Z")),
            ..hourly(10)
        };
        coalesce.sync(&[row], Tz::UTC, utc("2026-03-01T10:30:00Z"));
        let due = coalesce.take_due(
            utc("2026-03-01T10:30:00Z"),
            Duration::zero(),
            Duration::seconds(60),
        );
        assert_eq!(due[0].requests.len(), 1);
        assert_eq!(due[0].plan.merged, 2);
    }

    #[test]
    fn incremental_syncs_touch_only_the_rows_given() {
        let now = utc("2026-03-01T10:30:00Z");
        let mut set = ScheduleSet::new();
        set.sync(&(1..=100).map(hourly).collect::<Vec<_>>(), Tz::UTC, now);
        let present: Vec<i64> = (1..=100).filter(|id| *id != 7).chain([101]).collect();
        assert_eq!(set.untracked(&present), [101]);
        let mut edited = hourly(5);
        edited.cronexpr = Some("15 * * * *".into());
        let report = set.sync_changes(&present, &[edited, hourly(101)], Tz::UTC, now);
        assert_eq!(
            (
                report.total,
                report.added,
                report.changed,
                report.removed,
                report.timers_touched
            ),
            (100, 1, 1, 1, 2)
        );
        assert_eq!(set.next_fire_of(5), Some(utc("2026-03-01T11:15:00Z")));
        assert_eq!(set.next_fire_of(7), None);

        // A cycle closed by one edit is found, though its other member was not given.
        let mut a = hourly(10);
        a.dpnd_jobschid = Some(11);
        let mut b = hourly(11);
        b.dpnd_jobschid = Some(10);
        let first = set.sync_changes(&present, &[a], Tz::UTC, now);
        assert_eq!(first.invalid, 0);
        let closed = set.sync_changes(&present, &[b.clone()], Tz::UTC, now);
        assert_eq!(closed.invalid, 2);
        let texts: Vec<_> = closed.new_problems.iter().map(|p| p.2.as_str()).collect();
        assert_eq!(texts, ["DPND_JOBSCHID: dependency cycle 10 -> 11 -> 10"; 2]);
        // Breaking it clears the other member's problem too.
        b.dpnd_jobschid = None;
        let broken = set.sync_changes(&present, &[b], Tz::UTC, now);
        assert_eq!(broken.invalid, 0);
        let cleared = broken
            .state_writes
            .iter()
            .find(|s| s.jobschid == 10)
            .unwrap();
        assert_eq!(cleared.scherr, None);
    }

    #[test]
    fn dependency_cycles_are_problems() {
        let mut a = hourly(1);
        a.dpnd_jobschid = Some(2);
        let mut b = hourly(2);
        b.dpnd_jobschid = Some(1);
        let mut child = hourly(3);
        child.dpnd_jobschid = Some(4);
        let mut set = ScheduleSet::new();
        let report = set.sync(
            &[a, b, child, hourly(4)],
            Tz::UTC,
            utc("2026-03-01T10:30:00Z"),
        );
        assert_eq!(report.invalid, 2);
        let problems: Vec<_> = report.new_problems.iter().map(|p| p.2.as_str()).collect();
        assert!(
            problems
                .iter()
                .all(|p| p.starts_with("DPND_JOBSCHID: dependency cycle")),
            "{problems:?}"
        );
        assert_eq!(
            set.next_fire_of(3),
            None,
            "a dependent schedule has no timer"
        );
        assert!(set.next_fire_of(4).is_some());
    }
}
