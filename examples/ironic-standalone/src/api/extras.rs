//! Resources the core store has no table for, kept by the API layer: volume
//! connectors and targets (1.32) and runbooks (1.92). Stored as one JSON document
//! (`<data_dir>/api-resources.json`, written atomically on every change) or in
//! memory.

use std::path::PathBuf;
use std::sync::Mutex;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use ironic_core::Node;
use ironic_core::ids::{Ident, validate_name};
use ironic_core::model::{JsonMap, validate_trait};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult};
use super::json::iso;
use super::query::{ListArgs, Params, next_link};
use super::version::feature as f;
use super::{ApiState, ReqCtx, created, no_content, ok_value, parse_object, patch};

/// The kinds kept here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Connector,
    Target,
    Runbook,
}

impl Kind {
    fn collection(self) -> &'static str {
        match self {
            Kind::Connector => "volume/connectors",
            Kind::Target => "volume/targets",
            Kind::Runbook => "runbooks",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Kind::Connector => "connectors",
            Kind::Target => "targets",
            Kind::Runbook => "runbooks",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Kind::Connector => "Volume connector",
            Kind::Target => "Volume target",
            Kind::Runbook => "Runbook",
        }
    }
    fn since(self) -> u32 {
        match self {
            Kind::Connector | Kind::Target => f::VOLUME,
            Kind::Runbook => f::RUNBOOKS,
        }
    }
    /// Fields in order (after uuid, created_at, updated_at).
    fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Connector => &["node_uuid", "type", "connector_id", "extra"],
            Kind::Target => &[
                "node_uuid",
                "volume_type",
                "properties",
                "boot_index",
                "volume_id",
                "extra",
            ],
            Kind::Runbook => &[
                "name",
                "steps",
                "disable_ramdisk",
                "public",
                "owner",
                "extra",
            ],
        }
    }
    fn list_fields(self) -> &'static [&'static str] {
        match self {
            Kind::Connector => &["uuid", "node_uuid", "type", "connector_id"],
            Kind::Target => &[
                "uuid",
                "node_uuid",
                "volume_type",
                "boot_index",
                "volume_id",
            ],
            Kind::Runbook => &["uuid", "name"],
        }
    }
    fn patchable(self) -> &'static [&'static str] {
        match self {
            Kind::Connector => &["node_uuid", "type", "connector_id", "extra"],
            Kind::Target => &[
                "node_uuid",
                "volume_type",
                "properties",
                "boot_index",
                "volume_id",
                "extra",
            ],
            Kind::Runbook => &[
                "name",
                "steps",
                "disable_ramdisk",
                "public",
                "owner",
                "extra",
            ],
        }
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Doc {
    #[serde(default)]
    connectors: Vec<Map<String, Value>>,
    #[serde(default)]
    targets: Vec<Map<String, Value>>,
    #[serde(default)]
    runbooks: Vec<Map<String, Value>>,
}

impl Doc {
    fn items(&mut self, k: Kind) -> &mut Vec<Map<String, Value>> {
        match k {
            Kind::Connector => &mut self.connectors,
            Kind::Target => &mut self.targets,
            Kind::Runbook => &mut self.runbooks,
        }
    }
}

/// The store of these resources.
pub(super) struct ExtraStore {
    path: Option<PathBuf>,
    doc: Mutex<Doc>,
}

impl ExtraStore {
    /// Open (or start) the document at `path`; `None` keeps it in memory.
    pub(super) fn open(path: Option<PathBuf>) -> Result<Self, String> {
        let doc = match &path {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                serde_json::from_str(&text).map_err(|e| format!("invalid {}: {e}", p.display()))?
            }
            _ => Doc::default(),
        };
        Ok(ExtraStore {
            path,
            doc: Mutex::new(doc),
        })
    }

    fn save(&self, doc: &Doc) -> ApiResult<()> {
        let Some(p) = &self.path else {
            return Ok(());
        };
        let text = serde_json::to_vec_pretty(doc).map_err(ApiError::internal)?;
        let tmp = p.with_extension("json.tmp");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, p))
            .map_err(|e| ApiError::internal(format!("cannot write {}: {e}", p.display())))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Doc) -> ApiResult<(T, bool)>) -> ApiResult<T> {
        let mut doc = self
            .doc
            .lock()
            .map_err(|_| ApiError::internal("extra store poisoned"))?;
        let (out, changed) = f(&mut doc)?;
        if changed {
            self.save(&doc)?;
        }
        Ok(out)
    }

    /// The steps of a runbook for a provision request on `node` (runbook names
    /// are traits the node must have, as before 1.112), and its `disable_ramdisk`.
    pub(super) fn runbook_steps(
        &self,
        ident: &str,
        node: &Node,
    ) -> ApiResult<(Vec<Value>, Option<bool>)> {
        self.with(|d| {
            let rb = find(d.items(Kind::Runbook), ident).ok_or_else(|| {
                ApiError::not_found(format!("Runbook {ident} could not be found."))
            })?;
            let name = rb.get("name").and_then(Value::as_str).unwrap_or("");
            if !node.traits.iter().any(|t| t == name) {
                return Err(ApiError::bad_request(format!(
                    "This runbook is not applicable to node {}: the node lacks the trait {name}",
                    node.uuid
                )));
            }
            let mut steps: Vec<Value> = rb
                .get("steps")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            steps.sort_by_key(|s| s.get("order").and_then(Value::as_u64).unwrap_or(0));
            for s in &mut steps {
                if let Value::Object(m) = s {
                    m.remove("order");
                }
            }
            let dr = rb.get("disable_ramdisk").and_then(Value::as_bool);
            Ok(((steps, dr), false))
        })
    }
}

