//! The graphical console layer with a real VNC server: the `process` provider
//! runs TigerVNC's `Xvnc` (Debian `tigervnc-standalone-server`) per console, and
//! `GraphicalConsole` records where it listens and a token.

use std::sync::Arc;
use std::time::Duration;

use ironic_core::Node;
use ironic_core::driver::{ConsoleInterface, Task};
use ironic_core::graphical::token::{self, TOKEN_KEY, VNC_HOST_KEY, VNC_PORT_KEY};
use ironic_core::graphical::{
    AppInfo, ConsoleApp, ConsoleContainerProvider, GraphicalConsole, GraphicalConsoles,
    ProcessConsoleContainer, ProcessSettings, VncSettings,
};
use serde_json::json;
use tokio::io::AsyncReadExt;

fn xvnc() -> &'static str {
    for p in ["/usr/bin/Xvnc", "/usr/local/bin/Xvnc"] {
        if std::path::Path::new(p).exists() {
            return p;
        }
    }
    panic!(
        "Xvnc is missing: install Debian's tigervnc-standalone-server (scripts/setup-test-deps.sh does)"
    );
}

/// `Xvnc` on the provider's port, on a free display it tells on fd 3 (Xvnc
/// closes that descriptor: on stderr its log would go to the next client).
fn xvnc_command(geometry: &str) -> Vec<String> {
    let script = format!(
        "exec {} -displayfd 3 -rfbport {{port}} -interface {{host}} -SecurityTypes None -nolisten tcp -geometry {geometry} -desktop console-{{app}}-{{node}} 3>/dev/null",
        xvnc()
    );
    vec!["/bin/sh".into(), "-c".into(), script]
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

async fn rfb_version(port: u16) -> Vec<u8> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut v = vec![0u8; 12];
    s.read_exact(&mut v).await.unwrap();
    v
}

#[derive(Debug)]
struct SecretApp;

impl ConsoleApp for SecretApp {
    fn app_name(&self) -> &'static str {
        "test-app"
    }
    fn validate(&self, _task: &Task) -> Result<(), ironic_core::DriverError> {
        Ok(())
    }
    fn app_info(&self, _task: &Task) -> Result<AppInfo, ironic_core::DriverError> {
        Ok(AppInfo(
            json!({"address": "https://bmc", "password": "pw-never-on-argv"})
                .as_object()
                .unwrap()
                .clone(),
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_provider_runs_xvnc_per_console_and_stops_it() {
    let mut s = ProcessSettings::new(xvnc_command("1024x768"));
    s.wait_for_ready_timeout = Duration::from_secs(30);
    let provider = Arc::new(ProcessConsoleContainer::new(s).unwrap());
    let consoles = GraphicalConsoles {
        provider: provider.clone(),
        settings: {
            let mut v = VncSettings::default();
            v.public_url = "http://127.0.0.1:6090/vnc_auto.html".into();
            v
        },
    };
    let console = GraphicalConsole::new(Arc::new(SecretApp), consoles);
    let mut a = Task::new(Node::new("fake-hardware"));
    let mut b = Task::new(Node::new("fake-hardware"));

    console.start_console(&mut a).await.unwrap();
    console.start_console(&mut b).await.unwrap();
    let port_of = |t: &Task| t.node.driver_internal_info[VNC_PORT_KEY].as_u64().unwrap() as u16;
    let (pa, pb) = (port_of(&a), port_of(&b));
    assert_ne!(pa, pb);
    assert_eq!(a.node.driver_internal_info[VNC_HOST_KEY], "127.0.0.1");
    assert!(a.node.console_enabled);
    assert_eq!(rfb_version(pa).await, b"RFB 003.008\n");
    assert_eq!(rfb_version(pb).await, b"RFB 003.008\n");
    let pids = provider.pids();
    let pid_a = pids[&a.node.uuid];
    assert!(alive(pid_a));
    // The app info is in the environment, never on the command line.
    let environ = std::fs::read(format!("/proc/{pid_a}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains("APP=test-app"), "{environ}");
    assert!(
        environ.contains(r#"APP_INFO={"address":"https://bmc","password":"pw-never-on-argv"}"#)
    );
    assert!(environ.contains(&format!("NODE_UUID={}", a.node.uuid)));
    let cmdline = std::fs::read(format!("/proc/{pid_a}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(!cmdline.contains("pw-never-on-argv"));
    assert!(cmdline.contains(&format!("console-test-app-{}", a.node.uuid)));
    // The token and the URL.
    let t = a.node.driver_internal_info[TOKEN_KEY]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        token::validate(&a.node, &t, Duration::from_secs(600)),
        Ok(())
    );
    let info = console.get_console(&a).await.unwrap();
    assert_eq!(info.kind, "vnc");
    assert_eq!(
        info.url,
        format!(
            "http://127.0.0.1:6090/vnc_auto.html?path=websockify%3Fnode%3D{}%26token%3D{t}",
            a.node.uuid
        )
    );
    assert!(!console.session_expired(&a));

    // Starting again keeps the running server (a new token, as Ironic).
    console.start_console(&mut a).await.unwrap();
    assert_eq!(port_of(&a), pa);
    assert_eq!(provider.pids()[&a.node.uuid], pid_a);
    assert_ne!(a.node.driver_internal_info[TOKEN_KEY], t.as_str());

    // Stopping ends the process and clears what start recorded.
    console.stop_console(&mut a).await.unwrap();
    assert!(!alive(pid_a), "Xvnc {pid_a} still runs after stop_console");
    for k in [
        VNC_HOST_KEY,
        VNC_PORT_KEY,
        TOKEN_KEY,
        token::TOKEN_CREATED_KEY,
    ] {
        assert!(!a.node.driver_internal_info.contains_key(k), "{k}");
    }
    assert!(!a.node.console_enabled);
    console.stop_console(&mut a).await.unwrap();
    // b still runs; stop_all ends it.
    let pid_b = provider.pids()[&b.node.uuid];
    assert!(alive(pid_b));
    console.stop_all().await.unwrap();
    assert!(!alive(pid_b));
    assert!(provider.pids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_provider_reports_a_command_that_serves_no_vnc() {
    let node = Node::new("fake-hardware");
    // Exits at once.
    let p = ProcessConsoleContainer::new(ProcessSettings::new(vec!["/bin/false".into()])).unwrap();
    let e = p
        .start_container(&node, "fake", &AppInfo::default())
        .await
        .unwrap_err();
    assert!(
        e.message()
            .contains("Console container provider \"process\" failed")
            && e.message().contains("ended before its VNC server answered"),
        "{e}"
    );
    // Runs but never listens: stopped after the wait.
    let mut s = ProcessSettings::new(vec!["/bin/sleep".into(), "600".into()]);
    s.wait_for_ready_timeout = Duration::from_secs(2);
    let p = ProcessConsoleContainer::new(s).unwrap();
    let e = p
        .start_container(&node, "fake", &AppInfo::default())
        .await
        .unwrap_err();
    assert!(
        e.message().contains("RFB data not returned by 127.0.0.1:"),
        "{e}"
    );
    assert!(p.pids().is_empty());
    // A program that does not exist.
    let p = ProcessConsoleContainer::new(ProcessSettings::new(vec!["/nonexistent/vnc".into()]))
        .unwrap();
    let e = p
        .start_container(&node, "fake", &AppInfo::default())
        .await
        .unwrap_err();
    assert!(
        e.message().contains("cannot run \"/nonexistent/vnc\""),
        "{e}"
    );
    assert!(ProcessConsoleContainer::new(ProcessSettings::new(vec![])).is_err());
}
