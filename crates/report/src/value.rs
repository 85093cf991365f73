//! A value of a report's result, and its text as DWTOOL's Python writes it (`str()`),
//! which is what its CSV holds and what its JSON holds for values JSON has no type for.

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike};
use dwsched_flow::Value;
use dwsched_model::python::{python_decimal, python_float};

/// The text Python's `str()` gives the value the original's driver returns; NULL is
/// empty (the `csv` module's rendering). A timestamp with a zone is in UTC (`+00:00`),
/// and bytes, which Python would print as a memory address, are PostgreSQL's hex form
/// (`\x0aff`).
pub fn python_str(value: &Value) -> String {
    let mut text = String::new();
    write_python_str(value, &mut text);
    text
}

/// [`python_str`], appended to `out`: writers reuse one buffer for every value.
pub fn write_python_str(value: &Value, out: &mut String) {
    match value {
        Value::Null => {}
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Float(x) => out.push_str(&python_float(*x)),
        Value::Decimal(text) => out.push_str(&python_decimal(text)),
        Value::Text(text) => out.push_str(text),
        Value::Date(d) => write_date(out, *d),
        Value::Time(t) => write_time(out, *t),
        Value::Timestamp(t) => {
            write_date(out, t.date());
            out.push(' ');
            write_time(out, t.time());
        }
        Value::TimestampTz(t) => {
            let t = t.naive_utc();
            write_date(out, t.date());
            out.push(' ');
            write_time(out, t.time());
            out.push_str("+00:00");
        }
        Value::Bytes(bytes) => {
            out.push_str("\\x");
            for byte in bytes {
                let _ = write!(out, "{byte:02x}");
            }
        }
    }
}

/// `YYYY-MM-DD` (Python's `date.__str__`).
fn write_date(out: &mut String, d: NaiveDate) {
    let _ = write!(out, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
}

/// `HH:MM:SS`, with `.ffffff` when there are microseconds (Python's `time.__str__`).
fn write_time(out: &mut String, t: NaiveTime) {
    let _ = write!(out, "{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
    let micros = t.nanosecond() / 1000 % 1_000_000;
    if micros != 0 {
        let _ = write!(out, ".{micros:06}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_values_as_python_writes_them() {
        use chrono::NaiveDate;
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let at = day.and_hms_opt(6, 5, 4).unwrap();
        let precise = day.and_hms_micro_opt(6, 5, 4, 120).unwrap();
        for (value, expected) in [
            (Value::Null, ""),
            (Value::Bool(true), "True"),
            (Value::Bool(false), "False"),
            (Value::Int(-42), "-42"),
            (Value::Text("a,b".into()), "a,b"),
            (Value::Date(day), "2026-03-01"),
            (Value::Timestamp(at), "2026-03-01 06:05:04"),
            (Value::Timestamp(precise), "2026-03-01 06:05:04.000120"),
            (Value::Time(precise.time()), "06:05:04.000120"),
            (
                Value::TimestampTz(at.and_utc()),
                "2026-03-01 06:05:04+00:00",
            ),
            (Value::Bytes(vec![0x0a, 0xff]), "\\x0aff"),
        ] {
            assert_eq!(python_str(&value), expected, "{value:?}");
        }
    }
}
