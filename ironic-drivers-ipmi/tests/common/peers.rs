//! Real BMCs on loopback for the tests and the fleet bench: OpenIPMI's `ipmi_sim`
//! and a pyghmi BMC (`tests/peers/pyghmi_bmc.py`), plus `ipmitool` to cross-check.
//! Every process is killed by PID when its guard drops. A missing peer is a test
//! failure with an install hint, never a skip.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// User with ADMINISTRATOR privilege on every test BMC.
pub const USER: &str = "admin";
/// Its password.
pub const PASSWORD: &str = "s3cr3t-pw";

fn find_in_path(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A program from Debian, or a panic saying how to install it.
pub fn debian_tool(name: &str, package: &str) -> PathBuf {
    find_in_path(name, &["/usr/sbin", "/sbin", "/usr/bin"]).unwrap_or_else(|| {
        panic!(
            "`{name}` is not installed: these tests need a real peer. Install it with \
             `apt-get install {package}` (listed in ironic-drivers-ipmi/test-deps/apt.txt; \
             scripts/test.sh installs it)"
        )
    })
}

/// A Python that can import pyghmi: `$IRONIC_TEST_VENV/bin/python`, then `python3`
/// on PATH; or a panic saying how to install it.
pub fn pyghmi_python() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(v) = std::env::var_os("IRONIC_TEST_VENV") {
        candidates.push(PathBuf::from(v).join("bin/python"));
    }
    if let Some(p) = find_in_path("python3", &[]) {
        candidates.push(p);
    }
    for py in &candidates {
        let ok = Command::new(py)
            .args(["-c", "import pyghmi.ipmi.bmc"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return py.clone();
        }
    }
    panic!(
        "no Python with pyghmi found (tried {candidates:?}): install it with \
         `python3 -m venv .venv-test && .venv-test/bin/pip install pyghmi` and set \
         IRONIC_TEST_VENV=$PWD/.venv-test (scripts/test.sh does this from \
         ironic-drivers-ipmi/test-deps/pip.txt)"
    )
}

/// A UDP port that was free a moment ago on 127.0.0.1.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind a UDP socket on 127.0.0.1: {e}"))
}

/// Whether something answers a Get Channel Authentication Capabilities request.
pub fn answers_ipmi(port: u16, wait: Duration) -> bool {
    let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
    let pkt = [
        0x06, 0x00, 0xff, 0x07, // RMCP
        0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x09, // IPMI 1.5 session header, no auth
        0x20, 0x18, 0xc8, 0x81, 0x00, 0x38, 0x8e, 0x04, 0xb5,
    ];
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        let _ = sock.send_to(&pkt, ("127.0.0.1", port));
        if let Ok((n, _)) = sock.recv_from(&mut buf)
            && n > 0
        {
            return true;
        }
    }
    false
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Options of an ipmi_sim BMC.
#[derive(Clone, Debug, Default)]
pub struct SimOptions {
    /// Serial console: ipmi_sim connects SOL to this TCP address.
    pub sol_tcp: Option<std::net::SocketAddr>,
}

/// One `ipmi_sim` process with a chassis_control script that keeps power and boot
/// device in files.
pub struct IpmiSim {
    child: Child,
    /// UDP port of its LAN interface.
    pub port: u16,
    dir: tempfile::TempDir,
}

const CHASSIS_SCRIPT: &str = r#"#!/bin/sh
# ipmi_sim chassis_control: "get power boot" prints "power:N boot:DEV",
# "set power 1|0", "set reset 1", "set shutdown 1", "set boot DEV".
D=$(dirname "$0")
echo "$@" >> "$D/calls.log"
op=$1; shift
case "$op" in
get)
  out=""
  for k in "$@"; do
    case $k in
      power) out="$out power:$(cat "$D/power" 2>/dev/null || echo 0)";;
      boot) out="$out boot:$(cat "$D/boot" 2>/dev/null || echo none)";;
    esac
  done
  echo $out;;
