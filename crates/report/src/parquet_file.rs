//! A report as Parquet (`PARQUET`), one column per result column, Snappy-compressed as
//! pyarrow writes by default. Types follow the values: integers `INT64`, floats
//! `DOUBLE`, booleans, decimals as `DECIMAL(38, s)`, text as UTF-8, bytes as binary,
//! dates, times (µs) and timestamps (µs; with a zone, in UTC). A column's type is
//! taken from its first non-NULL value in the first rows; a column that is NULL
//! throughout them is text.
//!
//! Rows are gathered [`CHUNK_ROWS`] at a time into Arrow arrays and written in row
//! groups of [`ROW_GROUP_ROWS`], so memory stays within a row group whatever the row
//! count.

use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{NaiveDate, Timelike};
use dwsched_flow::Value;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::csv_file::last_of_each_name;
use crate::python_str;

/// Rows turned into one Arrow batch.
const CHUNK_ROWS: usize = 8_192;
/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 65_536;

pub struct ParquetReport<W: Write + Send> {
    out: Option<W>,
    columns: Vec<String>,
    writer: Option<(ArrowWriter<W>, SchemaRef)>,
    pending: Vec<Vec<Value>>,
    rows: u64,
}

impl<W: Write + Send> ParquetReport<W> {
    pub fn new(out: W, columns: &[String]) -> Self {
        Self {
            out: Some(out),
            columns: columns.to_vec(),
            writer: None,
            pending: Vec::with_capacity(CHUNK_ROWS),
            rows: 0,
        }
    }

    pub fn write_row(&mut self, row: &[Value]) -> Result<(), String> {
        self.pending.push(row.to_vec());
        self.rows += 1;
        if self.pending.len() >= CHUNK_ROWS {
            self.flush_chunk()?;
        }
        Ok(())
    }

    /// Writes the last rows and the file's footer; the number of rows.
    pub fn finish(mut self) -> Result<(u64, W), String> {
        self.flush_chunk()?;
        let (writer, _) = match self.writer.take() {
            Some(writer) => writer,
            None => self.start(&[])?,
        };
        let out = writer.into_inner().map_err(|e| e.to_string())?;
        Ok((self.rows, out))
    }

    fn start(&mut self, sample: &[Vec<Value>]) -> Result<(ArrowWriter<W>, SchemaRef), String> {
        let shown = last_of_each_name(&self.columns);
        let fields: Vec<Field> = self
            .columns
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let column = shown[index];
                let first = sample
                    .iter()
                    .filter_map(|row| row.get(column))
                    .find(|v| **v != Value::Null);
                let data_type = match first {
                    Some(Value::Decimal(_)) => {
                        DataType::Decimal128(38, decimal_scale(sample, column))
                    }
                    Some(value) => data_type_of(value),
                    None => DataType::Utf8,
                };
                Field::new(name, data_type, true)
            })
            .collect();
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_size(ROW_GROUP_ROWS)
            .build();
        let out = self.out.take().expect("the output is taken once");
        let writer = ArrowWriter::try_new(out, schema.clone(), Some(properties))
            .map_err(|e| e.to_string())?;
        Ok((writer, schema))
    }

    fn flush_chunk(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.pending);
        if self.writer.is_none() {
            let started = self.start(&chunk)?;
            self.writer = Some(started);
        }
        let (writer, schema) = self.writer.as_mut().expect("started above");
        let shown = last_of_each_name(&self.columns);
        let arrays = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(index, field)| column_array(field, &chunk, shown[index]))
            .collect::<Result<Vec<ArrayRef>, String>>()?;
        let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| e.to_string())?;
        writer.write(&batch).map_err(|e| e.to_string())?;
        self.pending = Vec::with_capacity(CHUNK_ROWS);
        Ok(())
    }
}

