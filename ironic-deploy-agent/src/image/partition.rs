//! Partition tables: just enough GPT and MBR to do what IPA does with `sgdisk`/
//! `parted`: move a whole-disk image's backup GPT to the end of a bigger disk,
//! add the config drive partition at the end of the disk, make a partition table
//! for a partition image, and find partitions by label.
//!
//! Every table is read and written in the disk's logical sector size (512 bytes,
//! or 4096 on 4Kn disks): a block device says it (`BLKSSZGET`); a file is taken
//! as 512-byte sectors unless it holds a GPT made for 4096-byte ones.

use std::fs::File;
use std::os::unix::fs::FileExt;

use uuid::Uuid;

use crate::error::{AgentError, Result};

/// Logical sector size of files and most disks.
pub const SECTOR: u64 = 512;
/// Logical sector size of 4Kn ("4K native") disks.
pub const SECTOR_4K: u64 = 4096;
const ALIGN_BYTES: u64 = 1 << 20; // partitions start on 1 MiB boundaries
const ENTRIES: u64 = 128;
const ENTRY_SIZE: u64 = 128;

/// Sectors of the GPT partition array (32 with 512-byte sectors, 4 with 4096).
fn entry_sectors(ss: u64) -> u64 {
    (ENTRIES * ENTRY_SIZE).div_ceil(ss)
}

/// 1 MiB in sectors.
fn align(ss: u64) -> u64 {
    ALIGN_BYTES / ss
}

/// The logical sector size of `f`: what the kernel says of a block device
/// (`BLKSSZGET`); for a regular file, 4096 when it holds a GPT made for
/// 4096-byte sectors (and none for 512-byte ones), else 512.
pub fn sector_size(f: &File) -> u64 {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(m) = f.metadata()
        && m.file_type().is_block_device()
    {
        return match rustix::fs::ioctl_blksszget(f) {
            Ok(n) if n.is_power_of_two() && (512..=65536).contains(&n) => u64::from(n),
            _ => SECTOR,
        };
    }
    let gpt_at = |off: u64| {
        let mut b = [0u8; 8];
        f.read_exact_at(&mut b, off).is_ok() && &b == b"EFI PART"
    };
    if !gpt_at(SECTOR) && gpt_at(SECTOR_4K) {
        SECTOR_4K
    } else {
        SECTOR
    }
}

/// After a whole-disk image was written to a disk of `ss`-byte sectors: fail
/// clearly when the image's partition table was made for another sector size
/// (a 512-byte-sector image on a 4Kn disk, or the reverse): its partitions
/// would point at the wrong places and nothing on it could be found or booted.
/// IPA writes such an image and fails later, in `sgdisk` or at boot.
pub fn check_image_sector_size(f: &File, ss: u64) -> Result<()> {
    let gpt_at = |off: u64| {
        let mut b = [0u8; 8];
        f.read_exact_at(&mut b, off).is_ok() && &b == b"EFI PART"
    };
    let mismatch = |made: u64| {
        Err(AgentError::ImageFormat(format!(
            "the image's partition table is made for {made}-byte sectors but the disk has \
             {ss}-byte logical sectors: use an image built for {ss}-byte sectors"
        )))
    };
    if gpt_at(ss) {
        return Ok(());
    }
    for other in [SECTOR, SECTOR_4K] {
        if other != ss && gpt_at(other) {
            return mismatch(other);
        }
    }
    // MBR: its partitions count in sectors; a filesystem found where they
    // point with another sector size, and not with this one, tells
    let m = read_at(f, 0, 512)?;
    if m[510] != 0x55 || m[511] != 0xAA {
        return Ok(());
    }
    for i in 0..4 {
        let e = &m[446 + i * 16..446 + (i + 1) * 16];
        let first = u64::from(le32(e, 8));
        if e[4] == 0 || e[4] == 0xEE || first == 0 {
            continue;
        }
        if fs_uuid(f, first * ss).is_some() {
            return Ok(());
        }
        for other in [SECTOR, SECTOR_4K] {
            if other != ss && fs_uuid(f, first * other).is_some() {
                return mismatch(other);
            }
        }
    }
    Ok(())
}

/// GPT type GUID of Linux filesystem data.
pub const LINUX_FS: Uuid = Uuid::from_u128(0x0FC63DAF_8483_4772_8E79_3D69D8477DE4);
/// GPT type GUID of Linux swap.
pub const LINUX_SWAP: Uuid = Uuid::from_u128(0x0657FD6D_A4AB_43C4_84E5_0933C84B4F4F);

/// GPT type GUID of the EFI System Partition.
pub const ESP: Uuid = Uuid::from_u128(0xC12A7328_F81F_11D2_BA4B_00A0C93EC93B);
/// GPT type GUID of the BIOS boot partition (where GRUB puts its core image on GPT).
pub const BIOS_BOOT: Uuid = Uuid::from_u128(0x21686148_6E55_6E1F_744E_656564454649);

