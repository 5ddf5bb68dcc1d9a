//! Stack samples as the kernel sends them (`zcprof_common::stacks::Sample`), decoded.

use std::{mem::size_of, ptr::read_unaligned};

use zcprof_common::stacks::{self as common, Frame, MAX_FRAMES, status};

use super::symbolize::RawFrame;

/// One decoded sample: `periods` periods of syscall row `slot`'s bytes, moved by thread
/// `pid` of process `tgid` at this user stack (innermost frame first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub tgid: u32,
    pub pid: u32,
    pub slot: u32,
    pub periods: u64,
    /// The calling thread's name.
    pub thread: String,
    pub frames: Vec<RawFrame>,
    /// The word at the top of the user stack at the syscall (see
    /// `zcprof_common::stacks::Sample::leaf_return`), 0 when unreadable.
    pub leaf_return: u64,
}

/// Decodes one `STACK_EVENTS` record; `None` if it is not a well-formed sample.
/// The kernel sends the header and only the frames it found, not the whole array.
pub fn decode(bytes: &[u8]) -> Option<Sample> {
    const HEADER: usize = size_of::<common::Sample>() - size_of::<[Frame; MAX_FRAMES]>();
    if bytes.len() < HEADER || bytes.len() > size_of::<common::Sample>() {
        return None;
    }
    let mut whole = [0u8; size_of::<common::Sample>()];
    whole[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: `whole` has the struct's size; `Sample` is plain old data (every bit pattern
    // is valid) and `read_unaligned` makes no alignment assumption about the buffer.
    let raw: common::Sample = unsafe { read_unaligned(whole.as_ptr().cast()) };
    let sent = (bytes.len() - HEADER) / size_of::<Frame>();
    let len = (raw.frames_len as usize).min(sent);
    if len < raw.frames_len as usize {
        return None;
    }
    let frames = raw.frames[..len].iter().filter_map(frame).collect();
    Some(Sample {
        tgid: raw.tgid,
        pid: raw.pid,
        slot: raw.slot,
        periods: raw.periods,
        thread: crate::collector::comm_string(&raw.comm),
        frames,
        leaf_return: raw.leaf_return,
    })
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
    use super::*;

    #[test]
    fn a_sample_decodes_only_its_frames() {
        let mut raw = common::Sample {
            tgid: 7,
            pid: 8,
            slot: 1,
            frames_len: 2,
            periods: 3,
            leaf_return: 0x5000,
            comm: [0; zcprof_common::COMM_LEN],
            frames: [Frame {
                status: status::EMPTY,
                build_id: [0; 20],
                offset: 0,
            }; MAX_FRAMES],
        };
        raw.comm[..3].copy_from_slice(b"cat");
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
}
