//! Where a bundle's files come from: a canonical ZIP (§2.2, through [`crate::zipstore`]) or an
//! unpacked directory (§2.3). Both list their files up front, after the container checks, and
//! stream each file's bytes with its size enforced while reading.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

use crate::codes::Code;
use crate::zipstore::{self, ContainerError, ZipReader};

use super::verify::Limits;

/// A problem found while reading: its code and message.
pub(crate) type Fault = (Code, String);

/// The code of a container error (the lead's mapping, spec/common/bundle.md §2.2).
pub(crate) fn container_fault(e: &ContainerError) -> Fault {
    let code = match e {
        ContainerError::UnsafePath { .. } => Code::UnsafePath,
        ContainerError::LinkEntry { .. } => Code::LinkEntry,
        ContainerError::TooLarge { .. } => Code::TooLarge,
        // An I/O error while reading the bundle file is, to a verifier, a bundle it cannot read.
        _ => Code::Archive,
    };
    (code, e.to_string())
}

/// An error carried inside an `io::Error` by the readers below, so a read failure keeps its code.
#[derive(Debug)]
struct ReadFault(Fault);

impl std::fmt::Display for ReadFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0 .1)
    }
}

impl std::error::Error for ReadFault {}

/// The code and message of an error returned while streaming a file.
pub(crate) fn read_fault(e: &io::Error) -> Fault {
    if let Some(ReadFault(fault)) = e.get_ref().and_then(|r| r.downcast_ref::<ReadFault>()) {
        return fault.clone();
    }
    (Code::Archive, e.to_string())
}

/// A bundle's files.
pub(crate) trait Source {
    /// Every file's path and size, sorted by path (UTF-8 bytes).
    fn files(&self) -> Vec<(String, u64)>;
    /// The size of `path`, if the bundle holds it.
    fn size(&self, path: &str) -> Option<u64>;
    /// Streams `path`. Read errors carry their code (see [`read_fault`]).
    fn open<'a>(&'a mut self, path: &str) -> Result<Box<dyn Read + 'a>, Fault>;
}

impl<R: Read + Seek> Source for ZipReader<R> {
    fn files(&self) -> Vec<(String, u64)> {
        self.entries()
            .iter()
            .map(|e| (e.name.clone(), e.size))
            .collect()
    }

    fn size(&self, path: &str) -> Option<u64> {
        self.find(path)
            .and_then(|i| self.entries().get(i))
            .map(|e| e.size)
    }

    fn open<'a>(&'a mut self, path: &str) -> Result<Box<dyn Read + 'a>, Fault> {
        let index = self
            .find(path)
            .ok_or_else(|| (Code::MissingFile, format!("`{path}` is not in the bundle")))?;
        let reader = self.entry(index).map_err(|e| container_fault(&e))?;
        Ok(Box::new(ZipEntryReader { inner: reader }))
    }
}

/// Gives the zipstore reader's CRC and truncation errors the `E_ARCHIVE` code.
struct ZipEntryReader<R> {
    inner: R,
}

impl<R: Read> Read for ZipEntryReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .read(buf)
            .map_err(|e| io::Error::other(ReadFault((Code::Archive, format!("{e}")))))
    }
}

/// One regular file found under a bundle directory.
#[derive(Debug, Clone)]
struct DirFile {
    size: u64,
    /// Device and inode seen by the walk, to detect a file swapped before it is read.
    #[cfg(unix)]
    id: (u64, u64),
}

/// An unpacked bundle directory.
#[derive(Debug)]
pub(crate) struct DirSource {
    root: PathBuf,
    files: BTreeMap<String, DirFile>,
}

/// Why a bundle directory could not be listed.
#[derive(Debug)]
pub(crate) enum DirError {
    /// The directory itself cannot be read (outside the bundle: an error, not a finding).
    Io(io::Error),
    /// The directory breaks the container rules (§2.3).
    Findings(Vec<Fault>),
}

impl DirSource {
    /// Walks `root` without following symbolic links, applying the path and size rules.
    pub(crate) fn open(root: &Path, limits: &Limits) -> Result<Self, DirError> {
        let mut files = BTreeMap::new();
        let mut faults: Vec<Fault> = Vec::new();
        let mut total: u64 = 0;
        let mut seen: usize = 0;
        let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
        let mut first = true;
        while let Some((dir, prefix)) = stack.pop() {
            let listing = match std::fs::read_dir(&dir) {
                Ok(l) => l,
                Err(e) if first => return Err(DirError::Io(e)),
                Err(e) => {
                    faults.push((Code::Archive, format!("cannot read `{prefix}`: {e}")));
                    continue;
                }
            };
            first = false;
            for item in listing {
                let item = match item {
                    Ok(i) => i,
                    Err(e) => {
                        faults.push((Code::Archive, format!("cannot list `{prefix}`: {e}")));
                        continue;
                    }
                };
                seen = seen.saturating_add(1);
                if seen > limits.max_entries {
                    faults.push((
                        Code::TooLarge,
                        format!("more than {} entries", limits.max_entries),
                    ));
                    return Err(DirError::Findings(faults));
                }
                let name = match item.file_name().into_string() {
                    Ok(n) => n,
                    Err(raw) => {
                        faults.push((
                            Code::UnsafePath,
                            format!("`{prefix}{}`: not UTF-8", raw.to_string_lossy()),
                        ));
                        continue;
                    }
                };
                let rel = format!("{prefix}{name}");
                if let Err(e) = zipstore::check_path(&rel) {
                    faults.push(container_fault(&e));
                    continue;
                }
                // `DirEntry::metadata` does not follow symbolic links.
                let meta = match item.metadata() {
                    Ok(m) => m,
                    Err(e) => {
                        faults.push((Code::Archive, format!("cannot stat `{rel}`: {e}")));
                        continue;
                    }
                };
                let ft = meta.file_type();
                if ft.is_dir() {
                    stack.push((item.path(), format!("{rel}/")));
                } else if ft.is_file() {
                    let size = meta.len();
                    if size > limits.max_entry_bytes {
                        faults.push((
                            Code::TooLarge,
                            format!(
                                "`{rel}` is {size} bytes, more than {}",
                                limits.max_entry_bytes
                            ),
                        ));
                        continue;
                    }
                    total = total.saturating_add(size);
                    files.insert(
                        rel,
                        DirFile {
                            size,
                            #[cfg(unix)]
                            id: unix_id(&meta),
                        },
                    );
                } else {
                    let what = if ft.is_symlink() {
                        "a symbolic link"
                    } else {
                        "not a regular file"
                    };
                    faults.push((Code::LinkEntry, format!("`{rel}` is {what}")));
                }
            }
        }
        if total > limits.max_total_bytes {
            faults.push((
                Code::TooLarge,
                format!(
                    "files add up to {total} bytes, more than {}",
                    limits.max_total_bytes
                ),
            ));
        }
        if !faults.is_empty() {
            faults.sort();
            return Err(DirError::Findings(faults));
        }
        Ok(DirSource {
            root: root.to_path_buf(),
            files,
        })
    }
}

