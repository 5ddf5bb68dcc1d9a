//! zcprof: a copy-overhead profiler for Linux.
//!
//! The pieces, in the order data flows through them:
//! - [`probes`] loads the eBPF object and attaches what this kernel allows, reporting each
//!   probe as attached or unavailable (with the kernel's reason);
//! - [`collector`] owns the loaded object and turns the kernel's maps and ring buffer into
//!   [`collector::Batch`]es, on its own task;
//! - [`probe_stats`] reads the probes' own run time from the kernel (`--probe-stats`);
//! - [`model`] (pure) attributes the batches to processes and computes totals and rates;
//! - [`report`] renders the model as text or JSON; [`cmd`] holds one module per subcommand;
//!   [`ui`] is the terminal dashboard.
//!
//! Nothing prints with `println!`/`eprintln!` (they panic on a write error): see [`stdio`].

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod atomic;
pub mod children;
pub mod cli;
pub mod cmd;
pub mod collector;
pub mod demo;
pub mod host;
pub mod model;
pub mod probe_stats;
pub mod probes;
pub mod report;
pub mod session;
pub mod stacks;
pub mod stdio;
pub mod tracefs;
pub mod ui;
pub mod units;
