//! `ironic lab --conductors N --database URL`: the lab's service as N conductors
//! on one PostgreSQL database, so the high-availability story can be watched on
//! a laptop.
//!
//! The lab process runs the simulated rack and conductor 1 (`ironic-lab-1`, with
//! the API the agents and the `baremetal` CLI talk to). Conductors 2 to N are
//! `ironic serve` processes of their own (`ironic-lab-2`, ...), each with a
//! config file under the lab directory (`conductor-K.toml`), its log
//! (`logs/conductor-K.log`) and its own API. They share the database: the hash
//! ring spreads the nodes over the live conductors, any API accepts any request
//! and hands node actions to the node's owner, and when one is killed
//! (`kill -9 PID`) the others take its nodes over once it missed
//! [`HEARTBEAT_TIMEOUT`] seconds of keep-alives. Restarting it
//! (`ironic --config <lab>/conductor-K.toml serve`) puts it back on the ring.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ironic_core::conductor::Conductor;

use crate::lab::run::LabError;

/// Seconds between the lab conductors' keep-alives (`[conductor]
/// conductor_heartbeat_interval`; `ironic serve` defaults to 10).
pub const HEARTBEAT_INTERVAL: u64 = 2;
/// Seconds without a keep-alive after which a lab conductor is offline and its
/// nodes are taken over (`[conductor] heartbeat_timeout`; Ironic's default is 60).
pub const HEARTBEAT_TIMEOUT: u64 = 10;
/// Seconds between the takeover checks of `active` nodes (`[conductor]
/// sync_local_state_interval`; 180 by default).
pub const SYNC_LOCAL_STATE_INTERVAL: u64 = 30;

/// The host name of lab conductor `k` (1-based).
pub fn host(k: usize) -> String {
    format!("ironic-lab-{k}")
}

/// A conductor process the lab started: `ironic serve` on the lab's database.
#[derive(Debug)]
pub struct LabConductor {
    /// Its host name (`ironic-lab-K`).
    pub host: String,
    /// Its config file; `ironic --config FILE serve` starts it again.
    pub config: PathBuf,
    /// Its output.
    pub log: PathBuf,
    /// Its process id.
    pub pid: u32,
    /// The URL of its API, as it registered it in the conductors table.
    pub url: String,
    child: tokio::process::Child,
}

impl LabConductor {
    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops it as a service manager would: SIGTERM (it finishes what it runs and
    /// unregisters), SIGKILL after 30 s.
    pub async fn stop(mut self) {
        if !self.running() {
            return;
        }
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!(host = %self.host, "conductor did not stop within 30 s; killing it");
            let _ = self.child.kill().await;
        }
    }
}

/// What the extra conductors share with the lab's own.
#[derive(Clone, Debug)]
pub struct Shared<'a> {
    /// The lab directory.
    pub dir: &'a Path,
    /// The PostgreSQL URL.
    pub database: &'a str,
    /// The URL agents call (the lab's API).
    pub api_url: &'a str,
    /// Automated cleaning on `provide`.
    pub automated_clean: bool,
}

/// The config file of lab conductor `k`, listening on `listen`.
pub fn config_file(shared: &Shared<'_>, k: usize, listen: SocketAddr) -> String {
    let mut api = toml::Table::new();
    api.insert("listen".into(), listen.to_string().into());
    let mut storage = toml::Table::new();
    storage.insert("backend".into(), "postgres".into());
    storage.insert("url".into(), shared.database.into());
    storage.insert(
        "data_dir".into(),
        shared
            .dir
            .join(format!("conductor-{k}"))
            .display()
            .to_string()
            .into(),
    );
    let mut conductor = toml::Table::new();
    conductor.insert("host".into(), host(k).into());
    conductor.insert("api_url".into(), shared.api_url.into());
    conductor.insert("automated_clean".into(), shared.automated_clean.into());
    conductor.insert(
        "conductor_heartbeat_interval".into(),
        (HEARTBEAT_INTERVAL as i64).into(),
    );
    conductor.insert(
        "heartbeat_timeout".into(),
        (HEARTBEAT_TIMEOUT as i64).into(),
    );
    conductor.insert(
        "sync_local_state_interval".into(),
        (SYNC_LOCAL_STATE_INTERVAL as i64).into(),
    );
    let mut fake = toml::Table::new();
    fake.insert("enabled".into(), true.into());
    let mut doc = toml::Table::new();
    doc.insert("api".into(), api.into());
    doc.insert("storage".into(), storage.into());
    doc.insert("conductor".into(), conductor.into());
    doc.insert("fake".into(), fake.into());
    format!(
        "# ironic lab conductor {k}: `ironic --config <this file> serve` starts it again.\n{}",
        toml::to_string(&doc).unwrap_or_default()
    )
}

