//! `RWHKEY`: the row hash DWTOOL's mapper writes, reproduced bit for bit so that rows
//! it loaded are not seen as changed.
//!
//! The original takes MD5 of the `|`-joined values of the hashed columns, each rendered
//! by Python's `str()` of what the source's Python driver returned (psycopg2,
//! mysql-connector, sqlite3): `<NULL>` for NULL, datetimes to the second, decimals with
//! their scale. The renderings below follow those drivers for each source database.

use std::fmt::Write as _;

use md5::{Digest as _, Md5};

use crate::connect::DbKind;
use crate::value::Value;

/// The audit columns the hash leaves out, whatever the mapping says.
pub const HASH_EXCLUDED: [&str; 9] = [
    "SKEY", "RWHKEY", "RECCRDT", "RECUPDT", "CURFLG", "FROMDT", "TODT", "VALDFRM", "VALDTO",
];

/// Whether a target column takes part in the hash.
pub fn is_hashed(column: &str) -> bool {
    !HASH_EXCLUDED
        .iter()
        .any(|excluded| excluded.eq_ignore_ascii_case(column))
}

/// The hash of one row's hashed values, in `ALL_COLUMNS` order: 32 lower-case hex
/// digits. `text` is scratch space, reused across rows.
pub fn row_hash<'a>(
    values: impl IntoIterator<Item = &'a Value>,
    source: DbKind,
    text: &mut String,
) -> String {
    text.clear();
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            text.push('|');
        }
        render(value, source, text);
    }
    let digest = Md5::digest(text.as_bytes());
    let mut hex = String::with_capacity(32);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Appends `value` as Python's `str()` renders what the source's driver returns.
