//! Node sub-resources: traits, VIFs, history, ports and port groups of a node,
//! BIOS settings, inventory, children, firmware, the node's allocation, vendor
//! passthru.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, put};
use ironic_core::driver::VifInfo;
use ironic_core::ids::Ident;
use ironic_core::model::validate_trait;
use ironic_core::store::NodeFilter;
use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult};
use super::json::ObjWriter;
use super::nodes::ident;
use super::query::{ListArgs, Params};
use super::render::{self, write_history};
use super::version::feature as f;
use super::{ApiState, ReqCtx, no_content, ok, ok_value, parse_object};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/v1/nodes/{node}/traits",
            get(get_traits).put(set_traits).delete(delete_traits),
        )
        .route(
            "/v1/nodes/{node}/traits/{trait}",
            put(add_trait).delete(remove_trait),
        )
        .route("/v1/nodes/{node}/vifs", get(list_vifs).post(attach_vif))
        .route(
            "/v1/nodes/{node}/vifs/{vif}",
            axum::routing::delete(detach_vif),
        )
        .route("/v1/nodes/{node}/history", get(history))
        .route("/v1/nodes/{node}/history/{event}", get(history_event))
        .route("/v1/nodes/{node}/ports", get(node_ports))
        .route("/v1/nodes/{node}/ports/detail", get(node_ports_detail))
        .route("/v1/nodes/{node}/portgroups", get(node_portgroups))
        .route(
            "/v1/nodes/{node}/portgroups/detail",
            get(node_portgroups_detail),
        )
        .route("/v1/nodes/{node}/bios", get(bios))
        .route("/v1/nodes/{node}/bios/{setting}", get(bios_setting))
        .route("/v1/nodes/{node}/inventory", get(inventory))
        .route("/v1/nodes/{node}/children", get(children))
        .route("/v1/nodes/{node}/firmware", get(firmware))
        .route(
            "/v1/nodes/{node}/allocation",
            get(node_allocation).delete(delete_node_allocation),
        )
        .route("/v1/nodes/{node}/management/indicators", get(indicators))
        .route(
            "/v1/nodes/{node}/management/indicators/{indicator}",
            get(indicator_state).put(set_indicator),
        )
        .route(
            "/v1/nodes/{node}/vmedia",
            get(get_vmedia).post(attach_vmedia).delete(detach_vmedia),
        )
        .route(
            "/v1/nodes/{node}/vendor_passthru/methods",
            get(vendor_methods),
        )
        .route(
            "/v1/nodes/{node}/vendor_passthru",
            get(vendor_call)
                .post(vendor_call)
                .put(vendor_call)
                .patch(vendor_call)
                .delete(vendor_call),
        )
}

async fn get_traits(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ctx.exists_since(f::NODE_TRAITS)?;
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    ok_value(&json!({ "traits": n.traits }))
}

fn check_trait(t: &str) -> ApiResult<()> {
    validate_trait(t).map_err(ApiError::bad_request)?;
    let standard_or_custom = t.starts_with("CUSTOM_") || !t.is_empty();
    if !standard_or_custom {
        return Err(ApiError::bad_request(format!("Invalid trait {t}")));
    }
    Ok(())
}

async fn set_traits(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    ctx.exists_since(f::NODE_TRAITS)?;
    let m = parse_object(&body)?;
    let Some(Value::Array(items)) = m.get("traits") else {
        return Err(ApiError::bad_request(
            "'traits' is a required list of strings",
        ));
    };
    if m.len() != 1 {
        return Err(ApiError::bad_request("Only 'traits' may be given"));
    }
    let mut traits = Vec::with_capacity(items.len());
    for t in items {
        let s = t
            .as_str()
            .ok_or_else(|| ApiError::bad_request(format!("Invalid trait {t}: not a string")))?;
        check_trait(s)?;
        if !traits.iter().any(|x: &String| x == s) {
            traits.push(s.to_owned());
        }
    }
    if traits.len() > 50 {
        return Err(ApiError::bad_request(
            "Could not set traits: a node may have at most 50 traits",
        ));
    }
    st.conductor()
        .set_traits(&ident(&ctx, &id)?, traits)
        .await?;
    Ok(no_content())
}

