//! The dashboard's state: everything the views draw, owned, so that drawing needs neither
//! the model nor any I/O.
//!
//! State changes in three places only: [`App::apply`] takes a view of the model after the
//! session applied a batch, [`App::handle_key`] (see `keys.rs`) reacts to a key, and the
//! `demo_*` methods record what happened to a demo the event loop spawned. Invariants:
//! `order` indexes `rows` (filtered and sorted), and each history holds at most
//! [`HISTORY`] samples.

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use regex::{Regex, RegexBuilder};
use zcprof_common::{
    kernel::Role,
    syscalls::{self, Family},
};

use crate::{
    model::{Figures, KernelTotals, Model, ProcId, Totals},
    probes::{LAYER_KERNEL, LayerSummary},
    report::{
        Lost, Rates,
        run::copy_source,
        top::{self, KernelRates},
    },
};

/// Samples kept per process for trends and charts: a minute at the default interval.
pub const HISTORY: usize = 60;

/// What the header says about the machine and the session; set once at start.
#[derive(Clone, Debug, Default)]
pub struct HostInfo {
    /// `uname -r`.
    pub kernel: String,
    pub layers: Vec<LayerSummary>,
    /// The requested refresh interval.
    pub refresh: Duration,
}

/// A bounded series of per-second rates, oldest first.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub copied: VecDeque<f64>,
    pub zero_copy: VecDeque<f64>,
}

impl History {
    fn push(&mut self, copied: f64, zero_copy: f64) {
        for (series, value) in [(&mut self.copied, copied), (&mut self.zero_copy, zero_copy)] {
            if series.len() == HISTORY {
                series.pop_front();
            }
            series.push_back(value);
        }
    }
}

/// One process as the table and the detail view show it.
#[derive(Clone, Debug)]
pub struct ProcRow {
    pub id: ProcId,
    pub pid: u32,
    pub ppid: Option<u32>,
    pub comm: String,
    /// Read once per process instance (empty when /proc had nothing, e.g. it exited).
    pub cmdline: String,
    pub exited: bool,
    /// Figures of the last interval, and the same per second.
    pub interval: Figures,
    pub rates: Rates,
    /// Copy-family calls in the last interval.
    pub copy_calls: u64,
    /// Everything counted since the probes attached, per syscall.
    pub totals: Totals,
    /// What the kernel layer counted in the last interval, per second, per probe (its copy
    /// figures from [`App::copy_source`] only).
    pub kernel_rates: KernelRates,
    /// Everything the kernel layer counted since the probes attached, per probe.
    pub kernel: KernelTotals,
    /// Direct children known to the model: (pid, comm).
    pub children: Vec<(u32, String)>,
}

impl ProcRow {
    /// Average bytes per copy-family call in the interval, if it made any.
    pub fn avg_copy(&self) -> Option<f64> {
        (self.copy_calls > 0).then(|| self.interval.copied_bytes() as f64 / self.copy_calls as f64)
    }
}

/// Copy-family calls in `t` (`Figures` counts all calls together).
fn copy_calls(t: &Totals) -> u64 {
    syscalls::SYSCALLS
        .iter()
        .zip(t.0.iter())
        .filter(|(sc, _)| sc.family == Family::Copy)
        .map(|(_, s)| s.calls)
        .sum()
}

/// Table columns, in display order; each can be the sort key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Pid,
    Comm,
    Copied,
    CopyK2u,
    CopyU2k,
    ZeroCopy,
    Ratio,
    Calls,
    AvgCopy,
    /// Kernel-layer copies, from the copy role only: the one column of another layer.
    KernelCopied,
}

impl Column {
    pub const ALL: [Column; 10] = [
        Column::Pid,
        Column::Comm,
        Column::Copied,
        Column::CopyK2u,
        Column::CopyU2k,
        Column::ZeroCopy,
        Column::Ratio,
        Column::Calls,
        Column::AvgCopy,
        Column::KernelCopied,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Column::Pid => "PID",
            Column::Comm => "COMM",
            Column::Copied => "COPIED/s",
            Column::CopyK2u => "K→U/s",
            Column::CopyU2k => "U→K/s",
            Column::ZeroCopy => "ZERO-COPY/s",
            Column::Ratio => "ZC%",
            Column::Calls => "CALLS/s",
            Column::AvgCopy => "AVG SIZE",
            Column::KernelCopied => "KERNEL/s",
        }
    }

    /// The next of `columns` (the ones the table has), wrapping around.
    pub fn next(self, columns: &[Column]) -> Column {
        self.step(columns, 1)
    }

    pub fn prev(self, columns: &[Column]) -> Column {
        self.step(columns, columns.len().saturating_sub(1))
    }

    fn step(self, columns: &[Column], by: usize) -> Column {
        let Some(i) = columns.iter().position(|c| *c == self) else {
            return columns.first().copied().unwrap_or(self);
        };
        columns[(i + by) % columns.len()]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub column: Column,
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            column: Column::Copied,
            descending: true,
        }
    }
}

