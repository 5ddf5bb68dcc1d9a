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
pub fn decode(bytes: &[u8]) -> Option<Sample> {
    if bytes.len() < size_of::<common::Sample>() {
        return None;
    }
    // SAFETY: the length was checked above; `Sample` is plain old data (every bit pattern
    // is valid) and `read_unaligned` makes no alignment assumption about the buffer.
    let raw: common::Sample = unsafe { read_unaligned(bytes.as_ptr().cast()) };
    let len = (raw.frames_len as usize).min(MAX_FRAMES);
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
        assert_eq!(decode(&bytes[..100]), None);
    }
}
