//! An upload's file by its extension (SPEC §7.3), as a header and records of text:
//! delimited text (`.csv`, `.tsv`, `.txt`), Excel's first sheet (`.xlsx`, `.xlsm`,
//! `.xls`, `.ods`), JSON (an array of objects, nested keys flattened as `a.b`), XML
//! (the root's children are the rows, the first row's child elements the columns) and
//! Parquet (`.parquet`, `.parq`). PDF is refused. Values are text, so that a number's
//! form in the file is what the mapping converts: an Excel whole number is `1001`,
//! never `1001.0`.
//!
//! `HDRRWCNT` rows before the header and `FTRRWCNT` records at the end apply to every
//! format with rows (Excel rows, JSON and XML records, Parquet rows). Delimited files
//! and Parquet stream; Excel, JSON and XML are read whole, as their readers do.

use std::collections::VecDeque;
use std::io::BufReader;
use std::path::Path;

use calamine::{Data, Reader as _};

use crate::{DelimitedFile, Record, Row};

/// A file opened past its header: its columns, and its records with their lines (rows
/// for Excel, record numbers for JSON, XML and Parquet; 1-based).
pub struct FileRecords {
    pub header: Vec<String>,
    pub rows: Box<dyn Iterator<Item = Row> + Send>,
}

/// Opens `path` by its extension.
pub fn open_file(path: &Path, header_rows: u64, footer_rows: usize) -> Result<FileRecords, String> {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let shown = path.display();
    match extension.as_str() {
        "csv" | "tsv" | "txt" => {
            let file =
                std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
            let reader = DelimitedFile::open(
                BufReader::with_capacity(256 * 1024, file),
                header_rows,
                footer_rows,
            )
            .map_err(|e| format!("{shown}: {e}"))?;
            Ok(FileRecords {
                header: reader.header().to_vec(),
                rows: Box::new(reader),
            })
        }
        "xlsx" | "xlsm" | "xls" | "xlsb" | "ods" => excel(path, header_rows, footer_rows),
        "json" => json(path, header_rows, footer_rows),
        "xml" => xml(path, header_rows, footer_rows),
        "parquet" | "parq" => parquet(path, header_rows, footer_rows),
        "pdf" => Err(format!(
            "{shown}: PDF files are not read; tables cannot be taken reliably from a PDF, so export the data as CSV or Excel"
        )),
        other => Err(format!(
            "{shown}: files of type '{other}' are not read; CSV, TSV, TXT, Excel, JSON, XML and Parquet are"
        )),
    }
}

/// Records after `skip` of them, the last `footer` left out.
fn records(mut all: Vec<(u64, Vec<String>)>, header: Vec<String>, footer: usize) -> FileRecords {
    let keep = all.len().saturating_sub(footer);
    all.truncate(keep);
    let width = header.len();
    let rows = all.into_iter().map(move |(line, mut fields)| {
        fields.resize(width, String::new());
        Row::Record(Record { line, fields })
    });
    FileRecords {
        header,
        rows: Box::new(rows.collect::<Vec<_>>().into_iter()),
    }
}

fn excel(path: &Path, header_rows: u64, footer_rows: usize) -> Result<FileRecords, String> {
    let shown = path.display();
    let mut workbook =
        calamine::open_workbook_auto(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let sheet = workbook
        .worksheet_range_at(0)
        .ok_or_else(|| format!("{shown}: the workbook has no sheet"))?
        .map_err(|e| format!("{shown}: {e}"))?;
    let first_row = u64::from(sheet.start().map_or(0, |(row, _)| row));
    let mut rows = sheet
        .rows()
        .enumerate()
        .skip(usize::try_from(header_rows).unwrap_or(usize::MAX));
    let Some((_, header)) = rows.next() else {
        return Err(format!(
            "{shown}: no header row after the {header_rows} rows HDRRWCNT skips"
        ));
    };
    let header: Vec<String> = header.iter().map(cell_text).collect();
    let data = rows
        .map(|(index, cells)| {
            (
                first_row + index as u64 + 1,
                cells.iter().map(cell_text).collect(),
            )
        })
        .collect();
    Ok(records(data, header, footer_rows))
}

/// A cell as text: whole numbers without `.0`, dates as `YYYY-MM-DD` (with the time
/// when there is one), booleans as `True`/`False`, errors as their code.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(n) => n.to_string(),
        Data::Float(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", *x as i64),
        Data::Float(x) => dwsched_model::python::python_float(*x),
        Data::Bool(true) => "True".into(),
        Data::Bool(false) => "False".into(),
        Data::DateTime(at) => match at.as_datetime() {
            Some(t) if t.time() == chrono::NaiveTime::MIN => t.format("%Y-%m-%d").to_string(),
            Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            None => at.as_f64().to_string(),
        },
        Data::Error(e) => format!("#{e:?}"),
    }
}

