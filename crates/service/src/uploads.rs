//! A worker's `FILE_UPLOAD` request (SPEC §7.3): the configuration's file read as text
//! and checked whole, then loaded into its target in one transaction (emptied first
//! for `TRUNCATE_LOAD`, only once the whole file has parsed), rejected rows recorded
//! with their file line, and the run recorded in `DMS_FLUPLD_RUN` and `DMS_PRCLOG`.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use dwsched_flow::{Connections, DbKind, LoadMode as TargetMode, LoadRows, QueryError, TableLoad};
use dwsched_model::{
    DatatypeParam, LoadMode, Request, RequestStatus, RunStatus, UploadColumn, UploadDefinition,
    UploadPayload, UploadRowError, UploadRunRecord, is_valid_identifier,
};
use dwsched_upload::{
    KEPT_ON_UPDATE, Row, UploadPlan, ValueKind, convert, create_table_sql, open_file, sql_type,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::health::retry;
use crate::resolve::{connection_by_id, sole_connection};
use crate::runner::{Disposition, Ended, flowless_end, flowless_run, open_run};
use crate::state::{ActiveRun, Shared};

/// What happens to an upload's file around a run (`UPLOAD_FILE_LIFECYCLE`): by
/// default nothing, and the next run reads it again, as the original does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileLifecycle {
    /// `skip-unchanged`: a file whose SHA-256 equals the last loaded one's is not
    /// loaded again (the run records the skip).
    pub skip_unchanged: bool,
    /// `archive`: a loaded file moves to `archive/` beside it, its name stamped with
    /// the run's time.
    pub archive: bool,
}

impl FileLifecycle {
    /// Reads the setting: `reread`, or `skip-unchanged` and/or `archive`, separated by
    /// commas.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lifecycle = Self::default();
        for part in text.split(',').map(|p| p.trim().to_ascii_lowercase()) {
            match part.as_str() {
                "reread" | "" => {}
                "skip-unchanged" => lifecycle.skip_unchanged = true,
                "archive" => lifecycle.archive = true,
                other => {
                    return Err(format!(
                        "'{other}' is not a file lifecycle; expected reread, skip-unchanged, archive or skip-unchanged,archive"
                    ));
                }
            }
        }
        Ok(lifecycle)
    }
}

/// Rows per batch sent to the target.
const BATCH_ROWS: usize = 10_000;
/// Rejected rows kept for `DMS_FLUPLD_ERR` and the result; further ones are counted.
const ERRORS_KEPT: usize = 10_000;

/// What a pass over a file read: its records, the bad ones, and the good rows it
/// handed on.
#[derive(Default)]
struct Fed {
    processed: i64,
    failed: i64,
    errors: Vec<UploadRowError>,
    sent: usize,
    /// Why the file could not be read to its end, when it could not.
    unreadable: Option<String>,
}

/// Reads every record through `plan`: each good row's mapped values go to `good` with
/// its line (it says whether to go on), each bad one is counted and kept (up to
/// [`ERRORS_KEPT`]).
fn feed(
    rows: impl Iterator<Item = Row>,
    plan: &UploadPlan,
    mut good: impl FnMut(Vec<dwsched_flow::Value>, u64) -> bool,
) -> Fed {
    let mut fed = Fed::default();
    for row in rows {
        fed.processed += 1;
        let problem = match row {
            Row::Bad { line, reason } => Some((line, reason, "{}".to_string())),
            Row::Unreadable(reason) => {
                fed.processed -= 1;
                fed.unreadable = Some(reason);
                break;
            }
            Row::Record(record) => match plan.row(&record.fields) {
                Ok(values) => {
                    fed.sent += 1;
                    if !good(values, record.line) {
                        break;
                    }
                    None
                }
                Err(reason) => Some((record.line, reason, plan.record_json(&record.fields))),
            },
        };
        if let Some((line, message, data)) = problem {
            fed.failed += 1;
            if fed.errors.len() < ERRORS_KEPT {
                fed.errors.push(UploadRowError {
                    line: i64::try_from(line).unwrap_or(i64::MAX),
                    data,
                    code: None,
                    message,
                });
            }
        }
    }
    fed
}

