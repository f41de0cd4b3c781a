//! openstacksdk's `conn.baremetal` against a running `ironic`: version discovery
//! through `GET /` and `GET /v1`, then the whole lifecycle (see
//! `api_support/sdk_lifecycle.py`), and the `redfish` vendor interface's
//! passthru methods (`api_support/sdk_vendor.py`).

mod api_support;

use api_support::{Ironic, python_with};

/// Runs `script` (in `api_support/`) with openstacksdk and `args`; it prints OK.
fn run_sdk_script(ir: &Ironic, script: &str, args: &[&str]) {
    let python = python_with("openstack", "openstacksdk");
    let script = format!("{}/tests/api_support/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(&ir.url)
        .args(args)
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

#[test]
fn openstacksdk_drives_the_lifecycle() {
    let ir = Ironic::start(&[], &[]);
    run_sdk_script(&ir, "sdk_lifecycle.py", &[]);
}

/// `list_node_vendor_passthru` and `call_node_vendor_passthru` on a redfish
/// node whose BMC (the lab's simulator) keeps event subscriptions: create,
/// list, get, delete (openstacksdk sends the `id` in the DELETE body, which
/// python-ironicclient cannot), and Ironic's 400s.
#[test]
fn openstacksdk_calls_the_redfish_vendor_methods() {
    let dir = tempfile::tempdir().unwrap();
    let rt = api_support::rt();
    let sim = api_support::lab_redfish_sim(&rt, dir.path());
    let ir = Ironic::start(&[], &[]);
    let bmc = sim.url().to_string();
    run_sdk_script(&ir, "sdk_vendor.py", &[bmc.as_str()]);
    drop(sim);
}
