//! What the node is made of: BIOS settings (1.40), firmware components (1.86),
//! the inspection inventory (1.81), child nodes (1.83).

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::ident;
use crate::api::error::{ApiError, ApiResult};
use crate::api::json::{ObjWriter, opt_time};
use crate::api::query::{ListArgs, Params};
use crate::api::resource::links;
use crate::api::routes::{Body, Route, get};
use crate::api::version::feature as f;
use crate::api::{ApiState, ReqCtx, ok, ok_value};

pub(super) fn routes() -> Vec<Route> {
    vec![
        get("/v1/nodes/{node}/bios", bios)
            .doc("BIOS settings")
            .since(f::BIOS)
            .returns(Body::Object("{bios: [..]}")),
        get("/v1/nodes/{node}/bios/{setting}", bios_setting)
            .doc("One BIOS setting")
            .since(f::BIOS)
            .returns(Body::Object("{<name>: setting}")),
        get("/v1/nodes/{node}/inventory", inventory)
            .doc("The inventory found by inspection")
            .since(f::INVENTORY)
            .returns(Body::Object("{inventory, plugin_data}")),
        get("/v1/nodes/{node}/children", children)
            .doc("Child nodes")
            .since(f::PARENT_NODES)
            .returns(Body::Object("{children: [uuid..]}")),
        get("/v1/nodes/{node}/firmware", firmware)
            .doc("Firmware components")
            .since(f::FIRMWARE)
            .returns(Body::Object("{firmware: [..]}")),
    ]
}

/// The values `fields` may name on `GET /v1/nodes/{node}/bios` (Ironic's
/// 1.74 query schema).
const BIOS_QUERY_FIELDS: &[&str] = &[
    "allowable_values",
    "attribute_type",
    "created_at",
    "lower_bound",
    "links",
    "max_length",
    "min_length",
    "name",
    "node_uuid",
    "read_only",
    "reset_required",
    "unique",
    "updated_at",
    "value",
];

/// A BIOS setting with its registry (1.74 `detail`, and a single setting).
const BIOS_REGISTRY_FIELDS: &[&str] = &[
    "name",
    "value",
    "attribute_type",
    "allowable_values",
    "lower_bound",
    "max_length",
    "min_length",
    "read_only",
    "reset_required",
    "unique",
    "upper_bound",
];

/// One BIOS setting as Ironic's `object_to_dict`: the `shown` fields, then
/// `links` and the timestamps, which it always adds.
fn bios_value(
    ctx: &ReqCtx,
    node: &str,
    s: &ironic_core::driver::BiosSetting,
    shown: &[&str],
) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = ObjWriter::new(&mut buf);
    for f in shown {
        match *f {
            "name" => w.str("name", &s.name),
            "value" => w.opt_str("value", s.value.as_deref()),
            "attribute_type" => w.opt_str("attribute_type", s.attribute_type.as_deref()),
            "allowable_values" => w.field("allowable_values", &s.allowable_values),
            "lower_bound" => w.field("lower_bound", &s.lower_bound),
            "max_length" => w.field("max_length", &s.max_length),
            "min_length" => w.field("min_length", &s.min_length),
            "read_only" => w.field("read_only", &s.read_only),
            "reset_required" => w.field("reset_required", &s.reset_required),
            "unique" => w.field("unique", &s.unique),
            "upper_bound" => w.field("upper_bound", &s.upper_bound),
            // links and timestamps below; node_uuid is not a setting attribute
            _ => {}
        }
    }
    w.raw(
        "links",
        &links(&ctx.base, "nodes", &format!("{node}/bios/{}", s.name)),
    );
    // Ironic's object_to_dict always adds the record's timestamps.
    opt_time(&mut w, "created_at", s.created_at.as_ref());
    opt_time(&mut w, "updated_at", s.updated_at.as_ref());
    w.end();
    buf
}

async fn bios(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    // Ironic's query schema: nothing below 1.74, then `detail` and `fields`
    let allowed: &[&str] = if ctx.version.at_least(f::BIOS_REGISTRY) {
        &["detail", "fields"]
    } else {
        &[]
    };
    if let Some((k, _)) = p.0.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Schema error: Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let detail = p.bool("detail")?.unwrap_or(false);
    let fields = p.list("fields");
    if let Some(bad) = fields
        .iter()
        .flatten()
        .find(|f| !BIOS_QUERY_FIELDS.contains(&f.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "Schema error: '{bad}' is not one of {BIOS_QUERY_FIELDS:?}"
        )));
    }
    let shown: Vec<&str> = match (&fields, detail) {
        (_, true) => BIOS_REGISTRY_FIELDS.to_vec(),
        (Some(f), false) => f.iter().map(String::as_str).collect(),
        (None, false) => vec!["name", "value"],
    };
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    let settings = st.conductor().store().get_bios_settings(n.uuid).await?;
    let mut buf = b"{\"bios\":[".to_vec();
    for (i, s) in settings.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend(bios_value(&ctx, &n.uuid.to_string(), s, &shown));
    }
    buf.extend_from_slice(b"]}");
    Ok(ok(buf))
}

async fn bios_setting(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    let settings = st.conductor().store().get_bios_settings(n.uuid).await?;
    let s = settings.iter().find(|s| s.name == name).ok_or_else(|| {
        ApiError::not_found(format!(
            "Node {} doesn't have a BIOS setting '{name}'",
            n.uuid
        ))
    })?;
    let mut buf = b"{".to_vec();
    crate::api::json::write_str(&mut buf, &name);
    buf.push(b':');
    let shown: &[&str] = if ctx.version.at_least(f::BIOS_REGISTRY) {
        BIOS_REGISTRY_FIELDS
    } else {
        &["name", "value"]
    };
    buf.extend(bios_value(&ctx, &n.uuid.to_string(), s, shown));
    buf.push(b'}');
    Ok(ok(buf))
}

