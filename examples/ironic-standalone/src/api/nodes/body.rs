//! The node body: every field with the microversion that introduced it and
//! whether create/PATCH may set it, secrets masked, old state names for old
//! clients.

use ironic_core::Node;
use ironic_core::model::InterfaceType;
use ironic_core::secret::{MASK, mask_map};
use ironic_core::states::ProvisionState;

use crate::api::json::{ObjWriter, opt_time};
use crate::api::resource::{CREATED_AT, Ctx, Field, Resource, Schema, Ty, UPDATED_AT, UUID};
use crate::api::version::feature as f;

const fn iface(name: &'static str, since: u32) -> Field {
    Field::new(name, since, Ty::Str).null().rw()
}

/// Node fields in Ironic's order, with the minor version that introduced each
/// and what create (Ironic's `node_schema`) and PATCH (`PATCH_ALLOWED_FIELDS`)
/// accept.
pub(crate) const FIELDS: &[Field] = &[
    UUID,
    CREATED_AT,
    UPDATED_AT,
    Field::new("automated_clean", 47, Ty::Bool).null().rw(),
    iface("bios_interface", 40),
    iface("boot_interface", 31),
    Field::new("boot_mode", 75, Ty::Str).null().create(),
    Field::new("clean_step", 7, Ty::Object),
    Field::new("conductor_group", 46, Ty::Str).rw(),
    Field::new("console_enabled", 1, Ty::Bool).create(),
    iface("console_interface", 31),
    Field::new("disable_power_off", 95, Ty::Bool).rw(),
    iface("deploy_interface", 31),
    Field::new("deploy_step", 44, Ty::Object),
    Field::new("description", 51, Ty::Str).null().rw(),
    Field::new("driver", 1, Ty::Str).rw(),
    Field::new("driver_info", 1, Ty::Object).rw(),
    Field::new("driver_internal_info", 3, Ty::Object),
    Field::new("extra", 1, Ty::Object).rw(),
    Field::new("fault", 42, Ty::Str).null(),
    iface("firmware_interface", 86),
    Field::new("health", f::HEALTH, Ty::Str).null(),
    Field::new("inspection_finished_at", 6, Ty::Time).null(),
    Field::new("inspection_started_at", 6, Ty::Time).null(),
    iface("inspect_interface", 31),
    Field::new("instance_info", 1, Ty::Object).rw(),
    Field::new("instance_name", f::INSTANCE_NAME, Ty::Str)
        .null()
        .rw(),
    Field::new("instance_uuid", 1, Ty::Uuid).null().rw(),
    Field::new("last_error", 1, Ty::Str).null(),
    Field::new("lessee", 65, Ty::Str).null().rw(),
    Field::new("maintenance", 1, Ty::Bool).rw(),
    Field::new("maintenance_reason", 1, Ty::Str).null(),
    iface("management_interface", 31),
    Field::new("name", 5, Ty::Str).null().rw(),
    Field::new("network_data", 66, Ty::Object).rw(),
    iface("network_interface", 20),
    Field::new("owner", 50, Ty::Str).null().rw(),
    Field::new("parent_node", 83, Ty::Uuid).null().rw(),
    iface("power_interface", 31),
    Field::new("power_state", 1, Ty::Str).null(),
    Field::new("properties", 1, Ty::Object).rw(),
    Field::new("protected", 48, Ty::Bool).patch(),
    Field::new("protected_reason", 48, Ty::Str).null().patch(),
    Field::new("provision_state", 1, Ty::Str).null(),
    Field::new("provision_updated_at", 1, Ty::Time).null(),
    Field::new("raid_config", 12, Ty::Object),
    iface("raid_interface", 31),
    iface("rescue_interface", 38),
    Field::new("reservation", 1, Ty::Str).null(),
    Field::new("resource_class", 21, Ty::Str).null().rw(),
    Field::new("retired", 61, Ty::Bool).rw(),
    Field::new("retired_reason", 61, Ty::Str).null().rw(),
    Field::new("secure_boot", 75, Ty::Bool).null().create(),
    Field::new("service_step", 87, Ty::Object),
    Field::new("shard", 82, Ty::Str).null().rw(),
    iface("storage_interface", 33),
    Field::new("target_power_state", 1, Ty::Str).null(),
    Field::new("target_provision_state", 1, Ty::Str).null(),
    Field::new("target_raid_config", 12, Ty::Object),
    Field::new("traits", 37, Ty::StrList),
    iface("vendor_interface", 31),
    Field::new("conductor", 49, Ty::Str).null(),
    Field::new("allocation_uuid", 52, Ty::Uuid).null(),
    Field::new("chassis_uuid", 1, Ty::Uuid).null().rw(),
];

