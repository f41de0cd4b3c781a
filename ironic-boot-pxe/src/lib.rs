#![doc = include_str!("../README.md")]

mod error;
pub mod files;
pub mod http;
pub mod tftp;

pub use files::{BootFile, BootFiles, OpenError};
pub use http::{HttpBootServer, router};
pub use tftp::{TftpOptions, TftpServer};
