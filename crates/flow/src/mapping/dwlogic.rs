//! The constants of DWTOOL-generated mapping code (`DMS_JOBFLW.DWLOGIC`), read as the
//! Python literals they are, never executed.
//!
//! The generator writes one module per job: top-level assignments (`MAPREF = "…"`,
//! `ALL_COLUMNS = [...]`, …) rendered with Python `repr`, then per combination a
//! `source_sql_<i> = """…"""` literal and `job_config['scd_type'] = <n>` inside
//! `execute_job`. Those literals are what the original scheduler ran, so a plan built
//! from the metadata tables is checked against them.

use std::collections::BTreeMap;
use std::fmt;

/// A Python literal of the kinds the generator writes.
#[derive(Debug, Clone, PartialEq)]
pub enum PyLiteral {
    None,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<PyLiteral>),
    Set(Vec<PyLiteral>),
    Dict(Vec<(PyLiteral, PyLiteral)>),
}

impl PyLiteral {
    fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Bool(_) => "a boolean",
            Self::Int(_) => "an integer",
            Self::Str(_) => "a string",
            Self::List(_) => "a list",
            Self::Set(_) => "a set",
            Self::Dict(_) => "a dict",
        }
    }
}

/// Why a `DWLOGIC` text could not be read as mapping code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DwLogicError(pub String);

impl fmt::Display for DwLogicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DwLogicError {}

/// One `execute_mapper_job` call of the generated code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DwCombination {
    /// The `<i>` of `source_sql_<i>`, from 1.
    pub index: u32,
    /// `MAPCMBCD`, from the combination's comment (`None` for `DEFAULT`).
    pub code: Option<String>,
    pub scd_type: i64,
    pub sql: String,
    /// The embedded `SQLCONID` / `TRGCONID` (set on the first combination only).
    pub source_conn_id: Option<i64>,
    pub target_conn_id: Option<i64>,
}

/// The constants of one generated mapping job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DwLogic {
    pub mapref: String,
    pub jobid: Option<i64>,
    pub target_schema: String,
    pub target_table: String,
    pub target_type: String,
    pub bulk_limit: Option<i64>,
    pub checkpoint_enabled: bool,
    pub checkpoint_strategy: String,
    pub checkpoint_column: String,
    /// Target key columns, in `TRGKEYSEQ` order.
    pub pk_columns: Vec<String>,
    /// Target key column → source column.
    pub pk_source_mapping: BTreeMap<String, String>,
    /// Target columns in `EXCSEQ` order, with the appended `RWHKEY` (and, for `DIM`,
    /// `CURFLG`, `FROMDT`, `TODT`).
    pub all_columns: Vec<String>,
    /// Target column → source column.
    pub column_source_mapping: BTreeMap<String, String>,
    pub combinations: Vec<DwCombination>,
}

/// Whether `text` is DWTOOL-generated mapping code (rather than a flow, or other
/// Python or PL/SQL).
pub fn is_mapping_code(text: &str) -> bool {
    text.contains("execute_mapper_job(")
        && text.lines().any(|line| line.starts_with("ALL_COLUMNS ="))
        && text.lines().any(|line| line.starts_with("MAPREF ="))
}

