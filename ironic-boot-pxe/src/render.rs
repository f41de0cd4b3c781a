//! Boot files rendered for nodes: iPXE scripts and the kernel command line.

use std::collections::BTreeMap;

use ironic_core::MacAddress;

/// The generic script at the boot root (`boot.ipxe`): chains the per-MAC
/// configuration, as Ironic's `boot.ipxe` does, for DHCP servers that hand every
/// iPXE the same URL.
pub const BOOT_IPXE: &str = "#!ipxe\n\
# ironic-rs: chain the configuration of the booting NIC\n\
chain pxelinux.cfg/${mac:hexhyp} || goto no_config\n\
:no_config\n\
echo No boot configuration for ${mac}: booting the next device\n\
exit\n";

/// `52-54-00-12-34-56`.
pub fn mac_hyphen(mac: &MacAddress) -> String {
    mac.to_string().replace(':', "-")
}

/// Kernel parameters that must never be written into a boot file: boot files
/// are readable by anyone on the provisioning network, and the agent gets its
/// token from the lookup instead.
const NEVER_ON_CMDLINE: &[&str] = &["ipa-agent-token"];

/// Build the kernel command line: the conductor's parameters (`ipa-api-url`,
/// ...), the API URL if the conductor gave none, the boot interface hint
/// (`BOOTIF=01-<mac>`, or iPXE's `${mac:hexhyp}` when one file serves several
/// NICs), the console and the append parameters. Values with spaces are quoted.
pub fn command_line(
    params: &BTreeMap<String, String>,
    api_url: Option<&str>,
    bootif: Option<&MacAddress>,
    console: Option<&str>,
    append: &str,
) -> String {
    let mut out: Vec<String> = Vec::new();
    for (k, v) in params {
        if NEVER_ON_CMDLINE.contains(&k.as_str()) {
            tracing::warn!(key = %k, "kernel parameter dropped: secrets never go into boot files");
            continue;
        }
        if k == "BOOTIF" || k.chars().any(|c| c.is_whitespace() || c.is_control()) {
            continue;
        }
        out.push(param(k, v));
    }
    if !params.contains_key("ipa-api-url")
        && let Some(url) = api_url
    {
        out.push(param("ipa-api-url", url));
    }
    out.push(match bootif {
        Some(mac) => format!("BOOTIF=01-{}", mac_hyphen(mac)),
        None => "BOOTIF=01-${mac:hexhyp}".to_owned(),
    });
    if let Some(c) = console
        && !params.contains_key("console")
    {
        out.push(param("console", c));
    }
    let append = append.trim();
    if !append.is_empty() {
        out.push(
            append
                .chars()
                .filter(|c| !c.is_control())
                .collect::<String>(),
        );
    }
    out.join(" ")
}

fn param(k: &str, v: &str) -> String {
    let v: String = v.chars().filter(|c| !c.is_control()).collect();
    if v.is_empty() {
        k.to_owned()
    } else if v.contains(' ') {
        format!("{k}=\"{}\"", v.replace('"', ""))
    } else {
        format!("{k}={v}")
    }
}

/// A node's iPXE script: load the kernel and ramdisk and boot, retrying every
/// 10 s on failure (Ironic's `ipxe_config.template` behaviour).
pub fn ipxe_script(
    node: &str,
    what: &str,
    kernel_url: &str,
    ramdisk_url: &str,
    cmdline: &str,
) -> String {
    format!(
        "#!ipxe\n\
# ironic-rs: node {node}, {what}\n\
:boot\n\
imgfree\n\
kernel {kernel_url} initrd=ramdisk {cmdline} || goto retry\n\
initrd --name ramdisk {ramdisk_url} || goto retry\n\
boot || goto retry\n\
:retry\n\
echo Network boot of {what} failed, retrying in 10 seconds\n\
sleep 10\n\
goto boot\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_has_what_the_agent_needs_and_no_token() {
        let mut p = BTreeMap::new();
        p.insert("ipa-agent-token".to_owned(), "s3cret-token".to_owned());
        p.insert("ipa-debug".to_owned(), "1".to_owned());
        p.insert("nofb".to_owned(), String::new());
        let mac: MacAddress = "52:54:00:12:34:56".parse().unwrap();
        let c = command_line(
            &p,
            Some("http://10.0.0.1:6385"),
            Some(&mac),
            Some("ttyS0,115200n8"),
            "vga=normal",
        );
        assert_eq!(
            c,
            "ipa-debug=1 nofb ipa-api-url=http://10.0.0.1:6385 BOOTIF=01-52-54-00-12-34-56 console=ttyS0,115200n8 vga=normal"
        );
        assert!(!c.contains("s3cret"));
    }

    #[test]
    fn script_retries() {
        let s = ipxe_script("n1", "deploy ramdisk", "http://x/k", "http://x/r", "a=b");
        assert!(s.starts_with("#!ipxe\n"));
        assert!(s.contains("kernel http://x/k initrd=ramdisk a=b || goto retry"));
        assert!(s.contains("initrd --name ramdisk http://x/r || goto retry"));
        assert!(s.contains("goto boot"));
    }
}
