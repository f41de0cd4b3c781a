//! ISO 9660 images in pure Rust, for the deploy ramdisk's boot ISO, per-node
//! virtual media and config drives (what Ironic and openstacksdk build with
//! `genisoimage`/`xorrisofs`).
//!
//! An [`IsoBuilder`] collects files (in memory or on disk) and writes:
//!
//! * the primary volume with relaxed names (lower case kept, up to 30
//!   characters, `;1` version on files; as `genisoimage -l -allow-lowercase
//!   -allow-multidot`) and a Joliet volume (Unicode names up to 64 characters),
//!   which Linux, GRUB, Windows and cloud-init read;
//! * optionally El Torito boot entries: BIOS "no emulation" (with the boot
//!   information table GRUB's and isolinux's CD boot sectors need) and UEFI (an
//!   EFI system partition image, see [`fat_image`]).
//!
//! The primary volume carries Rock Ridge too (`genisoimage -r`): exact names,
//! files mode 0444 and directories 0555 owned by root, which Linux and
//! `isoinfo -R` prefer.
//!
//! ```
//! let mut iso = ironic_iso::IsoBuilder::new("config-2").unwrap();
//! iso.add_file("openstack/latest/meta_data.json", b"{}".to_vec()).unwrap();
//! let image = iso.to_vec().unwrap();
//! assert_eq!(&image[32769..32774], b"CD001");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The ISO 9660 logical sector size.
pub const SECTOR: u64 = 2048;
const S: usize = SECTOR as usize;

/// Why an image could not be built.
#[derive(Debug)]
pub enum IsoError {
    /// A file or directory name the image cannot hold.
    InvalidName(String),
    /// The volume id is empty or longer than 32 characters.
    InvalidVolumeId(String),
    /// A path is there already (or a file is in the way of a directory).
    Exists(String),
    /// A boot entry names a file the image does not have.
    NoSuchFile(String),
    /// The image or a file is larger than ISO 9660 can describe (4 GiB per file).
    TooLarge(String),
    /// Reading a file or writing the image failed.
    Io {
        /// What was read or written.
        what: String,
        /// Why.
        source: io::Error,
    },
}

impl fmt::Display for IsoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IsoError::InvalidName(n) => write!(f, "invalid name in the ISO image: {n}"),
            IsoError::InvalidVolumeId(v) => write!(
                f,
                "invalid ISO volume id {v:?}: 1 to 32 printable ASCII characters"
            ),
            IsoError::Exists(p) => write!(f, "{p} is already in the ISO image"),
            IsoError::NoSuchFile(p) => write!(f, "boot file {p} is not in the ISO image"),
            IsoError::TooLarge(w) => write!(f, "too large for ISO 9660: {w}"),
            IsoError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for IsoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IsoError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> IsoError {
    let what = what.into();
    move |source| IsoError::Io { what, source }
}

/// A file's contents.
#[derive(Clone, Debug)]
pub enum Data {
    /// In memory.
    Bytes(Vec<u8>),
    /// Read from disk while the image is written (its size is taken when added
    /// and checked again then).
    File {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
    },
}

impl Data {
    fn len(&self) -> u64 {
        match self {
            Data::Bytes(b) => b.len() as u64,
            Data::File { len, .. } => *len,
        }
    }
}

impl From<Vec<u8>> for Data {
    fn from(b: Vec<u8>) -> Self {
        Data::Bytes(b)
    }
}

#[derive(Debug)]
enum Node {
    File(Data),
    Dir(BTreeMap<String, Node>),
}

#[derive(Clone, Debug)]
struct BiosBoot {
    path: String,
    load_sectors: u16,
    info_table: bool,
}

/// Builds an ISO 9660 image.
#[derive(Debug)]
pub struct IsoBuilder {
    volume_id: String,
    publisher: String,
    root: BTreeMap<String, Node>,
    bios: Option<BiosBoot>,
    uefi: Option<String>,
    time: u64,
}

