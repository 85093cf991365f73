//! The dwsched node (`dwsched run`) and the operations users ask of it.
//!
//! - [`ops`]: the validated operations every surface (CLI, HTTP) offers.
//! - [`run_node`]: the node itself; see `node.rs` for its tasks.
//! - [`schedules`]: the in-memory schedule set, its incremental sync and its timers.
//! - [`status`]: the operator's view: nodes, queue, runs, next fires.
//!
//! *Architecture Invariant:* this crate holds no SQL text; it speaks to the database
//! only through the `Store` trait, and to steps only through `dwsched_flow`.

mod alerts;
mod control;
mod health;
mod http;
mod journal;
mod openapi;
mod page;

mod node;
pub mod ops;
mod runner;
pub mod schedules;
pub mod status;
mod telemetry;

pub use alerts::AlertConfig;
pub use health::open_when_reachable;
pub use node::{NodeConfig, NodeError, SCHEDULER_LEASE, Shutdown, Stats, run_node};
