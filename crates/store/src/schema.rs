//! The tables of SPEC §3, described once and rendered for each backend.
//!
//! Migrations are versioned, and each version is a list of steps that look before they
//! act: a missing table is created whole, a table that exists (say, one the original
//! tool created) only gets the columns it lacks, and indexes and sequences are created
//! when absent. So `dwsched init` is idempotent and upgrades an original install
//! without touching its rows or columns.

/// Column types, named by what they hold rather than by any one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// The table's numeric key, from a sequence (PostgreSQL), `AUTO_INCREMENT` (MySQL)
    /// or the row id (SQLite).
    Id {
        sequence: &'static str,
    },
    BigInt,
    Int,
    /// A whole number of up to this many digits (`NUMERIC(p,0)`), as the original
    /// install declares `SESSIONID`.
    Numeric(u8),
    Varchar(u32),
    /// Long text: flows, messages, payloads.
    Text,
    /// A UTC time, or a wall-clock time for schedule bounds.
    Timestamp,
    /// A calendar date (a run's business date).
    Date,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: ColumnType,
    /// A SQL literal default, the same in every backend.
    pub default: Option<&'static str>,
    pub not_null: bool,
}

const fn col(name: &'static str, kind: ColumnType) -> Column {
    Column {
        name,
        kind,
        default: None,
        not_null: false,
    }
}

const fn col_default(name: &'static str, kind: ColumnType, default: &'static str) -> Column {
    Column {
        name,
        kind,
        default: Some(default),
        not_null: false,
    }
}

const fn col_required(name: &'static str, kind: ColumnType) -> Column {
    Column {
        name,
        kind,
        default: None,
        not_null: true,
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    /// The primary key columns (comma-separated), when the key is not an `Id` column.
    pub primary_key: Option<&'static str>,
    pub columns: &'static [Column],
}

#[derive(Debug, Clone, Copy)]
pub struct Index {
    pub name: &'static str,
    pub table: &'static str,
    pub columns: &'static [&'static str],
    pub unique: bool,
}

use crate::Backend;
use ColumnType::*;

mod tables;
pub use tables::{INDEXES, TABLES};

/// The `DMS_JOBSCH` columns that make a schedule: a change to any of them (and only
/// to them: not the next fire, failure count or problem dwsched keeps there) is one the
/// firing node must see.
pub const SCHEDULE_CONTENT: &[&str] = &[
    "JOBFLWID",
    "MAPREF",
    "FRQCD",
    "FRQDD",
    "FRQHH",
    "FRQMI",
    "STRTDT",
    "ENDDT",
    "STFLG",
    "SCHFLG",
    "CURFLG",
    "DPND_JOBSCHID",
    "TIMEZONE",
    "CRONEXPR",
    "MISFIRE",
    "MAXFAIL",
    "CALNM",
    "CALRULE",
];

/// The `DMS_SCHVER` row counting the changes to `DMS_JOBSCH`.
pub const JOB_SCHEDULES_VERSION: &str = "DMS_JOBSCH";

/// The `DMS_SCHVER` row counting the changes to business calendars (`DMS_CALENDAR`,
/// `DMS_CALDATE`).
pub const CALENDARS_VERSION: &str = "DMS_CALENDAR";

/// The tables whose every change counts in [`CALENDARS_VERSION`].
pub const CALENDAR_TABLES: [&str; 2] = ["DMS_CALENDAR", "DMS_CALDATE"];

