//! The canonical bundle container: a stored-only ZIP whose every byte is determined by its entries.
//!
//! Evidence bundles travel as ZIP files so that auditors can open them with any tool. A general ZIP
//! has many encodings of the same contents (timestamps, attributes, extra fields, compression), so a
//! verifier that accepts any of them accepts bytes nobody signed for. This container admits exactly
//! one encoding per set of entries (spec/common/bundle.md §2.2):
//!
//! - entries sorted by name (UTF-8 bytes), no duplicates, no directory entries, no data descriptors;
//! - compression method 0 (stored), general-purpose flags `0x0800` (UTF-8 names) and nothing else;
//! - DOS time 0 and date `0x0021` (1980-01-01), version needed 20, made by Unix (`0x0314`);
//! - external attributes `0o100644 << 16`, internal attributes 0, no extra fields, no comments;
//! - local headers contiguous from offset 0, the central directory right after the last entry, the
//!   end-of-central-directory record the last 22 bytes; no ZIP64, so a bundle is below 4 GiB.
//!
//! [`ZipReader`] checks all of that up front from the central directory, checks each local header
//! when the entry is read, and checks each entry's CRC-32 as its bytes stream through. Anything else
//! is a [`ContainerError`], never a panic. Memory stays bounded: the reader holds the central
//! directory (at most [`Limits::max_entries`] names) and streams entry data.

use std::io::{self, Read, Seek, SeekFrom};

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
const LOCAL_LEN: u64 = 30;
const CENTRAL_LEN: usize = 46;
const EOCD_LEN: u64 = 22;
const VERSION_NEEDED: u16 = 20;
const VERSION_MADE_BY: u16 = (3 << 8) | 20;
const FLAGS: u16 = 0x0800;
const DOS_TIME: u16 = 0;
const DOS_DATE: u16 = 0x0021;
const EXTERNAL_ATTRS: u32 = 0o100_644 << 16;
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
/// The longest entry name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// Size limits that bound what a reader will process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries in one archive.
    pub max_entries: usize,
    /// Largest single entry, in bytes.
    pub max_entry_bytes: u64,
    /// Largest sum of entry sizes, in bytes.
    pub max_total_bytes: u64,
}

impl Default for Limits {
    /// The limits of spec/common/bundle.md §2.2: 10,000 entries, 1 GiB per entry, 4 GiB in all.
    fn default() -> Self {
        Limits {
            max_entries: 10_000,
            max_entry_bytes: 1 << 30,
            max_total_bytes: (1 << 32) - 1,
        }
    }
}

/// Why a container was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// The bytes are not a canonical bundle container.
    #[error("not a canonical bundle container: {detail}")]
    Archive {
        /// What is wrong, and where.
        detail: String,
    },
    /// An entry name is not a safe relative path.
    #[error("unsafe path `{name}`: {reason}")]
    UnsafePath {
        /// The name, with control characters escaped.
        name: String,
        /// Why it is unsafe.
        reason: &'static str,
    },
    /// An entry is a symbolic link or another non-regular file.
    #[error("entry `{name}` is not a regular file (mode {mode:o})")]
    LinkEntry {
        /// The entry name.
        name: String,
        /// Its Unix mode bits.
        mode: u32,
    },
    /// A limit was exceeded.
    #[error("too large: {detail}")]
    TooLarge {
        /// Which limit, by how much.
        detail: String,
    },
    /// Reading the underlying file failed.
    #[error("cannot read the container: {0}")]
    Io(#[from] io::Error),
}

fn archive(detail: impl Into<String>) -> ContainerError {
    ContainerError::Archive {
        detail: detail.into(),
    }
}

