//! The store conformance suite: every case runs against SQLite, PostgreSQL and MySQL.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use dwsched_model::{
    Claim, Completion, Connection, Enqueued, ErrorType, FinishRun, JobErrorEntry, JobLogEntry,
    NewRequest, NewRun, NewSchedule, Node, RequestClass, RequestStatus, RequestType, RunFilter,
    RunStatus, RunWrite, RunWritten, ScheduleState,
};
use dwsched_store::{Store, TestSupport};

use crate::util::TestDb;

crate::per_backend!(
    migrate_is_idempotent,
    flows_are_versioned_by_curflg,
    schedules_round_trip_and_are_versioned,
    enqueue_gives_uuids_and_honours_dedupe_keys,
    claims_keep_one_run_per_mapref,
    claims_honour_limit_order_and_not_before,
    run_in_progress_blocks_claims_of_its_mapref,
    control_requests_are_claimed_while_the_mapref_runs,
    requests_complete_and_cancel_only_from_the_right_state,
    concurrent_claims_take_each_request_once,
    runs_open_heartbeat_and_close,
    job_log_and_errors_are_written,
    connections_are_registered_by_name,
    nodes_heartbeat_and_dead_nodes_are_rescued,
    the_scheduler_lease_has_one_holder,
    schedule_results_count_failures_and_disable_at_maxfail,
    dependents_states_and_released_requests,
    watchers_wake_on_new_requests,
    runs_finish_in_one_transaction_and_fires_skip_taken_keys,
    run_writes_share_a_transaction_and_answer_each,
    schedule_changes_are_counted_whoever_makes_them,
    incremental_sync_reads_only_scheduled_and_stamped_rows,
    flows_to_run_are_the_current_ones_with_their_followers,
    live_counts_follow_the_queue_and_the_runs,
    dwtool_mapping_metadata_is_read_as_the_generator_reads_it,
    step_records_are_written_replaced_and_closed_by_a_rescue,
    reserved_requests_are_their_nodes_alone,
    a_node_reads_the_requests_it_holds,
    requests_queued_together_run_in_the_order_given,
    calendars_hold_work_days_and_holidays,
    dwtool_reports_are_read_as_the_ui_writes_them,
    report_schedules_fire_once_across_nodes,
);

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap() + Duration::seconds(seconds)
}

fn run_request(mapref: &str) -> NewRequest {
    NewRequest::new(mapref, RequestType::Immediate, "{}".into())
}

fn claim(node: &str, class: RequestClass, limit: u32, now: DateTime<Utc>) -> Claim {
    Claim {
        node: node.into(),
        class,
        limit,
        now,
        lease: std::time::Duration::from_secs(30),
    }
}

/// Registers the nodes a case claims for: only a node with its `DMS_SCHNODE` row claims.
async fn register(store: &dyn Store, nodes: &[&str]) {
    for id in nodes {
        store.register_node(&node(id, at(0))).await.unwrap();
    }
}

/// Whether `t` is about `seconds` from now: lease deadlines come from the database's
/// clock, which is this machine's.
fn about_from_now(t: Option<DateTime<Utc>>, seconds: i64) -> bool {
    let expected = Utc::now() + Duration::seconds(seconds);
    t.is_some_and(|t| (t - expected).num_milliseconds().abs() < 5_000)
}

async fn enqueue_at(store: &dyn Store, request: NewRequest, seconds: i64) -> String {
    store
        .enqueue(&request, at(seconds))
        .await
        .unwrap()
        .request_id()
        .to_string()
}

fn ids(requests: &[dwsched_model::Request]) -> Vec<String> {
    requests.iter().map(|r| r.request_id.clone()).collect()
}

async fn migrate_is_idempotent(db: TestDb) {
    let store = db.open_unmigrated().await;
    assert_eq!(store.schema_version().await.unwrap(), None);
    assert!(store.check_schema().await.is_err());

    let first = store.migrate().await.unwrap();
    assert_eq!(first.from_version, None);
    assert_eq!(first.to_version, 8);
    for table in [
        "DMS_JOBSCH",
        "DMS_PRCREQ",
        "DMS_PRCLOG",
        "DMS_JOBLOG",
        "DMS_JOBERR",
        "DMS_JOB",
        "DMS_JOBFLW",
        "DMS_DBCONDTLS",
        "DMS_SCHNODE",
        "DMS_SCHLEASE",
        "DMS_SCHVER",
        "DMS_JOBDTL",
        "DMS_MAPRSQL",
        "DMS_PARAMS",
        "DMS_PRCSTEP",
        "DMS_CALENDAR",
        "DMS_CALDATE",
        "DMS_RPRT_DEF",
        "DMS_RPRT_FLD",
        "DMS_RPRT_SCHD",
        "DMS_RPRT_RUN",
        "DMS_FLUPLD",
        "DMS_FLUPLDDTL",
        "DMS_FLUPLD_SCHD",
        "DMS_FLUPLD_RUN",
        "DMS_FLUPLD_ERR",
    ] {
        assert!(first.tables_created.iter().any(|t| t == table), "{table}");
    }
    assert!(
        first
            .indexes_created
            .iter()
            .any(|i| i == "DMS_PRCREQ_DEDUPE_UK")
    );
    assert_eq!(store.schema_version().await.unwrap(), Some(8));
    store.check_schema().await.unwrap();

    let second = store.migrate().await.unwrap();
    assert!(!second.changed_anything(), "{second:?}");
    assert_eq!(second.from_version, Some(8));

    // A database of version 1 gains the lease table, the count of schedule changes
    // with its triggers, and the business calendars, whose edits count too.
    db.exec_raw(&[
        "DROP TABLE DMS_SCHLEASE",
        "DROP TABLE DMS_SCHVER",
        "DROP TABLE DMS_CALDATE",
        "DROP TABLE DMS_CALENDAR",
        "DELETE FROM DWSCHED_MIGRATIONS WHERE VERSION >= 2",
    ])
    .await;
    // A store opened on the older schema, as a node started on it would be: SQLite
    // connections that saw the tables dropped behind their back may keep that view.
    store.close().await;
    let store = db.open_unmigrated().await;
    assert!(store.check_schema().await.is_err());
    let upgrade = store.migrate().await.unwrap();
    assert_eq!((upgrade.from_version, upgrade.to_version), (Some(1), 8));
    assert_eq!(
        upgrade.tables_created,
        ["DMS_SCHLEASE", "DMS_SCHVER", "DMS_CALENDAR", "DMS_CALDATE"]
    );
    let before = store.schedule_version().await.unwrap();
    store
        .insert_schedule(
            &NewSchedule {
                mapref: "SALES".into(),
                frqcd: "DL".into(),
                ..NewSchedule::default()
            },
            at(0),
        )
        .await
        .unwrap();
    assert!(store.schedule_version().await.unwrap() > before);
    let before = store.schedule_version().await.unwrap();
    assert!(
        store
            .put_calendar("UK", "MON,TUE,WED,THU,FRI", None, at(0))
            .await
            .unwrap()
    );
    let after_calendar = store.schedule_version().await.unwrap();
    assert!(after_calendar > before);
    let christmas = dwsched_model::Holiday {
        date: NaiveDate::from_ymd_opt(2026, 12, 25).unwrap(),
        description: Some("Christmas Day".into()),
    };
    store
        .add_holidays("UK", std::slice::from_ref(&christmas), at(1))
        .await
        .unwrap();
    assert!(store.schedule_version().await.unwrap() > after_calendar);
    store.check_schema().await.unwrap();
}

