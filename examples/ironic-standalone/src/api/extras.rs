//! Volume connectors and targets (1.32) and runbooks (1.92): the HTTP layer over
//! the conductor's methods for them (they live in the core store).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use ironic_core::Node;
use ironic_core::ids::{Ident, NodeId};
use ironic_core::model::{JsonMap, Runbook, VolumeConnector, VolumeTarget, validate_trait};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult};
use super::json::iso;
use super::query::{ListArgs, Params, next_link};
use super::routes::{Body, Gate, Route, delete, get, patch, post, put};
use super::version::{Version, feature as f};
use super::{ApiState, ReqCtx, created, no_content, ok_value, parse_object};

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
                "description",
                "traits",
            ],
        }
    }
    /// Fields the client's version knows (a runbook's `description` and
    /// `traits` are 1.112).
    fn fields_at(self, v: Version) -> Vec<&'static str> {
        self.fields()
            .iter()
            .copied()
            .filter(|f| {
                self != Kind::Runbook
                    || !matches!(*f, "description" | "traits")
                    || v.at_least(f::RUNBOOK_TRAITS)
            })
            .collect()
    }
    /// Fields a PATCH may change at version `v` (`description` from 1.112;
    /// runbook traits only through `/traits`).
    fn patchable_at(self, v: Version) -> Vec<&'static str> {
        let mut p: Vec<&str> = self.patchable().to_vec();
        if self == Kind::Runbook && v.at_least(f::RUNBOOK_TRAITS) {
            p.push("description");
        }
        p
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

/// One record of a kind kept here.
#[derive(Clone, Debug)]
enum Record {
    Connector(VolumeConnector),
    Target(VolumeTarget),
    Runbook(Runbook),
}

impl Record {
    fn uuid(&self) -> String {
        match self {
            Record::Connector(c) => c.uuid.to_string(),
            Record::Target(t) => t.uuid.to_string(),
            Record::Runbook(r) => r.uuid.to_string(),
        }
    }