fn find<'a>(items: &'a [Map<String, Value>], ident: &str) -> Option<&'a Map<String, Value>> {
    items.iter().find(|i| {
        i.get("uuid").and_then(Value::as_str) == Some(ident)
            || i.get("name").and_then(Value::as_str) == Some(ident)
    })
}

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/volume", get(volume_root))
        .route(
            "/v1/volume/connectors",
            get(list_connectors).post(create_connector),
        )
        .route(
            "/v1/volume/connectors/{id}",
            get(show_connector)
                .patch(update_connector)
                .delete(delete_connector),
        )
        .route("/v1/volume/targets", get(list_targets).post(create_target))
        .route(
            "/v1/volume/targets/{id}",
            get(show_target).patch(update_target).delete(delete_target),
        )
        .route("/v1/nodes/{node}/volume", get(node_volume))
        .route("/v1/nodes/{node}/volume/connectors", get(node_connectors))
        .route("/v1/nodes/{node}/volume/targets", get(node_targets))
        .route("/v1/runbooks", get(list_runbooks).post(create_runbook))
        .route(
            "/v1/runbooks/{id}",
            get(show_runbook)
                .patch(update_runbook)
                .delete(delete_runbook),
        )
}

fn link_pair(base: &str, path: &str) -> Value {
    json!([
        {"href": format!("{base}/v1/{path}"), "rel": "self"},
        {"href": format!("{base}/{path}"), "rel": "bookmark"},
    ])
}

