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

use calamine::Reader as _;

use crate::delimited::FooterHold;
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

/// What a reader thread hands over: the header first, then rows.
enum Produced {
    Header(Vec<String>),
    Row(Row),
}

/// Where a reader thread puts what it reads; the channel holds [`ROWS_IN_FLIGHT`]
/// items, so memory stays that of a few rows whatever the file's size.
struct RowSink {
    sender: std::sync::mpsc::SyncSender<Result<Produced, String>>,
    header_sent: bool,
}

/// Rows a reader thread may be ahead of the load.
const ROWS_IN_FLIGHT: usize = 512;

impl RowSink {
    /// Hands on the header; false once the reader has gone.
    fn header(&mut self, header: Vec<String>) -> bool {
        self.header_sent = true;
        self.sender.send(Ok(Produced::Header(header))).is_ok()
    }

    /// Hands on a record; false once the reader has gone.
    fn record(&self, line: u64, fields: Vec<String>) -> bool {
        self.sender
            .send(Ok(Produced::Row(Row::Record(Record { line, fields }))))
            .is_ok()
    }
}

/// A file read on its own thread by `read`, which sends the header and then the
/// records to its sink; its error before the header fails the opening, and after it
/// ends the records with [`Row::Unreadable`]. The last `footer_rows` records are left
/// out.
fn on_reader_thread(
    shown: &str,
    footer_rows: usize,
    read: impl FnOnce(&mut RowSink) -> Result<(), String> + Send + 'static,
) -> Result<FileRecords, String> {
    let (sender, receiver) = std::sync::mpsc::sync_channel(ROWS_IN_FLIGHT);
    std::thread::Builder::new()
        .name("upload-reader".into())
        .spawn(move || {
            let mut sink = RowSink {
                sender,
                header_sent: false,
            };
            if let Err(message) = read(&mut sink) {
                let _ = sink.sender.send(if sink.header_sent {
                    Ok(Produced::Row(Row::Unreadable(message)))
                } else {
                    Err(message)
                });
            }
        })
        .map_err(|e| format!("{shown}: cannot start its reader: {e}"))?;
    let header = match receiver.recv() {
        Ok(Ok(Produced::Header(header))) => header,
        Ok(Err(message)) => return Err(message),
        Ok(Ok(Produced::Row(_))) | Err(_) => {
            return Err(format!("{shown}: its reader ended without a header"));
        }
    };
    let mut footer = FooterHold::new(footer_rows);
    let rows = std::iter::from_fn(move || {
        footer.next(|| match receiver.recv().ok()? {
            Ok(Produced::Row(row)) => Some(row),
            Ok(Produced::Header(_)) => None,
            Err(message) => Some(Row::Unreadable(message)),
        })
    });
    Ok(FileRecords {
        header,
        rows: Box::new(rows),
    })
}

/// Rows as they come, after `skip` of them: the first is the header, the rest records
/// of the header's width.
struct HeaderThenRecords {
    skip: u64,
    seen: u64,
    width: Option<usize>,
}

impl HeaderThenRecords {
    fn new(skip: u64) -> Self {
        Self {
            skip,
            seen: 0,
            width: None,
        }
    }

    /// Takes row `line`; false once the reader has gone.
    fn take(&mut self, sink: &mut RowSink, line: u64, mut fields: Vec<String>) -> bool {
        self.seen += 1;
        if self.seen <= self.skip {
            return true;
        }
        match self.width {
            None => {
                self.width = Some(fields.len());
                sink.header(fields)
            }
            Some(width) => {
                fields.resize(width, String::new());
                sink.record(line, fields)
            }
        }
    }
}

