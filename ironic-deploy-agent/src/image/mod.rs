//! The image writer: stream an image from HTTP(S) straight onto a device (or a
//! region of it) while hashing it, converting qcow2 on the fly, punching zero
//! ranges instead of writing them, then `fsync` and read back to verify.
//!
//! Three threads share the work so that neither hashing nor writing stalls the
//! download: the download (async) hands 1 MiB buffers to a hashing thread and a
//! writing thread through bounded channels (4 buffers each), so memory stays at a
//! few MiB whatever the image size. A failed write (bad checksum, truncated
//! download, device too small, verification) zeroes the first and last MiB of the
//! target so a half-written image is never booted, and reports the error.

mod checksum;
pub mod configdrive;
pub mod esp;
mod fetch;
pub mod info;
pub mod partition;
pub mod qcow2;
mod raw;
mod sink;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

pub use checksum::{ExpectedChecksum, HashAlgo, ImageHasher};
pub use fetch::{DownloadOptions, Fetcher, StreamMsg};
pub use info::{ImageInfo, ImageType};
pub use qcow2::Qcow2Stats;
pub use sink::{DiskSink, SinkStats, device_size, is_zero, open_device};

use crate::error::{AgentError, Result};
use crate::progress::{self, Progress};

/// Turns the in-order stream into writes on a [`DiskSink`].
pub trait Processor: Send {
    /// The next bytes of the stream.
    fn feed(&mut self, sink: &mut DiskSink, data: &[u8]) -> Result<()>;
    /// The stream ended.
    fn end_of_stream(&mut self, sink: &mut DiskSink) -> Result<()>;
    /// Ranges still to fetch again (after [`Processor::refetched`] found more).
    fn take_refetch(&mut self) -> Vec<(u64, u64)>;
    /// Bytes fetched again at `off`.
    fn refetched(&mut self, sink: &mut DiskSink, off: u64, data: &[u8]) -> Result<()>;
    /// Zero what the image leaves unwritten; returns the image's (virtual) size.
    fn finish(&mut self, sink: &mut DiskSink) -> Result<u64>;
    /// qcow2 counters, for qcow2 images.
    fn qcow2_stats(&self) -> Option<Qcow2Stats> {
        None
    }
}

/// The image's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskFormat {
    /// Raw bytes (also `iso`, `gpt`).
    Raw,
    /// qcow2, converted while streaming.
    Qcow2,
}

impl DiskFormat {
    /// Parse Glance's `disk_format`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "raw" | "iso" | "gpt" => Ok(DiskFormat::Raw),
            "qcow2" => Ok(DiskFormat::Qcow2),
            other => Err(AgentError::InvalidParams(format!(
                "Unsupported disk_format {other:?}: the agent writes raw and qcow2 images"
            ))),
        }
    }

    /// `"raw"` / `"qcow2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
        }
    }
}

/// Detect the format from the first bytes (IPA's deep image inspection, reduced to
/// the formats that matter): `None` for raw.
pub fn sniff(first: &[u8]) -> Option<&'static str> {
    if first.starts_with(&qcow2::MAGIC) {
        Some("qcow2")
    } else if first.starts_with(b"KDMV") {
        Some("vmdk")
    } else if first.starts_with(b"vhdxfile") {
        Some("vhdx")
    } else if first.starts_with(b"conectix") {
        Some("vhd")
    } else if first.len() >= 0x44 && first[0x40..0x44] == [0x7f, 0x10, 0xda, 0xbe] {
        Some("vdi")
    } else {
        None
    }
}

/// Where to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Device (or file).
    pub path: PathBuf,
    /// Byte offset of the region (a partition's start).
    pub offset: u64,
    /// Region length (`None`: to the end of the device).
    pub length: Option<u64>,
}

impl Target {
    /// A whole device.
    pub fn whole(path: impl Into<PathBuf>) -> Self {
        Target {
            path: path.into(),
            offset: 0,
            length: None,
        }
    }
}

/// How to write.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Read the written bytes back and compare (default true).
    pub verify: bool,
    /// Reorder buffer for out-of-order qcow2 clusters (default 16 MiB).
    pub max_buffer: u64,
    /// Download behaviour.
    pub download: DownloadOptions,
    /// Where to report how far the write got (stages [`crate::progress::WRITING`]
    /// then [`crate::progress::VERIFYING`]).
    pub progress: Option<Arc<Progress>>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            verify: true,
            max_buffer: 16 << 20,
            download: DownloadOptions::default(),
            progress: None,
        }
    }
}

