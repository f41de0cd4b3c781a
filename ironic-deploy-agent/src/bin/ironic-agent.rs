//! `ironic-agent`: the agent that runs in the deploy ramdisk. Reads IPA's kernel
//! parameters from `/proc/cmdline`; flags override them (for running on a host
//! against a file disk: `--root-device`, `--listen`, `--power-off exit`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ironic_deploy_agent::agent::{Agent, AgentConfig, PowerOffMode, config::parse_cmdline};

#[derive(Debug, Parser)]
#[command(
    name = "ironic-agent",
    version,
    about = "ironic-rs deploy agent (speaks IPA's protocol)",
    args_override_self = true
)]
struct Args {
    /// Kernel command line to read IPA parameters from.
    #[arg(long, default_value = "/proc/cmdline")]
    cmdline: PathBuf,
    /// Ironic API URL(s) (ipa-api-url), comma separated.
    #[arg(long)]
    api_url: Option<String>,
    /// MAC to look the node up with (repeatable; BOOTIF comes first).
    #[arg(long = "mac")]
    macs: Vec<String>,
    /// Node UUID to look up with.
    #[arg(long)]
    node_uuid: Option<String>,
    /// Post the inventory there first (ipa-inspection-callback-url).
    #[arg(long)]
    inspection_callback_url: Option<String>,
    /// Address of the command API (default 0.0.0.0:9999).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Host name or IP to advertise in callback_url.
    #[arg(long)]
    advertise_host: Option<String>,
    /// Port to advertise in callback_url (default: the one it listens on).
    #[arg(long)]
    advertise_port: Option<u16>,
    /// Serve the command API over TLS with a self-signed certificate (the
    /// default when Ironic's API is 1.68 or newer, as IPA does).
    #[arg(long, conflicts_with = "no_auto_tls")]
    auto_tls: bool,
    /// Serve the command API over plain HTTP (`ipa-enable-auto-tls=0`).
    #[arg(long)]
    no_auto_tls: bool,
    /// Use this device or file as the only disk (and the root device).
    #[arg(long)]
    root_device: Option<PathBuf>,
    /// What standby.power_off does: `system` (poweroff -f) or `exit`.
    #[arg(long, default_value = "system")]
    power_off: String,
    /// Directory for the agent's state (its token survives a restart there).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Heartbeat interval in seconds (default: from lookup, 0.3-0.6 x heartbeat_timeout).
    #[arg(long)]
    heartbeat_interval: Option<f64>,
    /// Minimum spacing of forced heartbeats in seconds (default 5).
    #[arg(long)]
    heartbeat_min_interval: Option<f64>,
    /// While an image is written, heartbeat this often (seconds) when the write
    /// moved on, so Ironic records its progress (ipa-progress-interval; default
    /// 15; 0: only the regular heartbeats).
    #[arg(long)]
    progress_interval: Option<f64>,
    /// Lookup timeout in seconds.
    #[arg(long)]
    lookup_timeout: Option<f64>,
    /// Image download retries.
    #[arg(long)]
    download_retries: Option<u32>,
    /// Do not read written images back to verify them.
    #[arg(long)]
    no_verify: bool,
    /// Exit when process PID stops being this agent's parent: an agent started by a
    /// simulator (`ironic lab`) ends with it, even when it is killed with SIGKILL.
    #[arg(long, value_name = "PID")]
    parent_pid: Option<u32>,
    /// Apply this network_data.json (static addresses, VLANs, bonds, routes,
    /// DNS; see `ironic_deploy_agent::agent::netconfig`), print the interfaces
    /// it wants DHCP on (one a line) and exit; the ramdisk's /init runs it with
    /// the file of the node's virtual media ISO.
    #[arg(long, value_name = "FILE")]
    apply_network_data: Option<PathBuf>,
    /// /sys root (tests).
    #[arg(long, hide = true)]
    sys_root: Option<PathBuf>,
    /// /proc root (tests).
    #[arg(long, hide = true)]
    proc_root: Option<PathBuf>,
}

