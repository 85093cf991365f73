//! The values a `load` carries from a source row to a target row, decoded once per
//! column type and written back in each backend's own form.
//!
//! Numerics travel as their exact decimal text, timestamps keep whether they had a zone,
//! and bytes stay bytes, so a load between two backends changes no value that both can
//! hold.

use std::fmt::{self, Write as _};

use chrono::{DateTime, Datelike as _, NaiveDate, NaiveDateTime, NaiveTime, Timelike as _, Utc};
use sqlx::mysql::MySqlRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row as _, TypeInfo as _, ValueRef as _};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// An exact decimal, as plain text (no exponent).
    Decimal(String),
    Text(String),
    Bytes(Vec<u8>),
    Date(NaiveDate),
    Time(NaiveTime),
    /// A timestamp without zone.
    Timestamp(NaiveDateTime),
    /// A timestamp with zone, as UTC.
    TimestampTz(DateTime<Utc>),
}

impl fmt::Display for Value {
    /// The value as a person reads it, for `KEYVALUE` and messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("NULL"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Decimal(s) | Self::Text(s) => f.write_str(s),
            Self::Bytes(b) => {
                f.write_str("\\x")?;
                b.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
            }
            Self::Date(d) => write!(f, "{d}"),
            Self::Time(t) => write!(f, "{t}"),
            Self::Timestamp(t) => write!(f, "{t}"),
            Self::TimestampTz(t) => write!(f, "{}", t.format("%Y-%m-%d %H:%M:%S%.f+00")),
        }
    }
}

/// A column whose type a load cannot carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedColumn {
    pub column: String,
    pub type_name: String,
}

impl fmt::Display for UnsupportedColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "column '{}' has type {}, which a load cannot carry; cast it to text or a number in the source query",
            self.column, self.type_name
        )
    }
}

/// How one source column is read; chosen once from the column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decoder {
    Bool,
    Int,
    /// MySQL `BIGINT UNSIGNED`: above `i64::MAX` it becomes a decimal.
    UnsignedInt,
    Float32,
    Float,
    Decimal,
    Text,
    /// Text that sqlx does not decode as text (PostgreSQL JSON, MySQL ENUM/SET/JSON).
    RawText,
    /// PostgreSQL JSONB: a version byte, then the text.
    Jsonb,
    Uuid,
    Bytes,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    /// SQLite: by the value's own storage class.
    Dynamic,
}

pub(crate) fn postgres_decoder(type_name: &str) -> Option<Decoder> {
    Some(match type_name {
        "BOOL" => Decoder::Bool,
        "INT2" | "INT4" | "INT8" | "OID" => Decoder::Int,
        "FLOAT4" => Decoder::Float32,
        "FLOAT8" => Decoder::Float,
        "NUMERIC" => Decoder::Decimal,
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CITEXT" | "UNKNOWN" => Decoder::Text,
        "\"CHAR\"" | "CHAR" | "JSON" | "XML" => Decoder::RawText,
        "JSONB" => Decoder::Jsonb,
        "UUID" => Decoder::Uuid,
        "BYTEA" => Decoder::Bytes,
        "DATE" => Decoder::Date,
        "TIME" => Decoder::Time,
        "TIMESTAMP" => Decoder::Timestamp,
        "TIMESTAMPTZ" => Decoder::TimestampTz,
        _ => return None,
    })
}

pub(crate) fn mysql_decoder(type_name: &str) -> Option<Decoder> {
    Some(match type_name {
        "BOOLEAN" => Decoder::Bool,
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "TINYINT UNSIGNED"
        | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED" | "YEAR" => Decoder::Int,
        "BIGINT UNSIGNED" => Decoder::UnsignedInt,
        "FLOAT" => Decoder::Float32,
        "DOUBLE" => Decoder::Float,
        "DECIMAL" => Decoder::Decimal,
        "CHAR" | "VARCHAR" | "TEXT" | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT" => Decoder::Text,
        "ENUM" | "SET" | "JSON" => Decoder::RawText,
        "BINARY" | "VARBINARY" | "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB" => Decoder::Bytes,
        "DATE" => Decoder::Date,
        "TIME" => Decoder::Time,
        "DATETIME" => Decoder::Timestamp,
        "TIMESTAMP" => Decoder::TimestampTz,
        "NULL" => Decoder::Text,
        _ => return None,
    })
}

