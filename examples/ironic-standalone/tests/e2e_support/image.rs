//! The instance image: a raw disk whose MBR boot sector (hand-assembled 16-bit
//! code, no bootloader) writes a marker line to COM1 and halts, followed by
//! pseudo-random data so that a partial or misplaced write cannot pass.

use std::path::Path;

use sha2::{Digest, Sha256};

/// Size of the image.
pub const IMAGE_SIZE: usize = 2 << 20;

/// The boot sector program, loaded by the BIOS at 0000:7C00:
///
/// ```text
/// 7C00 FA          cli
/// 7C01 31 C0       xor  ax, ax
/// 7C03 8E D8       mov  ds, ax
/// 7C05 BE 16 7C    mov  si, msg        ; 0x7C16
/// 7C08 BA F8 03    mov  dx, 0x3F8      ; COM1 data register
/// 7C0B AC     l:   lodsb
/// 7C0C 84 C0       test al, al
/// 7C0E 74 03       jz   d
/// 7C10 EE          out  dx, al
/// 7C11 EB F8       jmp  l
/// 7C13 F4     d:   hlt
/// 7C14 EB FD       jmp  d
/// 7C16        msg: db "...", 0
/// ```
const CODE: [u8; 22] = [
    0xFA, 0x31, 0xC0, 0x8E, 0xD8, 0xBE, 0x16, 0x7C, 0xBA, 0xF8, 0x03, 0xAC, 0x84, 0xC0, 0x74, 0x03,
    0xEE, 0xEB, 0xF8, 0xF4, 0xEB, 0xFD,
];

/// The image bytes for `marker` (printed on its own line), with `seed` for the
/// filler.
pub fn build(marker: &str, seed: u64) -> Vec<u8> {
    let msg = format!("\r\n{marker}\r\n");
    assert!(
        CODE.len() + msg.len() < 440,
        "the marker does not fit in the boot sector"
    );
    let mut img = vec![0u8; IMAGE_SIZE];
    // Filler after the boot sector first, then the sector itself.
    let mut x = seed | 1;
    for chunk in img[512..].chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    img[..CODE.len()].copy_from_slice(&CODE);
    img[CODE.len()..CODE.len() + msg.len()].copy_from_slice(msg.as_bytes());
    img[510] = 0x55;
    img[511] = 0xAA;
    img
}

/// Write the image for `marker` to `path`; returns its SHA-256 (hex).
pub fn write(path: &Path, marker: &str, seed: u64) -> String {
    let img = build(marker, seed);
    std::fs::write(path, &img).unwrap();
    hex::encode(Sha256::digest(&img))
}