impl IsoBuilder {
    /// An empty image labelled `volume_id` (what `blkid` shows as LABEL, e.g.
    /// `config-2`); 1 to 32 printable ASCII characters.
    pub fn new(volume_id: &str) -> Result<Self, IsoError> {
        if volume_id.is_empty()
            || volume_id.len() > 32
            || !volume_id.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            return Err(IsoError::InvalidVolumeId(volume_id.to_owned()));
        }
        Ok(IsoBuilder {
            volume_id: volume_id.to_owned(),
            publisher: String::new(),
            root: BTreeMap::new(),
            bios: None,
            uefi: None,
            time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        })
    }

    /// The publisher recorded in the volume descriptors.
    pub fn publisher(&mut self, publisher: &str) -> &mut Self {
        self.publisher = publisher.chars().filter(|c| !c.is_control()).collect();
        self
    }

    /// The time recorded for the volume and every file (seconds since 1970, UTC;
    /// default: now). A fixed time makes the image reproducible.
    pub fn timestamp(&mut self, unix_seconds: u64) -> &mut Self {
        self.time = unix_seconds;
        self
    }

    fn parts(path: &str) -> Result<Vec<&str>, IsoError> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        if parts.is_empty() {
            return Err(IsoError::InvalidName(format!("{path:?} names no file")));
        }
        for p in &parts {
            if *p == "."
                || *p == ".."
                || p.chars().any(|c| c.is_control())
                || p.encode_utf16().count() > 64
                || p.len() > 140
            {
                return Err(IsoError::InvalidName(format!(
                    "{path:?}: {p:?} (a name is 1 to 64 characters and at most 140 bytes of UTF-8, no control characters, not . or ..)"
                )));
            }
        }
        if parts.len() > 8 {
            return Err(IsoError::InvalidName(format!(
                "{path:?} is more than 8 levels deep"
            )));
        }
        Ok(parts)
    }

    fn dir_mut(
        &mut self,
        parts: &[&str],
        path: &str,
    ) -> Result<&mut BTreeMap<String, Node>, IsoError> {
        let mut dir = &mut self.root;
        for p in parts {
            let node = dir
                .entry((*p).to_owned())
                .or_insert_with(|| Node::Dir(BTreeMap::new()));
            dir = match node {
                Node::Dir(d) => d,
                Node::File(_) => return Err(IsoError::Exists(path.to_owned())),
            };
        }
        Ok(dir)
    }

    /// Add a directory (and its parents); adding one twice is fine.
    pub fn add_dir(&mut self, path: &str) -> Result<&mut Self, IsoError> {
        let parts = Self::parts(path)?;
        self.dir_mut(&parts, path)?;
        Ok(self)
    }

    /// Add a file (its directories are created), `a/b/c.txt`.
    pub fn add_file(&mut self, path: &str, data: impl Into<Data>) -> Result<&mut Self, IsoError> {
        let data = data.into();
        if data.len() >= 1 << 32 {
            return Err(IsoError::TooLarge(format!("{path} is 4 GiB or more")));
        }
        let parts = Self::parts(path)?;
        let (name, dirs) = parts.split_last().expect("parts is not empty");
        let dir = self.dir_mut(dirs, path)?;
        if dir.contains_key(*name) {
            return Err(IsoError::Exists(path.to_owned()));
        }
        dir.insert((*name).to_owned(), Node::File(data));
        Ok(self)
    }

    /// Add a file from disk, read when the image is written.
    pub fn add_path(&mut self, path: &str, file: &Path) -> Result<&mut Self, IsoError> {
        let meta = std::fs::metadata(file).map_err(io_err(file.display().to_string()))?;
        if !meta.is_file() {
            return Err(IsoError::Io {
                what: file.display().to_string(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        self.add_file(
            path,
            Data::File {
                path: file.to_owned(),
                len: meta.len(),
            },
        )
    }

    /// Boot BIOS machines from `path` (a "no emulation" boot image such as GRUB's
    /// `i386-pc-eltorito` core image or `isolinux.bin`): the firmware loads its
    /// first `load_sectors` 512-byte sectors (4 as `grub-mkrescue` and
    /// `-boot-load-size 4`); with `info_table`, the image's boot information
    /// table (bytes 8 to 64: where it and the volume are) is filled in, which
    /// both of those need to load the rest of themselves.
    pub fn bios_boot(&mut self, path: &str, load_sectors: u16, info_table: bool) -> &mut Self {
        self.bios = Some(BiosBoot {
            path: path.trim_start_matches('/').to_owned(),
            load_sectors,
            info_table,
        });
        self
    }

    /// Boot UEFI machines from `path`, an EFI system partition image (FAT, see
    /// [`fat_image`]) holding `EFI/BOOT/BOOTX64.EFI`.
    pub fn uefi_boot(&mut self, path: &str) -> &mut Self {
        self.uefi = Some(path.trim_start_matches('/').to_owned());
        self
    }

    /// Write the image; returns its size in bytes.
    pub fn write_to<W: Write>(&self, out: &mut W) -> Result<u64, IsoError> {
        let layout = Layout::new(self)?;
        layout.write(self, out)
    }

    /// The image in memory.
    pub fn to_vec(&self) -> Result<Vec<u8>, IsoError> {
        let mut v = Vec::new();
        self.write_to(&mut v)?;
        Ok(v)
    }

    /// Write the image to a file (created or truncated).
    pub fn write_file(&self, path: &Path) -> Result<u64, IsoError> {
        let f = std::fs::File::create(path).map_err(io_err(path.display().to_string()))?;
        let mut w = io::BufWriter::new(f);
        let n = self.write_to(&mut w)?;
        w.flush().map_err(io_err(path.display().to_string()))?;
        Ok(n)
    }
}

// ---- layout ----------------------------------------------------------------

/// A directory of the image: its records in both volumes.
struct DirInfo {
    /// 1-based number of the parent in the path table (the root is its own).
    parent: usize,
    /// The name in each volume (empty for the root).
    name_primary: Vec<u8>,
    name_joliet: Vec<u8>,
    /// Children: (primary name, joliet name, node index).
    entries: Vec<Entry>,
    lba: [u32; 2],
    size: [u32; 2],
}

#[derive(Clone)]
struct Entry {
    primary: Vec<u8>,
    joliet: Vec<u8>,
    /// The name as given (Rock Ridge `NM`).
    name: String,
    kind: EntryKind,
}

/// Rock Ridge entries of a primary directory record: `SP` and `ER` on the root's
/// `.`, `RR` and `PX` on every record, `NM` when there is a name.
fn rock_ridge(root_dot: bool, dir: bool, name: Option<&str>) -> Vec<u8> {
    let mut su = Vec::new();
    if root_dot {
        su.extend_from_slice(&[b'S', b'P', 7, 1, 0xbe, 0xef, 0]);
        let (id, des, src) = (&b"RRIP_1991A"[..], &b"ROCK RIDGE"[..], &b"IRONIC-RS"[..]);
        su.extend_from_slice(&[
            b'E',
            b'R',
            (8 + id.len() + des.len() + src.len()) as u8,
            1,
            id.len() as u8,
            des.len() as u8,
            src.len() as u8,
            1,
        ]);
        su.extend_from_slice(id);
        su.extend_from_slice(des);
        su.extend_from_slice(src);
    }
    let flags = if name.is_some() { 0x09 } else { 0x01 }; // PX, NM
    su.extend_from_slice(&[b'R', b'R', 5, 1, flags]);
    let mut px = [0u8; 36];
    px[..4].copy_from_slice(&[b'P', b'X', 36, 1]);
    let (mode, links): (u32, u32) = if dir { (0o040555, 2) } else { (0o100444, 1) };
    both32(&mut px[4..12], mode);
    both32(&mut px[12..20], links);
    su.extend_from_slice(&px);
    if let Some(n) = name {
        su.extend_from_slice(&[b'N', b'M', (5 + n.len()) as u8, 1, 0]);
        su.extend_from_slice(n.as_bytes());
    }
    su
}

#[derive(Clone, Copy)]
enum EntryKind {
    Dir(usize),
    File(usize),
}

struct FileInfo<'a> {
    path: String,
    data: &'a Data,
    lba: u32,
}

struct Layout<'a> {
    dirs: Vec<DirInfo>,
    files: Vec<FileInfo<'a>>,
    boot_catalog: Option<u32>,
    path_table: [(u32, u32, u32); 2], // (size, L lba, M lba) per volume
    total: u32,
    bios: Option<(usize, BiosBoot)>,
    uefi: Option<usize>,
}

fn joliet_name(name: &str) -> Vec<u8> {
    name.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
}

/// The primary volume's name: printable ASCII without `;`, at most 30
/// characters (the extension kept), files get `;1`.
fn primary_name(name: &str, is_file: bool, taken: &mut Vec<Vec<u8>>) -> Vec<u8> {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != ';' && c != '/' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let fit = |stem: &str, ext: &str, max: usize| -> String {
        let keep = max.saturating_sub(ext.len());
        format!("{}{ext}", &stem[..stem.len().min(keep)])
    };
    let (stem, ext) = match clean.rfind('.') {
        Some(i) if i > 0 && clean.len() - i <= 8 => (&clean[..i], &clean[i..]),
        _ => (clean.as_str(), ""),
    };
    let mut candidate = fit(stem, ext, 30);
    let mut n = 1;
    while taken
        .iter()
        .any(|t| t.eq_ignore_ascii_case(candidate.as_bytes()))
    {
        let suffix = format!("~{n}");
        candidate = fit(
            &format!(
                "{}{suffix}",
                &stem[..stem.len().min(30 - ext.len() - suffix.len())]
            ),
            ext,
            30,
        );
        n += 1;
    }
    taken.push(candidate.clone().into_bytes());
    let mut b = candidate.into_bytes();
    if is_file {
        b.extend_from_slice(b";1");
    }
    b
}

fn record_len(name_len: usize, su_len: usize) -> usize {
    let l = 33 + name_len;
    l + (l & 1) + su_len
}

/// Size of a directory extent whose records have these lengths, in sectors:
/// a record never crosses a sector boundary.
fn dir_size(record_lens: impl Iterator<Item = usize>) -> u32 {
    let mut sectors = 1u32;
    let mut off = 0;
    for l in record_lens {
        if off + l > S {
            sectors += 1;
            off = 0;
        }
        off += l;
    }
    sectors
}

fn sectors(bytes: u64) -> Result<u32, IsoError> {
    u32::try_from(bytes.div_ceil(SECTOR))
        .map_err(|_| IsoError::TooLarge("the image is over 8 TiB".into()))
}

impl<'a> Layout<'a> {
    fn new(b: &'a IsoBuilder) -> Result<Self, IsoError> {
        // Breadth first, children sorted by name: the path table's order.
        let mut dirs = vec![DirInfo {
            parent: 1,
            name_primary: vec![0],
            name_joliet: vec![0],
            entries: Vec::new(),
            lba: [0; 2],
            size: [0; 2],
        }];
        let mut maps: Vec<(&BTreeMap<String, Node>, String)> = vec![(&b.root, String::new())];
        let mut files: Vec<FileInfo<'a>> = Vec::new();
        let mut i = 0;
        while i < maps.len() {
            let (map, path) = (maps[i].0, maps[i].1.clone());
            let mut taken = Vec::new();
            let mut entries = Vec::new();
            // Directories first get their primary names in a stable order.
            for (name, node) in map {
                let full = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}/{name}")
                };
                let is_file = matches!(node, Node::File(_));
                let primary = primary_name(name, is_file, &mut taken);
                let joliet = joliet_name(name);
                let kind = match node {
                    Node::Dir(m) => {
                        dirs.push(DirInfo {
                            parent: i + 1,
                            name_primary: primary.clone(),
                            name_joliet: joliet.clone(),
                            entries: Vec::new(),
                            lba: [0; 2],
                            size: [0; 2],
                        });
                        maps.push((m, full));
                        EntryKind::Dir(dirs.len() - 1)
                    }
                    Node::File(d) => {
                        files.push(FileInfo {
                            path: full,
                            data: d,
                            lba: 0,
                        });
                        EntryKind::File(files.len() - 1)
                    }
                };
                entries.push(Entry {
                    primary,
                    joliet,
                    name: name.clone(),
                    kind,
                });
            }
            dirs[i].entries = entries;
            i += 1;
        }
        // The path table needs parents numbered before children, which
        // breadth-first order gives; within a parent, ISO 9660 sorts by name,
        // which the primary names (ASCII, from the sorted map) nearly follow: sort
        // the siblings' records by name bytes in each volume when writing.

        let bios = match &b.bios {
            Some(bb) => Some((
                files
                    .iter()
                    .position(|f| f.path == bb.path)
                    .ok_or_else(|| IsoError::NoSuchFile(bb.path.clone()))?,
                bb.clone(),
            )),
            None => None,
        };
        let uefi = match &b.uefi {
            Some(p) => Some(
                files
                    .iter()
                    .position(|f| &f.path == p)
                    .ok_or_else(|| IsoError::NoSuchFile(p.clone()))?,
            ),
            None => None,
        };

        let mut next: u32 = 16 + 1; // PVD
        let boot = bios.is_some() || uefi.is_some();
        if boot {
            next += 1; // boot record
        }
        next += 2; // Joliet SVD, terminator
        let boot_catalog = if boot {
            next += 1;
            Some(next - 1)
        } else {
            None
        };
        let mut path_table = [(0u32, 0u32, 0u32); 2];
        for (v, pt) in path_table.iter_mut().enumerate() {
            let size: usize = dirs
                .iter()
                .map(|d| {
                    let n = if v == 0 {
                        d.name_primary.len()
                    } else {
                        d.name_joliet.len()
                    };
                    8 + n + (n & 1)
                })
                .sum();
            let secs = sectors(size as u64)?;
            *pt = (size as u32, next, next + secs);
            next += 2 * secs;
        }
        for v in 0..2 {
            for (i, d) in dirs.iter_mut().enumerate() {
                let dots = if v == 0 {
                    [
                        record_len(1, rock_ridge(i == 0, true, None).len()),
                        record_len(1, rock_ridge(false, true, None).len()),
                    ]
                } else {
                    [record_len(1, 0); 2]
                };
                let secs = dir_size(dots.into_iter().chain(d.entries.iter().map(|e| {
                    if v == 0 {
                        let dir = matches!(e.kind, EntryKind::Dir(_));
                        record_len(e.primary.len(), rock_ridge(false, dir, Some(&e.name)).len())
                    } else {
                        record_len(e.joliet.len(), 0)
                    }
                })));
                d.lba[v] = next;
                d.size[v] = secs * SECTOR as u32;
                next = next
                    .checked_add(secs)
                    .ok_or_else(|| IsoError::TooLarge("directories".into()))?;
            }
        }
        for f in files.iter_mut() {
            let len = f.data.len();
            if len == 0 {
                f.lba = 0;
                continue;
            }
            f.lba = next;
            next = next
                .checked_add(sectors(len)?)
                .ok_or_else(|| IsoError::TooLarge("the image is over 8 TiB".into()))?;
        }
        Ok(Layout {
            dirs,
            files,
            boot_catalog,
            path_table,
            total: next,
            bios,
            uefi,
        })
    }

    fn write<W: Write>(&self, b: &IsoBuilder, out: &mut W) -> Result<u64, IsoError> {
        let mut w = Counter { inner: out, n: 0 };
        let e = io_err("writing the ISO image");
        w.write_all(&[0u8; 16 * S]).map_err(e)?;
        let date = DateTime::from_unix(b.time);
        w.write_all(&self.volume_descriptor(b, 0, &date))
            .map_err(io_err("writing the ISO image"))?;
        if let Some(cat) = self.boot_catalog {
            let mut br = [0u8; S];
            br[0] = 0;
            br[1..6].copy_from_slice(b"CD001");
            br[6] = 1;
            br[7..7 + 23].copy_from_slice(b"EL TORITO SPECIFICATION");
            br[0x47..0x4b].copy_from_slice(&cat.to_le_bytes());
            w.write_all(&br).map_err(io_err("writing the ISO image"))?;
        }
        w.write_all(&self.volume_descriptor(b, 1, &date))
            .map_err(io_err("writing the ISO image"))?;
        let mut term = [0u8; S];
        term[0] = 255;
        term[1..6].copy_from_slice(b"CD001");
        term[6] = 1;
        w.write_all(&term)
            .map_err(io_err("writing the ISO image"))?;
        if self.boot_catalog.is_some() {
            w.write_all(&self.boot_catalog_sector())
                .map_err(io_err("writing the ISO image"))?;
        }
        for v in 0..2 {
            let (size, l, m) = self.path_table[v];
            let secs = (m - l) as usize;
            for big_endian in [false, true] {
                let mut t = self.path_table_bytes(v, big_endian);
                debug_assert_eq!(t.len(), size as usize);
                t.resize(secs * S, 0);
                w.write_all(&t).map_err(io_err("writing the ISO image"))?;
            }
        }
        for v in 0..2 {
            for (i, _) in self.dirs.iter().enumerate() {
                let d = self.dir_extent(i, v, &date);
                w.write_all(&d).map_err(io_err("writing the ISO image"))?;
            }
        }
        for (i, f) in self.files.iter().enumerate() {
            let len = f.data.len();
            if len == 0 {
                continue;
            }
            let info_table = matches!(&self.bios, Some((bi, bb)) if *bi == i && bb.info_table);
            if info_table {
                let mut data = read_all(f.data, &f.path)?;
                if data.len() < 64 {
                    return Err(IsoError::InvalidName(format!(
                        "boot file {} is too small for a boot information table",
                        f.path
                    )));
                }
                let mut sum: u32 = 0;
                for c in data[64..].chunks(4) {
                    let mut word = [0u8; 4];
                    word[..c.len()].copy_from_slice(c);
                    sum = sum.wrapping_add(u32::from_le_bytes(word));
                }
                data[8..12].copy_from_slice(&16u32.to_le_bytes());
                data[12..16].copy_from_slice(&f.lba.to_le_bytes());
                data[16..20].copy_from_slice(&(len as u32).to_le_bytes());
                data[20..24].copy_from_slice(&sum.to_le_bytes());
                data[24..64].fill(0);
                w.write_all(&data)
                    .map_err(io_err("writing the ISO image"))?;
            } else {
                match f.data {
                    Data::Bytes(bytes) => w
                        .write_all(bytes)
                        .map_err(io_err("writing the ISO image"))?,
                    Data::File { path, len } => {
                        let file = std::fs::File::open(path)
                            .map_err(io_err(path.display().to_string()))?;
                        let copied = io::copy(&mut file.take(*len), &mut w)
                            .map_err(io_err(path.display().to_string()))?;
                        if copied != *len {
                            return Err(IsoError::Io {
                                what: path.display().to_string(),
                                source: io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    format!(
                                        "the file shrank from {len} to {copied} bytes while the image was written"
                                    ),
                                ),
                            });
                        }
                    }
                }
            }
            let pad = (SECTOR - len % SECTOR) % SECTOR;
            w.write_all(&vec![0u8; pad as usize])
                .map_err(io_err("writing the ISO image"))?;
        }
        debug_assert_eq!(w.n, self.total as u64 * SECTOR);
        Ok(w.n)
    }

    fn volume_descriptor(&self, b: &IsoBuilder, v: usize, date: &DateTime) -> [u8; S] {
        let mut d = [0u8; S];
        d[0] = if v == 0 { 1 } else { 2 };
        d[1..6].copy_from_slice(b"CD001");
        d[6] = 1;
        let text = |d: &mut [u8], s: &str| {
            if v == 0 {
                d.fill(b' ');
                for (o, c) in d.iter_mut().zip(s.bytes()) {
                    *o = c;
                }
            } else {
                for pair in d.chunks_exact_mut(2) {
                    pair.copy_from_slice(&[0, b' ']);
                }
                for (o, u) in d.chunks_exact_mut(2).zip(s.encode_utf16()) {
                    o.copy_from_slice(&u.to_be_bytes());
                }
            }
        };
        text(&mut d[8..40], "LINUX");
        text(&mut d[40..72], &b.volume_id);
        both32(&mut d[80..88], self.total);
        if v == 1 {
            d[88..91].copy_from_slice(b"%/E"); // UCS-2 level 3
        }
        both16(&mut d[120..124], 1);
        both16(&mut d[124..128], 1);
        both16(&mut d[128..132], SECTOR as u16);
        let (size, l, m) = self.path_table[v];
        both32(&mut d[132..140], size);
        d[140..144].copy_from_slice(&l.to_le_bytes());
        d[148..152].copy_from_slice(&m.to_be_bytes());
        let root = &self.dirs[0];
        d[156..190].copy_from_slice(&dir_record(
            &[0],
            root.lba[v],
            root.size[v],
            true,
            date,
            &[],
        ));
        text(&mut d[190..318], "");
        text(&mut d[318..446], &b.publisher);
        text(&mut d[446..574], "");
        text(&mut d[574..702], "IRONIC-RS");
        text(&mut d[702..739], "");
        text(&mut d[739..776], "");
        text(&mut d[776..813], "");
        d[813..830].copy_from_slice(&date.long());
        d[830..847].copy_from_slice(&date.long());
        d[847..864].copy_from_slice(b"0000000000000000\0");
        d[864..881].copy_from_slice(b"0000000000000000\0");
        d[881] = 1;
        d
    }

    fn boot_catalog_sector(&self) -> [u8; S] {
        let mut c = [0u8; S];
        // Validation entry: platform of the first entry.
        c[0] = 1;
        c[1] = if self.bios.is_some() { 0 } else { 0xef };
        c[4..4 + 9].copy_from_slice(b"IRONIC-RS");
        c[30] = 0x55;
        c[31] = 0xaa;
        let mut sum: u16 = 0;
        for i in (0..32).step_by(2) {
            sum = sum.wrapping_add(u16::from_le_bytes([c[i], c[i + 1]]));
        }
        c[28..30].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
        let entry = |e: &mut [u8], file: usize, count: u16| {
            e[0] = 0x88; // bootable
            e[1] = 0; // no emulation
            e[6..8].copy_from_slice(&count.to_le_bytes());
            e[8..12].copy_from_slice(&self.files[file].lba.to_le_bytes());
        };
        let efi_count = |file: usize| -> u16 {
            u16::try_from(self.files[file].data.len().div_ceil(512)).unwrap_or(u16::MAX)
        };
        match (&self.bios, self.uefi) {
            (Some((bf, bb)), uefi) => {
                entry(&mut c[32..64], *bf, bb.load_sectors);
                if let Some(uf) = uefi {
                    // Final section header for the EFI platform with one entry.
                    c[64] = 0x91;
                    c[65] = 0xef;
                    c[66..68].copy_from_slice(&1u16.to_le_bytes());
                    entry(&mut c[96..128], uf, efi_count(uf));
                }
            }
            (None, Some(uf)) => entry(&mut c[32..64], uf, efi_count(uf)),
            (None, None) => {}
        }
        c
    }

    fn path_table_bytes(&self, v: usize, big_endian: bool) -> Vec<u8> {
        let mut t = Vec::new();
        for d in &self.dirs {
            let name = if v == 0 {
                &d.name_primary
            } else {
                &d.name_joliet
            };
            t.push(name.len() as u8);
            t.push(0);
            if big_endian {
                t.extend_from_slice(&d.lba[v].to_be_bytes());
                t.extend_from_slice(&(d.parent as u16).to_be_bytes());
            } else {
                t.extend_from_slice(&d.lba[v].to_le_bytes());
                t.extend_from_slice(&(d.parent as u16).to_le_bytes());
            }
            t.extend_from_slice(name);
            if name.len() & 1 == 1 {
                t.push(0);
            }
        }
        t
    }

    fn dir_extent(&self, i: usize, v: usize, date: &DateTime) -> Vec<u8> {
        let d = &self.dirs[i];
        let parent = &self.dirs[d.parent - 1];
        let mut out = Vec::with_capacity(d.size[v] as usize);
        let mut push = |rec: Vec<u8>| {
            let off = out.len() % S;
            if off + rec.len() > S {
                out.resize(out.len() + (S - off), 0);
            }
            out.extend_from_slice(&rec);
        };
        let rr = |root_dot: bool, dir: bool, name: Option<&str>| {
            if v == 0 {
                rock_ridge(root_dot, dir, name)
            } else {
                Vec::new()
            }
        };
        push(dir_record(
            &[0],
            d.lba[v],
            d.size[v],
            true,
            date,
            &rr(i == 0, true, None),
        ));
        push(dir_record(
            &[1],
            parent.lba[v],
            parent.size[v],
            true,
            date,
            &rr(false, true, None),
        ));
        let mut entries = d.entries.clone();
        entries.sort_by(|a, b| {
            if v == 0 {
                a.primary.cmp(&b.primary)
            } else {
                a.joliet.cmp(&b.joliet)
            }
        });
        for e in &entries {
            let name = if v == 0 { &e.primary } else { &e.joliet };
            let rec = match e.kind {
                EntryKind::Dir(di) => {
                    let c = &self.dirs[di];
                    dir_record(
                        name,
                        c.lba[v],
                        c.size[v],
                        true,
                        date,
                        &rr(false, true, Some(&e.name)),
                    )
                }
                EntryKind::File(fi) => {
                    let f = &self.files[fi];
                    dir_record(
                        name,
                        f.lba,
                        f.data.len() as u32,
                        false,
                        date,
                        &rr(false, false, Some(&e.name)),
                    )
                }
            };
            push(rec);
        }
        out.resize(d.size[v] as usize, 0);
        out
    }
}