/// The audit values every row of a run ends with, and their COPY text, made once.
#[derive(Clone)]
struct AuditTail {
    values: Vec<dwsched_flow::Value>,
    /// The values as the end of a line of COPY text, line end included.
    text: Vec<u8>,
}

impl AuditTail {
    fn new(values: Vec<dwsched_flow::Value>) -> Self {
        let mut text = Vec::new();
        dwsched_flow::copy_line(&values, &mut text);
        Self { values, text }
    }

    /// Appends `mapped` and the audit values as a line of COPY text.
    fn copy_line(&self, mapped: &[dwsched_flow::Value], out: &mut Vec<u8>) {
        if !mapped.is_empty() {
            dwsched_flow::copy_line(mapped, out);
            // The mapped values' line end becomes the separator before the audit's.
            out.pop();
            out.push(b'\t');
        }
        out.extend_from_slice(&self.text);
    }

    /// `mapped` followed by the audit values.
    fn row(&self, mut mapped: Vec<dwsched_flow::Value>) -> Vec<dwsched_flow::Value> {
        mapped.extend(self.values.iter().cloned());
        mapped
    }
}

/// Good rows on their way to the load, sent [`BATCH_ROWS`] at a time: COPY text for
/// PostgreSQL, typed values for other targets.
struct Outbox {
    sender: mpsc::Sender<LoadRows>,
    audit: AuditTail,
    /// What each column holds, for a target that takes values; `None` for COPY text.
    kinds: Option<Vec<ValueKind>>,
    rows: Vec<Vec<dwsched_flow::Value>>,
    text: Vec<u8>,
    ends: Vec<usize>,
    tags: Vec<i64>,
    /// The load has stopped taking rows.
    gone: bool,
}

impl Outbox {
    fn new(
        sender: mpsc::Sender<LoadRows>,
        audit: AuditTail,
        kinds: Option<Vec<ValueKind>>,
    ) -> Self {
        Self {
            sender,
            audit,
            kinds,
            rows: Vec::new(),
            text: Vec::new(),
            ends: Vec::new(),
            tags: Vec::with_capacity(BATCH_ROWS),
            gone: false,
        }
    }

    /// Adds a row (its mapped values) from line `line` of the file; false once the
    /// load has stopped.
    fn push(&mut self, mapped: Vec<dwsched_flow::Value>, line: u64) -> bool {
        if self.kinds.is_some() {
            self.rows.push(self.audit.row(mapped));
        } else {
            self.audit.copy_line(&mapped, &mut self.text);
            self.ends.push(self.text.len());
        }
        self.tag(line)
    }

    /// Adds a row already written as a line of COPY text (from a spool).
    fn push_text(&mut self, text: &[u8], line: u64) -> bool {
        match &self.kinds {
            None => {
                self.text.extend_from_slice(text);
                self.ends.push(self.text.len());
            }
            Some(kinds) => {
                let values = dwsched_flow::parse_copy_line(text)
                    .into_iter()
                    .zip(kinds)
                    .map(|(value, kind)| match value {
                        // A value this run wrote reads back as it was; were it not to,
                        // the target would judge the text.
                        dwsched_flow::Value::Text(text) if *kind != ValueKind::Text => {
                            convert(&text, *kind).unwrap_or(dwsched_flow::Value::Text(text))
                        }
                        other => other,
                    })
                    .collect();
                self.rows.push(values);
            }
        }
        self.tag(line)
    }

    fn tag(&mut self, line: u64) -> bool {
        self.tags.push(i64::try_from(line).unwrap_or(i64::MAX));
        if self.tags.len() >= BATCH_ROWS {
            self.flush();
        }
        !self.gone
    }

