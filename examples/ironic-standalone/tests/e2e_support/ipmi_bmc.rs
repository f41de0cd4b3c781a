//! An IPMI BMC for a QEMU machine: OpenIPMI's `ipmi_sim` (the real BMC
//! emulator: RMCP+, users, sessions) with a `chassis_control` program that
//! forwards its power and boot-device requests to the machine's BMC model
//! ([`SimServer`]) in the test process, which the [`QemuMachine`](super::qemu::QemuMachine)
//! follows.
//!
//! `ipmi_sim` calls the program as `PROG get power boot` (answer
//! `power:N boot:DEV`), `PROG set power 1|0`, `set reset 1`, `set shutdown 1`
//! and `set boot none|pxe|default|cdrom|bios`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::post;
use ironic_standalone::lab::model::{BootEnabled, BootTarget, Power, ResetAction, SimServer};

use super::{ChildGuard, tool};

/// The BMC's user with ADMINISTRATOR privilege.
pub const USER: &str = "admin";

/// An `ipmi_sim` process in front of one machine.
pub struct IpmiBmc {
    _child: ChildGuard,
    _control: tokio::task::JoinHandle<()>,
    /// UDP port of its LAN interface (on 127.0.0.1).
    pub port: u16,
    dir: std::path::PathBuf,
}

/// Answer one chassis_control call from the model.
pub fn chassis_control(server: &SimServer, args: &str) -> Result<String, String> {
    let words: Vec<&str> = args.split_whitespace().collect();
    match words.split_first() {
        Some((&"get", keys)) => {
            let mut out = Vec::new();
            for k in keys {
                match *k {
                    "power" => out.push(format!("power:{}", u8::from(server.power() == Power::On))),
                    "boot" => {
                        let b = server.boot_override();
                        let name = if b.enabled == BootEnabled::Disabled {
                            "none"
                        } else {
                            match b.target {
                                BootTarget::Pxe | BootTarget::UefiHttp => "pxe",
                                BootTarget::Hdd => "default",
                                BootTarget::Cd => "cdrom",
                                BootTarget::BiosSetup => "bios",
                                BootTarget::None => "none",
                            }
                        };
                        out.push(format!("boot:{name}"));
                    }
                    other => return Err(format!("unknown chassis item {other:?}")),
                }
            }
            Ok(out.join(" "))
        }
        Some((&"set", pairs)) if pairs.len() % 2 == 0 => {
            for pair in pairs.chunks(2) {
                let action = match (pair[0], pair[1]) {
                    ("power", "1") => Some(ResetAction::On),
                    ("power", "0") => Some(ResetAction::ForceOff),
                    ("reset", _) => Some(ResetAction::ForceRestart),
                    ("shutdown", _) => Some(ResetAction::GracefulShutdown),
                    ("boot", dev) => {
                        // ipmi_sim keeps neither the persistent nor the EFI bit: the
                        // device sticks until it is set again, and the machine boots
                        // in the firmware mode it has (its setup, as the test set it).
                        let target = match dev {
                            "pxe" => BootTarget::Pxe,
                            "default" => BootTarget::Hdd,
                            "cdrom" => BootTarget::Cd,
                            "bios" => BootTarget::BiosSetup,
                            "none" => BootTarget::None,
                            other => return Err(format!("unknown boot device {other:?}")),
                        };
                        let enabled = if target == BootTarget::None {
                            BootEnabled::Disabled
                        } else {
                            BootEnabled::Continuous
                        };
                        server.set_boot_override(Some(target), Some(enabled), None);
                        None
                    }
                    (k, v) => return Err(format!("unknown chassis setting {k} {v}")),
                };
                if let Some(a) = action {
                    server.reset(a).map_err(|e| e.to_string())?;
                }
            }
            Ok(String::new())
        }
        _ => Err(format!("bad chassis_control call {args:?}")),
    }
}

async fn control(
    State(server): State<SimServer>,
    UrlPath(_name): UrlPath<String>,
    body: String,
) -> (StatusCode, String) {
    match chassis_control(&server, &body) {
        Ok(out) => (StatusCode::OK, format!("{out}\n")),
        Err(e) => {
            eprintln!("[ipmi_sim chassis_control] {e}");
            (StatusCode::BAD_REQUEST, e)
        }
    }
}

impl IpmiBmc {
    /// Start `ipmi_sim` on 127.0.0.1:`port` for `server`, with `password` for [`USER`].
    /// Call from inside the lab namespace (on its runtime).
    pub async fn start(server: SimServer, port: u16, password: &str, dir: &Path) -> IpmiBmc {
        let bin = tool("ipmi_sim", "openipmi");
        tool("curl", "curl");
        let name = server.spec().name.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ctl: SocketAddr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/chassis/{name}", post(control))
            .with_state(server);
        let control = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let dir = dir.join(format!("ipmi-{name}"));
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let script = dir.join("chassis.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n\
                 # ipmi_sim chassis_control for {name}: forwards the call to the machine's BMC model.\n\
                 echo \"$*\" >> '{log}'\n\
                 exec curl -sS -f --max-time 20 --data-binary \"$*\" http://{ctl}/chassis/{name}\n",
                log = dir.join("calls.log").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        std::fs::write(
            dir.join("bmc.emu"),
            "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nmc_enable 0x20\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("lan.conf"),
            format!(
                "name \"{name}\"
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
  user 2 true \"{USER}\" \"{password}\" admin 10 none md2 md5 straight
",
                script = script.display()
            ),
        )
        .unwrap();
        let child = Command::new(&bin)
            .arg("-c")
            .arg(dir.join("lan.conf"))
            .arg("-f")
            .arg(dir.join("bmc.emu"))
            .arg("-s")
            .arg(dir.join("state"))
            .arg("-n")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("ipmi_sim.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let bmc = IpmiBmc {
            _child: ChildGuard(child),
            _control: control,
            port,
            dir,
        };
        assert!(
            answers_ipmi(port, Duration::from_secs(10)).await,
            "ipmi_sim did not answer on 127.0.0.1:{port}: {}",
            std::fs::read_to_string(bmc.dir.join("ipmi_sim.log")).unwrap_or_default()
        );
        bmc
    }

    /// The chassis_control calls so far.
    pub fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.join("calls.log")).unwrap_or_default()
    }
}

impl Drop for IpmiBmc {
    fn drop(&mut self) {
        self._control.abort();
    }
}

/// Whether something answers a Get Channel Authentication Capabilities request.
async fn answers_ipmi(port: u16, wait: Duration) -> bool {
    let Ok(sock) = tokio::net::UdpSocket::bind("127.0.0.1:0").await else {
        return false;
    };
    let pkt = [
        0x06, 0x00, 0xff, 0x07, // RMCP
        0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x09, // IPMI 1.5 session header, no auth
        0x20, 0x18, 0xc8, 0x81, 0x00, 0x38, 0x8e, 0x04, 0xb5,
    ];
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 512];
    while tokio::time::Instant::now() < deadline {
        let _ = sock.send_to(&pkt, ("127.0.0.1", port)).await;
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(200), sock.recv_from(&mut buf)).await
            && n > 0
        {
            return true;
        }
    }
    false
}