async fn delete_traits(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ctx.exists_since(f::NODE_TRAITS)?;
    st.conductor()
        .set_traits(&ident(&ctx, &id)?, Vec::new())
        .await?;
    Ok(no_content())
}

async fn add_trait(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path((id, t)): Path<(String, String)>,
) -> ApiResult<Response> {
    ctx.exists_since(f::NODE_TRAITS)?;
    check_trait(&t)?;
    st.conductor().add_trait(&ident(&ctx, &id)?, &t).await?;
    Ok(no_content())
}

async fn remove_trait(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path((id, t)): Path<(String, String)>,
) -> ApiResult<Response> {
    ctx.exists_since(f::NODE_TRAITS)?;
    st.conductor().remove_trait(&ident(&ctx, &id)?, &t).await?;
    Ok(no_content())
}

async fn list_vifs(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ctx.exists_since(f::VIFS)?;
    let vifs = st.conductor().vif_list(&ident(&ctx, &id)?).await?;
    let items: Vec<Value> = vifs.into_iter().map(|v| json!({ "id": v })).collect();
    ok_value(&json!({ "vifs": items }))
}

async fn attach_vif(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    ctx.exists_since(f::VIFS)?;
    let mut m = parse_object(&body)?;
    let vif_id = match m.remove("id") {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => return Err(ApiError::bad_request("'id' is a required property")),
    };
    if (m.contains_key("port_uuid") || m.contains_key("portgroup_uuid"))
        && !ctx.version.at_least(f::VIF_ATTACH_PORT)
    {
        return Err(ApiError::not_acceptable());
    }
    if m.contains_key("port_uuid") && m.contains_key("portgroup_uuid") {
        return Err(ApiError::bad_request(
            "Cannot specify both port_uuid and portgroup_uuid",
        ));
    }
    st.conductor()
        .vif_attach(
            &ident(&ctx, &id)?,
            VifInfo {
                id: vif_id,
                extra: m,
            },
        )
        .await?;
    Ok(no_content())
}

async fn detach_vif(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path((id, vif)): Path<(String, String)>,
) -> ApiResult<Response> {
    ctx.exists_since(f::VIFS)?;
    st.conductor().vif_detach(&ident(&ctx, &id)?, &vif).await?;
    Ok(no_content())
}

async fn history(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    ctx.exists_since(f::HISTORY)?;
    let p = Params::parse(q.as_deref());
    let detail = p.bool("detail")?.unwrap_or(false);
    let args = ListArgs::parse(
        &Params(p.0.iter().filter(|(k, _)| k != "detail").cloned().collect()),
        ctx.version,
        st.settings().max_limit,
        false,
    )?;
    let mut events = st.conductor().history(&ident(&ctx, &id)?).await?;
    if args.sort_dir == ironic_core::store::SortDir::Desc {
        events.reverse();
    }
    if let Some(m) = args.marker {
        match events.iter().position(|e| *e.uuid.as_uuid() == m) {
            Some(i) => {
                events.drain(..=i);
            }
            None => {
                return Err(ApiError::not_found(format!(
                    "Node history record {m} could not be found."
                )));
            }
        }
    }
    events.truncate(args.limit);
    let rctx = ctx.render(&st);
    let mut buf = Vec::with_capacity(events.len() * 300 + 32);
    buf.extend_from_slice(b"{\"history\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        write_history(&mut buf, &rctx, e, detail);
    }
    buf.push(b']');
    if let Some(next) = super::query::next_link(
        &ctx.base,
        &format!("nodes/{id}/history"),
        &p,
        &args,
        events.len(),
        events.last().map(|e| e.uuid.to_string()),
        None,
    ) {
        buf.extend_from_slice(b",\"next\":");
        super::json::write_str(&mut buf, &next);
    }
    buf.push(b'}');
    Ok(ok(buf))
}