/// Excel's first sheet. `.xlsx`/`.xlsm` and `.xlsb` stream cell by cell on a reader
/// thread (the shared strings are held, as the format requires); `.xls` (at most
/// 65,536 rows) and `.ods` are read whole. Rows count from the first row that holds a
/// value, and columns from the sheet's first used column, as a sheet's range does;
/// empty rows between rows with values are records of empty fields.
fn excel(path: &Path, header_rows: u64, footer_rows: usize) -> Result<FileRecords, String> {
    let shown = path.display().to_string();
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let path = path.to_path_buf();
    let no_header = move |shown: &str| {
        format!("{shown}: no header row after the {header_rows} rows HDRRWCNT skips")
    };
    let label = shown.clone();
    on_reader_thread(&label, footer_rows, move |sink| {
        let mut rows = HeaderThenRecords::new(header_rows);
        let mut sheet = SheetRows::default();
        let mut take = |line: u64, fields: Vec<String>| rows.take(sink, line, fields);
        let read = |e: &dyn std::fmt::Display| format!("cannot read {shown}: {e}");
        // Xlsx and Xlsb have the same cell reader, with no trait in common.
        macro_rules! stream_cells {
            ($workbook:ty) => {{
                let mut workbook: $workbook =
                    calamine::open_workbook(&path).map_err(|e| read(&e))?;
                let name = first_sheet(&workbook.sheet_names(), &shown)?;
                let mut cells = workbook
                    .worksheet_cells_reader(&name)
                    .map_err(|e| read(&e))?;
                sheet.first_column = cells.dimensions().start.1;
                let mut gone = false;
                while !gone && let Some(cell) = cells.next_cell().map_err(|e| read(&e))? {
                    gone = !sheet.cell(cell.get_position(), cell.get_value(), &mut take);
                }
                gone
            }};
        }
        let gone = match extension.as_str() {
            "xlsx" | "xlsm" => stream_cells!(calamine::Xlsx<_>),
            "xlsb" => stream_cells!(calamine::Xlsb<_>),
            _ => {
                let mut workbook = calamine::open_workbook_auto(&path).map_err(|e| read(&e))?;
                let range = workbook
                    .worksheet_range_at(0)
                    .ok_or_else(|| format!("{shown}: the workbook has no sheet"))?
                    .map_err(|e| read(&e))?;
                let (first_row, first_column) = range.start().unwrap_or((0, 0));
                sheet.first_column = first_column;
                let mut gone = false;
                for (index, cells) in range.rows().enumerate() {
                    let row = first_row + u32::try_from(index).unwrap_or(u32::MAX);
                    for (column, cell) in cells.iter().enumerate() {
                        let column = first_column + u32::try_from(column).unwrap_or(u32::MAX);
                        gone = gone || !sheet.cell((row, column), cell, &mut take);
                    }
                    if gone {
                        break;
                    }
                }
                gone
            }
        };
        if !gone {
            sheet.finish(&mut take);
        }
        if rows.width.is_none() && !gone {
            return Err(no_header(&shown));
        }
        Ok(())
    })
}

/// The sheet's first worksheet's name.
fn first_sheet(names: &[String], shown: &str) -> Result<String, String> {
    names
        .first()
        .cloned()
        .ok_or_else(|| format!("{shown}: the workbook has no sheet"))
}

/// A sheet's cells, in row order, gathered into rows.
#[derive(Default)]
struct SheetRows {
    first_column: u32,
    /// The row being gathered: its index in the sheet and its fields.
    current: Option<(u32, Vec<String>)>,
}

impl SheetRows {
    /// Takes a cell; `take` gets each finished row (with the empty rows before it) by
    /// its 1-based line, and says whether to go on.
    fn cell(
        &mut self,
        (row, column): (u32, u32),
        value: &impl calamine::DataType,
        take: &mut impl FnMut(u64, Vec<String>) -> bool,
    ) -> bool {
        if value.is_empty() {
            return true;
        }
        let mut go_on = true;
        match &self.current {
            Some((current, _)) if *current == row => {}
            Some((current, _)) => {
                let current = *current;
                let (_, fields) = self.current.take().expect("matched above");
                go_on = take(u64::from(current) + 1, fields);
                for empty in current + 1..row {
                    go_on = go_on && take(u64::from(empty) + 1, Vec::new());
                }
                self.current = Some((row, Vec::new()));
            }
            None => self.current = Some((row, Vec::new())),
        }
        let (_, fields) = self.current.as_mut().expect("set above");
        let at = usize::try_from(column.saturating_sub(self.first_column)).unwrap_or(usize::MAX);
        if fields.len() <= at {
            fields.resize(at + 1, String::new());
        }
        fields[at] = cell_text(value);
        go_on
    }

