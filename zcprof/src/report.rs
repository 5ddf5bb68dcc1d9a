//! Rendering the model for people (text) and programs (JSON). Every figure is labelled with
//! the probe layer that produced it, and every header shows lost events.

pub mod cpu;
pub mod csv;
pub mod figures;
pub mod prometheus;
pub mod recording;
pub mod run;
pub mod stacks;
pub mod top;
pub mod user;

use serde::Serialize;

use crate::{
    model::{Figures, KernelCounters, Model},
    probes::LayerSummary,
};

/// Lost and undecodable events, as printed in every report.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct Lost {
    #[serde(flatten)]
    pub kernel: KernelCounters,
    pub malformed_records: u64,
    pub total: u64,
}

impl Lost {
    pub fn of(model: &Model) -> Lost {
        Lost {
            kernel: model.counters,
            malformed_records: model.malformed,
            total: model.counters.lost() + model.malformed,
        }
    }

    /// Every kind of loss: its name in JSON and in serve's `reason` label, its count, and
    /// how the text line says it.
    pub fn kinds(&self) -> [(&'static str, u64, &'static str); 8] {
        let k = &self.kernel;
        [
            ("ringbuf_full", k.ringbuf_full, "ring buffer full"),
            ("stats_map_full", k.stats_map_full, "process map full"),
            (
                "mmsg_unreadable",
                k.mmsg_unreadable,
                "mmsg lengths unreadable",
            ),
            ("mmsg_no_enter", k.mmsg_no_enter, "mmsg without enter"),
            ("stash_full", k.stash_full, "stash map full"),
            (
                "follow_full",
                k.follow_full,
                "children not followed (map full)",
            ),
            (
                "io_uring_unmatched",
                k.io_uring_unmatched,
                "io_uring completions without their submission",
            ),
            (
                "malformed_records",
                self.malformed_records,
                "undecodable records",
            ),
        ]
    }

    /// `lost events: 0`, or the breakdown when some were lost.
    pub fn line(&self) -> String {
        if self.total == 0 {
            return "lost events: 0".into();
        }
        let parts: Vec<String> = self
            .kinds()
            .into_iter()
            .filter(|(_, n, _)| *n > 0)
            .map(|(_, n, what)| format!("{n} {what}"))
            .collect();
        format!("LOST EVENTS: {} ({})", self.total, parts.join(", "))
    }
}

/// `cross_check probes (lower bound)`: the probes a kernel-copy figure comes from, with what
/// they leave out, for short labels (headers, titles).
pub fn role_label(role: zcprof_common::kernel::Role) -> String {
    format!("{} probes{}", role.name(), role_bound(role))
}

/// ` (lower bound)` when the role's copy figure misses copies, else empty.
pub fn role_bound(role: zcprof_common::kernel::Role) -> String {
    role.blind_spot()
        .map(|(short, _)| format!(" ({short})"))
        .unwrap_or_default()
}