pub(crate) fn sqlite_decoder(declared: &str) -> Decoder {
    match declared {
        "BOOLEAN" => Decoder::Bool,
        "DATE" => Decoder::Date,
        "DATETIME" => Decoder::Timestamp,
        _ => Decoder::Dynamic,
    }
}

/// The decoders of a row's columns, or the first column no decoder can read.
pub(crate) fn decoders_for(
    columns: impl Iterator<Item = (String, String)>,
    decoder: impl Fn(&str) -> Option<Decoder>,
) -> Result<Vec<Decoder>, UnsupportedColumn> {
    columns
        .map(|(column, type_name)| {
            decoder(&type_name).ok_or(UnsupportedColumn { column, type_name })
        })
        .collect()
}

type DecodeResult = Result<Value, sqlx::Error>;

fn opt<T>(value: Option<T>, make: impl FnOnce(T) -> Value) -> Value {
    value.map_or(Value::Null, make)
}

pub(crate) fn decode_postgres(row: &PgRow, index: usize, decoder: Decoder) -> DecodeResult {
    Ok(match decoder {
        Decoder::Bool => opt(row.try_get::<Option<bool>, _>(index)?, Value::Bool),
        Decoder::Int => {
            let raw = row.try_get_raw(index)?;
            if raw.is_null() {
                Value::Null
            } else {
                match raw.type_info().name() {
                    "INT2" => Value::Int(row.try_get::<i16, _>(index)?.into()),
                    "INT4" => Value::Int(row.try_get::<i32, _>(index)?.into()),
                    "OID" => Value::Int(
                        row.try_get::<sqlx::postgres::types::Oid, _>(index)?
                            .0
                            .into(),
                    ),
                    _ => Value::Int(row.try_get::<i64, _>(index)?),
                }
            }
        }
        Decoder::Float32 => opt(row.try_get::<Option<f32>, _>(index)?, |x| {
            Value::Float(shortest_f32(x))
        }),
        Decoder::Float => opt(row.try_get::<Option<f64>, _>(index)?, Value::Float),
        Decoder::Text => opt(row.try_get::<Option<String>, _>(index)?, Value::Text),
        Decoder::Decimal | Decoder::RawText | Decoder::Jsonb | Decoder::Uuid => {
            let raw = row.try_get_raw(index)?;
            if raw.is_null() {
                return Ok(Value::Null);
            }
            let bytes = raw.as_bytes().map_err(sqlx::Error::Decode)?;
            match decoder {
                Decoder::Uuid => {
                    let uuid = uuid::Uuid::from_slice(bytes)
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                    Value::Text(uuid.hyphenated().to_string())
                }
                Decoder::Jsonb => Value::Text(utf8(bytes.get(1..).unwrap_or_default())?),
                Decoder::Decimal => numeric_text(bytes)
                    .map(Value::Decimal)
                    .ok_or_else(|| sqlx::Error::Decode("malformed NUMERIC value".into()))?,
                _ => Value::Text(utf8(bytes)?),
            }
        }
        Decoder::Bytes => opt(row.try_get::<Option<Vec<u8>>, _>(index)?, Value::Bytes),
        Decoder::Date => opt(row.try_get::<Option<NaiveDate>, _>(index)?, Value::Date),
        Decoder::Time => opt(row.try_get::<Option<NaiveTime>, _>(index)?, Value::Time),
        Decoder::Timestamp => opt(
            row.try_get::<Option<NaiveDateTime>, _>(index)?,
            Value::Timestamp,
        ),
        Decoder::TimestampTz => opt(
            row.try_get::<Option<DateTime<Utc>>, _>(index)?,
            Value::TimestampTz,
        ),
        Decoder::UnsignedInt | Decoder::Dynamic => unreachable!("not a PostgreSQL decoder"),
    })
}