/// A partition's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartKind {
    /// GPT partition type GUID.
    Gpt(Uuid),
    /// MBR partition type byte (0x83 Linux, 0xEF EFI, ...).
    Mbr(u8),
}

/// One partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// 1-based number (as in `/dev/sda1`).
    pub number: u32,
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// GPT partition name (empty on MBR).
    pub name: String,
    /// GPT unique partition GUID, or `<disk id>-<nn>` on MBR (as `blkid` PARTUUID).
    pub uuid: String,
    /// Its type.
    pub kind: PartKind,
}

impl Partition {
    /// Whether this is an EFI System Partition (GPT type `EF00`, MBR type `0xEF`).
    pub fn is_esp(&self) -> bool {
        matches!(self.kind, PartKind::Gpt(g) if g == ESP) || self.kind == PartKind::Mbr(0xEF)
    }
}

/// A disk's partition table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Table {
    /// GPT, with its disk GUID.
    Gpt {
        /// Disk GUID.
        disk_guid: Uuid,
        /// Partitions.
        parts: Vec<Partition>,
    },
    /// MBR (msdos) with its 32-bit disk identifier.
    Mbr {
        /// Disk identifier.
        disk_id: u32,
        /// Primary partitions.
        parts: Vec<Partition>,
    },
    /// No partition table.
    None,
}

impl Table {
    /// The partitions.
    pub fn partitions(&self) -> &[Partition] {
        match self {
            Table::Gpt { parts, .. } | Table::Mbr { parts, .. } => parts,
            Table::None => &[],
        }
    }

    /// What IPA reports as the whole disk's `root uuid`: the GPT disk GUID or the
    /// MBR disk identifier (`0x1234abcd`).
    pub fn disk_identifier(&self) -> Option<String> {
        match self {
            Table::Gpt { disk_guid, .. } => Some(disk_guid.to_string()),
            Table::Mbr { disk_id, .. } => Some(format!("0x{disk_id:08x}")),
            Table::None => None,
        }
    }
}

fn io(what: &str, e: std::io::Error) -> AgentError {
    AgentError::io(what.to_owned(), e)
}

fn read_at(f: &File, off: u64, len: usize) -> Result<Vec<u8>> {
    let mut b = vec![0u8; len];
    f.read_exact_at(&mut b, off)
        .map_err(|e| io("reading the partition table", e))?;
    Ok(b)
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn le64(b: &[u8], o: usize) -> u64 {
    u64::from(le32(b, o)) | (u64::from(le32(b, o + 4)) << 32)
}

#[derive(Clone, Debug)]
struct GptEntry {
    type_guid: Uuid,
    uuid: Uuid,
    first: u64,
    last: u64,
    attrs: u64,
    name: String,
}

fn read_gpt(f: &File, ss: u64) -> Result<Option<(Uuid, Vec<GptEntry>)>> {
    let h = read_at(f, ss, 512)?;
    if &h[..8] != b"EFI PART" {
        return Ok(None);
    }
    let hsize = le32(&h, 12) as usize;
    if !(92..=512).contains(&hsize) {
        return Err(AgentError::ImageFormat(
            "GPT header has an invalid size".into(),
        ));
    }
    let mut hc = h[..hsize].to_vec();
    hc[16..20].fill(0);
    if crc32fast::hash(&hc) != le32(&h, 16) {
        return Err(AgentError::ImageFormat(
            "GPT header checksum is wrong".into(),
        ));
    }
    let disk_guid = Uuid::from_bytes_le(h[56..72].try_into().expect("16 bytes"));
    let entries_lba = le64(&h, 72);
    let n = u64::from(le32(&h, 80));
    let esz = u64::from(le32(&h, 84));
    if n > 1024 || !(128..=1024).contains(&esz) {
        return Err(AgentError::ImageFormat(
            "GPT partition array is implausible".into(),
        ));
    }
    let arr = read_at(f, entries_lba * ss, (n * esz) as usize)?;
    if crc32fast::hash(&arr) != le32(&h, 88) {
        return Err(AgentError::ImageFormat(
            "GPT partition array checksum is wrong".into(),
        ));
    }
    let mut out = Vec::new();
    for e in arr.chunks_exact(esz as usize) {
        let type_guid = Uuid::from_bytes_le(e[0..16].try_into().expect("16"));
        if type_guid.is_nil() {
            out.push(GptEntry {
                type_guid,
                uuid: Uuid::nil(),
                first: 0,
                last: 0,
                attrs: 0,
                name: String::new(),
            });
            continue;
        }
        let name: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&c| c != 0)
            .collect();
        out.push(GptEntry {
            type_guid,
            uuid: Uuid::from_bytes_le(e[16..32].try_into().expect("16")),
            first: le64(e, 32),
            last: le64(e, 40),
            attrs: le64(e, 48),
            name: String::from_utf16_lossy(&name),
        });
    }
    Ok(Some((disk_guid, out)))
}