impl DwLogic {
    /// Reads the constants of generated mapping code.
    pub fn parse(text: &str) -> Result<Self, DwLogicError> {
        if !is_mapping_code(text) {
            return Err(DwLogicError(
                "it is not DWTOOL-generated mapping code (no execute_mapper_job call with MAPREF and ALL_COLUMNS)"
                    .into(),
            ));
        }
        let constants = top_level_constants(text)?;
        let get = |name: &str| {
            constants
                .get(name)
                .ok_or_else(|| DwLogicError(format!("{name} is missing")))
        };
        let string = |name: &str| -> Result<String, DwLogicError> {
            match get(name)? {
                PyLiteral::Str(s) => Ok(s.clone()),
                other => Err(wrong_kind(name, "a string", other)),
            }
        };
        let optional_int = |name: &str| -> Result<Option<i64>, DwLogicError> {
            match constants.get(name) {
                None | Some(PyLiteral::None) => Ok(None),
                Some(PyLiteral::Int(i)) => Ok(Some(*i)),
                Some(other) => Err(wrong_kind(name, "an integer", other)),
            }
        };
        let strings = |name: &str| -> Result<Vec<String>, DwLogicError> {
            match get(name)? {
                PyLiteral::List(items) | PyLiteral::Set(items) => items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| wrong_kind(name, "a list of strings", item))
                    })
                    .collect(),
                other => Err(wrong_kind(name, "a list", other)),
            }
        };
        let mapping = |name: &str| -> Result<BTreeMap<String, String>, DwLogicError> {
            match get(name)? {
                PyLiteral::Dict(pairs) => pairs
                    .iter()
                    .map(|(k, v)| match (k.as_str(), v.as_str()) {
                        (Some(k), Some(v)) => Ok((k.to_string(), v.to_string())),
                        _ => Err(DwLogicError(format!(
                            "{name} maps {} to {}; expected strings",
                            k.kind(),
                            v.kind()
                        ))),
                    })
                    .collect(),
                other => Err(wrong_kind(name, "a dict", other)),
            }
        };
        let checkpoint_enabled = match constants.get("CHECKPOINT_ENABLED") {
            None => false,
            Some(PyLiteral::Bool(b)) => *b,
            Some(other) => return Err(wrong_kind("CHECKPOINT_ENABLED", "True or False", other)),
        };
        Ok(Self {
            mapref: string("MAPREF")?,
            jobid: optional_int("JOBID")?,
            target_schema: string("TARGET_SCHEMA")?,
            target_table: string("TARGET_TABLE")?,
            target_type: string("TARGET_TYPE")?,
            bulk_limit: optional_int("BULK_LIMIT")?,
            checkpoint_enabled,
            checkpoint_strategy: string("CHECKPOINT_STRATEGY").unwrap_or_default(),
            checkpoint_column: string("CHECKPOINT_COLUMN").unwrap_or_default(),
            pk_columns: strings("PK_COLUMNS")?,
            pk_source_mapping: mapping("PK_SOURCE_MAPPING")?,
            all_columns: strings("ALL_COLUMNS")?,
            column_source_mapping: mapping("COLUMN_SOURCE_MAPPING")?,
            combinations: combinations(text)?,
        })
    }
}

fn wrong_kind(name: &str, expected: &str, found: &PyLiteral) -> DwLogicError {
    DwLogicError(format!("{name} is {}; expected {expected}", found.kind()))
}

/// The module-level `NAME = <literal>` assignments (upper-case names, column 0). A value
/// that is not a literal (`CHECKPOINT_COLUMNS = [… for …]`) is skipped.
fn top_level_constants(text: &str) -> Result<BTreeMap<String, PyLiteral>, DwLogicError> {
    let mut constants = BTreeMap::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let Some((name, rest)) = line.split_once(" = ") else {
            continue;
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            || !name.starts_with(|c: char| c.is_ascii_uppercase())
        {
            continue;
        }
        let value_at = start + name.len() + 3;
        match parse_literal(&text[value_at..]) {
            Ok((value, after)) => {
                // Only a whole-line literal counts (`X = [c for c in …]` is code).
                let tail = after.split('\n').next().unwrap_or("");
                if tail.trim().is_empty() || tail.trim_start().starts_with('#') {
                    constants.insert(name.to_string(), value);
                }
            }
            Err(_) if is_code_expression(rest) => {}
            Err(err) => return Err(DwLogicError(format!("{name}: {err}"))),
        }
    }
    Ok(constants)
}

/// Whether an assignment's right side is code rather than a malformed literal.
fn is_code_expression(rest: &str) -> bool {
    let rest = rest.trim_start();
    !(rest.starts_with(['"', '\'', '[', '{', '-'])
        || rest.starts_with(|c: char| c.is_ascii_digit())
        || rest.starts_with("True")
        || rest.starts_with("False")
        || rest.starts_with("None"))
        || rest.contains(" for ")
}

