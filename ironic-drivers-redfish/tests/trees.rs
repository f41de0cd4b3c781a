//! The driver on Redfish service trees nobody here wrote (`tests/trees/`, see its
//! README): the DMTF's published mockups and vendor trees (HPE iLO 5, HPE Cray EX
//! blade controllers, Gigabyte/AMI MegaRAC, Intel, OpenBMC), served read-only by
//! `sushy-static` (PyPI sushy-tools).
//!
//! For every system of every tree, what this driver reports is checked against
//! what OpenStack Ironic records, computed by `tests/trees/ironic_expect.py`
//! through `sushy` (the client Ironic uses) along Ironic's own code paths:
//! vendor, boot mode, secure boot, health, power state, every BIOS setting and its
//! value as Ironic stores it, firmware components, `local_gb`, port MACs. Where
//! Ironic reads a value, ours must be the same; where Ironic reads nothing (it
//! logs and records nothing), ours may say more and is counted as such. Boot
//! device setting must work on every tree (sushy-static accepts the PATCH).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fast_config, serve_static, task, tool};
use ironic_core::driver::{
    BiosInterface, BootDevice, FirmwareInterface, InspectInterface, InspectOutcome,
    ManagementInterface, PowerInterface, Task,
};
use ironic_drivers_redfish::{
    RedfishBios, RedfishFirmware, RedfishInspect, RedfishManagement, RedfishPower,
};
use serde_json::{Value, json};

fn ironic_expectations(url: &str) -> BTreeMap<String, Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/trees/ironic_expect.py");
    let out = Command::new(tool("python3"))
        .arg(&script)
        .arg(format!("{url}/redfish/v1"))
        .output()
        .expect("run ironic_expect.py with the test venv's python3 (PyPI sushy)");
    assert!(
        out.status.success(),
        "ironic_expect.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ironic_expect.py prints JSON")
}

fn trees() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/trees");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("index.json").exists())
        .collect();
    out.sort();
    out
}

/// One comparison: equal, ours only (Ironic reads nothing), or a mismatch.
#[derive(Default)]
struct Score {
    same: usize,
    better: Vec<String>,
    wrong: Vec<String>,
}

impl Score {
    fn check(&mut self, what: &str, ironic: &Value, ours: Value) {
        // Ironic's local_gb 0 means "found no disk" (a read it could not make).
        let nothing = ironic.is_null() || (what.ends_with("local_gb") && *ironic == json!(0));
        // a power state the BMC does not report reads as "error", Ironic's None
        let ours_nothing = ours.is_null()
            || ours == json!({})
            || ours == json!([])
            || ours == json!("error")
            || ours == *ironic;
        if nothing {
            if !ours_nothing {
                let shown: String = ours.to_string().chars().take(100).collect();
                self.better
                    .push(format!("{what}: Ironic {ironic}, ironic-rs {shown}"));
            } else {
                self.same += 1;
            }
        } else if *ironic == ours {
            self.same += 1;
        } else {
            self.wrong
                .push(format!("{what}: Ironic {ironic}, ironic-rs {ours}"));
        }
    }
}

async fn ours(t: &mut Task) -> BTreeMap<&'static str, Value> {
    let cfg = fast_config();
    let mgmt = RedfishManagement::new(cfg.clone());
    let mut out = BTreeMap::new();
    out.insert("vendor", json!(mgmt.detect_vendor(t).await.ok().flatten()));
    out.insert(
        "boot_mode",
        json!(
            mgmt.get_boot_mode(t)
                .await
                .ok()
                .flatten()
                .map(|m| m.as_str())
        ),
    );
    out.insert(
        "secure_boot",
        json!(mgmt.get_secure_boot_state(t).await.ok()),
    );
    out.insert(
        "health",
        json!(mgmt.get_node_health(t).await.ok().flatten()),
    );
    out.insert(
        "power_state",
        json!(
            RedfishPower::new(cfg.clone())
                .get_power_state(t)
                .await
                .ok()
                .map(|p| match p.as_str() {
                    "power on" => "On",
                    "power off" => "Off",
                    other => other,
                }
                .to_owned())
        ),
    );
    let bios = RedfishBios::new(cfg.clone())
        .cache_bios_settings(t)
        .await
        .ok()
        .map(|s| {
            s.into_iter()
                .map(|s| (s.name, json!(s.value)))
                .collect::<serde_json::Map<_, _>>()
        });
    out.insert("bios", json!(bios));
    let fw = RedfishFirmware::new(cfg.clone())
        .cache_firmware_components(t)
        .await
        .ok()
        .map(|c| {
            c.into_iter()
                .map(|c| (c.component, json!(c.current_version)))
                .collect::<serde_json::Map<_, _>>()
        });
    out.insert("firmware", json!(fw));
    match RedfishInspect::new(cfg).inspect_hardware(t).await {
        Ok(InspectOutcome::Done(d)) => {
            out.insert("local_gb", d.properties["local_gb"].clone());
            out.insert(
                "macs",
                json!(
                    d.ports
                        .iter()
                        .map(|p| p.address.to_string())
                        .collect::<Vec<_>>()
                ),
            );
        }
        other => panic!("inspection of {:?}: {other:?}", t.node.driver_info),
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_tree_reads_as_ironic_reads_it_or_better() {
    let mut score = Score::default();
    let mut boot_ok = 0;
    let mut systems = 0;
    let trees = trees();
    assert!(trees.len() >= 20, "the trees are in tests/trees");
    for tree in &trees {
        let name = tree.file_name().unwrap().to_string_lossy().into_owned();
        let srv = serve_static(tree);
        let expected = ironic_expectations(&srv.url);
        assert!(!expected.is_empty(), "{name}: no systems");
        for (path, exp) in &expected {
            systems += 1;
            let mut t = task(&srv.url, json!({ "redfish_system_id": path }));
            if exp.is_null() {
                // sushy could not even load the system
                continue;
            }
            let got = ours(&mut t).await;
            for (k, v) in &got {
                score.check(&format!("{name} {path} {k}"), &exp[*k], v.clone());
            }
            // Boot device setting holds even without a Boot object (PXE, or the
            // first device the system allows when it does not allow PXE).
            let mgmt = RedfishManagement::new(fast_config());
            let devices = mgmt
                .get_supported_boot_devices(&t)
                .await
                .unwrap_or_default();
            let device = if devices.is_empty() || devices.contains(&BootDevice::Pxe) {
                BootDevice::Pxe
            } else {
                devices[0]
            };
            match mgmt.set_boot_device(&t, device, false).await {
                Ok(()) => boot_ok += 1,
                Err(e) => score
                    .wrong
                    .push(format!("{name} {path} set_boot_device: {e}")),
            }
        }
    }
    let checks = score.same + score.better.len() + score.wrong.len();
    eprintln!(
        "{} trees, {systems} systems, {checks} checks: {} as Ironic, {} where Ironic reads nothing, {} wrong; boot device set on {boot_ok}",
        trees.len(),
        score.same,
        score.better.len(),
        score.wrong.len()
    );
    for b in &score.better {
        eprintln!("  more than Ironic: {b}");
    }
    assert!(
        score.wrong.is_empty(),
        "differs from Ironic:\n{}",
        score.wrong.join("\n")
    );
    assert_eq!(boot_ok, systems);
}
