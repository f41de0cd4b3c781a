//! The lab's files: a tiny bootable test image, placeholder deploy kernel/ramdisk, and an
//! HTTP server on loopback that serves them (the image URLs the README deploys).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// File name of the test image.
pub const TEST_IMAGE: &str = "lab-image.raw";
/// File name of the placeholder deploy kernel.
pub const DEPLOY_KERNEL: &str = "deploy.kernel";
/// File name of the placeholder deploy ramdisk.
pub const DEPLOY_RAMDISK: &str = "deploy.initramfs";
/// File name of the placeholder deploy ISO (virtual media boot).
pub const DEPLOY_ISO: &str = "deploy.iso";
/// Size of the test image.
pub const TEST_IMAGE_SIZE: u64 = 4 << 20;
/// The marker text at the start of the test image's partition.
pub const IMAGE_MARKER: &str = "IRONIC-RS LAB TEST IMAGE";
/// Where the partition (and the marker) starts.
pub const PARTITION_OFFSET: u64 = 1 << 20;

/// The files the lab generated.
#[derive(Clone, Debug)]
pub struct LabFiles {
    /// The directory served over HTTP.
    pub dir: PathBuf,
    /// The test image.
    pub image: PathBuf,
    /// Its SHA-256, hex.
    pub image_sha256: String,
}

/// Writes the test image (a raw disk: MBR with one Linux partition whose first bytes are
/// [`IMAGE_MARKER`]), its `.sha256sum`, and placeholder deploy kernel/ramdisk into `dir`.
pub fn generate(dir: &Path) -> std::io::Result<LabFiles> {
    std::fs::create_dir_all(dir)?;
    let image = dir.join(TEST_IMAGE);
    let bytes = test_image();
    std::fs::write(&image, &bytes)?;
    let sha = hex::encode(Sha256::digest(&bytes));
    std::fs::write(
        dir.join(format!("{TEST_IMAGE}.sha256sum")),
        format!("{sha}  {TEST_IMAGE}\n"),
    )?;
    // The simulated machines do not execute these: booting "them" starts the agent. They
    // exist so boot interfaces that fetch or stage the deploy images find real files.
    for (name, what) in [
        (DEPLOY_KERNEL, "kernel"),
        (DEPLOY_RAMDISK, "ramdisk"),
        (DEPLOY_ISO, "ISO"),
    ] {
        let mut f = std::fs::File::create(dir.join(name))?;
        writeln!(
            f,
            "ironic-rs lab placeholder deploy {what}: simulated machines run the ironic-agent binary instead"
        )?;
    }
    Ok(LabFiles {
        dir: dir.to_path_buf(),
        image,
        image_sha256: sha,
    })
}

/// The test image's bytes.
pub fn test_image() -> Vec<u8> {
    let mut img = vec![0u8; TEST_IMAGE_SIZE as usize];
    // MBR: one bootable partition of type 0x83 from 1 MiB to the end.
    let start_lba = (PARTITION_OFFSET / 512) as u32;
    let sectors = ((TEST_IMAGE_SIZE - PARTITION_OFFSET) / 512) as u32;
    let disk_sig: u32 = 0x1A1C_0001;
    img[440..444].copy_from_slice(&disk_sig.to_le_bytes());
    let e = &mut img[446..462];
    e[0] = 0x80;
    e[1..4].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    e[4] = 0x83;
    e[5..8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    e[8..12].copy_from_slice(&start_lba.to_le_bytes());
    e[12..16].copy_from_slice(&sectors.to_le_bytes());
    img[510] = 0x55;
    img[511] = 0xAA;
    let p = PARTITION_OFFSET as usize;
    let text = format!("{IMAGE_MARKER}\nDeployed by ironic-rs `ironic lab`.\n");
    img[p..p + text.len()].copy_from_slice(text.as_bytes());
    img
}

/// Whether `disk` holds the test image (its marker where the partition starts).
pub fn disk_has_test_image(disk: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(disk) else {
        return false;
    };
    let mut buf = vec![0u8; IMAGE_MARKER.len()];
    f.seek(SeekFrom::Start(PARTITION_OFFSET)).is_ok()
        && f.read_exact(&mut buf).is_ok()
        && buf == IMAGE_MARKER.as_bytes()
}

/// An HTTP server on loopback serving the files of one directory (GET and HEAD, no listing).
#[derive(Debug)]
pub struct FileServer {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl FileServer {
    /// Serves `dir` on `addr` (port 0 for any).
    pub async fn start(addr: SocketAddr, dir: PathBuf) -> std::io::Result<FileServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let router = Router::new().route("/{name}", get(serve)).with_state(dir);
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Ok(FileServer {
            addr,
            cancel,
            task: Some(task),
        })
    }

    /// The URL of a file.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    /// Stops serving.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn serve(State(dir): State<PathBuf>, UrlPath(name): UrlPath<String>) -> Response {
    // One path segment, no hidden files, no traversal.
    if name.starts_with('.') || name.contains(['/', '\\']) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let path = dir.join(&name);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => return StatusCode::NOT_FOUND.into_response(),
    };
    let len = match file.metadata().await {
        Ok(m) if m.is_file() => m.len(),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_image_is_a_bootable_disk_with_its_marker() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate(dir.path()).unwrap();
        assert!(crate::machine::disk_is_bootable(&files.image).unwrap());
        assert!(disk_has_test_image(&files.image));
        assert_eq!(files.image_sha256.len(), 64);
        let blank = dir.path().join("blank.img");
        std::fs::write(&blank, vec![0u8; 4096]).unwrap();
        assert!(!crate::machine::disk_is_bootable(&blank).unwrap());
        assert!(!disk_has_test_image(&blank));
        assert!(!crate::machine::disk_is_bootable(&dir.path().join("missing")).unwrap());
    }
}
