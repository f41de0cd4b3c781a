//! Test support: start `sushy-emulator` (PyPI `sushy-tools`) on loopback with a
//! dynamic port, its fake or libvirt (`test:///default`) driver, optional TLS
//! and basic auth; serve an ISO over HTTP; build nodes.
#![allow(dead_code)]

pub mod proxy;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ironic_core::driver::Task;
use ironic_core::{DriverInfo, Node};
use ironic_drivers_redfish::RedfishConfig;
use serde_json::{Value, json};

/// Where to find a PyPI tool: `$IRONIC_TEST_VENV/bin`, then `PATH`.
pub fn tool(name: &str) -> PathBuf {
    if let Ok(venv) = std::env::var("IRONIC_TEST_VENV") {
        let p = Path::new(&venv).join("bin").join(name);
        if p.exists() {
            return p;
        }
    }
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.exists() {
                return p;
            }
        }
    }
    panic!(
        "{name} not found in $IRONIC_TEST_VENV/bin or PATH. Install the test peers with \
         `scripts/setup-test-deps.sh` (PyPI sushy-tools, sushy, libvirt-python into .venv-test; \
         Debian openssl, libvirt-dev, pkg-config, gcc, python3-dev) and run the tests with \
         IRONIC_TEST_VENV=$PWD/.venv-test"
    );
}

/// A free TCP port on 127.0.0.1 (there is a small window before it is used).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One system of the fake driver.
#[derive(Clone, Debug)]
pub struct FakeSystem {
    pub uuid: String,
    pub name: String,
    pub power: &'static str,
    pub macs: Vec<String>,
}

impl FakeSystem {
    pub fn new(i: usize) -> Self {
        FakeSystem {
            uuid: format!("2cbd9e2a-0000-4000-8000-{i:012x}"),
            name: format!("node-{i}"),
            power: "Off",
            macs: vec![format!("52:54:00:aa:{:02x}:{:02x}", i / 256, i % 256)],
        }
    }
}

/// What to start.
#[derive(Clone, Debug, Default)]
pub struct SushyOptions {
    /// Fake driver systems; empty = libvirt driver on `test:///default`.
    pub fake_systems: Vec<FakeSystem>,
    /// Serve HTTPS with a generated self-signed certificate.
    pub tls: bool,
    /// Basic auth (user, password).
    pub auth: Option<(String, String)>,
    /// Static storage (one controller, two drives) for every system.
    pub storage: bool,
    /// Serve HTTPS with this certificate and key instead of a self-signed one.
    pub tls_files: Option<(PathBuf, PathBuf)>,
}

/// A running sushy-emulator; killed on drop.
pub struct Sushy {
    child: Child,
    pub port: u16,
    pub address: String,
    pub dir: tempfile::TempDir,
    pub cert: Option<PathBuf>,
}

impl Drop for Sushy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The libvirt test driver's one domain.
pub const LIBVIRT_TEST_UUID: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

fn py_str(s: &str) -> String {
    format!("{s:?}")
}

fn storage_config(uuids: &[String]) -> String {
    let mut storage = String::from("SUSHY_EMULATOR_STORAGE = {\n");
    let mut drives = String::from("SUSHY_EMULATOR_DRIVES = {\n");
    let mut volumes = String::from("SUSHY_EMULATOR_VOLUMES = {\n");
    for u in uuids {
        storage.push_str(&format!(
            "  {u:?}: [{{'Id': '1', 'Name': 'Local Storage Controller', 'StorageControllers': [{{'MemberId': '0', 'Name': 'Contoso Integrated RAID', 'SpeedGbps': 12}}], 'Drives': ['32ADF365C6C1B7BD', '58CFF987G8J2V9KL']}}],\n"
        ));
        drives.push_str(&format!(
            "  ({u:?}, '1'): [{{'Id': '32ADF365C6C1B7BD', 'Name': 'Drive Sample', 'CapacityBytes': 899527000000, 'Protocol': 'SAS'}}, {{'Id': '58CFF987G8J2V9KL', 'Name': 'Drive2', 'CapacityBytes': 12345670000, 'Protocol': 'SATA'}}],\n"
        ));
        volumes.push_str(&format!("  ({u:?}, '1'): [],\n"));
    }
    format!("{storage}}}\n{drives}}}\n{volumes}}}\n")
}

