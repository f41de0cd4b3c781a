//! Load tool for the image writer (driven by `benches/image_write.sh`, which
//! runs it side by side with `curl | dd` and `curl` + `qemu-img convert`).
//!
//! * `image_write_bench serve DIR` serves DIR over loopback HTTP (the agent's
//!   test file server, ranges on), prints its URL on stdout, runs until killed.
//! * `image_write_bench write URL raw|qcow2 SHA256 DISK [noverify]` streams the
//!   image onto DISK (a file) with the agent's writer, as `standby.prepare_image`
//!   does, and prints wall time, throughput and peak RSS (`VmHWM`).
//!
//! ```text
//! cargo build --release -p ironic-deploy-agent --example image_write_bench
//! ironic-deploy-agent/benches/image_write.sh /tmp/agent-bench
//! ```

use std::time::Instant;

use ironic_deploy_agent::httpd::{ImageServer, ServeOptions};
use ironic_deploy_agent::image::{
    DiskFormat, ExpectedChecksum, Fetcher, HashAlgo, Target, WriteOptions, write_image,
};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn usage() -> ! {
    eprintln!(
        "usage: image_write_bench serve DIR\n       \
         image_write_bench write URL raw|qcow2 SHA256 DISK [noverify]"
    );
    std::process::exit(2);
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("image_write_bench: {what}: {e}");
    std::process::exit(1);
}

async fn serve(dir: &str) {
    let srv = ImageServer::start(dir, ServeOptions::new())
        .await
        .unwrap_or_else(|e| fail("starting the file server", e));
    println!("http://{}", srv.addr());
    std::future::pending::<()>().await;
}

async fn write(url: &str, format: &str, sha256: &str, disk: &str, verify: bool) {
    let fmt = DiskFormat::parse(format).unwrap_or_else(|e| fail("format", e));
    let sum =
        ExpectedChecksum::new(HashAlgo::Sha256, sha256).unwrap_or_else(|e| fail("checksum", e));
    let opts = WriteOptions {
        verify,
        ..WriteOptions::default()
    };
    let f = Fetcher::new(
        reqwest::Client::new(),
        vec![url.to_owned()],
        opts.download.clone(),
    )
    .unwrap_or_else(|e| fail("fetcher", e));
    let t = Instant::now();
    let r = write_image(&f, fmt, &sum, &Target::whole(disk), &opts)
        .await
        .unwrap_or_else(|e| fail("write", e));
    let s = t.elapsed().as_secs_f64();
    println!(
        "ironic-agent writer {format}: {} B downloaded, {} B image in {:.2} s = {:.0} MiB/s of image \
         ({:.0} MiB/s downloaded), peak RSS {:.1} MiB, verify={verify}, sink {:?}",
        r.downloaded,
        r.image_size,
        s,
        r.image_size as f64 / s / 1048576.0,
        r.downloaded as f64 / s / 1048576.0,
        peak_rss_kib() as f64 / 1024.0,
        r.sink,
    );
}

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    match a.get(1).map(String::as_str) {
        Some("serve") if a.len() == 3 => serve(&a[2]).await,
        Some("write") if a.len() == 6 || a.len() == 7 => {
            let verify = match a.get(6).map(String::as_str) {
                None => true,
                Some("noverify") => false,
                Some(_) => usage(),
            };
            write(&a[2], &a[3], &a[4], &a[5], verify).await
        }
        _ => usage(),
    }
}
