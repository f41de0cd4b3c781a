//! IPA's step catalogue (`GenericHardwareManager.get_{clean,deploy,service}_steps`)
//! and the steps that run on the agent: erasure (full, metadata, express),
//! pstore, UEFI NVRAM cleanup, file injection, burn-in and software RAID.
//!
//! Every step takes its settings where IPA does: the step's `args`, and the
//! node's `properties`, `driver_info` and `driver_internal_info`
//! (`agent_burnin_*`, `agent_erase_devices_*`, `agent_enable_*_secure_erase`,
//! `skip_block_devices`, `target_raid_config`, ...). A step whose tool is not in
//! the ramdisk fails and names the tool and the package that has it.

pub(crate) mod burnin;
pub(crate) mod erase;
pub(crate) mod inject;
pub(crate) mod nvram;
pub(crate) mod raid;

use std::path::Path;

use serde_json::{Value, json};

use crate::error::{AgentError, Result};

/// Which catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// `clean.get_clean_steps`.
    Clean,
    /// `deploy.get_deploy_steps`.
    Deploy,
    /// `service.get_service_steps`.
    Service,
}

/// One step as IPA lists it: `argsinfo` and `abortable` only where IPA has them.
fn step(name: &str, interface: &str, abortable: Option<bool>, argsinfo: Option<Value>) -> Value {
    let mut s = json!({"step": name, "priority": default_priority(name), "interface": interface,
        "reboot_requested": false});
    if let Some(a) = abortable {
        s["abortable"] = json!(a);
    }
    if let Some(a) = argsinfo {
        s["argsinfo"] = a;
    }
    s
}

/// The priority IPA gives a step in automated cleaning (Ironic's `[deploy]
/// *_priority` options override them on the conductor side).
fn default_priority(name: &str) -> u32 {
    match name {
        "erase_devices" => 10,
        "erase_devices_metadata" => 99,
        _ => 0,
    }
}

/// IPA's `DEPLOY_CLEAN_UEFI_NVRAM_ARGSINFO`.
fn nvram_argsinfo() -> Value {
    json!({"match_patterns": {"description": "Json blob contains a list of regex patterns where \
        any UEFI NVRAM entry matching that pattern will be deleted. Default value is \
        '[\"^HD\\(\", \"shim.*\\.efi\", \"grub.*\\.efi\"]'", "required": false}})
}

/// IPA's `RAID_APPLY_CONFIGURATION_ARGSINFO`.
fn raid_apply_argsinfo() -> Value {
    json!({"raid_config": {"description": "The RAID configuration to apply.", "required": true},
           "delete_existing": {"description": "Setting this to 'True' indicates to delete \
            existing RAID configuration prior to creating the new configuration. Default value \
            is 'True'.", "required": false}})
}

/// IPA's `inject_files.ARGSINFO`.
fn inject_files_argsinfo() -> Value {
    json!({"files": {"description": "Files to inject, a list of file structures with keys: \
        'path' (path to the file), 'partition' (partition specifier), 'content' (base64 encoded \
        string), 'mode' (new file mode) and 'dirmode' (mode for the leaf directory, if created). \
        Merged with the values from node.properties[inject_files].", "required": false},
        "verify_ca": {"description": "Whether to verify TLS certificates. Global agent options \
        are used by default.", "required": false}})
}

/// The steps the agent offers, as IPA's generic hardware manager lists them
/// (same names, interfaces, priorities, `abortable` flags and `argsinfo`).
///
/// IPA's deploy and service catalogues also list `execute_bootc_install`, which
/// this agent does not offer: it would run the image's own container tooling.
pub fn catalogue(kind: StepKind) -> Vec<Value> {
    let burnin = |n: &str| step(n, "deploy", Some(true), None);
    match kind {
        StepKind::Clean => vec![
            step("erase_devices", "deploy", Some(true), None),
            step("erase_devices_metadata", "deploy", Some(true), None),
            step("erase_devices_express", "deploy", Some(true), None),
            step("erase_pstore", "deploy", Some(true), None),
            step(
                "clean_uefi_nvram",
                "deploy",
                Some(true),
                Some(nvram_argsinfo()),
            ),
            step("delete_configuration", "raid", Some(true), None),
            step("create_configuration", "raid", Some(true), None),
            burnin("burnin_cpu"),
            burnin("burnin_gpu"),
            burnin("burnin_disk"),
            burnin("burnin_memory"),
            burnin("burnin_network"),
        ],
        StepKind::Deploy => vec![
            // priority 0 here: only the clean catalogue runs it by default
            {
                let mut s = step("erase_devices_metadata", "deploy", None, None);
                s["priority"] = json!(0);
                s
            },
            step(
                "apply_configuration",
                "raid",
                None,
                Some(raid_apply_argsinfo()),
            ),
            step("clean_uefi_nvram", "deploy", None, Some(nvram_argsinfo())),
            step("write_image", "deploy", None, None),
            step(
                "inject_files",
                "deploy",
                None,
                Some(inject_files_argsinfo()),
            ),
        ],
        StepKind::Service => vec![
            step("delete_configuration", "raid", Some(true), None),
            step(
                "apply_configuration",
                "raid",
                None,
                Some(raid_apply_argsinfo()),
            ),
            step("create_configuration", "raid", Some(true), None),
            burnin("burnin_cpu"),
            burnin("burnin_gpu"),
            // IPA leaves burnin_disk out of servicing: it destroys the disks' data
            burnin("burnin_memory"),
            burnin("burnin_network"),
            step("write_image", "deploy", None, None),
            step(
                "inject_files",
                "deploy",
                None,
                Some(inject_files_argsinfo()),
            ),
        ],
    }
}

