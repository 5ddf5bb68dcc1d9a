//! `in-process`: parse packets and run each payload through a three-stage pipeline,
//! entirely in user space (no I/O syscalls at all).
//!
//! A packet is a 24-byte header (magic, payload length, key, sequence number, expected
//! checksum) and a payload of `--chunk` bytes (64 KiB by default: the Go guide's copy
//! benchmark size). The pipeline decodes the payload (XOR with the key), transforms it
//! (rotate each byte), and checksums it; the checksum must match the header's.
//!
//! - `copy`: the header and payload are copied out of the packet (`to_vec`) and every
//!   stage copies its input into a new buffer before working on it — the C# guide's
//!   "each stage creates a copy". Copies per packet: 24 + 4 × payload bytes.
//! - `slice`: header and payload are read through slices of the packet; stage 1 decodes
//!   into one buffer allocated once, stages 2 and 3 work on it in place. Copies: 0.
//!   (Stage 1's decode writes its output once in both modes; that is the work itself,
//!   not a copy, and is not counted.)
//!
//! `user_copy_bytes` counts exactly the bytes passed to `Worker::copy_counted`, and each
//! of those copies is one call of libc's `memcpy` with its whole length (not inlined), so
//! zcprof's user layer (`--user-copies`) counts them: in the worker, the headers are its only
//! 16-31 B copies and the payloads (64 KiB by default) its only 64-128 KiB ones
//! (`zcprof/tests/user_copies.rs`). Not counted by either, because the compiler turns them
//! into plain register moves with no call: `Header::parse`'s 4- and 8-byte field reads
//! (`try_into` of fixed-size slices), and the stages' byte loops, which rewrite their
//! buffers in place rather than copy them. The parent's packet building calls `memcpy`
//! (`extend_from_slice`), in the parent's own process, before the worker starts.

use crate::catalogue::{ModeInfo, ScenarioInfo};
use crate::error::{DemoError, Result};
use crate::pattern::{Pattern, checksum};
use crate::plan::Amount;
use crate::scenarios::{Ctx, Finished, bad_mode};
use crate::worker::{Worker, WorkerError};

pub const INFO: ScenarioInfo = ScenarioInfo {
    name: "in-process",
    description: "Parse packets and run payloads through a 3-stage pipeline in memory.",
    roles: &["worker"],
    modes: &[
        ModeInfo {
            name: "copy",
            description: "copy header and payload out of each packet, and copy at every stage",
            copy_free_roles: &["worker"],
        },
        ModeInfo {
            name: "slice",
            description: "parse through slices, one output buffer reused, stages in place",
            copy_free_roles: &["worker"],
        },
    ],
    baseline: "copy",
    seed_claim: "Slicing instead of copying: a 64 KiB copy costs ~4 us per op versus \
                 ~0.6 ns for a re-slice (Go guide); a 3-stage pipeline that copies at \
                 each stage moves 3x the data (C# guide, Scenario 3).",
    disk_files: 0,
};

/// Header layout: magic u32, payload length u32, key u32, sequence u32, checksum u64.
const HEADER_LEN: usize = 24;
const MAGIC: u32 = 0x4650_435A; // "ZCPF" little-endian

/// Largest input held in memory for `--bytes` runs.
const MAX_IN_MEMORY: u64 = 1 << 30;

#[derive(Clone, Copy)]
enum Mode {
    Copy,
    Slice,
}

