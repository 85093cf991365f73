//! A file's text converted to its mapping's type (`TRGCLDTYP`, or the SQL type its
//! `DMS_PARAMS` `Datatype` row gives): text stays text, leading zeros and all; whole
//! numbers, decimals, dates and timestamps are read strictly, and a value that is not
//! what its column says is refused with the reason instead of loaded as something
//! else.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use dwsched_flow::Value;
use dwsched_model::python::DecimalParts;

/// What a mapping's type makes of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    Integer,
    Decimal,
    Date,
    Timestamp,
}

impl ValueKind {
    /// The kind of a mapping's type: the SQL type of its `Datatype` row when there is
    /// one (`VARCHAR(100)`, `NUMBER(18,2)`, `TIMESTAMP`), else its generic code
    /// (`String100`, `Integer`, `Decimal18,2`, `Date`, `Timestamp`). Unknown or empty is
    /// text, as the original's default column is `VARCHAR(255)`.
    pub fn of(type_code: Option<&str>, sql_type: Option<&str>) -> Self {
        let name = sql_type
            .filter(|t| !t.trim().is_empty())
            .or(type_code)
            .unwrap_or("")
            .trim()
            .to_ascii_uppercase();
        let starts = |prefixes: &[&str]| prefixes.iter().any(|p| name.starts_with(p));
        if starts(&["TIMESTAMP", "DATETIME"]) {
            Self::Timestamp
        } else if starts(&["DATE"]) {
            Self::Date
        } else if starts(&["INTEGER", "INT", "BIGINT", "SMALLINT"]) {
            Self::Integer
        } else if starts(&["DECIMAL", "NUMERIC", "NUMBER", "FLOAT", "DOUBLE", "REAL"]) {
            // Oracle's NUMBER(10) (no scale) holds whole numbers.
            if name.starts_with("NUMBER(") && !name.contains(',') {
                Self::Integer
            } else {
                Self::Decimal
            }
        } else {
            Self::Text
        }
    }
}

/// A value of the file (trimmed, not empty) as its column's kind.
pub fn convert(text: &str, kind: ValueKind) -> Result<Value, String> {
    match kind {
        ValueKind::Text => Ok(Value::Text(text.to_string())),
        ValueKind::Integer => integer(text),
        ValueKind::Decimal => decimal(text).map(Value::Decimal),
        ValueKind::Date => date(text).map(Value::Date),
        ValueKind::Timestamp => timestamp(text).map(Value::Timestamp),
    }
}

/// A whole number; a decimal with nothing after its point (`12.00`) is one too.
fn integer(text: &str) -> Result<Value, String> {
    // Plain digits, the usual case, need no decimal reading.
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.len() < 19 && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| format!("'{text}' is not a whole number"));
    }
    let plain = decimal(text).map_err(|_| format!("'{text}' is not a whole number"))?;
    let (whole, fraction) = plain.split_once('.').unwrap_or((&plain, ""));
    if fraction.chars().any(|c| c != '0') {
        return Err(format!("'{text}' is not a whole number"));
    }
    whole
        .parse::<i64>()
        .map(Value::Int)
        .map_err(|_| format!("'{text}' is too large for a whole number"))
}

/// A decimal as plain text, its scale kept (`12.50`), an exponent written out
/// (`1.5e3` is `1500`).
fn decimal(text: &str) -> Result<String, String> {
    if let Some(plain) = plain_decimal(text) {
        return Ok(plain);
    }
    let bad = || format!("'{text}' is not a number");
    let DecimalParts {
        negative,
        digits,
        exponent,
    } = DecimalParts::read(text).ok_or_else(bad)?;
    if exponent.unsigned_abs() > 400 {
        return Err(bad());
    }
    // Where the point goes among the digits.
    let point = digits.len() as i64 + exponent;
    let (int_part, frac_part) = if point <= 0 {
        (
            "0".to_string(),
            format!("{}{digits}", "0".repeat(point.unsigned_abs() as usize)),
        )
    } else if point as usize >= digits.len() {
        (
            format!("{digits}{}", "0".repeat(point as usize - digits.len())),
            String::new(),
        )
    } else {
        (
            digits[..point as usize].to_string(),
            digits[point as usize..].to_string(),
        )
    };
    let int_part = int_part.trim_start_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let sign = if negative { "-" } else { "" };
    Ok(if frac_part.is_empty() {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{frac_part}")
    })
}

