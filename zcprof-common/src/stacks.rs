//! The stacks layer (opt-in, `--stacks`): user call stacks sampled by bytes, not by calls.
//!
//! Every `(process, syscall)` entry of the syscall layer's `STATS` already holds a
//! monotonic byte counter. When a call moves that counter (shifted by a per-entry phase)
//! across one or more multiples of the period P, the syscall exit program takes the
//! calling thread's user stack and sends it through the `STACK_EVENTS` ring buffer as a
//! [`Sample`] carrying how many periods the call crossed. Each sample then stands for
//! `periods × P` bytes of that syscall: an unbiased estimate of the bytes per stack whose
//! cost is bounded by bytes / P, whatever the call rate. The exact totals still come from
//! the counters; stacks only apportion them.
//!
//! Frames are taken with `BPF_F_USER_BUILD_ID`, so the kernel resolves each one to the
//! mapped file's build ID and the file offset at the moment of the call: a process that
//! exits before user space reads its maps can still be symbolized (from any file with that
//! build ID). A frame the kernel could not resolve (no build ID, the mmap lock contended)
//! comes as its bare instruction address ([`status::IP`]).
//!
//! With `--kernel-stacks` the kernel layer's probes sample their own per-process byte
//! counters the same way, and their records ([`KernelSample`]) carry the kernel stack at
//! the copy before the user stack: at a syscall's exit the kernel stack is only the exit
//! path, at a copy probe it is the path that copies.

/// Name of the ring buffer of [`Sample`]s (its own, so that a burst of samples can never
/// crowd out the lifecycle records, which must not be lost).
pub const STACK_EVENTS_MAP: &str = "STACK_EVENTS";
/// Size of `STACK_EVENTS` in bytes (a power of two, a multiple of the page size): 1,000
/// full-depth samples.
pub const STACK_EVENTS_BYTES: u32 = 4 << 20;
/// Most user frames a sample holds: the kernel's default `perf_event_max_stack`.
pub const MAX_FRAMES: usize = 127;
/// The default period: one sample per MiB moved by a `(process, syscall)`.
pub const DEFAULT_PERIOD: u64 = 1 << 20;

/// One frame as `bpf_get_stack` writes it with `BPF_F_USER_BUILD_ID`: the kernel's
/// `struct bpf_stack_build_id` (include/uapi/linux/bpf.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// One of [`status`].
    pub status: i32,
    /// The mapped file's GNU build ID (20 bytes for SHA-1 IDs; shorter ones are
    /// zero-padded) when `status` is [`status::VALID`].
    pub build_id: [u8; 20],
    /// [`status::VALID`]: the offset of the instruction in that file; [`status::IP`]: the
    /// instruction's address in the process.
    pub offset: u64,
}
const _: () = assert!(core::mem::size_of::<Frame>() == 32);

/// `enum bpf_stack_build_id_status`.
pub mod status {
    /// No frame (unused).
    pub const EMPTY: i32 = 0;
    /// `build_id` and the file `offset` are set.
    pub const VALID: i32 = 1;
    /// Only the instruction address is known.
    pub const IP: i32 = 2;
}

/// What every stack sample starts with.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Header {
    pub tgid: u32,
    /// The thread that made the call.
    pub pid: u32,
    /// The syscall layer's row (`syscalls::SYSCALLS` index, after the `MSG_ZEROCOPY`
    /// split): what kind of move the bytes were; with [`KERNEL_BIT`], a kernel-layer probe
    /// (the record is then a [`KernelSample`]).
    pub slot: u32,
    /// Valid entries at the start of the user `frames`.
    pub frames_len: u32,
    /// How many periods this call's bytes crossed: the sample stands for `periods × P`.
    pub periods: u64,
    /// The word at the top of the user stack when the syscall was made (0: unreadable):
    /// the return address into the syscall wrapper's caller when the wrapper keeps no
    /// frame of its own (glibc's `read` and friends). A frame-pointer walk skips that
    /// caller (the chain starts at the caller's own frame pointer, so its first return
    /// address is the caller's caller's); user space puts it back when the word points
    /// into code.
    pub leaf_return: u64,
    /// The first return address of the frame-pointer chain (the word above the saved frame
    /// pointer, 0: unreadable), as an address: the same frame as the user stack's second
    /// entry, which the kernel gives as build ID and file offset. Their difference places
    /// `leaf_return` in that file when the process is gone before its mappings could be
    /// read.
    pub chain_return: u64,
    /// The calling thread's name.
    pub comm: [u8; crate::COMM_LEN],
}
const _: () = assert!(core::mem::size_of::<Header>() == HEADER_BYTES);
/// The size of [`Header`].
pub const HEADER_BYTES: usize = 56;

