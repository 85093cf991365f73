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
    /// The primary key column, when it is not an `Id` column.
    pub text_key: Option<&'static str>,
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

const NAME: ColumnType = Varchar(100);
const FLAG: ColumnType = Varchar(1);
/// `SESSIONID`, as the original install declares it (Oracle `NUMBER(30)`).
const SESSION: ColumnType = Numeric(30);

pub const TABLES: &[Table] = &[
    Table {
        name: "DMS_JOB",
        text_key: None,
        columns: &[
            col(
                "JOBID",
                Id {
                    sequence: "DMS_JOBSEQ",
                },
            ),
            col_required("MAPREF", NAME),
            col("TRGCONID", BigInt),
            col("TRGSCHM", NAME),
            col("TRGTBNM", NAME),
            col("TRGTBTYP", Varchar(30)),
            col_default("STFLG", FLAG, "'A'"),
            col_default("CURFLG", FLAG, "'Y'"),
            col("RECCRDT", Timestamp),
            col("RECUPDT", Timestamp),
            // What DWTOOL's generator copies from the mapping (SPEC §7.1).
            col("MAPID", BigInt),
            col("FRQCD", Varchar(10)),
            col("SRCSYSTM", NAME),
            col("BLKPRCROWS", Int),
            col("CHKPNTSTRTGY", Varchar(20)),
            col("CHKPNTCLNM", NAME),
            col("CHKPNTENBLD", FLAG),
        ],
    },
    // DWTOOL's mapping metadata, read to plan its mapping jobs (SPEC §7.1); created
    // empty where a site has none.
    Table {
        name: "DMS_JOBDTL",
        text_key: None,
        columns: &[
            col(
                "JOBDTLID",
                Id {
                    sequence: "DMS_JOBDTLSEQ",
                },
            ),
            col_required("MAPREF", Varchar(50)),
            col("MAPDTLID", BigInt),
            col("TRGCLNM", NAME),
            col("TRGCLDTYP", Varchar(50)),
            col("TRGKEYFLG", FLAG),
            col("TRGKEYSEQ", Int),
            col("TRGCLDESC", Varchar(500)),
            col("MAPLOGIC", Text),
            col("MAPRSQLCD", NAME),
            col("KEYCLNM", NAME),
            col("VALCLNM", NAME),
            col("MAPCMBCD", Varchar(20)),
            col("EXCSEQ", Int),
            col("SCDTYP", Int),
            col("RECCRDT", Timestamp),
            col("RECUPDT", Timestamp),
            col_default("CURFLG", FLAG, "'Y'"),
        ],
    },
    Table {
        name: "DMS_MAPRSQL",
        text_key: None,
        columns: &[
            col(
                "MAPRSQLID",
                Id {
                    sequence: "DMS_MAPRSQLSEQ",
                },
            ),
            col_required("MAPRSQLCD", NAME),
            col("MAPRSQL", Text),
            col("SQLCONID", BigInt),
            col("RECCRDT", Timestamp),
            col("RECUPDT", Timestamp),
            col_default("CURFLG", FLAG, "'Y'"),
        ],
    },
    Table {
        name: "DMS_PARAMS",
        text_key: Some("PRTYP, DBTYP, PRCD"),
        columns: &[
            col_required("PRTYP", NAME),
            col_required("PRCD", NAME),
            col("PRDESC", Varchar(500)),
            col("PRVAL", Varchar(4000)),
            col_default("DBTYP", Varchar(50), "'GENERIC'"),
            col("PRRECCRDT", Timestamp),
            col("PRRECUPDT", Timestamp),
            col_default("CURFLG", FLAG, "'Y'"),
        ],
    },
    Table {
        name: "DMS_JOBFLW",
        text_key: None,
        columns: &[
            col(
                "JOBFLWID",
                Id {
                    sequence: "DMS_JOBFLWSEQ",
                },
            ),
            col("JOBID", BigInt),
            col_required("MAPREF", NAME),
            col("TRGSCHM", NAME),
            col("TRGTBTYP", Varchar(30)),
            col("TRGTBNM", NAME),
            col("DWLOGIC", Text),
            col_default("STFLG", FLAG, "'A'"),
            col_default("CURFLG", FLAG, "'Y'"),
            col("RECRDT", Timestamp),
            col("RECUPDT", Timestamp),
        ],
    },
    Table {
        name: "DMS_JOBSCH",
        text_key: None,
        columns: &[
            col(
                "JOBSCHID",
                Id {
                    sequence: "DMS_JOBSCHSEQ",
                },
            ),
            col("JOBFLWID", BigInt),
            col_required("MAPREF", NAME),
            col("FRQCD", Varchar(10)),
            col("FRQDD", Varchar(10)),
            col("FRQHH", Int),
            col("FRQMI", Int),
            col("STRTDT", Timestamp),
            col("ENDDT", Timestamp),
            col_default("STFLG", FLAG, "'A'"),
            col_default("SCHFLG", FLAG, "'N'"),
            col_default("CURFLG", FLAG, "'Y'"),
            col("DPND_JOBSCHID", BigInt),
            col("LST_RUN_DT", Timestamp),
            col("NXT_RUN_DT", Timestamp),
            col("RECCRDT", Timestamp),
            col("RECUPDT", Timestamp),
            // Extensions of dwsched (SPEC §3).
            col("TIMEZONE", Varchar(64)),
            col("CRONEXPR", Varchar(200)),
            col("MISFIRE", Varchar(10)),
            col("MAXFAIL", Int),
            col_default("FAILCNT", Int, "0"),
            col("SCHERR", Text),
            // When the row's schedule last changed, by the database's clock; kept by the
            // trigger of `schedule_change_triggers`, whoever writes the row.
            col("CHGDT", Timestamp),
        ],
    },
    Table {
        name: "DMS_PRCREQ",
        text_key: Some("REQUEST_ID"),
        columns: &[
            col_required("REQUEST_ID", Varchar(64)),
            col_required("MAPREF", NAME),
            col_required("REQUEST_TYPE", Varchar(30)),
            col("PAYLOAD", Text),
            col_default("STATUS", Varchar(20), "'NEW'"),
            col("REQUESTED_AT", Timestamp),
            col("CLAIMED_AT", Timestamp),
            col("CLAIMED_BY", Varchar(64)),
            col("COMPLETED_AT", Timestamp),
            col("RESULT_PAYLOAD", Text),
            // Extensions of dwsched (SPEC §3).
            col("DEDUPE_KEY", Varchar(200)),
            col("NOT_BEFORE", Timestamp),
            col_default("ATTEMPTS", Int, "0"),
            col("LEASE_UNTIL", Timestamp),
        ],
    },
    Table {
        name: "DMS_PRCLOG",
        text_key: None,
        columns: &[
            col(
                "PRCID",
                Id {
                    sequence: "DMS_PRCLOGSEQ",
                },
            ),
            col("JOBID", BigInt),
            col("JOBFLWID", BigInt),
            col("STRTDT", Timestamp),
            col("ENDDT", Timestamp),
            col("STATUS", Varchar(2)),
            col("MSG", Text),
            col("PRCLOG", Text),
            col("MAPREF", NAME),
            col("SESSIONID", SESSION),
            col("PARAM1", Varchar(250)),
            col("PARAM2", Varchar(250)),
            col("PARAM3", Varchar(250)),
            col("PARAM4", Varchar(250)),
            col("PARAM5", Varchar(250)),
            col("PARAM6", Varchar(250)),
            col("PARAM7", Varchar(250)),
            col("PARAM8", Varchar(250)),
            col("PARAM9", Varchar(250)),
            col("PARAM10", Varchar(250)),
            col("RECCRDT", Timestamp),
            col("RECUPDT", Timestamp),
            // Extensions of dwsched (SPEC §3).
            col("REQUEST_ID", Varchar(64)),
            col("NODE", NAME),
        ],
    },
    Table {
        name: "DMS_JOBLOG",
        text_key: None,
        columns: &[
            col(
                "JOBLOGID",
                Id {
                    sequence: "DMS_JOBLOGSEQ",
                },
            ),
            col("PRCDT", Timestamp),
            col("MAPREF", NAME),
            col("JOBID", BigInt),
            col("SRCROWS", BigInt),
            col("TRGROWS", BigInt),
            col("ERRROWS", BigInt),
            col("PRCID", BigInt),
            col("SESSIONID", SESSION),
            col("RECCRDT", Timestamp),
        ],
    },
    Table {
        name: "DMS_JOBERR",
        text_key: None,
        columns: &[
            col(
                "ERRID",
                Id {
                    sequence: "DMS_JOBERRSEQ",
                },
            ),
            col("JOBLOGID", BigInt),
            col("PRCDT", Timestamp),
            col("ERRTYP", Varchar(10)),
            col("DBERRMSG", Text),
            col("ERRMSG", Text),
            col("KEYVALUE", Text),
            col("JOBID", BigInt),
            col("SESSIONID", SESSION),
            col("PRCID", BigInt),
            col("MAPREF", NAME),
        ],
    },
    Table {
        name: "DMS_DBCONDTLS",
        text_key: None,
        columns: &[
            col(
                "CONID",
                Id {
                    sequence: "DMS_DBCONDTLSSEQ",
                },
            ),
            col_required("CONNM", NAME),
            col("DBTYP", Varchar(30)),
            col("DBHOST", Varchar(255)),
            col("DBPORT", Int),
            col("DBSRVNM", NAME),
            col("USRNM", NAME),
            col("PASSWD", Varchar(500)),
            col("CONSTR", Text),
            col("SCHNM", NAME),
            col_default("CURFLG", FLAG, "'Y'"),
        ],
    },
    Table {
        name: "DMS_SCHNODE",
        text_key: Some("NODE_ID"),
        columns: &[
            col_required("NODE_ID", NAME),
            col("HOST", Varchar(255)),
            col("PID", BigInt),
            col("VERSION", Varchar(30)),
            col("STARTED_AT", Timestamp),
            col("HEARTBEAT_AT", Timestamp),
            col("ROLE", Varchar(30)),
        ],
    },
    Table {
        name: "DMS_SCHLEASE",
        text_key: Some("NAME"),
        columns: &[
            col_required("NAME", NAME),
            col("HOLDER", NAME),
            col("LEASE_UNTIL", Timestamp),
            col("ACQUIRED_AT", Timestamp),
        ],
    },
    Table {
        name: "DMS_SCHVER",
        text_key: Some("NAME"),
        columns: &[
            col_required("NAME", NAME),
            col_default("VERSION", BigInt, "0"),
        ],
    },
];

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
];

