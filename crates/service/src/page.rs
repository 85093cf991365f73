//! `GET /`: the status page for people, rendered by the node: is it alive, what waits,
//! what runs (with a stop button), what ran and failed, what fires next, and a
//! timeline of the last 24 hours drawn as inline SVG. No build step, no external asset.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use dwsched_model::{Run, RunFilter, RunStatus};

use crate::state::NodeView;
use crate::status::{DwtoolScheduleLine, StatusReport, human_duration};

/// Runs read for the timeline, newest first.
const TIMELINE_RUNS: u32 = 5000;
const TIMELINE_WIDTH: f64 = 960.0;
const ROW_HEIGHT: f64 = 18.0;
const LABEL_WIDTH: f64 = 160.0;
/// Room right of "now" for the last hour label.
const RIGHT_MARGIN: f64 = 24.0;

/// Text made safe for HTML.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn status_class(status: Option<RunStatus>) -> &'static str {
    match status {
        Some(RunStatus::InProgress) => "ip",
        Some(RunStatus::Completed) => "pc",
        Some(RunStatus::Failed) => "fl",
        Some(RunStatus::Stopped) => "st",
        None => "unknown",
    }
}

pub(crate) async fn status_page(State(shared): State<NodeView>) -> Response {
    let now = Utc::now();
    let report =
        match StatusReport::gather(&*shared.store, now, shared.config.lease_span(), 30).await {
            Ok(report) => report,
            Err(err) => {
                shared.health.failed("rendering the status page", &err);
                let body = format!(
                    "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=10>\
                     <title>dwsched: database unreachable</title><h1>dwsched node {}</h1>\
                     <p class=bad>The node is alive but cannot read its database: {}</p>",
                    esc(&shared.config.node_id),
                    esc(&err.to_string())
                );
                return (axum::http::StatusCode::SERVICE_UNAVAILABLE, Html(body)).into_response();
            }
        };
    let day = shared
        .store
        .list_runs(&RunFilter {
            limit: TIMELINE_RUNS,
            ..RunFilter::default()
        })
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            r.started_at.is_some_and(|s| s >= now - Duration::hours(24))
                || r.status == Some(RunStatus::InProgress)
        })
        .collect::<Vec<_>>();
    Html(render(&shared, &report, &day, now)).into_response()
}

fn render(shared: &NodeView, report: &StatusReport, day: &[Run], now: DateTime<Utc>) -> String {
    let mut html = String::with_capacity(32 * 1024);
    let node = esc(&shared.config.node_id);
    let _ = write!(
        html,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="15">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dwsched · {node}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }}
