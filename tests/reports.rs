//! DWTOOL's scheduled reports run natively (SPEC §7.2): the report tables as the UI
//! writes them (the reports note's §3.2 and §5), `REPORT` requests inserted as its API
//! inserts them, run by real `dwsched run` processes, each format read back, e-mail
//! delivered to an SMTP server started here, and every run recorded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dwsched_model::RequestStatus;
use dwsched_store::{Backend, Store};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::service::{NodeProcess, Scratch, cli, eventually};
use crate::util::{TestDb, with_db};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reports_run_on_the_sites_tables() {
    with_db(Backend::Postgres, reports_run_on_the_sites_tables).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_reports_run_on_the_sites_tables() {
    with_db(Backend::MySql, reports_run_on_the_sites_tables).await;
}

const LONG: Duration = Duration::from_secs(60);

/// The report tables as the reports note's §3.2 infers them for PostgreSQL (no DDL is
/// shipped): unquoted, ids from sequences.
const POSTGRES_REPORT_TABLES: &[&str] = &[
    "CREATE TABLE dms_rprt_def (rprtid BIGINT PRIMARY KEY, rprtnm VARCHAR(200) NOT NULL, \
     dscrptn VARCHAR(1000), sqlsrcid BIGINT, adhcsql TEXT, final_sql TEXT, dbcnid BIGINT, \
     dflt_otpt_fmt VARCHAR(20), spprtd_fmts VARCHAR(200), prvw_rw_lmt INTEGER, \
     is_actv CHAR(1) DEFAULT 'Y', curflg CHAR(1) DEFAULT 'Y', chcksm VARCHAR(64), \
     crtdby VARCHAR(100), crtddt TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updtdby VARCHAR(100), \
     updtdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP)",
    "CREATE TABLE dms_rprt_fld (fldid BIGINT PRIMARY KEY, rprtid BIGINT NOT NULL, \
     pnl_typ VARCHAR(20), row_ordr INTEGER, fld_nm VARCHAR(200), fld_als VARCHAR(200), \
     src_clmn VARCHAR(400), frmla_id BIGINT, frmla_inln TEXT, dt_typ VARCHAR(50), \
     fmt_mask VARCHAR(100), is_vsbl CHAR(1), is_group_by CHAR(1), order_by_seq INTEGER, \
     order_by_dir VARCHAR(4), notes VARCHAR(1000))",
    "CREATE TABLE dms_rprt_schd (schdid BIGINT PRIMARY KEY, rprtid BIGINT NOT NULL, \
     frqncy VARCHAR(20) NOT NULL, tm_prm VARCHAR(100), nxt_run_dt TIMESTAMP, lst_run_dt TIMESTAMP, \
     stts VARCHAR(20), otpt_fmt VARCHAR(20), dstn_typ VARCHAR(20), emal_to VARCHAR(2000), \
     fl_pth VARCHAR(2000), que_req_id VARCHAR(64), crtddt TIMESTAMP, updtdt TIMESTAMP)",
    "CREATE TABLE dms_rprt_run (runid BIGINT PRIMARY KEY, rprtid BIGINT NOT NULL, \
     rqst_id VARCHAR(64) NOT NULL, strt_dt TIMESTAMP, end_dt TIMESTAMP, stts VARCHAR(20), \
     trggrd_by VARCHAR(100), row_cnt BIGINT, otpt_fmt VARCHAR(200), prm_ovrrds TEXT, \
     updtdt TIMESTAMP)",
    "CREATE SEQUENCE dms_rprt_def_seq",
    "CREATE SEQUENCE dms_rprt_fld_seq",
    "CREATE SEQUENCE dms_rprt_schd_seq",
    "CREATE SEQUENCE dms_rprt_run_seq",
];

/// The source the reports read: the note's `sales.orders`, in the test's schema.
fn source_tables() -> Vec<String> {
    vec![
        "CREATE TABLE orders (region VARCHAR(20), amount NUMERIC(12,2), order_dt DATE)".to_string(),
        "INSERT INTO orders VALUES ('EAST', 100.25, '2026-01-15'), ('EAST', 12400.25, '2026-01-16'), \
         ('NORTH', 9800.00, '2026-01-15'), ('SOUTH', 15020.75, '2026-01-17'), \
         ('WEST', 7300.25, '2026-01-14')"
            .to_string(),
    ]
}

/// The reports as the UI saves them: report 4 is the note's "Daily Sales" (managed
/// SQL, grouped and ordered fields), 5 ad-hoc SQL with a bind, 6 a query that fails,
/// 7 a slow one, 8 one that tries to write.
fn report_rows(backend: Backend, conid: &str) -> Vec<String> {
    let sleep = match backend {
        Backend::MySql => "SELECT SLEEP(30) AS slept",
        _ => "SELECT pg_sleep(30) AS slept",
    };
    vec![
        format!(
            "INSERT INTO DMS_MAPRSQL (maprsqlid, maprsqlcd, maprsql, sqlconid, curflg) \
             VALUES (101, 'SALES_BY_REGION', 'SELECT region, amount, order_dt FROM orders', {conid}, 'Y')"
        ),
        "INSERT INTO DMS_RPRT_DEF (rprtid, rprtnm, dscrptn, sqlsrcid, adhcsql, dbcnid, dflt_otpt_fmt, \
         spprtd_fmts, prvw_rw_lmt, is_actv, curflg, crtdby, updtdby) \
         VALUES (4, 'Daily Sales', 'Sales per region', 101, NULL, NULL, 'CSV', 'CSV,EXCEL', 100, 'Y', 'Y', 'admin', 'admin')"
            .to_string(),
        "INSERT INTO DMS_RPRT_FLD (fldid, rprtid, pnl_typ, row_ordr, fld_nm, fld_als, src_clmn, frmla_id, \
         frmla_inln, dt_typ, fmt_mask, is_vsbl, is_group_by, order_by_seq, order_by_dir, notes) VALUES \
         (11, 4, 'DETAIL', 1, 'REGION', 'REGION', 'region', NULL, NULL, 'STRING', NULL, 'Y', 'Y', 1, 'ASC', NULL)"
            .to_string(),
        "INSERT INTO DMS_RPRT_FLD (fldid, rprtid, pnl_typ, row_ordr, fld_nm, fld_als, src_clmn, frmla_id, \
         frmla_inln, dt_typ, fmt_mask, is_vsbl, is_group_by, order_by_seq, order_by_dir, notes) VALUES \
         (12, 4, 'DETAIL', 2, 'TOTAL_AMOUNT', 'TOTAL_AMOUNT', 'amount', NULL, 'SUM(amount)', 'NUMBER', '#,##0.00', 'Y', 'N', 2, 'DESC', NULL)"
            .to_string(),
        "INSERT INTO DMS_RPRT_FLD (fldid, rprtid, pnl_typ, row_ordr, fld_nm, fld_als, src_clmn, frmla_id, \
         frmla_inln, dt_typ, fmt_mask, is_vsbl, is_group_by, order_by_seq, order_by_dir, notes) VALUES \
         (13, 4, 'DETAIL', 3, 'ORDERS', 'ORDERS', NULL, NULL, 'COUNT(*)', 'INTEGER', NULL, 'Y', 'N', NULL, NULL, NULL)"
            .to_string(),
        format!(
            "INSERT INTO DMS_RPRT_DEF (rprtid, rprtnm, adhcsql, dbcnid) VALUES (5, 'Sales since', \
             'SELECT region, amount FROM orders WHERE order_dt >= CAST(:since AS DATE) ORDER BY region, amount', {conid})"
        ),
        format!(
            "INSERT INTO DMS_RPRT_DEF (rprtid, rprtnm, adhcsql, dbcnid) VALUES (6, 'Broken', \
             'SELECT nope FROM missing_table', {conid})"
        ),
        format!(
            "INSERT INTO DMS_RPRT_DEF (rprtid, rprtnm, adhcsql, dbcnid) VALUES (7, 'Slow', '{sleep}', {conid})"
        ),
        format!(
            "INSERT INTO DMS_RPRT_DEF (rprtid, rprtnm, adhcsql, dbcnid) VALUES (8, 'Sneaky', \
             'DELETE FROM orders', {conid})"
        ),
    ]
}

/// A SQL string literal.
pub(crate) fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Inserts a request as DWTOOL's Python API does; gives its id.
pub(crate) async fn insert_request(db: &TestDb, mapref: &str, kind: &str, payload: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let now = chrono::Utc::now()
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S%.6f");
    db.exec_raw(&[&format!(
        "INSERT INTO DMS_PRCREQ (REQUEST_ID, MAPREF, REQUEST_TYPE, PAYLOAD, STATUS, REQUESTED_AT) \
         VALUES ('{id}', '{mapref}', '{kind}', {}, 'NEW', '{now}')",
        quoted(payload)
    )])
    .await;
    id
}

/// Waits for request `id` to end; its status and result.
pub(crate) async fn wait_end(store: &dyn Store, id: &str) -> (RequestStatus, Value) {
    let request = eventually(LONG, &format!("request {id} to end"), || async {
        store
            .get_request(id)
            .await
            .unwrap()
            .filter(|r| matches!(r.status, Some(RequestStatus::Done | RequestStatus::Failed)))
    })
    .await;
    let text = request.result_payload.unwrap_or_default();
    (
        request.status.unwrap(),
        serde_json::from_str(&text).unwrap(),
    )
}

/// Runs a `REPORT` request to its end; its status, result and raw result text.
async fn report(db: &TestDb, store: &dyn Store, id: i64, payload: &str) -> (RequestStatus, Value) {
    let request = insert_request(db, &format!("REPORT:{id}"), "REPORT", payload).await;
    wait_end(store, &request).await
}

/// A column cast to text, in the backend's spelling.
pub(crate) fn text(backend: Backend, column: &str) -> String {
    match backend {
        Backend::MySql => format!("CAST({column} AS CHAR)"),
        _ => format!("CAST({column} AS VARCHAR)"),
    }
}

/// The `DMS_RPRT_RUN` row of a request: status, row count, format, overrides.
async fn report_run(db: &TestDb, request_id: &str) -> Vec<Option<String>> {
    let t = |c: &str| text(db.backend, c);
    let rows = db
        .text_rows(&format!(
            "SELECT STTS, {}, OTPT_FMT, PRM_OVRRDS, TRGGRD_BY, {}, {} FROM DMS_RPRT_RUN WHERE RQST_ID = '{request_id}'",
            t("ROW_CNT"),
            t("RUNID"),
            t("END_DT"),
        ))
        .await;
    assert_eq!(rows.len(), 1, "one DMS_RPRT_RUN row per run: {rows:?}");
    rows.into_iter().next().unwrap()
}

/// Messages an SMTP server started here received: envelope recipients and data.
type Inbox = Arc<Mutex<Vec<(Vec<String>, String)>>>;

/// A small SMTP server on a free port: it accepts every message, but refuses the
/// recipient `reject@example.com` (550). It offers no STARTTLS.
async fn smtp_sink() -> (u16, Inbox) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox: Inbox = Arc::default();
    let kept = inbox.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let inbox = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                let mut recipients = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-sink\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("HELO") || upper.starts_with("MAIL") {
                        b"250 OK\r\n"
                    } else if upper.starts_with("RCPT") {
                        if line.contains("reject@") {
                            b"550 no such user\r\n"
                        } else {
                            recipients.push(line[8..].trim().to_string());
                            b"250 OK\r\n"
                        }
                    } else if upper.starts_with("DATA") {
                        let _ = write.write_all(b"354 go on\r\n").await;
                        let mut data = String::new();
                        while let Ok(Some(line)) = lines.next_line().await {
                            if line == "." {
                                break;
                            }
                            data.push_str(&line);
                            data.push('\n');
                        }
                        inbox
                            .lock()
                            .unwrap()
                            .push((std::mem::take(&mut recipients), data));
                        b"250 queued\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    } else if upper.starts_with("RSET") {
                        recipients.clear();
                        b"250 OK\r\n"
                    } else {
                        b"250 OK\r\n"
                    };
                    if write.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, inbox)
}

