//! The log2 size histogram shared by the kernel (which fills it) and user space (which
//! labels it). Bucket 0 holds zero-byte calls; bucket `k >= 1` holds sizes in
//! `[2^(k-1), 2^k)`; the last bucket also takes everything larger.

use crate::HIST_BUCKETS;

/// The bucket a call that moved `bytes` falls in.
#[inline(always)]
pub fn bucket(bytes: u64) -> usize {
    // `64 - leading_zeros` is floor(log2) + 1 for non-zero values and 0 for zero, which is
    // exactly the bucket numbering above; no loop, so the verifier sees straight-line code.
    let b = (64 - bytes.leading_zeros()) as usize;
    if b >= HIST_BUCKETS {
        HIST_BUCKETS - 1
    } else {
        b
    }
}

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
