//! One function per command: read the arguments, call the layer that does the work,
//! print the result.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use dwsched_flow::FlowFormat;
use dwsched_model::{RunFilter, RunParams, payload::parse_business_date};
use dwsched_service::ops::{self, ScheduleInput};
use dwsched_store::{Store, StoreOptions};

use crate::UsageError;
use crate::cli::{
    Cli, Command, ConnCommand, DwtoolCommand, JobCommand, ParamArgs, RuleArgs, ScheduleCommand,
};
use crate::config::{self, Flags, Resolver, Settings};
use crate::output;

pub async fn run(cli: Cli) -> Result<ExitCode> {
    config::load_env_file(cli.env_file.as_deref())?;
    let mut flags = Flags {
        database_url: cli.database_url.clone(),
        schema: cli.schema.clone(),
        ..Flags::default()
    };
    if let Command::Run(args) = &cli.command {
        flags.poll_interval = args.poll_interval.clone();
        flags.refresh_interval = args.refresh_interval.clone();
        flags.max_workers = args.max_workers.clone();
        flags.timezone = args.timezone.clone();
        flags.node_id = args.node_id.clone();
        flags.http = args.http.clone();
        flags.pid_file = args.pid_file.clone();
    }
    if matches!(cli.command, Command::Doctor) {
        // The doctor reports a bad configuration as one of its checks.
        return Ok(crate::doctor::run(&flags).await);
    }
    let env = config::process_env;
    let settings = Resolver::new(&flags, &env).resolve()?;
    let is_service = matches!(cli.command, Command::Run(_));
    init_logging(&settings, if is_service { "info" } else { "warn" });
    let now = Utc::now();
    match cli.command {
        Command::Init => init(&settings).await,
        Command::Run(args) => crate::serve::run(settings, args.demo).await,
        Command::Job(command) => job(&settings, command, now).await,
        Command::Conn(command) => conn(&settings, command).await,
        Command::Dwtool(command) => dwtool(&settings, command).await,
        Command::Schedule(command) => schedule(&settings, command, now).await,
        Command::Enqueue {
            mapref,
            params,
            truncate,
            run_date,
        } => {
            let run_date = run_date.map(|d| parse_date("--run-date", &d)).transpose()?;
            let params = run_params(params, truncate, run_date);
            let store = open(&settings).await?;
            let id = ops::enqueue_run(&*store, &mapref, params, now).await?;
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::History {
            mapref,
            from,
            to,
            truncate,
            wait,
            params,
        } => {
            let from = parse_date("--from", &from)?;
            let to = parse_date("--to", &to)?;
            let store = open(&settings).await?;
            let params = run_params(params, truncate, None);
            let id = ops::enqueue_history(&*store, &mapref, from, to, params, now).await?;
            println!("{id}");
            if !wait {
                return Ok(ExitCode::SUCCESS);
            }
            let dates = (to - from).num_days() + 1;
            wait_for_history(&*store, &mapref, &id, u64::try_from(dates).unwrap_or(0)).await
        }
        Command::Stop { mapref, force } => {
            let store = open(&settings).await?;
            let id = ops::enqueue_stop(&*store, &mapref, force, now).await?;
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { request_id } => {
            let store = open(&settings).await?;
            ops::cancel_request(&*store, &request_id, now).await?;
            eprintln!("request {request_id} cancelled");
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor => unreachable!("handled before the configuration is resolved"),
        Command::Status { json, limit } => {
            let store = open(&settings).await?;
            let lease =
                chrono::Duration::from_std(settings.lease).unwrap_or(chrono::Duration::seconds(30));
            let report = dwsched_service::status::StatusReport::gather(
                &*store,
                Utc::now(),
                lease,
                limit.clamp(1, 1000),
            )
            .await?;
            if json {
                let text = serde_json::to_string_pretty(&report.to_json(limit as usize))
                    .expect("JSON values serialise");
                println!("{text}");
            } else {
                println!("{}", output::status_text(&report, limit as usize));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Runs {
            mapref,
            limit,
            json,
        } => {
            let store = open(&settings).await?;
            let filter = RunFilter {
                mapref,
                limit: limit.clamp(1, 10_000),
                ..RunFilter::default()
            };
            let runs = store.list_runs(&filter).await?;
            if json {
                println!("{}", output::runs_json(&runs));
            } else {
                println!("{}", output::runs_table(&runs, Utc::now()));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn init_logging(settings: &Settings, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.log_format {
        config::LogFormat::Json => builder.json().try_init(),
        config::LogFormat::Text => builder.try_init(),
    };
}

fn store_options(settings: &Settings) -> StoreOptions {
    StoreOptions::new(settings.database_url.clone()).schema(settings.schema.clone())
}

/// Opens the configured store and checks that `dwsched init` has prepared it.
async fn open(settings: &Settings) -> Result<Box<dyn Store>> {
    let store = dwsched_store::open(&store_options(settings))
        .await
        .with_context(|| settings.database_url_origin.to_string())?;
    store.check_schema().await?;
    Ok(store)
}

async fn dwtool(settings: &Settings, command: DwtoolCommand) -> Result<ExitCode> {
    use dwsched_service::dwtool;
    let store = open(settings).await?;
    match command {
        DwtoolCommand::Check { mapref } => {
            let reports = dwtool::check(&*store, mapref.as_deref()).await?;
            if reports.is_empty() {
                eprintln!(
                    "no mapping jobs: no job's current DWLOGIC is DWTOOL-generated mapping code"
                );
            }
            for report in &reports {
                println!("{report}");
            }
            let failed = reports.iter().any(|r| r.verdict() == "FAIL");
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        DwtoolCommand::Show { mapref } => {
            let resolved = dwtool::resolve_known(&*store, &mapref).await?;
            print!("{}", output::mapping_plan(&resolved));
            Ok(if resolved.report.plan.is_some() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        DwtoolCommand::Rehash { mapref } => {
            let rehashed = dwtool::rehash(&*store, &mapref, settings.log_dir.clone()).await?;
            eprintln!(
                "{mapref}: {} source rows read, RWHKEY rewritten on {} current rows",
                rehashed.source, rehashed.target
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn init(settings: &Settings) -> Result<ExitCode> {
    let store = dwsched_store::open(&store_options(settings).create(true))
        .await
        .with_context(|| settings.database_url_origin.to_string())?;
    let report = store.migrate().await?;
    println!("{}", output::migration_summary(&report, settings));
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn job(settings: &Settings, command: JobCommand, now: DateTime<Utc>) -> Result<ExitCode> {
    let store = open(settings).await?;
    match command {
        JobCommand::Put { mapref, flow } => {
            let text = std::fs::read_to_string(&flow).map_err(|e| {
                UsageError(format!("--flow '{}': cannot be read: {e}", flow.display()))
            })?;
            let format = FlowFormat::from_path(&flow.to_string_lossy());
            let (stored, parsed) = ops::register_flow(&*store, &mapref, &text, format, now).await?;
            println!(
                "job {mapref}: flow version {} registered ({} steps)",
                stored.jobflwid,
                parsed.steps.len()
            );
        }
        JobCommand::List => {
            let jobs = store.list_jobs().await?;
            let schedules = store.list_schedules(false).await?;
            println!("{}", output::jobs_table(&jobs, &schedules));
        }
        JobCommand::Show { mapref } => {
            let flow = store.current_flow(&mapref).await?.ok_or_else(|| {
                UsageError(format!("job '{mapref}' does not exist (no current flow)"))
            })?;
            let schedules: Vec<_> = store
                .list_schedules(false)
                .await?
                .into_iter()
                .filter(|s| s.mapref == mapref)
                .collect();
            println!("{}", output::job_details(&flow, &schedules));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn conn(settings: &Settings, command: ConnCommand) -> Result<ExitCode> {
    let store = open(settings).await?;
    match command {
        ConnCommand::Put {
            name,
            url,
            password,
            default_schema,
        } => {
            let stored = ops::register_connection(
                &*store,
                &name,
                &url,
                password.as_deref(),
                default_schema.as_deref(),
            )
            .await?;
            if stored
                .passwd
                .as_deref()
                .is_some_and(|p| !p.starts_with("env:"))
            {
                eprintln!(
                    "warning: connection '{name}' keeps a plain-text password; prefer --password env:VARIABLE"
                );
            }
            println!("connection {name} registered (CONID {})", stored.conid);
        }
        ConnCommand::List => {
            let connections = store.list_connections().await?;
            println!("{}", output::connections_table(&connections));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--timezone`, or `default` when it is not given.
fn zone_flag(timezone: Option<&str>, default: Tz) -> Result<Tz> {
    Ok(ops::parse_zone("--timezone", timezone, default)?)
}

fn rule_input(mapref: String, rule: RuleArgs, default_zone: Tz) -> Result<ScheduleInput> {
    let zone = zone_flag(rule.timezone.as_deref(), default_zone)?;
    let frqcd = rule.frqcd.ok_or_else(|| {
        UsageError("--frqcd is required (ID, DL, WK, FN, MN, QT, HY, YR or CR)".into())
    })?;
    Ok(ScheduleInput {
        mapref,
        frqcd,
        frqdd: rule.frqdd,
        frqhh: rule.frqhh,
        frqmi: rule.frqmi,
        cron: rule.cron,
        start: rule
            .start
            .map(|t| ops::parse_wall_clock("--start", &t, zone))
            .transpose()?,
        end: rule
            .end
            .map(|t| ops::parse_wall_clock("--end", &t, zone))
            .transpose()?,
        timezone: rule.timezone,
        ..ScheduleInput::default()
    })
}

async fn schedule(
    settings: &Settings,
    command: ScheduleCommand,
    now: DateTime<Utc>,
) -> Result<ExitCode> {
    let zone = settings.timezone;
    match command {
        ScheduleCommand::Add {
            mapref,
            rule,
            misfire,
            after,
            maxfail,
            enable,
        } => {
            let input = ScheduleInput {
                misfire,
                after,
                maxfail,
                enable,
                ..rule_input(mapref, rule, zone)?
            };
            // Validate before touching the database, so a typo never needs one.
            ops::validate_schedule(&input, zone)?;
            let store = open(settings).await?;
            let id = ops::add_schedule(&*store, &input, zone, now).await?;
            println!("{id}");
        }
        ScheduleCommand::List { json } => {
            let store = open(settings).await?;
            let schedules = store.list_schedules(false).await?;
            if json {
                println!("{}", output::schedules_json(&schedules));
            } else {
                println!("{}", output::schedules_table(&schedules));
            }
        }
        ScheduleCommand::Enable { jobschid } | ScheduleCommand::Disable { jobschid } => {
            let enabled = matches!(command, ScheduleCommand::Enable { .. });
            let store = open(settings).await?;
            let next = ops::set_schedule_enabled(&*store, jobschid, enabled, zone, now).await?;
            match (enabled, next) {
                (false, _) => eprintln!("schedule {jobschid} disabled"),
                (true, Some(next)) => eprintln!(
                    "schedule {jobschid} enabled; next fire {}",
                    dwsched_schedule::format_slot(next)
                ),
                (true, None) => eprintln!("schedule {jobschid} enabled; it has no fire by time"),
            }
        }
        ScheduleCommand::Preview {
            jobschid,
            rule,
            after,
            count,
        } => {
            let after = match after {
                Some(text) => DateTime::parse_from_rfc3339(text.trim())
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        UsageError(format!(
                            "--after='{text}': expected an RFC 3339 time such as 2026-03-01T06:00:00Z"
                        ))
                    })?,
                None => now,
            };
            let schedule = match jobschid {
                Some(id) => {
                    let default_zone = zone_flag(rule.timezone.as_deref(), zone)?;
                    let store = open(settings).await?;
                    let row = store
                        .get_schedule(id)
                        .await?
                        .ok_or_else(|| UsageError(format!("schedule {id} does not exist")))?;
                    dwsched_schedule::parse_schedule(&row, default_zone)
                        .map_err(|e| UsageError(format!("schedule {id}: {e}")))?
                }
                None => ops::validate_schedule(&rule_input("preview".into(), rule, zone)?, zone)?,
            };
            if let Some(parent) = schedule.parent {
                eprintln!(
                    "schedule {} runs after schedule {parent} succeeds; it has no fires by time",
                    schedule.jobschid
                );
            }
            for fire in schedule.fires_after(after, count) {
                println!("{}", dwsched_schedule::format_slot(fire));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_params(params: ParamArgs, truncate: bool, run_date: Option<NaiveDate>) -> RunParams {
    RunParams {
        params: params.into_array(),
        truncate,
        run_date,
    }
}

fn parse_date(flag: &str, text: &str) -> Result<NaiveDate> {
    parse_business_date(text)
        .map_err(|reason| UsageError(format!("{flag}='{text}': {reason}")).into())
}

/// Follows a HISTORY request to its end with a progress bar over its dates (on stderr,
/// so that stdout keeps only the request id).
async fn wait_for_history(
    store: &dyn Store,
    mapref: &str,
    request_id: &str,
    dates: u64,
) -> Result<ExitCode> {
    use dwsched_model::{RequestStatus, RunStatus};
    let bar = indicatif::ProgressBar::new(dates);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{bar:40}] {pos}/{len} dates, {elapsed}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message(format!("{mapref} waiting"));
    let filter = RunFilter {
        mapref: Some(mapref.to_string()),
        request_id: Some(request_id.to_string()),
        limit: 100_000,
        ..RunFilter::default()
    };
    loop {
        let request = store.get_request(request_id).await?;
        let runs = store.list_runs(&filter).await?;
        let done = runs
            .iter()
            .filter(|r| r.status == Some(RunStatus::Completed))
            .count();
        bar.set_position(done as u64);
        if let Some(running) = runs
            .iter()
            .find(|r| r.status == Some(RunStatus::InProgress))
        {
            bar.set_message(format!("{mapref} run {}", running.prcid));
        }
        match request.and_then(|r| r.status) {
            Some(RequestStatus::Done) => {
                bar.finish_with_message(format!("{mapref} done"));
                return Ok(ExitCode::SUCCESS);
            }
            Some(status @ (RequestStatus::Failed | RequestStatus::Cancelled)) => {
                bar.abandon_with_message(format!("{mapref} {status}"));
                let failed = runs.iter().find(|r| r.status == Some(RunStatus::Failed));
                if let Some(run) = failed {
                    eprintln!(
                        "run {} failed: {}",
                        run.prcid,
                        run.msg.as_deref().unwrap_or("no message")
                    );
                }
                return Ok(ExitCode::from(1));
            }
            _ => {}
        }
        bar.tick();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