h1 {{ font-size: 1.4em; margin: 0 0 .3em; }} h2 {{ font-size: 1.1em; margin: 1.4em 0 .4em; }}
table {{ border-collapse: collapse; }} th, td {{ padding: .2em .6em; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }}
th {{ background: #f4f4f4; }} .msg {{ max-width: 40em; overflow-wrap: anywhere; color: #555; }}
.pc {{ color: #1a7f37; }} .fl {{ color: #cf222e; font-weight: 600; }} .st {{ color: #bc4c00; }} .ip {{ color: #0969da; }}
.alive {{ color: #1a7f37; font-weight: 600; }} .bad {{ color: #cf222e; font-weight: 600; }}
tr.disabled td {{ color: #999; }} .legend span {{ display: inline-block; margin-right: 1em; }}
.legend i {{ display: inline-block; width: .9em; height: .9em; margin-right: .3em; vertical-align: -1px; }}
button {{ font: inherit; padding: .1em .7em; cursor: pointer; }}
svg text {{ font: 11px system-ui, sans-serif; }}
</style></head><body>
<h1>dwsched node <code>{node}</code></h1>
<p id="alive" class="alive">Alive at {at} UTC{leader}</p>
"#,
        at = when(Some(now)),
        leader = if shared.leading.load(std::sync::atomic::Ordering::SeqCst) {
            " · fires the schedules"
        } else {
            ""
        },
    );
    // The queue is what waits and what runs; ended requests are history.
    let count = |status: &str| {
        report
            .queue
            .iter()
            .filter(|(s, _)| s == status)
            .map(|(_, n)| n)
            .sum::<i64>()
    };
    let _ = writeln!(
        html,
        "<p id=\"queue\">Queue: {} waiting · {} running</p>",
        count("NEW"),
        count("PROCESSING")
    );
    if let Some(rate) = report.error_rate() {
        let _ = writeln!(
            html,
            "<p>Last 24 h: {} runs ended, {} failed ({:.1} %)</p>",
            report.ended_last_day,
            report.failed_last_day,
            rate * 100.0
        );
    }

    html.push_str("<h2>Nodes</h2><table id=\"nodes\"><tr><th>Node</th><th>Host</th><th>Heartbeat</th><th>Role</th><th>Running</th></tr>\n");
    for n in &report.nodes {
        let heartbeat = if n.alive {
            n.heartbeat_text()
        } else {
            format!("<span class=bad>{}</span>", n.heartbeat_text())
        };
        let running: Vec<String> = n
            .runs
            .iter()
            .map(|r| esc(r.mapref.as_deref().unwrap_or("?")))
            .collect();
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{heartbeat}</td><td>{}</td><td>{}</td></tr>",
            esc(&n.node.node_id),
            esc(n.node.host.as_deref().unwrap_or("-")),
            if n.fires_schedules {
                "fires schedules".to_string()
            } else {
                esc(n.node.role.as_deref().unwrap_or("-"))
            },
            running.join(", ")
        );
    }
    html.push_str("</table>\n");

    html.push_str("<h2>Running</h2>\n");
    if report.running.is_empty() {
        html.push_str("<p id=\"running\">Nothing is running.</p>\n");
    } else {
        html.push_str("<table id=\"running\"><tr><th>PRCID</th><th>Job</th><th>Business date</th><th>Node</th><th>Started</th><th>Elapsed</th><th>Log</th><th></th></tr>\n");
        for r in &report.running {
            let mapref = esc(r.mapref.as_deref().unwrap_or("?"));
            let age = r.started_at.map_or(0, |s| (now - s).num_seconds());
            let _ = writeln!(
                html,
                "<tr data-prcid=\"{prcid}\"><td><a href=\"/runs/{prcid}\">{prcid}</a></td><td class=ip>{mapref}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td><button class=\"stop\" data-mapref=\"{mapref}\">Stop</button></td></tr>",
                business_date(r),
                esc(r.node.as_deref().unwrap_or("-")),
                when(r.started_at),
                human_duration(age),
                log_link(shared, r, served_at(report, r)),
                prcid = r.prcid,
            );
        }
        html.push_str("</table>\n");
    }

    html.push_str("<h2>Last 24 hours</h2>\n");
    html.push_str(&timeline(day, now));

    html.push_str("<h2>Recent runs</h2><table id=\"recent\"><tr><th>PRCID</th><th>Job</th><th>Business date</th><th>Status</th><th>Started</th><th>Duration</th><th>Node</th><th>Log</th><th>Message</th></tr>\n");
    for r in &report.recent {
        let duration = match (r.started_at, r.ended_at) {
            (Some(s), Some(e)) => human_duration((e - s).num_seconds()),
            (Some(s), None) => human_duration((now - s).num_seconds()),
            _ => "-".into(),
        };
        let _ = writeln!(
            html,
            "<tr data-prcid=\"{}\"><td><a href=\"/runs/{}\">{}</a></td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{duration}</td><td>{}</td><td>{}</td><td class=msg>{}</td></tr>",
            r.prcid,
            r.prcid,
            r.prcid,
            esc(r.mapref.as_deref().unwrap_or("?")),
            business_date(r),
            status_class(r.status),
            r.status.map_or("?", |s| s.as_str()),
            when(r.started_at),
            esc(r.node.as_deref().unwrap_or("-")),
            log_link(shared, r, served_at(report, r)),
            esc(r.msg.as_deref().unwrap_or("")),
        );
    }
    html.push_str("</table>\n");

    html.push_str("<h2>Schedules</h2>\n");
    html.push_str(&schedules_table(report));
    html.push_str(&report_schedules_table(report));
    html.push_str(&upload_schedules_table(report));
    html.push_str(STOP_SCRIPT);
    html.push_str(LOG_SCRIPT);
    html.push_str("</body></html>\n");
    html
}

fn business_date(run: &Run) -> String {
    run.run_date.map_or_else(|| "-".into(), |d| d.to_string())
}

/// A link to a run's log, on the node that keeps it: this one, or another live node
/// that serves HTTP. Runs of nodes that serve no page get none.
/// `served_at` is where the run's node serves its API, when it is another node.
fn log_link(shared: &NodeView, run: &Run, served_at: Option<&str>) -> String {
    let path = format!("/api/runs/{}/log", run.prcid);
    let href = if run.node.as_deref() == Some(shared.config.node_id.as_str()) {
        Some(path)
    } else {
        served_at.map(|addr| format!("http://{addr}{path}"))
    };
    match href {
        Some(href) => format!("<a class=\"log\" href=\"{}\">log</a>", esc(&href)),
        None => "-".into(),
    }
}

/// A run and its steps (`DMS_PRCSTEP`): `GET /runs/{prcid}`.
pub(crate) async fn run_page(
    State(shared): State<NodeView>,
    axum::extract::Path(prcid): axum::extract::Path<i64>,
) -> Response {
    let found = async {
        let run = shared.store.get_run(prcid).await?;
        let steps = shared.store.run_steps(prcid).await?;
        Ok::<_, dwsched_store::StoreError>(run.map(|run| (run, steps)))
    };
    let (run, steps) = match found.await {
        Ok(Some(found)) => found,
        Ok(None) => {
            let body = format!(
                "<!doctype html><meta charset=utf-8><title>dwsched: no run {prcid}</title><p>Run {prcid} does not exist. <a href=\"/\">Back</a></p>"
            );
            return (axum::http::StatusCode::NOT_FOUND, Html(body)).into_response();
        }
        Err(err) => {
            let body = format!(
                "<!doctype html><meta charset=utf-8><title>dwsched</title><p class=bad>Cannot read run {prcid}: {}</p>",
                esc(&err.to_string())
            );
            return (axum::http::StatusCode::SERVICE_UNAVAILABLE, Html(body)).into_response();
        }
    };
    let now = Utc::now();
    let mut html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>dwsched · run {prcid}</title>\
         <style>body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; }} table {{ border-collapse: collapse; }} \
         th, td {{ padding: .2em .6em; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }} \
         th {{ background: #f4f4f4; }} .pc {{ color: #1a7f37; }} .fl {{ color: #cf222e; font-weight: 600; }} \
         .st {{ color: #bc4c00; }} .ip {{ color: #0969da; }} .sk {{ color: #999; }}</style></head><body>\
         <p><a href=\"/\">dwsched node {}</a></p><h1>Run {prcid} of {}</h1>\n<table id=\"run\">",
        esc(&shared.config.node_id),
        esc(run.mapref.as_deref().unwrap_or("?")),
    );
    for (name, value) in [
        (
            "Status",
            run.status.map_or("?".into(), |s| s.as_str().to_string()),
        ),
        ("Business date", business_date(&run)),
        ("Started", when(run.started_at)),
        ("Ended", when(run.ended_at)),
        ("Node", run.node.clone().unwrap_or_else(|| "-".into())),
        (
            "Request",
            run.request_id.clone().unwrap_or_else(|| "-".into()),
        ),
        ("Parameters", run.prclog.clone().unwrap_or_default()),
        ("Message", run.msg.clone().unwrap_or_default()),
    ] {
        let _ = writeln!(html, "<tr><th>{name}</th><td>{}</td></tr>", esc(&value));
    }
    let _ = writeln!(
        html,
        "<tr><th>Log</th><td>{}</td></tr></table>\n<h2>Steps</h2>",
        log_link_of(&shared, &run).await
    );
    if steps.is_empty() {
        html.push_str("<p id=\"steps\">No step records for this run.</p>\n");
    } else {
        html.push_str("<table id=\"steps\"><tr><th>Step</th><th>Attempt</th><th>Status</th><th>Started</th><th>Duration</th><th>Source rows</th><th>Target rows</th><th>Rejected</th><th>Message</th></tr>\n");
        for s in &steps {
            let duration = s
                .started_at
                .map(|start| human_duration((s.ended_at.unwrap_or(now) - start).num_seconds()))
                .unwrap_or_else(|| "-".into());
            let count = |n: Option<i64>| n.map_or("-".into(), |n| n.to_string());
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{duration}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s.step),
                if s.attempt == 0 {
                    "-".to_string()
                } else {
                    s.attempt.to_string()
                },
                s.status.as_str().to_ascii_lowercase(),
                s.status.as_str(),
                when(s.started_at),
                count(s.srcrows),
                count(s.trgrows),
                count(s.errrows),
                esc(s.msg.as_deref().unwrap_or("")),
            );
        }
        html.push_str("</table>\n");
    }
    html.push_str(LOG_SCRIPT);
    html.push_str("</body></html>\n");
    Html(html).into_response()
}

/// The log link of one run, looking up the node that keeps it.
async fn log_link_of(shared: &NodeView, run: &Run) -> String {
    let served_at = match run.node.as_deref() {
        Some(node) => shared
            .store
            .get_node(node)
            .await
            .ok()
            .flatten()
            .and_then(|n| n.http_addr),
        None => None,
    };
    log_link(shared, run, served_at.as_deref())
}

/// Where the live node that ran `run` serves its API, by the report's nodes.
fn served_at<'a>(report: &'a StatusReport, run: &Run) -> Option<&'a str> {
    report
        .nodes
        .iter()
        .find(|n| n.alive && Some(n.node.node_id.as_str()) == run.node.as_deref())
        .and_then(|n| n.node.http_addr.as_deref())
}

/// Enabled schedules by next fire, then those that cannot be scheduled, then the
/// disabled ones, greyed, with why.
fn schedules_table(report: &StatusReport) -> String {
    if report.upcoming.is_empty()
        && report.invalid_schedules.is_empty()
        && report.disabled_schedules.is_empty()
    {
        return "<p id=\"schedules\">No schedules.</p>\n".into();
    }
    let mut html = String::from(
        "<table id=\"schedules\"><tr><th>JOBSCHID</th><th>Job</th><th>Next fire (UTC)</th><th>Last run</th><th>Failures</th><th>Calendar</th></tr>\n",
    );
    for s in report.upcoming.iter().take(50) {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"calendar\">{}</td></tr>",
            s.jobschid,
            esc(&s.mapref),
            when(s.nxt_run_dt),
            when(s.lst_run_dt),
            s.failcnt.unwrap_or(0),
            esc(&crate::status::calendar_of(s).unwrap_or_else(|| "-".into())),
        );
    }
    for s in &report.invalid_schedules {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td colspan=4 class=bad>{}</td></tr>",
            s.jobschid,
            esc(&s.mapref),
            esc(s.scherr.as_deref().unwrap_or("cannot be scheduled")),
        );
    }
    for s in &report.disabled_schedules {
        let _ = writeln!(
            html,
            "<tr class=\"disabled\"><td>{}</td><td>{}</td><td colspan=4>{}</td></tr>",
            s.jobschid,
            esc(&s.mapref),
            esc(&crate::status::disabled_reason(s)),
        );
    }
    html.push_str("</table>\n");
    html
}