    /// The API fields, `uuid` and the timestamps (Ironic's format), as one object.
    fn to_map(&self, k: Kind) -> Map<String, Value> {
        let (v, created, updated) = match self {
            Record::Connector(c) => (serde_json::to_value(c), c.created_at, c.updated_at),
            Record::Target(t) => (serde_json::to_value(t), t.created_at, t.updated_at),
            Record::Runbook(r) => (serde_json::to_value(r), r.created_at, r.updated_at),
        };
        let mut all = match v {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let mut out = Map::new();
        out.insert("uuid".into(), all.remove("uuid").unwrap_or(Value::Null));
        out.insert("created_at".into(), iso(&created).into());
        out.insert(
            "updated_at".into(),
            updated.as_ref().map(iso).map_or(Value::Null, Value::from),
        );
        for f in k.fields() {
            out.insert((*f).into(), all.remove(*f).unwrap_or(Value::Null));
        }
        out
    }

    /// A record of kind `k` from a validated object (every field present), keeping
    /// what the API does not show from `base`.
    fn from_map(k: Kind, item: &Map<String, Value>, base: Option<&Record>) -> ApiResult<Record> {
        let uuid = item
            .get("uuid")
            .and_then(Value::as_str)
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .unwrap_or_else(uuid::Uuid::new_v4);
        let s = |f: &str| item.get(f).and_then(Value::as_str).unwrap_or("").to_owned();
        let obj = |f: &str| match item.get(f) {
            Some(Value::Object(m)) => m.clone(),
            _ => JsonMap::new(),
        };
        let node = || -> ApiResult<NodeId> {
            s("node_uuid")
                .parse()
                .map_err(|_| ApiError::bad_request("Invalid node_uuid"))
        };
        let now = ironic_core::model::now();
        Ok(match k {
            Kind::Connector => Record::Connector(VolumeConnector {
                uuid: uuid.into(),
                node_uuid: node()?,
                connector_type: s("type"),
                connector_id: s("connector_id"),
                extra: obj("extra"),
                created_at: now,
                updated_at: None,
            }),
            Kind::Target => Record::Target(VolumeTarget {
                uuid: uuid.into(),
                node_uuid: node()?,
                volume_type: s("volume_type"),
                properties: obj("properties"),
                boot_index: item
                    .get("boot_index")
                    .and_then(Value::as_u64)
                    .and_then(|b| u32::try_from(b).ok())
                    .ok_or_else(|| ApiError::bad_request("Invalid boot_index: too large"))?,
                volume_id: s("volume_id"),
                extra: obj("extra"),
                created_at: now,
                updated_at: None,
            }),
            Kind::Runbook => {
                let steps = serde_json::from_value(item.get("steps").cloned().unwrap_or_default())
                    .map_err(|e| ApiError::bad_request(format!("Invalid steps: {e}")))?;
                let (description, traits) = match base {
                    Some(Record::Runbook(r)) => (r.description.clone(), r.traits.clone()),
                    _ => (None, Vec::new()),
                };
                // `description` is in the item only when the version knows it
                let description = match item.get("description") {
                    Some(Value::String(d)) => Some(d.clone()),
                    Some(Value::Null) => None,
                    _ => description,
                };
                Record::Runbook(Runbook {
                    uuid: uuid.into(),
                    name: s("name"),
                    description,
                    steps,
                    disable_ramdisk: item
                        .get("disable_ramdisk")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    public: item.get("public").and_then(Value::as_bool).unwrap_or(false),
                    owner: item.get("owner").and_then(Value::as_str).map(str::to_owned),
                    traits,
                    extra: obj("extra"),
                    created_at: now,
                    updated_at: None,
                })
            }
        })
    }
}

/// A UUID in a path, or 400 as Ironic answers.
fn uuid_arg(id: &str) -> ApiResult<uuid::Uuid> {
    uuid::Uuid::parse_str(id)
        .map_err(|_| ApiError::bad_request(format!("Expected a UUID but received {id}.")))
}

async fn fetch(st: &ApiState, k: Kind, id: &str) -> ApiResult<Record> {
    let c = st.conductor();
    Ok(match k {
        Kind::Connector => Record::Connector(c.get_volume_connector(uuid_arg(id)?.into()).await?),
        Kind::Target => Record::Target(c.get_volume_target(uuid_arg(id)?.into()).await?),
        Kind::Runbook => Record::Runbook(c.get_runbook(&Ident::parse(id)).await?),
    })
}

async fn fetch_all(st: &ApiState, k: Kind, node: Option<&Ident>) -> ApiResult<Vec<Record>> {
    let c = st.conductor();
    Ok(match k {
        Kind::Connector => c
            .list_volume_connectors(node)
            .await?
            .into_iter()
            .map(Record::Connector)
            .collect(),
        Kind::Target => c
            .list_volume_targets(node)
            .await?
            .into_iter()
            .map(Record::Target)
            .collect(),
        Kind::Runbook => c
            .list_runbooks()
            .await?
            .into_iter()
            .map(Record::Runbook)
            .collect(),
    })
}

/// Ironic's rule for using a runbook on a node: from API 1.112 the node must have
/// one of the runbook's traits; before, the runbook's name must be one of the
/// node's traits. Returns the steps in order and the runbook's `disable_ramdisk`.
pub(crate) async fn runbook_steps(
    st: &ApiState,
    version: Version,
    ident: &str,
    node: &Node,
) -> ApiResult<(Vec<Value>, Option<bool>)> {
    let rb = st.conductor().get_runbook(&Ident::parse(ident)).await?;
    if version.at_least(f::RUNBOOK_TRAITS) {
        if rb.traits.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Runbook {} has no traits configured. Please ask an administrator to add traits to the runbook.",
                rb.uuid
            )));
        }
        if !rb.traits.iter().any(|t| node.traits.contains(t)) {
            let mut traits = rb.traits.clone();
            traits.sort();
            let quoted: Vec<String> = traits.iter().map(|t| format!("'{t}'")).collect();
            return Err(ApiError::bad_request(format!(
                "This runbook has not been approved for use on this node {}. The node does not have any of the runbook's traits [{}]. Please ask an administrator to add a matching trait to your node.",
                node.uuid,
                quoted.join(", ")
            )));
        }
    } else if !node.traits.contains(&rb.name) {
        return Err(ApiError::bad_request(format!(
            "This runbook has not been approved for use on this node {}. Please ask an administrator to add it to your node traits.",
            node.uuid
        )));
    }
    Ok((rb.ordered_steps(), Some(rb.disable_ramdisk)))
}

