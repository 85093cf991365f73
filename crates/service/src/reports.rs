//! A worker's `REPORT` request (SPEC §7.2): the report's SQL read on its connection and
//! streamed into the file of its format, the file delivered, and the run recorded in
//! `DMS_RPRT_RUN` as well as in `DMS_PRCLOG`, so that its mapref (`REPORT:<id>`) is
//! kept to one run at a time, stopped and rescued as a job's is.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::{DateTime, Utc};
use dwsched_flow::{Connections, QueryError, ReadOnlyQuery, StreamedRows, Value};
use dwsched_model::{
    Connection, NewReportRun, ReportDefinition, ReportPayload, Request, RequestStatus, RunStatus,
};
use dwsched_report::{Format, ReportFile};
use serde_json::json;
use tokio::sync::mpsc;

use crate::health::retry;
use crate::report_delivery::{
    ReportMail, deliver_file, report_file_name, report_path, send_report, temporary_file,
};
use crate::resolve::{connection_by_id, sole_connection};
use crate::runner::{Disposition, Ended, flowless_end, flowless_run, open_run};
use crate::state::{ActiveRun, Shared};

/// The request's result when it fails: `{"message": …}`, as the original writes it.
fn failed(message: impl Into<String>) -> Disposition {
    Disposition::Complete(RequestStatus::Failed, json!({ "message": message.into() }))
}

/// Where the report goes.
enum Destination {
    File,
    Email { recipients: String },
}

/// What a run asks for, read from its payload before anything is recorded.
struct Order {
    rprtid: i64,
    format: Format,
    /// The format as the run records it (`OTPT_FMT`).
    format_name: String,
    destination: Result<Destination, String>,
    payload: ReportPayload,
}

/// How the report's production ended.
enum Produced {
    Delivered {
        rows: u64,
        result: serde_json::Value,
    },
    Failed(String),
    Stopped(String),
}