async fn flows_are_versioned_by_curflg(db: TestDb) {
    let store = db.open().await;
    let v1 = store
        .put_job_flow("SALES", r#"{"steps":[]}"#, at(0))
        .await
        .unwrap();
    let v2 = store
        .put_job_flow("SALES", r#"{"description":"v2","steps":[]}"#, at(10))
        .await
        .unwrap();
    assert_ne!(v1.jobflwid, v2.jobflwid);
    assert_eq!(v1.jobid, v2.jobid, "one job, two flow versions");

    let current = store.current_flow("SALES").await.unwrap().unwrap();
    assert_eq!(current.jobflwid, v2.jobflwid);
    assert!(current.current);
    assert_eq!(
        current.dwlogic.as_deref(),
        Some(r#"{"description":"v2","steps":[]}"#)
    );

    store
        .put_job_flow("STOCK", r#"{"steps":[]}"#, at(20))
        .await
        .unwrap();
    let jobs = store.list_jobs().await.unwrap();
    let names: Vec<_> = jobs.iter().map(|j| j.mapref.as_str()).collect();
    assert_eq!(names, ["SALES", "STOCK"]);
    assert_eq!(jobs[0].current_flow_id, Some(v2.jobflwid));
    assert!(store.get_job("SALES").await.unwrap().is_some());
    assert!(store.get_job("NOPE").await.unwrap().is_none());

    assert!(store.retire_job("SALES", at(30)).await.unwrap());
    assert!(!store.retire_job("SALES", at(31)).await.unwrap());
    assert!(store.current_flow("SALES").await.unwrap().is_none());
    assert_eq!(store.list_jobs().await.unwrap().len(), 1);
}

async fn schedules_round_trip_and_are_versioned(db: TestDb) {
    let store = db.open().await;
    let start = NaiveDate::from_ymd_opt(2026, 1, 1)
        .unwrap()
        .and_hms_opt(2, 30, 0)
        .unwrap();
    let schedule = NewSchedule {
        mapref: "SALES".into(),
        frqcd: "WK".into(),
        frqdd: Some("MON".into()),
        frqhh: Some(6),
        frqmi: Some(15),
        strtdt: Some(start),
        enddt: Some(start + Duration::days(365)),
        timezone: Some("Europe/London".into()),
        misfire: Some("SKIP".into()),
        maxfail: Some(3),
        enabled: true,
        ..NewSchedule::default()
    };
    let id = store.insert_schedule(&schedule, at(0)).await.unwrap();
    let disabled = store
        .insert_schedule(
            &NewSchedule {
                mapref: "STOCK".into(),
                frqcd: "CR".into(),
                cronexpr: Some("*/5 * * * * *".into()),
                dpnd_jobschid: Some(id),
                enabled: false,
                ..NewSchedule::default()
            },
            at(1),
        )
        .await
        .unwrap();

    let row = store.get_schedule(id).await.unwrap().unwrap();
    assert_eq!(row.mapref, "SALES");
    assert_eq!(row.frqcd.as_deref(), Some("WK"));
    assert_eq!(row.frqdd.as_deref(), Some("MON"));
    assert_eq!((row.frqhh, row.frqmi), (Some(6), Some(15)));
    assert_eq!(row.strtdt, Some(start));
    assert_eq!(row.enddt, Some(start + Duration::days(365)));
    assert_eq!(row.timezone.as_deref(), Some("Europe/London"));
    assert_eq!(row.misfire.as_deref(), Some("SKIP"));
    assert_eq!((row.maxfail, row.failcnt), (Some(3), Some(0)));
    assert!(row.is_scheduled());
    let child = store.get_schedule(disabled).await.unwrap().unwrap();
    assert_eq!(child.dpnd_jobschid, Some(id));
    assert_eq!(child.cronexpr.as_deref(), Some("*/5 * * * * *"));
    assert!(!child.is_scheduled());

    assert_eq!(store.list_schedules(false).await.unwrap().len(), 2);
    let scheduled: Vec<_> = store.list_schedules(true).await.unwrap();
    assert_eq!(
        scheduled.iter().map(|s| s.jobschid).collect::<Vec<_>>(),
        [id]
    );

    assert!(
        store
            .set_schedule_enabled(disabled, true, at(2))
            .await
            .unwrap()
    );
    assert!(store.set_schedule_enabled(id, false, at(2)).await.unwrap());
    let scheduled: Vec<_> = store.list_schedules(true).await.unwrap();
    assert_eq!(
        scheduled.iter().map(|s| s.jobschid).collect::<Vec<_>>(),
        [disabled]
    );

    let next = at(3600);
    assert!(
        store
            .set_schedule_state(id, Some(next), Some("bad zone"))
            .await
            .unwrap()
    );
    let row = store.get_schedule(id).await.unwrap().unwrap();
    assert_eq!(row.nxt_run_dt, Some(next));
    assert_eq!(row.scherr.as_deref(), Some("bad zone"));
    store.set_schedule_state(id, None, None).await.unwrap();
    let row = store.get_schedule(id).await.unwrap().unwrap();
    assert_eq!((row.nxt_run_dt, row.scherr), (None, None));

    assert!(store.retire_schedule(id, at(4)).await.unwrap());
    assert!(!store.retire_schedule(id, at(5)).await.unwrap());
    assert!(!store.set_schedule_enabled(id, true, at(5)).await.unwrap());
    assert_eq!(store.list_schedules(false).await.unwrap().len(), 1);
    assert_eq!(
        store
            .get_schedule(id)
            .await
            .unwrap()
            .unwrap()
            .curflg
            .as_deref(),
        Some("N"),
        "a retired version is kept"
    );
}

async fn enqueue_gives_uuids_and_honours_dedupe_keys(db: TestDb) {
    let store = db.open().await;
    let a = store.enqueue(&run_request("SALES"), at(0)).await.unwrap();
    let b = store.enqueue(&run_request("SALES"), at(0)).await.unwrap();
    assert!(matches!(a, Enqueued::Inserted(_)));
    assert_ne!(a.request_id(), b.request_id());
    uuid::Uuid::parse_str(a.request_id()).expect("request ids are UUIDs");

    let mut fire = run_request("SALES");
    fire.payload = r#"{"source":"schedule","jobschid":1,"slot":"2026-03-01T08:00:00Z"}"#.into();
    fire.dedupe_key = Some("sch:1:2026-03-01T08:00:00Z".into());
    let first = store.enqueue(&fire, at(1)).await.unwrap();
    let again = store.enqueue(&fire, at(2)).await.unwrap();
    assert!(matches!(first, Enqueued::Inserted(_)));
    assert_eq!(again, Enqueued::Duplicate(first.request_id().to_string()));

    let stored = store
        .get_request(first.request_id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.mapref, "SALES");
    assert_eq!(stored.request_type, RequestType::Immediate);
    assert_eq!(stored.status, Some(RequestStatus::New));
    assert_eq!(stored.payload.as_deref(), Some(fire.payload.as_str()));
    assert_eq!(stored.requested_at, Some(at(1)));
    assert_eq!(stored.dedupe_key, fire.dedupe_key);
    assert_eq!(stored.attempts, 0);
    assert!(store.get_request("no-such-id").await.unwrap().is_none());

    let listed = store
        .list_requests(Some(RequestStatus::New), 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].request_id, first.request_id(), "newest first");
    let depth = store.queue_depth().await.unwrap();
    assert_eq!(depth.requests, [("NEW".to_string(), 3)]);
}

async fn claims_keep_one_run_per_mapref(db: TestDb) {
    let store = db.open().await;
    register(&*store, &["n1", "n2"]).await;
    let a1 = enqueue_at(&*store, run_request("A"), 0).await;
    let a2 = enqueue_at(&*store, run_request("A"), 1).await;
    let b1 = enqueue_at(&*store, run_request("B"), 2).await;
    let history = NewRequest::new(
        "A",
        RequestType::History,
        r#"{"start_date":"2026-01-01","end_date":"2026-01-02"}"#.into(),
    );
    let a3 = enqueue_at(&*store, history, 3).await;

    let claimed = store
        .claim_requests(&claim("n1", RequestClass::Runs, 10, at(10)))
        .await
        .unwrap();
    assert_eq!(ids(&claimed), [a1.clone(), b1.clone()]);
    for request in &claimed {
        assert_eq!(request.status, Some(RequestStatus::Processing));
        assert_eq!(request.claimed_by.as_deref(), Some("n1"));
        assert_eq!(request.claimed_at, Some(at(10)));
        assert!(
            about_from_now(request.lease_until, 30),
            "{:?}",
            request.lease_until
        );
        assert_eq!(request.attempts, 1);
    }
    let none = store
        .claim_requests(&claim("n2", RequestClass::Runs, 10, at(11)))
        .await
        .unwrap();
    assert!(none.is_empty(), "A is being processed: {none:?}");

    assert!(
        store
            .complete_request(&a1, None, RequestStatus::Done, "{}", at(12))
            .await
            .unwrap()
    );
    let next = store
        .claim_requests(&claim("n2", RequestClass::Runs, 10, at(13)))
        .await
        .unwrap();
    assert_eq!(
        ids(&next),
        std::slice::from_ref(&a2),
        "the waiting request runs afterwards, in order"
    );
    store
        .complete_request(&a2, None, RequestStatus::Failed, "{}", at(14))
        .await
        .unwrap();
    let last = store
        .claim_requests(&claim("n2", RequestClass::Runs, 10, at(15)))
        .await
        .unwrap();
    assert_eq!(ids(&last), [a3]);
}

async fn claims_honour_limit_order_and_not_before(db: TestDb) {
    let store = db.open().await;
    register(&*store, &["n1"]).await;
    let mut expected = Vec::new();
    for i in 0..5 {
        expected.push(enqueue_at(&*store, run_request(&format!("M{i}")), i).await);
    }
    let mut later = run_request("LATER");
    later.not_before = Some(at(100));
    let later_id = enqueue_at(&*store, later, 0).await;

    let first = store
        .claim_requests(&claim("n1", RequestClass::Runs, 2, at(10)))
        .await
        .unwrap();
    assert_eq!(ids(&first), expected[..2]);
    let rest = store
        .claim_requests(&claim("n1", RequestClass::Runs, 10, at(10)))
        .await
        .unwrap();
    assert_eq!(ids(&rest), expected[2..], "NOT_BEFORE holds a request back");
    let zero = store
        .claim_requests(&claim("n1", RequestClass::Runs, 0, at(200)))
        .await
        .unwrap();
    assert!(zero.is_empty());
    let due = store
        .claim_requests(&claim("n1", RequestClass::Runs, 10, at(100)))
        .await
        .unwrap();
    assert_eq!(ids(&due), [later_id]);
}

async fn run_in_progress_blocks_claims_of_its_mapref(db: TestDb) {
    let store = db.open().await;
    register(&*store, &["n1"]).await;
    let prcid = store
        .open_run(&NewRun {
            mapref: "SALES".into(),
            started_at: at(0),
            ..NewRun::default()
        })
        .await
        .unwrap();
    let waiting = enqueue_at(&*store, run_request("SALES"), 1).await;
    let claimed = store
        .claim_requests(&claim("n1", RequestClass::Runs, 10, at(2)))
        .await
        .unwrap();
    assert!(claimed.is_empty(), "SALES has a run in progress");
    store
        .close_run(prcid, RunStatus::Completed, None, at(3))
        .await
        .unwrap();
    let claimed = store
        .claim_requests(&claim("n1", RequestClass::Runs, 10, at(4)))
        .await
        .unwrap();
    assert_eq!(ids(&claimed), [waiting]);
}

async fn control_requests_are_claimed_while_the_mapref_runs(db: TestDb) {
    let store = db.open().await;
    register(&*store, &["n1", "n2"]).await;
    let run = enqueue_at(&*store, run_request("SALES"), 0).await;
    let stop = enqueue_at(
        &*store,
        NewRequest::new("SALES", RequestType::Stop, r#"{"force":"N"}"#.into()),
        1,
    )
    .await;
    let odd = enqueue_at(
        &*store,
        NewRequest::new("SALES", RequestType::parse("EXPORT"), "{}".into()),
        2,
    )
    .await;
    let runs = store
        .claim_requests(&claim("n1", RequestClass::Runs, 10, at(3)))
        .await
        .unwrap();
    assert_eq!(ids(&runs), [run]);
    // The STOP is left to n1, which holds the mapref's run request.
    let elsewhere = store
        .claim_requests(&claim("n2", RequestClass::Control, 10, at(4)))
        .await
        .unwrap();
    assert_eq!(ids(&elsewhere), std::slice::from_ref(&odd));
    let control = store
        .claim_requests(&claim("n1", RequestClass::Control, 10, at(4)))
        .await
        .unwrap();
    assert_eq!(ids(&control), [stop]);
    assert_eq!(
        elsewhere[0].request_type,
        RequestType::Unknown("EXPORT".into())
    );

    // A STOP of a mapref with no run anywhere is anyone's.
    let idle_stop = enqueue_at(
        &*store,
        NewRequest::new("IDLE", RequestType::Stop, "{}".into()),
        5,
    )
    .await;
    // A REFRESH_SCHEDULE is the scheduler lease holder's while its lease is valid.
    let refresh = enqueue_at(
        &*store,
        NewRequest::new("*", RequestType::RefreshSchedule, "{}".into()),
        6,
    )
    .await;
    assert!(
        store
            .acquire_lease("scheduler", "n1", std::time::Duration::from_secs(60))
            .await
            .unwrap()
    );
    let taken = store
        .claim_requests(&claim("n2", RequestClass::Control, 10, at(7)))
        .await
        .unwrap();
    assert_eq!(ids(&taken), [idle_stop]);
    let taken = store
        .claim_requests(&claim("n1", RequestClass::Control, 10, at(8)))
        .await
        .unwrap();
    assert_eq!(ids(&taken), [refresh]);
}

async fn requests_complete_and_cancel_only_from_the_right_state(db: TestDb) {
    let store = db.open().await;
    register(&*store, &["n1"]).await;
    let new = enqueue_at(&*store, run_request("A"), 0).await;
    assert!(
        !store
            .complete_request(&new, None, RequestStatus::Done, "{}", at(1))
            .await
            .unwrap(),
        "a NEW request is not completed"
    );
    assert!(
        store
            .complete_request(&new, None, RequestStatus::New, "{}", at(1))
            .await
            .is_err()
    );
    assert!(
        store
            .cancel_request(&new, r#"{"cancelled_by":"test"}"#, at(2))
            .await
            .unwrap()
    );
    assert!(!store.cancel_request(&new, "{}", at(3)).await.unwrap());
    let cancelled = store.get_request(&new).await.unwrap().unwrap();
    assert_eq!(cancelled.status, Some(RequestStatus::Cancelled));
    assert_eq!(cancelled.completed_at, Some(at(2)));
    assert_eq!(
        cancelled.result_payload.as_deref(),
        Some(r#"{"cancelled_by":"test"}"#)
    );

    let other = enqueue_at(&*store, run_request("B"), 4).await;
    store
        .claim_requests(&claim("n1", RequestClass::Runs, 1, at(5)))
        .await
        .unwrap();
    assert!(
        !store.cancel_request(&other, "{}", at(6)).await.unwrap(),
        "already claimed"
    );
    assert!(
        store
            .complete_request(
                &other,
                None,
                RequestStatus::Done,
                r#"{"status":"DONE"}"#,
                at(7)
            )
            .await
            .unwrap()
    );
    let done = store.get_request(&other).await.unwrap().unwrap();
    assert_eq!(done.status, Some(RequestStatus::Done));
    assert_eq!(done.result_payload.as_deref(), Some(r#"{"status":"DONE"}"#));
    assert_eq!(done.lease_until, None);
    assert!(
        !store
            .complete_request(&other, None, RequestStatus::Failed, "{}", at(8))
            .await
            .unwrap()
    );
}

async fn concurrent_claims_take_each_request_once(db: TestDb) {
    let store: Arc<dyn TestSupport> = Arc::from(db.open().await);
    register(&*store, &["n0", "n1", "n2", "n3"]).await;
    let mut all = HashSet::new();
    for i in 0..60 {
        all.insert(enqueue_at(&*store, run_request(&format!("J{i}")), i % 7).await);
    }
    let mut workers = Vec::new();
    for node in 0..4 {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store
                    .claim_requests(&claim(&format!("n{node}"), RequestClass::Runs, 5, at(100)))
                    .await
                    .unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|r| r.request_id));
            }
        }));
    }
    let mut seen = HashSet::new();
    for worker in workers {
        for id in worker.await.unwrap() {
            assert!(seen.insert(id.clone()), "{id} was claimed twice");
        }
    }
    assert_eq!(seen, all);
}

async fn runs_open_heartbeat_and_close(db: TestDb) {
    let store = db.open().await;
    register(&*store, &["node-a"]).await;
    let request = enqueue_at(&*store, run_request("SALES"), 0).await;
    let claimed = store
        .claim_requests(&claim("node-a", RequestClass::Runs, 1, at(0)))
        .await
        .unwrap();
    assert_eq!(ids(&claimed), std::slice::from_ref(&request));
    let mut params: [Option<String>; 10] = Default::default();
    params[0] = Some("EU".into());
    params[9] = Some("x".into());
    let run = NewRun {
        mapref: "SALES".into(),
        jobid: Some(7),
        jobflwid: Some(9),
        params,
        prclog: "param1=EU | param10=x".into(),
        sessionid: Some(1_764_000_000_123_456),
        request_id: Some(request.clone()),
        node: Some("node-a".into()),
        started_at: at(0),
        run_date: Some("2026-03-01".parse().unwrap()),
    };
    // Only the node holding the request opens its run.
    let err = store
        .open_run(&NewRun {
            node: Some("node-b".into()),
            ..run.clone()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, dwsched_store::StoreError::ClaimLost { .. }),
        "{err}"
    );
    let prcid = store.open_run(&run).await.unwrap();
    let second = store
        .open_run(&NewRun {
            mapref: "OTHER".into(),
            ..run.clone()
        })
        .await
        .unwrap();
    assert!(second > prcid);

    let stored = store.get_run(prcid).await.unwrap().unwrap();
    assert_eq!(stored.status, Some(RunStatus::InProgress));
    assert_eq!(stored.mapref.as_deref(), Some("SALES"));
    assert_eq!((stored.jobid, stored.jobflwid), (Some(7), Some(9)));
    assert_eq!(stored.params[0].as_deref(), Some("EU"));
    assert_eq!(stored.params[9].as_deref(), Some("x"));
    assert_eq!(stored.prclog.as_deref(), Some("param1=EU | param10=x"));
    assert_eq!(stored.request_id.as_deref(), Some(request.as_str()));
    assert_eq!(stored.node.as_deref(), Some("node-a"));
    assert_eq!(stored.started_at, Some(at(0)));
    assert_eq!(stored.sessionid.as_deref(), Some("1764000000123456"));
    assert_eq!(stored.run_date, Some("2026-03-01".parse().unwrap()));
    assert_eq!(stored.ended_at, None);

    assert!(store.heartbeat_run(prcid, at(5)).await.unwrap());
    assert_eq!(
        store.get_run(prcid).await.unwrap().unwrap().updated_at,
        Some(at(5))
    );
    assert!(
        store
            .close_run(prcid, RunStatus::InProgress, None, at(6))
            .await
            .is_err()
    );
    assert!(
        store
            .close_run(
                prcid,
                RunStatus::Stopped,
                Some("stopped by STOP request"),
                at(9)
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .close_run(prcid, RunStatus::Completed, None, at(10))
            .await
            .unwrap()
    );
    assert!(!store.heartbeat_run(prcid, at(11)).await.unwrap());
    let closed = store.get_run(prcid).await.unwrap().unwrap();
    assert_eq!(closed.status, Some(RunStatus::Stopped));
    assert_eq!(closed.msg.as_deref(), Some("stopped by STOP request"));
    assert_eq!(closed.ended_at, Some(at(9)));

    let sales = store
        .list_runs(&RunFilter {
            mapref: Some("SALES".into()),
            limit: 10,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(sales.iter().map(|r| r.prcid).collect::<Vec<_>>(), [prcid]);
    let running = store
        .list_runs(&RunFilter {
            status: Some(RunStatus::InProgress),
            limit: 10,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        running.iter().map(|r| r.prcid).collect::<Vec<_>>(),
        [second]
    );
    let all = store
        .list_runs(&RunFilter {
            limit: 10,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r.prcid).collect::<Vec<_>>(),
        [second, prcid],
        "newest first"
    );
}

async fn job_log_and_errors_are_written(db: TestDb) {
    let store = db.open().await;
    let prcid = store
        .open_run(&NewRun {
            mapref: "SALES".into(),
            started_at: at(0),
            ..NewRun::default()
        })
        .await
        .unwrap();
    let entry = JobLogEntry {
        prcdt: at(1),
        mapref: "SALES".into(),
        jobid: Some(3),
        srcrows: 1_000_000,
        trgrows: 999_998,
        errrows: 2,
        prcid: Some(prcid),
        sessionid: Some(1_764_000_000_123_456),
    };
    let joblogid = store.write_job_log(&entry).await.unwrap();
    assert_eq!(store.job_log_for_run(prcid).await.unwrap(), Some(entry));
    assert_eq!(store.job_log_for_run(prcid + 1000).await.unwrap(), None);

    for (errtyp, key) in [(ErrorType::Row, Some("id=42")), (ErrorType::Job, None)] {
        store
            .write_job_error(&JobErrorEntry {
                joblogid: Some(joblogid),
                prcdt: at(2),
                errtyp,
                dberrmsg: key.map(|_| "duplicate key value violates unique constraint".into()),
                errmsg: format!("{} error", errtyp.as_str()),
                keyvalue: key.map(str::to_string),
                jobid: Some(3),
                sessionid: None,
                prcid: Some(prcid),
                mapref: "SALES".into(),
            })
            .await
            .unwrap();
    }
    let errors = store.job_errors_for_run(prcid).await.unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].errtyp.as_deref(), Some("ROW"));
    assert_eq!(errors[0].keyvalue.as_deref(), Some("id=42"));
    assert_eq!(errors[0].joblogid, Some(joblogid));
    assert_eq!(errors[1].errtyp.as_deref(), Some("JOB"));
    assert_eq!(errors[1].errmsg.as_deref(), Some("JOB error"));
}

async fn connections_are_registered_by_name(db: TestDb) {
    let store = db.open().await;
    let warehouse = Connection {
        connm: "warehouse".into(),
        dbtyp: Some("POSTGRESQL".into()),
        dbhost: Some("db.internal".into()),
        dbport: Some(5432),
        dbsrvnm: Some("dw".into()),
        usrnm: Some("etl".into()),
        passwd: Some("env:DW_PASSWORD".into()),
        current: true,
        ..Connection::default()
    };
    let id = store.put_connection(&warehouse).await.unwrap();
    let shop = Connection {
        connm: "shop".into(),
        dbtyp: Some("SQLITE".into()),
        constr: Some("sqlite:///srv/shop.db".into()),
        current: true,
        ..Connection::default()
    };
    store.put_connection(&shop).await.unwrap();
    let replaced = Connection {
        dbport: Some(6432),
        ..warehouse.clone()
    };
    assert_eq!(
        store.put_connection(&replaced).await.unwrap(),
        id,
        "replaced in place"
    );

    let listed = store.list_connections().await.unwrap();
    assert_eq!(
        listed.iter().map(|c| c.connm.as_str()).collect::<Vec<_>>(),
        ["shop", "warehouse"]
    );
    let got = store.get_connection("warehouse").await.unwrap().unwrap();
    assert_eq!(
        got,
        Connection {
            conid: id,
            ..replaced
        }
    );
    assert!(store.get_connection("nope").await.unwrap().is_none());
}

fn node(id: &str, heartbeat: DateTime<Utc>) -> Node {
    Node {
        node_id: id.into(),
        host: Some("host-a".into()),
        pid: Some(4242),
        version: Some("0.1.0".into()),
        started_at: Some(heartbeat),
        heartbeat_at: Some(heartbeat),
        role: Some("worker".into()),
        http_addr: None,
        lease_seconds: None,
    }
}

async fn the_scheduler_lease_has_one_holder(db: TestDb) {
    let store = db.open().await;
    assert_eq!(store.get_lease("scheduler").await.unwrap(), None);
    // The first taker makes the row; the other is refused until the lease expires.
    // Deadlines and expiry are the database's clock's, whatever the nodes' clocks say.
    let short = std::time::Duration::from_millis(300);
    let long = std::time::Duration::from_secs(30);
    assert!(store.acquire_lease("scheduler", "n1", short).await.unwrap());
    let first = store.get_lease("scheduler").await.unwrap().unwrap();
    assert!(about_from_now(first.acquired_at, 0), "{first:?}");
    assert!(!store.acquire_lease("scheduler", "n2", long).await.unwrap());
    // Renewals keep the holder's start.
    assert!(store.acquire_lease("scheduler", "n1", long).await.unwrap());
    assert!(!store.acquire_lease("scheduler", "n2", long).await.unwrap());
    let lease = store.get_lease("scheduler").await.unwrap().unwrap();
    assert_eq!(lease.holder.as_deref(), Some("n1"));
    assert_eq!(lease.acquired_at, first.acquired_at);
    assert!(about_from_now(lease.lease_until, 30), "{lease:?}");
    // Expired: another node takes it.
    assert!(store.acquire_lease("scheduler", "n1", short).await.unwrap());
    tokio::time::sleep(short * 2).await;
    assert!(store.acquire_lease("scheduler", "n2", long).await.unwrap());
    assert!(!store.acquire_lease("scheduler", "n1", long).await.unwrap());
    let lease = store.get_lease("scheduler").await.unwrap().unwrap();
    assert_eq!(lease.holder.as_deref(), Some("n2"));
    assert_ne!(lease.acquired_at, first.acquired_at);
    // Released: free at once; a release by a non-holder changes nothing.
    store.release_lease("scheduler", "n1").await.unwrap();
    assert_eq!(
        store
            .get_lease("scheduler")
            .await
            .unwrap()
            .unwrap()
            .holder
            .as_deref(),
        Some("n2")
    );
    store.release_lease("scheduler", "n2").await.unwrap();
    assert!(store.acquire_lease("scheduler", "n3", long).await.unwrap());

    // Many nodes at once: exactly one wins.
    let store: Arc<dyn TestSupport> = Arc::from(store);
    let contenders = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .acquire_lease("race", &format!("c{i}"), std::time::Duration::from_secs(10))
                .await
                .unwrap()
        })
    });
    let mut winners = 0;
    for contender in contenders {
        winners += usize::from(contender.await.unwrap());
    }
    assert_eq!(winners, 1);

    store
        .register_node(&Node {
            node_id: "n3".into(),
            host: None,
            pid: None,
            version: None,
            started_at: Some(at(0)),
            heartbeat_at: Some(at(0)),
            role: Some("worker".into()),
            http_addr: Some("n3.example:8080".into()),
            lease_seconds: Some(30),
        })
        .await
        .unwrap();
    store.set_node_role("n3", "leader").await.unwrap();
    assert_eq!(
        store.get_node("n3").await.unwrap().unwrap().role.as_deref(),
        Some("leader")
    );
}

