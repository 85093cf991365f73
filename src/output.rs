//! Tables for people and JSON for scripts.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use dwsched_model::{CalendarRecord, Connection, Job, JobFlow, Run, ScheduleRow};
use dwsched_schedule::{Calendar, Fire, HolidayRule, Schedule, format_slot};
use dwsched_service::status::{DwtoolScheduleLine, StatusReport, human_duration};
use dwsched_store::MigrationReport;
use serde_json::Value;

use crate::config::Settings;

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    table
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
    )
}

fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_string()
}

pub fn migration_summary(report: &MigrationReport, settings: &Settings) -> String {
    let target = format!(
        "{} database {}{}",
        settings.backend,
        dwsched_store::redact_url(&settings.database_url),
        settings
            .schema
            .as_deref()
            .map(|s| format!(", schema {s}"))
            .unwrap_or_default()
    );
    if !report.changed_anything() {
        return format!(
            "{target}: up to date (schema version {})",
            report.to_version
        );
    }
    let mut lines = vec![format!(
        "{target}: schema version {} -> {}",
        report
            .from_version
            .map_or("none".to_string(), |v| v.to_string()),
        report.to_version
    )];
    if !report.tables_created.is_empty() {
        lines.push(format!(
            "  created tables: {}",
            report.tables_created.join(", ")
        ));
    }
    if !report.columns_added.is_empty() {
        lines.push(format!(
            "  added columns: {}",
            report.columns_added.join(", ")
        ));
    }
    if !report.indexes_created.is_empty() {
        lines.push(format!(
            "  created indexes: {}",
            report.indexes_created.join(", ")
        ));
    }
    lines.join("\n")
}

/// A schedule's rule in one short phrase: `WK MON 06:00`, `CR */5 * * * *`, `after 12`.
pub fn describe_rule(row: &ScheduleRow) -> String {
    if let Some(parent) = row.dpnd_jobschid {
        return format!("after {parent}");
    }
    let code = row.frqcd.as_deref().unwrap_or("?");
    let at = format!(
        "{:02}:{:02}",
        row.frqhh.unwrap_or(0),
        row.frqmi.unwrap_or(0)
    );
    let rule = match code.to_ascii_uppercase().as_str() {
        "CR" => format!("CR {}", row.cronexpr.as_deref().unwrap_or("?")),
        "ID" => format!(
            "ID every {}h{:02}m",
            row.frqhh.unwrap_or(0),
            row.frqmi.unwrap_or(0)
        ),
        "DL" => format!("DL {at}"),
        other => format!("{other} {} {at}", row.frqdd.as_deref().unwrap_or("?")),
    };
    match dwsched_service::status::calendar_of(row) {
        Some(calendar) => format!("{rule}, calendar {calendar}"),
        None => rule,
    }
}

pub fn calendars_table(calendars: &[CalendarRecord], today: NaiveDate) -> String {
    let mut t = table(&[
        "NAME",
        "WORK DAYS",
        "HOLIDAYS",
        "NEXT HOLIDAY",
        "DESCRIPTION",
    ]);
    for c in calendars {
        let next = c.holidays.iter().find(|h| h.date >= today);
        t.add_row(vec![
            c.name.clone(),
            or_dash(c.workdays.as_deref()),
            c.holidays.len().to_string(),
            next.map_or("-".to_string(), |h| {
                format!("{} {}", h.date, h.description.as_deref().unwrap_or(""))
                    .trim()
                    .to_string()
            }),
            or_dash(c.description.as_deref()),
        ]);
    }
    t.to_string()
}

/// A year of a calendar as twelve month grids, three across, weeks from Monday:
/// business days plain, `·` on a day off, `*` on a holiday; then the year's
/// holidays.
pub fn calendar_year(record: &CalendarRecord, calendar: &Calendar, year: i32) -> String {
    let mut out = format!(
        "{} {year}   work days {}   (NN* holiday, NN· not a work day)\n\n",
        record.name,
        calendar.workdays_text()
    );
    for quarter in 0..4 {
        let months: Vec<Vec<String>> = (1..=3)
            .map(|m| month_grid(calendar, year, quarter * 3 + m))
            .collect();
        let height = months.iter().map(Vec::len).max().unwrap_or(0);
        for line in 0..height {
            let row: Vec<String> = months
                .iter()
                .map(|m| format!("{:<28}", m.get(line).map_or("", String::as_str)))
                .collect();
            out.push_str(row.join("  ").trim_end());
            out.push('\n');
        }
        out.push('\n');
    }
    let holidays: Vec<String> = calendar
        .holidays()
        .range(
            NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or_default()
                ..=NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or_default(),
        )
        .map(|(date, name)| format!("  {date} {:<3} {name}", date.format("%a")))
        .collect();
    if holidays.is_empty() {
        out.push_str(&format!("no holidays in {year}\n"));
    } else {
        out.push_str(&format!("holidays in {year}:\n{}\n", holidays.join("\n")));
    }
    out
}