    /// Sends what is gathered.
    fn flush(&mut self) {
        if self.gone || self.tags.is_empty() {
            return;
        }
        let tags = std::mem::replace(&mut self.tags, Vec::with_capacity(BATCH_ROWS));
        let rows = if self.kinds.is_some() {
            LoadRows::Rows {
                rows: std::mem::take(&mut self.rows),
                tags,
            }
        } else {
            // The next batch will be about as long as this one.
            let capacity = self.text.len();
            LoadRows::CopyText {
                text: std::mem::replace(&mut self.text, Vec::with_capacity(capacity)),
                ends: std::mem::replace(&mut self.ends, Vec::with_capacity(BATCH_ROWS)),
                tags,
            }
        };
        self.gone = self.sender.blocking_send(rows).is_err();
    }

    /// Sends the rest and ends the load, which commits it.
    fn end(mut self) {
        self.flush();
        if !self.gone {
            let _ = self.sender.blocking_send(LoadRows::End);
        }
    }
}

/// The checked rows of a `TRUNCATE_LOAD`, kept in an unnamed temporary file until the
/// target is emptied: each a line of COPY text after its file line and a tab.
struct Spool {
    file: std::io::BufWriter<std::fs::File>,
    audit: AuditTail,
    line: Vec<u8>,
}

impl Spool {
    fn new(audit: AuditTail) -> Result<Self, String> {
        let file = tempfile::tempfile().map_err(|e| {
            format!("cannot make a temporary file for the checked rows (TMPDIR): {e}")
        })?;
        Ok(Self {
            file: std::io::BufWriter::with_capacity(256 * 1024, file),
            audit,
            line: Vec::new(),
        })
    }

    /// Adds a row (its mapped values) from line `line` of the file.
    fn push(&mut self, line: u64, mapped: &[dwsched_flow::Value]) -> Result<(), String> {
        use std::io::Write as _;
        self.line.clear();
        self.line
            .extend_from_slice(itoa::Buffer::new().format(line).as_bytes());
        self.line.push(b'\t');
        self.audit.copy_line(mapped, &mut self.line);
        self.file
            .write_all(&self.line)
            .map_err(|e| format!("writing the checked rows to a temporary file failed: {e}"))
    }

    /// The spool, written out and ready to be read from its start.
    fn finish(self) -> Result<std::fs::File, String> {
        use std::io::Seek as _;
        let mut file = self
            .file
            .into_inner()
            .map_err(|e| format!("writing the checked rows to a temporary file failed: {e}"))?;
        file.rewind()
            .map_err(|e| format!("reading the checked rows back failed: {e}"))?;
        Ok(file)
    }
}

/// The rows of a spool: each row's file line and its COPY text (with its line end).
fn spooled_rows(file: std::fs::File) -> impl Iterator<Item = Result<(u64, Vec<u8>), String>> {
    use std::io::BufRead as _;
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, file);
    let mut line = Vec::new();
    std::iter::from_fn(move || {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => None,
            Ok(_) => {
                let number = line
                    .iter()
                    .position(|b| *b == b'\t')
                    .and_then(|tab| Some((tab, std::str::from_utf8(&line[..tab]).ok()?)))
                    .and_then(|(tab, number)| Some((tab, number.parse::<u64>().ok()?)));
                Some(match number {
                    Some((tab, number)) => Ok((number, line[tab + 1..].to_vec())),
                    None => Err("the temporary file of checked rows is damaged".into()),
                })
            }
            Err(e) => Some(Err(format!("reading the checked rows back failed: {e}"))),
        }
    })
}

/// Where the load's rows come from: the file itself, or the spool of a check that
/// read it whole (with what the check found).
enum Source {
    File(Box<dyn Iterator<Item = Row> + Send>),
    Spool(Fed, std::fs::File),
}

/// What a run did.
struct Outcome {
    processed: i64,
    loaded: i64,
    failed: i64,
    errors: Vec<UploadRowError>,
    table_created: bool,
    /// Why the run failed as a whole, if it did.
    failure: Option<String>,
    stopped: bool,
    /// Not loaded, by the lifecycle's choice: the reason.
    skipped: Option<String>,
    load_mode: LoadMode,
    file_path: Option<String>,
}

impl Outcome {
    fn failed(message: impl Into<String>, load_mode: LoadMode) -> Self {
        Self {
            processed: 0,
            loaded: 0,
            failed: 0,
            errors: Vec::new(),
            table_created: false,
            failure: Some(message.into()),
            stopped: false,
            skipped: None,
            load_mode,
            file_path: None,
        }
    }

