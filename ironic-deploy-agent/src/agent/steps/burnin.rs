//! The burn-in steps (IPA's `burnin.py`): `stress-ng` for CPU and memory, `fio`
//! for disks (with an optional SMART self-test) and the network, `gpu-burn` for
//! GPUs; every setting from the node's `driver_info` under IPA's key names.
//!
//! Not supported: dynamic pairing for `burnin_network` through a tooz backend
//! (`agent_burnin_fio_network_pairing_backend_url`); the static pairing
//! (`agent_burnin_fio_network_config`) is.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{argv, info, info_str, info_u64, run_tool, run_tool_status};
use crate::agent::{State, inventory};
use crate::error::{AgentError, Result};

/// IPA's `stress_ng`: `--cpu N` / `--vm N --vm-bytes B`, `--timeout`,
/// `--metrics-brief`, `--log-file`.
pub(crate) fn stress_ng_args(node: &Value, stressor: &str) -> Vec<String> {
    let count_key = format!("agent_burnin_{stressor}_{stressor}");
    let mut args = vec![
        format!("--{stressor}"),
        info_str(node, "driver_info", &count_key, "0"),
        "--timeout".into(),
        info_str(
            node,
            "driver_info",
            &format!("agent_burnin_{stressor}_timeout"),
            "86400",
        ),
    ];
    if stressor == "vm" {
        args.extend([
            "--vm-bytes".into(),
            info_str(node, "driver_info", "agent_burnin_vm_vm-bytes", "98%"),
        ]);
    }
    args.push("--metrics-brief".into());
    if let Some(Value::String(o)) = info(
        node,
        "driver_info",
        &format!("agent_burnin_{stressor}_outputfile"),
    ) {
        args.extend(["--log-file".into(), o.clone()]);
    }
    args
}

/// `burnin_cpu` (`stressor` = `cpu`) and `burnin_memory` (`vm`).
pub(crate) async fn stress_ng(node: &Value, stressor: &str) -> Result<Value> {
    let args = stress_ng_args(node, stressor);
    let out = run_tool_status("stress-ng", &args).await?;
    if !out.status.success() {
        return Err(AgentError::CommandFailed(format!(
            "stress-ng ({stressor}) failed with error {}: {}",
            out.status,
            out.stderr.trim()
        )));
    }
    // stress-ng reports on stderr
    tracing::info!(report = %out.stderr.trim(), "stress-ng ({stressor}) done");
    Ok(json!({"command": format!("stress-ng {}", args.join(" ")), "report": out.stderr.trim()}))
}

/// IPA's `fio_disk` arguments for `disks`.
pub(crate) fn fio_disk_args(node: &Value, disks: &[String]) -> Vec<String> {
    let mut args = argv(&[
        "--rw",
        "readwrite",
        "--bs",
        "4k",
        "--direct",
        "1",
        "--ioengine",
        "libaio",
        "--iodepth",
        "32",
        "--verify",
        "crc32c",
        "--verify_dump",
        "1",
        "--continue_on_error",
        "verify",
        // fio would leave a `<job>-verify.state` file in the agent's working
        // directory (IPA's does, in the ramdisk's /)
        "--verify_state_save",
        "0",
    ]);
    args.extend([
        "--loops".into(),
        info_str(node, "driver_info", "agent_burnin_fio_disk_loops", "4"),
        "--runtime".into(),
        info_str(node, "driver_info", "agent_burnin_fio_disk_runtime", "0"),
        "--time_based".into(),
    ]);
    if let Some(Value::String(o)) = info(node, "driver_info", "agent_burnin_fio_disk_outputfile") {
        args.extend(argv(&["--output-format", "json", "--output", o]));
    }
    for d in disks {
        // IPA names each job after its device (fio then uses the name as the
        // file); the explicit --filename also works with names fio would mangle
        args.extend(argv(&["--name", d, "--filename", d]));
    }
    args
}