async fn inventory(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    let inv = st.conductor().store().get_inventory(n.uuid).await?;
    match inv {
        None => Err(ApiError::not_found(format!(
            "Node inventory for node {} could not be found.",
            n.uuid
        ))),
        Some(Value::Object(mut m)) => {
            // Stored as {"inventory": ..., "plugin_data": ...} or as the bare inventory.
            let doc = if m.contains_key("inventory") {
                let inventory = m.remove("inventory").unwrap_or(Value::Null);
                let plugin = m.remove("plugin_data").unwrap_or_else(|| json!({}));
                json!({"inventory": inventory, "plugin_data": plugin})
            } else {
                json!({"inventory": Value::Object(m), "plugin_data": {}})
            };
            ok_value(&doc)
        }
        Some(other) => ok_value(&json!({"inventory": other, "plugin_data": {}})),
    }
}

async fn children(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    let p = Params::parse(q.as_deref());
    let args = ListArgs::parse(&p, ctx.version, st.settings().max_limit, false)?;
    let mut query = ironic_core::store::NodeQuery::default();
    query.filter.parent_node = Some(n.uuid);
    query.page.limit = Some(args.limit);
    query.page.marker = args.marker;
    let nodes = st.conductor().list_nodes(&query).await?;
    let ids: Vec<String> = nodes.iter().map(|c| c.uuid.to_string()).collect();
    ok_value(&json!({
        "children": ids,
        "links": {
            "href": format!("{}/v1/nodes?parent_node={}", ctx.base, n.uuid),
            "rel": "children",
        },
    }))
}

/// Firmware component fields: Ironic 39's defaults, then 1.114's identity.
const FIRMWARE_FIELDS: &[&str] = &[
    "component",
    "initial_version",
    "current_version",
    "last_version_flashed",
];
const FIRMWARE_IDENTITY_FIELDS: &[&str] = &["vendor", "model", "serial_number"];

async fn firmware(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    for (k, _) in &p.0 {
        if k != "fields" && k != "detail" {
            return Err(ApiError::bad_request(format!(
                "Invalid input for query parameters. Reason: Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
    }
    let detail = p.bool("detail")?.unwrap_or(false);
    let identity = ctx.version.at_least(f::FIRMWARE_IDENTITY);
    let fields: Vec<String> = match p.get("fields") {
        Some(list) => {
            if detail {
                return Err(ApiError::bad_request(
                    "Can not specify ?detail=True and fields in the same request.",
                ));
            }
            let asked: Vec<String> = list
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            for a in &asked {
                let known = FIRMWARE_FIELDS.contains(&a.as_str())
                    || FIRMWARE_IDENTITY_FIELDS.contains(&a.as_str())
                    || a == "created_at"
                    || a == "updated_at";
                if !known {
                    return Err(ApiError::bad_request(format!(
                        "Invalid input for query parameters fields. Reason: '{a}' is not one of {:?}",
                        ["created_at", "updated_at"]
                            .iter()
                            .chain(FIRMWARE_FIELDS)
                            .chain(FIRMWARE_IDENTITY_FIELDS)
                            .collect::<Vec<_>>()
                    )));
                }
            }
            if !identity {
                let mut disallowed: Vec<&str> = asked
                    .iter()
                    .map(String::as_str)
                    .filter(|a| FIRMWARE_IDENTITY_FIELDS.contains(a))
                    .collect();
                disallowed.sort_unstable();
                if !disallowed.is_empty() {
                    return Err(ApiError::bad_request(format!(
                        "Fields {} are not allowed in this API version. They require at least API version 1.{}.",
                        disallowed.join(", "),
                        f::FIRMWARE_IDENTITY
                    )));
                }
            }
            asked
        }
        // Ironic 39 answers `detail=true` with the timestamps alone (it passes no
        // field list on); every field of the version is what a caller wants.
        None => FIRMWARE_FIELDS
            .iter()
            .chain(if identity {
                FIRMWARE_IDENTITY_FIELDS
            } else {
                &[]
            })
            .map(|s| (*s).to_owned())
            .collect(),
    };
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    let comps = st
        .conductor()
        .store()
        .get_firmware_components(n.uuid)
        .await?;
    let mut buf = b"{\"firmware\":[".to_vec();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let mut w = ObjWriter::new(&mut buf);
        // Always there, as Ironic's object_to_dict.
        opt_time(&mut w, "created_at", c.created_at.as_ref());
        opt_time(&mut w, "updated_at", c.updated_at.as_ref());
        for k in &fields {
            match k.as_str() {
                "component" => w.str(k, &c.component),
                "initial_version" => w.opt_str(k, c.initial_version.as_deref()),
                "current_version" => w.opt_str(k, c.current_version.as_deref()),
                "last_version_flashed" => w.opt_str(k, c.last_version_flashed.as_deref()),
                "vendor" => w.opt_str(k, c.vendor.as_deref()),
                "model" => w.opt_str(k, c.model.as_deref()),
                "serial_number" => w.opt_str(k, c.serial_number.as_deref()),
                _ => {}
            }
        }
        w.end();
    }
    buf.extend_from_slice(b"]}");
    Ok(ok(buf))
}