    /// `SUCCESS`, `PARTIAL` or `FAILED`: nothing loaded is a failure, also from a file
    /// that held rows only the database or the mappings refused.
    fn status(&self) -> &'static str {
        if self.skipped.is_some() && self.failure.is_none() {
            "SUCCESS"
        } else if self.failure.is_some() || self.loaded == 0 {
            "FAILED"
        } else if self.failed > 0 {
            "PARTIAL"
        } else {
            "SUCCESS"
        }
    }

    fn message(&self) -> String {
        if let Some(failure) = &self.failure {
            return failure.clone();
        }
        if let Some(skipped) = &self.skipped {
            return skipped.clone();
        }
        if self.loaded == 0 {
            return match self.errors.first() {
                Some(first) => format!(
                    "no row loaded: {} rows failed; the first (line {}): {}",
                    self.failed, first.line, first.message
                ),
                None => "the file has no data rows; nothing was loaded".into(),
            };
        }
        format!(
            "File upload completed successfully. {} rows loaded, {} failed.",
            self.loaded, self.failed
        )
    }
}

pub(crate) async fn work(
    shared: &Shared,
    request: &Request,
    active: &ActiveRun,
) -> (Disposition, Option<Ended>) {
    let mapref = request.mapref.as_str();
    let failed = |message: String| {
        Disposition::Complete(
            RequestStatus::Failed,
            json!({ "success": false, "message": message, "rows_processed": 0,
                "rows_successful": 0, "rows_failed": 0, "errors": [], "table_created": false }),
        )
    };
    let payload = match UploadPayload::parse(request.payload.as_deref()) {
        Ok(payload) => payload,
        Err(err) => {
            return (
                failed(format!("file upload request of {mapref}: {err}")),
                None,
            );
        }
    };
    let Some(flupldref) = payload
        .flupldref
        .clone()
        .or_else(|| dwsched_model::upload_of_mapref(mapref).map(str::to_string))
    else {
        return (
            failed(format!(
                "the request names no file upload: its payload has no flupldref and its mapref '{mapref}' is not FLUPLD:<ref>"
            )),
            None,
        );
    };
    let started_at = Utc::now();
    let local_start = started_at
        .with_timezone(&shared.config.default_zone)
        .naive_local();
    let new_run = flowless_run(
        shared,
        request,
        format!(
            "flupldref={flupldref} | load_mode={}",
            payload.load_mode.as_str()
        ),
        started_at,
        local_start.date(),
    );
    let prcid = match open_run(shared, request, active, &new_run).await {
        None => return (Disposition::Abandon, None),
        Some(Err(not_opened)) => {
            return (
                failed(format!(
                    "file upload {flupldref}: {}",
                    not_opened.msg.unwrap_or_default()
                )),
                None,
            );
        }
        Some(Ok(prcid)) => prcid,
    };
    let clock = Instant::now();
    let outcome = upload(shared, active, &flupldref, &payload, local_start).await;
    let ended_at = Utc::now();
    let status = outcome.status();
    let message = outcome.message();
    let record = UploadRunRecord {
        flupldref: flupldref.clone(),
        started_at,
        ended_at,
        processed: outcome.processed,
        loaded: outcome.loaded,
        failed: outcome.failed,
        status: status.to_string(),
        message: Some(message.chars().take(1000).collect()),
        load_mode: outcome.load_mode.as_str().to_string(),
        file_path: outcome.file_path.clone(),
        user: payload.username.clone(),
    };
    let give_up = &shared.shutdown.immediate;
    let runid = match retry(
        &shared.health,
        "recording a file upload's run",
        give_up,
        || shared.store.record_upload_run(&record, &outcome.errors),
    )
    .await
    {
        None => return (Disposition::Abandon, None),
        Some(Ok(runid)) => Some(runid),
        Some(Err(err)) => {
            tracing::error!(upload = %flupldref, "could not record the run of file upload {flupldref}: {err}");
            None
        }
    };
    tracing::info!(
        upload = %flupldref,
        "file upload {flupldref} ended {status}: {} rows read, {} loaded, {} rejected",
        outcome.processed,
        outcome.loaded,
        outcome.failed
    );
    let run_status = if outcome.stopped {
        RunStatus::Stopped
    } else if status == "FAILED" {
        RunStatus::Failed
    } else {
        RunStatus::Completed
    };
    let msg = (run_status != RunStatus::Completed).then(|| message.clone());
    let totals = dwsched_flow::RowTotals {
        source: outcome.processed,
        target: outcome.loaded,
        errors: outcome.failed,
    };
    let rejected = outcome
        .errors
        .iter()
        .take(100)
        .map(|e| {
            (
                format!("line {} rejected", e.line),
                e.message.clone(),
                format!("LINE={}", e.line),
            )
        })
        .collect();
    let ended = flowless_end(
        shared,
        request,
        prcid,
        local_start.date(),
        run_status,
        msg,
        totals,
        rejected,
        clock.elapsed().as_secs_f64(),
    );
    let shown: Vec<Value> = outcome
        .errors
        .iter()
        .take(100)
        .map(|e| {
            json!({ "row_index": e.line, "row_data": serde_json::from_str::<Value>(&e.data).unwrap_or(Value::Null),
                "error_message": e.message })
        })
        .collect();
    let result = json!({
        "success": status != "FAILED",
        "message": message,
        "rows_processed": outcome.processed,
        "rows_successful": outcome.loaded,
        "rows_failed": outcome.failed,
        "errors": shown,
        "table_created": outcome.table_created,
        "runId": runid,
    });
    let disposition = if outcome.stopped && active.requeue.load(std::sync::atomic::Ordering::SeqCst)
    {
        Disposition::Requeue
    } else if status == "FAILED" {
        Disposition::Complete(RequestStatus::Failed, result)
    } else {
        Disposition::Complete(RequestStatus::Done, result)
    };
    (disposition, Some(ended))
}

