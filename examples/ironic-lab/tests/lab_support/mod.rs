//! Shared helpers for the lab's tests: finding the real peers (Python tools, ipmitool).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ironic_core::Secret;
use ironic_lab::{ServerSpec, SimServer};

/// A Python interpreter that can import `module`: `$IRONIC_TEST_VENV/bin/python3` first,
/// then `python3` on `PATH`. Panics with install instructions when there is none.
pub fn python_with(module: &str, pip_package: &str) -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(venv) = std::env::var_os("IRONIC_TEST_VENV") {
        candidates.push(Path::new(&venv).join("bin/python3"));
    }
    candidates.push(PathBuf::from("python3"));
    for python in candidates {
        let ok = Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return python;
        }
    }
    panic!(
        "this test needs the Python package `{pip_package}` (module `{module}`): run scripts/test.sh \
         (it installs examples/ironic-lab/test-deps/pip.txt into .venv-test), or \
         `python3 -m venv /tmp/v && /tmp/v/bin/pip install {pip_package}` and set IRONIC_TEST_VENV=/tmp/v"
    );
}

/// A tool from Debian, or a panic saying which package to install.
pub fn debian_tool(binary: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(binary);
        if p.exists() {
            return p;
        }
    }
    if Command::new(binary).arg("-V").output().is_ok() {
        return PathBuf::from(binary);
    }
    panic!(
        "this test needs `{binary}`: apt-get install {package} (listed in examples/ironic-lab/test-deps/apt.txt)"
    );
}

/// A server spec for tests, with its disk file in `dir`.
pub fn spec(dir: &Path, name: &str, index: u8) -> ServerSpec {
    ServerSpec {
        name: name.to_string(),
        uuid: uuid::Uuid::new_v4(),
        macs: vec![
            format!("52:54:00:aa:00:{index:02x}").parse().unwrap(),
            format!("52:54:00:bb:00:{index:02x}").parse().unwrap(),
        ],
        disk: dir.join(format!("{name}.img")),
        disk_size: 8 << 30,
        cpus: 4,
        memory_mib: 8192,
        username: "admin".into(),
        password: Secret::new(format!("pw-{name}")),
    }
}

/// A simulated server for tests.
pub fn server(dir: &Path, name: &str, index: u8) -> SimServer {
    SimServer::new(spec(dir, name, index))
}
