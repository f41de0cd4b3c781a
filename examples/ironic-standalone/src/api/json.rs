//! A small ordered JSON object writer: Ironic's bodies have a stable key order and
//! the API renders thousands of nodes per listing, so bodies are written straight
//! into a byte buffer instead of being built as `serde_json::Value` trees.

use serde::Serialize;

/// Writes one JSON object into a buffer, keys in call order.
pub struct ObjWriter<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> ObjWriter<'a> {
    /// Start an object (`{`).
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        buf.push(b'{');
        ObjWriter { buf, first: true }
    }

    /// Write the key and leave the buffer ready for its value.
    pub fn key(&mut self, k: &str) -> &mut Vec<u8> {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        write_str(self.buf, k);
        self.buf.push(b':');
        self.buf
    }

    /// A serializable value.
    pub fn field<T: Serialize + ?Sized>(&mut self, k: &str, v: &T) {
        let buf = self.key(k);
        // Serializing plain data into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, v);
    }

    /// A string value.
    pub fn str(&mut self, k: &str, v: &str) {
        let buf = self.key(k);
        write_str(buf, v);
    }

    /// An optional string value (`null` when absent).
    pub fn opt_str(&mut self, k: &str, v: Option<&str>) {
        let buf = self.key(k);
        match v {
            Some(s) => write_str(buf, s),
            None => buf.extend_from_slice(b"null"),
        }
    }

    /// A boolean.
    pub fn bool(&mut self, k: &str, v: bool) {
        let buf = self.key(k);
        buf.extend_from_slice(if v { b"true" } else { b"false" });
    }

    /// Already-encoded JSON.
    pub fn raw(&mut self, k: &str, json: &[u8]) {
        let buf = self.key(k);
        buf.extend_from_slice(json);
    }

    /// Close the object (`}`).
    pub fn end(self) {
        self.buf.push(b'}');
    }
}

/// Append a JSON string literal.
pub fn write_str(buf: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *buf, s);
}

/// Render a timestamp as Python's `datetime.isoformat()` does for UTC values:
/// `2026-11-21T04:48:56.036892+00:00` (no fraction when it is zero).
pub fn iso(ts: &chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Timelike;
    if ts.nanosecond() / 1000 == 0 {
        ts.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    } else {
        ts.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
    }
}

/// Write an optional timestamp.
pub fn opt_time(w: &mut ObjWriter<'_>, k: &str, ts: Option<&chrono::DateTime<chrono::Utc>>) {
    match ts {
        Some(t) => w.str(k, &iso(t)),
        None => w.raw(k, b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_ordered_keys_and_escapes() {
        let mut buf = Vec::new();
        let mut w = ObjWriter::new(&mut buf);
        w.str("z", "a\"b");
        w.opt_str("a", None);
        w.bool("m", true);
        w.field("n", &[1, 2]);
        w.end();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            r#"{"z":"a\"b","a":null,"m":true,"n":[1,2]}"#
        );
    }

    #[test]
    fn timestamps_look_like_python_isoformat() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-21T04:48:56.036892Z")
            .unwrap()
            .to_utc();
        assert_eq!(iso(&t), "2026-11-21T04:48:56.036892+00:00");
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-21T04:48:56Z")
            .unwrap()
            .to_utc();
        assert_eq!(iso(&t), "2026-11-21T04:48:56+00:00");
    }
}