/// The run itself: reads the configuration, checks the whole file, makes the target
/// when it is missing, and loads.
async fn upload(
    shared: &Shared,
    active: &ActiveRun,
    flupldref: &str,
    payload: &UploadPayload,
    now: chrono::NaiveDateTime,
) -> Outcome {
    let requested = payload.load_mode;
    let definition = match shared.store.upload_definition(flupldref).await {
        Ok(Some(definition)) => definition,
        Ok(None) => {
            return Outcome::failed(
                format!(
                    "File upload configuration not found: {flupldref} (no DMS_FLUPLD row with CURFLG='Y')"
                ),
                requested,
            );
        }
        Err(err) => {
            return Outcome::failed(
                format!("cannot read file upload {flupldref}: {err}"),
                requested,
            );
        }
    };
    let config = &definition.config;
    // TRNCTFLG='Y' makes an INSERT a TRUNCATE_LOAD, as the original does.
    let load_mode = if requested == LoadMode::Insert && config.truncate {
        LoadMode::TruncateLoad
    } else {
        requested
    };
    let mut outcome = Outcome::failed(String::new(), load_mode);
    outcome.failure = None;
    outcome.file_path = config.flpth.clone();
    let fail = |mut outcome: Outcome, message: String| {
        outcome.failure = Some(message);
        outcome
    };
    let Some(path) = config
        .flpth
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    else {
        return fail(
            outcome,
            format!("file upload {flupldref} has no file (FLPTH is empty)"),
        );
    };
    let path = std::path::PathBuf::from(path);
    if !path.is_file() {
        return fail(outcome, format!("File not found: {}", path.display()));
    }
    let lifecycle = shared.config.upload_files;
    let hash = if lifecycle.skip_unchanged {
        match file_sha256(&path).await {
            Ok(hash) => Some(hash),
            Err(message) => return fail(outcome, message),
        }
    } else {
        None
    };
    if let (Some(hash), Some(last)) = (&hash, &config.last_hash)
        && hash.eq_ignore_ascii_case(last.trim())
    {
        outcome.skipped = Some(format!(
            "skipped: {} is unchanged since its last load (SHA-256 {hash})",
            path.display()
        ));
        return outcome;
    }
    let (connections, connection, kind) = match target_connection(shared, &definition).await {
        Ok(found) => found,
        Err(message) => return fail(outcome, message),
    };
    let backend = match kind {
        DbKind::Postgres => "postgres",
        DbKind::MySql => "mysql",
        DbKind::Sqlite => "sqlite",
    };
    let params: Vec<DatatypeParam> = match shared.store.datatype_params().await {
        Ok(params) => params,
        Err(err) => {
            tracing::warn!("{err}; the target's types follow the type codes alone");
            Vec::new()
        }
    };
    let types = |c: &UploadColumn| sql_type(&c.type_code, &params, backend);
    let table = match target_table(config.trgschm.as_deref(), config.trgtblnm.as_deref(), kind) {
        Ok(table) => table,
        Err(message) => return fail(outcome, format!("file upload {flupldref}: {message}")),
    };

    // The file is opened and its plan made on a blocking thread (a JSON file's columns
    // take a pass over it). TRUNCATE_LOAD empties the target only once the whole file
    // has parsed: that pass reads and converts it all into a spool before the target
    // is touched, and the load reads the spool. The other modes load as they read, in
    // one transaction that a bad file rolls back.
    let header_rows = u64::try_from(config.header_rows.max(0)).unwrap_or(0);
    let footer_rows = usize::try_from(config.footer_rows.max(0)).unwrap_or(0);
    let check_clock = Instant::now();
    let opened = {
        let path = path.clone();
        let columns = definition.columns.clone();
        let params = params.clone();
        let user = payload.username.clone();
        let spool_first = load_mode == LoadMode::TruncateLoad;
        tokio::task::spawn_blocking(move || {
            let types = |c: &UploadColumn| sql_type(&c.type_code, &params, backend);
            let file = open_file(&path, header_rows, footer_rows)?;
            let plan = UploadPlan::new(&columns, &file.header, &types)?;
            if !spool_first {
                return Ok::<_, String>((plan, Source::File(file.rows)));
            }
            let mut spool = Spool::new(AuditTail::new(plan.audit(&user, now)))?;
            let mut spooled = Ok(());
            let fed = feed(file.rows, &plan, |values, line| {
                spooled = spool.push(line, &values);
                spooled.is_ok()
            });
            spooled?;
            Ok((plan, Source::Spool(fed, spool.finish()?)))
        })
        .await
        .map_err(|e| format!("reading the file failed: {e}"))
        .and_then(|opened| opened)
    };
    let (plan, source) = match opened {
        Ok(opened) => opened,
        Err(message) => return fail(outcome, message),
    };
    if let Source::Spool(checked, _) = &source {
        if let Some(reason) = &checked.unreadable {
            return fail(outcome, format!("{reason}; the target was not touched"));
        }
        if checked.sent == 0 {
            // Nothing to load: the file is empty of rows, or every row is bad.
            outcome.processed = checked.processed;
            outcome.failed = checked.failed;
            outcome.errors = checked.errors.clone();
            return outcome;
        }
    }
    let checked_in = check_clock.elapsed();
    if active.stop.is_stopped() {
        outcome.stopped = true;
        return fail(outcome, active.stop.reason());
    }

    // The target: created when missing, by the original's rules.
    let (schema, name) = (
        config
            .trgschm
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty()),
        config.trgtblnm.as_deref().unwrap_or("").trim(),
    );
    match connections.table_exists(&connection, schema, name).await {
        Ok(true) => {}
        Ok(false) => {
            let ddl = create_table_sql(&table, &definition.columns, &types, backend);
            if let Err(message) = connections.execute(&connection, &ddl).await {
                return fail(outcome, format!("creating {table} failed: {message}"));
            }
            tracing::info!(upload = %flupldref, "file upload {flupldref} created its target: {ddl}");
            outcome.table_created = true;
        }
        Err(message) => return fail(outcome, message),
    }

    // The good rows into the target, in one transaction.
    let unfed = plan.unfed();
    if !unfed.is_empty() {
        tracing::warn!(upload = %flupldref, "file upload {flupldref}: no file column feeds {}; they load as NULL", unfed.join(", "));
    }
    let fold = |name: &str| {
        if kind == DbKind::Postgres {
            name.to_ascii_lowercase()
        } else {
            name.to_string()
        }
    };
    let columns: Arc<[String]> = plan.columns().iter().map(|c| fold(c)).collect();
    let mut key: Vec<&UploadColumn> = definition.columns.iter().filter(|c| c.key).collect();
    key.sort_by_key(|c| c.key_seq.unwrap_or(i64::MAX));
    if load_mode == LoadMode::Upsert && key.is_empty() {
        return fail(
            outcome,
            format!(
                "file upload {flupldref}: UPSERT needs key columns (TRGKYFLG='Y'), and none is set"
            ),
        );
    }
    let load = TableLoad {
        table: table.clone(),
        columns,
        mode: if load_mode == LoadMode::Upsert {
            TargetMode::Upsert
        } else {
            TargetMode::Append
        },
        empty_first: load_mode == LoadMode::TruncateLoad,
        key: key.iter().map(|c| fold(c.target.trim())).collect(),
        keep: KEPT_ON_UPDATE.iter().map(|c| fold(c)).collect(),
    };
    let (sender, receiver) = mpsc::channel::<LoadRows>(2);
    let audit = AuditTail::new(plan.audit(&payload.username, now));
    // PostgreSQL takes the COPY text as it is; other targets take typed values.
    let kinds = (kind != DbKind::Postgres).then(|| plan.kinds());
    // The feeder reads, converts and sends the good rows (for PostgreSQL as COPY text,
    // made here, beside the writer), and counts and keeps the bad ones; from a spool,
    // it sends the rows the check converted. It ends the load only when it sent a row
    // and read everything: otherwise the load rolls back.
    let feeding = tokio::task::spawn_blocking(move || {
        let mut outbox = Outbox::new(sender, audit, kinds);
        let fed = match source {
            Source::File(rows) => feed(rows, &plan, |values, line| outbox.push(values, line)),
            Source::Spool(mut checked, spool) => {
                for spooled in spooled_rows(spool) {
                    match spooled {
                        Ok((line, text)) => {
                            if !outbox.push_text(&text, line) {
                                break;
                            }
                        }
                        Err(message) => {
                            checked.unreadable = Some(message);
                            break;
                        }
                    }
                }
                checked
            }
        };
        if fed.sent > 0 && fed.unreadable.is_none() {
            outbox.end();
        }
        fed
    });
    let load_clock = Instant::now();
    let loaded = connections
        .load_table(&connection, &load, receiver, &active.stop)
        .await;
    let fed = feeding.await.unwrap_or_default();
    outcome.processed = fed.processed;
    outcome.failed = fed.failed;
    outcome.errors = fed.errors;
    if let Some(reason) = fed.unreadable {
        // The load was not ended, so its transaction rolled back.
        return fail(outcome, format!("{reason}; nothing was loaded"));
    }
    if fed.sent == 0 {
        // Nothing was loaded: the transaction rolled back, and the run failed.
        return outcome;
    }
    tracing::info!(
        upload = %flupldref,
        "file upload {flupldref}: {} checked in {:.2} s, loaded into {table} in {:.2} s",
        path.display(),
        checked_in.as_secs_f64(),
        load_clock.elapsed().as_secs_f64()
    );
    match loaded {
        Ok(loaded) => {
            outcome.loaded = loaded.written;
            outcome.failed += i64::try_from(loaded.rejected.len()).unwrap_or(i64::MAX);
            for rejected in loaded.rejected {
                if outcome.errors.len() >= ERRORS_KEPT {
                    break;
                }
                outcome.errors.push(UploadRowError {
                    line: rejected.tag.unwrap_or(0),
                    data: "{}".into(),
                    code: error_code(&rejected.db_message),
                    message: rejected.db_message,
                });
            }
            outcome.errors.sort_by_key(|e| e.line);
            if outcome.loaded > 0 {
                after_load(shared, flupldref, &path, hash.as_deref(), now, &mut outcome).await;
            }
            outcome
        }
        Err(QueryError::Stopped) => {
            outcome.stopped = true;
            let reason = active.stop.reason();
            fail(outcome, format!("{reason}; the target is as it was"))
        }
        Err(QueryError::Failed(message)) => fail(
            outcome,
            format!("loading {table} failed, and it is as it was: {message}"),
        ),
        Err(QueryError::ConsumerGone) => fail(outcome, format!("loading {table} was cut short")),
    }
}

