//! `zcprof top --csv`: the same frame as `top --json`, as spreadsheet rows. The header comes
//! once; then, every interval, one row per active process, one `self` row (zcprof's own
//! cost: it is in neither the process rows nor the machine row unless `--include-self`) and
//! the `machine` row, last as it always was. The syscall layer's rates come first; the kernel layer's copy rates
//! (from one copy role, empty when none attached) follow, then `would_block_per_s`, `errno`
//! (the interval's errors by errno name, `EAGAIN=8 EBADF=1`) and `cpu_percent` (the `self`
//! row's only), then the io_uring layer's (`io_uring_*`: empty when the layer does not
//! count in this session, except `io_uring_unseen_calls_per_s`, the `io_uring_setup`/
//! `io_uring_enter` calls seen while it was unavailable, whose bytes nothing counted), then
//! `mapped_pages_per_s` (the mapped layer's file pages mapped in; empty when that layer does
//! not count) and the zero-copy sends of both layers (`MSG_ZEROCOPY`, `SEND_ZC`:
//! `zero_copy_sends_requested_per_s`, and of those the `_done_` and `_copied_` ones as their
//! notifications said), then the flows layer's (`--flows`; empty when it does not count):
//! `delivered_bytes_per_s`, through sockets, and the interval's biggest flow, `top_flow`
//! (`copy file -> user`, as recordings name it) and `top_flow_bytes_per_s`, both empty when
//! no flow moved a byte. New columns go last, so older readers' positions hold.

use zcprof_common::kernel::Role;

use super::{Lost, Rates, ZeroCopySendRates, top, unix_time};
use crate::{
    model::{
        Figures, FlowSlots, IoUringOps, KernelProbes, MappedSlots, Model, Totals, errno_names,
        flow_name,
    },
    probes::{Layer, LayerSummary, copy_source},
};

/// Column names, in order.
pub const HEADER: &str = "unix_time,interval_s,partial,scope,pid,ppid,comm,exited,\
copy_k2u_bytes_per_s,copy_u2k_bytes_per_s,zero_copy_bytes_per_s,calls_per_s,errors_per_s,\
zero_copy_ratio,lost_events,kernel_copy_source,kernel_copy_k2u_bytes_per_s,\
kernel_copy_u2k_bytes_per_s,would_block_per_s,errno,cpu_percent,io_uring_copy_k2u_bytes_per_s,\
io_uring_copy_u2k_bytes_per_s,io_uring_zero_copy_bytes_per_s,io_uring_calls_per_s,\
io_uring_errors_per_s,io_uring_unseen_calls_per_s,mapped_pages_per_s,\
zero_copy_sends_requested_per_s,zero_copy_sends_done_per_s,zero_copy_sends_copied_per_s,\
delivered_bytes_per_s,top_flow,top_flow_bytes_per_s";

/// One row's counts in every layer.
struct Counted<'a> {
    syscall: &'a Figures,
    io_uring: &'a Totals<IoUringOps>,
    kernel: &'a Totals<KernelProbes>,
    mapped: &'a Totals<MappedSlots>,
    flows: &'a Totals<FlowSlots>,
}

