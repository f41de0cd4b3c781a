//! Hardware inventory from `/proc` and `/sys`, in IPA's `list_hardware_info` shape.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::config::AgentConfig;

/// One block device (IPA's `BlockDevice`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockDevice {
    /// `/dev/sda` (or the override path).
    pub name: String,
    /// Model.
    pub model: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Spinning disk.
    pub rotational: bool,
    /// World wide name.
    pub wwn: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// Vendor.
    pub vendor: Option<String>,
    /// WWN with extension.
    pub wwn_with_extension: Option<String>,
    /// WWN vendor extension.
    pub wwn_vendor_extension: Option<String>,
    /// SCSI host:channel:target:lun.
    pub hctl: Option<String>,
    /// `/dev/disk/by-path/...`.
    pub by_path: Option<String>,
    /// Logical sector size.
    pub logical_sectors: Option<u64>,
    /// Physical sector size.
    pub physical_sectors: Option<u64>,
    /// Transport (`sata`, `nvme`, ...).
    pub tran: Option<String>,
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn read_u64(p: &Path) -> Option<u64> {
    read(p)?.parse().ok()
}

fn link_name(p: &Path) -> Option<String> {
    std::fs::read_link(p)
        .ok()?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

/// Block devices of type disk (no loop, ram, device-mapper, CD-ROM or zram).
pub fn disks(cfg: &AgentConfig) -> Vec<BlockDevice> {
    if let Some(p) = &cfg.root_device {
        let f = std::fs::File::open(p).ok();
        let ss = f.as_ref().map_or(512, crate::image::partition::sector_size);
        let size = f
            .and_then(|mut f| crate::image::device_size(&mut f, p).ok())
            .unwrap_or(0);
        return vec![BlockDevice {
            name: p.display().to_string(),
            model: Some("root device override".into()),
            size,
            rotational: false,
            wwn: None,
            serial: None,
            vendor: None,
            wwn_with_extension: None,
            wwn_vendor_extension: None,
            hctl: None,
            by_path: None,
            logical_sectors: Some(ss),
            physical_sectors: Some(ss),
            tran: None,
        }];
    }
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(cfg.sys_root.join("block")) else {
        return out;
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        if ["loop", "ram", "dm-", "sr", "zram", "md", "nbd", "fd"]
            .iter()
            .any(|p| n.starts_with(p))
        {
            continue;
        }
        let b = cfg.sys_root.join("block").join(&n);
        let size = read_u64(&b.join("size")).unwrap_or(0) * 512;
        if size == 0 {
            continue;
        }
        let dev = b.join("device");
        let wwid = read(&dev.join("wwid")).or_else(|| read(&b.join("wwid")));
        out.push(BlockDevice {
            name: format!("/dev/{n}"),
            model: read(&dev.join("model")),
            size,
            rotational: read_u64(&b.join("queue/rotational")) == Some(1),
            wwn: read(&b.join("device/wwn")).or(wwid.clone()),
            serial: read(&dev.join("serial")).or(wwid),
            vendor: read(&dev.join("vendor")),
            wwn_with_extension: None,
            wwn_vendor_extension: None,
            hctl: link_name(&dev).filter(|h| h.split(':').count() == 4),
            by_path: None,
            logical_sectors: read_u64(&b.join("queue/logical_block_size")),
            physical_sectors: read_u64(&b.join("queue/physical_block_size")),
            tran: if n.starts_with("nvme") {
                Some("nvme".into())
            } else {
                None
            },
        });
    }
    out
}

/// The names of the NICs the inventory lists (no loopback, no all-zero MAC).
pub fn interface_names(sys: &Path) -> Vec<String> {
    interfaces(sys)
        .iter()
        .filter_map(|i| i.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// The first IPv4 and IPv6 address of each interface (IPA's `ipv4_address`,
/// `ipv6_address`), from `getifaddrs`; link-local IPv6 only when nothing else.
fn addresses() -> std::collections::BTreeMap<String, (Option<String>, Option<String>)> {
    let mut out: std::collections::BTreeMap<String, (Option<String>, Option<String>)> =
        Default::default();
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return out;
    };
    for a in addrs {
        let Some(addr) = a.address else { continue };
        let e = out.entry(a.interface_name.clone()).or_default();
        if let Some(v4) = addr.as_sockaddr_in() {
            e.0.get_or_insert_with(|| v4.ip().to_string());
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            let ip = v6.ip();
            let link_local = (ip.segments()[0] & 0xffc0) == 0xfe80;
            if e.1.is_none()
                || (!link_local && e.1.as_deref().is_some_and(|s| s.starts_with("fe80")))
            {
                e.1 = Some(ip.to_string());
            }
        }
    }
    out
}

fn interfaces(sys: &Path) -> Vec<Value> {
    let ips = addresses();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(sys.join("class/net")) else {
        return out;
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        let d = sys.join("class/net").join(&n);
        let Some(mac) = read(&d.join("address")) else {
            continue;
        };
        if n == "lo" || mac == "00:00:00:00:00:00" {
            continue;
        }
        out.push(json!({
            "name": n,
            "mac_address": mac,
            "ipv4_address": ips.get(&n).and_then(|a| a.0.clone()),
            "ipv6_address": ips.get(&n).and_then(|a| a.1.clone()),
            "has_carrier": read_u64(&d.join("carrier")) == Some(1),
            "lldp": null,
            "vendor": read(&d.join("device/vendor")),
            "product": read(&d.join("device/device")),
            "client_id": null,
            "biosdevname": null,
            "speed_mbps": read(&d.join("speed")).and_then(|s| s.parse::<i64>().ok()).filter(|s| *s > 0),
            "pci_address": link_name(&d.join("device")),
            "driver": link_name(&d.join("device/driver")),
        }));
    }
    out
}

fn cpu(proc_root: &Path) -> Value {
    let info = std::fs::read_to_string(proc_root.join("cpuinfo")).unwrap_or_default();
    let mut count = 0;
    let mut model = None;
    let mut freq = None;
    let mut flags = Vec::new();
    let mut sockets = BTreeSet::new();
    for line in info.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "processor" => count += 1,
            "model name" if model.is_none() => model = Some(v.to_owned()),
            "cpu MHz" if freq.is_none() => freq = Some(v.to_owned()),
            "flags" if flags.is_empty() => {
                flags = v.split_whitespace().map(str::to_owned).collect()
            }
            "physical id" => {
                sockets.insert(v.to_owned());
            }
            _ => {}
        }
    }
    json!({
        "model_name": model,
        "frequency": freq,
        "count": count,
        "architecture": std::env::consts::ARCH,
        "flags": flags,
        "socket_count": sockets.len().max(1),
    })
}