pub(crate) async fn work(
    shared: &Shared,
    request: &Request,
    active: &ActiveRun,
) -> (Disposition, Option<Ended>) {
    let mapref = request.mapref.as_str();
    let payload = match ReportPayload::parse(request.payload.as_deref()) {
        Ok(payload) => payload,
        Err(err) => return (failed(format!("report request of {mapref}: {err}")), None),
    };
    let Some(rprtid) = payload
        .report_id
        .or_else(|| dwsched_model::report_of_mapref(mapref))
    else {
        return (
            failed(format!(
                "the request names no report: its payload has no reportId and its mapref '{mapref}' is not REPORT:<id>"
            )),
            None,
        );
    };
    let format_name = payload
        .output_format
        .as_deref()
        .unwrap_or("CSV")
        .to_ascii_uppercase();
    let Some(format) = Format::parse(&format_name) else {
        return (
            failed(format!(
                "Unsupported output format: {format_name} (report {rprtid}; dwsched writes {})",
                Format::NAMES
            )),
            None,
        );
    };
    let started_at = Utc::now();
    let zone = shared.config.default_zone;
    let local_start = started_at.with_timezone(&zone).naive_local();
    let order = Order {
        rprtid,
        format,
        format_name,
        destination: destination_of(&payload),
        payload,
    };
    let new_run = flowless_run(
        shared,
        request,
        format!("report={rprtid} | format={}", order.format_name),
        started_at,
        local_start.date(),
    );
    let prcid = match open_run(shared, request, active, &new_run).await {
        None => return (Disposition::Abandon, None),
        Some(Err(not_opened)) => {
            let message = not_opened.msg.unwrap_or_default();
            return (failed(format!("report {rprtid}: {message}")), None);
        }
        Some(Ok(prcid)) => prcid,
    };
    let clock = Instant::now();
    let parameters = serde_json::Value::Object(order.payload.parameters.clone());
    let record = NewReportRun {
        rprtid,
        request_id: request.request_id.clone(),
        triggered_by: order
            .payload
            .requested_by
            .clone()
            .unwrap_or_else(|| "system".into()),
        format: order.format_name.clone(),
        parameters: overrides(&parameters, None),
        started_at,
    };
    let give_up = &shared.shutdown.immediate;
    if request.attempts > 1 {
        // An earlier attempt's node died with the run RUNNING: that run failed.
        let earlier = overrides(
            &parameters,
            Some("the node running this report stopped before it ended; the request was run again"),
        );
        match shared
            .store
            .fail_running_report_runs(&request.request_id, &earlier, started_at)
            .await
        {
            Ok(0) => {}
            Ok(count) => tracing::warn!(
                report = rprtid,
                "closed {count} run(s) of report {rprtid} left RUNNING by an earlier attempt of request {}",
                request.request_id
            ),
            Err(err) => tracing::warn!("{err}"),
        }
    }
    let produced = match retry(&shared.health, "recording a report run", give_up, || {
        shared.store.open_report_run(&record)
    })
    .await
    {
        None => return (Disposition::Abandon, None),
        Some(Err(err)) => (
            None,
            Produced::Failed(format!("cannot record the run in DMS_RPRT_RUN: {err}")),
        ),
        Some(Ok(runid)) => {
            let produced = produce(shared, active, &order, local_start).await;
            (Some(runid), produced)
        }
    };
    let (runid, produced) = produced;
    let produced = match produced {
        Produced::Delivered { rows, mut result } => {
            if let (Some(runid), Some(object)) = (runid, result.as_object_mut()) {
                object.insert("runId".into(), json!(runid));
            }
            Produced::Delivered { rows, result }
        }
        other => other,
    };
    if let Some(runid) = runid {
        record_end(shared, runid, &produced, parameters).await;
    }
    let (status, msg, rows) = match &produced {
        Produced::Delivered { rows, .. } => (RunStatus::Completed, None, *rows),
        Produced::Failed(message) => (RunStatus::Failed, Some(message.clone()), 0),
        Produced::Stopped(message) => (RunStatus::Stopped, Some(message.clone()), 0),
    };
    let rows = i64::try_from(rows).unwrap_or(i64::MAX);
    let totals = dwsched_flow::RowTotals {
        source: rows,
        target: rows,
        errors: 0,
    };
    let ended = flowless_end(
        shared,
        request,
        prcid,
        local_start.date(),
        status,
        msg,
        totals,
        Vec::new(),
        clock.elapsed().as_secs_f64(),
    );
    let disposition = match produced {
        Produced::Delivered { result, .. } => Disposition::Complete(RequestStatus::Done, result),
        Produced::Stopped(_) if active.requeue.load(Ordering::SeqCst) => Disposition::Requeue,
        Produced::Stopped(message) | Produced::Failed(message) => failed(message),
    };
    (disposition, Some(ended))
}

/// The destination a payload asks for, or why it cannot be used (recorded as the run's
/// failure).
fn destination_of(payload: &ReportPayload) -> Result<Destination, String> {
    match payload
        .destination
        .as_deref()
        .unwrap_or("FILE")
        .to_ascii_uppercase()
        .as_str()
    {
        "FILE" => Ok(Destination::File),
        "EMAIL" => match &payload.email {
            Some(recipients) => Ok(Destination::Email {
                recipients: recipients.clone(),
            }),
            None => Err("Email address is required for EMAIL destination".into()),
        },
        other => Err(format!(
            "Unsupported destination: {other} (dwsched delivers to FILE or EMAIL)"
        )),
    }
}

