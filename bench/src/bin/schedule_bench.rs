//! The schedule engine's figures: `next_fire` calls per second for DL/WK/MN in a DST
//! zone on one core, beside the same with a 20-holiday business calendar (`BD -1`,
//! `DL` skipping or moving holidays), and the sync of 100,000 schedules from SQLite
//! (full, and with 10 rows changed). Run with
//! `cargo run --release -p dwsched-bench --bin schedule-bench`.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use dwsched_bench::{machine_report, median};
use dwsched_model::ScheduleRow;
use dwsched_schedule::{Calendar, Schedule, ScheduleParser, parse_schedule};
use dwsched_service::schedules::ScheduleSet;
use dwsched_store::{Store, StoreOptions};

const SCHEDULES: usize = 100_000;
const ROUNDS: usize = 5;

fn row(code: &str, dd: Option<&str>) -> ScheduleRow {
    ScheduleRow {
        jobschid: 1,
        mapref: "BENCH".into(),
        frqcd: Some(code.into()),
        frqdd: dd.map(str::to_string),
        frqhh: Some(2),
        frqmi: Some(30),
        timezone: Some("America/New_York".into()),
        schflg: Some("Y".into()),
        curflg: Some("Y".into()),
        ..ScheduleRow::default()
    }
}

fn next_fire_rate(code: &str, dd: Option<&str>) -> f64 {
    next_fire_rate_of(&parse_schedule(&row(code, dd), Tz::UTC).expect("valid"))
}

/// England's 16 bank holidays of 2026-27 and four company days: 20 holidays.
fn holiday_calendar() -> Calendar {
    let mut calendar = Calendar::new("BENCH", &Calendar::weekdays().workdays());
    for day in [
        "2026-01-01",
        "2026-04-03",
        "2026-04-06",
        "2026-05-04",
        "2026-05-25",
        "2026-08-31",
        "2026-12-24",
        "2026-12-25",
        "2026-12-28",
        "2026-12-31",
        "2027-01-01",
        "2027-03-26",
        "2027-03-29",
        "2027-05-03",
        "2027-05-31",
        "2027-08-30",
        "2027-12-24",
        "2027-12-27",
        "2027-12-28",
        "2027-12-31",
    ] {
        calendar.add_holiday(day.parse().unwrap(), "holiday");
    }
    calendar
}

fn calendar_rate(code: &str, dd: Option<&str>, rule: &str) -> f64 {
    let mut parser = ScheduleParser::with_calendars([holiday_calendar()]);
    let schedule = parser
        .parse(
            &ScheduleRow {
                calnm: Some("BENCH".into()),
                calrule: Some(rule.into()),
                ..row(code, dd)
            },
            Tz::UTC,
        )
        .expect("valid");
    next_fire_rate_of(&schedule)
}

fn next_fire_rate_of(schedule: &Schedule) -> f64 {
    let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let calls = 1_000_000;
    let mut rates = Vec::new();
    for _ in 0..ROUNDS {
        let clock = Instant::now();
        let mut at = start;
        let mut checksum = 0_i64;
        for i in 0..calls {
            // Walk through two years in 1-minute-ish steps so that DST days come up.
            at = start + Duration::seconds((i as i64 * 61) % (2 * 365 * 86_400));
            checksum += schedule.next_fire(at).map_or(0, |t| t.timestamp() & 1);
        }
        std::hint::black_box((checksum, at));
        rates.push(calls as f64 / clock.elapsed().as_secs_f64());
    }
    median(&mut rates)
}

/// A mix of codes, zones and times, as a real table would hold.
fn bulk_rows() -> Vec<String> {
    let zones = [
        "UTC",
        "Europe/London",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Sydney",
    ];
    let codes = [
        ("DL", "NULL"),
        ("WK", "'MON'"),
        ("MN", "'31'"),
        ("QT", "'L'"),
        ("CR", "NULL"),
    ];
    (0..SCHEDULES)
        .map(|i| {
            let (code, dd) = codes[i % codes.len()];
            let cron = if code == "CR" {
                "'*/5 * * * *'"
            } else {
                "NULL"
            };
            format!(
                "('JOB{}', '{code}', {dd}, {}, {}, 'A', 'Y', 'Y', '{}', {cron}, 0)",
                i % 5000,
                i % 24,
                (i * 7) % 60,
                zones[i % zones.len()]
            )
        })
        .collect()
}

