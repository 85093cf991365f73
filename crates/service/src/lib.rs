//! The dwsched node and the operations users ask of it.
//!
//! [`ops`] holds the validated operations that every surface (CLI, HTTP) offers.
//!
//! *Architecture Invariant:* this crate holds no SQL text; it speaks to the database
//! only through the `Store` trait.

pub mod ops;