/// A decimal written plainly (`-0012.50`: a sign, digits, a point and digits), as
/// [`decimal`] writes it (`-12.50`); `None` for every other form.
fn plain_decimal(text: &str) -> Option<String> {
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || (unsigned.ends_with('.')) {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let mut out = String::with_capacity(sign.len() + whole.len() + fraction.len() + 1);
    out.push_str(sign);
    out.push_str(whole);
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    Some(out)
}

/// `YYYY-MM-DD`, the usual form, read without a format string.
fn iso_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        text.get(range)
            .filter(|part| part.bytes().all(|b| b.is_ascii_digit()))?
            .parse()
            .ok()
    };
    NaiveDate::from_ymd_opt(
        i32::try_from(number(0..4)?).ok()?,
        number(5..7)?,
        number(8..10)?,
    )
}

/// The date formats a file's dates come in: ISO first, then the slashed and named
/// forms, month first where day and month could be either (as pandas reads them).
const DATE_FORMATS: [&str; 7] = [
    "%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%m/%d/%Y", "%d-%b-%Y", "%d %b %Y", "%d.%m.%Y",
];

fn date(text: &str) -> Result<NaiveDate, String> {
    iso_date(text)
        .or_else(|| {
            DATE_FORMATS
                .iter()
                .find_map(|format| NaiveDate::parse_from_str(text, format).ok())
        })
        .or_else(|| {
            timestamp(text)
                .ok()
                .filter(|t| t.time() == NaiveTime::MIN)
                .map(|t| t.date())
        })
        .ok_or_else(|| format!("'{text}' is not a date (such as 2026-03-01)"))
}