fn render(ctx: &ReqCtx, k: Kind, item: &Map<String, Value>, fields: Option<&[String]>) -> Value {
    let mut out = Map::new();
    let uuid = item
        .get("uuid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let all: Vec<&str> = ["uuid", "created_at", "updated_at"]
        .into_iter()
        .chain(k.fields().iter().copied())
        .collect();
    for name in all {
        if fields.is_none_or(|fl| fl.iter().any(|x| x == name)) {
            out.insert(name.into(), item.get(name).cloned().unwrap_or(Value::Null));
        }
    }
    out.insert(
        "links".into(),
        link_pair(&ctx.base, &format!("{}/{uuid}", k.collection())),
    );
    Value::Object(out)
}

fn check_fields(k: Kind, fields: &[String]) -> ApiResult<()> {
    for fl in fields {
        if !(fl == "uuid"
            || fl == "created_at"
            || fl == "updated_at"
            || k.fields().contains(&fl.as_str()))
        {
            return Err(ApiError::bad_request(format!(
                "Field {fl} is not a valid field."
            )));
        }
    }
    Ok(())
}

async fn list(
    st: &ApiState,
    ctx: &ReqCtx,
    k: Kind,
    raw: Option<&str>,
    node: Option<String>,
) -> ApiResult<Response> {
    ctx.exists_since(k.since())?;
    let p = Params::parse(raw);
    let args = ListArgs::parse(&p, ctx.version, st.settings().max_limit, false)?;
    if let Some(fl) = &args.fields {
        check_fields(k, fl)?;
    }
    let node = match node.or_else(|| p.get("node").map(str::to_owned)) {
        Some(n) => Some(
            st.conductor()
                .get_node(&Ident::parse(&n))
                .await?
                .uuid
                .to_string(),
        ),
        None => None,
    };
    let mut items = st.extras().with(|d| Ok((d.items(k).clone(), false)))?;
    if let Some(n) = &node {
        items.retain(|i| i.get("node_uuid").and_then(Value::as_str) == Some(n));
    }
    if args.sort_dir == ironic_core::store::SortDir::Desc {
        items.reverse();
    }
    if let Some(m) = args.marker {
        let m = m.to_string();
        match items
            .iter()
            .position(|i| i.get("uuid").and_then(Value::as_str) == Some(&m))
        {
            Some(i) => {
                items.drain(..=i);
            }
            None => {
                return Err(ApiError::not_found(format!(
                    "{} {m} could not be found.",
                    k.title()
                )));
            }
        }
    }
    items.truncate(args.limit);
    let default: Vec<String> = k.list_fields().iter().map(|s| s.to_string()).collect();
    let fields = match (&args.fields, args.detail) {
        (Some(f), _) => Some(f.as_slice()),
        (None, true) => None,
        (None, false) => Some(default.as_slice()),
    };
    let rendered: Vec<Value> = items.iter().map(|i| render(ctx, k, i, fields)).collect();
    let mut out = Map::new();
    out.insert(k.key().into(), Value::Array(rendered));
    if let Some(n) = next_link(
        &ctx.base,
        k.collection(),
        &p,
        &args,
        items.len(),
        items
            .last()
            .and_then(|i| i.get("uuid").and_then(Value::as_str))
            .map(str::to_owned),
        None,
    ) {
        out.insert("next".into(), n.into());
    }
    ok_value(&Value::Object(out))
}

async fn show(
    st: &ApiState,
    ctx: &ReqCtx,
    k: Kind,
    id: &str,
    raw: Option<&str>,
) -> ApiResult<Response> {
    ctx.exists_since(k.since())?;
    let p = Params::parse(raw);
    let fields = p.list("fields");
    if let Some(fl) = &fields {
        check_fields(k, fl)?;
    }
    let item = st.extras().with(|d| {
        Ok((
            find(d.items(k), id).cloned().ok_or_else(|| {
                ApiError::not_found(format!("{} {id} could not be found.", k.title()))
            })?,
            false,
        ))
    })?;
    ok_value(&render(ctx, k, &item, fields.as_deref()))
}

fn opt_str(k: &str, v: &Value) -> ApiResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(ApiError::bad_request(format!(
            "Invalid {k}: {other} is not a string"
        ))),
    }
}

