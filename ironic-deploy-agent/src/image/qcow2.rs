//! qcow2 → raw while streaming: no temp file, no image-sized memory.
//!
//! The file is consumed in order, one host cluster at a time. The header (cluster
//! 0) names the L1 table; each L1 entry names an L2 table; each L2 entry maps a
//! guest cluster to a host cluster (or to compressed bytes, or to zeros). Every
//! host cluster that arrives is matched against what is already known:
//!
//! * **wanted** (its role is known because the table mapping it was already read):
//!   an L1 part, an L2 table, a data cluster (written to its guest offset at once),
//!   compressed bytes (decompressed when complete), or metadata to skip;
//! * **not yet known**: parked. All-zero clusters cost nothing; others are kept in a
//!   bounded reorder buffer (`max_buffer` bytes); when that is full only their
//!   SHA-256 is kept (32 bytes per cluster).
//!
//! Images written by `qemu-img` allocate an L2 table before the data it maps, so
//! nothing is parked but refcount blocks. For images whose tables come after their
//! data (an L1 table moved by a resize, tables written last by other tools), a
//! parked cluster that turns out to be needed is taken from the buffer, and a
//! dropped one is **re-requested with an HTTP `Range` GET** after the stream ends
//! and accepted only if its SHA-256 equals the one taken while streaming, so the
//! image checksum still covers every byte written. This keeps memory bounded for
//! any layout and costs extra download only for unusual layouts.
//!
//! Guest clusters that no L2 entry maps to data (unallocated, zero flag, all-zero
//! data) are zeroed at the end (punched where the target allows it). Backing
//! files, encryption, external data files, extended L2 entries and zstd
//! compression are refused with a clear message.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

use super::Processor;
use super::sink::{DiskSink, is_zero};
use crate::error::{AgentError, Result};

/// qcow2 magic `QFI\xfb`.
pub const MAGIC: [u8; 4] = *b"QFI\xfb";
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const COMPRESSED: u64 = 1 << 62;
const ZERO_FLAG: u64 = 1;

/// The fields of a qcow2 header this converter uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// 2 or 3.
    pub version: u32,
    /// log2 of the cluster size.
    pub cluster_bits: u32,
    /// Virtual disk size in bytes.
    pub size: u64,
    /// Entries in the L1 table.
    pub l1_size: u64,
    /// Host offset of the L1 table.
    pub l1_offset: u64,
    /// Host offset of the refcount table.
    pub refcount_table_offset: u64,
    /// Clusters of the refcount table.
    pub refcount_table_clusters: u64,
}

fn be32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn be64(b: &[u8], o: usize) -> u64 {
    (u64::from(be32(b, o)) << 32) | u64::from(be32(b, o + 4))
}

fn bad(msg: impl Into<String>) -> AgentError {
    AgentError::ImageFormat(format!("qcow2: {}", msg.into()))
}

impl Header {
    /// Bytes needed to parse a header.
    pub const MIN_LEN: usize = 112;

