//! The real OpenStack Ironic (PyPI `ironic` 39, API + conductor in one `ironic`
//! process, SQLite, noauth), started on a free loopback port as a yardstick for
//! the parity tests: fake-hardware only ([`RealIronic::start`]), or with the
//! `redfish` hardware type and the interfaces Metal3 uses as well
//! ([`RealIronic::start_redfish`]).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running real Ironic, killed on drop.
pub struct RealIronic {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The conductor's host name.
    pub host: String,
    dir: tempfile::TempDir,
}

/// The venv holding PyPI `ironic`: `$IRONIC_REAL_VENV`, else `.venv-ironic` at the
/// workspace root (made by scripts/setup-test-deps.sh).
pub fn venv() -> PathBuf {
    let v = std::env::var_os("IRONIC_REAL_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv-ironic"))
        });
    if !v.join("bin/ironic").exists() {
        panic!(
            "this test compares the API with the real Ironic 39 and needs PyPI `ironic` in {}: run \
             scripts/setup-test-deps.sh (it installs */test-deps/pip-ironic.txt into .venv-ironic), \
             or `python3 -m venv /tmp/vi && /tmp/vi/bin/pip install ironic` and set IRONIC_REAL_VENV=/tmp/vi",
            v.display()
        );
    }
    v
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const CONFIG: &str = "[DEFAULT]
auth_strategy = noauth
rpc_transport = none
enabled_hardware_types = fake-hardware
enabled_bios_interfaces = fake,no-bios
enabled_boot_interfaces = fake
enabled_console_interfaces = fake,no-console
enabled_deploy_interfaces = fake
enabled_firmware_interfaces = fake,no-firmware
enabled_inspect_interfaces = fake,no-inspect
enabled_management_interfaces = fake
enabled_network_interfaces = noop
enabled_power_interfaces = fake
enabled_raid_interfaces = fake,no-raid
enabled_rescue_interfaces = fake,no-rescue
enabled_storage_interfaces = noop
enabled_vendor_interfaces = fake,no-vendor
host = HOST
[api]
host_ip = 127.0.0.1
port = PORT
[database]
connection = sqlite:///DIR/ironic.sqlite
[conductor]
heartbeat_timeout = 86400
automated_clean = false
sync_power_state_interval = -1
[dhcp]
dhcp_provider = none
";

/// What [`RealIronic::start_redfish`] enables on top of fake-hardware: the
/// `redfish` hardware type with every interface Metal3's baremetal-operator
/// sets (redfish power/management/bios/raid/firmware/inspect/vendor,
/// redfish-virtual-media boot, direct/ramdisk/custom-agent deploy, agent
/// inspect/raid/rescue); the deploy ISO the node names is handed to the BMC
/// as its URL (`ramdisk_image_download_source = http`), so the BMC downloads
/// it from the test's image server.
const REDFISH: &[(&str, &str)] = &[
    (
        "enabled_hardware_types = fake-hardware",
        "enabled_hardware_types = fake-hardware,redfish",
    ),
    (
        "enabled_bios_interfaces = fake,no-bios",
        "enabled_bios_interfaces = fake,no-bios,redfish",
    ),
    (
        "enabled_boot_interfaces = fake",
        "enabled_boot_interfaces = fake,redfish-virtual-media",
    ),
    (
        "enabled_deploy_interfaces = fake",
        "enabled_deploy_interfaces = fake,direct,ramdisk,custom-agent",
    ),
    (
        "enabled_firmware_interfaces = fake,no-firmware",
        "enabled_firmware_interfaces = fake,no-firmware,redfish",
    ),
    (
        "enabled_inspect_interfaces = fake,no-inspect",
        "enabled_inspect_interfaces = fake,no-inspect,agent,redfish",
    ),
    (
        "enabled_management_interfaces = fake",
        "enabled_management_interfaces = fake,redfish",
    ),
    (
        "enabled_power_interfaces = fake",
        "enabled_power_interfaces = fake,redfish",
    ),
    (
        "enabled_raid_interfaces = fake,no-raid",
        "enabled_raid_interfaces = fake,no-raid,redfish,agent",
    ),
    (
        "enabled_rescue_interfaces = fake,no-rescue",
        "enabled_rescue_interfaces = fake,no-rescue,agent",
    ),
    (
        "enabled_vendor_interfaces = fake,no-vendor",
        "enabled_vendor_interfaces = fake,no-vendor,redfish",
    ),
];

