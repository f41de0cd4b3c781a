//! `ironic ramdisk build`, run as an operator runs it (the `ironic` binary as a
//! subprocess): Debian's kernel (fetched with `apt-get download`, cached under
//! `target/ramdisk-cache`), busybox-static and the static `ironic-agent`. The
//! result is booted in QEMU (TCG, `-cpu qemu64`: no RDRAND, so the kernel's random
//! pool stays cold) with user-mode networking: the ramdisk must get an address by
//! DHCP and its agent must call the API URL given on the kernel command line.
//! Also: a `--kernel` that is not a kernel is refused, naming the file.
//!
//! Needs QEMU, busybox-static, apt-get/dpkg-deb/depmod and glibc's static
//! libraries (for the agent); a missing one fails with the package to install.

mod e2e_support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use e2e_support::{ChildGuard, need_file, ramdisk, target_dir, tool};

const MAC: &str = "52:54:00:12:34:56";
/// Bound on the boot (TCG on a loaded 2-core machine); it normally takes ~10-20 s.
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

fn ironic() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ironic"))
}

#[test]
fn ramdisk_build_makes_a_small_initramfs_whose_agent_calls_home_under_tcg() {
    tool("qemu-system-x86_64", "qemu-system-x86");
    need_file("/bin/busybox", "busybox-static");
    tool("apt-get", "apt");
    tool("dpkg-deb", "dpkg");
    tool("depmod", "kmod");

    let agent = ramdisk::static_agent();
    let out = tempfile::tempdir().unwrap();
    let cache = target_dir().join("ramdisk-cache");
    let started = Instant::now();
    let run = ironic()
        .args(["ramdisk", "build", "--output"])
        .arg(out.path())
        .arg("--agent")
        .arg(&agent)
        .arg("--cache")
        .arg(&cache)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "ironic ramdisk build failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    eprintln!("{stdout}(build took {:?})", started.elapsed());
    let kernel = out.path().join("ironic-agent.kernel");
    let initramfs = out.path().join("ironic-agent.initramfs");
    let size = std::fs::metadata(&initramfs).unwrap().len();
    assert!(
        stdout.contains("ironic-agent.initramfs") && stdout.contains("MiB"),
        "{stdout}"
    );
    assert!(
        size < 40 << 20,
        "the initramfs is {} MiB, over the 40 MiB target",
        size >> 20
    );
    assert!(
        stdout.contains("deploy_ramdisk ="),
        "the summary says what to put in the config: {stdout}"
    );

    // Bad input: a kernel that is not a kernel.
    let bogus = out.path().join("not-a-kernel");
    std::fs::write(&bogus, vec![0x42u8; 16384]).unwrap();
    let bad = ironic()
        .args(["ramdisk", "build", "--output"])
        .arg(out.path().join("bad"))
        .arg("--agent")
        .arg(&agent)
        .arg("--kernel")
        .arg(&bogus)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        err.contains("not-a-kernel") && err.contains("is not a Linux kernel"),
        "{err}"
    );

    boot_and_wait_for_the_agent(&kernel, &initramfs, out.path());
}

/// Boot the ramdisk and wait for the agent's first request to the API URL.
fn boot_and_wait_for_the_agent(kernel: &Path, initramfs: &Path, dir: &Path) {
    let api = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = api.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for conn in api.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // Drain the headers, then answer: the root with a version, lookup 404
            // (the agent keeps trying, which is all this test needs).
            let mut h = String::new();
            while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                h.clear();
            }
            let (status, body) = if line.starts_with("GET / ") {
                ("200 OK", r#"{"default_version":{"version":"1.90"}}"#)
            } else {
                (
                    "404 Not Found",
                    r#"{"error_message":"{\"faultstring\":\"Node not found\"}"}"#,
                )
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            if tx.send(line.trim().to_owned()).is_err() {
                break;
            }
        }
    });
    let serial = dir.join("serial.log");
    let append = format!(
        "console=ttyS0,115200n8 no_timer_check ipa-api-url=http://10.0.2.2:{port} BOOTIF=01-{}",
        MAC.replace(':', "-")
    );
    let t0 = Instant::now();
    let child = Command::new(tool("qemu-system-x86_64", "qemu-system-x86"))
        .args([
            "-accel", "tcg", "-machine", "pc", "-cpu", "qemu64", "-smp", "1",
        ])
        .args([
            "-m",
            "768",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
        ])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .args([
            "-netdev",
            "user,id=n0",
            "-device",
            &format!("virtio-net-pci,netdev=n0,mac={MAC}"),
        ])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initramfs)
        .arg("-append")
        .arg(&append)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start QEMU");
    let _guard = ChildGuard(child);
    let console = || {
        let text =
            String::from_utf8_lossy(&std::fs::read(&serial).unwrap_or_default()).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    };
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(req) => {
                seen.push(req.clone());
                if req.contains("/v1/lookup") {
                    assert!(
                        req.contains(&MAC.replace(':', "%3A")) || req.contains(MAC),
                        "the lookup does not name the boot MAC: {req}"
                    );
                    eprintln!(
                        "QEMU TCG without RDRAND: power-on to the agent's first lookup in {:.1} s",
                        t0.elapsed().as_secs_f64()
                    );
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => panic!("API thread stopped: {e}"),
        }
        assert!(
            t0.elapsed() < BOOT_TIMEOUT,
            "no lookup from the agent within {BOOT_TIMEOUT:?} (requests seen: {seen:?}); console:\n{}",
            console()
        );
    }
    let text = console();
    assert!(
        text.contains("ironic-rs ramdisk"),
        "the ramdisk's /init did not announce itself:\n{text}"
    );
}