/// Validate and normalise an item of `k` (all fields present after this).
async fn validate(st: &ApiState, k: Kind, item: &mut Map<String, Value>) -> ApiResult<()> {
    for key in item.keys() {
        if !(key == "uuid"
            || key == "created_at"
            || key == "updated_at"
            || k.fields().contains(&key.as_str()))
        {
            return Err(ApiError::bad_request(format!(
                "Additional properties are not allowed ('{key}' was unexpected)"
            )));
        }
    }
    if !matches!(item.get("extra"), Some(Value::Object(_))) {
        if item.get("extra").is_some_and(|v| !v.is_null()) {
            return Err(ApiError::bad_request("Invalid extra: not an object"));
        }
        item.insert("extra".into(), json!({}));
    }
    match k {
        Kind::Connector | Kind::Target => {
            let node = opt_str("node_uuid", item.get("node_uuid").unwrap_or(&Value::Null))?
                .ok_or_else(|| ApiError::bad_request("'node_uuid' is a required property"))?;
            let n = st
                .conductor()
                .get_node(&Ident::parse(&node))
                .await
                .map_err(|e| match e {
                    ironic_core::Error::NotFound { .. } => {
                        ApiError::bad_request(format!("Node {node} could not be found."))
                    }
                    other => other.into(),
                })?;
            item.insert("node_uuid".into(), n.uuid.to_string().into());
        }
        Kind::Runbook => {}
    }
    match k {
        Kind::Connector => {
            let t = opt_str("type", item.get("type").unwrap_or(&Value::Null))?
                .ok_or_else(|| ApiError::bad_request("'type' is a required property"))?;
            if !matches!(
                t.as_str(),
                "iqn" | "ip" | "mac" | "wwnn" | "wwpn" | "port" | "portgroup"
            ) {
                return Err(ApiError::bad_request(format!(
                    "Invalid connector type {t:?}: expected one of iqn, ip, mac, wwnn, wwpn, port, portgroup"
                )));
            }
            opt_str(
                "connector_id",
                item.get("connector_id").unwrap_or(&Value::Null),
            )?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::bad_request("'connector_id' is a required property"))?;
        }
        Kind::Target => {
            opt_str(
                "volume_type",
                item.get("volume_type").unwrap_or(&Value::Null),
            )?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::bad_request("'volume_type' is a required property"))?;
            opt_str("volume_id", item.get("volume_id").unwrap_or(&Value::Null))?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ApiError::bad_request("'volume_id' is a required property"))?;
            match item.get("boot_index") {
                Some(Value::Number(n)) if n.as_u64().is_some() => {}
                _ => {
                    return Err(ApiError::bad_request(
                        "'boot_index' is a required non-negative integer",
                    ));
                }
            }
            match item.get("properties") {
                None | Some(Value::Null) => {
                    item.insert("properties".into(), json!({}));
                }
                Some(Value::Object(_)) => {}
                Some(_) => return Err(ApiError::bad_request("Invalid properties: not an object")),
            }
        }
        Kind::Runbook => {
            let name = opt_str("name", item.get("name").unwrap_or(&Value::Null))?
                .ok_or_else(|| ApiError::bad_request("'name' is a required property"))?;
            validate_trait(&name).map_err(ApiError::bad_request)?;
            let Some(Value::Array(steps)) = item.get("steps") else {
                return Err(ApiError::bad_request("'steps' is a required list"));
            };
            for s in steps {
                let Value::Object(m) = s else {
                    return Err(ApiError::bad_request(format!(
                        "Invalid step {s}: not an object"
                    )));
                };
                for key in m.keys() {
                    if !matches!(key.as_str(), "interface" | "step" | "args" | "order") {
                        return Err(ApiError::bad_request(format!(
                            "Invalid step: Additional properties are not allowed ('{key}' was unexpected)"
                        )));
                    }
                }
                let iface = m.get("interface").and_then(Value::as_str).unwrap_or("");
                if iface.parse::<ironic_core::model::InterfaceType>().is_err() {
                    return Err(ApiError::bad_request(format!(
                        "Invalid step interface {iface:?}"
                    )));
                }
                if m.get("step")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(ApiError::bad_request("Invalid step: 'step' is required"));
                }
                if m.get("args").is_some_and(|a| !a.is_object()) {
                    return Err(ApiError::bad_request(
                        "Invalid step: 'args' must be an object",
                    ));
                }
                if m.get("order").and_then(Value::as_u64).is_none() {
                    return Err(ApiError::bad_request(
                        "Invalid step: 'order' is a required non-negative integer",
                    ));
                }
            }
            for (key, default) in [("disable_ramdisk", false), ("public", false)] {
                match item.get(key) {
                    None | Some(Value::Null) => {
                        item.insert(key.into(), default.into());
                    }
                    Some(Value::Bool(_)) => {}
                    Some(_) => {
                        return Err(ApiError::bad_request(format!(
                            "Invalid {key}: not a boolean"
                        )));
                    }
                }
            }
            if !item.contains_key("owner") {
                item.insert("owner".into(), Value::Null);
            }
            opt_str("owner", &item["owner"])?;
        }
    }
    for name in k.fields() {
        item.entry(name.to_string()).or_insert(Value::Null);
    }
    Ok(())
}