/// The `DMS_SCHVER` row counting the changes to `DMS_JOBSCH`.
pub const JOB_SCHEDULES_VERSION: &str = "DMS_JOBSCH";

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

pub const INDEXES: &[Index] = &[
    Index {
        name: "DMS_PRCREQ_STATUS_IDX",
        table: "DMS_PRCREQ",
        columns: &["STATUS", "REQUESTED_AT"],
        unique: false,
    },
    Index {
        name: "DMS_PRCREQ_MAPREF_IDX",
        table: "DMS_PRCREQ",
        columns: &["MAPREF"],
        unique: false,
    },
    // The control claim's seeks for the request types that do not start runs.
    Index {
        name: "DMS_PRCREQ_STATUS_TYPE_IDX",
        table: "DMS_PRCREQ",
        columns: &["STATUS", "REQUEST_TYPE", "REQUESTED_AT"],
        unique: false,
    },
    // The claim's per-mapref checks (an older waiting request, one being processed)
    // are seeks on this index rather than scans of a mapref's history.
    Index {
        name: "DMS_PRCREQ_MAPREF_STATUS_IDX",
        table: "DMS_PRCREQ",
        columns: &["MAPREF", "STATUS", "REQUESTED_AT"],
        unique: false,
    },
    Index {
        name: "DMS_PRCREQ_DEDUPE_UK",
        table: "DMS_PRCREQ",
        columns: &["DEDUPE_KEY"],
        unique: true,
    },
    Index {
        name: "DMS_PRCLOG_MAPREF_IDX",
        table: "DMS_PRCLOG",
        columns: &["MAPREF", "STATUS"],
        unique: false,
    },
    Index {
        name: "DMS_PRCLOG_STATUS_IDX",
        table: "DMS_PRCLOG",
        columns: &["STATUS"],
        unique: false,
    },
    Index {
        name: "DMS_JOBLOG_PRCID_IDX",
        table: "DMS_JOBLOG",
        columns: &["PRCID"],
        unique: false,
    },
    Index {
        name: "DMS_JOBERR_PRCID_IDX",
        table: "DMS_JOBERR",
        columns: &["PRCID"],
        unique: false,
    },
    Index {
        name: "DMS_JOBSCH_MAPREF_IDX",
        table: "DMS_JOBSCH",
        columns: &["MAPREF", "CURFLG"],
        unique: false,
    },
    Index {
        name: "DMS_JOBSCH_CHGDT_IDX",
        table: "DMS_JOBSCH",
        columns: &["CHGDT"],
        unique: false,
    },
    Index {
        name: "DMS_JOBFLW_MAPREF_IDX",
        table: "DMS_JOBFLW",
        columns: &["MAPREF", "CURFLG"],
        unique: false,
    },
    Index {
        name: "DMS_JOB_MAPREF_IDX",
        table: "DMS_JOB",
        columns: &["MAPREF", "CURFLG"],
        unique: false,
    },
    Index {
        name: "DMS_DBCONDTLS_CONNM_UK",
        table: "DMS_DBCONDTLS",
        columns: &["CONNM"],
        unique: true,
    },
];

/// The table that records which migrations a database has.
pub const MIGRATIONS_TABLE: Table = Table {
    name: "DWSCHED_MIGRATIONS",
    text_key: None,
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
        if let Some(key) = self.text_key {
            parts.push(format!("PRIMARY KEY ({key})"));
        }
        if !self.columns.iter().any(|c| matches!(c.kind, Id { .. })) && self.text_key.is_none() {
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
