//! `ironic ramdisk build`, run as an operator runs it (the `ironic` binary as a
//! subprocess): Debian's kernel (fetched with `apt-get download`, cached under
//! `target/ramdisk-cache`), busybox-static, the static `ironic-agent` and the
//! host's tools (`ramdisk::tools::TOOLS`: GRUB, efibootmgr, e2fsprogs, xfsprogs,
//! parted, util-linux, mdadm, hdparm, nvme-cli, smartmontools) with their
//! libraries, under 40 MiB; built again `--with-burnin` (stress-ng and fio too,
//! `--no-iso`). The results are booted in QEMU (TCG, `-cpu qemu64`: no
//! RDRAND, so the kernel's random pool stays cold) with user-mode networking,
//! three ways at once: the burn-in kernel and initramfs directly (as PXE hands
//! them over), and the default build's `ironic-agent.iso` as a CD with OVMF
//! (UEFI) and with SeaBIOS (BIOS). Each time the ramdisk must get an address by
//! DHCP, every tool of its build must run (its libraries are there), the
//! burn-in tools must be absent from the default build, and the agent must call
//! the API URL given on the kernel command line (for the ISO: in its GRUB
//! configuration). Also: a `--kernel` that is not a kernel is refused, naming
//! the file.
//!
//! Needs QEMU, OVMF, busybox-static, apt-get/dpkg-deb/depmod, the tools'
//! packages and glibc's static libraries (for the agent); a missing one fails
//! with the package to install.

mod e2e_support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use e2e_support::{ChildGuard, need_file, ramdisk, target_dir, tool};
use ironic_standalone::ramdisk::tools::{BURNIN_TOOLS, TOOLS, Tool};

/// Bound on the boots (three TCG guests at once on a loaded 2-core machine;
/// alone, each takes ~10-60 s).
const BOOT_TIMEOUT: Duration = Duration::from_secs(600);

fn ironic() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ironic"))
}

/// The API the agents call: answers the root with a version and lookups with
/// 404 (the agent keeps trying, which is all this test needs); sends each
/// request line.
fn fake_api() -> (u16, mpsc::Receiver<String>) {
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
    (port, rx)
}

#[test]
fn ramdisk_build_makes_an_initramfs_and_an_iso_whose_tools_run_and_agent_calls_home_under_tcg() {
    tool("qemu-system-x86_64", "qemu-system-x86");
    need_file("/bin/busybox", "busybox-static");
    need_file("/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf");
    tool("apt-get", "apt");
    tool("dpkg-deb", "dpkg");
    tool("depmod", "kmod");
    for t in TOOLS.iter().chain(BURNIN_TOOLS) {
        tool(t.name, t.package);
    }
    need_file("/usr/lib/grub/i386-pc/kernel.img", "grub-pc-bin");
    need_file("/usr/lib/grub/x86_64-efi/kernel.img", "grub-efi-amd64-bin");

    let (port, rx) = fake_api();
    let api_url = format!("ipa-api-url=http://10.0.2.2:{port}");
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
        .arg("--iso-kernel-params")
        // no_timer_check: TCG on a loaded host fails the IO-APIC timer check.
        .arg(format!("loglevel=4 no_timer_check {api_url}"))
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
    let iso = out.path().join("ironic-agent.iso");
    let size = std::fs::metadata(&initramfs).unwrap().len();
    assert!(
        stdout.contains("ironic-agent.initramfs")
            && stdout.contains("ironic-agent.iso")
            && stdout.contains("MiB"),
        "{stdout}"
    );
    // The issue's target (IPA's ramdisk is ~400 MiB), with the debug agent.
    assert!(
        size < 40 << 20,
        "the initramfs is {} MiB, over the 40 MiB target",
        size >> 20
    );
    assert!(
        stdout.contains("without the burn-in tools") && stdout.contains("--with-burnin"),
        "{stdout}"
    );
    assert!(
        stdout.contains("deploy_ramdisk ="),
        "the summary says what to put in the config: {stdout}"
    );
    // Not a terminal: the progress is plain lines on stderr, one per step and
    // one per tenth of the initramfs's files (not one per file).
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("ironic ramdisk build: "))
        .collect();
    for step in [
        "collecting the host's tools and their libraries",
        "GRUB images for the ISO",
        "initramfs: files written and compressed: 0/",
        "ironic-agent.iso (BIOS and UEFI)",
    ] {
        assert!(
            progress.iter().any(|l| l.contains(step)),
            "no progress line with {step:?} in:\n{stderr}"
        );
    }
    let files = progress
        .iter()
        .filter_map(|l| l.split("compressed: ").nth(1))
        .collect::<Vec<_>>();
    let last = files.last().unwrap().split('/').collect::<Vec<_>>();
    assert_eq!(last[0], last[1], "every file counted: {files:?}");
    // One line per tenth, plus one per 5 s while a tenth takes longer (big
    // modules on a loaded machine): never one per file.
    let bound = 12 + started.elapsed().as_secs() as usize / 5;
    assert!(
        files.len() <= bound && files.len() < last[1].parse::<usize>().unwrap() / 4,
        "a line per tenth or per 5 s: {files:?}"
    );

    for f in ["ironic-agent.eltorito.img", "ironic-agent.esp.img"] {
        assert!(
            out.path().join(f).is_file(),
            "{f} is kept for per-node ISOs"
        );
    }

    // With the burn-in tools: fio's libraries (Ceph, GlusterFS, RDMA: Debian's
    // fio links them all) make it about twice the size.
    let burnin_dir = out.path().join("burnin");
    let started = Instant::now();
    let run = ironic()
        .args(["ramdisk", "build", "--with-burnin", "--no-iso", "--output"])
        .arg(&burnin_dir)
        .arg("--agent")
        .arg(&agent)
        .arg("--cache")
        .arg(&cache)
        .output()
        .unwrap();
    let burnin_stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "ironic ramdisk build --with-burnin failed:\n{burnin_stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    eprintln!("{burnin_stdout}(build took {:?})", started.elapsed());
    assert!(
        burnin_stdout.contains("stress-ng") && !burnin_stdout.contains("without the burn-in"),
        "{burnin_stdout}"
    );
    let burnin_initramfs = burnin_dir.join("ironic-agent.initramfs");
    let burnin_size = std::fs::metadata(&burnin_initramfs).unwrap().len();
    assert!(
        burnin_size > size && burnin_size < 80 << 20,
        "with burn-in tools {} MiB, without {} MiB",
        burnin_size >> 20,
        size >> 20
    );

    // Bad input: a kernel that is not a kernel.
    let bogus = out.path().join("not-a-kernel");
    std::fs::write(&bogus, vec![0x42u8; 16384]).unwrap();
    let bad = ironic()
        .args([
            "ramdisk",
            "build",
            "--without-tools",
            "--no-iso",
            "--output",
        ])
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

    let boots = [
        Boot::Direct {
            kernel: kernel.clone(),
            initramfs: burnin_initramfs,
            // loglevel=4: the kernel's own lines do not cut through /init's.
            append: format!(
                "console=ttyS0,115200n8 loglevel=4 no_timer_check {api_url} BOOTIF=01-52-54-00-12-34-56"
            ),
        },
        Boot::Cd {
            iso: iso.clone(),
            uefi: true,
        },
        Boot::Cd {
            iso: iso.clone(),
            uefi: false,
        },
    ];
    boot_all_and_wait_for_the_agents(&boots, out.path(), rx);
}