/// The fields `GET /v1/nodes` returns without `detail`.
pub(crate) const DEFAULT_LIST_FIELDS: &[&str] = &[
    "uuid",
    "instance_uuid",
    "maintenance",
    "power_state",
    "provision_state",
    "name",
];

/// The node resource.
pub(crate) static SCHEMA: Schema = Schema {
    name: "Node",
    collection: "nodes",
    key: "nodes",
    fields: FIELDS,
    list_fields: DEFAULT_LIST_FIELDS,
    sub_links: &[
        ("ports", 1),
        ("states", f::STATES_LINKS),
        ("portgroups", f::PORTGROUPS_SUBCONTROLLERS),
        ("volume", f::VOLUME),
    ],
};

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

impl Resource for Node {
    const SCHEMA: &'static Schema = &SCHEMA;

    fn link_id(&self) -> String {
        self.uuid.to_string()
    }

    fn write_field(&self, w: &mut ObjWriter<'_>, ctx: &Ctx<'_>, name: &str) {
        let node = self;
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
            "conductor" => {
                let owner = ctx.conductor.and_then(|c| c.owner_of(self));
                w.opt_str(name, owner.as_deref())
            }
            "allocation_uuid" => w.field(name, &node.allocation_uuid),
            "chassis_uuid" => w.field(name, &node.chassis_uuid),
            _ => {}
        }
    }
}

/// `GET /v1/nodes/{id}/states`.
pub(crate) fn write_states(buf: &mut Vec<u8>, ctx: &Ctx<'_>, node: &Node) {
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
        node.write_field(&mut w, ctx, name);
    }
    if ctx.version.at_least(f::RAID_CONFIG) {
        node.write_field(&mut w, ctx, "raid_config");
        node.write_field(&mut w, ctx, "target_raid_config");
    }
    if ctx.version.at_least(f::BOOT_MODE) {
        node.write_field(&mut w, ctx, "boot_mode");
        node.write_field(&mut w, ctx, "secure_boot");
    }
    w.end();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::resource::body;
    use crate::api::version::{MAX, Version};
    use serde_json::{Value, json};

    fn ctx(v: u32) -> Ctx<'static> {
        Ctx {
            version: Version(v),
            base: "http://127.0.0.1:6385",
            conductor: None,
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
        for &t in InterfaceType::ALL {
            n.interfaces.set(t, "fake");
        }
        n
    }

    fn render(v: u32, n: &Node, fields: Option<&[String]>) -> Value {
        serde_json::from_slice(&body(&ctx(v), n, fields)).unwrap()
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
    fn version_1_1_hides_newer_fields_and_the_maximum_shows_all_fields() {
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
        let new = render(f::HISTORY_FIELDS, &n, None);
        for fl in FIELDS {
            assert!(new.get(fl.name).is_some(), "{} missing at max", fl.name);
        }
        assert_eq!(new["conductor"], Value::Null, "no conductor, no owner");
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
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(keys, vec!["links", "name", "provision_state", "uuid"]);
        let e = SCHEMA
            .check_fields(Version(MAX.0), &["bogus".to_string()])
            .unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        assert_eq!(e.message(), "Field(s) \"bogus\" are not valid");
        let e = SCHEMA
            .check_fields(Version(10), &["traits".to_string()])
            .unwrap_err();
        assert_eq!(e.status().as_u16(), 406);
        assert!(
            SCHEMA
                .check_fields(Version(MAX.0), &["created_at".to_string()])
                .is_ok()
        );
    }
}
