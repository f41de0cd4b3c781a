//! A QEMU machine behind a BMC: the backend that makes the lab's BMC model
//! ([`SimServer`], shared by the Redfish simulator and, through its chassis
//! control, `ipmi_sim`) act on a real VM.
//!
//! The machine follows the model's power status: a boot starts QEMU (TCG) with
//! the boot order the override asks for (`-boot order=n` for the network,
//! `order=c` for the disk; SeaBIOS for legacy mode, OVMF for UEFI; a boot from
//! the virtual CD downloads the inserted image URL, as a BMC does, and attaches
//! it as an IDE CD-ROM first in the boot order), a reset of a
//! machine that keeps its boot source is a QMP `system_reset`, power off is a QMP
//! `quit` (killed if QEMU does not go), and QEMU exiting by itself (the guest
//! powered off) is reported to the model as the OS halting.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ironic_standalone::lab::model::{BootMode, BootSource, Power, SimServer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{need_file, tool};

/// The fixed parts of a VM.
#[derive(Clone, Debug)]
pub struct VmSpec {
    /// Name (log files are named after it).
    pub name: String,
    /// MAC of its NIC.
    pub mac: String,
    /// Tap device on the lab bridge.
    pub tap: String,
    /// Raw disk file (virtio-blk).
    pub disk: PathBuf,
    /// Directory for QMP sockets, serial and QEMU logs.
    pub dir: PathBuf,
    /// Memory.
    pub memory_mib: u32,
}

/// One boot of the VM, as QEMU saw it.
#[derive(Clone, Debug)]
pub struct BootRecord {
    /// What it booted from.
    pub source: BootSource,
    /// Firmware mode.
    pub mode: BootMode,
    /// Serial console log of the QEMU process.
    pub serial: PathBuf,
    /// Where this boot's output starts in that log (a warm reset continues a log).
    pub offset: u64,
    /// When.
    pub at: Instant,
}

impl BootRecord {
    /// What this boot printed on the serial console so far.
    pub fn console(&self) -> String {
        let data = std::fs::read(&self.serial).unwrap_or_default();
        let from = (self.offset as usize).min(data.len());
        String::from_utf8_lossy(&data[from..]).into_owned()
    }
}

#[derive(Default)]
struct Shared {
    boots: Vec<BootRecord>,
    events: Vec<String>,
    running: bool,
}

