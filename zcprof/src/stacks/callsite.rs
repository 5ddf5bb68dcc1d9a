//! A stack's call site as the report names it: the syscall and the innermost frames of the
//! program's own code, past libc's wrappers and the language's standard library, e.g.
//! `read() in serve_file (server.rs:120) ← handle ← main`; and whether a stack looks cut
//! short (a frame-pointer chain that broke before the thread's root).

use super::symbolize::Symbol;

/// Own frames a call site shows.
pub const OWN_FRAMES: usize = 3;

/// The call site of one stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSite {
    /// Up to [`OWN_FRAMES`] innermost frames of the program's own code, innermost first.
    pub own: Vec<Symbol>,
    /// The innermost frames as they are, when no frame is the program's own (a stripped
    /// binary, or a stack cut short inside a library); empty otherwise.
    pub fallback: Vec<Symbol>,
    /// The stack looks cut short ([`truncated`]).
    pub truncated: bool,
}

impl CallSite {
    /// `read() in serve_file (server.rs:120) ← handle ← main`: the innermost own frame with
    /// its file and line, its callers by name. Without own frames the innermost frames as
    /// they are (`read() in libc.so.6+0x11a2b0 ← [unknown]+0x55d0c8a03f10`); never empty.
    pub fn display(&self, syscall: &str) -> String {
        format!("{syscall}() in {}", self.frames())
    }

    /// A kernel-layer sample's call site: its innermost kernel frames, then the program's
    /// own frames as in [`CallSite::display`]: `skb_copy_datagram_iter ← tcp_recvmsg_locked
    /// ← tcp_recvmsg (kernel) in read_all (net.rs:88) ← client ← main`.
    pub fn display_kernel(&self, kernel: &[Symbol], probe: &str) -> String {
        let chain: Vec<String> = kernel
            .iter()
            .take(OWN_FRAMES)
            .map(Symbol::display)
            .collect();
        let chain = if chain.is_empty() {
            format!("{probe} [no kernel frames]")
        } else {
            chain.join(" ← ")
        };
        format!("{chain} (kernel) in {}", self.frames())
    }

    fn frames(&self) -> String {
        let frames: Vec<String> = match (self.own.split_first(), self.fallback.is_empty()) {
            (Some((first, callers)), _) => std::iter::once(short(first).display())
                .chain(callers.iter().map(|s| match &s.function {
                    Some(function) => short_name(function).to_string(),
                    None => s.display(),
                }))
                .collect(),
            (None, false) => self.fallback.iter().map(Symbol::display).collect(),
            (None, true) => vec!["[no user frames]".to_string()],
        };
        frames.join(" ← ")
    }
}

/// The call site of `stack` (innermost frame first); `main_binary` is the process's
/// executable ([`Symbolizer::main_binary`](super::symbolize::Symbolizer::main_binary)),
/// when known.
pub fn call_site(stack: &[Symbol], main_binary: Option<&str>) -> CallSite {
    let own: Vec<Symbol> = stack
        .iter()
        .filter(|s| !is_library(s, main_binary))
        .take(OWN_FRAMES)
        .cloned()
        .collect();
    let fallback = if own.is_empty() {
        stack.iter().take(OWN_FRAMES).cloned().collect()
    } else {
        Vec::new()
    };
    CallSite {
        own,
        fallback,
        truncated: truncated(stack),
    }
}

/// Not the program's own code: a shared library other than the main executable, or
/// standard-library code compiled into it (Rust's std/core/alloc, Go's standard packages
/// and runtime, C++'s std, the C library's internals).
pub fn is_library(sym: &Symbol, main_binary: Option<&str>) -> bool {
    in_shared_library(&sym.module, main_binary)
        || sym.function.as_deref().is_some_and(is_standard_function)
}

/// Whether `module` is a library rather than the executable: by the executable's path when
/// known, else by the `.so` in its name. Unknown modules count as the program's (they are
/// shown rather than hidden).
fn in_shared_library(module: &str, main_binary: Option<&str>) -> bool {
    if !module.starts_with('/') {
        return false;
    }
    match main_binary {
        Some(main) => module != main,
        None => {
            let name = super::symbolize::base_name(module);
            name.ends_with(".so") || name.contains(".so.")
        }
    }
}

