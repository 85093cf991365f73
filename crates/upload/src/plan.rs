//! An upload's plan: which file column feeds each target column, and what happens to a
//! record on its way to a row, in the original's order (SPEC §7.3): the mapping (file
//! columns matched case-insensitively), trim with empty as NULL, conversion to the
//! mapping's type, the `DRVLGC` formula (which sees the converted values), `DFLTVAL`,
//! then the audit columns. Also the `CREATE TABLE` of a target that does not exist, by
//! the original's rules.

use chrono::NaiveDateTime;
use dwsched_flow::Value;
use dwsched_model::{DatatypeParam, UploadColumn};

use crate::{Formula, ValueKind, convert};

/// The audit columns every upload target has: who and when created and updated a row.
pub const AUDIT_COLUMNS: [&str; 4] = ["CRTDBY", "CRTDDT", "UPDTBY", "UPDTDT"];

/// Audit columns an upsert keeps in the rows it updates.
pub const KEPT_ON_UPDATE: [&str; 2] = ["CRTDBY", "CRTDDT"];

struct Mapped {
    target: String,
    /// The file column it reads, by position in the header.
    source: Option<usize>,
    kind: ValueKind,
    formula: Option<(String, Formula)>,
    default: Option<String>,
}

/// How each record of a file becomes a row of the target.
pub struct UploadPlan {
    mapped: Vec<Mapped>,
    /// The target's columns in load order: the mapped ones, then the audit columns.
    columns: Vec<String>,
    header: Vec<String>,
}

/// The SQL type a mapping's type code gives on a backend (`postgres`, `mysql`,
/// `sqlite`): its `Datatype` row in `DMS_PARAMS` (one for the backend first, else any,
/// as the original reads them without `DBTYP`), else the original's pattern rules
/// (`String<n>`, `Integer`, `Decimal<p>,<s>`, `Date`, `Timestamp`, `Text`, `Number`),
/// else `VARCHAR(255)`.
pub fn sql_type(code: &str, params: &[DatatypeParam], backend: &str) -> String {
    let code = code.trim();
    let matching = |p: &&DatatypeParam| p.code.trim().eq_ignore_ascii_case(code);
    let own = params.iter().filter(matching).find(|p| {
        p.dbtyp
            .as_deref()
            .is_some_and(|d| d.to_ascii_lowercase().starts_with(&backend[..4]))
    });
    if let Some(param) = own.or_else(|| params.iter().find(matching))
        && !param.sql_type.trim().is_empty()
    {
        return dialect(param.sql_type.trim(), backend);
    }
    let upper = code.to_ascii_uppercase();
    let digits = |prefix: &str| upper.strip_prefix(prefix).map(str::trim).unwrap_or("");
    let timestamp = if backend == "mysql" {
        "DATETIME"
    } else {
        "TIMESTAMP"
    };
    if upper.starts_with("STRING") || upper.starts_with("VARCHAR") {
        let n = digits(if upper.starts_with("STRING") {
            "STRING"
        } else {
            "VARCHAR"
        });
        let n = n.trim_matches(|c| c == '(' || c == ')');
        if n.parse::<u32>().is_ok() {
            return format!("VARCHAR({n})");
        }
        return "VARCHAR(255)".into();
    }
    if upper.starts_with("INTEGER") || upper == "INT" || upper == "BIGINT" {
        return "BIGINT".into();
    }
    if upper.starts_with("DECIMAL") || upper.starts_with("NUMBER") || upper.starts_with("NUMERIC") {
        let rest = upper.trim_start_matches(|c: char| c.is_ascii_alphabetic());
        let rest = rest.trim_matches(|c| c == '(' || c == ')');
        let parts: Vec<&str> = rest.split(',').map(str::trim).collect();
        return match parts.as_slice() {
            [p, s] if p.parse::<u32>().is_ok() && s.parse::<u32>().is_ok() => {
                format!("DECIMAL({p},{s})")
            }
            [p] if p.parse::<u32>().is_ok() => format!("DECIMAL({p},0)"),
            _ => "DECIMAL(38,10)".into(),
        };
    }
    match upper.as_str() {
        "DATE" => "DATE".into(),
        "TIMESTAMP" | "DATETIME" => timestamp.into(),
        "TEXT" | "CLOB" => "TEXT".into(),
        _ => "VARCHAR(255)".into(),
    }
}