/// Read the partition table of a disk (in its logical sector size).
pub fn read_table(f: &File) -> Result<Table> {
    read_table_ss(f, sector_size(f))
}

/// Read the partition table of a disk of `ss`-byte logical sectors.
pub fn read_table_ss(f: &File, ss: u64) -> Result<Table> {
    if let Some((disk_guid, entries)) = read_gpt(f, ss)? {
        let parts = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.type_guid.is_nil())
            .map(|(i, e)| Partition {
                number: i as u32 + 1,
                start: e.first * ss,
                len: (e.last + 1 - e.first) * ss,
                name: e.name.clone(),
                uuid: e.uuid.to_string(),
                kind: PartKind::Gpt(e.type_guid),
            })
            .collect();
        return Ok(Table::Gpt { disk_guid, parts });
    }
    let m = read_at(f, 0, 512)?;
    if m[510] != 0x55 || m[511] != 0xAA {
        return Ok(Table::None);
    }
    let disk_id = le32(&m, 440);
    let mut parts = Vec::new();
    for i in 0..4 {
        let e = &m[446 + i * 16..446 + (i + 1) * 16];
        let ty = e[4];
        let first = u64::from(le32(e, 8));
        let count = u64::from(le32(e, 12));
        if ty == 0 || count == 0 || ty == 0xEE {
            continue;
        }
        parts.push(Partition {
            number: i as u32 + 1,
            start: first * ss,
            len: count * ss,
            name: String::new(),
            uuid: format!("{disk_id:08x}-{:02x}", i + 1),
            kind: PartKind::Mbr(ty),
        });
    }
    Ok(Table::Mbr { disk_id, parts })
}