/// Whether `name` is in the `kind` catalogue.
pub fn offered(kind: StepKind, name: &str) -> bool {
    catalogue(kind).iter().any(|s| s["step"] == name)
}

/// The Debian package that ships a tool (for "the ramdisk needs ..." errors).
fn package_of(tool: &str) -> &str {
    match tool {
        "nvme" => "nvme-cli",
        "hdparm" => "hdparm",
        "smartctl" => "smartmontools",
        "stress-ng" => "stress-ng",
        "fio" => "fio",
        "efibootmgr" => "efibootmgr",
        "debugfs" | "mkfs.ext4" => "e2fsprogs",
        "mdadm" => "mdadm",
        "blkdiscard" | "blockdev" | "wipefs" | "mount" | "umount" | "lsblk" => "util-linux",
        other => other,
    }
}

/// What running a tool gave.
#[derive(Debug)]
pub(crate) struct ToolOutput {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Run a tool and return what it printed whatever its exit status; an error
/// only when it cannot run (naming the tool and its package).
pub(crate) async fn run_tool_status(tool: &str, args: &[String]) -> Result<ToolOutput> {
    let out = tokio::process::Command::new(tool)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| missing_tool(tool, &e))?;
    Ok(ToolOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn missing_tool(tool: &str, e: &std::io::Error) -> AgentError {
    if e.kind() == std::io::ErrorKind::NotFound {
        // `ironic ramdisk build` leaves the burn-in tools out unless asked.
        let hint = match tool {
            "stress-ng" | "fio" => "; build the ramdisk with `ironic ramdisk build --with-burnin`",
            _ => "",
        };
        AgentError::CommandFailed(format!(
            "{tool} is not in the ramdisk: this step needs it (Debian package {}){hint}",
            package_of(tool)
        ))
    } else {
        AgentError::CommandFailed(format!("{tool} could not run: {e}"))
    }
}

/// Run a tool; its stdout, or an error naming the tool (missing or failed).
pub(crate) async fn run_tool(tool: &str, args: &[String]) -> Result<String> {
    let out = run_tool_status(tool, args).await?;
    if !out.status.success() {
        return Err(AgentError::CommandFailed(format!(
            "{tool} {} failed ({}): {}",
            args.join(" "),
            out.status,
            out.stderr.trim()
        )));
    }
    Ok(out.stdout)
}

/// `args` as owned strings.
pub(crate) fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// A value of the node's `section` (`driver_info`, `driver_internal_info`,
/// `properties`), `None` when absent or null.
pub(crate) fn info<'a>(node: &'a Value, section: &str, key: &str) -> Option<&'a Value> {
    node.get(section)
        .and_then(|s| s.get(key))
        .filter(|v| !v.is_null())
}

/// A setting as the text a tool takes (numbers and strings alike).
pub(crate) fn info_str(node: &Value, section: &str, key: &str, default: &str) -> String {
    match info(node, section, key) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => default.to_owned(),
    }
}

/// A boolean setting (`true`, `"True"`, `1`, `"yes"`, ...).
pub(crate) fn info_bool(node: &Value, section: &str, key: &str, default: bool) -> bool {
    match info(node, section, key) {
        Some(v) => as_bool(v).unwrap_or(default),
        None => default,
    }
}

/// Ironic's `strutils.bool_from_string` for JSON values.
pub(crate) fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
            "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_u64().map(|n| n != 0),
        _ => None,
    }
}

/// A non-negative integer setting.
pub(crate) fn info_u64(node: &Value, section: &str, key: &str, default: u64) -> Result<u64> {
    match info(node, section, key) {
        None => Ok(default),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| bad_setting(section, key, n)),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| bad_setting(section, key, s)),
        Some(v) => Err(bad_setting(section, key, v)),
    }
}

fn bad_setting(section: &str, key: &str, v: impl std::fmt::Display) -> AgentError {
    AgentError::InvalidParams(format!(
        "{section}.{key} must be a non-negative integer, got {v}"
    ))
}