async fn history_event(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path((id, event)): Path<(String, String)>,
) -> ApiResult<Response> {
    ctx.exists_since(f::HISTORY)?;
    let events = st.conductor().history(&ident(&ctx, &id)?).await?;
    let e = events
        .iter()
        .find(|e| e.uuid.to_string() == event)
        .ok_or_else(|| {
            ApiError::not_found(format!("Node history record {event} could not be found."))
        })?;
    let mut buf = Vec::new();
    write_history(&mut buf, &ctx.render(&st), e, true);
    Ok(ok(buf))
}

async fn node_ports(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    super::ports::list_ports(
        &st,
        &ctx,
        q.as_deref(),
        false,
        &format!("nodes/{id}/ports"),
        Some(n.uuid),
        None,
    )
    .await
}

async fn node_ports_detail(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    super::ports::list_ports(
        &st,
        &ctx,
        q.as_deref(),
        true,
        &format!("nodes/{id}/ports/detail"),
        Some(n.uuid),
        None,
    )
    .await
}

async fn node_portgroups(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    ctx.exists_since(f::PORTGROUPS_SUBCONTROLLERS)?;
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    super::ports::list_portgroups(
        &st,
        &ctx,
        q.as_deref(),
        false,
        &format!("nodes/{id}/portgroups"),
        Some(n.uuid),
    )
    .await
}

async fn node_portgroups_detail(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    ctx.exists_since(f::PORTGROUPS_SUBCONTROLLERS)?;
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    super::ports::list_portgroups(
        &st,
        &ctx,
        q.as_deref(),
        true,
        &format!("nodes/{id}/portgroups/detail"),
        Some(n.uuid),
    )
    .await
}

fn bios_value(
    ctx: &ReqCtx,
    node: &str,
    s: &ironic_core::driver::BiosSetting,
    detail: bool,
) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = ObjWriter::new(&mut buf);
    w.str("name", &s.name);
    w.opt_str("value", s.value.as_deref());
    w.raw(
        "links",
        &render::links(&ctx.base, "nodes", &format!("{node}/bios/{}", s.name)),
    );
    if detail && ctx.version.at_least(f::BIOS_REGISTRY) {
        w.raw("attribute_type", b"null");
        w.field("allowable_values", &s.allowable_values);
        for k in ["lower_bound", "max_length", "min_length"] {
            w.raw(k, b"null");
        }
        w.field("read_only", &s.read_only);
        w.field("reset_required", &s.reset_required);
        w.raw("unique", b"null");
        w.raw("upper_bound", b"null");
    }
    w.end();
    buf
}

async fn bios(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    ctx.exists_since(f::BIOS)?;
    let p = Params::parse(q.as_deref());
    let detail = match p.bool("detail")? {
        Some(d) => {
            ctx.require(f::BIOS_REGISTRY)?;
            d
        }
        None => false,
    };
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    let settings = st.conductor().store().get_bios_settings(n.uuid).await?;
    let mut buf = b"{\"bios\":[".to_vec();
    for (i, s) in settings.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend(bios_value(&ctx, &n.uuid.to_string(), s, detail));
    }
    buf.extend_from_slice(b"]}");
    Ok(ok(buf))
}

async fn bios_setting(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    ctx.exists_since(f::BIOS)?;
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    let settings = st.conductor().store().get_bios_settings(n.uuid).await?;
    let s = settings.iter().find(|s| s.name == name).ok_or_else(|| {
        ApiError::not_found(format!(
            "Node {} doesn't have a BIOS setting '{name}'",
            n.uuid
        ))
    })?;
    let mut buf = b"{".to_vec();
    super::json::write_str(&mut buf, &name);
    buf.push(b':');
    buf.extend(bios_value(&ctx, &n.uuid.to_string(), s, true));
    buf.push(b'}');
    Ok(ok(buf))
}

