//! Benches and load tools for ironic-rs.
