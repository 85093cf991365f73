//! The output formats a report run can ask for (`OTPT_FMT`, the payload's
//! `outputFormat`), and one writer over them all.

use std::fs::File;
use std::io::BufWriter;

use dwsched_flow::Value;

use crate::{CsvReport, JsonReport, ParquetReport, PdfReport, TxtReport, XlsxReport, XmlReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    /// `EXCEL`, or `XLSX` (which the original offered but could not write).
    Excel,
    Pdf,
    Xml,
    Parquet,
    /// Pipe-delimited text.
    Txt,
}

impl Format {
    /// The formats by the names a request may use, for messages.
    pub const NAMES: &'static str = "CSV, JSON, EXCEL (or XLSX), PDF, XML, PARQUET, TXT";

    /// A format by its name, in any case.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_uppercase().as_str() {
            "CSV" => Self::Csv,
            "JSON" => Self::Json,
            "EXCEL" | "XLSX" => Self::Excel,
            "PDF" => Self::Pdf,
            "XML" => Self::Xml,
            "PARQUET" => Self::Parquet,
            "TXT" => Self::Txt,
            _ => return None,
        })
    }

    /// The file name's extension, as the original names its files.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Excel => "xlsx",
            Self::Pdf => "pdf",
            Self::Xml => "xml",
            Self::Parquet => "parquet",
            Self::Txt => "txt",
        }
    }

    /// The MIME type of an e-mail attachment.
    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv",
            Self::Json => "application/json",
            Self::Excel => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Pdf => "application/pdf",
            Self::Xml => "application/xml",
            Self::Parquet => "application/vnd.apache.parquet",
            Self::Txt => "text/plain",
        }
    }
}

/// A report file being written, in one of the formats, one row at a time.
pub struct ReportFile {
    writer: Writer,
}

// One writer per run, so the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Writer {
    Csv(CsvReport<BufWriter<File>>),
    Json(JsonReport<BufWriter<File>>),
    Txt(TxtReport<BufWriter<File>>),
    Xml(XmlReport<File>, BufWriter<File>),
    Excel(XlsxReport, File),
    Pdf(PdfReport<BufWriter<File>>),
    Parquet(ParquetReport<BufWriter<File>>),
}

/// Buffer of the file writers: large enough that a row costs no system call.
const BUFFER: usize = 256 * 1024;

impl ReportFile {
    /// Starts a report of `format` in `out`, with its header. `title` is the report's
    /// name (XML's `name`, PDF's title). XML rows wait in an anonymous temporary file
    /// until the row count is known.
    pub fn create(
        format: Format,
        title: &str,
        columns: &[String],
        out: File,
    ) -> Result<Self, String> {
        let buffered = |file: &File| -> Result<BufWriter<File>, String> {
            Ok(BufWriter::with_capacity(
                BUFFER,
                file.try_clone().map_err(io)?,
            ))
        };
        let writer = match format {
            Format::Csv => {
                Writer::Csv(CsvReport::new(buffered(&out)?, columns).map_err(|e| e.to_string())?)
            }
            Format::Json => Writer::Json(JsonReport::new(buffered(&out)?, columns).map_err(io)?),
            Format::Txt => Writer::Txt(TxtReport::new(buffered(&out)?, columns).map_err(io)?),
            Format::Xml => {
                let spool = tempfile::tempfile().map_err(io)?;
                Writer::Xml(XmlReport::new(title, columns, spool), buffered(&out)?)
            }
            Format::Excel => {
                Writer::Excel(XlsxReport::new(columns).map_err(|e| e.to_string())?, out)
            }
            Format::Pdf => {
                Writer::Pdf(PdfReport::new(buffered(&out)?, title, columns).map_err(io)?)
            }
            Format::Parquet => Writer::Parquet(ParquetReport::new(buffered(&out)?, columns)),
        };
        Ok(Self { writer })
    }

    pub fn write_row(&mut self, row: &[Value]) -> Result<(), String> {
        match &mut self.writer {
            Writer::Csv(w) => w.write_row(row).map_err(|e| e.to_string()),
            Writer::Json(w) => w.write_row(row).map_err(io),
            Writer::Txt(w) => w.write_row(row).map_err(io),
            Writer::Xml(w, _) => w.write_row(row).map_err(io),
            Writer::Excel(w, _) => w.write_row(row).map_err(|e| e.to_string()),
            Writer::Pdf(w) => w.write_row(row).map_err(io),
            Writer::Parquet(w) => w.write_row(row),
        }
    }

    /// Ends the file and writes it out to the disk; the number of rows.
    pub fn finish(self) -> Result<u64, String> {
        let (rows, file) = match self.writer {
            Writer::Csv(w) => finished(w.finish().map_err(io))?,
            Writer::Json(w) => finished(w.finish().map_err(io))?,
            Writer::Txt(w) => finished(w.finish().map_err(io))?,
            Writer::Xml(w, mut out) => {
                let rows = w.finish(&mut out).map_err(io)?;
                (rows, out.into_inner().map_err(|e| io(e.into_error()))?)
            }
            Writer::Excel(w, mut out) => {
                let rows = w.finish(&mut out).map_err(|e| e.to_string())?;
                (rows, out)
            }
            Writer::Pdf(w) => finished(w.finish().map_err(io))?,
            Writer::Parquet(w) => finished(w.finish())?,
        };
        file.sync_all().map_err(io)?;
        Ok(rows)
    }
}

fn finished(done: Result<(u64, BufWriter<File>), String>) -> Result<(u64, File), String> {
    let (rows, out) = done?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    Ok((rows, file))
}

fn io(err: std::io::Error) -> String {
    err.to_string()
}