async fn inventory(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ctx.exists_since(f::INVENTORY)?;
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
    ctx.exists_since(f::PARENT_NODES)?;
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    let p = Params::parse(q.as_deref());
    let args = ListArgs::parse(&p, ctx.version, st.settings().max_limit, false)?;
    let filter = NodeFilter {
        parent_node: Some(n.uuid),
        ..NodeFilter::default()
    };
    let nodes = st
        .conductor()
        .list_nodes(&ironic_core::store::NodeQuery {
            filter,
            page: ironic_core::store::Page {
                limit: Some(args.limit),
                marker: args.marker,
                ..Default::default()
            },
        })
        .await?;
    let ids: Vec<String> = nodes.iter().map(|c| c.uuid.to_string()).collect();
    ok_value(&json!({ "children": ids }))
}

async fn firmware(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ctx.exists_since(f::FIRMWARE)?;
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    let comps = st
        .conductor()
        .store()
        .get_firmware_components(n.uuid)
        .await?;
    let items: Vec<Value> = comps
        .iter()
        .map(|c| {
            json!({
                "component": c.component,
                "initial_version": c.initial_version,
                "current_version": c.current_version,
                "last_version_flashed": c.last_version_flashed,
            })
        })
        .collect();
    ok_value(&json!({ "firmware": items }))
}

async fn node_allocation(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    ctx.exists_since(f::ALLOCATIONS)?;
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    let a = match n.allocation_uuid {
        Some(a) => {
            st.conductor()
                .store()
                .get_allocation(&Ident::Uuid(a.0))
                .await?
        }
        None => {
            return Err(ApiError::not_found(format!(
                "Allocation for node {id} could not be found."
            )));
        }
    };
    let p = Params::parse(q.as_deref());
    let fields = p.list("fields");
    if let Some(fl) = &fields {
        render::check_fields_in(render::ALLOCATION_FIELDS, ctx.version, fl)?;
    }
    let mut buf = Vec::new();
    render::write_allocation(&mut buf, &ctx.render(&st), &a, fields.as_deref());
    Ok(ok(buf))
}

async fn delete_node_allocation(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ctx.exists_since(f::ALLOCATIONS)?;
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    let Some(a) = n.allocation_uuid else {
        return Err(ApiError::not_found(format!(
            "Allocation for node {id} could not be found."
        )));
    };
    st.conductor().delete_allocation(&Ident::Uuid(a.0)).await?;
    Ok(no_content())
}

async fn vendor_methods(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let n = st.conductor().get_node(&ident(&ctx, &id)?).await?;
    let driver = st
        .conductor()
        .registry()
        .driver_for(&n)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut out = Map::new();
    for r in driver.vendor.routes() {
        out.insert(
            r.method.clone(),
            json!({
                "http_methods": r.http_methods,
                "async": r.is_async,
                "description": r.description,
                "attach": r.attach,
                "require_exclusive_lock": r.require_exclusive_lock,
            }),
        );
    }
    ok_value(&Value::Object(out))
}

async fn vendor_call(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    method: axum::http::Method,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let name = p
        .get("method")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::bad_request("Method not specified"))?
        .to_owned();
    let data: Value = if body.is_empty() {
        Value::Object(Map::new())
    } else {
        super::parse_body(&body)?
    };
    let out = st
        .conductor()
        .vendor_passthru(&ident(&ctx, &id)?, &name, method.as_str(), data)
        .await?;
    ok_value(&out)
}

fn split_indicator(unique: &str) -> ApiResult<(&str, &str)> {
    unique
        .split_once('@')
        .filter(|(n, c)| !n.is_empty() && !c.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("Malformed indicator name \"{unique}\"")))
}

