//! Support for the real-machine end-to-end test (`tests/qemu_e2e.rs`): a network
//! namespace with a bridge, a deploy ramdisk built from Debian packages and the
//! static `ironic-agent`, QEMU machines that follow a BMC model, an `ipmi_sim`
//! BMC whose chassis control drives that model, and a disk image that prints a
//! marker on the serial console when it boots.
//!
//! Every process started here is killed by PID when its guard drops; the
//! namespace guard also kills whatever still runs inside the namespace before
//! deleting it, so a failing test leaves nothing behind.
#![allow(dead_code)]

pub mod api;
pub mod image;
pub mod ipmi_bmc;
pub mod netns;
pub mod qemu;
pub mod ramdisk;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// Find a program on PATH (and the sbin directories), or fail saying how to install it.
pub fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "test peer `{name}` is missing: install it with `apt-get install -y {package}` \
                 (listed in examples/ironic-standalone/test-deps/apt.txt; scripts/test.sh installs it)"
            )
        })
}

/// A file that must exist (firmware, NBPs), or a failure naming its package.
pub fn need_file(path: &str, package: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(
        p.is_file(),
        "{path} is missing: install it with `apt-get install -y {package}` \
         (listed in examples/ironic-standalone/test-deps/apt.txt; scripts/test.sh installs it)"
    );
    p
}

/// The workspace's target directory (`$CARGO_TARGET_DIR`, else `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("target"))
}

/// The workspace root.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A child process killed (by its PID) and reaped when dropped.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run a command to completion; fail with its output when it fails.
pub fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed ({cmd:?}):\n{text}");
    text
}