/// DWTOOL's report schedules beside the job schedules; their times are wall-clock
/// times in the default zone, as the rows hold them.
fn report_schedules_table(report: &StatusReport) -> String {
    let lines: Vec<DwtoolScheduleLine> = report.report_schedules.iter().map(Into::into).collect();
    dwtool_schedules_table("Report schedules", "report-schedules", "Report", &lines)
}

/// DWTOOL's file-upload schedules, as the report schedules are shown.
fn upload_schedules_table(report: &StatusReport) -> String {
    let lines: Vec<DwtoolScheduleLine> = report.upload_schedules.iter().map(Into::into).collect();
    dwtool_schedules_table(
        "File-upload schedules",
        "upload-schedules",
        "Upload",
        &lines,
    )
}

/// A table of DWTOOL schedule rows (nothing when there are none); the delivery column
/// when the rows have one.
fn dwtool_schedules_table(
    title: &str,
    id: &str,
    what: &str,
    lines: &[DwtoolScheduleLine],
) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let delivery = lines.iter().any(|l| l.delivery.is_some());
    let mut html = format!(
        "<h2>{title}</h2>\n<table id=\"{id}\"><tr><th>SCHDID</th><th>{what}</th><th>Frequency</th><th>Next run (local)</th><th>Last run</th><th>Status</th>{}</tr>\n",
        if delivery { "<th>Delivery</th>" } else { "" }
    );
    for line in lines.iter().take(100) {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
            line.schdid,
            esc(&line.mapref),
            esc(&line.frequency),
            local_or_dash(line.next_run),
            local_or_dash(line.last_run),
            esc(&line.status),
            line.delivery
                .as_deref()
                .map(|d| format!("<td>{}</td>", esc(d)))
                .unwrap_or_default(),
        );
    }
    html.push_str("</table>\n");
    html
}