async fn nodes_heartbeat_and_dead_nodes_are_rescued(db: TestDb) {
    let store = db.open().await;
    store.register_node(&node("n1", at(0))).await.unwrap();
    store.register_node(&node("n2", at(0))).await.unwrap();
    store.register_node(&node("n2", at(1))).await.unwrap();
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(nodes.len(), 2, "registering again replaces the row");
    assert_eq!(
        store.get_node("n2").await.unwrap().unwrap().heartbeat_at,
        Some(at(1))
    );
    assert_eq!(
        store.get_node("n1").await.unwrap().unwrap(),
        node("n1", at(0))
    );

    let held = enqueue_at(&*store, run_request("SALES"), 2).await;
    let other = enqueue_at(&*store, run_request("STOCK"), 3).await;
    store
        .claim_requests(&claim("n1", RequestClass::Runs, 1, at(4)))
        .await
        .unwrap();
    store
        .claim_requests(&claim("n2", RequestClass::Runs, 1, at(4)))
        .await
        .unwrap();
    let prcid = store
        .open_run(&NewRun {
            mapref: "SALES".into(),
            node: Some("n1".into()),
            request_id: Some(held.clone()),
            started_at: at(5),
            ..NewRun::default()
        })
        .await
        .unwrap();

    // Heartbeats and their leases are stamped by the database's clock.
    let lease = std::time::Duration::from_secs(30);
    assert!(
        store
            .heartbeat_node("n1", std::time::Duration::from_secs(100))
            .await
            .unwrap()
    );
    let n1 = store.get_node("n1").await.unwrap().unwrap();
    assert!(about_from_now(n1.heartbeat_at, 0), "{n1:?}");
    let held_lease = store.get_request(&held).await.unwrap().unwrap().lease_until;
    assert!(about_from_now(held_lease, 100), "{held_lease:?}");
    let other_lease = store
        .get_request(&other)
        .await
        .unwrap()
        .unwrap()
        .lease_until;
    assert!(
        about_from_now(other_lease, 30),
        "n2's lease is its own: {other_lease:?}"
    );
    // n2's heartbeat is months old; n1's is fresh, and a rescue that finds it fresh
    // does nothing.
    let stale: Vec<String> = store
        .stale_nodes(lease)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.node_id)
        .collect();
    assert_eq!(stale, ["n2"]);
    // A node is judged by the longer of the judge's lease and its own: n3 heartbeated
    // 10 s ago for a 60-s lease, so a judge with a 3-s lease leaves it be.
    let n3_heartbeat = chrono::Utc::now() - chrono::Duration::seconds(10);
    store
        .register_node(&Node {
            lease_seconds: Some(60),
            ..node("n3", n3_heartbeat)
        })
        .await
        .unwrap();
    let short = std::time::Duration::from_secs(3);
    let stale: Vec<String> = store
        .stale_nodes(short)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.node_id)
        .collect();
    assert_eq!(stale, ["n2"]);
    assert_eq!(
        store
            .rescue_node("n3", "judged by a shorter lease", Some(short), 3)
            .await
            .unwrap(),
        Default::default()
    );
    store.deregister_node("n3").await.unwrap();
    let report = store
        .rescue_node("n1", "judged dead too early", Some(lease), 3)
        .await
        .unwrap();
    assert_eq!(report, Default::default());
    assert!(store.get_node("n1").await.unwrap().is_some());
    assert_eq!(
        store.get_run(prcid).await.unwrap().unwrap().status,
        Some(RunStatus::InProgress)
    );

    // The run's counts were being kept current: the rescue adds no second row.
    let progress_row = store
        .write_job_log_progress(
            &JobLogEntry {
                prcdt: at(6),
                mapref: "SALES".into(),
                jobid: None,
                srcrows: 10,
                trgrows: 0,
                errrows: 0,
                prcid: Some(prcid),
                sessionid: None,
            },
            None,
        )
        .await
        .unwrap();
    let report = store
        .rescue_node("n1", "node n1 stopped heartbeating", None, 3)
        .await
        .unwrap();
    let cast = match db.backend {
        dwsched_store::Backend::MySql => "CHAR",
        _ => "VARCHAR",
    };
    let logged = db
        .text_rows(&format!(
            "SELECT CAST(JOBLOGID AS {cast}) FROM DMS_JOBLOG WHERE PRCID = {prcid}"
        ))
        .await;
    assert_eq!(logged, [vec![Some(progress_row.to_string())]]);
    assert_eq!(report.runs_closed, [prcid]);
    assert_eq!(report.requests_requeued, std::slice::from_ref(&held));
    assert!(report.requests_failed.is_empty());
    let run = store.get_run(prcid).await.unwrap().unwrap();
    assert_eq!(run.status, Some(RunStatus::Failed));
    assert_eq!(run.msg.as_deref(), Some("node n1 stopped heartbeating"));
    // Its totals row and its cause, as for a run that ends on its node.
    let log = store
        .job_log_for_run(prcid)
        .await
        .unwrap()
        .expect("a DMS_JOBLOG row");
    assert_eq!(
        (log.srcrows, log.trgrows, log.errrows),
        (10, 0, 0),
        "the counts kept so far"
    );
    let errors = store.job_errors_for_run(prcid).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].errtyp.as_deref(), Some("JOB"));
    assert_eq!(
        errors[0].errmsg.as_deref(),
        Some("node n1 stopped heartbeating")
    );
    let request = store.get_request(&held).await.unwrap().unwrap();
    assert_eq!(
        (request.status, request.claimed_by, request.attempts),
        (Some(RequestStatus::New), None, 1)
    );
    assert!(store.get_node("n1").await.unwrap().is_none());
    assert!(
        !store.heartbeat_node("n1", lease).await.unwrap(),
        "a rescued node learns it lost its lease"
    );
    // Nor can it claim its requeued work again before it has noticed.
    assert!(
        store
            .claim_requests(&claim("n1", RequestClass::Runs, 10, at(101)))
            .await
            .unwrap()
            .is_empty(),
        "a node without its DMS_SCHNODE row claims nothing"
    );
    assert_eq!(
        store.get_request(&held).await.unwrap().unwrap().status,
        Some(RequestStatus::New)
    );

    // Out of attempts: the request fails instead of going round again.
    store.register_node(&node("n3", at(102))).await.unwrap();
    store
        .claim_requests(&claim("n3", RequestClass::Runs, 1, at(103)))
        .await
        .unwrap();
    let report = store
        .rescue_node("n3", "node n3 is gone", Some(lease), 2)
        .await
        .unwrap();
    assert_eq!(report.requests_failed, std::slice::from_ref(&held));
    let failed = store.get_request(&held).await.unwrap().unwrap();
    assert_eq!(failed.status, Some(RequestStatus::Failed));
    assert!(failed.result_payload.unwrap().contains("node n3 is gone"));

    store.deregister_node("n2").await.unwrap();
    assert!(store.list_nodes().await.unwrap().is_empty());
}