/// An applied filter: a PID, or a regex on comm and command line (a plain word is a
/// substring).
#[derive(Clone, Debug)]
pub enum Filter {
    Pid(u32),
    Pattern { text: String, regex: Regex },
}

impl Filter {
    /// `Ok(None)` for empty text (no filter); an error message when the regex does not
    /// compile.
    pub fn parse(text: &str) -> Result<Option<Filter>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if let Ok(pid) = text.parse::<u32>() {
            return Ok(Some(Filter::Pid(pid)));
        }
        RegexBuilder::new(text)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .map(|regex| {
                Some(Filter::Pattern {
                    text: text.to_string(),
                    regex,
                })
            })
            .map_err(|err| {
                // The regex crate's message spans several lines; the footer has one.
                let msg = err.to_string();
                let last = msg.lines().last().unwrap_or("invalid regex").trim();
                format!("bad regex: {}", last.trim_start_matches("error: "))
            })
    }

    pub fn text(&self) -> String {
        match self {
            Filter::Pid(pid) => pid.to_string(),
            Filter::Pattern { text, .. } => text.clone(),
        }
    }

    pub fn matches(&self, row: &ProcRow) -> bool {
        match self {
            Filter::Pid(pid) => row.pid == *pid,
            Filter::Pattern { regex, .. } => {
                regex.is_match(&row.comm) || regex.is_match(&row.cmdline)
            }
        }
    }
}

/// The `/` prompt while it is open.
#[derive(Clone, Debug, Default)]
pub struct FilterInput {
    pub text: String,
    /// Why the last Enter was refused (the previous filter stays).
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Processes,
    Detail,
    Demos,
}

/// A scenario from the demo catalogue.
#[derive(Clone, Debug)]
pub struct DemoScenario {
    pub name: String,
    pub description: String,
    pub modes: Vec<String>,
    pub baseline: String,
}

impl DemoScenario {
    /// The whole bundled catalogue, baseline mode first.
    pub fn catalogue() -> Vec<DemoScenario> {
        zcprof_demos::scenarios()
            .iter()
            .map(|s| {
                let mut modes: Vec<String> = s.modes.iter().map(|m| m.name.to_string()).collect();
                if let Some(i) = modes.iter().position(|m| m == s.baseline) {
                    let base = modes.remove(i);
                    modes.insert(0, base);
                }
                DemoScenario {
                    name: s.name.to_string(),
                    description: s.description.to_string(),
                    modes,
                    baseline: s.baseline.to_string(),
                }
            })
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum DemoState {
    /// Asked for; the event loop has not spawned it yet.
    Starting,
    Running,
    /// Asked to stop (SIGINT sent).
    Stopping,
    /// Ended after being asked to stop.
    Stopped,
    Finished,
    Failed(String),
}

/// One worker process of a demo run, as zcprof measured it.
#[derive(Clone, Debug)]
pub struct DemoWorker {
    pub pid: u32,
    pub comm: String,
    /// From the demo's report, once it finished.
    pub role: Option<String>,
    pub rates: Rates,
    /// Since the worker started (kept after it exits).
    pub copied_bytes: u64,
    pub zero_copy_bytes: u64,
    pub exited: bool,
}

/// What the demo reported when it ended.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoResult {
    pub payload_bytes: u64,
    pub throughput_bytes_per_sec: f64,
    pub wall_seconds: f64,
    pub verified: bool,
}

/// The latest run of one variant (scenario × mode).
#[derive(Clone, Debug)]
pub struct DemoRun {
    pub scenario: String,
    pub mode: String,
    pub state: DemoState,
    /// The `zcprof-demo` process (its workers are its children).
    pub pid: Option<u32>,
    pub workers: Vec<DemoWorker>,
    pub result: Option<DemoResult>,
}

impl DemoRun {
    pub fn copied_bytes(&self) -> u64 {
        self.workers.iter().map(|w| w.copied_bytes).sum()
    }