/// A wall-clock time as the tables show it, `-` when there is none.
fn local_or_dash(at: Option<chrono::NaiveDateTime>) -> String {
    crate::status::local_text(at).unwrap_or_else(|| "-".to_string())
}

/// One row per job, one bar per run over the last 24 hours, coloured by status.
fn timeline(runs: &[Run], now: DateTime<Utc>) -> String {
    let from = now - Duration::hours(24);
    let mut by_job: BTreeMap<&str, Vec<&Run>> = BTreeMap::new();
    for run in runs {
        by_job
            .entry(run.mapref.as_deref().unwrap_or("?"))
            .or_default()
            .push(run);
    }
    if by_job.is_empty() {
        return "<p id=\"timeline\">No runs in the last 24 hours.</p>\n".into();
    }
    let span = TIMELINE_WIDTH - LABEL_WIDTH - RIGHT_MARGIN;
    let x = |t: DateTime<Utc>| {
        let seconds = (t - from).num_milliseconds() as f64 / 1000.0;
        LABEL_WIDTH + (seconds / 86_400.0).clamp(0.0, 1.0) * span
    };
    let height = ROW_HEIGHT * (by_job.len() as f64 + 1.0);
    let mut svg = format!(
        "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{TIMELINE_WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"Runs of the last 24 hours\">\n"
    );
    for hour in (0..=24).step_by(3) {
        let at = LABEL_WIDTH + span * f64::from(hour) / 24.0;
        let label = (from + Duration::hours(i64::from(hour))).format("%H:%M");
        let _ = writeln!(
            svg,
            "<line x1=\"{at:.1}\" y1=\"0\" x2=\"{at:.1}\" y2=\"{height}\" stroke=\"#eee\"/>\
             <text x=\"{at:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#777\">{label}</text>",
            height - 4.0
        );
    }
    for (row, (job, runs)) in by_job.iter().enumerate() {
        let y = ROW_HEIGHT * row as f64;
        let _ = writeln!(
            svg,
            "<text x=\"4\" y=\"{:.1}\">{}</text>",
            y + ROW_HEIGHT - 5.0,
            esc(job)
        );
        for run in runs {
            let Some(start) = run.started_at else {
                continue;
            };
            let end = run.ended_at.unwrap_or(now);
            // A bar at least 2 px wide, ending at "now" at the latest.
            let x1 = x(end).max(x(start) + 2.0).min(LABEL_WIDTH + span);
            let x0 = x(start).min(x1 - 2.0);
            let colour = match run.status {
                Some(RunStatus::Completed) => "#2da44e",
                Some(RunStatus::Failed) => "#cf222e",
                Some(RunStatus::Stopped) => "#fb8500",
                Some(RunStatus::InProgress) => "#0969da",
                None => "#888",
            };
            let _ = writeln!(
                svg,
                "<rect class=\"run {}\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\">\
                 <title>{} PRCID {} {} {} – {}{}</title></rect>",
                status_class(run.status),
                y + 3.0,
                x1 - x0,
                ROW_HEIGHT - 6.0,
                esc(job),
                run.prcid,
                run.status.map_or("?", |s| s.as_str()),
                when(Some(start)),
                when(run.ended_at),
                run.msg
                    .as_deref()
                    .map(|m| format!(": {}", esc(m)))
                    .unwrap_or_default(),
            );
        }
    }
    svg.push_str("</svg>\n");
    svg.push_str(
        "<p class=\"legend\" id=\"legend\"><span><i style=\"background:#2da44e\"></i>completed (PC)</span>\
         <span><i style=\"background:#cf222e\"></i>failed (FL)</span>\
         <span><i style=\"background:#fb8500\"></i>stopped (ST)</span>\
         <span><i style=\"background:#0969da\"></i>in progress (IP)</span></p>\n",
    );
    svg
}

