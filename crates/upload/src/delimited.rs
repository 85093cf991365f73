//! Delimited text files (`.csv`, `.tsv`, `.txt`) as DWTOOL's uploads read them, read
//! as text and streamed: `HDRRWCNT` lines before the header (the original's meaning),
//! the delimiter detected from the header line (tab, then `,`, `;`, `|`), a UTF-8 BOM
//! dropped, the last `FTRRWCNT` records left out, and every record with its line in
//! the file. A record whose field count is not the header's is a bad row, named by its
//! line, and the others go on. Line ends are read as `\n` (a CRLF inside a quoted
//! value too), as Python's text files read them.

use std::collections::VecDeque;
use std::io::{BufRead, Cursor, Read};

/// A record of the file: its fields as text, and the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: u64,
    pub fields: Vec<String>,
}

/// What reading a record gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    Record(Record),
    /// A record that cannot be loaded, and why; the records after it are read on.
    Bad {
        line: u64,
        reason: String,
    },
    /// The file cannot be read past this point (a broken sheet, a read error): the
    /// last item, and the run fails.
    Unreadable(String),
}

/// The last `footer` rows of a stream held back, since they are known to be the
/// footer only once the stream ends. `Unreadable` is handed on at once.
#[derive(Debug)]
pub(crate) struct FooterHold {
    footer: usize,
    held: VecDeque<Row>,
    done: bool,
}

impl FooterHold {
    pub(crate) fn new(footer: usize) -> Self {
        Self {
            footer,
            held: VecDeque::new(),
            done: false,
        }
    }

    /// The next row that is not part of the footer, reading from `read`.
    pub(crate) fn next(&mut self, mut read: impl FnMut() -> Option<Row>) -> Option<Row> {
        while !self.done && self.held.len() <= self.footer {
            match read() {
                Some(Row::Unreadable(reason)) => {
                    self.done = true;
                    self.held.clear();
                    return Some(Row::Unreadable(reason));
                }
                Some(row) => self.held.push_back(row),
                None => self.done = true,
            }
        }
        if self.held.len() > self.footer {
            self.held.pop_front()
        } else {
            None
        }
    }
}

/// Why a file cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("reading the file failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the file has {lines} lines, so no header after the {skip} lines HDRRWCNT skips")]
    NoHeader { lines: u64, skip: u64 },
    #[error("line {line}: the header is not UTF-8 text")]
    HeaderNotText { line: u64 },
}

/// The records of a delimited file, after its header.
pub struct DelimitedFile<R: BufRead> {
    header: Vec<String>,
    delimiter: u8,
    reader: csv::Reader<LineFeeds<std::io::Chain<Cursor<Vec<u8>>, R>>>,
    /// The record being read, its memory used again for each.
    record: csv::ByteRecord,
    /// Lines before the header line: added to the reader's line numbers.
    offset: u64,
    footer: FooterHold,
}

impl<R: BufRead> DelimitedFile<R> {
    /// Opens a file: skips `header_offset` lines, reads the header and detects the
    /// delimiter; the last `footer_rows` records will be left out.
    pub fn open(mut input: R, header_offset: u64, footer_rows: usize) -> Result<Self, InputError> {
        let mut line = Vec::new();
        for read in 0..=header_offset {
            line.clear();
            if input.read_until(b'\n', &mut line)? == 0 {
                return Err(InputError::NoHeader {
                    lines: read,
                    skip: header_offset,
                });
            }
            if read == 0 && line.starts_with(b"\xEF\xBB\xBF") {
                line.drain(..3);
            }
        }
        let header_line = std::str::from_utf8(&line).map_err(|_| InputError::HeaderNotText {
            line: header_offset + 1,
        })?;
        let delimiter = detect_delimiter(header_line);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(true)
            .from_reader(LineFeeds::new(Cursor::new(line).chain(input)));
        let header = reader
            .byte_headers()
            .map_err(|e| InputError::Io(std::io::Error::other(e.to_string())))?
            .iter()
            .map(|field| String::from_utf8_lossy(field).trim().to_string())
            .collect();
        Ok(Self {
            header,
            delimiter,
            reader,
            record: csv::ByteRecord::new(),
            offset: header_offset,
            footer: FooterHold::new(footer_rows),
        })
    }