/// The statements that install the triggers counting every insert, update and delete
/// of the calendar tables in [`CALENDARS_VERSION`], by whichever tool writes them, so
/// that the firing node sees a new holiday within a second.
pub fn calendar_change_triggers(backend: Backend, schema: &str) -> Vec<String> {
    let mut statements = vec![format!(
        "INSERT INTO DMS_SCHVER (NAME, VERSION) SELECT '{CALENDARS_VERSION}', 0 \
         WHERE NOT EXISTS (SELECT 1 FROM DMS_SCHVER WHERE NAME = '{CALENDARS_VERSION}')"
    )];
    let count = |prefix: &str| {
        format!(
            "UPDATE {prefix}DMS_SCHVER SET VERSION = VERSION + 1 WHERE NAME = '{CALENDARS_VERSION}'"
        )
    };
    if backend == Backend::Postgres {
        statements.push(format!(
            "CREATE OR REPLACE FUNCTION {schema}.dwsched_calendar_changed() RETURNS trigger \
             LANGUAGE plpgsql AS $$ BEGIN {}; RETURN NULL; END $$",
            count(&format!("{schema}."))
        ));
    }
    for table in CALENDAR_TABLES {
        let name = format!("dwsched_{}_changed", table.to_ascii_lowercase());
        match backend {
            Backend::Postgres => {
                statements.push(format!("DROP TRIGGER IF EXISTS {name} ON {table}"));
                statements.push(format!(
                    "CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} \
                     FOR EACH STATEMENT EXECUTE FUNCTION {schema}.dwsched_calendar_changed()"
                ));
            }
            Backend::MySql | Backend::Sqlite => {
                for event in ["INSERT", "UPDATE", "DELETE"] {
                    let name = format!("{name}_{}", event.to_ascii_lowercase());
                    statements.push(format!("DROP TRIGGER IF EXISTS {name}"));
                    statements.push(format!(
                        "CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW BEGIN {}; END",
                        count("")
                    ));
                }
            }
        }
    }
    statements
}

/// The statements that install the triggers keeping `DMS_JOBSCH.CHGDT` and the
/// `DMS_SCHVER` count of `DMS_JOBSCH`: an insert, a delete, or an update of a
/// [`SCHEDULE_CONTENT`] column (by dwsched, DWTOOL's UI, or SQL by hand) stamps the
/// row with the database's time and counts one change, in the writer's transaction.
/// The firing node reads the count each second and re-reads only the stamped rows.
/// `schema` is the (validated) schema of the tables on PostgreSQL, which the trigger
/// function names so that writers with another `search_path` are counted too.
pub fn schedule_change_triggers(backend: Backend, schema: &str) -> Vec<String> {
    let table = "DMS_JOBSCH";
    let version = format!(
        "INSERT INTO DMS_SCHVER (NAME, VERSION) SELECT '{JOB_SCHEDULES_VERSION}', 0 \
         WHERE NOT EXISTS (SELECT 1 FROM DMS_SCHVER WHERE NAME = '{JOB_SCHEDULES_VERSION}')"
    );
    let count = |prefix: &str| {
        format!(
            "UPDATE {prefix}DMS_SCHVER SET VERSION = VERSION + 1 WHERE NAME = '{JOB_SCHEDULES_VERSION}'"
        )
    };
    let now = backend.now_utc();
    match backend {
        Backend::Postgres => {
            let unchanged = SCHEDULE_CONTENT
                .iter()
                .map(|c| format!("NEW.{c} IS NOT DISTINCT FROM OLD.{c}"))
                .collect::<Vec<_>>()
                .join(" AND ");
            vec![
                version,
                format!(
                    "CREATE OR REPLACE FUNCTION {schema}.dwsched_schedule_changed() RETURNS trigger \
                     LANGUAGE plpgsql AS $$ BEGIN \
                     IF TG_OP = 'UPDATE' AND {unchanged} THEN RETURN NEW; END IF; \
                     {}; \
                     IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; \
                     NEW.CHGDT := {now}; RETURN NEW; END $$",
                    count(&format!("{schema}."))
                ),
                format!("DROP TRIGGER IF EXISTS dwsched_schedule_changed ON {table}"),
                format!(
                    "CREATE TRIGGER dwsched_schedule_changed BEFORE INSERT OR UPDATE OR DELETE \
                     ON {table} FOR EACH ROW EXECUTE FUNCTION {schema}.dwsched_schedule_changed()"
                ),
            ]
        }
        Backend::MySql => {
            let changed = SCHEDULE_CONTENT
                .iter()
                .map(|c| format!("NOT (NEW.{c} <=> OLD.{c})"))
                .collect::<Vec<_>>()
                .join(" OR ");
            let mut statements = vec![version];
            for (name, timing) in [
                ("dwsched_schedule_inserted", "BEFORE INSERT"),
                ("dwsched_schedule_updated", "BEFORE UPDATE"),
                ("dwsched_schedule_deleted", "AFTER DELETE"),
            ] {
                statements.push(format!("DROP TRIGGER IF EXISTS {name}"));
                let body = match timing {
                    "BEFORE INSERT" => format!("BEGIN SET NEW.CHGDT = {now}; {}; END", count("")),
                    "BEFORE UPDATE" => format!(
                        "BEGIN IF {changed} THEN SET NEW.CHGDT = {now}; {}; END IF; END",
                        count("")
                    ),
                    _ => format!("BEGIN {}; END", count("")),
                };
                statements.push(format!(
                    "CREATE TRIGGER {name} {timing} ON {table} FOR EACH ROW {body}"
                ));
            }
            statements
        }
        Backend::Sqlite => {
            let changed = SCHEDULE_CONTENT
                .iter()
                .map(|c| format!("NEW.{c} IS NOT OLD.{c}"))
                .collect::<Vec<_>>()
                .join(" OR ");
            let stamp = format!("UPDATE {table} SET CHGDT = {now} WHERE rowid = NEW.rowid");
            let mut statements = vec![version];
            for (name, event, when, body) in [
                (
                    "dwsched_schedule_inserted",
                    "INSERT",
                    String::new(),
                    stamp.clone(),
                ),
                (
                    "dwsched_schedule_updated",
                    "UPDATE",
                    format!("WHEN {changed}"),
                    stamp.clone(),
                ),
                (
                    "dwsched_schedule_deleted",
                    "DELETE",
                    String::new(),
                    String::new(),
                ),
            ] {
                statements.push(format!("DROP TRIGGER IF EXISTS {name}"));
                let body = if body.is_empty() {
                    format!("{};", count(""))
                } else {
                    format!("{body}; {};", count(""))
                };
                statements.push(format!(
                    "CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW {when} BEGIN {body} END"
                ));
            }
            statements
        }
    }
}

