//! `/v1/drivers`: the hardware types registered in the conductor's
//! `InterfaceRegistry`, their interfaces and `driver_info` properties.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use ironic_core::HardwareType;
use ironic_core::model::InterfaceType;
use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult};
use super::query::Params;
use super::routes::{Body, Gate, Route, get};
use super::version::feature as f;
use super::{ApiState, ReqCtx, ok_value};

pub(super) fn routes() -> Vec<Route> {
    vec![
        get("/v1/drivers", list)
            .doc("List drivers (hardware types)")
            .returns(Body::Object("{drivers: [..]}")),
        get("/v1/drivers/{name}", show)
            .doc("Show a driver")
            .returns(Body::Object("driver")),
        get("/v1/drivers/{name}/properties", properties)
            .doc("The driver_info properties of a driver")
            .returns(Body::Object("{<property>: description}")),
        get(
            "/v1/drivers/{name}/raid/logical_disk_properties",
            raid_properties,
        )
        .doc("Properties of a RAID logical disk")
        .since_or(f::RAID_CONFIG, Gate::NOT_ACCEPTABLE)
        .returns(Body::Object("{<property>: description}")),
        get("/v1/drivers/{name}/vendor_passthru/methods", vendor_methods)
            .doc("Driver vendor methods")
            .returns(Body::Object("{<method>: {..}}")),
    ]
}

fn link_pair(base: &str, path: &str) -> Value {
    json!([
        {"href": format!("{base}/v1/drivers/{path}"), "rel": "self"},
        {"href": format!("{base}/drivers/{path}"), "rel": "bookmark"},
    ])
}

fn driver_doc(st: &ApiState, ctx: &ReqCtx, hw: &HardwareType, detail: bool) -> Map<String, Value> {
    let host = st.conductor().config().host.clone();
    let mut d = Map::new();
    d.insert("name".into(), hw.name.into());
    d.insert("hosts".into(), json!([host]));
    d.insert("links".into(), link_pair(&ctx.base, hw.name));
    if ctx.version.at_least(f::STATES_LINKS) {
        d.insert(
            "properties".into(),
            link_pair(&ctx.base, &format!("{}/properties", hw.name)),
        );
    }
    if ctx.version.at_least(f::DYNAMIC_DRIVERS) {
        d.insert("type".into(), "dynamic".into());
        if detail {
            let reg = st.conductor().registry();
            for &t in InterfaceType::ALL {
                let hidden = match t {
                    InterfaceType::Storage => !ctx.version.at_least(33),
                    InterfaceType::Rescue => !ctx.version.at_least(f::RESCUE),
                    InterfaceType::Bios => !ctx.version.at_least(f::BIOS),
                    InterfaceType::Firmware => !ctx.version.at_least(f::FIRMWARE),
                    _ => false,
                };
                if hidden {
                    continue;
                }
                let enabled = reg.enabled_for(hw, t);
                d.insert(
                    format!("default_{}_interface", t.as_str()),
                    enabled
                        .first()
                        .map(|s| Value::from(*s))
                        .unwrap_or(Value::Null),
                );
                d.insert(format!("enabled_{}_interfaces", t.as_str()), json!(enabled));
            }
        }
    }
    d
}

fn select(mut d: Map<String, Value>, fields: Option<&[String]>) -> ApiResult<Value> {
    if let Some(fl) = fields {
        for k in fl {
            if !d.contains_key(k) {
                return Err(ApiError::bad_request(format!(
                    "Field {k} is not a valid field."
                )));
            }
        }
        d.retain(|k, _| k == "links" || fl.contains(k));
    }
    Ok(Value::Object(d))
}

async fn list(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let detail = match p.bool("detail")? {
        Some(d) => {
            ctx.require(f::DYNAMIC_DRIVERS)?;
            d
        }
        None => false,
    };
    let fields = p.list("fields");
    if fields.is_some() {
        ctx.require(f::DRIVER_FIELDS)?;
        if detail {
            return Err(ApiError::bad_request(
                "Can not specify ?detail=True and fields in the same request.",
            ));
        }
    }
    let kind = p.get("type");
    if kind.is_some() {
        ctx.require(f::DYNAMIC_DRIVERS)?;
    }
    let mut out = Vec::new();
    match kind {
        None | Some("dynamic") => {
            for hw in st.conductor().registry().hardware_types() {
                out.push(select(
                    driver_doc(&st, &ctx, &hw, detail),
                    fields.as_deref(),
                )?);
            }
        }
        Some("classic") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid type {other:?}: expected classic or dynamic"
            )));
        }
    }
    ok_value(&json!({ "drivers": out }))
}

fn hardware_type(st: &ApiState, name: &str) -> ApiResult<HardwareType> {
    st.conductor().registry().hardware_type(name).map_err(|_| {
        ApiError::not_found(format!(
            "Could not find the following driver(s) or hardware type(s): {name}."
        ))
    })
}

async fn show(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let fields = p.list("fields");
    if fields.is_some() {
        ctx.require(f::DRIVER_FIELDS)?;
    }
    let hw = hardware_type(&st, &name)?;
    ok_value(&select(
        driver_doc(&st, &ctx, &hw, true),
        fields.as_deref(),
    )?)
}

async fn properties(State(st): State<ApiState>, Path(name): Path<String>) -> ApiResult<Response> {
    let hw = hardware_type(&st, &name)?;
    ok_value(&st.conductor().registry().properties(&hw))
}

async fn raid_properties(
    State(st): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let hw = hardware_type(&st, &name)?;
    // The RAID interface a node of this hardware type gets by default.
    let reg = st.conductor().registry();
    let mut probe = ironic_core::Node::new(hw.name);
    let driver = reg
        .resolve_interfaces(&mut probe)
        .and_then(|()| reg.driver_for(&probe))
        .map_err(|e| {
            ApiError::not_found(format!(
                "Driver {name} does not support raid (disabled or not implemented): {e}"
            ))
        })?;
    let props: Map<String, Value> = driver
        .raid
        .logical_disk_properties()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::from(v)))
        .collect();
    ok_value(&props)
}

async fn vendor_methods(
    State(st): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    hardware_type(&st, &name)?;
    ok_value(&json!({}))
}
