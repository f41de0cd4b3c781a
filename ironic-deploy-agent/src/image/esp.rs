//! The EFI System Partition, read and written in user space with `fatfs`: no
//! `mount`, no loop device, no kernel FAT driver parsing an image's filesystem,
//! so it works the same on a ramdisk, on a file standing in for a disk and on a
//! host kernel without `vfat`.
//!
//! What IPA does with `mount` + `os.walk` (`efi_utils._get_efi_bootloaders`),
//! this module does on the partition's bytes.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use crate::error::{AgentError, Result};

use super::partition::Partition;

/// The loaders IPA recognises (`efi_utils.BOOTLOADERS_EFI`), lower case; the
/// `.csv` files are shim's pointers to the real loader and its label.
pub const BOOTLOADERS_EFI: &[&str] = &[
    "bootx64.csv",
    "bootaa64.csv",
    "boot.csv",
    "bootia32.efi",
    "bootx64.efi",
    "bootia64.efi",
    "bootarm.efi",
    "bootaa64.efi",
    "bootriscv32.efi",
    "bootriscv64.efi",
    "bootriscv128.efi",
    "grubaa64.efi",
    "winload.efi",
];

/// A partition of a device as a `Read + Write + Seek` stream.
#[derive(Debug)]
pub struct Region {
    file: File,
    base: u64,
    len: u64,
    pos: u64,
}

impl Region {
    /// The `len` bytes of `file` from `base`.
    pub fn new(file: &File, base: u64, len: u64) -> Result<Self> {
        let file = file
            .try_clone()
            .map_err(|e| AgentError::io("duplicating the device handle", e))?;
        Ok(Region {
            file,
            base,
            len,
            pos: 0,
        })
    }
}

impl Read for Region {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = self.file.read_at(&mut buf[..n], self.base + self.pos)?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Write for Region {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        if n == 0 && !buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "write past the end of the partition",
            ));
        }
        let put = self.file.write_at(&buf[..n], self.base + self.pos)?;
        self.pos += put as u64;
        Ok(put)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

impl Seek for Region {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let new = match to {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) if p <= self.len => {
                self.pos = p;
                Ok(p)
            }
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek outside the partition",
            )),
        }
    }
}

/// A FAT filesystem on a partition: `fatfs`'s filesystem (every read and
/// write goes through it, by `Deref`) plus raw access to the partition, with
/// which [`write()`] repairs the directories `fatfs` creates (see
/// [`repair_new_dirs`]).
pub struct Fat {
    fs: fatfs::FileSystem<Region>,
    raw: Region,
}

impl std::fmt::Debug for Fat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fat")
            .field("fat_type", &self.fs.fat_type())
            .field("volume_id", &volume_id(self))
            .field("raw", &self.raw)
            .finish()
    }
}

impl std::ops::Deref for Fat {
    type Target = fatfs::FileSystem<Region>;

    fn deref(&self) -> &Self::Target {
        &self.fs
    }
}

impl Fat {
    /// Close the filesystem cleanly (FSInfo written, the dirty flag cleared).
    pub fn unmount(self) -> std::io::Result<()> {
        self.fs.unmount()
    }
}

/// Open the FAT filesystem of `part`.
pub fn open(f: &File, part: &Partition) -> Result<Fat> {
    let r = Region::new(f, part.start, part.len)?;
    let raw = Region::new(f, part.start, part.len)?;
    let fs = fatfs::FileSystem::new(r, fatfs::FsOptions::new()).map_err(|e| {
        AgentError::ImageFormat(format!(
            "partition {} is not a readable FAT filesystem: {e}",
            part.number
        ))
    })?;
    Ok(Fat { fs, raw })
}

/// Make a FAT filesystem on `part` (FAT32 when it is big enough, as
/// `mkfs.vfat` picks), labelled `label`, with the disk's logical sector size
/// as its sector size (4096 on a 4Kn disk, as `mkfs.vfat` does there: UEFI and
/// Linux read no FAT whose sectors are smaller than the disk's); returns its
/// volume id as `blkid` prints it (`ABCD-1234`).
pub fn format(f: &File, part: &Partition, label: &str) -> Result<String> {
    format_with_id(f, part, label, crate::agent::entropy::u32())
}

