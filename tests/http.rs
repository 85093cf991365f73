//! The HTTP surface of a real `dwsched run --http` process: the API with its token and
//! its errors, the metrics, the OpenAPI document, and the status page driven in
//! headless Chromium (Debian's `chromium` and `chromium-driver`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use dwsched_model::{RequestStatus, RunStatus};
use serde_json::{Value, json};

use crate::service::{NodeProcess, Scratch, cli, eventually, wait_request, wait_run_status};
use crate::util::TestDb;

crate::per_backend!(the_api_queues_reads_and_refuses_by_the_rules);

/// A failed run and a schedule disabled at MAXFAIL reach the alert command and the
/// webhook, which is retried after it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_alerted_to_the_webhook_and_the_command() {
    use std::sync::{Arc, Mutex};
    let Some(db) = TestDb::new(dwsched_store::Backend::Sqlite) else {
        return;
    };
    let scratch = Scratch::new();
    let store = db.open().await;
    let failing = scratch.command_flow("failing", "echo no files today >&2; exit 4");
    cli(
        &db,
        &scratch.dir,
        &["job", "put", "FEED", "--flow", failing.to_str().unwrap()],
    );

    // A webhook that refuses its first call, then records the events.
    let received: Arc<Mutex<(usize, Vec<Value>)>> = Arc::default();
    let hook = {
        let received = received.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::Json<Value>| {
                let received = received.clone();
                async move {
                    let mut seen = received.lock().unwrap();
                    seen.0 += 1;
                    if seen.0 == 1 {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    seen.1.push(body.0);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let webhook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await });
    let file = scratch.dir.join("alerts.jsonl");
    let command = format!("cat >> '{}'", file.display());
    cli(
        &db,
        &scratch.dir,
        &[
            "schedule",
            "add",
            "FEED",
            "--frqcd",
            "CR",
            "--cron",
            "* * * * * *",
            "--maxfail",
            "1",
            "--enable",
        ],
    );
    let _node = NodeProcess::start(
        &db,
        &scratch.dir,
        "n1",
        &[
            ("DWSCHED_ALERT_WEBHOOK", webhook.as_str()),
            ("DWSCHED_ALERT_COMMAND", command.as_str()),
        ],
    );
    let events = eventually(
        Duration::from_secs(30),
        "both alerts at the webhook",
        || async {
            let seen = received.lock().unwrap();
            let kinds: Vec<&str> = seen.1.iter().filter_map(|e| e["event"].as_str()).collect();
            (kinds.contains(&"run_failed") && kinds.contains(&"schedule_disabled"))
                .then(|| seen.1.clone())
        },
    )
    .await;
    assert!(
        received.lock().unwrap().0 >= 3,
        "the refused call was retried"
    );
    let failed = events.iter().find(|e| e["event"] == "run_failed").unwrap();
    assert_eq!(failed["mapref"], "FEED");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("no files today"),
        "{failed}"
    );
    let disabled = events
        .iter()
        .find(|e| e["event"] == "schedule_disabled")
        .unwrap();
    assert!(
        disabled["reason"].as_str().unwrap().contains("MAXFAIL"),
        "{disabled}"
    );
    let lines = eventually(
        Duration::from_secs(10),
        "both alerts from the command",
        || async {
            let text = std::fs::read_to_string(&file).ok()?;
            let lines: Vec<Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            (lines.len() >= 2).then_some(lines)
        },
    )
    .await;
    assert!(
        lines.iter().any(|e| e["event"] == "schedule_disabled"),
        "{lines:?}"
    );
    let schedules = store.list_schedules(false).await.unwrap();
    assert_eq!(schedules[0].schflg.as_deref(), Some("N"));
}

const TOKEN: &str = "t0k-for-tests";

/// An HTTP client; reqwest is built without a default TLS provider, so the test
/// process installs ring's, as the node does.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A node serving HTTP on a free port, with the test token.
pub async fn node_with_http(
    db: &TestDb,
    scratch: &Scratch,
    token: Option<&str>,
) -> (NodeProcess, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut env = vec![("DWSCHED_HTTP_ADDR", addr.as_str())];
    if let Some(token) = token {
        env.push(("DWSCHED_API_TOKEN", token));
    }
    let node = NodeProcess::start(db, &scratch.dir, "web", &env);
    let base = format!("http://{addr}");
    let client = http_client();
    eventually(Duration::from_secs(20), "the HTTP server", || async {
        let answer = client.get(format!("{base}/healthz")).send().await.ok()?;
        (answer.status() == 200).then_some(())
    })
    .await;
    (node, base)
}

