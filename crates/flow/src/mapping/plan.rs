//! The plan of a mapping job: what to read, how its columns map, which keys, which SCD
//! rule, in what batches. It is built from the metadata rows as DWTOOL's generator
//! reads them (DWTOOL-MAPPING.md §2), then checked against the generated `DWLOGIC`,
//! which wins where the two disagree: it is what the original scheduler ran.

use std::collections::BTreeMap;
use std::fmt;

use dwsched_model::{DwtoolJobColumn, DwtoolMapping};

use super::dwlogic::{DwLogic, is_mapping_code};
use super::rwhkey::is_hashed;

/// The batch size when neither `BLKPRCROWS` nor `BULKPRC`/`NOOFROWS` gives one.
const DEFAULT_BATCH_ROWS: usize = 1000;

/// The words whose presence (anywhere, as a substring) makes the generator take a
/// column's `MAPLOGIC` as SQL text rather than as a `DMS_MAPRSQL` code.
const SQL_WORDS: [&str; 6] = ["SELECT", "WITH", "INSERT", "UPDATE", "DELETE", "MERGE"];

/// The target table's type (`TRGTBTYP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A dimension: `CURFLG`/`FROMDT`/`TODT`, SCD type 1 or 2.
    Dim,
    /// A fact or mart (`FCT`, `MRT`): upserted by key.
    Fact,
}

/// How the source is resumed (`CHKPNTSTRTGY`, with `AUTO` resolved as the generator does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkpoint {
    Disabled,
    /// `KEY`: `param1` holds the last key loaded; the source resumes after it.
    Key(Vec<String>),
    /// `PYTHON`: `param1` holds a count of source rows to skip.
    SkipRows,
    /// `NONE`: nothing resumes, but the run marks `PARAM1` `COMPLETED`.
    MarkOnly,
}

/// One target column and the source column that feeds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedColumn {
    pub target: String,
    /// `VALCLNM` (or `KEYCLNM` for a key), matched case-insensitively; the target
    /// name is the fallback, as in the original.
    pub source: String,
    /// Whether it takes part in `RWHKEY`.
    pub hashed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanCombination {
    /// `MAPCMBCD`.
    pub code: String,
    /// 1 or 2 (3 runs as 1).
    pub scd_type: i64,
    pub sql: String,
    /// The source connection's `CONID` (`DMS_MAPRSQL.SQLCONID`).
    pub source_conid: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingPlan {
    pub mapref: String,
    pub jobid: i64,
    pub target_conid: i64,
    pub target_schema: Option<String>,
    pub target_table: String,
    pub target_kind: TargetKind,
    /// The business columns in `ALL_COLUMNS` order (`EXCSEQ`): the hash order.
    pub columns: Vec<MappedColumn>,
    /// The key's target columns in `TRGKEYSEQ` order, with their source columns.
    pub key: Vec<MappedColumn>,
    pub combination: PlanCombination,
    pub batch_rows: usize,
    pub checkpoint: Checkpoint,
}

/// A plan, or why there is none, with what an operator should know either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanReport {
    pub mapref: String,
    pub plan: Option<MappingPlan>,
    pub warnings: Vec<String>,
    pub failures: Vec<String>,
}

impl PlanReport {
    /// `OK`, `WARN` or `FAIL`, as `dwtool check` prints it.
    pub fn verdict(&self) -> &'static str {
        if !self.failures.is_empty() {
            "FAIL"
        } else if !self.warnings.is_empty() {
            "WARN"
        } else {
            "OK"
        }
    }
}

impl fmt::Display for PlanReport {
    /// One line: the verdict, the mapref and the reasons.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4} {}", self.verdict(), self.mapref)?;
        let reasons: Vec<&String> = self.failures.iter().chain(&self.warnings).collect();
        if !reasons.is_empty() {
            write!(
                f,
                ": {}",
                reasons
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )?;
        }
        Ok(())
    }
}