/// [`format`](fn@format) with the volume id `id` (a copied ESP keeps the id its
/// `/etc/fstab` entry names).
pub fn format_with_id(f: &File, part: &Partition, label: &str, id: u32) -> Result<String> {
    format_sized(f, part, label, id, super::partition::sector_size(f) as u16)
}

fn format_sized(f: &File, part: &Partition, label: &str, id: u32, ss: u16) -> Result<String> {
    let mut r = Region::new(f, part.start, part.len)?;
    let mut l = [b' '; 11];
    for (d, s) in l.iter_mut().zip(label.to_ascii_uppercase().bytes()) {
        *d = s;
    }
    fatfs::format_volume(
        &mut r,
        fatfs::FormatVolumeOptions::new()
            .volume_label(l)
            .volume_id(id)
            .bytes_per_sector(ss),
    )
    .map_err(|e| AgentError::io(format!("formatting partition {}", part.number), e))?;
    // `format_volume` leaves FAT32's FSInfo free count "unknown" (fsck.fat
    // reports it); `mkfs.vfat` writes it: count once, fatfs keeps it current.
    let fs = open(f, part)?;
    fs.stats()
        .and_then(|_| fs.unmount())
        .map_err(|e| AgentError::io(format!("formatting partition {}", part.number), e))?;
    Ok(volume_id_string(id))
}

fn volume_id_string(id: u32) -> String {
    format!("{:04X}-{:04X}", id >> 16, id & 0xFFFF)
}

/// The volume id of a FAT filesystem, as `blkid` prints it (`ABCD-1234`).
pub fn volume_id(fs: &Fat) -> String {
    volume_id_string(fs.volume_id())
}

/// A boot loader found on the ESP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loader {
    /// Path as UEFI wants it: `\EFI\BOOT\BOOTX64.EFI`.
    pub path: String,
    /// The boot entry's label (from shim's CSV, else `ironic1`, `ironic2`, ...).
    pub label: String,
}

