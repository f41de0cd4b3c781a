//! Ports, port groups, chassis, allocations, deploy templates, conductors, history.

use ironic_core::model::{
    Allocation, Chassis, ConductorRecord, DeployTemplate, HistoryEvent, Port, Portgroup,
};

use super::{Ctx, links, write_links};
use crate::api::json::{ObjWriter, opt_time};

/// Port fields (name, minor version), in Ironic's order.
pub const PORT_FIELDS: &[(&str, u32)] = &[
    ("uuid", 1),
    ("created_at", 1),
    ("updated_at", 1),
    ("address", 1),
    ("extra", 1),
    ("internal_info", 18),
    ("is_smartnic", 53),
    ("local_link_connection", 19),
    ("physical_network", 34),
    ("pxe_enabled", 19),
    ("node_uuid", 1),
    ("name", 88),
    ("description", 97),
    ("vendor", 100),
    ("category", 101),
    ("available_for_dynamic_portgroup", 111),
    ("portgroup_uuid", 24),
];

/// Fields of the port list without `detail`.
pub const PORT_LIST_FIELDS: &[&str] = &["uuid", "address"];

fn port_field(w: &mut ObjWriter<'_>, p: &Port, name: &str) {
    match name {
        "uuid" => w.str(name, &p.uuid.to_string()),
        "created_at" => opt_time(w, name, Some(&p.created_at)),
        "updated_at" => opt_time(w, name, p.updated_at.as_ref()),
        "address" => w.str(name, &p.address.to_string()),
        "extra" => w.field(name, &p.extra),
        "internal_info" => w.field(name, &p.internal_info),
        "is_smartnic" => w.bool(name, p.is_smartnic),
        "local_link_connection" => w.field(name, &p.local_link_connection),
        "physical_network" => w.opt_str(name, p.physical_network.as_deref()),
        "pxe_enabled" => w.bool(name, p.pxe_enabled),
        "node_uuid" => w.str(name, &p.node_uuid.to_string()),
        "name" => w.opt_str(name, p.name.as_deref()),
        "description" => w.opt_str(name, p.description.as_deref()),
        "vendor" => w.opt_str(name, p.vendor.as_deref()),
        "category" => w.opt_str(name, p.category.as_deref()),
        "available_for_dynamic_portgroup" => w.bool(name, p.available_for_dynamic_portgroup),
        "portgroup_uuid" => w.field(name, &p.portgroup_uuid),
        _ => {}
    }
}

