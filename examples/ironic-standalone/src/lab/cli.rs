//! The `ironic lab` subcommand: arguments, progress display, and the run until Ctrl-C.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ironic_core::NodeId;
use ironic_core::conductor::{Conductor, NodeEvent};
use ironic_core::store::NodeQuery;

use crate::lab::images;
use crate::lab::model::Faults;
use crate::lab::rack::BmcKind;
use crate::lab::run::{Lab, LabError, LabOptions};
use crate::progress::Progress;

/// `ironic lab`: the service plus simulated servers on loopback.
#[derive(clap::Args, Debug, Clone)]
pub struct LabArgs {
    /// Number of simulated servers.
    #[arg(long, default_value_t = 4)]
    pub servers: usize,
    /// Share of servers with a Redfish BMC (the rest speak IPMI), 0.0 to 1.0.
    #[arg(long, default_value_t = 0.5, value_parser = parse_ratio)]
    pub redfish_ratio: f64,
    /// Inject BMC faults into one server: `lab-N:FAULTS` with FAULTS a comma list of
    /// `slow[=DURATION]`, `flaky[=SHARE]`, `wrong-password`, `stuck` (repeatable).
    #[arg(long = "fault", value_name = "SERVER:FAULTS", value_parser = parse_fault)]
    pub faults: Vec<(usize, Faults)>,
    /// Skip automated cleaning on `provide` (nodes become available without booting
    /// the agent once).
    #[arg(long)]
    pub no_clean: bool,
    /// Seconds to wait for every node to become available.
    #[arg(long, default_value_t = 600)]
    pub ready_timeout: u64,
    /// Plug every simulated NIC into a switch and isolate the nodes with the
    /// `switch` network interface: `ovs` creates an Open vSwitch bridge (needs a
    /// running Open vSwitch) whose port VLANs follow each node's state.
    #[arg(long, value_parser = ["ovs"])]
    pub switch: Option<String>,
    /// The OVSDB address for `--switch ovs`.
    #[arg(long, default_value = crate::lab::switch::DEFAULT_OVSDB)]
    pub ovsdb: String,
    /// Run the service as N conductors on the PostgreSQL database of `--database`:
    /// this process is conductor 1, the others are `ironic serve` processes
    /// (kill one to watch its nodes taken over).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub conductors: usize,
    /// Keep the service's data in this PostgreSQL database
    /// (`postgres://USER@HOST:PORT/DB`, holding no nodes) instead of in memory.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| format!("{s:?}: expected a share from 0.0 to 1.0"))
}

fn parse_fault(s: &str) -> Result<(usize, Faults), String> {
    let (server, faults) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected SERVER:FAULTS, e.g. lab-1:slow=200ms,flaky=0.2"))?;
    let index = server
        .trim()
        .trim_start_matches("lab-")
        .parse::<usize>()
        .map_err(|_| format!("{server:?}: expected a server name such as lab-1"))?;
    Ok((index, Faults::parse(faults)?))
}

/// The options of a run: `--listen` is the API address (default 127.0.0.1:6385),
/// `--data-dir` the lab directory (default `./ironic-lab`).
pub fn options(
    args: &LabArgs,
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
) -> Result<LabOptions, LabError> {
    let mut opts = LabOptions::new(data_dir.unwrap_or_else(|| PathBuf::from("ironic-lab")));
    if let Some(l) = listen {
        opts.api_listen = l;
    }
    opts.servers = args.servers;
    opts.redfish_ratio = args.redfish_ratio;
    opts.automated_clean = !args.no_clean;
    opts.ready_timeout = Duration::from_secs(args.ready_timeout);
    for (i, _) in &args.faults {
        if *i >= args.servers {
            return Err(LabError::Missing(format!(
                "--fault lab-{i}: there are only {} servers (lab-0 to lab-{})",
                args.servers,
                args.servers.saturating_sub(1)
            )));
        }
    }
    opts.faults = args.faults.clone();
    opts.conductors = args.conductors;
    opts.database = args.database.clone();
    if args.switch.as_deref() == Some("ovs") {
        opts.ovs = Some(args.ovsdb.clone());
    }
    Ok(opts)
}

/// Logs every provision and power state change of the lab's nodes as it happens.
fn spawn_progress(
    conductor: &Conductor,
    names: HashMap<NodeId, String>,
) -> tokio::task::JoinHandle<()> {
    let mut rx = conductor.subscribe();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(NodeEvent::ProvisionStateChanged {
                    node,
                    from,
                    to,
                    last_error,
                    ..
                }) => {
                    let name = names.get(&node).map(String::as_str).unwrap_or("?");
                    match last_error {
                        Some(e) if to.is_failure() => {
                            tracing::warn!(node = %name, %from, %to, error = %e, "provision state")
                        }
                        _ => tracing::info!(node = %name, %from, %to, "provision state"),
                    }
                }
                Ok(NodeEvent::PowerStateChanged { node, to, .. }) => {
                    let name = names.get(&node).map(String::as_str).unwrap_or("?");
                    tracing::info!(node = %name, to = ?to, "power state");
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "progress display fell behind");
                }
                Err(_) => break,
            }
        }
    })
}

