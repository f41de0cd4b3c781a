//! What every resource shares.
//!
//! A resource describes its fields once, in a [`Schema`]: name, the microversion
//! that introduced it, its JSON type, and whether a create body or a PATCH may
//! set it. That one table gives the JSON body (fields the client's version
//! knows, in order), the `fields=` check (unknown → 400, too new → 406), what a
//! create body and a JSON patch accept, and the OpenAPI schema. Listing (paging,
//! default fields, `detail`, the `next` link), showing, and applying a JSON patch
//! are written here once for every resource.

use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};
use super::json::{ObjWriter, write_str};
use super::patch::{self, PatchOp};
use super::query::{ListArgs, Params, next_link};
use super::version::Version;
use super::{ApiState, ReqCtx};
use ironic_core::store::SortDir;

/// A field's JSON type (for the OpenAPI schema).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    /// A string.
    Str,
    /// A boolean.
    Bool,
    /// An integer.
    Int,
    /// A JSON object.
    Object,
    /// A list of strings.
    StrList,
    /// A list of objects.
    List,
    /// A UUID string.
    Uuid,
    /// An ISO 8601 timestamp.
    Time,
}

/// One field of a resource.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    /// JSON key.
    pub name: &'static str,
    /// Minor version that introduced it.
    pub since: u32,
    /// Its type.
    pub ty: Ty,
    /// Whether it may be `null`.
    pub nullable: bool,
    /// Accepted in a create body.
    pub create: bool,
    /// May be changed by PATCH.
    pub patch: bool,
    /// Shown in bodies (false: only accepted on create, e.g. a port's `node`).
    pub read: bool,
}

impl Field {
    /// A read-only, non-null field.
    pub const fn new(name: &'static str, since: u32, ty: Ty) -> Self {
        Field {
            name,
            since,
            ty,
            nullable: false,
            create: false,
            patch: false,
            read: true,
        }
    }
    /// Only accepted in a create body, never shown.
    pub const fn write_only(mut self) -> Self {
        self.read = false;
        self.create = true;
        self
    }
    /// May be `null`.
    pub const fn null(mut self) -> Self {
        self.nullable = true;
        self
    }
    /// Accepted in a create body.
    pub const fn create(mut self) -> Self {
        self.create = true;
        self
    }
    /// May be changed by PATCH.
    pub const fn patch(mut self) -> Self {
        self.patch = true;
        self
    }
    /// Accepted in a create body and by PATCH.
    pub const fn rw(self) -> Self {
        self.create().patch()
    }
}

/// `uuid`, `created_at`, `updated_at`: the first fields of most resources.
pub(crate) const UUID: Field = Field::new("uuid", 1, Ty::Uuid).create();
/// Creation time.
pub(crate) const CREATED_AT: Field = Field::new("created_at", 1, Ty::Time);
/// Last update time.
pub(crate) const UPDATED_AT: Field = Field::new("updated_at", 1, Ty::Time).null();

/// A resource's description: the one source of its bodies and OpenAPI schema.
#[derive(Debug)]
pub(crate) struct Schema {
    /// OpenAPI component name (`Node`).
    pub name: &'static str,
    /// Path under `/v1/` of the collection (`nodes`, `volume/connectors`).
    pub collection: &'static str,
    /// Key of the list body (`nodes`, `connectors`).
    pub key: &'static str,
    /// Fields in body order.
    pub fields: &'static [Field],
    /// Fields of a list without `detail` (empty: every field).
    pub list_fields: &'static [&'static str],
    /// Sub-resource links added to a full body (name, since).
    pub sub_links: &'static [(&'static str, u32)],
}