    /// Hands on the last row.
    fn finish(&mut self, take: &mut impl FnMut(u64, Vec<String>) -> bool) {
        if let Some((row, fields)) = self.current.take() {
            take(u64::from(row) + 1, fields);
        }
    }
}

/// A cell as text: whole numbers without `.0`, dates as `YYYY-MM-DD` (with the time
/// when there is one), booleans as `True`/`False`, errors as their code.
fn cell_text(cell: &impl calamine::DataType) -> String {
    if let Some(text) = cell
        .get_string()
        .or_else(|| cell.get_datetime_iso())
        .or_else(|| cell.get_duration_iso())
    {
        return text.to_string();
    }
    if let Some(n) = cell.get_int() {
        return n.to_string();
    }
    if let Some(x) = cell.get_float() {
        return if x.fract() == 0.0 && x.abs() < 1e15 {
            format!("{}", x as i64)
        } else {
            dwsched_model::python::python_float(x)
        };
    }
    if let Some(flag) = cell.get_bool() {
        return if flag { "True" } else { "False" }.into();
    }
    if let Some(at) = cell.get_datetime() {
        return match at.as_datetime() {
            Some(t) if t.time() == chrono::NaiveTime::MIN => t.format("%Y-%m-%d").to_string(),
            Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            None => at.as_f64().to_string(),
        };
    }
    if let Some(error) = cell.get_error() {
        return format!("#{error:?}");
    }
    String::new()
}

/// JSON: an array of objects (or an object holding one such array), read twice on a
/// reader thread, one record at a time: first for the columns (every flattened key, in
/// the order first seen), then for the records. Another object is one record, read
/// whole.
fn json(path: &Path, header_rows: u64, footer_rows: usize) -> Result<FileRecords, String> {
    let shown = path.display().to_string();
    let path = path.to_path_buf();
    let label = shown.clone();
    on_reader_thread(&label, footer_rows, move |sink| {
        let open = || {
            std::fs::File::open(&path)
                .map(|f| BufReader::with_capacity(256 * 1024, f))
                .map_err(|e| format!("cannot read {shown}: {e}"))
        };
        let not_json = |e: serde_json::Error| format!("{shown}: not JSON: {e}");
        // First pass: the columns.
        let mut columns = JsonColumns::default();
        let mut number = 0u64;
        let mut note_keys = |item: &serde_json::Value| {
            number += 1;
            if number > header_rows {
                columns.note(item);
            }
            true
        };
        let shape = json_items(open()?, &mut note_keys).map_err(not_json)?;
        let single = match shape {
            JsonShape::Items => None,
            JsonShape::OneObject => {
                let value: serde_json::Value =
                    serde_json::from_reader(open()?).map_err(not_json)?;
                columns = JsonColumns::default();
                if header_rows == 0 {
                    columns.note(&value);
                }
                Some(value)
            }
        };
        let JsonColumns {
            names: header,
            index,
        } = columns;
        if !sink.header(header.clone()) {
            return Ok(());
        }
        // Second pass: the records, each by the columns.
        let width = header.len();
        let mut number = 0u64;
        let mut gone = false;
        let mut send = |item: &serde_json::Value| {
            number += 1;
            if number <= header_rows {
                return true;
            }
            let mut fields = vec![String::new(); width];
            let mut flat = Vec::new();
            flatten("", item, &mut flat);
            for (key, value) in flat {
                if let Some(&at) = index.get(&key) {
                    fields[at] = value;
                }
            }
            gone = !sink.record(number, fields);
            !gone
        };
        match single {
            Some(value) => {
                send(&value);
            }
            None => {
                let walked = json_items(open()?, &mut send);
                if !gone {
                    walked.map_err(not_json)?;
                }
            }
        }
        Ok(())
    })
}

