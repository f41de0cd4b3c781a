//! The image writer against a real HTTP server and file disks, with qemu-img
//! making and checking the qcow2 fixtures.

mod common;

use std::path::Path;

use common::*;
use ironic_deploy_agent::AgentError;
use ironic_deploy_agent::httpd::{ImageServer, ServeOptions};
use ironic_deploy_agent::image::{
    DiskFormat, DownloadOptions, ExpectedChecksum, Fetcher, HashAlgo, Target, WriteOptions,
    write_image,
};

fn opts(max_buffer: u64) -> WriteOptions {
    WriteOptions {
        verify: true,
        max_buffer,
        download: DownloadOptions {
            retries: 2,
            retry_interval: std::time::Duration::from_millis(20),
            ..DownloadOptions::default()
        },
        progress: None,
    }
}

async fn write(
    srv: &ImageServer,
    name: &str,
    fmt: DiskFormat,
    sum: &str,
    disk: &Path,
    o: &WriteOptions,
) -> Result<ironic_deploy_agent::image::WriteReport, AgentError> {
    let f = Fetcher::new(
        reqwest::Client::new(),
        vec![srv.url(name)],
        o.download.clone(),
    )?;
    let c = ExpectedChecksum::new(HashAlgo::Sha256, sum)?;
    write_image(&f, fmt, &c, &Target::whole(disk), o).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_image_lands_byte_for_byte_and_sparse() {
    let d = tempfile::tempdir().unwrap();
    let img = make_raw(&d.path().join("img.raw"), 12, 1);
    let disk = make_disk(&d.path().join("disk"), 16 << 20);
    let srv = ImageServer::start(d.path(), ServeOptions::new())
        .await
        .unwrap();
    let progress = std::sync::Arc::new(ironic_deploy_agent::progress::Progress::new());
    let o = WriteOptions {
        progress: Some(progress.clone()),
        ..opts(0)
    };
    let r = write(
        &srv,
        "img.raw",
        DiskFormat::Raw,
        &sha256_hex(&img),
        &disk,
        &o,
    )
    .await
    .unwrap();
    assert_eq!(r.image_size, img.len() as u64);
    assert!(r.sink.zero_bytes > 0, "zero blocks must be skipped: {r:?}");
    // the last stage was the read-back, over the whole image
    let p = progress.snapshot().expect("progress reported");
    assert_eq!(p.stage, ironic_deploy_agent::progress::VERIFYING);
    assert_eq!(
        (p.done_bytes, p.total_bytes, p.percent),
        (img.len() as u64, Some(img.len() as u64), Some(100.0))
    );
    let out = std::fs::read(&disk).unwrap();
    assert!(
        out[..img.len()] == img[..],
        "disk bytes differ from the image"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_checksum_fails_and_wipes() {
    let d = tempfile::tempdir().unwrap();
    let img = make_raw(&d.path().join("img.raw"), 4, 2);
    let disk = make_disk(&d.path().join("disk"), 8 << 20);
    let srv = ImageServer::start(d.path(), ServeOptions::new())
        .await
        .unwrap();
    let wrong = sha256_hex(b"something else");
    let e = write(&srv, "img.raw", DiskFormat::Raw, &wrong, &disk, &opts(0))
        .await
        .unwrap_err();
    assert!(matches!(e, AgentError::Checksum(_)), "{e}");
    assert!(e.to_string().contains(&sha256_hex(&img)), "{e}");
    let out = std::fs::read(&disk).unwrap();
    assert!(
        out[..1 << 20].iter().all(|&b| b == 0),
        "start of disk not invalidated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_download_fails_clearly() {
    let d = tempfile::tempdir().unwrap();
    let img = make_raw(&d.path().join("img.raw"), 4, 3);
    let disk = make_disk(&d.path().join("disk"), 8 << 20);
    let srv = ImageServer::start(
        d.path(),
        ServeOptions {
            truncate_at: Some(3 << 20),
            ranges: true,
        },
    )
    .await
    .unwrap();
    let e = write(
        &srv,
        "img.raw",
        DiskFormat::Raw,
        &sha256_hex(&img),
        &disk,
        &opts(0),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, AgentError::Truncated(_)), "{e}");
    assert!(
        e.to_string().contains(&format!("of {} bytes", 4 << 20)),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_a_broken_connection() {
    // the first response is cut; the Range resume completes the image
    let d = tempfile::tempdir().unwrap();
    let img = make_raw(&d.path().join("img.raw"), 4, 4);
    let disk = make_disk(&d.path().join("disk"), 8 << 20);
    let srv = ImageServer::start(d.path(), ServeOptions::new())
        .await
        .unwrap();
    // a server that cuts at 1 MiB but serves ranges beyond it is emulated with two URLs:
    // the first cuts, the second is whole
    let cut = ImageServer::start(
        d.path(),
        ServeOptions {
            truncate_at: Some(1 << 20),
            ranges: true,
        },
    )
    .await
    .unwrap();
    let o = opts(0);
    let f = Fetcher::new(
        reqwest::Client::new(),
        vec![cut.url("img.raw"), srv.url("img.raw")],
        o.download.clone(),
    )
    .unwrap();
    let c = ExpectedChecksum::new(HashAlgo::Sha256, &sha256_hex(&img)).unwrap();
    write_image(&f, DiskFormat::Raw, &c, &Target::whole(&disk), &o)
        .await
        .unwrap();
    assert!(std::fs::read(&disk).unwrap()[..img.len()] == img[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_too_small_fails_before_writing() {
    let d = tempfile::tempdir().unwrap();
    let img = make_raw(&d.path().join("img.raw"), 4, 5);
    let disk = make_disk(&d.path().join("disk"), 2 << 20);
    let srv = ImageServer::start(d.path(), ServeOptions::new())
        .await
        .unwrap();
    let e = write(
        &srv,
        "img.raw",
        DiskFormat::Raw,
        &sha256_hex(&img),
        &disk,
        &opts(0),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, AgentError::DiskTooSmall(_)), "{e}");
    // qcow2 whose virtual size exceeds the disk
    tool(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "qcow2",
            d.path().join("img.raw").to_str().unwrap(),
            d.path().join("img.qcow2").to_str().unwrap(),
        ],
    );
    let q = std::fs::read(d.path().join("img.qcow2")).unwrap();
    let e = write(
        &srv,
        "img.qcow2",
        DiskFormat::Qcow2,
        &sha256_hex(&q),
        &disk,
        &opts(0),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, AgentError::DiskTooSmall(_)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qcow2_from_qemu_img_plain_and_compressed() {
    let d = tempfile::tempdir().unwrap();
    let img = make_raw(&d.path().join("img.raw"), 12, 6);
    let srv = ImageServer::start(d.path(), ServeOptions::new())
        .await
        .unwrap();
    for (name, extra) in [
        ("p.qcow2", None),
        ("c.qcow2", Some("-c")),
        ("s.qcow2", Some("cluster_size=4096")),
    ] {
        let p = d.path().join(name);
        let mut args = vec!["convert", "-f", "raw", "-O", "qcow2"];
        match extra {
            Some("-c") => args.push("-c"),
            Some(o) => {
                args.push("-o");
                args.push(o);
            }
            None => {}
        }
        let src = d.path().join("img.raw");
        args.push(src.to_str().unwrap());
        args.push(p.to_str().unwrap());
        tool("qemu-img", &args);
        let q = std::fs::read(&p).unwrap();
        let disk = make_disk(&d.path().join(format!("disk-{name}")), 16 << 20);
        let r = write(
            &srv,
            name,
            DiskFormat::Qcow2,
            &sha256_hex(&q),
            &disk,
            &opts(1 << 20),
        )
        .await
        .unwrap();
        assert_eq!(r.image_size, img.len() as u64);
        let qs = r.qcow2.unwrap();
        assert_eq!(
            qs.refetched, 0,
            "{name}: qemu-img layouts need no re-fetch: {qs:?}"
        );
        if extra == Some("-c") {
            assert!(qs.compressed > 0, "{qs:?}");
        }
        let out = std::fs::read(&disk).unwrap();
        assert!(
            out[..img.len()] == img[..],
            "{name}: disk differs from image"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qcow2_tables_after_data_buffered_or_refetched() {
    let d = tempfile::tempdir().unwrap();
    let img = make_raw(&d.path().join("img.raw"), 4, 8);
    let q = d.path().join("ooo.qcow2");
    make_qcow2_out_of_order(&q, &img);
    // the fixture is a valid qcow2 with the same content, say qemu-img's own tools
    tool("qemu-img", &["check", q.to_str().unwrap()]);
    tool(
        "qemu-img",
        &[
            "compare",
            "-f",
            "qcow2",
            "-F",
            "raw",
            q.to_str().unwrap(),
            d.path().join("img.raw").to_str().unwrap(),
        ],
    );
    let qb = std::fs::read(&q).unwrap();
    let srv = ImageServer::start(d.path(), ServeOptions::new())
        .await
        .unwrap();
    // enough buffer: nothing re-fetched
    let disk = make_disk(&d.path().join("disk1"), 8 << 20);
    let r = write(
        &srv,
        "ooo.qcow2",
        DiskFormat::Qcow2,
        &sha256_hex(&qb),
        &disk,
        &opts(64 << 20),
    )
    .await
    .unwrap();
    assert_eq!(r.qcow2.unwrap().refetched, 0);
    assert!(std::fs::read(&disk).unwrap()[..img.len()] == img[..]);
    // no buffer: everything re-fetched with Range requests, still exact
    let disk = make_disk(&d.path().join("disk2"), 8 << 20);
    let r = write(
        &srv,
        "ooo.qcow2",
        DiskFormat::Qcow2,
        &sha256_hex(&qb),
        &disk,
        &opts(0),
    )
    .await
    .unwrap();
    assert!(r.qcow2.unwrap().refetched > 0);
    assert!(std::fs::read(&disk).unwrap()[..img.len()] == img[..]);
    // no buffer and no Range support: a clear error
    let norange = ImageServer::start(
        d.path(),
        ServeOptions {
            truncate_at: None,
            ranges: false,
        },
    )
    .await
    .unwrap();
    let disk = make_disk(&d.path().join("disk3"), 8 << 20);
    let e = write(
        &norange,
        "ooo.qcow2",
        DiskFormat::Qcow2,
        &sha256_hex(&qb),
        &disk,
        &opts(0),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("Range"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_mismatch_is_refused() {
    let d = tempfile::tempdir().unwrap();
    make_raw(&d.path().join("img.raw"), 2, 9);
    tool(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "qcow2",
            d.path().join("img.raw").to_str().unwrap(),
            d.path().join("img.qcow2").to_str().unwrap(),
        ],
    );
    let q = std::fs::read(d.path().join("img.qcow2")).unwrap();
    let r = std::fs::read(d.path().join("img.raw")).unwrap();
    let srv = ImageServer::start(d.path(), ServeOptions::new())
        .await
        .unwrap();
    let disk = make_disk(&d.path().join("disk"), 4 << 20);
    let e = write(
        &srv,
        "img.qcow2",
        DiskFormat::Raw,
        &sha256_hex(&q),
        &disk,
        &opts(0),
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("declared raw but its content is qcow2"),
        "{e}"
    );
    let e = write(
        &srv,
        "img.raw",
        DiskFormat::Qcow2,
        &sha256_hex(&r),
        &disk,
        &opts(0),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, AgentError::ImageFormat(_)), "{e}");
}