/// The table that records which migrations a database has.
pub const MIGRATIONS_TABLE: Table = Table {
    name: "DWSCHED_MIGRATIONS",
    primary_key: None,
    columns: &[
        col_required("VERSION", BigInt),
        col("DESCRIPTION", Varchar(200)),
        col("APPLIED_AT", Timestamp),
    ],
};

/// One step of a migration.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// Create the table, or add the columns it lacks.
    EnsureTable(&'static Table),
    EnsureIndex(&'static Index),
    /// Install what wakes nodes when a request is inserted, by any tool (a trigger that
    /// notifies on PostgreSQL; nothing elsewhere).
    Notify,
    /// Install the triggers that count and stamp schedule changes
    /// ([`schedule_change_triggers`]).
    ScheduleTriggers,
    /// Install the triggers that count calendar changes ([`calendar_change_triggers`]).
    CalendarTriggers,
}

#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub description: &'static str,
}

/// Every migration, oldest first. The store applies those above the recorded version.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "DMS_ tables of SPEC §3 with dwsched's extension columns",
    },
    Migration {
        version: 2,
        description: "DMS_SCHLEASE: the lease of the node that fires schedules",
    },
    Migration {
        version: 3,
        description: "DMS_JOBSCH.CHGDT and DMS_SCHVER: schedule changes seen within a second",
    },
    Migration {
        version: 4,
        description: "DWTOOL mapping metadata: DMS_JOB's mapping columns, DMS_JOBDTL, DMS_MAPRSQL, DMS_PARAMS",
    },
    Migration {
        version: 5,
        description: "DMS_PRCLOG.RUN_DATE, DMS_PRCSTEP, DMS_SCHNODE.HTTP_ADDR and LEASE_SECONDS: the business date, each step's record, where a run's log is served, each node's own lease",
    },
    Migration {
        version: 6,
        description: "Business calendars: DMS_CALENDAR, DMS_CALDATE, DMS_JOBSCH.CALNM and CALRULE",
    },
    Migration {
        version: 7,
        description: "DWTOOL report tables: DMS_RPRT_DEF, _FLD, _FRML, _LYOT, _SCHD, _RUN, _OTPT",
    },
    Migration {
        version: 8,
        description: "DWTOOL file-upload tables: DMS_FLUPLD, DMS_FLUPLDDTL, DMS_FLUPLD_SCHD, _RUN, _ERR",
    },
];