async fn reports_run_on_the_sites_tables(db: TestDb) {
    let backend = db.backend;
    if backend == Backend::Postgres {
        db.exec_raw(POSTGRES_REPORT_TABLES).await;
    }
    let source = source_tables();
    db.exec_raw(&source.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let scratch = Scratch::new();
    cli(&db, &scratch.dir, &["init"]);
    let conid = put_connection(&db, &scratch.dir).await;
    let rows = report_rows(backend, &conid);
    db.exec_raw(&rows.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let store = db.open_unmigrated().await;
    let (smtp_port, inbox) = smtp_sink().await;
    let out = scratch.dir.join("out");
    let port = smtp_port.to_string();
    let env = [
        ("REPORT_OUTPUT_DIR", out.to_str().unwrap()),
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", port.as_str()),
        ("SMTP_USE_TLS", "false"),
        ("SCHEDULER_TIMEZONE", "Europe/London"),
    ];
    let n1 = NodeProcess::start(&db, &scratch.dir, "n1", &env);
    let n2 = NodeProcess::start(&db, &scratch.dir, "n2", &env);

    // CSV to a directory: the original's name, bytes and result; both run tables.
    let exports = scratch.dir.join("exports");
    let payload = format!(
        r#"{{"outputFormat": "CSV", "destination": "FILE", "requestedBy": "system", "filePath": "{}", "reportId": 4}}"#,
        exports.display()
    );
    let request = insert_request(&db, "REPORT:4", "REPORT", &payload).await;
    let (status, result) = wait_end(&*store, &request).await;
    assert_eq!(status, RequestStatus::Done, "{result}");
    let mut keys: Vec<&str> = result
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "destination",
            "filePath",
            "filename",
            "rowCount",
            "runId",
            "success"
        ]
    );
    assert_eq!(result["success"], true);
    assert_eq!(result["rowCount"], 4);
    let filename = result["filename"].as_str().unwrap();
    assert!(
        filename.starts_with("Daily_Sales_") && filename.ends_with(".csv"),
        "{filename}"
    );
    let path = std::path::PathBuf::from(result["filePath"].as_str().unwrap());
    assert_eq!(path, exports.join(filename));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "REGION,TOTAL_AMOUNT,ORDERS\r\nEAST,12500.50,2\r\nNORTH,9800.00,1\r\nSOUTH,15020.75,1\r\nWEST,7300.25,1\r\n"
    );
    let run = report_run(&db, &request).await;
    assert_eq!(run[0].as_deref(), Some("SUCCESS"));
    assert_eq!(run[1].as_deref(), Some("4"));
    assert_eq!(run[2].as_deref(), Some("CSV"));
    assert_eq!(
        run[3].as_deref(),
        Some(r#"{"params": {}, "message": null}"#)
    );
    assert_eq!(run[4].as_deref(), Some("system"));
    assert_eq!(
        run[5].as_deref(),
        Some(result["runId"].to_string().as_str())
    );
    assert!(run[6].is_some(), "END_DT is written");
    let prclog = db
        .text_rows(&format!(
            "SELECT STATUS, MAPREF FROM DMS_PRCLOG WHERE REQUEST_ID = '{request}'"
        ))
        .await;
    assert_eq!(prclog, [[Some("PC".into()), Some("REPORT:4".into())]]);

    // Every other format, to a path with an extension, read back.
    for (format, extension) in [
        ("JSON", "json"),
        ("EXCEL", "xlsx"),
        ("XLSX", "xlsx"),
        ("PDF", "pdf"),
        ("XML", "xml"),
        ("PARQUET", "parquet"),
        ("TXT", "txt"),
    ] {
        let path = scratch.dir.join(format!("daily-{format}.{extension}"));
        let payload = format!(
            r#"{{"outputFormat": "{format}", "destination": "FILE", "filePath": "{}", "reportId": 4}}"#,
            path.display()
        );
        let (status, result) = report(&db, &*store, 4, &payload).await;
        assert_eq!(status, RequestStatus::Done, "{format}: {result}");
        assert_eq!(result["filePath"].as_str(), path.to_str());
        check_file(format, &path);
    }

    // Parameters bound by name.
    let payload = format!(
        r#"{{"outputFormat": "TXT", "destination": "FILE", "filePath": "{}", "parameters": {{"since": "2026-01-16"}}, "requestedBy": "ann"}}"#,
        scratch.dir.join("since.txt").display()
    );
    let (status, result) = report(&db, &*store, 5, &payload).await;
    assert_eq!(status, RequestStatus::Done, "{result}");
    assert_eq!(
        std::fs::read_to_string(scratch.dir.join("since.txt")).unwrap(),
        "region|amount\nEAST|12400.25\nSOUTH|15020.75\n"
    );

    // E-mail, to two recipients, the attachment with its MIME type.
    let payload = r#"{"outputFormat": "CSV", "destination": "EMAIL", "email": "sales-team@example.com, cfo@example.com", "reportId": 4}"#;
    let request = insert_request(&db, "REPORT:4", "REPORT", payload).await;
    let (status, result) = wait_end(&*store, &request).await;
    assert_eq!(status, RequestStatus::Done, "{result}");
    assert_eq!(
        result["recipients"],
        "sales-team@example.com, cfo@example.com"
    );
    {
        let inbox = inbox.lock().unwrap();
        assert_eq!(inbox.len(), 1);
        let (recipients, data) = &inbox[0];
        assert_eq!(
            recipients,
            &["<sales-team@example.com>", "<cfo@example.com>"]
        );
        assert!(data.contains("Subject: Report: Daily Sales"), "{data}");
        assert!(data.contains("Content-Type: text/csv"), "{data}");
        assert!(
            data.contains(&format!(
                "filename=\"{}\"",
                result["filename"].as_str().unwrap()
            )),
            "{data}"
        );
        assert!(data.contains("Rows: 4"), "{data}");
    }

    // Failures are recorded: a query that fails, a delivery that fails, a bad format,
    // and a statement that writes (refused by the read-only transaction).
    let cases = [
        (
            6,
            r#"{"outputFormat": "CSV", "destination": "FILE"}"#,
            "missing_table",
        ),
        (
            4,
            r#"{"outputFormat": "CSV", "destination": "EMAIL", "email": "reject@example.com"}"#,
            "Failed to send email",
        ),
        (
            4,
            r#"{"outputFormat": "CSV", "destination": "EMAIL"}"#,
            "Email address is required",
        ),
        (8, r#"{"outputFormat": "CSV"}"#, "read"),
    ];
    for (id, payload, expected) in cases {
        let request = insert_request(&db, &format!("REPORT:{id}"), "REPORT", payload).await;
        let (status, result) = wait_end(&*store, &request).await;
        assert_eq!(status, RequestStatus::Failed, "{payload}: {result}");
        let message = result["message"].as_str().unwrap();
        assert!(
            message.to_lowercase().contains(&expected.to_lowercase()),
            "{payload}: {message}"
        );
        let run = report_run(&db, &request).await;
        assert_eq!(run[0].as_deref(), Some("FAILED"));
        let overrides: Value = serde_json::from_str(run[3].as_deref().unwrap()).unwrap();
        assert_eq!(overrides["message"].as_str(), Some(message));
        let prclog = db
            .text_rows(&format!(
                "SELECT STATUS FROM DMS_PRCLOG WHERE REQUEST_ID = '{request}'"
            ))
            .await;
        assert_eq!(prclog, [[Some("FL".into())]]);
    }
    let left = db.text_rows("SELECT region FROM orders").await;
    assert_eq!(left.len(), 5, "the report could not delete");
    let (status, result) = report(&db, &*store, 4, r#"{"outputFormat": "DOCX"}"#).await;
    assert_eq!(status, RequestStatus::Failed);
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .starts_with("Unsupported output format: DOCX"),
        "{result}"
    );

    // STOP cancels a slow report's query on its server.
    let slow = insert_request(&db, "REPORT:7", "REPORT", r#"{"outputFormat": "CSV"}"#).await;
    eventually(LONG, "the slow report to start", || async {
        let rows = db
            .text_rows(&format!(
                "SELECT STATUS FROM DMS_PRCLOG WHERE REQUEST_ID = '{slow}'"
            ))
            .await;
        (rows == [[Some("IP".to_string())]]).then_some(())
    })
    .await;
    let started = std::time::Instant::now();
    cli(&db, &scratch.dir, &["stop", "REPORT:7"]);
    let (status, result) = wait_end(&*store, &slow).await;
    assert_eq!(status, RequestStatus::Failed, "{result}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped in {:?}",
        started.elapsed()
    );
    let prclog = db
        .text_rows(&format!(
            "SELECT STATUS FROM DMS_PRCLOG WHERE REQUEST_ID = '{slow}'"
        ))
        .await;
    assert_eq!(prclog, [[Some("ST".into())]]);
    assert_eq!(report_run(&db, &slow).await[0].as_deref(), Some("FAILED"));

    // A schedule due now fires once across the two nodes, with the original's payload,
    // and moves to 06:30 London time.
    db.exec_raw(&[&format!(
        "INSERT INTO DMS_RPRT_SCHD (SCHDID, RPRTID, FRQNCY, TM_PRM, NXT_RUN_DT, STTS, OTPT_FMT, \
         DSTN_TYP, FL_PTH) VALUES (70, 4, 'DAILY', 'DL_06:30', NULL, 'ACTIVE', 'CSV', 'FILE', '{}')",
        scratch.dir.join("scheduled").display()
    )])
    .await;
    let fired = eventually(LONG, "the report schedule to fire", || async {
        let rows = db
            .text_rows(
                "SELECT REQUEST_ID, PAYLOAD FROM DMS_PRCREQ WHERE MAPREF = 'REPORT:4' \
                 AND PAYLOAD LIKE '%requestedBy%system%scheduled%'",
            )
            .await;
        (!rows.is_empty()).then_some(rows)
    })
    .await;
    // Both nodes look every second: give a second fire every chance to happen.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = db
        .text_rows(
            "SELECT REQUEST_ID FROM DMS_PRCREQ WHERE MAPREF = 'REPORT:4' \
             AND PAYLOAD LIKE '%requestedBy%system%scheduled%'",
        )
        .await;
    assert_eq!(again.len(), 1, "fired once: {again:?}");
    assert_eq!(
        fired[0][1].as_deref().unwrap(),
        format!(
            r#"{{"outputFormat": "CSV", "destination": "FILE", "requestedBy": "system", "filePath": "{}", "reportId": 4}}"#,
            scratch.dir.join("scheduled").display()
        )
    );
    let (status, result) = wait_end(&*store, fired[0][0].as_deref().unwrap()).await;
    assert_eq!(status, RequestStatus::Done, "{result}");
    let schedule = db
        .text_rows(&format!(
            "SELECT {}, STTS FROM DMS_RPRT_SCHD WHERE SCHDID = 70",
            text(backend, "NXT_RUN_DT")
        ))
        .await;
    let next = schedule[0][0].as_deref().unwrap();
    assert!(next.contains("06:30:00"), "next run at 06:30 local: {next}");
    assert_eq!(schedule[0][1].as_deref(), Some("ACTIVE"));
    drop((n1, n2));
}

/// Checks a report file of `format`: the four regions, read by a reader of the format.
fn check_file(format: &str, path: &std::path::Path) {
    let bytes = std::fs::read(path).unwrap();
    match format {
        "JSON" => {
            let json: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(
                json["columns"],
                serde_json::json!(["REGION", "TOTAL_AMOUNT", "ORDERS"])
            );
            assert_eq!(json["rowCount"], 4);
            assert_eq!(json["rows"][0]["TOTAL_AMOUNT"], "12500.50");
            assert_eq!(json["rows"][0]["ORDERS"], 2);
        }
        "EXCEL" | "XLSX" => {
            use calamine::{Reader as _, Xlsx};
            let mut workbook: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
            let sheet = workbook.worksheet_range("Report Data").unwrap();
            assert_eq!(sheet.height(), 5);
            assert_eq!(sheet.get((1, 0)).unwrap().to_string(), "EAST");
            assert_eq!(sheet.get((1, 1)).unwrap().to_string(), "12500.5");
        }
        "PDF" => {
            let document = lopdf::Document::load_mem(&bytes).unwrap();
            let text = document.extract_text(&[1]).unwrap();
            for expected in ["Daily Sales", "REGION", "EAST", "12500.50", "WEST"] {
                assert!(text.contains(expected), "{expected} not in {text}");
            }
        }
        "XML" => {
            let xml = String::from_utf8(bytes).unwrap();
            assert!(
                xml.starts_with(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<report name=\"Daily Sales\" rowCount=\"4\"><row index=\"1\"><REGION>EAST</REGION><TOTAL_AMOUNT>12500.50</TOTAL_AMOUNT><ORDERS>2</ORDERS></row>"
                ),
                "{xml}"
            );
        }
        "PARQUET" => {
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                bytes::Bytes::from(bytes),
            )
            .unwrap();
            let names: Vec<String> = reader
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            assert_eq!(names, ["REGION", "TOTAL_AMOUNT", "ORDERS"]);
            let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
            assert_eq!(rows, 4);
        }
        "TXT" => assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "REGION|TOTAL_AMOUNT|ORDERS\nEAST|12500.50|2\nNORTH|9800.00|1\nSOUTH|15020.75|1\nWEST|7300.25|1\n"
        ),
        other => panic!("no check for {other}"),
    }
}

/// Registers the test database as connection `dw` with `dwsched conn put`; its
/// `CONID`.
pub async fn put_connection(db: &TestDb, dir: &std::path::Path) -> String {
    let connection = db.flow_connection("dw");
    let mut put = vec![
        "conn",
        "put",
        "dw",
        "--url",
        connection.constr.as_deref().unwrap(),
    ];
    if let Some(schema) = connection.schnm.as_deref() {
        put.extend(["--default-schema", schema]);
    }
    cli(db, dir, &put);
    db.text_rows(&format!(
        "SELECT {} FROM DMS_DBCONDTLS WHERE CONNM = 'dw'",
        text(db.backend, "CONID")
    ))
    .await[0][0]
        .clone()
        .unwrap()
}
