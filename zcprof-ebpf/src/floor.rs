//! The benchmark's floor: empty programs on the hooks zcprof's default layers run on at
//! every event (`zcprof_common::floor`). Never attached by zcprof itself.

use aya_ebpf::{
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};

#[btf_tracepoint(function = "sys_exit")]
pub fn empty_sys_exit(_ctx: BtfTracePointContext) -> i32 {
    0
}

/// Attached to the io_uring layer's two tracepoints (submit and complete).
#[tracepoint]
pub fn empty_tracepoint(_ctx: TracePointContext) -> u32 {
    0
}
