//! API microversions, as Ironic negotiates them.
//!
//! A request names its version in `X-OpenStack-Ironic-API-Version: 1.N` or
//! `OpenStack-API-Version: baremetal 1.N` (the latter wins when both are sent, as
//! `microversion_parse` does); `latest` means [`MAX`]; no header means [`MIN`] (1.1).
//! A malformed value or one outside `[MIN, MAX]` is refused with 406.

use std::fmt;

use axum::http;

/// Header carrying the requested (and, in responses, the negotiated) version.
pub const HEADER: &str = "x-openstack-ironic-api-version";
/// Response header: the minimum supported version.
pub const MIN_HEADER: &str = "x-openstack-ironic-api-minimum-version";
/// Response header: the maximum supported version.
pub const MAX_HEADER: &str = "x-openstack-ironic-api-maximum-version";
/// The generic OpenStack microversion header.
pub const OPENSTACK_HEADER: &str = "openstack-api-version";

/// A negotiated API version (major is always 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32);

/// The minimum supported version (1.1), also the default when no header is sent.
pub const MIN: Version = Version(1);

/// The maximum supported version (Ironic 39's): every feature Ironic added up to
/// and including this one ([`feature`]) is implemented and compared with Ironic 39
/// by `tests/ironic_parity.rs`.
pub const MAX: Version = Version(115);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.0)
    }
}

impl Version {
    /// Whether this version is at least `1.minor`.
    pub fn at_least(self, minor: u32) -> bool {
        self.0 >= minor
    }
}

/// Why a version header was refused (both are 406).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionError {
    /// The value does not parse as `MAJOR.MINOR` or `latest`.
    Malformed,
    /// Major version other than 1.
    WrongMajor(String),
    /// Minor version outside the supported range.
    OutOfRange(String),
}

impl VersionError {
    /// The message Ironic gives.
    pub fn message(&self) -> String {
        match self {
            VersionError::Malformed => format!(
                "Invalid value for {} header",
                "X-OpenStack-Ironic-API-Version"
            ),
            VersionError::WrongMajor(v) => format!(
                "Mutually exclusive versions requested. Version {v} requested but not supported by this service. The supported version range is: [{MIN}, {MAX}]."
            ),
            VersionError::OutOfRange(v) => format!(
                "Version {v} was requested but the minor version is not supported by this service. The supported version range is: [{MIN}, {MAX}]."
            ),
        }
    }
}

/// Extract the requested version string from the two possible headers.
///
/// `openstack` is the value of `OpenStack-API-Version` (may list several services,
/// comma-separated; the last `baremetal` entry wins, as `microversion_parse` reads
/// it); `legacy` is `X-OpenStack-Ironic-API-Version` (its last comma-separated
/// value). An empty value counts as absent, as in Ironic.
pub fn requested<'a>(openstack: Option<&'a str>, legacy: Option<&'a str>) -> Option<&'a str> {
    if let Some(v) = openstack {
        for part in v.rsplit(',') {
            let mut it = part.split_whitespace();
            if let (Some(service), Some(ver)) = (it.next(), it.next())
                && service.eq_ignore_ascii_case("baremetal")
            {
                return Some(ver);
            }
        }
    }
    legacy
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// [`requested`] from a request's headers. A version header whose value is not
/// visible ASCII (a client sending Latin-1 or binary junk) is malformed, not
/// absent: it gets the same 406 as any other unparsable version.
pub fn requested_in(headers: &http::HeaderMap) -> Result<Option<&str>, VersionError> {
    let text = |name: &str| -> Result<Option<&str>, VersionError> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => v.to_str().map(Some).map_err(|_| VersionError::Malformed),
        }
    };
    Ok(requested(text(OPENSTACK_HEADER)?, text(HEADER)?))
}

/// Negotiate: `None` (no header) gives [`MIN`].
pub fn negotiate(requested: Option<&str>) -> Result<Version, VersionError> {
    let Some(s) = requested else {
        return Ok(MIN);
    };
    let s = s.trim();
    if s.eq_ignore_ascii_case("latest") {
        return Ok(MAX);
    }
    let (major, minor) = s.split_once('.').ok_or(VersionError::Malformed)?;
    let parse = |x: &str| -> Result<u32, VersionError> {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) || x.len() > 9 {
            return Err(VersionError::Malformed);
        }
        x.parse().map_err(|_| VersionError::Malformed)
    };
    let (major, minor) = (parse(major)?, parse(minor)?);
    let shown = format!("{major}.{minor}");
    if major != 1 {
        return Err(VersionError::WrongMajor(shown));
    }
    if !(MIN.0..=MAX.0).contains(&minor) {
        return Err(VersionError::OutOfRange(shown));
    }
    Ok(Version(minor))
}

