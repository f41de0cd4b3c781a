//! Node bodies: every field with the microversion that introduced it, secrets
//! masked, `fields=` selection, sub-resource links.

use ironic_core::Node;
use ironic_core::model::InterfaceType;
use ironic_core::secret::{MASK, mask_map};
use ironic_core::states::ProvisionState;

use super::{Ctx, links, write_links};
use crate::api::error::ApiError;
use crate::api::json::{ObjWriter, opt_time};
use crate::api::version::feature as f;

/// Node fields (after `uuid`, `created_at`, `updated_at`) in Ironic's order, with
/// the minor version that introduced each.
pub const FIELDS: &[(&str, u32)] = &[
    ("automated_clean", 47),
    ("bios_interface", 40),
    ("boot_interface", 31),
    ("boot_mode", 75),
    ("clean_step", 7),
    ("conductor_group", 46),
    ("console_enabled", 1),
    ("console_interface", 31),
    ("disable_power_off", 95),
    ("deploy_interface", 31),
    ("deploy_step", 44),
    ("description", 51),
    ("driver", 1),
    ("driver_info", 1),
    ("driver_internal_info", 3),
    ("extra", 1),
    ("fault", 42),
    ("firmware_interface", 86),
    ("health", 109),
    ("inspection_finished_at", 6),
    ("inspection_started_at", 6),
    ("inspect_interface", 31),
    ("instance_info", 1),
    ("instance_name", 104),
    ("instance_uuid", 1),
    ("last_error", 1),
    ("lessee", 65),
    ("maintenance", 1),
    ("maintenance_reason", 1),
    ("management_interface", 31),
    ("name", 5),
    ("network_data", 66),
    ("network_interface", 20),
    ("owner", 50),
    ("parent_node", 83),
    ("power_interface", 31),
    ("power_state", 1),
    ("properties", 1),
    ("protected", 48),
    ("protected_reason", 48),
    ("provision_state", 1),
    ("provision_updated_at", 1),
    ("raid_config", 12),
    ("raid_interface", 31),
    ("rescue_interface", 38),
    ("reservation", 1),
    ("resource_class", 21),
    ("retired", 61),
    ("retired_reason", 61),
    ("secure_boot", 75),
    ("service_step", 87),
    ("shard", 82),
    ("storage_interface", 33),
    ("target_power_state", 1),
    ("target_provision_state", 1),
    ("target_raid_config", 12),
    ("traits", 37),
    ("vendor_interface", 31),
];

/// Fields filled by the API rather than the node record.
const API_FIELDS: &[(&str, u32)] = &[
    ("conductor", 49),
    ("allocation_uuid", 52),
    ("chassis_uuid", 1),
];

/// The fields `GET /v1/nodes` returns without `detail`.
pub const DEFAULT_LIST_FIELDS: &[&str] = &[
    "uuid",
    "instance_uuid",
    "maintenance",
    "power_state",
    "provision_state",
    "name",
];

/// The minor version a node field appeared in, `None` for an unknown field.
pub fn field_version(name: &str) -> Option<u32> {
    if name == "uuid" {
        return Some(1);
    }
    FIELDS
        .iter()
        .chain(API_FIELDS)
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
}

/// Check a `fields=` selection: unknown → 400, newer than the version → 406.
pub fn check_fields(ctx: &Ctx<'_>, fields: &[String]) -> Result<(), ApiError> {
    for name in fields {
        match field_version(name) {
            None => {
                return Err(ApiError::bad_request(format!(
                    "Field {name} is not a valid field."
                )));
            }
            Some(v) if !ctx.version.at_least(v) => return Err(ApiError::not_acceptable()),
            Some(_) => {}
        }
    }
    Ok(())
}

