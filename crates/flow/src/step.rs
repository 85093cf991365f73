//! The contract between a run and its steps: what a step sees of the run
//! ([`RunContext`], with its [`StopSignal`]), and what an attempt of a step ends with
//! ([`StepEnd`]: row counts and rejected rows, or a [`StepError`]). `run.rs` drives the
//! steps; each kind (`sql.rs`, `load.rs`, `command.rs`) imports only this.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

use crate::connect::Connections;

/// How a run is told to stop. Cancelling the token stops every running step; `force`
/// skips the grace a command gets to exit on SIGTERM.
#[derive(Debug, Clone, Default)]
pub struct StopSignal {
    token: CancellationToken,
    force: Arc<AtomicBool>,
    reason: Arc<std::sync::Mutex<Option<String>>>,
}

impl StopSignal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the run, for `reason` (it becomes the run's message).
    pub fn stop(&self, reason: impl Into<String>, force: bool) {
        if force {
            self.force.store(true, Ordering::SeqCst);
        }
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert_with(|| reason.into());
        drop(slot);
        self.token.cancel();
    }

    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    pub fn is_forced(&self) -> bool {
        self.force.load(Ordering::SeqCst)
    }

    pub fn reason(&self) -> String {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "stopped".to_string())
    }

    pub async fn stopped(&self) {
        self.token.cancelled().await;
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// What a run's steps see of it.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub prcid: i64,
    pub mapref: String,
    /// The business date bound as `:run_date`.
    pub run_date: NaiveDate,
    pub params: [Option<String>; dwsched_model::PARAM_COUNT],
    /// Truncate the targets of `append` loads before the run.
    pub truncate: bool,
    /// Where each run's command output is kept: `<log_dir>/<mapref>/<prcid>.log`.
    pub log_dir: PathBuf,
    /// The named connections of the flow's `sql`, `load` and `mapping` steps.
    pub connections: Connections,
    /// The plans of the flow's `mapping` steps, by mapref.
    pub mappings: Arc<std::collections::BTreeMap<String, crate::mapping::MappingRun>>,
    /// Where steps that report progress put their counts so far.
    pub progress: Arc<RunProgress>,
    /// Where each step attempt is reported as it starts and ends.
    pub steps: StepLog,
    /// Run from this step: the steps it depends on, directly or not, are skipped.
    pub from_step: Option<String>,
    pub stop: StopSignal,
    /// The `dwsched` executable that supervises `command` steps
    /// ([`crate::supervisor::this_executable`] in the node).
    pub supervisor: PathBuf,
}

impl RunContext {
    pub fn log_file(&self) -> PathBuf {
        run_log_path(&self.log_dir, &self.mapref, self.prcid)
    }

    /// Opens the run's log file for appending (and reading back its tail), making its
    /// directory.
    pub(crate) fn open_log(&self) -> std::io::Result<std::fs::File> {
        let path = self.log_file();
        path.parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .read(true)
                    .open(&path)
            })
    }

    /// Appends to the run's log file; a log that cannot be written does not fail a run.
    pub(crate) fn append_log(&self, text: &[u8]) {
        self.run_log().append(text);
    }

    /// The run's log file, for parts of a step that do not hold the context.
    pub(crate) fn run_log(&self) -> RunLog {
        RunLog(self.log_file())
    }
}

/// Where run `prcid` of `mapref` keeps its log under a node's log directory:
/// `<log dir>/<MAPREF>/<PRCID>.log`.
pub fn run_log_path(log_dir: &std::path::Path, mapref: &str, prcid: i64) -> PathBuf {
    log_dir.join(mapref).join(format!("{prcid}.log"))
}

/// A run's log file: `<log dir>/<MAPREF>/<PRCID>.log`.
#[derive(Debug, Clone)]
pub(crate) struct RunLog(PathBuf);

impl RunLog {
    /// Appends `text`; a log that cannot be written does not fail a run.
    pub(crate) fn append(&self, text: &[u8]) {
        let written = self
            .0
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.0)
            })
            .and_then(|mut file| std::io::Write::write_all(&mut file, text));
        if let Err(err) = written {
            tracing::warn!("cannot write the run log {}: {err}", self.0.display());
        }
    }

    /// Appends one line.
    pub(crate) fn line(&self, text: impl std::fmt::Display) {
        self.append(format!("{text}\n").as_bytes());
    }
}

/// Where a run's step attempts are reported, as `DMS_PRCSTEP` records, when they
/// start and when they end. The runner reads them from the other end and writes them
/// in order; a step never waits for that write. `StepLog::default()` reports nowhere.
#[derive(Debug, Clone, Default)]
pub struct StepLog(Option<tokio::sync::mpsc::UnboundedSender<dwsched_model::StepRecord>>);

impl StepLog {
    /// A step log and the receiver of its records.
    pub fn channel() -> (
        Self,
        tokio::sync::mpsc::UnboundedReceiver<dwsched_model::StepRecord>,
    ) {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        (Self(Some(sender)), receiver)
    }

    pub(crate) fn report(&self, record: dwsched_model::StepRecord) {
        if let Some(sender) = &self.0 {
            // The runner has stopped listening only once the run has ended.
            let _ = sender.send(record);
        }
    }
}

/// A running step's row counts so far, for a run's `DMS_JOBLOG` row kept current while
/// it goes (mapping steps report theirs).
#[derive(Debug, Default)]
pub struct RunProgress {
    source: AtomicI64,
    target: AtomicI64,
    errors: AtomicI64,
}

impl RunProgress {
    pub fn set(&self, totals: RowTotals) {
        self.source.store(totals.source, Ordering::Relaxed);
        self.target.store(totals.target, Ordering::Relaxed);
        self.errors.store(totals.errors, Ordering::Relaxed);
    }

    pub fn get(&self) -> RowTotals {
        RowTotals {
            source: self.source.load(Ordering::Relaxed),
            target: self.target.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// Row counts of a run, summed over its steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowTotals {
    pub source: i64,
    pub target: i64,
    pub errors: i64,
}

/// A row a load rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The step that loaded it.
    pub step: String,
    pub key: String,
    pub db_message: String,
    /// The tag its sender gave the row (an upload's file line), if any.
    pub tag: Option<i64>,
}

/// A failed attempt of a step (later attempts may have succeeded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    pub step: String,
    pub attempt: u32,
    pub message: String,
}

/// What one attempt of a step ended with.
#[derive(Debug)]
pub(crate) enum StepEnd {
    Done(RowTotals, Vec<RowError>),
    /// With the rows the attempt rejected before it failed.
    Failed(StepError, Vec<RowError>),
    Stopped,
}

/// Why an attempt of a step failed. Its text becomes the run's message, so each names
/// the object (connection, statement, command) and the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// A named connection that cannot be used: not registered, bad settings,
    /// unreachable.
    #[error("{0}")]
    Connection(String),
    /// The database refused a statement or a batch, or a connection broke mid-step.
    #[error("{0}")]
    Database(String),
    /// A command that could not start, or that ended with a failure status.
    #[error("{0}")]
    Command(String),
    /// The run log could not be shared with the step.
    #[error("cannot share the run log: {0}")]
    Log(String),
    #[error("timed out after {}", humantime::format_duration(*.0))]
    TimedOut(Duration),
    /// A mapping job whose plan cannot run (SPEC §7.1).
    #[error("{0}")]
    Plan(String),
    /// The step's task panicked.
    #[error("the step's task ended abnormally: {0}")]
    Aborted(String),
}
