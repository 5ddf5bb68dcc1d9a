//! Samples aggregated by `(process, syscall row, stack)`, bounded, with each stack's last
//! minute by second (what the dashboard shows live).

use std::collections::{HashMap, VecDeque};

use super::{sample::Sample, symbolize::RawFrame};

/// Most distinct stacks kept; samples of further stacks are counted, not kept.
pub const MAX_STACKS: usize = 20_000;
/// Seconds of recent samples kept per stack.
pub const RECENT_SECONDS: u64 = 60;

/// What identifies an aggregated stack.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StackKey {
    pub tgid: u32,
    pub slot: u32,
    pub frames: Vec<RawFrame>,
    /// Kernel addresses, for a kernel-layer sample.
    pub kernel: Vec<u64>,
}

/// One stack's samples.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Periods its samples crossed: its estimated bytes are `periods × P`.
    pub periods: u64,
    /// Samples (a sample may cross several periods).
    pub samples: u64,
    /// The name of the last thread seen at it.
    pub thread: String,
    /// Periods by second (since the table's start) over the last [`RECENT_SECONDS`], oldest
    /// first.
    pub recent: VecDeque<(u64, u64)>,
}

impl Tally {
    /// Periods in the `seconds` before second `now`, `now` included.
    pub fn since(&self, now: u64, seconds: u64) -> u64 {
        self.recent
            .iter()
            .filter(|(at, _)| at + seconds > now)
            .map(|(_, periods)| periods)
            .sum()
    }
}

#[derive(Debug, Default)]
pub struct Table {
    stacks: HashMap<StackKey, Tally>,
    /// Samples and their periods, kept or not.
    pub samples: u64,
    pub periods: u64,
    /// Samples (and their periods) of stacks beyond [`MAX_STACKS`].
    pub dropped_samples: u64,
    pub dropped_periods: u64,
}

impl Table {
    /// Adds one sample taken in second `now`; `false` when the table was full and it was
    /// only counted.
    pub fn add(&mut self, sample: Sample, now: u64) -> bool {
        self.samples += 1;
        self.periods += sample.periods;
        let key = StackKey {
            tgid: sample.tgid,
            slot: sample.slot,
            frames: sample.frames,
            kernel: sample.kernel,
        };
        let full = self.stacks.len() >= MAX_STACKS;
        let tally = match self.stacks.get_mut(&key) {
            Some(tally) => tally,
            None if full => {
                self.dropped_samples += 1;
                self.dropped_periods += sample.periods;
                return false;
            }
            None => self.stacks.entry(key).or_default(),
        };
        tally.periods += sample.periods;
        tally.samples += 1;
        match tally.recent.back_mut() {
            Some((at, periods)) if *at == now => *periods += sample.periods,
            _ => tally.recent.push_back((now, sample.periods)),
        }
        while tally
            .recent
            .front()
            .is_some_and(|(at, _)| at + RECENT_SECONDS <= now)
        {
            tally.recent.pop_front();
        }
        if tally.thread != sample.thread {
            tally.thread = sample.thread;
        }
        true
    }

    pub fn iter(&self) -> impl Iterator<Item = (&StackKey, &Tally)> {
        self.stacks.iter()
    }

    pub fn len(&self) -> usize {
        self.stacks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(tgid: u32, frame: u64, periods: u64) -> Sample {
        Sample {
            tgid,
            pid: tgid,
            slot: 0,
            periods,
            thread: "t".into(),
            frames: vec![RawFrame::Ip(frame)],
            kernel: Vec::new(),
            leaf_return: 0,
            chain_return: 0,
        }
    }

    #[test]
    fn equal_stacks_add_up_and_a_full_table_counts_what_it_drops() {
        let mut table = Table::default();
        assert!(table.add(sample(1, 10, 2), 0));
        assert!(table.add(sample(1, 10, 3), 0));
        assert!(table.add(sample(2, 10, 1), 0));
        assert_eq!(table.len(), 2);
        let (_, tally) = table.iter().find(|(k, _)| k.tgid == 1).unwrap();
        assert_eq!((tally.periods, tally.samples), (5, 2));
        for frame in 0..MAX_STACKS as u64 {
            table.add(sample(3, frame, 1), 0);
        }
        assert_eq!(table.len(), MAX_STACKS);
        assert_eq!((table.dropped_samples, table.dropped_periods), (2, 2));
        assert_eq!(table.periods, 6 + MAX_STACKS as u64);
    }

    #[test]
    fn a_stack_keeps_its_last_minute_by_second() {
        let mut table = Table::default();
        for now in [0, 0, 1, 30, 59, 61] {
            table.add(sample(1, 10, 1), now);
        }
        let (_, tally) = table.iter().next().unwrap();
        // Seconds 0 and 1 fell out of the minute at 61; the totals keep everything.
        assert_eq!(tally.recent, VecDeque::from([(30, 1), (59, 1), (61, 1)]));
        assert_eq!(tally.since(61, 60), 3);
        assert_eq!(tally.since(61, 5), 2);
        assert_eq!(tally.periods, 6);
    }
}
