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
use crate::status::{StatusReport, human_duration};

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
    let queue: Vec<String> = report
        .queue
        .iter()
        .map(|(status, n)| format!("{} {n}", esc(status)))
        .collect();
    let _ = writeln!(
        html,
        "<p id=\"queue\">Queue: {}</p>",
        if queue.is_empty() {
            "empty".to_string()
        } else {
            queue.join(" · ")
        }
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
        html.push_str("<table id=\"running\"><tr><th>PRCID</th><th>Job</th><th>Node</th><th>Started</th><th>Elapsed</th><th></th></tr>\n");
        for r in &report.running {
            let mapref = esc(r.mapref.as_deref().unwrap_or("?"));
            let age = r.started_at.map_or(0, |s| (now - s).num_seconds());
            let _ = writeln!(
                html,
                "<tr data-prcid=\"{prcid}\"><td>{prcid}</td><td class=ip>{mapref}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td><button class=\"stop\" data-mapref=\"{mapref}\">Stop</button></td></tr>",
                esc(r.node.as_deref().unwrap_or("-")),
                when(r.started_at),
                human_duration(age),
                prcid = r.prcid,
            );
        }
        html.push_str("</table>\n");
    }

    html.push_str("<h2>Last 24 hours</h2>\n");
    html.push_str(&timeline(day, now));

    html.push_str("<h2>Recent runs</h2><table id=\"recent\"><tr><th>PRCID</th><th>Job</th><th>Status</th><th>Started</th><th>Duration</th><th>Node</th><th>Message</th></tr>\n");
    for r in &report.recent {
        let duration = match (r.started_at, r.ended_at) {
            (Some(s), Some(e)) => human_duration((e - s).num_seconds()),
            (Some(s), None) => human_duration((now - s).num_seconds()),
            _ => "-".into(),
        };
        let _ = writeln!(
            html,
            "<tr data-prcid=\"{}\"><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{duration}</td><td>{}</td><td class=msg>{}</td></tr>",
            r.prcid,
            r.prcid,
            esc(r.mapref.as_deref().unwrap_or("?")),
            status_class(r.status),
            r.status.map_or("?", |s| s.as_str()),
            when(r.started_at),
            esc(r.node.as_deref().unwrap_or("-")),
            esc(r.msg.as_deref().unwrap_or("")),
        );
    }
    html.push_str("</table>\n");

    html.push_str("<h2>Schedules</h2>\n");
    html.push_str(&schedules_table(report));
    html.push_str(STOP_SCRIPT);
    html.push_str("</body></html>\n");
    html
}

/// Enabled schedules by next fire, then those that cannot be scheduled.
fn schedules_table(report: &StatusReport) -> String {
    if report.upcoming.is_empty() && report.invalid_schedules.is_empty() {
        return "<p id=\"schedules\">No enabled schedules.</p>\n".into();
    }
    let mut html = String::from(
        "<table id=\"schedules\"><tr><th>JOBSCHID</th><th>Job</th><th>Next fire (UTC)</th><th>Last run</th><th>Failures</th></tr>\n",
    );
    for s in report.upcoming.iter().take(50) {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s.jobschid,
            esc(&s.mapref),
            when(s.nxt_run_dt),
            when(s.lst_run_dt),
            s.failcnt.unwrap_or(0),
        );
    }
    for s in &report.invalid_schedules {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td colspan=3 class=bad>{}</td></tr>",
            s.jobschid,
            esc(&s.mapref),
            esc(s.scherr.as_deref().unwrap_or("cannot be scheduled")),
        );
    }
    html.push_str("</table>\n");
    html
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
    svg
}

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
