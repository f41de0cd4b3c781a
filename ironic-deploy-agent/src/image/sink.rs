//! The target: a region of a block device (or a file standing in for one) that
//! the image is written to, zero ranges punched instead of written where the
//! target allows it, and every unit of the region folded into an
//! order-independent checksum so the written data can be read back and verified.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::FallocateFlags;

use crate::error::{AgentError, Result};

/// Open a device (or file) for writing and tell its size in bytes.
pub fn open_device(path: &Path) -> Result<(File, u64)> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| AgentError::io(format!("opening {}", path.display()), e))?;
    let size = device_size(&mut f, path)?;
    Ok((f, size))
}

/// Size of a block device or regular file.
pub fn device_size(f: &mut File, path: &Path) -> Result<u64> {
    let meta = f
        .metadata()
        .map_err(|e| AgentError::io(format!("stat {}", path.display()), e))?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    let end = f
        .seek(SeekFrom::End(0))
        .map_err(|e| AgentError::io(format!("size of {}", path.display()), e))?;
    f.seek(SeekFrom::Start(0))
        .map_err(|e| AgentError::io(format!("seek {}", path.display()), e))?;
    Ok(end)
}

/// Folds one unit's CRC with its index into the order-independent accumulator.
fn mix(index: u64, crc: u32) -> u64 {
    // splitmix64 finaliser over (index, crc)
    let mut z = (index << 32) ^ u64::from(crc) ^ 0x9E37_79B9_7F4A_7C15;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether a buffer is all zero bytes.
pub fn is_zero(buf: &[u8]) -> bool {
    let mut chunks = buf.chunks_exact(64);
    chunks.by_ref().all(|c| {
        let mut acc = 0u64;
        for w in c.chunks_exact(8) {
            acc |= u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        }
        acc == 0
    }) && chunks.remainder().iter().all(|&b| b == 0)
}

/// Counters of what the sink did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Bytes written with data.
    pub data_bytes: u64,
    /// Bytes zeroed (punched or written as zeros).
    pub zero_bytes: u64,
    /// Whether zero ranges could be punched (else zeros were written).
    pub punched: bool,
}

/// A region of a device being written.
#[derive(Debug)]
pub struct DiskSink {
    file: File,
    path: PathBuf,
    base: u64,
    capacity: u64,
    unit: u64,
    acc: u64,
    zero_unit_crc: u32,
    punch: Option<bool>,
    pending_zero: Option<(u64, u64)>,
    stats: SinkStats,
}

impl DiskSink {
    /// A sink over `[base, base + capacity)` of `file`, verifying in `unit`-byte units.
    pub fn new(file: File, path: PathBuf, base: u64, capacity: u64, unit: u64) -> Self {
        let zero_unit_crc = crc32fast::hash(&vec![0u8; unit as usize]);
        DiskSink {
            file,
            path,
            base,
            capacity,
            unit,
            acc: 0,
            zero_unit_crc,
            punch: None,
            pending_zero: None,
            stats: SinkStats::default(),
        }
    }

    /// The verification unit.
    pub fn unit(&self) -> u64 {
        self.unit
    }

    /// The region's size.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// What was done so far.
    pub fn stats(&self) -> SinkStats {
        self.stats
    }

    fn check_bounds(&self, off: u64, len: u64) -> Result<()> {
        if off.checked_add(len).is_none_or(|end| end > self.capacity) {
            return Err(AgentError::DiskTooSmall(format!(
                "the image needs at least {} bytes but {} has {} bytes",
                off.saturating_add(len),
                self.path.display(),
                self.capacity
            )));
        }
        Ok(())
    }

    /// Write whole units of data at `off` (unit-aligned). The last unit may be short
    /// only when it ends the image.
    pub fn write_units(&mut self, off: u64, data: &[u8]) -> Result<()> {
        debug_assert_eq!(off % self.unit, 0);
        self.check_bounds(off, data.len() as u64)?;
        self.flush_zero()?;
        for (i, u) in data.chunks(self.unit as usize).enumerate() {
            self.acc = self
                .acc
                .wrapping_add(mix(off / self.unit + i as u64, crc32fast::hash(u)));
        }
        self.file
            .write_all_at(data, self.base + off)
            .map_err(|e| AgentError::io(format!("writing {}", self.path.display()), e))?;
        self.stats.data_bytes += data.len() as u64;
        Ok(())
    }

