//! Stack samples as the kernel sends them (`zcprof_common::stacks::Sample`), decoded.

use std::mem::{MaybeUninit, size_of};

use zcprof_common::stacks::{
    self as common, Frame, Header, KERNEL_BIT, KernelSample, MAX_FRAMES, status,
};

use super::symbolize::RawFrame;

/// One decoded sample: `periods` periods of syscall row `slot`'s bytes (or, with
/// [`KERNEL_BIT`] in `slot`, of a kernel-layer probe's), moved by thread `pid` of process
/// `tgid` at this user stack (innermost frame first), and at this kernel stack for a
/// kernel-layer sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub tgid: u32,
    pub pid: u32,
    pub slot: u32,
    pub periods: u64,
    /// The calling thread's name.
    pub thread: String,
    pub frames: Vec<RawFrame>,
    /// Kernel instruction addresses, innermost first; empty for a syscall-layer sample.
    pub kernel: Vec<u64>,
    /// The word at the top of the user stack at the syscall (see
    /// `zcprof_common::stacks::Sample::leaf_return`), 0 when unreadable.
    pub leaf_return: u64,
    /// The frame-pointer chain's first return address (see
    /// `zcprof_common::stacks::Header::chain_return`), 0 when unreadable.
    pub chain_return: u64,
}

/// Decodes one `STACK_EVENTS` record; `None` if it is not a well-formed sample.
/// The kernel sends the header and only the frames it found, not the whole array.
pub fn decode(bytes: &[u8]) -> Option<Sample> {
    // Both kinds start with the same header; the slot says which this is.
    let slot = u32::from_ne_bytes(bytes.get(8..12)?.try_into().ok()?);
    if slot & KERNEL_BIT != 0 {
        const HEADER: usize = size_of::<KernelSample>() - size_of::<[Frame; MAX_FRAMES]>();
        let raw: KernelSample = padded(bytes, HEADER)?;
        let kernel = raw.kernel.get(..raw.kernel_len as usize)?.to_vec();
        return decoded(&raw.header, &raw.frames, bytes.len() - HEADER, kernel);
    }
    const HEADER: usize = size_of::<common::Sample>() - size_of::<[Frame; MAX_FRAMES]>();
    let raw: common::Sample = padded(bytes, HEADER)?;
    decoded(&raw.header, &raw.frames, bytes.len() - HEADER, Vec::new())
}

/// The sample of `header`, if the `sent` bytes of user frames hold all it counts.
fn decoded(header: &Header, frames: &[Frame], sent: usize, kernel: Vec<u64>) -> Option<Sample> {
    let len = header.frames_len as usize;
    if len > sent / size_of::<Frame>() {
        return None;
    }
    Some(Sample {
        tgid: header.tgid,
        pid: header.pid,
        slot: header.slot,
        periods: header.periods,
        thread: crate::collector::comm_string(&header.comm),
        frames: frames[..len].iter().filter_map(frame).collect(),
        kernel,
        leaf_return: header.leaf_return,
        chain_return: header.chain_return,
    })
}

/// The record as a `T`, zero past the bytes sent; `None` when it is shorter than `header`
/// or longer than a `T`.
fn padded<T: Copy>(bytes: &[u8], header: usize) -> Option<T> {
    if bytes.len() < header || bytes.len() > size_of::<T>() {
        return None;
    }
    // Zeroed in place rather than in a heap buffer: the reader decodes every sample.
    let mut raw = MaybeUninit::<T>::zeroed();
    // SAFETY: at most `size_of::<T>()` bytes are copied into `raw`; both sample types are
    // plain old data, so every bit pattern, zero included, is a valid `T`.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), raw.as_mut_ptr().cast::<u8>(), bytes.len());
        Some(raw.assume_init())
    }
}