    /// Parse and check a header (at least [`Header::MIN_LEN`] bytes, or the whole file).
    pub fn parse(b: &[u8]) -> Result<Self> {
        if b.len() < 72 {
            return Err(bad("file too short for a header"));
        }
        if b[..4] != MAGIC {
            return Err(bad("bad magic"));
        }
        let version = be32(b, 4);
        if version != 2 && version != 3 {
            return Err(bad(format!("unsupported version {version}")));
        }
        if be64(b, 8) != 0 {
            return Err(bad(
                "images with a backing file are not supported (flatten it with qemu-img convert)",
            ));
        }
        let cluster_bits = be32(b, 20);
        if !(9..=21).contains(&cluster_bits) {
            return Err(bad(format!("invalid cluster_bits {cluster_bits}")));
        }
        let size = be64(b, 24);
        if be32(b, 32) != 0 {
            return Err(bad("encrypted images are not supported"));
        }
        let l1_size = u64::from(be32(b, 36));
        let l1_offset = be64(b, 40);
        let refcount_table_offset = be64(b, 48);
        let refcount_table_clusters = u64::from(be32(b, 56));
        if version == 3 {
            if b.len() < 104 {
                return Err(bad("file too short for a version 3 header"));
            }
            let incompat = be64(b, 72);
            if incompat & 2 != 0 {
                return Err(bad("the image is marked corrupt"));
            }
            if incompat & 4 != 0 {
                return Err(bad("images with an external data file are not supported"));
            }
            if incompat & 16 != 0 {
                return Err(bad("extended L2 entries (subclusters) are not supported"));
            }
            if incompat & 8 != 0 {
                let header_len = be32(b, 100) as usize;
                if header_len > 104 && b.len() > 104 && b[104] != 0 {
                    return Err(bad("zstd-compressed images are not supported (only zlib)"));
                }
            }
            if incompat & !0x1f != 0 {
                return Err(bad(format!("unknown incompatible features {incompat:#x}")));
            }
        }
        let cs = 1u64 << cluster_bits;
        let per_l2 = cs / 8;
        let need_l1 = size.div_ceil(cs).div_ceil(per_l2);
        if l1_size < need_l1 {
            return Err(bad(format!(
                "L1 table of {l1_size} entries cannot map a {size}-byte disk"
            )));
        }
        if !l1_offset.is_multiple_of(cs) || (l1_size > 0 && l1_offset == 0) {
            return Err(bad(format!("misaligned L1 table offset {l1_offset}")));
        }
        if size > (1u64 << 56) {
            return Err(bad(format!("virtual size {size} is not plausible")));
        }
        Ok(Header {
            version,
            cluster_bits,
            size,
            l1_size,
            l1_offset,
            refcount_table_offset,
            refcount_table_clusters,
        })
    }

    /// Cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }
}

#[derive(Clone, Copy, Debug)]
enum Want {
    L1 { first_entry: u64 },
    L2 { l1_index: u64 },
    Data { guest: u64 },
    Compressed { job: u64 },
    RefTable,
    Ignore,
}

#[derive(Debug)]
enum Parked {
    Zero,
    Buffered(Vec<u8>),
    Dropped([u8; 32]),
}

#[derive(Debug)]
struct CJob {
    guest: u64,
    start: u64,
    len: u64,
    buf: Vec<u8>,
    missing: u64,
}

/// Counters for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Qcow2Stats {
    /// Clusters that had to be parked (arrived before their mapping).
    pub parked: u64,
    /// Clusters re-fetched with `Range` requests.
    pub refetched: u64,
    /// Peak bytes in the reorder buffer.
    pub peak_buffer: u64,
    /// Compressed clusters decompressed.
    pub compressed: u64,
}

/// The streaming converter.
#[derive(Debug)]
pub struct Qcow2Processor {
    hdr: Option<Header>,
    cs: u64,
    next: u64,
    cur: Vec<u8>,
    wants: HashMap<u64, Vec<Want>>,
    parked: HashMap<u64, Parked>,
    buffered: u64,
    max_buffer: u64,
    refetch: BTreeMap<u64, [u8; 32]>,
    jobs: HashMap<u64, CJob>,
    next_job: u64,
    written: Vec<u64>,
    stream_len: u64,
    zero_cluster: Vec<u8>,
    stats: Qcow2Stats,
    capacity: u64,
    recent_compressed: std::collections::VecDeque<u64>,
}

impl Qcow2Processor {
    /// A converter keeping at most `max_buffer` bytes of out-of-order clusters,
    /// writing to a region of `capacity` bytes.
    pub fn new(max_buffer: u64, capacity: u64) -> Self {
        Qcow2Processor {
            hdr: None,
            cs: 0,
            next: 0,
            cur: Vec::new(),
            wants: HashMap::new(),
            parked: HashMap::new(),
            buffered: 0,
            max_buffer,
            refetch: BTreeMap::new(),
            jobs: HashMap::new(),
            next_job: 0,
            written: Vec::new(),
            stream_len: 0,
            zero_cluster: Vec::new(),
            stats: Qcow2Stats::default(),
            capacity,
            recent_compressed: std::collections::VecDeque::new(),
        }
    }

