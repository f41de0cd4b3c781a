//! Benches and load tools for ironic-rs.
//!
//! [`servers`] starts the servers the load tools measure side by side: this
//! workspace's `ironic` binary and the real Ironic (PyPI `ironic`), each on a fresh
//! SQLite database in a directory of its own, and ends them when dropped.

pub mod servers;