    pub fn zero_copy_bytes(&self) -> u64 {
        self.workers.iter().map(|w| w.zero_copy_bytes).sum()
    }

    /// Bytes copied across the user/kernel boundary per payload byte delivered, once the
    /// demo reported its payload.
    pub fn amplification(&self) -> Option<f64> {
        let payload = self.result.as_ref()?.payload_bytes;
        (payload > 0).then(|| self.copied_bytes() as f64 / payload as f64)
    }

    pub fn is_active(&self) -> bool {
        matches!(
            self.state,
            DemoState::Starting | DemoState::Running | DemoState::Stopping
        )
    }
}

/// The demos tab.
#[derive(Clone, Debug)]
pub struct DemoPanel {
    pub scenarios: Vec<DemoScenario>,
    /// Selected scenario and mode (indexes).
    pub scenario: usize,
    pub mode: usize,
    /// How long a started demo runs.
    pub seconds: u32,
    pub runs: Vec<DemoRun>,
}

impl DemoPanel {
    pub fn new(scenarios: Vec<DemoScenario>) -> Self {
        DemoPanel {
            scenarios,
            scenario: 0,
            mode: 0,
            seconds: 30,
            runs: Vec::new(),
        }
    }

    pub fn selected(&self) -> Option<(&DemoScenario, &str)> {
        let s = self.scenarios.get(self.scenario)?;
        Some((s, s.modes.get(self.mode)?.as_str()))
    }

    pub fn run(&self, scenario: &str, mode: &str) -> Option<&DemoRun> {
        self.runs
            .iter()
            .find(|r| r.scenario == scenario && r.mode == mode)
    }

    pub(crate) fn run_mut(&mut self, scenario: &str, mode: &str) -> Option<&mut DemoRun> {
        self.runs
            .iter_mut()
            .find(|r| r.scenario == scenario && r.mode == mode)
    }
}

/// What the event loop must do after a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Quit,
    /// Run `zcprof-demo run SCENARIO --mode M --seconds S` for each mode.
    StartDemos {
        scenario: String,
        modes: Vec<String>,
        seconds: u32,
    },
    /// Interrupt the `zcprof-demo` process `pid` (it reports what it did so far).
    StopDemo {
        pid: u32,
    },
}

/// The dashboard's whole state.
pub struct App {
    pub info: HostInfo,
    /// The kernel-layer role whose counters make the kernel-copy figure, from the layers
    /// that attached (`None`: no kernel copy probe attached).
    pub copy_source: Option<Role>,
    /// Length of the last interval, seconds (0 before the first batch).
    pub seconds: f64,
    pub machine: Figures,
    /// The kernel layer's machine-wide rates over the last interval.
    pub machine_kernel: KernelRates,
    pub machine_history: History,
    pub lost: Lost,
    /// zcprof's own CPU use over the last interval, percent of one CPU.
    pub self_cpu: Option<f64>,
    pub(crate) rows: Vec<ProcRow>,
    /// Indexes into `rows` of the rows shown, in display order.
    pub(crate) order: Vec<usize>,
    pub(crate) history: HashMap<ProcId, History>,
    pub sort: Sort,
    pub filter: Option<Filter>,
    /// `Some` while the `/` prompt is open.
    pub filter_input: Option<FilterInput>,
    pub selected: Option<ProcId>,
    pub paused: bool,
    pub view: View,
    pub help: bool,
    pub demos: DemoPanel,
    /// False when `NO_COLOR` is set.
    pub color: bool,
    /// Batches seen (drawn or not).
    pub batches: u64,
}

impl App {
    pub fn new(info: HostInfo, demos: Vec<DemoScenario>) -> Self {
        App {
            copy_source: copy_source(&info.layers),
            info,
            seconds: 0.0,
            machine: Figures::default(),
            machine_kernel: KernelRates::of(&KernelTotals::zero(), None, 0.0),
            machine_history: History::default(),
            lost: Lost {
                kernel: Default::default(),
                malformed_records: 0,
                total: 0,
            },
            self_cpu: None,
            rows: Vec::new(),
            order: Vec::new(),
            history: HashMap::new(),
            sort: Sort::default(),
            filter: None,
            filter_input: None,
            selected: None,
            paused: false,
            view: View::Processes,
            help: false,
            demos: DemoPanel::new(demos),
            color: true,
            batches: 0,
        }
    }