/// The rows of the last interval, each newline-terminated.
pub fn rows(
    model: &Model,
    layers: &[LayerSummary],
    filter: &top::Filter,
    own: &top::Own,
    partial: bool,
) -> String {
    let seconds = model.interval.map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let now = unix_time();
    let lost = Lost::of(model).total;
    let source = copy_source(layers);
    let uring = top::io_uring_counted(layers);
    let mapped = top::counted(layers, Layer::Mapped);
    let flows = top::counted(layers, Layer::Flows);
    let mut out = String::new();
    let mut row = |scope: &str,
                   pid: String,
                   ppid: String,
                   comm: &str,
                   exited: &str,
                   c: Counted<'_>,
                   cpu: Option<f64>| {
        let (f, u, k) = (c.syscall, c.io_uring, c.kernel);
        let r = Rates::of(f, seconds);
        // The interval's errors by errno name, `EAGAIN=8 EBADF=1` (no comma: one field).
        let errno: Vec<String> = errno_names(&f.errno)
            .iter()
            .map(|(name, n)| format!("{name}={n}"))
            .collect();
        let copied = top::copy_rates(k, source, seconds);
        let rate = |r: Option<f64>| r.map(|r| format!("{r:.1}")).unwrap_or_default();
        let ur = top::IoUringRates::of(u, seconds);
        let counted = |r: f64| rate(uring.then_some(r));
        let sends = ZeroCopySendRates::of_both(f, &u.figures(), seconds).unwrap_or_default();
        let pages = top::MappedRates::of(c.mapped, seconds).pages_per_s;
        // Empty without the flows layer, as for the other layers: not counted, not zero.
        let flow_rates = flows.then(|| top::FlowRates::of(c.flows, seconds));
        let biggest = flow_rates.as_ref().and_then(|rates| {
            let name = flow_name(&c.flows.biggest()?.0);
            Some((rates.by_flow.get(&name)?.bytes_per_s, name))
        });
        out.push_str(&format!(
            "{now:.3},{seconds:.3},{partial},{scope},{pid},{ppid},{},{exited},{:.1},{:.1},{:.1},{:.1},{:.1},{},{lost},{},{},{},{:.1},{},{},{},{},{},{},{},{:.1},{},{:.1},{:.1},{:.1},{},{},{}\n",
            field(comm),
            r.copy_k2u_bytes_per_s,
            r.copy_u2k_bytes_per_s,
            r.zero_copy_bytes_per_s,
            r.calls_per_s,
            r.errors_per_s,
            r.zero_copy_ratio
                .map(|z| format!("{z:.4}"))
                .unwrap_or_default(),
            source.map(Role::name).unwrap_or_default(),
            rate(copied.map(|(k2u, _)| k2u)),
            rate(copied.map(|(_, u2k)| u2k)),
            r.would_block_per_s,
            errno.join(" "),
            cpu.map(|c| format!("{c:.1}")).unwrap_or_default(),
            counted(ur.rates.copy_k2u_bytes_per_s),
            counted(ur.rates.copy_u2k_bytes_per_s),
            counted(ur.rates.zero_copy_bytes_per_s),
            counted(ur.rates.calls_per_s),
            counted(ur.rates.errors_per_s),
            ur.unseen_calls_per_s,
            rate(mapped.then_some(pages)),
            sends.requested_sends_per_s,
            sends.done_sends_per_s,
            sends.copied_sends_per_s,
            rate(flow_rates.map(|f| f.delivered_bytes_per_s)),
            biggest.as_ref().map(|(_, name)| field(name)).unwrap_or_default(),
            rate(biggest.map(|(per_s, _)| per_s)),
        ));
    };
    for r in top::rows(model, filter, own) {
        let p = r.process;
        row(
            "process",
            p.tgid.to_string(),
            p.ppid.map(|pp| pp.to_string()).unwrap_or_default(),
            &p.comm,
            if p.exited { "true" } else { "false" },
            Counted {
                syscall: &r.figures,
                io_uring: &p.interval.io_uring,
                kernel: &p.interval.kernel,
                mapped: &p.interval.mapped,
                flows: &p.interval.flows,
            },
            None,
        );
    }
    if let (Some(pid), Some(f)) = (own.pid, own.figures(model)) {
        let mut kernel = Totals::zero();
        let mut io_uring = Totals::zero();
        let mut mapped = Totals::zero();
        let mut flows = Totals::zero();
        for p in model.processes().filter(|p| p.tgid == pid) {
            kernel.add(&p.interval.kernel);
            io_uring.add(&p.interval.io_uring);
            mapped.add(&p.interval.mapped);
            flows.add(&p.interval.flows);
        }
        row(
            "self",
            pid.to_string(),
            String::new(),
            "zcprof",
            "false",
            Counted {
                syscall: &f,
                io_uring: &io_uring,
                kernel: &kernel,
                mapped: &mapped,
                flows: &flows,
            },
            own.cpu_percent,
        );
    }
    row(
        "machine",
        String::new(),
        String::new(),
        "",
        "",
        Counted {
            syscall: &top::machine(model, own),
            io_uring: &top::machine_io_uring(model, own),
            kernel: &top::machine_kernel(model, own),
            mapped: &top::machine_mapped(model, own),
            flows: &top::machine_flows(model, own),
        },
        None,
    );
    out
}