/// Starts lab conductor `k` (`binary serve`) and waits until it registered in the
/// database (as `conductor` sees it) with the URL of its API.
pub async fn spawn(
    binary: &Path,
    shared: &Shared<'_>,
    k: usize,
    listen: SocketAddr,
    conductor: &Conductor,
) -> Result<LabConductor, LabError> {
    let io = |what: String| move |source| LabError::Io { what, source };
    let config = shared.dir.join(format!("conductor-{k}.toml"));
    std::fs::write(&config, config_file(shared, k, listen))
        .map_err(io(format!("writing {}", config.display())))?;
    let logs = shared.dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(io(format!("creating {}", logs.display())))?;
    let log = logs.join(format!("conductor-{k}.log"));
    let out = std::fs::File::create(&log).map_err(io(format!("creating {}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(io(format!("opening {}", log.display())))?;
    let mut cmd = tokio::process::Command::new(binary);
    cmd.arg("--config")
        .arg(&config)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true);
    // The lab's IRONIC__* overrides are not the conductors' (their file is).
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("IRONIC__") {
            cmd.env_remove(k);
        }
    }
    let child = cmd
        .spawn()
        .map_err(io(format!("starting {} serve", binary.display())))?;
    let mut c = LabConductor {
        host: host(k),
        config,
        log,
        pid: child.id().unwrap_or_default(),
        url: String::new(),
        child,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if !c.running() {
            return Err(LabError::Missing(format!(
                "conductor {} exited at start; its log ({}) ends with:\n{}",
                c.host,
                c.log.display(),
                tail(&c.log, 20)
            )));
        }
        let url = conductor
            .list_conductors()
            .await
            .map_err(|e| LabError::Conductor(e.to_string()))?
            .into_iter()
            .find(|r| r.hostname == c.host && r.alive)
            .and_then(|r| r.url);
        if let Some(url) = url {
            c.url = url;
            return Ok(c);
        }
        if Instant::now() > deadline {
            let log = tail(&c.log, 20);
            c.stop().await;
            return Err(LabError::Missing(format!(
                "conductor {} did not register within 60 s; its log ends with:\n{log}",
                host(k)
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lab_conductor_config_is_a_valid_ironic_config() {
        let dir = PathBuf::from("/tmp/lab \"quoted\"");
        let shared = Shared {
            dir: &dir,
            database: "postgres://lab@127.0.0.1:5432/ironic_lab",
            api_url: "http://127.0.0.1:6385",
            automated_clean: false,
        };
        let text = config_file(&shared, 3, "127.0.0.1:6387".parse().unwrap());
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("conductor-3.toml");
        std::fs::write(&file, &text).unwrap();
        let cfg = crate::config::Config::load(Some(&file), Vec::new()).expect("ironic reads it");
        assert_eq!(cfg.api.listen, "127.0.0.1:6387".parse().unwrap());
        assert_eq!(cfg.storage.backend, crate::config::Backend::Postgres);
        assert_eq!(
            cfg.storage.url.as_deref(),
            Some("postgres://lab@127.0.0.1:5432/ironic_lab")
        );
        assert_eq!(cfg.storage.data_dir, dir.join("conductor-3"));
        assert_eq!(cfg.conductor.host.as_deref(), Some("ironic-lab-3"));
        assert_eq!(cfg.conductor.heartbeat_timeout, HEARTBEAT_TIMEOUT);
        assert!(!cfg.conductor.automated_clean);
        assert!(cfg.fake.enabled);
    }
}