impl Schema {
    /// A field by name.
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Check a `fields=` selection: unknown → 400, newer than the version → 406.
    pub fn check_fields(&self, version: Version, fields: &[String]) -> ApiResult<()> {
        for name in fields {
            match self.field(name).filter(|f| f.read) {
                None => {
                    return Err(ApiError::bad_request(format!(
                        "Field(s) \"{name}\" are not valid"
                    )));
                }
                Some(f) if !version.at_least(f.since) => return Err(ApiError::not_acceptable()),
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Check the keys of a create body: unknown → 400 (as jsonschema's
    /// `additionalProperties`), a non-null field newer than the version → 406.
    pub fn check_create(&self, version: Version, body: &Map<String, Value>) -> ApiResult<()> {
        for (k, v) in body {
            match self.field(k).filter(|f| f.create) {
                None => {
                    return Err(ApiError::bad_request(format!(
                        "Additional properties are not allowed ('{k}' was unexpected)"
                    )));
                }
                Some(f) if !version.at_least(f.since) && !v.is_null() => {
                    return Err(ApiError::not_acceptable());
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Check a patch: only patchable root fields (400 otherwise, naming them);
    /// a field newer than the version → 406.
    pub fn check_patch(&self, version: Version, ops: &[PatchOp]) -> ApiResult<()> {
        for op in ops {
            if let Some(f) = self.field(&op.root())
                && f.patch
                && !version.at_least(f.since)
            {
                return Err(ApiError::not_acceptable());
            }
        }
        let all: Vec<&str> = self
            .fields
            .iter()
            .filter(|f| f.patch)
            .map(|f| f.name)
            .collect();
        patch::check_allowed(ops, &all)
    }
}

/// What rendering depends on besides the record.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx<'a> {
    /// Negotiated version.
    pub version: Version,
    /// Public base URL, e.g. `http://127.0.0.1:6385` (no trailing slash).
    pub base: &'a str,
    /// The conductor whose hash rings name each node's owner (the `conductor` field).
    pub conductor: Option<&'a ironic_core::conductor::Conductor>,
}

/// A record the API shows.
pub(crate) trait Resource {
    /// Its description.
    const SCHEMA: &'static Schema;
    /// The identifier in its links (its UUID, a conductor's host name).
    fn link_id(&self) -> String;
    /// Write field `name` (one of the schema's).
    fn write_field(&self, w: &mut ObjWriter<'_>, ctx: &Ctx<'_>, name: &str);
}

/// `[{"href": base/v1/res/id, "rel": "self"}, {"href": base/res/id, "rel": "bookmark"}]`.
pub(crate) fn links(base: &str, resource: &str, id: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(160);
    buf.push(b'[');
    for (i, (rel, prefix)) in [("self", "/v1/"), ("bookmark", "/")].iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let mut w = ObjWriter::new(&mut buf);
        w.str("href", &format!("{base}{prefix}{resource}/{id}"));
        w.str("rel", rel);
        w.end();
    }
    buf.push(b']');
    buf
}

/// The same link pair as a JSON value.
pub(crate) fn links_value(base: &str, resource: &str, id: &str) -> Value {
    serde_json::from_slice(&links(base, resource, id)).unwrap_or(Value::Null)
}

/// Render `item`. `fields` (already checked) selects a subset; `None` renders
/// every field the version knows plus the sub-resource links.
pub(crate) fn write<R: Resource>(
    buf: &mut Vec<u8>,
    ctx: &Ctx<'_>,
    item: &R,
    fields: Option<&[String]>,
) {
    let schema = R::SCHEMA;
    let id = item.link_id();
    let mut w = ObjWriter::new(buf);
    match fields {
        Some(fields) => {
            if fields.iter().any(|f| f == "uuid") {
                item.write_field(&mut w, ctx, "uuid");
            }
            for (i, name) in fields.iter().enumerate() {
                if name != "uuid" && !fields[..i].contains(name) {
                    item.write_field(&mut w, ctx, name);
                }
            }
            w.raw("links", &links(ctx.base, schema.collection, &id));
        }
        None => {
            for f in schema.fields {
                if f.read && ctx.version.at_least(f.since) {
                    item.write_field(&mut w, ctx, f.name);
                }
            }
            w.raw("links", &links(ctx.base, schema.collection, &id));
            for (what, since) in schema.sub_links {
                if ctx.version.at_least(*since) {
                    w.raw(
                        what,
                        &links(ctx.base, schema.collection, &format!("{id}/{what}")),
                    );
                }
            }
        }
    }
    w.end();
}

/// One rendered item.
pub(crate) fn body<R: Resource>(ctx: &Ctx<'_>, item: &R, fields: Option<&[String]>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1024);
    write(&mut buf, ctx, item, fields);
    buf
}

/// A parsed list request: the query, the common arguments, the fields to
/// render (`None` = all) and the byte budget of the response.
pub(crate) struct ListRequest {
    /// The query string.
    pub params: Params,
    /// Paging, sorting, `fields`, `detail`.
    pub args: ListArgs,
    /// Fields to render: `fields=`, every field (`detail`), or the list default.
    pub fields: Option<Vec<String>>,
    /// Byte budget of the response (`[api] max_list_body_size`).
    pub budget: usize,
}

impl ListRequest {
    /// Parse and check a list request for `schema` (`detail_path`: a `/detail` URL).
    pub fn parse(
        st: &ApiState,
        ctx: &ReqCtx,
        schema: &Schema,
        raw: Option<&str>,
        detail_path: bool,
    ) -> ApiResult<Self> {
        let params = Params::parse(raw);
        let args = ListArgs::parse(&params, ctx.version, st.settings().max_limit, detail_path)?;
        if let Some(fl) = &args.fields {
            schema.check_fields(ctx.version, fl)?;
        }
        let fields = match (&args.fields, args.detail) {
            (Some(f), _) => Some(f.clone()),
            (None, true) => None,
            (None, false) if schema.list_fields.is_empty() => None,
            (None, false) => Some(
                schema
                    .list_fields
                    .iter()
                    .filter(|n| {
                        schema
                            .field(n)
                            .is_none_or(|f| ctx.version.at_least(f.since))
                    })
                    .map(|s| s.to_string())
                    .collect(),
            ),
        };
        Ok(ListRequest {
            params,
            args,
            fields,
            budget: st.settings().max_list_body_size,
        })
    }

    /// The list body `{"<key>": [...], "next": "..."}` of a page of `items`
    /// (`next` only when the page is full, or cut by the byte budget). `path`
    /// is the collection URL under `/v1/`; `default_fields` is added to the
    /// `next` link when the client gave neither `fields` nor `detail` (as
    /// Ironic does for nodes).
    pub fn body<R: Resource>(
        &self,
        ctx: &Ctx<'_>,
        path: &str,
        items: &[R],
        default_fields: Option<&[&str]>,
    ) -> Vec<u8> {
        let mut page = self.page::<R>(ctx, items.len());
        for it in items {
            if !page.push(it) {
                break;
            }
        }
        page.finish(path, default_fields)
    }

    /// A page written item by item ([`PageWriter::push`]), for lists read from
    /// the store in chunks. `hint`: the number of items expected.
    pub fn page<'s, 'c, R: Resource>(
        &'s self,
        ctx: &'s Ctx<'c>,
        hint: usize,
    ) -> PageWriter<'s, 'c> {
        let per = if self.fields.is_some() { 300 } else { 1500 };
        let mut buf = Vec::with_capacity((hint.min(self.args.limit) * per + 64).min(self.budget));
        buf.push(b'{');
        write_str(&mut buf, R::SCHEMA.key);
        buf.extend_from_slice(b":[");
        PageWriter {
            req: self,
            ctx,
            buf,
            count: 0,
            last: None,
            cut: false,
        }
    }
}

/// A list response being written (see [`ListRequest::page`]).
///
/// A page ends at the request's `limit` or after the item that takes the body
/// past the byte budget, whichever comes first; a page cut by the budget gets
/// a `next` link as a full page does, so clients that follow `next`
/// (ironicclient, openstacksdk) get every item, and one response never holds
/// more than the budget plus one item. Ironic has no such bound: a page of
/// 1000 nodes with megabytes of `extra` each is rendered whole in memory.
pub(crate) struct PageWriter<'s, 'c> {
    req: &'s ListRequest,
    ctx: &'s Ctx<'c>,
    buf: Vec<u8>,
    count: usize,
    last: Option<String>,
    cut: bool,
}

impl PageWriter<'_, '_> {
    /// Add an item; `false` when the page is complete (stop adding).
    pub fn push<R: Resource>(&mut self, item: &R) -> bool {
        if self.is_full() {
            return false;
        }
        if self.count > 0 {
            self.buf.push(b',');
        }
        write(&mut self.buf, self.ctx, item, self.req.fields.as_deref());
        self.count += 1;
        self.last = Some(item.link_id());
        if self.count < self.req.args.limit && self.buf.len() >= self.req.budget {
            self.cut = true;
        }
        !self.is_full()
    }

    /// The page holds `limit` items or has reached the byte budget.
    pub fn is_full(&self) -> bool {
        self.cut || self.count >= self.req.args.limit
    }

    /// Items written so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Close the list and add the `next` link when the page is full.
    pub fn finish(mut self, path: &str, default_fields: Option<&[&str]>) -> Vec<u8> {
        self.buf.push(b']');
        let args = &self.req.args;
        // A page cut by the budget links to the rest as a full page does.
        let returned = if self.cut { args.limit } else { self.count };
        if let Some(next) = next_link(
            self.ctx.base,
            path,
            &self.req.params,
            args,
            returned,
            self.last.take(),
            default_fields,
        ) {
            self.buf.extend_from_slice(b",\"next\":");
            write_str(&mut self.buf, &next);
        }
        self.buf.push(b'}');
        self.buf
    }
}

/// A sort key for in-memory sorting: name and the value compared.
pub(crate) type SortKey<T> = (&'static str, fn(&T) -> String);

/// Sort, apply the marker and the limit in memory (for collections the store
/// does not page). `id` and `created_at` keep insertion order; other keys must
/// be in `keys` (400 otherwise). An unknown marker is 404 naming `title`.
pub(crate) fn paginate<T>(
    items: &mut Vec<T>,
    args: &ListArgs,
    keys: &[SortKey<T>],
    id: impl Fn(&T) -> String,
    title: &str,
) -> ApiResult<()> {
    match args.sort_key.as_str() {
        "id" | "created_at" => {}
        k => {
            let (_, key) = keys.iter().find(|(n, _)| *n == k).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "The sort_key value {k} is an invalid field for sorting"
                ))
            })?;
            items.sort_by_cached_key(key);
        }
    }
    if args.sort_dir == SortDir::Desc {
        items.reverse();
    }
    if let Some(m) = args.marker {
        let m = m.to_string();
        match items.iter().position(|i| id(i) == m) {
            Some(i) => {
                items.drain(..=i);
            }
            None => {
                return Err(ApiError::not_found(format!(
                    "{title} {m} could not be found."
                )));
            }
        }
    }
    items.truncate(args.limit);
    Ok(())
}

/// Apply a JSON patch (already checked against the schema) to `doc` (the
/// record as JSON, stored values) and return the patchable fields whose value
/// changed, with their new value (`null` when removed).
pub(crate) fn patch_changes(
    schema: &Schema,
    mut doc: Value,
    ops: &[PatchOp],
) -> ApiResult<Vec<(&'static str, Value)>> {
    let before = doc.clone();
    patch::apply(&mut doc, ops)?;
    let mut out = Vec::new();
    for f in schema.fields.iter().filter(|f| f.patch) {
        let new = doc.get(f.name).unwrap_or(&Value::Null);
        if before.get(f.name).unwrap_or(&Value::Null) != new {
            out.push((f.name, new.clone()));
        }
    }
    Ok(out)
}

/// The `fields=` of a show request, checked.
pub(crate) fn show_fields(
    ctx: &ReqCtx,
    schema: &Schema,
    raw: Option<&str>,
) -> ApiResult<Option<Vec<String>>> {
    let p = Params::parse(raw);
    let fields = p.list("fields");
    if let Some(fl) = &fields {
        ctx.require(super::version::feature::FIELDS)?;
        schema.check_fields(ctx.version, fl)?;
    }
    Ok(fields)
}

/// Typed readers of JSON body values, with Ironic-like messages.
pub(crate) mod value {
    use serde_json::Value;

    use crate::api::error::{ApiError, ApiResult};
    use crate::api::query::parse_bool;
    use ironic_core::model::JsonMap;

    /// A string or null, at most `max` characters.
    pub fn opt_str(k: &str, v: &Value, max: Option<usize>) -> ApiResult<Option<String>> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => {
                if let Some(m) = max
                    && s.chars().count() > m
                {
                    return Err(ApiError::bad_request(format!(
                        "Invalid value for {k}: longer than {m} characters"
                    )));
                }
                Ok(Some(s.clone()))
            }
            other => Err(ApiError::bad_request(format!(
                "Invalid value for {k}: {other} is not of type 'string'"
            ))),
        }
    }

    /// A boolean (or a string oslo reads as one), or null.
    pub fn opt_bool(k: &str, v: &Value) -> ApiResult<Option<bool>> {
        match v {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(*b)),
            Value::String(s) => parse_bool(k, s).map(Some),
            other => Err(ApiError::bad_request(format!(
                "Invalid value for {k}: {other} is not a boolean"
            ))),
        }
    }