fn walk(dir: &fatfs::Dir<'_, Region>, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    for e in dir.iter() {
        let e = e.map_err(|e| AgentError::io("reading the EFI partition", e))?;
        let name = e.file_name();
        if name == "." || name == ".." {
            continue;
        }
        let path = format!("{prefix}/{name}");
        if e.is_dir() {
            walk(&e.to_dir(), &path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Every file of the filesystem (`/EFI/BOOT/BOOTX64.EFI`), in directory order.
pub fn files(fs: &Fat) -> Result<Vec<String>> {
    let mut out = Vec::new();
    walk(&fs.root_dir(), "", &mut out)?;
    Ok(out)
}

/// Read a whole file.
pub fn read(fs: &Fat, path: &str) -> Result<Vec<u8>> {
    let mut f = fs
        .root_dir()
        .open_file(path.trim_start_matches('/'))
        .map_err(|e| AgentError::io(format!("opening {path} on the EFI partition"), e))?;
    let mut b = Vec::new();
    f.read_to_end(&mut b)
        .map_err(|e| AgentError::io(format!("reading {path} on the EFI partition"), e))?;
    Ok(b)
}

/// Write a file, creating its directories.
pub fn write(fs: &Fat, path: &str, data: &[u8]) -> Result<()> {
    let path = path.trim_start_matches('/');
    let mut dir = fs.root_dir();
    let mut parts: Vec<&str> = path.split('/').collect();
    let name = parts.pop().unwrap_or_default();
    for p in parts {
        dir = match dir.open_dir(p) {
            Ok(d) => d,
            Err(_) => {
                let d = dir
                    .create_dir(p)
                    .map_err(|e| AgentError::io(format!("creating {p} on the EFI partition"), e))?;
                // while it is empty: its freed slots become the directory's end
                repair_new_dirs(&fs.raw)
                    .map_err(|e| AgentError::io(format!("creating {p} on the EFI partition"), e))?;
                d
            }
        };
    }
    let mut f = dir
        .create_file(name)
        .map_err(|e| AgentError::io(format!("creating {path} on the EFI partition"), e))?;
    f.truncate()
        .map_err(|e| AgentError::io(format!("truncating {path}"), e))?;
    f.write_all(data)
        .map_err(|e| AgentError::io(format!("writing {path} on the EFI partition"), e))?;
    f.flush()
        .map_err(|e| AgentError::io(format!("writing {path} on the EFI partition"), e))
}

/// The geometry of a FAT filesystem, from its boot sector.
struct Geometry {
    /// Bytes per cluster.
    cluster: u64,
    /// Byte offset of cluster 2.
    data: u64,
    /// Byte offset of the first FAT.
    fat: u64,
    /// 12, 16 or 32.
    bits: u8,
    /// Number of data clusters.
    clusters: u32,
    /// FAT12/16: byte offset and length of the fixed root directory;
    /// FAT32: the root directory's first cluster.
    root: Root,
}

enum Root {
    Fixed(u64, u64),
    Cluster(u32),
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned())
}

impl Geometry {
    fn read(r: &Region) -> std::io::Result<Self> {
        let mut b = [0u8; 512];
        r.file.read_exact_at(&mut b, r.base)?;
        let u16_at = |o: usize| u64::from(u16::from_le_bytes([b[o], b[o + 1]]));
        let u32_at = |o: usize| u64::from(u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]));
        let bps = u16_at(11);
        let spc = u64::from(b[13]);
        let reserved = u16_at(14);
        let fats = u64::from(b[16]);
        let root_entries = u16_at(17);
        let total = match u16_at(19) {
            0 => u32_at(32),
            n => n,
        };
        let fat_size = match u16_at(22) {
            0 => u32_at(36),
            n => n,
        };
        if !bps.is_power_of_two() || !(512..=4096).contains(&bps) || spc == 0 || fats == 0 {
            return Err(invalid("not a FAT boot sector"));
        }
        let root_sectors = (root_entries * 32).div_ceil(bps);
        let first_data = reserved + fats * fat_size + root_sectors;
        let clusters = total
            .checked_sub(first_data)
            .ok_or_else(|| invalid("FAT boot sector: no data area"))?
            / spc;
        // The FAT type follows from the cluster count alone (Microsoft's spec).
        let bits = match clusters {
            0..4085 => 12,
            4085..65525 => 16,
            _ => 32,
        };
        let root = if bits == 32 {
            Root::Cluster(u32_at(44) as u32)
        } else {
            Root::Fixed((reserved + fats * fat_size) * bps, root_entries * 32)
        };
        Ok(Geometry {
            cluster: spc * bps,
            data: first_data * bps,
            fat: reserved * bps,
            bits,
            clusters: clusters as u32,
            root,
        })
    }

    fn valid(&self, c: u32) -> bool {
        (2..self.clusters + 2).contains(&c)
    }

    fn offset(&self, c: u32) -> u64 {
        self.data + u64::from(c - 2) * self.cluster
    }

    fn next(&self, r: &Region, c: u32) -> std::io::Result<Option<u32>> {
        let n = match self.bits {
            12 => {
                let mut b = [0u8; 2];
                r.file
                    .read_exact_at(&mut b, r.base + self.fat + u64::from(c) * 3 / 2)?;
                let v = u32::from(u16::from_le_bytes(b));
                if c.is_multiple_of(2) {
                    v & 0xFFF
                } else {
                    v >> 4
                }
            }
            16 => {
                let mut b = [0u8; 2];
                r.file
                    .read_exact_at(&mut b, r.base + self.fat + u64::from(c) * 2)?;
                u32::from(u16::from_le_bytes(b))
            }
            _ => {
                let mut b = [0u8; 4];
                r.file
                    .read_exact_at(&mut b, r.base + self.fat + u64::from(c) * 4)?;
                u32::from_le_bytes(b) & 0x0FFF_FFFF
            }
        };
        Ok(self.valid(n).then_some(n))
    }

    /// The byte ranges of a directory: its cluster chain (or FAT12/16's
    /// fixed root), at most as many clusters as the filesystem has.
    fn extents(&self, r: &Region, first: Option<u32>) -> std::io::Result<Vec<(u64, u64)>> {
        let mut c = match (first, &self.root) {
            (Some(c), _) => c,
            (None, Root::Cluster(c)) => *c,
            (None, Root::Fixed(at, len)) => return Ok(vec![(*at, *len)]),
        };
        let mut out = Vec::new();
        loop {
            if !self.valid(c) || out.len() > self.clusters as usize {
                return Err(invalid("a directory's cluster chain leaves the filesystem"));
            }
            out.push((self.offset(c), self.cluster));
            match self.next(r, c)? {
                Some(n) => c = n,
                None => return Ok(out),
            }
        }
    }
}