/// The columns of JSON records: every flattened key, in the order first seen.
#[derive(Default)]
struct JsonColumns {
    names: Vec<String>,
    index: std::collections::HashMap<String, usize>,
}

impl JsonColumns {
    fn note(&mut self, item: &serde_json::Value) {
        let mut flat = Vec::new();
        flatten("", item, &mut flat);
        for (key, _) in flat {
            if !self.index.contains_key(&key) {
                self.index.insert(key.clone(), self.names.len());
                self.names.push(key);
            }
        }
    }
}

/// What a JSON file holds.
enum JsonShape {
    /// An array of records (or an object whose one member is that array), handed one
    /// by one.
    Items,
    /// An object that is a record itself.
    OneObject,
}

/// Walks a JSON file's records one at a time, giving each to `each` (which says
/// whether to go on), without holding the file.
fn json_items(
    reader: impl std::io::Read,
    each: &mut dyn FnMut(&serde_json::Value) -> bool,
) -> Result<JsonShape, serde_json::Error> {
    use serde::de::Deserializer as _;
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let shape = deserializer.deserialize_any(TopLevel { each })?;
    deserializer.end()?;
    Ok(shape)
}

/// Why a walk stopped before the end: the reader has gone.
const WALK_STOPPED: &str = "the reading of the records stopped";

struct TopLevel<'a> {
    each: &'a mut dyn FnMut(&serde_json::Value) -> bool,
}

impl<'de> serde::de::Visitor<'de> for TopLevel<'_> {
    type Value = JsonShape;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of objects")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<JsonShape, A::Error> {
        Items { each: self.each }.visit_seq(seq)?;
        Ok(JsonShape::Items)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<JsonShape, A::Error> {
        use serde::de::IgnoredAny;
        if map.next_key::<IgnoredAny>()?.is_none() {
            return Ok(JsonShape::OneObject);
        }
        // An object whose one member is an array of records stands for that array.
        let array = map.next_value_seed(Items { each: self.each })?;
        let more = map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some();
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(if array && !more {
            JsonShape::Items
        } else {
            JsonShape::OneObject
        })
    }
}

/// A value that, when it is an array, has its items handed to `each`; says whether it
/// was one.
struct Items<'a> {
    each: &'a mut dyn FnMut(&serde_json::Value) -> bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for Items<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Items<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while let Some(item) = seq.next_element::<serde_json::Value>()? {
            if !(self.each)(&item) {
                return Err(serde::de::Error::custom(WALK_STOPPED));
            }
        }
        Ok(true)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(false)
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
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