/// The steps of one migration.
pub fn steps(version: i64) -> Vec<Step> {
    match version {
        1 => TABLES
            .iter()
            .map(Step::EnsureTable)
            .chain(INDEXES.iter().map(Step::EnsureIndex))
            .chain([Step::Notify])
            .collect(),
        2 => TABLES
            .iter()
            .filter(|t| t.name == "DMS_SCHLEASE")
            .map(Step::EnsureTable)
            .collect(),
        3 => TABLES
            .iter()
            .filter(|t| t.name == "DMS_JOBSCH" || t.name == "DMS_SCHVER")
            .map(Step::EnsureTable)
            .chain(
                INDEXES
                    .iter()
                    .filter(|i| i.name == "DMS_JOBSCH_CHGDT_IDX")
                    .map(Step::EnsureIndex),
            )
            .chain([Step::ScheduleTriggers])
            .collect(),
        4 => TABLES
            .iter()
            .filter(|t| MAPPING_TABLES.contains(&t.name))
            .map(Step::EnsureTable)
            .collect(),
        5 => TABLES
            .iter()
            .filter(|t| ["DMS_PRCLOG", "DMS_PRCSTEP", "DMS_SCHNODE"].contains(&t.name))
            .map(Step::EnsureTable)
            .collect(),
        // The schedule triggers again: CALNM and CALRULE are schedule content now.
        6 => TABLES
            .iter()
            .filter(|t| {
                t.name == "DMS_JOBSCH"
                    || t.name == "DMS_SCHVER"
                    || CALENDAR_TABLES.contains(&t.name)
            })
            .map(Step::EnsureTable)
            .chain([Step::ScheduleTriggers, Step::CalendarTriggers])
            .collect(),
        7 => TABLES
            .iter()
            .filter(|t| t.name.starts_with("DMS_RPRT_"))
            .map(Step::EnsureTable)
            .collect(),
        8 => TABLES
            .iter()
            .filter(|t| t.name.starts_with("DMS_FLUPLD"))
            .map(Step::EnsureTable)
            .collect(),
        _ => Vec::new(),
    }
}

/// The tables of DWTOOL's mapping metadata (migration 4).
const MAPPING_TABLES: [&str; 4] = ["DMS_JOB", "DMS_JOBDTL", "DMS_MAPRSQL", "DMS_PARAMS"];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

impl Column {
    /// The column's SQL type and constraints for `backend`, as used in `CREATE TABLE`
    /// and in `ALTER TABLE … ADD`.
    pub fn definition(&self, backend: Backend) -> String {
        let ty = match (self.kind, backend) {
            (Id { .. }, Backend::Sqlite) => "INTEGER PRIMARY KEY".to_string(),
            (Id { sequence }, Backend::Postgres) => format!(
                "BIGINT PRIMARY KEY DEFAULT nextval('{}')",
                sequence.to_ascii_lowercase()
            ),
            (Id { .. }, Backend::MySql) => "BIGINT AUTO_INCREMENT PRIMARY KEY".to_string(),
            (BigInt, Backend::Sqlite) | (Int, Backend::Sqlite) => "INTEGER".to_string(),
            (BigInt, _) => "BIGINT".to_string(),
            (Int, _) => "INTEGER".to_string(),
            (Numeric(_), Backend::Sqlite) => "INTEGER".to_string(),
            (Numeric(p), Backend::Postgres) => format!("NUMERIC({p},0)"),
            (Numeric(p), Backend::MySql) => format!("DECIMAL({p},0)"),
            (Varchar(_), Backend::Sqlite) | (Text, Backend::Sqlite) => "TEXT".to_string(),
            (Varchar(n), _) => format!("VARCHAR({n})"),
            (Text, Backend::Postgres) => "TEXT".to_string(),
            (Text, Backend::MySql) => "LONGTEXT".to_string(),
            (Timestamp, Backend::Sqlite) => "TEXT".to_string(),
            (Timestamp, Backend::Postgres) => "TIMESTAMP".to_string(),
            (Timestamp, Backend::MySql) => "DATETIME(6)".to_string(),
            (Date, Backend::Sqlite) => "TEXT".to_string(),
            (Date, _) => "DATE".to_string(),
        };
        let mut out = format!("{} {ty}", self.name);
        if self.not_null {
            out.push_str(" NOT NULL");
        }
        if let Some(default) = self.default {
            out.push_str(" DEFAULT ");
            out.push_str(default);
        }
        out
    }
}

