//! The one integration-test binary of dwsched; its modules group the tests by theme.

mod util;

mod migrate;
mod store;
