//! `dwsched`: the command line. It parses arguments, resolves the configuration,
//! formats output and maps errors to exit codes (0 success, 2 usage or configuration,
//! 1 anything else); the work itself is done by the service, flow, schedule and store
//! crates.

mod cli;
mod commands;
mod config;
mod doctor;
mod output;
mod runs;
mod serve;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

/// An error the user can fix by changing the command or the configuration (exit 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    // The node starts every command step under this same binary as its supervisor.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|arg| arg == dwsched_flow::supervisor::SUPERVISOR_ARG)
    {
        let code = dwsched_flow::supervisor::supervise(&args[2..]);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            let code = exit_code(&err);
            eprintln!("error: {}", one_line(&err));
            ExitCode::from(code)
        }
    }
}

/// An error and its causes on one line, each cause said once: many errors already
/// include their cause in their own text.
fn one_line(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        // A store error already says what its database said.
        if cause.is::<sqlx::Error>() {
            continue;
        }
        let text = cause.to_string().replace('\n', " ");
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
    }
    message
}

/// Usage and configuration errors (bad flags or variables, bad input, an
/// uninitialised database) exit 2; failures while doing the work exit 1.
fn exit_code(err: &anyhow::Error) -> u8 {
    use dwsched_service::ops::OpError;
    use dwsched_store::StoreError;
    for cause in err.chain() {
        if cause.is::<UsageError>() || cause.is::<config::ConfigError>() {
            return 2;
        }
        if let Some(op) = cause.downcast_ref::<OpError>() {
            return match op {
                OpError::Invalid(_) | OpError::NotFound(_) => 2,
                OpError::Conflict(_) => 1,
                OpError::Store(store) => store_exit_code(store),
            };
        }
        if let Some(store) = cause.downcast_ref::<StoreError>() {
            return store_exit_code(store);
        }
    }
    1
}

fn store_exit_code(err: &dwsched_store::StoreError) -> u8 {
    use dwsched_store::StoreError;
    match err {
        StoreError::BadUrl(_)
        | StoreError::NotInitialised { .. }
        | StoreError::TooNew { .. }
        | StoreError::Invalid(_) => 2,
        // An unreachable database is not a configuration error (SPEC §5).
        StoreError::Connect { .. } | StoreError::Database { .. } | StoreError::ClaimLost { .. } => {
            1
        }
    }
}