/// The next steps, as shown once the lab is up.
pub fn instructions(lab: &Lab) -> String {
    let api = format!("http://{}", lab.api.addr());
    let image = lab.file_server.url(images::TEST_IMAGE);
    let node = lab
        .rack
        .servers
        .iter()
        .zip(&lab.plans)
        .find(|(_, p)| p.uses_bmc)
        .or_else(|| lab.rack.servers.iter().zip(&lab.plans).next());
    let (name, disk) = node
        .map(|(s, _)| (s.name().to_string(), s.server.disk().display().to_string()))
        .unwrap_or_default();
    let redfish = lab
        .rack
        .servers
        .iter()
        .filter(|s| s.kind == BmcKind::Redfish)
        .count();
    let switch = match &lab.bridge {
        Some(b) => {
            let port = lab
                .rack
                .servers
                .iter()
                .position(|s| s.name() == name)
                .and_then(|i| b.ports.get(i))
                .and_then(|p| p.first())
                .cloned()
                .unwrap_or_default();
            format!(
                "\n\
                 Switch: Open vSwitch bridge {br} ({db}); each NIC is a port of it. Networks:\n\
                 \x20 provisioning VLAN {pv}, cleaning VLAN {cv}, {tenants}; idle ports are parked (tag {parked}).\n\
                 \x20 ovs-vsctl get Port {port} tag      # {name}'s first NIC\n\
                 \x20 baremetal node vif attach {name} tenant-a   # before deploying: its tenant network\n",
                br = b.name,
                db = b.db,
                pv = crate::lab::switch::PROVISIONING_VLAN,
                cv = crate::lab::switch::CLEANING_VLAN,
                tenants = crate::lab::switch::TENANT_NETWORKS
                    .iter()
                    .map(|(n, v)| format!("{n} VLAN {v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                parked = crate::lab::switch::PARKED_VLAN,
            )
        }
        None => String::new(),
    };
    let conductors = if lab.conductors.is_empty() {
        String::new()
    } else {
        let mut s = format!(
            "\n\
             Conductors on one PostgreSQL database (offline after {t} s without a keep-alive):\n\
             \x20 {me} this process, API {api}\n",
            t = crate::lab::conductors::HEARTBEAT_TIMEOUT,
            me = crate::lab::conductors::host(1),
        );
        for c in &lab.conductors {
            s.push_str(&format!(
                "\x20 {} pid {}, API {}, log {}\n",
                c.host,
                c.pid,
                c.url,
                c.log.display()
            ));
        }
        if let Some(c) = lab.conductors.first() {
            s.push_str(&format!(
                "\x20 baremetal conductor list; baremetal node list --fields name provision_state conductor\n\
                 \x20 kill -9 {pid}      # its nodes get a new conductor within {t} s\n\
                 \x20 ironic --config {cfg} serve   # it comes back\n",
                pid = c.pid,
                t = crate::lab::conductors::HEARTBEAT_TIMEOUT + crate::lab::conductors::HEARTBEAT_INTERVAL,
                cfg = c.config.display(),
            ));
        }
        s
    };
    format!(
        "\n\
         ironic lab is up: {n} simulated servers ({redfish} Redfish, {ipmi} IPMI), Ironic API at {api}\n\
         \n\
         \x20 export OS_ENDPOINT={api} OS_AUTH_TYPE=none\n\
         \x20 baremetal node list\n\
         \x20 baremetal node set {name} --instance-info image_source={image} \\\n\
         \x20     --instance-info image_checksum={sha} --instance-info image_disk_format=raw\n\
         \x20 baremetal node deploy {name} --wait 300\n\
         \x20 dd if={disk} bs=1M skip=1 count=1 status=none | head -c {mlen}; echo   # the image's marker\n\
         {switch}\
         {conductors}\
         \n\
         Agent logs: {logs}. Ctrl-C stops everything.\n",
        n = lab.rack.servers.len(),
        ipmi = lab.rack.servers.len() - redfish,
        sha = lab.files.image_sha256,
        mlen = images::IMAGE_MARKER.len(),
        logs = lab
            .files
            .dir
            .parent()
            .map(|d| d.join("logs"))
            .unwrap_or_default()
            .display(),
    )
}

/// Runs the lab until `shutdown` resolves (Ctrl-C), then stops everything it started.
pub async fn run(opts: LabOptions, shutdown: impl Future<Output = ()>) -> Result<(), LabError> {
    let status = Progress::stderr("ironic lab");
    status.step(&format!(
        "starting {} simulated servers, their BMCs and the conductor",
        opts.servers
    ));
    let lab = Lab::start(&opts).await;
    status.finish();
    let lab = lab?;
    let names: HashMap<NodeId, String> = lab
        .conductor
        .list_nodes(&NodeQuery::default())
        .await
        .map_err(|e| LabError::Conductor(e.to_string()))?
        .into_iter()
        .map(|n| (n.uuid, n.name.unwrap_or_default()))
        .collect();
    let progress = spawn_progress(&lab.conductor, names);
    tokio::pin!(shutdown);
    let failures = tokio::select! {
        f = lab.make_available_reporting(opts.ready_timeout, &status) => f,
        _ = &mut shutdown => {
            tracing::info!("interrupted while bringing the lab up; stopping");
            progress.abort();
            lab.shutdown().await;
            return Ok(());
        }
    };
    for (name, why) in &failures {
        tracing::error!(node = %name, "did not become available: {why}");
    }
    println!("{}", instructions(&lab));
    shutdown.await;
    tracing::info!("stopping the lab");
    progress.abort();
    lab.shutdown().await;
    tracing::info!("lab stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_arguments_parse_or_explain() {
        let (i, f) = parse_fault("lab-2:slow=100ms,stuck").unwrap();
        assert_eq!(i, 2);
        assert!(f.stuck);
        assert_eq!(parse_fault("1:wrong-password").unwrap().0, 1);
        assert!(parse_fault("lab-x:stuck").is_err());
        assert!(parse_fault("stuck").unwrap_err().contains("SERVER:FAULTS"));
        assert!(
            parse_fault("lab-1:melt")
                .unwrap_err()
                .contains("unknown fault")
        );
        assert!(parse_ratio("1.5").is_err());
        assert_eq!(parse_ratio("0.25").unwrap(), 0.25);
    }
}
