//! The files the boot servers hand out: a read-only root directory on disk
//! (NBPs, deploy kernels and ramdisks, images) plus files generated in memory
//! (per-node PXE/iPXE/GRUB configurations). TFTP and HTTP serve the same set.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use ironic_core::DriverError;

use crate::error::PxeError;

/// Why a request path was refused or not found. Shown to clients as
/// "file not found" / "access violation" and logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The path is absolute, climbs out of the root (`..`), or holds a
    /// character that has no business in a boot path (NUL, backslash, control).
    #[error("refused path {0:?}")]
    Refused(String),
    /// No such file (or it is not a regular file).
    #[error("no such file {0:?}")]
    NotFound(String),
}

/// One file opened for serving.
pub enum BootFile {
    /// Generated content.
    Memory(Bytes),
    /// A regular file below the root, with its length at open time.
    Disk {
        /// The open file.
        file: File,
        /// Its length in bytes.
        len: u64,
    },
}

impl BootFile {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            BootFile::Memory(b) => b.len() as u64,
            BootFile::Disk { len, .. } => *len,
        }
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for BootFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootFile::Memory(b) => write!(f, "BootFile::Memory({} bytes)", b.len()),
            BootFile::Disk { len, .. } => write!(f, "BootFile::Disk({len} bytes)"),
        }
    }
}

/// Normalise a client-supplied path into a relative path below the root.
///
/// Refuses absolute paths (`/x`, `C:`), `..` anywhere, backslashes, NUL and
/// control characters, and empty paths. `.` components and repeated slashes are
/// dropped. The result uses `/` separators and never starts with one.
pub fn sanitize_path(raw: &str) -> Result<String, OpenError> {
    let refused = || OpenError::Refused(raw.chars().take(256).collect());
    if raw.is_empty() || raw.len() > 1024 || raw.starts_with('/') {
        return Err(refused());
    }
    if raw
        .chars()
        .any(|c| c == '\\' || c == '\0' || c.is_control())
    {
        return Err(refused());
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(refused()),
            p if p.contains(':') && parts.is_empty() && p.len() == 2 => return Err(refused()),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(refused());
    }
    Ok(parts.join("/"))
}

/// The boot file set: a root directory (optional) and generated files.
///
/// Generated files shadow files on disk with the same path. Cheap to share:
/// hold it in an `Arc` and hand it to the TFTP and HTTP servers and to the boot
/// interfaces, which write per-node files into it.
pub struct BootFiles {
    root: Option<PathBuf>,
    generated: RwLock<HashMap<String, Entry>>,
}

/// A generated entry: content in memory, or a link to a file anywhere on disk
/// (a node's deploy kernel, published under a per-node path).
#[derive(Clone)]
enum Entry {
    Bytes(Bytes),
    Link(PathBuf),
}

impl fmt::Debug for BootFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootFiles")
            .field("root", &self.root)
            .field("generated", &self.generated_paths().len())
            .finish()
    }
}

impl BootFiles {
    /// A file set over `root` (files below it are served read-only; `None`
    /// serves generated files only). The root is canonicalised here so that
    /// symbolic links cannot lead out of it later.
    pub fn new(root: Option<&Path>) -> io::Result<Arc<Self>> {
        let root = match root {
            Some(r) => Some(r.canonicalize()?),
            None => None,
        };
        Ok(Arc::new(BootFiles {
            root,
            generated: RwLock::new(HashMap::new()),
        }))
    }

    /// The root directory, canonical.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Add or replace a generated file.
    pub fn insert(&self, path: &str, content: impl Into<Bytes>) -> Result<(), DriverError> {
        let p = sanitize_path(path).map_err(|_| PxeError::BadPath(path.to_owned()))?;
        self.generated
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(p, Entry::Bytes(content.into()));
        Ok(())
    }

    /// Publish the file at `target` (any readable path, not only below the
    /// root) under `path`. The file is opened at each request.
    pub fn link(&self, path: &str, target: &Path) -> Result<(), DriverError> {
        let p = sanitize_path(path).map_err(|_| PxeError::BadPath(path.to_owned()))?;
        self.generated
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(p, Entry::Link(target.to_owned()));
        Ok(())
    }

    /// Remove every generated file whose path starts with `prefix` (a
    /// directory, e.g. a node's UUID); how many were removed.
    pub fn remove_dir(&self, prefix: &str) -> usize {
        let Ok(p) = sanitize_path(prefix) else {
            return 0;
        };
        let dir = format!("{p}/");
        let mut map = self.generated.write().unwrap_or_else(|e| e.into_inner());
        let before = map.len();
        map.retain(|k, _| !k.starts_with(&dir));
        before - map.len()
    }

