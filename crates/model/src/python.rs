//! How DWTOOL's Python code renders values (`str()`, `repr()`), for the files and
//! texts dwsched writes where the original's users expect the same bytes.

/// Python's `repr(float)`: the shortest text that reads back the same number, fixed
/// when the decimal point falls between 10⁻⁴ and 10¹⁶, else `1.5e+16` / `1e-05`.
pub fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Rust's `{:e}` is the shortest round-trip form too: `-1.2345e-5`.
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    // Where the point goes, counted from the first digit.
    let point = exponent + 1;
    if (-3..=16).contains(&point) {
        let len = digits.len() as i32;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point < len {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        } else {
            format!("{digits}{}.0", "0".repeat((point - len) as usize))
        };
        format!("{sign}{body}")
    } else {
        let rest = &digits[1..];
        let dot = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{sign}{}{dot}e{exp_sign}{:02}",
            &digits[..1],
            exponent.unsigned_abs()
        )
    }
}

/// A decimal's text read as its sign, its digits and the power of ten they are
/// scaled by: `-12.50` is `-`, `1250`, -2; `1.5e3` is `+`, `15`, 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecimalParts {
    pub negative: bool,
    /// Every digit as written, leading zeros too.
    pub digits: String,
    pub exponent: i64,
}

impl DecimalParts {
    /// Reads `[+-]digits[.digits][e[+-]digits]`, spaces around allowed; `None` for
    /// anything else.
    pub fn read(text: &str) -> Option<Self> {
        let trimmed = text.trim();
        let (negative, unsigned) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
        };
        let (number, exponent) = match unsigned.split_once(['e', 'E']) {
            Some((number, exponent)) => (number, exponent.parse::<i64>().ok()?),
            None => (unsigned, 0),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty())
            || !whole
                .chars()
                .chain(fraction.chars())
                .all(|c| c.is_ascii_digit())
        {
            return None;
        }
        Some(Self {
            negative,
            digits: format!("{whole}{fraction}"),
            exponent: exponent.checked_sub(i64::try_from(fraction.len()).ok()?)?,
        })
    }
}

/// Python's `str(Decimal(text))` for a decimal as a database writes it: the scale
/// kept (`12500.50`), and scientific notation where Python's rules want it
/// (`0.00000010` is `1.0E-7`). Text that is not a decimal comes back as it is.
pub fn python_decimal(text: &str) -> String {
    let Some(DecimalParts {
        negative,
        digits,
        exponent,
    }) = DecimalParts::read(text)
    else {
        return text.to_string();
    };
    let coefficient = digits.trim_start_matches('0');
    let coefficient = if coefficient.is_empty() {
        "0"
    } else {
        coefficient
    };
    let adjusted = exponent + coefficient.len() as i64 - 1;
    let sign = if negative { "-" } else { "" };
    let body = if exponent <= 0 && adjusted >= -6 {
        if exponent == 0 {
            coefficient.to_string()
        } else {
            let point = coefficient.len() as i64 + exponent;
            if point > 0 {
                let point = point as usize;
                format!("{}.{}", &coefficient[..point], &coefficient[point..])
            } else {
                format!("0.{}{coefficient}", "0".repeat((-point) as usize))
            }
        }
    } else {
        let rest = &coefficient[1..];
        let dot = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if adjusted < 0 { '-' } else { '+' };
        format!("{}{dot}E{exp_sign}{}", &coefficient[..1], adjusted.abs())
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Every finite float's text reads back as the same float, as Python's does.
        #[test]
        fn floats_read_back(bits in proptest::prelude::any::<u64>()) {
            let x = f64::from_bits(bits);
            if x.is_finite() {
                let text = python_float(x);
                proptest::prop_assert_eq!(text.parse::<f64>().unwrap().to_bits(), x.to_bits(), "{}", text);
                proptest::prop_assert!(text.contains('e') || text.contains('.'), "{}", text);
            }
        }
    }

    /// Expected texts are CPython 3's `repr(float(x))`.
    #[test]
    fn floats_as_python_writes_them() {
        for (x, expected) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (-2.25, "-2.25"),
            (12500.5, "12500.5"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.2345e-5, "1.2345e-05"),
            (1e-300, "1e-300"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(python_float(x), expected, "{x:e}");
        }
    }

    /// Expected texts are CPython 3's `str(Decimal(text))`.
    #[test]
    fn decimals_as_python_writes_them() {
        for (text, expected) in [
            ("12500.50", "12500.50"),
            ("-12500.50", "-12500.50"),
            ("0", "0"),
            ("0.00", "0.00"),
            ("-0", "-0"),
            ("100", "100"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1E-7"),
            ("0.00000010", "1.0E-7"),
            ("0.00000000", "0E-8"),
            ("1E+3", "1E+3"),
            ("1.5e2", "1.5E+2"),
            (
                "123456789012345678901234567890.123",
                "123456789012345678901234567890.123",
            ),
            ("007.50", "7.50"),
            ("NaN", "NaN"),
        ] {
            assert_eq!(python_decimal(text), expected, "{text}");
        }
    }
}