fn read_all(data: &Data, name: &str) -> Result<Vec<u8>, IsoError> {
    match data {
        Data::Bytes(b) => Ok(b.clone()),
        Data::File { path, len } => {
            let b = std::fs::read(path).map_err(io_err(path.display().to_string()))?;
            if b.len() as u64 != *len {
                return Err(IsoError::Io {
                    what: format!("{name} ({})", path.display()),
                    source: io::Error::other("the file changed size while the image was written"),
                });
            }
            Ok(b)
        }
    }
}

fn both16(d: &mut [u8], v: u16) {
    d[..2].copy_from_slice(&v.to_le_bytes());
    d[2..4].copy_from_slice(&v.to_be_bytes());
}

fn both32(d: &mut [u8], v: u32) {
    d[..4].copy_from_slice(&v.to_le_bytes());
    d[4..8].copy_from_slice(&v.to_be_bytes());
}

fn dir_record(name: &[u8], lba: u32, size: u32, dir: bool, date: &DateTime, su: &[u8]) -> Vec<u8> {
    let len = record_len(name.len(), su.len());
    debug_assert!(len <= 255);
    let mut r = vec![0u8; len];
    r[len - su.len()..].copy_from_slice(su);
    r[0] = len as u8;
    both32(&mut r[2..10], lba);
    both32(&mut r[10..18], size);
    r[18..25].copy_from_slice(&date.short());
    r[25] = if dir { 2 } else { 0 };
    both16(&mut r[28..32], 1);
    r[32] = name.len() as u8;
    r[33..33 + name.len()].copy_from_slice(name);
    r
}

