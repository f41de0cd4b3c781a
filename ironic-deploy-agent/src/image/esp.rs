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

/// A FAT filesystem on a partition.
pub type Fat = fatfs::FileSystem<Region>;

/// Open the FAT filesystem of `part`.
pub fn open(f: &File, part: &Partition) -> Result<Fat> {
    let r = Region::new(f, part.start, part.len)?;
    fatfs::FileSystem::new(r, fatfs::FsOptions::new()).map_err(|e| {
        AgentError::ImageFormat(format!(
            "partition {} is not a readable FAT filesystem: {e}",
            part.number
        ))
    })
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
    let ss = super::partition::sector_size(f);
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
            .bytes_per_sector(ss as u16),
    )
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
            Err(_) => dir
                .create_dir(p)
                .map_err(|e| AgentError::io(format!("creating {p} on the EFI partition"), e))?,
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