async fn schedule_results_count_failures_and_disable_at_maxfail(db: TestDb) {
    let store = db.open().await;
    let id = store
        .insert_schedule(
            &NewSchedule {
                mapref: "SALES".into(),
                frqcd: "DL".into(),
                maxfail: Some(2),
                enabled: true,
                ..NewSchedule::default()
            },
            at(0),
        )
        .await
        .unwrap();
    let first = store
        .record_schedule_result(id, at(10), false)
        .await
        .unwrap();
    assert_eq!((first.failures, first.disabled), (1, false));
    let ok = store
        .record_schedule_result(id, at(20), true)
        .await
        .unwrap();
    assert_eq!((ok.failures, ok.disabled), (0, false));
    store
        .record_schedule_result(id, at(30), false)
        .await
        .unwrap();
    let second = store
        .record_schedule_result(id, at(40), false)
        .await
        .unwrap();
    assert_eq!((second.failures, second.disabled), (2, true));
    let row = store.get_schedule(id).await.unwrap().unwrap();
    assert!(!row.is_scheduled());
    assert_eq!(row.lst_run_dt, Some(at(40)));
    assert_eq!(row.nxt_run_dt, None);
    assert!(
        row.scherr
            .unwrap()
            .contains("after 2 consecutive failed runs (MAXFAIL 2)")
    );
    let again = store
        .record_schedule_result(id, at(50), false)
        .await
        .unwrap();
    assert!(!again.disabled, "disabled once, not again");
}

async fn dependents_states_and_released_requests(db: TestDb) {
    let store = db.open().await;
    register(&*store, &["n1"]).await;
    let schedule = |mapref: &str, parent: Option<i64>, enabled: bool| NewSchedule {
        mapref: mapref.into(),
        frqcd: "DL".into(),
        dpnd_jobschid: parent,
        enabled,
        ..NewSchedule::default()
    };
    let parent = store
        .insert_schedule(&schedule("SALES", None, true), at(0))
        .await
        .unwrap();
    let child = store
        .insert_schedule(&schedule("REPORT", Some(parent), true), at(0))
        .await
        .unwrap();
    store
        .insert_schedule(&schedule("OFF", Some(parent), false), at(0))
        .await
        .unwrap();
    let other = store
        .insert_schedule(&schedule("STOCK", None, true), at(0))
        .await
        .unwrap();
    let children = store.dependent_schedules("SALES").await.unwrap();
    assert_eq!(
        children.iter().map(|s| s.jobschid).collect::<Vec<_>>(),
        [child]
    );
    assert!(store.dependent_schedules("STOCK").await.unwrap().is_empty());

    store
        .set_schedule_states(&[
            ScheduleState {
                jobschid: parent,
                next_fire: Some(at(60)),
                scherr: None,
            },
            ScheduleState {
                jobschid: other,
                next_fire: None,
                scherr: Some("bad".into()),
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        store
            .get_schedule(parent)
            .await
            .unwrap()
            .unwrap()
            .nxt_run_dt,
        Some(at(60))
    );
    assert_eq!(
        store
            .get_schedule(other)
            .await
            .unwrap()
            .unwrap()
            .scherr
            .as_deref(),
        Some("bad")
    );
    store.set_schedule_states(&[]).await.unwrap();

    let id = enqueue_at(&*store, run_request("SALES"), 1).await;
    assert!(
        !store.release_request(&id, None, None).await.unwrap(),
        "only a claimed request is released"
    );
    store
        .claim_requests(&claim("n1", RequestClass::Runs, 1, at(2)))
        .await
        .unwrap();
    assert!(store.release_request(&id, None, None).await.unwrap());
    let released = store.get_request(&id).await.unwrap().unwrap();
    assert_eq!(
        (released.status, released.claimed_by, released.lease_until),
        (Some(RequestStatus::New), None, None)
    );
}

async fn watchers_wake_on_new_requests(db: TestDb) {
    let store: Arc<dyn TestSupport> = Arc::from(db.open().await);
    let Some(mut watcher) = store.watch_requests().await.unwrap() else {
        assert_eq!(
            store.backend(),
            dwsched_store::Backend::MySql,
            "only MySQL has no watcher"
        );
        return;
    };
    let writer = store.clone();
    let insert = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        writer.enqueue(&run_request("SALES"), at(0)).await.unwrap();
    });
    tokio::time::timeout(std::time::Duration::from_secs(5), watcher.changed())
        .await
        .expect("the watcher wakes within 5 s of an insert")
        .unwrap();
    insert.await.unwrap();
}

