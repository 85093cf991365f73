//! A report as DWTOOL's CSV: Python's `csv.writer` with the `excel` dialect (`,`,
//! quotes only where needed, `""` for a quote, CRLF), UTF-8 without a BOM, a header of
//! the column names, and values as `str()` writes them.

use std::io::Write;

use dwsched_flow::Value;

use crate::value::write_python_str;

/// Writes a report's rows as they come; memory does not grow with the row count.
pub struct CsvReport<W: Write> {
    out: csv::Writer<W>,
    /// For each column, the one whose value it shows: the original keys a row by column
    /// name, so a name given twice shows the last of its columns' values.
    shown: Vec<usize>,
    rows: u64,
    /// The text of the field being written, reused for every value.
    field: String,
}

impl<W: Write> CsvReport<W> {
    /// Starts the file with its header row.
    pub fn new(out: W, columns: &[String]) -> csv::Result<Self> {
        let mut out = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .quote_style(csv::QuoteStyle::Necessary)
            .from_writer(out);
        out.write_record(columns)?;
        Ok(Self {
            out,
            shown: last_of_each_name(columns),
            rows: 0,
            field: String::new(),
        })
    }

    pub fn write_row(&mut self, row: &[Value]) -> csv::Result<()> {
        if let [only] = self.shown[..] {
            // A row of one empty field is `""`, which `write_record` knows to write.
            let text = row.get(only).map(crate::python_str).unwrap_or_default();
            self.out.write_record([text])?;
        } else {
            for &index in &self.shown {
                self.field.clear();
                if let Some(value) = row.get(index) {
                    write_python_str(value, &mut self.field);
                }
                self.out.write_field(self.field.as_bytes())?;
            }
            self.out.write_record(None::<&[u8]>)?;
        }
        self.rows += 1;
        Ok(())
    }

    /// Flushes the file; the number of rows written.
    pub fn finish(mut self) -> std::io::Result<(u64, W)> {
        self.out.flush()?;
        let rows = self.rows;
        let out = self
            .out
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok((rows, out))
    }
}

/// For each column position, the position of the last column with the same name.
pub(crate) fn last_of_each_name(columns: &[String]) -> Vec<usize> {
    columns
        .iter()
        .map(|name| columns.iter().rposition(|other| other == name).unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(columns: &[&str], rows: &[Vec<Value>]) -> String {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let mut report = CsvReport::new(Vec::new(), &columns).unwrap();
        for row in rows {
            report.write_row(row).unwrap();
        }
        let (count, bytes) = report.finish().unwrap();
        assert_eq!(count, rows.len() as u64);
        String::from_utf8(bytes).unwrap()
    }

    /// Expected bytes are what CPython 3's `csv.writer(f)` writes for the same values.
    #[test]
    fn bytes_as_pythons_csv_module_writes_them() {
        let text = csv(
            &["id", "name", "amount", "ratio", "active", "note"],
            &[
                vec![
                    Value::Int(1),
                    Value::Text("Smith, John".into()),
                    Value::Decimal("12500.50".into()),
                    Value::Float(0.1),
                    Value::Bool(true),
                    Value::Null,
                ],
                vec![
                    Value::Int(2),
                    Value::Text("say \"hi\"".into()),
                    Value::Decimal("0.00000010".into()),
                    Value::Float(1e16),
                    Value::Bool(false),
                    Value::Text("two\nlines\r\nhere".into()),
                ],
                vec![
                    Value::Int(3),
                    Value::Text(" lead and trail ".into()),
                    Value::Decimal("-3".into()),
                    Value::Float(-0.0),
                    Value::Null,
                    Value::Text("Zürich; 100%".into()),
                ],
            ],
        );
        assert_eq!(
            text,
            "id,name,amount,ratio,active,note\r\n\
             1,\"Smith, John\",12500.50,0.1,True,\r\n\
             2,\"say \"\"hi\"\"\",1.0E-7,1e+16,False,\"two\nlines\r\nhere\"\r\n\
             3, lead and trail ,-3,-0.0,,Zürich; 100%\r\n"
        );
    }

    #[test]
    fn a_row_of_one_empty_field_is_two_quotes() {
        // Python writes `""` so that the row is not an empty line.
        assert_eq!(csv(&["only"], &[vec![Value::Null]]), "only\r\n\"\"\r\n");
        assert_eq!(
            csv(&["a", "b"], &[vec![Value::Null, Value::Null]]),
            "a,b\r\n,\r\n"
        );
    }

    #[test]
    fn a_name_given_twice_shows_its_last_value() {
        assert_eq!(
            csv(
                &["x", "y", "x"],
                &[vec![Value::Int(1), Value::Int(2), Value::Int(3)]]
            ),
            "x,y,x\r\n3,2,3\r\n"
        );
    }
}