#[tokio::main]
async fn main() {
    println!("{}\n", machine_report());
    println!(
        "next_fire, one core, America/New_York (median of {ROUNDS} rounds of 1,000,000 calls):"
    );
    for (code, dd) in [("DL", None), ("WK", Some("MON")), ("MN", Some("31"))] {
        println!("  {code}: {:>12.0} calls/s", next_fire_rate(code, dd));
    }
    println!("  with a 20-holiday calendar (goal for BD -1: at least 1,000,000 calls/s):");
    for (label, code, dd, rule) in [
        ("BD -1     ", "BD", Some("-1"), "SKIP"),
        ("BD 3      ", "BD", Some("3"), "SKIP"),
        ("DL skip   ", "DL", None, "SKIP"),
        ("DL next   ", "DL", None, "NEXT"),
        ("DL prev   ", "DL", None, "PREV"),
        ("WK MON nxt", "WK", Some("MON"), "NEXT"),
        ("MN 31 prev", "MN", Some("31"), "PREV"),
    ] {
        println!("  {label}: {:>12.0} calls/s", calendar_rate(code, dd, rule));
    }

    let dir = std::env::temp_dir().join(format!("dwsched-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let store = dwsched_store::open(&StoreOptions::new(url.clone()).create(true))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    load_schedules(&url).await;

    println!("\nsync of {SCHEDULES} enabled schedules from SQLite (load + diff + state writes):");
    let now = Utc::now();
    let mut set = ScheduleSet::new();
    let clock = Instant::now();
    let first = sync_once(&*store, &mut set, now).await;
    println!(
        "  first sync (every NXT_RUN_DT written): {:>8.1} ms, {} timers",
        clock.elapsed().as_secs_f64() * 1000.0,
        first
    );
    let mut full = Vec::new();
    for _ in 0..ROUNDS {
        let mut fresh = ScheduleSet::new();
        let clock = Instant::now();
        sync_once(&*store, &mut fresh, now).await;
        full.push(clock.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "  full sync into an empty set:           {:>8.1} ms (median of {ROUNDS})",
        median(&mut full)
    );
    let mut resync = Vec::new();
    let mut incremental = Vec::new();
    let mut touched = (0, 0);
    for round in 0..ROUNDS {
        let since = Utc::now();
        change_ten_rows(&url, round).await;
        let clock = Instant::now();
        touched.0 = sync_once(&*store, &mut set, now).await;
        resync.push(clock.elapsed().as_secs_f64() * 1000.0);
        change_ten_rows(&url, round + ROUNDS).await;
        let clock = Instant::now();
        touched.1 = incremental_sync(&*store, &mut set, since, now).await;
        incremental.push(clock.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "  full re-sync with 10 rows changed:     {:>8.1} ms (median of {ROUNDS}), {} timers touched",
        median(&mut resync),
        touched.0
    );
    println!(
        "  incremental sync with 10 rows changed: {:>8.1} ms (median of {ROUNDS}), {} timers touched",
        median(&mut incremental),
        touched.1
    );
    let mut checks = Vec::new();
    for _ in 0..1000 {
        let clock = Instant::now();
        store.schedule_version().await.unwrap();
        checks.push(clock.elapsed().as_secs_f64() * 1_000_000.0);
    }
    println!(
        "  change check (the leader's read of DMS_SCHVER each second): {:>6.1} µs (median of 1000)",
        median(&mut checks)
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Loads, diffs and writes states; returns the number of timers touched.
async fn sync_once(store: &dyn Store, set: &mut ScheduleSet, now: DateTime<Utc>) -> usize {
    let clock = Instant::now();
    let rows = store.list_schedules(true).await.unwrap();
    let load = clock.elapsed();
    let report = set.sync(&rows, Tz::UTC, now);
    let diff = clock.elapsed() - load;
    store
        .set_schedule_states(&report.state_writes)
        .await
        .unwrap();
    let write = clock.elapsed() - load - diff;
    println!(
        "    (load {:.0} ms, diff {:.0} ms, {} state writes {:.0} ms)",
        load.as_secs_f64() * 1000.0,
        diff.as_secs_f64() * 1000.0,
        report.state_writes.len(),
        write.as_secs_f64() * 1000.0
    );
    report.timers_touched
}

/// The node's incremental sync: every scheduled id, and the rows changed since.
async fn incremental_sync(
    store: &dyn Store,
    set: &mut ScheduleSet,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> usize {
    let ids = store.scheduled_ids().await.unwrap();
    let missing = set.untracked(&ids);
    let rows = store
        .scheduled_changes(Some(since), &missing)
        .await
        .unwrap();
    let report = set.sync_changes(&ids, &rows, Tz::UTC, now);
    store
        .set_schedule_states(&report.state_writes)
        .await
        .unwrap();
    report.timers_touched
}

async fn load_schedules(url: &str) {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    for chunk in bulk_rows().chunks(500) {
        let sql = format!(
            "INSERT INTO DMS_JOBSCH (MAPREF, FRQCD, FRQDD, FRQHH, FRQMI, STFLG, SCHFLG, CURFLG, TIMEZONE, CRONEXPR, FAILCNT) VALUES {}",
            chunk.join(", ")
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

async fn change_ten_rows(url: &str, round: usize) {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let sql = format!(
        "UPDATE DMS_JOBSCH SET FRQMI = (FRQMI + 1) % 60, RECUPDT = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE JOBSCHID IN (SELECT JOBSCHID FROM DMS_JOBSCH WHERE FRQCD = 'DL' ORDER BY JOBSCHID LIMIT 10 OFFSET {})",
        round * 10
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap();
}