fn check_unique(k: Kind, items: &[Map<String, Value>], item: &Map<String, Value>) -> ApiResult<()> {
    let uuid = item.get("uuid");
    for other in items.iter().filter(|o| o.get("uuid") != uuid) {
        let clash = match k {
            Kind::Connector => {
                other.get("type") == item.get("type")
                    && other.get("connector_id") == item.get("connector_id")
            }
            Kind::Target => {
                other.get("node_uuid") == item.get("node_uuid")
                    && other.get("boot_index") == item.get("boot_index")
            }
            Kind::Runbook => other.get("name") == item.get("name"),
        };
        if clash {
            return Err(ApiError::conflict(match k {
                Kind::Connector => format!(
                    "A volume connector with type {} and connector ID {} already exists.",
                    item["type"], item["connector_id"]
                ),
                Kind::Target => format!(
                    "A volume target with boot index '{}' for the same node already exists.",
                    item["boot_index"]
                ),
                Kind::Runbook => format!("A runbook with name {} already exists.", item["name"]),
            }));
        }
    }
    Ok(())
}

async fn create(st: &ApiState, ctx: &ReqCtx, k: Kind, body: &[u8]) -> ApiResult<Response> {
    ctx.exists_since(k.since())?;
    let mut item = parse_object(body)?;
    let uuid = match item.get("uuid") {
        None | Some(Value::Null) => uuid::Uuid::new_v4(),
        Some(Value::String(s)) => uuid::Uuid::parse_str(s).map_err(|_| {
            ApiError::bad_request(format!("Expected a UUID for uuid but received {s}."))
        })?,
        Some(_) => return Err(ApiError::bad_request("Invalid uuid: not a string")),
    };
    if item.contains_key("created_at") || item.contains_key("updated_at") {
        return Err(ApiError::bad_request(
            "created_at and updated_at are read-only",
        ));
    }
    item.insert("uuid".into(), uuid.to_string().into());
    validate(st, k, &mut item).await?;
    item.insert("created_at".into(), iso(&ironic_core::model::now()).into());
    item.insert("updated_at".into(), Value::Null);
    let stored = item.clone();
    st.extras().with(|d| {
        let items = d.items(k);
        if items.iter().any(|i| i.get("uuid") == stored.get("uuid")) {
            return Err(ApiError::conflict(format!(
                "{} with UUID {uuid} already exists.",
                k.title()
            )));
        }
        check_unique(k, items, &stored)?;
        items.push(stored);
        Ok(((), true))
    })?;
    let body = serde_json::to_vec(&render(ctx, k, &item, None)).map_err(ApiError::internal)?;
    Ok(created(
        &format!("{}/v1/{}/{uuid}", ctx.base, k.collection()),
        body,
    ))
}

async fn update(
    st: &ApiState,
    ctx: &ReqCtx,
    k: Kind,
    id: &str,
    body: &[u8],
) -> ApiResult<Response> {
    ctx.exists_since(k.since())?;
    let ops = patch::parse(body)?;
    patch::check_allowed(&ops, k.patchable())?;
    let current = st.extras().with(|d| {
        Ok((
            find(d.items(k), id).cloned().ok_or_else(|| {
                ApiError::not_found(format!("{} {id} could not be found.", k.title()))
            })?,
            false,
        ))
    })?;
    let mut doc = Value::Object(current.clone());
    patch::apply(&mut doc, &ops)?;
    let Value::Object(mut item) = doc else {
        return Err(ApiError::internal("patched document is not an object"));
    };
    validate(st, k, &mut item).await?;
    item.insert("updated_at".into(), iso(&ironic_core::model::now()).into());
    let stored = item.clone();
    st.extras().with(|d| {
        let items = d.items(k);
        check_unique(k, items, &stored)?;
        let slot = items
            .iter_mut()
            .find(|i| i.get("uuid") == stored.get("uuid"))
            .ok_or_else(|| {
                ApiError::not_found(format!("{} {id} could not be found.", k.title()))
            })?;
        *slot = stored;
        Ok(((), true))
    })?;
    ok_value(&render(ctx, k, &item, None))
}