/// The combinations, in the order the generated code runs them.
fn combinations(text: &str) -> Result<Vec<DwCombination>, DwLogicError> {
    let mut found: Vec<DwCombination> = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim();
        if let Some(header) = trimmed.strip_prefix("# ===== Combination ") {
            // `# ===== Combination 2: A00 (SCD Type 2) =====`
            let (index, rest) = header.split_once(':').ok_or_else(|| {
                DwLogicError(format!("unreadable combination comment '{trimmed}'"))
            })?;
            let index: u32 = index.trim().parse().map_err(|_| {
                DwLogicError(format!("unreadable combination number in '{trimmed}'"))
            })?;
            let code = rest
                .trim()
                .split(" (SCD Type")
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            found.push(DwCombination {
                index,
                code: (!code.is_empty() && code != "DEFAULT").then_some(code),
                scd_type: 1,
                sql: String::new(),
                source_conn_id: None,
                target_conn_id: None,
            });
            continue;
        }
        let Some(current) = found.last_mut() else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let value_of = |prefix: &str| -> Option<Result<(PyLiteral, &str), String>> {
            trimmed
                .strip_prefix(prefix)
                .map(|_| parse_literal(&text[start + indent + prefix.len()..]))
        };
        let sql_prefix = format!("source_sql_{} = ", current.index);
        if let Some(parsed) = value_of(&sql_prefix) {
            match parsed {
                Ok((PyLiteral::Str(sql), _)) => current.sql = sql,
                Ok((other, _)) => {
                    return Err(wrong_kind(
                        &format!("source_sql_{}", current.index),
                        "a string",
                        &other,
                    ));
                }
                Err(err) => {
                    return Err(DwLogicError(format!("source_sql_{}: {err}", current.index)));
                }
            }
        } else if let Some(parsed) = value_of("job_config['scd_type'] = ") {
            match parsed {
                Ok((PyLiteral::Int(n), _)) => current.scd_type = n,
                Ok((other, _)) => {
                    return Err(wrong_kind("job_config['scd_type']", "an integer", &other));
                }
                Err(err) => return Err(DwLogicError(format!("job_config['scd_type']: {err}"))),
            }
        } else if let Some(Ok((value, _))) = value_of("job_config['source_conn_id'] = ") {
            current.source_conn_id = as_id(&value);
        } else if let Some(Ok((value, _))) = value_of("job_config['target_conn_id'] = ") {
            current.target_conn_id = as_id(&value);
        }
    }
    if let Some(empty) = found.iter().find(|c| c.sql.trim().is_empty()) {
        return Err(DwLogicError(format!(
            "combination {} has no source_sql_{} literal",
            empty.index, empty.index
        )));
    }
    Ok(found)
}