/// `syscall layer: live via raw_tracepoint · lifecycle: live via tracepoint`, naming what
/// is unavailable.
pub fn layers_line(layers: &[LayerSummary]) -> String {
    layers
        .iter()
        .map(|l| {
            let mut s = format!("{} layer: {}", l.layer, l.state);
            if l.layer == crate::probes::Layer::User {
                // Opt-in and costly: said wherever the layers are.
                s = format!(
                    "{} layer (user-space copies: {}): {}",
                    l.layer,
                    crate::probes::user::COST,
                    l.state
                );
            }
            if !l.via.is_empty() {
                s.push_str(&format!(" via {}", l.via));
            }
            match l.unavailable.len() {
                0 => {}
                // A long list (the kernel layer on a kernel without fentry/kprobes) would
                // drown the header; doctor lists each probe with its reason.
                n if n > 4 => {
                    s.push_str(&format!(" ({n} probes unavailable: see `zcprof doctor`)"))
                }
                _ if l.attached == 0 => s.push_str(&format!(" ({})", l.unavailable.join(", "))),
                _ => s.push_str(&format!(" (unavailable: {})", l.unavailable.join(", "))),
            }
            s
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// `n` per second over `seconds` (0 before the first interval has a length).
pub fn per_second(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

/// Figures per second over an interval, for JSON.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Rates {
    pub copy_k2u_bytes_per_s: f64,
    pub copy_u2k_bytes_per_s: f64,
    pub zero_copy_bytes_per_s: f64,
    pub calls_per_s: f64,
    /// Calls that returned an error, would-block ones included.
    pub errors_per_s: f64,
    /// Of those, calls that returned EAGAIN or EINTR: would block / interrupted, not
    /// failures.
    pub would_block_per_s: f64,
    /// Share of moved bytes that were not copied; `null` when nothing moved.
    pub zero_copy_ratio: Option<f64>,
    /// Zero-copy sends (`MSG_ZEROCOPY`; io_uring `SEND_ZC`) and what their notifications
    /// said; absent when there were none. Their bytes are already in the rates above.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zero_copy_sends: Option<ZeroCopySendRates>,
}

/// [`MsgZerocopy`](zcprof_recording::MsgZerocopy) per second.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct ZeroCopySendRates {
    /// Bytes of the successful sends that asked for zero copy.
    pub requested_bytes_per_s: f64,
    pub requested_sends_per_s: f64,
    /// Sends a notification reported completed without a copy.
    pub done_sends_per_s: f64,
    /// Sends a notification reported the kernel copied anyway.
    pub copied_sends_per_s: f64,
}

impl ZeroCopySendRates {
    /// The sends of `a` and `b` together (the syscall layer's and the io_uring layer's:
    /// MSG_ZEROCOPY and SEND_ZC) per second; `None` when neither had any.
    pub fn of_both(a: &Figures, b: &Figures, seconds: f64) -> Option<ZeroCopySendRates> {
        let mut sends = a.msg_zerocopy;
        sends.add(&b.msg_zerocopy);
        ZeroCopySendRates::any(&sends, seconds)
    }

    /// [`ZeroCopySendRates::of`], or `None` when there were no sends.
    fn any(z: &zcprof_recording::MsgZerocopy, seconds: f64) -> Option<ZeroCopySendRates> {
        (!z.is_zero()).then(|| ZeroCopySendRates::of(z, seconds))
    }

    pub fn of(z: &zcprof_recording::MsgZerocopy, seconds: f64) -> ZeroCopySendRates {
        let per = |n: u64| per_second(n, seconds);
        ZeroCopySendRates {
            requested_bytes_per_s: per(z.requested_bytes),
            requested_sends_per_s: per(z.requested_sends),
            done_sends_per_s: per(z.done_sends),
            copied_sends_per_s: per(z.copied_sends),
        }
    }
}

impl Rates {
    pub fn of(f: &Figures, seconds: f64) -> Rates {
        let per = |n: u64| per_second(n, seconds);
        Rates {
            copy_k2u_bytes_per_s: per(f.copy_k2u_bytes),
            copy_u2k_bytes_per_s: per(f.copy_u2k_bytes),
            zero_copy_bytes_per_s: per(f.zero_copy_bytes),
            calls_per_s: per(f.calls),
            errors_per_s: per(f.errors),
            would_block_per_s: per(f.would_block()),
            zero_copy_ratio: f.zero_copy_ratio(),
            zero_copy_sends: ZeroCopySendRates::any(&f.msg_zerocopy, seconds),
        }
    }

    /// Bytes copied per second, both ways.
    pub fn copied_per_s(&self) -> f64 {
        self.copy_k2u_bytes_per_s + self.copy_u2k_bytes_per_s
    }
}

/// Seconds since the Unix epoch, for JSON timestamps.
pub fn unix_time() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `HH:MM:SS` UTC, for text headers.
pub fn clock() -> String {
    let secs = unix_time() as u64 % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serve's `reason` labels and the text line come from `Lost::kinds`; its names must be
    /// the JSON `lost` object's keys, every one of them, so no loss is shown in one place only.
    #[test]
    fn every_kind_of_loss_is_named_as_in_json() {
        let lost = Lost {
            kernel: KernelCounters {
                ringbuf_full: 1,
                stats_map_full: 2,
                mmsg_unreadable: 3,
                mmsg_no_enter: 4,
                stash_full: 5,
                follow_full: 7,
                io_uring_unmatched: 8,
                stack_lost: 0,
            },
            malformed_records: 6,
            total: 36,
        };
        let json = serde_json::to_value(lost).expect("json");
        let mut keys: Vec<&str> = json
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "total")
            .collect();
        keys.sort_unstable();
        let mut named: Vec<&str> = lost.kinds().iter().map(|(name, _, _)| *name).collect();
        named.sort_unstable();
        assert_eq!(keys, named);
        for (name, n, _) in lost.kinds() {
            assert_eq!(json[name], n, "{name}");
        }
        assert_eq!(lost.kernel.lost() + lost.malformed_records, lost.total);
        assert_eq!(
            lost.line(),
            "LOST EVENTS: 36 (1 ring buffer full, 2 process map full, 3 mmsg lengths unreadable, 4 mmsg without enter, 5 stash map full, 7 children not followed (map full), 8 io_uring completions without their submission, 6 undecodable records)"
        );
    }
}