set)
  # a stuck BMC (the test created the file): commands are accepted, nothing moves
  [ -e "$D/stuck" ] && exit 0
  while [ $# -gt 1 ]; do
    case $1 in
      power) echo "$2" > "$D/power";;
      reset) echo 1 > "$D/power";;
      shutdown) echo 0 > "$D/power";;
      boot) echo "$2" > "$D/boot";;
    esac
    shift 2
  done;;
esac
"#;

/// A full sensor record (CPU Temp, sensor 1, degrees C, thresholds 5/10/80/90/100)
/// and a compact discrete record (PSU Status, sensor 2, power supply).
const EMU: &str = "mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02
main_sdr_add 0x20 0x00 0x00 0x51 0x01 0x33 0x20 0x00 0x01 0x03 0x01 0x67 0x68 0x01 0x01 0x00 0x00 0x00 0x00 0x3f 0x00 0x00 0x01 0x00 0x00 0x01 0x00 0x00 0x00 0x00 0x00 0x07 0x28 0x50 0x0a 0xff 0x00 0x64 0x5a 0x50 0x00 0x05 0x0a 0x02 0x02 0x00 0x00 0x00 0xc8 0x43 0x50 0x55 0x20 0x54 0x65 0x6d 0x70
main_sdr_add 0x20 0x00 0x00 0x51 0x02 0x25 0x20 0x00 0x02 0x0a 0x01 0x67 0x40 0x08 0x6f 0x00 0x00 0x00 0x00 0x7f 0x00 0xc0 0x00 0x00 0x01 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0xca 0x50 0x53 0x55 0x20 0x53 0x74 0x61 0x74 0x75 0x73
sensor_add 0x20 0 1 0x01 0x01
sensor_set_threshold 0x20 0 1 settable 111111 0x64 0x5a 0x50 0x00 0x05 0x0a
sensor_set_value 0x20 0 1 45 0
sensor_add 0x20 0 2 0x08 0x6f
sensor_set_bit_clr_rest 0x20 0 2 0 1 0
mc_enable 0x20
";

impl IpmiSim {
    /// Start an ipmi_sim BMC on a free port of 127.0.0.1.
    pub fn start() -> IpmiSim {
        Self::start_with(SimOptions::default())
    }

    /// Start with options.
    pub fn start_with(opts: SimOptions) -> IpmiSim {
        let bin = debian_tool("ipmi_sim", "openipmi");
        let mut last = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_udp_port();
            write_sim_files(dir.path(), port, &opts);
            let mut child = Command::new(&bin)
                .arg("-c")
                .arg(dir.path().join("lan.conf"))
                .arg("-f")
                .arg(dir.path().join("bmc.emu"))
                .arg("-s")
                .arg(dir.path().join("state"))
                .arg("-n")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            if answers_ipmi(port, Duration::from_secs(5)) {
                return IpmiSim { child, port, dir };
            }
            let exited = child.try_wait().ok().flatten();
            kill(&mut child);
            last = format!("ipmi_sim on port {port} did not answer (exit: {exited:?})");
        }
        panic!("{last}");
    }

    /// The node's driver_info for this BMC.
    pub fn driver_info(&self) -> serde_json::Value {
        serde_json::json!({
            "ipmi_address": "127.0.0.1",
            "ipmi_port": self.port,
            "ipmi_username": USER,
            "ipmi_password": PASSWORD,
            "ipmi_packet_timeout": 0.5,
            "ipmi_command_retry_timeout": 20,
        })
    }

    /// The chassis_control calls ipmi_sim made so far.
    pub fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("calls.log")).unwrap_or_default()
    }

    /// Make the BMC stuck: chassis control commands are accepted (and logged in
    /// [`calls`](Self::calls)) but change nothing; `false` frees it again.
    pub fn set_stuck(&self, stuck: bool) {
        let f = self.dir.path().join("stuck");
        if stuck {
            std::fs::write(&f, b"").expect("create the stuck marker");
        } else {
            let _ = std::fs::remove_file(&f);
        }
    }

    /// A handle that makes this BMC stuck or frees it (for a kit fixture).
    pub fn staller(&self) -> impl Fn(bool) + Send + Sync + 'static {
        let f = self.dir.path().join("stuck");
        move |stuck| {
            if stuck {
                std::fs::write(&f, b"").expect("create the stuck marker");
            } else {
                let _ = std::fs::remove_file(&f);
            }
        }
    }

    /// PID of the process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn write_sim_files(dir: &Path, port: u16, opts: &SimOptions) {
    let script = dir.join("chassis.sh");
    std::fs::write(&script, CHASSIS_SCRIPT).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let sol = opts
        .sol_tcp
        .map(|a| format!("  sol \"tcp:{a}\" 115200\n"))
        .unwrap_or_default();
    let conf = format!(
        "name \"sim{port}\"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 {port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control \"{script}\"
{sol}  user 2 true \"{USER}\" \"{PASSWORD}\" admin 10 none md2 md5 straight
  user 3 true \"viewer\" \"viewer-pw\" user 10 none md2 md5 straight
",
        script = script.display()
    );
    std::fs::write(dir.join("lan.conf"), conf).unwrap();
    std::fs::write(dir.join("bmc.emu"), EMU).unwrap();
}

