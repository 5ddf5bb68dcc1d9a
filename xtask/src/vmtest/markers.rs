//! Reading the guest's serial console: the markers `/init` prints, the commands' output between
//! them, and the kernel messages that mean the VM is dead or dying.
//!
//! Everything arrives on one stream: boot messages, `/init`'s markers, the commands' output and
//! any kernel message printed while they run. Markers are searched anywhere in a line, not only
//! at its start, because a command whose last output has no newline leaves `/init`'s next echo
//! on the same line; what precedes the marker is kept as output.

/// `vmtest: init uptime=<seconds> release=<uname -r>` — /init started.
pub const INIT: &str = "vmtest: init";
/// `vmtest: begin <n>` — command n starts.
pub const BEGIN: &str = "vmtest: begin";
/// `vmtest: end <n> status=<rc>` — command n exited with rc.
pub const END: &str = "vmtest: end";
/// All commands ran; the VM is powering off.
pub const DONE: &str = "vmtest: done";

/// Kernel messages after which the guest cannot be trusted to finish. Matched at the start of
/// the message (after the printk timestamp) so that a command printing "BUG:" in the middle of
/// a line does not kill the VM.
const FATAL: &[&str] = &[
    "Kernel panic - not syncing",
    "BUG: ",
    "watchdog: BUG:",
    "Oops: ",
    "general protection fault",
    "rcu: INFO: rcu_sched detected stalls",
    "rcu: INFO: rcu_preempt detected stalls",
    "rcu: INFO: rcu_sched self-detected stall",
    "rcu: INFO: rcu_preempt self-detected stall",
];

/// A line's meaning.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Init {
        uptime: Option<f64>,
        release: Option<String>,
    },
    Begin(usize),
    End {
        index: usize,
        status: i32,
    },
    Done,
    /// A kernel message from [`FATAL`], as printed.
    Fatal(String),
    /// A kernel `WARNING:`; worth reporting, not worth stopping for.
    Warning(String),
    Output(String),
}

/// Classifies one console line (already cleaned with [`clean`]). A line can hold output followed
/// by a marker; both are returned in order.
pub fn parse(line: &str) -> Vec<Event> {
    let message = strip_timestamp(line);
    if FATAL.iter().any(|f| message.starts_with(f)) {
        return vec![Event::Fatal(line.to_string())];
    }
    if message.starts_with("WARNING: ") {
        return vec![Event::Warning(line.to_string())];
    }
    for (marker, build) in [
        (INIT, parse_init as fn(&str) -> Option<Event>),
        (BEGIN, parse_begin),
        (END, parse_end),
        (DONE, parse_done),
    ] {
        if let Some(at) = line.find(marker)
            && let Some(event) = build(&line[at + marker.len()..])
        {
            let before = &line[..at];
            return if before.is_empty() {
                vec![event]
            } else {
                vec![Event::Output(before.to_string()), event]
            };
        }
    }
    vec![Event::Output(line.to_string())]
}

fn parse_init(rest: &str) -> Option<Event> {
    let mut uptime = None;
    let mut release = None;
    for word in rest.split_whitespace() {
        if let Some(v) = word.strip_prefix("uptime=") {
            uptime = v.parse().ok();
        } else if let Some(v) = word.strip_prefix("release=") {
            release = Some(v.to_string());
        }
    }
    Some(Event::Init { uptime, release })
}

fn parse_begin(rest: &str) -> Option<Event> {
    let mut words = rest.split_whitespace();
    let index = words.next()?.parse().ok()?;
    words.next().is_none().then_some(Event::Begin(index))
}

fn parse_end(rest: &str) -> Option<Event> {
    let mut words = rest.split_whitespace();
    let index = words.next()?.parse().ok()?;
    let status = words.next()?.strip_prefix("status=")?.parse().ok()?;
    words
        .next()
        .is_none()
        .then_some(Event::End { index, status })
}

fn parse_done(rest: &str) -> Option<Event> {
    rest.trim().is_empty().then_some(Event::Done)
}

/// Drops a leading printk timestamp such as `[    1.234567] `.
fn strip_timestamp(line: &str) -> &str {
    let Some(rest) = line.strip_prefix('[') else {
        return line;
    };
    match rest.split_once(']') {
        Some((stamp, msg)) if stamp.trim().parse::<f64>().is_ok() => msg.trim_start(),
        _ => line,
    }
}

/// Removes what a terminal would interpret rather than show: ANSI escape sequences (SeaBIOS and
/// QEMU's -nographic emit some, e.g. one that turns off line wrapping on the host terminal),
/// carriage returns and other control characters.
pub fn clean(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters… final byte in @..~ ; other escapes are two characters.
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        assert_eq!(parse("vmtest: begin 3"), [Event::Begin(3)]);
        assert_eq!(
            parse("vmtest: end 3 status=127"),
            [Event::End {
                index: 3,
                status: 127
            }]
        );
        assert_eq!(parse("vmtest: done"), [Event::Done]);
        assert_eq!(
            parse("vmtest: init uptime=1.87 release=6.1.0-56-cloud-amd64"),
            [Event::Init {
                uptime: Some(1.87),
                release: Some("6.1.0-56-cloud-amd64".into())
            }]
        );
    }

    #[test]
    fn marker_after_unterminated_output() {
        assert_eq!(
            parse("no newlinevmtest: end 1 status=0"),
            [
                Event::Output("no newline".into()),
                Event::End {
                    index: 1,
                    status: 0
                }
            ]
        );
    }

    #[test]
    fn malformed_markers_are_output() {
        for line in [
            "vmtest: begin x",
            "vmtest: end 1",
            "vmtest: end 1 status=0 extra",
            "vmtest: done later",
        ] {
            assert_eq!(parse(line), [Event::Output(line.into())], "{line}");
        }
    }

    #[test]
    fn kernel_trouble() {
        let panic = "[    2.100000] Kernel panic - not syncing: Attempted to kill init!";
        assert_eq!(parse(panic), [Event::Fatal(panic.into())]);
        let lockup = "[   30.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s!";
        assert_eq!(parse(lockup), [Event::Fatal(lockup.into())]);
        assert!(matches!(
            parse("BUG: kernel NULL pointer dereference")[..],
            [Event::Fatal(_)]
        ));
        assert!(matches!(
            parse("[ 1.0] WARNING: CPU: 0 PID: 1 at kernel/x.c:1")[..],
            [Event::Warning(_)]
        ));
        // A command printing the word is not the kernel saying it.
        assert!(matches!(
            parse("test says BUG: nothing")[..],
            [Event::Output(_)]
        ));
    }

    #[test]
    fn clean_strips_escapes_and_cr() {
        assert_eq!(clean("\u{1b}[?7l\u{1b}[2J\u{1b}cSeaBIOS\r"), "SeaBIOS");
        assert_eq!(clean("a\tb"), "a\tb");
    }
}
