//! Clock skew between nodes: one node's wall clock is shifted by four leases with
//! libfaketime (its monotonic clock left alone), and nothing may change. Leases are
//! taken, renewed and judged expired by the database's clock, so a node with a fast or
//! slow clock neither rescues others' work early nor loses its own; runs of one job
//! never overlap. SQLite has one node, whose clock is the database's: no such test.

use std::time::{Duration, Instant};

use dwsched_model::{NewRequest, RequestStatus, RequestType, RunFilter, RunStatus};
use dwsched_store::Backend;

use crate::service::{NodeProcess, Scratch, cli, eventually};
use crate::util::TestDb;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const MAPREFS: usize = 8;
const REQUESTS: usize = 40;
/// The nodes' lease (`NodeProcess` starts them with 3 s).
const LEASE_SECONDS: i64 = 3;

#[tokio::test(flavor = "multi_thread")]
async fn a_node_ahead_by_four_leases_changes_nothing_on_postgres() {
    skewed(Backend::Postgres, 4 * LEASE_SECONDS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_behind_by_four_leases_changes_nothing_on_postgres() {
    skewed(Backend::Postgres, -4 * LEASE_SECONDS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_ahead_by_four_leases_changes_nothing_on_mysql() {
    skewed(Backend::MySql, 4 * LEASE_SECONDS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_behind_by_four_leases_changes_nothing_on_mysql() {
    skewed(Backend::MySql, -4 * LEASE_SECONDS).await;
}

async fn skewed(backend: Backend, offset_seconds: i64) {
    let Some(db) = TestDb::new(backend) else {
        return;
    };
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if !std::path::Path::new(LIBFAKETIME).exists() {
        assert!(
            !in_ci,
            "{LIBFAKETIME} is missing: install Debian's faketime"
        );
        eprintln!("note: skipped the clock skew test ({LIBFAKETIME} is missing)");
        return;
    }
    let scratch = Scratch::new();
    let store = db.open().await;
    let trace = scratch.dir.join("trace");
    std::fs::create_dir_all(&trace).unwrap();
    // The trace is written with the real time, whatever the node's clock says.
    let stamp = "$(env -u LD_PRELOAD -u FAKETIME date +%s%N)";
    let flow = scratch.command_flow(
        "second",
        &format!(
            "echo S {stamp} $DWSCHED_PRCID >> {0}/$DWSCHED_MAPREF; sleep 1; \
             echo E {stamp} $DWSCHED_PRCID >> {0}/$DWSCHED_MAPREF",
            trace.display()
        ),
    );
    for i in 0..MAPREFS {
        cli(
            &db,
            &scratch.dir,
            &[
                "job",
                "put",
                &format!("SKEW{i}"),
                "--flow",
                flow.to_str().unwrap(),
            ],
        );
    }
    let offset = format!("{offset_seconds:+}s");
    let skewed_env = [
        ("LD_PRELOAD", LIBFAKETIME),
        ("FAKETIME", offset.as_str()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ("FAKETIME_NO_CACHE", "1"),
    ];
    // Two workers each (claiming up to four ahead): both nodes get some of the work.
    let workers = ("SCHEDULER_MAX_WORKERS", "2");
    let _honest = NodeProcess::start(&db, &scratch.dir, "honest", &[workers]);
    let mut env = skewed_env.to_vec();
    env.push(workers);
    let skewed = NodeProcess::start(&db, &scratch.dir, "skewed", &env);
    // Both registered before the work comes, so that both take some of it.
    eventually(
        Duration::from_secs(20),
        "both nodes to register",
        || async { (store.list_nodes().await.unwrap().len() == 2).then_some(()) },
    )
    .await;
    let requests: Vec<NewRequest> = (0..REQUESTS)
        .map(|i| {
            NewRequest::new(
                format!("SKEW{}", i % MAPREFS),
                RequestType::Immediate,
                "{}".into(),
            )
        })
        .collect();
    store.enqueue_many(&requests).await.unwrap();
    let started = Instant::now();
    let all = eventually(Duration::from_secs(90), "every request to end", || async {
        let all = store.list_requests(None, 1000).await.unwrap();
        all.iter()
            .all(|r| matches!(r.status, Some(RequestStatus::Done | RequestStatus::Failed)))
            .then_some(all)
    })
    .await;
    let took = started.elapsed();
    // Leases renewed by the skewed node for a while longer: a rescue that judged by its
    // clock would have happened by now.
    tokio::time::sleep(Duration::from_secs(2 * LEASE_SECONDS as u64)).await;
    assert!(
        store.get_node("skewed").await.unwrap().is_some(),
        "the skewed node was judged dead:\n{}",
        skewed.output()
    );

    let runs = store
        .list_runs(&RunFilter {
            limit: 1000,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    let not_done: Vec<_> = all
        .iter()
        .filter(|r| r.status != Some(RequestStatus::Done))
        .collect();
    let retried: Vec<_> = all.iter().filter(|r| r.attempts != 1).collect();
    let not_pc: Vec<_> = runs
        .iter()
        .filter(|r| r.status != Some(RunStatus::Completed))
        .collect();
    let by_skewed = runs
        .iter()
        .filter(|r| r.node.as_deref() == Some("skewed"))
        .count();
    let overlaps = crate::chaos::check_trace(&trace).overlaps;
    eprintln!(
        "skew {offset} on {backend:?}: {} requests in {took:.1?}, {} runs ({by_skewed} by the skewed node), {} not DONE, {} re-attempted, {} runs not PC, {overlaps} overlaps",
        all.len(),
        runs.len(),
        not_done.len(),
        retried.len(),
        not_pc.len()
    );
    assert_eq!(all.len(), REQUESTS);
    assert!(not_done.is_empty(), "{not_done:#?}");
    assert!(retried.is_empty(), "re-attempted: {retried:#?}");
    assert_eq!(runs.len(), REQUESTS, "one run per request");
    assert!(not_pc.is_empty(), "{not_pc:#?}");
    assert_eq!(overlaps, 0, "runs of one job overlapped");
    assert!(by_skewed > 0, "the skewed node ran nothing");
    db.cleanup().await;
}