fn frame(f: &Frame) -> Option<RawFrame> {
    match f.status {
        status::VALID => Some(RawFrame::File {
            build_id: f.build_id,
            offset: f.offset,
        }),
        status::IP => Some(RawFrame::Ip(f.offset)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use zcprof_common::stacks::MAX_KERNEL_FRAMES;

    use super::*;

    #[test]
    fn a_sample_decodes_only_its_frames() {
        let mut raw = common::Sample {
            header: Header {
                tgid: 7,
                pid: 8,
                slot: 1,
                frames_len: 2,
                periods: 3,
                leaf_return: 0x5000,
                chain_return: 0,
                comm: [0; zcprof_common::COMM_LEN],
            },
            frames: [Frame {
                status: status::EMPTY,
                build_id: [0; 20],
                offset: 0,
            }; MAX_FRAMES],
        };
        raw.header.comm[..3].copy_from_slice(b"cat");
        raw.frames[0] = Frame {
            status: status::VALID,
            build_id: [1; 20],
            offset: 0x1234,
        };
        raw.frames[1] = Frame {
            status: status::IP,
            build_id: [0; 20],
            offset: 0x7f00_0000_1000,
        };
        raw.frames[2].status = status::VALID;
        // SAFETY: `Sample` is `#[repr(C)]` plain data without padding.
        let bytes = unsafe {
            std::slice::from_raw_parts((&raw const raw).cast::<u8>(), size_of::<common::Sample>())
        };
        let sample = decode(bytes).unwrap();
        assert_eq!(sample.thread, "cat");
        assert_eq!(sample.leaf_return, 0x5000);
        assert_eq!(
            sample.frames,
            vec![
                RawFrame::File {
                    build_id: [1; 20],
                    offset: 0x1234
                },
                RawFrame::Ip(0x7f00_0000_1000)
            ]
        );
        // Only the frames it found are sent; fewer bytes than its frames is malformed.
        let header = size_of::<common::Sample>() - size_of::<[Frame; MAX_FRAMES]>();
        assert_eq!(decode(&bytes[..header + 64]), Some(sample));
        assert_eq!(decode(&bytes[..header + 40]), None);
        assert_eq!(decode(&bytes[..20]), None);
    }

    #[test]
    fn a_kernel_sample_decodes_its_kernel_frames_and_its_user_frames() {
        let mut raw = KernelSample {
            header: Header {
                tgid: 7,
                pid: 9,
                slot: KERNEL_BIT | 8,
                frames_len: 1,
                periods: 2,
                leaf_return: 0,
                chain_return: 0,
                comm: [0; zcprof_common::COMM_LEN],
            },
            kernel_len: 3,
            _pad: 0,
            kernel: [0; MAX_KERNEL_FRAMES],
            frames: [Frame {
                status: status::EMPTY,
                build_id: [0; 20],
                offset: 0,
            }; MAX_FRAMES],
        };
        raw.kernel[..3].copy_from_slice(&[0xffff_1000, 0xffff_2000, 0xffff_3000]);
        raw.frames[0] = Frame {
            status: status::IP,
            build_id: [0; 20],
            offset: 0x4000,
        };
        // SAFETY: `KernelSample` is `#[repr(C)]` plain data without padding.
        let bytes = unsafe {
            std::slice::from_raw_parts((&raw const raw).cast::<u8>(), size_of::<KernelSample>())
        };
        let header = size_of::<KernelSample>() - size_of::<[Frame; MAX_FRAMES]>();
        let sample = decode(&bytes[..header + 32]).expect("a kernel sample");
        assert_eq!(sample.slot, KERNEL_BIT | 8);
        assert_eq!(sample.kernel, vec![0xffff_1000, 0xffff_2000, 0xffff_3000]);
        assert_eq!(sample.frames, vec![RawFrame::Ip(0x4000)]);
        // Fewer bytes than its user frames, or more kernel frames than fit: malformed.
        assert_eq!(decode(&bytes[..header]), None);
        raw.kernel_len = MAX_KERNEL_FRAMES as u32 + 1;
        // SAFETY: as above.
        let bytes = unsafe {
            std::slice::from_raw_parts((&raw const raw).cast::<u8>(), size_of::<KernelSample>())
        };
        assert_eq!(decode(&bytes[..header + 32]), None);
    }
}
