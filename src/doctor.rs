//! `dwsched doctor`: checks what a node needs, one `OK` / `WARN` / `FAIL` line each, and
//! exits 1 when anything fails. It reads; it changes nothing.

use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use dwsched_flow::ConnectionSpec;
use dwsched_schedule::ScheduleParser;
use dwsched_store::Store;

use crate::config::{self, Flags, Resolver, Settings};

/// How long one connection may take to answer.
const CONNECTION_CHECK: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Report {
    failures: usize,
    warnings: usize,
}

impl Report {
    fn ok(&mut self, what: &str) {
        println!("OK    {what}");
    }

    fn warn(&mut self, what: &str) {
        self.warnings += 1;
        println!("WARN  {what}");
    }

    fn fail(&mut self, what: &str) {
        self.failures += 1;
        println!("FAIL  {what}");
    }
}

pub async fn run(flags: &Flags) -> ExitCode {
    let mut report = Report::default();
    let env = config::process_env;
    match Resolver::new(flags, &env).resolve() {
        Ok(settings) => {
            report.ok(&format!("configuration: {}", settings.describe()));
            check_with(&settings, &mut report).await;
        }
        Err(err) => report.fail(&format!("configuration: {err}")),
    }
    println!("{} failed, {} warnings", report.failures, report.warnings);
    if report.failures > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

async fn check_with(settings: &Settings, report: &mut Report) {
    report.ok(&format!(
        "default zone {} (now {} there)",
        settings.timezone,
        Utc::now()
            .with_timezone(&settings.timezone)
            .format("%Y-%m-%d %H:%M %Z")
    ));
    check_log_dir(settings, report);
    let options = dwsched_store::StoreOptions::new(settings.database_url.clone())
        .schema(settings.schema.clone());
    let store = match dwsched_store::open(&options).await {
        Ok(store) => {
            report.ok(&format!(
                "database: {} reachable at {}",
                settings.backend.name(),
                dwsched_store::redact_url(&settings.database_url)
            ));
            store
        }
        Err(err) => return report.fail(&format!("database: {err}")),
    };
    match store.check_schema().await {
        Ok(()) => report.ok(&format!(
            "schema: version {} (this build's)",
            dwsched_store::schema::latest_version()
        )),
        // Not initialised, too new, or unreadable: each says what to do.
        Err(err) => return report.fail(&format!("schema: {err}")),
    }
    check_connections(&*store, report).await;
    check_mapping_jobs(&*store, report).await;
    check_schedules(&*store, settings, report).await;
    check_upload_files(&*store, report).await;
    check_nodes(&*store, settings, report).await;
}

/// DWTOOL's UI saves, as an upload's `FLPTH`, the preview copy it made of the uploaded
/// file (`data/file_uploads/tmp…`), which holds only its first rows: a schedule that
/// reads it loads a fraction of the data and reports success.
async fn check_upload_files(store: &dyn Store, report: &mut Report) {
    let files = match store.upload_files().await {
        Ok(files) => files,
        Err(err) => return report.fail(&format!("file uploads: {err}")),
    };
    let mut previews = 0;
    for (flupldref, path) in &files {
        let Some(path) = path.as_deref() else {
            continue;
        };
        if is_preview_copy(path) {
            previews += 1;
            report.warn(&format!(
                "file upload {flupldref}: FLPTH {path} is a preview copy the DWTOOL UI saved, holding only the first rows of the uploaded file; point FLPTH at the real file"
            ));
        }
    }
    if previews == 0 {
        report.ok(&format!(
            "file uploads: {}, none reading a preview copy",
            files.len()
        ));
    }
}

/// Whether `path` is one of the DWTOOL UI's preview copies: a `tmp…` file in a
/// `data/file_uploads` directory.
fn is_preview_copy(path: &str) -> bool {
    let normal = path.replace('\\', "/");
    let mut parts = normal.rsplit('/');
    let (Some(file), Some(folder), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    file.starts_with("tmp") && folder == "file_uploads" && data == "data"
}

fn check_log_dir(settings: &Settings, report: &mut Report) {
    let dir = &settings.log_dir;
    let probe = dir.join(format!(".dwsched-doctor-{}", std::process::id()));
    let writable = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&probe, b"ok"));
    let _ = std::fs::remove_file(&probe);
    match writable {
        Ok(()) => report.ok(&format!("log directory {} is writable", dir.display())),
        Err(err) => report.warn(&format!(
            "log directory {} (DWSCHED_LOG_DIR) cannot be written: {err}; command steps will fail",
            dir.display()
        )),
    }
}

async fn check_connections(store: &dyn Store, report: &mut Report) {
    let connections = match store.list_connections().await {
        Ok(connections) => connections,
        Err(err) => return report.fail(&format!("connections: {err}")),
    };
    if connections.is_empty() {
        report.ok("connections: none registered (only command steps can run)");
    }
    for row in connections.iter().filter(|c| c.current) {
        if row
            .passwd
            .as_deref()
            .is_some_and(|p| !p.is_empty() && !p.starts_with("env:"))
        {
            report.warn(&format!(
                "connection '{}' keeps a plain-text password in DMS_DBCONDTLS; register it with --password env:VARIABLE",
                row.connm
            ));
        }
        let spec = match ConnectionSpec::from_row(row) {
            Ok(spec) => spec,
            Err(err) => {
                report.fail(&err);
                continue;
            }
        };
        match tokio::time::timeout(CONNECTION_CHECK, spec.check()).await {
            Ok(Ok(())) => report.ok(&format!(
                "connection '{}' ({}) is reachable",
                spec.name, spec.place
            )),
            Ok(Err(err)) => report.fail(&err),
            Err(_) => report
                .fail(&spec.error(format!("no answer within {} s", CONNECTION_CHECK.as_secs()))),
        }
    }
}

