//! A DWTOOL file upload of 1,000,000 CSV rows into PostgreSQL, run by a real `dwsched
//! run` node from a `FILE_UPLOAD` request, beside `psql -c "\copy t from 'file' csv
//! header"`: into a table of the file's seven columns (the plain command), and into a
//! table of the upload target's shape (the seven and the four audit columns, filled by
//! their defaults), so that both store the same rows; and psql's `\copy` of the rows
//! as the node sends them (COPY text of all eleven columns, the audit timestamps written
//! out), the server's own pace for that work. The node's time is its run's
//! (`DMS_PRCLOG` start to end); five rounds, each variant once per round, medians.
//! Then the node's peak memory for 100,000 and 1,000,000 rows of CSV, JSON, XML and
//! Excel, each on a fresh node.
//!
//! Run `bench/run-upload-bench.sh`; it needs `psql` and a release build of `dwsched`.

use std::io::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use dwsched_bench::{
    Process, dwsched_cli, exec, machine_report, median, peak_rss_mib, start_dwsched, text,
    wait_for_run,
};
use sqlx::{Connection as _, PgConnection};

const ROWS: usize = 1_000_000;
const SMALL: usize = 100_000;
const RUNS: usize = 5;

const COLUMNS: &[(&str, &str, &str)] = &[
    ("cust_id", "String10", "VARCHAR(10)"),
    ("cust_name", "String100", "VARCHAR(100)"),
    ("email", "String200", "VARCHAR(200)"),
    ("signup_date", "Date", "DATE"),
    ("country", "String2", "VARCHAR(2)"),
    ("amount", "Decimal18,2", "NUMERIC(18,2)"),
    ("visits", "Integer", "BIGINT"),
];

fn write_file(path: &std::path::Path, rows: usize) {
    let file = std::fs::File::create(path).unwrap();
    let mut out = std::io::BufWriter::new(file);
    let names: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
    writeln!(out, "{}", names.join(",")).unwrap();
    for i in 0..rows {
        writeln!(out, "{}", record(i).join(",")).unwrap();
    }
    out.flush().unwrap();
}

/// Row `i` of the bench's feed, as text.
fn record(i: usize) -> [String; 7] {
    [
        format!("{i:08}"),
        format!("Customer {i}"),
        format!("c{i}@example.com"),
        format!("2026-{:02}-{:02}", 1 + i % 12, 1 + i % 28),
        ["IN", "GB", "DE", "PT"][i % 4].to_string(),
        format!("{}.{:02}", i % 100_000, i % 100),
        (i % 500).to_string(),
    ]
}

/// The feed as JSON, XML or Excel (text cells, so that leading zeros stay).
fn write_format(path: &std::path::Path, rows: usize) {
    let names: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => {
            let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
            write!(out, "[").unwrap();
            for i in 0..rows {
                let object: serde_json::Map<String, serde_json::Value> = names
                    .iter()
                    .zip(record(i))
                    .map(|(n, v)| (n.to_string(), serde_json::Value::from(v)))
                    .collect();
                let comma = if i > 0 { "," } else { "" };
                writeln!(out, "{comma}{}", serde_json::Value::Object(object)).unwrap();
            }
            write!(out, "]").unwrap();
            out.flush().unwrap();
        }
        Some("xml") => {
            let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
            writeln!(out, "<?xml version=\"1.0\"?>\n<customers>").unwrap();
            for i in 0..rows {
                write!(out, "<customer>").unwrap();
                for (n, v) in names.iter().zip(record(i)) {
                    write!(out, "<{n}>{v}</{n}>").unwrap();
                }
                writeln!(out, "</customer>").unwrap();
            }
            writeln!(out, "</customers>").unwrap();
            out.flush().unwrap();
        }
        _ => {
            let mut workbook = rust_xlsxwriter::Workbook::new();
            let sheet = workbook.add_worksheet_with_constant_memory();
            for (col, name) in names.iter().enumerate() {
                sheet.write_string(0, col as u16, *name).unwrap();
            }
            for i in 0..rows {
                for (col, value) in record(i).iter().enumerate() {
                    sheet.write_string(i as u32 + 1, col as u16, value).unwrap();
                }
            }
            workbook.save(path).unwrap();
        }
    }
}

/// A `DMS_FLUPLD` row and its mappings: file `path` into `table`.
async fn configure(
    conn: &mut PgConnection,
    id: usize,
    reference: &str,
    path: &std::path::Path,
    conid: &str,
    schema: &str,
    table: &str,
) {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("csv")
        .to_ascii_uppercase();
    exec(
        conn,
        &format!(
            "INSERT INTO dms_flupld (flupldid, flupldref, flpth, fltyp, trgconid, trgschm, trgtblnm, curflg) \
             VALUES ({id}, '{reference}', '{}', '{extension}', {conid}, '{schema}', '{table}', 'Y')",
            path.display()
        ),
    )
    .await;
    for (seq, (name, code, _)) in COLUMNS.iter().enumerate() {
        exec(
            conn,
            &format!(
                "INSERT INTO dms_fluplddtl (flupldref, srcclnm, trgclnm, trgcldtyp, trgkyflg, excseq, curflg) \
                 VALUES ('{reference}', '{name}', '{name}', '{code}', 'N', {}, 'Y')",
                seq + 1
            ),
        )
        .await;
    }
}