/// Reads the report's definition, runs its SQL into its file and delivers it.
async fn produce(
    shared: &Shared,
    active: &ActiveRun,
    order: &Order,
    local_start: chrono::NaiveDateTime,
) -> Produced {
    let rprtid = order.rprtid;
    let destination = match &order.destination {
        Ok(destination) => destination,
        Err(message) => return Produced::Failed(message.clone()),
    };
    let definition = match shared.store.report_definition(rprtid).await {
        Ok(Some(definition)) => definition,
        Ok(None) => {
            return Produced::Failed(format!("Report {rprtid} not found in DMS_RPRT_DEF"));
        }
        Err(err) => return Produced::Failed(format!("cannot read report {rprtid}: {err}")),
    };
    let Some(source) = definition
        .source_sql
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    else {
        let why = match definition.sqlsrcid {
            Some(id) => {
                format!("its SQLSRCID {id} has no current DMS_MAPRSQL row, nor does its MAPRSQLCD")
            }
            None => "it has neither SQLSRCID nor ADHCSQL".to_string(),
        };
        return Produced::Failed(format!("SQL source not found for report {rprtid}: {why}"));
    };
    let sql = dwsched_report::final_sql(source, &definition.fields)
        .unwrap_or_else(|| source.trim().trim_end_matches(';').to_string());
    let connections = match report_connection(shared, &definition).await {
        Ok(connections) => connections,
        Err(message) => return Produced::Failed(message),
    };
    let file_name = report_file_name(&definition.name, local_start, order.format);
    let target = match destination {
        Destination::File => Some(report_path(
            order.payload.file_path.as_deref(),
            &shared.config.reports.output_dir,
            &file_name,
        )),
        Destination::Email { .. } => None,
    };
    let file = match temporary_file(target.as_deref()) {
        Ok(file) => file,
        Err(message) => return Produced::Failed(message),
    };
    let binds: BTreeMap<String, Value> = order
        .payload
        .parameters
        .iter()
        .map(|(name, value)| (name.clone(), bind_of(value)))
        .collect();
    let query = ReadOnlyQuery {
        connection: &connections.1,
        sql: &sql,
        binds: &binds,
        time_limit: shared.config.reports.query_time_limit,
    };
    let written = write_report(&connections.0, &query, active, order, &definition, &file).await;
    let rows = match written {
        Ok(rows) => rows,
        Err(QueryError::Stopped) => return Produced::Stopped(active.stop.reason()),
        Err(QueryError::Failed(message)) => {
            return Produced::Failed(format!("report {rprtid}: {message}"));
        }
        Err(QueryError::ConsumerGone) => {
            return Produced::Failed(format!("report {rprtid}: the file writer stopped"));
        }
    };
    match destination {
        Destination::File => {
            let path = target.expect("a FILE report has its path");
            if let Err(message) = deliver_file(file, &path) {
                return Produced::Failed(message);
            }
            tracing::info!(
                report = rprtid,
                rows,
                "report {rprtid} written to {}",
                path.display()
            );
            Produced::Delivered {
                rows,
                result: json!({
                    "success": true,
                    "destination": "FILE",
                    "filePath": path.display().to_string(),
                    "filename": file_name,
                    "rowCount": rows,
                }),
            }
        }
        Destination::Email { recipients } => {
            let mail = ReportMail {
                report_name: &definition.name,
                recipients,
                file_name: &file_name,
                format: order.format,
                rows,
                generated_at: local_start,
            };
            let sent = tokio::select! {
                sent = send_report(&shared.config.reports.smtp, &mail, file.path()) => sent,
                () = active.stop.stopped() => return Produced::Stopped(active.stop.reason()),
            };
            match sent {
                Ok(()) => {
                    tracing::info!(
                        report = rprtid,
                        rows,
                        "report {rprtid} sent to {recipients}"
                    );
                    Produced::Delivered {
                        rows,
                        result: json!({
                            "success": true,
                            "destination": "EMAIL",
                            "recipients": recipients,
                            "filename": file_name,
                            "rowCount": rows,
                        }),
                    }
                }
                Err(message) => Produced::Failed(message),
            }
        }
    }
}