fn json(path: &Path, header_rows: u64, footer_rows: usize) -> Result<FileRecords, String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let value: serde_json::Value = serde_json::from_reader(BufReader::new(file))
        .map_err(|e| format!("{shown}: not JSON: {e}"))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        // An object holding one array of records is that array; another object is
        // one record.
        serde_json::Value::Object(map) => {
            let arrays: Vec<&serde_json::Value> = map.values().filter(|v| v.is_array()).collect();
            match arrays.as_slice() {
                [serde_json::Value::Array(items)] if map.len() == 1 => items.clone(),
                _ => vec![serde_json::Value::Object(map)],
            }
        }
        other => {
            return Err(format!(
                "{shown}: expected an array of objects, not {other}"
            ));
        }
    };
    let mut header: Vec<String> = Vec::new();
    let mut flat_items = Vec::with_capacity(items.len());
    for item in items
        .into_iter()
        .skip(usize::try_from(header_rows).unwrap_or(usize::MAX))
    {
        let mut flat = Vec::new();
        flatten("", &item, &mut flat);
        for (key, _) in &flat {
            if !header.contains(key) {
                header.push(key.clone());
            }
        }
        flat_items.push(flat);
    }
    let data = flat_items
        .into_iter()
        .enumerate()
        .map(|(index, flat)| {
            let fields = header
                .iter()
                .map(|column| {
                    flat.iter()
                        .find(|(key, _)| key == column)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                })
                .collect();
            (header_rows + index as u64 + 1, fields)
        })
        .collect();
    Ok(records(data, header, footer_rows))
}