impl Sushy {
    /// Start sushy-emulator and wait until it answers.
    pub fn start(opts: SushyOptions) -> Sushy {
        let bin = tool("sushy-emulator");
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let mut conf = format!(
                "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\nSUSHY_EMULATOR_LISTEN_PORT = {port}\nSUSHY_EMULATOR_STATE_DIR = {}\n",
                py_str(dir.path().join("state").to_str().unwrap())
            );
            let uuids: Vec<String> = if opts.fake_systems.is_empty() {
                conf.push_str("SUSHY_EMULATOR_LIBVIRT_URI = 'test:///default'\nSUSHY_EMULATOR_STORAGE_POOL = 'default-pool'\n");
                vec![LIBVIRT_TEST_UUID.to_owned()]
            } else {
                conf.push_str(
                    "SUSHY_EMULATOR_FAKE_DRIVER = True\nSUSHY_EMULATOR_FAKE_SYSTEMS = [\n",
                );
                for s in &opts.fake_systems {
                    let nics: Vec<String> = s
                        .macs
                        .iter()
                        .enumerate()
                        .map(|(i, m)| format!("{{'mac': {m:?}, 'ip': '10.9.0.{}'}}", i + 10))
                        .collect();
                    conf.push_str(&format!(
                        "  {{'uuid': {:?}, 'name': {:?}, 'power_state': {:?}, 'nics': [{}]}},\n",
                        s.uuid,
                        s.name,
                        s.power,
                        nics.join(", ")
                    ));
                }
                conf.push_str("]\n");
                opts.fake_systems.iter().map(|s| s.uuid.clone()).collect()
            };
            if opts.storage {
                conf.push_str(&storage_config(&uuids));
            }
            let mut cert = None;
            if opts.tls {
                let (c, k) = opts
                    .tls_files
                    .clone()
                    .unwrap_or_else(|| gen_cert(dir.path()));
                conf.push_str(&format!(
                    "SUSHY_EMULATOR_SSL_CERT = {}\nSUSHY_EMULATOR_SSL_KEY = {}\n",
                    py_str(c.to_str().unwrap()),
                    py_str(k.to_str().unwrap())
                ));
                cert = Some(c);
            }
            if let Some((user, pass)) = &opts.auth {
                let file = dir.path().join("htpasswd");
                write_htpasswd(&bin, &file, user, pass);
                conf.push_str(&format!(
                    "SUSHY_EMULATOR_AUTH_FILE = {}\n",
                    py_str(file.to_str().unwrap())
                ));
            }
            let conf_path = dir.path().join("emulator.conf");
            std::fs::write(&conf_path, conf).unwrap();
            let log = std::fs::File::create(dir.path().join("emulator.log")).unwrap();
            let child = Command::new(&bin)
                .arg("--config")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let scheme = if opts.tls { "https" } else { "http" };
            let mut s = Sushy {
                child,
                port,
                address: format!("{scheme}://127.0.0.1:{port}"),
                dir,
                cert,
            };
            if s.wait_ready() {
                return s;
            }
            last_log =
                std::fs::read_to_string(s.dir.path().join("emulator.log")).unwrap_or_default();
        }
        panic!("sushy-emulator did not start; its log:\n{last_log}");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The emulator's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("emulator.log")).unwrap_or_default()
    }
}

fn write_htpasswd(sushy_bin: &Path, file: &Path, user: &str, pass: &str) {
    let python = sushy_bin.parent().unwrap().join("python3");
    let python = if python.exists() {
        python
    } else {
        tool("python3")
    };
    let out = Command::new(&python)
        .arg("-c")
        .arg("import bcrypt,sys; print(sys.argv[1] + ':' + bcrypt.hashpw(sys.argv[2].encode(), bcrypt.gensalt(rounds=4)).decode())")
        .arg(user)
        .arg(pass)
        .output()
        .expect("python3 with bcrypt (a sushy-tools dependency)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(file, out.stdout).unwrap();
}

/// A self-signed certificate for 127.0.0.1 (marked as a CA, as BMC certificates
/// often are), made with Debian's `openssl`.
pub fn gen_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("bmc.pem");
    let key = dir.join("bmc.key");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=bmc.test",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("openssl not found ({e}); install the Debian package openssl"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// A CA and a server certificate for 127.0.0.1 signed by it:
/// `(ca.pem, server.pem, server.key)`.
pub fn gen_ca_signed(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("openssl not found ({e}); install the Debian package openssl")
            });
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Test BMC CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=bmc",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// Settings that keep the tests quick.
pub fn fast_config() -> RedfishConfig {
    RedfishConfig {
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(30),
        connection_attempts: 4,
        retry_interval: Duration::from_millis(50),
        max_retry_interval: Duration::from_millis(200),
        power_state_timeout: Duration::from_secs(45),
        power_poll_interval: Duration::from_millis(300),
        task_timeout: Duration::from_secs(60),
        task_poll_interval: Duration::from_millis(200),
        bios_apply_timeout: Duration::from_secs(60),
        ..RedfishConfig::default()
    }
}

/// A `redfish` node for `address` with extra `driver_info`.
pub fn node(address: &str, extra: Value) -> Node {
    let mut n = Node::new("redfish");
    let mut info = json!({ "redfish_address": address });
    if let (Some(m), Value::Object(e)) = (info.as_object_mut(), extra) {
        m.extend(e);
    }
    n.driver_info = serde_json::from_value::<DriverInfo>(info).unwrap();
    n
}

/// A task over a node.
pub fn task(address: &str, extra: Value) -> Task {
    Task::new(node(address, extra))
}

/// An HTTP server on 127.0.0.1 serving a small ISO 9660 image at `/deploy.iso`.
pub struct IsoServer {
    pub url: String,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for IsoServer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl IsoServer {
    pub async fn start() -> IsoServer {
        // 64 KiB with the ISO 9660 primary volume descriptor signature.
        let mut iso = vec![0u8; 64 * 1024];
        iso[0x8000] = 1;
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        let app = axum::Router::new().route(
            "/deploy.iso",
            axum::routing::get(move || {
                let iso = iso.clone();
                async move { iso }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        IsoServer {
            url: format!("http://127.0.0.1:{port}/deploy.iso"),
            handle,
        }
    }
}

/// A plain HTTP GET of the emulator (to check state behind the driver's back).
pub async fn raw_get(address: &str, path: &str, auth: Option<(&str, &str)>) -> Value {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let mut req = client.get(format!("{address}{path}"));
    if let Some((u, p)) = auth {
        req = req.basic_auth(u, Some(p));
    }
    let resp = req.send().await.unwrap();
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// `sushy-static` (PyPI sushy-tools) serving a published Redfish tree read-only
/// on a free loopback port, killed on drop.
pub struct Static {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Drop for Static {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serve the mockup directory `tree`; waits until it accepts connections.
pub fn serve_static(tree: &Path) -> Static {
    let port = free_port();
    let child = Command::new(tool("sushy-static"))
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m"])
        .arg(tree)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sushy-static");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sushy-static did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Static { child, url }
}