/// An Oracle or PostgreSQL type of a `Datatype` row in the target's dialect.
fn dialect(sql_type: &str, backend: &str) -> String {
    let upper = sql_type.to_ascii_uppercase();
    let replaced = upper
        .replace("VARCHAR2", "VARCHAR")
        .replace("NUMBER", "DECIMAL")
        .replace("CLOB", "TEXT");
    if backend == "mysql" && replaced.starts_with("TIMESTAMP") {
        return "DATETIME".into();
    }
    if replaced == "DECIMAL" {
        return "DECIMAL(38,10)".into();
    }
    replaced
}

impl UploadPlan {
    /// The plan of `columns` (the current mappings) for a file whose header is `header`.
    /// `sql_types` gives each mapping's SQL type (for conversion). A formula that does
    /// not parse is refused here, naming its column.
    pub fn new(
        columns: &[UploadColumn],
        header: &[String],
        sql_types: &dyn Fn(&UploadColumn) -> String,
    ) -> Result<Self, String> {
        let mut mapped = Vec::new();
        for column in columns.iter().filter(|c| !is_audit(c)) {
            let source = header
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(column.source.trim()));
            let formula = match &column.formula {
                Some(text) => Some((
                    text.clone(),
                    Formula::parse(text).map_err(|e| {
                        format!("the formula (DRVLGC) of column {}: {e}", column.target)
                    })?,
                )),
                None => None,
            };
            mapped.push(Mapped {
                target: column.target.clone(),
                source,
                kind: ValueKind::of(Some(&column.type_code), Some(&sql_types(column))),
                formula,
                default: column.default.clone(),
            });
        }
        if mapped.is_empty() {
            return Err("the upload maps no column (DMS_FLUPLDDTL has no current row)".into());
        }
        let mut names: Vec<String> = mapped.iter().map(|m| m.target.clone()).collect();
        names.extend(AUDIT_COLUMNS.iter().map(|c| c.to_string()));
        Ok(Self {
            mapped,
            columns: names,
            header: header.to_vec(),
        })
    }

    /// The target's columns, in the order of [`UploadPlan::row`]'s values.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// What each of [`UploadPlan::columns`] holds, so that a row written as text can
    /// be read back as the values it was.
    pub fn kinds(&self) -> Vec<ValueKind> {
        let audit = [
            ValueKind::Text,
            ValueKind::Timestamp,
            ValueKind::Text,
            ValueKind::Timestamp,
        ];
        self.mapped.iter().map(|m| m.kind).chain(audit).collect()
    }

    /// The mapped columns no file column feeds (no formula or default either): they
    /// load as NULL, which a run reports once.
    pub fn unfed(&self) -> Vec<&str> {
        self.mapped
            .iter()
            .filter(|m| m.source.is_none() && m.formula.is_none() && m.default.is_none())
            .map(|m| m.target.as_str())
            .collect()
    }

    /// A record's values for the mapped columns, or why it cannot be loaded; the row
    /// loaded is these followed by [`UploadPlan::audit`]'s.
    pub fn row(&self, fields: &[String]) -> Result<Vec<Value>, String> {
        let mut values: Vec<Value> = Vec::with_capacity(self.mapped.len());
        for m in &self.mapped {
            let raw = m
                .source
                .and_then(|i| fields.get(i))
                .map(|f| f.trim())
                .filter(|f| !f.is_empty());
            let value = match raw {
                None => Value::Null,
                Some(text) => convert(text, m.kind)
                    .map_err(|e| format!("column {} ('{text}'): {e}", m.target))?,
            };
            values.push(value);
        }
        // Formulas see the converted values, by source and by target name.
        if self.mapped.iter().any(|m| m.formula.is_some()) {
            let texts: Vec<Option<String>> = values.iter().map(value_text).collect();
            let lookup = |name: &str| -> Option<String> {
                self.mapped
                    .iter()
                    .position(|m| m.target.eq_ignore_ascii_case(name))
                    .and_then(|i| texts[i].clone())
                    .or_else(|| {
                        self.header
                            .iter()
                            .position(|h| h.trim().eq_ignore_ascii_case(name))
                            .and_then(|i| {
                                self.mapped
                                    .iter()
                                    .position(|m| m.source == Some(i))
                                    .and_then(|j| texts[j].clone())
                                    .or_else(|| {
                                        fields
                                            .get(i)
                                            .map(|f| f.trim().to_string())
                                            .filter(|f| !f.is_empty())
                                    })
                            })
                    })
            };
            for (i, m) in self.mapped.iter().enumerate() {
                let Some((text, formula)) = &m.formula else {
                    continue;
                };
                let result = formula
                    .evaluate(&lookup)
                    .map_err(|e| format!("the formula of column {} ({text}): {e}", m.target))?;
                values[i] = match result.to_text() {
                    None => Value::Null,
                    Some(out) if out.trim().is_empty() => Value::Null,
                    Some(out) => convert(out.trim(), m.kind).map_err(|e| {
                        format!(
                            "the formula of column {} ({text}) gave '{out}': {e}",
                            m.target
                        )
                    })?,
                };
            }
        }
        for (i, m) in self.mapped.iter().enumerate() {
            if values[i] == Value::Null
                && let Some(default) = &m.default
            {
                values[i] = convert(default.trim(), m.kind).map_err(|e| {
                    format!("the default of column {} ('{default}'): {e}", m.target)
                })?;
            }
        }
        Ok(values)
    }

    /// The audit columns' values, the same for every row of a run: `CRTDBY`, `CRTDDT`,
    /// `UPDTBY`, `UPDTDT`.
    pub fn audit(&self, user: &str, now: NaiveDateTime) -> Vec<Value> {
        vec![
            Value::Text(user.to_string()),
            Value::Timestamp(now),
            Value::Text(user.to_string()),
            Value::Timestamp(now),
        ]
    }

    /// A record's values by file column, as JSON (`DMS_FLUPLD_ERR.RWDTJSN`).
    pub fn record_json(&self, fields: &[String]) -> String {
        let map: serde_json::Map<String, serde_json::Value> = self
            .header
            .iter()
            .zip(
                fields
                    .iter()
                    .map(|f| serde_json::Value::from(f.as_str()))
                    .chain(std::iter::repeat(serde_json::Value::Null)),
            )
            .map(|(h, v)| (h.clone(), v))
            .collect();
        serde_json::Value::Object(map).to_string()
    }
}