struct Header {
    len: usize,
    key: [u8; 4],
    checksum: u64,
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl Header {
    fn parse(b: &[u8]) -> Option<Header> {
        if le_u32(b, 0)? != MAGIC {
            return None;
        }
        Some(Header {
            len: usize::try_from(le_u32(b, 4)?).ok()?,
            key: le_u32(b, 8)?.to_le_bytes(),
            checksum: le_u64(b, 16)?,
        })
    }
}

/// Stage 1: undo the XOR with the packet key, from `input` into `out`.
fn decode_into(input: &[u8], out: &mut [u8], key: [u8; 4]) {
    for (i, (o, b)) in out.iter_mut().zip(input).enumerate() {
        *o = b ^ key[i % 4];
    }
}

/// Stage 1 in place (the copying pipeline first copies, then decodes its copy).
fn decode_in_place(data: &mut [u8], key: [u8; 4]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// Stage 2: a per-byte transform, in place.
fn transform(data: &mut [u8]) {
    for b in data {
        *b = b.rotate_left(3);
    }
}

/// Builds the packet buffer (setup, in the parent). The expected checksum is computed
/// with the stages above applied to a scratch copy; the parent is not measured.
fn build_packets(pattern: &Pattern, payload_total: u64, chunk: usize) -> Vec<u8> {
    let packets = payload_total.div_ceil(chunk as u64);
    let mut buf = Vec::with_capacity((payload_total + packets * HEADER_LEN as u64) as usize);
    let mut pos = 0u64;
    let mut seq = 0u32;
    while pos < payload_total {
        let len = (payload_total - pos).min(chunk as u64) as usize;
        let key = seq
            .wrapping_mul(0x9E37_79B9)
            .wrapping_add(0x5bd1_e995)
            .to_le_bytes();
        let mut payload = Vec::with_capacity(len);
        while payload.len() < len {
            payload.extend_from_slice(
                pattern.slice_at(pos + payload.len() as u64, len - payload.len()),
            );
        }
        let mut expected = payload.clone();
        decode_in_place(&mut expected, key);
        transform(&mut expected);
        buf.extend_from_slice(&MAGIC.to_le_bytes());
        buf.extend_from_slice(&(len as u32).to_le_bytes());
        buf.extend_from_slice(&key);
        buf.extend_from_slice(&seq.to_le_bytes());
        buf.extend_from_slice(&checksum(&expected).to_le_bytes());
        buf.extend_from_slice(&payload);
        pos += len as u64;
        seq = seq.wrapping_add(1);
    }
    buf
}

pub fn run(ctx: &mut Ctx<'_>, mode: &str) -> Result<Finished> {
    let mode = match mode {
        "copy" => Mode::Copy,
        "slice" => Mode::Slice,
        other => return Err(bad_mode(INFO.name, other)),
    };
    let chunk = ctx.plan.chunk;
    let total = ctx.plan.pass_bytes();
    if matches!(ctx.plan.amount, Amount::Bytes(_)) && total > MAX_IN_MEMORY {
        return Err(DemoError::InvalidInput {
            what: "--bytes",
            reason: format!(
                "in-process keeps its input in memory; use at most {MAX_IN_MEMORY} bytes or --seconds"
            ),
        });
    }
    if chunk > u32::MAX as usize {
        return Err(DemoError::InvalidInput {
            what: "--chunk",
            reason: "in-process packets are at most 4 GiB".into(),
        });
    }
    let packets = build_packets(ctx.pattern, total, chunk);

    let budget = ctx.plan.budget();
    ctx.spawner.spawn("worker", &[], |w| {
        let mut scratch = match mode {
            Mode::Slice => vec![0u8; chunk],
            Mode::Copy => Vec::new(),
        };
        let mut passes = 0;
        while budget.another_pass(passes) {
            let mut at = 0;
            while at < packets.len() {
                let packet = &packets[at..];
                let len = match mode {
                    Mode::Copy => process_copying(w, packet)?,
                    Mode::Slice => process_in_place(packet, &mut scratch)?,
                };
                at += HEADER_LEN + len;
                w.stats.payload_bytes += len as u64;
            }
            passes += 1;
        }
        w.stats.verified = true;
        Ok(())
    })?;
    ctx.finish_by_worker()
}

fn bad_packet(what: &str) -> WorkerError {
    WorkerError::msg(format!("malformed packet: {what}"))
}

fn check(sum: u64, header: &Header) -> Result<(), WorkerError> {
    if sum == header.checksum {
        Ok(())
    } else {
        Err(WorkerError::msg(format!(
            "payload checksum {sum:#x} differs from the header's {:#x}",
            header.checksum
        )))
    }
}

/// The copying pipeline; returns the payload length.
fn process_copying(w: &mut Worker<'_>, packet: &[u8]) -> Result<usize, WorkerError> {
    let raw_header = packet
        .get(..HEADER_LEN)
        .ok_or_else(|| bad_packet("short header"))?;
    // COPY: the header into its own buffer.
    let header_bytes = w.copy_counted(raw_header);
    let header = Header::parse(&header_bytes).ok_or_else(|| bad_packet("bad header"))?;
    let payload = packet
        .get(HEADER_LEN..HEADER_LEN + header.len)
        .ok_or_else(|| bad_packet("short payload"))?;
    // COPY: the payload out of the packet.
    let payload = w.copy_counted(payload);
    // COPY at each stage: every stage works on a fresh copy of its input.
    let mut decoded = w.copy_counted(&payload);
    decode_in_place(&mut decoded, header.key);
    let mut transformed = w.copy_counted(&decoded);
    transform(&mut transformed);
    let result = w.copy_counted(&transformed);
    check(checksum(&result), &header)?;
    Ok(header.len)
}

/// The slicing pipeline; `scratch` is the one output buffer, reused for every packet.
fn process_in_place(packet: &[u8], scratch: &mut [u8]) -> Result<usize, WorkerError> {
    // ZERO-COPY: header and payload are windows into the packet.
    let header = Header::parse(packet).ok_or_else(|| bad_packet("bad header"))?;
    let payload = packet
        .get(HEADER_LEN..HEADER_LEN + header.len)
        .ok_or_else(|| bad_packet("short payload"))?;
    let out = scratch
        .get_mut(..header.len)
        .ok_or_else(|| bad_packet("payload longer than the chunk size"))?;
    decode_into(payload, out, header.key);
    transform(out);
    check(checksum(out), &header)?;
    Ok(header.len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Io;
    use crate::syscalls::Tally;
    use crate::worker::Stats;

    #[test]
    fn both_pipelines_verify_and_only_copy_counts_copies() {
        let p = Pattern::new();
        let chunk = 1000;
        let packets = build_packets(&p, 2500, chunk);
        assert_eq!(packets.len(), 2500 + 3 * HEADER_LEN);

        let mut tally = Tally::default();
        let mut stats = Stats::default();
        let mut w = Worker {
            io: Io::new(&mut tally),
            stats: &mut stats,
        };
        let mut scratch = vec![0u8; chunk];
        let mut at = 0;
        let mut lens = Vec::new();
        while at < packets.len() {
            let a = process_copying(&mut w, &packets[at..]).unwrap();
            let b = process_in_place(&packets[at..], &mut scratch).unwrap();
            assert_eq!(a, b);
            lens.push(a);
            at += HEADER_LEN + a;
        }
        assert_eq!(lens, [1000, 1000, 500]);
        assert_eq!(stats.user_copy_bytes, (3 * HEADER_LEN + 4 * 2500) as u64);

        let mut corrupt = packets.clone();
        corrupt[HEADER_LEN + 10] ^= 0xFF;
        assert!(process_in_place(&corrupt, &mut scratch).is_err());
    }
}
