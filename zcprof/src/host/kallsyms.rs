//! /proc/kallsyms, a line per symbol: `ADDRESS TYPE NAME`, and `\t[MODULE]` after a module's.
//!
//! Read at start-up by the kernel layer (which functions exist) and the cpu layer (where the
//! kernel's copy routines are): its 120,000-odd lines are parsed with byte searches (one
//! `memchr` per field), not word splitting, which took a quarter of a debug build's start-up.

/// One line of /proc/kallsyms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Symbol<'a> {
    /// Hexadecimal, as written (all zeros under `kptr_restrict`).
    pub address: &'a str,
    /// `T`/`t` for text, `D`/`d` for data, …
    pub kind: u8,
    pub name: &'a str,
    /// The module it belongs to; `None` for the core kernel.
    pub module: Option<&'a str>,
}

impl Symbol<'_> {
    /// A function (text symbol), global or local.
    pub fn is_text(&self) -> bool {
        matches!(self.kind, b'T' | b't')
    }

    /// The address, or `None` when it is hidden (shown as 0) or not hexadecimal.
    pub fn address(&self) -> Option<u64> {
        u64::from_str_radix(self.address, 16)
            .ok()
            .filter(|&a| a != 0)
    }
}

/// The symbols in `text` (the contents of /proc/kallsyms); a malformed line is skipped.
pub fn symbols(text: &str) -> impl Iterator<Item = Symbol<'_>> {
    text.split('\n').filter_map(parse)
}

fn parse(line: &str) -> Option<Symbol<'_>> {
    let (address, rest) = line.split_once(' ')?;
    let (kind, rest) = rest.split_once(' ')?;
    let &[kind] = kind.as_bytes() else {
        return None;
    };
    let (name, module) = match rest.split_once('\t') {
        Some((name, module)) => (
            name,
            Some(module.trim_start_matches('[').trim_end_matches(']')),
        ),
        None => (rest, None),
    };
    (!name.is_empty()).then_some(Symbol {
        address,
        kind,
        name,
        module,
    })
}

/// /proc/kallsyms as text; empty when it cannot be read (callers treat that as "no symbols").
pub fn read() -> String {
    std::fs::read_to_string("/proc/kallsyms").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_give_address_kind_name_and_module() {
        let text = "ffffffff81000000 T _stext\n\
                    ffffffff81001000 t memcpy_orig\n\
                    ffffffffc0001000 t nf_hook\t[nf_tables]\n\
                    0000000000000000 D hidden\n\
                    garbage\n\
                    ffffffff81002000 TT two_letters\n";
        let all: Vec<_> = symbols(text).collect();
        assert_eq!(all.len(), 4, "{all:?}");
        assert_eq!(
            all[0],
            Symbol {
                address: "ffffffff81000000",
                kind: b'T',
                name: "_stext",
                module: None
            }
        );
        assert!(all[1].is_text() && all[1].address() == Some(0xffffffff81001000));
        assert_eq!((all[2].name, all[2].module), ("nf_hook", Some("nf_tables")));
        assert!(!all[3].is_text() && all[3].address().is_none());
    }

    /// This machine's kallsyms: the parser finds its functions (as root; otherwise every
    /// address reads 0, which the parser must still take).
    #[test]
    fn this_kernels_kallsyms_parses() {
        let text = read();
        if text.is_empty() {
            return;
        }
        let lines = text.lines().count();
        let parsed: Vec<_> = symbols(&text).collect();
        assert_eq!(parsed.len(), lines, "every line of /proc/kallsyms parses");
        assert!(parsed.iter().any(|s| s.is_text() && s.name == "vfs_read"));
    }
}