/// One month: its name, the weekday header, and its weeks.
fn month_grid(calendar: &Calendar, year: i32, month: u32) -> Vec<String> {
    let Some(first) = NaiveDate::from_ymd_opt(year, month, 1) else {
        return Vec::new();
    };
    let mut lines = vec![
        format!("{:^28}", first.format("%B")).trim_end().to_string(),
        " Mo  Tu  We  Th  Fr  Sa  Su".to_string(),
    ];
    let mut week = "    ".repeat(first.weekday().num_days_from_monday() as usize);
    for day in first.iter_days().take_while(|d| d.month() == month) {
        let mark = if calendar.holidays().contains_key(&day) {
            '*'
        } else if calendar.is_business_day(day) {
            ' '
        } else {
            '·'
        };
        week.push_str(&format!("{:>3}{mark}", day.day()));
        if day.weekday() == chrono::Weekday::Sun {
            lines.push(week.trim_end().to_string());
            week = String::new();
        }
    }
    if !week.is_empty() {
        lines.push(week.trim_end().to_string());
    }
    lines
}

pub fn schedules_table(rows: &[ScheduleRow]) -> String {
    let mut t = table(&[
        "ID",
        "MAPREF",
        "RULE",
        "ZONE",
        "ENABLED",
        "NEXT FIRE",
        "LAST RUN",
        "PROBLEM",
    ]);
    for row in rows {
        t.add_row(vec![
            row.jobschid.to_string(),
            row.mapref.clone(),
            describe_rule(row),
            or_dash(row.timezone.as_deref()),
            if row.is_scheduled() { "yes" } else { "no" }.to_string(),
            time(row.nxt_run_dt),
            time(row.lst_run_dt),
            or_dash(row.scherr.as_deref()),
        ]);
    }
    t.to_string()
}

pub fn schedules_json(rows: &[ScheduleRow]) -> String {
    let items: Vec<Value> = rows
        .iter()
        .map(dwsched_service::status::schedule_json)
        .collect();
    serde_json::to_string_pretty(&items).expect("JSON values serialise")
}

pub fn jobs_table(jobs: &[Job], schedules: &[ScheduleRow]) -> String {
    let mut t = table(&["MAPREF", "JOBID", "FLOW VERSION", "SCHEDULES", "UPDATED"]);
    for job in jobs {
        let rules: Vec<String> = schedules
            .iter()
            .filter(|s| s.mapref == job.mapref)
            .map(|s| {
                format!(
                    "{} ({})",
                    describe_rule(s),
                    if s.is_scheduled() { "on" } else { "off" }
                )
            })
            .collect();
        t.add_row(vec![
            job.mapref.clone(),
            job.jobid.to_string(),
            job.current_flow_id.map_or("-".into(), |id| id.to_string()),
            if rules.is_empty() {
                "-".into()
            } else {
                rules.join(", ")
            },
            time(job.updated_at),
        ]);
    }
    t.to_string()
}

pub fn job_details(flow: &JobFlow, schedules: &[ScheduleRow]) -> String {
    let pretty = flow
        .dwlogic
        .as_deref()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .map(|v| serde_json::to_string_pretty(&v).expect("JSON values serialise"))
        .unwrap_or_else(|| flow.dwlogic.clone().unwrap_or_default());
    let mut out = format!(
        "job {} (JOBID {}), flow version {} registered {}\n{pretty}\n",
        flow.mapref,
        flow.jobid.map_or("-".into(), |id| id.to_string()),
        flow.jobflwid,
        time(flow.created_at)
    );
    if schedules.is_empty() {
        out.push_str("no schedules");
    } else {
        out.push_str(&schedules_table(schedules));
    }
    out
}

