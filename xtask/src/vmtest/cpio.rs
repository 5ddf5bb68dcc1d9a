//! A writer for the "newc" cpio format, which is what the kernel unpacks as an initramfs.
//!
//! Written here instead of running `cpio` because the archive must hold a `/dev/console` device
//! node (the kernel opens it for init's stdio before anything is mounted) and creating device
//! nodes on disk needs privileges; a header costs nothing. Ownership is always root:root and every
//! mtime is 0, so the same inputs give the same bytes.
//!
//! Layout (the kernel's `Documentation/driver-api/early-userspace/buffer-format.rst`): each entry
//! is a 110-byte ASCII header (`070701` and 13 eight-digit hex fields), the NUL-terminated name,
//! padding to a multiple of 4, the data, padding to a multiple of 4. The archive ends with an
//! entry named `TRAILER!!!`. Names carry no leading `/`.

use std::io::{self, Read, Write};

const MAGIC: &str = "070701";
const HEADER_LEN: u64 = 110;
const TRAILER: &str = "TRAILER!!!";

// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Streams entries into `out`; call [`NewcWriter::finish`] to append the trailer.
pub struct NewcWriter<W: Write> {
    out: W,
    offset: u64,
    next_ino: u32,
}

/// Everything a header says about one entry apart from its name.
struct Header {
    mode: u32,
    nlink: u32,
    size: u64,
    rdev: (u32, u32),
}

impl<W: Write> NewcWriter<W> {
    pub fn new(out: W) -> Self {
        // Inode 0 is avoided: some unpackers treat it as "no inode".
        Self {
            out,
            offset: 0,
            next_ino: 1,
        }
    }

    pub fn dir(&mut self, name: &str, perm: u32) -> io::Result<()> {
        let header = Header {
            mode: S_IFDIR | perm,
            nlink: 2,
            size: 0,
            rdev: (0, 0),
        };
        self.entry(name, &header, &mut io::empty())
    }

    /// A regular file of exactly `len` bytes read from `data`.
    pub fn file(&mut self, name: &str, perm: u32, len: u64, data: &mut dyn Read) -> io::Result<()> {
        let header = Header {
            mode: S_IFREG | perm,
            nlink: 1,
            size: len,
            rdev: (0, 0),
        };
        self.entry(name, &header, data)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> io::Result<()> {
        let header = Header {
            mode: S_IFLNK | 0o777,
            nlink: 1,
            size: target.len() as u64,
            rdev: (0, 0),
        };
        self.entry(name, &header, &mut target.as_bytes())
    }

    pub fn char_device(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        let header = Header {
            mode: S_IFCHR | perm,
            nlink: 1,
            size: 0,
            rdev: (major, minor),
        };
        self.entry(name, &header, &mut io::empty())
    }

    /// Writes the trailer and hands back the sink.
    pub fn finish(mut self) -> io::Result<W> {
        let header = Header {
            mode: 0,
            nlink: 1,
            size: 0,
            rdev: (0, 0),
        };
        self.entry(TRAILER, &header, &mut io::empty())?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn entry(&mut self, name: &str, header: &Header, data: &mut dyn Read) -> io::Result<()> {
        if name.starts_with('/') || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad cpio entry name {name:?}"),
            ));
        }
        let size = u32::try_from(header.size).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: newc cannot hold files of 4 GiB or more"),
            )
        })?;
        let ino = if name == TRAILER { 0 } else { self.next_ino };
        self.next_ino += 1;
        let name_size = name.len() + 1;
        let fields = [
            ino,
            header.mode,
            0, // uid
            0, // gid
            header.nlink,
            0, // mtime
            size,
            0, // devmajor
            0, // devminor
            header.rdev.0,
            header.rdev.1,
            name_size as u32,
            0, // check: only used by the "070702" CRC variant
        ];
        let mut head = String::with_capacity(HEADER_LEN as usize);
        head.push_str(MAGIC);
        for field in fields {
            head.push_str(&format!("{field:08x}"));
        }
        self.put(head.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        let copied = io::copy(&mut data.take(header.size), &mut self.out)?;
        if copied != header.size {
            // The source shrank between stat and read; an archive with a short entry would
            // misalign every entry after it.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name}: expected {} bytes, read {copied}", header.size),
            ));
        }
        self.offset += copied;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let rem = (self.offset % 4) as usize;
        if rem != 0 {
            self.put(&[0u8; 3][..4 - rem])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_field(archive: &[u8], entry_start: usize, index: usize) -> u32 {
        let start = entry_start + 6 + index * 8;
        let text = std::str::from_utf8(&archive[start..start + 8]).unwrap();
        u32::from_str_radix(text, 16).unwrap()
    }

    #[test]
    fn file_entry_layout() {
        let mut w = NewcWriter::new(Vec::new());
        w.file("init", 0o755, 3, &mut &b"abc"[..]).unwrap();
        let out = w.finish().unwrap();
        assert_eq!(&out[..6], b"070701");
        assert_eq!(hex_field(&out, 0, 0), 1, "first inode");
        assert_eq!(hex_field(&out, 0, 1), 0o100755);
        assert_eq!(hex_field(&out, 0, 6), 3, "file size");
        assert_eq!(hex_field(&out, 0, 11), 5, "name size includes the NUL");
        // 110 + "init\0" = 115, padded to 116; then "abc" + 1 byte of padding.
        assert_eq!(&out[110..116], b"init\0\0");
        assert_eq!(&out[116..120], b"abc\0");
        assert_eq!(&out[120..126], b"070701");
        assert_eq!(&out[120 + 110..120 + 110 + 11], b"TRAILER!!!\0");
        assert_eq!(out.len() % 4, 0);
    }

    #[test]
    fn device_and_symlink() {
        let mut w = NewcWriter::new(Vec::new());
        w.char_device("dev/console", 0o600, 5, 1).unwrap();
        let out = w.finish().unwrap();
        assert_eq!(hex_field(&out, 0, 1), 0o020600);
        assert_eq!(hex_field(&out, 0, 9), 5);
        assert_eq!(hex_field(&out, 0, 10), 1);

        let mut w = NewcWriter::new(Vec::new());
        w.symlink("bin/sh", "busybox").unwrap();
        let out = w.finish().unwrap();
        assert_eq!(hex_field(&out, 0, 1), 0o120777);
        assert_eq!(hex_field(&out, 0, 6), 7);
        // 110 + "bin/sh\0" = 117 -> 120.
        assert_eq!(&out[120..127], b"busybox");
    }

    #[test]
    fn every_entry_starts_aligned() {
        let mut w = NewcWriter::new(Vec::new());
        for (i, name) in ["a", "ab", "abc", "abcd"].iter().enumerate() {
            let data = vec![b'x'; i + 1];
            w.file(name, 0o644, data.len() as u64, &mut &data[..])
                .unwrap();
        }
        let out = w.finish().unwrap();
        let starts: Vec<usize> = out
            .windows(6)
            .enumerate()
            .filter(|(_, win)| *win == b"070701")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(starts.len(), 5);
        assert!(starts.iter().all(|s| s % 4 == 0));
    }

    #[test]
    fn short_source_is_an_error() {
        let mut w = NewcWriter::new(Vec::new());
        let err = w.file("f", 0o644, 10, &mut &b"abc"[..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn absolute_names_are_rejected() {
        let mut w = NewcWriter::new(Vec::new());
        assert!(w.dir("/bin", 0o755).is_err());
    }
}
