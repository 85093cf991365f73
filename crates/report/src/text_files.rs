//! A report as pipe-delimited text (`TXT`) and as XML, the shapes of DWTOOL's writers.

use std::io::{self, Read, Seek, SeekFrom, Write};

use dwsched_flow::Value;

use crate::csv_file::last_of_each_name;
use crate::python_str;

/// `TXT`: the column names, then each row, joined by `|`, one line each (`\n`), values
/// as `str()` writes them and NULL empty, nothing quoted (the original's `_write_txt`).
pub struct TxtReport<W: Write> {
    out: W,
    shown: Vec<usize>,
    rows: u64,
}

impl<W: Write> TxtReport<W> {
    pub fn new(mut out: W, columns: &[String]) -> io::Result<Self> {
        writeln!(out, "{}", columns.join("|"))?;
        Ok(Self {
            out,
            shown: last_of_each_name(columns),
            rows: 0,
        })
    }

    pub fn write_row(&mut self, row: &[Value]) -> io::Result<()> {
        let values: Vec<String> = self
            .shown
            .iter()
            .map(|&i| row.get(i).map(python_str).unwrap_or_default())
            .collect();
        writeln!(self.out, "{}", values.join("|"))?;
        self.rows += 1;
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<(u64, W)> {
        self.out.flush()?;
        Ok((self.rows, self.out))
    }
}

/// `XML`, as the original's `ElementTree` writes it:
/// `<?xml version="1.0" encoding="UTF-8"?>\n<report name=".." rowCount="n"><row
/// index="1"><COL>..</COL>…</row>…</report>`, not pretty-printed. Element names are
/// the column names with ` ` and `-` as `_`. Where the original wrote text that is not
/// XML, this writes XML: NULL is an empty element (`<COL />`, not `None`), a name that
/// is not an XML name has its other characters as `_` (and a leading `_` when it does
/// not start with a letter or `_`), and characters XML cannot hold are U+FFFD.
///
/// The row count comes first in the file but is known last, so rows go to `spool` and
/// `finish` writes the whole document.
pub struct XmlReport<S: Read + Write + Seek> {
    name: String,
    elements: Vec<(String, usize)>,
    spool: io::BufWriter<S>,
    rows: u64,
}

impl<S: Read + Write + Seek> XmlReport<S> {
    /// `name` is the report's (`RPRTNM`).
    pub fn new(name: &str, columns: &[String], spool: S) -> Self {
        let last = last_of_each_name(columns);
        let elements = columns
            .iter()
            .enumerate()
            .map(|(i, column)| (element_name(column), last[i]))
            .collect();
        Self {
            name: name.to_string(),
            elements,
            spool: io::BufWriter::with_capacity(256 * 1024, spool),
            rows: 0,
        }
    }

    pub fn write_row(&mut self, row: &[Value]) -> io::Result<()> {
        self.rows += 1;
        let mut text = format!("<row index=\"{}\">", self.rows);
        for (element, column) in &self.elements {
            // NULL renders empty; empty text is a short element, as ElementTree has it.
            let value = row.get(*column).map(python_str).unwrap_or_default();
            if value.is_empty() {
                text.push_str(&format!("<{element} />"));
            } else {
                text.push_str(&format!("<{element}>{}</{element}>", escape_text(&value)));
            }
        }
        text.push_str("</row>");
        self.spool.write_all(text.as_bytes())
    }

    /// Writes the document to `out`; the number of rows.
    pub fn finish(self, out: &mut impl Write) -> io::Result<u64> {
        let head = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<report name=\"{}\" rowCount=\"{}\"",
            escape_attribute(&self.name),
            self.rows
        );
        out.write_all(head.as_bytes())?;
        if self.rows == 0 {
            out.write_all(b" />")?;
        } else {
            out.write_all(b">")?;
            let mut spool = self
                .spool
                .into_inner()
                .map_err(io::IntoInnerError::into_error)?;
            spool.seek(SeekFrom::Start(0))?;
            io::copy(&mut spool, out)?;
            out.write_all(b"</report>")?;
        }
        out.flush()?;
        Ok(self.rows)
    }
}

/// A column name as an element name: ` ` and `-` as `_` (the original's rule), then
/// whatever XML does not allow in a name as `_`.
fn element_name(column: &str) -> String {
    let mut name: String = column
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

/// Whether XML 1.0 can hold a character.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// Element text as `ElementTree` escapes it (`&`, `<`, `>`).
fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if !xml_char(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// An attribute as `ElementTree` escapes it: also `"`, CR, LF and tab.
fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in escape_text(text).chars() {
        match c {
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#09;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn columns(names: &[&str]) -> Vec<String> {
        names.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn txt_joins_with_pipes_and_quotes_nothing() {
        let mut report = TxtReport::new(Vec::new(), &columns(&["id", "name", "note"])).unwrap();
        report
            .write_row(&[Value::Int(1), Value::Text("a|b, \"c\"".into()), Value::Null])
            .unwrap();
        report
            .write_row(&[
                Value::Int(2),
                Value::Decimal("0.50".into()),
                Value::Bool(true),
            ])
            .unwrap();
        let (rows, bytes) = report.finish().unwrap();
        assert_eq!(rows, 2);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "id|name|note\n1|a|b, \"c\"|\n2|0.50|True\n"
        );
    }

    fn xml(name: &str, columns: &[String], rows: &[Vec<Value>]) -> String {
        let mut report = XmlReport::new(name, columns, Cursor::new(Vec::new()));
        for row in rows {
            report.write_row(row).unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(report.finish(&mut out).unwrap(), rows.len() as u64);
        String::from_utf8(out).unwrap()
    }

    /// Expected text is what CPython 3's `ElementTree` writes for the same report,
    /// where a value is not NULL.
    #[test]
    fn xml_as_element_tree_writes_it() {
        let text = xml(
            "Sales \"Q1\" & <more>\nx",
            &columns(&["A B", "unit-price", "E"]),
            &[
                vec![
                    Value::Text("x < y & z > \"w\"\n".into()),
                    Value::Decimal("12.50".into()),
                    Value::Text(String::new()),
                ],
                vec![Value::Int(2), Value::Null, Value::Text("\u{1}bell".into())],
            ],
        );
        assert_eq!(
            text,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <report name=\"Sales &quot;Q1&quot; &amp; &lt;more&gt;&#10;x\" rowCount=\"2\">\
             <row index=\"1\"><A_B>x &lt; y &amp; z &gt; \"w\"\n</A_B><unit_price>12.50</unit_price><E /></row>\
             <row index=\"2\"><A_B>2</A_B><unit_price /><E>\u{fffd}bell</E></row></report>"
        );
    }

    #[test]
    fn xml_names_and_empty_reports() {
        assert_eq!(
            xml("Empty", &columns(&["2019 total", "a/b", "ok_name"]), &[]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<report name=\"Empty\" rowCount=\"0\" />"
        );
        assert_eq!(element_name("2019 total"), "_2019_total");
        assert_eq!(element_name("a/b"), "a_b");
        assert_eq!(element_name("Größe"), "Größe");
        assert_eq!(element_name(""), "_");
    }
}
