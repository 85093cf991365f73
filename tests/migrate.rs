//! `dwsched init` on a database that already holds the original tool's tables: our
//! extension columns are added, and existing rows and columns are left as they were.

use chrono::Utc;
use dwsched_model::{NewSchedule, RequestStatus, RequestType};
use dwsched_store::Backend;

use crate::util::TestDb;

crate::per_backend!(upgrades_the_original_tables_in_place);

/// The original install's shapes: no extension columns, ids without defaults on
/// PostgreSQL (they came from sequences the installer may not have made), and a few
/// rows written by the original Python API. On MySQL the ids are `AUTO_INCREMENT`, and
/// SQLite (which the original did not support) uses its row id.
fn original_shapes(backend: Backend) -> Vec<String> {
    let ts = if backend == Backend::MySql {
        "DATETIME"
    } else {
        "TIMESTAMP"
    };
    let text = if backend == Backend::MySql {
        "LONGTEXT"
    } else {
        "TEXT"
    };
    let id = match backend {
        Backend::Postgres => "BIGINT PRIMARY KEY",
        Backend::MySql => "BIGINT AUTO_INCREMENT PRIMARY KEY",
        Backend::Sqlite => "INTEGER PRIMARY KEY",
    };
    vec![
        format!(
            "CREATE TABLE DMS_JOBSCH (JOBSCHID {id}, JOBFLWID BIGINT, \
             MAPREF VARCHAR(100) NOT NULL, FRQCD VARCHAR(10), FRQDD VARCHAR(10), FRQHH INTEGER, \
             FRQMI INTEGER, STRTDT {ts} NULL, ENDDT {ts} NULL, STFLG VARCHAR(1), SCHFLG VARCHAR(1), \
             CURFLG VARCHAR(1), DPND_JOBSCHID BIGINT, LST_RUN_DT {ts} NULL, NXT_RUN_DT {ts} NULL, \
             RECCRDT {ts} NULL, RECUPDT {ts} NULL, LEGACY_NOTE VARCHAR(50))"
        ),
        format!(
            "CREATE TABLE DMS_PRCREQ (REQUEST_ID VARCHAR(64) NOT NULL PRIMARY KEY, \
             MAPREF VARCHAR(100) NOT NULL, REQUEST_TYPE VARCHAR(30) NOT NULL, PAYLOAD {text}, \
             STATUS VARCHAR(20) DEFAULT 'NEW', REQUESTED_AT {ts} NULL, CLAIMED_AT {ts} NULL, \
             CLAIMED_BY VARCHAR(64), COMPLETED_AT {ts} NULL, RESULT_PAYLOAD {text})"
        ),
        "CREATE INDEX dms_prcreq_status_idx ON DMS_PRCREQ (STATUS, REQUESTED_AT)".into(),
        format!(
            "CREATE TABLE DMS_PRCLOG (PRCID {id}, JOBID BIGINT, JOBFLWID BIGINT, \
             STRTDT {ts} NULL, ENDDT {ts} NULL, STATUS VARCHAR(2), MSG {text}, PRCLOG {text}, \
             MAPREF VARCHAR(100), SESSIONID VARCHAR(64), PARAM1 VARCHAR(250), PARAM2 VARCHAR(250), \
             PARAM3 VARCHAR(250), PARAM4 VARCHAR(250), PARAM5 VARCHAR(250), PARAM6 VARCHAR(250), \
             PARAM7 VARCHAR(250), PARAM8 VARCHAR(250), PARAM9 VARCHAR(250), PARAM10 VARCHAR(250), \
             RECCRDT {ts} NULL, RECUPDT {ts} NULL)"
        ),
        "INSERT INTO DMS_JOBSCH (JOBSCHID, MAPREF, FRQCD, FRQHH, FRQMI, STFLG, SCHFLG, CURFLG, LEGACY_NOTE) \
         VALUES (5, 'SALES', 'DL', 6, 30, 'A', 'Y', 'Y', 'kept')"
            .into(),
        "INSERT INTO DMS_PRCREQ (REQUEST_ID, MAPREF, REQUEST_TYPE, PAYLOAD, STATUS, REQUESTED_AT) \
         VALUES ('legacy-1', 'SALES', 'IMMEDIATE', '{\"param1\":\"x\"}', 'QUEUED', '2025-12-31 23:00:00')"
            .into(),
        "INSERT INTO DMS_PRCLOG (PRCID, MAPREF, STATUS, MSG) VALUES (41, 'SALES', 'PC', 'old run')".into(),
    ]
}

async fn upgrades_the_original_tables_in_place(db: TestDb) {
    let fixture = original_shapes(db.backend);
    db.exec_raw(&fixture.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let store = db.open_unmigrated().await;

    let report = store.migrate().await.unwrap();
    for added in [
        "DMS_JOBSCH.TIMEZONE",
        "DMS_JOBSCH.CRONEXPR",
        "DMS_JOBSCH.MISFIRE",
        "DMS_JOBSCH.MAXFAIL",
        "DMS_JOBSCH.FAILCNT",
        "DMS_JOBSCH.SCHERR",
        "DMS_JOBSCH.CHGDT",
        "DMS_PRCREQ.DEDUPE_KEY",
        "DMS_PRCREQ.NOT_BEFORE",
        "DMS_PRCREQ.ATTEMPTS",
        "DMS_PRCREQ.LEASE_UNTIL",
        "DMS_PRCLOG.REQUEST_ID",
        "DMS_PRCLOG.NODE",
    ] {
        assert!(
            report.columns_added.iter().any(|c| c == added),
            "{added} in {report:?}"
        );
    }
    assert!(
        !report
            .tables_created
            .iter()
            .any(|t| t == "DMS_JOBSCH" || t == "DMS_PRCREQ")
    );
    assert!(report.tables_created.iter().any(|t| t == "DMS_SCHNODE"));
    assert!(
        !report
            .indexes_created
            .iter()
            .any(|i| i == "DMS_PRCREQ_STATUS_IDX"),
        "the original index is kept, not duplicated"
    );

    // The original rows read as before, with the extension columns empty or defaulted.
    let schedule = store.get_schedule(5).await.unwrap().unwrap();
    assert_eq!(schedule.mapref, "SALES");
    assert_eq!((schedule.frqhh, schedule.frqmi), (Some(6), Some(30)));
    assert_eq!(schedule.timezone, None);
    assert!(schedule.is_scheduled());
    let request = store.get_request("legacy-1").await.unwrap().unwrap();
    assert_eq!(
        request.status,
        Some(RequestStatus::New),
        "QUEUED reads as NEW"
    );
    assert_eq!(request.request_type, RequestType::Immediate);
    assert_eq!(request.payload.as_deref(), Some(r#"{"param1":"x"}"#));
    let run = store.get_run(41).await.unwrap().unwrap();
    assert_eq!(run.msg.as_deref(), Some("old run"));

    // New ids continue after the original ones.
    let id = store
        .insert_schedule(
            &NewSchedule {
                mapref: "STOCK".into(),
                frqcd: "DL".into(),
                ..NewSchedule::default()
            },
            Utc::now(),
        )
        .await
        .unwrap();
    assert!(
        id > 5,
        "new JOBSCHID {id} must not collide with the original rows"
    );

    let again = store.migrate().await.unwrap();
    assert!(!again.changed_anything(), "{again:?}");
    db.exec_raw(&["UPDATE DMS_JOBSCH SET LEGACY_NOTE = LEGACY_NOTE WHERE JOBSCHID = 5"])
        .await;
}
