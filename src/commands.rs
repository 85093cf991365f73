//! One function per command: read the arguments, call the layer that does the work,
//! print the result.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use chrono_tz::Tz;
use dwsched_flow::FlowFormat;
use dwsched_model::{RunParams, RunPayload, payload::parse_business_date};
use dwsched_service::ops::{self, ScheduleInput};
use dwsched_store::{Store, StoreOptions};

use crate::UsageError;
use crate::cli::{
    CalendarCommand, Cli, Command, ConnCommand, DwtoolCommand, HolidayCommand, JobCommand,
    ParamArgs, RuleArgs, RunsCommand, ScheduleCommand, ScheduleExtras,
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
    // The service and a foreground run log what they do; other commands only warn.
    let logs_work = matches!(
        cli.command,
        Command::Run(_) | Command::Job(JobCommand::Run { .. })
    );
    init_logging(&settings, if logs_work { "info" } else { "warn" });
    let now = Utc::now();
    match cli.command {
        Command::Init => init(&settings).await,
        Command::Run(args) => crate::serve::run(settings, args.demo).await,
        Command::Job(command) => job(&settings, command, now).await,
        Command::Conn(command) => conn(&settings, command).await,
        Command::Dwtool(command) => dwtool(&settings, command).await,
        Command::Schedule(command) => schedule(&settings, command, now).await,
        Command::Calendar(command) => calendar(&settings, command, now).await,
        Command::Enqueue {
            mapref,
            params,
            truncate,
            run_date,
            from_step,
            wait,
        } => {
            let payload = run_payload(params, truncate, run_date, from_step)?;
            let store = open(&settings).await?;
            let id = ops::enqueue_run(&*store, &mapref, payload, now).await?;
            println!("{id}");
            if !wait {
                return Ok(ExitCode::SUCCESS);
            }
            crate::runs::wait_for_request(&*store, &mapref, &id, 1).await
        }
        Command::History {
            mapref,
            from,
            to,
            truncate,
            continue_on_failure,
            wait,
            params,
        } => {
            let from = parse_date("--from", &from)?;
            let to = parse_date("--to", &to)?;
            let today = now.with_timezone(&settings.timezone).date_naive();
            if to > today {
                eprintln!(
                    "warning: --to {to} is after today ({today} in {}); those dates run with :run_date in the future",
                    settings.timezone
                );
            }
            let store = open(&settings).await?;
            let params = run_params(params, truncate, None);
            let id =
                ops::enqueue_history(&*store, &mapref, from, to, params, continue_on_failure, now)
                    .await?;
            println!("{id}");
            if !wait {
                return Ok(ExitCode::SUCCESS);
            }
            let dates = (to - from).num_days() + 1;
            crate::runs::wait_for_request(&*store, &mapref, &id, u64::try_from(dates).unwrap_or(0))
                .await
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
        Command::Runs { show, filter } => {
            let store = open(&settings).await?;
            match show {
                Some(RunsCommand::Show { prcid, json }) => {
                    crate::runs::show(&*store, prcid, json).await
                }
                None => crate::runs::list(&*store, filter).await,
            }
        }
        Command::Logs { prcid } => {
            let store = open(&settings).await?;
            crate::runs::logs(&*store, &settings, prcid).await
        }
    }
}

fn init_logging(settings: &Settings, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    // Notices of users' SQL ("relation … already exists, skipping") are not news.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},sqlx::postgres::notice=warn")));
    // Colours only for a person at a terminal, not in files and journals.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
        JobCommand::Run {
            mapref,
            run_date,
            params,
            truncate,
            from_step,
        } => {
            let payload = run_payload(params, truncate, run_date, from_step)?;
            return crate::runs::run_in_foreground(settings, store, &mapref, payload).await;
        }
        JobCommand::Delete { mapref, force } => {
            let retired = ops::delete_job(&*store, &mapref, force, now).await?;
            let schedules = if retired.is_empty() {
                String::new()
            } else {
                let ids: Vec<String> = retired.iter().map(i64::to_string).collect();
                format!(" with its schedules {}", ids.join(", "))
            };
            eprintln!("job {mapref} retired (CURFLG='N'){schedules}");
        }
        JobCommand::Put { mapref, flow } => {
            let text = std::fs::read_to_string(&flow).map_err(|e| {
                UsageError(format!("--flow '{}': cannot be read: {e}", flow.display()))
            })?;
            let format = FlowFormat::from_path(&flow.to_string_lossy());
            let (stored, parsed) = ops::register_flow(&*store, &mapref, &text, format, now).await?;
            println!(
                "job {mapref}: flow JOBFLWID {} registered ({} steps)",
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

async fn calendar(
    settings: &Settings,
    command: CalendarCommand,
    now: DateTime<Utc>,
) -> Result<ExitCode> {
    use dwsched_service::calendars;
    let store = open(settings).await?;
    let today = now.with_timezone(&settings.timezone).date_naive();
    match command {
        CalendarCommand::Put {
            name,
            workdays,
            descr,
        } => {
            let new =
                calendars::put_calendar(&*store, &name, workdays.as_deref(), descr.as_deref(), now)
                    .await?;
            let stored = calendars::get_calendar(&*store, &name).await?;
            eprintln!(
                "calendar {} {}; work days {}",
                stored.name,
                if new { "created" } else { "updated" },
                stored.workdays.as_deref().unwrap_or("-")
            );
        }
        CalendarCommand::Holiday(HolidayCommand::Add { name, date, descr }) => {
            let date = parse_date("DATE", &date)?;
            let holiday = dwsched_model::Holiday {
                date,
                description: descr,
            };
            let added = calendars::add_holidays(&*store, &name, &[holiday], now).await?;
            let what = if added == 1 { "added to" } else { "updated in" };
            eprintln!("holiday {date} {what} calendar {}", name.trim());
        }
        CalendarCommand::Holiday(HolidayCommand::Remove { name, date, .. }) => {
            let date = parse_date("DATE", &date)?;
            calendars::remove_holiday(&*store, &name, date, now).await?;
            eprintln!("holiday {date} removed from calendar {}", name.trim());
        }
        CalendarCommand::Import { name, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let file_name = file.display().to_string();
            let (read, added) =
                calendars::import_holidays(&*store, &name, &file_name, &text, now).await?;
            eprintln!(
                "{read} holidays read from {file_name}: {added} new, {} already in calendar {}",
                read - added,
                name.trim()
            );
        }
        CalendarCommand::List { json } => {
            let all = store.list_calendars().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                println!("{}", output::calendars_table(&all, today));
            }
        }
        CalendarCommand::Show { name, year, json } => {
            let record = calendars::get_calendar(&*store, &name).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&record)?);
            } else {
                let calendar = dwsched_schedule::Calendar::from_record(&record)
                    .map_err(|why| anyhow::anyhow!("calendar {}: {why}", record.name))?;
                print!(
                    "{}",
                    output::calendar_year(&record, &calendar, year.unwrap_or(today.year()))
                );
            }
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
            if let Some(path) = stored.constr.as_deref().and_then(dwsched_flow::sqlite_path)
                && !std::path::Path::new(&path).exists()
            {
                eprintln!(
                    "warning: connection '{name}': SQLite file '{path}' does not exist (yet); a relative path is read from the service's working directory, sqlite:///abs/path names an absolute one"
                );
            }
            println!("connection {name} registered (CONID {})", stored.conid);
        }
        ConnCommand::List => {
            let connections = store.list_connections().await?;
            println!("{}", output::connections_table(&connections));
        }
        ConnCommand::Delete { name } => {
            ops::delete_connection(&*store, &name).await?;
            eprintln!("connection {name} retired (CURFLG='N')");
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
        calendar: rule.calendar,
        on_holiday: rule.on_holiday,
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
            extras,
            enable,
        } => {
            let input = ScheduleInput {
                misfire: extras.misfire,
                depends_on: extras.depends_on,
                maxfail: extras.maxfail,
                enable,
                ..rule_input(mapref, rule, zone)?
            };
            // Validate before touching the database, so a typo never needs one (a
            // calendar is checked against the stored ones).
            if input.calendar.is_none() {
                ops::validate_schedule(&input, &mut Default::default(), zone)?;
            }
            let store = open(settings).await?;
            let id = ops::add_schedule(&*store, &input, zone, now).await?;
            println!("{id}");
        }
        ScheduleCommand::Edit {
            jobschid,
            rule,
            extras,
        } => {
            let store = open(settings).await?;
            let edit = schedule_edit(rule, extras);
            let id = ops::edit_schedule(&*store, jobschid, &edit, zone, now).await?;
            eprintln!(
                "schedule {jobschid} replaced by version {id} (JOBSCHID {jobschid} is CURFLG='N' now)"
            );
            println!("{id}");
        }
        ScheduleCommand::Delete { jobschid } => {
            let store = open(settings).await?;
            ops::delete_schedule(&*store, jobschid, now).await?;
            eprintln!("schedule {jobschid} retired (CURFLG='N')");
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
            explain,
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
                    ops::schedule_parser(&*store)
                        .await?
                        .parse(&row, default_zone)
                        .map_err(|e| UsageError(format!("schedule {id}: {e}")))?
                }
                None => {
                    let input = rule_input("preview".into(), rule, zone)?;
                    if input.calendar.is_some() {
                        let store = open(settings).await?;
                        ops::check_schedule(&*store, &input, zone).await?
                    } else {
                        ops::validate_schedule(&input, &mut Default::default(), zone)?
                    }
                }
            };
            if let Some(parent) = schedule.parent {
                eprintln!(
                    "schedule {} runs after schedule {parent} succeeds; it has no fires by time",
                    schedule.jobschid
                );
            }
            let fires = schedule.fires_after(after, count);
            if explain {
                print!("{}", output::preview_explained(&schedule, after, &fires));
            } else {
                for fire in fires {
                    println!("{}", dwsched_schedule::format_slot(fire.at));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The fields `schedule edit` changes: those given.
fn schedule_edit(rule: RuleArgs, extras: ScheduleExtras) -> ops::ScheduleEdit {
    ops::ScheduleEdit {
        frqcd: rule.frqcd,
        frqdd: rule.frqdd,
        frqhh: rule.frqhh,
        frqmi: rule.frqmi,
        cron: rule.cron,
        start: rule.start,
        end: rule.end,
        timezone: rule.timezone,
        misfire: extras.misfire,
        depends_on: extras.depends_on,
        maxfail: extras.maxfail,
        calendar: rule.calendar,
        on_holiday: rule.on_holiday,
    }
}

/// The payload of a run the user asks for.
fn run_payload(
    params: ParamArgs,
    truncate: bool,
    run_date: Option<String>,
    from_step: Option<String>,
) -> Result<RunPayload> {
    let run_date = run_date.map(|d| parse_date("--run-date", &d)).transpose()?;
    Ok(RunPayload {
        params: run_params(params, truncate, run_date),
        trigger: None,
        from_step,
    })
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
