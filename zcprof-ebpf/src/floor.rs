//! The benchmark's floor: an empty program on the syscall layer's default hook
//! (`zcprof_common::floor`). Never attached by zcprof itself.

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};

#[btf_tracepoint(function = "sys_exit")]
pub fn empty_sys_exit(_ctx: BtfTracePointContext) -> i32 {
    0
}