/// An audit mapping: flagged `ISAUDIT`, or named as one of the audit columns.
fn is_audit(column: &UploadColumn) -> bool {
    column.audit
        || AUDIT_COLUMNS
            .iter()
            .any(|a| a.eq_ignore_ascii_case(column.target.trim()))
}

/// The text a formula sees of a converted value.
fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Text(t) | Value::Decimal(t) => Some(t.clone()),
        Value::Int(n) => Some(n.to_string()),
        Value::Date(d) => Some(d.to_string()),
        Value::Timestamp(t) => Some(t.format("%Y-%m-%d %H:%M:%S").to_string()),
        other => Some(other.to_string()),
    }
}

/// The `CREATE TABLE` of an upload's target (`table` already qualified and checked):
/// the mapped columns in order, typed by `sql_types`, `NOT NULL` where required, then
/// the audit columns, and the key columns (by `TRGKYSEQ`) as the primary key.
pub fn create_table_sql(
    table: &str,
    columns: &[UploadColumn],
    sql_types: &dyn Fn(&UploadColumn) -> String,
    backend: &str,
) -> String {
    let timestamp = if backend == "mysql" {
        "DATETIME"
    } else {
        "TIMESTAMP"
    };
    let mut parts: Vec<String> = columns
        .iter()
        .filter(|c| !is_audit(c))
        .map(|c| {
            let not_null = if c.required || c.key { " NOT NULL" } else { "" };
            format!("{} {}{not_null}", c.target.trim(), sql_types(c))
        })
        .collect();
    parts.extend([
        "CRTDBY VARCHAR(100)".to_string(),
        format!("CRTDDT {timestamp} NOT NULL"),
        "UPDTBY VARCHAR(100)".to_string(),
        format!("UPDTDT {timestamp} NOT NULL"),
    ]);
    let mut keys: Vec<&UploadColumn> = columns.iter().filter(|c| c.key && !is_audit(c)).collect();
    keys.sort_by_key(|c| c.key_seq.unwrap_or(i64::MAX));
    if !keys.is_empty() {
        let names: Vec<&str> = keys.iter().map(|c| c.target.trim()).collect();
        parts.push(format!("PRIMARY KEY ({})", names.join(", ")));
    }
    format!("CREATE TABLE {table} ({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(source: &str, target: &str, code: &str) -> UploadColumn {
        UploadColumn {
            source: source.into(),
            target: target.into(),
            type_code: code.into(),
            ..UploadColumn::default()
        }
    }

    fn plain(c: &UploadColumn) -> String {
        sql_type(&c.type_code, &[], "postgres")
    }

    fn now() -> NaiveDateTime {
        "2026-03-01T06:30:00".parse().unwrap()
    }

    #[test]
    fn records_become_rows_in_the_originals_order() {
        let columns = vec![
            column("cust_id", "CUST_ID", "String10"),
            column("amount", "AMOUNT", "Decimal18,2"),
            UploadColumn {
                formula: Some("UPPER(COUNTRY) + '-' + CUST_ID".into()),
                ..column("country", "COUNTRY", "String20")
            },
            UploadColumn {
                default: Some("2026-01-01".into()),
                ..column("signup", "SIGNUP_DT", "Date")
            },
            UploadColumn {
                audit: true,
                ..column("", "CRTDBY", "String100")
            },
        ];
        let header: Vec<String> = ["Cust_ID", "amount", "country", "signup"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let plan = UploadPlan::new(&columns, &header, &plain).unwrap();
        assert_eq!(
            plan.columns(),
            [
                "CUST_ID",
                "AMOUNT",
                "COUNTRY",
                "SIGNUP_DT",
                "CRTDBY",
                "CRTDDT",
                "UPDTBY",
                "UPDTDT"
            ]
        );
        let fields = |v: [&str; 4]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut row = plan.row(&fields([" 001001 ", "12.50", "in", ""])).unwrap();
        row.extend(plan.audit("ann", now()));
        assert_eq!(row[0], Value::Text("001001".into()), "leading zeros kept");
        assert_eq!(row[1], Value::Decimal("12.50".into()));
        assert_eq!(row[2], Value::Text("IN-001001".into()));
        assert_eq!(
            row[3],
            Value::Date("2026-01-01".parse().unwrap()),
            "the default"
        );
        assert_eq!(row[4], Value::Text("ann".into()));
        assert_eq!(row[5], Value::Timestamp(now()));
        let bad = plan.row(&fields(["1", "twelve", "in", ""])).unwrap_err();
        assert!(bad.starts_with("column AMOUNT ('twelve')"), "{bad}");
    }

    #[test]
    fn a_formula_error_rejects_the_row_naming_the_formula() {
        let columns = vec![
            column("a", "A", "Integer"),
            UploadColumn {
                formula: Some("ABS('abc')".into()),
                default: Some("7".into()),
                ..column("b", "B", "Integer")
            },
        ];
        let header = vec!["a".to_string(), "b".to_string()];
        let plan = UploadPlan::new(&columns, &header, &plain).unwrap();
        let err = plan.row(&["4".to_string(), "1".to_string()]).unwrap_err();
        assert!(
            err.starts_with("the formula of column B (ABS('abc'))"),
            "{err}"
        );
        let refused = UploadPlan::new(
            &[UploadColumn {
                formula: Some("UPPER(".into()),
                ..column("a", "A", "String10")
            }],
            &header,
            &plain,
        )
        .err()
        .unwrap();
        assert!(
            refused.contains("DRVLGC") && refused.contains("column A"),
            "{refused}"
        );
    }

    #[test]
    fn types_and_tables_by_the_originals_rules() {
        let params = vec![
            DatatypeParam {
                code: "Integer".into(),
                sql_type: "INTEGER".into(),
                dbtyp: Some("POSTGRESQL".into()),
            },
            DatatypeParam {
                code: "String100".into(),
                sql_type: "VARCHAR2(100)".into(),
                dbtyp: Some("ORACLE".into()),
            },
        ];
        assert_eq!(sql_type("integer", &params, "postgres"), "INTEGER");
        assert_eq!(sql_type("String100", &params, "postgres"), "VARCHAR(100)");
        assert_eq!(sql_type("String2", &params, "mysql"), "VARCHAR(2)");
        assert_eq!(sql_type("Decimal18,2", &[], "mysql"), "DECIMAL(18,2)");
        assert_eq!(sql_type("Timestamp", &[], "mysql"), "DATETIME");
        assert_eq!(sql_type("Whatever", &[], "postgres"), "VARCHAR(255)");
        let columns = vec![
            UploadColumn {
                key: true,
                key_seq: Some(1),
                ..column("id", "CUST_ID", "Integer")
            },
            UploadColumn {
                required: true,
                ..column("n", "CUST_NAME", "String100")
            },
        ];
        let types = |c: &UploadColumn| sql_type(&c.type_code, &params, "postgres");
        assert_eq!(
            create_table_sql("stage.customer_stg", &columns, &types, "postgres"),
            "CREATE TABLE stage.customer_stg (CUST_ID INTEGER NOT NULL, CUST_NAME VARCHAR(100) NOT NULL, \
             CRTDBY VARCHAR(100), CRTDDT TIMESTAMP NOT NULL, UPDTBY VARCHAR(100), UPDTDT TIMESTAMP NOT NULL, \
             PRIMARY KEY (CUST_ID))"
        );
    }
}