async fn indicators(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ctx.exists_since(f::INDICATORS)?;
    let ind = st
        .conductor()
        .get_supported_indicators(&ident(&ctx, &id)?)
        .await?;
    let mut out = Vec::new();
    for (component, names) in &ind {
        let Some(names) = names.as_object() else {
            continue;
        };
        for (name, fields) in names {
            let unique = format!("{name}@{component}");
            out.push(json!({
                "name": unique,
                "component": component,
                "readonly": fields.get("readonly").cloned().unwrap_or(Value::Bool(true)),
                "states": fields.get("states").cloned().unwrap_or_else(|| json!([])),
                "links": render::links_value(&ctx.base, "nodes", &format!("{id}/management/indicators/{unique}")),
            }));
        }
    }
    ok_value(&json!({ "indicators": out }))
}

async fn indicator_state(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path((id, indicator)): Path<(String, String)>,
) -> ApiResult<Response> {
    ctx.exists_since(f::INDICATORS)?;
    let (name, component) = split_indicator(&indicator)?;
    let state = st
        .conductor()
        .get_indicator_state(&ident(&ctx, &id)?, component, name)
        .await?;
    ok_value(&json!({ "state": state }))
}

async fn set_indicator(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path((id, indicator)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    ctx.exists_since(f::INDICATORS)?;
    let (name, component) = split_indicator(&indicator)?;
    // The state comes as a query argument (the client) or in a JSON body.
    let p = Params::parse(q.as_deref());
    let state = match p.get("state") {
        Some(s) => s.to_owned(),
        None => parse_object(&body)?
            .get("state")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::bad_request("'state' is required"))?,
    };
    if !matches!(state.as_str(), "ON" | "OFF" | "BLINKING" | "UNKNOWN") {
        return Err(ApiError::bad_request(format!(
            "Invalid indicator state {state:?}: expected ON, OFF, BLINKING or UNKNOWN"
        )));
    }
    st.conductor()
        .set_indicator_state(&ident(&ctx, &id)?, component, name, &state)
        .await?;
    Ok(no_content())
}

fn vmedia_device(s: &str) -> ApiResult<ironic_core::driver::VmediaDevice> {
    serde_json::from_value(json!(s)).map_err(|_| {
        ApiError::bad_request(format!(
            "Invalid device type(s) {s} (valid are cdrom, floppy, disk)"
        ))
    })
}

async fn get_vmedia(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ctx.exists_since(f::GET_VMEDIA)?;
    let v = st.conductor().get_virtual_media(&ident(&ctx, &id)?).await?;
    ok_value(&v)
}

async fn attach_vmedia(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    ctx.exists_since(f::ATTACH_VMEDIA)?;
    let m = parse_object(&body)?;
    for k in m.keys() {
        if !matches!(
            k.as_str(),
            "device_type" | "image_url" | "image_download_source"
        ) {
            return Err(ApiError::bad_request(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
    }
    let device = vmedia_device(
        m.get("device_type")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request("'device_type' is a required property"))?,
    )?;
    let url = m
        .get("image_url")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("'image_url' is a required property"))?;
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
    if !matches!(scheme, "http" | "https" | "nfs" | "cifs") {
        return Err(ApiError::bad_request(format!(
            "Unsupported or missing URL scheme: {scheme}"
        )));
    }
    if let Some(src) = m.get("image_download_source")
        && !matches!(src.as_str(), Some("http" | "local" | "swift"))
    {
        return Err(ApiError::bad_request(
            "Invalid image_download_source: expected http, local or swift",
        ));
    }
    st.conductor()
        .attach_virtual_media(&ident(&ctx, &id)?, device, url)
        .await?;
    Ok(no_content())
}

async fn detach_vmedia(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    ctx.exists_since(f::ATTACH_VMEDIA)?;
    let p = Params::parse(q.as_deref());
    let devices = p
        .list("device_types")
        .unwrap_or_default()
        .iter()
        .map(|d| vmedia_device(d))
        .collect::<ApiResult<Vec<_>>>()?;
    st.conductor()
        .detach_virtual_media(&ident(&ctx, &id)?, &devices)
        .await?;
    Ok(no_content())
}
