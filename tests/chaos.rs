//! The chaos test: three nodes on one database, 200 schedules firing every 5 s,
//! 2,000 IMMEDIATE requests of short command flows and a few of 8-second ones (so that
//! kills land mid-command, and a command outliving its node would show in the trace
//! beside its rescued run), while a random node is killed
//! (`kill -9`) every 20 s and started again under a new id, and the database server is
//! restarted once. Afterwards every request must have run exactly once, no slot twice,
//! nothing may be left `IP`, and no two runs of one mapref may have overlapped, by the
//! tables and by the commands' own trace of when they really ran.
//!
//! It restarts the local database server, so it runs alone: `.ci/run` runs it with
//! `cargo test --test tests -- --ignored --test-threads=1 --nocapture`.
//! `DWSCHED_CHAOS_SECONDS` sets how long the chaos lasts (default 90).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use dwsched_model::{NewRequest, RequestStatus, RequestType, RunFilter, RunStatus};
use dwsched_service::ops::{self, ScheduleInput};
use dwsched_store::{Backend, Store, TestSupport};

use crate::service::{NodeProcess, Scratch};
use crate::util::TestDb;

const SCHEDULES: usize = 200;
const IMMEDIATE_REQUESTS: usize = 2000;
const IMMEDIATE_MAPREFS: usize = 50;
/// Maprefs `L0`.. of the long commands, each given a request every 10 s.
const LONG_MAPREFS: usize = 4;
const LONG_EVERY: Duration = Duration::from_secs(10);
const NODES: usize = 3;
const KILL_EVERY: Duration = Duration::from_secs(20);
const LEASE_SECONDS: &str = "5";