/// The `dwtool check` summary, when the database holds DWTOOL mapping jobs.
async fn check_mapping_jobs(store: &dyn Store, report: &mut Report) {
    let reports = match dwsched_service::dwtool::check(store, None).await {
        Ok(reports) => reports,
        Err(err) => return report.fail(&format!("mapping jobs: {err}")),
    };
    if reports.is_empty() {
        return;
    }
    let count = |verdict: &str| reports.iter().filter(|r| r.verdict() == verdict).count();
    let summary = format!(
        "mapping jobs: {} OK, {} WARN, {} FAIL (details: dwsched dwtool check)",
        count("OK"),
        count("WARN"),
        count("FAIL")
    );
    match (count("FAIL"), count("WARN")) {
        (0, 0) => report.ok(&summary),
        (0, _) => report.warn(&summary),
        _ => {
            report.fail(&summary);
            for failed in reports.iter().filter(|r| r.verdict() == "FAIL") {
                println!("      {failed}");
            }
        }
    }
}

async fn check_schedules(store: &dyn Store, settings: &Settings, report: &mut Report) {
    let rows = match store.list_schedules(true).await {
        Ok(rows) => rows,
        Err(err) => return report.fail(&format!("schedules: {err}")),
    };
    let calendars = match store.list_calendars().await {
        Ok(calendars) => calendars,
        Err(err) => return report.fail(&format!("business calendars: {err}")),
    };
    check_calendars(&calendars, &rows, settings, report);
    let mut parser = ScheduleParser::with_records(&calendars);
    let mut invalid = 0;
    for row in &rows {
        if let Err(err) = parser.parse(row, settings.timezone) {
            invalid += 1;
            report.fail(&format!(
                "schedule {} of {} cannot be scheduled: {err}",
                row.jobschid, row.mapref
            ));
        } else if let Some(problem) = &row.scherr {
            invalid += 1;
            report.fail(&format!(
                "schedule {} of {}: {problem}",
                row.jobschid, row.mapref
            ));
        }
    }
    if invalid == 0 {
        report.ok(&format!("schedules: {} enabled, all valid", rows.len()));
    }
}

/// A calendar with no holiday in the coming year is the usual sign that nobody loaded
/// the new year's dates; one that cannot be read fails the schedules that name it.
fn check_calendars(
    calendars: &[dwsched_model::CalendarRecord],
    schedules: &[dwsched_model::ScheduleRow],
    settings: &Settings,
    report: &mut Report,
) {
    if calendars.is_empty() {
        return;
    }
    let today = Utc::now().with_timezone(&settings.timezone).date_naive();
    let stale = dwsched_service::calendars::without_coming_holidays(calendars, today);
    for name in &stale {
        let users = schedules
            .iter()
            .filter(|s| s.calnm.as_deref().map(str::trim) == Some(name.as_str()))
            .count();
        report.warn(&format!(
            "calendar {name}: no holidays from {today} to a year later ({users} enabled schedules use it); load the coming year's with `dwsched calendar import {name} FILE`"
        ));
    }
    if stale.is_empty() {
        report.ok(&format!(
            "business calendars: {}, each with holidays in the coming year",
            calendars.len()
        ));
    }
}

async fn check_nodes(store: &dyn Store, settings: &Settings, report: &mut Report) {
    let lease = chrono::Duration::from_std(settings.lease).unwrap_or(chrono::Duration::seconds(30));
    let now = Utc::now();
    let nodes = match store.list_nodes().await {
        Ok(nodes) => nodes,
        Err(err) => return report.fail(&format!("nodes: {err}")),
    };
    let live: Vec<&str> = nodes
        .iter()
        .filter(|n| n.heartbeat_at.is_some_and(|at| now - at <= lease))
        .map(|n| n.node_id.as_str())
        .collect();
    let leader = store
        .get_lease(dwsched_service::SCHEDULER_LEASE)
        .await
        .ok()
        .flatten()
        .filter(|l| l.lease_until.is_some_and(|until| until >= now))
        .and_then(|l| l.holder);
    match (live.len(), leader) {
        (0, _) => {
            report.warn("nodes: none is running; nothing fires or runs until `dwsched run` starts")
        }
        (_, None) => report.warn(&format!(
            "nodes: {} live ({}), but none holds the scheduler lease yet",
            live.len(),
            live.join(", ")
        )),
        (_, Some(leader)) => report.ok(&format!(
            "nodes: {} live ({}); {leader} fires the schedules",
            live.len(),
            live.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_copies_are_told_apart() {
        assert!(is_preview_copy("data/file_uploads/tmpbq3v90uj.csv"));
        assert!(is_preview_copy(
            "/opt/dwtool/backend/data/file_uploads/tmp_x.xlsx"
        ));
        assert!(is_preview_copy("D:\\dwtool\\data\\file_uploads\\tmpa1.csv"));
        assert!(!is_preview_copy("/srv/dw/inbound/customers.csv"));
        assert!(!is_preview_copy("data/file_uploads/customers.csv"));
    }
}
