//! Prometheus metrics: counters and histograms the node records as things happen, and
//! gauges read from the tables when `/metrics` is scraped.

use std::sync::OnceLock;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const RUNS_FINISHED: &str = "dwsched_runs_finished_total";
pub const RUN_DURATION: &str = "dwsched_run_duration_seconds";
pub const FIRE_LATENESS: &str = "dwsched_fire_lateness_seconds";
pub const SLOTS_FIRED: &str = "dwsched_slots_fired_total";
pub const REPORT_FIRES: &str = "dwsched_dwtool_schedule_fires_total";
pub const REPORT_SCHEDULES: &str = "dwsched_report_schedules";
pub const UPLOAD_SCHEDULES: &str = "dwsched_upload_schedules";
pub const SLOTS_MISFIRED: &str = "dwsched_slots_misfired_total";
pub const SYNC_DURATION: &str = "dwsched_sync_duration_seconds";
pub const DATABASE_ERRORS: &str = "dwsched_database_errors_total";
pub const QUEUE_REQUESTS: &str = "dwsched_queue_requests";
pub const RUNS_IN_PROGRESS: &str = "dwsched_runs_in_progress";
pub const SYNC_AGE: &str = "dwsched_seconds_since_last_sync";
pub const NODES_LIVE: &str = "dwsched_nodes_live";
pub const FIRES_SCHEDULES: &str = "dwsched_fires_schedules";

/// Bucket bounds for every `_seconds` histogram: from a millisecond to an hour.
const SECONDS_BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's metrics recorder, once.
pub fn install() {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
            .ok()?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).ok()?;
        describe();
        Some(handle)
    });
}

fn describe() {
    describe_counter!(
        RUNS_FINISHED,
        "Runs this node finished, by final status (PC, FL, ST)"
    );
    describe_histogram!(
        RUN_DURATION,
        Unit::Seconds,
        "Duration of the runs this node finished"
    );
    describe_histogram!(
        FIRE_LATENESS,
        Unit::Seconds,
        "How long after its slot a scheduled run started"
    );
    describe_counter!(SLOTS_FIRED, "Schedule slots this node queued");
    describe_counter!(
        REPORT_FIRES,
        "DWTOOL report and file-upload schedule fires this node queued, by table"
    );
    describe_gauge!(
        REPORT_SCHEDULES,
        "DWTOOL report schedules (DMS_RPRT_SCHD) by status"
    );
    describe_gauge!(
        UPLOAD_SCHEDULES,
        "DWTOOL current file-upload schedules (DMS_FLUPLD_SCHD) by status"
    );
    describe_counter!(
        SLOTS_MISFIRED,
        "Missed schedule slots, by what their misfire policy did (merged, dropped)"
    );
    describe_histogram!(SYNC_DURATION, Unit::Seconds, "Duration of schedule syncs");
    describe_counter!(DATABASE_ERRORS, "Database errors this node met");
    describe_gauge!(
        QUEUE_REQUESTS,
        "Requests in the queue, by status (NEW, PROCESSING)"
    );
    describe_gauge!(RUNS_IN_PROGRESS, "Runs in progress (IP) on every node");
    describe_gauge!(
        SYNC_AGE,
        Unit::Seconds,
        "Seconds since this node last synced the schedules (only on the node that fires them)"
    );
    describe_gauge!(NODES_LIVE, "Nodes whose heartbeat is within the lease");
    describe_gauge!(
        FIRES_SCHEDULES,
        "1 when this node holds the scheduler lease"
    );
}

/// The installed exporter's handle, when there is one.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get()?.as_ref()
}

/// Counts a database error (the health tracker calls it for every failure).
pub fn database_error() {
    counter!(DATABASE_ERRORS).increment(1);
}
