//! The payload every demo moves, and how receivers verify it without copying it.
//!
//! The stream is one pseudo-random block repeated: byte `i` of any stream or file is
//! `block[i % BLOCK_LEN]`. A receiver checks each chunk in place against the block
//! (a `memcmp`, not a copy), so verification adds no user-space copies to the ground
//! truth. `BLOCK_LEN` is deliberately not a power of two, so a chunk delivered at the
//! wrong offset, twice, or not at all is caught.
//!
//! `Checksum` is for jobs whose useful result is a checksum (file-read, in-process); it
//! is independent of how the input is split into chunks.

use std::io::Write;

/// Length of the repeated block: 1 MiB + 7, coprime with page and chunk sizes.
pub const BLOCK_LEN: usize = (1 << 20) + 7;

/// The repeated block, generated once in the parent and inherited by workers via fork.
pub struct Pattern {
    block: Vec<u8>,
}

impl Default for Pattern {
    fn default() -> Self {
        Self::new()
    }
}

impl Pattern {
    pub fn new() -> Self {
        // xorshift64*: fast, deterministic, and not compressible by the page cache.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut block = Vec::with_capacity(BLOCK_LEN + 8);
        while block.len() < BLOCK_LEN {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            block.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        block.truncate(BLOCK_LEN);
        Pattern { block }
    }

    /// The longest run of stream bytes starting at stream offset `pos`, at most `max`
    /// long, that is contiguous in the block: what a sender can hand to one syscall.
    pub fn slice_at(&self, pos: u64, max: usize) -> &[u8] {
        let start = (pos % BLOCK_LEN as u64) as usize;
        let end = start + max.min(BLOCK_LEN - start);
        &self.block[start..end]
    }

    /// True if `data` equals the stream at offset `pos`.
    pub fn matches(&self, mut pos: u64, mut data: &[u8]) -> bool {
        while !data.is_empty() {
            let expected = self.slice_at(pos, data.len());
            let (head, rest) = data.split_at(expected.len());
            if head != expected {
                return false;
            }
            pos += head.len() as u64;
            data = rest;
        }
        true
    }

    /// Writes the first `len` bytes of the stream to `out` (setup, in the parent) and
    /// returns their checksum.
    pub fn write_to(&self, out: &mut impl Write, len: u64) -> std::io::Result<u64> {
        let mut sum = Checksum::new();
        let mut pos = 0u64;
        while pos < len {
            let want = usize::try_from(len - pos).unwrap_or(usize::MAX);
            let part = self.slice_at(pos, want);
            out.write_all(part)?;
            sum.update(part);
            pos += part.len() as u64;
        }
        Ok(sum.finish())
    }
}

/// A 64-bit streaming checksum over 8-byte words; the result does not depend on how
/// the input was split across `update` calls.
#[derive(Clone, Copy, Debug)]
pub struct Checksum {
    state: u64,
    pending: [u8; 8],
    npending: usize,
    len: u64,
}

impl Default for Checksum {
    fn default() -> Self {
        Self::new()
    }
}

impl Checksum {
    pub fn new() -> Self {
        Checksum {
            state: 0xCBF2_9CE4_8422_2325,
            pending: [0; 8],
            npending: 0,
            len: 0,
        }
    }

    fn mix(&mut self, word: u64) {
        self.state = (self.state ^ word)
            .wrapping_mul(0x0000_0100_0000_01B3)
            .rotate_left(29);
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.npending > 0 {
            let take = (8 - self.npending).min(data.len());
            self.pending[self.npending..self.npending + take].copy_from_slice(&data[..take]);
            self.npending += take;
            data = &data[take..];
            if self.npending < 8 {
                return;
            }
            self.mix(u64::from_le_bytes(self.pending));
            self.npending = 0;
        }
        let (words, rest) = data.as_chunks::<8>();
        for w in words {
            self.mix(u64::from_le_bytes(*w));
        }
        self.pending[..rest.len()].copy_from_slice(rest);
        self.npending = rest.len();
    }

    pub fn finish(&self) -> u64 {
        let mut last = *self;
        let mut tail = [0u8; 8];
        tail[..self.npending].copy_from_slice(&self.pending[..self.npending]);
        last.mix(u64::from_le_bytes(tail));
        last.mix(self.len);
        last.state
    }
}

/// Checksum of one whole buffer.
pub fn checksum(data: &[u8]) -> u64 {
    let mut c = Checksum::new();
    c.update(data);
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_ignores_chunking_but_not_content() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let whole = checksum(&data);
        for split in [1, 3, 7, 8, 9, 64, 999] {
            let mut c = Checksum::new();
            for part in data.chunks(split) {
                c.update(part);
            }
            assert_eq!(c.finish(), whole, "split {split}");
        }
        let mut changed = data.clone();
        changed[500] ^= 1;
        assert_ne!(checksum(&changed), whole);
        // Length matters even when the extra bytes are zero.
        assert_ne!(checksum(&[0u8; 8]), checksum(&[0u8; 16]));
    }

    #[test]
    fn pattern_matches_itself_across_the_wrap() {
        let p = Pattern::new();
        let mut file = Vec::new();
        let len = BLOCK_LEN as u64 * 2 + 100;
        let sum = p.write_to(&mut file, len).unwrap();
        assert_eq!(file.len() as u64, len);
        assert_eq!(sum, checksum(&file));
        let pos = BLOCK_LEN as u64 - 10;
        assert!(p.matches(pos, &file[pos as usize..pos as usize + 50]));
        assert!(!p.matches(pos + 1, &file[pos as usize..pos as usize + 50]));
        assert_eq!(p.slice_at(pos, 50).len(), 10);
    }
}
