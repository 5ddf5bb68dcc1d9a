//! Reading tracepoint records at the offsets user space found in this kernel's tracefs
//! formats and set as globals before loading (`zcprof_common::global` and each layer's).

use aya_ebpf::programs::TracePointContext;

/// A global offset set by user space (`read_volatile`: the zero initialiser must not be
/// folded into the code).
#[inline(always)]
pub fn at(global: &u32) -> usize {
    // SAFETY: a plain read of a global that user space set before loading.
    (unsafe { core::ptr::read_volatile(global) }) as usize
}

/// The field at `offset` of the record, `Err` when the offset is unknown (0) or unreadable.
#[inline(always)]
pub fn field<T>(ctx: &TracePointContext, offset: usize) -> Result<T, ()> {
    if offset == 0 {
        return Err(());
    }
    // SAFETY: the offset comes from this kernel's tracefs format; the helper checks the read.
    unsafe { ctx.read_at::<T>(offset) }.map_err(|_| ())
}
