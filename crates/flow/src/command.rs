//! `command` steps: an external program under the command supervisor
//! ([`crate::supervisor`]), its output appended to the run's log file. A stop signals
//! the supervisor, which passes SIGTERM to every process of the command; closing the
//! supervisor's socket (after the grace, at once when forced, or when this step's future
//! is dropped) makes it kill them all.

use std::collections::BTreeMap;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::process::ExitStatusExt as _;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

use crate::step::{RowTotals, RunContext, StepEnd, StepError};
use crate::supervisor::{SPAWN_FAILED, SUPERVISOR_ARG};

/// How long a stopped command has between SIGTERM and SIGKILL (none when forced).
const TERM_GRACE: Duration = Duration::from_secs(5);
/// How much of a failed command's output goes into the run's message.
const TAIL_BYTES: u64 = 2000;

pub(crate) struct CommandSpec<'a> {
    pub step: &'a str,
    pub program: &'a str,
    pub args: &'a [String],
    pub env: &'a BTreeMap<String, String>,
    pub workdir: Option<&'a str>,
}

/// The variables that give a command its run's parameters.
pub fn run_environment(ctx: &RunContext, step: &str) -> Vec<(String, String)> {
    let mut vars = vec![
        ("DWSCHED_RUN_DATE".to_string(), ctx.run_date.to_string()),
        ("DWSCHED_PRCID".to_string(), ctx.prcid.to_string()),
        ("DWSCHED_MAPREF".to_string(), ctx.mapref.clone()),
        ("DWSCHED_STEP".to_string(), step.to_string()),
        (
            "DWSCHED_TRUNCATE".to_string(),
            if ctx.truncate { "Y" } else { "N" }.to_string(),
        ),
    ];
    for (i, value) in ctx.params.iter().enumerate() {
        if let Some(value) = value {
            vars.push((format!("DWSCHED_PARAM{}", i + 1), value.clone()));
        }
    }
    vars
}

pub(crate) async fn run_command(
    spec: &CommandSpec<'_>,
    ctx: &RunContext,
    token: &CancellationToken,
) -> StepEnd {
    let log_path = ctx.log_file();
    let mut log = match ctx.open_log() {
        Ok(file) => file,
        Err(err) => {
            return StepEnd::Failed(
                StepError::Log(format!("{}: {err}", log_path.display())),
                Vec::new(),
            );
        }
    };
    let _ = writeln!(
        log,
        "==> {} step '{}': {} {}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
        spec.step,
        spec.program,
        spec.args.join(" ")
    );
    let output_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let (stdout, stderr) = match (log.try_clone(), log.try_clone()) {
        (Ok(out), Ok(err)) => (out, err),
        (Err(e), _) | (_, Err(e)) => {
            return StepEnd::Failed(StepError::Log(e.to_string()), Vec::new());
        }
    };
    let place = spec.workdir.map(|d| format!(" in {d}")).unwrap_or_default();
    let cannot_start = |err: &dyn std::fmt::Display| {
        StepError::Command(format!("cannot start '{}'{place}: {err}", spec.program))
    };
    // The supervisor reads end-of-file on its end once `watch` is closed: when this
    // node dies, or when this function returns or is dropped.
    let (watch, supervisor_end) = match std::os::unix::net::UnixStream::pair() {
        Ok(pair) => pair,
        Err(err) => return StepEnd::Failed(cannot_start(&err), Vec::new()),
    };
    let mut command = tokio::process::Command::new(&ctx.supervisor);
    command
        .arg(SUPERVISOR_ARG)
        .arg(spec.program)
        .args(spec.args)
        .envs(run_environment(ctx, spec.step))
        .envs(spec.env)
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(supervisor_end)))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0);
    if let Some(dir) = spec.workdir {
        command.current_dir(dir);
    }
    let spawned = command.spawn();
    // The command keeps the supervisor's end of the socket until it is dropped.
    drop(command);
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => return StepEnd::Failed(cannot_start(&err), Vec::new()),
    };
    let supervisor = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let status = tokio::select! {
        status = child.wait() => status,
        _ = token.cancelled() => {
            if !ctx.stop.is_forced() {
                if let Some(pid) = supervisor {
                    let _ = kill(pid, Signal::SIGTERM);
                }
                let _ = tokio::time::timeout(TERM_GRACE, child.wait()).await;
            }
            // Whatever ignored SIGTERM is killed by the supervisor once the socket closes.
            drop(watch);
            let _ = child.wait().await;
            let _ = writeln!(log, "==> step '{}' stopped", spec.step);
            return StepEnd::Stopped;
        }
    };
    if let Ok(status) = &status
        && status.code() == Some(SPAWN_FAILED)
    {
        let mut reason = String::new();
        let _ = watch.set_nonblocking(true);
        let _ = (&watch).read_to_string(&mut reason);
        if !reason.is_empty() {
            return StepEnd::Failed(cannot_start(&reason), Vec::new());
        }
    }
    match status {
        Ok(status) if status.success() => StepEnd::Done(RowTotals::default(), Vec::new()),
        Ok(status) => {
            let tail = output_tail(&mut log, output_start);
            let said = if tail.is_empty() {
                String::from(" and printed nothing")
            } else {
                format!(": {tail}")
            };
            StepEnd::Failed(
                StepError::Command(format!("'{}' {}{said}", spec.program, describe(status))),
                Vec::new(),
            )
        }
        Err(err) => StepEnd::Failed(
            StepError::Command(format!("waiting for '{}' failed: {err}", spec.program)),
            Vec::new(),
        ),
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "ended abnormally".to_string(),
    }
}

/// The last bytes this attempt wrote to the log, as one line.
fn output_tail(log: &mut std::fs::File, start: u64) -> String {
    let end = log.metadata().map(|m| m.len()).unwrap_or(start);
    let from = start.max(end.saturating_sub(TAIL_BYTES));
    let mut bytes = Vec::new();
    if log.seek(SeekFrom::Start(from)).is_ok() {
        let _ = log.take(end - from).read_to_end(&mut bytes);
    }
    let text = String::from_utf8_lossy(&bytes);
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if from > start {
        format!("…{joined}")
    } else {
        joined
    }
}