/// What a successful write did.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteReport {
    /// Detected format.
    pub format: DiskFormat,
    /// Bytes downloaded in the main stream.
    pub downloaded: u64,
    /// Size of the image on disk (virtual size for qcow2).
    pub image_size: u64,
    /// Sink counters.
    pub sink: SinkStats,
    /// qcow2 counters.
    pub qcow2: Option<Qcow2Stats>,
    /// Verified checksum (hex).
    pub checksum: String,
    /// Wall time.
    pub seconds: f64,
}

const RAW_UNIT: u64 = 64 << 10;

struct Writer {
    sink: DiskSink,
    proc: Box<dyn Processor>,
    qcow: bool,
}

fn writer_thread(
    mut rx: mpsc::Receiver<StreamMsg>,
    target: Target,
    declared: DiskFormat,
    max_buffer: u64,
    progress: Option<Arc<Progress>>,
) -> Result<Option<Writer>> {
    let (file, size) = open_device(&target.path)?;
    if target.offset > size {
        return Err(AgentError::DiskTooSmall(format!(
            "{} has {size} bytes, less than the region offset {}",
            target.path.display(),
            target.offset
        )));
    }
    let capacity = target.length.unwrap_or(size - target.offset);
    let mut file = Some(file);
    let mut w: Option<Writer> = None;
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            StreamMsg::Length(n) => {
                if let Some(p) = &progress {
                    p.set_total(n);
                }
                if declared == DiskFormat::Raw && n > capacity {
                    return Err(AgentError::DiskTooSmall(format!(
                        "the image has {n} bytes but {} has only {capacity} bytes",
                        target.path.display()
                    )));
                }
            }
            StreamMsg::Data(b) => {
                if w.is_none() {
                    let found = sniff(&b);
                    let fmt = match (declared, found) {
                        (DiskFormat::Raw, None) => DiskFormat::Raw,
                        (DiskFormat::Qcow2, Some("qcow2")) => DiskFormat::Qcow2,
                        (d, f) => {
                            return Err(AgentError::ImageFormat(format!(
                                "the image is declared {} but its content is {}",
                                d.as_str(),
                                f.unwrap_or("raw")
                            )));
                        }
                    };
                    let unit = match fmt {
                        DiskFormat::Raw => RAW_UNIT,
                        DiskFormat::Qcow2 => {
                            let h = qcow2::Header::parse(&b[..b.len().min(4096)])?;
                            h.cluster_size()
                        }
                    };
                    let sink = DiskSink::new(
                        file.take().expect("opened once"),
                        target.path.clone(),
                        target.offset,
                        capacity,
                        unit,
                    );
                    let proc: Box<dyn Processor> = match fmt {
                        DiskFormat::Raw => Box::new(raw::RawProcessor::new(unit)),
                        DiskFormat::Qcow2 => {
                            Box::new(qcow2::Qcow2Processor::new(max_buffer, capacity))
                        }
                    };
                    w = Some(Writer {
                        sink,
                        proc,
                        qcow: fmt == DiskFormat::Qcow2,
                    });
                }
                let wr = w.as_mut().expect("set above");
                if let Err(e) = wr.proc.feed(&mut wr.sink, &b) {
                    wr.sink.invalidate();
                    return Err(e);
                }
                if let Some(p) = &progress {
                    p.add(b.len() as u64);
                }
            }
        }
    }
    if let Some(wr) = w.as_mut()
        && let Err(e) = wr.proc.end_of_stream(&mut wr.sink)
    {
        wr.sink.invalidate();
        return Err(e);
    }
    Ok(w)
}

