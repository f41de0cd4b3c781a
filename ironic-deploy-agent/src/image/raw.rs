//! Raw images: the stream is the disk; zero units are punched, not written.

use super::Processor;
use super::sink::{DiskSink, is_zero};
use crate::error::Result;

/// Writes a raw stream in place.
#[derive(Debug)]
pub struct RawProcessor {
    pos: u64,
    carry: Vec<u8>,
    unit: usize,
}

impl RawProcessor {
    /// A processor for a sink with this unit.
    pub fn new(unit: u64) -> Self {
        RawProcessor {
            pos: 0,
            carry: Vec::with_capacity(unit as usize),
            unit: unit as usize,
        }
    }

    fn units(sink: &mut DiskSink, off: u64, buf: &[u8], unit: usize) -> Result<()> {
        let mut run_start = 0usize;
        let mut run_zero: Option<bool> = None;
        let mut i = 0usize;
        while i < buf.len() {
            let end = (i + unit).min(buf.len());
            let z = is_zero(&buf[i..end]);
            match run_zero {
                Some(rz) if rz == z => {}
                Some(rz) => {
                    Self::flush(sink, off, buf, run_start, i, rz)?;
                    run_start = i;
                    run_zero = Some(z);
                }
                None => run_zero = Some(z),
            }
            i = end;
        }
        if let Some(rz) = run_zero {
            Self::flush(sink, off, buf, run_start, buf.len(), rz)?;
        }
        Ok(())
    }

    fn flush(
        sink: &mut DiskSink,
        off: u64,
        buf: &[u8],
        s: usize,
        e: usize,
        zero: bool,
    ) -> Result<()> {
        if zero {
            sink.zero_units(off + s as u64, (e - s) as u64)
        } else {
            sink.write_units(off + s as u64, &buf[s..e])
        }
    }
}

impl Processor for RawProcessor {
    fn feed(&mut self, sink: &mut DiskSink, mut data: &[u8]) -> Result<()> {
        if !self.carry.is_empty() {
            let n = (self.unit - self.carry.len()).min(data.len());
            self.carry.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.carry.len() == self.unit {
                let carry = std::mem::take(&mut self.carry);
                Self::units(sink, self.pos, &carry, self.unit)?;
                self.pos += self.unit as u64;
                self.carry = carry;
                self.carry.clear();
            }
        }
        let n = data.len() / self.unit * self.unit;
        if n > 0 {
            Self::units(sink, self.pos, &data[..n], self.unit)?;
            self.pos += n as u64;
        }
        self.carry.extend_from_slice(&data[n..]);
        Ok(())
    }

    fn end_of_stream(&mut self, sink: &mut DiskSink) -> Result<()> {
        if !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            Self::units(sink, self.pos, &carry, self.unit)?;
            self.pos += carry.len() as u64;
        }
        Ok(())
    }

    fn refetched(&mut self, _sink: &mut DiskSink, _off: u64, _data: &[u8]) -> Result<()> {
        Ok(())
    }

    fn take_refetch(&mut self) -> Vec<(u64, u64)> {
        Vec::new()
    }

    fn finish(&mut self, _sink: &mut DiskSink) -> Result<u64> {
        Ok(self.pos)
    }
}
