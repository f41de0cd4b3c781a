//! sushy-emulator (PyPI `sushy-tools`) with its fake driver and one system or
//! several, on a free loopback port, killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::pip_tool;

/// A running sushy-emulator.
pub struct Sushy {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its stdout and stderr.
    pub log: PathBuf,
}

impl Drop for Sushy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sushy {
    /// Start it with its config, state and log under `dir`, one powered-off fake
    /// system `uuid` named `name` with one NIC `mac`; what it downloads (virtual
    /// media) goes to `tmp`. Waits until it accepts connections.
    pub fn start(dir: &Path, tmp: &Path, uuid: &str, name: &str, mac: &str) -> Sushy {
        Self::start_systems(dir, tmp, &[(uuid, name, mac)])
    }

    /// As [`Sushy::start`] with several powered-off systems, each
    /// `(uuid, name, mac)`.
    pub fn start_systems(dir: &Path, tmp: &Path, systems: &[(&str, &str, &str)]) -> Sushy {
        let systems: Vec<String> = systems
            .iter()
            .map(|(uuid, name, mac)| {
                format!(
                    "{{'uuid': {uuid:?}, 'name': {name:?}, 'power_state': 'Off', 'nics': [{{'mac': {mac:?}, 'ip': '10.9.0.10'}}]}}"
                )
            })
            .collect();
        let bin = pip_tool("sushy-emulator", "sushy-tools");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join("emulator.conf");
        std::fs::write(
            &conf,
            format!(
                "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\nSUSHY_EMULATOR_LISTEN_PORT = {port}\n\
                 SUSHY_EMULATOR_STATE_DIR = {:?}\nSUSHY_EMULATOR_FAKE_DRIVER = True\n\
                 SUSHY_EMULATOR_FAKE_SYSTEMS = [{}]\n",
                dir.join("state").display().to_string(),
                systems.join(", ")
            ),
        )
        .unwrap();
        let log = dir.join("emulator.log");
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(&bin)
            .arg("--config")
            .arg(&conf)
            .env("TMPDIR", tmp)
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let s = Sushy {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sushy-emulator did not start: {}",
                std::fs::read_to_string(&s.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }
}