/// When a run started and ended, by its `DMS_PRCLOG` row.
type Span = (chrono::DateTime<Utc>, chrono::DateTime<Utc>);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "kills nodes and restarts the local PostgreSQL server; run it alone with --ignored"]
async fn chaos_on_postgres() {
    chaos(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "kills nodes and restarts the local MariaDB server; run it alone with --ignored"]
async fn chaos_on_mysql() {
    chaos(Backend::MySql).await;
}

fn chaos_duration() -> Duration {
    let seconds = std::env::var("DWSCHED_CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(90);
    Duration::from_secs(seconds)
}

/// Restarts the local database server of `backend` and waits until it answers.
async fn restart_server(backend: Backend, db: &TestDb) {
    match backend {
        Backend::Postgres => {
            let version = std::fs::read_dir("/etc/postgresql")
                .expect("a local PostgreSQL cluster")
                .flatten()
                .next()
                .expect("a PostgreSQL version directory")
                .file_name();
            let status = Command::new("pg_ctlcluster")
                .args([
                    "--skip-systemctl-redirect",
                    version.to_str().unwrap(),
                    "main",
                    "restart",
                ])
                .status()
                .expect("pg_ctlcluster");
            assert!(status.success(), "pg_ctlcluster restart failed");
        }
        Backend::MySql => {
            let status = Command::new("mysqladmin")
                .args(["-uroot", "-h127.0.0.1", "shutdown"])
                .status()
                .expect("mysqladmin");
            assert!(status.success(), "mysqladmin shutdown failed");
            // The server may still be on its way out when the command returns.
            let stopping = Instant::now();
            while Command::new("pidof")
                .arg("mariadbd")
                .stdout(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                assert!(
                    stopping.elapsed() < Duration::from_secs(60),
                    "mariadbd did not stop"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let status = Command::new("start-stop-daemon")
                .args([
                    "--start",
                    "--oknodo",
                    "--background",
                    "--exec",
                    "/usr/sbin/mariadbd",
                ])
                .status()
                .expect("start-stop-daemon");
            assert!(status.success(), "starting mariadbd failed");
        }
        Backend::Sqlite => unreachable!("SQLite has no server"),
    }
    let started = Instant::now();
    loop {
        let reachable = match dwsched_store::open(&db.options()).await {
            Ok(store) => store.schema_version().await.is_ok(),
            Err(_) => false,
        };
        if reachable {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not come back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Registers the jobs: schedules `S000`.. every 5 s, and the maprefs `I00`.. of the
/// immediate requests. Every run appends when it really started and ended to a trace
/// file of its mapref.
async fn set_up(store: &dyn Store, trace: &Path) -> Vec<i64> {
    let flow = traced_flow(trace, "sleep 0.2");
    // Eight seconds, longer than a rescue takes, saying it is alive every half second.
    let long_flow = traced_flow(
        trace,
        "i=0; while [ $i -lt 16 ]; do sleep 0.5; echo H $(date +%s%N) $DWSCHED_PRCID >> \\\"$TRACE/$DWSCHED_MAPREF\\\"; i=$((i+1)); done",
    );
    let now = Utc::now();
    let zone = chrono_tz::UTC;
    let mut schedule_ids = Vec::new();
    for i in 0..SCHEDULES {
        let mapref = format!("S{i:03}");
        ops::register_flow(store, &mapref, &flow, dwsched_flow::FlowFormat::Toml, now)
            .await
            .unwrap();
        let input = ScheduleInput {
            mapref,
            frqcd: "CR".into(),
            cron: Some("*/5 * * * * *".into()),
            enable: true,
            ..ScheduleInput::default()
        };
        schedule_ids.push(ops::add_schedule(store, &input, zone, now).await.unwrap());
    }
    for i in 0..IMMEDIATE_MAPREFS {
        ops::register_flow(
            store,
            &format!("I{i:02}"),
            &flow,
            dwsched_flow::FlowFormat::Toml,
            now,
        )
        .await
        .unwrap();
    }
    for i in 0..LONG_MAPREFS {
        ops::register_flow(
            store,
            &format!("L{i}"),
            &long_flow,
            dwsched_flow::FlowFormat::Toml,
            now,
        )
        .await
        .unwrap();
    }
    schedule_ids
}

/// A flow of one command that writes `S <ns> <prcid>` to its mapref's trace file when it
/// starts, runs `work`, and writes `E <ns> <prcid>` when it ends.
fn traced_flow(trace: &Path, work: &str) -> String {
    format!(
        r#"
        [[steps]]
        name = "work"
        kind = "command"
        program = "sh"
        args = ["-c", "echo S $(date +%s%N) $DWSCHED_PRCID >> \"$TRACE/$DWSCHED_MAPREF\"; {work}; echo E $(date +%s%N) $DWSCHED_PRCID >> \"$TRACE/$DWSCHED_MAPREF\""]
        env = {{ TRACE = "{}" }}
        "#,
        trace.display()
    )
}

/// What the commands' own trace says: pairs of runs of one job whose real times
/// crossed, and runs that did not reach their end (stopped or killed).
pub struct TraceCheck {
    pub overlaps: usize,
    pub unfinished: usize,
}

/// Reads a trace directory: a file per mapref of `S <ns> <prcid>` (start), `H <ns>
/// <prcid>` (still running) and `E <ns> <prcid>` (end) lines.
pub fn check_trace(trace: &Path) -> TraceCheck {
    let mut check = TraceCheck {
        overlaps: 0,
        unfinished: 0,
    };
    for entry in std::fs::read_dir(trace).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        // Per run: its start, the last time it said anything, and whether it ended.
        let mut spans: HashMap<&str, (Option<u128>, Option<u128>, bool)> = HashMap::new();
        for l in text.lines() {
            let parts: Vec<&str> = l.split_whitespace().collect();
            if let [kind, ns, prcid] = parts[..] {
                let span = spans.entry(prcid).or_default();
                let at = ns.parse().ok();
                match kind {
                    "S" => span.0 = at,
                    _ => {
                        span.1 = span.1.max(at);
                        span.2 |= kind == "E";
                    }
                }
            }
        }
        let mut intervals: Vec<(u128, u128)> = spans
            .values()
            .filter_map(|(s, e, ended)| {
                if !ended {
                    check.unfinished += 1;
                }
                Some((s.or(*e)?, e.or(*s)?))
            })
            .collect();
        intervals.sort();
        check.overlaps += intervals.windows(2).filter(|w| w[1].0 < w[0].1).count();
    }
    check
}

/// One figure of the report, and whether it must be zero.
fn line(report: &mut String, name: &str, value: impl std::fmt::Display) {
    report.push_str(&format!("  {name:<42} {value}\n"));
}

async fn chaos(backend: Backend) {
    let Some(db) = TestDb::new(backend) else {
        return;
    };
    let duration = chaos_duration();
    let scratch = Scratch::new();
    let trace = scratch.dir.join("trace");
    std::fs::create_dir_all(&trace).unwrap();
    let store: Arc<dyn TestSupport> = Arc::from(db.open().await);
    let schedule_ids = set_up(&*store, &trace).await;

    let env = [
        ("SCHEDULER_LEASE_SECONDS", LEASE_SECONDS),
        ("SCHEDULER_MAX_WORKERS", "16"),
        // Disabling the schedules at the end takes effect within a sync.
        ("SCHEDULER_REFRESH_INTERVAL", "2"),
        ("RUST_LOG", "warn"),
    ];
    let mut generation = 0;
    let mut nodes: Vec<NodeProcess> = (0..NODES)
        .map(|i| NodeProcess::start(&db, &scratch.dir, &format!("n{i}-g0"), &env))
        .collect();

    // The immediate requests, spread over the first two thirds of the chaos, and the
    // long ones every 10 s meanwhile.
    let long_made = Arc::new(AtomicUsize::new(0));
    let feeder = {
        let (store, long_made) = (store.clone(), long_made.clone());
        let spread = duration * 2 / 3;
        tokio::spawn(async move {
            let batch = 50;
            let pause = spread / (IMMEDIATE_REQUESTS / batch) as u32;
            let mut made = 0;
            let mut next_long = Duration::ZERO;
            let fed = Instant::now();
            while made < IMMEDIATE_REQUESTS {
                if fed.elapsed() >= next_long {
                    let long: Vec<NewRequest> = (0..LONG_MAPREFS)
                        .map(|i| {
                            NewRequest::new(format!("L{i}"), RequestType::Immediate, "{}".into())
                        })
                        .collect();
                    if store.enqueue_many(&long).await.is_ok() {
                        next_long += LONG_EVERY;
                        long_made.fetch_add(LONG_MAPREFS, Ordering::SeqCst);
                    }
                }
                let requests: Vec<NewRequest> = (made..made + batch)
                    .map(|i| {
                        NewRequest::new(
                            format!("I{:02}", i % IMMEDIATE_MAPREFS),
                            RequestType::Immediate,
                            "{}".into(),
                        )
                    })
                    .collect();
                // The server may be restarting: try again.
                if store.enqueue_many(&requests).await.is_ok() {
                    made += batch;
                    tokio::time::sleep(pause).await;
                } else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        })
    };

    // Kill a node every 20 s and start a new one in its place; restart the server once,
    // halfway between two kills.
    let rescue_delays: Arc<Mutex<Vec<(String, Duration)>>> = Arc::default();
    let started = Instant::now();
    let mut next_kill = KILL_EVERY;
    let restart_at = KILL_EVERY * 5 / 2;
    let mut restarted = false;
    let mut seed = u64::from(std::process::id());
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !restarted && started.elapsed() >= restart_at.min(duration / 2) {
            restarted = true;
            eprintln!(
                "chaos: restarting the {backend:?} server at {:?}",
                started.elapsed()
            );
            restart_server(backend, &db).await;
        }
        if started.elapsed() < next_kill {
            continue;
        }
        next_kill += KILL_EVERY;
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // A node with a run in progress, if there is one, so that there is work to
        // rescue.
        let running = store
            .list_runs(&RunFilter {
                status: Some(RunStatus::InProgress),
                limit: 1000,
                ..RunFilter::default()
            })
            .await
            .unwrap_or_default();
        let busy: Vec<usize> = (0..nodes.len())
            .filter(|i| {
                running
                    .iter()
                    .any(|r| r.node.as_deref() == Some(nodes[*i].node_id.as_str()))
            })
            .collect();
        let victim = if busy.is_empty() {
            (seed >> 33) as usize % nodes.len()
        } else {
            busy[(seed >> 33) as usize % busy.len()]
        };
        generation += 1;
        let dead_id = nodes[victim].node_id.clone();
        nodes[victim].signal(nix::sys::signal::Signal::SIGKILL);
        let killed_at = Instant::now();
        let _ = nodes[victim].child.wait();
        eprintln!("chaos: killed {dead_id} at {:?}", started.elapsed());
        let replacement = format!("n{victim}-g{generation}");
        nodes[victim] = NodeProcess::start(&db, &scratch.dir, &replacement, &env);
        // The dead node's row goes when another node rescues its work.
        let (store, delays) = (store.clone(), rescue_delays.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(None) = store.get_node(&dead_id).await {
                    delays.lock().unwrap().push((dead_id, killed_at.elapsed()));
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    feeder.await.unwrap();

    // Stop the fires, then let the queue drain.
    let now = Utc::now();
    for id in &schedule_ids {
        ops::set_schedule_enabled(&*store, *id, false, chrono_tz::UTC, now)
            .await
            .unwrap();
    }
    // The leader sees the change at its next sync; slots already queued ahead of time
    // (up to 2 s) still run.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let drain = Instant::now();
    loop {
        let open = store
            .list_requests(None, 1_000_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| {
                matches!(
                    r.status,
                    Some(RequestStatus::New | RequestStatus::Processing) | None
                )
            })
            .collect::<Vec<_>>();
        let in_progress = store
            .list_runs(&RunFilter {
                status: Some(RunStatus::InProgress),
                limit: 1000,
                ..RunFilter::default()
            })
            .await
            .unwrap();
        if open.is_empty() && in_progress.is_empty() {
            break;
        }
        if drain.elapsed() > Duration::from_secs(180) {
            let runs: Vec<String> = in_progress
                .iter()
                .map(|r| {
                    format!(
                        "run {} of {:?} on {:?} for request {:?}, started {:?}, updated {:?}",
                        r.prcid, r.mapref, r.node, r.request_id, r.started_at, r.updated_at
                    )
                })
                .collect();
            let requests: Vec<String> = open
                .iter()
                .map(|r| {
                    format!(
                        "{} {:?} {} {:?} claimed by {:?}",
                        r.request_id, r.request_type, r.mapref, r.status, r.claimed_by
                    )
                })
                .collect();
            panic!(
                "the queue did not drain: {} requests open, {} runs IP\n{}\n{}",
                open.len(),
                in_progress.len(),
                runs.join("\n"),
                requests.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let drained_in = drain.elapsed();
    for node in &nodes {
        node.signal(nix::sys::signal::Signal::SIGTERM);
    }
    for node in &mut nodes {
        node.wait_exit(Duration::from_secs(30));
    }

    // The figures.
    let requests = store.list_requests(None, 1_000_000).await.unwrap();
    let runs = store
        .list_runs(&RunFilter {
            limit: 1_000_000,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    let mut completed_runs: HashMap<&str, usize> = HashMap::new();
    for run in runs
        .iter()
        .filter(|r| r.status == Some(RunStatus::Completed))
    {
        if let Some(id) = run.request_id.as_deref() {
            *completed_runs.entry(id).or_default() += 1;
        }
    }
    // Fires are IMMEDIATE requests too, with a slot key.
    let run_requests: Vec<_> = requests
        .iter()
        .filter(|r| r.request_type == RequestType::Immediate)
        .collect();
    let enqueued = run_requests
        .iter()
        .filter(|r| r.dedupe_key.is_none())
        .count();
    let once = run_requests
        .iter()
        .filter(|r| completed_runs.get(r.request_id.as_str()) == Some(&1))
        .count();
    let twice = run_requests
        .iter()
        .filter(|r| {
            completed_runs
                .get(r.request_id.as_str())
                .is_some_and(|n| *n > 1)
        })
        .count();
    let failed: Vec<_> = run_requests
        .iter()
        .filter(|r| r.status != Some(RequestStatus::Done))
        .collect();
    let rescued = run_requests.iter().filter(|r| r.attempts > 1).count();
    let slot_keys: Vec<&str> = requests
        .iter()
        .filter_map(|r| r.dedupe_key.as_deref())
        .filter(|k| k.starts_with("sch:"))
        .collect();
    let distinct_slots: HashSet<&str> = slot_keys.iter().copied().collect();
    let slot_requests: HashMap<&str, &str> = requests
        .iter()
        .filter_map(|r| Some((r.request_id.as_str(), r.dedupe_key.as_deref()?)))
        .collect();
    let mut slot_runs: HashMap<&str, usize> = HashMap::new();
    for (id, n) in &completed_runs {
        if let Some(key) = slot_requests.get(id) {
            *slot_runs.entry(key).or_default() += n;
        }
    }
    let slots_twice =
        slot_runs.values().filter(|n| **n > 1).count() + (slot_keys.len() - distinct_slots.len());
    let closed_by_rescue = runs
        .iter()
        .filter(|r| {
            r.msg
                .as_deref()
                .is_some_and(|m| m.contains("stopped heartbeating"))
        })
        .count();
    let fenced = runs
        .iter()
        .filter(|r| r.msg.as_deref().is_some_and(|m| m.contains("(fencing)")))
        .count();
    let left_ip = runs
        .iter()
        .filter(|r| r.status == Some(RunStatus::InProgress))
        .count();

    // Overlaps by the tables: runs of one mapref whose [start, end] cross.
    let mut by_mapref: BTreeMap<&str, Vec<Span>> = BTreeMap::new();
    for run in &runs {
        if let (Some(m), Some(s), Some(e)) = (run.mapref.as_deref(), run.started_at, run.ended_at) {
            by_mapref.entry(m).or_default().push((s, e));
        }
    }
    let table_overlaps: usize = by_mapref
        .values_mut()
        .map(|spans| {
            spans.sort();
            spans.windows(2).filter(|w| w[1].0 < w[0].1).count()
        })
        .sum();
    // Overlaps by the commands' own clock.
    let TraceCheck {
        overlaps: trace_overlaps,
        unfinished,
    } = check_trace(&trace);
    // The last node killed may still be waiting for its rescue.
    let lease: u64 = LEASE_SECONDS.parse().unwrap();
    let waiting = Instant::now();
    while rescue_delays.lock().unwrap().len() < generation
        && waiting.elapsed() < Duration::from_secs(3 * lease)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let delays = rescue_delays.lock().unwrap().clone();
    let longest_rescue = delays.iter().map(|(_, d)| *d).max().unwrap_or_default();

    let mut report = format!(
        "chaos on {backend:?}: {NODES} nodes, {SCHEDULES} schedules every 5 s, a kill every {}s, {:?} of chaos, lease {LEASE_SECONDS} s\n",
        KILL_EVERY.as_secs(),
        duration
    );
    line(&mut report, "requests created", requests.len());
    line(
        &mut report,
        "run requests (fires and IMMEDIATE)",
        run_requests.len(),
    );
    line(&mut report, "  IMMEDIATE requests enqueued", enqueued);
    line(&mut report, "  run exactly once (one PC run)", once);
    line(&mut report, "  run more than once (must be 0)", twice);
    line(&mut report, "  not DONE (must be 0)", failed.len());
    line(&mut report, "  rescued (claimed more than once)", rescued);
    line(
        &mut report,
        "runs of killed nodes closed FL by a rescue",
        closed_by_rescue,
    );
    line(&mut report, "runs stopped by their node's fencing", fenced);
    line(&mut report, "slots fired", distinct_slots.len());
    line(
        &mut report,
        "slots fired or run twice (must be 0)",
        slots_twice,
    );
    line(&mut report, "runs left IP (must be 0)", left_ip);
    line(
        &mut report,
        "overlapping runs by PRCLOG (must be 0)",
        table_overlaps,
    );
    line(
        &mut report,
        "overlapping runs by trace (must be 0)",
        trace_overlaps,
    );
    line(&mut report, "commands stopped before their end", unfinished);
    line(
        &mut report,
        "nodes killed / rescued",
        format!("{} / {}", generation, delays.len()),
    );
    line(
        &mut report,
        "longest rescue delay",
        format!("{longest_rescue:.1?}"),
    );
    line(
        &mut report,
        "drained after the chaos in",
        format!("{drained_in:.1?}"),
    );
    eprintln!("{report}");

    assert_eq!(
        enqueued,
        IMMEDIATE_REQUESTS + long_made.load(Ordering::SeqCst),
        "{report}"
    );
    assert_eq!(twice, 0, "{report}");
    assert!(failed.is_empty(), "{report}\n{failed:#?}");
    assert_eq!(once, run_requests.len(), "{report}");
    assert_eq!(slots_twice, 0, "{report}");
    assert_eq!(left_ip, 0, "{report}");
    assert_eq!(table_overlaps, 0, "{report}");
    assert_eq!(trace_overlaps, 0, "{report}");
    assert_eq!(
        delays.len(),
        generation,
        "every killed node is rescued: {report}"
    );
    assert!(
        longest_rescue < Duration::from_secs(2 * lease),
        "rescue within two leases: {report}"
    );
    assert!(
        distinct_slots.len() >= SCHEDULES * (duration.as_secs() as usize / 5) / 2,
        "{report}"
    );
    db.cleanup().await;
}