/// Stream `fetcher`'s image onto `target`, checking `checksum`.
pub async fn write_image(
    fetcher: &Fetcher,
    declared: DiskFormat,
    checksum: &ExpectedChecksum,
    target: &Target,
    opts: &WriteOptions,
) -> Result<WriteReport> {
    let started = Instant::now();
    let (tx_w, rx_w) = mpsc::channel::<StreamMsg>(4);
    let (tx_h, mut rx_h) = mpsc::channel::<StreamMsg>(4);
    let algo = checksum.algo;
    let hasher = tokio::task::spawn_blocking(move || {
        let mut h = algo.hasher();
        while let Some(m) = rx_h.blocking_recv() {
            if let StreamMsg::Data(b) = m {
                h.update(&b);
            }
        }
        h.finish_hex()
    });
    let t = target.clone();
    let max_buffer = opts.max_buffer;
    if let Some(p) = &opts.progress {
        p.stage(progress::WRITING, None);
    }
    let p = opts.progress.clone();
    let writer =
        tokio::task::spawn_blocking(move || writer_thread(rx_w, t, declared, max_buffer, p));
    let downloaded = fetcher.stream_to(&[tx_w, tx_h]).await;
    let written = writer
        .await
        .map_err(|e| AgentError::Other(format!("image writer crashed: {e}")))?;
    let digest = hasher
        .await
        .map_err(|e| AgentError::Other(format!("image hasher crashed: {e}")))?;
    let (w, downloaded) = match (written, downloaded) {
        (Err(e), _) => return Err(e),
        (Ok(w), Err(e)) => {
            if let Some(mut w) = w {
                w.sink.invalidate();
            }
            return Err(e);
        }
        (Ok(w), Ok(n)) => (w, n),
    };
    let Some(mut w) = w else {
        return Err(AgentError::Download("the image is empty (0 bytes)".into()));
    };
    if digest != checksum.hex {
        w.sink.invalidate();
        return Err(AgentError::Checksum(format!(
            "the image's {} checksum is {digest}, expected {}",
            checksum.algo.as_str(),
            checksum.hex
        )));
    }
    let (mut w, result) = finish_writer(fetcher, w, opts.verify, opts.progress.clone()).await;
    match result {
        Ok(image_size) => Ok(WriteReport {
            format: if w.qcow {
                DiskFormat::Qcow2
            } else {
                DiskFormat::Raw
            },
            downloaded,
            image_size,
            sink: w.sink.stats(),
            qcow2: w.proc.qcow2_stats(),
            checksum: digest,
            seconds: started.elapsed().as_secs_f64(),
        }),
        Err(e) => {
            w.sink.invalidate();
            Err(e)
        }
    }
}

async fn finish_writer(
    fetcher: &Fetcher,
    w: Writer,
    verify: bool,
    progress: Option<Arc<Progress>>,
) -> (Writer, Result<u64>) {
    let mut w = w;
    let mut rounds = 0;
    loop {
        let ranges = w.proc.take_refetch();
        if ranges.is_empty() {
            break;
        }
        rounds += 1;
        if rounds > 6 {
            let e = AgentError::ImageFormat(
                "qcow2 metadata is nested deeper than any valid image".into(),
            );
            return (w, Err(e));
        }
        tracing::info!(
            ranges = ranges.len(),
            "re-fetching out-of-order qcow2 clusters"
        );
        for (off, len) in ranges {
            let data = match fetcher.fetch_range(off, len).await {
                Ok(d) => d,
                Err(e) => return (w, Err(e)),
            };
            if data.len() as u64 != len {
                let e = AgentError::Truncated(format!(
                    "ranged GET of {len} bytes at {off} returned {} bytes",
                    data.len()
                ));
                return (w, Err(e));
            }
            let r;
            (w, r) = blocking(w, move |w| w.proc.refetched(&mut w.sink, off, &data)).await;
            if let Err(e) = r {
                return (w, Err(e));
            }
        }
    }
    blocking(w, move |w| {
        let size = w.proc.finish(&mut w.sink)?;
        if verify && let Some(p) = &progress {
            p.stage(progress::VERIFYING, Some(size));
        }
        w.sink
            .finish_with_progress(verify.then_some(size), progress.as_deref())?;
        Ok(size)
    })
    .await
}

async fn blocking<T: Send + 'static>(
    mut w: Writer,
    f: impl FnOnce(&mut Writer) -> Result<T> + Send + 'static,
) -> (Writer, Result<T>) {
    match tokio::task::spawn_blocking(move || {
        let r = f(&mut w);
        (w, r)
    })
    .await
    {
        Ok(x) => x,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