/// Ironic's 1.112 runbook name: 1-255 RFC 3986 unreserved characters.
fn check_runbook_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Schema error: '{name}' does not match '^[A-Za-z0-9\\-._~]+$'"
        )))
    }
}

/// Bring the records of the JSON file the API layer kept before they moved into
/// the store (`<data_dir>/api-resources.json`) into `store`, keeping their UUIDs
/// and timestamps, then rename the file `api-resources.json.imported`. Records
/// already in the store are skipped, so an interrupted import can run again;
/// records that cannot be imported (their node is gone) are logged and left in the
/// renamed file.
pub async fn import_legacy_file(
    store: &dyn ironic_core::store::Store,
    path: &std::path::Path,
) -> Result<usize, String> {
    #[derive(Default, Deserialize)]
    struct Doc {
        #[serde(default)]
        connectors: Vec<Map<String, Value>>,
        #[serde(default)]
        targets: Vec<Map<String, Value>>,
        #[serde(default)]
        runbooks: Vec<Map<String, Value>>,
    }
    if !path.exists() {
        return Ok(0);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc: Doc =
        serde_json::from_str(&text).map_err(|e| format!("invalid {}: {e}", path.display()))?;
    let mut imported = 0;
    for (k, items) in [
        (Kind::Connector, doc.connectors),
        (Kind::Target, doc.targets),
        (Kind::Runbook, doc.runbooks),
    ] {
        for item in items {
            let time = |f: &str| {
                item.get(f)
                    .and_then(Value::as_str)
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| t.with_timezone(&chrono::Utc))
            };
            let (created, updated) = (time("created_at"), time("updated_at"));
            let r = match Record::from_map(k, &item, None) {
                Ok(Record::Connector(mut c)) => {
                    c.created_at = created.unwrap_or(c.created_at);
                    c.updated_at = updated;
                    store.create_volume_connector(&c).await
                }
                Ok(Record::Target(mut t)) => {
                    t.created_at = created.unwrap_or(t.created_at);
                    t.updated_at = updated;
                    store.create_volume_target(&t).await
                }
                Ok(Record::Runbook(mut r)) => {
                    r.created_at = created.unwrap_or(r.created_at);
                    r.updated_at = updated;
                    store.create_runbook(&r).await
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), kind = k.title(), error = ?e, "cannot import a record");
                    continue;
                }
            };
            match r {
                Ok(()) => imported += 1,
                Err(ironic_core::store::StoreError::Duplicate(_)) => {}
                Err(e) => {
                    tracing::warn!(file = %path.display(), kind = k.title(), error = %e, "cannot import a record")
                }
            }
        }
    }
    let done = path.with_extension("json.imported");
    std::fs::rename(path, &done)
        .map_err(|e| format!("cannot rename {} after importing it: {e}", path.display()))?;
    tracing::info!(records = imported, from = %path.display(), kept_as = %done.display(), "imported volume connectors, volume targets and runbooks into the store");
    Ok(imported)
}

