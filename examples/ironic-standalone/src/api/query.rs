//! Query strings: pagination (`limit`, `marker`, `sort_key`, `sort_dir`), `fields`,
//! `detail`, typed filter values, and the `next` link of a full page.

use ironic_core::store::SortDir;

use super::error::ApiError;
use super::version::{Version, feature as f};

/// The parsed query string, in order (repeated keys keep the last value).
#[derive(Clone, Debug, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Parse a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        let Some(raw) = raw else {
            return Params::default();
        };
        Params(
            raw.split('&')
                .filter(|s| !s.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    /// A raw value.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean as oslo's `strutils.bool_from_string(strict=True)` reads it.
    pub fn bool(&self, k: &str) -> Result<Option<bool>, ApiError> {
        self.get(k).map(|v| parse_bool(k, v)).transpose()
    }

    /// A comma-separated list.
    pub fn list(&self, k: &str) -> Option<Vec<String>> {
        self.get(k).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
    }
}

/// Parse a boolean the way Ironic's `args.boolean` does.
pub fn parse_bool(name: &str, v: &str) -> Result<bool, ApiError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "Invalid value for {name}: Unrecognized value '{v}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
        ))),
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encode a query value (keeping `,` readable, as Ironic's links do).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b',') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Paging and selection common to every collection.
#[derive(Clone, Debug)]
pub struct ListArgs {
    /// Page size (never above the configured maximum).
    pub limit: usize,
    /// UUID of the last item of the previous page.
    pub marker: Option<uuid::Uuid>,
    /// Sort key as given (validated by the caller).
    pub sort_key: String,
    /// Direction.
    pub sort_dir: SortDir,
    /// `fields=` selection.
    pub fields: Option<Vec<String>>,
    /// `detail=True` (1.43).
    pub detail: bool,
}

impl ListArgs {
    /// Parse the common arguments. `detail_path` is true for `/detail` URLs.
    pub fn parse(
        p: &Params,
        version: Version,
        max_limit: usize,
        detail_path: bool,
    ) -> Result<Self, ApiError> {
        let limit = match p.get("limit") {
            None => max_limit,
            Some(s) => {
                let n: i64 = s.trim().parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "Invalid value for limit: {s:?} is not an integer"
                    ))
                })?;
                if n <= 0 {
                    return Err(ApiError::bad_request("Limit must be positive"));
                }
                (n as usize).min(max_limit)
            }
        };
        let marker = match p.get("marker") {
            None | Some("") => None,
            Some(m) => Some(uuid::Uuid::parse_str(m).map_err(|_| {
                ApiError::bad_request(format!("Expected a UUID for marker but received {m}."))
            })?),
        };
        let sort_dir = match p.get("sort_dir").unwrap_or("asc") {
            "asc" => SortDir::Asc,
            "desc" => SortDir::Desc,
            other => {
                return Err(ApiError::bad_request(format!(
                    "Invalid sort direction: {other}. Acceptable values are 'asc' or 'desc'"
                )));
            }
        };
        let fields = p.list("fields");
        if fields.is_some() && !version.at_least(f::FIELDS) {
            return Err(ApiError::not_acceptable());
        }
        let detail = match p.bool("detail")? {
            Some(d) => {
                if !version.at_least(f::DETAIL_QUERY) {
                    return Err(ApiError::not_acceptable());
                }
                if detail_path {
                    return Err(ApiError::bad_request(
                        "Parameter 'detail' is not allowed on the /detail resource",
                    ));
                }
                d
            }
            None => detail_path,
        };
        if detail && fields.is_some() {
            return Err(ApiError::bad_request(
                "Can not specify ?detail=True and fields in the same request.",
            ));
        }
        Ok(ListArgs {
            limit,
            marker,
            sort_key: p.get("sort_key").unwrap_or("id").to_owned(),
            sort_dir,
            fields,
            detail,
        })
    }
}

/// The `next` link when a page is full: the same query with the last item's UUID
/// as marker. `default_fields` is added as `fields=` when neither `fields` nor
/// `detail` was given (as Ironic does).
pub fn next_link(
    base: &str,
    path: &str,
    p: &Params,
    args: &ListArgs,
    returned: usize,
    last_uuid: Option<String>,
    default_fields: Option<&[&str]>,
) -> Option<String> {
    if returned == 0 || returned != args.limit {
        return None;
    }
    let last = last_uuid?;
    let mut q = format!(
        "sort_key={}&sort_dir={}&",
        encode(&args.sort_key),
        match args.sort_dir {
            SortDir::Asc => "asc",
            SortDir::Desc => "desc",
        }
    );
    let mut fields_done = false;
    for (k, v) in &p.0 {
        if matches!(k.as_str(), "limit" | "marker" | "sort_key" | "sort_dir") {
            continue;
        }
        if k == "fields" {
            fields_done = true;
        }
        q.push_str(&format!("{}={}&", encode(k), encode(v)));
    }
    if !fields_done
        && !args.detail
        && let Some(df) = default_fields
    {
        q.push_str(&format!("fields={}&", df.join(",")));
    }
    Some(format!(
        "{base}/v1/{path}?{q}limit={}&marker={last}",
        args.limit
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let p = Params::parse(Some(
            "provision_state=clean%20wait&fields=uuid,name&detail=True&x+y=1",
        ));
        assert_eq!(p.get("provision_state"), Some("clean wait"));
        assert_eq!(p.list("fields").unwrap(), vec!["uuid", "name"]);
        assert_eq!(p.bool("detail").unwrap(), Some(true));
        assert_eq!(p.get("x y"), Some("1"));
        assert!(Params::parse(Some("a=%zz")).get("a").is_some());
        assert!(Params::parse(Some("a=%")).get("a").is_some());
    }

    #[test]
    fn limits_and_sorting_are_validated() {
        let v = Version(115);
        let a = ListArgs::parse(&Params::parse(Some("limit=5000")), v, 1000, false).unwrap();
        assert_eq!(a.limit, 1000);
        assert!(ListArgs::parse(&Params::parse(Some("limit=0")), v, 1000, false).is_err());
        assert!(ListArgs::parse(&Params::parse(Some("limit=x")), v, 1000, false).is_err());
        assert!(ListArgs::parse(&Params::parse(Some("sort_dir=up")), v, 1000, false).is_err());
        assert!(ListArgs::parse(&Params::parse(Some("marker=nope")), v, 1000, false).is_err());
        let e = ListArgs::parse(
            &Params::parse(Some("detail=true&fields=uuid")),
            v,
            1000,
            false,
        )
        .unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        let e = ListArgs::parse(&Params::parse(Some("fields=uuid")), Version(7), 1000, false)
            .unwrap_err();
        assert_eq!(e.status().as_u16(), 406);
        assert!(ListArgs::parse(&Params::parse(Some("detail=maybe")), v, 1000, false).is_err());
    }

    #[test]
    fn next_link_keeps_the_query() {
        let p = Params::parse(Some("provision_state=available&limit=2"));
        let a = ListArgs::parse(&p, Version(115), 1000, false).unwrap();
        let n = next_link(
            "http://h:1",
            "nodes",
            &p,
            &a,
            2,
            Some("u2".into()),
            Some(&["uuid", "name"]),
        )
        .unwrap();
        assert_eq!(
            n,
            "http://h:1/v1/nodes?sort_key=id&sort_dir=asc&provision_state=available&fields=uuid,name&limit=2&marker=u2"
        );
        assert!(next_link("http://h:1", "nodes", &p, &a, 1, Some("u".into()), None).is_none());
    }
}