    /// Remove a generated file; whether it existed.
    pub fn remove(&self, path: &str) -> bool {
        match sanitize_path(path) {
            Ok(p) => self
                .generated
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&p)
                .is_some(),
            Err(_) => false,
        }
    }

    /// A generated file's content (`None` for links and unknown paths).
    pub fn generated(&self, path: &str) -> Option<Bytes> {
        let p = sanitize_path(path).ok()?;
        match self
            .generated
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&p)?
        {
            Entry::Bytes(b) => Some(b.clone()),
            Entry::Link(_) => None,
        }
    }

    /// Where a linked path points.
    pub fn link_target(&self, path: &str) -> Option<PathBuf> {
        let p = sanitize_path(path).ok()?;
        match self
            .generated
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&p)?
        {
            Entry::Link(t) => Some(t.clone()),
            Entry::Bytes(_) => None,
        }
    }

    /// Paths of all generated files, sorted.
    pub fn generated_paths(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .generated
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Resolve a path below the root to a regular file on disk (no generated files).
    pub fn disk_path(&self, raw: &str) -> Result<PathBuf, OpenError> {
        let rel = sanitize_path(raw)?;
        let root = self
            .root
            .as_ref()
            .ok_or_else(|| OpenError::NotFound(rel.clone()))?;
        let joined = root.join(&rel);
        debug_assert!(
            joined
                .components()
                .all(|c| !matches!(c, Component::ParentDir))
        );
        // Follow symlinks, then make sure we are still below the root.
        let real = joined
            .canonicalize()
            .map_err(|_| OpenError::NotFound(rel.clone()))?;
        if !real.starts_with(root) {
            return Err(OpenError::Refused(rel));
        }
        Ok(real)
    }

    /// Open a file for serving: generated first, then the root. Blocking, but
    /// only an `open` and a `metadata` call.
    pub fn open(&self, raw: &str) -> Result<BootFile, OpenError> {
        let rel = sanitize_path(raw)?;
        let entry = self
            .generated
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&rel)
            .cloned();
        let real = match entry {
            Some(Entry::Bytes(b)) => return Ok(BootFile::Memory(b)),
            Some(Entry::Link(target)) => target,
            None => self.disk_path(&rel)?,
        };
        let file = File::open(&real).map_err(|_| OpenError::NotFound(rel.clone()))?;
        let meta = file
            .metadata()
            .map_err(|_| OpenError::NotFound(rel.clone()))?;
        if !meta.is_file() {
            return Err(OpenError::NotFound(rel));
        }
        Ok(BootFile::Disk {
            file,
            len: meta.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sanitize_accepts_and_normalises() {
        assert_eq!(sanitize_path("a/b").unwrap(), "a/b");
        assert_eq!(sanitize_path("./a//b/.").unwrap(), "a/b");
        assert_eq!(
            sanitize_path("pxelinux.cfg/01-52-54-00-12-34-56").unwrap(),
            "pxelinux.cfg/01-52-54-00-12-34-56"
        );
    }

    #[test]
    fn sanitize_refuses_escapes() {
        for bad in [
            "",
            "/etc/passwd",
            "../etc/passwd",
            "a/../../b",
            "a/..",
            "..",
            "a\\..\\b",
            "C:/x",
            "a\0b",
            "a\nb",
            ".",
            "//",
        ] {
            assert!(sanitize_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn generated_shadow_disk_and_symlinks_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"disk").unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let files = BootFiles::new(Some(dir.path())).unwrap();
        assert_eq!(files.open("f").unwrap().len(), 4);
        files.insert("f", &b"memory!"[..]).unwrap();
        assert_eq!(files.open("f").unwrap().len(), 7);
        assert!(files.remove("f"));
        assert_eq!(files.open("f").unwrap().len(), 4);
        #[cfg(unix)]
        assert!(matches!(files.open("link"), Err(OpenError::Refused(_))));
        assert!(matches!(files.open("d"), Err(OpenError::NotFound(_))));
        assert!(matches!(files.open("nope"), Err(OpenError::NotFound(_))));
        assert!(files.insert("../x", &b""[..]).is_err());
    }

    proptest! {
        #[test]
        fn sanitized_paths_never_escape(s in "[a-z./\\\\]{0,20}") {
            if let Ok(p) = sanitize_path(&s) {
                prop_assert!(!p.starts_with('/'));
                prop_assert!(!p.split('/').any(|c| c == ".." || c.is_empty() || c == "."));
            }
        }
    }
}
