//! Where a field sits in a kernel struct, from BTF: for the programs that read kernel memory
//! no tracepoint exports (io_uring's notification requests). The layout is this kernel's,
//! so a field that moved or vanished is found so, never assumed.

use std::path::Path;

use btf_rs::{Btf, Struct, Type};

/// `(global, struct, member path, size)`: a member path looks through named members
/// (`sock.__sk_common.skc_family`), each offset added.
pub type Member = (&'static str, &'static str, &'static [&'static str], usize);

/// Each member's offset, by its global's name, or why one cannot be had (a missing struct
/// or member, or one whose size is not what the program reads).
pub fn offsets<'a>(
    btf: &Btf,
    members: impl IntoIterator<Item = &'a Member>,
) -> Result<Vec<(&'static str, u32)>, String> {
    members
        .into_iter()
        .map(|&(name, first, path, size)| {
            let mut within =
                find_struct(btf, first)?.ok_or_else(|| format!("BTF has no struct {first}"))?;
            let mut offset = 0;
            for (i, field) in path.iter().enumerate() {
                let (at, len) = member(btf, &within, field)?
                    .ok_or_else(|| format!("struct {first} has no member {}", path.join(".")))?;
                offset += at;
                if i + 1 < path.len() {
                    // A named struct member: look into its type (`struct sock_common`).
                    within = member_struct(btf, &within, field)?
                        .ok_or_else(|| format!("{first}.{field} is not a struct"))?;
                } else if len != size {
                    return Err(format!(
                        "{first}.{} is {len} bytes, zcprof reads {size}",
                        path.join(".")
                    ));
                }
            }
            Ok((name, offset))
        })
        .collect()
}

/// BTF of `path`, or of the running kernel.
pub fn open(path: Option<&Path>) -> Result<Btf, String> {
    let path = path.unwrap_or(Path::new("/sys/kernel/btf/vmlinux"));
    Btf::from_file(path).map_err(|err| format!("{}: {err}", path.display()))
}

/// The BTF every layer's `prepare` reads, parsed on the first layer's demand and shared by
/// the rest: a parse is most of zcprof's start-up CPU (one per layer made `run` take a third
/// longer to start, and 12 s under the lab's emulation).
pub struct Shared<'a> {
    path: Option<&'a Path>,
    parsed: Option<Result<Btf, String>>,
}

impl<'a> Shared<'a> {
    /// `path`'s BTF, or the running kernel's; nothing is read until [`Shared::get`].
    pub fn new(path: Option<&'a Path>) -> Self {
        Self { path, parsed: None }
    }

    /// The parsed BTF, or why it cannot be had (the same reason for every layer).
    pub fn get(&mut self) -> Result<&Btf, String> {
        let path = self.path;
        self.parsed
            .get_or_insert_with(|| open(path))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// The struct named `name`; `None` when this kernel has none (only a declaration counts
/// as none too: it has no members).
pub fn find_struct(btf: &Btf, name: &str) -> Result<Option<Struct>, String> {
    let types = match btf.resolve_types_by_name(name) {
        Ok(types) => types,
        // btf-rs reports a name it does not know as an error.
        Err(_) => return Ok(None),
    };
    Ok(types.into_iter().find_map(|t| match t {
        Type::Struct(s) if !s.members.is_empty() => Some(s),
        _ => None,
    }))
}

/// Byte offset and size of member `name` of `s`, looking into anonymous struct and union
/// members (C's `union { struct file *file; struct io_cmd_data cmd; }`); `None` when `s`
/// has no such member. A bitfield is an error: it has no byte offset.
pub fn member(btf: &Btf, s: &Struct, name: &str) -> Result<Option<(u32, usize)>, String> {
    for m in &s.members {
        let own = btf
            .resolve_name(m)
            .map_err(|err| format!("a member's name: {err}"))?;
        let ty = btf
            .resolve_chained_type(m)
            .map_err(|err| format!("the type of member {own:?}: {err}"))?;
        if own == name {
            if m.bitfield_size().is_some_and(|bits| bits != 0) || m.bit_offset() % 8 != 0 {
                return Err(format!("member {name} is a bitfield"));
            }
            return Ok(Some((m.bit_offset() / 8, size(btf, &ty)?)));
        }
        if own.is_empty()
            && let Type::Struct(inner) | Type::Union(inner) = &ty
            && let Some((at, len)) = member(btf, inner, name)?
        {
            return Ok(Some((m.bit_offset() / 8 + at, len)));
        }
    }
    Ok(None)
}

/// The struct type of the named member `name` of `s` (`sock.__sk_common`), through
/// typedefs, qualifiers and anonymous members (`struct file`'s `const struct path f_path`);
/// `None` when `s` has no such member or it is not a struct.
pub fn member_struct(btf: &Btf, s: &Struct, name: &str) -> Result<Option<Struct>, String> {
    for m in &s.members {
        let own = btf
            .resolve_name(m)
            .map_err(|err| format!("a member's name: {err}"))?;
        let ty = btf
            .resolve_chained_type(m)
            .map_err(|err| format!("the type of member {own:?}: {err}"))?;
        if own == name {
            return Ok(match unqualified(btf, ty)? {
                Type::Struct(inner) => Some(inner),
                _ => None,
            });
        }
        // Into anonymous members, as `member` does (6.17's `union { const struct path
        // f_path; struct path __f_path; }`).
        if own.is_empty()
            && let Type::Struct(inner) | Type::Union(inner) = &ty
            && let Some(found) = member_struct(btf, inner, name)?
        {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// `ty` without its typedefs and qualifiers.
fn unqualified(btf: &Btf, ty: Type) -> Result<Type, String> {
    let mut ty = ty;
    // A qualifier chain is short; the bound only guards against a malformed loop.
    for _ in 0..16 {
        let next = match &ty {
            Type::Typedef(t) => btf.resolve_chained_type(t),
            Type::Const(t) => btf.resolve_chained_type(t),
            Type::Volatile(t) => btf.resolve_chained_type(t),
            Type::Restrict(t) => btf.resolve_chained_type(t),
            _ => return Ok(ty),
        };
        ty = next.map_err(|err| format!("a type's target: {err}"))?;
    }
    Err("a type chain that does not end".into())
}

/// Size in bytes of `ty`, through typedefs and qualifiers.
fn size(btf: &Btf, ty: &Type) -> Result<usize, String> {
    match unqualified(btf, ty.clone())? {
        Type::Int(i) => Ok(i.size()),
        Type::Enum(e) => Ok(e.size()),
        Type::Struct(s) | Type::Union(s) => Ok(s.size()),
        Type::Ptr(_) => Ok(std::mem::size_of::<u64>()),
        other => Err(format!(
            "a member of kind {} has no size here",
            other.name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The running kernel's own layout (zcprof's kernels have BTF: `doctor` requires it
    /// for the kernel layer).
    #[test]
    fn finds_members_and_misses_what_is_not_there() {
        let btf = open(None).expect("this kernel's BTF");
        let task = find_struct(&btf, "task_struct")
            .expect("BTF")
            .expect("task_struct");
        let (at, len) = member(&btf, &task, "pid").expect("BTF").expect("pid");
        assert_eq!(len, 4, "pid_t");
        assert!(at > 0);
        assert_eq!(member(&btf, &task, "no_such_member").expect("BTF"), None);
        assert!(
            find_struct(&btf, "no_such_struct_zcprof")
                .expect("BTF")
                .is_none()
        );
    }
}
