//! `ironic lab`: the service plus simulated servers come up and every node reaches
//! `available`, with whatever drivers this build has; the binary stops everything on
//! SIGINT.

use std::time::Duration;

use ironic_core::ProvisionState;
use ironic_core::store::NodeQuery;
use ironic_standalone::lab::rack::BmcKind;
use ironic_standalone::lab::run::{Lab, LabOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_servers_become_available() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = LabOptions::new(dir.path().to_path_buf());
    opts.api_listen = "127.0.0.1:0".parse().unwrap();
    opts.servers = 4;
    opts.ready_timeout = Duration::from_secs(300);
    let lab = Lab::start(&opts).await.unwrap();
    assert_eq!(lab.rack.servers.len(), 4);
    let kinds: Vec<_> = lab.rack.servers.iter().map(|s| s.kind).collect();
    assert_eq!(kinds.iter().filter(|k| **k == BmcKind::Redfish).count(), 2);

    let failures = lab.make_available(opts.ready_timeout).await;
    if !failures.is_empty() {
        // Say why: each failed server's agent output and what the conductor recorded.
        let mut why = format!("{failures:?}");
        for (name, _) in &failures {
            let log =
                std::fs::read_to_string(dir.path().join("logs").join(format!("{name}-agent.log")))
                    .unwrap_or_else(|e| format!("(no agent log: {e})"));
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let node = lab
                .conductor
                .get_node(&ironic_core::Ident::Name(name.clone()))
                .await;
            why.push_str(&format!(
                "\n--- {name}: node {:?}\n--- agent log (last 40 lines, newest first):\n{}",
                node.map(|n| (n.provision_state, n.power_state, n.driver_internal_info)),
                tail.join("\n")
            ));
        }
        panic!("{why}");
    }
    let nodes = lab
        .conductor
        .list_nodes(&NodeQuery::default())
        .await
        .unwrap();
    assert_eq!(nodes.len(), 4);
    for n in &nodes {
        assert_eq!(
            n.provision_state,
            ProvisionState::Available,
            "{}",
            n.name.as_deref().unwrap_or("?")
        );
        assert!(n.last_error.is_none(), "{:?}", n.last_error);
    }
    // Nodes enrolled with a real driver point at their simulated BMC.
    for (s, plan) in lab.rack.servers.iter().zip(&lab.plans) {
        let node = nodes
            .iter()
            .find(|n| n.name.as_deref() == Some(s.name()))
            .unwrap();
        assert_eq!(node.driver, plan.driver);
        if plan.uses_bmc {
            let info = node.driver_info.as_map();
            let addr = info
                .get("redfish_address")
                .or(info.get("ipmi_address"))
                .unwrap();
            assert!(addr.as_str().unwrap().contains("127.0.0.1"));
        }
    }
    // The API answers with the lab's nodes.
    let body: serde_json::Value = reqwest::get(format!("http://{}/v1/nodes", lab.api.addr()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["nodes"].as_array().unwrap().len(), 4);
    lab.shutdown().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_binary_comes_up_and_stops_on_sigint() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ironic"))
        .args([
            "lab",
            "--servers",
            "2",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    let ready = tokio::time::timeout(Duration::from_secs(300), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            banner.push_str(&line);
            banner.push('\n');
            if line.contains("Ctrl-C stops everything") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    let log = || std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
    assert!(ready, "no banner:\n{banner}\n{}", log());
    assert!(banner.contains("2 simulated servers"), "{banner}");
    assert!(banner.contains("baremetal node deploy"), "{banner}");
    assert!(dir.path().join("images/lab-image.raw").is_file());
    // stderr is a file: progress as plain lines, the count at its end.
    let stderr = log();
    assert!(
        stderr.contains("ironic lab: starting 2 simulated servers")
            && stderr.contains("ironic lab: nodes available (manage, then provide: cleaning): 2/2"),
        "{stderr}"
    );
    let pid = child.id().unwrap() as i32;
    // SIGINT, as Ctrl-C sends.
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}