/// Minimum versions of features, named after Ironic's `versions.py` constants.
#[allow(missing_docs, dead_code)]
pub mod feature {
    pub const AVAILABLE_STATE: u32 = 2;
    pub const DRIVER_INTERNAL_INFO: u32 = 3;
    pub const NODE_NAME: u32 = 5;
    pub const INSPECT_STATE: u32 = 6;
    pub const FIELDS: u32 = 8;
    pub const PROVISION_STATE_FILTER: u32 = 9;
    pub const ENROLL_STATE: u32 = 11;
    pub const RAID_CONFIG: u32 = 12;
    pub const STATES_LINKS: u32 = 14;
    pub const DRIVER_FILTER: u32 = 16;
    pub const PORT_INTERNAL_INFO: u32 = 18;
    pub const PORT_ADVANCED_NET_FIELDS: u32 = 19;
    pub const RESOURCE_CLASS: u32 = 21;
    pub const LOOKUP_HEARTBEAT: u32 = 22;
    pub const PORTGROUPS: u32 = 23;
    pub const PORTGROUPS_SUBCONTROLLERS: u32 = 24;
    pub const PORTGROUP_MODE_PROPERTIES: u32 = 26;
    pub const SOFT_POWER_OFF: u32 = 27;
    pub const VIFS: u32 = 28;
    pub const INJECT_NMI: u32 = 29;
    pub const DYNAMIC_DRIVERS: u32 = 30;
    pub const VOLUME: u32 = 32;
    pub const PORT_PHYSICAL_NETWORK: u32 = 34;
    pub const REBUILD_CONFIG_DRIVE: u32 = 35;
    pub const AGENT_VERSION_HEARTBEAT: u32 = 36;
    pub const NODE_TRAITS: u32 = 37;
    pub const RESCUE: u32 = 38;
    pub const INSPECT_WAIT: u32 = 39;
    pub const BIOS: u32 = 40;
    pub const INSPECT_ABORT: u32 = 41;
    pub const FAULT: u32 = 42;
    pub const DETAIL_QUERY: u32 = 43;
    pub const RESET_INTERFACES: u32 = 45;
    pub const CONDUCTOR_GROUP: u32 = 46;
    pub const CONDUCTORS: u32 = 49;
    pub const OWNER: u32 = 50;
    pub const DESCRIPTION: u32 = 51;
    pub const ALLOCATIONS: u32 = 52;
    pub const PORT_SMARTNIC: u32 = 53;
    pub const EVENTS: u32 = 54;
    pub const DEPLOY_TEMPLATES: u32 = 55;
    pub const BUILD_CONFIGDRIVE: u32 = 56;
    pub const ALLOCATION_UPDATE: u32 = 57;
    pub const ALLOCATION_BACKFILL: u32 = 58;
    pub const CONFIGDRIVE_VENDOR_DATA: u32 = 59;
    pub const ALLOCATION_OWNER: u32 = 60;
    pub const RETIRED: u32 = 61;
    pub const AGENT_TOKEN: u32 = 62;
    pub const INDICATORS: u32 = 63;
    pub const LOCAL_LINK_NETWORK_TYPE: u32 = 64;
    pub const LESSEE: u32 = 65;
    pub const NETWORK_DATA: u32 = 66;
    pub const VIF_ATTACH_PORT: u32 = 67;
    pub const HEARTBEAT_VERIFY_CA: u32 = 68;
    pub const DEPLOY_STEPS: u32 = 69;
    pub const CLEAN_DISABLE_RAMDISK: u32 = 70;
    pub const HEARTBEAT_STATUS: u32 = 72;
    pub const BIOS_REGISTRY: u32 = 74;
    pub const BOOT_MODE: u32 = 75;
    pub const SET_BOOT_MODE: u32 = 76;
    pub const DRIVER_FIELDS: u32 = 77;
    pub const HISTORY: u32 = 78;
    pub const INVENTORY: u32 = 81;
    pub const SHARDS: u32 = 82;
    pub const PARENT_NODES: u32 = 83;
    pub const CONTINUE_INSPECTION: u32 = 84;
    pub const UNHOLD: u32 = 85;
    pub const FIRMWARE: u32 = 86;
    pub const SERVICE: u32 = 87;
    pub const PORT_NAME: u32 = 88;
    pub const ATTACH_VMEDIA: u32 = 89;
    pub const OVN_VTEP: u32 = 90;
    pub const NO_JSON_SUFFIX: u32 = 91;
    pub const RUNBOOKS: u32 = 92;
    pub const GET_VMEDIA: u32 = 93;
    pub const PORT_NODE_NAME: u32 = 94;
    pub const DISABLE_POWER_OFF: u32 = 95;
    pub const INSPECTION_RULES: u32 = 96;
    pub const PORT_DESCRIPTION: u32 = 97;
    pub const PATCH_ESCAPES: u32 = 98;
    pub const PORT_CONDUCTOR_GROUP_FILTER: u32 = 99;
    pub const PORT_VENDOR: u32 = 100;
    pub const PORT_CATEGORY: u32 = 101;
    pub const PORTGROUP_PHYSICAL_NETWORK: u32 = 102;
    pub const PORTGROUP_CATEGORY: u32 = 103;
    pub const INSTANCE_NAME: u32 = 104;
    pub const OVN_VTEP_REMOVED: u32 = 105;
    pub const PORTGROUP_SHARD_FILTER: u32 = 106;
    pub const REQUEST_ID_HEADER: u32 = 107;
    pub const SERVICE_DISABLE_RAMDISK: u32 = 108;
    pub const HEALTH: u32 = 109;
    pub const DEPLOY_WAIT_ABORT: u32 = 110;
    pub const DYNAMIC_PORTGROUP: u32 = 111;
    pub const RUNBOOK_TRAITS: u32 = 112;
    pub const HISTORY_PROJECT: u32 = 113;
    pub const FIRMWARE_IDENTITY: u32 = 114;
    pub const HISTORY_FIELDS: u32 = 115;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_header_is_minimum_and_latest_is_maximum() {
        assert_eq!(negotiate(None), Ok(MIN));
        assert_eq!(negotiate(Some("latest")), Ok(MAX));
        assert_eq!(negotiate(Some("LATEST")), Ok(MAX));
        assert_eq!(negotiate(Some("1.50")), Ok(Version(50)));
    }