    /// The header's column names, trimmed.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The delimiter detected.
    pub fn delimiter(&self) -> char {
        char::from(self.delimiter)
    }
}

/// The next record of `reader`, read into `record`, its line moved by `offset`,
/// checked against the header's `width`.
fn read_row<R: std::io::Read>(
    reader: &mut csv::Reader<R>,
    record: &mut csv::ByteRecord,
    offset: u64,
    width: usize,
) -> Option<Row> {
    Some(match reader.read_byte_record(record) {
        Ok(false) => return None,
        Err(err) if matches!(err.kind(), csv::ErrorKind::Io(_)) => {
            Row::Unreadable(format!("reading the file failed: {err}"))
        }
        Err(err) => {
            let line = err.position().map_or(0, |p| p.line()) + offset;
            Row::Bad {
                line,
                reason: format!("line {line}: {err}"),
            }
        }
        Ok(true) => {
            let line = record.position().map_or(0, |p| p.line()) + offset;
            let fields: Result<Vec<String>, _> = record
                .iter()
                .map(|field| String::from_utf8(field.to_vec()))
                .collect();
            match fields {
                Err(_) => Row::Bad {
                    line,
                    reason: format!("line {line}: not UTF-8 text"),
                },
                Ok(fields) if fields.len() != width => Row::Bad {
                    line,
                    reason: format!(
                        "line {line}: {} fields, where the header has {width}",
                        fields.len(),
                    ),
                },
                Ok(fields) => Row::Record(Record { line, fields }),
            }
        }
    })
}

impl<R: BufRead> Iterator for DelimitedFile<R> {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        let (reader, record) = (&mut self.reader, &mut self.record);
        let (offset, width) = (self.offset, self.header.len());
        self.footer.next(|| read_row(reader, record, offset, width))
    }
}

/// A reader that turns each CRLF into LF, so that the CSV reader's line numbers count
/// lines (it counts a CRLF record end one line late).
pub struct LineFeeds<R: Read> {
    inner: R,
    /// A CR read last, not yet known to start a CRLF.
    carriage_return: bool,
    /// Bytes ready to hand out, from `ready_from` on.
    ready: Vec<u8>,
    ready_from: usize,
}

impl<R: Read> LineFeeds<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            carriage_return: false,
            ready: Vec::new(),
            ready_from: 0,
        }
    }
}

impl<R: Read> Read for LineFeeds<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ready_from == self.ready.len() {
            self.ready.clear();
            self.ready_from = 0;
            let mut chunk = [0u8; 8192];
            while self.ready.is_empty() {
                let n = self.inner.read(&mut chunk)?;
                if n == 0 {
                    // A CR at the very end stays what it was.
                    if std::mem::take(&mut self.carriage_return) {
                        self.ready.push(b'\r');
                    }
                    break;
                }
                let chunk = &chunk[..n];
                // Most files have no CR at all: their chunks go through as they are.
                if !self.carriage_return && !chunk.contains(&b'\r') {
                    self.ready.extend_from_slice(chunk);
                    continue;
                }
                for &byte in chunk {
                    if self.carriage_return && byte != b'\n' {
                        self.ready.push(b'\r');
                    }
                    self.carriage_return = byte == b'\r';
                    if !self.carriage_return {
                        self.ready.push(byte);
                    }
                }
            }
        }
        let n = buf.len().min(self.ready.len() - self.ready_from);
        buf[..n].copy_from_slice(&self.ready[self.ready_from..self.ready_from + n]);
        self.ready_from += n;
        Ok(n)
    }
}

