//! `zcprof demo`: run the bundled workloads (the `zcprof-demo` binary, crate
//! `zcprof-demos`) under the profiler and set what the syscall layer saw beside each
//! workload's own exact ground truth.
//!
//! The pieces, in the order data flows through them:
//! - [`runner`] finds `zcprof-demo` and runs one variant (scenario × mode) inside a
//!   profiling session, returning the demo's JSON report and the model;
//! - [`measure`] picks the demo's worker processes out of the model by fork tree;
//! - [`compare`] (pure) checks each worker against the ground truth and derives the
//!   comparison figures (copy amplification, zero-copy ratio, speed-up);
//! - [`claims`] (pure) sets the seed guides' claims beside those figures;
//! - [`render`] prints comparisons as text, JSON, and the Markdown report.

pub mod claims;
pub mod compare;
pub mod measure;
pub mod render;
pub mod runner;