struct Counter<'w, W: Write> {
    inner: &'w mut W,
    n: u64,
}

impl<W: Write> Write for Counter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A UTC time broken down.
struct DateTime {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl DateTime {
    fn from_unix(t: u64) -> Self {
        let days = (t / 86400) as i64;
        let rem = t % 86400;
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        DateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    fn short(&self) -> [u8; 7] {
        [
            (self.year - 1900).clamp(0, 255) as u8,
            self.month as u8,
            self.day as u8,
            self.hour as u8,
            self.minute as u8,
            self.second as u8,
            0,
        ]
    }

    fn long(&self) -> [u8; 17] {
        let s = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}00",
            self.year.clamp(0, 9999),
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second
        );
        let mut d = [0u8; 17];
        d[..16].copy_from_slice(s.as_bytes());
        d
    }
}

/// A FAT image (an EFI system partition for [`IsoBuilder::uefi_boot`]) holding
/// `files` (`EFI/BOOT/BOOTX64.EFI`, ...), with room to spare: the size is the
/// files' plus an eighth plus 1 MiB, in whole MiB (FAT12/16 as `mkfs.vfat`
/// picks for the size, which UEFI reads on removable media).
pub fn fat_image(label: &str, files: &[(&str, &[u8])]) -> Result<Vec<u8>, IsoError> {
    let total: u64 = files.iter().map(|(_, d)| d.len() as u64 + 4096).sum();
    let size = (total + total / 8 + (1 << 20)).div_ceil(1 << 20) << 20;
    let mut buf = io::Cursor::new(vec![0u8; size as usize]);
    let mut l = [b' '; 11];
    for (d, s) in l.iter_mut().zip(label.to_ascii_uppercase().bytes()) {
        *d = s;
    }
    let e = io_err("making the FAT image");
    fatfs::format_volume(&mut buf, fatfs::FormatVolumeOptions::new().volume_label(l)).map_err(e)?;
    {
        let fs = fatfs::FileSystem::new(&mut buf, fatfs::FsOptions::new())
            .map_err(io_err("making the FAT image"))?;
        for (path, data) in files {
            let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            let Some((name, dirs)) = parts.split_last() else {
                return Err(IsoError::InvalidName(format!("{path:?} names no file")));
            };
            let mut dir = fs.root_dir();
            for d in dirs {
                dir = match dir.open_dir(d) {
                    Ok(x) => x,
                    Err(_) => dir
                        .create_dir(d)
                        .map_err(io_err(format!("creating {d} in the FAT image")))?,
                };
            }
            let mut f = dir
                .create_file(name)
                .map_err(io_err(format!("creating {path} in the FAT image")))?;
            f.truncate()
                .map_err(io_err(format!("writing {path} in the FAT image")))?;
            f.write_all(data)
                .map_err(io_err(format!("writing {path} in the FAT image")))?;
        }
        fs.unmount().map_err(io_err("making the FAT image"))?;
    }
    let mut img = buf.into_inner();
    drop_dot_lfn(&mut img);
    Ok(img)
}