/// A VM following a BMC model; stops QEMU when shut down or dropped.
pub struct QemuMachine {
    name: String,
    shared: Arc<Mutex<Shared>>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl QemuMachine {
    /// Start following `server` (no QEMU runs until the BMC powers the machine on).
    pub fn spawn(server: SimServer, spec: VmSpec) -> QemuMachine {
        tool("qemu-system-x86_64", "qemu-system-x86");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let cancel = CancellationToken::new();
        let task = tokio::spawn(follow(server, spec.clone(), shared.clone(), cancel.clone()));
        QemuMachine {
            name: spec.name,
            shared,
            cancel,
            task: Some(task),
        }
    }

    /// Every boot so far.
    pub fn boots(&self) -> Vec<BootRecord> {
        self.shared.lock().unwrap().boots.clone()
    }

    /// Wait until the machine's latest boot is from its disk and its serial
    /// console shows `marker`; every boot so far, or an error with that boot's
    /// console.
    pub async fn wait_disk_marker(
        &self,
        marker: &str,
        within: Duration,
    ) -> Result<Vec<BootRecord>, String> {
        let deadline = Instant::now() + within;
        loop {
            let boots = self.boots();
            let last = boots.last().ok_or("no boot recorded")?;
            if last.source == BootSource::Disk && last.console().contains(marker) {
                return Ok(boots);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the instance did not print its marker {marker} on the serial console; last boot from {:?}:\n{}",
                    last.source,
                    clean(&last.console())
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Whether QEMU runs.
    pub fn running(&self) -> bool {
        self.shared.lock().unwrap().running
    }

    /// What happened, one line per event (for failure messages).
    pub fn events(&self) -> String {
        let s = self.shared.lock().unwrap();
        format!("{}:\n  {}", self.name, s.events.join("\n  "))
    }

    /// The console output of every boot, for failure messages (the tail of each).
    pub fn consoles(&self) -> String {
        let mut out = String::new();
        for (i, b) in self.boots().iter().enumerate() {
            let text = clean(&b.console());
            let tail: String = {
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(40)..].join("\n")
            };
            out.push_str(&format!(
                "--- {} boot {} from {:?} ({:?}):\n{tail}\n",
                self.name,
                i + 1,
                b.source,
                b.mode
            ));
        }
        out
    }

    /// Stop QEMU and the follower.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for QemuMachine {
    fn drop(&mut self) {
        // The follower stops QEMU; `kill_on_drop` covers a runtime shutting down first.
        self.cancel.cancel();
    }
}

/// Printable text of a console log (iPXE and SeaBIOS write escape sequences).
pub fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect()
}

struct Vm {
    child: Child,
    qmp: PathBuf,
    serial: PathBuf,
    source: BootSource,
    mode: BootMode,
}

fn note(shared: &Mutex<Shared>, name: &str, event: String) {
    eprintln!("[vm {name}] {event}");
    shared.lock().unwrap().events.push(event);
}

async fn follow(
    server: SimServer,
    spec: VmSpec,
    shared: Arc<Mutex<Shared>>,
    cancel: CancellationToken,
) {
    let mut rx = server.subscribe();
    rx.mark_changed();
    let mut seen_boots = 0;
    let mut vm: Option<Vm> = None;
    let mut processes = 0u32;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            changed = rx.changed() => {
                if changed.is_err() {
                    break;
                }
                let status = rx.borrow_and_update().clone();
                match status.power {
                    Power::Off => {
                        if let Some(v) = vm.take() {
                            note(&shared, &spec.name, "BMC: power off -> QMP quit".into());
                            v.stop().await;
                        }
                    }
                    Power::On if status.boots != seen_boots => {
                        seen_boots = status.boots;
                        let source = status.booted_from.clone().unwrap_or(BootSource::Disk);
                        let mode = server.boot_override().mode;
                        vm = match vm.take() {
                            Some(v) if v.source == source && v.mode == mode => {
                                note(&shared, &spec.name, format!("BMC: reset, boots {source:?} again -> QMP system_reset"));
                                let offset = std::fs::metadata(&v.serial).map(|m| m.len()).unwrap_or(0);
                                match qmp(&v.qmp, "system_reset").await {
                                    Ok(()) => {
                                        record(&shared, &v, offset);
                                        Some(v)
                                    }
                                    Err(e) => {
                                        note(&shared, &spec.name, format!("QMP system_reset failed ({e}): restarting QEMU"));
                                        v.stop().await;
                                        processes += 1;
                                        start(&spec, processes, source, mode, &shared).await
                                    }
                                }
                            }
                            other => {
                                if let Some(v) = other {
                                    note(&shared, &spec.name, "BMC: reset to another boot source -> QMP quit".into());
                                    v.stop().await;
                                }
                                processes += 1;
                                start(&spec, processes, source, mode, &shared).await
                            }
                        };
                    }
                    Power::On => {}
                }
                shared.lock().unwrap().running = vm.is_some();
            }
            _ = tick.tick() => {
                let exited = match vm.as_mut() {
                    Some(v) => v.child.try_wait().ok().flatten(),
                    None => None,
                };
                if let Some(st) = exited {
                    vm = None;
                    shared.lock().unwrap().running = false;
                    note(&shared, &spec.name, format!("QEMU exited by itself ({st}): the guest powered off"));
                    server.os_halted();
                }
            }
        }
    }
    if let Some(v) = vm.take() {
        v.stop().await;
    }
    shared.lock().unwrap().running = false;
}

fn record(shared: &Mutex<Shared>, v: &Vm, offset: u64) {
    shared.lock().unwrap().boots.push(BootRecord {
        source: v.source.clone(),
        mode: v.mode,
        serial: v.serial.clone(),
        offset,
        at: Instant::now(),
    });
}

