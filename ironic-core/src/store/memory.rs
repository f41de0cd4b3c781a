//! Placeholder: the in-memory store is being written.
