//! A report as a PDF table (`PDF`), in the original's look: landscape US Letter, the
//! report's name as the title, a grey header row in white Helvetica-Bold 10, a beige
//! body in Helvetica 8, a black grid. Unlike the original, NULL is an empty cell (not
//! `None`), the header row is repeated on every page, and the document is written page
//! by page: only the page being laid out is held in memory, never the whole table.
//!
//! The text uses the standard Type 1 fonts (no font is embedded) in WinAnsiEncoding;
//! a character that encoding lacks prints as `?`. A value wider than its column is cut
//! and ends in `...`.

use std::io::{self, Write};

use dwsched_flow::Value;

use crate::python_str;

const PAGE_WIDTH: f32 = 792.0;
const PAGE_HEIGHT: f32 = 612.0;
const MARGIN: f32 = 30.0;
const TITLE_SIZE: f32 = 16.0;
const HEADER_SIZE: f32 = 10.0;
const BODY_SIZE: f32 = 8.0;
const HEADER_HEIGHT: f32 = 16.0;
const ROW_HEIGHT: f32 = 12.0;
const CELL_PADDING: f32 = 3.0;
/// Helvetica's widest common glyphs are about this share of the font size; cutting by
/// it keeps text inside its cell.
const GLYPH_WIDTH: f32 = 0.56;

/// Object numbers fixed ahead: the catalog, the page tree and the two fonts. Pages
/// follow from [`FIRST_PAGE_OBJECT`], each page object then its content stream.
const CATALOG: usize = 1;
const PAGES: usize = 2;
const FONT_REGULAR: usize = 3;
const FONT_BOLD: usize = 4;
const FIRST_PAGE_OBJECT: usize = 5;

pub struct PdfReport<W: Write> {
    out: Counting<W>,
    title: String,
    columns: Vec<String>,
    column_width: f32,
    /// Where each object starts, by object number (index 0 unused).
    offsets: Vec<u64>,
    page_objects: Vec<usize>,
    /// The content of the page being laid out, and the y of its next row's top.
    page: Vec<u8>,
    next_top: f32,
    rows: u64,
}