/// An object's values by dotted path (`address.city`), as pandas' `json_normalize`
/// names them; arrays stay JSON text, NULL is empty.
fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&name, inner, out);
            }
        }
        serde_json::Value::Null => out.push((prefix.to_string(), String::new())),
        serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        serde_json::Value::Bool(true) => out.push((prefix.to_string(), "True".into())),
        serde_json::Value::Bool(false) => out.push((prefix.to_string(), "False".into())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

fn xml(path: &Path, header_rows: u64, footer_rows: usize) -> Result<FileRecords, String> {
    use quick_xml::events::Event;
    let shown = path.display();
    let mut reader =
        quick_xml::Reader::from_file(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    // Values are trimmed by the plan; text around an entity keeps its spaces here.
    reader.config_mut().trim_text(false);
    let mut buffer = Vec::new();
    // Depth 1 is the root, 2 a row, 3 a row's value.
    let mut depth = 0usize;
    let mut rows: Vec<Vec<(String, String)>> = Vec::new();
    let mut field: Option<String> = None;
    loop {
        let event = reader
            .read_event_into(&mut buffer)
            .map_err(|e| format!("{shown}: not XML at byte {}: {e}", reader.error_position()))?;
        match event {
            Event::Start(start) => {
                depth += 1;
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                match depth {
                    2 => rows.push(Vec::new()),
                    3 => {
                        field = Some(name.clone());
                        if let Some(row) = rows.last_mut() {
                            row.push((name, String::new()));
                        }
                    }
                    _ => {}
                }
            }
            Event::Empty(empty) => {
                let name = String::from_utf8_lossy(empty.local_name().as_ref()).into_owned();
                match depth + 1 {
                    2 => rows.push(Vec::new()),
                    3 => {
                        if let Some(row) = rows.last_mut() {
                            row.push((name, String::new()));
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(text) if depth == 3 && field.is_some() => {
                let text = text.decode().map_err(|e| format!("{shown}: {e}"))?;
                let text = quick_xml::escape::unescape(&text)
                    .map_err(|e| format!("{shown}: {e}"))?
                    .into_owned();
                if let Some((_, value)) = rows.last_mut().and_then(|r| r.last_mut()) {
                    value.push_str(&text);
                }
            }
            Event::GeneralRef(reference) if depth == 3 && field.is_some() => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => {
                        let name = String::from_utf8_lossy(&reference).into_owned();
                        quick_xml::escape::resolve_xml_entity(&name)
                            .map(str::to_string)
                            .ok_or_else(|| format!("{shown}: unknown entity &{name};"))?
                    }
                };
                if let Some((_, value)) = rows.last_mut().and_then(|r| r.last_mut()) {
                    value.push_str(&resolved);
                }
            }
            Event::CData(data) if depth == 3 => {
                if let Some((_, value)) = rows.last_mut().and_then(|r| r.last_mut()) {
                    value.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Event::End(_) => {
                if depth == 3 {
                    field = None;
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
        buffer.clear();
    }
    let rows: Vec<_> = rows
        .into_iter()
        .skip(usize::try_from(header_rows).unwrap_or(usize::MAX))
        .collect();
    let header: Vec<String> = rows
        .first()
        .map(|row| row.iter().map(|(name, _)| name.clone()).collect())
        .ok_or_else(|| format!("{shown}: no record element under the root"))?;
    let data = rows
        .into_iter()
        .enumerate()
        .map(|(index, row)| {
            let fields = header
                .iter()
                .map(|column| {
                    row.iter()
                        .find(|(name, _)| name == column)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                })
                .collect();
            (header_rows + index as u64 + 1, fields)
        })
        .collect();
    Ok(records(data, header, footer_rows))
}

fn parquet(path: &Path, header_rows: u64, footer_rows: usize) -> Result<FileRecords, String> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("{shown}: not Parquet: {e}"))?;
    let header: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let total = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let last = total.saturating_sub(u64::try_from(footer_rows).unwrap_or(0));
    let reader = builder
        .with_batch_size(8_192)
        .build()
        .map_err(|e| format!("{shown}: {e}"))?;
    let mut number = 0u64;
    let mut pending: VecDeque<Row> = VecDeque::new();
    let mut batches = reader;
    let rows = std::iter::from_fn(move || {
        loop {
            if let Some(row) = pending.pop_front() {
                return Some(row);
            }
            let batch = batches.next()?;
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    return Some(Row::Bad {
                        line: number + 1,
                        reason: format!("{shown}: {e}"),
                    });
                }
            };
            let options = arrow_cast::display::FormatOptions::default();
            let formatters: Result<Vec<_>, _> = batch
                .columns()
                .iter()
                .map(|column| {
                    arrow_cast::display::ArrayFormatter::try_new(column.as_ref(), &options)
                })
                .collect();
            let formatters = match formatters {
                Ok(f) => f,
                Err(e) => {
                    return Some(Row::Bad {
                        line: number + 1,
                        reason: format!("{shown}: {e}"),
                    });
                }
            };
            for index in 0..batch.num_rows() {
                number += 1;
                if number <= header_rows || number > last {
                    continue;
                }
                let fields = batch
                    .columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(column, formatter)| {
                        if arrow_array::Array::is_null(column.as_ref(), index) {
                            String::new()
                        } else {
                            formatter.value(index).to_string()
                        }
                    })
                    .collect();
                pending.push_back(Row::Record(Record {
                    line: number,
                    fields,
                }));
            }
        }
    });
    Ok(FileRecords {
        header,
        rows: Box::new(rows),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(records: FileRecords) -> (Vec<String>, Vec<(u64, Vec<String>)>) {
        let rows = records
            .rows
            .map(|row| match row {
                Row::Record(r) => (r.line, r.fields),
                Row::Bad { line, reason } => panic!("line {line}: {reason}"),
            })
            .collect();
        (records.header, rows)
    }

    fn scratch(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn json_records_flatten_nested_keys() {
        let (_dir, path) = scratch(
            "c.json",
            br#"{"customers": [{"id": "007", "name": "Ann", "address": {"city": "Pune"}, "n": 3},
                {"id": "008", "name": null, "address": {"city": "Goa", "zip": "403001"}, "n": 2.5},
                {"id": "TOTAL"}]}"#,
        );
        let (header, rows) = fields(open_file(&path, 0, 1).unwrap());
        // An object's keys in name order, then keys first seen in later records.
        assert_eq!(header, ["address.city", "id", "n", "name", "address.zip"]);
        assert_eq!(rows.len(), 2, "the footer record is left out");
        assert_eq!(
            rows[0],
            (
                1,
                vec![
                    "Pune".into(),
                    "007".into(),
                    "3".into(),
                    "Ann".into(),
                    String::new()
                ]
            )
        );
        assert_eq!(rows[1].1[4], "403001");
    }

    #[test]
    fn xml_rows_are_the_roots_children() {
        let (_dir, path) = scratch(
            "c.xml",
            b"<?xml version=\"1.0\"?>\n<customers>\n<customer><id>007</id><name>A &amp; B</name></customer>\n\
              <customer><id>008</id><name/></customer>\n</customers>",
        );
        let (header, rows) = fields(open_file(&path, 0, 0).unwrap());
        assert_eq!(header, ["id", "name"]);
        assert_eq!(rows[0].1, ["007", "A & B"]);
        assert_eq!(rows[1].1, ["008", ""]);
    }

    #[test]
    fn excel_numbers_keep_their_form_and_rows_their_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.xlsx");
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.write_string(0, 0, "exported 2026-03-01").unwrap();
        for (col, name) in ["id", "amount", "code", "joined"].iter().enumerate() {
            sheet.write_string(1, col as u16, *name).unwrap();
        }
        sheet.write_number(2, 0, 1001.0).unwrap();
        sheet.write_number(2, 1, 12.5).unwrap();
        sheet.write_string(2, 2, "007").unwrap();
        let date = rust_xlsxwriter::ExcelDateTime::from_ymd(2026, 3, 1).unwrap();
        let format = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        sheet
            .write_datetime_with_format(2, 3, &date, &format)
            .unwrap();
        sheet.write_string(3, 0, "TOTAL").unwrap();
        workbook.save(&path).unwrap();
        let (header, rows) = fields(open_file(&path, 1, 1).unwrap());
        assert_eq!(header, ["id", "amount", "code", "joined"]);
        assert_eq!(
            rows,
            [(
                3,
                vec![
                    "1001".into(),
                    "12.5".into(),
                    "007".into(),
                    "2026-03-01".into()
                ]
            )]
        );
    }

    #[test]
    fn parquet_rows_stream_as_text() {
        use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.parquet");
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![Some(1001), None, Some(3)]));
        let names: ArrayRef = Arc::new(StringArray::from(vec!["Ann", "Bo", "total"]));
        let batch = RecordBatch::try_from_iter([("id", ids), ("name", names)]).unwrap();
        let file = std::fs::File::create(&path).unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let (header, rows) = fields(open_file(&path, 0, 1).unwrap());
        assert_eq!(header, ["id", "name"]);
        assert_eq!(
            rows,
            [
                (1, vec!["1001".into(), "Ann".into()]),
                (2, vec![String::new(), "Bo".into()])
            ]
        );
    }

    #[test]
    fn pdf_and_unknown_types_are_refused() {
        let err = open_file(Path::new("/srv/in/scan.pdf"), 0, 0)
            .err()
            .unwrap();
        assert!(err.contains("PDF files are not read"), "{err}");
        let err = open_file(Path::new("/srv/in/data.docx"), 0, 0)
            .err()
            .unwrap();
        assert!(err.contains("'docx'"), "{err}");
    }
}