/// Whether `p` is a block device (not a file disk).
pub(crate) fn is_block_device(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(p)
        .map(|m| m.file_type().is_block_device())
        .unwrap_or(false)
}

/// Run blocking work off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AgentError::Other(format!("step task: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_tool_is_named_with_its_package_and_burn_in_ones_with_the_build_option() {
        let gone = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = missing_tool("fio", &gone).to_string();
        assert!(
            e.contains("fio is not in the ramdisk") && e.contains("--with-burnin"),
            "{e}"
        );
        let e = missing_tool("nvme", &gone).to_string();
        assert!(
            e.contains("nvme-cli") && !e.contains("--with-burnin"),
            "{e}"
        );
        // A real spawn of a program that is not there.
        let e = run_tool_status("ironic-no-such-tool", &[])
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ironic-no-such-tool is not in the ramdisk"),
            "{e}"
        );
    }

    /// The names, interfaces, priorities and flags of IPA's generic hardware
    /// manager (ironic_python_agent/hardware.py, 2026), minus execute_bootc_install.
    #[test]
    fn catalogue_is_ipas() {
        let names = |k| -> Vec<(String, String, u64, Option<bool>, bool)> {
            catalogue(k)
                .iter()
                .map(|s| {
                    (
                        s["step"].as_str().unwrap().to_owned(),
                        s["interface"].as_str().unwrap().to_owned(),
                        s["priority"].as_u64().unwrap(),
                        s.get("abortable").and_then(Value::as_bool),
                        s.get("argsinfo").is_some(),
                    )
                })
                .collect()
        };
        let clean = names(StepKind::Clean);
        assert_eq!(clean.len(), 12);
        assert_eq!(
            clean[0],
            (
                "erase_devices".into(),
                "deploy".into(),
                10,
                Some(true),
                false
            )
        );
        assert_eq!(
            clean[1],
            (
                "erase_devices_metadata".into(),
                "deploy".into(),
                99,
                Some(true),
                false
            )
        );
        assert!(clean.iter().all(|s| s.3 == Some(true)));
        assert!(clean[2..].iter().all(|s| s.2 == 0));
        let raid: Vec<_> = clean.iter().filter(|s| s.1 == "raid").collect();
        assert_eq!(raid.len(), 2);
        let deploy = names(StepKind::Deploy);
        assert_eq!(
            deploy.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
            [
                "erase_devices_metadata",
                "apply_configuration",
                "clean_uefi_nvram",
                "write_image",
                "inject_files"
            ]
        );
        assert!(deploy.iter().all(|s| s.2 == 0 && s.3.is_none()));
        let service = names(StepKind::Service);
        assert!(!service.iter().any(|s| s.0 == "burnin_disk"));
        assert!(service.iter().any(|s| s.0 == "apply_configuration" && s.4));
        // every step is a JSON object Ironic accepts: reboot_requested is false
        for k in [StepKind::Clean, StepKind::Deploy, StepKind::Service] {
            for s in catalogue(k) {
                assert_eq!(s["reboot_requested"], false, "{s}");
            }
        }
        let nv = &catalogue(StepKind::Clean)[4]["argsinfo"]["match_patterns"]["description"];
        assert!(
            nv.as_str()
                .unwrap()
                .ends_with(r#"'["^HD\(", "shim.*\.efi", "grub.*\.efi"]'"#),
            "{nv}"
        );
    }

    #[test]
    fn settings_parse_as_ironic_sends_them() {
        let node = json!({"driver_info": {"a": "True", "b": 0, "c": "7", "d": "x", "e": null},
                          "driver_internal_info": {"n": 3}});
        assert!(info_bool(&node, "driver_info", "a", false));
        assert!(!info_bool(&node, "driver_info", "b", true));
        assert!(info_bool(&node, "driver_info", "e", true), "null = default");
        assert_eq!(info_u64(&node, "driver_info", "c", 1).unwrap(), 7);
        assert_eq!(info_u64(&node, "driver_internal_info", "n", 1).unwrap(), 3);
        assert_eq!(info_u64(&node, "driver_info", "zz", 1).unwrap(), 1);
        let e = info_u64(&node, "driver_info", "d", 1).unwrap_err();
        assert!(e.to_string().contains("driver_info.d"), "{e}");
        assert_eq!(info_str(&node, "driver_info", "b", "q"), "0");
    }

    #[tokio::test]
    async fn a_missing_tool_names_its_package() {
        let e = run_tool("nvme-does-not-exist", &[]).await.unwrap_err();
        assert!(e.to_string().contains("not in the ramdisk"), "{e}");
        let e = run_tool("false", &[]).await.unwrap_err();
        assert!(e.to_string().contains("false  failed"), "{e}");
    }
}
