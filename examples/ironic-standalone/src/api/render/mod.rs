//! JSON bodies of every resource, with Ironic's field names, order and
//! microversion gating.

pub mod node;
mod others;

pub use others::*;

use crate::api::json::ObjWriter;
use crate::api::version::Version;

/// What rendering depends on besides the record.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// Negotiated version.
    pub version: Version,
    /// Public base URL, e.g. `http://127.0.0.1:6385` (no trailing slash).
    pub base: &'a str,
    /// Host name of the conductor managing nodes (the `conductor` field).
    pub conductor_host: Option<&'a str>,
}

/// `[{"href": base/v1/res/id, "rel": "self"}, {"href": base/res/id, "rel": "bookmark"}]`.
pub fn links(base: &str, resource: &str, id: &str) -> Vec<u8> {
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
pub fn links_value(base: &str, resource: &str, id: &str) -> serde_json::Value {
    serde_json::from_slice(&links(base, resource, id)).unwrap_or(serde_json::Value::Null)
}

/// Write the `links` key.
pub fn write_links(w: &mut ObjWriter<'_>, base: &str, resource: &str, id: &str) {
    w.raw("links", &links(base, resource, id));
}

/// Check a `fields=` selection against a resource's field table (name, minor
/// version): unknown → 400, newer than the version → 406.
pub fn check_fields_in(
    table: &[(&str, u32)],
    version: Version,
    fields: &[String],
) -> Result<(), crate::api::error::ApiError> {
    for name in fields {
        match table.iter().find(|(n, _)| n == name) {
            None => {
                return Err(crate::api::error::ApiError::bad_request(format!(
                    "Field {name} is not a valid field."
                )));
            }
            Some((_, v)) if !version.at_least(*v) => {
                return Err(crate::api::error::ApiError::not_acceptable());
            }
            Some(_) => {}
        }
    }
    Ok(())
}