async fn delete(st: &ApiState, ctx: &ReqCtx, k: Kind, id: &str) -> ApiResult<Response> {
    ctx.exists_since(k.since())?;
    st.extras().with(|d| {
        let items = d.items(k);
        let before = items.len();
        items.retain(|i| {
            i.get("uuid").and_then(Value::as_str) != Some(id)
                && i.get("name").and_then(Value::as_str) != Some(id)
        });
        if items.len() == before {
            return Err(ApiError::not_found(format!(
                "{} {id} could not be found.",
                k.title()
            )));
        }
        Ok(((), true))
    })?;
    Ok(no_content())
}

async fn volume_root(ctx: ReqCtx) -> ApiResult<Response> {
    ctx.exists_since(f::VOLUME)?;
    ok_value(&json!({
        "links": link_pair(&ctx.base, "volume/"),
        "connectors": link_pair(&ctx.base, "volume/connectors"),
        "targets": link_pair(&ctx.base, "volume/targets"),
    }))
}

async fn node_volume(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(node): Path<String>,
) -> ApiResult<Response> {
    ctx.exists_since(f::VOLUME)?;
    let n = st.conductor().get_node(&Ident::parse(&node)).await?;
    let base = format!("nodes/{}/volume", n.uuid);
    ok_value(&json!({
        "links": link_pair(&ctx.base, &format!("{base}/")),
        "connectors": link_pair(&ctx.base, &format!("{base}/connectors")),
        "targets": link_pair(&ctx.base, &format!("{base}/targets")),
    }))
}

macro_rules! handlers {
    ($kind:expr, $list:ident, $create:ident, $show:ident, $update:ident, $delete:ident) => {
        async fn $list(
            State(st): State<ApiState>,
            ctx: ReqCtx,
            RawQuery(q): RawQuery,
        ) -> ApiResult<Response> {
            list(&st, &ctx, $kind, q.as_deref(), None).await
        }
        async fn $create(
            State(st): State<ApiState>,
            ctx: ReqCtx,
            body: Bytes,
        ) -> ApiResult<Response> {
            create(&st, &ctx, $kind, &body).await
        }
        async fn $show(
            State(st): State<ApiState>,
            ctx: ReqCtx,
            Path(id): Path<String>,
            RawQuery(q): RawQuery,
        ) -> ApiResult<Response> {
            show(&st, &ctx, $kind, &id, q.as_deref()).await
        }
        async fn $update(
            State(st): State<ApiState>,
            ctx: ReqCtx,
            Path(id): Path<String>,
            body: Bytes,
        ) -> ApiResult<Response> {
            update(&st, &ctx, $kind, &id, &body).await
        }
        async fn $delete(
            State(st): State<ApiState>,
            ctx: ReqCtx,
            Path(id): Path<String>,
        ) -> ApiResult<Response> {
            delete(&st, &ctx, $kind, &id).await
        }
    };
}

handlers!(
    Kind::Connector,
    list_connectors,
    create_connector,
    show_connector,
    update_connector,
    delete_connector
);
handlers!(
    Kind::Target,
    list_targets,
    create_target,
    show_target,
    update_target,
    delete_target
);
handlers!(
    Kind::Runbook,
    list_runbooks,
    create_runbook,
    show_runbook,
    update_runbook,
    delete_runbook
);

async fn node_connectors(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list(&st, &ctx, Kind::Connector, q.as_deref(), Some(node)).await
}

async fn node_targets(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path(node): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list(&st, &ctx, Kind::Target, q.as_deref(), Some(node)).await
}

#[allow(dead_code)]
fn _unused(_: JsonMap) {
    let _ = validate_name;
}
