//! The noVNC console token, as Ironic's `ironic.common.vnc`: a random token in the
//! node's `driver_internal_info` (`novnc_secret_token`, with its creation time in
//! `novnc_secret_token_created`), valid for `[vnc] token_timeout` seconds, and the
//! console URL that carries it.
//!
//! The token is a secret: the API masks it (its key contains `secret` and
//! `token`), and nothing here logs it.

use base64::Engine as _;
use chrono::{NaiveDateTime, TimeZone, Utc};
use rand::RngCore as _;

use crate::model::{Node, Timestamp};
use crate::secret::Secret;

/// `driver_internal_info` key of the token.
pub const TOKEN_KEY: &str = "novnc_secret_token";
/// `driver_internal_info` key of the token's creation time (UTC,
/// `%Y-%m-%dT%H:%M:%S.%f` as Python's `isoformat()` writes it).
pub const TOKEN_CREATED_KEY: &str = "novnc_secret_token_created";
/// `driver_internal_info` key of the VNC server's host.
pub const VNC_HOST_KEY: &str = "vnc_host";
/// `driver_internal_info` key of the VNC server's port.
pub const VNC_PORT_KEY: &str = "vnc_port";

/// Why a token is refused (Ironic's `NotAuthorized`, whatever the cause: the
/// proxy tells the client no more than that).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token was given.
    #[error("no console token given")]
    Missing,
    /// The node has no console token (the console is not enabled).
    #[error("the node has no console token")]
    NoToken,
    /// The token does not match.
    #[error("the console token does not match")]
    Mismatch,
    /// The token's creation time is missing or unreadable.
    #[error("the console token has no creation time")]
    NoCreationTime,
    /// The token is older than the timeout.
    #[error("the console token has expired")]
    Expired,
}

/// Create a token (as Python's `secrets.token_urlsafe()`: 32 random bytes,
/// base64url without padding) and record it with the current time in the node's
/// `driver_internal_info` (Ironic's `novnc_authorize`). Returns the token.
pub fn authorize(node: &mut Node) -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    node.driver_internal_info
        .insert(TOKEN_KEY.into(), token.clone().into());
    node.driver_internal_info.insert(
        TOKEN_CREATED_KEY.into(),
        Utc::now()
            .naive_utc()
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string()
            .into(),
    );
    Secret::new(token)
}

/// Remove the token (Ironic's `novnc_unauthorize`).
pub fn unauthorize(node: &mut Node) {
    node.driver_internal_info.remove(TOKEN_KEY);
    node.driver_internal_info.remove(TOKEN_CREATED_KEY);
}

/// When the node's token expires: its creation time plus `timeout` (Ironic's
/// `token_valid_until`).
pub fn valid_until(node: &Node, timeout: std::time::Duration) -> Result<Timestamp, TokenError> {
    let created = node
        .driver_internal_info
        .get(TOKEN_CREATED_KEY)
        .and_then(|v| v.as_str())
        .and_then(parse_created)
        .ok_or(TokenError::NoCreationTime)?;
    let timeout = chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
    Ok(created
        .checked_add_signed(timeout)
        .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC))
}

fn parse_created(s: &str) -> Option<Timestamp> {
    // Python's isoformat() drops the fraction when it is zero; an offset may follow
    // when another writer used one.
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(Utc.from_utc_datetime(&t));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Check `token` against the node's (Ironic's `novnc_validate`): present, equal
/// (compared in constant time) and not expired.
pub fn validate(node: &Node, token: &str, timeout: std::time::Duration) -> Result<(), TokenError> {
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    let mine = node
        .driver_internal_info
        .get(TOKEN_KEY)
        .and_then(|v| v.as_str())
        .filter(|t| !t.is_empty())
        .ok_or(TokenError::NoToken)?;
    if !Secret::new(mine).ct_eq(token) {
        return Err(TokenError::Mismatch);
    }
    if valid_until(node, timeout)? < Utc::now() {
        return Err(TokenError::Expired);
    }
    Ok(())
}

/// Whether the node's console session has expired (the periodic check of
/// Ironic's `_expire_console_sessions`). A node without a readable creation time
/// is not expired here (Ironic's check fails on it and leaves the console on).
pub fn expired(node: &Node, timeout: std::time::Duration) -> bool {
    valid_until(node, timeout).is_ok_and(|t| t < Utc::now())
}

/// The noVNC URL of the node's console (Ironic's `vnc.get_console`):
/// `<public_url>?path=<websockify?node=UUID&token=TOKEN, percent-encoded>`.
pub fn console_url(public_url: &str, node: &Node) -> String {
    let token = node
        .driver_internal_info
        .get(TOKEN_KEY)
        .and_then(|v| v.as_str())
        // Ironic formats a missing token as Python's None
        .unwrap_or("None");
    let path = quote(&format!("websockify?node={}&token={token}", node.uuid));
    format!("{public_url}?path={path}")
}

/// Python's `urllib.parse.quote` with its default `safe='/'`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn node() -> Node {
        Node::new("fake-hardware")
    }

    #[test]
    fn authorize_validate_unauthorize() {
        let mut n = node();
        let t = authorize(&mut n);
        assert_eq!(t.expose().len(), 43);
        let minute = Duration::from_secs(60);
        assert_eq!(validate(&n, t.expose(), minute), Ok(()));
        assert_eq!(validate(&n, "", minute), Err(TokenError::Missing));
        assert_eq!(validate(&n, "x", minute), Err(TokenError::Mismatch));
        let other = authorize(&mut node());
        assert_eq!(
            validate(&n, other.expose(), minute),
            Err(TokenError::Mismatch)
        );
        assert!(!expired(&n, minute));
        unauthorize(&mut n);
        assert_eq!(validate(&n, t.expose(), minute), Err(TokenError::NoToken));
    }

    #[test]
    fn expiry_follows_the_creation_time() {
        let mut n = node();
        let t = authorize(&mut n);
        let old = (Utc::now() - chrono::Duration::seconds(700)).naive_utc();
        n.driver_internal_info.insert(
            TOKEN_CREATED_KEY.into(),
            old.format("%Y-%m-%dT%H:%M:%S%.6f").to_string().into(),
        );
        let timeout = Duration::from_secs(600);
        assert_eq!(validate(&n, t.expose(), timeout), Err(TokenError::Expired));
        assert!(expired(&n, timeout));
        assert!(!expired(&n, Duration::from_secs(800)));
        // Python's isoformat() without a fraction
        n.driver_internal_info.insert(
            TOKEN_CREATED_KEY.into(),
            old.format("%Y-%m-%dT%H:%M:%S").to_string().into(),
        );
        assert!(expired(&n, timeout));
        n.driver_internal_info
            .insert(TOKEN_CREATED_KEY.into(), "garbage".into());
        assert_eq!(
            validate(&n, t.expose(), timeout),
            Err(TokenError::NoCreationTime)
        );
        assert!(!expired(&n, timeout));
    }

    #[test]
    fn url_as_ironic_builds_it() {
        let mut n = node();
        n.driver_internal_info
            .insert(TOKEN_KEY.into(), "ab-c_D".into());
        assert_eq!(
            console_url("http://127.0.0.1:6090/vnc_auto.html", &n),
            format!(
                "http://127.0.0.1:6090/vnc_auto.html?path=websockify%3Fnode%3D{}%26token%3Dab-c_D",
                n.uuid
            )
        );
    }
}