const DOT: &[u8; 11] = b".          ";
const DOTDOT: &[u8; 11] = b"..         ";
const ATTR_LFN: u8 = 0x0F;
const ATTR_DIR: u8 = 0x10;
const ATTR_VOLUME: u8 = 0x08;

fn entry_cluster(e: &[u8], bits: u8) -> u32 {
    let hi = if bits == 32 {
        u32::from(u16::from_le_bytes([e[20], e[21]]))
    } else {
        0
    };
    (hi << 16) | u32::from(u16::from_le_bytes([e[26], e[27]]))
}

fn set_entry_cluster(e: &mut [u8], c: u32) {
    e[20..22].copy_from_slice(&((c >> 16) as u16).to_le_bytes());
    e[26..28].copy_from_slice(&(c as u16).to_le_bytes());
}

/// Repair the directories `fatfs` 0.3 creates so that `fsck.fat` (and any
/// strict reader) accepts them. `fatfs::Dir::create_dir` writes a long-name
/// entry before each of "." and "..", so "." is not the directory's first
/// entry nor ".." its second, and in a FAT32 root's subdirectory ".." names
/// the root's cluster instead of 0. Linux, mtools and OVMF read such
/// directories, `fsck.fat -n` reports them. Every directory of the tree whose
/// first cluster has that layout is rewritten in place to "." and ".." first
/// (their short entries, ".." pointing at the parent, 0 for the root) and the
/// two long-name entries dropped; a directory laid out otherwise is left
/// alone. Idempotent.
pub fn repair_new_dirs(r: &Region) -> std::io::Result<()> {
    let g = Geometry::read(r)?;
    let mut seen = std::collections::HashSet::new();
    // (directory's first cluster or None for the root, its parent's cluster: 0 = root)
    let mut todo: Vec<(Option<u32>, u32)> = vec![(None, 0)];
    while let Some((dir, parent)) = todo.pop() {
        let extents = g.extents(r, dir)?;
        if let Some(c) = dir {
            repair_dir(r, &g, c, parent)?;
        }
        let own = dir.unwrap_or(0);
        'scan: for (at, len) in extents {
            let mut buf = vec![0u8; len as usize];
            r.file.read_exact_at(&mut buf, r.base + at)?;
            for e in buf.chunks_exact(32) {
                match e[0] {
                    0 => break 'scan,
                    0xE5 => continue,
                    _ => {}
                }
                let attr = e[11];
                if attr == ATTR_LFN || attr & ATTR_VOLUME != 0 || attr & ATTR_DIR == 0 {
                    continue;
                }
                if &e[..11] == DOT || &e[..11] == DOTDOT {
                    continue;
                }
                let c = entry_cluster(e, g.bits);
                if g.valid(c) && seen.insert(c) {
                    todo.push((Some(c), own));
                }
            }
        }
    }
    r.file.sync_data()
}

/// Rewrite one directory's first entries if they have `fatfs`'s layout:
/// LFN, "." , LFN, "..".
fn repair_dir(r: &Region, g: &Geometry, c: u32, parent: u32) -> std::io::Result<()> {
    let at = r.base + g.offset(c);
    // A cluster holds at least 512 bytes: 16 entries.
    let mut b = [0u8; 5 * 32];
    r.file.read_exact_at(&mut b, at)?;
    let e = |i: usize| &b[i * 32..(i + 1) * 32];
    let lfn = |i: usize| e(i)[0] != 0xE5 && e(i)[11] == ATTR_LFN;
    let sfn = |i: usize, name: &[u8; 11]| &e(i)[..11] == name && e(i)[11] & ATTR_DIR != 0;
    if !(lfn(0) && sfn(1, DOT) && lfn(2) && sfn(3, DOTDOT)) {
        return Ok(());
    }
    let mut out = [0u8; 4 * 32];
    out[..32].copy_from_slice(e(1));
    set_entry_cluster(&mut out[..32], c);
    out[32..64].copy_from_slice(e(3));
    set_entry_cluster(&mut out[32..64], parent);
    // The two freed slots: the end of the directory when nothing follows
    // them (a directory just created), else deleted entries (later entries
    // stay where they are).
    if e(4)[0] != 0 {
        out[64] = 0xE5;
        out[96] = 0xE5;
    }
    r.file.write_all_at(&out, at)
}

fn backslashes(p: &str) -> String {
    p.replace('/', "\\")
}

