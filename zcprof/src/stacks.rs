//! The stacks layer in user space: where in the program the bytes are moved. The kernel
//! side (`zcprof-ebpf/src/stacks.rs`) samples the calling thread's user stack every
//! `--stack-period` bytes of a `(process, syscall)`; here the samples are read
//! ([`sampler`]), decoded ([`sample`]) and aggregated ([`table`]), their raw frames named
//! ([`symbolize`]), each stack reduced to the call site the reports show ([`callsite`]),
//! and the stacks drawn as flame graphs ([`flame`]).

pub mod callsite;
pub mod flame;
pub mod sample;
pub mod sampler;
pub mod symbolize;
pub mod table;

pub use sampler::{Report, Sampler, Stack};