/// What the lifecycle does once a file has loaded: its hash recorded, the file moved
/// to `archive/`. A failure here is logged; the load stands.
async fn after_load(
    shared: &Shared,
    flupldref: &str,
    path: &std::path::Path,
    hash: Option<&str>,
    now: chrono::NaiveDateTime,
    outcome: &mut Outcome,
) {
    let lifecycle = shared.config.upload_files;
    if let Some(hash) = hash
        && let Err(err) = shared.store.set_upload_hash(flupldref, hash).await
    {
        tracing::warn!(upload = %flupldref, "{err}; the next run will load the file again");
    }
    if lifecycle.archive {
        let directory = path
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("archive");
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let extension = path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let target = directory.join(format!("{stem}_{}{extension}", now.format("%Y%m%d_%H%M%S")));
        let moved =
            std::fs::create_dir_all(&directory).and_then(|()| std::fs::rename(path, &target));
        match moved {
            Ok(()) => {
                outcome.file_path = Some(target.display().to_string());
                tracing::info!(upload = %flupldref, "file upload {flupldref}: {} archived as {}", path.display(), target.display());
            }
            Err(err) => tracing::warn!(
                upload = %flupldref,
                "file upload {flupldref}: could not move {} to {}: {err}",
                path.display(),
                target.display()
            ),
        }
    }
}