/// Streams the query's rows into the report file; the row count. The file is written on
/// a blocking thread while the query reads, a few batches ahead of it.
async fn write_report(
    connections: &Connections,
    query: &ReadOnlyQuery<'_>,
    active: &ActiveRun,
    order: &Order,
    definition: &ReportDefinition,
    file: &tempfile::NamedTempFile,
) -> Result<u64, QueryError> {
    let out = file
        .as_file()
        .try_clone()
        .map_err(|e| QueryError::Failed(format!("cannot write the report file: {e}")))?;
    let (sender, mut receiver) = mpsc::channel::<StreamedRows>(4);
    let (format, title) = (order.format, definition.name.clone());
    let writer = tokio::task::spawn_blocking(move || -> Result<u64, String> {
        let mut report: Option<ReportFile> = None;
        let mut out = Some(out);
        while let Some(message) = receiver.blocking_recv() {
            match message {
                StreamedRows::Columns(columns) => {
                    let out = out.take().ok_or("the columns came twice")?;
                    report = Some(ReportFile::create(format, &title, &columns, out)?);
                }
                StreamedRows::Rows(rows) => {
                    let report = report.as_mut().ok_or("rows came before the columns")?;
                    for row in &rows {
                        report.write_row(row)?;
                    }
                }
            }
        }
        report.ok_or("the query gave no columns")?.finish()
    });
    let read = connections.read_only(query, &active.stop, sender).await;
    let written = writer
        .await
        .map_err(|e| format!("the report's writer failed: {e}"))
        .and_then(|written| written);
    match (read, written) {
        (Ok(_), Ok(rows)) => Ok(rows),
        (Err(QueryError::ConsumerGone), Err(message)) | (Ok(_), Err(message)) => {
            Err(QueryError::Failed(format!(
                "writing the {} file failed: {message}",
                order.format_name
            )))
        }
        (Err(err), _) => Err(err),
    }
}

/// The connection the report's SQL runs on: `DBCNID`, else the source's `SQLCONID`
/// (both `DMS_DBCONDTLS` rows by `CONID`), else the metadata database; with its name.
async fn report_connection(
    shared: &Shared,
    definition: &ReportDefinition,
) -> Result<(Connections, String), String> {
    let what = format!("report {}", definition.rprtid);
    let row = match definition.conid {
        Some(conid) => connection_by_id(shared, conid, &what).await?,
        None => Connection {
            conid: 0,
            connm: "metadata database".into(),
            dbtyp: None,
            dbhost: None,
            dbport: None,
            dbsrvnm: None,
            usrnm: None,
            passwd: None,
            constr: Some(shared.config.reports.metadata_url.clone()),
            schnm: shared.config.reports.metadata_schema.clone(),
            current: true,
        },
    };
    let (connections, name, _) = sole_connection(shared, &row, &what)?;
    Ok((connections, name))
}

/// A request parameter as a bind value: strings as text, numbers as numbers, `true`
/// and `false` as booleans, anything else as its JSON text.
fn bind_of(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::String(s) => Value::Text(s.clone()),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        other => Value::Text(other.to_string()),
    }
}

/// `PRM_OVRRDS`: the request's parameters and the run's message, as the original's
/// `json.dumps` writes them.
fn overrides(parameters: &serde_json::Value, message: Option<&str>) -> String {
    let message = message.map_or(serde_json::Value::Null, |m| json!(m));
    format!(
        "{{\"params\": {}, \"message\": {}}}",
        dwsched_report::python_json(parameters),
        dwsched_report::python_json(&message)
    )
}

/// Records the end of the run in `DMS_RPRT_RUN`.
async fn record_end(
    shared: &Shared,
    runid: i64,
    produced: &Produced,
    parameters: serde_json::Value,
) {
    let (status, rows, message) = match produced {
        Produced::Delivered { rows, .. } => ("SUCCESS", Some(*rows), None),
        Produced::Failed(message) => ("FAILED", None, Some(message.clone())),
        Produced::Stopped(message) => ("FAILED", None, Some(format!("stopped: {message}"))),
    };
    let overrides = overrides(&parameters, message.as_deref());
    let rows = rows.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let give_up = &shared.shutdown.immediate;
    let now: DateTime<Utc> = Utc::now();
    match retry(
        &shared.health,
        "recording a report run's end",
        give_up,
        || {
            shared
                .store
                .finish_report_run(runid, status, rows, &overrides, now)
        },
    )
    .await
    {
        Some(Ok(true)) => {}
        Some(Ok(false)) => {
            tracing::warn!(
                "report run {runid} is no longer in DMS_RPRT_RUN; its end is not recorded"
            )
        }
        Some(Err(err)) => tracing::error!("could not record the end of report run {runid}: {err}"),
        None => tracing::error!(
            "report run {runid} ended {status} but the database stayed unreachable; DMS_RPRT_RUN still says RUNNING"
        ),
    }
}