    /// The parsed header, once the first cluster arrived.
    pub fn header(&self) -> Option<&Header> {
        self.hdr.as_ref()
    }

    /// Counters.
    pub fn stats(&self) -> Qcow2Stats {
        self.stats
    }

    fn size(&self) -> u64 {
        self.hdr.as_ref().map_or(0, |h| h.size)
    }

    fn start(&mut self, sink: &mut DiskSink, first: &[u8]) -> Result<()> {
        let h = Header::parse(first)?;
        if h.size > self.capacity {
            return Err(AgentError::DiskTooSmall(format!(
                "the image's virtual size is {} bytes but the target has {} bytes",
                h.size, self.capacity
            )));
        }
        self.cs = h.cluster_size();
        let guest_clusters = h.size.div_ceil(self.cs);
        self.written = vec![0u64; guest_clusters.div_ceil(64) as usize];
        self.zero_cluster = vec![0u8; self.cs as usize];
        let l1_bytes = h.l1_size * 8;
        let first_l1 = h.l1_offset / self.cs;
        let rt = (h.refcount_table_offset, h.refcount_table_clusters);
        self.hdr = Some(h);
        for i in 0..l1_bytes.div_ceil(self.cs) {
            self.need(
                sink,
                first_l1 + i,
                Want::L1 {
                    first_entry: i * (self.cs / 8),
                },
            )?;
        }
        if rt.0 % self.cs == 0 && rt.0 > 0 {
            for i in 0..rt.1.min(1 << 16) {
                self.need(sink, rt.0 / self.cs + i, Want::RefTable)?;
            }
        }
        Ok(())
    }

    /// Register that host cluster `h` has role `w`; apply it now if it already went by.
    fn need(&mut self, sink: &mut DiskSink, h: u64, w: Want) -> Result<()> {
        if h >= self.next {
            self.wants.entry(h).or_default().push(w);
            return Ok(());
        }
        if matches!(w, Want::Ignore) {
            if let Some(Parked::Buffered(b)) = self.parked.remove(&h) {
                self.buffered -= b.len() as u64;
            }
            return Ok(());
        }
        let keep = matches!(w, Want::Compressed { .. });
        match self.parked.remove(&h) {
            Some(Parked::Zero) => {
                if keep {
                    self.parked.insert(h, Parked::Zero);
                }
                let z = std::mem::take(&mut self.zero_cluster);
                let r = self.apply(sink, h, w, &z);
                self.zero_cluster = z;
                r
            }
            Some(Parked::Buffered(b)) => {
                let r = self.apply(sink, h, w, &b);
                if keep {
                    self.parked.insert(h, Parked::Buffered(b));
                } else {
                    self.buffered -= b.len() as u64;
                }
                r
            }
            Some(Parked::Dropped(d)) => {
                if keep {
                    self.parked.insert(h, Parked::Dropped(d));
                }
                self.refetch.insert(h, d);
                self.wants.entry(h).or_default().push(w);
                Ok(())
            }
            None if self.refetch.contains_key(&h) => {
                self.wants.entry(h).or_default().push(w);
                Ok(())
            }
            None => Err(bad(format!(
                "host cluster {h} is referenced after it was already used (shared or \
                 overlapping clusters are not supported) or the image is corrupt"
            ))),
        }
    }

    fn park(&mut self, h: u64, bytes: &[u8]) {
        if is_zero(bytes) {
            self.parked.insert(h, Parked::Zero);
            return;
        }
        self.stats.parked += 1;
        if self.buffered + self.cs <= self.max_buffer {
            self.buffered += self.cs;
            self.stats.peak_buffer = self.stats.peak_buffer.max(self.buffered);
            self.parked.insert(h, Parked::Buffered(bytes.to_vec()));
        } else {
            self.parked
                .insert(h, Parked::Dropped(Sha256::digest(bytes).into()));
        }
    }