    #[test]
    fn out_of_range_and_malformed_are_refused() {
        let e = negotiate(Some("1.999")).unwrap_err();
        assert_eq!(
            e.message(),
            format!(
                "Version 1.999 was requested but the minor version is not supported by this service. The supported version range is: [1.1, {MAX}]."
            )
        );
        assert_eq!(negotiate(Some("1")), Err(VersionError::Malformed));
        assert_eq!(negotiate(Some("1.x")), Err(VersionError::Malformed));
        assert_eq!(negotiate(Some("")), Err(VersionError::Malformed));
        assert!(matches!(
            negotiate(Some("2.1")),
            Err(VersionError::WrongMajor(_))
        ));
        assert!(matches!(
            negotiate(Some("1.0")),
            Err(VersionError::OutOfRange(_))
        ));
    }

    #[test]
    fn openstack_header_wins_and_may_list_services() {
        assert_eq!(
            requested(Some("compute 2.1, baremetal 1.60"), Some("1.2")),
            Some("1.60")
        );
        assert_eq!(requested(Some("compute 2.1"), Some("1.2")), Some("1.2"));
        assert_eq!(requested(None, None), None);
        // Ironic: the last entry wins; an empty value is no value.
        assert_eq!(
            requested(Some("baremetal 1.2, baremetal 1.31"), None),
            Some("1.31")
        );
        assert_eq!(requested(None, Some("1.5, 1.7")), Some("1.7"));
        assert_eq!(requested(None, Some("  ")), None);
        assert_eq!(requested(Some("baremetal"), Some("1.9")), Some("1.9"));
    }

    #[test]
    fn a_header_that_is_not_ascii_is_malformed_not_absent() {
        let mut h = http::HeaderMap::new();
        h.insert(HEADER, http::HeaderValue::from_bytes(b"1.\xff").unwrap());
        assert_eq!(requested_in(&h), Err(VersionError::Malformed));
        let mut h = http::HeaderMap::new();
        h.insert(
            OPENSTACK_HEADER,
            http::HeaderValue::from_bytes(b"baremetal 1.\xe9").unwrap(),
        );
        assert_eq!(requested_in(&h), Err(VersionError::Malformed));
        let mut h = http::HeaderMap::new();
        h.insert(HEADER, http::HeaderValue::from_static("1.40"));
        assert_eq!(requested_in(&h), Ok(Some("1.40")));
        assert_eq!(requested_in(&http::HeaderMap::new()), Ok(None));
    }
}