pub(crate) fn decode_mysql(row: &MySqlRow, index: usize, decoder: Decoder) -> DecodeResult {
    Ok(match decoder {
        Decoder::Bool => opt(row.try_get::<Option<bool>, _>(index)?, Value::Bool),
        Decoder::Int => {
            let raw = row.try_get_raw(index)?;
            if raw.is_null() {
                Value::Null
            } else if raw.type_info().name() == "INT UNSIGNED" {
                Value::Int(row.try_get::<u32, _>(index)?.into())
            } else if raw.type_info().name() == "YEAR" {
                Value::Int(row.try_get_unchecked::<u16, _>(index)?.into())
            } else {
                Value::Int(row.try_get::<i64, _>(index)?)
            }
        }
        Decoder::UnsignedInt => opt(row.try_get::<Option<u64>, _>(index)?, |u| {
            i64::try_from(u).map_or_else(|_| Value::Decimal(u.to_string()), Value::Int)
        }),
        Decoder::Float32 => opt(row.try_get::<Option<f32>, _>(index)?, |x| {
            Value::Float(shortest_f32(x))
        }),
        Decoder::Float => opt(row.try_get::<Option<f64>, _>(index)?, Value::Float),
        Decoder::Text => opt(row.try_get::<Option<String>, _>(index)?, Value::Text),
        // MySQL sends decimals as their text in both protocols.
        Decoder::Decimal => opt(
            row.try_get_unchecked::<Option<String>, _>(index)?,
            Value::Decimal,
        ),
        Decoder::RawText => opt(
            row.try_get_unchecked::<Option<String>, _>(index)?,
            Value::Text,
        ),
        Decoder::Bytes => opt(row.try_get::<Option<Vec<u8>>, _>(index)?, Value::Bytes),
        Decoder::Date => opt(row.try_get::<Option<NaiveDate>, _>(index)?, Value::Date),
        Decoder::Time => opt(row.try_get::<Option<NaiveTime>, _>(index)?, Value::Time),
        Decoder::Timestamp => opt(
            row.try_get::<Option<NaiveDateTime>, _>(index)?,
            Value::Timestamp,
        ),
        Decoder::TimestampTz => opt(
            row.try_get::<Option<DateTime<Utc>>, _>(index)?,
            Value::TimestampTz,
        ),
        Decoder::Jsonb | Decoder::Uuid | Decoder::Dynamic => {
            unreachable!("not a MySQL decoder")
        }
    })
}

pub(crate) fn decode_sqlite(row: &SqliteRow, index: usize, decoder: Decoder) -> DecodeResult {
    let raw = row.try_get_raw(index)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let storage = raw.type_info().name().to_string();
    // A declared type only refines what the stored value allows; SQLite keeps any value
    // in any column.
    Ok(match (decoder, storage.as_str()) {
        (Decoder::Bool, "INTEGER" | "BOOLEAN") => Value::Bool(row.try_get::<i64, _>(index)? != 0),
        (Decoder::Date, "TEXT" | "DATE") => {
            let text = row.try_get::<String, _>(index)?;
            text.parse().map_or(Value::Text(text), Value::Date)
        }
        (Decoder::Timestamp, "TEXT" | "DATETIME") => {
            let text = row.try_get::<String, _>(index)?;
            parse_sqlite_timestamp(&text).unwrap_or(Value::Text(text))
        }
        (_, "INTEGER" | "BOOLEAN") => Value::Int(row.try_get::<i64, _>(index)?),
        (_, "REAL") => Value::Float(row.try_get::<f64, _>(index)?),
        (_, "BLOB") => Value::Bytes(row.try_get::<Vec<u8>, _>(index)?),
        _ => Value::Text(row.try_get_unchecked::<String, _>(index)?),
    })
}

/// SQLite keeps timestamps as text: with a zone they are instants, without they are
/// wall-clock times.
fn parse_sqlite_timestamp(text: &str) -> Option<Value> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(Value::TimestampTz(t.with_timezone(&Utc)));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(Value::TimestampTz(t.with_timezone(&Utc)));
        }
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(Value::Timestamp)
}

