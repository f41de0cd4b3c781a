//! The HTTP boot server against curl: whole files, ranges, lengths, refusals.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::{random_file, same_file, tool};
use ironic_boot_pxe::{BootFiles, HttpBootServer, router};

async fn curl(args: Vec<String>) -> (bool, String, String) {
    let curl = tool("curl", "curl");
    let out = tokio::task::spawn_blocking(move || Command::new(curl).args(args).output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_whole_files_ranges_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(dir.path().join("secret"), b"top secret\n").unwrap();
    let kernel = root.join("vmlinuz");
    random_file(&kernel, 5 << 20, 7);
    let files = BootFiles::new(Some(&root)).unwrap();
    files
        .insert("52:54:00:12:34:56.ipxe", &b"#!ipxe\nboot\n"[..])
        .unwrap();
    let server = HttpBootServer::bind("127.0.0.1:0".parse().unwrap(), router(Arc::clone(&files)))
        .await
        .unwrap();
    let base = server.url();

    // Whole file, intact, with the right length.
    let out = dir.path().join("k");
    let (ok, headers, err) = curl(s(&[
        "-sS",
        "--fail",
        "-D",
        "-",
        "-o",
        out.to_str().unwrap(),
        &format!("{base}/vmlinuz"),
    ]))
    .await;
    assert!(ok, "{err}");
    assert!(same_file(&kernel, &out));
    let h = headers.to_ascii_lowercase();
    assert!(
        h.contains(&format!("content-length: {}", 5 << 20)),
        "{headers}"
    );
    assert!(h.contains("accept-ranges: bytes"), "{headers}");

    // A range in the middle.
    let data = std::fs::read(&kernel).unwrap();
    let (ok, headers, err) = curl(s(&[
        "-sS",
        "--fail",
        "-D",
        "-",
        "-o",
        out.to_str().unwrap(),
        "-r",
        "1000-1999",
        &format!("{base}/vmlinuz"),
    ]))
    .await;
    assert!(ok, "{err}");
    assert!(headers.starts_with("HTTP/1.1 206"), "{headers}");
    let h = headers.to_ascii_lowercase();
    assert!(
        h.contains(&format!("content-range: bytes 1000-1999/{}", 5 << 20)),
        "{headers}"
    );
    assert!(h.contains("content-length: 1000"), "{headers}");
    assert_eq!(std::fs::read(&out).unwrap(), &data[1000..2000]);

    // Suffix range, and a resumed download (curl -C) finishing a partial file.
    let (ok, _, err) = curl(s(&[
        "-sS",
        "--fail",
        "-o",
        out.to_str().unwrap(),
        "-r",
        "-4096",
        &format!("{base}/vmlinuz"),
    ]))
    .await;
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), &data[data.len() - 4096..]);
    std::fs::write(&out, &data[..123_457]).unwrap();
    let (ok, _, err) = curl(s(&[
        "-sS",
        "--fail",
        "-C",
        "-",
        "-o",
        out.to_str().unwrap(),
        &format!("{base}/vmlinuz"),
    ]))
    .await;
    assert!(ok, "{err}");
    assert!(same_file(&kernel, &out), "resumed download differs");

    // Unsatisfiable range.
    let (_, headers, _) = curl(s(&[
        "-sS",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-r",
        "99999999-",
        &format!("{base}/vmlinuz"),
    ]))
    .await;
    assert!(headers.starts_with("HTTP/1.1 416"), "{headers}");
    assert!(
        headers
            .to_ascii_lowercase()
            .contains(&format!("content-range: bytes */{}", 5 << 20)),
        "{headers}"
    );

    // HEAD gives the length without a body.
    let (ok, headers, err) = curl(s(&["-sS", "--fail", "-I", &format!("{base}/vmlinuz")])).await;
    assert!(ok, "{err}");
    assert!(
        headers
            .to_ascii_lowercase()
            .contains(&format!("content-length: {}", 5 << 20)),
        "{headers}"
    );

    // A generated script (the colon in the name is fine).
    let (ok, body, err) = curl(s(&[
        "-sS",
        "--fail",
        &format!("{base}/52:54:00:12:34:56.ipxe"),
    ]))
    .await;
    assert!(ok, "{err}");
    assert_eq!(body, "#!ipxe\nboot\n");

    // Traversal: curl squashes "/../" itself unless told not to.
    for bad in ["/../secret", "/%2e%2e/secret", "/%2fetc/passwd", "/nope"] {
        let (ok, body, _) = curl(s(&[
            "-sS",
            "--fail",
            "--path-as-is",
            &format!("{base}{bad}"),
        ]))
        .await;
        assert!(!ok, "{bad} must fail");
        assert!(!body.contains("top secret"), "{bad} leaked");
    }
}