    fn mark_written(&mut self, guest: u64) -> Result<()> {
        let (w, b) = ((guest / 64) as usize, guest % 64);
        if self.written[w] & (1 << b) != 0 {
            return Err(bad(format!("guest cluster {guest} is mapped twice")));
        }
        self.written[w] |= 1 << b;
        Ok(())
    }

    fn write_guest(&mut self, sink: &mut DiskSink, guest: u64, data: &[u8]) -> Result<()> {
        let off = guest * self.cs;
        let len = self.cs.min(self.size() - off) as usize;
        let data = &data[..len];
        if is_zero(data) {
            return Ok(());
        }
        self.mark_written(guest)?;
        sink.write_units(off, data)
    }

    fn apply(&mut self, sink: &mut DiskSink, h: u64, w: Want, bytes: &[u8]) -> Result<()> {
        let cs = self.cs;
        match w {
            Want::Ignore => Ok(()),
            Want::RefTable => {
                for e in bytes.chunks_exact(8) {
                    let off = be64(e, 0);
                    if off != 0 && off.is_multiple_of(cs) {
                        self.need(sink, off / cs, Want::Ignore)?;
                    }
                }
                Ok(())
            }
            Want::L1 { first_entry } => {
                let l1_size = self.hdr.as_ref().map_or(0, |h| h.l1_size);
                for (j, e) in bytes.chunks_exact(8).enumerate() {
                    let idx = first_entry + j as u64;
                    if idx >= l1_size {
                        break;
                    }
                    let off = be64(e, 0) & OFFSET_MASK;
                    if off == 0 {
                        continue;
                    }
                    if !off.is_multiple_of(cs) {
                        return Err(bad(format!("misaligned L2 table offset {off}")));
                    }
                    self.need(sink, off / cs, Want::L2 { l1_index: idx })?;
                }
                Ok(())
            }
            Want::L2 { l1_index } => {
                let (size, bits, v3) = match &self.hdr {
                    Some(h) => (h.size, u64::from(h.cluster_bits), h.version == 3),
                    None => return Err(bad("L2 table before header")),
                };
                let per_l2 = cs / 8;
                for (j, e) in bytes.chunks_exact(8).enumerate() {
                    let guest = l1_index * per_l2 + j as u64;
                    if guest * cs >= size {
                        break;
                    }
                    let e = be64(e, 0);
                    if e & COMPRESSED != 0 {
                        let x = 62 - (bits - 8);
                        let start = e & ((1u64 << x) - 1);
                        let nsec = ((e >> x) & ((1u64 << (bits - 8)) - 1)) + 1;
                        let len = nsec * 512 - (start & 511);
                        let job = self.next_job;
                        self.next_job += 1;
                        self.jobs.insert(
                            job,
                            CJob {
                                guest,
                                start,
                                len,
                                buf: Vec::new(),
                                missing: len,
                            },
                        );
                        for hc in start / cs..=(start + len - 1) / cs {
                            self.need(sink, hc, Want::Compressed { job })?;
                        }
                        continue;
                    }
                    let off = e & OFFSET_MASK;
                    if (v3 && e & ZERO_FLAG != 0) || off == 0 {
                        continue;
                    }
                    if !off.is_multiple_of(cs) {
                        return Err(bad(format!("misaligned data cluster offset {off}")));
                    }
                    self.need(sink, off / cs, Want::Data { guest })?;
                }
                Ok(())
            }
            Want::Data { guest } => self.write_guest(sink, guest, bytes),
            Want::Compressed { job } => {
                let Some(j) = self.jobs.get_mut(&job) else {
                    return Ok(());
                };
                let c0 = h * cs;
                let s = j.start.max(c0);
                let e = (j.start + j.len).min(c0 + bytes.len() as u64);
                if e > s {
                    if j.buf.is_empty() {
                        j.buf = vec![0u8; j.len as usize];
                    }
                    let dst = (s - j.start) as usize..(e - j.start) as usize;
                    j.buf[dst].copy_from_slice(&bytes[(s - c0) as usize..(e - c0) as usize]);
                    j.missing -= e - s;
                }
                if j.missing == 0 {
                    let j = self.jobs.remove(&job).expect("job present");
                    let mut out = vec![0u8; cs as usize];
                    let mut d = flate2::Decompress::new(false);
                    let r = d.decompress(&j.buf, &mut out, flate2::FlushDecompress::Finish);
                    let want = cs.min(self.size() - j.guest * cs);
                    if r.is_err() || d.total_out() < want {
                        return Err(bad(format!(
                            "compressed cluster for guest offset {} does not decompress",
                            j.guest * cs
                        )));
                    }
                    self.stats.compressed += 1;
                    self.write_guest(sink, j.guest, &out)?;
                }
                Ok(())
            }
        }
    }