pub(super) fn routes() -> Vec<Route> {
    let v = f::VOLUME;
    let rb = f::RUNBOOKS;
    let free = Body::Object;
    const RB: &str = "The API version does not allow runbooks";
    let (rb_read, rb_write) = (Gate::webob(404, RB), Gate::webob(405, RB));
    let rbt = Gate::webob(404, "The API version does not allow runbook traits");
    vec![
        get("/v1/volume", volume_root)
            .doc("Links to the volume resources")
            .since_or(v, Gate::UNSUPPORTED)
            .returns(free("{links, connectors, targets}")),
        get("/v1/volume/connectors", list_connectors)
            .doc("List volume connectors")
            .since(v)
            .returns(free("{connectors: [..], next?}")),
        post("/v1/volume/connectors", create_connector)
            .doc("Create a volume connector")
            .since(v)
            .takes(free("{node_uuid, type, connector_id, extra?, uuid?}"))
            .returns(free("volume connector")),
        get("/v1/volume/connectors/{id}", show_connector)
            .doc("Show a volume connector")
            .since(v)
            .returns(free("volume connector")),
        patch("/v1/volume/connectors/{id}", update_connector)
            .doc("Update a volume connector (JSON patch)")
            .since(v)
            .takes(Body::Patch)
            .returns(free("volume connector")),
        delete("/v1/volume/connectors/{id}", delete_connector)
            .doc("Delete a volume connector")
            .since(v),
        get("/v1/volume/targets", list_targets)
            .doc("List volume targets")
            .since(v)
            .returns(free("{targets: [..], next?}")),
        post("/v1/volume/targets", create_target)
            .doc("Create a volume target")
            .since(v)
            .takes(free(
                "{node_uuid, volume_type, volume_id, boot_index, properties?, extra?, uuid?}",
            ))
            .returns(free("volume target")),
        get("/v1/volume/targets/{id}", show_target)
            .doc("Show a volume target")
            .since(v)
            .returns(free("volume target")),
        patch("/v1/volume/targets/{id}", update_target)
            .doc("Update a volume target (JSON patch)")
            .since(v)
            .takes(Body::Patch)
            .returns(free("volume target")),
        delete("/v1/volume/targets/{id}", delete_target)
            .doc("Delete a volume target")
            .since(v),
        get("/v1/nodes/{node}/volume", node_volume)
            .doc("Links to the node's volume resources")
            .since_or(v, Gate::UNSUPPORTED)
            .returns(free("{links, connectors, targets}")),
        get("/v1/nodes/{node}/volume/connectors", node_connectors)
            .doc("Volume connectors of a node")
            .since(v)
            .returns(free("{connectors: [..], next?}")),
        get("/v1/nodes/{node}/volume/targets", node_targets)
            .doc("Volume targets of a node")
            .since(v)
            .returns(free("{targets: [..], next?}")),
        get("/v1/runbooks", list_runbooks)
            .doc("List runbooks")
            .since_or(rb, rb_read)
            .returns(free("{runbooks: [..], next?}")),
        post("/v1/runbooks", create_runbook)
            .doc("Create a runbook")
            .since_or(rb, rb_write)
            .takes(free(
                "{name, steps, disable_ramdisk?, public?, owner?, extra?, uuid?}",
            ))
            .returns(free("runbook")),
        get("/v1/runbooks/{id}", show_runbook)
            .doc("Show a runbook")
            .since_or(rb, rb_read)
            .returns(free("runbook")),
        patch("/v1/runbooks/{id}", update_runbook)
            .doc("Update a runbook (JSON patch)")
            .since_or(rb, rb_write)
            .takes(Body::Patch)
            .returns(free("runbook")),
        delete("/v1/runbooks/{id}", delete_runbook)
            .doc("Delete a runbook")
            .since_or(rb, rb_write),
        get("/v1/runbooks/{id}/traits", runbook_traits)
            .doc("The traits of a runbook (the node traits that approve it)")
            .since_or(f::RUNBOOK_TRAITS, rbt)
            .returns(free("{traits: [..]}")),
        put("/v1/runbooks/{id}/traits", replace_runbook_traits)
            .doc("Replace the traits of a runbook")
            .since_or(f::RUNBOOK_TRAITS, rbt)
            .takes(free("{traits: [..]}")),
        delete("/v1/runbooks/{id}/traits", clear_runbook_traits)
            .doc("Remove every trait of a runbook")
            .since_or(f::RUNBOOK_TRAITS, rbt),
        put("/v1/runbooks/{id}/traits/{trait}", add_runbook_trait)
            .doc("Add a trait to a runbook")
            .since_or(f::RUNBOOK_TRAITS, rbt),
        delete("/v1/runbooks/{id}/traits/{trait}", remove_runbook_trait)
            .doc("Remove a trait from a runbook (no error when absent)")
            .since_or(f::RUNBOOK_TRAITS, rbt),
    ]
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
        .chain(k.fields_at(ctx.version))
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

fn check_fields(k: Kind, v: Version, fields: &[String]) -> ApiResult<()> {
    for fl in fields {
        if !(fl == "uuid"
            || fl == "created_at"
            || fl == "updated_at"
            || k.fields_at(v).contains(&fl.as_str()))
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
    let p = Params::parse(raw);
    let args = ListArgs::parse(&p, ctx.version, st.settings().max_limit, false)?;
    if let Some(fl) = &args.fields {
        check_fields(k, ctx.version, fl)?;
    }
    let node = node
        .or_else(|| p.get("node").map(str::to_owned))
        .map(|n| Ident::parse(&n));
    let mut items: Vec<Map<String, Value>> = fetch_all(st, k, node.as_ref())
        .await?
        .iter()
        .map(|r| r.to_map(k))
        .collect();
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
    let p = Params::parse(raw);
    let fields = p.list("fields");
    if let Some(fl) = &fields {
        check_fields(k, ctx.version, fl)?;
    }
    let item = fetch(st, k, id).await?.to_map(k);
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
///
/// A PATCH checks a runbook name with 1.112's rule at every version (as Ironic:
/// a name created at 1.112 stays patchable by older clients); a POST below 1.112
/// needs a trait name.
async fn validate(
    st: &ApiState,
    ctx: &ReqCtx,
    k: Kind,
    item: &mut Map<String, Value>,
    patching: bool,
) -> ApiResult<()> {
    for key in item.keys() {
        // runbook traits are changed through /v1/runbooks/{id}/traits only
        let writable = k.fields_at(ctx.version).contains(&key.as_str())
            && !(k == Kind::Runbook && key == "traits");
        if !(key == "uuid" || key == "created_at" || key == "updated_at" || writable) {
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
            if patching || ctx.version.at_least(f::RUNBOOK_TRAITS) {
                // 1.112: any name that can be used in a URL path
                check_runbook_name(&name)?;
                if let Some(d) = item.get("description") {
                    match d {
                        Value::Null => {}
                        Value::String(s) if s.chars().count() <= 255 => {}
                        Value::String(_) => {
                            return Err(ApiError::bad_request(
                                "Invalid description: longer than 255 characters",
                            ));
                        }
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "Invalid description: {other} is not a string"
                            )));
                        }
                    }
                }
            } else {
                validate_trait(&name).map_err(ApiError::bad_request)?;
            }
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
        // a runbook's description and traits left out are kept (see from_map)
        if !(k == Kind::Runbook && matches!(*name, "description" | "traits")) {
            item.entry(name.to_string()).or_insert(Value::Null);
        }
    }
    Ok(())
}