/// Sections [`RealIronic::start_redfish`] appends: where the agent's API is,
/// where images are published (HTTP_URL, the test's image server), ISOs taken
/// by URL.
const REDFISH_SECTIONS: &str = "[deploy]
http_url = HTTP_URL
http_root = DIR/httpboot
ramdisk_image_download_source = http
[service_catalog]
endpoint_override = http://127.0.0.1:PORT
";

impl RealIronic {
    /// Create the schema and start `ironic` with fake-hardware only; waits until
    /// the conductor is registered.
    pub fn start() -> RealIronic {
        Self::start_with(CONFIG.to_owned())
    }

    /// As [`RealIronic::start`], with the `redfish` hardware type and its
    /// interfaces enabled too (see [`REDFISH`]); `http_url` is where Ironic
    /// says published images are (`[deploy] http_url`).
    pub fn start_redfish(http_url: &str) -> RealIronic {
        let mut conf = CONFIG.to_owned();
        for (from, to) in REDFISH {
            assert!(conf.contains(&format!("{from}\n")), "{from}");
            conf = conf.replace(&format!("{from}\n"), &format!("{to}\n"));
        }
        conf.push_str(&REDFISH_SECTIONS.replace("HTTP_URL", http_url));
        Self::start_with(conf)
    }

    fn start_with(template: String) -> RealIronic {
        let venv = venv();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("httpboot")).unwrap();
        let port = free_port();
        let host = format!("parity-{}", std::process::id());
        let conf = dir.path().join("ironic.conf");
        std::fs::write(
            &conf,
            template
                .replace("HOST", &host)
                .replace("PORT", &port.to_string())
                .replace("DIR", &dir.path().display().to_string()),
        )
        .unwrap();
        let out = Command::new(venv.join("bin/ironic-dbsync"))
            .arg("--config-file")
            .arg(&conf)
            .arg("create_schema")
            .output()
            .expect("run ironic-dbsync");
        assert!(
            out.status.success(),
            "ironic-dbsync failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = std::fs::File::create(dir.path().join("ironic.log")).unwrap();
        let child = Command::new(venv.join("bin/ironic"))
            .arg("--config-file")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ironic");
        let me = RealIronic {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            host,
            dir,
        };
        me.wait_ready();
        me
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let url = format!("{}/v1/conductors", self.url);
        while Instant::now() < deadline {
            let out = Command::new("curl")
                .args(["-s", "-H", "X-OpenStack-Ironic-API-Version: 1.49", &url])
                .output();
            if let Ok(o) = out
                && String::from_utf8_lossy(&o.stdout).contains(&self.host)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!(
            "the real Ironic did not register its conductor in 120 s; log:\n{}",
            self.log_text()
        );
    }

    /// Run one SQL statement on the service's database (SQLite, through the
    /// system's python3): for records only a real driver would make, e.g. the
    /// firmware components Ironic's fake firmware interface never caches.
    pub fn sql(&self, stmt: &str) {
        let out = Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()",
            ])
            .arg(self.dir.path().join("ironic.sqlite"))
            .arg(stmt)
            .output()
            .expect("run python3 (Debian package python3)");
        assert!(
            out.status.success(),
            "SQL on the real Ironic's database failed: {stmt}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The service's log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ironic.log")).unwrap_or_default()
    }
}

impl Drop for RealIronic {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            super::stop_child(&mut c);
        }
    }
}
