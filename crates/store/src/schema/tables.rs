//! The tables and indexes of SPEC §3 (and of DWTOOL's mapping metadata), described
//! once; `schema.rs` renders them for each backend and lists the migrations.

use super::ColumnType::*;
use super::{ColumnType, Index, Table, col, col_default, col_required};

const NAME: ColumnType = Varchar(100);
const FLAG: ColumnType = Varchar(1);
/// `SESSIONID`, as the original install declares it (Oracle `NUMBER(30)`).
const SESSION: ColumnType = Numeric(30);

pub const TABLES: &[Table] = &[
    Table {
        name: "DMS_JOB",
        primary_key: None,
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
        primary_key: None,
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
        primary_key: None,
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
        primary_key: Some("PRTYP, DBTYP, PRCD"),
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
        primary_key: None,
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
        primary_key: None,
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
            // The business calendar the schedule follows, and what a slot on another day
            // does (SPEC §6).
            col("CALNM", NAME),
            col("CALRULE", Varchar(10)),
        ],
    },
    Table {
        name: "DMS_PRCREQ",
        primary_key: Some("REQUEST_ID"),
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
        primary_key: None,
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
            col("RUN_DATE", Date),
        ],
    },
    // Extension of dwsched (SPEC §3): one row per attempt of a step of a run.
    Table {
        name: "DMS_PRCSTEP",
        primary_key: Some("PRCID, STEP, ATTEMPT"),
        columns: &[
            col_required("PRCID", BigInt),
            col_required("STEP", Varchar(200)),
            col_required("ATTEMPT", Int),
            col("STATUS", Varchar(2)),
            col("STRTDT", Timestamp),
            col("ENDDT", Timestamp),
            col("SRCROWS", BigInt),
            col("TRGROWS", BigInt),
            col("ERRROWS", BigInt),
            col("MSG", Text),
        ],
    },
    Table {
        name: "DMS_JOBLOG",
        primary_key: None,
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
        primary_key: None,
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
        primary_key: None,
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
        primary_key: Some("NODE_ID"),
        columns: &[
            col_required("NODE_ID", NAME),
            col("HOST", Varchar(255)),
            col("PID", BigInt),
            col("VERSION", Varchar(30)),
            col("STARTED_AT", Timestamp),
            col("HEARTBEAT_AT", Timestamp),
            col("ROLE", Varchar(30)),
            // Where the node serves its HTTP API (and its runs' logs), when it does.
            col("HTTP_ADDR", Varchar(255)),
            // The lease it heartbeats for: others judge it by this when it is longer
            // than their own.
            col("LEASE_SECONDS", BigInt),
        ],
    },
    Table {
        name: "DMS_SCHLEASE",
        primary_key: Some("NAME"),
        columns: &[
            col_required("NAME", NAME),
            col("HOLDER", NAME),
            col("LEASE_UNTIL", Timestamp),
            col("ACQUIRED_AT", Timestamp),
        ],
    },
    // DWTOOL's report tables (SPEC §7.2), as its UI writes and reads them: the
    // original ships no DDL, so these follow the reports note's inferred one, with the
    // grouping columns under their PostgreSQL names.
    Table {
        name: "DMS_RPRT_DEF",
        primary_key: None,
        columns: &[
            col(
                "RPRTID",
                Id {
                    sequence: "DMS_RPRT_DEF_SEQ",
                },
            ),
            col_required("RPRTNM", Varchar(200)),
            col("DSCRPTN", Varchar(1000)),
            col("SQLSRCID", BigInt),
            col("ADHCSQL", Text),
            col("FINAL_SQL", Text),
            col("DBCNID", BigInt),
            col("DFLT_OTPT_FMT", Varchar(20)),
            col("SPPRTD_FMTS", Varchar(200)),
            col("PRVW_RW_LMT", Int),
            col_default("IS_ACTV", FLAG, "'Y'"),
            col_default("CURFLG", FLAG, "'Y'"),
            col("CHCKSM", Varchar(64)),
            col("CRTDBY", NAME),
            col("CRTDDT", Timestamp),
            col("UPDTDBY", NAME),
            col("UPDTDT", Timestamp),
        ],
    },
    Table {
        name: "DMS_RPRT_FLD",
        primary_key: None,
        columns: &[
            col(
                "FLDID",
                Id {
                    sequence: "DMS_RPRT_FLD_SEQ",
                },
            ),
            col_required("RPRTID", BigInt),
            col("PNL_TYP", Varchar(20)),
            col("ROW_ORDR", Int),
            col("FLD_NM", Varchar(200)),
            col("FLD_ALS", Varchar(200)),
            col("SRC_CLMN", Varchar(400)),
            col("FRMLA_ID", BigInt),
            col("FRMLA_INLN", Text),
            col("DT_TYP", Varchar(50)),
            col("FMT_MASK", Varchar(100)),
            col("IS_VSBL", FLAG),
            col("IS_GROUP_BY", FLAG),
            col("ORDER_BY_SEQ", Int),
            col("ORDER_BY_DIR", Varchar(4)),
            col("NOTES", Varchar(1000)),
        ],
    },
    Table {
        name: "DMS_RPRT_FRML",
        primary_key: None,
        columns: &[
            col(
                "FRMLA_ID",
                Id {
                    sequence: "DMS_RPRT_FRML_SEQ",
                },
            ),
            col_required("RPRTID", BigInt),
            col("NM", Varchar(200)),
            col("XPRSN", Text),
            col("SPPRTD_DB_TYP", Varchar(200)),
            col("HLP_TXT", Varchar(1000)),
        ],
    },
    Table {
        name: "DMS_RPRT_LYOT",
        primary_key: None,
        columns: &[
            col(
                "LYOTID",
                Id {
                    sequence: "DMS_RPRT_LYOT_SEQ",
                },
            ),
            col_required("RPRTID", BigInt),
            col("HDR_TMPLT", Text),
            col("DTL_TMPLT", Text),
            col("PRVW_STTNGS", Text),
        ],
    },
    Table {
        name: "DMS_RPRT_SCHD",
        primary_key: None,
        columns: &[
            col(
                "SCHDID",
                Id {
                    sequence: "DMS_RPRT_SCHD_SEQ",
                },
            ),
            col_required("RPRTID", BigInt),
            col_required("FRQNCY", Varchar(20)),
            col("TM_PRM", NAME),
            col("NXT_RUN_DT", Timestamp),
            col("LST_RUN_DT", Timestamp),
            col("STTS", Varchar(20)),
            col("OTPT_FMT", Varchar(20)),
            col("DSTN_TYP", Varchar(20)),
            col("EMAL_TO", Varchar(2000)),
            col("FL_PTH", Varchar(2000)),
            col("QUE_REQ_ID", Varchar(64)),
            col("CRTDDT", Timestamp),
            col("UPDTDT", Timestamp),
        ],
    },
    Table {
        name: "DMS_RPRT_RUN",
        primary_key: None,
        columns: &[
            col(
                "RUNID",
                Id {
                    sequence: "DMS_RPRT_RUN_SEQ",
                },
            ),
            col_required("RPRTID", BigInt),
            col_required("RQST_ID", Varchar(64)),
            col("STRT_DT", Timestamp),
            col("END_DT", Timestamp),
            col("STTS", Varchar(20)),
            col("TRGGRD_BY", NAME),
            col("ROW_CNT", BigInt),
            col("OTPT_FMT", Varchar(200)),
            col("PRM_OVRRDS", Text),
            col("UPDTDT", Timestamp),
        ],
    },
    Table {
        name: "DMS_RPRT_OTPT",
        primary_key: None,
        columns: &[
            col(
                "OTPTID",
                Id {
                    sequence: "DMS_RPRT_OTPT_SEQ",
                },
            ),
            col_required("RUNID", BigInt),
            col("FMT", Varchar(20)),
            col("STRG_TYP", Varchar(20)),
            col("STRG_REF", Varchar(2000)),
            col("FLSZ", BigInt),
            col("CHCKSM", Varchar(64)),
        ],
    },
    // DWTOOL's file-upload tables (SPEC §7.3), with the columns of its PostgreSQL
    // install script (the reports note's §3.1).
    Table {
        name: "DMS_FLUPLD",
        primary_key: None,
        columns: &[
            col(
                "FLUPLDID",
                Id {
                    sequence: "DMS_FLUPLDSEQ",
                },
            ),
            col_required("FLUPLDREF", NAME),
            col("FLUPLDDESC", Varchar(500)),
            col("FLNM", Varchar(255)),
            col("FLPTH", Varchar(2000)),
            col("FLTYP", Varchar(50)),
            col("TRGCONID", BigInt),
            col("TRGSCHM", NAME),
            col("TRGTBLNM", NAME),
            col_default("TRNCTFLG", FLAG, "'N'"),
            col_default("HDRRWCNT", Int, "0"),
            col_default("FTRRWCNT", Int, "0"),
            col("HDRRWPTTRN", Varchar(500)),
            col("FTRRWPTTRN", Varchar(500)),
            col("FRQCD", Varchar(10)),
            col_default("STFLG", FLAG, "'N'"),
            col_default("CURFLG", FLAG, "'Y'"),
            col("CRTDBY", NAME),
            col("CRTDT", Timestamp),
            col("UPTDBY", NAME),
            col("UPTDT", Timestamp),
            col("LSTRUNDT", Timestamp),
            col("NXTRUNDT", Timestamp),
            col_default("BATCH_SIZE", Int, "1000"),
            // The SHA-256 of the file last loaded (UPLOAD_FILE_LIFECYCLE).
            col("FLHASH", Varchar(64)),
        ],
    },
    Table {
        name: "DMS_FLUPLDDTL",
        primary_key: None,
        columns: &[
            col(
                "FLUPLDDTLID",
                Id {
                    sequence: "DMS_FLUPLDDTLSEQ",
                },
            ),
            col_required("FLUPLDREF", NAME),
            col("SRCCLNM", NAME),
            col_required("TRGCLNM", NAME),
            col("TRGCLDTYP", Varchar(50)),
            col_default("TRGKYFLG", FLAG, "'N'"),
            col("TRGKYSEQ", Int),
            col("TRGCLDESC", Varchar(500)),
            col("DRVLGC", Text),
            col_default("DRVLGCFLG", FLAG, "'N'"),
            col("EXCSEQ", Int),
            col_default("ISAUDIT", FLAG, "'N'"),
            col("AUDTTYP", Varchar(20)),
            col("DFLTVAL", Varchar(500)),
            col_default("ISRQRD", FLAG, "'N'"),
            col_default("CURFLG", FLAG, "'Y'"),
            col("CRTDBY", NAME),
            col("CRTDT", Timestamp),
            col("UPTDBY", NAME),
            col("UPTDT", Timestamp),
        ],
    },
    Table {
        name: "DMS_FLUPLD_SCHD",
        primary_key: None,
        columns: &[
            col(
                "SCHDID",
                Id {
                    sequence: "DMS_FLUPLD_SCHDSEQ",
                },
            ),
            col_required("FLUPLDREF", Varchar(50)),
            col_required("FRQNCY", Varchar(10)),
            col("TM_PRM", NAME),
            col("NXT_RUN_DT", Timestamp),
            col("LST_RUN_DT", Timestamp),
            col_required("STTS", Varchar(20)),
            col("CRTDBY", NAME),
            col("CRTDT", Timestamp),
            col("UPTDBY", NAME),
            col("UPTDT", Timestamp),
            col_default("CURFLG", FLAG, "'Y'"),
        ],
    },
    Table {
        name: "DMS_FLUPLD_RUN",
        primary_key: None,
        columns: &[
            col(
                "RUNID",
                Id {
                    sequence: "DMS_FLUPLD_RUNSEQ",
                },
            ),
            col_required("FLUPLDREF", Varchar(50)),
            col_required("STRTTM", Timestamp),
            col("NDTM", Timestamp),
            col_default("RWSPRCSSD", Int, "0"),
            col_default("RWSSTCCSSFL", Int, "0"),
            col_default("RWSFLD", Int, "0"),
            col_required("STTS", Varchar(20)),
            col("MSSG", Text),
            col("LDMDE", Varchar(20)),
            col("FLPTH", Text),
            col("CRTDBY", NAME),
            col("CRTDT", Timestamp),
            col("UPTDBY", NAME),
            col("UPTDT", Timestamp),
            col_default("CURFLG", FLAG, "'Y'"),
        ],
    },
    Table {
        name: "DMS_FLUPLD_ERR",
        primary_key: None,
        columns: &[
            col(
                "ERRID",
                Id {
                    sequence: "DMS_FLUPLD_ERRSEQ",
                },
            ),
            col_required("FLUPLDREF", Varchar(50)),
            col_required("RUNID", BigInt),
            col_required("RWNDX", Int),
            col("RWDTJSN", Text),
            col("RRCD", Varchar(50)),
            col_required("RRMSSG", Text),
            col("CRTDBY", NAME),
            col("CRTDT", Timestamp),
        ],
    },
    // Business calendars (SPEC §6): work days, and dated holidays.
    Table {
        name: "DMS_CALENDAR",
        primary_key: Some("CALNM"),
        columns: &[
            col_required("CALNM", NAME),
            col_default("WORKDAYS", Varchar(40), "'MON,TUE,WED,THU,FRI'"),
            col("DESCR", Varchar(400)),
            col("RECCRDT", Timestamp),
            col("RECUPDT", Timestamp),
        ],
    },
    Table {
        name: "DMS_CALDATE",
        primary_key: Some("CALNM, CALDT"),
        columns: &[
            col_required("CALNM", NAME),
            col_required("CALDT", Date),
            col("DESCR", Varchar(400)),
        ],
    },
    Table {
        name: "DMS_SCHVER",
        primary_key: Some("NAME"),
        columns: &[
            col_required("NAME", NAME),
            col_default("VERSION", BigInt, "0"),
        ],
    },
];

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