    /// Takes the dashboard's view of `model` after the session applied a batch. `cmdline`
    /// is asked once per new process instance. While paused the table, header and
    /// histories stay frozen; demo runs are still followed so that none is lost.
    pub fn apply(&mut self, model: &Model, cmdline: &dyn Fn(u32) -> Option<String>) {
        self.batches += 1;
        self.follow_demos(model);
        if self.paused {
            return;
        }
        let seconds = model.interval.map_or(0.0, |d| d.as_secs_f64());
        self.seconds = seconds;
        self.lost = Lost::of(model);
        let mut known: HashMap<ProcId, String> =
            self.rows.drain(..).map(|r| (r.id, r.cmdline)).collect();
        let mut children: HashMap<ProcId, Vec<(u32, String)>> = HashMap::new();
        for p in model.processes() {
            if let Some(parent) = p.parent {
                children
                    .entry(parent)
                    .or_default()
                    .push((p.tgid, p.comm.clone()));
            }
        }
        let mut machine = Figures::default();
        for p in model.processes() {
            let interval = p.interval.figures();
            machine.add(&interval);
            if p.totals.is_zero() && p.kernel.is_zero() {
                continue;
            }
            let cmdline = known
                .remove(&p.id)
                .or_else(|| if p.exited { None } else { cmdline(p.tgid) })
                .unwrap_or_default();
            self.rows.push(ProcRow {
                id: p.id,
                pid: p.tgid,
                ppid: p.ppid,
                comm: p.name().to_string(),
                cmdline,
                exited: p.exited,
                rates: Rates::of(&interval, seconds),
                interval,
                copy_calls: copy_calls(&p.interval),
                totals: p.totals.clone(),
                kernel_rates: KernelRates::of(&p.kernel_interval, self.copy_source, seconds),
                kernel: p.kernel.clone(),
                children: children.remove(&p.id).unwrap_or_default(),
            });
        }
        self.machine = machine;
        self.machine_kernel =
            KernelRates::of(&top::machine_kernel(model), self.copy_source, seconds);
        let m = Rates::of(&machine, seconds);
        self.machine_history.push(
            m.copy_k2u_bytes_per_s + m.copy_u2k_bytes_per_s,
            m.zero_copy_bytes_per_s,
        );
        for row in &self.rows {
            self.history.entry(row.id).or_default().push(
                row.rates.copy_k2u_bytes_per_s + row.rates.copy_u2k_bytes_per_s,
                row.rates.zero_copy_bytes_per_s,
            );
        }
        let rows = &self.rows;
        self.history
            .retain(|id, _| rows.iter().any(|r| r.id == *id));
        self.refresh_order();
    }

    /// Updates the workers of every demo run from the model: the children of the
    /// `zcprof-demo` process. Workers that left the model keep their last figures.
    fn follow_demos(&mut self, model: &Model) {
        let seconds = model.interval.map_or(0.0, |d| d.as_secs_f64());
        for run in &mut self.demos.runs {
            let Some(pid) = run.pid else { continue };
            let Some(root) = model.latest_instance(pid) else {
                continue;
            };
            for id in model.tree(root).into_iter().skip(1) {
                let Some(p) = model.process(id) else { continue };
                let totals = p.totals.figures();
                let worker = DemoWorker {
                    pid: p.tgid,
                    comm: p.comm.clone(),
                    role: None,
                    rates: Rates::of(&p.interval.figures(), seconds),
                    copied_bytes: totals.copied_bytes(),
                    zero_copy_bytes: totals.zero_copy_bytes,
                    exited: p.exited,
                };
                match run.workers.iter_mut().find(|w| w.pid == p.tgid) {
                    Some(w) => {
                        let role = w.role.take();
                        *w = DemoWorker { role, ..worker };
                    }
                    None => run.workers.push(worker),
                }
            }
        }
    }