impl<W: Write> PdfReport<W> {
    /// `title` is the report's name.
    pub fn new(out: W, title: &str, columns: &[String]) -> io::Result<Self> {
        let mut out = Counting { inner: out, at: 0 };
        // The second line marks the file as binary for tools that guess.
        out.write_all(b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n")?;
        let usable = PAGE_WIDTH - 2.0 * MARGIN;
        let mut report = Self {
            out,
            title: title.to_string(),
            columns: columns.to_vec(),
            column_width: usable / columns.len().max(1) as f32,
            offsets: vec![0; FIRST_PAGE_OBJECT],
            page_objects: Vec::new(),
            page: Vec::new(),
            next_top: 0.0,
            rows: 0,
        };
        report.start_page();
        Ok(report)
    }

    pub fn write_row(&mut self, row: &[Value]) -> io::Result<()> {
        if self.next_top - ROW_HEIGHT < MARGIN {
            self.end_page()?;
            self.start_page();
        }
        let top = self.next_top;
        // Beige cell background, then the grid and the text.
        let width = self.column_width * self.columns.len() as f32;
        self.draw(format_args!(
            "0.96 0.96 0.86 rg {MARGIN} {} {width} {ROW_HEIGHT} re f\n",
            top - ROW_HEIGHT
        ));
        self.grid_row(top, ROW_HEIGHT);
        self.draw(format_args!("0 g BT /F1 {BODY_SIZE} Tf\n"));
        for index in 0..self.columns.len() {
            let text = match row.get(index) {
                None | Some(Value::Null) => String::new(),
                Some(value) => python_str(value),
            };
            self.cell_text(index, top - ROW_HEIGHT + 3.5, BODY_SIZE, &text);
        }
        self.page.extend_from_slice(b"ET\n");
        self.next_top -= ROW_HEIGHT;
        self.rows += 1;
        Ok(())
    }

    /// Writes the last page and the document's trailer; the number of rows.
    pub fn finish(mut self) -> io::Result<(u64, W)> {
        self.end_page()?;
        self.object(FONT_REGULAR, |out| {
            out.write_all(
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
            )
        })?;
        self.object(FONT_BOLD, |out| {
            out.write_all(
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
            )
        })?;
        let kids: Vec<String> = self
            .page_objects
            .iter()
            .map(|n| format!("{n} 0 R"))
            .collect();
        let count = kids.len();
        self.object(PAGES, |out| {
            write!(
                out,
                "<< /Type /Pages /Count {count} /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] /Kids [{}] >>",
                kids.join(" ")
            )
        })?;
        self.object(CATALOG, |out| {
            write!(out, "<< /Type /Catalog /Pages {PAGES} 0 R >>")
        })?;
        let xref_at = self.out.at;
        let objects = self.offsets.len();
        write!(self.out, "xref\n0 {objects}\n0000000000 65535 f \n")?;
        for offset in &self.offsets[1..] {
            writeln!(self.out, "{offset:010} 00000 n ")?;
        }
        write!(
            self.out,
            "trailer\n<< /Size {objects} /Root {CATALOG} 0 R >>\nstartxref\n{xref_at}\n%%EOF\n"
        )?;
        self.out.flush()?;
        Ok((self.rows, self.out.inner))
    }

    /// Lays out a new page's title (first page only) and header row.
    fn start_page(&mut self) {
        self.page.clear();
        let mut top = PAGE_HEIGHT - MARGIN;
        if self.page_objects.is_empty() {
            let title = encode(&self.title);
            self.draw(format_args!(
                "0 g BT /F2 {TITLE_SIZE} Tf {MARGIN} {} Td ",
                top - TITLE_SIZE
            ));
            self.page.extend_from_slice(&title);
            self.page.extend_from_slice(b" Tj ET\n");
            top -= TITLE_SIZE + 12.0;
        }
        let width = self.column_width * self.columns.len() as f32;
        self.draw(format_args!(
            "0.5 g {MARGIN} {} {width} {HEADER_HEIGHT} re f\n",
            top - HEADER_HEIGHT
        ));
        self.grid_row(top, HEADER_HEIGHT);
        self.draw(format_args!("1 g BT /F2 {HEADER_SIZE} Tf\n"));
        for index in 0..self.columns.len() {
            let name = self.columns[index].clone();
            self.cell_text(index, top - HEADER_HEIGHT + 4.5, HEADER_SIZE, &name);
        }
        self.page.extend_from_slice(b"ET\n");
        self.next_top = top - HEADER_HEIGHT;
    }

    /// Writes the page laid out so far: its content stream and its page object.
    fn end_page(&mut self) -> io::Result<()> {
        let page_object = self.offsets.len();
        let content_object = page_object + 1;
        self.offsets.extend([0, 0]);
        self.page_objects.push(page_object);
        self.object(page_object, |out| {
            write!(
                out,
                "<< /Type /Page /Parent {PAGES} 0 R /Resources << /Font << /F1 {FONT_REGULAR} 0 R \
                 /F2 {FONT_BOLD} 0 R >> >> /Contents {content_object} 0 R >>"
            )
        })?;
        let content = std::mem::take(&mut self.page);
        self.object(content_object, |out| {
            write!(out, "<< /Length {} >>\nstream\n", content.len())?;
            out.write_all(&content)?;
            out.write_all(b"\nendstream")
        })
    }

    fn object(
        &mut self,
        number: usize,
        body: impl FnOnce(&mut Counting<W>) -> io::Result<()>,
    ) -> io::Result<()> {
        self.offsets[number] = self.out.at;
        writeln!(self.out, "{number} 0 obj")?;
        body(&mut self.out)?;
        self.out.write_all(b"\nendobj\n")
    }

    /// The black lines around one row's cells.
    fn grid_row(&mut self, top: f32, height: f32) {
        self.draw(format_args!("0 G 0.5 w\n"));
        let width = self.column_width;
        for index in 0..self.columns.len() {
            let x = MARGIN + index as f32 * width;
            self.draw(format_args!("{x} {} {width} {height} re S\n", top - height));
        }
    }

    /// Places `text` in cell `index` at baseline `y`, cut to the cell's width.
    fn cell_text(&mut self, index: usize, y: f32, size: f32, text: &str) {
        if text.is_empty() {
            return;
        }
        let x = MARGIN + index as f32 * self.column_width + CELL_PADDING;
        let fits = ((self.column_width - 2.0 * CELL_PADDING) / (size * GLYPH_WIDTH)).max(1.0);
        let fits = fits as usize;
        let shown: String = if text.chars().count() > fits {
            let kept: String = text.chars().take(fits.saturating_sub(3)).collect();
            format!("{kept}...")
        } else {
            text.to_string()
        };
        // Each cell sets its own position: a text matrix, not a relative move.
        self.draw(format_args!("1 0 0 1 {x} {y} Tm "));
        self.page.extend_from_slice(&encode(&shown));
        self.page.extend_from_slice(b" Tj\n");
    }

    fn draw(&mut self, args: std::fmt::Arguments<'_>) {
        // Writing to a Vec cannot fail.
        let _ = self.page.write_fmt(args);
    }
}

/// `text` as a PDF string in WinAnsiEncoding: Latin-1 characters as their byte, the
/// few others WinAnsi has at 0x80..0x9F, anything else `?`; `(`, `)` and `\` escaped,
/// and control characters as spaces.
fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    out.push(b'(');
    for c in text.chars() {
        let byte = match c {
            '(' | ')' | '\\' => {
                out.push(b'\\');
                c as u8
            }
            c if (c as u32) < 0x20 || c == '\u{7f}' => b' ',
            c if (c as u32) < 0x7f || ((c as u32) >= 0xa0 && (c as u32) <= 0xff) => c as u8,
            '€' => 0x80,
            '‚' => 0x82,
            '„' => 0x84,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '–' => 0x96,
            '—' => 0x97,
            '™' => 0x99,
            _ => b'?',
        };
        out.push(byte);
    }
    out.push(b')');
    out
}