async fn create(st: &ApiState, ctx: &ReqCtx, k: Kind, body: &[u8]) -> ApiResult<Response> {
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
    validate(st, ctx, k, &mut item, false).await?;
    let record = Record::from_map(k, &item, None)?;
    let c = st.conductor();
    let stored = match record {
        Record::Connector(v) => Record::Connector(c.create_volume_connector(v).await?),
        Record::Target(v) => Record::Target(c.create_volume_target(v).await?),
        Record::Runbook(v) => Record::Runbook(c.create_runbook(v).await?),
    };
    let body =
        serde_json::to_vec(&render(ctx, k, &stored.to_map(k), None)).map_err(ApiError::internal)?;
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
    let ops = super::patch::parse(body)?;
    super::patch::check_allowed(&ops, &k.patchable_at(ctx.version))?;
    let current = fetch(st, k, id).await?;
    let mut doc = Value::Object(current.to_map(k));
    super::patch::apply(&mut doc, &ops)?;
    let Value::Object(mut item) = doc else {
        return Err(ApiError::internal("patched document is not an object"));
    };
    if item.get("uuid").and_then(Value::as_str) != Some(current.uuid().as_str()) {
        return Err(ApiError::bad_request("uuid cannot be changed"));
    }
    // what the version cannot change is kept from the stored record (runbook
    // traits change through /traits; `description` is 1.112)
    if k == Kind::Runbook {
        item.remove("traits");
        if ctx.version.at_least(f::RUNBOOK_TRAITS) {
            // removed by the patch: unset
            item.entry("description").or_insert(Value::Null);
        } else {
            item.remove("description");
        }
    }
    validate(st, ctx, k, &mut item, true).await?;
    let record = Record::from_map(k, &item, Some(&current))?;
    let c = st.conductor();
    let stored = match record {
        Record::Connector(v) => Record::Connector(c.update_volume_connector(v).await?),
        Record::Target(v) => Record::Target(c.update_volume_target(v).await?),
        Record::Runbook(v) => Record::Runbook(c.update_runbook(v).await?),
    };
    ok_value(&render(ctx, k, &stored.to_map(k), None))
}