pub fn connections_table(connections: &[Connection]) -> String {
    let mut t = table(&[
        "NAME", "TYPE", "HOST", "PORT", "DATABASE", "SCHEMA", "USER", "PASSWORD",
    ]);
    for c in connections {
        let password = match c.passwd.as_deref() {
            None | Some("") => "-".to_string(),
            Some(p) if p.starts_with("env:") => p.to_string(),
            Some(_) => "(plain text)".to_string(),
        };
        t.add_row(vec![
            c.connm.clone(),
            or_dash(c.dbtyp.as_deref()),
            or_dash(c.dbhost.as_deref()),
            c.dbport.map_or("-".into(), |p| p.to_string()),
            database_or_file(c),
            or_dash(c.schnm.as_deref()),
            or_dash(c.usrnm.as_deref()),
            password,
        ]);
    }
    t.to_string()
}

/// A connection's database, or its file for SQLite.
fn database_or_file(c: &Connection) -> String {
    match (&c.dbsrvnm, c.dbtyp.as_deref()) {
        (Some(db), _) => db.clone(),
        (None, Some(t)) if t.eq_ignore_ascii_case("SQLITE") => c
            .constr
            .as_deref()
            .and_then(dwsched_flow::sqlite_path)
            .unwrap_or_else(|| "-".into()),
        _ => "-".into(),
    }
}

/// A run and its steps, for `runs show`.
pub fn run_details(run: &Run, steps: &[dwsched_model::StepRecord], now: DateTime<Utc>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let duration = |start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>| {
        start
            .map(|s| (end.unwrap_or(now) - s).num_milliseconds().max(0))
            .map_or("-".into(), |ms| format!("{:.2} s", ms as f64 / 1000.0))
    };
    let field = |out: &mut String, name: &str, value: String| {
        let _ = writeln!(out, "{name:<11}{value}");
    };
    field(&mut out, "run", run.prcid.to_string());
    field(&mut out, "job", or_dash(run.mapref.as_deref()));
    field(
        &mut out,
        "status",
        run.status.map_or("?".into(), |s| s.as_str().to_string()),
    );
    field(
        &mut out,
        "run date",
        run.run_date.map_or("-".into(), |d| d.to_string()),
    );
    field(&mut out, "started", time(run.started_at));
    field(&mut out, "ended", time(run.ended_at));
    field(&mut out, "duration", duration(run.started_at, run.ended_at));
    field(&mut out, "node", or_dash(run.node.as_deref()));
    field(&mut out, "request", or_dash(run.request_id.as_deref()));
    if let Some(params) = run.prclog.as_deref().filter(|p| !p.is_empty()) {
        field(&mut out, "params", params.to_string());
    }
    if let Some(msg) = &run.msg {
        field(&mut out, "message", msg.clone());
    }
    let mut t = table(&[
        "STEP", "ATTEMPT", "STATUS", "STARTED", "DURATION", "SOURCE", "TARGET", "REJECTED",
        "MESSAGE",
    ]);
    let count = |n: Option<i64>| n.map_or("-".into(), |n| n.to_string());
    for step in steps {
        t.add_row(vec![
            step.step.clone(),
            if step.attempt == 0 {
                "-".into()
            } else {
                step.attempt.to_string()
            },
            step.status.as_str().to_string(),
            time(step.started_at),
            duration(step.started_at, step.ended_at),
            count(step.srcrows),
            count(step.trgrows),
            count(step.errrows),
            or_dash(step.msg.as_deref()),
        ]);
    }
    if steps.is_empty() {
        let _ = writeln!(out, "\nno step records (DMS_PRCSTEP) for this run");
    } else {
        let _ = writeln!(out, "\n{t}");
    }
    out
}

pub fn runs_table(runs: &[Run], now: DateTime<Utc>) -> String {
    let mut t = table(&[
        "PRCID", "MAPREF", "RUN_DATE", "STATUS", "STARTED", "DURATION", "NODE", "MESSAGE",
    ]);
    for run in runs {
        let duration = run
            .started_at
            .map(|start| (run.ended_at.unwrap_or(now) - start).num_seconds().max(0))
            .map_or("-".into(), human_duration);
        t.add_row(vec![
            run.prcid.to_string(),
            or_dash(run.mapref.as_deref()),
            run.run_date.map_or("-".into(), |d| d.to_string()),
            run.status.map_or("?".into(), |s| s.as_str().to_string()),
            time(run.started_at),
            duration,
            or_dash(run.node.as_deref()),
            or_dash(run.msg.as_deref()),
        ]);
    }
    t.to_string()
}