enum Boot {
    Direct {
        kernel: PathBuf,
        initramfs: PathBuf,
        append: String,
    },
    Cd {
        iso: PathBuf,
        uefi: bool,
    },
}

impl Boot {
    fn name(&self) -> &'static str {
        match self {
            Boot::Direct { .. } => "kernel+initramfs",
            Boot::Cd { uefi: false, .. } => "ISO, BIOS",
            Boot::Cd { uefi: true, .. } => "ISO, UEFI",
        }
    }
    fn mode(&self) -> &'static str {
        match self {
            Boot::Cd { uefi: true, .. } => "booted in UEFI mode",
            _ => "booted in BIOS mode",
        }
    }
    /// The tools of its build: the burn-in ones only in the direct boot's.
    fn tools(&self) -> (Vec<Tool>, &'static [Tool]) {
        match self {
            Boot::Direct { .. } => (TOOLS.iter().chain(BURNIN_TOOLS).copied().collect(), &[]),
            Boot::Cd { .. } => (TOOLS.to_vec(), BURNIN_TOOLS),
        }
    }
}

/// Start every boot at once and wait until each agent has looked itself up.
fn boot_all_and_wait_for_the_agents(boots: &[Boot], dir: &Path, rx: mpsc::Receiver<String>) {
    let qemu = tool("qemu-system-x86_64", "qemu-system-x86");
    let t0 = Instant::now();
    let mut guards = Vec::new();
    let mut macs = BTreeMap::new();
    let mut serials = Vec::new();
    for (i, boot) in boots.iter().enumerate() {
        let mac = format!("52:54:00:12:34:{:02x}", 0x56 + i);
        let serial = dir.join(format!("serial-{i}.log"));
        let mut cmd = Command::new(&qemu);
        cmd.args([
            "-accel", "tcg", "-machine", "q35", "-cpu", "qemu64", "-smp", "1", "-m", "768",
        ])
        .args(["-display", "none", "-monitor", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .args([
            "-netdev",
            "user,id=n0",
            "-device",
            &format!("virtio-net-pci,netdev=n0,mac={mac},romfile="),
        ]);
        match boot {
            Boot::Direct {
                kernel,
                initramfs,
                append,
            } => {
                cmd.arg("-kernel")
                    .arg(kernel)
                    .arg("-initrd")
                    .arg(initramfs)
                    .arg("-append")
                    .arg(append);
            }
            Boot::Cd { iso, uefi } => {
                if *uefi {
                    let vars = dir.join(format!("OVMF_VARS-{i}.fd"));
                    std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars).unwrap();
                    cmd.arg("-drive").arg(
                        "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
                    );
                    cmd.arg("-drive").arg(format!(
                        "if=pflash,format=raw,unit=1,file={}",
                        vars.display()
                    ));
                }
                cmd.arg("-drive")
                    .arg(format!(
                        "file={},media=cdrom,readonly=on,if=none,id=cd0",
                        iso.display()
                    ))
                    .args(["-device", "ide-cd,drive=cd0,bus=ide.0,bootindex=0"]);
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start QEMU");
        guards.push(ChildGuard(child));
        macs.insert(mac.replace(':', "%3A"), i);
        serials.push(serial);
    }
    let console = |i: usize| {
        let text =
            String::from_utf8_lossy(&std::fs::read(&serials[i]).unwrap_or_default()).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    };
    let mut called: BTreeMap<usize, Duration> = BTreeMap::new();
    let mut seen = Vec::new();
    while called.len() < boots.len() {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(req) => {
                if req.contains("/v1/lookup") {
                    for (mac, i) in &macs {
                        if req.contains(mac.as_str()) || req.contains(&mac.replace("%3A", ":")) {
                            called.entry(*i).or_insert_with(|| t0.elapsed());
                        }
                    }
                }
                seen.push(req);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => panic!("API thread stopped: {e}"),
        }
        if t0.elapsed() > BOOT_TIMEOUT {
            let missing: Vec<String> = (0..boots.len())
                .filter(|i| !called.contains_key(i))
                .map(|i| format!("--- {} console:\n{}", boots[i].name(), console(i)))
                .collect();
            panic!(
                "no lookup within {BOOT_TIMEOUT:?} (requests seen: {seen:?}):\n{}",
                missing.join("\n")
            );
        }
    }
    for (i, boot) in boots.iter().enumerate() {
        let text =
            String::from_utf8_lossy(&std::fs::read(&serials[i]).unwrap_or_default()).into_owned();
        eprintln!(
            "QEMU TCG without RDRAND, {}: power-on to the agent's first lookup in {:.1} s",
            boot.name(),
            called[&i].as_secs_f64()
        );
        assert!(
            text.contains("ironic-rs ramdisk") && text.contains(boot.mode()),
            "{}: the ramdisk's /init did not say {:?}:\n{text}",
            boot.name(),
            boot.mode()
        );
        // Every tool ran and printed its version (the same first line as on
        // the host: the same binary, its libraries all there).
        let (tools, absent) = boot.tools();
        for t in absent {
            let prefix = format!("ironic-rs ramdisk: tool {}: ", t.name);
            assert!(
                !text.contains(&prefix),
                "{}: {} is in the build without --with-burnin",
                boot.name(),
                t.name
            );
        }
        for t in &tools {
            let prefix = format!("ironic-rs ramdisk: tool {}: ", t.name);
            let line = text
                .lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("{}: {} did not run:\n{text}", boot.name(), t.name));
            // Some print it on stderr (mke2fs, debugfs), as /init takes both.
            let on_host = Command::new(t.name).arg(t.version_arg).output().unwrap();
            let on_host = format!(
                "{}{}",
                String::from_utf8_lossy(&on_host.stdout),
                String::from_utf8_lossy(&on_host.stderr)
            );
            let want = on_host.lines().next().unwrap_or("").trim();
            // The kernel's release differs between the host and the guest.
            let want = want.split(" [").next().unwrap_or(want);
            let want = want.split(" (gcc").next().unwrap_or(want);
            assert!(
                !want.is_empty() && line.trim_end().contains(want),
                "{}: {} in the ramdisk printed {line:?}, on this host {want:?}",
                boot.name(),
                t.name
            );
        }
        // Modules whose dependencies modules.dep does not name (libcrc32c's
        // crc32c) are loaded too: XFS and RAID 4/5/6 need them.
        let loaded = text
            .lines()
            .find(|l| l.starts_with("ironic-rs ramdisk: modules: "))
            .unwrap_or_else(|| panic!("{}: no module list:\n{text}", boot.name()));
        for m in [
            "crc32c_generic",
            "libcrc32c",
            "xfs",
            "ext4",
            "raid456",
            "virtio_net",
        ] {
            assert!(
                loaded.split_whitespace().any(|w| w == m),
                "{}: module {m} is not loaded: {loaded}",
                boot.name()
            );
        }
        // Software RAID: md and its RAID personalities are loaded (mdadm ran
        // above with the other tools).
        let md = text
            .lines()
            .find(|l| l.starts_with("ironic-rs ramdisk: md "))
            .unwrap_or_else(|| panic!("{}: no md line:\n{text}", boot.name()));
        for p in ["[raid0]", "[raid1]", "[raid10]", "[raid6]", "[raid5]"] {
            assert!(
                md.contains(p),
                "{}: the {p} personality is not loaded: {md}",
                boot.name()
            );
        }
        assert!(
            !text.contains("error while loading shared libraries"),
            "{}:\n{text}",
            boot.name()
        );
    }
}