async fn the_api_queues_reads_and_refuses_by_the_rules(db: TestDb) {
    let scratch = Scratch::new();
    let store = db.open().await;
    let flow = scratch.command_flow("hello", "echo hello $DWSCHED_PARAM1");
    cli(
        &db,
        &scratch.dir,
        &["job", "put", "HELLO", "--flow", flow.to_str().unwrap()],
    );
    let (_node, base) = node_with_http(&db, &scratch, Some(TOKEN)).await;
    let client = http_client();
    let post = |path: &str, body: &str, token: Option<&str>| {
        let mut request = client
            .post(format!("{base}{path}"))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    let health: Value = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["node"], "web");

    // Mutating calls need the token, compared whole.
    for token in [None, Some("wrong"), Some("t0k-for-test")] {
        let answer = post("/api/jobs/HELLO/run", "{}", token).await.unwrap();
        assert_eq!(answer.status(), 401, "{token:?}");
        let body: Value = answer.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
    }
    let answer = post(
        "/api/jobs/HELLO/run",
        r#"{"param1":"EU","run_date":"2026-03-01"}"#,
        Some(TOKEN),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 201);
    let queued: Value = answer.json().await.unwrap();
    let id = queued["request_id"].as_str().unwrap().to_string();
    wait_request(&*store, &id, RequestStatus::Done, Duration::from_secs(20)).await;
    let runs: Value = client
        .get(format!("{base}/api/runs?mapref=HELLO&status=PC"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runs[0]["request_id"], id.as_str());
    assert_eq!(runs[0]["params"][0], "EU");
    assert_eq!(runs[0]["run_date"], "2026-03-01");

    // A run with its steps; its log, from this node, under the token.
    let prcid = runs[0]["prcid"].as_i64().unwrap();
    let detail: Value = client
        .get(format!("{base}/api/runs/{prcid}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["steps"][0]["step"], "main");
    assert_eq!(detail["steps"][0]["status"], "PC");
    let log_url = format!("{base}/api/runs/{prcid}/log");
    assert_eq!(client.get(&log_url).send().await.unwrap().status(), 401);
    for request in [
        client.get(&log_url).bearer_auth(TOKEN),
        client.get(format!("{log_url}?access_token={TOKEN}")),
    ] {
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), 200);
        let log = answer.text().await.unwrap();
        assert!(log.contains("hello EU"), "{log}");
    }
    let page = client
        .get(format!("{base}/runs/{prcid}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"steps\"") && page.contains("2026-03-01"),
        "{page}"
    );
    assert_eq!(
        client
            .get(format!("{base}/api/runs/999999"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Errors are JSON with the status the caller can act on.
    for (path, body, status, says) in [
        (
            "/api/jobs/HELLO/run",
            r#"{"param1":"#,
            400,
            "not valid JSON",
        ),
        (
            "/api/jobs/HELLO/run",
            r#"{"run_date":"yesterday"}"#,
            400,
            "run_date",
        ),
        (
            "/api/jobs/HELLO/run",
            r#"{"source":"schedule","jobschid":1,"slot":"2026-01-01T00:00:00Z"}"#,
            400,
            "is not known",
        ),
        // A typo is refused with the key named, never run with today's date.
        (
            "/api/jobs/HELLO/run",
            r#"{"rundate":"2026-03-02"}"#,
            400,
            "'rundate'",
        ),
        (
            "/api/jobs/HELLO/history",
            r#"{"start_date":"2026-03-01","end_date":"2026-03-02","stop":"Y"}"#,
            400,
            "'stop'",
        ),
        ("/api/jobs/HELLO/stop", r#"{"forced":"Y"}"#, 400, "'forced'"),
        (
            "/api/jobs/HELLO/run",
            r#"{"from_step":"nope"}"#,
            400,
            "no step 'nope'",
        ),
        ("/api/jobs/NOPE/run", "{}", 404, "NOPE"),
        (
            "/api/jobs/HELLO/history",
            r#"{"start_date":"2026-03-05","end_date":"2026-03-01"}"#,
            400,
            "before",
        ),
        (
            "/api/schedules",
            r#"{"mapref":"HELLO","frqcd":"XX"}"#,
            400,
            "XX",
        ),
        (
            "/api/schedules",
            r#"{"mapref":"HELLO","frqcd":"DL","colour":"red"}"#,
            400,
            "colour",
        ),
        ("/api/schedules/abc/enable", "", 400, "abc"),
        ("/api/schedules/999999/enable", "", 404, "999999"),
    ] {
        let answer = post(path, body, Some(TOKEN)).await.unwrap();
        assert_eq!(answer.status(), status, "{path} {body}");
        let error: Value = answer.json().await.unwrap();
        let message = error["error"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{path} {body}: {message}");
    }
    let big = format!(r#"{{"param1":"{}"}}"#, "x".repeat(100_000));
    let answer = post("/api/jobs/HELLO/run", &big, Some(TOKEN))
        .await
        .unwrap();
    assert_eq!(answer.status(), 413);
    let answer = client
        .get(format!("{base}/api/runs?status=XX"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let answer = client
        .get(format!("{base}/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);

    // Schedules: add, disable, enable.
    let answer = post(
        "/api/schedules",
        r#"{"mapref":"HELLO","frqcd":"DL","frqhh":6,"frqmi":30,"timezone":"Europe/London","enable":true}"#,
        Some(TOKEN),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 201);
    let jobschid = answer.json::<Value>().await.unwrap()["jobschid"]
        .as_i64()
        .unwrap();
    let off: Value = post(
        &format!("/api/schedules/{jobschid}/disable"),
        "",
        Some(TOKEN),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(off["enabled"], false);
    let on: Value = post(
        &format!("/api/schedules/{jobschid}/enable"),
        "",
        Some(TOKEN),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(on["enabled"], true);
    assert!(
        on["next_fire"].as_str().unwrap().ends_with(":30:00Z"),
        "{on}"
    );
    let schedules: Value = client
        .get(format!("{base}/api/schedules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        schedules
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["jobschid"] == jobschid)
    );
    // Edit (a new version), then lifecycle refusals and retirements.
    let edited = post(
        &format!("/api/schedules/{jobschid}"),
        r#"{"frqhh":7}"#,
        Some(TOKEN),
    )
    .await
    .unwrap();
    assert_eq!(edited.status(), 201);
    let edited: Value = edited.json().await.unwrap();
    assert_eq!(edited["replaces"], jobschid);
    let new_id = edited["jobschid"].as_i64().unwrap();
    let answer = post(
        &format!("/api/schedules/{new_id}"),
        r#"{"hour":7}"#,
        Some(TOKEN),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 400);
    let delete = |path: String| {
        client
            .delete(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .send()
    };
    assert_eq!(
        client
            .delete(format!("{base}/api/jobs/HELLO"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let answer = delete("/api/jobs/HELLO".into()).await.unwrap();
    assert_eq!(answer.status(), 409, "an enabled schedule holds the job");
    assert_eq!(
        delete(format!("/api/schedules/{new_id}"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        delete(format!("/api/schedules/{new_id}"))
            .await
            .unwrap()
            .status(),
        404
    );
    store
        .put_connection(&db.flow_connection("spare"))
        .await
        .unwrap();
    assert_eq!(
        delete("/api/connections/spare".into())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        delete("/api/connections/spare".into())
            .await
            .unwrap()
            .status(),
        404
    );

    // Business calendars: read by anyone, holidays added and removed under the token.
    store
        .put_calendar(
            "UK",
            "MON,TUE,WED,THU,FRI",
            Some("England"),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let christmas = r#"{"date":"2026-12-25","description":"Christmas Day"}"#;
    assert_eq!(
        post("/api/calendars/UK/holidays", christmas, None)
            .await
            .unwrap()
            .status(),
        401
    );
    let answer = post("/api/calendars/UK/holidays", christmas, Some(TOKEN))
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let again = post("/api/calendars/UK/holidays", christmas, Some(TOKEN))
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "the date was a holiday already");
    for (path, body, code) in [
        (
            "/api/calendars/UK/holidays",
            r#"{"date":"25/12/2026"}"#,
            400,
        ),
        (
            "/api/calendars/UK/holidays",
            r#"{"date":"2026-12-26","day":"x"}"#,
            400,
        ),
        (
            "/api/calendars/NOPE/holidays",
            r#"{"date":"2026-12-26"}"#,
            404,
        ),
    ] {
        let answer = post(path, body, Some(TOKEN)).await.unwrap();
        assert_eq!(answer.status(), code, "{path} {body}");
    }
    let calendars: Value = client
        .get(format!("{base}/api/calendars"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(calendars[0]["name"], "UK");
    assert_eq!(calendars[0]["holidays"][0]["date"], "2026-12-25");
    assert_eq!(calendars[0]["holidays"][0]["description"], "Christmas Day");
    let uk = client
        .get(format!("{base}/api/calendars/UK"))
        .send()
        .await
        .unwrap();
    assert_eq!(uk.status(), 200);
    assert_eq!(
        uk.json::<Value>().await.unwrap()["workdays"],
        "MON,TUE,WED,THU,FRI"
    );
    let missing = client
        .get(format!("{base}/api/calendars/NOPE"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        delete("/api/calendars/UK/holidays/2026-12-25".into())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        delete("/api/calendars/UK/holidays/2026-12-25".into())
            .await
            .unwrap()
            .status(),
        404
    );

    // Status, metrics, and the API's own description.
    let status: Value = client
        .get(format!("{base}/api/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["node"], "web");
    assert_eq!(status["upload_schedules"], serde_json::json!([]));
    assert!(
        status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["node_id"] == "web")
    );
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let metrics = metrics.text().await.unwrap();
    for name in [
        "dwsched_runs_finished_total{status=\"PC\"} 1",
        "dwsched_run_duration_seconds_bucket",
        "dwsched_queue_requests{status=\"NEW\"}",
        "dwsched_runs_in_progress 0",
        "dwsched_nodes_live 1",
        "dwsched_fires_schedules 1",
        "dwsched_report_schedules{status=\"ACTIVE\"} 0",
        "dwsched_upload_schedules{status=\"ACTIVE\"} 0",
    ] {
        assert!(metrics.contains(name), "{name} in:\n{metrics}");
    }
    let openapi: Value = client
        .get(format!("{base}/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openapi["openapi"], "3.1.0");
    for path in [
        "/api/jobs/{mapref}/run",
        "/api/schedules",
        "/api/schedules/{id}/enable",
        "/api/calendars",
        "/api/calendars/{name}",
        "/api/calendars/{name}/holidays",
        "/healthz",
        "/metrics",
    ] {
        assert!(openapi["paths"][path].is_object(), "{path}");
    }
}

/// A chromedriver process, killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A WebDriver session of headless Chromium.
struct Browser {
    client: reqwest::Client,
    session: String,
}

impl Browser {
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/{}", self.session, path);
        let mut request = self.client.request(method, url.trim_end_matches('/'));
        if !body.is_null() {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("chromedriver answers");
        let value: Value = answer.json().await.expect("WebDriver JSON");
        assert!(value["value"]["error"].is_null(), "{path}: {value}");
        value["value"].clone()
    }

    async fn find(&self, css: &str) -> String {
        let element = self
            .call(
                reqwest::Method::POST,
                "element",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        element
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("an element id")
            .to_string()
    }

    async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "source", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// The status page in a real browser: a failed and a running run show, the stop
/// button stops the running one, and a screenshot is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_runs_and_stops_one_in_a_browser() {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let driver_binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(driver_binary) = driver_binary else {
        assert!(
            !in_ci,
            "chromedriver is missing: install Debian's chromium and chromium-driver"
        );
        // Written past the test harness's capture, so that the skip is seen.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"note: skipped the browser test of the status page (install chromium and chromium-driver to run it)\n",
        );
        return;
    };
    let Some(db) = TestDb::new(dwsched_store::Backend::Sqlite) else {
        return;
    };
    let scratch = Scratch::new();
    let store = db.open().await;
    let failing = scratch.command_flow("failing", "echo the warehouse is closed >&2; exit 3");
    let slow = scratch.command_flow("slow", "sleep 600");
    cli(
        &db,
        &scratch.dir,
        &[
            "job",
            "put",
            "NIGHTLY_FAIL",
            "--flow",
            failing.to_str().unwrap(),
        ],
    );
    cli(
        &db,
        &scratch.dir,
        &["job", "put", "LONG_LOAD", "--flow", slow.to_str().unwrap()],
    );
    // A schedule added but not enabled shows greyed, with why.
    let off = cli(
        &db,
        &scratch.dir,
        &[
            "schedule",
            "add",
            "NIGHTLY_FAIL",
            "--frqcd",
            "DL",
            "--frqhh",
            "2",
        ],
    );
    // A schedule on a business calendar shows the calendar and its rule.
    cli(&db, &scratch.dir, &["calendar", "put", "ENGLAND"]);
    cli(
        &db,
        &scratch.dir,
        &[
            "schedule",
            "add",
            "NIGHTLY_FAIL",
            "--frqcd",
            "WK",
            "--frqdd",
            "MON",
            "--frqhh",
            "7",
            "--start",
            "2099-01-01",
            "--calendar",
            "ENGLAND",
            "--on-holiday",
            "next",
            "--enable",
        ],
    );
    let (_node, base) = node_with_http(&db, &scratch, None).await;
    cli(&db, &scratch.dir, &["enqueue", "NIGHTLY_FAIL"]);
    wait_run_status(
        &*store,
        "NIGHTLY_FAIL",
        RunStatus::Failed,
        Duration::from_secs(20),
    )
    .await;
    cli(&db, &scratch.dir, &["enqueue", "LONG_LOAD"]);
    let running = wait_run_status(
        &*store,
        "LONG_LOAD",
        RunStatus::InProgress,
        Duration::from_secs(20),
    )
    .await;

    let port = free_port();
    let _driver = Driver(
        Command::new(driver_binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let client = http_client();
    let driver = format!("http://127.0.0.1:{port}");
    eventually(Duration::from_secs(20), "chromedriver", || async {
        client
            .get(format!("{driver}/status"))
            .send()
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    let created: Value = client
        .post(format!("{driver}/session"))
        .json(&json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1400"]
            }
        } } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = created["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no WebDriver session: {created}"));
    let browser = Browser {
        client: client.clone(),
        session: format!("{driver}/session/{session}"),
    };
    browser
        .call(
            reqwest::Method::POST,
            "url",
            json!({ "url": format!("{base}/") }),
        )
        .await;
    let page = browser.source().await;
    assert!(page.contains("Alive at"), "{page}");
    assert!(
        page.contains("NIGHTLY_FAIL") && page.contains("class=\"fl\""),
        "{page}"
    );
    assert!(page.contains("the warehouse is closed"), "{page}");
    assert!(
        page.contains(&format!("data-prcid=\"{}\"", running.prcid)),
        "{page}"
    );
    assert!(page.contains("<svg id=\"timeline\""), "{page}");
    assert!(
        page.contains("id=\"legend\"") && page.contains("failed (FL)"),
        "{page}"
    );
    // The business date and a link to each run's log, served by this node.
    let today = chrono::Utc::now().date_naive().to_string();
    assert!(page.contains(&today), "{page}");
    assert!(
        page.contains(&format!("href=\"/api/runs/{}/log\"", running.prcid)),
        "{page}"
    );
    assert!(
        page.contains("waiting ·") && page.contains("running</p>"),
        "{page}"
    );
    assert!(
        page.contains(&format!("<tr class=\"disabled\"><td>{off}</td>"))
            && page.contains("disabled (SCHFLG="),
        "{page}"
    );
    assert!(
        page.contains("<th>Calendar</th>")
            && page.contains("<td class=\"calendar\">ENGLAND (next)</td>"),
        "{page}"
    );

    let stop = browser.find("button.stop[data-mapref=\"LONG_LOAD\"]").await;
    browser
        .call(
            reqwest::Method::POST,
            &format!("element/{stop}/click"),
            json!({}),
        )
        .await;
    let stopped = wait_run_status(
        &*store,
        "LONG_LOAD",
        RunStatus::Stopped,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(stopped.prcid, running.prcid);
    assert!(
        stopped.msg.as_deref().unwrap_or_default().contains("STOP"),
        "{stopped:?}"
    );

    // The page after the stop, kept as the test's screenshot.
    browser
        .call(
            reqwest::Method::POST,
            "url",
            json!({ "url": format!("{base}/") }),
        )
        .await;
    let page = browser.source().await;
    assert!(page.contains("class=\"st\""), "{page}");
    let png = browser
        .call(reqwest::Method::GET, "screenshot", Value::Null)
        .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().expect("a base64 screenshot"))
        .expect("base64");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    std::fs::write(&shots, &png).unwrap();
    eprintln!("status page screenshot: {}", shots.display());
    let _ = browser.call(reqwest::Method::DELETE, "", Value::Null).await;
}
