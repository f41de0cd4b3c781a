//! HTTP basic authentication against an htpasswd file, as Ironic's
//! `auth_strategy = http_basic` (bcrypt entries only: `htpasswd -B`).
//!
//! - bcrypt runs on Tokio's blocking pool, on at most half the CPUs at a time
//!   (at least one), never on the async workers that serve requests and run the conductor.
//! - A successful check is remembered for [`Htpasswd::CACHE_TTL`] (keyed by a salted
//!   SHA-256 of the header, so no password is kept), then verified again.
//! - An unknown user costs one bcrypt verification as a known one does (against a
//!   real hash of the file), so response times do not tell which users exist.
//! - The file is re-read when it changes (checked on every request, as Ironic reads
//!   it per request): a user removed from it loses access at once, the cache is
//!   dropped. A file that becomes unreadable or invalid refuses everyone until it
//!   is fixed (logged once per change).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// Users and their bcrypt hashes, re-read when the file changes.
pub struct Htpasswd {
    path: Option<PathBuf>,
    loaded: RwLock<Loaded>,
    /// Salted SHA-256 of verified `Authorization` values, with when they were verified.
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    salt: [u8; 32],
    bcrypt_slots: Arc<Semaphore>,
    verifications: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Loaded {
    users: HashMap<String, String>,
    /// The file as last read: (device, inode, size, mtime ns, ctime ns).
    signature: Option<(u64, u64, u64, i128, i128)>,
}

impl std::fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let users: Vec<String> = self
            .loaded
            .read()
            .map(|l| l.users.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("Htpasswd")
            .field("path", &self.path)
            .field("users", &users)
            .finish()
    }
}

/// A bad htpasswd file.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    /// Unreadable.
    #[error("cannot read htpasswd file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not `user:$2y$...`.
    #[error("htpasswd file {path}, line {line}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong (never the hash).
        message: String,
    },
}

const CACHE_MAX: usize = 1024;

fn signature(m: &std::fs::Metadata) -> (u64, u64, u64, i128, i128) {
    (
        m.dev(),
        m.ino(),
        m.size(),
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
    )
}

fn parse_users(text: &str) -> Result<HashMap<String, String>, (usize, String)> {
    let mut users = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (user, hash) = line
            .split_once(':')
            .ok_or((i + 1, "expected user:hash".to_owned()))?;
        if user.is_empty() {
            return Err((i + 1, "empty user name".into()));
        }
        if !(hash.starts_with("$2y$") || hash.starts_with("$2a$") || hash.starts_with("$2b$")) {
            return Err((
                i + 1,
                format!(
                    "user {user:?}: only bcrypt hashes are supported (create them with htpasswd -B)"
                ),
            ));
        }
        // htpasswd writes $2y$, which the bcrypt crate verifies as $2b$.
        users.insert(user.to_owned(), hash.replacen("$2y$", "$2b$", 1));
    }
    Ok(users)
}

fn read_file(path: &Path) -> Result<Loaded, AuthFileError> {
    let read = |source| AuthFileError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    let text = std::fs::read_to_string(path).map_err(read)?;
    let users = parse_users(&text).map_err(|(line, message)| AuthFileError::Line {
        path: path.to_owned(),
        line,
        message,
    })?;
    Ok(Loaded {
        users,
        signature: Some(signature(&meta)),
    })
}

impl Htpasswd {
    /// How long a successful verification is remembered.
    pub const CACHE_TTL: Duration = Duration::from_secs(30);