fn config(a: Args) -> Result<AgentConfig, String> {
    let mut c = AgentConfig::default();
    if let Ok(line) = std::fs::read_to_string(&a.cmdline) {
        c.apply_cmdline(&parse_cmdline(&line))
            .map_err(|e| e.to_string())?;
    }
    c.cmdline_path = Some(a.cmdline.clone());
    if let Some(u) = a.api_url {
        c.api_urls = u
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
    }
    for m in a.macs {
        c.macs.push(m.parse().map_err(|e| format!("--mac: {e}"))?);
    }
    let secs = |v: f64, name: &str| {
        Duration::try_from_secs_f64(v).map_err(|_| format!("--{name}: not a number of seconds"))
    };
    c.node_uuid = a.node_uuid.or(c.node_uuid);
    c.inspection_callback_url = a.inspection_callback_url.or(c.inspection_callback_url);
    if let Some(l) = a.listen {
        c.listen = l;
    }
    c.advertise_host = a.advertise_host.or(c.advertise_host);
    c.advertise_port = a.advertise_port.or(c.advertise_port);
    if a.auto_tls {
        c.auto_tls = true;
    }
    if a.no_auto_tls {
        c.auto_tls = false;
    }
    c.root_device = a.root_device;
    c.power_off = match a.power_off.as_str() {
        "system" => PowerOffMode::System,
        "exit" => PowerOffMode::Exit,
        other => return Err(format!("--power-off {other:?}: expected system or exit")),
    };
    if let Some(d) = a.state_dir {
        c.state_dir = d;
    }
    if let Some(v) = a.heartbeat_interval {
        c.heartbeat_interval = Some(secs(v, "heartbeat-interval")?);
    }
    if let Some(v) = a.heartbeat_min_interval {
        c.heartbeat_min_interval = secs(v, "heartbeat-min-interval")?;
    }
    if let Some(v) = a.progress_interval {
        c.progress_interval = secs(v, "progress-interval")?;
    }
    if let Some(v) = a.lookup_timeout {
        c.lookup_timeout = secs(v, "lookup-timeout")?;
    }
    if let Some(r) = a.download_retries {
        c.download_retries = r;
    }
    c.verify_writes = !a.no_verify;
    if let Some(p) = a.sys_root {
        c.sys_root = p;
    }
    if let Some(p) = a.proc_root {
        c.proc_root = p;
    }
    Ok(c)
}

/// Checks twice a second that `expected` is still the parent; exits when it is not
/// (the parent died and this process was handed to init or a subreaper). Polling
/// `getppid` is exact where `PR_SET_PDEATHSIG` is not: that one fires when the
/// parent's spawning *thread* exits, which a thread-pool runtime does at will.
fn exit_with_parent(expected: u32) {
    let parent = || rustix::process::Pid::as_raw(rustix::process::getppid());
    if i64::from(parent()) != i64::from(expected) {
        eprintln!("ironic-agent: parent {expected} is gone already; exiting");
        std::process::exit(0);
    }
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(500));
            if i64::from(parent()) != i64::from(expected) {
                tracing::warn!(
                    parent = expected,
                    "the process that started this agent is gone: exiting"
                );
                std::process::exit(0);
            }
        }
    });
}

/// `--apply-network-data`: the exit status.
fn apply_network_data(file: &std::path::Path, sys: Option<&std::path::Path>) -> i32 {
    let doc = match std::fs::read(file)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ironic-agent: {}: {e}", file.display());
            return 2;
        }
    };
    let sys = sys.unwrap_or(std::path::Path::new("/sys"));
    match ironic_deploy_agent::agent::netconfig::apply(
        &doc,
        sys,
        std::path::Path::new("/etc/resolv.conf"),
        Duration::from_secs(15),
    ) {
        Ok(plan) => {
            eprintln!(
                "ironic-agent: {}: static addresses on [{}], DHCP on [{}], DNS [{}]",
                file.display(),
                plan.configured.join(" "),
                plan.dhcp.join(" "),
                plan.dns.join(" ")
            );
            for d in plan.dhcp {
                println!("{d}");
            }
            0
        }
        Err(e) => {
            eprintln!("ironic-agent: {}: {e}", file.display());
            1
        }
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Some(file) = &args.apply_network_data {
        std::process::exit(apply_network_data(file, args.sys_root.as_deref()));
    }
    if let Some(pid) = args.parent_pid {
        exit_with_parent(pid);
    }
    let cfg = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ironic-agent: {e}");
            std::process::exit(2);
        }
    };
    let agent = match Agent::bind(cfg).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("ironic-agent: {e}");
            std::process::exit(1);
        }
    };
    // tests read this line to find the port
    println!("LISTENING {}", agent.addr);
    if let Err(e) = agent.run().await {
        tracing::error!(error = %e, "agent stopped");
        std::process::exit(1);
    }
}