fn timestamp(text: &str) -> Result<NaiveDateTime, String> {
    let normalized = text.replacen('T', " ", 1);
    let (day, time) = normalized
        .split_once(' ')
        .map_or((normalized.as_str(), ""), |(d, t)| (d, t.trim()));
    let day = DATE_FORMATS
        .iter()
        .find_map(|format| NaiveDate::parse_from_str(day, format).ok());
    let time = if time.is_empty() {
        Some(NaiveTime::MIN)
    } else {
        ["%H:%M:%S%.f", "%H:%M:%S", "%H:%M"]
            .iter()
            .find_map(|format| NaiveTime::parse_from_str(time, format).ok())
    };
    match (day, time) {
        (Some(day), Some(time)) => Ok(day.and_time(time)),
        _ => Err(format!(
            "'{text}' is not a timestamp (such as 2026-03-01 06:30:00)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_mapping_types() {
        for (code, sql, kind) in [
            (Some("String100"), None, ValueKind::Text),
            (Some("Integer"), None, ValueKind::Integer),
            (Some("Integer10"), None, ValueKind::Integer),
            (Some("Decimal18,2"), None, ValueKind::Decimal),
            (Some("Number"), None, ValueKind::Decimal),
            (Some("Date"), None, ValueKind::Date),
            (Some("Timestamp"), None, ValueKind::Timestamp),
            (Some("Text"), None, ValueKind::Text),
            (None, None, ValueKind::Text),
            (Some("Whatever"), None, ValueKind::Text),
            (Some("Code1"), Some("VARCHAR(20)"), ValueKind::Text),
            (Some("Amount"), Some("NUMBER(18,2)"), ValueKind::Decimal),
            (Some("Qty"), Some("NUMBER(10)"), ValueKind::Integer),
            (Some("When"), Some("TIMESTAMP(6)"), ValueKind::Timestamp),
            (Some("Day"), Some("DATE"), ValueKind::Date),
        ] {
            assert_eq!(ValueKind::of(code, sql), kind, "{code:?} {sql:?}");
        }
    }

    #[test]
    fn text_keeps_leading_zeros_and_numbers_keep_their_scale() {
        assert_eq!(
            convert("007", ValueKind::Text),
            Ok(Value::Text("007".into()))
        );
        assert_eq!(convert("1001", ValueKind::Integer), Ok(Value::Int(1001)));
        assert_eq!(convert("007", ValueKind::Integer), Ok(Value::Int(7)));
        assert_eq!(convert("12.00", ValueKind::Integer), Ok(Value::Int(12)));
        assert_eq!(convert("-3", ValueKind::Integer), Ok(Value::Int(-3)));
        assert_eq!(
            convert("12.50", ValueKind::Decimal),
            Ok(Value::Decimal("12.50".into()))
        );
        assert_eq!(
            convert("0012.50", ValueKind::Decimal),
            Ok(Value::Decimal("12.50".into()))
        );
        assert_eq!(
            convert(".5", ValueKind::Decimal),
            Ok(Value::Decimal("0.5".into()))
        );
        assert_eq!(
            convert("-1.5e3", ValueKind::Decimal),
            Ok(Value::Decimal("-1500".into()))
        );
        assert_eq!(
            convert("2.5E-3", ValueKind::Decimal),
            Ok(Value::Decimal("0.0025".into()))
        );
        assert_eq!(
            convert("1001", ValueKind::Decimal),
            Ok(Value::Decimal("1001".into()))
        );
    }

    #[test]
    fn dates_and_timestamps_in_the_usual_forms() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        for text in [
            "2026-03-01",
            "2026/03/01",
            "20260301",
            "03/01/2026",
            "01-Mar-2026",
            "1 Mar 2026",
            "01.03.2026",
            "2026-03-01 00:00:00",
        ] {
            assert_eq!(
                convert(text, ValueKind::Date),
                Ok(Value::Date(day)),
                "{text}"
            );
        }
        let at = day.and_hms_opt(6, 30, 0).unwrap();
        for text in [
            "2026-03-01 06:30:00",
            "2026-03-01T06:30",
            "03/01/2026 06:30:00.000",
        ] {
            assert_eq!(
                convert(text, ValueKind::Timestamp),
                Ok(Value::Timestamp(at)),
                "{text}"
            );
        }
        assert_eq!(
            convert("2026-03-01", ValueKind::Timestamp),
            Ok(Value::Timestamp(day.and_time(NaiveTime::MIN)))
        );
    }

    #[test]
    fn values_that_are_not_what_their_column_says() {
        for (text, kind, message) in [
            ("12.5", ValueKind::Integer, "'12.5' is not a whole number"),
            ("1,234", ValueKind::Integer, "'1,234' is not a whole number"),
            (
                "99999999999999999999",
                ValueKind::Integer,
                "'99999999999999999999' is too large for a whole number",
            ),
            ("abc", ValueKind::Decimal, "'abc' is not a number"),
            ("1e", ValueKind::Decimal, "'1e' is not a number"),
            (
                "2026-02-30",
                ValueKind::Date,
                "'2026-02-30' is not a date (such as 2026-03-01)",
            ),
            (
                "2026-03-01 06:30:00",
                ValueKind::Date,
                "'2026-03-01 06:30:00' is not a date (such as 2026-03-01)",
            ),
            (
                "yesterday",
                ValueKind::Timestamp,
                "'yesterday' is not a timestamp (such as 2026-03-01 06:30:00)",
            ),
        ] {
            assert_eq!(convert(text, kind), Err(message.to_string()), "{text}");
        }
    }

    proptest::proptest! {
        /// The plain readings (whole numbers, decimals, ISO dates) agree with the
        /// general ones.
        #[test]
        fn plain_readings_agree_with_the_general_ones(
            sign in "[-+]?", whole in "[0-9]{1,20}", fraction in "(\\.[0-9]{1,8})?",
            year in 1i32..9999, month in 1u32..13, day in 1u32..32,
        ) {
            let text = format!("{sign}{whole}{fraction}");
            let plain = plain_decimal(&text);
            // The general path, with the plain one out of the way.
            let spelled = format!("{text}e0");
            proptest::prop_assert_eq!(plain, decimal(&spelled).ok());
            let whole_number = format!("{sign}{whole}");
            proptest::prop_assert_eq!(
                integer(&whole_number).ok(),
                integer(&format!("{whole_number}.0")).ok()
            );
            let iso = format!("{year:04}-{month:02}-{day:02}");
            proptest::prop_assert_eq!(
                iso_date(&iso),
                NaiveDate::parse_from_str(&iso, "%Y-%m-%d").ok()
            );
        }
    }
}