/// One stack sample taken at a syscall's exit, sent through [`STACK_EVENTS_MAP`] with only
/// the frames found.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Sample {
    pub header: Header,
    pub frames: [Frame; MAX_FRAMES],
}
const _: () = assert!(core::mem::size_of::<Sample>() == HEADER_BYTES + 32 * MAX_FRAMES);

/// Set in [`Header::slot`] (and in the phase's slot) when the sample was taken at one of
/// the kernel layer's probes (`--kernel-stacks`): the rest of the slot is the probe's index
/// in `kernel::PROBES`, and the record is a [`KernelSample`].
pub const KERNEL_BIT: u32 = 1 << 31;
/// Most kernel frames a [`KernelSample`] holds: a copy in a syscall is 10 to 25 frames
/// deep; one in softirq context more, and is cut at this depth.
pub const MAX_KERNEL_FRAMES: usize = 48;

/// A stack sample taken at a kernel-layer probe: the kernel stack at the copy, then the
/// user stack as in [`Sample`]. Sent with only the user frames found, like a [`Sample`].
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KernelSample {
    pub header: Header,
    /// Valid entries at the start of `kernel`.
    pub kernel_len: u32,
    pub _pad: u32,
    /// Kernel instruction addresses, innermost first.
    pub kernel: [u64; MAX_KERNEL_FRAMES],
    pub frames: [Frame; MAX_FRAMES],
}
const _: () = assert!(
    core::mem::size_of::<KernelSample>()
        == HEADER_BYTES + 8 + 8 * MAX_KERNEL_FRAMES + 32 * MAX_FRAMES
);

/// The phase of the entry `(tgid, slot)` in `[0, period)`: sampling starts at a
/// pseudo-random point of each entry's byte stream, so that a process that moves less than
/// a period still gets a sample with probability bytes / P (with every entry starting at
/// 0, it would never get one and the estimate would be biased low).
#[inline(always)]
pub const fn phase(tgid: u32, slot: u32, period: u64) -> u64 {
    let mixed = ((tgid as u64) << 32 | slot as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> 17) % period
}

/// How many multiples of `period` the counter crosses going from `before` to
/// `before + bytes`, counted from `phase`.
#[inline(always)]
pub const fn periods(before: u64, bytes: u64, phase: u64, period: u64) -> u64 {
    let start = before.wrapping_add(phase);
    start.wrapping_add(bytes) / period - start / period
}

/// The read-only globals user space sets before loading.
pub mod global {
    /// The period P in bytes (`u32`: user space allows 512 B to 1 GiB); 0: the layer is off.
    pub const PERIOD: &str = "STACKS_PERIOD";
    /// 1: sample only the processes in `FOLLOWED_MAP` (`run`, `record -- CMD`, `record
    /// --pid`), whose stacks are the only ones reported.
    pub const FOLLOWED_ONLY: &str = "STACKS_FOLLOWED_ONLY";
    /// 1: the kernel layer's probes sample too, with the kernel stack (`--kernel-stacks`).
    pub const KERNEL: &str = "STACKS_KERNEL";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_add_up_over_any_split_of_a_stream() {
        let period = 1 << 20;
        let phase = phase(4242, 3, period);
        assert!(phase < period);
        // One call of 10 MiB and the same bytes in 4 KiB calls cross the same multiples.
        let whole = periods(0, 10 << 20, phase, period);
        let mut before = 0;
        let mut split = 0;
        while before < 10 << 20 {
            split += periods(before, 4096, phase, period);
            before += 4096;
        }
        assert_eq!(whole, split);
        assert_eq!(whole, 10);
    }

    #[test]
    fn phases_spread_over_the_period() {
        let period = 1000;
        let mut seen = [false; 10];
        for tgid in 1..200 {
            seen[(phase(tgid, 0, period) / 100) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