    /// Make `[off, off+len)` read as zeros (unit-aligned start; `len` a multiple of
    /// the unit unless the range ends the image).
    pub fn zero_units(&mut self, off: u64, len: u64) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        debug_assert_eq!(off % self.unit, 0);
        self.check_bounds(off, len)?;
        let first = off / self.unit;
        let full = len / self.unit;
        for i in 0..full {
            self.acc = self.acc.wrapping_add(mix(first + i, self.zero_unit_crc));
        }
        let tail = len % self.unit;
        if tail != 0 {
            let crc = crc32fast::hash(&vec![0u8; tail as usize]);
            self.acc = self.acc.wrapping_add(mix(first + full, crc));
        }
        match self.pending_zero {
            Some((s, l)) if s + l == off => self.pending_zero = Some((s, l + len)),
            _ => {
                self.flush_zero()?;
                self.pending_zero = Some((off, len));
            }
        }
        Ok(())
    }

    fn flush_zero(&mut self) -> Result<()> {
        let Some((off, len)) = self.pending_zero.take() else {
            return Ok(());
        };
        self.stats.zero_bytes += len;
        let abs = self.base + off;
        if self.punch != Some(false) {
            let r = rustix::fs::fallocate(
                &self.file,
                FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
                abs,
                len,
            )
            .or_else(|_| {
                rustix::fs::fallocate(
                    &self.file,
                    FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE,
                    abs,
                    len,
                )
            });
            match r {
                Ok(()) => {
                    self.punch = Some(true);
                    self.stats.punched = true;
                    return Ok(());
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot punch holes, writing zeros");
                    self.punch = Some(false);
                }
            }
        }
        let zeros = vec![0u8; (1 << 20).min(len) as usize];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(zeros.len() as u64) as usize;
            self.file
                .write_all_at(&zeros[..n], abs + done)
                .map_err(|e| AgentError::io(format!("zeroing {}", self.path.display()), e))?;
            done += n as u64;
        }
        Ok(())
    }

    /// Flush, `fsync`, and (when `verify_len` is given) read `[0, verify_len)` back and
    /// check that it is exactly what was written.
    pub fn finish(&mut self, verify_len: Option<u64>) -> Result<()> {
        self.finish_with_progress(verify_len, None)
    }

    /// [`DiskSink::finish`], counting the bytes read back into `progress`.
    pub fn finish_with_progress(
        &mut self,
        verify_len: Option<u64>,
        progress: Option<&crate::progress::Progress>,
    ) -> Result<()> {
        self.flush_zero()?;
        self.file
            .sync_all()
            .map_err(|e| AgentError::io(format!("fsync {}", self.path.display()), e))?;
        let Some(len) = verify_len else {
            return Ok(());
        };
        let unit = self.unit as usize;
        let per = (((4 << 20) / unit).max(1)) * unit;
        let mut buf = vec![0u8; per];
        let mut acc = 0u64;
        let mut off = 0u64;
        let mut f = &self.file;
        f.seek(SeekFrom::Start(self.base))
            .map_err(|e| AgentError::io(format!("seek {}", self.path.display()), e))?;
        while off < len {
            let n = ((len - off) as usize).min(per);
            f.read_exact(&mut buf[..n])
                .map_err(|e| AgentError::io(format!("reading back {}", self.path.display()), e))?;
            for (i, u) in buf[..n].chunks(unit).enumerate() {
                acc = acc.wrapping_add(mix(off / self.unit + i as u64, crc32fast::hash(u)));
            }
            off += n as u64;
            if let Some(p) = progress {
                p.add(n as u64);
            }
        }
        if acc != self.acc {
            return Err(AgentError::Verify(format!(
                "the {len} bytes read back from {} differ from what was written",
                self.path.display()
            )));
        }
        Ok(())
    }

    /// Overwrite the first and last MiB of the region with zeros so a failed
    /// write is never mistaken for a bootable image.
    pub fn invalidate(&mut self) {
        self.pending_zero = None;
        let n = (1u64 << 20).min(self.capacity);
        let zeros = vec![0u8; n as usize];
        let _ = self.file.write_all_at(&zeros, self.base);
        let _ = self
            .file
            .write_all_at(&zeros, self.base + self.capacity - n);
        let _ = self.file.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_detection() {
        assert!(is_zero(&[0u8; 1000]));
        let mut v = vec![0u8; 4096];
        v[4095] = 1;
        assert!(!is_zero(&v));
        v[4095] = 0;
        v[3] = 9;
        assert!(!is_zero(&v));
        assert!(is_zero(&[]));
    }

    #[test]
    fn write_zero_verify_roundtrip_and_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("disk");
        let f = File::create(&p).unwrap();
        f.set_len(1 << 20).unwrap();
        std::fs::write(&p, vec![0xAAu8; 1 << 20]).unwrap();
        let (f, size) = open_device(&p).unwrap();
        assert_eq!(size, 1 << 20);
        let mut s = DiskSink::new(f, p.clone(), 0, size, 4096);
        s.write_units(0, &[1u8; 8192]).unwrap();
        s.zero_units(8192, 4096 * 3).unwrap();
        s.write_units(4096 * 5, &[2u8; 100]).unwrap();
        s.finish(Some(4096 * 5 + 100)).unwrap();
        let data = std::fs::read(&p).unwrap();
        assert!(data[..8192].iter().all(|&b| b == 1));
        assert!(data[8192..4096 * 5].iter().all(|&b| b == 0));
        assert!(data[4096 * 5..4096 * 5 + 100].iter().all(|&b| b == 2));
        assert!(s.write_units(1 << 20, &[1u8; 4096]).is_err());
        // corrupt one byte behind the sink's back: verification fails
        let g = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        g.write_all_at(&[7], 9000).unwrap();
        let e = s.finish(Some(4096 * 5 + 100)).unwrap_err();
        assert!(matches!(e, AgentError::Verify(_)), "{e}");
    }
}