async fn runs_finish_in_one_transaction_and_fires_skip_taken_keys(db: TestDb) {
    use dwsched_model::FinishRun;
    let store = db.open().await;
    let prcid = store
        .open_run(&NewRun {
            mapref: "SALES".into(),
            started_at: at(0),
            ..NewRun::default()
        })
        .await
        .unwrap();
    let error = JobErrorEntry {
        joblogid: None,
        prcdt: at(5),
        errtyp: ErrorType::Job,
        dberrmsg: None,
        errmsg: "step 'load' failed".into(),
        keyvalue: None,
        jobid: None,
        sessionid: None,
        prcid: Some(prcid),
        mapref: "SALES".into(),
    };
    let finish = FinishRun {
        joblogid: None,
        prcid,
        status: RunStatus::Failed,
        msg: Some("step 'load' failed".into()),
        ended_at: at(5),
        log: JobLogEntry {
            prcdt: at(5),
            mapref: "SALES".into(),
            prcid: Some(prcid),
            srcrows: 10,
            trgrows: 8,
            errrows: 2,
            ..JobLogEntry::default()
        },
        errors: vec![
            error.clone(),
            JobErrorEntry {
                errtyp: ErrorType::Step,
                ..error
            },
        ],
    };
    assert!(store.finish_run(&finish).await.unwrap());
    let run = store.get_run(prcid).await.unwrap().unwrap();
    assert_eq!(
        (run.status, run.ended_at),
        (Some(RunStatus::Failed), Some(at(5)))
    );
    let log = store.job_log_for_run(prcid).await.unwrap().unwrap();
    assert_eq!((log.srcrows, log.trgrows, log.errrows), (10, 8, 2));
    let errors = store.job_errors_for_run(prcid).await.unwrap();
    assert_eq!(errors.len(), 2);
    assert!(
        errors.iter().all(|e| e.joblogid.is_some()),
        "errors point at the run's JOBLOG row"
    );
    assert!(
        !store.finish_run(&finish).await.unwrap(),
        "a closed run keeps its status"
    );

    let fire = |slot: &str| NewRequest {
        dedupe_key: Some(format!("sch:1:{slot}")),
        ..run_request("SALES")
    };
    let batch: Vec<_> = (0..3)
        .map(|i| fire(&format!("2026-03-01T0{i}:00:00Z")))
        .collect();
    assert_eq!(store.enqueue_many(&batch).await.unwrap(), 3);
    let again = vec![fire("2026-03-01T00:00:00Z"), fire("2026-03-01T09:00:00Z")];
    assert_eq!(
        store.enqueue_many(&again).await.unwrap(),
        1,
        "a taken dedupe key is skipped"
    );
    assert_eq!(store.list_requests(None, 100).await.unwrap().len(), 4);
}

