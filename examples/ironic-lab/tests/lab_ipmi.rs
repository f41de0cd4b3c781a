//! The lab's IPMI BMC simulator, driven by the real `ipmitool -I lanplus -C 3` (Debian).

mod lab_support;

use ironic_lab::model::{BootEnabled, BootMode, BootTarget, Power};
use ironic_lab::{Faults, IpmiSim, SimServer};

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn ipmitool(sim: &IpmiSim, password: &str, args: &[&str]) -> Run {
    let tool = lab_support::debian_tool("ipmitool", "ipmitool");
    let port = sim.addr().port().to_string();
    let out = tokio::process::Command::new(tool)
        .args(["-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", &port])
        .args([
            "-U",
            "admin",
            "-P",
            password,
            "-L",
            "ADMINISTRATOR",
            "-R",
            "2",
            "-N",
            "1",
        ])
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run ipmitool");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn ok(sim: &IpmiSim, args: &[&str]) -> String {
    let r = ipmitool(sim, "pw-lab-0", args).await;
    assert!(
        r.ok,
        "ipmitool {args:?} failed:\n{}\n{}",
        r.stdout, r.stderr
    );
    r.stdout
}

async fn start(server: &SimServer) -> IpmiSim {
    IpmiSim::start("127.0.0.1:0".parse().unwrap(), server.clone())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmitool_lanplus_power_and_boot_device() {
    let dir = tempfile::tempdir().unwrap();
    let server = lab_support::server(dir.path(), "lab-0", 0);
    let sim = start(&server).await;

    let info = ok(&sim, &["mc", "info"]).await;
    assert!(
        info.contains("IPMI Version") && info.contains("2.0"),
        "{info}"
    );
    assert!(
        ok(&sim, &["power", "status"])
            .await
            .contains("Chassis Power is off")
    );
    assert!(ok(&sim, &["power", "on"]).await.contains("Up/On"));
    assert_eq!(server.power(), Power::On);
    assert!(
        ok(&sim, &["power", "status"])
            .await
            .contains("Chassis Power is on")
    );

    ok(
        &sim,
        &["chassis", "bootdev", "pxe", "options=persistent,efiboot"],
    )
    .await;
    let b = server.boot_override();
    assert_eq!(
        (b.target, b.enabled, b.mode),
        (BootTarget::Pxe, BootEnabled::Continuous, BootMode::Uefi)
    );
    let param = ok(&sim, &["chassis", "bootparam", "get", "5"]).await;
    assert!(param.contains("Force PXE"), "{param}");
    assert!(param.contains("all future boots"), "{param}");
    assert!(param.contains("EFI"), "{param}");
    // What Ironic's ipmitool driver sends to read the boot device.
    let raw = ok(&sim, &["raw", "0x00", "0x09", "0x05", "0x00", "0x00"]).await;
    assert_eq!(
        raw.split_whitespace().collect::<Vec<_>>(),
        ["01", "05", "e0", "04", "00", "00", "00"]
    );

    ok(&sim, &["chassis", "bootdev", "disk"]).await;
    let b = server.boot_override();
    assert_eq!(
        (b.target, b.enabled, b.mode),
        (BootTarget::Hdd, BootEnabled::Once, BootMode::Legacy)
    );

    let boots = server.subscribe().borrow().boots;
    ok(&sim, &["power", "reset"]).await;
    assert_eq!(server.subscribe().borrow().boots, boots + 1);
    // The one-time override was consumed by that boot.
    assert_eq!(server.boot_override().enabled, BootEnabled::Disabled);
    ok(&sim, &["power", "off"]).await;
    assert_eq!(server.power(), Power::Off);
    // A reset needs a running machine.
    assert!(!ipmitool(&sim, "pw-lab-0", &["power", "reset"]).await.ok);
    assert!(
        ok(&sim, &["chassis", "status"])
            .await
            .contains("System Power         : off")
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmitool_sees_wrong_passwords_and_faults() {
    let dir = tempfile::tempdir().unwrap();
    let server = lab_support::server(dir.path(), "lab-0", 0);
    let sim = start(&server).await;

    let bad = ipmitool(&sim, "not-the-password", &["-v", "power", "status"]).await;
    assert!(!bad.ok);
    assert!(
        bad.stderr.contains("RAKP 2 HMAC is invalid"),
        "{}",
        bad.stderr
    );

    // The BMC's password "changed": the enrolled one no longer works.
    server.set_faults(Faults::parse("wrong-password").unwrap());
    let changed = ipmitool(&sim, "pw-lab-0", &["-v", "power", "status"]).await;
    assert!(
        !changed.ok && changed.stderr.contains("RAKP 2 HMAC is invalid"),
        "{}",
        changed.stderr
    );

    // Stuck: the command succeeds, the power does not change.
    server.set_faults(Faults::parse("stuck").unwrap());
    ok(&sim, &["power", "on"]).await;
    assert_eq!(server.power(), Power::Off);

    // Flaky at 100%: every datagram is dropped, ipmitool gives up.
    server.set_faults(Faults::parse("flaky=1").unwrap());
    assert!(!ipmitool(&sim, "pw-lab-0", &["power", "status"]).await.ok);

    // Slow: answers come late but come.
    server.set_faults(Faults::parse("slow=100ms").unwrap());
    assert!(ok(&sim, &["power", "status"]).await.contains("off"));
    server.set_faults(Faults::default());
    ok(&sim, &["power", "on"]).await;
    assert_eq!(server.power(), Power::On);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmitool_cipher_suite_17_is_refused_and_garbage_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let server = lab_support::server(dir.path(), "lab-0", 0);
    let sim = start(&server).await;
    let tool = lab_support::debian_tool("ipmitool", "ipmitool");
    let out = tokio::process::Command::new(tool)
        .args([
            "-I",
            "lanplus",
            "-C",
            "17",
            "-H",
            "127.0.0.1",
            "-p",
            &sim.addr().port().to_string(),
        ])
        .args([
            "-U", "admin", "-P", "pw-lab-0", "-R", "1", "-N", "1", "power", "status",
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());

    // Random datagrams get no answer and break nothing.
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for len in [0usize, 1, 4, 5, 16, 40, 200] {
        let junk: Vec<u8> = (0..len)
            .map(|i| [0x06, 0x00, 0xFF, 0x07, 0x06][i % 5])
            .collect();
        sock.send_to(&junk, sim.addr()).await.unwrap();
    }
    ok(&sim, &["power", "status"]).await;
    sim.shutdown().await;
}