/// The provision state as a client of this version knows it (`available` was
/// `None` before 1.2, `inspect wait` was `inspecting` before 1.39).
fn shown_state(ctx: &Ctx<'_>, s: ProvisionState) -> Option<&'static str> {
    match s {
        ProvisionState::Available if !ctx.version.at_least(f::AVAILABLE_STATE) => None,
        ProvisionState::InspectWait if !ctx.version.at_least(f::INSPECT_WAIT) => {
            Some(ProvisionState::Inspecting.as_str())
        }
        other => Some(other.as_str()),
    }
}

fn masked_instance_info(node: &Node) -> serde_json::Map<String, serde_json::Value> {
    let mut m = node.instance_info.clone();
    mask_map(&mut m);
    for k in ["configdrive", "image_url"] {
        if m.get(k).is_some_and(|v| !v.is_null() && v != "") {
            m.insert(k.into(), MASK.into());
        }
    }
    m
}

fn masked_driver_info(node: &Node) -> serde_json::Map<String, serde_json::Value> {
    let mut m = node.driver_info.masked();
    for k in ["snmp_auth_key", "snmp_priv_key"] {
        if m.get(k).is_some_and(|v| !v.is_null() && v != "") {
            m.insert(k.into(), MASK.into());
        }
    }
    m
}

/// Write one field of a node.
fn write_field(w: &mut ObjWriter<'_>, ctx: &Ctx<'_>, node: &Node, name: &str) {
    if let Some(t) = name
        .strip_suffix("_interface")
        .and_then(|t| t.parse::<InterfaceType>().ok())
    {
        w.str(name, node.interfaces.get(t));
        return;
    }
    match name {
        "uuid" => w.str(name, &node.uuid.to_string()),
        "created_at" => opt_time(w, name, Some(&node.created_at)),
        "updated_at" => opt_time(w, name, node.updated_at.as_ref()),
        "automated_clean" => w.field(name, &node.automated_clean),
        "boot_mode" => w.opt_str(name, node.boot_mode.as_deref()),
        "clean_step" => w.field(name, &node.clean_step),
        "conductor_group" => w.str(name, &node.conductor_group),
        "console_enabled" => w.bool(name, node.console_enabled),
        "disable_power_off" => w.bool(name, node.disable_power_off),
        "deploy_step" => w.field(name, &node.deploy_step),
        "description" => w.opt_str(name, node.description.as_deref()),
        "driver" => w.str(name, &node.driver),
        "driver_info" => w.field(name, &masked_driver_info(node)),
        "driver_internal_info" => {
            let mut m = node.driver_internal_info.clone();
            mask_map(&mut m);
            w.field(name, &m)
        }
        "extra" => w.field(name, &node.extra),
        "fault" => w.opt_str(name, node.fault.map(|f| f.as_str())),
        "health" => w.opt_str(name, node.health.as_deref()),
        "inspection_finished_at" => opt_time(w, name, node.inspection_finished_at.as_ref()),
        "inspection_started_at" => opt_time(w, name, node.inspection_started_at.as_ref()),
        "instance_info" => w.field(name, &masked_instance_info(node)),
        "instance_name" => w.opt_str(name, node.instance_name.as_deref()),
        "instance_uuid" => w.opt_str(name, node.instance_uuid.as_deref()),
        "last_error" => w.opt_str(name, node.last_error.as_deref()),
        "lessee" => w.opt_str(name, node.lessee.as_deref()),
        "maintenance" => w.bool(name, node.maintenance),
        "maintenance_reason" => w.opt_str(name, node.maintenance_reason.as_deref()),
        "name" => w.opt_str(name, node.name.as_deref()),
        "network_data" => w.field(name, &node.network_data),
        "owner" => w.opt_str(name, node.owner.as_deref()),
        "parent_node" => w.field(name, &node.parent_node),
        "power_state" => w.opt_str(name, node.power_state.map(|p| p.as_str())),
        "properties" => w.field(name, &node.properties),
        "protected" => w.bool(name, node.protected),
        "protected_reason" => w.opt_str(name, node.protected_reason.as_deref()),
        "provision_state" => w.opt_str(name, shown_state(ctx, node.provision_state)),
        "provision_updated_at" => opt_time(w, name, node.provision_updated_at.as_ref()),
        "raid_config" => w.field(name, &node.raid_config),
        "reservation" => w.opt_str(name, node.reservation.as_deref()),
        "resource_class" => w.opt_str(name, node.resource_class.as_deref()),
        "retired" => w.bool(name, node.retired),
        "retired_reason" => w.opt_str(name, node.retired_reason.as_deref()),
        "secure_boot" => w.field(name, &node.secure_boot),
        "service_step" => w.field(name, &node.service_step),
        "shard" => w.opt_str(name, node.shard.as_deref()),
        "target_power_state" => w.opt_str(name, node.target_power_state.map(|p| p.as_str())),
        "target_provision_state" => w.opt_str(
            name,
            node.target_provision_state
                .and_then(|s| shown_state(ctx, s)),
        ),
        "target_raid_config" => w.field(name, &node.target_raid_config),
        "traits" => w.field(name, &node.traits),
        "conductor" => w.opt_str(name, ctx.conductor_host),
        "allocation_uuid" => w.field(name, &node.allocation_uuid),
        "chassis_uuid" => w.field(name, &node.chassis_uuid),
        _ => {}
    }
}

/// Render a node. `fields` (already checked with [`check_fields`]) selects a
/// subset; `None` renders every field the version knows plus sub-resource links.
pub fn write_node(buf: &mut Vec<u8>, ctx: &Ctx<'_>, node: &Node, fields: Option<&[String]>) {
    let mut w = ObjWriter::new(buf);
    let id = node.uuid.to_string();
    match fields {
        Some(fields) => {
            if fields.iter().any(|f| f == "uuid") {
                write_field(&mut w, ctx, node, "uuid");
            }
            for (i, name) in fields.iter().enumerate() {
                if name != "uuid" && !fields[..i].contains(name) {
                    write_field(&mut w, ctx, node, name);
                }
            }
            write_links(&mut w, ctx.base, "nodes", &id);
        }
        None => {
            for name in ["uuid", "created_at", "updated_at"] {
                write_field(&mut w, ctx, node, name);
            }
            for (name, v) in FIELDS {
                if ctx.version.at_least(*v) {
                    write_field(&mut w, ctx, node, name);
                }
            }
            write_links(&mut w, ctx.base, "nodes", &id);
            for (name, v) in API_FIELDS {
                if ctx.version.at_least(*v) {
                    write_field(&mut w, ctx, node, name);
                }
            }
            let sub = |w: &mut ObjWriter<'_>, what: &str| {
                w.raw(what, &links(ctx.base, "nodes", &format!("{id}/{what}")));
            };
            sub(&mut w, "ports");
            if ctx.version.at_least(f::STATES_LINKS) {
                sub(&mut w, "states");
            }
            if ctx.version.at_least(f::PORTGROUPS_SUBCONTROLLERS) {
                sub(&mut w, "portgroups");
            }
            if ctx.version.at_least(f::VOLUME) {
                sub(&mut w, "volume");
            }
        }
    }
    w.end();
}