/// Log links carry the API token the operator gave (kept in this browser), as the
/// `access_token` a link can hold.
const LOG_SCRIPT: &str = r#"<script>
for (const link of document.querySelectorAll("a.log")) {
  link.addEventListener("click", () => {
    const token = localStorage.getItem("dwsched-token");
    if (token) {
      const url = new URL(link.href, location.href);
      url.searchParams.set("access_token", token);
      link.href = url.toString();
    }
  });
}
</script>
"#;

/// The stop buttons: a STOP request through the API, with the token the operator gives
/// once (kept in this browser) when the node requires one.
const STOP_SCRIPT: &str = r#"<script>
for (const button of document.querySelectorAll("button.stop")) {
  button.addEventListener("click", async () => {
    const mapref = button.dataset.mapref;
    const send = (token) => fetch("/api/jobs/" + encodeURIComponent(mapref) + "/stop", {
      method: "POST",
      headers: Object.assign({"Content-Type": "application/json"},
        token ? {"Authorization": "Bearer " + token} : {}),
      body: "{}",
    });
    button.disabled = true;
    let answer = await send(localStorage.getItem("dwsched-token"));
    if (answer.status === 401) {
      const token = prompt("This node needs its API token to stop runs:");
      if (token) {
        localStorage.setItem("dwsched-token", token);
        answer = await send(token);
      }
    }
    button.textContent = answer.ok ? "Stopping…" : "Failed (" + answer.status + ")";
    setTimeout(() => location.reload(), 1500);
  });
}
</script>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dwtool_upload_schedules_show_with_their_local_times() {
        let at = |text: &str| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").ok();
        let report = StatusReport {
            upload_schedules: vec![dwsched_model::UploadScheduleRow {
                schdid: 40,
                flupldref: "CUST<1>".into(),
                frqncy: Some("DL".into()),
                tm_prm: Some("DL_10:30".into()),
                nxt_run_dt: at("2026-12-01 10:30"),
                lst_run_dt: None,
                stts: Some("ACTIVE".into()),
            }],
            ..StatusReport::default()
        };
        let html = upload_schedules_table(&report);
        assert!(
            html.contains(
                "<tr><td>40</td><td>FLUPLD:CUST&lt;1&gt;</td><td>DL DL_10:30</td>\
                 <td>2026-12-01 10:30:00</td><td>-</td><td>ACTIVE</td></tr>"
            ),
            "{html}"
        );
        assert_eq!(upload_schedules_table(&StatusReport::default()), "");
        // Report schedules add their delivery.
        let report = StatusReport {
            report_schedules: vec![dwsched_model::ReportScheduleRow {
                schdid: 70,
                rprtid: 4,
                stts: Some("ACTIVE".into()),
                lst_run_dt: at("2026-11-30 06:30"),
                ..Default::default()
            }],
            ..StatusReport::default()
        };
        let html = report_schedules_table(&report);
        assert!(html.contains("<th>Report</th>") && html.contains("<th>Delivery</th>"));
        assert!(
            html.contains(
                "<tr><td>70</td><td>REPORT:4</td><td>DAILY</td><td>-</td>\
                 <td>2026-11-30 06:30:00</td><td>ACTIVE</td><td>CSV FILE</td></tr>"
            ),
            "{html}"
        );
    }
}
