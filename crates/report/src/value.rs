//! A value of a report's result, and its text as DWTOOL's Python writes it (`str()`),
//! which is what its CSV holds and what its JSON holds for values JSON has no type for.

use std::fmt::Write as _;

use chrono::{NaiveTime, Timelike};
use dwsched_flow::Value;
use dwsched_model::python::{python_decimal, python_float};

/// The text Python's `str()` gives the value the original's driver returns; NULL is
/// empty (the `csv` module's rendering). A timestamp with a zone is in UTC (`+00:00`),
/// and bytes, which Python would print as a memory address, are PostgreSQL's hex form
/// (`\x0aff`).
pub fn python_str(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Int(n) => n.to_string(),
        Value::Float(x) => python_float(*x),
        Value::Decimal(text) => python_decimal(text),
        Value::Text(text) => text.clone(),
        Value::Date(d) => d.format("%Y-%m-%d").to_string(),
        Value::Time(t) => python_time(*t),
        Value::Timestamp(t) => format!("{} {}", t.date().format("%Y-%m-%d"), python_time(t.time())),
        Value::TimestampTz(t) => format!(
            "{} {}+00:00",
            t.date_naive().format("%Y-%m-%d"),
            python_time(t.time())
        ),
        Value::Bytes(bytes) => {
            let mut text = String::from("\\x");
            for byte in bytes {
                let _ = write!(text, "{byte:02x}");
            }
            text
        }
    }
}

/// `HH:MM:SS`, with `.ffffff` when there are microseconds (Python's `time.__str__`).
fn python_time(t: NaiveTime) -> String {
    let micros = t.nanosecond() / 1000 % 1_000_000;
    if micros == 0 {
        t.format("%H:%M:%S").to_string()
    } else {
        format!("{}.{micros:06}", t.format("%H:%M:%S"))
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
