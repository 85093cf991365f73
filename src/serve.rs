//! `dwsched run`: configuration to a running node, with signals, a pid file and the
//! optional demo job.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use chrono::Utc;
use dwsched_flow::FlowFormat;
use dwsched_service::ops::{self, ScheduleInput};
use dwsched_service::{NodeConfig, NodeError, Shutdown, open_when_reachable, run_node};
use dwsched_store::{Store, StoreOptions};

use crate::UsageError;
use crate::config::Settings;

const DEMO_MAPREF: &str = "DEMO";
const DEMO_FLOW: &str = include_str!("../examples/flows/demo.toml");

pub async fn run(settings: Settings, demo: bool) -> Result<ExitCode> {
    tracing::info!(
        node = settings.node_id.as_deref().unwrap_or("(host name)"),
        "Starting scheduler service: {}",
        settings.describe()
    );
    let options = StoreOptions::new(settings.database_url.clone())
        .schema(settings.schema.clone())
        .create(true);
    // Signals are heard while the database is awaited, too.
    let shutdown = Shutdown::default();
    listen_for_signals(
        shutdown.clone(),
        "no new runs; waiting for running runs (a second signal stops them)",
        "stopping running runs now",
    )?;
    let _pid_file = settings
        .pid_file
        .as_deref()
        .map(PidFile::write)
        .transpose()?;
    let (store, report) = match open_when_reachable(&options, &shutdown.graceful).await {
        Some(opened) => opened.with_context(|| settings.database_url_origin.to_string())?,
        None => {
            tracing::info!("stopped before the metadata database could be reached");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let store: Arc<dyn Store> = Arc::from(store);
    if report.changed_anything() {
        tracing::info!(
            "schema upgraded to version {}: created tables {:?}, added columns {:?}",
            report.to_version,
            report.tables_created,
            report.columns_added
        );
    }
    if demo {
        create_demo(&*store, &settings).await?;
    }
    let config = node_config(&settings, None);
    let result = run_node(store.clone(), config, shutdown).await;
    store.close().await;
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(NodeError::Refused(message)) => Err(UsageError(message).into()),
        Err(NodeError::Store(err)) => Err(err.into()),
    }
}

/// The first SIGINT or SIGTERM drains the node; a second stops its runs at once.
/// The first SIGINT or SIGTERM cancels `shutdown.graceful`, the second
/// `shutdown.immediate`; each is logged with what it does.
pub fn listen_for_signals(
    shutdown: Shutdown,
    first_does: &'static str,
    second_does: &'static str,
) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::spawn(async move {
        for stage in 0.. {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            if stage == 0 {
                tracing::info!("{name} received: {first_does}");
                shutdown.graceful.cancel();
            } else {
                tracing::warn!("{name} received again: {second_does}");
                shutdown.immediate.cancel();
                return;
            }
        }
    });
    Ok(())
}

/// The demo job: a command step that needs no database, fired every 10 seconds.
async fn create_demo(store: &dyn Store, settings: &Settings) -> Result<()> {
    let now = Utc::now();
    if store.current_flow(DEMO_MAPREF).await?.is_none() {
        ops::register_flow(store, DEMO_MAPREF, DEMO_FLOW, FlowFormat::Toml, now).await?;
    }
    let has_schedule = store
        .list_schedules(false)
        .await?
        .iter()
        .any(|s| s.mapref == DEMO_MAPREF);
    if !has_schedule {
        let input = ScheduleInput {
            mapref: DEMO_MAPREF.into(),
            frqcd: "CR".into(),
            cron: Some("*/10 * * * * *".into()),
            misfire: Some("SKIP".into()),
            enable: true,
            ..ScheduleInput::default()
        };
        let id = ops::add_schedule(store, &input, settings.timezone, now).await?;
        tracing::info!(
            "demo: job {DEMO_MAPREF} runs every 10 seconds (schedule {id}); watch it with `dwsched runs`"
        );
    }
    Ok(())
}

/// The `--pid-file`, written at start and removed when the service ends.
struct PidFile(std::path::PathBuf);

impl PidFile {
    fn write(path: &std::path::Path) -> Result<Self> {
        std::fs::write(path, format!("{}\n", std::process::id())).map_err(|e| {
            UsageError(format!(
                "--pid-file '{}': cannot be written: {e}",
                path.display()
            ))
        })?;
        Ok(Self(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The node's configuration from the settings; `node_id` overrides the configured id
/// (a foreground run takes one of its own).
pub fn node_config(settings: &Settings, node_id: Option<String>) -> NodeConfig {
    let host = host_name();
    NodeConfig {
        node_id: node_id
            .or_else(|| settings.node_id.clone())
            .unwrap_or_else(|| host.clone()),
        host,
        poll_interval: settings.poll_interval,
        refresh_interval: settings.refresh_interval,
        max_workers: settings.max_workers,
        default_zone: settings.timezone,
        shutdown_timeout: settings.shutdown_timeout,
        lease: settings.lease,
        max_attempts: i64::from(settings.max_attempts),
        log_dir: settings.log_dir.clone(),
        misfire_grace: settings.misfire_grace,
        http: settings.http_addr,
        api_token: settings.api_token.clone(),
        alerts: dwsched_service::AlertConfig {
            webhook: settings.alert_webhook.clone(),
            command: settings.alert_command.clone(),
        },
        reports: dwsched_service::ReportConfig {
            metadata_url: settings.database_url.clone(),
            metadata_schema: settings.schema.clone(),
            ..settings.reports.clone()
        },
        upload_files: settings.upload_files,
    }
}

pub fn host_name() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".to_string())
}