/// Decode a shim CSV (UTF-16, with or without BOM): `loader,label,options,description`.
fn parse_csv(data: &[u8]) -> Option<(String, String)> {
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let text = String::from_utf16_lossy(&units);
    let text = text.trim_start_matches('\u{feff}');
    let mut it = text.splitn(4, ',');
    let loader = it.next()?.trim().to_owned();
    let label = it.next()?.trim().to_owned();
    (!loader.is_empty()).then_some((loader, label))
}

/// The boot loaders on the ESP, as IPA's `_get_efi_bootloaders` +
/// `_run_efibootmgr` choose them: a shim CSV wins and names the loader and the
/// label; otherwise every known loader file, labelled `ironic1`, `ironic2`, ...
pub fn find_loaders(fs: &Fat) -> Result<Vec<Loader>> {
    let all = files(fs)?;
    let known: Vec<&String> = all
        .iter()
        .filter(|p| {
            let base = p.rsplit('/').next().unwrap_or("").to_ascii_lowercase();
            BOOTLOADERS_EFI.contains(&base.as_str())
        })
        .collect();
    if let Some(csv) = known
        .iter()
        .find(|p| p.to_ascii_lowercase().ends_with(".csv"))
        && let Some((loader, label)) = parse_csv(&read(fs, csv)?)
    {
        let dir = &csv[..csv.rfind('/').unwrap_or(0)];
        return Ok(vec![Loader {
            path: backslashes(&format!("{dir}/{loader}")),
            label,
        }]);
    }
    Ok(known
        .iter()
        .filter(|p| !p.to_ascii_lowercase().ends_with(".csv"))
        .enumerate()
        .map(|(i, p)| Loader {
            path: backslashes(p),
            label: format!("ironic{}", i + 1),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esp(size: u64) -> (tempfile::TempDir, File, Partition) {
        let d = tempfile::tempdir().unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(d.path().join("disk"))
            .unwrap();
        f.set_len(size + (1 << 20)).unwrap();
        let p = Partition {
            number: 1,
            start: 1 << 20,
            len: size,
            name: "EFI".into(),
            uuid: String::new(),
            kind: super::super::partition::PartKind::Gpt(super::super::partition::ESP),
        };
        (d, f, p)
    }

    /// `fsck.fat -n` (dosfstools) on a filesystem image: its report, or a panic
    /// saying how to install it.
    fn fsck(path: &std::path::Path) -> (bool, String) {
        let out = std::process::Command::new("fsck.fat")
            .arg("-n")
            .arg(path)
            .output()
            .or_else(|_| {
                std::process::Command::new("/usr/sbin/fsck.fat")
                    .arg("-n")
                    .arg(path)
                    .output()
            })
            .expect("fsck.fat is missing: apt-get install dosfstools");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Check every subdirectory as dosfstools' `handle_dot` (newer than the
    /// 4.2 Debian ships) does: "." in the first slot naming the directory,
    /// ".." in the second naming the parent (0 for the root). Returns how
    /// many directories were checked.
    fn check_dots(r: &Region) -> usize {
        let g = Geometry::read(r).unwrap();
        let mut todo = vec![(None, 0u32)];
        let mut checked = 0;
        while let Some((dir, parent)) = todo.pop() {
            let mut entries = Vec::new();
            for (at, len) in g.extents(r, dir).unwrap() {
                let mut b = vec![0u8; len as usize];
                r.file.read_exact_at(&mut b, r.base + at).unwrap();
                entries.extend(b.chunks_exact(32).map(<[u8]>::to_vec));
            }
            if let Some(own) = dir {
                assert_eq!(&entries[0][..11], DOT, "first slot of cluster {own}");
                assert_eq!(entry_cluster(&entries[0], g.bits), own);
                assert_eq!(&entries[1][..11], DOTDOT, "second slot of cluster {own}");
                assert_eq!(entry_cluster(&entries[1], g.bits), parent, "'..' of {own}");
                checked += 1;
            }
            for e in entries.iter().take_while(|e| e[0] != 0) {
                if e[0] != 0xE5
                    && e[11] != ATTR_LFN
                    && e[11] & ATTR_DIR != 0
                    && &e[..11] != DOT
                    && &e[..11] != DOTDOT
                {
                    todo.push((Some(entry_cluster(e, g.bits)), dir.unwrap_or(0)));
                }
            }
        }
        checked
    }

    /// Directories created by [`write`] pass `fsck.fat -n` on FAT12, FAT16 and
    /// FAT32 (512- and 4096-byte sectors), and stay readable and writable
    /// through `fatfs` afterwards.
    #[test]
    fn created_directories_pass_fsck() {
        for (size, sector) in [
            (2u64 << 20, 512u16),
            (40 << 20, 512),
            (600 << 20, 512),
            (600 << 20, 4096),
        ] {
            let d = tempfile::tempdir().unwrap();
            let path = d.path().join("esp");
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            f.set_len(size).unwrap();
            let p = Partition {
                number: 1,
                start: 0,
                len: size,
                name: "EFI".into(),
                uuid: String::new(),
                kind: super::super::partition::PartKind::Gpt(super::super::partition::ESP),
            };
            format_sized(&f, &p, "efi-part", 0x1234_abcd, sector).unwrap();
            let fs = open(&f, &p).unwrap();
            let kind = format!("{:?}/{sector}", fs.fat_type());
            write(&fs, "/EFI/BOOT/BOOTX64.EFI", b"MZ loader").unwrap();
            write(&fs, "/EFI/debian/grubx64.efi", b"MZ grub").unwrap();
            write(&fs, "/EFI/debian/grub.cfg", b"search --fs-uuid").unwrap();
            write(&fs, "/boot/grub/x86_64-efi/normal.mod", b"mod").unwrap();
            write(&fs, "/A Long Directory Name/x", b"x").unwrap();
            assert_eq!(check_dots(&fs.raw), 7, "{kind}");
            // a second pass changes nothing
            repair_new_dirs(&fs.raw).unwrap();
            assert_eq!(check_dots(&fs.raw), 7, "{kind}");
            assert_eq!(
                read(&fs, "/EFI/debian/grub.cfg").unwrap(),
                b"search --fs-uuid"
            );
            let mut all = files(&fs).unwrap();
            all.sort();
            assert_eq!(
                all,
                [
                    "/A Long Directory Name/x",
                    "/EFI/BOOT/BOOTX64.EFI",
                    "/EFI/debian/grub.cfg",
                    "/EFI/debian/grubx64.efi",
                    "/boot/grub/x86_64-efi/normal.mod"
                ],
                "{kind}"
            );
            // "." and ".." come first and are what fatfs's iterator shows
            let names: Vec<String> = fs
                .root_dir()
                .open_dir("EFI/debian")
                .unwrap()
                .iter()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, [".", "..", "grubx64.efi", "grub.cfg"], "{kind}");
            fs.unmount().unwrap();
            let (ok, report) = fsck(&path);
            assert!(ok, "{kind}: fsck.fat -n failed:\n{report}");
            assert!(
                !report.contains("Bad") && !report.contains("should be"),
                "{kind}: {report}"
            );
        }
    }

    #[test]
    fn loaders_fallback_and_shim_csv() {
        let (_d, f, p) = esp(40 << 20);
        let id = format(&f, &p, "efi-part").unwrap();
        let fs = open(&f, &p).unwrap();
        assert_eq!(volume_id(&fs), id);
        write(&fs, "/EFI/BOOT/BOOTX64.EFI", b"MZ loader").unwrap();
        write(&fs, "/EFI/debian/grubx64.efi", b"MZ grub").unwrap();
        let l = find_loaders(&fs).unwrap();
        assert_eq!(
            l,
            vec![Loader {
                path: "\\EFI\\BOOT\\BOOTX64.EFI".into(),
                label: "ironic1".into()
            }]
        );
        // shim's CSV names the loader and the label, in UTF-16 with a BOM
        let csv: Vec<u8> = "\u{feff}shimx64.efi,debian,,This is the boot entry for debian\n"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        write(&fs, "/EFI/debian/BOOTX64.CSV", &csv).unwrap();
        let l = find_loaders(&fs).unwrap();
        assert_eq!(
            l,
            vec![Loader {
                path: "\\EFI\\debian\\shimx64.efi".into(),
                label: "debian".into()
            }]
        );
        assert_eq!(read(&fs, "/EFI/debian/grubx64.efi").unwrap(), b"MZ grub");
        drop(fs);
        // a partition that is not FAT is a clear error
        let (_d2, f2, p2) = esp(4 << 20);
        assert!(matches!(open(&f2, &p2), Err(AgentError::ImageFormat(_))));
    }
}
