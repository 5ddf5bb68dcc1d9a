//! The log2 size histogram shared by the kernel (which fills it) and user space (which
//! labels it). Bucket 0 holds zero-byte calls; bucket `k >= 1` holds sizes in
//! `[2^(k-1), 2^k)`; the last bucket also takes everything larger.

use crate::HIST_BUCKETS;

/// The bucket a call that moved `bytes` falls in.
///
/// `64 - leading_zeros` would be the numbering above, but BPF has no count-leading-zeros:
/// LLVM expands it into ~35 instructions (a bit smear and a population count) on the path
/// every counted syscall takes. Here the smear stops at 32 bits, since everything from
/// 2^30 up shares the last bucket, and a de Bruijn multiply and a 32-entry table turn the
/// power of two above `bytes` into its exponent: ~18 instructions, straight-line but for
/// the one branch to the last bucket.
#[inline(always)]
pub fn bucket(bytes: u64) -> usize {
    const LAST_FROM: u64 = 1 << (HIST_BUCKETS - 2);
    if bytes >= LAST_FROM {
        return HIST_BUCKETS - 1;
    }
    // 64-bit arithmetic throughout: BPF without ALU32 would mask every 32-bit operation.
    let mut v = bytes;
    v |= v >> 1;
    v |= v >> 2;
    v |= v >> 4;
    v |= v >> 8;
    v |= v >> 16;
    // `v + 1` is 2^b, b the bucket (2^0 for 0 bytes), below 2^31; the product's bits 27..32
    // are those of the 32-bit product.
    EXPONENT[(((v + 1) * DE_BRUIJN) >> 27) as usize & 31] as usize
}

/// A de Bruijn sequence for 32 bits: bits 27..32 of `2^k * DE_BRUIJN` differ for every
/// `k < 32`.
const DE_BRUIJN: u64 = 0x077C_B531;

/// `k` at index `(2^k * DE_BRUIJN) >> 27 & 31`.
static EXPONENT: [u8; 32] = [
    0, 1, 28, 2, 29, 14, 24, 3, 30, 22, 20, 15, 25, 17, 4, 8, 31, 27, 13, 23, 21, 19, 16, 7, 26,
    12, 18, 6, 11, 5, 10, 9,
];

/// Smallest size that lands in bucket `k`.
pub fn bucket_low(k: usize) -> u64 {
    if k == 0 { 0 } else { 1u64 << (k - 1) }
}

/// Largest size that lands in bucket `k` (`u64::MAX` for the last one).
pub fn bucket_high(k: usize) -> u64 {
    if k == 0 {
        0
    } else if k >= HIST_BUCKETS - 1 {
        u64::MAX
    } else {
        (1u64 << k) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_floor_log2_plus_one() {
        let reference = |b: u64| ((64 - b.leading_zeros()) as usize).min(HIST_BUCKETS - 1);
        for k in 0..64 {
            for b in [
                1u64 << k,
                (1u64 << k) - 1,
                (1u64 << k) + 1,
                (1u64 << k) | 0x5555,
            ] {
                assert_eq!(bucket(b), reference(b), "{b}");
            }
        }
        for b in (0..1 << 20).chain([u64::MAX, u64::MAX - 1, 1 << 63]) {
            assert_eq!(bucket(b), reference(b), "{b}");
        }
    }

    #[test]
    fn buckets_cover_every_size_once() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 1);
        assert_eq!(bucket(2), 2);
        assert_eq!(bucket(3), 2);
        assert_eq!(bucket(4), 3);
        assert_eq!(bucket(65_536), 17);
        assert_eq!(bucket(65_535), 16);
        assert_eq!(bucket(u64::MAX), HIST_BUCKETS - 1);
        for k in 0..HIST_BUCKETS {
            assert_eq!(bucket(bucket_low(k)), k, "low edge of {k}");
            if k < HIST_BUCKETS - 1 {
                assert_eq!(bucket(bucket_high(k)), k, "high edge of {k}");
                assert_eq!(bucket_high(k).wrapping_add(1), bucket_low(k + 1));
            }
        }
    }
}