fn data_type_of(value: &Value) -> DataType {
    match value {
        Value::Null | Value::Text(_) => DataType::Utf8,
        Value::Bool(_) => DataType::Boolean,
        Value::Int(_) => DataType::Int64,
        Value::Float(_) => DataType::Float64,
        Value::Decimal(_) => DataType::Decimal128(38, 0),
        Value::Bytes(_) => DataType::Binary,
        Value::Date(_) => DataType::Date32,
        Value::Time(_) => DataType::Time64(TimeUnit::Microsecond),
        Value::Timestamp(_) => DataType::Timestamp(TimeUnit::Microsecond, None),
        Value::TimestampTz(_) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

/// The largest scale of the column's decimals in `sample`.
fn decimal_scale(sample: &[Vec<Value>], column: usize) -> i8 {
    sample
        .iter()
        .filter_map(|row| match row.get(column) {
            Some(Value::Decimal(text)) => Some(text.split_once('.').map_or(0, |(_, f)| f.len())),
            _ => None,
        })
        .max()
        .unwrap_or(0)
        .min(38) as i8
}

/// The decimal `text` as an integer of `scale` decimal places; `None` when it has more
/// places than that or does not fit 38 digits.
fn scaled_decimal(text: &str, scale: i8) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let scale = usize::try_from(scale).ok()?;
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > scale {
        return None;
    }
    let mut all = String::with_capacity(whole.len() + scale);
    all.push_str(whole);
    all.push_str(fraction);
    all.extend(std::iter::repeat_n('0', scale - fraction.len()));
    let magnitude: i128 = if all.is_empty() { 0 } else { all.parse().ok()? };
    if magnitude >= 10_i128.pow(38) {
        return None;
    }
    Some(if negative { -magnitude } else { magnitude })
}

/// One column of a chunk as an Arrow array of the field's type. A value of another
/// type than the column's (possible where the database types values one by one, as
/// SQLite does) is written as text in a text column, and is an error elsewhere.
fn column_array(field: &Field, rows: &[Vec<Value>], column: usize) -> Result<ArrayRef, String> {
    let mismatch = |value: &Value| {
        format!(
            "column '{}' holds {} after values of type {}; cast it in the report's SQL",
            field.name(),
            python_str(value),
            field.data_type()
        )
    };
    let values = rows
        .iter()
        .map(|row| row.get(column).unwrap_or(&Value::Null));
    macro_rules! build {
        ($builder:expr, $($pattern:pat => $append:expr),+) => {{
            let mut builder = $builder;
            for value in values {
                match value {
                    Value::Null => builder.append_null(),
                    $($pattern => builder.append_value($append),)+
                    other => return Err(mismatch(other)),
                }
            }
            Ok(Arc::new(builder.finish()) as ArrayRef)
        }};
    }
    match field.data_type() {
        DataType::Utf8 => {
            let mut builder = StringBuilder::new();
            for value in values {
                match value {
                    Value::Null => builder.append_null(),
                    Value::Text(text) => builder.append_value(text),
                    other => builder.append_value(python_str(other)),
                }
            }
            Ok(Arc::new(builder.finish()))
        }
        DataType::Boolean => build!(BooleanBuilder::new(), Value::Bool(b) => *b),
        DataType::Int64 => build!(Int64Builder::new(), Value::Int(n) => *n),
        DataType::Float64 => build!(
            Float64Builder::new(),
            Value::Float(x) => *x,
            Value::Int(n) => *n as f64
        ),
        DataType::Decimal128(precision, scale) => {
            let mut builder = Decimal128Builder::new()
                .with_precision_and_scale(*precision, *scale)
                .map_err(|e| e.to_string())?;
            for value in values {
                match value {
                    Value::Null => builder.append_null(),
                    Value::Decimal(text) => {
                        let scaled = scaled_decimal(text, *scale).ok_or_else(|| {
                            format!(
                                "column '{}': {text} does not fit DECIMAL(38, {scale}), the type its first rows gave it; cast it in the report's SQL",
                                field.name()
                            )
                        })?;
                        builder.append_value(scaled);
                    }
                    Value::Int(n) => builder.append_value(
                        i128::from(*n) * 10_i128.pow(u32::try_from(*scale).unwrap_or(0)),
                    ),
                    other => return Err(mismatch(other)),
                }
            }
            Ok(Arc::new(builder.finish()))
        }
        DataType::Binary => build!(BinaryBuilder::new(), Value::Bytes(b) => b),
        DataType::Date32 => build!(Date32Builder::new(), Value::Date(d) => days_since_epoch(*d)),
        DataType::Time64(_) => build!(
            Time64MicrosecondBuilder::new(),
            Value::Time(t) => i64::from(t.num_seconds_from_midnight()) * 1_000_000
                + i64::from(t.nanosecond() / 1_000)
        ),
        DataType::Timestamp(_, None) => build!(
            TimestampMicrosecondBuilder::new(),
            Value::Timestamp(t) => t.and_utc().timestamp_micros()
        ),
        DataType::Timestamp(_, Some(_)) => build!(
            TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            Value::TimestampTz(t) => t.timestamp_micros()
        ),
        other => Err(format!(
            "column '{}': type {other} is not written",
            field.name()
        )),
    }
}

fn days_since_epoch(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
    i32::try_from((date - epoch).num_days()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Date32Type, Decimal128Type, Float64Type, Int64Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn write(columns: &[&str], rows: &[Vec<Value>]) -> Vec<u8> {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let mut report = ParquetReport::new(Vec::new(), &columns);
        for row in rows {
            report.write_row(row).unwrap();
        }
        let (count, bytes) = report.finish().unwrap();
        assert_eq!(count, rows.len() as u64);
        bytes
    }

    fn read(bytes: Vec<u8>) -> Vec<RecordBatch> {
        ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn values_read_back_with_their_types() {
        let date = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let bytes = write(
            &["id", "name", "amount", "ratio", "sold_on", "nothing"],
            &[
                vec![
                    Value::Int(1),
                    Value::Text("Zürich".into()),
                    Value::Decimal("12500.50".into()),
                    Value::Float(0.25),
                    Value::Date(date),
                    Value::Null,
                ],
                vec![
                    Value::Int(2),
                    Value::Null,
                    Value::Decimal("-3".into()),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ],
            ],
        );
        let batches = read(bytes);
        let batch = &batches[0];
        let schema = batch.schema();
        assert_eq!(schema.field(0).data_type(), &DataType::Int64);
        assert_eq!(schema.field(2).data_type(), &DataType::Decimal128(38, 2));
        assert_eq!(schema.field(5).data_type(), &DataType::Utf8);
        assert_eq!(batch.column(0).as_primitive::<Int64Type>().value(1), 2);
        assert_eq!(batch.column(1).as_string::<i32>().value(0), "Zürich");
        assert!(batch.column(1).is_null(1));
        let amounts = batch.column(2).as_primitive::<Decimal128Type>();
        assert_eq!((amounts.value(0), amounts.value(1)), (1_250_050, -300));
        assert_eq!(batch.column(3).as_primitive::<Float64Type>().value(0), 0.25);
        assert_eq!(
            batch.column(4).as_primitive::<Date32Type>().value(0),
            days_since_epoch(date)
        );
    }

    #[test]
    fn many_rows_go_in_several_row_groups() {
        let rows: Vec<Vec<Value>> = (0..150_000).map(|i| vec![Value::Int(i)]).collect();
        let bytes = write(&["n"], &rows);
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
        assert_eq!(reader.metadata().num_row_groups(), 3);
        let total: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(total, 150_000);
    }

    #[test]
    fn an_empty_result_is_a_file_with_its_columns() {
        let batches = read(write(&["a", "b"], &[]));
        assert!(batches.iter().all(|b| b.num_rows() == 0));
        let bytes = write(&["a", "b"], &[]);
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
        assert_eq!(reader.schema().fields().len(), 2);
    }

    #[test]
    fn decimals_that_do_not_fit_the_columns_scale_are_refused() {
        assert_eq!(scaled_decimal("1.50", 2), Some(150));
        assert_eq!(scaled_decimal("1.500", 2), Some(150));
        assert_eq!(scaled_decimal("-0.5", 1), Some(-5));
        assert_eq!(scaled_decimal("1.005", 2), None);
        let columns = vec!["x".to_string()];
        let mut report = ParquetReport::new(Vec::new(), &columns);
        // The first chunk gives the column one decimal place; the next has two.
        for _ in 0..CHUNK_ROWS {
            report.write_row(&[Value::Decimal("1.5".into())]).unwrap();
        }
        report.write_row(&[Value::Decimal("1.25".into())]).unwrap();
        let err = report.finish().unwrap_err();
        assert!(err.contains("column 'x'") && err.contains("1.25"), "{err}");
    }
}
