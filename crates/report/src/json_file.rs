//! A report as DWTOOL's JSON: `json.dumps({"columns": […], "rows": [{…}], "rowCount":
//! n}, indent=2, default=str)` byte for byte: two-space indents, `", "` nowhere (the
//! item separator is `,` at a line end), non-ASCII escaped as `\uXXXX`, and values JSON
//! has no type for (decimals, dates, times) as the strings `str()` gives them.

use std::io::{self, Write};

use dwsched_flow::Value;

use crate::csv_file::last_of_each_name;
use crate::python_str;

/// Writes a report's rows as they come; memory does not grow with the row count.
pub struct JsonReport<W: Write> {
    out: W,
    /// Each distinct name once, in the order first given, with the column whose value
    /// it takes (the last of that name, as a Python dict keeps it).
    keys: Vec<(String, usize)>,
    rows: u64,
}

impl<W: Write> JsonReport<W> {
    /// Starts the document: its `columns`, and the opening of `rows`.
    pub fn new(mut out: W, columns: &[String]) -> io::Result<Self> {
        out.write_all(b"{\n  \"columns\": ")?;
        if columns.is_empty() {
            out.write_all(b"[]")?;
        } else {
            out.write_all(b"[")?;
            for (i, column) in columns.iter().enumerate() {
                out.write_all(if i == 0 { b"\n    " } else { b",\n    " })?;
                out.write_all(json_string(column).as_bytes())?;
            }
            out.write_all(b"\n  ]")?;
        }
        out.write_all(b",\n  \"rows\": ")?;
        let last = last_of_each_name(columns);
        let mut keys: Vec<(String, usize)> = Vec::new();
        for (i, name) in columns.iter().enumerate() {
            if !keys.iter().any(|(key, _)| key == name) {
                keys.push((name.clone(), last[i]));
            }
        }
        Ok(Self { out, keys, rows: 0 })
    }

    pub fn write_row(&mut self, row: &[Value]) -> io::Result<()> {
        let mut text = String::from(if self.rows == 0 { "[\n    " } else { ",\n    " });
        if self.keys.is_empty() {
            text.push_str("{}");
        } else {
            text.push('{');
            for (i, (key, column)) in self.keys.iter().enumerate() {
                text.push_str(if i == 0 { "\n      " } else { ",\n      " });
                text.push_str(&json_string(key));
                text.push_str(": ");
                text.push_str(&json_value(row.get(*column).unwrap_or(&Value::Null)));
            }
            text.push_str("\n    }");
        }
        self.out.write_all(text.as_bytes())?;
        self.rows += 1;
        Ok(())
    }

    /// Ends the document with `rowCount`; the number of rows written.
    pub fn finish(mut self) -> io::Result<(u64, W)> {
        let rows_end: &[u8] = if self.rows == 0 { b"[]" } else { b"\n  ]" };
        self.out.write_all(rows_end)?;
        write!(self.out, ",\n  \"rowCount\": {}\n}}", self.rows)?;
        self.out.flush()?;
        Ok((self.rows, self.out))
    }
}

/// A value as `json.dumps(…, default=str)` writes it.
fn json_value(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(true) => "true".into(),
        Value::Bool(false) => "false".into(),
        Value::Int(n) => n.to_string(),
        Value::Float(x) if x.is_nan() => "NaN".into(),
        Value::Float(x) if x.is_infinite() => {
            if *x > 0.0 { "Infinity" } else { "-Infinity" }.into()
        }
        Value::Float(x) => crate::python_float(*x),
        Value::Text(text) => json_string(text),
        other => json_string(&python_str(other)),
    }
}

/// A JSON value as Python's `json.dumps` writes it by default: `, ` and `: ` between
/// items, no indent, everything past ASCII escaped, keys in the value's own order.
pub fn python_json(value: &serde_json::Value) -> String {
    use serde_json::Value as Json;
    match value {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(x)) => crate::python_float(x),
            _ => n.to_string(),
        },
        Json::String(text) => json_string(text),
        Json::Array(items) => {
            let items: Vec<String> = items.iter().map(python_json).collect();
            format!("[{}]", items.join(", "))
        }
        Json::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(key, value)| format!("{}: {}", json_string(key), python_json(value)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// A JSON string as Python's `json` writes it with `ensure_ascii`: `\"`, `\\`, `\n`,
/// `\r`, `\t`, `\b`, `\f`, other control characters and everything past ASCII as
/// lower-case `\uXXXX` (surrogate pairs beyond the BMP).
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn json(columns: &[&str], rows: &[Vec<Value>]) -> String {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let mut report = JsonReport::new(Vec::new(), &columns).unwrap();
        for row in rows {
            report.write_row(row).unwrap();
        }
        let (count, bytes) = report.finish().unwrap();
        assert_eq!(count, rows.len() as u64);
        String::from_utf8(bytes).unwrap()
    }

    /// Expected text is what CPython 3's `json.dumps(…, indent=2, default=str)` writes
    /// for the dict the original builds from the same row.
    #[test]
    fn text_as_pythons_json_module_writes_it() {
        let at = NaiveDate::from_ymd_opt(2026, 3, 1)
            .unwrap()
            .and_hms_opt(6, 0, 0)
            .unwrap();
        let text = json(
            &["id", "name", "amount", "ratio", "active", "at", "x", "x"],
            &[vec![
                Value::Int(1),
                Value::Text("Zürich \"HQ\"\t😀".into()),
                Value::Decimal("12500.50".into()),
                Value::Float(1e16),
                Value::Bool(true),
                Value::Timestamp(at),
                Value::Null,
                Value::Float(f64::NAN),
            ]],
        );
        assert_eq!(
            text,
            r#"{
  "columns": [
    "id",
    "name",
    "amount",
    "ratio",
    "active",
    "at",
    "x",
    "x"
  ],
  "rows": [
    {
      "id": 1,
      "name": "Z\u00fcrich \"HQ\"\t\ud83d\ude00",
      "amount": "12500.50",
      "ratio": 1e+16,
      "active": true,
      "at": "2026-03-01 06:00:00",
      "x": NaN
    }
  ],
  "rowCount": 1
}"#
        );
    }

    #[test]
    fn values_as_json_dumps_writes_them() {
        let value = serde_json::json!({"params": {"since": "2026-01-16", "n": 3, "x": 0.5, "list": [1, "é"]}, "message": null});
        assert_eq!(
            python_json(&value),
            r#"{"message": null, "params": {"list": [1, "\u00e9"], "n": 3, "since": "2026-01-16", "x": 0.5}}"#
        );
    }

    #[test]
    fn no_rows_and_no_columns() {
        assert_eq!(
            json(&["a"], &[]),
            "{\n  \"columns\": [\n    \"a\"\n  ],\n  \"rows\": [],\n  \"rowCount\": 0\n}"
        );
        assert_eq!(
            json(&[], &[vec![]]),
            "{\n  \"columns\": [],\n  \"rows\": [\n    {}\n  ],\n  \"rowCount\": 1\n}"
        );
    }
}