/// A function of a language's standard library or C runtime, by its name.
fn is_standard_function(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        // Rust, with trait impls of std types (`<std::fs::File as std::io::Read>::read`).
        "std::",
        "core::",
        "alloc::",
        "<std::",
        "<core::",
        "<alloc::",
        "<&std::",
        "<&mut std::",
        "<&core::",
        "<&alloc::",
        // C++ (`std::` above covers its standard library too).
        "__gnu_cxx::",
        "__cxxabiv1::",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
        || name == "_start"
        || is_reserved_c_name(name)
        || is_go_standard(name)
}

/// C reserves identifiers that start with `__` or `_` and a capital letter for the
/// implementation: glibc's internals (`__libc_start_main`, `__GI___libc_read`), the
/// compiler's runtime, and Rust's `__rust_…` shims.
fn is_reserved_c_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(
        (chars.next(), chars.next()),
        (Some('_'), Some('_')) | (Some('_'), Some('A'..='Z'))
    )
}

/// A Go function of the standard library or runtime (`runtime.goexit`,
/// `internal/poll.(*FD).Read`, `os.(*File).Read`): Go's rule is that a standard package's
/// path has no dot in its first element, where others start with a domain
/// (`github.com/…`); `main` is the program's own. Names with `::` or spaces are not Go's,
/// and GCC's clone suffixes (`copy_loop.part.0`) are not package separators.
fn is_go_standard(name: &str) -> bool {
    if name.contains("::") || name.starts_with('<') {
        return false;
    }
    // The package path ends at the first dot after the last slash.
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let Some(dot) = name[last_slash..].find('.').map(|i| last_slash + i) else {
        return false;
    };
    let (path, rest) = (&name[..dot], &name[dot + 1..]);
    let first = path.split('/').next().unwrap_or(path);
    const GCC_CLONES: &[&str] = &["part.", "cold", "constprop.", "isra.", "lto_priv.", "llvm."];
    !first.is_empty()
        && !first.contains('.')
        && path != "main"
        && !path.contains(' ')
        && !GCC_CLONES.iter().any(|c| rest.starts_with(c))
}

/// Functions a thread's stack starts at: its outermost frame when the whole chain was
/// walked.
const ROOTS: &[&str] = &[
    "_start",
    "__libc_start_main",
    "__libc_start_call_main",
    "start_thread",
    "clone",
    "clone3",
    "__clone",
    "__clone3",
    "__clone_internal",
    "runtime.goexit",
    "runtime.goexit.abi0",
    "runtime.main",
    "runtime.mstart",
    "runtime.mstart.abi0",
    "runtime.mstart0",
    "runtime.rt0_go",
    "runtime.rt0_go.abi0",
];

/// Whether `stack` (innermost first) looks cut short, as a frame-pointer walk through code
/// built without frame pointers is: at most two frames, or an outermost frame that is not
/// where threads start. A walk that passed the root may add one garbage frame, so an
/// unresolved outermost frame is forgiven when the one inside it is a root; or when it is
/// `main`'s caller: glibc's `__libc_start_call_main` is a local symbol, which a libc
/// without its symbol table (Debian's) cannot name, and the walk ends there because glibc
/// has no frame pointers.
pub fn truncated(stack: &[Symbol]) -> bool {
    let is_root = |s: &Symbol| s.function.as_deref().is_some_and(|f| ROOTS.contains(&f));
    let is_main = |s: &Symbol| s.function.as_deref() == Some("main");
    match stack {
        [] | [_] | [_, _] => true,
        [.., inner, outer] => {
            !(is_root(outer) || (!outer.resolved() && (is_root(inner) || is_main(inner))))
        }
    }
}

/// The frame with its function's short name (see [`short_name`]).
fn short(s: &Symbol) -> Symbol {
    Symbol {
        function: s.function.as_deref().map(|f| short_name(f).to_string()),
        ..s.clone()
    }
}