fn as_id(value: &PyLiteral) -> Option<i64> {
    match value {
        PyLiteral::Int(i) => Some(*i),
        PyLiteral::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses one literal at the start of `input` (leading spaces allowed); returns it and
/// the rest of the input.
pub fn parse_literal(input: &str) -> Result<(PyLiteral, &str), String> {
    let input = skip_space(input);
    let first = input.chars().next().ok_or("a value is missing")?;
    match first {
        '"' | '\'' => {
            let (s, rest) = parse_string(input)?;
            Ok((PyLiteral::Str(s), rest))
        }
        '[' => {
            let (items, rest) = parse_items(&input[1..], ']')?;
            Ok((PyLiteral::List(items), rest))
        }
        '(' => {
            let (items, rest) = parse_items(&input[1..], ')')?;
            Ok((PyLiteral::List(items), rest))
        }
        '{' => parse_braces(&input[1..]),
        '-' | '0'..='9' => {
            let end = input[1..]
                .find(|c: char| !c.is_ascii_digit() && c != '_')
                .map_or(input.len(), |i| i + 1);
            let digits: String = input[..end].chars().filter(|c| *c != '_').collect();
            let value = digits
                .parse()
                .map_err(|_| format!("'{}' is not an integer", &input[..end]))?;
            Ok((PyLiteral::Int(value), &input[end..]))
        }
        _ => {
            for (word, value) in [
                ("None", PyLiteral::None),
                ("True", PyLiteral::Bool(true)),
                ("False", PyLiteral::Bool(false)),
            ] {
                if let Some(rest) = input.strip_prefix(word)
                    && !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_')
                {
                    return Ok((value, rest));
                }
            }
            Err(format!(
                "'{}' is not a literal",
                input.chars().take(30).collect::<String>()
            ))
        }
    }
}

/// Spaces, newlines and comments between tokens.
fn skip_space(mut input: &str) -> &str {
    loop {
        let trimmed = input.trim_start();
        if let Some(comment) = trimmed.strip_prefix('#') {
            input = comment.find('\n').map_or("", |i| &comment[i..]);
        } else {
            return trimmed;
        }
    }
}

fn parse_items(mut input: &str, close: char) -> Result<(Vec<PyLiteral>, &str), String> {
    let mut items = Vec::new();
    loop {
        input = skip_space(input);
        if let Some(rest) = input.strip_prefix(close) {
            return Ok((items, rest));
        }
        let (item, rest) = parse_literal(input)?;
        items.push(item);
        input = skip_space(rest);
        if let Some(rest) = input.strip_prefix(',') {
            input = rest;
        } else if !input.starts_with(close) {
            return Err(format!("expected ',' or '{close}'"));
        }
    }
}

/// A dict or a set, after its `{`.
fn parse_braces(mut input: &str) -> Result<(PyLiteral, &str), String> {
    let mut pairs = Vec::new();
    let mut members = Vec::new();
    loop {
        input = skip_space(input);
        if let Some(rest) = input.strip_prefix('}') {
            let value = if members.is_empty() {
                PyLiteral::Dict(pairs)
            } else {
                PyLiteral::Set(members)
            };
            return Ok((value, rest));
        }
        let (key, rest) = parse_literal(input)?;
        input = skip_space(rest);
        if let Some(rest) = input.strip_prefix(':') {
            if !members.is_empty() {
                return Err("a set holds a key: value pair".into());
            }
            let (value, rest) = parse_literal(rest)?;
            pairs.push((key, value));
            input = skip_space(rest);
        } else {
            if !pairs.is_empty() {
                return Err("a dict holds a value without a key".into());
            }
            members.push(key);
        }
        if let Some(rest) = input.strip_prefix(',') {
            input = rest;
        } else if !input.starts_with('}') {
            return Err("expected ',' or '}'".into());
        }
    }
}

/// A string literal (single, double or triple quoted), with Python's escapes.
fn parse_string(input: &str) -> Result<(String, &str), String> {
    let quote = input.chars().next().ok_or("a string is missing")?;
    let triple: String = std::iter::repeat_n(quote, 3).collect();
    let (delimiter, body) = match input.strip_prefix(triple.as_str()) {
        Some(body) => (triple.as_str(), body),
        None => (&input[..1], &input[1..]),
    };
    let mut out = String::new();
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if body[i..].starts_with(delimiter) {
            return Ok((out, &body[i + delimiter.len()..]));
        }
        match c {
            '\\' => {
                let (_, escaped) = chars.next().ok_or("a string ends in a backslash")?;
                match escaped {
                    '\n' => {}
                    '\\' | '\'' | '"' => out.push(escaped),
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '0' => out.push('\0'),
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'v' => out.push('\u{b}'),
                    'x' | 'u' | 'U' => {
                        let width = match escaped {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..width)
                            .filter_map(|_| chars.next().map(|(_, h)| h))
                            .collect();
                        let code = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| format!("bad escape \\{escaped}{hex}"))?;
                        out.push(code);
                    }
                    // Python keeps an unknown escape as written.
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
            }
            '\n' if delimiter.len() == 1 => return Err("a string ends at a line end".into()),
            other => out.push(other),
        }
    }
    Err("a string is not closed".into())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What the generator writes for the worked example's dimension (DWTOOL-MAPPING.md
    /// §7.2), abridged where the text is not read.
    pub(crate) const DIM_CUSTOMER: &str = r#"""
Auto-generated ETL Job for DIM_CUSTOMER
Target: DW.DIM_CUSTOMER
"""

from typing import Dict, List, Any, Optional

# Job configuration
MAPREF = "DIM_CUSTOMER"
JOBID = 1
TARGET_SCHEMA = "dw"
TARGET_TABLE = "DIM_CUSTOMER"
TARGET_TYPE = "DIM"
FULL_TABLE_NAME = "DW.DIM_CUSTOMER"
BULK_LIMIT = 500

# Checkpoint configuration
CHECKPOINT_ENABLED = True
CHECKPOINT_STRATEGY = "PYTHON"
CHECKPOINT_COLUMN = ""
CHECKPOINT_COLUMNS = [col.strip().upper() for col in CHECKPOINT_COLUMN.split(',')] if CHECKPOINT_COLUMN else []

# Primary key columns (target column names)
PK_COLUMNS = ['CUST_ID']
PK_SOURCE_MAPPING = {'CUST_ID': 'CUST_ID'}

# All target columns (in execution order)
ALL_COLUMNS = ['CUST_ID', 'CUST_NAME', 'CITY', 'SEGMENT', 'RWHKEY', 'CURFLG', 'FROMDT', 'TODT']

# Mapping from target columns to source columns
COLUMN_SOURCE_MAPPING = {'CUST_ID': 'CUST_ID', 'CUST_NAME': 'CUST_NAME', 'CITY': 'CITY', 'SEGMENT': 'SEGMENT', 'RWHKEY': 'RWHKEY', 'CURFLG': 'CURFLG', 'FROMDT': 'FROMDT', 'TODT': 'TODT'}

# Columns to exclude from hash calculation
HASH_EXCLUDE_COLUMNS = {'SKEY', 'RWHKEY', 'RECCRDT', 'RECUPDT', 'CURFLG', 'FROMDT', 'TODT', 'VALDFRM', 'VALDTO'}


def execute_job(metadata_connection, source_connection, target_connection, session_params: Dict[str, Any]) -> Dict[str, Any]:
    job_config = {
        'mapref': MAPREF,
    }

        # ===== Combination 1: A00 (SCD Type 2) =====
    if not should_stop:
        debug("Processing combination: A00 (SCD Type 2)")
        
        if 1 == 1:
            job_config['source_conn_id'] = 101
            job_config['target_conn_id'] = 102
        
        # Source SQL for this combination
        source_sql_1 = """SELECT c.customer_id AS cust_id, c.first_name || ' ' || c.last_name AS cust_name,
 c.city AS city, c.segment AS segment FROM crm.customers c WHERE c.note <> \"x\" AND c.path LIKE 'a\\b'"""
        
        # Update job config with SCD type for this combination
        job_config['scd_type'] = 2
        
        result_1 = execute_mapper_job(
            metadata_connection,
            source_connection,
            target_connection,
            job_config,
            source_sql_1,
            transformation_func,
            checkpoint_config,
            session_params
        )
"#;

    #[test]
    fn reads_the_generated_constants() {
        let logic = DwLogic::parse(DIM_CUSTOMER).unwrap();
        assert_eq!(logic.mapref, "DIM_CUSTOMER");
        assert_eq!(logic.jobid, Some(1));
        assert_eq!(logic.target_schema, "dw");
        assert_eq!(logic.target_type, "DIM");
        assert_eq!(logic.bulk_limit, Some(500));
        assert!(logic.checkpoint_enabled);
        assert_eq!(logic.checkpoint_strategy, "PYTHON");
        assert_eq!(logic.pk_columns, ["CUST_ID"]);
        assert_eq!(
            logic.all_columns,
            [
                "CUST_ID",
                "CUST_NAME",
                "CITY",
                "SEGMENT",
                "RWHKEY",
                "CURFLG",
                "FROMDT",
                "TODT"
            ]
        );
        assert_eq!(logic.column_source_mapping["CUST_NAME"], "CUST_NAME");
        assert_eq!(logic.combinations.len(), 1);
        let combination = &logic.combinations[0];
        assert_eq!(combination.code.as_deref(), Some("A00"));
        assert_eq!(combination.scd_type, 2);
        assert_eq!(combination.source_conn_id, Some(101));
        assert_eq!(combination.target_conn_id, Some(102));
        // The generator escapes backslashes and double quotes; they read back as written.
        assert_eq!(
            combination.sql,
            "SELECT c.customer_id AS cust_id, c.first_name || ' ' || c.last_name AS cust_name,\n \
             c.city AS city, c.segment AS segment FROM crm.customers c WHERE c.note <> \"x\" AND c.path LIKE 'a\\b'"
        );
    }

    #[test]
    fn other_code_is_not_mapping_code() {
        assert!(!is_mapping_code(
            "def execute_job(a, b, c, d):\n    return {}\n"
        ));
        assert!(!is_mapping_code("BEGIN dw.load_sales; END;"));
        assert!(!is_mapping_code("{\"steps\": []}"));
        let err = DwLogic::parse("print('hello')").unwrap_err();
        assert!(err.0.contains("not DWTOOL-generated mapping code"), "{err}");
    }

    #[test]
    fn literals() {
        let parse = |text: &str| parse_literal(text).unwrap().0;
        assert_eq!(parse("None"), PyLiteral::None);
        assert_eq!(parse("-42"), PyLiteral::Int(-42));
        assert_eq!(parse(r#"'it\'s'"#), PyLiteral::Str("it's".into()));
        assert_eq!(parse(r#""a\"b\\c\n""#), PyLiteral::Str("a\"b\\c\n".into()));
        assert_eq!(parse(r"'\x41\u00e9\q'"), PyLiteral::Str("Aé\\q".into()));
        assert_eq!(
            parse("['A', # the key\n 'B',]"),
            PyLiteral::List(vec![PyLiteral::Str("A".into()), PyLiteral::Str("B".into())])
        );
        assert_eq!(parse("{}"), PyLiteral::Dict(vec![]));
        assert_eq!(
            parse("{'A', 'B'}"),
            PyLiteral::Set(vec![PyLiteral::Str("A".into()), PyLiteral::Str("B".into())])
        );
        assert_eq!(
            parse("{'A': 1, 'B': None}"),
            PyLiteral::Dict(vec![
                (PyLiteral::Str("A".into()), PyLiteral::Int(1)),
                (PyLiteral::Str("B".into()), PyLiteral::None)
            ])
        );
        for bad in ["'open", "[1, 2", "{'a': 1, 'b'}", "foo", "'line\nend'"] {
            assert!(parse_literal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_constant_or_sql_is_named() {
        let without_columns = DIM_CUSTOMER.replace("PK_COLUMNS = ['CUST_ID']\n", "");
        let err = DwLogic::parse(&without_columns).unwrap_err();
        assert_eq!(err.0, "PK_COLUMNS is missing");
        let without_sql = DIM_CUSTOMER.replace("source_sql_1 = ", "other_sql_1 = ");
        let err = DwLogic::parse(&without_sql).unwrap_err();
        assert!(err.0.contains("combination 1 has no source_sql_1"), "{err}");
        let wrong_kind = DIM_CUSTOMER.replace("BULK_LIMIT = 500", "BULK_LIMIT = '500'");
        let err = DwLogic::parse(&wrong_kind).unwrap_err();
        assert_eq!(err.0, "BULK_LIMIT is a string; expected an integer");
    }
}