/// A CSV field (RFC 4180): quoted when it holds a comma, quote or line break. A leading
/// `=`, `+`, `-` or `@` is prefixed with `'` so spreadsheets do not run a process name as a
/// formula.
pub fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_when_needed() {
        assert_eq!(field("dd"), "dd");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=cmd()"), "'=cmd()");
    }

    #[test]
    fn an_empty_model_gives_one_machine_row() {
        let out = rows(
            &Model::new(),
            &[],
            &top::Filter::default(),
            &top::Own::default(),
            false,
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1);
        let cols: Vec<&str> = lines[0].split(',').collect();
        assert_eq!(cols.len(), HEADER.split(',').count());
        assert_eq!(cols[3], "machine");
        assert_eq!(cols[13], "", "no ratio when nothing moved");
        assert_eq!(cols[15..18], ["", "", ""], "no kernel copy role attached");
        assert_eq!(cols[18..21], ["0.0", "", ""], "no errors, no CPU");
        assert_eq!(
            cols[21..27],
            ["", "", "", "", "", "0.0"],
            "no io_uring layer in the session: its figures are empty, not zeros"
        );
        assert_eq!(cols[27], "", "no mapped layer in the session");
        assert_eq!(cols[28..31], ["0.0", "0.0", "0.0"], "no zero-copy sends");
        assert_eq!(cols[31..], ["", "", ""], "no flows layer in the session");
    }

    fn column(name: &str) -> usize {
        HEADER
            .split(',')
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    }

    /// With the flows layer: in 2 s nginx read 6 MB from a file and sent 2 MB to TCP, and
    /// cat's read hit EOF (a call of a flow, no bytes). Its row has what it delivered and its
    /// biggest flow, the machine row the same over every process; cat has delivered nothing
    /// and has no biggest flow. Without the layer the three columns are empty.
    #[test]
    fn flows_columns_carry_delivered_bytes_and_the_biggest_flow() {
        use std::time::{Duration, Instant};

        use zcprof_common::{
            Counts, Key,
            flows::{WRITE_TO, kind},
        };

        use crate::{
            model::{Batch, tests::FakeProc},
            probes::State,
        };

        let start = Instant::now();
        let mut m = Model::new();
        m.start_at(start);
        let proc = FakeProc::default().with(9, "nginx", 1).with(10, "cat", 1);
        let stats = |calls, bytes| Counts {
            calls,
            bytes,
            ..Counts::ZERO
        };
        for (secs, n) in [(1, 0), (3, 1)] {
            let key = |tgid, slot| Key { tgid, slot };
            let batch = Batch {
                counts: vec![
                    (
                        Layer::Flows,
                        key(9, kind::FILE),
                        stats(3 * n, 6_000_000 * n),
                    ),
                    (
                        Layer::Flows,
                        key(9, WRITE_TO + kind::TCP),
                        stats(2 * n, 2_000_000 * n),
                    ),
                    (Layer::Flows, key(10, kind::FILE), stats(n, 0)),
                ],
                ..Batch::empty(start + Duration::from_secs(secs))
            };
            m.apply(&batch, &proc);
        }
        let flows = [LayerSummary {
            layer: Layer::Flows,
            state: State::Live,
            via: "btf".into(),
            attached: 1,
            unavailable: vec![],
        }];
        let out = rows(
            &m,
            &flows,
            &top::Filter::default(),
            &top::Own::default(),
            false,
        );
        let at = column("delivered_bytes_per_s");
        assert_eq!(at, HEADER.split(',').count() - 3, "new columns go last");
        let row = |scope_comm: &str| -> Vec<String> {
            let line = out
                .lines()
                .find(|l| l.contains(scope_comm))
                .unwrap_or_else(|| panic!("no {scope_comm} row in\n{out}"));
            let cols: Vec<String> = line.split(',').map(str::to_string).collect();
            assert_eq!(cols.len(), HEADER.split(',').count(), "{line}");
            cols[at..].to_vec()
        };
        assert_eq!(
            row(",process,9,1,nginx,"),
            ["1000000.0", "copy file -> user", "3000000.0"]
        );
        assert_eq!(row(",process,10,1,cat,"), ["0.0", "", ""]);
        assert_eq!(
            row(",machine,"),
            ["1000000.0", "copy file -> user", "3000000.0"]
        );
        let off = rows(
            &m,
            &[],
            &top::Filter::default(),
            &top::Own::default(),
            false,
        );
        for line in off.lines() {
            assert!(line.ends_with(",,,"), "not counted, not zero: {line}");
        }
    }
}