/// A function's name without its module path, as people say it: `serve_file` for
/// `demo::server::serve_file`, `handle::{{closure}}` for a closure, `server.(*conn).serve`
/// for Go's `net/http/server.(*conn).serve`; trait impls (`<A as B>::f`) and names with
/// generic arguments are kept whole, for their `::` are not all path separators.
pub fn short_name(function: &str) -> &str {
    if function.starts_with('<') || function.contains(['<', ' ']) {
        return function;
    }
    let mut separators = function.rmatch_indices("::").map(|(i, _)| i);
    if let Some(last) = separators.next() {
        // A closure is named with the function it is in.
        let start = if function[last + 2..].starts_with("{{") {
            separators.next().map_or(0, |i| i + 2)
        } else {
            last + 2
        };
        return &function[start..];
    }
    // Go: drop the import path before the package name.
    function.rsplit_once('/').map_or(function, |(_, tail)| tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: &str = "/srv/demo";
    const LIBC: &str = "/usr/lib/x86_64-linux-gnu/libc.so.6";

    fn sym(function: &str, module: &str) -> Symbol {
        Symbol {
            function: Some(function.into()),
            ..Symbol::unresolved(module, 0x10)
        }
    }

    fn at(function: &str, file: &str, line: u32) -> Symbol {
        Symbol {
            file: Some(file.into()),
            line: Some(line),
            ..sym(function, MAIN)
        }
    }

    /// A Rust program's read: libc, std, then its own code up to main and the runtime.
    fn rust_stack() -> Vec<Symbol> {
        vec![
            sym("read", LIBC),
            sym("<std::fs::File as std::io::Read>::read", MAIN),
            at("demo::server::serve_file", "/src/demo/src/server.rs", 120),
            sym("std::io::copy::generic_copy", MAIN),
            at("demo::server::handle", "/src/demo/src/server.rs", 80),
            at("demo::main", "/src/demo/src/main.rs", 9),
            at("demo::extra", "/src/demo/src/main.rs", 3),
            sym("std::rt::lang_start_internal", MAIN),
            sym("main", MAIN),
            sym("__libc_start_call_main", LIBC),
            sym("__libc_start_main", LIBC),
            sym("_start", MAIN),
        ]
    }

    #[test]
    fn the_program_s_own_frames_past_the_wrappers() {
        let site = call_site(&rust_stack(), Some(MAIN));
        assert_eq!(
            site.display("read"),
            "read() in serve_file (server.rs:120) ← handle ← main"
        );
        assert!(!site.truncated);
        assert_eq!(site.own.len(), 3);
        assert!(site.fallback.is_empty());
        // Without the executable's path, libraries are told by `.so`.
        assert_eq!(
            call_site(&rust_stack(), None).display("read"),
            site.display("read")
        );
    }

    #[test]
    fn without_own_frames_the_innermost_frames_as_they_are() {
        let stack = vec![
            sym("read", LIBC),
            Symbol::unresolved(LIBC, 0x1234),
            Symbol::unresolved(LIBC, 0x5678),
            Symbol::unresolved(LIBC, 0x9abc),
        ];
        let site = call_site(&stack, Some(MAIN));
        assert!(site.own.is_empty());
        assert_eq!(
            site.display("write"),
            "write() in read ← libc.so.6+0x1234 ← libc.so.6+0x5678"
        );
        assert!(site.truncated);
        assert_eq!(
            call_site(&[], Some(MAIN)).display("read"),
            "read() in [no user frames]"
        );
    }

    #[test]
    fn unresolved_own_frames_show_module_and_offset() {
        let stack = vec![
            sym("__GI___libc_read", LIBC),
            Symbol::unresolved(MAIN, 0x1f00),
            Symbol::unresolved(crate::stacks::symbolize::UNKNOWN_MODULE, 0x7f00),
        ];
        assert_eq!(
            call_site(&stack, Some(MAIN)).display("read"),
            "read() in demo+0x1f00 ← [unknown]+0x7f00"
        );
    }

    #[test]
    fn libraries_by_module_and_by_name() {
        let own = |f: &str| !is_library(&sym(f, MAIN), Some(MAIN));
        for library in [
            "std::io::copy::generic_copy",
            "core::ops::function::FnOnce::call_once",
            "alloc::vec::Vec<T>::push",
            "<std::fs::File as std::io::Read>::read",
            "<&std::fs::File as std::io::Read>::read",
            "<alloc::vec::Vec<u8> as std::io::Write>::write",
            "std::vector<int>::push_back",
            "__gnu_cxx::__verbose_terminate_handler",
            "__libc_start_main",
            "__GI___libc_read",
            "_IO_file_read",
            "_start",
            "runtime.goexit",
            "syscall.Syscall",
            "internal/poll.(*FD).Read",
            "os.(*File).Read",
            "io.Copy",
            "bufio.(*Reader).Read",
            "net/http.(*conn).serve",
        ] {
            assert!(!own(library), "{library} counts as the program's own");
        }
        for program in [
            "demo::server::serve_file",
            "<demo::Conn as std::io::Read>::read",
            "serve_file",
            "copy_loop.part.0",
            "handle.cold",
            "main",
            "main.serveFile",
            "main.(*server).handle",
            "github.com/acme/proxy.(*Pipe).Copy",
            "_private_helper",
        ] {
            assert!(own(program), "{program} counts as a library");
        }
        // Any function of another file is a library's; unknown modules count as own.
        assert!(is_library(&sym("serve_file", LIBC), Some(MAIN)));
        assert!(is_library(&sym("helper", "/opt/lib/libfoo.so"), None));
        assert!(!is_library(&sym("helper", "/opt/bin/tool"), None));
        assert!(!is_library(&Symbol::unresolved("[unknown]", 1), Some(MAIN)));
    }

    #[test]
    fn truncated_when_short_or_not_ending_at_a_root() {
        assert!(!truncated(&rust_stack()));
        let mut cut = rust_stack();
        cut.truncate(5);
        assert!(truncated(&cut));
        assert!(truncated(&rust_stack()[..2]));
        // One garbage frame past the root is forgiven, a resolved non-root is not.
        let mut past = rust_stack();
        past.truncate(10);
        past.push(Symbol::unresolved("[unknown]", 0x1));
        assert!(!truncated(&past));
        past.push(sym("demo::main", MAIN));
        assert!(truncated(&past));
        // Threads and goroutines have their own roots.
        let thread = [
            sym("read", LIBC),
            sym("worker", MAIN),
            sym("start_thread", LIBC),
        ];
        assert!(!truncated(&thread));
        let goroutine = [
            sym("syscall.Syscall", MAIN),
            sym("main.serve", MAIN),
            sym("runtime.goexit", MAIN),
        ];
        assert!(!truncated(&goroutine));
        // A libc without its symbol table cannot name `main`'s caller.
        let from_main = [
            sym("read", LIBC),
            sym("copy_then_leave", MAIN),
            sym("main", MAIN),
            Symbol::unresolved(LIBC, 0x2724a),
        ];
        assert!(!truncated(&from_main));
        assert!(call_site(&cut, Some(MAIN)).truncated);
    }

    #[test]
    fn short_names() {
        assert_eq!(short_name("demo::server::serve_file"), "serve_file");
        assert_eq!(
            short_name("demo::handle::{{closure}}"),
            "handle::{{closure}}"
        );
        assert_eq!(short_name("serve_file"), "serve_file");
        assert_eq!(
            short_name("<demo::Conn as std::io::Read>::read"),
            "<demo::Conn as std::io::Read>::read"
        );
        assert_eq!(short_name("demo::Pool<T>::get"), "demo::Pool<T>::get");
        assert_eq!(short_name("main.(*server).handle"), "main.(*server).handle");
        assert_eq!(
            short_name("github.com/acme/proxy.(*Pipe).Copy"),
            "proxy.(*Pipe).Copy"
        );
    }
}
