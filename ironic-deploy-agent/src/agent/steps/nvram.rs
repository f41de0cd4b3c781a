//! `clean_uefi_nvram`: delete UEFI boot entries whose device path matches one
//! of `match_patterns` (IPA's `efi_utils.clean_boot_records`).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{argv, run_tool_status};
use crate::agent::State;
use crate::error::{AgentError, Result};

/// IPA's `DEFAULT_CLEAN_UEFI_NVRAM_MATCH_PATTERNS`.
pub const DEFAULT_PATTERNS: &[&str] = &[r"^HD\(", r"shim.*\.efi", r"grub.*\.efi"];

/// One `efibootmgr -v` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootRecord {
    /// `0003`.
    pub number: String,
    /// Its label.
    pub label: String,
    /// The device path (`HD(1,GPT,...)/File(\EFI\...)`, `PciRoot(...)`, ...).
    pub path: String,
}

/// Parse `efibootmgr -v` as IPA's `get_boot_records` does (its `_ENTRY_LABEL`
/// regex), from UTF-16 or UTF-8 output.
pub fn boot_records(raw: &[u8]) -> Vec<BootRecord> {
    let utf16 = {
        let units: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    };
    let text = if utf16.lines().any(|l| l.starts_with("BootCurrent: ")) {
        utf16
    } else {
        String::from_utf8_lossy(raw).into_owned()
    };
    let re = regex::Regex::new(
        r"^Boot([0-9a-fA-F]+)\*?\s+(.*?)\s+((BBS|HD|FvFile|FvVol|PciRoot|VenMsg|VenHw|UsbClass)\(.*)$",
    )
    .expect("a valid regex");
    text.lines()
        .filter_map(|l| {
            let c = re.captures(l.trim_end_matches('\r'))?;
            Some(BootRecord {
                number: c[1].to_owned(),
                label: c[2].to_owned(),
                path: c[3].to_owned(),
            })
        })
        .collect()
}

/// The patterns of the step's `match_patterns` (a list, or a JSON text of one),
/// compiled case-insensitively as IPA does.
pub fn patterns(args: &Map<String, Value>) -> Result<Vec<regex::Regex>> {
    let list: Value = match args.get("match_patterns") {
        None | Some(Value::Null) => json!(DEFAULT_PATTERNS),
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        Some(v) => v.clone(),
    };
    let invalid = || {
        AgentError::InvalidParams(format!(
            "The match_patterns must be a list of strings: {list}"
        ))
    };
    let items = list.as_array().ok_or_else(invalid)?;
    items
        .iter()
        .map(|p| {
            let p = p.as_str().ok_or_else(invalid)?;
            regex::RegexBuilder::new(p)
                .case_insensitive(true)
                .build()
                .map_err(|e| AgentError::InvalidParams(format!("match_patterns: {p:?}: {e}")))
        })
        .collect()
}

async fn efibootmgr(args: &[&str]) -> Result<Vec<u8>> {
    let out = run_tool_status("efibootmgr", &argv(args)).await?;
    if !out.status.success() {
        return Err(AgentError::CommandFailed(format!(
            "efibootmgr {} failed: {}",
            args.join(" "),
            out.stderr.trim()
        )));
    }
    Ok(out.stdout.into_bytes())
}

/// `clean_uefi_nvram`: the entries removed and those left.
pub(crate) async fn clean_uefi_nvram(st: &Arc<State>, args: &Map<String, Value>) -> Result<Value> {
    let res = patterns(args)?;
    if !st.cfg.sys_root.join("firmware/efi").exists() {
        return Err(AgentError::CommandFailed(
            "clean_uefi_nvram: the ramdisk was not booted in UEFI mode, so UEFI NVRAM cannot be \
             read or changed"
                .into(),
        ));
    }
    let mut removed = Vec::new();
    for r in boot_records(&efibootmgr(&["-v"]).await?) {
        if let Some(p) = res.iter().find(|p| p.is_match(&r.path)) {
            tracing::info!(entry = %r.number, label = %r.label, path = %r.path, pattern = %p.as_str(), "deleting a UEFI boot entry");
            efibootmgr(&["-b", &r.number, "-B"]).await?;
            removed.push(json!({"number": r.number, "label": r.label, "path": r.path}));
        }
    }
    let left: Vec<Value> = boot_records(&efibootmgr(&["-v"]).await?)
        .into_iter()
        .map(|r| json!({"number": r.number, "label": r.label, "path": r.path}))
        .collect();
    Ok(json!({"removed": removed, "remaining": left}))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// efibootmgr 18 (tab between label and path) and 17 (spaces) output.
    const OUT: &str = "BootCurrent: 0001\nTimeout: 0 seconds\nBootOrder: 0004,0001,0000\n\
        Boot0000* UiApp\tFvVol(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(462caa21-7614-4503-836e-8ab6f4662331)\n\
        Boot0001* UEFI QEMU HARDDISK QM00001 \tPciRoot(0x0)/Pci(0x1,0x1)/Ata(0x0){auto_created_boot_option}\n\
        Boot0004* ironic1\tHD(1,GPT,2d3d0e8f-44a5-4c4d-9f37-5b6d0b0f3f2c,0x800,0x100000)/File(\\EFI\\ubuntu\\shimx64.efi)\n\
        Boot000A  Legacy   BBS(HD,,0x0)\n";

    #[test]
    fn efibootmgr_entries_as_ipa_parses_them() {
        let r = boot_records(OUT.as_bytes());
        assert_eq!(r.len(), 4, "{r:?}");
        assert_eq!(r[1].number, "0001");
        assert_eq!(r[1].label, "UEFI QEMU HARDDISK QM00001");
        assert!(r[1].path.starts_with("PciRoot(0x0)"));
        assert_eq!(r[2].label, "ironic1");
        assert!(r[2].path.starts_with("HD(1,GPT,"));
        assert_eq!(r[3].number, "000A");
        // UTF-16 output (older efibootmgr with some firmware)
        let wide: Vec<u8> = OUT.encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(boot_records(&wide), r);
    }

    #[test]
    fn match_patterns_as_ipa_takes_them() {
        let r = boot_records(OUT.as_bytes());
        let default = patterns(&Map::new()).unwrap();
        let hit: Vec<&str> = r
            .iter()
            .filter(|e| default.iter().any(|p| p.is_match(&e.path)))
            .map(|e| e.number.as_str())
            .collect();
        assert_eq!(hit, ["0004"], "disk entries and shim/grub loaders");
        let mut a = Map::new();
        a.insert("match_patterns".into(), json!("[\"pciroot\"]"));
        assert!(
            patterns(&a).unwrap()[0].is_match(&r[1].path),
            "case-insensitive"
        );
        a.insert("match_patterns".into(), json!(["("]));
        assert!(patterns(&a).is_err());
        a.insert("match_patterns".into(), json!([1]));
        let e = patterns(&a).unwrap_err().to_string();
        assert!(e.contains("must be a list of strings"), "{e}");
        a.insert("match_patterns".into(), json!("shim"));
        assert!(patterns(&a).is_err(), "a bare string is not a list");
    }
}