/// A writer that knows how many bytes went through it: the offsets of the PDF's
/// cross-reference table.
struct Counting<W: Write> {
    inner: W,
    at: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.at += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdf(title: &str, columns: &[&str], rows: &[Vec<Value>]) -> Vec<u8> {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let mut report = PdfReport::new(Vec::new(), title, &columns).unwrap();
        for row in rows {
            report.write_row(row).unwrap();
        }
        let (count, bytes) = report.finish().unwrap();
        assert_eq!(count, rows.len() as u64);
        bytes
    }

    fn page_texts(bytes: &[u8]) -> Vec<String> {
        let document = lopdf::Document::load_mem(bytes).expect("a PDF that a reader can load");
        document
            .get_pages()
            .keys()
            .map(|&number| document.extract_text(&[number]).unwrap())
            .collect()
    }

    #[test]
    fn a_reader_finds_the_title_the_header_and_every_value() {
        let bytes = pdf(
            "Sales (EMEA)",
            &["region", "amount", "note"],
            &[
                vec![
                    Value::Text("Zürich".into()),
                    Value::Decimal("12500.50".into()),
                    Value::Null,
                ],
                vec![
                    Value::Text("a\\b (c)".into()),
                    Value::Int(7),
                    Value::Text("日本".into()),
                ],
            ],
        );
        let pages = page_texts(&bytes);
        assert_eq!(pages.len(), 1);
        let text = &pages[0];
        for expected in [
            "Sales (EMEA)",
            "region",
            "amount",
            "Zürich",
            "12500.50",
            "a\\b (c)",
            "7",
            "??",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from {text:?}"
            );
        }
        // NULL is an empty cell, not Python's None.
        assert!(!text.contains("None"), "{text:?}");
    }

    #[test]
    fn long_tables_go_on_over_pages_each_with_the_header() {
        let rows: Vec<Vec<Value>> = (0..200)
            .map(|i| vec![Value::Int(i), Value::Text(format!("row {i}"))])
            .collect();
        let pages = page_texts(&pdf("Long", &["n", "label"], &rows));
        assert!(pages.len() >= 4, "{} pages", pages.len());
        for page in &pages {
            assert!(page.contains("label"), "a page without the header");
        }
        let all = pages.join("\n");
        assert!(all.contains("row 0") && all.contains("row 199"));
        assert_eq!(
            all.matches("Long").count(),
            1,
            "the title is on page one only"
        );
    }

    #[test]
    fn a_value_wider_than_its_cell_is_cut() {
        let long = "x".repeat(400);
        let pages = page_texts(&pdf(
            "t",
            &["a", "b"],
            &[vec![Value::Text(long), Value::Int(1)]],
        ));
        assert!(pages[0].contains("..."));
        assert!(!pages[0].contains(&"x".repeat(300)));
    }

    #[test]
    fn an_empty_result_is_a_page_with_its_header() {
        let pages = page_texts(&pdf("Nothing", &["only"], &[]));
        assert_eq!(pages.len(), 1);
        assert!(pages[0].contains("only"));
    }
}