/// Builds the plan of mapping job `mapref` from its metadata, checked against its
/// `DWLOGIC`.
pub fn build_plan(mapref: &str, rows: &DwtoolMapping) -> PlanReport {
    let mut report = PlanReport {
        mapref: mapref.to_string(),
        plan: None,
        warnings: Vec::new(),
        failures: Vec::new(),
    };
    let logic = match rows.dwlogic.as_deref() {
        Some(text) if is_mapping_code(text) => match DwLogic::parse(text) {
            Ok(logic) => Some(logic),
            Err(err) => {
                report.failures.push(format!(
                    "its DWLOGIC (JOBFLWID {}) cannot be read: {err}",
                    rows.jobflwid.unwrap_or_default()
                ));
                return report;
            }
        },
        Some(_) => {
            report
                .failures
                .push("its current DWLOGIC is not DWTOOL-generated mapping code".to_string());
            return report;
        }
        None => None,
    };
    let Some(job) = &rows.job else {
        report
            .failures
            .push("it has no current, active DMS_JOB row (CURFLG='Y', STFLG='A')".to_string());
        return report;
    };
    let failures = &mut report.failures;
    let warnings = &mut report.warnings;

    let target_type = logic
        .as_ref()
        .map(|l| l.target_type.clone())
        .or_else(|| job.trgtbtyp.clone())
        .unwrap_or_default()
        .trim()
        .to_ascii_uppercase();
    let target_kind = match target_type.as_str() {
        "DIM" => Some(TargetKind::Dim),
        "FCT" | "MRT" => Some(TargetKind::Fact),
        "NRM" => {
            failures.push(
                "target type NRM is not supported: such tables have no SKEY or RWHKEY (the original loads nothing into them)"
                    .to_string(),
            );
            None
        }
        other => {
            failures.push(format!("target type '{other}' is not one of DIM, FCT, MRT"));
            None
        }
    };
    let target_table = logic
        .as_ref()
        .map(|l| l.target_table.clone())
        .or_else(|| job.trgtbnm.clone())
        .filter(|t| !t.trim().is_empty());
    if target_table.is_none() {
        failures.push("DMS_JOB.TRGTBNM is empty".to_string());
    }
    let target_schema = logic
        .as_ref()
        .map(|l| l.target_schema.clone())
        .or_else(|| job.trgschm.clone())
        .filter(|s| !s.trim().is_empty());
    if job.trgconid.is_none() {
        failures.push("DMS_JOB.TRGCONID is not set (no target connection)".to_string());
    }

    // Columns, keys and combinations as the generator derives them.
    let derived = derive_columns(&rows.columns);
    if let Some(tie) = &derived.order_tie {
        warnings.push(format!(
            "EXCSEQ {tie} is not unique, so the hash column order depends on how the database sorts ties"
        ));
    }
    let mut columns = derived.columns;
    let mut key = derived.key;
    if let Some(logic) = &logic {
        let business: Vec<String> = logic
            .all_columns
            .iter()
            .filter(|c| !is_appended_column(c))
            .cloned()
            .collect();
        let logic_columns = pairs(&business, &logic.column_source_mapping);
        if logic_columns != pairs_of(&columns) {
            warnings.push(format!(
                "DWLOGIC maps columns [{}], the metadata [{}]; running DWLOGIC's (regenerate the job to align them)",
                describe(&logic_columns),
                describe(&pairs_of(&columns))
            ));
            columns = mapped(logic_columns);
        }
        let logic_key = pairs(&logic.pk_columns, &logic.pk_source_mapping);
        if logic_key != pairs_of(&key) {
            warnings.push(format!(
                "DWLOGIC's key is [{}], the metadata's [{}]; running DWLOGIC's",
                describe(&logic_key),
                describe(&pairs_of(&key))
            ));
            key = mapped(logic_key);
        }
    }
    if columns.is_empty() {
        failures.push("it maps no columns (no current DMS_JOBDTL rows)".to_string());
    }
    if key.is_empty() {
        failures.push("it has no key column (TRGKEYFLG='Y')".to_string());
    }

    let combinations = derive_combinations(&rows.columns);
    let mut combination = None;
    match combinations.as_slice() {
        [] => failures.push(
            "no column has a MAPCMBCD, so there is no source query to run".to_string(),
        ),
        [only] => combination = Some(only.clone()),
        several => failures.push(format!(
            "it has {} combinations ({}); each would write every mapped column, and the original overwrites the others' columns with NULL: split it into one mapping per source query",
            several.len(),
            several
                .iter()
                .map(|c| format!("{} SCD{}", c.code, c.scd_type))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
    let combination = combination.and_then(|c| {
        let mut sql = match source_sql(&c, rows) {
            Ok(sql) => sql,
            Err(message) => {
                failures.push(message);
                return None;
            }
        };
        let mut scd_type = c.scd_type;
        if let Some(generated) = logic.as_ref().and_then(|l| l.combinations.first()) {
            if generated.sql.trim() != sql.trim() {
                warnings.push(format!(
                    "DWLOGIC's source SQL differs from DMS_MAPRSQL's {}; running DWLOGIC's",
                    c.sql_code.as_deref().unwrap_or("(inline)")
                ));
                sql = generated.sql.clone();
            }
            if generated.scd_type != scd_type {
                warnings.push(format!(
                    "DWLOGIC's SCD type is {}, the metadata's {scd_type}; running DWLOGIC's",
                    generated.scd_type
                ));
                scd_type = generated.scd_type;
            }
        }
        if scd_type == 3 {
            warnings.push("SCD type 3 runs as type 1, as in the original".to_string());
            scd_type = 1;
        }
        if !matches!(scd_type, 1 | 2) {
            failures.push(format!("SCD type {scd_type} is not 1 or 2"));
            return None;
        }
        if scd_type == 2 && target_kind == Some(TargetKind::Fact) {
            warnings.push(format!(
                "SCD type 2 on a {target_type} table (it has no CURFLG): rows are upserted by key"
            ));
        }
        let Some(source_conid) = source_connection(&c, rows) else {
            failures.push(
                "no source connection: no DMS_MAPRSQL row of its columns has a SQLCONID"
                    .to_string(),
            );
            return None;
        };
        Some(PlanCombination {
            code: c.code,
            scd_type,
            sql,
            source_conid,
        })
    });

    let batch_rows = logic
        .as_ref()
        .and_then(|l| l.bulk_limit)
        .or(job.blkprcrows.filter(|n| *n > 0))
        .or(rows.default_bulk_rows.filter(|n| *n > 0))
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_BATCH_ROWS);
    let checkpoint = match &logic {
        Some(logic) => checkpoint_of(
            logic.checkpoint_enabled,
            &logic.checkpoint_strategy,
            &logic.checkpoint_column,
        ),
        None => {
            let column = job.chkpntclnm.clone().unwrap_or_default();
            let strategy = job
                .chkpntstrtgy
                .clone()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "AUTO".into());
            let strategy = match strategy.trim().to_ascii_uppercase().as_str() {
                "AUTO" if column.trim().is_empty() => "PYTHON".to_string(),
                "AUTO" => "KEY".to_string(),
                other => other.to_string(),
            };
            checkpoint_of(job.chkpntenbld.as_deref() == Some("Y"), &strategy, &column)
        }
    };

    if let (true, Some(target_kind), Some(target_table), Some(target_conid), Some(combination)) = (
        report.failures.is_empty(),
        target_kind,
        target_table,
        job.trgconid,
        combination,
    ) {
        report.plan = Some(MappingPlan {
            mapref: mapref.to_string(),
            jobid: job.jobid,
            target_conid,
            target_schema,
            target_table,
            target_kind,
            columns,
            key,
            combination,
            batch_rows,
            checkpoint,
        });
    }
    report
}

/// `RWHKEY` and, for dimensions, `CURFLG`, `FROMDT`, `TODT`: the generator appends them
/// to `ALL_COLUMNS`; they are written by the load, not mapped.
fn is_appended_column(column: &str) -> bool {
    ["RWHKEY", "CURFLG", "FROMDT", "TODT"]
        .iter()
        .any(|c| c.eq_ignore_ascii_case(column))
}

/// `(target, source)` of each of `targets`, the source from `mapping` (the target's own
/// name when it has none), as DWLOGIC maps them.
fn pairs(targets: &[String], mapping: &BTreeMap<String, String>) -> Vec<(String, String)> {
    targets
        .iter()
        .map(|t| {
            (
                t.clone(),
                mapping.get(t).cloned().unwrap_or_else(|| t.clone()),
            )
        })
        .collect()
}

fn pairs_of(columns: &[MappedColumn]) -> Vec<(String, String)> {
    columns
        .iter()
        .map(|c| (c.target.clone(), c.source.clone()))
        .collect()
}

fn mapped(pairs: Vec<(String, String)>) -> Vec<MappedColumn> {
    pairs
        .into_iter()
        .map(|(target, source)| MappedColumn {
            hashed: is_hashed(&target),
            target,
            source,
        })
        .collect()
}

fn describe(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(target, source)| {
            if target == source {
                target.clone()
            } else {
                format!("{target}<-{source}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn checkpoint_of(enabled: bool, strategy: &str, column: &str) -> Checkpoint {
    if !enabled {
        return Checkpoint::Disabled;
    }
    match strategy.trim().to_ascii_uppercase().as_str() {
        "KEY" => {
            let columns: Vec<String> = column
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect();
            if columns.is_empty() {
                Checkpoint::MarkOnly
            } else {
                Checkpoint::Key(columns)
            }
        }
        "PYTHON" => Checkpoint::SkipRows,
        _ => Checkpoint::MarkOnly,
    }
}

struct DerivedColumns {
    columns: Vec<MappedColumn>,
    key: Vec<MappedColumn>,
    /// An `EXCSEQ` value shared by several columns.
    order_tie: Option<String>,
}

/// `ALL_COLUMNS` (every current row, by `EXCSEQ`), `PK_COLUMNS` (key rows by
/// `TRGKEYSEQ`) and their source columns, as the generator derives them.
fn derive_columns(rows: &[DwtoolJobColumn]) -> DerivedColumns {
    let mut ordered: Vec<&DwtoolJobColumn> = rows.iter().collect();
    ordered.sort_by_key(|c| (c.excseq.is_none(), c.excseq, c.jobdtlid));
    let order_tie = ordered
        .windows(2)
        .find(|pair| pair[0].excseq == pair[1].excseq)
        .map(|pair| {
            pair[0]
                .excseq
                .map_or_else(|| "NULL".to_string(), |n| n.to_string())
        });
    let name = |value: &Option<String>, fallback: &str| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .unwrap_or(fallback)
            .to_string()
    };
    let columns = ordered
        .iter()
        .filter(|c| !is_appended_column(&c.trgclnm))
        .map(|c| MappedColumn {
            target: c.trgclnm.clone(),
            source: name(&c.valclnm, &c.trgclnm),
            hashed: is_hashed(&c.trgclnm),
        })
        .collect();
    let mut keys: Vec<&DwtoolJobColumn> = rows
        .iter()
        .filter(|c| c.trgkeyflg.as_deref().map(str::trim) == Some("Y"))
        .collect();
    keys.sort_by_key(|c| (c.trgkeyseq.is_none(), c.trgkeyseq, c.jobdtlid));
    let key = keys
        .iter()
        .map(|c| MappedColumn {
            target: c.trgclnm.clone(),
            source: name(&c.keyclnm, &c.trgclnm),
            hashed: is_hashed(&c.trgclnm),
        })
        .collect();
    DerivedColumns {
        columns,
        key,
        order_tie,
    }
}

#[derive(Debug, Clone)]
struct DerivedCombination {
    code: String,
    scd_type: i64,
    /// The `MAPLOGIC` and `MAPRSQLCD` of its first row.
    maplogic: Option<String>,
    sql_code: Option<String>,
}

/// The `(MAPCMBCD, SCDTYP)` groups in the generator's order: groups holding a key
/// column first, then by their highest `EXCSEQ`, then SCD type descending.
fn derive_combinations(rows: &[DwtoolJobColumn]) -> Vec<DerivedCombination> {
    struct Group<'a> {
        code: String,
        scd_type: i64,
        has_key: bool,
        max_excseq: Option<i64>,
        rows: Vec<&'a DwtoolJobColumn>,
    }
    let mut groups: Vec<Group> = Vec::new();
    for row in rows {
        let Some(code) = row.mapcmbcd.as_deref() else {
            continue;
        };
        let scd_type = row.scdtyp.unwrap_or(1);
        let group = match groups
            .iter_mut()
            .position(|g| g.code == code && g.scd_type == scd_type)
        {
            Some(at) => &mut groups[at],
            None => {
                groups.push(Group {
                    code: code.to_string(),
                    scd_type,
                    has_key: false,
                    max_excseq: None,
                    rows: Vec::new(),
                });
                groups.last_mut().expect("just pushed")
            }
        };
        group.has_key |= row.trgkeyseq.is_some();
        group.max_excseq = group.max_excseq.max(row.excseq);
        group.rows.push(row);
    }
    groups.sort_by_key(|g| (!g.has_key, g.max_excseq, std::cmp::Reverse(g.scd_type)));
    groups
        .into_iter()
        .map(|mut g| {
            g.rows.sort_by_key(|r| {
                (
                    r.trgkeyseq.is_none(),
                    r.excseq.is_none(),
                    r.excseq,
                    r.jobdtlid,
                )
            });
            let first = g.rows[0];
            DerivedCombination {
                code: g.code,
                scd_type: g.scd_type,
                maplogic: first.maplogic.clone(),
                sql_code: first.maprsqlcd.clone(),
            }
        })
        .collect()
}

/// The combination's SQL, chosen as the generator chooses it from its first row.
fn source_sql(c: &DerivedCombination, rows: &DwtoolMapping) -> Result<String, String> {
    let maplogic = c.maplogic.as_deref().unwrap_or("").trim();
    let upper = maplogic.to_ascii_uppercase();
    if SQL_WORDS.iter().any(|word| upper.contains(word)) {
        return Ok(maplogic.to_string());
    }
    let stored = c
        .sql_code
        .as_deref()
        .and_then(|code| rows.sqls.iter().find(|s| s.maprsqlcd == code))
        .and_then(|s| s.maprsql.as_deref())
        .map(str::trim)
        .filter(|s| !s.is_empty());
    match stored {
        Some(sql) => Ok(sql.to_string()),
        None if !maplogic.is_empty() => Ok(maplogic.to_string()),
        None => Err(format!(
            "combination {} has no source SQL (MAPLOGIC is empty and DMS_MAPRSQL has no current text for {})",
            c.code,
            c.sql_code.as_deref().unwrap_or("its code")
        )),
    }
}

/// The source connection: the `SQLCONID` of the combination's SQL code, else of any
/// column's code (the original takes an arbitrary one; the first in column order here).
fn source_connection(c: &DerivedCombination, rows: &DwtoolMapping) -> Option<i64> {
    let of_code = |code: &str| {
        rows.sqls
            .iter()
            .find(|s| s.maprsqlcd == code)
            .and_then(|s| s.sqlconid)
    };
    c.sql_code.as_deref().and_then(of_code).or_else(|| {
        rows.columns
            .iter()
            .filter_map(|col| col.maprsqlcd.as_deref())
            .find_map(of_code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dwsched_model::{DwtoolJob, DwtoolSql};

    /// The worked example's dimension (DWTOOL-MAPPING.md §7.2).
    pub(crate) fn dim_customer() -> DwtoolMapping {
        let column = |id: i64, name: &str, key: bool| DwtoolJobColumn {
            jobdtlid: id,
            trgclnm: name.into(),
            trgcldtyp: Some("String100".into()),
            trgkeyflg: Some(if key { "Y" } else { "N" }.into()),
            trgkeyseq: key.then_some(1),
            maplogic: Some("CUST_SRC".into()),
            maprsqlcd: Some("CUST_SRC".into()),
            keyclnm: Some("CUST_ID".into()),
            valclnm: Some(name.into()),
            mapcmbcd: Some("A00".into()),
            excseq: Some(id),
            scdtyp: Some(2),
        };
        DwtoolMapping {
            job: Some(DwtoolJob {
                jobid: 1,
                mapref: "DIM_CUSTOMER".into(),
                trgschm: Some("dw".into()),
                trgtbnm: Some("DIM_CUSTOMER".into()),
                trgtbtyp: Some("DIM".into()),
                trgconid: Some(102),
                blkprcrows: Some(500),
                chkpntstrtgy: Some("AUTO".into()),
                chkpntclnm: None,
                chkpntenbld: Some("Y".into()),
            }),
            columns: vec![
                column(1, "CUST_ID", true),
                column(2, "CUST_NAME", false),
                column(3, "CITY", false),
                column(4, "SEGMENT", false),
            ],
            sqls: vec![DwtoolSql {
                maprsqlcd: "CUST_SRC".into(),
                maprsql: Some("SELECT c.customer_id AS cust_id FROM crm.customers c".into()),
                sqlconid: Some(101),
            }],
            default_bulk_rows: Some(1000),
            dwlogic: None,
            jobflwid: None,
        }
    }

    #[test]
    fn the_metadata_makes_the_generators_plan() {
        let report = build_plan("DIM_CUSTOMER", &dim_customer());
        assert_eq!(report.verdict(), "OK", "{report}");
        let plan = report.plan.unwrap();
        assert_eq!(plan.target_kind, TargetKind::Dim);
        assert_eq!(plan.target_conid, 102);
        assert_eq!(plan.combination.source_conid, 101);
        assert_eq!(plan.combination.scd_type, 2);
        assert_eq!(plan.batch_rows, 500);
        assert_eq!(plan.checkpoint, Checkpoint::SkipRows);
        let names: Vec<&str> = plan.columns.iter().map(|c| c.target.as_str()).collect();
        assert_eq!(names, ["CUST_ID", "CUST_NAME", "CITY", "SEGMENT"]);
        assert_eq!(plan.key[0].source, "CUST_ID");
    }

    #[test]
    fn dwlogic_wins_and_the_drift_is_reported() {
        let mut rows = dim_customer();
        rows.dwlogic = Some(super::super::dwlogic::tests::DIM_CUSTOMER.to_string());
        // The metadata moved on (a column renamed) after the job was generated.
        rows.columns[3].trgclnm = "CUST_SEGMENT".into();
        let report = build_plan("DIM_CUSTOMER", &rows);
        assert_eq!(report.verdict(), "WARN", "{report}");
        let plan = report.plan.clone().unwrap();
        let names: Vec<&str> = plan.columns.iter().map(|c| c.target.as_str()).collect();
        assert_eq!(names, ["CUST_ID", "CUST_NAME", "CITY", "SEGMENT"]);
        assert!(
            plan.combination
                .sql
                .contains("crm.customers c WHERE c.note")
        );
        assert!(
            report.warnings.iter().any(|w| w.contains("CUST_SEGMENT")),
            "{report}"
        );
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("source SQL differs")),
            "{report}"
        );
    }

    #[test]
    fn unsupported_plans_fail_with_their_reason() {
        let mut nrm = dim_customer();
        nrm.job.as_mut().unwrap().trgtbtyp = Some("NRM".into());
        assert!(
            build_plan("X", &nrm)
                .to_string()
                .starts_with("FAIL X: target type NRM")
        );

        let mut several = dim_customer();
        several.columns[3].mapcmbcd = Some("B00".into());
        let report = build_plan("X", &several);
        assert!(report.failures[0].contains("2 combinations"), "{report}");

        let mut no_connection = dim_customer();
        no_connection.sqls[0].sqlconid = None;
        assert!(build_plan("X", &no_connection).failures[0].contains("no source connection"));

        let mut no_key = dim_customer();
        no_key.columns[0].trgkeyflg = Some("N".into());
        assert!(build_plan("X", &no_key).failures[0].contains("no key column"));

        let mut python = dim_customer();
        python.dwlogic = Some("def execute_job(a, b, c, d):\n    pass\n".into());
        assert!(build_plan("X", &python).failures[0].contains("not DWTOOL-generated"));
    }

    #[test]
    fn sql_is_chosen_as_the_generator_chooses_it() {
        let mut rows = dim_customer();
        // A code that contains a SQL word is taken as SQL text (bug 20, kept).
        rows.columns[0].maplogic = Some("CUST_WITH_ORDERS".into());
        let plan = build_plan("X", &rows).plan.unwrap();
        assert_eq!(plan.combination.sql, "CUST_WITH_ORDERS");
        // Inline SQL, with the source connection from another column's code.
        let mut inline = dim_customer();
        inline.columns[0].maplogic = Some("select 1 as cust_id".into());
        inline.columns[0].maprsqlcd = None;
        let plan = build_plan("X", &inline).plan.unwrap();
        assert_eq!(plan.combination.sql, "select 1 as cust_id");
        assert_eq!(plan.combination.source_conid, 101);
        // SCD 3 runs as 1.
        let mut three = dim_customer();
        for c in &mut three.columns {
            c.scdtyp = Some(3);
        }
        let report = build_plan("X", &three);
        assert_eq!(report.verdict(), "WARN");
        assert_eq!(report.plan.unwrap().combination.scd_type, 1);
    }
}
