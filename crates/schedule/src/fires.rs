//! A schedule's fires: its rule's slots, moved or dropped by its business calendar.
//!
//! Without a calendar (and for `BD`, whose slots are business days already) every slot
//! is a fire at its own time. With one, a slot on a day that is not a business day is
//! dropped (`SKIP`), or fires on the next (`NEXT`) or previous (`PREV`) business day at
//! the same wall-clock time. A fire keeps its slot, which names its business date and
//! dedupe key, so a moved fire is the same fire wherever it lands.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use chrono::{DateTime, Days, Duration, NaiveTime, Utc};

use crate::calendar::{HolidayRule, ScheduleCalendar};
use crate::zone::{resolve_local, to_local};
use crate::{Rule, Schedule};

/// One fire of a schedule: when it happens, and the slot it is for. They order by
/// time, then by slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fire {
    pub at: DateTime<Utc>,
    pub slot: DateTime<Utc>,
}

impl Fire {
    /// A fire at its slot's own time.
    pub fn on_slot(slot: DateTime<Utc>) -> Self {
        Self { at: slot, slot }
    }

    /// Whether a calendar moved the fire from its slot.
    pub fn is_moved(&self) -> bool {
        self.at != self.slot
    }
}

impl Schedule {
    /// The first slot of the schedule's rule strictly after `after`, never before
    /// `start` nor after `end`, whatever its calendar says about the day.
    pub fn next_slot(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let rule = self.rule.as_ref()?;
        // "Strictly after" a moment just before the start lets the start itself fire.
        let floor = match self.start {
            Some(start) if start > after => start - Duration::nanoseconds(1),
            _ => after,
        };
        let slot = rule.first_after(self.zone, self.start, floor)?;
        match self.end {
            Some(end) if slot > end => None,
            _ => Some(slot),
        }
    }

    /// The rule's slots after `after`, in order.
    pub fn slots(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        std::iter::successors(self.next_slot(after), |slot| self.next_slot(*slot))
    }

    /// The fires after `after` (their time strictly after it), in time order. Fires
    /// that a calendar moved onto the same instant all come, in slot order.
    pub fn fires(&self, after: DateTime<Utc>) -> Fires<'_> {
        let calendar = self.moving_calendar();
        // A slot before `after` may fire after it when `NEXT` moves it forward: one on
        // the days off just before `after`'s day. Those days start after the last
        // business day before it, where the walk starts. (A `PREV` fire is never after
        // its slot, and slots before `after` only raise later fires to times before
        // it: no look back.)
        let cursor = match calendar {
            Some(c) if c.rule == HolidayRule::Next => {
                let day = to_local(self.zone, after).date();
                c.calendar
                    .previous_business_day(day)
                    .and_then(|d| d.checked_add_days(Days::new(1)))
                    .map(|d| resolve_local(self.zone, d.and_time(NaiveTime::MIN)))
                    .map_or(after, |t| (t - Duration::nanoseconds(1)).min(after))
            }
            _ => after,
        };
        Fires {
            schedule: self,
            calendar,
            after,
            cursor,
            exhausted: false,
            pending: BinaryHeap::new(),
            floor: None,
            latest: None,
        }
    }

    /// The first fire strictly after `after`; `None` when the schedule fires no more
    /// (or only after its parent).
    pub fn next_fire(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.fires(after).next().map(|fire| fire.at)
    }

    /// Up to `count` fires after `after`, in order.
    pub fn fires_after(&self, after: DateTime<Utc>, count: usize) -> Vec<Fire> {
        self.fires(after).take(count).collect()
    }

    /// Why a slot's day is not a business day of the schedule's calendar (the
    /// holiday's description, or "weekend"); `None` when the calendar leaves the slot
    /// where it is.
    pub fn calendar_note(&self, slot: DateTime<Utc>) -> Option<String> {
        let calendar = self.moving_calendar()?;
        calendar.calendar.why_not(to_local(self.zone, slot).date())
    }

    /// The calendar that moves or drops slots: `BD` slots are business days already.
    fn moving_calendar(&self) -> Option<&ScheduleCalendar> {
        match self.rule {
            Some(Rule::BusinessDay { .. }) | None => None,
            Some(_) => self.calendar.as_ref(),
        }
    }
}

/// The fires of a schedule after an instant (see [`Schedule::fires`]).
#[derive(Debug)]
pub struct Fires<'a> {
    schedule: &'a Schedule,
    calendar: Option<&'a ScheduleCalendar>,
    after: DateTime<Utc>,
    /// The last slot looked at; the next one is the first after it.
    cursor: DateTime<Utc>,
    exhausted: bool,
    /// Fires of slots looked at that a later slot might still precede.
    pending: BinaryHeap<Reverse<Fire>>,
    /// No slot after the cursor fires before this.
    floor: Option<DateTime<Utc>>,
    /// The latest fire so far: a `PREV` fire never goes before it.
    latest: Option<DateTime<Utc>>,
}

impl Iterator for Fires<'_> {
    type Item = Fire;

    fn next(&mut self) -> Option<Fire> {
        let Some(calendar) = self.calendar else {
            let slot = self.schedule.next_slot(self.cursor)?;
            self.cursor = slot;
            return Some(Fire::on_slot(slot));
        };
        loop {
            match self.pending.peek() {
                Some(Reverse(first))
                    if self.exhausted || self.floor.is_some_and(|floor| first.at <= floor) =>
                {
                    let fire = *first;
                    self.pending.pop();
                    if fire.at > self.after {
                        return Some(fire);
                    }
                    continue;
                }
                None if self.exhausted => return None,
                _ => {}
            }
            let Some(slot) = self.schedule.next_slot(self.cursor) else {
                self.exhausted = true;
                continue;
            };
            self.cursor = slot;
            let at = self.place(calendar, slot);
            if let Some(at) = at {
                self.latest = Some(self.latest.map_or(at, |latest| latest.max(at)));
                self.pending.push(Reverse(Fire { at, slot }));
            }
            // A later slot fires at or after its own time (`NEXT`, `SKIP`), or at or
            // after the latest fire (`PREV`).
            self.floor = match calendar.rule {
                HolidayRule::Prev => self.latest,
                HolidayRule::Next | HolidayRule::Skip => Some(slot),
            };
        }
    }
}

impl Fires<'_> {
    /// When a slot fires under the calendar; `None` when it does not.
    fn place(&self, calendar: &ScheduleCalendar, slot: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let zone = self.schedule.zone;
        let local = to_local(zone, slot);
        let day = local.date();
        if calendar.calendar.is_business_day(day) {
            return Some(slot);
        }
        // The rule's own time of day, not the slot's: a slot in a DST gap was shifted
        // to the gap's end, and the day it moves to may have no gap.
        let time = self
            .schedule
            .rule
            .as_ref()
            .and_then(Rule::time_of_day)
            .unwrap_or(local.time());
        let moved_to = |day: chrono::NaiveDate| resolve_local(zone, day.and_time(time));
        match calendar.rule {
            HolidayRule::Skip => None,
            HolidayRule::Next => calendar.calendar.next_business_day(day).map(moved_to),
            HolidayRule::Prev => calendar
                .calendar
                .previous_business_day(day)
                .map(moved_to)
                .map(|at| self.latest.map_or(at, |latest| latest.max(at))),
        }
    }
}
