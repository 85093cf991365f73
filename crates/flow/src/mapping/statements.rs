//! The statements of a mapping load for the target's dialect: the staging table, the
//! duplicate-key sweep, and the set-based SCD writes, with the target's own column
//! names (matched case-insensitively to the plan's).

use std::ops::RangeInclusive;

use chrono::{NaiveDate, NaiveDateTime};
use dwsched_model::is_valid_identifier;

use super::plan::{MappingPlan, TargetKind};
use crate::value::Value;

const STAGE: &str = "dwsched_stage";
/// MySQL's per-key last sequence number (a temporary table cannot be joined to itself).
const LAST: &str = "dwsched_last";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    MySql,
}

impl Dialect {
    fn quote(self, name: &str) -> String {
        match self {
            Self::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
            Self::MySql => format!("`{}`", name.replace('`', "``")),
        }
    }
}

/// One statement of the apply phase: what it does (for messages), its text, its binds,
/// and whether its rows count as written (`TRGROWS`).
pub(crate) type Apply = (&'static str, String, Vec<Value>, bool);

pub(crate) struct Statements {
    dialect: Dialect,
    scd2: bool,
    table: String,
    /// The target's names of the plan's columns, quoted, in plan order.
    columns: Vec<String>,
    /// The target's names of the key columns, quoted.
    key: Vec<String>,
    skey: Option<String>,
    rwhkey: String,
    /// `CURFLG`, `FROMDT`, `TODT` of a dimension.
    versions: Option<[String; 3]>,
    reccrdt: Option<String>,
    recupdt: Option<String>,
    /// PostgreSQL: the `SKEY` sequence, `<schema>.<table>_seq`.
    sequence: Option<String>,
}

/// The table as DWTOOL's mapper names it: `schema.table` lower-cased on PostgreSQL,
/// the table alone on MySQL (the connection's database).
fn table_reference(
    plan: &MappingPlan,
    dialect: Dialect,
) -> Result<(String, Option<String>), String> {
    let table = plan.target_table.trim();
    if !is_valid_identifier(table) {
        return Err(format!(
            "mapping {}: target table '{table}' is not a plain table name",
            plan.mapref
        ));
    }
    let schema = plan
        .target_schema
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(schema) = schema
        && !is_valid_identifier(schema)
    {
        return Err(format!(
            "mapping {}: target schema '{schema}' is not a plain schema name",
            plan.mapref
        ));
    }
    Ok(match dialect {
        Dialect::Postgres => {
            let qualified = |name: &str| match schema {
                Some(schema) => format!("{}.{}", schema.to_lowercase(), name.to_lowercase()),
                None => name.to_lowercase(),
            };
            (qualified(table), Some(qualified(&format!("{table}_seq"))))
        }
        Dialect::MySql => (dialect.quote(table), None),
    })
}

impl Statements {
    /// A statement that reads no row and shows the target table's columns.
    pub(crate) fn probe(plan: &MappingPlan, dialect: Dialect) -> Result<String, super::Failure> {
        let (table, _) = table_reference(plan, dialect).map_err(super::Failure::plan)?;
        Ok(format!("SELECT * FROM {table} WHERE 1 = 0"))
    }

    pub(crate) fn new(
        plan: &MappingPlan,
        dialect: Dialect,
        target_columns: &[String],
    ) -> Result<Self, super::Failure> {
        let fail = |message: String| super::Failure::plan(message);
        let (table, sequence) = table_reference(plan, dialect).map_err(fail)?;
        let find = |name: &str| {
            target_columns
                .iter()
                .find(|c| c.eq_ignore_ascii_case(name))
                .map(|c| dialect.quote(c))
        };
        let require = |name: &str, why: &str| {
            find(name).ok_or_else(|| {
                fail(format!(
                    "target table {table} of mapping {} has no column {name}{why} (it has {})",
                    plan.mapref,
                    target_columns.join(", ")
                ))
            })
        };
        let columns = plan
            .columns
            .iter()
            .map(|c| require(&c.target, ""))
            .collect::<Result<Vec<_>, _>>()?;
        let key = plan
            .key
            .iter()
            .map(|k| {
                if plan
                    .columns
                    .iter()
                    .any(|c| c.target.eq_ignore_ascii_case(&k.target))
                {
                    require(&k.target, "")
                } else {
                    Err(fail(format!(
                        "mapping {}: key column {} is not among its mapped columns",
                        plan.mapref, k.target
                    )))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let versions = match plan.target_kind {
            TargetKind::Dim => Some([
                require("CURFLG", ", which a dimension needs")?,
                require("FROMDT", ", which a dimension needs")?,
                require("TODT", ", which a dimension needs")?,
            ]),
            TargetKind::Fact => None,
        };
        let skey = find("SKEY");
        Ok(Self {
            dialect,
            scd2: plan.combination.scd_type == 2,
            columns,
            key,
            rwhkey: require("RWHKEY", " for the row hash")?,
            versions,
            reccrdt: find("RECCRDT"),
            recupdt: find("RECUPDT"),
            sequence: sequence.filter(|_| skey.is_some()),
            skey,
            table,
        })
    }

    fn column_list(&self, prefix: &str) -> String {
        self.columns
            .iter()
            .map(|c| format!("{prefix}{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn key_match(&self, left: &str, right: &str) -> String {
        self.key
            .iter()
            .map(|k| format!("{left}.{k} = {right}.{k}"))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    fn key_list(&self) -> String {
        self.key.join(", ")
    }

    /// Creates the staging table: the target's types for the mapped columns, plus each
    /// row's place in the source and its hash.
    pub(crate) fn prepare_stage(&self) -> Vec<String> {
        let columns = self.column_list("");
        match self.dialect {
            Dialect::Postgres => vec![format!(
                "CREATE TEMP TABLE {STAGE} ON COMMIT DROP AS SELECT {columns}, \
                 CAST(0 AS BIGINT) AS dwsched_seq, CAST('' AS VARCHAR(32)) AS dwsched_hash \
                 FROM {} WITH NO DATA",
                self.table
            )],
            // Temporary tables are made and dropped without ending the transaction; their
            // indexes are declared with them (CREATE INDEX would commit).
            Dialect::MySql => vec![
                format!("DROP TEMPORARY TABLE IF EXISTS {STAGE}, {LAST}"),
                format!(
                    "CREATE TEMPORARY TABLE {STAGE} (INDEX (dwsched_seq), INDEX ({})) AS SELECT {columns}, \
                     CAST(0 AS SIGNED) AS dwsched_seq, CAST('' AS CHAR(32)) AS dwsched_hash \
                     FROM {} WHERE 1 = 0",
                    self.key_list(),
                    self.table
                ),
            ],
        }
    }

    pub(crate) fn copy_into_stage(&self) -> String {
        format!(
            "COPY {STAGE} ({}, dwsched_seq, dwsched_hash) FROM STDIN",
            self.column_list("")
        )
    }

    pub(crate) fn insert_into_stage(&self, rows: usize) -> String {
        let row = format!("({})", vec!["?"; self.columns.len() + 2].join(", "));
        format!(
            "INSERT INTO {STAGE} ({}, dwsched_seq, dwsched_hash) VALUES {}",
            self.column_list(""),
            vec![row; rows].join(", ")
        )
    }

    /// Statistics for the planner (a temporary table has none until analysed).
    pub(crate) fn analyze_stage(&self) -> Vec<String> {
        match self.dialect {
            Dialect::Postgres => vec![format!("ANALYZE {STAGE}")],
            Dialect::MySql => Vec::new(),
        }
    }

    /// Removes every staged row whose key comes again later in the source; the
    /// statements marked `true` count the rows removed. The keys seen more than once
    /// are found by one aggregate, so a source without repeats costs one pass.
    pub(crate) fn drop_duplicates(&self) -> Vec<(String, bool)> {
        let keys = self.key_list();
        let repeated = format!(
            "SELECT {keys}, MAX(dwsched_seq) AS dwsched_seq FROM {STAGE} GROUP BY {keys} \
             HAVING COUNT(*) > 1"
        );
        match self.dialect {
            Dialect::Postgres => vec![(
                format!(
                    "DELETE FROM {STAGE} s USING ({repeated}) l WHERE {} AND s.dwsched_seq < l.dwsched_seq",
                    self.key_match("s", "l")
                ),
                true,
            )],
            Dialect::MySql => vec![
                (
                    format!("CREATE TEMPORARY TABLE {LAST} (INDEX ({keys})) AS {repeated}"),
                    false,
                ),
                (
                    format!(
                        "DELETE s FROM {STAGE} s JOIN {LAST} l ON {} WHERE s.dwsched_seq < l.dwsched_seq",
                        self.key_match("s", "l")
                    ),
                    true,
                ),
            ],
        }
    }

    /// Empties the target in the load's transaction (`TRUNCATE` would commit on MySQL).
    pub(crate) fn truncate(&self) -> String {
        match self.dialect {
            Dialect::Postgres => format!("TRUNCATE {}", self.table),
            Dialect::MySql => format!("DELETE FROM {}", self.table),
        }
    }

    /// PostgreSQL: creates the `SKEY` sequence when missing, starting above the keys
    /// the table already holds.
    pub(crate) fn ensure_sequence(&self) -> Option<String> {
        let (sequence, skey) = (self.sequence.as_ref()?, self.skey.as_ref()?);
        Some(format!(
            "DO $$ BEGIN IF to_regclass('{sequence}') IS NULL THEN \
             EXECUTE format('CREATE SEQUENCE {sequence} START WITH %s', \
             (SELECT COALESCE(MAX({skey}), 0) + 1 FROM {table})); END IF; END $$",
            table = self.table
        ))
    }

    /// The statements that apply the staged rows of `range` to the target.
    pub(crate) fn apply(&self, stamp: NaiveDateTime, range: &RangeInclusive<i64>) -> Vec<Apply> {
        let mut statements = Vec::new();
        let current = |alias: &str| match &self.versions {
            Some([curflg, _, _]) => format!(" AND {alias}.{curflg} = 'Y'"),
            None => String::new(),
        };
        if let (Some([curflg, _, todt]), true) = (&self.versions, self.scd2) {
            // Changed rows: the current version ends at the run's timestamp.
            let mut binds = Binds::new(self.dialect);
            let mut sets = vec![
                format!("{curflg} = 'N'"),
                format!("{todt} = {}", binds.push(Value::Timestamp(stamp))),
            ];
            if let Some(recupdt) = &self.recupdt {
                sets.push(format!(
                    "{recupdt} = {}",
                    binds.push(Value::Timestamp(stamp))
                ));
            }
            statements.push((
                "expiring the changed rows",
                self.update(&sets, &mut binds, range, &current("t")),
                binds.values,
                false,
            ));
        } else {
            // Type 1 and facts: the business columns change in place.
            let mut binds = Binds::new(self.dialect);
            let mut sets: Vec<String> = self
                .columns
                .iter()
                .filter(|c| !self.key.contains(c))
                .map(|c| format!("{c} = s.{c}"))
                .collect();
            sets.push(format!("{} = s.dwsched_hash", self.rwhkey));
            if let Some(recupdt) = &self.recupdt {
                sets.push(format!(
                    "{recupdt} = {}",
                    binds.push(Value::Timestamp(stamp))
                ));
            }
            statements.push((
                "updating the changed rows",
                self.update(&sets, &mut binds, range, &current("t")),
                binds.values,
                true,
            ));
        }
        statements.push(self.insert(stamp, range, &current("t")));
        statements
    }

    /// `dwtool rehash`: the staged hashes written into the current rows of their keys,
    /// nothing else changed.
    pub(crate) fn rehash(&self, range: &RangeInclusive<i64>) -> Vec<Apply> {
        let current = match &self.versions {
            Some([curflg, _, _]) => format!(" AND t.{curflg} = 'Y'"),
            None => String::new(),
        };
        let mut binds = Binds::new(self.dialect);
        let sets = [format!("{} = s.dwsched_hash", self.rwhkey)];
        let sql = self.update(&sets, &mut binds, range, &current);
        vec![("rewriting the row hashes", sql, binds.values, true)]
    }

    /// `UPDATE` of the target rows whose key is staged in `range` and whose hash
    /// differs, with `sets` (their binds already in `binds`, which comes first in the
    /// text on both dialects).
    fn update(
        &self,
        sets: &[String],
        binds: &mut Binds,
        range: &RangeInclusive<i64>,
        current: &str,
    ) -> String {
        let sets = match self.dialect {
            Dialect::Postgres => sets.join(", "),
            // MySQL's multi-table UPDATE names the table of each column.
            Dialect::MySql => sets
                .iter()
                .map(|s| format!("t.{s}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let low = binds.push(Value::Int(*range.start()));
        let high = binds.push(Value::Int(*range.end()));
        let rwhkey = &self.rwhkey;
        match self.dialect {
            Dialect::Postgres => format!(
                "UPDATE {table} t SET {sets} FROM {STAGE} s WHERE s.dwsched_seq BETWEEN {low} AND {high} \
                 AND {keys}{current} AND t.{rwhkey} IS DISTINCT FROM s.dwsched_hash",
                table = self.table,
                keys = self.key_match("t", "s"),
            ),
            Dialect::MySql => format!(
                "UPDATE {table} t JOIN {STAGE} s ON {keys} SET {sets} \
                 WHERE s.dwsched_seq BETWEEN {low} AND {high}{current} AND NOT (t.{rwhkey} <=> s.dwsched_hash)",
                table = self.table,
                keys = self.key_match("t", "s"),
            ),
        }
    }

    /// `INSERT` of the staged rows of `range` whose key has no current row (new keys,
    /// and the new versions of rows just expired), in source order.
    fn insert(&self, stamp: NaiveDateTime, range: &RangeInclusive<i64>, current: &str) -> Apply {
        let mut binds = Binds::new(self.dialect);
        let mut names: Vec<String> = Vec::new();
        let mut values: Vec<String> = Vec::new();
        if let (Some(skey), Some(sequence)) = (&self.skey, &self.sequence) {
            names.push(skey.clone());
            values.push(format!("nextval('{sequence}')"));
        }
        names.extend(self.columns.iter().cloned());
        values.extend(self.columns.iter().map(|c| format!("s.{c}")));
        names.push(self.rwhkey.clone());
        values.push("s.dwsched_hash".to_string());
        if let Some([curflg, fromdt, todt]) = &self.versions {
            names.extend([curflg.clone(), fromdt.clone(), todt.clone()]);
            values.push("'Y'".to_string());
            values.push(binds.push(Value::Timestamp(stamp)));
            values.push(binds.push(Value::Timestamp(open_end())));
        }
        for audit in [&self.reccrdt, &self.recupdt].into_iter().flatten() {
            names.push(audit.clone());
            values.push(binds.push(Value::Timestamp(stamp)));
        }
        let low = binds.push(Value::Int(*range.start()));
        let high = binds.push(Value::Int(*range.end()));
        let sql = format!(
            "INSERT INTO {table} ({names}) SELECT {values} FROM {STAGE} s \
             WHERE s.dwsched_seq BETWEEN {low} AND {high} \
             AND NOT EXISTS (SELECT 1 FROM {table} t WHERE {keys}{current}) ORDER BY s.dwsched_seq",
            table = self.table,
            names = names.join(", "),
            values = values.join(", "),
            keys = self.key_match("t", "s"),
        );
        ("inserting the new rows", sql, binds.values, true)
    }
}

/// `TODT` of a current version.
fn open_end() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid date")
}

/// Bind values with their placeholders in text order.
struct Binds {
    dialect: Dialect,
    values: Vec<Value>,
}

impl Binds {
    fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            values: Vec::new(),
        }
    }

    fn push(&mut self, value: Value) -> String {
        self.values.push(value);
        match self.dialect {
            Dialect::Postgres => format!("${}", self.values.len()),
            Dialect::MySql => "?".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::plan::{Checkpoint, MappedColumn, PlanCombination};

    fn plan(kind: TargetKind, scd_type: i64) -> MappingPlan {
        let column = |name: &str| MappedColumn {
            target: name.into(),
            source: name.into(),
            hashed: true,
        };
        MappingPlan {
            mapref: "DIM_X".into(),
            jobid: 1,
            target_conid: 2,
            target_schema: Some("DW".into()),
            target_table: "DIM_X".into(),
            target_kind: kind,
            columns: vec![column("ID"), column("NAME")],
            key: vec![column("ID")],
            combination: PlanCombination {
                code: "A00".into(),
                scd_type,
                sql: "SELECT 1".into(),
                source_conid: 3,
            },
            batch_rows: 10,
            checkpoint: Checkpoint::Disabled,
        }
    }

    const DIMENSION: [&str; 9] = [
        "skey", "rwhkey", "id", "name", "curflg", "fromdt", "todt", "reccrdt", "recupdt",
    ];

    fn at() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 3, 1)
            .and_then(|d| d.and_hms_opt(8, 0, 0))
            .unwrap()
    }

    fn columns(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn scd2_on_postgres_expires_then_inserts_from_the_sequence() {
        let statements = Statements::new(
            &plan(TargetKind::Dim, 2),
            Dialect::Postgres,
            &columns(&DIMENSION),
        )
        .ok()
        .unwrap();
        let applied = statements.apply(at(), &(1..=500));
        assert_eq!(applied.len(), 2);
        let (_, expire, binds, counts) = &applied[0];
        assert_eq!(
            expire,
            "UPDATE dw.dim_x t SET \"curflg\" = 'N', \"todt\" = $1, \"recupdt\" = $2 \
             FROM dwsched_stage s WHERE s.dwsched_seq BETWEEN $3 AND $4 AND t.\"id\" = s.\"id\" \
             AND t.\"curflg\" = 'Y' AND t.\"rwhkey\" IS DISTINCT FROM s.dwsched_hash"
        );
        assert_eq!(binds.len(), 4);
        assert!(!counts, "expirations are not written rows");
        let (_, insert, binds, counts) = &applied[1];
        assert_eq!(
            insert,
            "INSERT INTO dw.dim_x (\"skey\", \"id\", \"name\", \"rwhkey\", \"curflg\", \"fromdt\", \
             \"todt\", \"reccrdt\", \"recupdt\") SELECT nextval('dw.dim_x_seq'), s.\"id\", s.\"name\", \
             s.dwsched_hash, 'Y', $1, $2, $3, $4 FROM dwsched_stage s WHERE s.dwsched_seq BETWEEN $5 \
             AND $6 AND NOT EXISTS (SELECT 1 FROM dw.dim_x t WHERE t.\"id\" = s.\"id\" AND \
             t.\"curflg\" = 'Y') ORDER BY s.dwsched_seq"
        );
        assert_eq!(binds[1], Value::Timestamp(open_end()));
        assert!(counts);
    }

    #[test]
    fn a_mysql_fact_is_upserted_by_key_with_positional_binds() {
        let names = columns(&["SKEY", "RWHKEY", "ID", "NAME", "RECCRDT", "RECUPDT"]);
        let statements = Statements::new(&plan(TargetKind::Fact, 1), Dialect::MySql, &names)
            .ok()
            .unwrap();
        let applied = statements.apply(at(), &(1..=500));
        let (_, update, binds, _) = &applied[0];
        assert_eq!(
            update,
            "UPDATE `DIM_X` t JOIN dwsched_stage s ON t.`ID` = s.`ID` SET t.`NAME` = s.`NAME`, \
             t.`RWHKEY` = s.dwsched_hash, t.`RECUPDT` = ? WHERE s.dwsched_seq BETWEEN ? AND ? \
             AND NOT (t.`RWHKEY` <=> s.dwsched_hash)"
        );
        assert_eq!(
            binds,
            &[Value::Timestamp(at()), Value::Int(1), Value::Int(500)]
        );
        let (_, insert, binds, _) = &applied[1];
        assert!(
            insert.starts_with(
                "INSERT INTO `DIM_X` (`ID`, `NAME`, `RWHKEY`, `RECCRDT`, `RECUPDT`) SELECT"
            ),
            "no SKEY (AUTO_INCREMENT), no version columns: {insert}"
        );
        assert_eq!(binds.len(), 4);
        assert_eq!(statements.truncate(), "DELETE FROM `DIM_X`");
        assert!(statements.ensure_sequence().is_none());
    }

    #[test]
    fn missing_columns_and_unsafe_names_are_refused_by_name() {
        let error = |plan: &MappingPlan, names: &[&str]| match Statements::new(
            plan,
            Dialect::Postgres,
            &columns(names),
        ) {
            Ok(_) => panic!("accepted"),
            Err(failure) => failure.error.to_string(),
        };
        let message = error(&plan(TargetKind::Dim, 2), &["skey", "rwhkey", "id", "name"]);
        assert!(
            message.contains("has no column CURFLG, which a dimension needs"),
            "{message}"
        );
        let mut unsafe_name = plan(TargetKind::Fact, 1);
        unsafe_name.target_table = "x; DROP TABLE y".into();
        let message = error(&unsafe_name, &DIMENSION);
        assert!(message.contains("is not a plain table name"), "{message}");
    }
}