/// The delimiter of a header line: tab, then `,`, `;` and `|`, whichever it holds
/// first in that order; `,` when it holds none.
pub fn detect_delimiter(header: &str) -> u8 {
    [b'\t', b',', b';', b'|']
        .into_iter()
        .find(|d| header.as_bytes().contains(d))
        .unwrap_or(b',')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, header_offset: u64, footer: usize) -> (Vec<String>, char, Vec<Row>) {
        let file = DelimitedFile::open(text.as_bytes(), header_offset, footer).unwrap();
        let (header, delimiter) = (file.header().to_vec(), file.delimiter());
        (header, delimiter, file.collect())
    }

    fn record(line: u64, fields: &[&str]) -> Row {
        Row::Record(Record {
            line,
            fields: fields.iter().map(|f| f.to_string()).collect(),
        })
    }

    #[test]
    fn every_delimiter_and_values_as_text() {
        for delimiter in [",", ";", "|", "\t"] {
            let text = format!(
                "code{d}amount{d}day\n007{d}1001{d}2026-03-01\n0042{d}12.50{d}01/03/2026\n",
                d = delimiter
            );
            let (header, detected, rows) = read(&text, 0, 0);
            assert_eq!(header, ["code", "amount", "day"]);
            assert_eq!(detected.to_string(), delimiter);
            assert_eq!(
                rows,
                [
                    record(2, &["007", "1001", "2026-03-01"]),
                    record(3, &["0042", "12.50", "01/03/2026"])
                ]
            );
        }
    }

    #[test]
    fn header_offset_footer_bom_and_quotes() {
        let text = "\u{feff}Sales export\ngenerated 2026-03-01\nid,name,note\r\n1,\"Smith, John\",\"two\r\nlines\"\r\n2,Ada,\r\nTOTAL,2\r\nend\r\n";
        let (header, _, rows) = read(text, 2, 2);
        assert_eq!(header, ["id", "name", "note"]);
        assert_eq!(
            rows,
            [
                record(4, &["1", "Smith, John", "two\nlines"]),
                record(6, &["2", "Ada", ""]),
            ]
        );
    }

    #[test]
    fn bad_records_are_named_by_line_and_the_rest_go_on() {
        let text = "a;b\n1;2\n3;4;5\n6\n7;8\n";
        let (_, _, rows) = read(text, 0, 0);
        assert_eq!(
            rows,
            [
                record(2, &["1", "2"]),
                Row::Bad {
                    line: 3,
                    reason: "line 3: 3 fields, where the header has 2".into()
                },
                Row::Bad {
                    line: 4,
                    reason: "line 4: 1 fields, where the header has 2".into()
                },
                record(5, &["7", "8"]),
            ]
        );
        let bytes: &[u8] = b"a,b\n1,\xff\n";
        let rows: Vec<Row> = DelimitedFile::open(bytes, 0, 0).unwrap().collect();
        assert_eq!(
            rows,
            [Row::Bad {
                line: 2,
                reason: "line 2: not UTF-8 text".into()
            }]
        );
    }

    /// CRLFs become LFs wherever a chunk boundary falls; a lone CR stays.
    #[test]
    fn line_feeds_across_chunk_boundaries() {
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        for input in ["a\r\nb\r\n", "a\rb\r\r\nc\r", "\r\n\r\n", ""] {
            let mut out = String::new();
            LineFeeds::new(Trickle(input.as_bytes()))
                .read_to_string(&mut out)
                .unwrap();
            assert_eq!(out, input.replace("\r\n", "\n"), "{input:?}");
            let mut whole = String::new();
            LineFeeds::new(input.as_bytes())
                .read_to_string(&mut whole)
                .unwrap();
            assert_eq!(whole, out);
        }
    }

    #[test]
    fn a_file_shorter_than_its_header_offset() {
        let err = DelimitedFile::open("only\n".as_bytes(), 3, 0)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "the file has 1 lines, so no header after the 3 lines HDRRWCNT skips"
        );
        assert_eq!(detect_delimiter("no delimiter"), b',');
        assert_eq!(detect_delimiter("a;b,c"), b',');
        assert_eq!(detect_delimiter("a\tb,c"), b'\t');
    }
}