fn memory(cfg: &AgentConfig) -> Value {
    let total = std::fs::read_to_string(cfg.proc_root.join("meminfo"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024);
    let mem = cfg.sys_root.join("devices/system/memory");
    let block = read(&mem.join("block_size_bytes")).and_then(|s| u64::from_str_radix(&s, 16).ok());
    let online = std::fs::read_dir(&mem)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("memory"))
                .filter(|e| read_u64(&e.path().join("online")) == Some(1))
                .count() as u64
        })
        .unwrap_or(0);
    let physical_mb = match (block, online) {
        (Some(b), n) if n > 0 => Some((b * n) >> 20),
        _ => total.map(|t| t >> 20),
    };
    json!({"total": total, "physical_mb": physical_mb})
}

/// The full inventory.
pub fn collect(cfg: &AgentConfig) -> Value {
    let sys = &cfg.sys_root;
    let dmi = sys.join("class/dmi/id");
    let uefi = sys.join("firmware/efi").exists();
    json!({
        "interfaces": interfaces(sys),
        "cpu": cpu(&cfg.proc_root),
        "disks": disks(cfg),
        "memory": memory(cfg),
        "bmc_address": null,
        "bmc_v6address": null,
        "system_vendor": {
            "product_name": read(&dmi.join("product_name")),
            "serial_number": read(&dmi.join("product_serial")),
            "manufacturer": read(&dmi.join("sys_vendor")),
            "firmware": {
                "vendor": read(&dmi.join("bios_vendor")),
                "version": read(&dmi.join("bios_version")),
                "build_date": read(&dmi.join("bios_date")),
            },
        },
        "boot": {
            "current_boot_mode": if uefi { "uefi" } else { "bios" },
            "pxe_interface": cfg.bootif.map(|m| m.to_string()),
        },
        "hostname": read(&cfg.proc_root.join("sys/kernel/hostname")),
    })
}

