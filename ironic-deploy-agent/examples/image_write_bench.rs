//! Load tool: write an image served over loopback HTTP to a file disk with the
//! agent's image writer; prints throughput and peak RSS. Compare with
//! `curl -s URL | dd of=DISK bs=1M conv=fsync` and `qemu-img convert`.
//!
//! `cargo run --release -p ironic-deploy-agent --example image_write_bench -- DIR NAME FORMAT DISK`

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

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 6 {
        eprintln!("usage: image_write_bench DIR NAME raw|qcow2 SHA256 DISK [noverify]");
        std::process::exit(2);
    }
    let srv = ImageServer::start(&a[1], ServeOptions::new()).await.expect("server");
    let fmt = DiskFormat::parse(&a[3]).expect("format");
    let sum = ExpectedChecksum::new(HashAlgo::Sha256, &a[4]).expect("checksum");
    let opts = WriteOptions { verify: a.get(6).map(String::as_str) != Some("noverify"), ..WriteOptions::default() };
    let f = Fetcher::new(reqwest::Client::new(), vec![srv.url(&a[2])], opts.download.clone()).expect("fetcher");
    let t = Instant::now();
    let r = write_image(&f, fmt, &sum, &Target::whole(&a[5]), &opts).await.expect("write");
    let s = t.elapsed().as_secs_f64();
    println!(
        "{} {}: {} bytes downloaded, {} bytes image in {:.2} s = {:.0} MiB/s (of image), peak RSS {} MiB, verify={}",
        a[2], a[3], r.downloaded, r.image_size, s, r.image_size as f64 / s / 1048576.0,
        peak_rss_kib() / 1024, opts.verify
    );
}
