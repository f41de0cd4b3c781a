//! HTTP basic authentication against an htpasswd file, as Ironic's
//! `auth_strategy = http_basic` (bcrypt entries only: `htpasswd -B`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;

/// Users and their bcrypt hashes.
pub struct Htpasswd {
    users: HashMap<String, String>,
    /// `Authorization` values already verified (bcrypt is slow on purpose; the
    /// check is done once per distinct credential). Bounded.
    verified: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Htpasswd")
            .field("users", &self.users.keys().collect::<Vec<_>>())
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

const CACHE_MAX: usize = 256;

impl Htpasswd {
    /// Read and check a file.
    pub fn load(path: &Path) -> Result<Self, AuthFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|(line, message)| AuthFileError::Line {
            path: path.to_owned(),
            line,
            message,
        })
    }

    /// Parse htpasswd text; errors are `(line, message)`.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
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
            users.insert(user.to_owned(), hash.to_owned());
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// Check an `Authorization` header value; returns the user name when valid.
    pub fn check(&self, authorization: Option<&str>) -> Option<String> {
        let value = authorization?.trim();
        let encoded = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        let hash = self.users.get(user)?;
        if self
            .verified
            .lock()
            .map(|c| c.contains(value))
            .unwrap_or(false)
        {
            return Some(user.to_owned());
        }
        // htpasswd writes $2y$, which the bcrypt crate verifies as $2b$.
        let normalized = hash.replacen("$2y$", "$2b$", 1);
        if bcrypt::verify(password, &normalized).unwrap_or(false) {
            if let Ok(mut c) = self.verified.lock() {
                if c.len() >= CACHE_MAX {
                    c.clear();
                }
                c.insert(value.to_owned());
            }
            Some(user.to_owned())
        } else {
            None
        }
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

    #[test]
    fn bcrypt_users_authenticate() {
        let hash = bcrypt::hash("s3cret", 4)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        let h = Htpasswd::parse(&format!("# comment\nadmin:{hash}\n")).unwrap();
        assert_eq!(
            h.check(Some(&header("admin", "s3cret"))).as_deref(),
            Some("admin")
        );
        // cached path
        assert_eq!(
            h.check(Some(&header("admin", "s3cret"))).as_deref(),
            Some("admin")
        );
        assert!(h.check(Some(&header("admin", "wrong"))).is_none());
        assert!(h.check(Some(&header("other", "s3cret"))).is_none());
        assert!(h.check(Some("Bearer abc")).is_none());
        assert!(h.check(Some("Basic !!!")).is_none());
        assert!(h.check(None).is_none());
    }

    #[test]
    fn non_bcrypt_lines_are_refused_without_leaking_the_hash() {
        let (line, msg) = Htpasswd::parse("a:$apr1$xyz$abc\n").unwrap_err();
        assert_eq!(line, 1);
        assert!(msg.contains("bcrypt") && !msg.contains("xyz"), "{msg}");
        assert!(Htpasswd::parse("nocolon\n").is_err());
    }
}