/// The text of a PostgreSQL NUMERIC in binary form, with its declared scale: sqlx's
/// decimal types drop the scale (2.00 becomes 2), and a warehouse load must not.
fn numeric_text(bytes: &[u8]) -> Option<String> {
    let word = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(2)? as i16);
    let sign = word(4)?;
    let dscale = usize::from(word(6)?);
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => {}
    }
    let digits = (0..ndigits)
        .map(|i| word(8 + 2 * i))
        .collect::<Option<Vec<u16>>>()?;
    // Each base-10000 digit is four decimal digits; digit i has weight `weight - i`.
    let group = |position: i32| -> u16 {
        usize::try_from(weight - position)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for position in (0..=weight).rev() {
            let value = group(position);
            if position == weight {
                text.push_str(&value.to_string());
            } else {
                text.push_str(&format!("{value:04}"));
            }
        }
    }
    if dscale > 0 {
        text.push('.');
        let mut fraction = String::new();
        let mut position = -1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", group(position)));
            position -= 1;
        }
        fraction.truncate(dscale);
        text.push_str(&fraction);
    }
    Some(text)
}

fn utf8(bytes: &[u8]) -> Result<String, sqlx::Error> {
    String::from_utf8(bytes.to_vec()).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// An `f32` widened to the `f64` that prints the same digits (1.1f32 stays 1.1).
fn shortest_f32(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// Appends `value` as a field of PostgreSQL's COPY text format.
pub(crate) fn write_copy_field(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"\\N"),
        Value::Bool(b) => out.push(if *b { b't' } else { b'f' }),
        Value::Int(i) => {
            let mut buffer = itoa::Buffer::new();
            out.extend_from_slice(buffer.format(*i).as_bytes());
        }
        Value::Float(x) if x.is_nan() => out.extend_from_slice(b"NaN"),
        Value::Float(x) if x.is_infinite() => {
            out.extend_from_slice(if *x > 0.0 { b"Infinity" } else { b"-Infinity" })
        }
        Value::Float(x) => {
            let mut buffer = ryu::Buffer::new();
            out.extend_from_slice(buffer.format_finite(*x).as_bytes());
        }
        Value::Decimal(s) => out.extend_from_slice(s.as_bytes()),
        Value::Text(s) => escape_copy_text(out, s),
        Value::Bytes(b) => {
            out.extend_from_slice(b"\\\\x");
            for byte in b {
                out.extend_from_slice(&HEX[usize::from(*byte)]);
            }
        }
        // Dates and whole-second timestamps are written digit by digit: a file upload
        // writes two to each row, and the formatter is most of its cost.
        Value::Date(d) if (0..=9999).contains(&d.year()) => write_iso_date(out, *d),
        // (A leap second's nanoseconds pass 1e9, and go through the formatter.)
        Value::Timestamp(t) if (0..=9999).contains(&t.year()) && t.nanosecond() < 1_000_000_000 => {
            write_iso_date(out, t.date());
            out.push(b' ');
            for (i, part) in [t.hour(), t.minute(), t.second()].into_iter().enumerate() {
                if i > 0 {
                    out.push(b':');
                }
                push_digits(out, part, 2);
            }
            // The fraction as chrono writes it: 3, 6 or 9 digits, none when zero.
            let nanos = t.nanosecond();
            if nanos % 1_000_000 == 0 && nanos > 0 {
                out.push(b'.');
                push_digits(out, nanos / 1_000_000, 3);
            } else if nanos % 1_000 == 0 && nanos > 0 {
                out.push(b'.');
                push_digits(out, nanos / 1_000, 6);
            } else if nanos > 0 {
                out.push(b'.');
                push_digits(out, nanos, 9);
            }
        }
        other => {
            let mut text = String::new();
            let _ = write!(text, "{other}");
            out.extend_from_slice(text.as_bytes());
        }
    }
}

/// `YYYY-MM-DD` of a date in years 0 to 9999.
fn write_iso_date(out: &mut Vec<u8>, date: chrono::NaiveDate) {
    push_digits(out, date.year().unsigned_abs(), 4);
    out.push(b'-');
    push_digits(out, date.month(), 2);
    out.push(b'-');
    push_digits(out, date.day(), 2);
}

/// The last `width` decimal digits of `n`, zero-padded.
fn push_digits(out: &mut Vec<u8>, n: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = (n / 10u32.pow(place)) % 10;
        out.push(b'0' + u8::try_from(digit).unwrap_or(0));
    }
}

const HEX: [[u8; 2]; 256] = {
    let digits = b"0123456789abcdef";
    let mut table = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [digits[i >> 4], digits[i & 15]];
        i += 1;
    }
    table
};

