//! A run's step records (`DMS_PRCSTEP`): what its steps report as each attempt starts
//! and ends, written in order through the run journal and logged.

use dwsched_model::{RunWrite, StepRecord, StepStatus};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::health::retry;
use crate::state::Shared;

/// Writes the step records of one run until its flow ends (the sender is dropped).
/// Records that arrive together are written together, and a start that has already
/// ended is written once, as its end. A step never waits for these writes; a write
/// that fails is logged and the run goes on.
pub(crate) async fn record_steps(
    shared: &Shared,
    mapref: &str,
    mut records: UnboundedReceiver<StepRecord>,
) {
    // The attempts whose row exists: a later record updates it.
    let mut written: std::collections::HashSet<(String, i64)> = std::collections::HashSet::new();
    while let Some(first) = records.recv().await {
        let mut batch = vec![first];
        while let Ok(next) = records.try_recv() {
            batch.push(next);
        }
        let mut latest: Vec<StepRecord> = Vec::with_capacity(batch.len());
        for record in batch {
            log_step(mapref, &record);
            match latest
                .iter_mut()
                .find(|r| r.step == record.step && r.attempt == record.attempt)
            {
                Some(earlier) => *earlier = record,
                None => latest.push(record),
            }
        }
        let writes: Vec<RunWrite> = latest
            .into_iter()
            .map(|record| {
                let new = written.insert((record.step.clone(), record.attempt));
                RunWrite::Step { record, new }
            })
            .collect();
        let give_up = &shared.shutdown.immediate;
        let written = retry(&shared.health, "recording a run's steps", give_up, || {
            shared.journal.write_all(writes.clone())
        })
        .await;
        if let Some(Err(err)) = written {
            tracing::warn!(
                mapref,
                "could not record the steps of a run of {mapref}: {err}"
            );
        }
    }
}

fn log_step(mapref: &str, r: &StepRecord) {
    let prcid = r.prcid;
    let what = r.describe();
    match r.status {
        StepStatus::Failed | StepStatus::Stopped => {
            tracing::warn!(prcid, mapref, "run {prcid} of {mapref}: {what}")
        }
        _ => tracing::info!(prcid, mapref, "run {prcid} of {mapref}: {what}"),
    }
}
