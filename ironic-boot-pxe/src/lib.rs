#![doc = include_str!("../README.md")]

pub mod dhcp;
mod error;
pub mod files;
pub mod http;
pub mod tftp;

pub use dhcp::{
    BootOptions, DhcpBind, DhcpConfig, DhcpMode, DhcpServer, Reservation, Reservations,
};
pub use files::{BootFile, BootFiles, OpenError};
pub use http::{HttpBootServer, router};
pub use tftp::{TftpOptions, TftpServer};