impl Drop for IpmiSim {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// A pyghmi process serving `count` BMCs.
pub struct PyghmiBmcs {
    child: Child,
    /// Ports, one per BMC.
    pub ports: Vec<u16>,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl PyghmiBmcs {
    /// Start `count` BMCs in one Python process.
    pub fn start(count: usize) -> PyghmiBmcs {
        let py = pyghmi_python();
        // also built into the ipmi-fleet bench, a sibling crate
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../ironic-drivers-ipmi/tests/peers/pyghmi_bmc.py");
        let mut child = Command::new(&py)
            .arg("-u")
            .arg(&script)
            .args([USER, PASSWORD, &count.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", py.display()));
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
        let Some(rest) = first.strip_prefix("READY ") else {
            kill(&mut child);
            panic!("pyghmi BMC did not start: {first:?}");
        };
        let ports: Vec<u16> = rest
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let l2 = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        for p in &ports {
            assert!(
                answers_ipmi(*p, Duration::from_secs(5)),
                "pyghmi BMC on port {p} does not answer"
            );
        }
        PyghmiBmcs { child, ports, log }
    }

    /// driver_info for BMC `i`.
    pub fn driver_info(&self, i: usize) -> serde_json::Value {
        serde_json::json!({
            "ipmi_address": "127.0.0.1",
            "ipmi_port": self.ports[i],
            "ipmi_username": USER,
            "ipmi_password": PASSWORD,
            "ipmi_packet_timeout": 0.5,
            "ipmi_command_retry_timeout": 20,
        })
    }

    /// Lines the BMCs logged ("BMC PORT power on", "BMC PORT nmi", ...).
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Whether the BMCs log `line` within `wait` (the log is read by a thread).
    pub fn logged(&self, line: &str, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if self.log.lock().unwrap().iter().any(|l| l == line) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PyghmiBmcs {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Run `ipmitool -I lanplus` against a BMC on 127.0.0.1 and return its stdout.
pub fn ipmitool(port: u16, suite: u8, args: &[&str]) -> String {
    let bin = debian_tool("ipmitool", "ipmitool");
    let out = Command::new(bin)
        .args(["-I", "lanplus", "-H", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", USER, "-P", PASSWORD, "-C", &suite.to_string()])
        .args(["-N", "1", "-R", "3"])
        .args(args)
        .output()
        .expect("run ipmitool");
    assert!(
        out.status.success(),
        "ipmitool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