fn escape_copy_text(out: &mut Vec<u8>, text: &str) {
    let mut rest = text.as_bytes();
    // Runs of ordinary bytes go in whole; only the four special ones are escaped.
    while let Some(at) = rest
        .iter()
        .position(|b| matches!(b, b'\\' | b'\n' | b'\r' | b'\t'))
    {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(match rest[at] {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => b"\\t",
        });
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
}

/// The fields of one line of COPY text, unescaped (`\N` is NULL).
pub fn parse_copy_line(line: &[u8]) -> Vec<Value> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.split(|b| *b == b'\t')
        .map(|field| {
            if field == b"\\N" {
                return Value::Null;
            }
            let mut text = Vec::with_capacity(field.len());
            let mut bytes = field.iter();
            while let Some(&byte) = bytes.next() {
                if byte != b'\\' {
                    text.push(byte);
                    continue;
                }
                match bytes.next() {
                    Some(b'n') => text.push(b'\n'),
                    Some(b'r') => text.push(b'\r'),
                    Some(b't') => text.push(b'\t'),
                    Some(b'b') => text.push(8),
                    Some(b'f') => text.push(12),
                    Some(b'v') => text.push(11),
                    Some(&other) => text.push(other),
                    None => {}
                }
            }
            Value::Text(String::from_utf8_lossy(&text).into_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL's binary NUMERIC: ndigits, weight, sign, dscale, base-10000 digits.
    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for word in [digits.len() as u16, weight as u16, sign, dscale] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        for digit in digits {
            bytes.extend_from_slice(&digit.to_be_bytes());
        }
        bytes
    }

    fn check(bytes: Vec<u8>, expected: &str) {
        assert_eq!(numeric_text(&bytes).as_deref(), Some(expected));
    }

    #[test]
    fn numerics_keep_their_scale() {
        check(numeric(-2, 0, 6, &[100]), "0.000001");
        check(numeric(0, 0x4000, 1, &[2, 5000]), "-2.5");
        check(numeric(1, 0, 0, &[1]), "10000");
        check(numeric(0, 0, 2, &[2]), "2.00");
        check(
            numeric(3, 0, 6, &[12, 3456, 7890, 1234, 1234, 5600]),
            "12345678901234.123456",
        );
        check(numeric(0, 0, 0, &[]), "0");
        check(numeric(0, 0xC000, 0, &[]), "NaN");
        assert_eq!(numeric_text(&[0, 1]), None);
    }

    #[test]
    fn copy_text_round_trips() {
        let values = [
            Value::Text("a\tb\nc\\d\re".into()),
            Value::Null,
            Value::Bytes(vec![0, 255]),
            Value::Int(-3),
        ];
        let mut line = Vec::new();
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                line.push(b'\t');
            }
            write_copy_field(&mut line, value);
        }
        line.push(b'\n');
        let parsed = parse_copy_line(&line);
        assert_eq!(parsed[0], values[0]);
        assert_eq!(parsed[1], Value::Null);
        assert_eq!(parsed[2], Value::Text("\\x00ff".into()));
        assert_eq!(parsed[3], Value::Text("-3".into()));
    }

    #[test]
    fn dates_and_timestamps_are_written_as_their_display_forms() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let values = [
            Value::Date(day(2026, 3, 1)),
            Value::Date(day(7, 12, 31)),
            Value::Date(day(12_000, 1, 1)),
            Value::Timestamp(day(2026, 11, 30).and_hms_opt(6, 5, 9).unwrap()),
            Value::Timestamp(day(2026, 1, 2).and_hms_micro_opt(23, 59, 58, 120).unwrap()),
            Value::Timestamp(day(2026, 1, 2).and_hms_milli_opt(0, 0, 1, 5).unwrap()),
            Value::Timestamp(day(2026, 1, 2).and_hms_nano_opt(0, 0, 1, 7).unwrap()),
            Value::Timestamp(
                day(2016, 12, 31)
                    .and_hms_milli_opt(23, 59, 59, 1500)
                    .unwrap(),
            ),
        ];
        for value in values {
            let mut out = Vec::new();
            write_copy_field(&mut out, &value);
            assert_eq!(String::from_utf8(out).unwrap(), value.to_string());
        }
    }
}