async fn remove(st: &ApiState, k: Kind, id: &str) -> ApiResult<Response> {
    let c = st.conductor();
    match k {
        Kind::Connector => c.delete_volume_connector(uuid_arg(id)?.into()).await?,
        Kind::Target => c.delete_volume_target(uuid_arg(id)?.into()).await?,
        Kind::Runbook => c.delete_runbook(&Ident::parse(id)).await?,
    }
    Ok(no_content())
}

async fn volume_root(ctx: ReqCtx) -> ApiResult<Response> {
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
            Path(id): Path<String>,
        ) -> ApiResult<Response> {
            remove(&st, $kind, &id).await
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

/// `GET /v1/runbooks/{id}/traits`.
async fn runbook_traits(State(st): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let rb = st.conductor().get_runbook(&Ident::parse(&id)).await?;
    ok_value(&json!({"traits": rb.traits}))
}

/// Set a runbook's traits (each a valid trait, kept unique in order).
async fn set_runbook_traits(
    st: &ApiState,
    id: &str,
    change: impl FnOnce(&mut Vec<String>),
) -> ApiResult<()> {
    let mut rb = st.conductor().get_runbook(&Ident::parse(id)).await?;
    change(&mut rb.traits);
    let mut seen = std::collections::HashSet::new();
    rb.traits.retain(|t| seen.insert(t.clone()));
    st.conductor().update_runbook(rb).await?;
    Ok(())
}

/// `PUT /v1/runbooks/{id}/traits` with `{"traits": [...]}`.
async fn replace_runbook_traits(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let body = if body.is_empty() {
        Map::new()
    } else {
        parse_object(&body)?
    };
    if let Some(k) = body.keys().find(|k| *k != "traits") {
        return Err(ApiError::bad_request(format!(
            "Schema error: Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let Some(list) = body.get("traits") else {
        return Err(ApiError::bad_request(
            "A single runbook trait may be added via PUT /v1/runbooks/<runbook identifier>/traits/<trait> with no body, or all runbook traits may be replaced via PUT /v1/runbooks/<runbook identifier>/traits with the list of traits specified in the request body.",
        ));
    };
    let Value::Array(items) = list else {
        return Err(ApiError::bad_request(format!(
            "Schema error: {list} is not of type 'array'"
        )));
    };
    let mut traits = Vec::with_capacity(items.len());
    for t in items {
        let t = t.as_str().ok_or_else(|| {
            ApiError::bad_request(format!("Schema error: {t} is not of type 'string'"))
        })?;
        validate_trait(t).map_err(ApiError::bad_request)?;
        traits.push(t.to_owned());
    }
    set_runbook_traits(&st, &id, |v| *v = traits).await?;
    Ok(no_content())
}

/// `DELETE /v1/runbooks/{id}/traits`.
async fn clear_runbook_traits(
    State(st): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    set_runbook_traits(&st, &id, Vec::clear).await?;
    Ok(no_content())
}

/// `PUT /v1/runbooks/{id}/traits/{trait}` (no body).
async fn add_runbook_trait(
    State(st): State<ApiState>,
    ctx: ReqCtx,
    Path((id, t)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    if !body.is_empty() && serde_json::from_slice::<Value>(&body).is_ok_and(|v| !v.is_null()) {
        return Err(ApiError::bad_request(
            "No body should be provided when adding a trait",
        ));
    }
    validate_trait(&t).map_err(ApiError::bad_request)?;
    let added = t.clone();
    set_runbook_traits(&st, &id, move |v| v.push(added)).await?;
    let mut r = no_content();
    if let Ok(loc) =
        axum::http::HeaderValue::from_str(&format!("{}/v1/runbooks/{id}/traits/{t}", ctx.base))
    {
        r.headers_mut().insert(axum::http::header::LOCATION, loc);
    }
    Ok(r)
}

/// `DELETE /v1/runbooks/{id}/traits/{trait}` (removing an absent trait is a no-op).
async fn remove_runbook_trait(
    State(st): State<ApiState>,
    Path((id, t)): Path<(String, String)>,
) -> ApiResult<Response> {
    set_runbook_traits(&st, &id, move |v| v.retain(|x| *x != t)).await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use ironic_core::store::{SqliteStore, Store};

    use super::*;

    /// The JSON file the API layer wrote before the store had these tables is
    /// imported whole (UUIDs and timestamps kept), once, and kept as `.imported`.
    #[tokio::test]
    async fn the_legacy_json_file_is_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("ironic.sqlite"))
            .await
            .unwrap();
        let node = Node::new("fake-hardware");
        store.create_node(&node).await.unwrap();
        let gone = NodeId::new();
        let (c, t, r, orphan) = (
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
        );
        let doc = json!({
            "connectors": [
                {"uuid": c, "node_uuid": node.uuid, "type": "iqn", "connector_id": "iqn.2024-01.org.example:n1",
                 "extra": {"a": 1}, "created_at": "2024-05-01T10:00:00+00:00", "updated_at": null},
                {"uuid": orphan, "node_uuid": gone, "type": "iqn", "connector_id": "iqn.2024-01.org.example:gone",
                 "extra": {}, "created_at": "2024-05-01T10:00:00+00:00", "updated_at": null}
            ],
            "targets": [
                {"uuid": t, "node_uuid": node.uuid, "volume_type": "iscsi", "properties": {"target_lun": 0},
                 "boot_index": 0, "volume_id": "vol-1", "extra": {}, "created_at": "2024-05-02T10:00:00.250000+00:00",
                 "updated_at": "2024-05-03T10:00:00+00:00"}
            ],
            "runbooks": [
                {"uuid": r, "name": "CUSTOM_WIPE", "steps": [{"interface": "deploy", "step": "erase_devices", "args": {}, "order": 1}],
                 "disable_ramdisk": false, "public": true, "owner": null, "extra": {},
                 "created_at": "2024-05-04T10:00:00+00:00", "updated_at": null}
            ]
        });
        let path = dir.path().join("api-resources.json");
        std::fs::write(&path, doc.to_string()).unwrap();

        assert_eq!(import_legacy_file(&store, &path).await.unwrap(), 3);
        assert!(!path.exists());
        assert!(dir.path().join("api-resources.json.imported").exists());
        let got = store.get_volume_connector(c.into()).await.unwrap();
        assert_eq!(got.connector_id, "iqn.2024-01.org.example:n1");
        assert_eq!(iso(&got.created_at), "2024-05-01T10:00:00+00:00");
        let got = store.get_volume_target(t.into()).await.unwrap();
        assert_eq!(iso(&got.created_at), "2024-05-02T10:00:00.250000+00:00");
        assert!(got.updated_at.is_some());
        let got = store
            .get_runbook(&Ident::Name("CUSTOM_WIPE".into()))
            .await
            .unwrap();
        assert!(got.public);
        assert_eq!(got.uuid.0, r);
        assert!(store.get_volume_connector(orphan.into()).await.is_err());

        // Running again (e.g. the rename was lost) imports nothing twice.
        std::fs::rename(dir.path().join("api-resources.json.imported"), &path).unwrap();
        assert_eq!(import_legacy_file(&store, &path).await.unwrap(), 0);
        assert_eq!(store.list_volume_connectors(None).await.unwrap().len(), 1);
        // No file: nothing to do.
        assert_eq!(import_legacy_file(&store, &path).await.unwrap(), 0);
    }
}