async fn start(
    spec: &VmSpec,
    k: u32,
    source: BootSource,
    mode: BootMode,
    shared: &Mutex<Shared>,
) -> Option<Vm> {
    let qmp_path = spec.dir.join(format!("{}-qmp-{k}.sock", spec.name));
    let serial = spec.dir.join(format!("{}-serial-{k}.log", spec.name));
    let log = spec.dir.join(format!("{}-qemu-{k}.log", spec.name));
    // The BMC's virtual CD: the inserted image, downloaded for this boot (the
    // conductor may have built a new one under the same URL since the last).
    let cd = match &source {
        BootSource::VirtualMedia(url) => {
            let file = spec.dir.join(format!("{}-vmedia-{k}.iso", spec.name));
            match download(url, &file).await {
                Ok(size) => {
                    note(
                        shared,
                        &spec.name,
                        format!("virtual CD: {url} downloaded ({size} bytes)"),
                    );
                    Some(file)
                }
                Err(e) => {
                    note(
                        shared,
                        &spec.name,
                        format!("virtual CD: cannot download {url}: {e}"),
                    );
                    None
                }
            }
        }
        _ => None,
    };
    let (order, paused) = match &source {
        BootSource::Network => ("n", false),
        BootSource::Disk => ("c", false),
        BootSource::VirtualMedia(_) if cd.is_some() => ("d", false),
        // No image to boot; firmware setup: on, running nothing.
        BootSource::VirtualMedia(_) | BootSource::Firmware => ("c", true),
    };
    let mut cmd = Command::new(tool("qemu-system-x86_64", "qemu-system-x86"));
    // `-cpu max` gives the guest RDRAND: without a hardware RNG the kernel's CRNG
    // never initialises under TCG and getrandom() (the agent's) blocks forever.
    cmd.args([
        "-accel", "tcg", "-machine", "pc", "-cpu", "max", "-smp", "1",
    ])
    .args(["-m", &spec.memory_mib.to_string()])
    .args(["-display", "none", "-monitor", "none"])
    .arg("-serial")
    .arg(format!("file:{}", serial.display()))
    .arg("-serial")
    .arg(format!(
        "unix:{},server=on,wait=off",
        spec.dir
            .join(format!("{}-shell-{k}.sock", spec.name))
            .display()
    ))
    .arg("-qmp")
    .arg(format!("unix:{},server=on,wait=off", qmp_path.display()))
    .args([
        "-netdev",
        &format!("tap,id=n0,ifname={},script=no,downscript=no", spec.tap),
    ]);
    if mode == BootMode::Uefi {
        // OVMF ignores `-boot order`; it follows the devices' bootindex (QEMU's
        // fw_cfg boot order), ahead of its own NVRAM entries. A boot entry the
        // agent adds for the disk matches the disk's device path, so it is used
        // when the disk comes first.
        let (net, disk) = if order == "n" { (1, 2) } else { (2, 1) };
        cmd.args([
            "-device",
            &format!("virtio-net-pci,netdev=n0,mac={},bootindex={net}", spec.mac),
        ])
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=none,id=d0,cache=writeback",
            spec.disk.display()
        ))
        .args([
            "-device",
            &format!("virtio-blk-pci,drive=d0,bootindex={disk}"),
        ]);
    } else {
        cmd.args([
            "-device",
            &format!("virtio-net-pci,netdev=n0,mac={}", spec.mac),
        ])
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=virtio,cache=writeback",
            spec.disk.display()
        ))
        .args(["-boot", &format!("order={order}")]);
    }
    if let Some(iso) = &cd {
        // First in both firmwares' boot order (SeaBIOS and OVMF read bootindex).
        cmd.arg("-drive")
            .arg(format!(
                "file={},format=raw,media=cdrom,readonly=on,if=none,id=cd0",
                iso.display()
            ))
            .args(["-device", "ide-cd,drive=cd0,bus=ide.0,bootindex=0"]);
    }
    if paused {
        cmd.arg("-S");
    }
    if mode == BootMode::Uefi {
        let code = need_file("/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf");
        let vars = spec.dir.join(format!("{}-OVMF_VARS.fd", spec.name));
        if !vars.exists() {
            std::fs::copy(need_file("/usr/share/OVMF/OVMF_VARS_4M.fd", "ovmf"), &vars).unwrap();
        }
        cmd.arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                code.display()
            ))
            .arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,unit=1,file={}",
                vars.display()
            ));
    }
    let log_file = std::fs::File::create(&log).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            note(shared, &spec.name, format!("cannot start QEMU: {e}"));
            return None;
        }
    };
    note(
        shared,
        &spec.name,
        format!(
            "BMC: power on -> QEMU pid {} booting {source:?} ({mode:?}, -boot order={order})",
            child.id().unwrap_or_default()
        ),
    );
    let vm = Vm {
        child,
        qmp: qmp_path,
        serial,
        source,
        mode,
    };
    record(shared, &vm, 0);
    Some(vm)
}

/// Download `url` to `file` (the BMC fetching its virtual media image).
async fn download(url: &str, file: &Path) -> Result<u64, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    tokio::fs::write(file, &body)
        .await
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(body.len() as u64)
}

impl Vm {
    /// QMP `quit`; kill if QEMU is still there after a few seconds.
    async fn stop(mut self) {
        let _ = qmp(&self.qmp, "quit").await;
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let _ = std::fs::remove_file(&self.qmp);
    }
}

/// Run one QMP command (after the capabilities handshake).
pub async fn qmp(path: &Path, command: &str) -> Result<(), String> {
    let run = async {
        // QEMU creates the socket right after it starts.
        let mut stream = None;
        for _ in 0..50 {
            match UnixStream::connect(path).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let stream = stream.ok_or_else(|| format!("no QMP socket at {}", path.display()))?;
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r).lines();
        // greeting
        lines
            .next_line()
            .await
            .map_err(|e| e.to_string())?
            .ok_or("QMP closed")?;
        w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
            .await
            .map_err(|e| e.to_string())?;
        expect_return(&mut lines).await?;
        w.write_all(format!("{{\"execute\":\"{command}\"}}\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        expect_return(&mut lines).await
    };
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .map_err(|_| format!("QMP {command}: no answer within 10 s"))?
}

async fn expect_return(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
) -> Result<(), String> {
    while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
        if line.contains("\"return\"") {
            return Ok(());
        }
        if line.contains("\"error\"") {
            return Err(line);
        }
    }
    // `quit` may close the socket before answering.
    Ok(())
}