pub fn status_text(report: &StatusReport, limit: usize) -> String {
    let mut out = format!("dwsched status at {}\n", time(Some(report.at)));
    let mut nodes = table(&["NODE", "HOST", "PID", "ROLE", "HEARTBEAT", "RUNNING"]);
    for n in &report.nodes {
        let role = if n.fires_schedules {
            "fires schedules".to_string()
        } else {
            or_dash(n.node.role.as_deref())
        };
        let heartbeat = n.heartbeat_text();
        let running: Vec<String> = n
            .runs
            .iter()
            .map(|r| format!("{} ({})", r.mapref.as_deref().unwrap_or("?"), r.prcid))
            .collect();
        nodes.add_row(vec![
            n.node.node_id.clone(),
            or_dash(n.node.host.as_deref()),
            n.node.pid.map_or("-".into(), |p| p.to_string()),
            role,
            heartbeat,
            if running.is_empty() {
                "-".to_string()
            } else {
                running.join(", ")
            },
        ]);
    }
    if report.nodes.is_empty() {
        out.push_str("\nNo live nodes: start one with `dwsched run`.\n");
    } else {
        out.push_str(&format!("\nNodes\n{nodes}\n"));
    }
    let queue: Vec<String> = report
        .queue
        .iter()
        .map(|(status, n)| format!("{status} {n}"))
        .collect();
    out.push_str(&format!(
        "\nQueue: {}\n",
        if queue.is_empty() {
            "empty".to_string()
        } else {
            queue.join(", ")
        }
    ));
    if !report.running.is_empty() {
        out.push_str(&format!(
            "\nRuns in progress\n{}\n",
            runs_table(&report.running, report.at)
        ));
    }
    if !report.recent.is_empty() {
        out.push_str(&format!(
            "\nRecent runs\n{}\n",
            runs_table(&report.recent, report.at)
        ));
    }
    if !report.upcoming.is_empty() {
        let mut next = table(&[
            "JOBSCHID",
            "MAPREF",
            "NEXT FIRE",
            "LAST RUN",
            "FAILCNT",
            "CALENDAR",
        ]);
        for s in report.upcoming.iter().take(limit) {
            next.add_row(vec![
                s.jobschid.to_string(),
                s.mapref.clone(),
                time(s.nxt_run_dt),
                time(s.lst_run_dt),
                s.failcnt.unwrap_or(0).to_string(),
                dwsched_service::status::calendar_of(s).unwrap_or_else(|| "-".into()),
            ]);
        }
        out.push_str(&format!("\nNext fires\n{next}\n"));
    }
    if !report.invalid_schedules.is_empty() {
        let mut invalid = table(&["JOBSCHID", "MAPREF", "PROBLEM"]);
        for s in &report.invalid_schedules {
            invalid.add_row(vec![
                s.jobschid.to_string(),
                s.mapref.clone(),
                or_dash(s.scherr.as_deref()),
            ]);
        }
        out.push_str(&format!(
            "\nSchedules that cannot be scheduled\n{invalid}\n"
        ));
    }
    let reports: Vec<DwtoolScheduleLine> = report.report_schedules.iter().map(Into::into).collect();
    out.push_str(&dwtool_schedules_table("Report schedules", &reports, limit));
    let uploads: Vec<DwtoolScheduleLine> = report.upload_schedules.iter().map(Into::into).collect();
    out.push_str(&dwtool_schedules_table(
        "File-upload schedules",
        &uploads,
        limit,
    ));
    out.push_str(&match report.error_rate() {
        Some(rate) => format!(
            "\nLast 24 h: {} runs ended, {} failed ({:.1} %)",
            report.ended_last_day,
            report.failed_last_day,
            rate * 100.0
        ),
        None => "\nLast 24 h: no runs ended".to_string(),
    });
    out
}

pub fn runs_json(runs: &[Run]) -> String {
    let items: Vec<Value> = runs.iter().map(dwsched_service::status::run_json).collect();
    serde_json::to_string_pretty(&items).expect("JSON values serialise")
}

