//! How the views write figures that only the dashboard writes this way: rates without their
//! `/s` (the column titles carry it) and a trend as block characters.

/// Bytes per second without the `/s`.
pub fn per_second(value: f64) -> String {
    crate::units::bytes(value)
}

/// A trend of the last samples as block characters, right-aligned in `width`: the largest
/// sample is a full block, zero and below are blank.
pub fn sparkline(samples: impl ExactSizeIterator<Item = f64>, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let values: Vec<f64> = samples.collect();
    let tail = &values[values.len().saturating_sub(width)..];
    let max = tail.iter().copied().fold(0.0_f64, f64::max);
    let mut out = String::with_capacity(width * 3);
    for _ in tail.len()..width {
        out.push(' ');
    }
    for &v in tail {
        if max <= 0.0 || v <= 0.0 {
            out.push(' ');
        } else {
            let level = ((v / max) * 7.0).round() as usize;
            out.push(BARS[level.min(7)]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::sparkline;

    #[test]
    fn sparkline_scales_to_the_largest_sample_and_pads_left() {
        assert_eq!(sparkline([1.0, 2.0, 4.0].into_iter(), 5), "  ▃▅█");
        // Only the last `width` samples count, and nothing moved is blank.
        assert_eq!(sparkline([100.0, 0.0, 1.0].into_iter(), 2), " █");
        assert_eq!(sparkline(std::iter::empty(), 3), "   ");
    }
}
