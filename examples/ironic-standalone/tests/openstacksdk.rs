//! openstacksdk's `conn.baremetal` against a running `ironic`: version discovery
//! through `GET /` and `GET /v1`, then the whole lifecycle (see
//! `api_support/sdk_lifecycle.py`).

mod api_support;

use api_support::{Ironic, python_with};

#[test]
fn openstacksdk_drives_the_lifecycle() {
    let ir = Ironic::start(&[], &[]);
    let python = python_with("openstack", "openstacksdk");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api_support/sdk_lifecycle.py"
    );
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(&ir.url)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("OK"),
        "openstacksdk script failed\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
        ir.log_text()
    );
}
