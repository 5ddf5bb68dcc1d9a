//! zcprof's bundled demo workloads.
//!
//! Each scenario does one useful job several ways — a copying baseline and one or more
//! zero-copy variants — so that zcprof can show the difference. A run forks one worker
//! process per role; each worker makes its read/write-family syscalls only through the
//! tallying layer (`io`), so the JSON `Report` it produces is the exact ground truth of
//! what a syscall profiler must attribute to each worker pid.
//!
//! Use from another program: list with [`scenarios()`]; to run one, prefer launching
//! the `zcprof-demo` binary (its workers must be forked from a single-threaded
//! process, which [`run`] checks).

pub mod catalogue;
pub mod error;
pub mod io;
pub mod mapping;
pub mod net;
pub mod pattern;
pub mod perf;
pub mod plan;
pub mod report;
pub mod runner;
pub mod scenarios;
pub mod syscalls;
pub mod tempdir;
pub mod uring;
pub mod worker;
pub mod zerocopy;

pub use catalogue::{ModeInfo, ScenarioInfo, scenario, scenarios};
pub use error::DemoError;
pub use plan::{Amount, Plan};
pub use report::{Report, RoleReport};
pub use runner::run;
pub use syscalls::{Counter, Family, Syscall};