/// `GET /v1/nodes/{id}/states`.
pub fn write_states(buf: &mut Vec<u8>, ctx: &Ctx<'_>, node: &Node) {
    let mut w = ObjWriter::new(buf);
    for name in [
        "console_enabled",
        "last_error",
        "power_state",
        "provision_state",
        "target_power_state",
        "target_provision_state",
        "provision_updated_at",
    ] {
        write_field(&mut w, ctx, node, name);
    }
    if ctx.version.at_least(f::RAID_CONFIG) {
        write_field(&mut w, ctx, node, "raid_config");
        write_field(&mut w, ctx, node, "target_raid_config");
    }
    if ctx.version.at_least(f::BOOT_MODE) {
        write_field(&mut w, ctx, node, "boot_mode");
        write_field(&mut w, ctx, node, "secure_boot");
    }
    w.end();
}

/// The node as the JSON value the API shows at `ctx`'s version (used as the
/// document a JSON patch applies to).
pub fn node_value(ctx: &Ctx<'_>, node: &Node) -> serde_json::Value {
    let mut buf = Vec::with_capacity(2048);
    write_node(&mut buf, ctx, node, None);
    serde_json::from_slice(&buf).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::version::{MAX, Version};
    use serde_json::{Value, json};

    fn ctx(v: u32) -> Ctx<'static> {
        Ctx {
            version: Version(v),
            base: "http://127.0.0.1:6385",
            conductor_host: Some("c1"),
        }
    }

    fn sample() -> Node {
        let mut n = Node::new("fake-hardware");
        n.name = Some("n1".into());
        n.driver_info = serde_json::from_value(json!({
            "ipmi_address": "10.0.0.1", "ipmi_password": "hunter2"
        }))
        .unwrap();
        n.instance_info
            .insert("configdrive".into(), json!({"meta_data": {}}));
        n.instance_info
            .insert("image_source".into(), json!("http://x/img"));
        n.set_internal("agent_secret_token", "tok");
        for t in InterfaceType::ALL {
            n.interfaces.set(t, "fake");
        }
        n
    }

    fn render(v: u32, n: &Node, fields: Option<&[String]>) -> Value {
        let mut buf = Vec::new();
        write_node(&mut buf, &ctx(v), n, fields);
        serde_json::from_slice(&buf).unwrap()
    }

    #[test]
    fn secrets_are_masked() {
        let n = sample();
        let v = render(MAX.0, &n, None);
        assert_eq!(v["driver_info"]["ipmi_password"], "******");
        assert_eq!(v["driver_info"]["ipmi_address"], "10.0.0.1");
        assert_eq!(v["instance_info"]["configdrive"], "******");
        assert_eq!(v["driver_internal_info"]["agent_secret_token"], "******");
        let text = serde_json::to_string(&v).unwrap();
        assert!(!text.contains("hunter2") && !text.contains("\"tok\""));
    }

    #[test]
    fn version_1_1_hides_newer_fields_and_1_115_shows_all_fields() {
        let n = sample();
        let old = render(1, &n, None);
        let keys: Vec<&str> = old
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        for k in [
            "uuid",
            "driver",
            "provision_state",
            "links",
            "chassis_uuid",
            "ports",
        ] {
            assert!(keys.contains(&k), "{k} missing at 1.1");
        }
        for k in [
            "name",
            "driver_internal_info",
            "traits",
            "boot_interface",
            "states",
            "conductor",
            "health",
        ] {
            assert!(!keys.contains(&k), "{k} shown at 1.1");
        }
        let new = render(115, &n, None);
        for (k, _) in FIELDS.iter().chain(API_FIELDS) {
            assert!(new.get(k).is_some(), "{k} missing at max");
        }
        assert_eq!(new["conductor"], "c1");
        assert_eq!(
            new["states"][0]["href"],
            format!("http://127.0.0.1:6385/v1/nodes/{}/states", n.uuid)
        );
        assert_eq!(
            new["links"][1]["href"],
            format!("http://127.0.0.1:6385/nodes/{}", n.uuid)
        );
        assert_eq!(new["links"][1]["rel"], "bookmark");
    }

    #[test]
    fn old_versions_see_old_state_names() {
        let mut n = sample();
        n.provision_state = ProvisionState::Available;
        assert!(render(1, &n, None)["provision_state"].is_null());
        assert_eq!(render(2, &n, None)["provision_state"], "available");
        n.provision_state = ProvisionState::InspectWait;
        assert_eq!(render(38, &n, None)["provision_state"], "inspecting");
    }

    #[test]
    fn fields_select_and_are_checked() {
        let n = sample();
        let fields: Vec<String> = ["name", "uuid", "provision_state"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let v = render(MAX.0, &n, Some(&fields));
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys.len(), 4);
        assert!(keys.contains(&"links"));
        let e = check_fields(&ctx(MAX.0), &["bogus".to_string()]).unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(e.message(), "Field bogus is not a valid field.");
        let e = check_fields(&ctx(10), &["traits".to_string()]).unwrap_err();
        assert_eq!(e.status().as_u16(), 406);
        assert!(check_fields(&ctx(MAX.0), &["created_at".to_string()]).is_err());
    }
}
