//! DWTOOL mapping jobs run natively (SPEC §7.1): the metadata built as DWTOOL's UI and
//! generator write it (DWTOOL-MAPPING.md §1, §7), requests inserted as its API inserts
//! them, and the target rows compared value by value over several runs.

use std::time::Duration;

use dwsched_model::RequestStatus;
use dwsched_store::{Backend, Store};

use crate::service::{NodeProcess, Scratch, cli, eventually};
use crate::util::{TestDb, with_db};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_mapping_jobs_load_dimensions_and_facts() {
    with_db(Backend::Postgres, mapping_jobs_load_dimensions_and_facts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_mapping_jobs_load_dimensions_and_facts() {
    with_db(Backend::MySql, mapping_jobs_load_dimensions_and_facts).await;
}

const LONG: Duration = Duration::from_secs(60);

/// The mapping tables as the original PostgreSQL install script declares them, plus the
/// `DBTYP` column its code needs (DWTOOL-MAPPING.md §7.2).
const POSTGRES_METADATA: &[&str] = &[
    "CREATE TABLE dms_dbcondtls (conid BIGINT PRIMARY KEY, connm VARCHAR(100), \
     dbhost VARCHAR(100), dbport INTEGER, dbsrvnm VARCHAR(100), usrnm VARCHAR(100), \
     passwd VARCHAR(400), constr VARCHAR(1000), schnm VARCHAR(128) NOT NULL, \
     curflg CHAR(1) DEFAULT 'Y', dbtyp VARCHAR(30))",
    "CREATE TABLE dms_params (prtyp VARCHAR(100) NOT NULL, prcd VARCHAR(100) NOT NULL, \
     prdesc VARCHAR(500), prval VARCHAR(4000), dbtyp VARCHAR(50) DEFAULT 'GENERIC', \
     prreccrdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP, prrecupdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP, \
     curflg CHAR(1) DEFAULT 'Y', CONSTRAINT uk_dms_params_type_db_code UNIQUE (prtyp, dbtyp, prcd))",
    "CREATE TABLE dms_maprsql (maprsqlid BIGINT PRIMARY KEY, maprsqlcd VARCHAR(100) NOT NULL, \
     maprsql TEXT, sqlconid BIGINT, reccrdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP, \
     recupdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP, curflg CHAR(1) DEFAULT 'Y')",
    "CREATE TABLE dms_job (jobid BIGINT PRIMARY KEY, mapid BIGINT, mapref VARCHAR(50) NOT NULL, \
     frqcd VARCHAR(10), trgschm VARCHAR(100), trgtbtyp VARCHAR(20), trgtbnm VARCHAR(100), \
     srcsystm VARCHAR(100), stflg CHAR(1), blkprcrows INTEGER, trgconid BIGINT, \
     chkpntstrtgy VARCHAR(20), chkpntclnm VARCHAR(100), chkpntenbld CHAR(1), \
     reccrdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP, recupdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP, \
     curflg CHAR(1) DEFAULT 'Y')",
    "CREATE TABLE dms_jobdtl (jobdtlid BIGINT PRIMARY KEY, mapref VARCHAR(50) NOT NULL, \
     mapdtlid BIGINT, trgclnm VARCHAR(100), trgcldtyp VARCHAR(50), trgkeyflg CHAR(1), \
     trgkeyseq INTEGER, trgcldesc VARCHAR(500), maplogic TEXT, maprsqlcd VARCHAR(100), \
     keyclnm VARCHAR(100), valclnm VARCHAR(100), mapcmbcd VARCHAR(20), excseq INTEGER, \
     scdtyp INTEGER, reccrdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP, \
     recupdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP, curflg CHAR(1) DEFAULT 'Y')",
    "CREATE TABLE dms_jobflw (jobflwid BIGINT PRIMARY KEY, jobid BIGINT, mapref VARCHAR(50), \
     trgschm VARCHAR(100), trgtbtyp VARCHAR(20), trgtbnm VARCHAR(100), dwlogic TEXT, \
     stflg CHAR(1) DEFAULT 'A', recrdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP, \
     recupdt TIMESTAMP DEFAULT CURRENT_TIMESTAMP, curflg CHAR(1) DEFAULT 'Y')",
    // The worked example's source (§7.1) and the targets DWTOOL's PostgreSQL adapter
    // creates (§7.3): unquoted, so lower-case.
    "CREATE TABLE crm_customers (customer_id INTEGER, first_name VARCHAR(50), \
     last_name VARCHAR(50), city VARCHAR(100), segment VARCHAR(20))",
    "CREATE TABLE crm_sales (sale_id BIGINT PRIMARY KEY, customer_id INTEGER, sale_date DATE, \
     product_code VARCHAR(20), qty INTEGER, amount NUMERIC(18,2))",
    "CREATE TABLE dim_customer (SKEY BIGINT PRIMARY KEY, RWHKEY VARCHAR(32), CUST_ID NUMERIC(10), \
     CUST_NAME VARCHAR(100), CITY VARCHAR(100), SEGMENT VARCHAR(20), CURFLG VARCHAR(1), \
     FROMDT TIMESTAMP, TODT TIMESTAMP, RECCRDT TIMESTAMP, RECUPDT TIMESTAMP)",
    "CREATE TABLE dim_customer1 (SKEY BIGINT PRIMARY KEY, RWHKEY VARCHAR(32), CUST_ID NUMERIC(10), \
     CUST_NAME VARCHAR(100), CITY VARCHAR(100), SEGMENT VARCHAR(20), CURFLG VARCHAR(1), \
     FROMDT TIMESTAMP, TODT TIMESTAMP, RECCRDT TIMESTAMP, RECUPDT TIMESTAMP)",
    "CREATE TABLE fct_sales (SKEY BIGINT PRIMARY KEY, RWHKEY VARCHAR(32), SALE_ID NUMERIC(10), \
     CUST_ID NUMERIC(10), SALE_DT DATE, PRODUCT_CD VARCHAR(20), QTY NUMERIC(10), \
     SALE_AMT NUMERIC(18,6), RECCRDT TIMESTAMP, RECUPDT TIMESTAMP)",
    "CREATE TABLE dim_bad (SKEY BIGINT PRIMARY KEY, RWHKEY VARCHAR(32), CUST_ID NUMERIC(10), \
     CUST_NAME VARCHAR(100), CITY VARCHAR(100), SEGMENT VARCHAR(20), CURFLG VARCHAR(1), \
     FROMDT TIMESTAMP, TODT TIMESTAMP, RECCRDT TIMESTAMP, RECUPDT TIMESTAMP)",
    "CREATE TABLE dim_big (SKEY BIGINT PRIMARY KEY, RWHKEY VARCHAR(32), CUST_ID NUMERIC(10), \
     CUST_NAME VARCHAR(100), CITY VARCHAR(100), SEGMENT VARCHAR(20), CURFLG VARCHAR(1), \
     FROMDT TIMESTAMP, TODT TIMESTAMP, RECCRDT TIMESTAMP, RECUPDT TIMESTAMP)",
];

/// The same in MySQL's types, with the MySQL adapter's `AUTO_INCREMENT` surrogate keys
/// and `DATETIME` audit columns.
const MYSQL_METADATA: &[&str] = &[
    "CREATE TABLE DMS_DBCONDTLS (CONID BIGINT AUTO_INCREMENT PRIMARY KEY, CONNM VARCHAR(100), \
     DBHOST VARCHAR(100), DBPORT INTEGER, DBSRVNM VARCHAR(100), USRNM VARCHAR(100), \
     PASSWD VARCHAR(400), CONSTR VARCHAR(1000), SCHNM VARCHAR(128) NOT NULL, \
     CURFLG CHAR(1) DEFAULT 'Y', DBTYP VARCHAR(30))",
    "CREATE TABLE DMS_PARAMS (PRTYP VARCHAR(100) NOT NULL, PRCD VARCHAR(100) NOT NULL, \
     PRDESC VARCHAR(500), PRVAL VARCHAR(4000), DBTYP VARCHAR(50) DEFAULT 'GENERIC', \
     PRRECCRDT DATETIME DEFAULT CURRENT_TIMESTAMP, PRRECUPDT DATETIME DEFAULT CURRENT_TIMESTAMP, \
     CURFLG CHAR(1) DEFAULT 'Y', UNIQUE KEY UK_DMS_PARAMS (PRTYP, DBTYP, PRCD))",
    "CREATE TABLE DMS_MAPRSQL (MAPRSQLID BIGINT AUTO_INCREMENT PRIMARY KEY, \
     MAPRSQLCD VARCHAR(100) NOT NULL, MAPRSQL LONGTEXT, SQLCONID BIGINT, \
     RECCRDT DATETIME DEFAULT CURRENT_TIMESTAMP, RECUPDT DATETIME DEFAULT CURRENT_TIMESTAMP, \
     CURFLG CHAR(1) DEFAULT 'Y')",
    "CREATE TABLE DMS_JOB (JOBID BIGINT AUTO_INCREMENT PRIMARY KEY, MAPID BIGINT, \
     MAPREF VARCHAR(50) NOT NULL, FRQCD VARCHAR(10), TRGSCHM VARCHAR(100), \
     TRGTBTYP VARCHAR(20), TRGTBNM VARCHAR(100), SRCSYSTM VARCHAR(100), STFLG CHAR(1), \
     BLKPRCROWS INTEGER, TRGCONID DECIMAL(20,0), CHKPNTSTRTGY VARCHAR(20), \
     CHKPNTCLNM VARCHAR(100), CHKPNTENBLD CHAR(1), RECCRDT DATETIME DEFAULT CURRENT_TIMESTAMP, \
     RECUPDT DATETIME DEFAULT CURRENT_TIMESTAMP, CURFLG CHAR(1) DEFAULT 'Y')",
    "CREATE TABLE DMS_JOBDTL (JOBDTLID BIGINT AUTO_INCREMENT PRIMARY KEY, \
     MAPREF VARCHAR(50) NOT NULL, MAPDTLID BIGINT, TRGCLNM VARCHAR(100), TRGCLDTYP VARCHAR(50), \
     TRGKEYFLG CHAR(1), TRGKEYSEQ INTEGER, TRGCLDESC VARCHAR(500), MAPLOGIC LONGTEXT, \
     MAPRSQLCD VARCHAR(100), KEYCLNM VARCHAR(100), VALCLNM VARCHAR(100), MAPCMBCD VARCHAR(20), \
     EXCSEQ INTEGER, SCDTYP INTEGER, RECCRDT DATETIME DEFAULT CURRENT_TIMESTAMP, \
     RECUPDT DATETIME DEFAULT CURRENT_TIMESTAMP, CURFLG CHAR(1) DEFAULT 'Y')",
    "CREATE TABLE DMS_JOBFLW (JOBFLWID BIGINT AUTO_INCREMENT PRIMARY KEY, JOBID DECIMAL(20,0), \
     MAPREF VARCHAR(50), TRGSCHM VARCHAR(100), TRGTBTYP VARCHAR(20), TRGTBNM VARCHAR(100), \
     DWLOGIC LONGTEXT, STFLG CHAR(1) DEFAULT 'A', RECRDT DATETIME DEFAULT CURRENT_TIMESTAMP, \
     RECUPDT DATETIME DEFAULT CURRENT_TIMESTAMP, CURFLG CHAR(1) DEFAULT 'Y')",
    "CREATE TABLE crm_customers (customer_id INT, first_name VARCHAR(50), \
     last_name VARCHAR(50), city VARCHAR(100), segment VARCHAR(20))",
    "CREATE TABLE crm_sales (sale_id BIGINT PRIMARY KEY, customer_id INT, sale_date DATE, \
     product_code VARCHAR(20), qty INT, amount DECIMAL(18,2))",
    "CREATE TABLE DIM_CUSTOMER (SKEY BIGINT AUTO_INCREMENT PRIMARY KEY, RWHKEY VARCHAR(32), \
     CUST_ID DECIMAL(10), CUST_NAME VARCHAR(100), CITY VARCHAR(100), SEGMENT VARCHAR(20), \
     CURFLG VARCHAR(1), FROMDT DATETIME, TODT DATETIME, RECCRDT DATETIME, RECUPDT DATETIME)",
    "CREATE TABLE DIM_CUSTOMER1 (SKEY BIGINT AUTO_INCREMENT PRIMARY KEY, RWHKEY VARCHAR(32), \
     CUST_ID DECIMAL(10), CUST_NAME VARCHAR(100), CITY VARCHAR(100), SEGMENT VARCHAR(20), \
     CURFLG VARCHAR(1), FROMDT DATETIME, TODT DATETIME, RECCRDT DATETIME, RECUPDT DATETIME)",
    "CREATE TABLE FCT_SALES (SKEY BIGINT AUTO_INCREMENT PRIMARY KEY, RWHKEY VARCHAR(32), \
     SALE_ID DECIMAL(10), CUST_ID DECIMAL(10), SALE_DT DATE, PRODUCT_CD VARCHAR(20), \
     QTY DECIMAL(10), SALE_AMT DECIMAL(18,6), RECCRDT DATETIME, RECUPDT DATETIME)",
    "CREATE TABLE DIM_BAD (SKEY BIGINT AUTO_INCREMENT PRIMARY KEY, RWHKEY VARCHAR(32), \
     CUST_ID DECIMAL(10), CUST_NAME VARCHAR(100), CITY VARCHAR(100), SEGMENT VARCHAR(20), \
     CURFLG VARCHAR(1), FROMDT DATETIME, TODT DATETIME, RECCRDT DATETIME, RECUPDT DATETIME)",
    "CREATE TABLE DIM_BIG (SKEY BIGINT AUTO_INCREMENT PRIMARY KEY, RWHKEY VARCHAR(32), \
     CUST_ID DECIMAL(10), CUST_NAME VARCHAR(100), CITY VARCHAR(100), SEGMENT VARCHAR(20), \
     CURFLG VARCHAR(1), FROMDT DATETIME, TODT DATETIME, RECCRDT DATETIME, RECUPDT DATETIME)",
];

/// One mapping job as the UI and `POST /job/create-update` leave it.
struct MappingJob {
    jobid: i64,
    mapref: &'static str,
    table: &'static str,
    kind: &'static str,
    scd_type: i64,
    sql_code: &'static str,
    sql: String,
    /// `(target column, source column, key)` in `EXCSEQ` order.
    columns: &'static [(&'static str, &'static str, bool)],
    checkpoint_column: Option<&'static str>,
}

const CUSTOMER_COLUMNS: &[(&str, &str, bool)] = &[
    ("CUST_ID", "CUST_ID", true),
    ("CUST_NAME", "CUST_NAME", false),
    ("CITY", "CITY", false),
    ("SEGMENT", "SEGMENT", false),
];

const SALES_COLUMNS: &[(&str, &str, bool)] = &[
    ("SALE_ID", "SALE_ID", true),
    ("CUST_ID", "CUST_ID", false),
    ("SALE_DT", "SALE_DT", false),
    ("PRODUCT_CD", "PRODUCT_CD", false),
    ("QTY", "QTY", false),
    ("SALE_AMT", "SALE_AMT", false),
];

fn jobs(backend: Backend) -> Vec<MappingJob> {
    let name = match backend {
        Backend::MySql => "CONCAT(c.first_name, ' ', c.last_name)",
        _ => "c.first_name || ' ' || c.last_name",
    };
    let customers = format!(
        "SELECT c.customer_id AS cust_id, {name} AS cust_name, c.city AS city, \
         c.segment AS segment FROM crm_customers c ORDER BY c.customer_id"
    );
    vec![
        MappingJob {
            jobid: 1,
            mapref: "DIM_CUSTOMER",
            table: "DIM_CUSTOMER",
            kind: "DIM",
            scd_type: 2,
            sql_code: "CUST_SRC",
            sql: customers.clone(),
            columns: CUSTOMER_COLUMNS,
            checkpoint_column: None,
        },
        MappingJob {
            jobid: 2,
            mapref: "FCT_SALES",
            table: "FCT_SALES",
            kind: "FCT",
            scd_type: 1,
            sql_code: "SALES_SRC",
            sql: "SELECT s.sale_id AS sale_id, s.customer_id AS cust_id, s.sale_date AS sale_dt, \
                  s.product_code AS product_cd, s.qty AS qty, s.amount AS sale_amt \
                  FROM crm_sales s WHERE s.sale_date >= DWT_PARAM2 ORDER BY s.sale_id"
                .to_string(),
            columns: SALES_COLUMNS,
            checkpoint_column: Some("SALE_ID"),
        },
        // Type 1, whose source repeats customer 2 with another city: the last row wins.
        MappingJob {
            jobid: 3,
            mapref: "DIM_CUSTOMER1",
            table: "DIM_CUSTOMER1",
            kind: "DIM",
            scd_type: 1,
            sql_code: "CUST1_SRC",
            sql: format!(
                "SELECT * FROM ({customers}) a UNION ALL SELECT 2, 'Bo Chen', 'Agra', 'SME'"
            ),
            columns: CUSTOMER_COLUMNS,
            checkpoint_column: None,
        },
        // A name too long for the target: the load fails, and nothing is written.
        MappingJob {
            jobid: 4,
            mapref: "DIM_BAD",
            table: "DIM_BAD",
            kind: "DIM",
            scd_type: 2,
            sql_code: "BAD_SRC",
            sql: format!(
                "SELECT cust_id, CASE WHEN cust_id = 3 THEN {long} ELSE cust_name END AS cust_name, \
                 city, segment FROM ({customers}) a",
                long = match backend {
                    Backend::MySql => "REPEAT('x', 200)",
                    _ => "repeat('x', 200)",
                }
            ),
            columns: CUSTOMER_COLUMNS,
            checkpoint_column: None,
        },
        // A source slow enough (at least 30 s) to be stopped in the middle, even on a
        // busy machine.
        MappingJob {
            jobid: 5,
            mapref: "DIM_BIG",
            table: "DIM_BIG",
            kind: "DIM",
            scd_type: 2,
            sql_code: "BIG_SRC",
            sql: match backend {
                Backend::MySql => {
                    "SELECT seq AS cust_id, CONCAT('n', seq) AS cust_name, 'c' AS city, \
                     'SME' AS segment FROM seq_1_to_100000 WHERE SLEEP(0.0003) = 0"
                        .to_string()
                }
                _ => "SELECT g AS cust_id, 'n' || g AS cust_name, 'c' AS city, 'SME' AS segment \
                      FROM generate_series(1, 100000) g WHERE pg_sleep(0.0003) IS NOT NULL"
                    .to_string(),
            },
            columns: CUSTOMER_COLUMNS,
            checkpoint_column: None,
        },
    ]
}

/// A Python string literal as the generator writes the source SQL.
fn python_sql(sql: &str) -> String {
    sql.replace("\"\"\"", "\\\"\\\"\\\"")
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

fn python_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("'{i}'")).collect();
    format!("[{}]", quoted.join(", "))
}

fn python_dict(pairs: &[(&str, &str)]) -> String {
    let quoted: Vec<String> = pairs.iter().map(|(k, v)| format!("'{k}': '{v}'")).collect();
    format!("{{{}}}", quoted.join(", "))
}

/// `DMS_JOBFLW.DWLOGIC` as DWTOOL's `build_job_flow_code` renders it for `job`.
fn dwlogic(job: &MappingJob, schema: &str) -> String {
    let mut all: Vec<&str> = job.columns.iter().map(|c| c.0).collect();
    all.push("RWHKEY");
    if job.kind == "DIM" {
        all.extend(["CURFLG", "FROMDT", "TODT"]);
    }
    let mut mapping: Vec<(&str, &str)> = job.columns.iter().map(|c| (c.0, c.1)).collect();
    mapping.extend(all.iter().skip(job.columns.len()).map(|c| (*c, *c)));
    let keys: Vec<&str> = job.columns.iter().filter(|c| c.2).map(|c| c.0).collect();
    let key_mapping: Vec<(&str, &str)> = job
        .columns
        .iter()
        .filter(|c| c.2)
        .map(|c| (c.0, c.1))
        .collect();
    let (strategy, column) = match job.checkpoint_column {
        Some(column) => ("KEY", column),
        None => ("PYTHON", ""),
    };
    format!(
        r#""""
Auto-generated ETL Job for {mapref}
Target: {upper}.{table}
Type: {kind}
"""

from typing import Dict, List, Any, Optional
from decimal import Decimal

# Job configuration
MAPREF = "{mapref}"
JOBID = {jobid}
TARGET_SCHEMA = "{schema}"
TARGET_TABLE = "{table}"
TARGET_TYPE = "{kind}"
FULL_TABLE_NAME = "{upper}.{table}"
BULK_LIMIT = 2

# Checkpoint configuration
CHECKPOINT_ENABLED = True
CHECKPOINT_STRATEGY = "{strategy}"
CHECKPOINT_COLUMN = "{column}"
CHECKPOINT_COLUMNS = [col.strip().upper() for col in CHECKPOINT_COLUMN.split(',')] if CHECKPOINT_COLUMN else []

# Primary key columns (target column names)
PK_COLUMNS = {keys}
PK_SOURCE_MAPPING = {key_mapping}

# All target columns (in execution order)
ALL_COLUMNS = {all}

# Mapping from target columns to source columns
COLUMN_SOURCE_MAPPING = {mapping}

# Columns to exclude from hash calculation
HASH_EXCLUDE_COLUMNS = {{'SKEY', 'RWHKEY', 'RECCRDT', 'RECUPDT', 'CURFLG', 'FROMDT', 'TODT', 'VALDFRM', 'VALDTO'}}


def execute_job(metadata_connection, source_connection, target_connection, session_params: Dict[str, Any]) -> Dict[str, Any]:
    should_stop = False

        # ===== Combination 1: A00 (SCD Type {scd}) =====
    if not should_stop:
        debug("Processing combination: A00 (SCD Type {scd})")
        
        # Set connection IDs from first combination (for thread-safe parallel processing)
        if 1 == 1:
            job_config['source_conn_id'] = 101
            job_config['target_conn_id'] = 102
        
        # Source SQL for this combination
        source_sql_1 = """{sql}"""
        
        # Update job config with SCD type for this combination
        job_config['scd_type'] = {scd}
        
        # Execute this combination using external module
        result_1 = execute_mapper_job(
            metadata_connection,
            source_connection,
            target_connection,
            job_config,
            source_sql_1,
            transformation_func,
            checkpoint_config,
            session_params
        )
"#,
        mapref = job.mapref,
        jobid = job.jobid,
        table = job.table,
        upper = schema.to_uppercase(),
        kind = job.kind,
        keys = python_list(&keys),
        key_mapping = python_dict(&key_mapping),
        all = python_list(&all),
        mapping = python_dict(&mapping),
        scd = job.scd_type,
        sql = python_sql(&job.sql),
    )
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The metadata rows of every job: what the UI saves and the generator derives.
fn metadata_rows(db: &TestDb, schema: &str) -> Vec<String> {
    let connection = db.flow_connection("unused");
    let url = connection.constr.unwrap();
    let schnm = connection.schnm.unwrap_or_default();
    let mut rows = vec![
        format!(
            "INSERT INTO DMS_DBCONDTLS (CONID, CONNM, DBTYP, CONSTR, SCHNM, CURFLG) VALUES \
             (101, 'SRC_CRM', 'POSTGRESQL', {url}, {schnm}, 'Y'), \
             (102, 'DW_TARGET', 'POSTGRESQL', {url}, {schnm}, 'Y')",
            url = quoted(&url),
            schnm = quoted(&schnm),
        ),
        "INSERT INTO DMS_PARAMS (PRTYP, PRCD, PRDESC, PRVAL, DBTYP) VALUES \
         ('BULKPRC', 'NOOFROWS', 'Default bulk rows', '1000', 'GENERIC')"
            .to_string(),
    ];
    let mut detail_id = 0;
    for (i, job) in jobs(db.backend).iter().enumerate() {
        rows.push(format!(
            "INSERT INTO DMS_MAPRSQL (MAPRSQLID, MAPRSQLCD, MAPRSQL, SQLCONID, CURFLG) \
             VALUES ({}, '{}', {}, 101, 'Y')",
            i + 1,
            job.sql_code,
            quoted(&job.sql)
        ));
        rows.push(format!(
            "INSERT INTO DMS_JOB (JOBID, MAPID, MAPREF, FRQCD, TRGSCHM, TRGTBTYP, TRGTBNM, \
             SRCSYSTM, STFLG, BLKPRCROWS, TRGCONID, CHKPNTSTRTGY, CHKPNTCLNM, CHKPNTENBLD, CURFLG) \
             VALUES ({id}, {id}, '{mapref}', 'DL', '{schema}', '{kind}', '{table}', 'CRM', 'A', 2, \
             102, 'AUTO', {column}, 'Y', 'Y')",
            id = job.jobid,
            mapref = job.mapref,
            kind = job.kind,
            table = job.table,
            column = job.checkpoint_column.map_or("NULL".to_string(), quoted),
        ));
        for (excseq, (target, source, key)) in job.columns.iter().enumerate() {
            detail_id += 1;
            let key_column = job.columns.iter().find(|c| c.2).unwrap().1;
            rows.push(format!(
                "INSERT INTO DMS_JOBDTL (JOBDTLID, MAPREF, MAPDTLID, TRGCLNM, TRGCLDTYP, \
                 TRGKEYFLG, TRGKEYSEQ, MAPLOGIC, MAPRSQLCD, KEYCLNM, VALCLNM, MAPCMBCD, EXCSEQ, \
                 SCDTYP, CURFLG) VALUES ({detail_id}, '{mapref}', {detail_id}, '{target}', \
                 'String100', '{flag}', {seq}, '{code}', '{code}', '{key_column}', '{source}', \
                 'A00', {excseq}, {scd}, 'Y')",
                mapref = job.mapref,
                flag = if *key { "Y" } else { "N" },
                seq = if *key { "1" } else { "NULL" },
                code = job.sql_code,
                excseq = excseq + 1,
                scd = job.scd_type,
            ));
        }
        rows.push(format!(
            "INSERT INTO DMS_JOBFLW (JOBFLWID, JOBID, MAPREF, TRGSCHM, TRGTBTYP, TRGTBNM, \
             DWLOGIC, STFLG, CURFLG) VALUES ({id}, {id}, '{mapref}', '{schema}', '{kind}', \
             '{table}', {logic}, 'A', 'Y')",
            id = job.jobid,
            mapref = job.mapref,
            kind = job.kind,
            table = job.table,
            logic = quoted(&dwlogic(job, schema)),
        ));
    }
    rows
}

/// Inserts a request as DWTOOL's Python API does, and waits for it to end `DONE`.
async fn run_job(db: &TestDb, store: &dyn Store, mapref: &str, payload: &str) -> serde_json::Value {
    let id = insert_request(db, mapref, payload).await;
    let (status, result) = wait_end(store, &id, mapref).await;
    assert_eq!(status, RequestStatus::Done, "{mapref}: {result}");
    result
}

/// Waits for request `id` to end; gives its status and result.
async fn wait_end(store: &dyn Store, id: &str, mapref: &str) -> (RequestStatus, serde_json::Value) {
    let request =
        eventually(
            LONG,
            &format!("request {id} of {mapref} to end"),
            || async {
                store.get_request(id).await.unwrap().filter(|r| {
                    matches!(r.status, Some(RequestStatus::Done | RequestStatus::Failed))
                })
            },
        )
        .await;
    let result: serde_json::Value =
        serde_json::from_str(request.result_payload.as_deref().unwrap_or("{}")).unwrap();
    (request.status.unwrap(), result)
}

/// Inserts an `IMMEDIATE` request as DWTOOL's Python API does; gives its id.
async fn insert_request(db: &TestDb, mapref: &str, payload: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let now = chrono::Utc::now()
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S%.6f");
    db.exec_raw(&[&format!(
        "INSERT INTO DMS_PRCREQ (REQUEST_ID, MAPREF, REQUEST_TYPE, PAYLOAD, STATUS, REQUESTED_AT) \
         VALUES ('{id}', '{mapref}', 'IMMEDIATE', {}, 'NEW', '{now}')",
        quoted(payload)
    )])
    .await;
    id
}

/// Rows of `sql` with every column as text.
async fn rows(db: &TestDb, sql: &str) -> Vec<Vec<Option<String>>> {
    db.text_rows(sql).await
}

fn text(backend: Backend, column: &str) -> String {
    match backend {
        Backend::MySql => format!("CAST({column} AS CHAR)"),
        _ => format!("CAST({column} AS VARCHAR)"),
    }
}

/// A dimension's rows by `SKEY`: key, city, hash, flag, from, to.
async fn dimension(db: &TestDb, table: &str) -> Vec<Vec<Option<String>>> {
    let t = |c: &str| text(db.backend, c);
    rows(
        db,
        &format!(
            "SELECT {}, {}, CUST_NAME, CITY, RWHKEY, CURFLG, {}, {} FROM {table} ORDER BY SKEY",
            t("SKEY"),
            t("CUST_ID"),
            t("FROMDT"),
            t("TODT")
        ),
    )
    .await
}

fn s(value: &str) -> Option<String> {
    Some(value.to_string())
}

/// The `DMS_JOBLOG` totals of a job's runs, oldest first.
async fn job_log(db: &TestDb, mapref: &str) -> Vec<(String, String, String)> {
    let t = |c: &str| text(db.backend, c);
    rows(
        db,
        &format!(
            "SELECT {}, {}, {} FROM DMS_JOBLOG WHERE MAPREF = '{mapref}' ORDER BY JOBLOGID",
            t("SRCROWS"),
            t("TRGROWS"),
            t("ERRROWS")
        ),
    )
    .await
    .into_iter()
    .map(|r| {
        (
            r[0].clone().unwrap(),
            r[1].clone().unwrap(),
            r[2].clone().unwrap(),
        )
    })
    .collect()
}

async fn mapping_jobs_load_dimensions_and_facts(db: TestDb) {
    let schema = db.schema.clone().unwrap();
    let install = match db.backend {
        Backend::Postgres => POSTGRES_METADATA,
        _ => MYSQL_METADATA,
    };
    db.exec_raw(install).await;
    let scratch = Scratch::new();
    cli(&db, &scratch.dir, &["init"]);
    let metadata = metadata_rows(&db, &schema);
    let metadata: Vec<&str> = metadata.iter().map(String::as_str).collect();
    db.exec_raw(&metadata).await;
    db.exec_raw(&[
        "INSERT INTO crm_customers VALUES (1, 'Ann', 'Lee', 'Pune', 'RETAIL'), \
         (2, 'Bo', 'Chen', 'Delhi', 'SME'), (3, 'Cy', 'Das', NULL, 'RETAIL')",
        "INSERT INTO crm_sales VALUES (1001, 1, '2026-01-15', 'P-10', 2, 199.90), \
         (1002, 2, '2026-01-15', 'P-20', 1, 49.50), (1003, 3, '2026-01-16', 'P-10', 1, 99.95)",
    ])
    .await;
    let store = db.open_unmigrated().await;
    let checked = cli(&db, &scratch.dir, &["dwtool", "check"]);
    for mapref in [
        "DIM_CUSTOMER",
        "FCT_SALES",
        "DIM_CUSTOMER1",
        "DIM_BAD",
        "DIM_BIG",
    ] {
        assert!(checked.contains(&format!("OK   {mapref}")), "{checked}");
    }
    let _node = NodeProcess::start(&db, &scratch.dir, "n1", &[]);

    // Run 1: empty targets.
    let since = r#"{"param2": "2026-01-01"}"#;
    run_job(&db, &*store, "DIM_CUSTOMER", "{}").await;
    run_job(&db, &*store, "FCT_SALES", since).await;
    let first = dimension(&db, "DIM_CUSTOMER").await;
    let hashes: Vec<Option<String>> = first.iter().map(|r| r[4].clone()).collect();
    assert_eq!(
        hashes,
        [
            s("117be08f8857f044c16f4789ba41d4ea"),
            s("45b68fbde25ec93ee7d15e0e0727a661"),
            s("f13b74d603ab22a96d5c68f45d6f8aa1"),
        ],
        "the original's hashes: {first:?}"
    );
    let keys: Vec<(Option<String>, Option<String>)> =
        first.iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(keys, [(s("1"), s("1")), (s("2"), s("2")), (s("3"), s("3"))]);
    for row in &first {
        assert_eq!(row[5], s("Y"));
        assert!(
            row[7]
                .as_deref()
                .unwrap()
                .starts_with("9999-12-31 00:00:00"),
            "{row:?}"
        );
    }
    assert_eq!(first[2][3], None, "a NULL city stays NULL");
    let sales_hashes = rows(&db, "SELECT RWHKEY FROM FCT_SALES ORDER BY SKEY").await;
    assert_eq!(sales_hashes[0][0], s("40a8eb4b5249f5f2e669054d1b67060b"));
    assert_eq!(sales_hashes[1][0], s("ff95da68df7be17e3e925a7486b70bdd"));

    // Run 2: customer 2 moves, customer 4 and sale 1004 arrive.
    db.exec_raw(&[
        "UPDATE crm_customers SET city = 'Mumbai' WHERE customer_id = 2",
        "INSERT INTO crm_customers VALUES (4, 'Di', 'Evans', 'Goa', 'SME')",
        "INSERT INTO crm_sales VALUES (1004, 4, '2026-01-17', 'P-30', 3, 30.00)",
    ])
    .await;
    run_job(&db, &*store, "DIM_CUSTOMER", "{}").await;
    run_job(&db, &*store, "FCT_SALES", since).await;
    let second = dimension(&db, "DIM_CUSTOMER").await;
    assert_eq!(second.len(), 5, "{second:#?}");
    assert_eq!(second[0], first[0], "an unchanged row is not touched");
    assert_eq!(second[2], first[2]);
    let (expired, successor, new_key) = (&second[1], &second[3], &second[4]);
    assert_eq!(
        (
            expired[1].as_deref(),
            expired[3].as_deref(),
            expired[5].as_deref()
        ),
        (Some("2"), Some("Delhi"), Some("N"))
    );
    assert_eq!(
        expired[6], first[1][6],
        "FROMDT of the expired version stays"
    );
    assert_eq!(
        (
            successor[0].as_deref(),
            successor[1].as_deref(),
            successor[3].as_deref()
        ),
        (Some("4"), Some("2"), Some("Mumbai"))
    );
    assert_eq!(successor[4], s("1158ff7ab3f062fa6d945d24249dc0ac"));
    assert_eq!(successor[5], s("Y"));
    assert_eq!(
        expired[7], successor[6],
        "TODT of the old version is FROMDT of the new"
    );
    assert_eq!(
        (
            new_key[0].as_deref(),
            new_key[1].as_deref(),
            new_key[5].as_deref()
        ),
        (Some("5"), Some("4"), Some("Y"))
    );
    let sales = rows(&db, "SELECT RWHKEY FROM FCT_SALES ORDER BY SKEY").await;
    assert_eq!(
        sales.len(),
        4,
        "a fact is upserted by key, not appended: {sales:?}"
    );

    // Run 3: nothing changed, so nothing is written.
    run_job(&db, &*store, "DIM_CUSTOMER", "{}").await;
    assert_eq!(dimension(&db, "DIM_CUSTOMER").await, second);
    assert_eq!(
        job_log(&db, "DIM_CUSTOMER").await,
        [
            ("3".into(), "3".into(), "0".into()),
            ("4".into(), "2".into(), "0".into()),
            ("4".into(), "0".into(), "0".into()),
        ],
        "one DMS_JOBLOG row per run: fetched, inserted + updated, rejected"
    );

    // A NULL key is rejected by name, and the run goes on.
    db.exec_raw(&["INSERT INTO crm_customers VALUES (NULL, 'No', 'Key', 'Nowhere', 'SME')"])
        .await;
    run_job(&db, &*store, "DIM_CUSTOMER", "{}").await;
    assert_eq!(
        job_log(&db, "DIM_CUSTOMER").await.last().unwrap(),
        &("5".into(), "0".into(), "1".into())
    );
    let rejected = rows(
        &db,
        "SELECT ERRTYP, KEYVALUE FROM DMS_JOBERR WHERE MAPREF = 'DIM_CUSTOMER'",
    )
    .await;
    assert_eq!(rejected, [vec![s("ROW"), s("CUST_ID=NULL")]]);

    // Type 1 with a repeated key: the last row wins, in place, one current row per key.
    run_job(&db, &*store, "DIM_CUSTOMER1", "{}").await;
    let once = dimension(&db, "DIM_CUSTOMER1").await;
    let mut cities: Vec<(Option<String>, Option<String>)> =
        once.iter().map(|r| (r[1].clone(), r[3].clone())).collect();
    // The kept row of key 2 is its last, so it is inserted last.
    cities.sort();
    assert_eq!(
        cities,
        [
            (s("1"), s("Pune")),
            (s("2"), s("Agra")),
            (s("3"), None),
            (s("4"), s("Goa"))
        ],
        "{once:#?}"
    );
    db.exec_raw(&["UPDATE crm_customers SET city = 'Kochi' WHERE customer_id = 4"])
        .await;
    run_job(&db, &*store, "DIM_CUSTOMER1", "{}").await;
    let twice = dimension(&db, "DIM_CUSTOMER1").await;
    assert_eq!(twice.len(), 4, "type 1 updates in place: {twice:#?}");
    let key_4 =
        |rows: &[Vec<Option<String>>]| rows.iter().find(|r| r[1] == s("4")).cloned().unwrap();
    let (before, after) = (key_4(&once), key_4(&twice));
    assert_eq!(after[3], s("Kochi"));
    assert_ne!(after[4], before[4], "a new hash");
    assert_eq!(
        (&after[0], &after[5], &after[6], &after[7]),
        (&before[0], &before[5], &before[6], &before[7]),
        "SKEY, CURFLG, FROMDT and TODT are kept"
    );

    // Truncate: the fact holds exactly the source, its SKEY continuing.
    run_job(
        &db,
        &*store,
        "FCT_SALES",
        r#"{"param2": "2026-01-01", "truncate_flag": "Y"}"#,
    )
    .await;
    let sales = rows(
        &db,
        &format!(
            "SELECT {} FROM FCT_SALES ORDER BY SKEY",
            text(db.backend, "SKEY")
        ),
    )
    .await;
    assert_eq!(
        sales,
        [vec![s("5")], vec![s("6")], vec![s("7")], vec![s("8")]]
    );
    // DWT_PARAM2 is bound: a later date selects fewer rows.
    run_job(
        &db,
        &*store,
        "FCT_SALES",
        r#"{"param2": "2026-01-17", "truncate_flag": "Y"}"#,
    )
    .await;
    let sales = rows(
        &db,
        &format!("SELECT {} FROM FCT_SALES", text(db.backend, "SALE_ID")),
    )
    .await;
    assert_eq!(sales, [vec![s("1004")]]);

    // A KEY checkpoint in param1 resumes after that key, in key order.
    run_job(
        &db,
        &*store,
        "FCT_SALES",
        r#"{"param1": "1002", "param2": "2026-01-01", "truncate_flag": "Y"}"#,
    )
    .await;
    let sales = rows(
        &db,
        &format!(
            "SELECT {} FROM FCT_SALES ORDER BY SKEY",
            text(db.backend, "SALE_ID")
        ),
    )
    .await;
    assert_eq!(sales, [vec![s("1003")], vec![s("1004")]]);

    // Hashes another driver rendered are rewritten from the source, and nothing is
    // versioned: the next run sees no change. (The target is brought up to date with the
    // source first: a rehash would hide a change made since the last load.)
    run_job(&db, &*store, "DIM_CUSTOMER", "{}").await;
    let before = dimension(&db, "DIM_CUSTOMER").await;
    db.exec_raw(&["UPDATE DIM_CUSTOMER SET RWHKEY = 'from another driver' WHERE CURFLG = 'Y'"])
        .await;
    cli(&db, &scratch.dir, &["dwtool", "rehash", "DIM_CUSTOMER"]);
    assert_eq!(dimension(&db, "DIM_CUSTOMER").await, before);
    run_job(&db, &*store, "DIM_CUSTOMER", "{}").await;
    assert_eq!(
        job_log(&db, "DIM_CUSTOMER").await.last().unwrap().1,
        "0",
        "nothing changed after the rehash"
    );
    let shown = cli(&db, &scratch.dir, &["dwtool", "show", "DIM_CUSTOMER"]);
    assert!(
        shown.contains("dimension, SCD type 2") && shown.contains("CUST_NAME"),
        "{shown}"
    );

    // A database error fails the run, names the cause, and leaves the target as it was.
    let id = insert_request(&db, "DIM_BAD", "{}").await;
    let (status, result) = wait_end(&*store, &id, "DIM_BAD").await;
    assert_eq!(status, RequestStatus::Failed, "{result}");
    let error = result["error"].as_str().unwrap();
    assert!(
        error.contains("ended FL") && error.contains("DIM_BAD"),
        "{error}"
    );
    assert_eq!(rows(&db, "SELECT RWHKEY FROM DIM_BAD").await.len(), 0);

    // A stop in the middle of a load: the statements are cancelled, the run ends ST,
    // and the target is unchanged.
    let id = insert_request(&db, "DIM_BIG", "{}").await;
    crate::service::wait_run_status(
        &*store,
        "DIM_BIG",
        dwsched_model::RunStatus::InProgress,
        LONG,
    )
    .await;
    // Its DMS_JOBLOG row is kept current while it runs.
    let fetched = eventually(
        LONG,
        "DIM_BIG's rows fetched so far in DMS_JOBLOG",
        || async {
            let log = job_log(&db, "DIM_BIG").await;
            (log.len() == 1 && log[0].0 != "0").then(|| log[0].0.clone())
        },
    )
    .await;
    assert!(fetched.parse::<i64>().unwrap() < 100_000, "{fetched}");
    let stopped_at = std::time::Instant::now();
    cli(&db, &scratch.dir, &["stop", "DIM_BIG"]);
    let (status, result) = wait_end(&*store, &id, "DIM_BIG").await;
    assert_eq!(status, RequestStatus::Failed, "{result}");
    assert!(
        stopped_at.elapsed() < Duration::from_secs(8),
        "the stop took {:?}",
        stopped_at.elapsed()
    );
    assert_eq!(result["runs"][0]["status"], "ST", "{result}");
    assert_eq!(rows(&db, "SELECT RWHKEY FROM DIM_BIG").await.len(), 0);
    assert_eq!(
        job_log(&db, "DIM_BIG").await.len(),
        1,
        "the run's one row, updated at its end"
    );
}