/// `fatfs` 0.3 writes long-name entries before the `.` and `..` entries of a new
/// directory, which `fsck.vfat` rejects (`.` must be the first entry): remove
/// them, moving the directory's other entries up. FAT12/16 images whose
/// directories fit in one cluster, as [`fat_image`] makes.
fn drop_dot_lfn(img: &mut [u8]) {
    let u16_at = |img: &[u8], o: usize| u16::from_le_bytes([img[o], img[o + 1]]) as usize;
    let bps = u16_at(img, 11);
    let spc = img[13] as usize;
    let (reserved, fats, root_entries, fat_size) = (
        u16_at(img, 14),
        img[16] as usize,
        u16_at(img, 17),
        u16_at(img, 22),
    );
    if bps == 0 || spc == 0 || fat_size == 0 {
        return;
    }
    let root = (reserved + fats * fat_size) * bps;
    let data = root + root_entries * 32;
    let cluster_len = bps * spc;
    let mut todo = vec![(root, root_entries * 32)];
    while let Some((start, len)) = todo.pop() {
        if start + len > img.len() {
            continue;
        }
        let entries: Vec<[u8; 32]> = img[start..start + len]
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        let mut kept: Vec<[u8; 32]> = Vec::with_capacity(entries.len());
        let mut pending_lfn: Vec<[u8; 32]> = Vec::new();
        for e in entries {
            if e[0] == 0 {
                break;
            }
            if e[11] == 0x0f {
                pending_lfn.push(e);
                continue;
            }
            let dot = &e[..11] == b".          " || &e[..11] == b"..         ";
            if !dot {
                kept.append(&mut pending_lfn);
                if e[11] & 0x10 != 0 && e[0] != 0xe5 {
                    let cluster = u16_at(&e, 26);
                    if cluster >= 2 {
                        todo.push((data + (cluster - 2) * cluster_len, cluster_len));
                    }
                }
            }
            pending_lfn.clear();
            kept.push(e);
        }
        let area = &mut img[start..start + len];
        area.fill(0);
        for (slot, e) in area.chunks_exact_mut(32).zip(kept) {
            slot.copy_from_slice(&e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_broken_down_in_utc() {
        let d = DateTime::from_unix(1_796_600_000); // 2026-12-06T23:33:20Z
        assert_eq!(&d.long()[..14], b"20261206233320");
        assert_eq!(d.short(), [126, 12, 6, 23, 33, 20, 0]);
        assert_eq!(&DateTime::from_unix(951_782_400).long()[..8], b"20000229");
    }

    #[test]
    fn primary_names_are_shortened_and_kept_apart() {
        let mut taken = Vec::new();
        let a = primary_name("a-very-long-file-name-that-goes-on.json", true, &mut taken);
        let b = primary_name(
            "a-very-long-file-name-that-goes-on-and-on.json",
            true,
            &mut taken,
        );
        assert_eq!(a.len(), 32);
        assert!(a.ends_with(b".json;1"));
        assert_ne!(a, b);
        assert_eq!(primary_name("latest", false, &mut taken), b"latest");
        assert_eq!(primary_name("a;b c", true, &mut taken), b"a_b_c;1");
    }

    #[test]
    fn bad_names_and_duplicates_are_refused() {
        let mut iso = IsoBuilder::new("x").unwrap();
        iso.add_file("a/b", vec![1]).unwrap();
        assert!(matches!(
            iso.add_file("a/b", vec![2]),
            Err(IsoError::Exists(_))
        ));
        assert!(matches!(
            iso.add_file("a/b/c", vec![2]),
            Err(IsoError::Exists(_))
        ));
        assert!(matches!(
            iso.add_file("a/../c", vec![2]),
            Err(IsoError::InvalidName(_))
        ));
        assert!(matches!(
            iso.add_file("", vec![2]),
            Err(IsoError::InvalidName(_))
        ));
        assert!(IsoBuilder::new("").is_err());
        assert!(IsoBuilder::new(&"x".repeat(33)).is_err());
        iso.bios_boot("nope", 4, true);
        assert!(matches!(iso.to_vec(), Err(IsoError::NoSuchFile(_))));
    }

    #[test]
    fn the_boot_catalog_validates_and_the_info_table_is_filled() {
        let mut iso = IsoBuilder::new("boot").unwrap();
        let mut loader = vec![0xabu8; 5000];
        loader[0] = 0xeb;
        iso.add_file("boot/eltorito.img", loader.clone()).unwrap();
        iso.add_file("efi.img", vec![0u8; 4096]).unwrap();
        iso.bios_boot("boot/eltorito.img", 4, true)
            .uefi_boot("efi.img");
        let img = iso.to_vec().unwrap();
        assert_eq!(img.len() % S, 0);
        assert_eq!(&img[17 * S + 7..17 * S + 30], b"EL TORITO SPECIFICATION");
        let cat =
            u32::from_le_bytes(img[17 * S + 0x47..17 * S + 0x4b].try_into().unwrap()) as usize;
        let c = &img[cat * S..cat * S + 128];
        let sum = (0..32).step_by(2).fold(0u16, |s, i| {
            s.wrapping_add(u16::from_le_bytes([c[i], c[i + 1]]))
        });
        assert_eq!(sum, 0);
        assert_eq!((c[32], c[64], c[65], c[96]), (0x88, 0x91, 0xef, 0x88));
        let lba = u32::from_le_bytes(c[40..44].try_into().unwrap()) as usize;
        let f = &img[lba * S..lba * S + 5000];
        assert_eq!(f[0], 0xeb);
        assert_eq!(u32::from_le_bytes(f[8..12].try_into().unwrap()), 16);
        assert_eq!(
            u32::from_le_bytes(f[12..16].try_into().unwrap()) as usize,
            lba
        );
        assert_eq!(u32::from_le_bytes(f[16..20].try_into().unwrap()), 5000);
        assert_eq!(&f[64..], &loader[64..]);
    }
}