/// The SHA-256 of a file, as lower-case hex, read on a blocking thread.
async fn file_sha256(path: &std::path::Path) -> Result<String, String> {
    use sha2::Digest as _;
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut hasher = sha2::Sha256::new();
        std::io::copy(&mut file, &mut hasher)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    })
    .await
    .map_err(|e| format!("hashing the file failed: {e}"))?
}

/// The target's connection (`TRGCONID`), its name, and its backend.
async fn target_connection(
    shared: &Shared,
    definition: &UploadDefinition,
) -> Result<(Connections, String, DbKind), String> {
    let what = format!("file upload {}", definition.config.flupldref);
    let Some(conid) = definition.config.trgconid else {
        return Err(format!(
            "{what} has no target connection (TRGCONID is empty)"
        ));
    };
    let row = connection_by_id(shared, conid, &what).await?;
    sole_connection(shared, &row, &what)
}

/// `TRGSCHM.TRGTBLNM` as SQL names it: checked names, lower case on PostgreSQL (as
/// the original creates and quotes them).
fn target_table(schema: Option<&str>, table: Option<&str>, kind: DbKind) -> Result<String, String> {
    let table = table
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or("it has no target table (TRGTBLNM is empty)")?;
    let check = |name: &str, column: &str| {
        if is_valid_identifier(name) {
            Ok(())
        } else {
            Err(format!(
                "{column} '{name}' is not a plain name ([A-Za-z_][A-Za-z0-9_$]*)"
            ))
        }
    };
    check(table, "TRGTBLNM")?;
    let qualified = match schema.map(str::trim).filter(|s| !s.is_empty()) {
        Some(schema) => {
            check(schema, "TRGSCHM")?;
            format!("{schema}.{table}")
        }
        None => table.to_string(),
    };
    Ok(if kind == DbKind::Postgres {
        qualified.to_ascii_lowercase()
    } else {
        qualified
    })
}

/// The first `ABC-123`-like code of a database message (Oracle's `ORA-01400`).
fn error_code(message: &str) -> Option<String> {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find_map(|word| {
            let (letters, digits) = word.split_once('-')?;
            (!letters.is_empty()
                && letters.chars().all(|c| c.is_ascii_uppercase())
                && !digits.is_empty()
                && digits.chars().all(|c| c.is_ascii_digit()))
            .then(|| word.to_string())
        })
}
