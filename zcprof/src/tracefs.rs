//! tracefs: finding (or mounting) it, and reading tracepoint record layouts from it.
//!
//! Classic tracepoints are attached by their tracefs id, and our programs read record
//! fields at offsets that differ between kernels; both come from here.

use std::{
    ffi::CString,
    fs, io,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};

const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The tracefs root, mounting it at /sys/kernel/tracing when no mount exists (this
/// machine's kernel boots without one).
pub fn ensure_mounted() -> anyhow::Result<PathBuf> {
    if let Some(root) = find() {
        return Ok(root);
    }
    let target = Path::new(CANDIDATES[0]);
    mount_tracefs(target).with_context(|| {
        format!(
            "it is not mounted, and mounting it at {0} failed (as root: `mount -t tracefs nodev {0}`)",
            target.display()
        )
    })?;
    match find() {
        Some(root) => Ok(root),
        None => bail!(
            "tracefs was mounted at {} but has no events",
            target.display()
        ),
    }
}

/// The tracefs root if one is mounted.
pub fn find() -> Option<PathBuf> {
    CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|root| root.join("events").is_dir())
}

fn mount_tracefs(target: &Path) -> io::Result<()> {
    let source = CString::new("nodev").map_err(io::Error::other)?;
    let fstype = CString::new("tracefs").map_err(io::Error::other)?;
    let target = CString::new(target.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    // SAFETY: all three are valid NUL-terminated strings that outlive the call; no data.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One field of a tracepoint record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub offset: u32,
    pub size: u32,
}

/// The fields of `category:event`, read from its `format` file.
pub fn fields(root: &Path, category: &str, event: &str) -> anyhow::Result<Vec<Field>> {
    let path = root
        .join("events")
        .join(category)
        .join(event)
        .join("format");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(parse_format(&text))
}

/// Whether `category:event` exists on this kernel.
pub fn exists(root: &Path, category: &str, event: &str) -> bool {
    root.join("events").join(category).join(event).is_dir()
}

/// Parses the `field:TYPE NAME; offset:N; size:N; signed:N;` lines of a format file.
pub fn parse_format(text: &str) -> Vec<Field> {
    text.lines()
        .filter_map(|line| {
            let mut decl = None;
            let mut offset = None;
            let mut size = None;
            for part in line.trim().split(';') {
                let part = part.trim();
                if let Some(d) = part.strip_prefix("field:") {
                    decl = Some(d);
                } else if let Some(o) = part.strip_prefix("offset:") {
                    offset = o.parse().ok();
                } else if let Some(s) = part.strip_prefix("size:") {
                    size = s.parse().ok();
                }
            }
            // "char comm[16]" -> "comm"; "__data_loc char[] filename" -> "filename".
            let name = decl?.rsplit(' ').next()?;
            let name = name.split('[').next()?.to_string();
            Some(Field {
                name,
                offset: offset?,
                size: size?,
            })
        })
        .collect()
}

/// The offset of `name`, if the record has a field of that name and `size`.
pub fn offset_of(fields: &[Field], name: &str, size: u32) -> Option<u32> {
    fields
        .iter()
        .find(|f| f.name == name && f.size == size)
        .map(|f| f.offset)
}

/// The offsets of the `(global, field, size)` fields of `category:event`, as the
/// `(global, offset)` pairs a layer's programs read; the first field missing (by name and
/// size) is the error, in words.
pub fn globals(
    root: &Path,
    category: &str,
    event: &str,
    wanted: &[(&'static str, &str, u32)],
) -> Result<Vec<(&'static str, u32)>, String> {
    let fields = self::fields(root, category, event)
        .map_err(|err| format!("{category}:{event}: {err:#}"))?;
    wanted
        .iter()
        .map(|&(global, field, size)| {
            offset_of(&fields, field, size)
                .map(|at| (global, at))
                .ok_or_else(|| format!("{category}:{event} has no {size}-byte field {field}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXIT: &str = "name: sched_process_exit
ID: 369
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t pid;\toffset:24;\tsize:4;\tsigned:1;
\tfield:bool group_dead;\toffset:32;\tsize:1;\tsigned:0;

print fmt: \"comm=%s pid=%d\", REC->comm, REC->pid
";

    #[test]
    fn parses_fields_with_arrays_and_data_loc() {
        let fields = parse_format(EXIT);
        assert_eq!(fields.len(), 5);
        assert_eq!(offset_of(&fields, "comm", 16), Some(8));
        assert_eq!(offset_of(&fields, "group_dead", 1), Some(32));
        assert_eq!(offset_of(&fields, "pid", 4), Some(24));
        assert_eq!(offset_of(&fields, "pid", 8), None, "size must match too");
        let data_loc =
            parse_format("\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;");
        assert_eq!(data_loc[0].name, "filename");
    }
}