/// A mapping job's plan, for `dwtool show`.
pub fn mapping_plan(resolved: &dwsched_service::dwtool::ResolvedMapping) -> String {
    use dwsched_flow::mapping::{Checkpoint, TargetKind};
    use std::fmt::Write as _;
    let report = &resolved.report;
    let mut out = String::new();
    let Some(plan) = &report.plan else {
        let _ = writeln!(out, "{report}");
        return out;
    };
    let connection = |row: &Connection| format!("{} (CONID {})", row.connm, row.conid);
    let (source, target) = match &resolved.connections {
        Some((source, target)) => (connection(source), connection(target)),
        None => (
            format!("CONID {}", plan.combination.source_conid),
            format!("CONID {}", plan.target_conid),
        ),
    };
    let kind = match plan.target_kind {
        TargetKind::Dim => format!("dimension, SCD type {}", plan.combination.scd_type),
        TargetKind::Fact => "fact, upserted by key".to_string(),
    };
    let _ = writeln!(out, "mapping job  {} (JOBID {})", plan.mapref, plan.jobid);
    let target_table = match &plan.target_schema {
        Some(schema) => format!("{schema}.{}", plan.target_table),
        None => plan.target_table.clone(),
    };
    let _ = writeln!(out, "target       {target_table} on {target}: {kind}");
    let _ = writeln!(
        out,
        "source       {source}, combination {}",
        plan.combination.code
    );
    let checkpoint = match &plan.checkpoint {
        Checkpoint::Disabled => "off".to_string(),
        Checkpoint::Key(columns) => {
            format!("KEY ({}): param1 resumes after a key", columns.join(", "))
        }
        Checkpoint::SkipRows => "PYTHON: param1 skips that many source rows".to_string(),
        Checkpoint::MarkOnly => "NONE".to_string(),
    };
    let _ = writeln!(out, "batch        {} rows", plan.batch_rows);
    let _ = writeln!(out, "checkpoint   {checkpoint}");
    let mut columns = table(&["target column", "source column", "key", "hashed"]);
    for column in &plan.columns {
        let key = plan
            .key
            .iter()
            .any(|k| k.target.eq_ignore_ascii_case(&column.target));
        columns.add_row(vec![
            column.target.clone(),
            column.source.clone(),
            if key { "key" } else { "" }.to_string(),
            if column.hashed { "yes" } else { "no" }.to_string(),
        ]);
    }
    let _ = writeln!(out, "{columns}");
    let _ = writeln!(out, "source SQL");
    for line in plan.combination.sql.lines() {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(out, "check        {report}");
    out
}

/// `schedule preview --explain`: each fire (RFC 3339 UTC, first on its line), with the
/// slot a calendar moved it from and why, and the slots a calendar skipped, in time
/// order.
pub fn preview_explained(schedule: &Schedule, after: DateTime<Utc>, fires: &[Fire]) -> String {
    let mut lines: Vec<(DateTime<Utc>, String)> = fires
        .iter()
        .map(|fire| {
            let mut line = format_slot(fire.at);
            if fire.is_moved() {
                line.push_str(&format!(
                    "  moved from slot {}: {}",
                    format_slot(fire.slot),
                    schedule.calendar_note(fire.slot).unwrap_or_default()
                ));
            }
            (fire.at, line)
        })
        .collect();
    let skipping = schedule
        .calendar
        .as_ref()
        .is_some_and(|c| c.rule == HolidayRule::Skip);
    if let (true, Some(last)) = (skipping, fires.last()) {
        for slot in schedule.slots(after).take_while(|slot| *slot <= last.at) {
            if let Some(why) = schedule.calendar_note(slot) {
                lines.push((slot, format!("skipped {}: {why}", format_slot(slot))));
            }
        }
    }
    lines.sort_by_key(|(at, _)| *at);
    lines.into_iter().map(|(_, line)| line + "\n").collect()
}

/// A wall-clock time as the tables show it, `-` when there is none.
fn local(at: Option<chrono::NaiveDateTime>) -> String {
    dwsched_service::status::local_text(at).unwrap_or_else(|| "-".to_string())
}

/// A table of DWTOOL schedule rows under `title` (nothing when there are none); the
/// delivery column when the rows have one.
fn dwtool_schedules_table(title: &str, lines: &[DwtoolScheduleLine], limit: usize) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let delivery = lines.iter().any(|l| l.delivery.is_some());
    let mut headers = vec![
        "SCHDID",
        "MAPREF",
        "FREQUENCY",
        "NEXT RUN (LOCAL)",
        "LAST RUN",
        "STATUS",
    ];
    if delivery {
        headers.push("DELIVERY");
    }
    let mut shown = table(&headers);
    for line in lines.iter().take(limit) {
        let mut cells = vec![
            line.schdid.to_string(),
            line.mapref.clone(),
            line.frequency.clone(),
            local(line.next_run),
            local(line.last_run),
            or_dash(Some(line.status.as_str())),
        ];
        cells.extend(line.delivery.clone());
        shown.add_row(cells);
    }
    format!("\n{title}\n{shown}\n")
}
