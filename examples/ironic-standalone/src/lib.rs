#![doc = include_str!("../README.md")]

pub mod api;
pub mod auth;
pub mod boot;
pub mod cache;
pub mod config;
pub mod http;
pub mod inspection_rules;
pub mod lab;
pub mod metrics;
pub mod network;
pub mod progress;
pub mod ramdisk;
pub mod server;
pub mod vmedia;
pub mod vnc;
