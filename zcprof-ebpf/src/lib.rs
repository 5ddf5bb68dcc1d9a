//! Library target of the eBPF crate. It exists only so that `zcprof` can list this crate as
//! a build-dependency (cargo then rebuilds zcprof when the eBPF sources change); the programs
//! themselves are the `zcprof` binary target, built for bpfel-unknown-none by zcprof/build.rs.

#![no_std]