    /// A boolean; null is `false`.
    pub fn bool(k: &str, v: &Value) -> ApiResult<bool> {
        Ok(opt_bool(k, v)?.unwrap_or(false))
    }

    /// An object; null is empty.
    pub fn map(k: &str, v: &Value) -> ApiResult<JsonMap> {
        match v {
            Value::Null => Ok(JsonMap::new()),
            Value::Object(m) => Ok(m.clone()),
            other => Err(ApiError::bad_request(format!(
                "Invalid value for {k}: {other} is not of type 'object'"
            ))),
        }
    }

    /// A UUID or null.
    pub fn opt_uuid(k: &str, v: &Value) -> ApiResult<Option<uuid::Uuid>> {
        match opt_str(k, v, None)? {
            None => Ok(None),
            Some(s) => uuid::Uuid::parse_str(&s).map(Some).map_err(|_| {
                ApiError::bad_request(format!("Expected a UUID for {k} but received {s}."))
            }),
        }
    }

    /// A list of strings; null is empty.
    pub fn str_list(k: &str, v: &Value) -> ApiResult<Vec<String>> {
        match v {
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str().map(str::to_owned).ok_or_else(|| {
                        ApiError::bad_request(format!("Invalid {k}: {i} is not a string"))
                    })
                })
                .collect(),
            other => Err(ApiError::bad_request(format!(
                "Invalid {k}: {other} is not a list"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[Field] = &[
        UUID,
        Field::new("name", 5, Ty::Str).null().rw(),
        Field::new("secret", 1, Ty::Str),
        Field::new("late", 90, Ty::Bool).patch(),
    ];
    const S: Schema = Schema {
        name: "Thing",
        collection: "things",
        key: "things",
        fields: FIELDS,
        list_fields: &["uuid"],
        sub_links: &[("parts", 10)],
    };

    struct Thing;
    impl Resource for Thing {
        const SCHEMA: &'static Schema = &S;
        fn link_id(&self) -> String {
            "t1".into()
        }
        fn write_field(&self, w: &mut ObjWriter<'_>, _: &Ctx<'_>, name: &str) {
            match name {
                "uuid" => w.str(name, "t1"),
                "name" => w.str(name, "n"),
                "secret" => w.str(name, "s"),
                "late" => w.bool(name, true),
                _ => {}
            }
        }
    }

    fn ctx(v: u32) -> Ctx<'static> {
        Ctx {
            version: Version(v),
            base: "http://h",
            conductor: None,
        }
    }

    #[test]
    fn bodies_follow_the_version_and_the_selection() {
        let v: Value = serde_json::from_slice(&body(&ctx(4), &Thing, None)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"uuid": "t1", "secret": "s", "links": [
                {"href": "http://h/v1/things/t1", "rel": "self"},
                {"href": "http://h/things/t1", "rel": "bookmark"}]})
        );
        let v: Value = serde_json::from_slice(&body(&ctx(90), &Thing, None)).unwrap();
        assert_eq!(v["late"], true);
        assert_eq!(v["parts"][0]["href"], "http://h/v1/things/t1/parts");
        let sel = vec!["name".to_string(), "uuid".to_string(), "name".to_string()];
        let text = String::from_utf8(body(&ctx(90), &Thing, Some(&sel))).unwrap();
        assert!(
            text.starts_with(r#"{"uuid":"t1","name":"n","links""#),
            "{text}"
        );
    }

    #[test]
    fn field_create_and_patch_checks() {
        let e = S.check_fields(Version(4), &["name".into()]).unwrap_err();
        assert_eq!(e.status().as_u16(), 406);
        let e = S.check_fields(Version(4), &["bogus".into()]).unwrap_err();
        assert_eq!(e.message(), "Field(s) \"bogus\" are not valid");
        let body: Map<String, Value> = serde_json::from_str(r#"{"secret": "x"}"#).unwrap();
        let e = S.check_create(Version(90), &body).unwrap_err();
        assert_eq!(
            e.message(),
            "Additional properties are not allowed ('secret' was unexpected)"
        );
        let body: Map<String, Value> = serde_json::from_str(r#"{"name": null}"#).unwrap();
        assert!(S.check_create(Version(1), &body).is_ok());
        let body: Map<String, Value> = serde_json::from_str(r#"{"name": "x"}"#).unwrap();
        assert_eq!(
            S.check_create(Version(1), &body)
                .unwrap_err()
                .status()
                .as_u16(),
            406
        );
        let ops = patch::parse(br#"[{"op": "replace", "path": "/late", "value": false}]"#).unwrap();
        assert_eq!(
            S.check_patch(Version(89), &ops)
                .unwrap_err()
                .status()
                .as_u16(),
            406
        );
        assert!(S.check_patch(Version(90), &ops).is_ok());
        let ops = patch::parse(br#"[{"op": "replace", "path": "/secret", "value": 1}]"#).unwrap();
        assert_eq!(
            S.check_patch(Version(90), &ops).unwrap_err().message(),
            "Cannot patch /secret. Only the following can be updated: name, late"
        );
        let changes = patch_changes(
            &S,
            serde_json::json!({"name": "a", "late": true, "secret": "s"}),
            &patch::parse(br#"[{"op": "remove", "path": "/name"}]"#).unwrap(),
        )
        .unwrap();
        assert_eq!(changes, vec![("name", Value::Null)]);
    }

    #[test]
    fn paginate_sorts_marks_and_limits() {
        let mut items = vec!["b", "c", "a"];
        let args = |q: &str| ListArgs::parse(&Params::parse(Some(q)), Version(90), 1000, false);
        let keys: &[SortKey<&str>] = &[("name", |s| s.to_string())];
        paginate(
            &mut items,
            &args("sort_key=name&limit=2").unwrap(),
            keys,
            |s| s.to_string(),
            "Thing",
        )
        .unwrap();
        assert_eq!(items, vec!["a", "b"]);
        let mut items = vec!["b", "c", "a"];
        let e = paginate(
            &mut items,
            &args("sort_key=nope").unwrap(),
            keys,
            |s| s.to_string(),
            "Thing",
        )
        .unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        let m = uuid::Uuid::new_v4();
        let e = paginate(
            &mut items,
            &args(&format!("marker={m}")).unwrap(),
            keys,
            |s| s.to_string(),
            "Thing",
        )
        .unwrap_err();
        assert_eq!(e.message(), format!("Thing {m} could not be found."));
    }
}
