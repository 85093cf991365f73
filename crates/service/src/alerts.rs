//! Alerts: when a run fails or a schedule is disabled at `MAXFAIL`, a JSON event is
//! POSTed to `DWSCHED_ALERT_WEBHOOK` and/or given on stdin to `DWSCHED_ALERT_COMMAND`.
//!
//! *Architecture Invariant:* an alert never blocks or fails a run. Events go into a
//! bounded queue (dropped, with a log line, when it is full) and are delivered by
//! tasks of their own, each retried with backoff.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// Events waiting for delivery at most.
const QUEUE: usize = 1024;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 4;
/// Attempts per destination, with 1, 2, 4 and 8 s between them.
const ATTEMPTS: u32 = 5;
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Where alerts go.
#[derive(Debug, Clone, Default)]
pub struct AlertConfig {
    pub webhook: Option<String>,
    pub command: Option<String>,
}

impl AlertConfig {
    pub fn is_set(&self) -> bool {
        self.webhook.is_some() || self.command.is_some()
    }
}

/// The sending side, shared by the node's tasks.
#[derive(Debug, Clone, Default)]
pub struct Alerter {
    queue: Option<mpsc::Sender<Value>>,
}

impl Alerter {
    /// Starts the delivery task when alerts are configured; it ends when `finished` is
    /// cancelled and the queue is empty.
    pub fn start(config: AlertConfig, finished: CancellationToken) -> Self {
        if !config.is_set() {
            return Self::default();
        }
        let (queue, events) = mpsc::channel(QUEUE);
        tokio::spawn(deliver_all(Arc::new(config), events, finished));
        Self { queue: Some(queue) }
    }

    /// Queues an event; never waits.
    pub fn send(&self, event: Value) {
        let Some(queue) = &self.queue else {
            return;
        };
        if let Err(err) = queue.try_send(event) {
            tracing::warn!("alert dropped, the alert queue is full or closed: {err}");
        }
    }
}

async fn deliver_all(
    config: Arc<AlertConfig>,
    mut events: mpsc::Receiver<Value>,
    finished: CancellationToken,
) {
    // reqwest is built without a default TLS provider; ring is this build's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder().timeout(WEBHOOK_TIMEOUT).build() {
        Ok(client) => Some(client),
        Err(err) => {
            tracing::error!("alerts cannot be sent to the webhook: {err}");
            None
        }
    };
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = finished.cancelled() => {
                // Deliver what is queued, then stop.
                events.close();
                events.recv().await
            }
        };
        let Some(event) = event else { return };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (config, client) = (config.clone(), client.clone());
        tokio::spawn(async move {
            deliver(&config, client.as_ref(), &event).await;
            drop(permit);
        });
    }
}

async fn deliver(config: &AlertConfig, client: Option<&reqwest::Client>, event: &Value) {
    let kind = event["event"].as_str().unwrap_or("alert");
    if let (Some(url), Some(client)) = (&config.webhook, client) {
        retrying(kind, "DWSCHED_ALERT_WEBHOOK", || post(client, url, event)).await;
    }
    if let Some(command) = &config.command {
        retrying(kind, "DWSCHED_ALERT_COMMAND", || run(command, kind, event)).await;
    }
}

async fn retrying<F, Fut>(kind: &str, destination: &str, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    for number in 1..=ATTEMPTS {
        match attempt().await {
            Ok(()) => return,
            Err(err) if number == ATTEMPTS => {
                tracing::error!(
                    "alert '{kind}' not delivered to {destination} after {ATTEMPTS} attempts: {err}"
                );
            }
            Err(err) => {
                tracing::warn!("alert '{kind}' to {destination} failed (attempt {number}): {err}");
                tokio::time::sleep(Duration::from_secs(1 << (number - 1))).await;
            }
        }
    }
}

async fn post(client: &reqwest::Client, url: &str, event: &Value) -> Result<(), String> {
    let answer = client
        .post(url)
        .json(event)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered {}", answer.status()))
    }
}

async fn run(command: &str, kind: &str, event: &Value) -> Result<(), String> {
    let mut child = tokio::process::Command::new("sh")
        .args(["-c", command])
        .env("DWSCHED_ALERT_EVENT", kind)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start it: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let mut text = event.to_string();
        text.push('\n');
        // A command that does not read its input still counts by its exit status.
        let _ = stdin.write_all(text.as_bytes()).await;
    }
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("no exit within {COMMAND_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        let said = String::from_utf8_lossy(&output.stderr);
        Err(format!("{} {}", output.status, said.trim()))
    }
}