pub fn render(value: &Value, source: DbKind, out: &mut String) {
    match value {
        Value::Null => out.push_str("<NULL>"),
        // psycopg2 returns bool; mysql-connector and sqlite3 return the stored integer.
        Value::Bool(b) => out.push_str(match (source, b) {
            (DbKind::Postgres, true) => "True",
            (DbKind::Postgres, false) => "False",
            (_, true) => "1",
            (_, false) => "0",
        }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(x) => python_float_repr(*x, out),
        Value::Decimal(text) => python_decimal_str(text, out),
        Value::Text(s) => out.push_str(s),
        // The original hashes a memoryview's address here (not repeatable); hex is at
        // least stable, and `dwtool rehash` aligns existing rows to it.
        Value::Bytes(bytes) => {
            for byte in bytes {
                let _ = write!(out, "{byte:02x}");
            }
        }
        Value::Date(d) => {
            let _ = write!(out, "{}", d.format("%Y-%m-%d"));
        }
        Value::Time(t) => python_time(*t, source, out),
        Value::Timestamp(t) => {
            let _ = write!(out, "{}", t.format("%Y-%m-%d %H:%M:%S"));
        }
        // Aware datetimes print their wall clock in the session zone, which for
        // dwsched's sessions is UTC.
        Value::TimestampTz(t) => {
            let _ = write!(out, "{}", t.format("%Y-%m-%d %H:%M:%S"));
        }
    }
}

/// psycopg2 returns `datetime.time` (`09:05:00`, `09:05:00.250000`); mysql-connector
/// returns `timedelta` (`9:05:00`, `9:05:00.250000`).
fn python_time(t: chrono::NaiveTime, source: DbKind, out: &mut String) {
    use chrono::Timelike as _;
    let micros = t.nanosecond() / 1_000;
    match source {
        DbKind::MySql => {
            let _ = write!(out, "{}:{:02}:{:02}", t.hour(), t.minute(), t.second());
        }
        _ => {
            let _ = write!(out, "{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
        }
    }
    if micros > 0 {
        let _ = write!(out, ".{micros:06}");
    }
}

/// Python's `repr(float)`: the shortest digits that read back, fixed notation for
/// decimal exponents -4..16, otherwise `1e-05` / `1.5e+16`; always a `.0` on integers.
pub fn python_float_repr(x: f64, out: &mut String) {
    if x.is_nan() {
        out.push_str("nan");
        return;
    }
    if x.is_infinite() {
        out.push_str(if x > 0.0 { "inf" } else { "-inf" });
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `-1.2345e-7`.
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("{:e} always has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is an integer");
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if negative {
        out.push('-');
    }
    if (-4..16).contains(&exponent) {
        let point = exponent + 1; // digits before the decimal point
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(&digits);
        } else if point as usize >= digits.len() {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point as usize]);
            out.push('.');
            out.push_str(&digits[point as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.abs()
        );
    }
}

/// Python's `str(Decimal(text))` for a plain decimal text (`-12.340`): plain notation
/// unless the adjusted exponent is below -6 (`1E-7`, `0E-8`).
pub fn python_decimal_str(text: &str, out: &mut String) {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .chars()
            .chain(fraction.chars())
            .all(|c| c.is_ascii_digit())
    {
        // NaN, Infinity, or text that is not a plain decimal: Python prints those
        // words as they are.
        out.push_str(text);
        return;
    }
    let all: String = whole.chars().chain(fraction.chars()).collect();
    let coefficient = all.trim_start_matches('0');
    let coefficient = if coefficient.is_empty() {
        "0"
    } else {
        coefficient
    };
    let exponent = -(fraction.len() as i64);
    let adjusted = exponent + coefficient.len() as i64 - 1;
    if negative {
        out.push('-');
    }
    if adjusted >= -6 {
        if exponent == 0 {
            out.push_str(coefficient);
        } else {
            let point = coefficient.len() as i64 + exponent; // digits before the point
            if point > 0 {
                out.push_str(&coefficient[..point as usize]);
                out.push('.');
                out.push_str(&coefficient[point as usize..]);
            } else {
                out.push_str("0.");
                out.extend(std::iter::repeat_n('0', (-point) as usize));
                out.push_str(coefficient);
            }
        }
    } else {
        out.push_str(&coefficient[..1]);
        if coefficient.len() > 1 {
            out.push('.');
            out.push_str(&coefficient[1..]);
        }
        let _ = write!(out, "E{adjusted}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn float(x: f64) -> String {
        let mut out = String::new();
        python_float_repr(x, &mut out);
        out
    }

    fn decimal(text: &str) -> String {
        let mut out = String::new();
        python_decimal_str(text, &mut out);
        out
    }

    #[test]
    fn floats_as_python_repr() {
        for (x, expected) in [
            (0.1, "0.1"),
            (1e-05, "1e-05"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123.0, "123.0"),
            (0.0001, "0.0001"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (-2.5, "-2.5"),
            (1234567890123456.0, "1234567890123456.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (1.5e300, "1.5e+300"),
            (1.0 / 3.0, "0.3333333333333333"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::from(0.1f32), "0.10000000149011612"),
        ] {
            assert_eq!(float(x), expected, "{x:e}");
        }
    }

    #[test]
    fn decimals_as_python_str() {
        for (text, expected) in [
            ("199.90", "199.90"),
            ("-2.50", "-2.50"),
            ("100", "100"),
            ("0.00", "0.00"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1E-7"),
            ("0.0000000", "0E-7"),
            ("-0.00000012", "-1.2E-7"),
            ("007.5", "7.5"),
            ("NaN", "NaN"),
        ] {
            assert_eq!(decimal(text), expected, "{text}");
        }
    }

    /// DWTOOL-MAPPING.md §7.4: hashes computed with md5sum over the worked example's
    /// rows as psycopg2 returns them.
    #[test]
    fn worked_example_vectors() {
        let text = |s: &str| Value::Text(s.into());
        let mut scratch = String::new();
        let customers = [
            (
                vec![Value::Int(1), text("Ann Lee"), text("Pune"), text("RETAIL")],
                "117be08f8857f044c16f4789ba41d4ea",
            ),
            (
                vec![Value::Int(2), text("Bo Chen"), text("Delhi"), text("SME")],
                "45b68fbde25ec93ee7d15e0e0727a661",
            ),
            (
                vec![Value::Int(2), text("Bo Chen"), text("Mumbai"), text("SME")],
                "1158ff7ab3f062fa6d945d24249dc0ac",
            ),
            (
                vec![Value::Int(3), text("Cy Das"), Value::Null, text("RETAIL")],
                "f13b74d603ab22a96d5c68f45d6f8aa1",
            ),
        ];
        let day = Value::Date(NaiveDate::from_ymd_opt(2026, 1, 15).unwrap());
        let sales = [
            (
                vec![
                    Value::Int(1001),
                    Value::Int(1),
                    day.clone(),
                    text("P-10"),
                    Value::Int(2),
                    Value::Decimal("199.90".into()),
                ],
                "40a8eb4b5249f5f2e669054d1b67060b",
            ),
            (
                vec![
                    Value::Int(1002),
                    Value::Int(2),
                    day,
                    text("P-20"),
                    Value::Int(1),
                    Value::Decimal("49.50".into()),
                ],
                "ff95da68df7be17e3e925a7486b70bdd",
            ),
        ];
        for (values, expected) in customers.iter().chain(sales.iter()) {
            assert_eq!(
                row_hash(values, DbKind::Postgres, &mut scratch),
                *expected,
                "{scratch}"
            );
        }
    }

    #[test]
    fn driver_renderings() {
        let render_one = |value: Value, source: DbKind| {
            let mut out = String::new();
            render(&value, source, &mut out);
            out
        };
        assert_eq!(render_one(Value::Bool(true), DbKind::Postgres), "True");
        assert_eq!(render_one(Value::Bool(false), DbKind::MySql), "0");
        let at = NaiveDate::from_ymd_opt(2026, 1, 15)
            .unwrap()
            .and_hms_micro_opt(9, 5, 0, 250_000)
            .unwrap();
        assert_eq!(
            render_one(Value::Timestamp(at), DbKind::Postgres),
            "2026-01-15 09:05:00"
        );
        assert_eq!(
            render_one(Value::Time(at.time()), DbKind::Postgres),
            "09:05:00.250000"
        );
        assert_eq!(
            render_one(Value::Time(at.time()), DbKind::MySql),
            "9:05:00.250000"
        );
        assert!(is_hashed("cust_name"));
        assert!(!is_hashed("curflg"));
    }
}
