//! The dwsched node (`dwsched run`) and the operations users ask of it.
//!
//! - [`ops`]: the validated operations every surface (CLI, HTTP) offers.
//! - [`dwtool`]: DWTOOL mapping jobs and their plans.
//! - [`run_node`]: the node itself; see `node.rs` for its tasks.
//! - [`schedules`]: the in-memory schedule set, its incremental sync and its timers.
//! - [`status`]: the operator's view: nodes, queue, runs, next fires.
//!
//! *Architecture Invariant:* this crate holds no SQL text; it speaks to the database
//! only through the `Store` trait, and to steps only through `dwsched_flow`.

mod alerts;
pub mod calendars;
mod claimer;
mod control;
pub mod dwtool;
pub mod dwtool_schedules;
mod foreground;
mod health;
mod http;
mod journal;
mod membership;
mod openapi;
mod page;

mod node;
pub mod ops;
mod report_delivery;
mod reports;
mod resolve;
mod runner;
mod scheduler;
pub mod schedules;
mod state;
pub mod status;
mod steps;
mod telemetry;
pub mod uploads;

pub use alerts::AlertConfig;
pub use dwsched_model::SCHEDULER_LEASE;
pub use foreground::{ForegroundError, ForegroundOutcome, run_once};
pub use health::open_when_reachable;
pub use membership::NodeError;
pub use node::run_node;
pub use report_delivery::{ReportConfig, SmtpConfig};
pub use state::{NodeConfig, Shutdown, Stats};