    fn cluster(&mut self, sink: &mut DiskSink, idx: u64, bytes: &[u8]) -> Result<()> {
        self.next = idx + 1;
        if idx == 0 {
            return self.start(sink, bytes);
        }
        match self.wants.remove(&idx) {
            Some(ws) => {
                let mut compressed = false;
                for w in ws {
                    compressed |= matches!(w, Want::Compressed { .. });
                    self.apply(sink, idx, w, bytes)?;
                }
                if compressed {
                    // compressed clusters are packed: the next L2 table may map more
                    // bytes of this host cluster, so keep the last few around
                    self.park(idx, bytes);
                    self.recent_compressed.push_back(idx);
                    if self.recent_compressed.len() > 4
                        && let Some(old) = self.recent_compressed.pop_front()
                        && let Some(Parked::Buffered(b)) = self.parked.remove(&old)
                    {
                        self.buffered -= b.len() as u64;
                        self.parked
                            .insert(old, Parked::Dropped(Sha256::digest(&b).into()));
                    }
                }
                Ok(())
            }
            None => {
                self.park(idx, bytes);
                Ok(())
            }
        }
    }

    fn coalesce(&self, keys: impl Iterator<Item = u64>) -> Vec<(u64, u64)> {
        let cs = self.cs;
        let max_run = ((8 << 20) / cs).max(1);
        let mut out: Vec<(u64, u64)> = Vec::new();
        for h in keys {
            match out.last_mut() {
                Some((s, l)) if *s + *l == h * cs && *l / cs < max_run => *l += cs,
                _ => out.push((h * cs, cs)),
            }
        }
        out.iter()
            .map(|&(s, l)| (s, l.min(self.stream_len.saturating_sub(s))))
            .filter(|&(_, l)| l > 0)
            .collect()
    }
}

impl Processor for Qcow2Processor {
    fn feed(&mut self, sink: &mut DiskSink, mut data: &[u8]) -> Result<()> {
        self.stream_len += data.len() as u64;
        while !data.is_empty() {
            if self.hdr.is_none() {
                // cluster size unknown until the header is read
                let want = if self.cur.len() < Header::MIN_LEN {
                    Header::MIN_LEN
                } else {
                    1usize << be32(&self.cur, 20).clamp(9, 21)
                };
                let n = (want - self.cur.len()).min(data.len());
                self.cur.extend_from_slice(&data[..n]);
                data = &data[n..];
                if self.cur.len() == Header::MIN_LEN {
                    Header::parse(&self.cur)?;
                }
                if self.cur.len() >= Header::MIN_LEN
                    && self.cur.len() == 1usize << be32(&self.cur, 20).clamp(9, 21)
                {
                    let c = std::mem::take(&mut self.cur);
                    self.cluster(sink, 0, &c)?;
                }
                continue;
            }
            let cs = self.cs as usize;
            if self.cur.is_empty() && data.len() >= cs {
                let (c, rest) = data.split_at(cs);
                let idx = self.next;
                self.cluster(sink, idx, c)?;
                data = rest;
                continue;
            }
            let n = (cs - self.cur.len()).min(data.len());
            self.cur.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.cur.len() == cs {
                let c = std::mem::take(&mut self.cur);
                let idx = self.next;
                self.cluster(sink, idx, &c)?;
                self.cur = c;
                self.cur.clear();
            }
        }
        Ok(())
    }