/// MACs of the NICs, BOOTIF first, then extra `--mac`s.
pub fn macs(cfg: &AgentConfig, inventory: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |m: String| {
        if !out.contains(&m) {
            out.push(m);
        }
    };
    if let Some(b) = cfg.bootif {
        push(b.to_string());
    }
    for m in &cfg.macs {
        push(m.to_string());
    }
    if cfg.root_device.is_none()
        && let Some(ifs) = inventory.get("interfaces").and_then(Value::as_array)
    {
        for i in ifs {
            if let Some(m) = i.get("mac_address").and_then(Value::as_str) {
                push(m.to_lowercase());
            }
        }
    }
    out
}

/// A fake `/sys` + `/proc` tree, for tests elsewhere in the crate.
#[doc(hidden)]
pub fn write_fixture(root: &Path) -> (PathBuf, PathBuf) {
    let sys = root.join("sys");
    let proc_root = root.join("proc");
    let w = |p: PathBuf, s: &str| {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, s).expect("write");
    };
    w(sys.join("block/sda/size"), "41943040\n");
    w(sys.join("block/sda/queue/rotational"), "1\n");
    w(sys.join("block/sda/queue/logical_block_size"), "512\n");
    w(sys.join("block/sda/device/model"), "QEMU HARDDISK\n");
    w(sys.join("block/sda/device/vendor"), "ATA\n");
    w(sys.join("block/sda/device/serial"), "QM00001\n");
    w(sys.join("block/nvme0n1/size"), "8388608\n");
    w(sys.join("block/nvme0n1/queue/rotational"), "0\n");
    w(sys.join("block/nvme0n1/wwid"), "eui.0011\n");
    w(sys.join("block/loop0/size"), "100\n");
    w(sys.join("class/net/eth0/address"), "52:54:00:12:34:56\n");
    w(sys.join("class/net/eth0/carrier"), "1\n");
    w(sys.join("class/net/eth0/speed"), "1000\n");
    w(sys.join("class/net/lo/address"), "00:00:00:00:00:00\n");
    w(sys.join("class/dmi/id/sys_vendor"), "QEMU\n");
    w(sys.join("class/dmi/id/product_name"), "Standard PC\n");
    w(sys.join("class/dmi/id/product_serial"), "SN123\n");
    w(
        proc_root.join("cpuinfo"),
        "processor\t: 0\nmodel name\t: Test CPU\ncpu MHz\t: 2000.0\nflags\t: fpu vmx\nphysical id\t: 0\n\nprocessor\t: 1\nmodel name\t: Test CPU\nphysical id\t: 0\n",
    );
    w(proc_root.join("meminfo"), "MemTotal:        2048000 kB\n");
    (sys, proc_root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_from_a_fixture_tree() {
        let d = tempfile::tempdir().unwrap();
        let (sys, proc_root) = write_fixture(d.path());
        let cfg = AgentConfig {
            sys_root: sys,
            proc_root,
            bootif: "52:54:00:12:34:56".parse().ok(),
            ..AgentConfig::default()
        };
        let inv = collect(&cfg);
        let disks = inv["disks"].as_array().unwrap();
        assert_eq!(disks.len(), 2, "{inv}");
        assert_eq!(disks[1]["name"], "/dev/sda");
        assert_eq!(disks[1]["size"], 41943040u64 * 512);
        assert_eq!(disks[1]["rotational"], true);
        assert_eq!(disks[1]["serial"], "QM00001");
        assert_eq!(disks[0]["wwn"], "eui.0011");
        assert_eq!(inv["interfaces"][0]["mac_address"], "52:54:00:12:34:56");
        assert_eq!(inv["interfaces"][0]["has_carrier"], true);
        assert_eq!(inv["cpu"]["count"], 2);
        assert_eq!(inv["memory"]["total"], 2048000u64 * 1024);
        assert_eq!(inv["system_vendor"]["manufacturer"], "QEMU");
        assert_eq!(inv["boot"]["pxe_interface"], "52:54:00:12:34:56");
        assert_eq!(macs(&cfg, &inv), vec!["52:54:00:12:34:56".to_string()]);
    }
}