/// Checks a bundle path against spec/common/bundle.md §2.1.
pub fn check_path(name: &str) -> Result<(), ContainerError> {
    let unsafe_path = |reason| ContainerError::UnsafePath {
        name: name.escape_debug().to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(unsafe_path("empty path"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(unsafe_path("longer than 1024 bytes"));
    }
    if name.starts_with('/') {
        return Err(unsafe_path("absolute path"));
    }
    if name.contains('\\') {
        return Err(unsafe_path("backslash"));
    }
    if name.chars().any(char::is_control) {
        return Err(unsafe_path("control character"));
    }
    let first = name.split('/').next().unwrap_or("");
    if first.len() >= 2 && first.as_bytes()[1] == b':' {
        return Err(unsafe_path("drive prefix"));
    }
    for seg in name.split('/') {
        match seg {
            "" => return Err(unsafe_path("empty segment")),
            "." | ".." => return Err(unsafe_path("`.` or `..` segment")),
            _ => {}
        }
    }
    Ok(())
}

/// Writes the canonical container of `entries` (name, bytes). Names must be safe paths, unique and
/// sorted; the result is below 4 GiB.
pub fn write(entries: &[(&str, &[u8])]) -> Result<Vec<u8>, ContainerError> {
    let mut total: u64 = 0;
    for (i, (name, data)) in entries.iter().enumerate() {
        check_path(name)?;
        if i > 0 && entries[i - 1].0.as_bytes() >= name.as_bytes() {
            return Err(archive(format!(
                "entries not sorted and unique at `{name}`"
            )));
        }
        total += LOCAL_LEN
            + name.len() as u64
            + data.len() as u64
            + CENTRAL_LEN as u64
            + name.len() as u64;
    }
    if total + EOCD_LEN > u64::from(u32::MAX) || entries.len() > usize::from(u16::MAX) {
        return Err(ContainerError::TooLarge {
            detail: "a bundle container must be smaller than 4 GiB and hold at most 65,535 entries"
                .into(),
        });
    }
    let mut out = Vec::with_capacity(total as usize + EOCD_LEN as usize);
    let mut metas = Vec::with_capacity(entries.len());
    for (name, data) in entries {
        let meta = EntryMeta {
            name: (*name).to_owned(),
            size: data.len() as u64,
            crc32: crc32fast::hash(data),
            offset: out.len() as u64,
        };
        out.extend_from_slice(&local_header(&meta));
        out.extend_from_slice(data);
        metas.push(meta);
    }
    let cd_offset = out.len() as u64;
    for meta in &metas {
        out.extend_from_slice(&central_header(meta));
    }
    let cd_size = out.len() as u64 - cd_offset;
    out.extend_from_slice(&eocd(metas.len() as u16, cd_size as u32, cd_offset as u32));
    Ok(out)
}

/// One entry of a checked central directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    /// The entry's path.
    pub name: String,
    /// Its size in bytes (stored, so compressed and uncompressed sizes are equal).
    pub size: u64,
    /// Its CRC-32.
    pub crc32: u32,
    offset: u64,
}

fn local_header(m: &EntryMeta) -> Vec<u8> {
    let mut h = Vec::with_capacity(LOCAL_LEN as usize + m.name.len());
    h.extend_from_slice(&LOCAL_SIG.to_le_bytes());
    h.extend_from_slice(&VERSION_NEEDED.to_le_bytes());
    h.extend_from_slice(&FLAGS.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // stored
    h.extend_from_slice(&DOS_TIME.to_le_bytes());
    h.extend_from_slice(&DOS_DATE.to_le_bytes());
    h.extend_from_slice(&m.crc32.to_le_bytes());
    h.extend_from_slice(&(m.size as u32).to_le_bytes());
    h.extend_from_slice(&(m.size as u32).to_le_bytes());
    h.extend_from_slice(&(m.name.len() as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // extra
    h.extend_from_slice(m.name.as_bytes());
    h
}

fn central_header(m: &EntryMeta) -> Vec<u8> {
    let mut h = Vec::with_capacity(CENTRAL_LEN + m.name.len());
    h.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
    h.extend_from_slice(&VERSION_MADE_BY.to_le_bytes());
    h.extend_from_slice(&VERSION_NEEDED.to_le_bytes());
    h.extend_from_slice(&FLAGS.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&DOS_TIME.to_le_bytes());
    h.extend_from_slice(&DOS_DATE.to_le_bytes());
    h.extend_from_slice(&m.crc32.to_le_bytes());
    h.extend_from_slice(&(m.size as u32).to_le_bytes());
    h.extend_from_slice(&(m.size as u32).to_le_bytes());
    h.extend_from_slice(&(m.name.len() as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // extra
    h.extend_from_slice(&0u16.to_le_bytes()); // comment
    h.extend_from_slice(&0u16.to_le_bytes()); // disk
    h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
    h.extend_from_slice(&EXTERNAL_ATTRS.to_le_bytes());
    h.extend_from_slice(&(m.offset as u32).to_le_bytes());
    h.extend_from_slice(m.name.as_bytes());
    h
}

fn eocd(count: u16, cd_size: u32, cd_offset: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(EOCD_LEN as usize);
    h.extend_from_slice(&EOCD_SIG.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&count.to_le_bytes());
    h.extend_from_slice(&count.to_le_bytes());
    h.extend_from_slice(&cd_size.to_le_bytes());
    h.extend_from_slice(&cd_offset.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A reader over a canonical container. [`ZipReader::open`] checks the whole structure except the
/// local headers and the data, which [`ZipReader::entry`] checks as it reads.
#[derive(Debug)]
pub struct ZipReader<R> {
    inner: R,
    entries: Vec<EntryMeta>,
}

impl<R: Read + Seek> ZipReader<R> {
    /// Reads and checks the end record and the central directory.
    pub fn open(mut inner: R, limits: Limits) -> Result<Self, ContainerError> {
        let len = inner.seek(SeekFrom::End(0))?;
        if len < EOCD_LEN {
            return Err(archive(format!(
                "{len} bytes is too short for a ZIP archive"
            )));
        }
        if len > u64::from(u32::MAX) {
            return Err(ContainerError::TooLarge {
                detail: format!("{len} bytes; a bundle container is below 4 GiB"),
            });
        }
        let mut end = [0u8; EOCD_LEN as usize];
        inner.seek(SeekFrom::Start(len - EOCD_LEN))?;
        inner.read_exact(&mut end)?;
        if u32_at(&end, 0) != EOCD_SIG {
            return Err(archive(
                "no end-of-central-directory record in the last 22 bytes (a comment, trailing data or not a ZIP)",
            ));
        }
        let (disk, cd_disk, on_disk, count) = (
            u16_at(&end, 4),
            u16_at(&end, 6),
            u16_at(&end, 8),
            u16_at(&end, 10),
        );
        let (cd_size, cd_offset, comment) = (
            u64::from(u32_at(&end, 12)),
            u64::from(u32_at(&end, 16)),
            u16_at(&end, 20),
        );
        if disk != 0 || cd_disk != 0 || on_disk != count || comment != 0 {
            return Err(archive("multi-disk archive or archive comment"));
        }
        let count = usize::from(count);
        if count > limits.max_entries {
            return Err(ContainerError::TooLarge {
                detail: format!(
                    "{count} entries, more than the {} allowed",
                    limits.max_entries
                ),
            });
        }
        if cd_offset
            .checked_add(cd_size)
            .and_then(|v| v.checked_add(EOCD_LEN))
            != Some(len)
        {
            return Err(archive(
                "central directory does not end where the end record starts",
            ));
        }
        if cd_size > (count as u64) * (CENTRAL_LEN + MAX_NAME_BYTES) as u64 {
            return Err(archive("central directory larger than its entries can be"));
        }
        let mut cd = vec![0u8; cd_size as usize];
        inner.seek(SeekFrom::Start(cd_offset))?;
        inner.read_exact(&mut cd)?;

        let mut entries: Vec<EntryMeta> = Vec::with_capacity(count);
        let mut pos = 0usize;
        let mut next_offset: u64 = 0;
        let mut total: u64 = 0;
        for i in 0..count {
            let Some(fixed) = cd.get(pos..pos + CENTRAL_LEN) else {
                return Err(archive(format!("central directory entry {i} is truncated")));
            };
            if u32_at(fixed, 0) != CENTRAL_SIG {
                return Err(archive(format!(
                    "central directory entry {i} has no signature"
                )));
            }
            let name_len = usize::from(u16_at(fixed, 28));
            let Some(name_bytes) = cd.get(pos + CENTRAL_LEN..pos + CENTRAL_LEN + name_len) else {
                return Err(archive(format!(
                    "central directory entry {i} name is truncated"
                )));
            };
            let name = std::str::from_utf8(name_bytes)
                .map_err(|_| archive(format!("entry {i} name is not UTF-8")))?
                .to_owned();
            if let Some(dir) = name.strip_suffix('/') {
                check_path(dir)?;
                return Err(archive(format!("directory entry `{name}`")));
            }
            check_path(&name)?;
            let external = u32_at(fixed, 38);
            let mode = external >> 16;
            if mode & S_IFMT != S_IFREG && mode & S_IFMT != S_IFDIR && mode & S_IFMT != 0 {
                return Err(ContainerError::LinkEntry { name, mode });
            }
            if let Some(prev) = entries.last() {
                if prev.name.as_bytes() == name.as_bytes() {
                    return Err(archive(format!("duplicate entry `{name}`")));
                }
                if prev.name.as_bytes() > name.as_bytes() {
                    return Err(archive(format!(
                        "entries not sorted: `{}` before `{name}`",
                        prev.name
                    )));
                }
            }
            let (csize, usize_) = (u64::from(u32_at(fixed, 20)), u64::from(u32_at(fixed, 24)));
            if usize_ > limits.max_entry_bytes {
                return Err(ContainerError::TooLarge {
                    detail: format!(
                        "entry `{name}` is {usize_} bytes, more than {}",
                        limits.max_entry_bytes
                    ),
                });
            }
            total += usize_;
            if total > limits.max_total_bytes {
                return Err(ContainerError::TooLarge {
                    detail: format!(
                        "entries add up to more than {} bytes",
                        limits.max_total_bytes
                    ),
                });
            }
            let meta = EntryMeta {
                name,
                size: usize_,
                crc32: u32_at(fixed, 16),
                offset: next_offset,
            };
            // The CRC-32 of no bytes is 0; an empty entry is never read through the CRC check,
            // so any other value would be a second encoding of the same content.
            if meta.size == 0 && meta.crc32 != 0 {
                return Err(archive(format!(
                    "entry `{}` is empty but its crc-32 is not 0",
                    meta.name
                )));
            }
            let expected = central_header(&meta);
            if csize != usize_ || cd.get(pos..pos + expected.len()) != Some(&expected[..]) {
                return Err(archive(describe_header_difference(
                    &meta.name,
                    "central directory",
                    &cd[pos..(pos + expected.len()).min(cd.len())],
                    &expected,
                )));
            }
            pos += expected.len();
            next_offset += LOCAL_LEN + meta.name.len() as u64 + meta.size;
            entries.push(meta);
        }
        if pos != cd.len() {
            return Err(archive("bytes after the last central directory entry"));
        }
        if next_offset != cd_offset {
            return Err(archive(
                "entries are not contiguous up to the central directory",
            ));
        }
        Ok(ZipReader { inner, entries })
    }

    /// The entries, sorted by name.
    pub fn entries(&self) -> &[EntryMeta] {
        &self.entries
    }

    /// The index of the entry named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.entries
            .binary_search_by(|e| e.name.as_bytes().cmp(name.as_bytes()))
            .ok()
    }

    /// A reader over entry `index`'s bytes, after checking its local header. The reader fails
    /// with `InvalidData` at the end if the CRC-32 does not match.
    pub fn entry(&mut self, index: usize) -> Result<EntryReader<'_, R>, ContainerError> {
        let Some(meta) = self.entries.get(index).cloned() else {
            return Err(archive(format!("no entry {index}")));
        };
        let expected = local_header(&meta);
        let mut found = vec![0u8; expected.len()];
        self.inner.seek(SeekFrom::Start(meta.offset))?;
        self.inner.read_exact(&mut found)?;
        if found != expected {
            return Err(archive(describe_header_difference(
                &meta.name,
                "local header",
                &found,
                &expected,
            )));
        }
        Ok(EntryReader {
            inner: (&mut self.inner).take(meta.size),
            hasher: crc32fast::Hasher::new(),
            crc32: meta.crc32,
            remaining: meta.size,
        })
    }

    /// Reads a whole entry, refusing entries above `max_bytes`.
    pub fn read_entry(&mut self, index: usize, max_bytes: u64) -> Result<Vec<u8>, ContainerError> {
        let size = self.entries.get(index).map_or(0, |e| e.size);
        if size > max_bytes {
            let name = self
                .entries
                .get(index)
                .map(|e| e.name.clone())
                .unwrap_or_default();
            return Err(ContainerError::TooLarge {
                detail: format!("entry `{name}` is {size} bytes, more than {max_bytes}"),
            });
        }
        let mut buf = Vec::with_capacity(size as usize);
        self.entry(index)?.read_to_end(&mut buf).map_err(|e| {
            if e.kind() == io::ErrorKind::InvalidData {
                archive(e.to_string())
            } else {
                ContainerError::Io(e)
            }
        })?;
        Ok(buf)
    }
}

fn describe_header_difference(name: &str, which: &str, found: &[u8], expected: &[u8]) -> String {
    let at = found
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(found.len().min(expected.len()));
    let field = match (which, at) {
        (_, 0..=3) => "signature",
        ("local header", 4..=5) | ("central directory", 6..=7) => "version needed",
        ("central directory", 4..=5) => "version made by",
        ("local header", 6..=7) | ("central directory", 8..=9) => "flags",
        ("local header", 8..=9) | ("central directory", 10..=11) => {
            "compression method (only stored is canonical)"
        }
        ("local header", 10..=13) | ("central directory", 12..=15) => "modification time",
        ("local header", 14..=17) | ("central directory", 16..=19) => "crc-32",
        ("local header", 18..=25) | ("central directory", 20..=27) => "sizes",
        ("local header", 26..=29) | ("central directory", 28..=33) => {
            "name, extra field or comment length"
        }
        ("central directory", 34..=37) => "disk or internal attributes",
        ("central directory", 38..=41) => "external attributes",
        ("central directory", 42..=45) => "local header offset",
        _ => "name",
    };
    format!("entry `{name}`: {which} differs from the canonical encoding in its {field}")
}

/// Streams one entry's bytes and checks its CRC-32 at the end.
#[derive(Debug)]
pub struct EntryReader<'a, R> {
    inner: io::Take<&'a mut R>,
    hasher: crc32fast::Hasher,
    crc32: u32,
    remaining: u64,
}

impl<R: Read> Read for EntryReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "entry data is truncated",
            ));
        }
        self.hasher.update(&buf[..n]);
        self.remaining -= n as u64;
        if self.remaining == 0 && self.hasher.clone().finalize() != self.crc32 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "entry data does not match its crc-32",
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn sample() -> Vec<u8> {
        write(&[
            ("artifacts/a.txt", b"alpha"),
            ("journal.ndjson", b"{\"seq\":0}\n"),
            ("manifest.json", b"{}"),
        ])
        .unwrap()
    }

    fn open(bytes: &[u8]) -> Result<ZipReader<Cursor<&[u8]>>, ContainerError> {
        ZipReader::open(Cursor::new(bytes), Limits::default())
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let mut r = open(&bytes).unwrap();
        let names: Vec<_> = r.entries().iter().map(|e| e.name.clone()).collect();
        assert_eq!(
            names,
            ["artifacts/a.txt", "journal.ndjson", "manifest.json"]
        );
        let i = r.find("journal.ndjson").unwrap();
        assert_eq!(r.read_entry(i, 1 << 20).unwrap(), b"{\"seq\":0}\n");
        assert_eq!(r.find("nope"), None);
    }

    #[test]
    fn writing_is_deterministic_and_sorted_only() {
        assert_eq!(sample(), sample());
        assert!(write(&[("b", b""), ("a", b"")]).is_err());
        assert!(write(&[("a", b""), ("a", b"")]).is_err());
        assert!(matches!(
            write(&[("../x", b"")]),
            Err(ContainerError::UnsafePath { .. })
        ));
    }

    #[test]
    fn every_single_byte_flip_is_rejected_or_caught_by_crc() {
        let bytes = sample();
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x80] {
                let mut m = bytes.clone();
                m[i] ^= bit;
                let accepted = match open(&m) {
                    Err(_) => false,
                    Ok(mut r) => (0..r.entries().len()).all(|j| r.read_entry(j, 1 << 20).is_ok()),
                };
                // A flip inside entry data survives the container (the manifest's digests catch it
                // in the bundle verifier) only if the CRC does not: CRC-32 detects every 1-bit error.
                assert!(
                    !accepted,
                    "byte {i} bit {bit:#x} flipped and still accepted"
                );
            }
        }
    }

    #[test]
    fn an_empty_entry_has_crc_zero() {
        let mut bytes = write(&[("a", b""), ("b", b"x")]).unwrap();
        assert!(open(&bytes).is_ok());
        // CRC-32 of entry `a` in its local header (offset 14) and central header (offset 16).
        let cd_offset = u32_at(&bytes, bytes.len() - 6) as usize;
        for at in [14, cd_offset + 16] {
            bytes[at] = 1;
        }
        assert!(matches!(open(&bytes), Err(ContainerError::Archive { .. })));
    }

    #[test]
    fn truncation_and_trailing_data_are_rejected() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(open(&bytes[..cut]).is_err(), "truncated to {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(open(&longer).is_err());
    }

    #[test]
    fn unsafe_paths_are_named() {
        for (p, reason) in [
            ("/etc/passwd", "absolute path"),
            ("a/../b", "`.` or `..` segment"),
            ("..", "`.` or `..` segment"),
            ("a\\b", "backslash"),
            ("C:/x", "drive prefix"),
            ("a//b", "empty segment"),
            ("a\nb", "control character"),
            ("", "empty path"),
        ] {
            match check_path(p) {
                Err(ContainerError::UnsafePath { reason: r, .. }) => assert_eq!(r, reason, "{p:?}"),
                other => panic!("{p:?}: {other:?}"),
            }
        }
        check_path("artifacts/run_results.json").unwrap();
    }

    /// Rewrites the central directory entry of `name` with a hostile field (for the tests that need
    /// a non-canonical but well-formed archive).
    fn patch_central(bytes: &mut [u8], field_offset: usize, value: &[u8]) {
        let cd_offset = u32_at(bytes, bytes.len() - 6) as usize;
        bytes[cd_offset + field_offset..cd_offset + field_offset + value.len()]
            .copy_from_slice(value);
    }

    #[test]
    fn symlink_entries_are_link_entries() {
        let mut bytes = write(&[("link", b"/etc/passwd")]).unwrap();
        patch_central(&mut bytes, 38, &((0o120_777u32) << 16).to_le_bytes());
        assert!(matches!(
            open(&bytes),
            Err(ContainerError::LinkEntry {
                mode: 0o120_777,
                ..
            })
        ));
    }

    #[test]
    fn traversal_names_are_unsafe_even_when_well_formed() {
        let mut bytes = write(&[("aa/x", b"data")]).unwrap();
        // Same length name, rewritten in both headers.
        let pos: Vec<usize> = bytes
            .windows(4)
            .enumerate()
            .filter(|(_, w)| w == b"aa/x")
            .map(|(i, _)| i)
            .collect();
        for p in pos {
            bytes[p..p + 4].copy_from_slice(b"../x");
        }
        assert!(matches!(
            open(&bytes),
            Err(ContainerError::UnsafePath { .. })
        ));
    }

    #[test]
    fn limits_apply_before_reading_data() {
        let bytes = write(&[("a", &[0u8; 100][..]), ("b", &[0u8; 100][..])]).unwrap();
        let small = Limits {
            max_entries: 10,
            max_entry_bytes: 99,
            max_total_bytes: 1000,
        };
        assert!(matches!(
            ZipReader::open(Cursor::new(&bytes[..]), small),
            Err(ContainerError::TooLarge { .. })
        ));
        let few = Limits {
            max_entries: 1,
            ..Limits::default()
        };
        assert!(matches!(
            ZipReader::open(Cursor::new(&bytes[..]), few),
            Err(ContainerError::TooLarge { .. })
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        use proptest::prelude::*;
        proptest!(|(bytes in prop::collection::vec(any::<u8>(), 0..512))| {
            if let Ok(mut r) = open(&bytes) {
                for j in 0..r.entries().len() {
                    let _ = r.read_entry(j, 1 << 20);
                }
            }
        });
    }
}