fn write_gpt(
    f: &File,
    ss: u64,
    disk_size: u64,
    disk_guid: Uuid,
    entries: &[GptEntry],
) -> Result<()> {
    let sectors = disk_size / ss;
    let entry_sectors = entry_sectors(ss);
    if sectors < 2 * (entry_sectors + 2) + 1 {
        return Err(AgentError::DiskTooSmall("disk too small for a GPT".into()));
    }
    let last = sectors - 1;
    let first_usable = 2 + entry_sectors;
    let last_usable = last - 1 - entry_sectors;
    let mut arr = vec![0u8; (ENTRIES * ENTRY_SIZE) as usize];
    for (i, e) in entries.iter().take(ENTRIES as usize).enumerate() {
        if e.type_guid.is_nil() {
            continue;
        }
        if e.first < first_usable || e.last > last_usable || e.last < e.first {
            return Err(AgentError::DiskTooSmall(format!(
                "partition {} ({}..{}) does not fit the disk's usable sectors {first_usable}..{last_usable}",
                i + 1,
                e.first,
                e.last
            )));
        }
        let o = i * ENTRY_SIZE as usize;
        arr[o..o + 16].copy_from_slice(&e.type_guid.to_bytes_le());
        arr[o + 16..o + 32].copy_from_slice(&e.uuid.to_bytes_le());
        arr[o + 32..o + 40].copy_from_slice(&e.first.to_le_bytes());
        arr[o + 40..o + 48].copy_from_slice(&e.last.to_le_bytes());
        arr[o + 48..o + 56].copy_from_slice(&e.attrs.to_le_bytes());
        for (j, c) in e.name.encode_utf16().take(36).enumerate() {
            arr[o + 56 + 2 * j..o + 58 + 2 * j].copy_from_slice(&c.to_le_bytes());
        }
    }
    let arr_crc = crc32fast::hash(&arr);
    let header = |cur: u64, alt: u64, entries_lba: u64| {
        let mut h = vec![0u8; ss as usize];
        h[..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&cur.to_le_bytes());
        h[32..40].copy_from_slice(&alt.to_le_bytes());
        h[40..48].copy_from_slice(&first_usable.to_le_bytes());
        h[48..56].copy_from_slice(&last_usable.to_le_bytes());
        h[56..72].copy_from_slice(&disk_guid.to_bytes_le());
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&(ENTRIES as u32).to_le_bytes());
        h[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
        h[88..92].copy_from_slice(&arr_crc.to_le_bytes());
        let crc = crc32fast::hash(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    };
    // protective MBR
    let mut mbr = read_at(f, 0, 512)?;
    mbr[446..510].fill(0);
    let e = &mut mbr[446..462];
    e[1..4].copy_from_slice(&[0, 2, 0]);
    e[4] = 0xEE;
    e[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    e[8..12].copy_from_slice(&1u32.to_le_bytes());
    e[12..16].copy_from_slice(&((last).min(0xFFFF_FFFF) as u32).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    let w = |off: u64, b: &[u8]| f.write_all_at(b, off).map_err(|e| io("writing the GPT", e));
    w(0, &mbr)?;
    w(ss, &header(1, last, 2))?;
    w(2 * ss, &arr)?;
    w((last - entry_sectors) * ss, &arr)?;
    w(last * ss, &header(last, 1, last - entry_sectors))?;
    f.sync_all()
        .map_err(|e| io("fsync after writing the GPT", e))
}

/// After a whole-disk image was written: if it has a GPT made for a smaller disk,
/// move the backup GPT to the end of this one (`sgdisk -e`).
pub fn fix_gpt(f: &File, disk_size: u64) -> Result<()> {
    let ss = sector_size(f);
    if let Some((guid, entries)) = read_gpt(f, ss)? {
        write_gpt(f, ss, disk_size, guid, &entries)?;
    }
    Ok(())
}

/// Create a new partition of `size` bytes at the end of the disk (after every
/// existing partition), named `name` on GPT. Returns it.
pub fn add_partition_at_end(f: &File, disk_size: u64, size: u64, name: &str) -> Result<Partition> {
    let ss = sector_size(f);
    let sectors = disk_size / ss;
    let want = size.div_ceil(ss);
    let align = align(ss);
    match read_table_ss(f, ss)? {
        Table::Gpt { .. } => {
            let (guid, entries) = read_gpt(f, ss)?.expect("GPT present");
            let last_usable = sectors - 2 - entry_sectors(ss);
            let used_end = entries
                .iter()
                .filter(|e| !e.type_guid.is_nil())
                .map(|e| e.last)
                .max()
                .unwrap_or(2 + entry_sectors(ss));
            let first = (last_usable + 1).saturating_sub(want) / align * align;
            if last_usable + 1 < want || first <= used_end {
                return Err(AgentError::DiskTooSmall(format!(
                    "no room for a {} MiB partition after the image's partitions",
                    size >> 20
                )));
            }
            gpt_insert(
                f,
                ss,
                disk_size,
                guid,
                entries,
                LINUX_FS,
                first,
                first + want - 1,
                name,
            )
        }
        Table::Mbr { disk_id, parts } => {
            let m = read_at(f, 0, 512)?;
            let slot = (0..4).find(|i| m[446 + i * 16 + 4] == 0).ok_or_else(|| {
                AgentError::ImageFormat(
                    "the MBR has no free primary partition slot for the config drive".into(),
                )
            })?;
            let used_end = parts
                .iter()
                .map(|p| (p.start + p.len) / ss)
                .max()
                .unwrap_or(1);
            let end = sectors.min(0xFFFF_FFFF);
            let first = end.saturating_sub(want) / align * align;
            if end < want || first < used_end {
                return Err(AgentError::DiskTooSmall(format!(
                    "no room for a {} MiB partition after the image's partitions",
                    size >> 20
                )));
            }
            mbr_insert(f, m, slot, disk_id, 0x83, first, want, ss)
        }
        Table::None => Err(AgentError::ImageFormat(
            "the image has no partition table, so no config drive partition can be added".into(),
        )),
    }
}

/// Add a partition at byte `start` (rounded up to 1 MiB) of `size` bytes
/// (`None`: up to the end of the disk) to the disk's GPT or MBR, in the first
/// free entry, as `parted mkpart` / `sgdisk -n 0:start:+size` do; with type
/// `type_guid` (its MBR type byte on msdos) and GPT name `name`. Refuses a
/// partition that overlaps another or does not fit. Returns it.
pub fn add_partition(
    f: &File,
    disk_size: u64,
    start: u64,
    size: Option<u64>,
    type_guid: Uuid,
    name: &str,
) -> Result<Partition> {
    let ss = sector_size(f);
    let sectors = disk_size / ss;
    let align = align(ss);
    let first = start.div_ceil(ss).div_ceil(align) * align;
    let too_small = |len: u64| {
        AgentError::DiskTooSmall(format!(
            "a {} MiB partition at {} MiB does not fit the {} MiB disk",
            (len * ss) >> 20,
            (first * ss) >> 20,
            disk_size >> 20
        ))
    };
    let overlaps = |a: u64, b: u64, p: &Partition| a < (p.start + p.len) / ss && p.start / ss <= b;
    match read_table_ss(f, ss)? {
        Table::Gpt { parts, .. } => {
            let (guid, entries) = read_gpt(f, ss)?.expect("GPT present");
            let last_usable = sectors - 2 - entry_sectors(ss);
            let len = match size {
                Some(s) => s.div_ceil(ss).div_ceil(align) * align,
                None => (last_usable + 1).saturating_sub(first),
            };
            if len == 0 || first + len - 1 > last_usable {
                return Err(too_small(len));
            }
            let last = first + len - 1;
            if let Some(p) = parts.iter().find(|p| overlaps(first, last, p)) {
                return Err(AgentError::InvalidParams(format!(
                    "a partition at {} MiB would overlap partition {}",
                    (first * ss) >> 20,
                    p.number
                )));
            }
            gpt_insert(
                f, ss, disk_size, guid, entries, type_guid, first, last, name,
            )
        }
        Table::Mbr { disk_id, parts } => {
            let m = read_at(f, 0, 512)?;
            let slot = (0..4).find(|i| m[446 + i * 16 + 4] == 0).ok_or_else(|| {
                AgentError::InvalidParams("the MBR has no free primary partition slot".into())
            })?;
            let end = sectors.min(0xFFFF_FFFF);
            let len = match size {
                Some(s) => s.div_ceil(ss).div_ceil(align) * align,
                None => end.saturating_sub(first) / align * align,
            };
            if len == 0 || first + len > end {
                return Err(too_small(len));
            }
            if let Some(p) = parts.iter().find(|p| overlaps(first, first + len - 1, p)) {
                return Err(AgentError::InvalidParams(format!(
                    "a partition at {} MiB would overlap partition {}",
                    (first * ss) >> 20,
                    p.number
                )));
            }
            mbr_insert(f, m, slot, disk_id, mbr_type(type_guid), first, len, ss)
        }
        Table::None => Err(AgentError::InvalidParams(
            "the disk has no partition table to add a partition to".into(),
        )),
    }
}

/// Put a partition of sectors `first..=last` with `type_guid` and `name` in
/// the first free entry of the GPT `entries` (appending one while the table has
/// room), write the GPT and return the partition.
#[allow(clippy::too_many_arguments)]
fn gpt_insert(
    f: &File,
    ss: u64,
    disk_size: u64,
    guid: Uuid,
    mut entries: Vec<GptEntry>,
    type_guid: Uuid,
    first: u64,
    last: u64,
    name: &str,
) -> Result<Partition> {
    let slot = match entries.iter().position(|e| e.type_guid.is_nil()) {
        Some(i) => i,
        None if (entries.len() as u64) < ENTRIES => {
            entries.push(GptEntry {
                type_guid: Uuid::nil(),
                uuid: Uuid::nil(),
                first: 0,
                last: 0,
                attrs: 0,
                name: String::new(),
            });
            entries.len() - 1
        }
        None => return Err(AgentError::ImageFormat("the GPT has no free entry".into())),
    };
    let uuid = crate::agent::entropy::uuid_v4();
    entries[slot] = GptEntry {
        type_guid,
        uuid,
        first,
        last,
        attrs: 0,
        name: name.to_owned(),
    };
    write_gpt(f, ss, disk_size, guid, &entries)?;
    Ok(Partition {
        number: slot as u32 + 1,
        start: first * ss,
        len: (last - first + 1) * ss,
        name: name.to_owned(),
        uuid: uuid.to_string(),
        kind: PartKind::Gpt(type_guid),
    })
}

/// Fill primary slot `slot` of the MBR sector `m` with a partition of type `ty`
/// over `len` sectors from `first` (CHS fields as "beyond CHS", as parted
/// writes them), write and fsync it, and return the partition.
#[allow(clippy::too_many_arguments)]
fn mbr_insert(
    f: &File,
    mut m: Vec<u8>,
    slot: usize,
    disk_id: u32,
    ty: u8,
    first: u64,
    len: u64,
    ss: u64,
) -> Result<Partition> {
    let e = &mut m[446 + slot * 16..446 + (slot + 1) * 16];
    e.fill(0);
    e[1..4].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    e[4] = ty;
    e[5..8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    e[8..12].copy_from_slice(&(first as u32).to_le_bytes());
    e[12..16].copy_from_slice(&(len as u32).to_le_bytes());
    f.write_all_at(&m, 0)
        .map_err(|e| io("writing the MBR", e))?;
    f.sync_all()
        .map_err(|e| io("fsync after writing the MBR", e))?;
    Ok(Partition {
        number: slot as u32 + 1,
        start: first * ss,
        len: len * ss,
        name: String::new(),
        uuid: format!("{disk_id:08x}-{:02x}", slot + 1),
        kind: PartKind::Mbr(ty),
    })
}

/// The 0xFD (Linux RAID) MBR type / GPT Linux RAID type GUID.
pub const LINUX_RAID: Uuid = Uuid::from_u128(0xA19D880F_05FC_4D3B_A006_743F0F84911E);

/// A partition to create for a partition image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartSpec {
    /// GPT name.
    pub name: String,
    /// Type.
    pub type_guid: Uuid,
    /// Size in bytes (0: the rest of the disk).
    pub size: u64,
}

/// The MBR type byte for a GPT type (for msdos-labelled partition images).
fn mbr_type(g: Uuid) -> u8 {
    if g == ESP {
        0xEF
    } else if g == LINUX_RAID {
        0xFD
    } else if g == LINUX_SWAP {
        0x82
    } else {
        0x83
    }
}

/// Write a fresh MBR (msdos label) with up to four primary partitions laid out
/// from 1 MiB, 1 MiB aligned; `bootable` gets the active flag (BIOS boot of a
/// partition image, as IPA sets it). Returns the partitions.
pub fn create_mbr(
    f: &File,
    disk_size: u64,
    specs: &[PartSpec],
    bootable: Option<usize>,
) -> Result<(u32, Vec<Partition>)> {
    if specs.len() > 4 {
        return Err(AgentError::InvalidParams(format!(
            "an msdos partition table holds 4 primary partitions, {} were asked for",
            specs.len()
        )));
    }
    let ss = sector_size(f);
    let align = align(ss);
    let sectors = (disk_size / ss).min(0xFFFF_FFFF);
    let disk_id: u32 = crate::agent::entropy::u32() | 1;
    let mut m = vec![0u8; 512];
    m[440..444].copy_from_slice(&disk_id.to_le_bytes());
    let mut parts = Vec::new();
    let mut next = align;
    for (i, s) in specs.iter().enumerate() {
        let len = if s.size == 0 {
            sectors.saturating_sub(next) / align * align
        } else {
            s.size.div_ceil(ss).div_ceil(align) * align
        };
        if len == 0 || next + len > sectors {
            return Err(AgentError::DiskTooSmall(format!(
                "partition {:?} of {} MiB does not fit the {} MiB disk",
                s.name,
                (len * ss) >> 20,
                disk_size >> 20
            )));
        }
        let ty = mbr_type(s.type_guid);
        let e = &mut m[446 + i * 16..446 + (i + 1) * 16];
        e[0] = if bootable == Some(i) { 0x80 } else { 0 };
        e[1..4].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
        e[4] = ty;
        e[5..8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
        e[8..12].copy_from_slice(&(next as u32).to_le_bytes());
        e[12..16].copy_from_slice(&(len as u32).to_le_bytes());
        parts.push(Partition {
            number: i as u32 + 1,
            start: next * ss,
            len: len * ss,
            name: s.name.clone(),
            uuid: format!("{disk_id:08x}-{:02x}", i + 1),
            kind: PartKind::Mbr(ty),
        });
        next += len;
    }
    m[510] = 0x55;
    m[511] = 0xAA;
    // wipe whatever table was there (a backup GPT at the end too)
    f.write_all_at(&vec![0u8; ALIGN_BYTES as usize], 0)
        .map_err(|e| io("wiping the old partition table", e))?;
    let tail = (disk_size / ss).saturating_sub(entry_sectors(ss) + 1);
    if tail > align {
        f.write_all_at(
            &vec![0u8; ((entry_sectors(ss) + 1) * ss) as usize],
            tail * ss,
        )
        .map_err(|e| io("wiping the old backup GPT", e))?;
    }
    f.write_all_at(&m, 0)
        .map_err(|e| io("writing the MBR", e))?;
    f.sync_all()
        .map_err(|e| io("fsync after writing the MBR", e))?;
    Ok((disk_id, parts))
}

/// Write a fresh GPT with `specs` laid out from 1 MiB, 1 MiB aligned, and
/// return the partitions.
pub fn create_gpt(f: &File, disk_size: u64, specs: &[PartSpec]) -> Result<(Uuid, Vec<Partition>)> {
    let ss = sector_size(f);
    let align = align(ss);
    let sectors = disk_size / ss;
    if sectors < align + 2 * (entry_sectors(ss) + 2) {
        return Err(AgentError::DiskTooSmall(format!(
            "a {disk_size}-byte disk cannot hold a partition table"
        )));
    }
    let last_usable = sectors - 2 - entry_sectors(ss);
    let guid = crate::agent::entropy::uuid_v4();
    let mut entries = Vec::new();
    let mut parts = Vec::new();
    let mut next = align;
    for (i, s) in specs.iter().enumerate() {
        let len = if s.size == 0 {
            (last_usable + 1).saturating_sub(next)
        } else {
            s.size.div_ceil(ss).div_ceil(align) * align
        };
        if len == 0 || next + len - 1 > last_usable {
            return Err(AgentError::DiskTooSmall(format!(
                "partition {:?} of {} MiB does not fit the {} MiB disk",
                s.name,
                (len * ss) >> 20,
                disk_size >> 20
            )));
        }
        let uuid = crate::agent::entropy::uuid_v4();
        entries.push(GptEntry {
            type_guid: s.type_guid,
            uuid,
            first: next,
            last: next + len - 1,
            attrs: 0,
            name: s.name.clone(),
        });
        parts.push(Partition {
            number: i as u32 + 1,
            start: next * ss,
            len: len * ss,
            name: s.name.clone(),
            uuid: uuid.to_string(),
            kind: PartKind::Gpt(s.type_guid),
        });
        next += len;
    }
    // wipe whatever table was there
    f.write_all_at(&vec![0u8; ALIGN_BYTES as usize], 0)
        .map_err(|e| io("wiping the old partition table", e))?;
    write_gpt(f, ss, disk_size, guid, &entries)?;
    Ok((guid, parts))
}

/// The MBR disk signature at offset 440 as IPA's `get_disk_identifier` reports
/// it (`0x1234abcd`); whole-disk GPT images usually have `0x00000000`, which
/// tells IPA's `install_bootloader` that there is no root partition to put GRUB on.
pub fn mbr_signature(f: &File) -> Result<String> {
    let b = read_at(f, 440, 4)?;
    Ok(format!("0x{:08x}", le32(&b, 0)))
}

/// The device path of partition `n` of `dev`, as the kernel names it
/// (`/dev/sda1`, `/dev/nvme0n1p1`, `/dev/loop0p1`).
pub fn partition_path(dev: &str, n: u32) -> String {
    if dev.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{dev}p{n}")
    } else {
        format!("{dev}{n}")
    }
}

/// The filesystem label at the start of a partition: ISO9660 volume id or FAT label.
pub fn fs_label(f: &File, start: u64) -> Option<String> {
    let iso = read_at(f, start + 0x8000, 72).ok()?;
    if &iso[1..6] == b"CD001" {
        return Some(String::from_utf8_lossy(&iso[40..72]).trim().to_owned());
    }
    let boot = read_at(f, start, 512).ok()?;
    if boot[510] == 0x55 && boot[511] == 0xAA {
        if &boot[82..87] == b"FAT32" {
            return Some(String::from_utf8_lossy(&boot[71..82]).trim().to_owned());
        }
        if &boot[54..57] == b"FAT" {
            return Some(String::from_utf8_lossy(&boot[43..54]).trim().to_owned());
        }
    }
    None
}

/// Write a swap signature (`mkswap`, version 1, 4 KiB pages) on `part`.
pub fn mkswap(f: &File, part: &Partition, label: &str) -> Result<()> {
    const PAGE: u64 = 4096;
    let pages = part.len / PAGE;
    if pages < 10 {
        return Err(AgentError::DiskTooSmall(format!(
            "the swap partition {} is too small",
            part.number
        )));
    }
    let mut p = vec![0u8; PAGE as usize];
    p[1024..1028].copy_from_slice(&1u32.to_le_bytes());
    p[1028..1032].copy_from_slice(&((pages - 1).min(u64::from(u32::MAX)) as u32).to_le_bytes());
    p[1036..1052].copy_from_slice(crate::agent::entropy::uuid_v4().as_bytes());
    for (d, s) in p[1052..1068].iter_mut().zip(label.bytes()) {
        *d = s;
    }
    p[PAGE as usize - 10..].copy_from_slice(b"SWAPSPACE2");
    f.write_all_at(&p, part.start)
        .map_err(|e| io("writing the swap signature", e))
}

/// The filesystem UUID at `start` as `blkid` shows it: ext2/3/4, XFS, btrfs,
/// FAT (`ABCD-1234`).
pub fn fs_uuid(f: &File, start: u64) -> Option<String> {
    if let Some(u) = ext_uuid(f, start) {
        return Some(u);
    }
    let xfs = read_at(f, start, 48).ok()?;
    if &xfs[..4] == b"XFSB" {
        return Uuid::from_slice(&xfs[32..48]).ok().map(|u| u.to_string());
    }
    if let Ok(b) = read_at(f, start + 0x10000, 0x48)
        && &b[0x40..0x48] == b"_BHRfS_M"
    {
        return Uuid::from_slice(&b[0x20..0x30]).ok().map(|u| u.to_string());
    }
    let boot = read_at(f, start, 512).ok()?;
    if boot[510] == 0x55 && boot[511] == 0xAA {
        let id = if &boot[82..87] == b"FAT32" {
            le32(&boot, 67)
        } else if &boot[54..57] == b"FAT" {
            le32(&boot, 39)
        } else {
            return None;
        };
        return Some(format!("{:04X}-{:04X}", id >> 16, id & 0xFFFF));
    }
    None
}

/// The filesystem UUID of an ext2/3/4 filesystem at `start`, as `blkid` shows it.
pub fn ext_uuid(f: &File, start: u64) -> Option<String> {
    let sb = read_at(f, start + 1024, 136).ok()?;
    if sb[0x38] != 0x53 || sb[0x39] != 0xEF {
        return None;
    }
    Uuid::from_slice(&sb[0x68..0x78])
        .ok()
        .map(|u| u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(size: u64) -> (tempfile::TempDir, File) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("disk");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        f.set_len(size).unwrap();
        (d, f)
    }

    #[test]
    fn create_grow_and_add() {
        let (_d, f) = disk(64 << 20);
        let (guid, parts) = create_gpt(
            &f,
            32 << 20,
            &[PartSpec {
                name: "root".into(),
                type_guid: LINUX_FS,
                size: 8 << 20,
            }],
        )
        .unwrap();
        assert_eq!(parts[0].start, 1 << 20);
        assert_eq!(parts[0].len, 8 << 20);
        // the "image" was made for a 32 MiB disk: fix it for 64 MiB and add config-2
        fix_gpt(&f, 64 << 20).unwrap();
        let p = add_partition_at_end(&f, 64 << 20, 16 << 20, "config-2").unwrap();
        assert_eq!(p.number, 2);
        assert!(p.start + p.len <= (64 << 20) - 33 * 512);
        let t = read_table(&f).unwrap();
        assert_eq!(t.disk_identifier().unwrap(), guid.to_string());
        assert_eq!(t.partitions().len(), 2);
        assert_eq!(t.partitions()[1].name, "config-2");
        // no room for another 60 MiB
        assert!(matches!(
            add_partition_at_end(&f, 64 << 20, 60 << 20, "x"),
            Err(AgentError::DiskTooSmall(_))
        ));
    }

    #[test]
    fn mbr_add() {
        let (_d, f) = disk(32 << 20);
        let mut m = vec![0u8; 512];
        m[440..444].copy_from_slice(&0xdeadbeefu32.to_le_bytes());
        m[446 + 4] = 0x83;
        m[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
        m[446 + 12..446 + 16].copy_from_slice(&8192u32.to_le_bytes());
        m[510] = 0x55;
        m[511] = 0xAA;
        f.write_all_at(&m, 0).unwrap();
        let p = add_partition_at_end(&f, 32 << 20, 4 << 20, "config-2").unwrap();
        assert_eq!(p.number, 2);
        let t = read_table(&f).unwrap();
        assert_eq!(t.disk_identifier().unwrap(), "0xdeadbeef");
        assert_eq!(t.partitions().len(), 2);
    }

    #[test]
    fn gpt_in_4096_byte_sectors() {
        let (_d, f) = disk(64 << 20);
        // a GPT made for a 4Kn disk of 32 MiB (8192 sectors), as sgdisk writes it
        let root = GptEntry {
            type_guid: LINUX_FS,
            uuid: Uuid::new_v4(),
            first: 256,
            last: 256 + 2048 - 1,
            attrs: 0,
            name: "root".into(),
        };
        write_gpt(&f, SECTOR_4K, 32 << 20, Uuid::new_v4(), &[root]).unwrap();
        assert_eq!(sector_size(&f), SECTOR_4K);
        let at = |off: u64, len: usize| read_at(&f, off, len).unwrap();
        assert_eq!(at(4096, 8), b"EFI PART");
        assert_eq!(at(512, 8), [0u8; 8], "nothing at the 512-byte LBA 1");
        assert_eq!(at((32 << 20) - 4096, 8), b"EFI PART", "backup header");
        // the protective MBR counts 4 KiB sectors
        assert_eq!(le32(&at(0, 512), 446 + 12), 8191);
        let t = read_table(&f).unwrap();
        assert_eq!(t.partitions()[0].start, 1 << 20);
        assert_eq!(t.partitions()[0].len, 8 << 20);
        check_image_sector_size(&f, SECTOR_4K).unwrap();
        let e = check_image_sector_size(&f, SECTOR).unwrap_err().to_string();
        assert!(e.contains("made for 4096-byte sectors"), "{e}");
        // grown to 64 MiB and a config drive added, all in 4 KiB sectors
        fix_gpt(&f, 64 << 20).unwrap();
        assert_eq!(at((64 << 20) - 4096, 8), b"EFI PART");
        let p = add_partition_at_end(&f, 64 << 20, 16 << 20, "config-2").unwrap();
        assert_eq!(p.start % (1 << 20), 0);
        assert_eq!(p.len, 16 << 20);
        // the backup array takes 4 sectors of 4 KiB before the backup header
        assert!(p.start + p.len <= (64 << 20) - 5 * 4096);
        let t = read_table(&f).unwrap();
        assert_eq!(t.partitions().len(), 2);
        assert_eq!(t.partitions()[1], p);
    }

    #[test]
    fn images_for_another_sector_size_are_refused() {
        // a GPT for 512-byte sectors on a 4Kn disk
        let (_d, f) = disk(32 << 20);
        create_gpt(
            &f,
            32 << 20,
            &[PartSpec {
                name: "root".into(),
                type_guid: LINUX_FS,
                size: 8 << 20,
            }],
        )
        .unwrap();
        check_image_sector_size(&f, SECTOR).unwrap();
        let e = check_image_sector_size(&f, SECTOR_4K)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("made for 512-byte sectors") && e.contains("4096-byte logical sectors"),
            "{e}"
        );
        // an MBR whose partition holds an ext4 superblock where 512-byte
        // sectors put it, not where 4096-byte ones do
        let (_d, g) = disk(32 << 20);
        let mut m = vec![0u8; 512];
        m[446 + 4] = 0x83;
        m[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
        m[446 + 12..446 + 16].copy_from_slice(&8192u32.to_le_bytes());
        m[510] = 0x55;
        m[511] = 0xAA;
        g.write_all_at(&m, 0).unwrap();
        g.write_all_at(&[0x53, 0xEF], (1 << 20) + 1024 + 0x38)
            .unwrap();
        check_image_sector_size(&g, SECTOR).unwrap();
        assert!(check_image_sector_size(&g, SECTOR_4K).is_err());
        // no table at all: nothing to check
        let (_d, h) = disk(1 << 20);
        check_image_sector_size(&h, SECTOR_4K).unwrap();
    }
}
