//! The servers under test: `ironic` (this workspace) and the real Ironic.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server under test, ended (SIGTERM, then SIGKILL after 15 s) when dropped.
pub struct Server {
    /// "ironic-rs" or "Ironic 39".
    pub name: &'static str,
    /// The server process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its data directory (database, log, config), removed on drop.
    pub dir: tempfile::TempDir,
}

impl Server {
    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// The server's log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Send SIGTERM and wait (at most `limit`) for the process to exit; returns
    /// the time it took, or `None` when it was still running at `limit` (it is
    /// then killed).
    pub fn terminate(&mut self, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        while started.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if self.terminate(Duration::from_secs(15)).is_none() {
            eprintln!("{} did not stop within 15 s of SIGTERM: killed", self.name);
        }
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(16385)
}

fn wait_up(url: &str, child: &mut Child, what: &str) -> Result<(), String> {
    let addr = url.trim_start_matches("http://").to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return Err(format!("{what} exited early with {s}"));
        }
        if std::net::TcpStream::connect(&addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{what} did not listen on {addr} within 120 s"))
}

/// Start `ironic` (this workspace's binary at `bin`) on a free loopback port with a
/// fresh data directory (SQLite unless `env` says otherwise) and the extra
/// environment `env` (`IRONIC__SECTION__KEY` settings).
pub fn start_ours(bin: &Path, env: &[(&str, &str)]) -> Result<Server, String> {
    if !bin.exists() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p ironic-standalone --bin ironic` or pass --ours",
            bin.display()
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("server.log")).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("start {}: {e}", bin.display()))?;
    wait_up(&url, &mut child, "ironic-rs")?;
    Ok(Server {
        name: "ironic-rs",
        child,
        url,
        dir,
    })
}

/// Start the real Ironic from the venv `venv` (`pip install 'ironic==39.*'`):
/// API and conductor in one process, noauth unless `extra_default` says otherwise
/// (lines added to `[DEFAULT]`), fake-hardware, SQLite, `rpc_transport = none`,
/// on a free loopback port.
pub fn start_real(venv: &Path, extra_default: &str) -> Result<Server, String> {
    let ironic = venv.join("bin/ironic");
    let dbsync = venv.join("bin/ironic-dbsync");
    if !ironic.exists() {
        return Err(format!(
            "{} not found: python3 -m venv {v} && {v}/bin/pip install 'ironic==39.*' \
             (scripts/setup-test-deps.sh makes <checkout>/.venv-ironic)",
            ironic.display(),
            v = venv.display()
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let port = free_port();
    let d = dir.path().display();
    let auth = if extra_default.contains("auth_strategy") {
        ""
    } else {
        "auth_strategy = noauth\n"
    };
    let conf = format!(
        "[DEFAULT]\n{auth}{extra_default}\nrpc_transport = none\nhost = bench-conductor\n\
         enabled_hardware_types = fake-hardware\nenabled_bios_interfaces = fake\nenabled_boot_interfaces = fake\n\
         enabled_console_interfaces = fake\nenabled_deploy_interfaces = fake\nenabled_firmware_interfaces = fake\n\
         enabled_inspect_interfaces = fake\nenabled_management_interfaces = fake\nenabled_network_interfaces = noop\n\
         enabled_power_interfaces = fake\nenabled_raid_interfaces = fake\nenabled_rescue_interfaces = fake\n\
         enabled_storage_interfaces = noop\nenabled_vendor_interfaces = fake\n\
         [api]\nhost_ip = 127.0.0.1\nport = {port}\n\
         [database]\nconnection = sqlite:///{d}/ironic.sqlite\n\
         [conductor]\nheartbeat_timeout = 86400\n[dhcp]\ndhcp_provider = none\n\
         [oslo_concurrency]\nlock_path = {d}/locks\n"
    );
    let conf_path = dir.path().join("ironic.conf");
    std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    let st = Command::new(&dbsync)
        .arg("--config-file")
        .arg(&conf_path)
        .arg("create_schema")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("ironic-dbsync: {e}"))?;
    if !st.success() {
        return Err(format!("ironic-dbsync create_schema failed: {st}"));
    }
    let log = std::fs::File::create(dir.path().join("server.log")).map_err(|e| e.to_string())?;
    let mut child = Command::new(&ironic)
        .arg("--config-file")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("start ironic: {e}"))?;
    let url = format!("http://127.0.0.1:{port}");
    wait_up(&url, &mut child, "Ironic")?;
    Ok(Server {
        name: "Ironic 39",
        child,
        url,
        dir,
    })
}

/// `pid` and its descendants.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat"))
                && let Some(rest) = stat.rsplit(')').next()
                && let Some(pp) = rest
                    .split_whitespace()
                    .nth(1)
                    .and_then(|x| x.parse::<u32>().ok())
            {
                parents.push((p, pp));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Peak RSS in KiB summed over `pid` and its descendants (`VmHWM`).
pub fn peak_rss_kib(pid: u32) -> u64 {
    process_tree(pid)
        .into_iter()
        .map(|p| status_kib(p, "VmHWM:"))
        .sum()
}

/// Current RSS in KiB summed over `pid` and its descendants (`VmRSS`).
pub fn rss_kib(pid: u32) -> u64 {
    process_tree(pid)
        .into_iter()
        .map(|p| status_kib(p, "VmRSS:"))
        .sum()
}

/// CPU time (user + system) spent so far by `pid` and its live descendants.
pub fn cpu_time(pid: u32) -> Duration {
    // /proc reports clock ticks of USER_HZ, 100 on Linux.
    let ticks = 100.0_f64;
    let mut total = 0.0;
    for p in process_tree(pid) {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat"))
            && let Some(rest) = stat.rsplit(')').next()
        {
            // Fields after the name: state(0) ppid(1) ... utime(11) stime(12).
            let f: Vec<&str> = rest.split_whitespace().collect();
            let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            total += (t(11) + t(12)) / ticks;
        }
    }
    Duration::from_secs_f64(total)
}

/// The `uptime` line (load averages), to print beside figures taken on a shared
/// machine.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| {
            let f: Vec<&str> = s.split_whitespace().take(3).collect();
            format!("load average {}", f.join(", "))
        })
        .unwrap_or_default()
}

/// The `q`-quantile (0..=1) of `samples` (sorted in place).
pub fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let i = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[i.min(samples.len() - 1)]
}
