//! A report as an Excel workbook (`EXCEL`/`XLSX`): one sheet, `Report Data`, with a header
//! row and the values typed as the original's openpyxl writes them (numbers as numbers,
//! dates and times as Excel dates, NULL as an empty cell), written in constant memory:
//! the rows go to a temporary file, not to memory. Timestamps with a zone are written in
//! UTC, which Excel has no zone for (the original failed on them).

use std::io::{Seek, Write};

use dwsched_flow::Value;
use rust_xlsxwriter::{Format, Workbook, XlsxError};

use crate::csv_file::last_of_each_name;
use crate::python_str;

/// The sheet's name, as the original names it.
pub const SHEET: &str = "Report Data";

/// The most rows a sheet holds (its header included).
const SHEET_ROWS: u32 = 1_048_576;

pub struct XlsxReport {
    workbook: Workbook,
    shown: Vec<usize>,
    rows: u32,
    date: Format,
    time: Format,
    timestamp: Format,
}

impl XlsxReport {
    /// Starts the workbook with its header row.
    pub fn new(columns: &[String]) -> Result<Self, XlsxError> {
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet_with_constant_memory();
        sheet.set_name(SHEET)?;
        for (index, column) in columns.iter().enumerate() {
            sheet.write_string(0, column_number(index)?, column)?;
        }
        Ok(Self {
            workbook,
            shown: last_of_each_name(columns),
            rows: 0,
            date: Format::new().set_num_format("yyyy-mm-dd"),
            time: Format::new().set_num_format("hh:mm:ss"),
            timestamp: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
        })
    }

    pub fn write_row(&mut self, row: &[Value]) -> Result<(), XlsxError> {
        let line = self.rows + 1;
        if line >= SHEET_ROWS {
            return Err(XlsxError::RowColumnLimitError);
        }
        let sheet = self.workbook.worksheet_from_index(0)?;
        for (index, &source) in self.shown.iter().enumerate() {
            let column = column_number(index)?;
            match row.get(source).unwrap_or(&Value::Null) {
                Value::Null => {}
                Value::Bool(b) => {
                    sheet.write_boolean(line, column, *b)?;
                }
                Value::Int(n) => {
                    sheet.write_number(line, column, *n as f64)?;
                }
                Value::Float(x) => {
                    sheet.write_number(line, column, *x)?;
                }
                Value::Decimal(text) => match text.parse::<f64>() {
                    Ok(x) => {
                        sheet.write_number(line, column, x)?;
                    }
                    Err(_) => {
                        sheet.write_string(line, column, text)?;
                    }
                },
                Value::Date(d) => {
                    sheet.write_datetime_with_format(line, column, d, &self.date)?;
                }
                Value::Time(t) => {
                    sheet.write_datetime_with_format(line, column, t, &self.time)?;
                }
                Value::Timestamp(t) => {
                    sheet.write_datetime_with_format(line, column, t, &self.timestamp)?;
                }
                Value::TimestampTz(t) => {
                    sheet.write_datetime_with_format(
                        line,
                        column,
                        t.naive_utc(),
                        &self.timestamp,
                    )?;
                }
                other @ (Value::Text(_) | Value::Bytes(_)) => {
                    sheet.write_string(line, column, python_str(other))?;
                }
            }
        }
        self.rows = line;
        Ok(())
    }

    /// Writes the workbook to `out`; the number of rows.
    pub fn finish<W: Write + Seek + Send>(mut self, out: W) -> Result<u64, XlsxError> {
        self.workbook.save_to_writer(out)?;
        Ok(u64::from(self.rows))
    }
}

fn column_number(index: usize) -> Result<u16, XlsxError> {
    u16::try_from(index).map_err(|_| XlsxError::RowColumnLimitError)
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{Data, Reader, Xlsx};
    use chrono::NaiveDate;
    use std::io::Cursor;

    #[test]
    fn a_sheet_of_typed_values_read_back() {
        let columns: Vec<String> = [
            "id", "name", "amount", "ratio", "active", "day", "at", "note",
        ]
        .iter()
        .map(|c| c.to_string())
        .collect();
        let mut report = XlsxReport::new(&columns).unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let at = day.and_hms_opt(6, 30, 0).unwrap();
        report
            .write_row(&[
                Value::Int(1),
                Value::Text("Zürich \"HQ\"".into()),
                Value::Decimal("12500.50".into()),
                Value::Float(0.25),
                Value::Bool(true),
                Value::Date(day),
                Value::TimestampTz(at.and_utc()),
                Value::Null,
            ])
            .unwrap();
        report
            .write_row(&[Value::Int(2), Value::Text("007".into())])
            .unwrap();
        let mut bytes = Cursor::new(Vec::new());
        assert_eq!(report.finish(&mut bytes).unwrap(), 2);

        let mut book: Xlsx<_> =
            calamine::open_workbook_from_rs(Cursor::new(bytes.into_inner())).unwrap();
        assert_eq!(book.sheet_names(), [SHEET]);
        let range = book.worksheet_range(SHEET).unwrap();
        assert_eq!(range.get_size(), (3, 8));
        assert_eq!(range.get((0, 0)), Some(&Data::String("id".into())));
        assert_eq!(range.get((0, 7)), Some(&Data::String("note".into())));
        assert_eq!(range.get((1, 0)), Some(&Data::Float(1.0)));
        assert_eq!(
            range.get((1, 1)),
            Some(&Data::String("Zürich \"HQ\"".into()))
        );
        assert_eq!(range.get((1, 2)), Some(&Data::Float(12500.5)));
        assert_eq!(range.get((1, 3)), Some(&Data::Float(0.25)));
        assert_eq!(range.get((1, 4)), Some(&Data::Bool(true)));
        match range.get((1, 5)) {
            Some(Data::DateTime(d)) => assert_eq!(
                d.as_datetime(),
                Some(at.date().and_hms_opt(0, 0, 0).unwrap())
            ),
            other => panic!("a date, not {other:?}"),
        }
        match range.get((1, 6)) {
            Some(Data::DateTime(d)) => assert_eq!(d.as_datetime(), Some(at)),
            other => panic!("a timestamp, not {other:?}"),
        }
        assert!(matches!(range.get((1, 7)), None | Some(Data::Empty)));
        // Text stays text: leading zeros and all.
        assert_eq!(range.get((2, 1)), Some(&Data::String("007".into())));
    }
}