/// A node's run journal hands the store many runs' writes at once: each is answered on
/// its own (a lost claim refuses that open alone), and they all land.
async fn run_writes_share_a_transaction_and_answer_each(db: TestDb) {
    let store = db.open().await;
    register(&*store, &["node-a"]).await;
    let mut requests = Vec::new();
    for (i, mapref) in ["A", "B", "C"].iter().enumerate() {
        requests.push(enqueue_at(&*store, run_request(mapref), i as i64).await);
    }
    let claimed = store
        .claim_requests(&claim("node-a", RequestClass::Runs, 3, at(5)))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let new_run = |mapref: &str, request: &str, node: &str| {
        let mut params: [Option<String>; 10] = Default::default();
        params[2] = Some(format!("p-{mapref}"));
        NewRun {
            mapref: mapref.into(),
            jobid: Some(1),
            jobflwid: Some(2),
            params,
            prclog: format!("run of {mapref}"),
            sessionid: Some(node.len() as i64),
            request_id: Some(request.into()),
            node: Some(node.into()),
            started_at: at(6),
            run_date: Some(chrono::NaiveDate::from_ymd_opt(2026, 3, 6).unwrap()),
        }
    };
    let opens = [
        RunWrite::Open(new_run("A", &requests[0], "node-a")),
        RunWrite::Open(new_run("B", &requests[1], "node-b")),
        RunWrite::Open(new_run("C", &requests[2], "node-a")),
    ];
    let outcomes = store.write_runs(&opens).await.unwrap();
    assert_eq!(outcomes.len(), 3);
    let prcid = |outcome: &dwsched_store::Result<RunWritten>| match outcome {
        Ok(RunWritten::Opened(prcid)) => *prcid,
        other => panic!("expected a run opened, got {other:?}"),
    };
    let (a, c) = (prcid(&outcomes[0]), prcid(&outcomes[2]));
    assert!(
        matches!(
            outcomes[1],
            Err(dwsched_store::StoreError::ClaimLost { .. })
        ),
        "node-b does not hold B's request: {:?}",
        outcomes[1]
    );
    // The same opens again, as a node retries them when the reply to their commit was
    // lost: the runs already open are answered, and no second run is opened.
    let retried = store.write_runs(&opens).await.unwrap();
    assert_eq!((prcid(&retried[0]), prcid(&retried[2])), (a, c));
    let in_progress = store
        .list_runs(&RunFilter {
            status: Some(RunStatus::InProgress),
            limit: 100,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(in_progress.len(), 2, "{in_progress:?}");
    // Another business date of the same request is a run of its own.
    let next_day = NewRun {
        run_date: chrono::NaiveDate::from_ymd_opt(2026, 3, 7),
        ..new_run("A", &requests[0], "node-a")
    };
    let retried = store.write_runs(&[RunWrite::Open(next_day)]).await.unwrap();
    assert!(prcid(&retried[0]) > c);
    let stored = store.get_run(c).await.unwrap().unwrap();
    assert_eq!(stored.mapref.as_deref(), Some("C"));
    assert_eq!(stored.params[2].as_deref(), Some("p-C"));
    assert_eq!(stored.request_id.as_deref(), Some(requests[2].as_str()));
    assert_eq!(stored.started_at, Some(at(6)));
    assert_eq!(stored.run_date, chrono::NaiveDate::from_ymd_opt(2026, 3, 6));

    let finish = |prcid: i64, mapref: &str, status: RunStatus| FinishRun {
        joblogid: None,
        prcid,
        status,
        msg: (status != RunStatus::Completed).then(|| "it failed".to_string()),
        ended_at: at(8),
        log: JobLogEntry {
            prcdt: at(8),
            mapref: mapref.into(),
            prcid: Some(prcid),
            srcrows: 3,
            trgrows: 2,
            ..JobLogEntry::default()
        },
        errors: Vec::new(),
    };
    let complete = |request: &str, status: RequestStatus, node: &str| Completion {
        request_id: request.into(),
        claimed_by: Some(node.into()),
        status,
        result_payload: format!("{{\"status\":\"{status}\"}}"),
        completed_at: at(9),
    };
    // Finishing one run and completing another request in one batch; a completion by a
    // node that does not hold the request changes nothing.
    let outcomes = store
        .write_runs(&[
            RunWrite::Finish(finish(a, "A", RunStatus::Completed)),
            RunWrite::Finish(finish(c, "C", RunStatus::Failed)),
            RunWrite::Complete(complete(&requests[1], RequestStatus::Done, "node-b")),
            // A step's record rides in the same batch.
            RunWrite::Step {
                new: true,
                record: dwsched_model::StepRecord {
                    prcid: a,
                    step: "only".into(),
                    attempt: 1,
                    status: dwsched_model::StepStatus::Completed,
                    started_at: Some(at(7)),
                    ended_at: Some(at(8)),
                    srcrows: Some(3),
                    trgrows: Some(2),
                    errrows: Some(0),
                    msg: None,
                },
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        [
            RunWritten::Finished(true),
            RunWritten::Finished(true),
            RunWritten::Completed(false),
            RunWritten::Step
        ]
    );
    assert_eq!(store.run_steps(a).await.unwrap()[0].trgrows, Some(2));
    // The same ends again, as a node retries them when the answer to their commit was
    // lost: nothing more is written (one DMS_JOBLOG row each).
    let retried = store
        .write_runs(&[
            RunWrite::Finish(finish(a, "A", RunStatus::Completed)),
            RunWrite::Finish(finish(c, "C", RunStatus::Failed)),
        ])
        .await
        .unwrap();
    assert_eq!(
        retried.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        [RunWritten::Finished(false), RunWritten::Finished(false)]
    );
    let text = match db.backend {
        dwsched_store::Backend::MySql => "CHAR",
        _ => "TEXT",
    };
    for prcid in [a, c] {
        let count = db
            .text_rows(&format!(
                "SELECT CAST(COUNT(*) AS {text}) FROM DMS_JOBLOG WHERE PRCID = {prcid}"
            ))
            .await;
        assert_eq!(count[0][0].as_deref(), Some("1"), "run {prcid}");
    }
    let outcomes = store
        .write_runs(&[
            RunWrite::Complete(complete(&requests[0], RequestStatus::Done, "node-a")),
            RunWrite::Complete(complete(&requests[2], RequestStatus::Failed, "node-a")),
            RunWrite::Finish(finish(a, "A", RunStatus::Failed)),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        [
            RunWritten::Completed(true),
            RunWritten::Completed(true),
            RunWritten::Finished(false)
        ]
    );
    let run_a = store.get_run(a).await.unwrap().unwrap();
    assert_eq!(
        (run_a.status, run_a.ended_at),
        (Some(RunStatus::Completed), Some(at(8)))
    );
    let run_c = store.get_run(c).await.unwrap().unwrap();
    assert_eq!(run_c.status, Some(RunStatus::Failed));
    assert_eq!(run_c.msg.as_deref(), Some("it failed"));
    let log = store.job_log_for_run(c).await.unwrap().unwrap();
    assert_eq!((log.srcrows, log.trgrows, log.mapref.as_str()), (3, 2, "C"));
    let done = store.get_request(&requests[0]).await.unwrap().unwrap();
    assert_eq!(done.status, Some(RequestStatus::Done));
    assert_eq!(done.completed_at, Some(at(9)));
    let failed = store.get_request(&requests[2]).await.unwrap().unwrap();
    assert_eq!(failed.status, Some(RequestStatus::Failed));
    assert_eq!(
        failed.result_payload.as_deref(),
        Some("{\"status\":\"FAILED\"}")
    );
    let held = store.get_request(&requests[1]).await.unwrap().unwrap();
    assert_eq!(held.status, Some(RequestStatus::Processing));
}

/// Every insert, delete and change of what makes a schedule counts one change and
/// stamps the row (`CHGDT`), also when another tool writes it and leaves `RECUPDT`
/// alone; what dwsched keeps in the row (next fire, problem, last run) counts nothing.
async fn schedule_changes_are_counted_whoever_makes_them(db: TestDb) {
    let store = db.open().await;
    let start = store.schedule_version().await.unwrap();
    let id = store
        .insert_schedule(
            &NewSchedule {
                mapref: "SALES".into(),
                frqcd: "DL".into(),
                frqhh: Some(6),
                frqmi: Some(0),
                enabled: true,
                ..NewSchedule::default()
            },
            at(0),
        )
        .await
        .unwrap();
    let inserted = store.schedule_version().await.unwrap();
    assert!(inserted > start, "an insert counts");
    let stamped = store.get_schedule(id).await.unwrap().unwrap().changed_at;
    assert!(stamped.is_some(), "an insert stamps CHGDT");

    // dwsched's own bookkeeping is no change.
    store
        .set_schedule_states(&[ScheduleState {
            jobschid: id,
            next_fire: Some(at(3600)),
            scherr: Some("a problem".into()),
        }])
        .await
        .unwrap();
    store
        .record_schedule_result(id, at(60), false)
        .await
        .unwrap();
    db.exec_raw(&[&format!(
        "UPDATE DMS_JOBSCH SET RECUPDT = CURRENT_TIMESTAMP WHERE JOBSCHID = {id}"
    )])
    .await;
    assert_eq!(store.schedule_version().await.unwrap(), inserted);
    assert_eq!(
        store.get_schedule(id).await.unwrap().unwrap().changed_at,
        stamped
    );

    // A rule changed by hand, RECUPDT left alone; a flag; the row deleted.
    let mut seen = inserted;
    for sql in [
        format!("UPDATE DMS_JOBSCH SET FRQHH = 7 WHERE JOBSCHID = {id}"),
        format!("UPDATE DMS_JOBSCH SET SCHFLG = 'N' WHERE JOBSCHID = {id}"),
        format!("UPDATE DMS_JOBSCH SET TIMEZONE = 'Europe/Paris' WHERE JOBSCHID = {id}"),
        format!("DELETE FROM DMS_JOBSCH WHERE JOBSCHID = {id}"),
    ] {
        db.exec_raw(&[&sql]).await;
        let version = store.schedule_version().await.unwrap();
        assert!(version > seen, "{sql} counts");
        seen = version;
    }
}

/// What an incremental sync reads: the ids of the rows the service fires, and the
/// scheduled rows stamped since a time or named by id.
async fn incremental_sync_reads_only_scheduled_and_stamped_rows(db: TestDb) {
    let store = db.open().await;
    let add = |mapref: &'static str, enabled: bool| {
        let store = &store;
        async move {
            store
                .insert_schedule(
                    &NewSchedule {
                        mapref: mapref.into(),
                        frqcd: "DL".into(),
                        frqhh: Some(6),
                        frqmi: Some(0),
                        enabled,
                        ..NewSchedule::default()
                    },
                    at(0),
                )
                .await
                .unwrap()
        }
    };
    let on = add("SALES", true).await;
    let off = add("STOCK", false).await;
    let other = add("HR", true).await;
    assert_eq!(store.scheduled_ids().await.unwrap(), [on, other]);

    let all = store.scheduled_changes(None, &[]).await.unwrap();
    let ids: Vec<i64> = all.iter().map(|r| r.jobschid).collect();
    assert_eq!(ids, [on, other], "every stamped, scheduled row");
    let newest = all.iter().filter_map(|r| r.changed_at).max().unwrap();
    let later = newest + Duration::seconds(3600);
    assert!(
        store
            .scheduled_changes(Some(later), &[])
            .await
            .unwrap()
            .is_empty(),
        "nothing stamped after {later}"
    );
    let named = store
        .scheduled_changes(Some(later), &[other, off])
        .await
        .unwrap();
    let ids: Vec<i64> = named.iter().map(|r| r.jobschid).collect();
    assert_eq!(ids, [other], "a named row, if it is scheduled");
    db.exec_raw(&[&format!(
        "UPDATE DMS_JOBSCH SET FRQHH = 7 WHERE JOBSCHID = {on}"
    )])
    .await;
    let changed = store.scheduled_changes(Some(newest), &[]).await.unwrap();
    assert!(
        changed
            .iter()
            .any(|r| r.jobschid == on && r.frqhh == Some(7))
    );
}

/// The current flow of each job asked for, newest first, and whether an enabled
/// schedule follows the job.
async fn flows_to_run_are_the_current_ones_with_their_followers(db: TestDb) {
    let store = db.open().await;
    store
        .put_job_flow("SALES", r#"{"steps":[]}"#, at(0))
        .await
        .unwrap();
    let sales = store
        .put_job_flow("SALES", r#"{"description":"v2","steps":[]}"#, at(1))
        .await
        .unwrap();
    let stock = store
        .put_job_flow("STOCK", r#"{"steps":[]}"#, at(2))
        .await
        .unwrap();
    let parent = store
        .insert_schedule(
            &NewSchedule {
                mapref: "SALES".into(),
                frqcd: "DL".into(),
                frqhh: Some(6),
                frqmi: Some(0),
                enabled: true,
                ..NewSchedule::default()
            },
            at(3),
        )
        .await
        .unwrap();
    store
        .insert_schedule(
            &NewSchedule {
                mapref: "STOCK".into(),
                frqcd: "DL".into(),
                dpnd_jobschid: Some(parent),
                enabled: true,
                ..NewSchedule::default()
            },
            at(4),
        )
        .await
        .unwrap();
    let flows = store
        .flows_to_run(&["SALES".into(), "STOCK".into(), "NOPE".into()])
        .await
        .unwrap();
    let found: Vec<(i64, bool)> = flows
        .iter()
        .map(|f| (f.flow.jobflwid, f.followed))
        .collect();
    assert_eq!(
        found,
        [(stock.jobflwid, false), (sales.jobflwid, true)],
        "the current versions, newest first; STOCK follows SALES"
    );
    assert!(store.flows_to_run(&[]).await.unwrap().is_empty());
}

/// The counts every metrics scrape reads.
async fn live_counts_follow_the_queue_and_the_runs(db: TestDb) {
    let store = db.open().await;
    register(&*store, &["n1"]).await;
    assert_eq!(
        store.live_counts().await.unwrap(),
        dwsched_store::LiveCounts::default()
    );
    enqueue_at(&*store, run_request("SALES"), 0).await;
    enqueue_at(&*store, run_request("STOCK"), 1).await;
    let claimed = store
        .claim_requests(&claim("n1", RequestClass::Runs, 1, at(2)))
        .await
        .unwrap();
    store
        .open_run(&NewRun {
            mapref: claimed[0].mapref.clone(),
            request_id: Some(claimed[0].request_id.clone()),
            node: Some("n1".into()),
            started_at: at(3),
            ..NewRun::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.live_counts().await.unwrap(),
        dwsched_store::LiveCounts {
            waiting: 1,
            processing: 1,
            runs_in_progress: 1,
        }
    );
}

async fn dwtool_mapping_metadata_is_read_as_the_generator_reads_it(db: TestDb) {
    let store = db.open().await;
    let empty = store.dwtool_mapping("NONE").await.unwrap();
    assert_eq!(empty, dwsched_model::DwtoolMapping::default());

    db.exec_raw(&[
        "INSERT INTO DMS_JOB (MAPREF, TRGSCHM, TRGTBNM, TRGTBTYP, TRGCONID, BLKPRCROWS, \
         CHKPNTSTRTGY, CHKPNTCLNM, CHKPNTENBLD, STFLG, CURFLG) VALUES \
         ('DIM_X', 'dw', 'DIM_X', 'DIM', 7, 500, 'KEY', 'ID', 'Y', 'A', 'Y'), \
         ('DIM_X', 'old', 'DIM_X', 'DIM', 7, 500, 'KEY', 'ID', 'Y', 'A', 'N')",
        "INSERT INTO DMS_JOBDTL (MAPREF, TRGCLNM, TRGKEYFLG, TRGKEYSEQ, MAPLOGIC, MAPRSQLCD, \
         KEYCLNM, VALCLNM, MAPCMBCD, EXCSEQ, SCDTYP, CURFLG) VALUES \
         ('DIM_X', 'NAME', 'N', NULL, 'X_SRC', 'X_SRC', 'ID', 'NAME', 'A00', 2, 2, 'Y'), \
         ('DIM_X', 'ID', 'Y', 1, 'X_SRC', 'X_SRC', 'ID', 'ID', 'A00', 1, 2, 'Y'), \
         ('DIM_X', 'GONE', 'N', NULL, 'X_SRC', 'X_SRC', 'ID', 'GONE', 'A00', 3, 2, 'N')",
        "INSERT INTO DMS_MAPRSQL (MAPRSQLCD, MAPRSQL, SQLCONID, CURFLG) VALUES \
         ('X_SRC', 'SELECT 1 AS id', 3, 'N'), ('X_SRC', 'SELECT 2 AS id', 4, 'Y'), \
         ('OTHER', 'SELECT 3', 5, 'Y')",
        "INSERT INTO DMS_PARAMS (PRTYP, PRCD, PRVAL, DBTYP) VALUES ('BULKPRC', 'NOOFROWS', '250', 'GENERIC')",
        "INSERT INTO DMS_DBCONDTLS (CONNM, DBTYP, CONSTR, SCHNM, CURFLG) VALUES \
         ('src', 'POSTGRESQL', 'postgres://h/db', '', 'Y')",
    ])
    .await;
    store
        .put_job_flow("DIM_X", "MAPREF = \"DIM_X\"", at(0))
        .await
        .unwrap();
    let mapping = store.dwtool_mapping("DIM_X").await.unwrap();
    let job = mapping.job.unwrap();
    assert_eq!(
        (job.trgschm.as_deref(), job.trgconid, job.blkprcrows),
        (Some("dw"), Some(7), Some(500))
    );
    assert_eq!(
        (
            job.chkpntstrtgy.as_deref(),
            job.chkpntclnm.as_deref(),
            job.chkpntenbld.as_deref()
        ),
        (Some("KEY"), Some("ID"), Some("Y"))
    );
    let names: Vec<&str> = mapping.columns.iter().map(|c| c.trgclnm.as_str()).collect();
    assert_eq!(names, ["ID", "NAME"], "current rows, by EXCSEQ");
    assert_eq!(mapping.columns[0].trgkeyseq, Some(1));
    assert_eq!(mapping.columns[1].scdtyp, Some(2));
    assert_eq!(mapping.sqls.len(), 1, "{:?}", mapping.sqls);
    assert_eq!(mapping.sqls[0].maprsql.as_deref(), Some("SELECT 2 AS id"));
    assert_eq!(mapping.sqls[0].sqlconid, Some(4));
    assert_eq!(mapping.default_bulk_rows, Some(250));
    assert_eq!(mapping.dwlogic.as_deref(), Some("MAPREF = \"DIM_X\""));

    let conid = store.list_connections().await.unwrap()[0].conid;
    let found = store.get_connection_by_id(conid).await.unwrap().unwrap();
    assert_eq!(found.connm, "src");
    assert!(
        store
            .get_connection_by_id(conid + 100)
            .await
            .unwrap()
            .is_none()
    );
}

async fn step_records_are_written_replaced_and_closed_by_a_rescue(db: TestDb) {
    use dwsched_model::{StepRecord, StepStatus};
    let store = db.open().await;
    register(&*store, &["n1"]).await;
    let request = enqueue_at(&*store, run_request("STEPS"), 0).await;
    store
        .claim_requests(&claim("n1", RequestClass::Runs, 1, at(1)))
        .await
        .unwrap();
    let prcid = store
        .open_run(&NewRun {
            mapref: "STEPS".into(),
            node: Some("n1".into()),
            request_id: Some(request),
            started_at: at(2),
            ..NewRun::default()
        })
        .await
        .unwrap();
    let step = |name: &str, attempt: i64, status: StepStatus, ended: Option<i64>| StepRecord {
        prcid,
        step: name.into(),
        attempt,
        status,
        started_at: Some(at(3)),
        ended_at: ended.map(at),
        srcrows: ended.map(|_| 10),
        trgrows: ended.map(|_| 9),
        errrows: ended.map(|_| 1),
        msg: (status == StepStatus::Failed).then(|| "it broke".to_string()),
    };
    // A start, then its end replacing it; a second attempt; a step still running.
    let writes = [
        RunWrite::Step {
            record: step("load", 1, StepStatus::InProgress, None),
            new: true,
        },
        RunWrite::Step {
            record: step("load", 1, StepStatus::Failed, Some(4)),
            new: false,
        },
        RunWrite::Step {
            record: step("load", 2, StepStatus::Completed, Some(6)),
            new: true,
        },
        RunWrite::Step {
            record: step("publish", 1, StepStatus::InProgress, None),
            new: true,
        },
    ];
    for write in &writes {
        let outcome = store.write_runs(std::slice::from_ref(write)).await.unwrap();
        assert!(matches!(outcome[0], Ok(RunWritten::Step)), "{outcome:?}");
    }
    let steps = store.run_steps(prcid).await.unwrap();
    assert_eq!(steps.len(), 3, "{steps:?}");
    let load_1 = steps
        .iter()
        .find(|s| s.step == "load" && s.attempt == 1)
        .unwrap();
    assert_eq!(*load_1, step("load", 1, StepStatus::Failed, Some(4)));
    let load_2 = steps.iter().find(|s| s.attempt == 2).unwrap();
    assert_eq!(
        (load_2.status, load_2.trgrows),
        (StepStatus::Completed, Some(9))
    );
    // The node dies: its run and the step it was running end FL together.
    store
        .rescue_node("n1", "node n1 stopped heartbeating", None, 3)
        .await
        .unwrap();
    let steps = store.run_steps(prcid).await.unwrap();
    let publish = steps.iter().find(|s| s.step == "publish").unwrap();
    assert_eq!(publish.status, StepStatus::Failed);
    assert_eq!(publish.msg.as_deref(), Some("node n1 stopped heartbeating"));
    assert!(publish.ended_at.is_some());
    assert_eq!(
        steps.iter().find(|s| s.attempt == 2).unwrap().status,
        StepStatus::Completed,
        "ended steps keep their status"
    );
    assert!(store.run_steps(prcid + 1000).await.unwrap().is_empty());
}

async fn reserved_requests_are_their_nodes_alone(db: TestDb) {
    let store = db.open().await;
    register(&*store, &["service", "fg"]).await;
    let reserved = |mapref: &str| NewRequest {
        reserved_for: Some("fg".into()),
        dedupe_key: Some(format!("{}{mapref}", dwsched_model::FOREGROUND_KEY_PREFIX)),
        ..run_request(mapref)
    };
    let mine = enqueue_at(&*store, reserved("ONE"), 0).await;
    let behind = enqueue_at(&*store, run_request("ONE"), 1).await;
    let other = enqueue_at(&*store, run_request("TWO"), 2).await;
    // The service takes neither the reserved request nor the one queued behind it.
    let taken = store
        .claim_requests(&claim("service", RequestClass::Runs, 10, at(3)))
        .await
        .unwrap();
    assert_eq!(ids(&taken), std::slice::from_ref(&other));
    // Its node takes only what is reserved for it.
    let taken = store
        .claim_requests(&claim("fg", RequestClass::Reserved, 10, at(4)))
        .await
        .unwrap();
    assert_eq!(ids(&taken), std::slice::from_ref(&mine));
    assert_eq!(taken[0].claimed_by.as_deref(), Some("fg"));
    assert!(
        store
            .claim_requests(&claim("fg", RequestClass::Reserved, 10, at(5)))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .claim_requests(&claim("service", RequestClass::Runs, 10, at(5)))
            .await
            .unwrap()
            .is_empty(),
        "ONE is held by fg"
    );
    // A waiting reservation of a foreground run that ended is cancelled by the rescue,
    // and the request it was running fails instead of running again elsewhere.
    let waiting = enqueue_at(&*store, reserved("THREE"), 6).await;
    let report = store
        .rescue_node("fg", "node fg stopped heartbeating", None, 3)
        .await
        .unwrap();
    assert_eq!(report.requests_failed, std::slice::from_ref(&mine));
    assert!(report.requests_requeued.is_empty());
    let status = |id: &str| {
        let store = &store;
        let id = id.to_string();
        async move { store.get_request(&id).await.unwrap().unwrap() }
    };
    assert_eq!(status(&mine).await.status, Some(RequestStatus::Failed));
    let cancelled = status(&waiting).await;
    assert_eq!(cancelled.status, Some(RequestStatus::Cancelled));
    assert!(
        cancelled.result_payload.unwrap().contains("job run"),
        "the reason says whose request it was"
    );
    // The request queued behind the reservation is the service's now.
    let taken = store
        .claim_requests(&claim("service", RequestClass::Runs, 10, at(7)))
        .await
        .unwrap();
    assert_eq!(ids(&taken), std::slice::from_ref(&behind));
    // A CLAIMED_BY that another tool left on a waiting row reserves nothing.
    let legacy = enqueue_at(
        &*store,
        NewRequest {
            reserved_for: Some("a-node-long-gone".into()),
            ..run_request("FOUR")
        },
        8,
    )
    .await;
    let taken = store
        .claim_requests(&claim("service", RequestClass::Runs, 10, at(9)))
        .await
        .unwrap();
    assert_eq!(ids(&taken), std::slice::from_ref(&legacy));
}

/// What a node holds, by class: what it reads when a claim's answer was lost.
async fn a_node_reads_the_requests_it_holds(db: TestDb) {
    let store = db.open().await;
    register(&*store, &["node-a", "node-b"]).await;
    let a = enqueue_at(&*store, run_request("A"), 0).await;
    let b = enqueue_at(&*store, run_request("B"), 1).await;
    let stop = enqueue_at(
        &*store,
        NewRequest::new("A", RequestType::Stop, "{}".into()),
        2,
    )
    .await;
    let other = enqueue_at(&*store, run_request("C"), 3).await;
    let runs = store
        .claim_requests(&claim("node-a", RequestClass::Runs, 2, at(5)))
        .await
        .unwrap();
    assert_eq!(ids(&runs), [a.clone(), b.clone()]);
    let control = store
        .claim_requests(&claim("node-a", RequestClass::Control, 5, at(5)))
        .await
        .unwrap();
    assert_eq!(ids(&control), std::slice::from_ref(&stop));
    let theirs = store
        .claim_requests(&claim("node-b", RequestClass::Runs, 5, at(5)))
        .await
        .unwrap();
    assert_eq!(ids(&theirs), std::slice::from_ref(&other));
    store
        .complete_request(&b, Some("node-a"), RequestStatus::Done, "{}", at(6))
        .await
        .unwrap();

    let held = store
        .held_requests("node-a", RequestClass::Runs)
        .await
        .unwrap();
    assert_eq!(ids(&held), [a]);
    assert_eq!(held[0].status, Some(RequestStatus::Processing));
    let held = store
        .held_requests("node-a", RequestClass::Control)
        .await
        .unwrap();
    assert_eq!(ids(&held), [stop]);
    let held = store
        .held_requests("node-c", RequestClass::Runs)
        .await
        .unwrap();
    assert!(held.is_empty(), "{held:?}");
}

/// Fires queued in one batch share their `REQUESTED_AT`; they are claimed in the order
/// given (a schedule's catch-up slots, slots a calendar moved onto one instant).
async fn requests_queued_together_run_in_the_order_given(db: TestDb) {
    let store = db.open().await;
    register(&*store, &["node-a"]).await;
    let batch: Vec<NewRequest> = (0..12)
        .map(|i| NewRequest {
            dedupe_key: Some(format!("sch:1:slot-{i:02}")),
            ..run_request("DAILY")
        })
        .collect();
    assert_eq!(store.enqueue_many(&batch).await.unwrap(), 12);
    let mut order = Vec::new();
    for _ in 0..12 {
        let claimed = store
            .claim_requests(&claim("node-a", RequestClass::Runs, 5, Utc::now()))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "one run of a mapref at a time");
        order.push(claimed[0].dedupe_key.clone().unwrap());
        store
            .complete_request(
                &claimed[0].request_id,
                Some("node-a"),
                RequestStatus::Done,
                "{}",
                Utc::now(),
            )
            .await
            .unwrap();
    }
    let expected: Vec<String> = (0..12).map(|i| format!("sch:1:slot-{i:02}")).collect();
    assert_eq!(order, expected);
}

/// Calendars and their holidays, written by dwsched or by hand, read back by name.
async fn calendars_hold_work_days_and_holidays(db: TestDb) {
    let store = db.open().await;
    let day = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
    let holiday = |date: &str, name: &str| dwsched_model::Holiday {
        date: day(date),
        description: Some(name.into()),
    };
    assert!(
        store
            .put_calendar("UK", "MON,TUE,WED,THU,FRI", Some("England"), at(0))
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_calendar("UK", "MON,TUE,WED,THU,FRI,SAT", Some("England"), at(1))
            .await
            .unwrap()
    );
    let added = store
        .add_holidays(
            "UK",
            &[
                holiday("2026-12-28", "Boxing Day"),
                holiday("2026-12-25", "Christmas"),
            ],
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(added, Some(2));
    // A date already there takes the new description and counts as not new.
    let again = store
        .add_holidays("UK", &[holiday("2026-12-25", "Christmas Day")], at(3))
        .await
        .unwrap();
    assert_eq!(again, Some(0));
    assert_eq!(store.add_holidays("NOPE", &[], at(3)).await.unwrap(), None);
    // Rows another tool inserted.
    db.exec_raw(&[
        "INSERT INTO DMS_CALENDAR (CALNM, DESCR) VALUES ('US', 'written by hand')",
        "INSERT INTO DMS_CALDATE (CALNM, CALDT, DESCR) VALUES ('US', '2026-07-03', NULL)",
        "INSERT INTO DMS_CALDATE (CALNM, CALDT, DESCR) VALUES ('GONE', '2026-07-03', 'no calendar')",
        // A date written with a time of day (SQLite keeps the text as given).
        "INSERT INTO DMS_CALDATE (CALNM, CALDT, DESCR) VALUES ('US', '2026-07-04 00:00:00', 'Independence Day')",
    ])
    .await;

    let uk = store.get_calendar("UK").await.unwrap().unwrap();
    assert_eq!(uk.workdays.as_deref(), Some("MON,TUE,WED,THU,FRI,SAT"));
    assert_eq!(uk.description.as_deref(), Some("England"));
    assert_eq!(
        uk.holidays,
        [
            holiday("2026-12-25", "Christmas Day"),
            holiday("2026-12-28", "Boxing Day")
        ]
    );
    let all = store.list_calendars().await.unwrap();
    let names: Vec<_> = all.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["UK", "US"]);
    assert_eq!(
        all[1].workdays.as_deref(),
        Some("MON,TUE,WED,THU,FRI"),
        "the column default"
    );
    assert_eq!(
        all[1].holidays,
        [
            dwsched_model::Holiday {
                date: day("2026-07-03"),
                description: None
            },
            holiday("2026-07-04", "Independence Day")
        ]
    );
    assert!(
        store
            .remove_holiday("UK", day("2026-12-28"), at(4))
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_holiday("UK", day("2026-12-28"), at(5))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_calendar("UK")
            .await
            .unwrap()
            .unwrap()
            .holidays
            .len(),
        1
    );
    assert!(store.get_calendar("NOPE").await.unwrap().is_none());
}

/// A report as DWTOOL's UI writes it (the reports note's fixture, §5; table names in
/// upper case, which MySQL tells apart): the source from
/// its managed SQL (or the current version of it), the fields in the original's order,
/// and a run recorded `RUNNING`, then `SUCCESS`.
async fn dwtool_reports_are_read_as_the_ui_writes_them(db: TestDb) {
    let store = db.open().await;
    db.exec_raw(&[
        "INSERT INTO DMS_MAPRSQL (maprsqlid, maprsqlcd, maprsql, sqlconid, curflg) \
         VALUES (101, 'SALES_BY_REGION', 'SELECT region, amount, order_dt FROM sales.orders', 1, 'Y')",
        "INSERT INTO DMS_RPRT_DEF (rprtid, rprtnm, dscrptn, sqlsrcid, adhcsql, dbcnid, dflt_otpt_fmt, \
         spprtd_fmts, prvw_rw_lmt, is_actv, curflg, crtdby, updtdby) \
         VALUES (4, 'Daily Sales', 'Sales per region', 101, NULL, NULL, 'CSV', 'CSV,EXCEL', 100, 'Y', 'Y', 'admin', 'admin')",
        "INSERT INTO DMS_RPRT_FLD (fldid, rprtid, pnl_typ, row_ordr, fld_nm, fld_als, src_clmn, frmla_id, \
         frmla_inln, dt_typ, fmt_mask, is_vsbl, is_group_by, order_by_seq, order_by_dir, notes) VALUES \
         (13, 4, 'DETAIL', 3, 'ORDERS', 'ORDERS', NULL, NULL, 'COUNT(*)', 'INTEGER', NULL, 'Y', 'N', NULL, NULL, NULL)",
        "INSERT INTO DMS_RPRT_FLD (fldid, rprtid, pnl_typ, row_ordr, fld_nm, fld_als, src_clmn, frmla_inln, \
         is_vsbl, is_group_by, order_by_seq, order_by_dir) VALUES \
         (11, 4, 'DETAIL', 1, 'REGION', 'REGION', 'region', NULL, 'Y', 'Y', 1, 'ASC')",
        "INSERT INTO DMS_RPRT_FLD (fldid, rprtid, pnl_typ, row_ordr, fld_nm, fld_als, src_clmn, frmla_inln, \
         is_vsbl, is_group_by, order_by_seq, order_by_dir) VALUES \
         (12, 4, 'DETAIL', 2, 'TOTAL_AMOUNT', 'TOTAL_AMOUNT', 'amount', 'SUM(amount)', 'Y', 'N', 2, 'desc')",
        "INSERT INTO DMS_RPRT_FLD (fldid, rprtid, pnl_typ, row_ordr, fld_nm) VALUES (14, 4, NULL, NULL, 'LAST')",
        "INSERT INTO DMS_RPRT_DEF (rprtid, rprtnm, adhcsql, dbcnid) VALUES (5, 'Ad hoc', 'SELECT 1 AS one', 7)",
    ])
    .await;
    let report = store.report_definition(4).await.unwrap().unwrap();
    assert_eq!(report.name, "Daily Sales");
    assert_eq!(report.sqlsrcid, Some(101));
    assert_eq!(
        report.source_sql.as_deref(),
        Some("SELECT region, amount, order_dt FROM sales.orders")
    );
    assert_eq!(report.conid, Some(1), "the source's SQLCONID");
    let names: Vec<_> = report
        .fields
        .iter()
        .map(|f| f.name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["REGION", "TOTAL_AMOUNT", "ORDERS", "LAST"]);
    assert!(report.fields[0].group_by && !report.fields[1].group_by);
    assert_eq!(report.fields[1].order_by_dir.as_deref(), Some("DESC"));
    assert_eq!(
        report.fields[1].inline_formula.as_deref(),
        Some("SUM(amount)")
    );
    assert_eq!(report.fields[2].order_by_seq, None);
    assert_eq!(
        dwsched_report::final_sql(report.source_sql.as_deref().unwrap(), &report.fields[..3])
            .unwrap(),
        "SELECT\n    region AS \"REGION\",\n    SUM(amount) AS \"TOTAL_AMOUNT\",\n    COUNT(*) AS \"ORDERS\"\nFROM (\nSELECT region, amount, order_dt FROM sales.orders\n) base_query\nGROUP BY region\nORDER BY \"REGION\" ASC, \"TOTAL_AMOUNT\" DESC"
    );

    // A new version of the managed SQL (the old one retired): the report reads it.
    db.exec_raw(&[
        "UPDATE DMS_MAPRSQL SET curflg = 'N' WHERE maprsqlid = 101",
        "INSERT INTO DMS_MAPRSQL (maprsqlid, maprsqlcd, maprsql, sqlconid, curflg) \
         VALUES (102, 'SALES_BY_REGION', 'SELECT region, amount FROM sales.orders_v2', 2, 'Y')",
    ])
    .await;
    let report = store.report_definition(4).await.unwrap().unwrap();
    assert_eq!(
        report.source_sql.as_deref(),
        Some("SELECT region, amount FROM sales.orders_v2")
    );
    assert_eq!(report.conid, Some(2));
    let adhoc = store.report_definition(5).await.unwrap().unwrap();
    assert_eq!(
        (adhoc.source_sql.as_deref(), adhoc.conid, adhoc.fields.len()),
        (Some("SELECT 1 AS one"), Some(7), 0)
    );
    assert!(store.report_definition(6).await.unwrap().is_none());

    let runid = store
        .open_report_run(&dwsched_model::NewReportRun {
            rprtid: 4,
            request_id: "adec167c-e053-4413-93fd-79967522e69b".into(),
            triggered_by: "system".into(),
            format: "CSV".into(),
            parameters: r#"{"params": {}, "message": null}"#.into(),
            started_at: at(0),
        })
        .await
        .unwrap();
    assert!(
        store
            .finish_report_run(
                runid,
                "SUCCESS",
                Some(4),
                r#"{"params": {}, "message": null}"#,
                at(3)
            )
            .await
            .unwrap()
    );
    let rows = db
        .text_rows(&format!(
            "SELECT rqst_id, stts, trggrd_by, otpt_fmt, prm_ovrrds FROM DMS_RPRT_RUN WHERE runid = {runid}"
        ))
        .await;
    assert_eq!(
        rows[0],
        [
            Some("adec167c-e053-4413-93fd-79967522e69b".to_string()),
            Some("SUCCESS".to_string()),
            Some("system".to_string()),
            Some("CSV".to_string()),
            Some(r#"{"params": {}, "message": null}"#.to_string()),
        ]
    );

    // A run its node left RUNNING is closed FAILED when the request runs again; ended
    // runs are not touched.
    let abandoned = store
        .open_report_run(&dwsched_model::NewReportRun {
            rprtid: 4,
            request_id: "adec167c-e053-4413-93fd-79967522e69b".into(),
            triggered_by: "system".into(),
            format: "CSV".into(),
            parameters: r#"{"params": {}, "message": null}"#.into(),
            started_at: at(5),
        })
        .await
        .unwrap();
    let closed = store
        .fail_running_report_runs(
            "adec167c-e053-4413-93fd-79967522e69b",
            r#"{"params": {}, "message": "node died"}"#,
            at(9),
        )
        .await
        .unwrap();
    assert_eq!(closed, 1);
    let rows = db
        .text_rows("SELECT stts, prm_ovrrds FROM DMS_RPRT_RUN ORDER BY runid")
        .await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][0].as_deref(), Some("SUCCESS"), "run {runid}");
    assert_eq!(
        rows[1],
        [
            Some("FAILED".to_string()),
            Some(r#"{"params": {}, "message": "node died"}"#.to_string())
        ],
        "run {abandoned}"
    );
}

/// DWTOOL's report schedules as its UI writes them (the reports note's fixture): the
/// due `ACTIVE` row fires once when two nodes fire it at the same moment, its request
/// is the original's, and it moves to its next time; paused, inactive and future rows
/// do not fire.
async fn report_schedules_fire_once_across_nodes(db: TestDb) {
    let first = db.open().await;
    let second = db.open().await;
    db.exec_raw(&[
        "INSERT INTO DMS_RPRT_SCHD (SCHDID, RPRTID, FRQNCY, TM_PRM, NXT_RUN_DT, LST_RUN_DT, STTS, OTPT_FMT, \
         DSTN_TYP, EMAL_TO, FL_PTH) VALUES \
         (7, 4, 'DAILY', 'DL_06:30', '2026-03-02 06:30:00', '2026-03-01 06:30:41', 'ACTIVE', 'CSV', 'FILE', \
          NULL, '/srv/dw/reports/sales')",
        "INSERT INTO DMS_RPRT_SCHD (SCHDID, RPRTID, FRQNCY, TM_PRM, NXT_RUN_DT, STTS, OTPT_FMT, DSTN_TYP, EMAL_TO) \
         VALUES (8, 4, 'WEEKLY', 'WK_MON_08:00', '2026-03-02 08:00:00', 'ACTIVE', 'EXCEL', 'EMAIL', \
          'sales-team@example.com, cfo@example.com')",
        "INSERT INTO DMS_RPRT_SCHD (SCHDID, RPRTID, FRQNCY, TM_PRM, NXT_RUN_DT, STTS, OTPT_FMT, DSTN_TYP, FL_PTH) \
         VALUES (9, 4, 'MONTHLY', 'MN_01_07:00', NULL, 'PAUSED', 'PDF', 'FILE', '/srv/dw/reports/sales/monthly.pdf')",
        "INSERT INTO DMS_RPRT_SCHD (SCHDID, RPRTID, FRQNCY, TM_PRM, NXT_RUN_DT, STTS, OTPT_FMT, DSTN_TYP) \
         VALUES (10, 4, 'DAILY', 'DL_09:00', '2026-02-22 09:00:00', 'INACTIVE', 'JSON', 'FILE')",
    ])
    .await;
    let zone = chrono_tz::Asia::Kolkata;
    // 07:00 in Kolkata on 2 March 2026.
    let now: chrono::DateTime<Utc> = "2026-03-02T01:30:00Z".parse().unwrap();
    let wall_clock = now.with_timezone(&zone).naive_local();
    let due = first.due_report_schedules(wall_clock).await.unwrap();
    let ids: Vec<i64> = due.iter().map(|r| r.schdid).collect();
    assert_eq!(ids, [7], "only the ACTIVE row whose time has come");
    let fire = dwsched_service::dwtool_schedules::plan_report_fire(&due[0], now, zone).unwrap();
    // Two nodes fire the same row at the same moment: one wins.
    let (a, b) = tokio::join!(
        first.fire_report_schedule(&fire, now),
        second.fire_report_schedule(&fire, now)
    );
    let wins = [a.unwrap(), b.unwrap()];
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    assert!(
        !first.fire_report_schedule(&fire, now).await.unwrap(),
        "fired already"
    );

    let requests = first.list_requests(None, 100).await.unwrap();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].mapref, "REPORT:4");
    assert_eq!(requests[0].request_type.as_str(), "REPORT");
    assert_eq!(requests[0].status, Some(RequestStatus::New));
    assert_eq!(
        requests[0].payload.as_deref(),
        Some(
            r#"{"outputFormat": "CSV", "destination": "FILE", "requestedBy": "system", "filePath": "/srv/dw/reports/sales", "reportId": 4}"#
        )
    );
    let row = db
        .text_rows(
            "SELECT CAST(NXT_RUN_DT AS CHAR(19)), CAST(LST_RUN_DT AS CHAR(19)), STTS FROM DMS_RPRT_SCHD WHERE SCHDID = 7",
        )
        .await;
    assert_eq!(
        row[0],
        [
            Some("2026-03-03 06:30:00".to_string()),
            Some("2026-03-02 07:00:00".to_string()),
            Some("ACTIVE".to_string())
        ]
    );
    assert!(
        first
            .due_report_schedules(wall_clock)
            .await
            .unwrap()
            .is_empty()
    );
}
