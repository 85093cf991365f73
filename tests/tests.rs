//! The one integration-test binary of dwsched; its modules group the tests by theme.

mod util;

mod adopt;
mod chaos;
mod cli;
mod commands;
mod flows;
mod http;
mod mapping;
mod migrate;
mod operate;
mod reports;
mod service;
mod skew;
mod store;
mod uploads;