/// `burnin_disk`: fio over every disk, then (with
/// `agent_burnin_fio_disk_smart_test`) a long SMART self-test of each.
pub(crate) async fn fio_disk(st: &Arc<State>, node: &Value) -> Result<Value> {
    let disks: Vec<String> = inventory::disks(&st.cfg)
        .into_iter()
        .map(|d| d.name)
        .collect();
    if disks.is_empty() {
        return Err(AgentError::NoRootDevice(
            "burnin_disk: no disk to test".into(),
        ));
    }
    let args = fio_disk_args(node, &disks);
    let out = run_tool("fio", &args)
        .await
        .map_err(|e| AgentError::CommandFailed(format!("fio (disk) failed with error {e}")))?;
    tracing::info!(report = %out.trim(), "fio (disk) done");
    let smart = info(node, "driver_info", "agent_burnin_fio_disk_smart_test")
        .and_then(super::as_bool)
        .unwrap_or(false);
    if smart {
        smart_test(&disks).await?;
    }
    Ok(json!({"disks": disks, "smart_test": smart}))
}

/// The self-test status string of `smartctl -ja` (`None` when there is none).
pub(crate) fn smart_status(smartctl_ja: &str) -> Option<String> {
    let v: Value = serde_json::from_str(smartctl_ja).ok()?;
    v.pointer("/ata_smart_data/self_test/status/string")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// IPA's `_run_smart_test`: start a long self-test on every disk, wait for each
/// to finish, fail if one reports an error.
async fn smart_test(disks: &[String]) -> Result<()> {
    let mut failed = Vec::new();
    for d in disks {
        if let Err(e) = run_tool("smartctl", &argv(&["-t", "long", d])).await {
            tracing::error!(device = %d, error = %e, "starting the SMART test failed");
            failed.push(d.clone());
        }
    }
    if !failed.is_empty() {
        return Err(AgentError::CommandFailed(format!(
            "fio (disk) failed to start SMART self test on {}",
            failed.join(", ")
        )));
    }
    let mut running: Vec<String> = disks.to_vec();
    while !running.is_empty() {
        let mut still = Vec::new();
        for d in running {
            let out = run_tool_status("smartctl", &argv(&["-ja", &d])).await?;
            match smart_status(&out.stdout) {
                None => {}
                Some(s) if s.contains("in progress") => still.push(d),
                Some(s) if s.contains("completed without error") => {}
                Some(s) => {
                    tracing::warn!(device = %d, status = %s, "SMART test failed");
                    failed.push(d);
                }
            }
        }
        running = still;
        if !running.is_empty() {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    }
    if !failed.is_empty() {
        return Err(AgentError::CommandFailed(format!(
            "fio (disk) SMART test failed for {}",
            failed.join(" ")
        )));
    }
    Ok(())
}

/// IPA's `_do_fio_network` arguments for one direction.
pub(crate) fn fio_network_args(
    writer: bool,
    runtime: &str,
    partner: &str,
    output: Option<&str>,
) -> Vec<String> {
    let mut args = argv(&[
        "--ioengine",
        "net",
        "--port",
        "9000",
        "--fill_device",
        "1",
        "--group_reporting",
        "--gtod_reduce",
        "1",
        "--numjobs",
        "16",
    ]);
    if writer {
        args.extend(argv(&[
            "--name",
            "writer",
            "--rw",
            "write",
            "--runtime",
            runtime,
            "--time_based",
            "--listen",
        ]));
    } else {
        args.extend(argv(&[
            "--name",
            "reader",
            "--rw",
            "read",
            "--hostname",
            partner,
        ]));
    }
    if let Some(o) = output {
        args.extend(argv(&["--output-format", "json", "--output", o]));
    }
    args
}

/// `burnin_network`: both directions against the partner of
/// `agent_burnin_fio_network_config` (`{"role": "writer"|"reader", "partner": host}`).
pub(crate) async fn fio_network(node: &Value) -> Result<Value> {
    let runtime = info_str(
        node,
        "driver_info",
        "agent_burnin_fio_network_runtime",
        "21600",
    );
    let output = info(node, "driver_info", "agent_burnin_fio_network_outputfile")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let cfg = match info(node, "driver_info", "agent_burnin_fio_network_config") {
        Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| {
            AgentError::InvalidParams(format!("agent_burnin_fio_network_config is not JSON: {e}"))
        })?,
        Some(v) => v.clone(),
        None if info(
            node,
            "driver_info",
            "agent_burnin_fio_network_pairing_backend_url",
        )
        .is_some() =>
        {
            return Err(AgentError::CommandFailed(
                "fio (network): dynamic pairing through a tooz backend is not supported by this \
                 agent; set driver_info agent_burnin_fio_network_config {\"role\": \
                 \"writer\"|\"reader\", \"partner\": \"<host>\"}"
                    .into(),
            ));
        }
        None => {
            return Err(AgentError::CommandFailed(
                "fio (network): dynamic pairing config is missing \
                 agent_burnin_fio_network_pairing_backend_url (and no static \
                 agent_burnin_fio_network_config is set)"
                    .into(),
            ));
        }
    };
    let role = cfg.get("role").and_then(Value::as_str).unwrap_or("");
    let partner = cfg.get("partner").and_then(Value::as_str).unwrap_or("");
    if !matches!(role, "writer" | "reader") {
        return Err(AgentError::CommandFailed(format!(
            "fio (network) found an unknown role: {role}"
        )));
    }
    if partner.is_empty() {
        return Err(AgentError::CommandFailed(
            "fio (network) failed to find partner".into(),
        ));
    }
    let first_writer = role == "writer";
    for writer in [first_writer, !first_writer] {
        let me = if writer { "writer" } else { "reader" };
        let out = output.as_ref().map(|o| format!("{o}.{me}"));
        let args = fio_network_args(writer, &runtime, partner, out.as_deref());
        loop {
            let o = run_tool_status("fio", &args).await?;
            if o.status.success() {
                tracing::info!(report = %o.stdout.trim(), "fio (network) {me} done");
                break;
            }
            // the reader fails with 16 while its partner is not listening yet
            if !writer && o.status.code() == Some(16) {
                tracing::info!("fio (network): reader retrying in 30 seconds ...");
                tokio::time::sleep(Duration::from_secs(30)).await;
                continue;
            }
            return Err(AgentError::CommandFailed(format!(
                "fio (network) failed with error {}: {}",
                o.status,
                o.stderr.trim()
            )));
        }
    }
    Ok(json!({"role": role, "partner": partner}))
}

/// `burnin_gpu`: `gpu_burn` from `agent_burnin_gpu_install_dir`, after checking
/// the number of GPUs when `agent_burnin_gpu_count` is set.
pub(crate) async fn gpu_burn(node: &Value) -> Result<Value> {
    let dir = info_str(
        node,
        "driver_info",
        "agent_burnin_gpu_install_dir",
        "/opt/gpu-burn",
    );
    let timeout = info_str(node, "driver_info", "agent_burnin_gpu_timeout", "86400");
    let memory = info_str(node, "driver_info", "agent_burnin_gpu_memory", "95%");
    let count = info_u64(node, "driver_info", "agent_burnin_gpu_count", 0)?;
    let tool = std::path::Path::new(&dir).join("gpu_burn");
    let run = |args: Vec<String>| {
        let tool = tool.clone();
        let dir = dir.clone();
        async move {
            let out = tokio::process::Command::new(&tool)
                .args(&args)
                .current_dir(&dir)
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true)
                .output()
                .await
                .map_err(|e| {
                    AgentError::CommandFailed(format!(
                        "gpu-burn failed with error {e}: burnin_gpu needs gpu_burn in {dir} \
                         (driver_info agent_burnin_gpu_install_dir)"
                    ))
                })?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if !out.status.success() {
                return Err(AgentError::CommandFailed(format!(
                    "gpu-burn failed with error {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            Ok(text)
        }
    };
    if count > 0 {
        let listed = run(argv(&["-l"])).await?;
        let found = listed.lines().filter(|l| l.starts_with("ID")).count() as u64;
        if found != count {
            return Err(AgentError::CommandFailed(format!(
                "gpu-burn failed to find the correct number of gpus. {found} found but {count} \
                 expected."
            )));
        }
    }
    let out = run(argv(&["-m", &memory, &timeout])).await?;
    if out.contains("FAULTY") {
        return Err(AgentError::CommandFailed(format!(
            "gpu-burn reported a faulty GPU: {}",
            out.trim()
        )));
    }
    Ok(json!({"gpus_checked": count}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stress_ng_as_ipa_calls_it() {
        let node = json!({"driver_info": {"agent_burnin_cpu_timeout": 3, "agent_burnin_vm_vm": 2,
            "agent_burnin_vm_vm-bytes": "10%", "agent_burnin_vm_outputfile": "/var/log/vm.yaml"}});
        assert_eq!(
            stress_ng_args(&node, "cpu"),
            ["--cpu", "0", "--timeout", "3", "--metrics-brief"]
        );
        assert_eq!(
            stress_ng_args(&node, "vm"),
            [
                "--vm",
                "2",
                "--timeout",
                "86400",
                "--vm-bytes",
                "10%",
                "--metrics-brief",
                "--log-file",
                "/var/log/vm.yaml"
            ]
        );
    }

    #[test]
    fn fio_as_ipa_calls_it() {
        let node = json!({"driver_info": {"agent_burnin_fio_disk_loops": 1,
            "agent_burnin_fio_disk_runtime": 5}});
        let a = fio_disk_args(&node, &["/dev/vda".into(), "/dev/vdb".into()]);
        let s = a.join(" ");
        assert!(
            s.starts_with(
                "--rw readwrite --bs 4k --direct 1 --ioengine libaio --iodepth 32 --verify crc32c"
            ),
            "{s}"
        );
        assert!(s.contains("--loops 1 --runtime 5 --time_based"), "{s}");
        assert!(
            s.ends_with("--name /dev/vda --filename /dev/vda --name /dev/vdb --filename /dev/vdb"),
            "{s}"
        );
        assert_eq!(
            fio_network_args(true, "60", "h", Some("/o.writer")).join(" "),
            "--ioengine net --port 9000 --fill_device 1 --group_reporting --gtod_reduce 1 \
             --numjobs 16 --name writer --rw write --runtime 60 --time_based --listen \
             --output-format json --output /o.writer"
        );
        assert!(
            fio_network_args(false, "60", "10.0.0.2", None)
                .join(" ")
                .ends_with("--name reader --rw read --hostname 10.0.0.2")
        );
    }

    #[test]
    fn smart_status_from_smartctl_json() {
        let j = r#"{"ata_smart_data": {"self_test": {"status": {"value": 0,
            "string": "completed without error", "passed": true}}}}"#;
        assert_eq!(smart_status(j).as_deref(), Some("completed without error"));
        assert_eq!(
            smart_status(r#"{"nvme_smart_health_information_log": {}}"#),
            None
        );
        assert_eq!(smart_status("not json"), None);
    }

    #[tokio::test]
    async fn network_burnin_needs_a_partner() {
        let e = fio_network(&json!({"driver_info": {}})).await.unwrap_err();
        assert!(e.to_string().contains("pairing"), "{e}");
        let e = fio_network(&json!({"driver_info": {"agent_burnin_fio_network_config":
            {"role": "sender", "partner": "h"}}}))
        .await
        .unwrap_err();
        assert!(e.to_string().contains("unknown role: sender"), "{e}");
        let e = fio_network(&json!({"driver_info": {"agent_burnin_fio_network_config":
            "{\"role\": \"reader\"}"}}))
        .await
        .unwrap_err();
        assert!(e.to_string().contains("failed to find partner"), "{e}");
    }
}
