//! What to fire after the service was down or busy past some slots (SPEC §6).

use chrono::{DateTime, Duration, Utc};

use crate::{Fire, Schedule};

/// `MISFIRE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MisfirePolicy {
    /// Run once for all the missed slots.
    #[default]
    Coalesce,
    /// Drop the missed slots and wait for the next.
    Skip,
    /// Run every missed slot, up to [`CATCHUP_LIMIT`].
    Catchup,
}

impl MisfirePolicy {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_uppercase().as_str() {
            "COALESCE" => Some(Self::Coalesce),
            "SKIP" => Some(Self::Skip),
            "CATCHUP" => Some(Self::Catchup),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Coalesce => "COALESCE",
            Self::Skip => "SKIP",
            Self::Catchup => "CATCHUP",
        }
    }
}

/// The most slots `CATCHUP` runs after one outage; older ones are dropped.
pub const CATCHUP_LIMIT: usize = 1000;

/// How many due slots are counted one by one. Past this (an every-second cron after a
/// long outage), the plan looks only at the latest slots and says the count is a floor.
const COUNT_LIMIT: u64 = 100_000;

/// The fires to make now, and what happened to the others. A fire's time decides
/// whether it is due or missed; its slot names the request (a calendar may have moved
/// the one from the other).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MisfirePlan {
    /// Fires to make, oldest first.
    pub run: Vec<Fire>,
    /// Missed slots folded into a fire (`COALESCE`).
    pub merged: u64,
    /// Missed slots not fired (`SKIP`, or `CATCHUP` past its limit).
    pub dropped: u64,
    /// Due slots in all, on time or missed.
    pub due: u64,
    /// More slots were due than were counted: `due`, `merged` and `dropped` are floors.
    pub count_is_floor: bool,
    /// The time of the latest due fire; the next plan starts after it.
    pub handled_through: Option<DateTime<Utc>>,
}

/// Plans the fires of `schedule` for the slots after `last_handled` up to `now`, with
/// nothing queued ahead: [`plan_fires`] with no lead.
pub fn plan_misfires(
    schedule: &Schedule,
    last_handled: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    grace: Duration,
) -> MisfirePlan {
    plan_fires(schedule, last_handled, now, Duration::zero(), grace)
}

/// Plans the fires of `schedule` for the slots after `last_handled` up to `now + lead`.
///
/// Slots after `now` are queued ahead of their time and always fire. Of the slots that
/// have come, only the latest can be on time, and only when it is at most `grace` late;
/// every other one is *missed* (too late, or followed by another slot that is also
/// due), and the policy decides about those: `COALESCE` fires the latest of them once,
/// `SKIP` drops them, `CATCHUP` fires each (at most [`CATCHUP_LIMIT`]).
///
/// Without a `last_handled` (a schedule seen for the first time), only slots within the
/// grace are due: a schedule does not owe runs from before it was loaded.
pub fn plan_fires(
    schedule: &Schedule,
    last_handled: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    lead: Duration,
    grace: Duration,
) -> MisfirePlan {
    let on_time_from = now - grace;
    let from = last_handled.unwrap_or(on_time_from);
    let (slots, due, count_is_floor) = due_slots(schedule, from, now + lead, grace);
    let Some(latest) = slots.last().map(|f| f.at) else {
        return MisfirePlan::default();
    };
    let (come, upcoming) = slots.split_at(slots.partition_point(|f| f.at <= now));
    let come_count = due - upcoming.len() as u64;
    // The latest fires that have come are on time when within the grace: one, or
    // several that a calendar moved onto the same instant.
    let on_time: &[Fire] = match come.last() {
        Some(latest) if latest.at > on_time_from => {
            &come[come.partition_point(|f| f.at < latest.at)..]
        }
        _ => &[],
    };
    let missed = come_count - on_time.len() as u64;
    let mut plan = MisfirePlan {
        due,
        count_is_floor,
        handled_through: Some(latest),
        ..MisfirePlan::default()
    };
    plan.run = match schedule.misfire {
        // The missed fires fold into the fires on time, or into the latest.
        MisfirePolicy::Coalesce if !on_time.is_empty() => {
            plan.merged = missed;
            on_time.to_vec()
        }
        MisfirePolicy::Coalesce => {
            plan.merged = come_count.saturating_sub(1);
            come.last().copied().into_iter().collect()
        }
        MisfirePolicy::Skip => {
            plan.dropped = missed;
            on_time.to_vec()
        }
        MisfirePolicy::Catchup => {
            plan.dropped = due - slots.len() as u64;
            come.to_vec()
        }
    };
    plan.run.extend_from_slice(upcoming);
    plan
}

/// The fires in `(from, now]` (the latest ones when there are too many to count), how
/// many there are, and whether that count is a floor.
fn due_slots(
    schedule: &Schedule,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
    grace: Duration,
) -> (Vec<Fire>, u64, bool) {
    let mut counted = 0_u64;
    let mut tail = std::collections::VecDeque::new();
    for fire in schedule.fires(from).take_while(|f| f.at <= now) {
        counted += 1;
        tail.push_back(fire);
        if tail.len() > CATCHUP_LIMIT {
            tail.pop_front();
        }
        if counted == COUNT_LIMIT {
            // Too many to count: find a short window before `now` that still holds a
            // fire, and keep only the fires in it.
            let cursor = fire.at;
            let mut span = grace.max(Duration::seconds(1));
            let window_start = loop {
                let probe = now - span;
                if probe <= cursor {
                    break cursor;
                }
                if schedule.next_fire(probe).is_some_and(|at| at <= now) {
                    break probe;
                }
                span = span * 2;
            };
            if window_start > cursor {
                let latest: Vec<Fire> = schedule
                    .fires(window_start)
                    .take_while(|f| f.at <= now)
                    .collect();
                let skipped = latest.len() as u64;
                let keep = latest.len().min(CATCHUP_LIMIT);
                return (
                    latest[latest.len() - keep..].to_vec(),
                    counted + skipped,
                    true,
                );
            }
        }
    }
    (tail.into(), counted, false)
}