    /// Recomputes which rows are shown and in what order; keeps the selection on the same
    /// process if it is still shown, else on the first row.
    pub(crate) fn refresh_order(&mut self) {
        let mut order: Vec<usize> = (0..self.rows.len())
            .filter(|&i| {
                self.filter
                    .as_ref()
                    .is_none_or(|f| f.matches(&self.rows[i]))
            })
            .collect();
        let rows = &self.rows;
        let sort = self.sort;
        order.sort_by(|&a, &b| {
            let (a, b) = (&rows[a], &rows[b]);
            let key = match sort.column {
                Column::Comm => a.comm.cmp(&b.comm),
                Column::Pid => a.pid.cmp(&b.pid),
                column => sort_value(a, column).total_cmp(&sort_value(b, column)),
            };
            let key = if sort.descending { key.reverse() } else { key };
            key.then(a.pid.cmp(&b.pid)).then(a.id.cmp(&b.id))
        });
        self.order = order;
        let still_shown = self
            .selected
            .is_some_and(|id| self.visible().any(|r| r.id == id));
        if !still_shown {
            let first = self.visible().next().map(|r| r.id);
            self.selected = first;
        }
    }

    /// The table's columns: the kernel-copy one only when a copy role attached, so that
    /// no column stands empty for a probe that is not there.
    pub fn columns(&self) -> Vec<Column> {
        Column::ALL
            .into_iter()
            .filter(|c| *c != Column::KernelCopied || self.copy_source.is_some())
            .collect()
    }

    /// The kernel layer's state, when it is one of the session's layers.
    pub fn kernel_layer(&self) -> Option<&LayerSummary> {
        self.info.layers.iter().find(|l| l.layer == LAYER_KERNEL)
    }

    /// The rows shown, in display order.
    pub fn visible(&self) -> impl Iterator<Item = &ProcRow> {
        self.order.iter().filter_map(|&i| self.rows.get(i))
    }

    /// Number of processes with counts (before filtering).
    pub fn total_rows(&self) -> usize {
        self.rows.len()
    }

    /// Position of the selection among the visible rows.
    pub fn selected_index(&self) -> Option<usize> {
        let id = self.selected?;
        self.visible().position(|r| r.id == id)
    }

    pub fn selected_row(&self) -> Option<&ProcRow> {
        let id = self.selected?;
        self.rows.iter().find(|r| r.id == id)
    }

    pub fn history(&self, id: ProcId) -> Option<&History> {
        self.history.get(&id)
    }

    pub fn set_filter(&mut self, filter: Option<Filter>) {
        self.filter = filter;
        self.refresh_order();
    }

    /// The event loop spawned the demo (or could not).
    pub fn demo_spawned(&mut self, scenario: &str, mode: &str, spawned: Result<u32, String>) {
        if let Some(run) = self.demos.run_mut(scenario, mode) {
            match spawned {
                Ok(pid) => {
                    run.pid = Some(pid);
                    if run.state == DemoState::Starting {
                        run.state = DemoState::Running;
                    }
                }
                Err(err) => run.state = DemoState::Failed(err),
            }
        }
    }

    /// The demo process ended: its report (roles, payload, throughput) or why it failed.
    pub fn demo_exited(
        &mut self,
        scenario: &str,
        mode: &str,
        outcome: Result<zcprof_demos::Report, String>,
    ) {
        let Some(run) = self.demos.run_mut(scenario, mode) else {
            return;
        };
        match outcome {
            Ok(report) => {
                for role in &report.roles {
                    if let Some(w) = run.workers.iter_mut().find(|w| w.pid as i32 == role.pid) {
                        w.role = Some(role.role.clone());
                    }
                }
                run.result = Some(DemoResult {
                    payload_bytes: report.payload_bytes,
                    throughput_bytes_per_sec: report.throughput_bytes_per_sec,
                    wall_seconds: report.wall_seconds,
                    verified: report.verified,
                });
                run.state = DemoState::Finished;
            }
            Err(_) if run.state == DemoState::Stopping => run.state = DemoState::Stopped,
            Err(err) => run.state = DemoState::Failed(err),
        }
    }
}

fn sort_value(row: &ProcRow, column: Column) -> f64 {
    let r = &row.rates;
    match column {
        Column::Copied => r.copy_k2u_bytes_per_s + r.copy_u2k_bytes_per_s,
        Column::CopyK2u => r.copy_k2u_bytes_per_s,
        Column::CopyU2k => r.copy_u2k_bytes_per_s,
        Column::ZeroCopy => r.zero_copy_bytes_per_s,
        // Processes that moved nothing sort below 0 %.
        Column::Ratio => r.zero_copy_ratio.unwrap_or(-1.0),
        Column::Calls => r.calls_per_s,
        Column::AvgCopy => row.avg_copy().unwrap_or(-1.0),
        Column::KernelCopied => row.kernel_rates.copied_per_s().unwrap_or(-1.0),
        Column::Pid | Column::Comm => 0.0,
    }
}