    fn end_of_stream(&mut self, sink: &mut DiskSink) -> Result<()> {
        if self.hdr.is_none() {
            if self.cur.len() >= 72 {
                Header::parse(&self.cur)?;
            }
            return Err(bad("the file ends before its first cluster"));
        }
        if !self.cur.is_empty() {
            let mut c = std::mem::take(&mut self.cur);
            c.resize(self.cs as usize, 0);
            let idx = self.next;
            self.cluster(sink, idx, &c)?;
        }
        // bytes past the end of the file (padding of the last compressed cluster) are zeros
        let past: Vec<u64> = self
            .wants
            .keys()
            .copied()
            .filter(|&h| h >= self.next)
            .collect();
        for h in past {
            let ws = self.wants.remove(&h).unwrap_or_default();
            for w in ws {
                if !matches!(w, Want::Compressed { .. } | Want::Ignore) {
                    return Err(bad(format!(
                        "the image refers to host offset {} beyond its end ({} bytes); \
                         truncated or corrupt image",
                        h * self.cs,
                        self.stream_len
                    )));
                }
                let z = std::mem::take(&mut self.zero_cluster);
                let r = self.apply(sink, h, w, &z);
                self.zero_cluster = z;
                r?;
            }
        }
        Ok(())
    }

    fn take_refetch(&mut self) -> Vec<(u64, u64)> {
        let keys: Vec<u64> = self.refetch.keys().copied().collect();
        self.stats.refetched += keys.len() as u64;
        self.coalesce(keys.into_iter())
    }

    fn refetched(&mut self, sink: &mut DiskSink, off: u64, data: &[u8]) -> Result<()> {
        let cs = self.cs as usize;
        for (i, c) in data.chunks(cs).enumerate() {
            let h = off / self.cs + i as u64;
            let padded;
            let c = if c.len() < cs {
                let mut v = c.to_vec();
                v.resize(cs, 0);
                padded = v;
                &padded[..]
            } else {
                c
            };
            let Some(d) = self.refetch.remove(&h) else {
                continue;
            };
            if <[u8; 32]>::from(Sha256::digest(c)) != d {
                return Err(AgentError::Checksum(format!(
                    "host cluster {h} re-fetched with a Range request differs from the \
                     streamed one (the image changed on the server)"
                )));
            }
            if let Some(ws) = self.wants.remove(&h) {
                for w in ws {
                    self.apply(sink, h, w, c)?;
                }
            }
        }
        Ok(())
    }

    fn qcow2_stats(&self) -> Option<Qcow2Stats> {
        Some(self.stats)
    }

    fn finish(&mut self, sink: &mut DiskSink) -> Result<u64> {
        if let Some((&h, _)) = self.wants.iter().next() {
            return Err(bad(format!(
                "host cluster {h} is referenced but was never available"
            )));
        }
        if let Some((_, j)) = self.jobs.iter().next() {
            return Err(bad(format!(
                "compressed data for guest offset {} is incomplete",
                j.guest * self.cs
            )));
        }
        self.parked.clear();
        self.buffered = 0;
        let size = self.size();
        let cs = self.cs;
        let n = size.div_ceil(cs);
        let mut g = 0u64;
        while g < n {
            if self.written[(g / 64) as usize] & (1 << (g % 64)) != 0 {
                g += 1;
                continue;
            }
            let start = g;
            while g < n && self.written[(g / 64) as usize] & (1 << (g % 64)) == 0 {
                g += 1;
            }
            let off = start * cs;
            sink.zero_units(off, (g * cs).min(size) - off)?;
        }
        Ok(size)
    }
}
