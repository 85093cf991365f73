//! A DWTOOL site adopts dwsched on its own tables: the original install's column types
//! (`NUMERIC(30,0)` session ids, `NUMERIC` or `BIGINT` ids, `CHAR(1)` flags, long
//! `PARAMn`), adopted by `dwsched init`, then every kind of run, read back the way
//! DWTOOL's UI reads a run's log: `DMS_PRCLOG` joined to `DMS_JOBLOG` and `DMS_JOBERR`
//! on `JOBID`, `SESSIONID`, `PRCID` and `MAPREF`.

use std::time::Duration;

use dwsched_model::{RequestStatus, RunStatus};
use dwsched_store::Backend;

use crate::service::{NodeProcess, Scratch, cli, runs_of, wait_request, wait_run_status};
use crate::util::{TestDb, with_db};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_runs_on_the_original_install() {
    with_db(Backend::Postgres, runs_on_the_original_install).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_runs_on_the_original_install() {
    with_db(Backend::MySql, runs_on_the_original_install).await;
}

const LONG: Duration = Duration::from_secs(30);

/// The job and run tables of the original PostgreSQL install script, as it declares
/// them, except that a few ids are `NUMERIC` as on a site migrated from Oracle's
/// `NUMBER` (DWTOOL-MAPPING.md §1.3).
const POSTGRES_INSTALL: &[&str] = &[
    "CREATE TABLE dms_dbcondtls (conid BIGINT PRIMARY KEY, connm VARCHAR(100), \
     dbhost VARCHAR(100), dbport INTEGER, dbsrvnm VARCHAR(100), usrnm VARCHAR(100), \
     passwd VARCHAR(400), constr VARCHAR(1000), schnm VARCHAR(128) NOT NULL, \
     curflg CHAR(1) DEFAULT 'Y')",
    "CREATE TABLE dms_job (jobid BIGINT PRIMARY KEY, mapid BIGINT, mapref VARCHAR(50) NOT NULL, \
     frqcd VARCHAR(10), trgschm VARCHAR(100), trgtbtyp VARCHAR(20), trgtbnm VARCHAR(100), \
     srcsystm VARCHAR(100), stflg CHAR(1), blkprcrows INTEGER, trgconid BIGINT, \
     chkpntstrtgy VARCHAR(20), chkpntclnm VARCHAR(100), chkpntenbld CHAR(1), \
     reccrdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP, recupdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP, \
     curflg CHAR(1) DEFAULT 'Y')",
    "CREATE TABLE dms_jobflw (jobflwid NUMERIC(20,0) PRIMARY KEY, jobid NUMERIC(20,0), \
     mapref VARCHAR(50), trgschm VARCHAR(100), trgtbtyp VARCHAR(20), trgtbnm VARCHAR(100), \
     dwlogic TEXT, stflg CHAR(1) DEFAULT 'A', recrdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP, \
     recupdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP, curflg CHAR(1) DEFAULT 'Y')",
    "CREATE TABLE dms_jobsch (jobschid NUMERIC(20,0) PRIMARY KEY, jobflwid NUMERIC(20,0), \
     mapref VARCHAR(50) NOT NULL, frqcd VARCHAR(10), frqdd VARCHAR(10), frqhh INTEGER, \
     frqmi INTEGER, strtdt TIMESTAMP, enddt TIMESTAMP, stflg CHAR(1), schflg CHAR(1), \
     curflg CHAR(1) DEFAULT 'Y', dpnd_jobschid NUMERIC(20,0), lst_run_dt TIMESTAMP, \
     nxt_run_dt TIMESTAMP, reccrdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP, \
     recupdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP)",
    "CREATE TABLE dms_prclog (prcid NUMERIC(20,0) PRIMARY KEY, jobid BIGINT, jobflwid BIGINT, \
     strtdt TIMESTAMP, enddt TIMESTAMP, status VARCHAR(10), msg TEXT, prclog TEXT, \
     mapref VARCHAR(100), sessionid NUMERIC(30,0), \
     param1 VARCHAR(4000), param2 VARCHAR(4000), param3 VARCHAR(4000), param4 VARCHAR(4000), \
     param5 VARCHAR(4000), param6 VARCHAR(4000), param7 VARCHAR(4000), param8 VARCHAR(4000), \
     param9 VARCHAR(4000), param10 VARCHAR(4000), \
     reccrdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP, recupdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP)",
    "CREATE TABLE dms_joblog (joblogid BIGINT PRIMARY KEY, prcdt TIMESTAMP, \
     mapref VARCHAR(100), jobid NUMERIC(20,0), srcrows BIGINT, trgrows BIGINT, errrows BIGINT, \
     prcid NUMERIC(20,0), sessionid NUMERIC(30,0), reccrdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP)",
    "CREATE TABLE dms_joberr (joblogid BIGINT, errid NUMERIC(20,0), prcdt TIMESTAMP, \
     errtyp VARCHAR(10), dberrmsg TEXT, errmsg TEXT, keyvalue VARCHAR(1000), jobid BIGINT, \
     sessionid NUMERIC(30,0), prcid BIGINT, mapref VARCHAR(100))",
    "CREATE TABLE dms_prcreq (request_id VARCHAR(64) PRIMARY KEY, mapref VARCHAR(100) NOT NULL, \
     request_type VARCHAR(30) NOT NULL, payload TEXT, status VARCHAR(20) DEFAULT 'NEW', \
     requested_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, claimed_at TIMESTAMP, \
     claimed_by VARCHAR(64), completed_at TIMESTAMP, result_payload TEXT)",
    "CREATE INDEX dms_prcreq_status_idx ON dms_prcreq(status, requested_at)",
    "CREATE INDEX dms_prcreq_mapref_idx ON dms_prcreq(mapref)",
    "CREATE SEQUENCE dms_jobseq START WITH 1 INCREMENT BY 1",
    "CREATE SEQUENCE dms_jobflwseq START WITH 1 INCREMENT BY 1",
    "CREATE SEQUENCE dms_jobschseq START WITH 1 INCREMENT BY 1",
    "CREATE SEQUENCE dms_prclogseq START WITH 1 INCREMENT BY 1",
    "CREATE SEQUENCE dms_joblogseq START WITH 1 INCREMENT BY 1",
    "CREATE SEQUENCE dms_joberrseq START WITH 1 INCREMENT BY 1",
];

/// The same shapes in MySQL's types: `DECIMAL` for `NUMERIC`, `DATETIME`, and `TEXT`
/// for the `PARAMn` columns (ten `VARCHAR(4000)` do not fit MySQL's row size).
const MYSQL_INSTALL: &[&str] = &[
    "CREATE TABLE DMS_DBCONDTLS (CONID BIGINT AUTO_INCREMENT PRIMARY KEY, CONNM VARCHAR(100), \
     DBHOST VARCHAR(100), DBPORT INTEGER, DBSRVNM VARCHAR(100), USRNM VARCHAR(100), \
     PASSWD VARCHAR(400), CONSTR VARCHAR(1000), SCHNM VARCHAR(128) NOT NULL, \
     CURFLG CHAR(1) DEFAULT 'Y')",
    "CREATE TABLE DMS_JOB (JOBID BIGINT AUTO_INCREMENT PRIMARY KEY, MAPID BIGINT, \
     MAPREF VARCHAR(50) NOT NULL, FRQCD VARCHAR(10), TRGSCHM VARCHAR(100), \
     TRGTBTYP VARCHAR(20), TRGTBNM VARCHAR(100), SRCSYSTM VARCHAR(100), STFLG CHAR(1), \
     BLKPRCROWS INTEGER, TRGCONID DECIMAL(20,0), CHKPNTSTRTGY VARCHAR(20), \
     CHKPNTCLNM VARCHAR(100), CHKPNTENBLD CHAR(1), RECCRDT DATETIME DEFAULT CURRENT_TIMESTAMP, \
     RECUPDT DATETIME DEFAULT CURRENT_TIMESTAMP, CURFLG CHAR(1) DEFAULT 'Y')",
    "CREATE TABLE DMS_JOBFLW (JOBFLWID BIGINT AUTO_INCREMENT PRIMARY KEY, JOBID DECIMAL(20,0), \
     MAPREF VARCHAR(50), TRGSCHM VARCHAR(100), TRGTBTYP VARCHAR(20), TRGTBNM VARCHAR(100), \
     DWLOGIC LONGTEXT, STFLG CHAR(1) DEFAULT 'A', RECRDT DATETIME DEFAULT CURRENT_TIMESTAMP, \
     RECUPDT DATETIME DEFAULT CURRENT_TIMESTAMP, CURFLG CHAR(1) DEFAULT 'Y')",
    "CREATE TABLE DMS_JOBSCH (JOBSCHID BIGINT AUTO_INCREMENT PRIMARY KEY, \
     JOBFLWID DECIMAL(20,0), MAPREF VARCHAR(50) NOT NULL, FRQCD VARCHAR(10), \
     FRQDD VARCHAR(10), FRQHH INTEGER, FRQMI INTEGER, STRTDT DATETIME NULL, \
     ENDDT DATETIME NULL, STFLG CHAR(1), SCHFLG CHAR(1), CURFLG CHAR(1) DEFAULT 'Y', \
     DPND_JOBSCHID DECIMAL(20,0), LST_RUN_DT DATETIME NULL, NXT_RUN_DT DATETIME NULL, \
     RECCRDT DATETIME DEFAULT CURRENT_TIMESTAMP, RECUPDT DATETIME DEFAULT CURRENT_TIMESTAMP)",
    "CREATE TABLE DMS_PRCLOG (PRCID BIGINT AUTO_INCREMENT PRIMARY KEY, JOBID DECIMAL(20,0), \
     JOBFLWID DECIMAL(20,0), STRTDT DATETIME NULL, ENDDT DATETIME NULL, STATUS VARCHAR(10), \
     MSG LONGTEXT, PRCLOG LONGTEXT, MAPREF VARCHAR(100), SESSIONID DECIMAL(30,0), \
     PARAM1 TEXT, PARAM2 TEXT, PARAM3 TEXT, PARAM4 TEXT, PARAM5 TEXT, PARAM6 TEXT, \
     PARAM7 TEXT, PARAM8 TEXT, PARAM9 TEXT, PARAM10 TEXT, \
     RECCRDT DATETIME DEFAULT CURRENT_TIMESTAMP, RECUPDT DATETIME DEFAULT CURRENT_TIMESTAMP)",
    "CREATE TABLE DMS_JOBLOG (JOBLOGID BIGINT AUTO_INCREMENT PRIMARY KEY, PRCDT DATETIME NULL, \
     MAPREF VARCHAR(100), JOBID DECIMAL(20,0), SRCROWS DECIMAL(20,0), TRGROWS DECIMAL(20,0), \
     ERRROWS DECIMAL(20,0), PRCID DECIMAL(20,0), SESSIONID DECIMAL(30,0), \
     RECCRDT DATETIME DEFAULT CURRENT_TIMESTAMP)",
    "CREATE TABLE DMS_JOBERR (JOBLOGID DECIMAL(20,0), ERRID BIGINT AUTO_INCREMENT PRIMARY KEY, \
     PRCDT DATETIME NULL, ERRTYP VARCHAR(10), DBERRMSG LONGTEXT, ERRMSG LONGTEXT, \
     KEYVALUE VARCHAR(1000), JOBID DECIMAL(20,0), SESSIONID DECIMAL(30,0), PRCID DECIMAL(20,0), \
     MAPREF VARCHAR(100))",
    "CREATE TABLE DMS_PRCREQ (REQUEST_ID VARCHAR(64) PRIMARY KEY, MAPREF VARCHAR(100) NOT NULL, \
     REQUEST_TYPE VARCHAR(30) NOT NULL, PAYLOAD LONGTEXT, STATUS VARCHAR(20) DEFAULT 'NEW', \
     REQUESTED_AT DATETIME DEFAULT CURRENT_TIMESTAMP, CLAIMED_AT DATETIME NULL, \
     CLAIMED_BY VARCHAR(64), COMPLETED_AT DATETIME NULL, RESULT_PAYLOAD LONGTEXT)",
    "CREATE INDEX dms_prcreq_status_idx ON DMS_PRCREQ (STATUS, REQUESTED_AT)",
    "CREATE INDEX dms_prcreq_mapref_idx ON DMS_PRCREQ (MAPREF)",
];

/// DWTOOL's run log view (`fastapi_jobs.py`): every run with its totals and its first
/// error, each column read as text.
fn ui_run_log(backend: Backend) -> String {
    let text = |column: &str| match backend {
        Backend::MySql => format!("CAST({column} AS CHAR)"),
        _ => format!("CAST({column} AS VARCHAR)"),
    };
    format!(
        "SELECT {}, pl.MAPREF, pl.STATUS, {}, {}, {}, pl.PARAM1, err.ERRTYP, err.ERRMSG \
         FROM DMS_PRCLOG pl \
         LEFT JOIN DMS_JOBLOG jl ON jl.JOBID = pl.JOBID AND jl.SESSIONID = pl.SESSIONID \
             AND jl.PRCID = pl.PRCID AND jl.MAPREF = pl.MAPREF \
         LEFT JOIN DMS_JOBERR err ON err.SESSIONID = pl.SESSIONID AND err.PRCID = pl.PRCID \
             AND err.MAPREF = pl.MAPREF AND err.JOBID = pl.JOBID AND err.ERRTYP = 'JOB' \
         ORDER BY pl.PRCID",
        text("pl.PRCID"),
        text("jl.JOBLOGID"),
        text("pl.SESSIONID"),
        text("jl.SRCROWS"),
    )
}

/// One row of [`ui_run_log`].
#[derive(Debug)]
struct UiRun {
    prcid: String,
    mapref: String,
    status: String,
    joblogid: Option<String>,
    sessionid: Option<String>,
    param1: Option<String>,
    error_type: Option<String>,
    error: Option<String>,
}

async fn read_ui_run_log(db: &TestDb) -> Vec<UiRun> {
    db.text_rows(&ui_run_log(db.backend))
        .await
        .into_iter()
        .map(|mut row| {
            let mut take = |i: usize| row[i].take();
            UiRun {
                prcid: take(0).unwrap_or_default(),
                mapref: take(1).unwrap_or_default(),
                status: take(2).unwrap_or_default(),
                joblogid: take(3),
                sessionid: take(4),
                param1: take(6),
                error_type: take(7),
                error: take(8),
            }
        })
        .collect()
}

async fn runs_on_the_original_install(db: TestDb) {
    let install = match db.backend {
        Backend::Postgres => POSTGRES_INSTALL,
        _ => MYSQL_INSTALL,
    };
    db.exec_raw(install).await;
    let scratch = Scratch::new();
    cli(&db, &scratch.dir, &["init"]);
    let store = db.open_unmigrated().await;

    // A connection, used by a SQL step: the install declares SCHNM NOT NULL.
    let warehouse = db.flow_connection("warehouse");
    let mut conn_args = vec![
        "conn",
        "put",
        "warehouse",
        "--url",
        warehouse.constr.as_deref().unwrap(),
    ];
    if let Some(schema) = warehouse.schnm.as_deref() {
        conn_args.extend(["--default-schema", schema]);
    }
    cli(&db, &scratch.dir, &conn_args);
    let audited = scratch.dir.join("audited.toml");
    std::fs::write(
        &audited,
        "[[steps]]\nname = \"count\"\nkind = \"sql\"\nconnection = \"warehouse\"\n\
         sql = \"SELECT COUNT(*) FROM DMS_JOB\"\n",
    )
    .unwrap();
    let flows = [
        (
            "GOOD",
            scratch.command_flow("good", "echo p1=$DWSCHED_PARAM1"),
        ),
        ("AUDITED", audited),
        ("HIST", scratch.command_flow("hist", "true")),
        (
            "BAD",
            scratch.command_flow("bad", "echo broken >&2; exit 3"),
        ),
        ("LONG", scratch.command_flow("long", "sleep 30")),
    ];
    for (job, flow) in &flows {
        cli(
            &db,
            &scratch.dir,
            &["job", "put", job, "--flow", flow.to_str().unwrap()],
        );
    }
    let _node = NodeProcess::start(&db, &scratch.dir, "n1", &[]);

    let long = cli(&db, &scratch.dir, &["enqueue", "LONG"]);
    let good = cli(&db, &scratch.dir, &["enqueue", "GOOD", "--param1", "EU"]);
    let audited = cli(&db, &scratch.dir, &["enqueue", "AUDITED"]);
    let history = cli(
        &db,
        &scratch.dir,
        &[
            "history",
            "HIST",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-03",
        ],
    );
    let bad = cli(&db, &scratch.dir, &["enqueue", "BAD"]);
    for id in [&good, &audited, &history] {
        wait_request(&*store, id, RequestStatus::Done, LONG).await;
    }
    wait_request(&*store, &bad, RequestStatus::Failed, LONG).await;
    wait_run_status(&*store, "LONG", RunStatus::InProgress, LONG).await;
    let stop = cli(&db, &scratch.dir, &["stop", "LONG"]);
    wait_request(&*store, &stop, RequestStatus::Done, LONG).await;
    wait_request(&*store, &long, RequestStatus::Failed, LONG).await;

    // dwsched reads back what it wrote into the original types.
    assert_eq!(runs_of(&*store, "HIST").await.len(), 3);
    let listed = cli(&db, &scratch.dir, &["runs", "--limit", "20"]);
    assert!(
        listed.contains("BAD") && listed.contains("LONG"),
        "{listed}"
    );
    cli(&db, &scratch.dir, &["status"]);

    // And DWTOOL's UI sees every run with its totals, and each failure with its cause.
    let runs = read_ui_run_log(&db).await;
    let expected = [
        ("LONG", "ST"),
        ("GOOD", "PC"),
        ("AUDITED", "PC"),
        ("HIST", "PC"),
        ("HIST", "PC"),
        ("HIST", "PC"),
        ("BAD", "FL"),
    ];
    let mut seen: Vec<(&str, &str)> = runs
        .iter()
        .map(|r| (r.mapref.as_str(), r.status.as_str()))
        .collect();
    let mut wanted = expected.to_vec();
    seen.sort();
    wanted.sort();
    assert_eq!(seen, wanted, "{runs:#?}");
    for run in &runs {
        assert!(
            run.joblogid.is_some(),
            "run {} has no DMS_JOBLOG row by the UI's join: {runs:#?}",
            run.prcid
        );
        let session = run.sessionid.as_deref().expect("a SESSIONID on every run");
        assert!(
            session.parse::<u64>().is_ok(),
            "SESSIONID {session} is a number"
        );
        // A failed run has its cause as a `JOB` error; a stopped one says why in
        // `DMS_PRCLOG.MSG` only (SPEC §3).
        match run.status.as_str() {
            "FL" => {
                assert_eq!(run.error_type.as_deref(), Some("JOB"), "{run:?}");
                assert!(run.error.is_some(), "{run:?}");
            }
            _ => assert_eq!(run.error, None, "{run:?}"),
        }
    }
    let good_run = runs.iter().find(|r| r.mapref == "GOOD").unwrap();
    assert_eq!(good_run.param1.as_deref(), Some("EU"));
    let bad_run = runs.iter().find(|r| r.mapref == "BAD").unwrap();
    assert!(
        bad_run.error.as_deref().unwrap().contains("exit"),
        "{bad_run:?}"
    );
    let long_run = runs.iter().find(|r| r.mapref == "LONG").unwrap();
    let stopped = store
        .get_run(long_run.prcid.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stopped.status, Some(RunStatus::Stopped));
    assert!(stopped.msg.unwrap().contains(&stop));
    assert_eq!(stopped.sessionid, long_run.sessionid);
}
