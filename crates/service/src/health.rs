//! Living with database outages: one log line per outage, backoff between attempts,
//! and retries of the writes that must not be lost.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dwsched_store::{MigrationReport, Store, StoreError, StoreOptions};
use tokio_util::sync::CancellationToken;

/// Tracks whether the database is reachable, so that an outage is logged once when it
/// starts and once when it ends, however many loops notice it.
#[derive(Debug, Default)]
pub struct DbHealth {
    down_since: Mutex<Option<Instant>>,
    errors: AtomicU64,
}

impl DbHealth {
    pub fn failed(&self, what: &str, err: &StoreError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        crate::telemetry::database_error();
        let mut down = self.down_since.lock().unwrap_or_else(|e| e.into_inner());
        if down.is_none() && err.is_transient() {
            *down = Some(Instant::now());
            tracing::error!("database unreachable while {what}: {err}; retrying with backoff");
        } else if err.is_transient() {
            tracing::debug!("database still unreachable while {what}: {err}");
        } else {
            tracing::error!("database error while {what}: {err}");
        }
    }

    pub fn ok(&self) {
        let mut down = self.down_since.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(since) = down.take() {
            tracing::info!(
                "database reachable again after {:.1} s",
                since.elapsed().as_secs_f64()
            );
        }
    }
}

/// Exponential backoff from 250 ms to 30 s.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(30);

    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        delay
    }
}

/// Runs `op` until it succeeds, retrying transient errors with backoff. Gives up on a
/// lasting error, or when `give_up` is cancelled (then `None`).
pub async fn retry<T, F, Fut>(
    health: &DbHealth,
    what: &str,
    give_up: &CancellationToken,
    mut op: F,
) -> Option<Result<T, StoreError>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut backoff = Backoff::default();
    loop {
        match op().await {
            Ok(value) => {
                health.ok();
                return Some(Ok(value));
            }
            Err(err) if err.is_transient() => {
                health.failed(what, &err);
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                    _ = give_up.cancelled() => return None,
                }
            }
            Err(err) => {
                health.failed(what, &err);
                return Some(Err(err));
            }
        }
    }
}

/// Opens the metadata store and brings its schema up to date, waiting for a database
/// that cannot be reached yet (a server still starting after a power cut): the outage is
/// logged once, systemd is told what the node waits for (and its watchdog fed), and the
/// attempts back off until the database answers. `None` when `give_up` is cancelled
/// first; a lasting error (a bad URL, a schema too new) is returned at once.
pub async fn open_when_reachable(
    options: &StoreOptions,
    give_up: &CancellationToken,
) -> Option<Result<(Box<dyn Store>, MigrationReport), StoreError>> {
    let health = DbHealth::default();
    let waiting = tokio::spawn(async {
        let every = sd_notify::watchdog_enabled().unwrap_or(Duration::from_secs(10)) / 2;
        loop {
            tokio::time::sleep(every).await;
            let _ = sd_notify::notify(&[
                sd_notify::NotifyState::Status("waiting for the metadata database"),
                sd_notify::NotifyState::Watchdog,
            ]);
        }
    });
    let opened = retry(
        &health,
        "opening the metadata database",
        give_up,
        || async {
            let store = dwsched_store::open(options).await?;
            let report = store.migrate().await?;
            Ok((store, report))
        },
    )
    .await;
    waiting.abort();
    opened
}