#[cfg(unix)]
fn unix_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    (meta.dev(), meta.ino())
}

impl Source for DirSource {
    fn files(&self) -> Vec<(String, u64)> {
        self.files
            .iter()
            .map(|(name, f)| (name.clone(), f.size))
            .collect()
    }

    fn size(&self, path: &str) -> Option<u64> {
        self.files.get(path).map(|f| f.size)
    }

    fn open<'a>(&'a mut self, path: &str) -> Result<Box<dyn Read + 'a>, Fault> {
        let entry = self
            .files
            .get(path)
            .ok_or_else(|| (Code::MissingFile, format!("`{path}` is not in the bundle")))?;
        let full = path
            .split('/')
            .fold(self.root.clone(), |p, segment| p.join(segment));
        let file =
            File::open(&full).map_err(|e| (Code::Archive, format!("cannot open `{path}`: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| (Code::Archive, format!("cannot stat `{path}`: {e}")))?;
        #[cfg(unix)]
        let swapped = unix_id(&meta) != entry.id;
        #[cfg(not(unix))]
        let swapped = false;
        if swapped || !meta.is_file() {
            return Err((
                Code::LinkEntry,
                format!("`{path}` was replaced while the bundle was being read"),
            ));
        }
        Ok(Box::new(SizedReader {
            inner: file.take(entry.size.saturating_add(1)),
            expected: entry.size,
            read: 0,
            path: path.to_owned(),
        }))
    }
}

/// Reads a file that must be exactly `expected` bytes, failing as soon as it is longer.
struct SizedReader<R> {
    inner: R,
    expected: u64,
    read: u64,
    path: String,
}

impl<R: Read> Read for SizedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read = self.read.saturating_add(n as u64);
        if self.read > self.expected {
            return Err(io::Error::other(ReadFault((
                Code::TooLarge,
                format!(
                    "`{}` grew past its listed {} bytes while being read",
                    self.path, self.expected
                ),
            ))));
        }
        if n == 0 && self.read < self.expected {
            return Err(io::Error::other(ReadFault((
                Code::Archive,
                format!(
                    "`{}` shrank below its listed {} bytes while being read",
                    self.path, self.expected
                ),
            ))));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_reader_catches_growth_and_shrinkage() {
        let mut grew = SizedReader {
            inner: &b"abcd"[..],
            expected: 3,
            read: 0,
            path: "f".into(),
        };
        let mut out = Vec::new();
        let err = grew.read_to_end(&mut out).unwrap_err();
        assert_eq!(read_fault(&err).0, Code::TooLarge);
        let mut shrank = SizedReader {
            inner: &b"ab"[..],
            expected: 3,
            read: 0,
            path: "f".into(),
        };
        let err = shrank.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(read_fault(&err).0, Code::Archive);
    }

    #[test]
    fn directory_walk_applies_path_and_link_rules() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("artifacts")).unwrap();
        std::fs::write(dir.path().join("artifacts/a.txt"), b"a").unwrap();
        std::fs::write(dir.path().join("journal.ndjson"), b"j").unwrap();
        let src = DirSource::open(dir.path(), &Limits::default()).unwrap();
        assert_eq!(
            src.files(),
            [
                ("artifacts/a.txt".to_owned(), 1),
                ("journal.ndjson".to_owned(), 1)
            ]
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/passwd", dir.path().join("artifacts/link")).unwrap();
            match DirSource::open(dir.path(), &Limits::default()) {
                Err(DirError::Findings(f)) => {
                    assert_eq!(f.len(), 1);
                    assert_eq!(f[0].0, Code::LinkEntry);
                }
                other => panic!("{other:?}"),
            }
        }
        let small = Limits {
            max_entries: 1,
            ..Limits::default()
        };
        assert!(matches!(
            DirSource::open(dir.path(), &small),
            Err(DirError::Findings(_))
        ));
        assert!(matches!(
            DirSource::open(&dir.path().join("missing"), &Limits::default()),
            Err(DirError::Io(_))
        ));
    }
}