impl Table {
    pub fn create_sql(&self, backend: Backend) -> String {
        let mut parts: Vec<String> = self.columns.iter().map(|c| c.definition(backend)).collect();
        if let Some(key) = self.primary_key {
            parts.push(format!("PRIMARY KEY ({key})"));
        }
        if !self.columns.iter().any(|c| matches!(c.kind, Id { .. })) && self.primary_key.is_none() {
            parts.push(format!("PRIMARY KEY ({})", self.columns[0].name));
        }
        format!("CREATE TABLE {} (\n  {}\n)", self.name, parts.join(",\n  "))
    }

    pub fn sequences(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.columns.iter().filter_map(|c| match c.kind {
            Id { sequence } => Some(sequence),
            _ => None,
        })
    }
}

impl Index {
    pub fn create_sql(&self, backend: Backend) -> String {
        let unique = if self.unique { "UNIQUE " } else { "" };
        let if_not_exists = match backend {
            // MySQL 8 has no IF NOT EXISTS here; the store checks the catalogue first.
            Backend::MySql => "",
            _ => "IF NOT EXISTS ",
        };
        format!(
            "CREATE {unique}INDEX {if_not_exists}{} ON {} ({})",
            self.name,
            self.table,
            self.columns.join(", ")
        )
    }
}

/// Columns added to an existing table are always nullable or defaulted, so rows written
/// by the original tool stay valid; a key column can't be added afterwards.
pub fn added_column_sql(table: &Table, column: &Column, backend: Backend) -> String {
    let mut definition = column.definition(backend);
    if column.not_null && column.default.is_none() {
        definition = definition.replace(" NOT NULL", "");
    }
    format!("ALTER TABLE {} ADD {definition}", table.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_table_is_described_with_unique_columns() {
        let names: Vec<_> = TABLES.iter().map(|t| t.name).collect();
        for spec_table in [
            "DMS_JOBSCH",
            "DMS_PRCREQ",
            "DMS_PRCLOG",
            "DMS_JOBLOG",
            "DMS_JOBERR",
            "DMS_JOB",
            "DMS_JOBFLW",
            "DMS_DBCONDTLS",
            "DMS_SCHNODE",
        ] {
            assert!(names.contains(&spec_table), "{spec_table}");
        }
        for table in TABLES {
            let mut columns: Vec<_> = table.columns.iter().map(|c| c.name).collect();
            columns.sort();
            columns.dedup();
            assert_eq!(columns.len(), table.columns.len(), "{}", table.name);
        }
        for index in INDEXES {
            let table = TABLES.iter().find(|t| t.name == index.table).unwrap();
            for column in index.columns {
                assert!(table.columns.iter().any(|c| c.name == *column));
            }
        }
    }

    #[test]
    fn rendering_per_dialect() {
        let prcreq = TABLES.iter().find(|t| t.name == "DMS_PRCREQ").unwrap();
        let pg = prcreq.create_sql(Backend::Postgres);
        assert!(pg.contains("REQUEST_ID VARCHAR(64) NOT NULL"));
        assert!(pg.contains("PRIMARY KEY (REQUEST_ID)"));
        let jobsch = TABLES.iter().find(|t| t.name == "DMS_JOBSCH").unwrap();
        assert!(
            jobsch
                .create_sql(Backend::Postgres)
                .contains("JOBSCHID BIGINT PRIMARY KEY DEFAULT nextval('dms_jobschseq')")
        );
        assert!(
            jobsch
                .create_sql(Backend::MySql)
                .contains("JOBSCHID BIGINT AUTO_INCREMENT PRIMARY KEY")
        );
        assert!(
            jobsch
                .create_sql(Backend::Sqlite)
                .contains("JOBSCHID INTEGER PRIMARY KEY")
        );
        let dedupe = INDEXES
            .iter()
            .find(|i| i.name == "DMS_PRCREQ_DEDUPE_UK")
            .unwrap();
        assert_eq!(
            dedupe.create_sql(Backend::Sqlite),
            "CREATE UNIQUE INDEX IF NOT EXISTS DMS_PRCREQ_DEDUPE_UK ON DMS_PRCREQ (DEDUPE_KEY)"
        );
        let mapref = &prcreq.columns[1];
        assert_eq!(
            added_column_sql(prcreq, mapref, Backend::Postgres),
            "ALTER TABLE DMS_PRCREQ ADD MAPREF VARCHAR(100)"
        );
    }
}