/// Queues a `FILE_UPLOAD` as DWTOOL's API does and waits for it to end `DONE`; the
/// run's own duration.
async fn run_upload(conn: &mut PgConnection, reference: &str, mode: &str, n: u64) -> f64 {
    let id = format!(
        "00000000-0000-4000-9000-{:012x}",
        u64::from(std::process::id()) << 16 | n
    );
    exec(
        conn,
        &format!(
            "INSERT INTO dms_prcreq (request_id, mapref, request_type, payload, status, requested_at) \
             VALUES ('{id}', 'FLUPLD:{reference}', 'FILE_UPLOAD', \
             '{{\"flupldref\": \"{reference}\", \"load_mode\": \"{mode}\"}}', 'NEW', now() AT TIME ZONE 'UTC')"
        ),
    )
    .await;
    wait_for_run(conn, &id, Duration::from_secs(900)).await.0
}

/// psql's `TRUNCATE` and `\copy` of `file` into `table` (its `columns`, when the
/// table has more), in `format` (`csv header`, or empty for COPY text).
fn psql_copy(url: &str, schema: &str, file: &str, table: &str, columns: &str, format: &str) -> f64 {
    let started = Instant::now();
    let status = Command::new("psql")
        .args([url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("TRUNCATE {table}"))
        .arg("-c")
        .arg(format!("\\copy {table} {columns} from '{file}' {format}"))
        .env("PGOPTIONS", format!("-c search_path={schema}"))
        .status()
        .expect("psql");
    assert!(status.success(), "psql \\copy failed");
    started.elapsed().as_secs_f64()
}

/// The rows as a node sends them to the server: COPY text of the seven columns and the
/// four audit values (a user, a timestamp with microseconds, twice).
fn write_sent_rows(path: &std::path::Path, rows: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let audit = "system\t2026-11-30 06:30:00.123456";
    for i in 0..rows {
        writeln!(out, "{}\t{audit}\t{audit}", record(i).join("\t")).unwrap();
    }
    out.flush().unwrap();
}

async fn fresh_node(url: &str, schema: &str, name: &str) -> Process {
    let node = start_dwsched(
        url,
        schema,
        name,
        2,
        &[("SCHEDULER_POLL_INTERVAL", "1"), ("RUST_LOG", "info")],
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    node
}

#[tokio::main]
async fn main() {
    let url = std::env::var("DWSCHED_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let schema = format!("upload_bench_{}", std::process::id());
    let dir = std::env::temp_dir().join(&schema);
    std::fs::create_dir_all(&dir).unwrap();
    let large = dir.join("customers.csv");
    let small = dir.join("customers-small.csv");
    write_file(&large, ROWS);
    write_file(&small, SMALL);
    let sent = dir.join("customers-as-sent.txt");
    write_sent_rows(&sent, ROWS);
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let version = text(&mut conn, "SELECT version()").await;
    println!(
        "{}\n{}\nfile upload of {ROWS} CSV rows x {} columns ({} MiB) into PostgreSQL\n",
        machine_report(),
        version.split(" on ").next().unwrap_or(&version),
        COLUMNS.len(),
        std::fs::metadata(&large).map(|m| m.len()).unwrap_or(0) / 1_048_576
    );
    exec(&mut conn, &format!("CREATE SCHEMA {schema}")).await;
    exec(&mut conn, &format!("SET search_path TO {schema}")).await;
    let definition: Vec<String> = COLUMNS.iter().map(|(n, _, t)| format!("{n} {t}")).collect();
    exec(
        &mut conn,
        &format!("CREATE TABLE psql_target ({})", definition.join(", ")),
    )
    .await;
    // The upload target's shape: the audit columns, which psql leaves to their
    // defaults.
    exec(
        &mut conn,
        &format!(
            "CREATE TABLE psql_wide ({}, crtdby VARCHAR(100) DEFAULT 'system', \
             crtddt TIMESTAMP DEFAULT LOCALTIMESTAMP, updtby VARCHAR(100) DEFAULT 'system', \
             updtdt TIMESTAMP DEFAULT LOCALTIMESTAMP)",
            definition.join(", ")
        ),
    )
    .await;
    dwsched_cli(&url, &schema, &["init"]);
    dwsched_cli(
        &url,
        &schema,
        &[
            "conn",
            "put",
            "dw",
            "--url",
            &url,
            "--default-schema",
            &schema,
        ],
    );
    let conid = text(
        &mut conn,
        "SELECT CAST(conid AS TEXT) FROM dms_dbcondtls WHERE connm = 'dw'",
    )
    .await;
    configure(
        &mut conn,
        1,
        "BIG",
        &large,
        &conid,
        &schema,
        "upload_target",
    )
    .await;
    configure(
        &mut conn,
        2,
        "SMALL",
        &small,
        &conid,
        &schema,
        "upload_small",
    )
    .await;
    let large_path = large.to_str().unwrap();
    let file_columns = format!(
        "({})",
        COLUMNS.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
    );
    let node = fresh_node(&url, &schema, "upload-bench-l").await;
    // Each round: psql into both tables, then the node's INSERT into an emptied table
    // (psql's \copy appends), then TRUNCATE_LOAD, which reads the whole file before it
    // empties the table.
    let (mut narrow, mut wide, mut as_sent, mut times, mut truncating) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let sent_path = sent.to_str().unwrap();
    for run in 0..RUNS {
        narrow.push(psql_copy(
            &url,
            &schema,
            large_path,
            "psql_target",
            "",
            "csv header",
        ));
        wide.push(psql_copy(
            &url,
            &schema,
            large_path,
            "psql_wide",
            &file_columns,
            "csv header",
        ));
        as_sent.push(psql_copy(&url, &schema, sent_path, "psql_wide", "", ""));
        if run > 0 {
            exec(&mut conn, "TRUNCATE upload_target").await;
        }
        times.push(run_upload(&mut conn, "BIG", "INSERT", run as u64 + 1).await);
        truncating.push(run_upload(&mut conn, "BIG", "TRUNCATE_LOAD", run as u64 + 11).await);
    }
    drop(node);
    let loaded = text(
        &mut conn,
        "SELECT CAST(COUNT(*) AS TEXT) FROM upload_target",
    )
    .await;
    // Peak memory: one INSERT of each size and format, each on a fresh node.
    // CSV also at three times the size: the rows in flight are bounded, so its peak
    // stays where it is.
    let mut peaks: Vec<(String, Vec<(usize, f64)>)> = Vec::new();
    let mut next_id = 100;
    for extension in ["csv", "json", "xml", "xlsx"] {
        let mut pair = Vec::new();
        let sizes: &[usize] = if extension == "csv" {
            &[SMALL, ROWS, 3 * ROWS]
        } else {
            &[SMALL, ROWS]
        };
        for &rows in sizes {
            let path = match (extension, rows) {
                ("csv", SMALL) => small.clone(),
                ("csv", ROWS) => large.clone(),
                ("csv", _) => {
                    let path = dir.join(format!("customers-{rows}.csv"));
                    write_file(&path, rows);
                    path
                }
                _ => {
                    let path = dir.join(format!("customers-{rows}.{extension}"));
                    write_format(&path, rows);
                    path
                }
            };
            next_id += 1;
            let reference = format!("MEM_{}_{rows}", extension.to_ascii_uppercase());
            let table = format!("mem_{extension}_{rows}");
            configure(
                &mut conn, next_id, &reference, &path, &conid, &schema, &table,
            )
            .await;
            let node = fresh_node(&url, &schema, &format!("upload-bench-{reference}")).await;
            let seconds = run_upload(&mut conn, &reference, "INSERT", next_id as u64 + 1000).await;
            let count = text(
                &mut conn,
                &format!("SELECT CAST(COUNT(*) AS TEXT) FROM {table}"),
            )
            .await;
            assert_eq!(count, rows.to_string(), "{reference} loaded every row");
            pair.push((rows, peak_rss_mib(node.0.id())));
            drop(node);
            if path != small && path != large {
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                println!(
                    "{reference}: {:.1} MiB file loaded in {seconds:.2} s",
                    size as f64 / 1_048_576.0
                );
                let _ = std::fs::remove_file(&path);
            }
        }
        peaks.push((extension.to_string(), pair));
    }
    let narrow = median(&mut narrow);
    let wide = median(&mut wide);
    let as_sent = median(&mut as_sent);
    let time = median(&mut times);
    let truncating = median(&mut truncating);
    let rate = |seconds: f64| ROWS as f64 / seconds;
    println!(
        "\n{:<46} {:>13} {:>9} {:>10} {:>10}",
        "variant", "rate", "time", "vs psql 7", "vs psql 11"
    );
    for (name, seconds) in [
        ("psql: \\copy into the file's 7 columns", narrow),
        ("psql: \\copy into the target's shape (7 + 4 audit)", wide),
        ("psql: \\copy of the rows as the node sends them", as_sent),
        ("dwsched FILE_UPLOAD INSERT", time),
        ("dwsched FILE_UPLOAD TRUNCATE_LOAD", truncating),
    ] {
        println!(
            "{name:<46} {:>8.0} rows/s {seconds:>7.2} s {:>9.0}% {:>9.0}%",
            rate(seconds),
            100.0 * narrow / seconds,
            100.0 * wide / seconds
        );
    }
    println!("\nrows in the target: {loaded} (medians of {RUNS} rounds)");
    println!("dwsched node peak memory, one INSERT on a fresh node:");
    for (format, sizes) in peaks {
        let shown: Vec<String> = sizes
            .iter()
            .map(|(rows, peak)| format!("{peak:>4.0} MiB for {rows} rows"))
            .collect();
        println!("  {format:<5} {}", shown.join(", "));
    }
    exec(&mut conn, &format!("DROP SCHEMA {schema} CASCADE")).await;
    let _ = std::fs::remove_dir_all(&dir);
}