/// XML: the root's children are the records, read on a reader thread and handed on as
/// each closes; the first record's child elements are the columns.
fn xml(path: &Path, header_rows: u64, footer_rows: usize) -> Result<FileRecords, String> {
    use quick_xml::events::Event;
    let shown = path.display().to_string();
    let path = path.to_path_buf();
    let label = shown.clone();
    on_reader_thread(&label, footer_rows, move |sink| {
        let mut reader = quick_xml::Reader::from_reader(BufReader::with_capacity(
            256 * 1024,
            std::fs::File::open(&path).map_err(|e| format!("cannot read {shown}: {e}"))?,
        ));
        // Values are trimmed by the plan; text around an entity keeps its spaces here.
        reader.config_mut().trim_text(false);
        let mut buffer = Vec::new();
        // Depth 1 is the root, 2 a record, 3 a record's value.
        let mut depth = 0usize;
        let mut record: Vec<(String, String)> = Vec::new();
        let mut in_field = false;
        let mut number = 0u64;
        let mut header: Option<Vec<String>> = None;
        // Hands on the record that just closed; false once the reader has gone.
        let mut close = |record: Vec<(String, String)>, sink: &mut RowSink| -> bool {
            number += 1;
            if number <= header_rows {
                return true;
            }
            let columns = match &header {
                Some(columns) => columns,
                None => {
                    let columns: Vec<String> =
                        record.iter().map(|(name, _)| name.clone()).collect();
                    if !sink.header(columns.clone()) {
                        return false;
                    }
                    header.insert(columns)
                }
            };
            let mut fields = vec![String::new(); columns.len()];
            for (name, value) in record {
                if let Some(at) = columns.iter().position(|c| *c == name) {
                    fields[at] = value;
                }
            }
            sink.record(number, fields)
        };
        fn value(record: &mut [(String, String)]) -> Option<&mut String> {
            record.last_mut().map(|(_, v)| v)
        }
        loop {
            let event = reader.read_event_into(&mut buffer).map_err(|e| {
                format!("{shown}: not XML at byte {}: {e}", reader.error_position())
            })?;
            match event {
                Event::Start(start) => {
                    depth += 1;
                    if depth == 3 {
                        let name =
                            String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                        record.push((name, String::new()));
                        in_field = true;
                    }
                }
                // An empty record (`<row/>`) closes at once; an empty value is empty.
                Event::Empty(_) if depth == 1 && !close(Vec::new(), sink) => return Ok(()),
                Event::Empty(empty) if depth == 2 => {
                    let name = String::from_utf8_lossy(empty.local_name().as_ref()).into_owned();
                    record.push((name, String::new()));
                }
                Event::Text(text) if depth == 3 && in_field => {
                    let text = text.decode().map_err(|e| format!("{shown}: {e}"))?;
                    let text = quick_xml::escape::unescape(&text)
                        .map_err(|e| format!("{shown}: {e}"))?
                        .into_owned();
                    if let Some(value) = value(&mut record) {
                        value.push_str(&text);
                    }
                }
                Event::GeneralRef(reference) if depth == 3 && in_field => {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => {
                            let name = String::from_utf8_lossy(&reference).into_owned();
                            quick_xml::escape::resolve_xml_entity(&name)
                                .map(str::to_string)
                                .ok_or_else(|| format!("{shown}: unknown entity &{name};"))?
                        }
                    };
                    if let Some(value) = value(&mut record) {
                        value.push_str(&resolved);
                    }
                }
                Event::CData(data) if depth == 3 => {
                    if let Some(value) = value(&mut record) {
                        value.push_str(&String::from_utf8_lossy(&data));
                    }
                }
                Event::End(_) => {
                    if depth == 3 {
                        in_field = false;
                    }
                    if depth == 2 && !close(std::mem::take(&mut record), sink) {
                        return Ok(());
                    }
                    depth = depth.saturating_sub(1);
                }
                Event::Eof => break,
                _ => {}
            }
            buffer.clear();
        }
        if header.is_none() {
            return Err(format!("{shown}: no record element under the root"));
        }
        Ok(())
    })
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
                Row::Unreadable(reason) => panic!("{reason}"),
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

    /// The rows of a file up to its end or the first `Unreadable`, which is returned.
    fn until_unreadable(records: FileRecords) -> (Vec<Vec<String>>, Option<String>) {
        let mut rows = Vec::new();
        for row in records.rows {
            match row {
                Row::Record(r) => rows.push(r.fields),
                Row::Bad { line, reason } => panic!("line {line}: {reason}"),
                Row::Unreadable(reason) => return (rows, Some(reason)),
            }
        }
        (rows, None)
    }

    #[test]
    fn json_shapes_and_errors() {
        // A top-level array; HDRRWCNT skips records.
        let (_dir, path) = scratch(
            "a.json",
            br#"[{"note": "exported"}, {"id": 1, "tags": ["a", "b"]}, {"id": 2, "ok": true}]"#,
        );
        let (header, rows) = fields(open_file(&path, 1, 0).unwrap());
        assert_eq!(header, ["id", "tags", "ok"]);
        assert_eq!(
            rows,
            [
                (2, vec!["1".into(), r#"["a","b"]"#.into(), String::new()]),
                (3, vec!["2".into(), String::new(), "True".into()])
            ]
        );
        // An object with more than one member is one record.
        let (_dir, path) = scratch("o.json", br#"{"rows": [1, 2], "id": "007"}"#);
        let (header, rows) = fields(open_file(&path, 0, 0).unwrap());
        assert_eq!(header, ["id", "rows"]);
        assert_eq!(rows, [(1, vec!["007".into(), "[1,2]".into()])]);
        // A file that is not JSON is refused before any record, naming the place.
        let (_dir, path) = scratch("b.json", br#"[{"id": 1}, {"id": 2"#);
        let err = open_file(&path, 0, 0).err().unwrap();
        assert!(err.contains("not JSON") && err.contains("line 1"), "{err}");
        let (_dir, path) = scratch("n.json", b"42");
        let err = open_file(&path, 0, 0).err().unwrap();
        assert!(err.contains("expected an array of objects"), "{err}");
    }

    #[test]
    fn json_and_xml_hand_records_on_before_the_end_of_a_long_file() {
        // More records than the reader thread may hold: the first comes while the
        // thread is still reading, and dropping the rows ends the thread.
        let mut json = String::from("[");
        let mut xml = String::from("<rows>");
        for i in 0..20_000 {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&format!(r#"{{"id": "{i:05}"}}"#));
            xml.push_str(&format!("<row><id>{i:05}</id></row>"));
        }
        json.push(']');
        xml.push_str("</rows>");
        for (name, bytes) in [("long.json", json), ("long.xml", xml)] {
            let (_dir, path) = scratch(name, bytes.as_bytes());
            let mut records = open_file(&path, 0, 1).unwrap();
            match records.rows.next() {
                Some(Row::Record(r)) => assert_eq!(r.fields, ["00000"], "{name}"),
                _ => panic!("{name}: no first record"),
            }
            drop(records);
            let (_, rows) = fields(open_file(&path, 0, 1).unwrap());
            assert_eq!(rows.len(), 19_999, "{name}: the footer record is left out");
            assert_eq!(rows[19_998].1, ["19998"], "{name}");
        }
    }

    #[test]
    fn an_xml_file_broken_after_its_first_records_ends_unreadable() {
        let (_dir, path) = scratch(
            "c.xml",
            b"<rows><row><id>1</id></row><row><id>2</id></row><row><id>3</oops></row></rows>",
        );
        let (rows, unreadable) = until_unreadable(open_file(&path, 0, 0).unwrap());
        assert_eq!(rows, [vec!["1".to_string()], vec!["2".to_string()]]);
        let reason = unreadable.expect("the break is reported");
        assert!(reason.contains("not XML"), "{reason}");
        // Held footer rows do not hide it.
        let (_, unreadable) = until_unreadable(open_file(&path, 0, 5).unwrap());
        assert!(unreadable.is_some());
    }

    #[test]
    fn excel_columns_count_from_the_first_used_one_and_gaps_are_empty_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.xlsx");
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        // The table starts at B3; row 5 is empty; a value right of the header is not
        // a column.
        sheet.write_string(2, 1, "id").unwrap();
        sheet.write_string(2, 2, "name").unwrap();
        sheet.write_string(3, 1, "007").unwrap();
        sheet.write_string(3, 2, "Ann").unwrap();
        sheet.write_number(5, 1, 8.0).unwrap();
        sheet.write_string(5, 3, "note").unwrap();
        workbook.save(&path).unwrap();
        let (header, rows) = fields(open_file(&path, 0, 0).unwrap());
        assert_eq!(header, ["id", "name"]);
        assert_eq!(
            rows,
            [
                (4, vec!["007".into(), "Ann".into()]),
                (5, vec![String::new(), String::new()]),
                (6, vec!["8".into(), String::new()])
            ]
        );
        // A sheet with nothing after the rows HDRRWCNT skips has no header.
        let err = open_file(&path, 9, 0).err().unwrap();
        assert!(err.contains("no header row after the 9 rows"), "{err}");
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