/// Generic "fields or all" writer over a field table.
fn write_selected<T>(
    buf: &mut Vec<u8>,
    ctx: &Ctx<'_>,
    table: &[(&str, u32)],
    fields: Option<&[String]>,
    item: &T,
    write: fn(&mut ObjWriter<'_>, &T, &str),
    links_for: impl FnOnce(&mut ObjWriter<'_>),
) {
    let mut w = ObjWriter::new(buf);
    match fields {
        Some(fields) => {
            if fields.iter().any(|f| f == "uuid") {
                write(&mut w, item, "uuid");
            }
            for (i, f) in fields.iter().enumerate() {
                if f != "uuid" && !fields[..i].contains(f) {
                    write(&mut w, item, f);
                }
            }
        }
        None => {
            for (name, v) in table {
                if ctx.version.at_least(*v) {
                    write(&mut w, item, name);
                }
            }
        }
    }
    links_for(&mut w);
    w.end();
}

/// Render a port.
pub fn write_port(buf: &mut Vec<u8>, ctx: &Ctx<'_>, p: &Port, fields: Option<&[String]>) {
    let id = p.uuid.to_string();
    write_selected(buf, ctx, PORT_FIELDS, fields, p, port_field, |w| {
        write_links(w, ctx.base, "ports", &id)
    });
}

/// Port group fields.
pub const PORTGROUP_FIELDS: &[(&str, u32)] = &[
    ("uuid", 1),
    ("created_at", 1),
    ("updated_at", 1),
    ("address", 1),
    ("extra", 1),
    ("internal_info", 1),
    ("mode", 26),
    ("name", 1),
    ("properties", 26),
    ("standalone_ports_supported", 1),
    ("node_uuid", 1),
    ("physical_network", 102),
    ("category", 103),
];

/// Fields of the port group list without `detail`.
pub const PORTGROUP_LIST_FIELDS: &[&str] = &["uuid", "address", "name"];

fn portgroup_field(w: &mut ObjWriter<'_>, p: &Portgroup, name: &str) {
    match name {
        "uuid" => w.str(name, &p.uuid.to_string()),
        "created_at" => opt_time(w, name, Some(&p.created_at)),
        "updated_at" => opt_time(w, name, p.updated_at.as_ref()),
        "address" => w.opt_str(name, p.address.map(|a| a.to_string()).as_deref()),
        "extra" => w.field(name, &p.extra),
        "internal_info" => w.field(name, &p.internal_info),
        "mode" => w.opt_str(name, p.mode.as_deref()),
        "name" => w.opt_str(name, p.name.as_deref()),
        "properties" => w.field(name, &p.properties),
        "standalone_ports_supported" => w.bool(name, p.standalone_ports_supported),
        "node_uuid" => w.str(name, &p.node_uuid.to_string()),
        "physical_network" => w.opt_str(name, p.physical_network.as_deref()),
        "category" => w.opt_str(name, p.category.as_deref()),
        _ => {}
    }
}

/// Render a port group.
pub fn write_portgroup(buf: &mut Vec<u8>, ctx: &Ctx<'_>, p: &Portgroup, fields: Option<&[String]>) {
    let id = p.uuid.to_string();
    write_selected(
        buf,
        ctx,
        PORTGROUP_FIELDS,
        fields,
        p,
        portgroup_field,
        |w| {
            write_links(w, ctx.base, "portgroups", &id);
            if fields.is_none() {
                w.raw(
                    "ports",
                    &links(ctx.base, "portgroups", &format!("{id}/ports")),
                );
            }
        },
    );
}

/// Chassis fields.
pub const CHASSIS_FIELDS: &[(&str, u32)] = &[
    ("uuid", 1),
    ("created_at", 1),
    ("updated_at", 1),
    ("description", 1),
    ("extra", 1),
];

fn chassis_field(w: &mut ObjWriter<'_>, c: &Chassis, name: &str) {
    match name {
        "uuid" => w.str(name, &c.uuid.to_string()),
        "created_at" => opt_time(w, name, Some(&c.created_at)),
        "updated_at" => opt_time(w, name, c.updated_at.as_ref()),
        "description" => w.opt_str(name, c.description.as_deref()),
        "extra" => w.field(name, &c.extra),
        _ => {}
    }
}

/// Render a chassis.
pub fn write_chassis(buf: &mut Vec<u8>, ctx: &Ctx<'_>, c: &Chassis, fields: Option<&[String]>) {
    let id = c.uuid.to_string();
    write_selected(buf, ctx, CHASSIS_FIELDS, fields, c, chassis_field, |w| {
        write_links(w, ctx.base, "chassis", &id);
        if fields.is_none() {
            w.raw("nodes", &links(ctx.base, "chassis", &format!("{id}/nodes")));
        }
    });
}

/// Allocation fields.
pub const ALLOCATION_FIELDS: &[(&str, u32)] = &[
    ("uuid", 1),
    ("created_at", 1),
    ("updated_at", 1),
    ("candidate_nodes", 1),
    ("extra", 1),
    ("last_error", 1),
    ("name", 1),
    ("node_uuid", 1),
    ("owner", 60),
    ("resource_class", 1),
    ("state", 1),
    ("traits", 1),
];

fn allocation_field(w: &mut ObjWriter<'_>, a: &Allocation, name: &str) {
    match name {
        "uuid" => w.str(name, &a.uuid.to_string()),
        "created_at" => opt_time(w, name, Some(&a.created_at)),
        "updated_at" => opt_time(w, name, a.updated_at.as_ref()),
        "candidate_nodes" => w.field(name, &a.candidate_nodes),
        "extra" => w.field(name, &a.extra),
        "last_error" => w.opt_str(name, a.last_error.as_deref()),
        "name" => w.opt_str(name, a.name.as_deref()),
        "node_uuid" => w.field(name, &a.node_uuid),
        "owner" => w.opt_str(name, a.owner.as_deref()),
        "resource_class" => w.opt_str(name, a.resource_class.as_deref()),
        "state" => w.field(name, &a.state),
        "traits" => w.field(name, &a.traits),
        _ => {}
    }
}

/// Render an allocation.
pub fn write_allocation(
    buf: &mut Vec<u8>,
    ctx: &Ctx<'_>,
    a: &Allocation,
    fields: Option<&[String]>,
) {
    let id = a.uuid.to_string();
    write_selected(
        buf,
        ctx,
        ALLOCATION_FIELDS,
        fields,
        a,
        allocation_field,
        |w| write_links(w, ctx.base, "allocations", &id),
    );
}

/// Deploy template fields.
pub const TEMPLATE_FIELDS: &[(&str, u32)] = &[
    ("uuid", 1),
    ("created_at", 1),
    ("updated_at", 1),
    ("extra", 1),
    ("name", 1),
    ("steps", 1),
];

fn template_field(w: &mut ObjWriter<'_>, t: &DeployTemplate, name: &str) {
    match name {
        "uuid" => w.str(name, &t.uuid.to_string()),
        "created_at" => opt_time(w, name, Some(&t.created_at)),
        "updated_at" => opt_time(w, name, t.updated_at.as_ref()),
        "extra" => w.field(name, &t.extra),
        "name" => w.str(name, &t.name),
        "steps" => w.field(name, &t.steps),
        _ => {}
    }
}

/// Render a deploy template.
pub fn write_template(
    buf: &mut Vec<u8>,
    ctx: &Ctx<'_>,
    t: &DeployTemplate,
    fields: Option<&[String]>,
) {
    let id = t.uuid.to_string();
    write_selected(buf, ctx, TEMPLATE_FIELDS, fields, t, template_field, |w| {
        write_links(w, ctx.base, "deploy_templates", &id)
    });
}

/// Conductor fields.
pub const CONDUCTOR_FIELDS: &[(&str, u32)] = &[
    ("hostname", 1),
    ("conductor_group", 1),
    ("alive", 1),
    ("drivers", 1),
    ("created_at", 1),
    ("updated_at", 1),
];

fn conductor_field(w: &mut ObjWriter<'_>, c: &ConductorRecord, name: &str) {
    match name {
        "hostname" => w.str(name, &c.hostname),
        "conductor_group" => w.str(name, &c.conductor_group),
        "alive" => w.bool(name, c.alive),
        "drivers" => w.field(name, &c.drivers),
        "created_at" => opt_time(w, name, Some(&c.created_at)),
        "updated_at" => opt_time(w, name, c.updated_at.as_ref()),
        _ => {}
    }
}

/// Render a conductor (`alive` already derived by the caller).
pub fn write_conductor(
    buf: &mut Vec<u8>,
    ctx: &Ctx<'_>,
    c: &ConductorRecord,
    fields: Option<&[String]>,
) {
    let mut w = ObjWriter::new(buf);
    match fields {
        Some(fields) => {
            for f in fields {
                conductor_field(&mut w, c, f);
            }
        }
        None => {
            for (f, _) in CONDUCTOR_FIELDS {
                conductor_field(&mut w, c, f);
            }
        }
    }
    write_links(&mut w, ctx.base, "conductors", &c.hostname);
    w.end();
}

/// Render a node history event (`detail` adds the fields beyond the summary).
pub fn write_history(buf: &mut Vec<u8>, ctx: &Ctx<'_>, e: &HistoryEvent, detail: bool) {
    let mut w = ObjWriter::new(buf);
    w.str("uuid", &e.uuid.to_string());
    opt_time(&mut w, "created_at", Some(&e.created_at));
    w.field("severity", &e.severity);
    if detail {
        w.str("event_type", &e.event_type);
        w.str("event", &e.event);
        w.opt_str("conductor", e.conductor.as_deref());
        w.opt_str("user", e.user.as_deref());
    } else if e.event.chars().count() > 255 {
        let short: String = e.event.chars().take(251).collect();
        w.str("event", &format!("{short}..."));
    } else {
        w.str("event", &e.event);
    }
    let mut l = Vec::new();
    l.push(b'[');
    let mut lw = ObjWriter::new(&mut l);
    lw.str(
        "href",
        &format!("{}/v1/nodes/{}/history/{}", ctx.base, e.node_uuid, e.uuid),
    );
    lw.str("rel", "self");
    lw.end();
    l.push(b']');
    w.raw("links", &l);
    w.end();
}