    fn with(path: Option<PathBuf>, loaded: Loaded) -> Self {
        let parallel = std::thread::available_parallelism()
            .map(|n| (n.get() / 2).max(1))
            .unwrap_or(1);
        Htpasswd {
            path,
            loaded: RwLock::new(loaded),
            verified: Mutex::new(HashMap::new()),
            salt: rand::random(),
            bcrypt_slots: Arc::new(Semaphore::new(parallel)),
            verifications: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Read and check a file; it is read again whenever it changes.
    pub fn load(path: &Path) -> Result<Self, AuthFileError> {
        Ok(Self::with(Some(path.to_owned()), read_file(path)?))
    }

    /// Parse htpasswd text (never re-read); errors are `(line, message)`.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let users = parse_users(text)?;
        Ok(Self::with(
            None,
            Loaded {
                users,
                signature: None,
            },
        ))
    }

    /// bcrypt verifications run so far (cache hits and malformed headers run none).
    pub fn verifications(&self) -> u64 {
        self.verifications
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The user names currently accepted.
    pub fn users(&self) -> Vec<String> {
        self.refresh();
        let mut u: Vec<String> = self
            .loaded
            .read()
            .map(|l| l.users.keys().cloned().collect())
            .unwrap_or_default();
        u.sort();
        u
    }

    /// Re-read the file when its signature changed.
    fn refresh(&self) {
        let Some(path) = &self.path else {
            return;
        };
        let now = std::fs::metadata(path).ok().map(|m| signature(&m));
        let known = self.loaded.read().map(|l| l.signature).unwrap_or(None);
        if now.is_some() && now == known {
            return;
        }
        let Ok(mut loaded) = self.loaded.write() else {
            return;
        };
        if now.is_some() && now == loaded.signature {
            return; // another request reloaded it meanwhile
        }
        if now.is_none() && loaded.signature.is_none() && loaded.users.is_empty() {
            return; // still missing, already logged
        }
        match read_file(path) {
            Ok(fresh) => {
                tracing::info!(file = %path.display(), users = fresh.users.len(), "htpasswd file changed: reloaded");
                *loaded = fresh;
            }
            Err(e) => {
                tracing::error!(error = %e, "htpasswd file changed and cannot be used: refusing every authenticated request until it is fixed");
                *loaded = Loaded {
                    users: HashMap::new(),
                    signature: now,
                };
            }
        }
        if let Ok(mut c) = self.verified.lock() {
            c.clear();
        }
    }

    fn cache_key(&self, value: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(value.as_bytes());
        h.finalize().into()
    }

    fn cached(&self, key: &[u8; 32]) -> bool {
        self.verified
            .lock()
            .map(|c| c.get(key).is_some_and(|t| t.elapsed() < Self::CACHE_TTL))
            .unwrap_or(false)
    }

    fn remember(&self, key: [u8; 32]) {
        if let Ok(mut c) = self.verified.lock() {
            if c.len() >= CACHE_MAX {
                c.retain(|_, t| t.elapsed() < Self::CACHE_TTL);
                if c.len() >= CACHE_MAX {
                    c.clear();
                }
            }
            c.insert(key, Instant::now());
        }
    }

    /// Check an `Authorization` header value; returns the user name when valid.
    pub async fn check(&self, authorization: Option<&str>) -> Option<String> {
        self.refresh();
        let value = authorization?.trim();
        let encoded = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        let (hash, known) = {
            let loaded = self.loaded.read().ok()?;
            match loaded.users.get(user) {
                Some(h) => (h.clone(), true),
                // Same work for an unknown user: verify against a real hash (the
                // answer is ignored). No users at all: nothing to protect.
                None => (loaded.users.values().next()?.clone(), false),
            }
        };
        let key = self.cache_key(value);
        if known && self.cached(&key) {
            return Some(user.to_owned());
        }
        let _slot = self.bcrypt_slots.acquire().await.ok()?;
        let password = password.to_owned();
        self.verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ok =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        if ok && known {
            // The file may have changed while bcrypt ran.
            let still = self
                .loaded
                .read()
                .map(|l| l.users.contains_key(user))
                .unwrap_or(false);
            if still {
                self.remember(key);
                return Some(user.to_owned());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    }

    #[tokio::test]
    async fn bcrypt_users_authenticate() {
        let hash = bcrypt::hash("s3cret", 4)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        let h = Htpasswd::parse(&format!("# comment\nadmin:{hash}\n")).unwrap();
        assert_eq!(
            h.check(Some(&header("admin", "s3cret"))).await.as_deref(),
            Some("admin")
        );
        // cached path
        assert_eq!(
            h.check(Some(&header("admin", "s3cret"))).await.as_deref(),
            Some("admin")
        );
        assert!(h.check(Some(&header("admin", "wrong"))).await.is_none());
        assert!(h.check(Some(&header("other", "s3cret"))).await.is_none());
        assert!(h.check(Some("Bearer abc")).await.is_none());
        assert!(h.check(Some("Basic !!!")).await.is_none());
        assert!(h.check(None).await.is_none());
    }

    #[tokio::test]
    async fn unknown_users_cost_a_verification_like_known_ones() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let h = Htpasswd::parse(&format!("admin:{hash}\n")).unwrap();
        let before = h.verifications();
        assert!(h.check(Some(&header("admin", "wrong"))).await.is_none());
        assert_eq!(h.verifications(), before + 1);
        assert!(h.check(Some(&header("nobody", "s3cret"))).await.is_none());
        assert_eq!(
            h.verifications(),
            before + 2,
            "unknown user must run bcrypt too"
        );
        // A failure is never cached: the next try verifies again.
        assert!(h.check(Some(&header("admin", "wrong"))).await.is_none());
        assert_eq!(h.verifications(), before + 3);
        // A success is: the second one runs no bcrypt.
        assert!(h.check(Some(&header("admin", "s3cret"))).await.is_some());
        assert!(h.check(Some(&header("admin", "s3cret"))).await.is_some());
        assert_eq!(h.verifications(), before + 4);
    }

    #[tokio::test]
    async fn the_file_is_re_read_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        let a = bcrypt::hash("pa", 4).unwrap().replacen("$2b$", "$2y$", 1);
        let b = bcrypt::hash("pb", 4).unwrap();
        std::fs::write(&path, format!("alice:{a}\nbob:{b}\n")).unwrap();
        let h = Htpasswd::load(&path).unwrap();
        assert!(h.check(Some(&header("alice", "pa"))).await.is_some());
        assert!(h.check(Some(&header("bob", "pb"))).await.is_some());
        // bob is removed (a new file renamed over the old one, as editors do).
        let tmp = dir.path().join("htpasswd.new");
        std::fs::write(&tmp, format!("alice:{a}\n")).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert!(
            h.check(Some(&header("bob", "pb"))).await.is_none(),
            "removed user keeps access"
        );
        assert_eq!(h.users(), vec!["alice".to_owned()]);
        // A broken file refuses everyone (fail closed) ...
        std::fs::write(&path, "alice:plaintext\n").unwrap();
        assert!(h.check(Some(&header("alice", "pa"))).await.is_none());
        std::fs::remove_file(&path).unwrap();
        assert!(h.check(Some(&header("alice", "pa"))).await.is_none());
        // ... until it is fixed, in place this time.
        std::fs::write(&path, format!("alice:{a}\ncarol:{b}\n")).unwrap();
        assert!(h.check(Some(&header("alice", "pa"))).await.is_some());
        assert!(h.check(Some(&header("carol", "pb"))).await.is_some());
    }

    #[test]
    fn non_bcrypt_lines_are_refused_without_leaking_the_hash() {
        let (line, msg) = Htpasswd::parse("a:$apr1$xyz$abc\n").unwrap_err();
        assert_eq!(line, 1);
        assert!(msg.contains("bcrypt") && !msg.contains("xyz"), "{msg}");
        assert!(Htpasswd::parse("nocolon\n").is_err());
    }
}
