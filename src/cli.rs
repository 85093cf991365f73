//! The command line of SPEC §8.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "dwsched",
    version,
    about = "Scheduler service for data-warehouse ETL job flows",
    propagate_version = true
)]
pub struct Cli {
    /// Metadata database URL [env: DATABASE_URL] [default: sqlite://dwsched.db]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Schema (PostgreSQL) or database (MySQL) of the DMS_ tables [env: SCHEMA]
    #[arg(long, global = true, value_name = "NAME")]
    pub schema: Option<String>,
    /// Read variables from this file instead of ./.env
    #[arg(long, global = true, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or upgrade the tables (idempotent)
    Init,
    /// Run the scheduler service in the foreground, until SIGINT or SIGTERM
    Run(RunArgs),
    /// Register and inspect jobs and their flows
    #[command(subcommand)]
    Job(JobCommand),
    /// Register and list the connections flow steps use
    #[command(subcommand)]
    Conn(ConnCommand),
    /// Add, list, enable, disable and preview schedules
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Queue a run of a job; prints the request id
    Enqueue {
        mapref: String,
        #[command(flatten)]
        params: ParamArgs,
        /// Truncate the targets of append loads before the run
        #[arg(long)]
        truncate: bool,
        /// The business date bound as :run_date (YYYY-MM-DD)
        #[arg(long, value_name = "DATE")]
        run_date: Option<String>,
    },
    /// Queue one run per business date, oldest first; prints the request id
    History {
        mapref: String,
        #[arg(long, value_name = "DATE")]
        from: String,
        #[arg(long, value_name = "DATE")]
        to: String,
        /// Truncate the targets of append loads once, before the first date
        #[arg(long)]
        truncate: bool,
        /// Wait for the runs, with a progress bar over the dates on stderr; exit 1 if
        /// the request fails
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        params: ParamArgs,
    },
    /// Stop the running run of a job; prints the request id
    Stop {
        mapref: String,
        #[arg(long)]
        force: bool,
    },
    /// Cancel a request that has not started
    Cancel { request_id: String },
    /// Check the configuration, database, schema, zone, connections, schedules and nodes
    Doctor,
    /// Live nodes, queue depth, runs in progress, recent runs, next fires, error rate
    Status {
        /// Print JSON instead of tables
        #[arg(long)]
        json: bool,
        /// Recent runs and next fires to show
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
    /// DWTOOL mapping jobs: check their plans before switching over, show one, realign
    /// row hashes
    #[command(subcommand)]
    Dwtool(DwtoolCommand),
    /// List recent runs, newest first
    Runs {
        #[arg(long)]
        mapref: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Seconds between queue polls, the fallback to notifications [env: SCHEDULER_POLL_INTERVAL]
    #[arg(long, value_name = "S")]
    pub poll_interval: Option<String>,
    /// Seconds between full schedule syncs [env: SCHEDULER_REFRESH_INTERVAL]
    #[arg(long, value_name = "S")]
    pub refresh_interval: Option<String>,
    /// Concurrent runs on this node [env: SCHEDULER_MAX_WORKERS]
    #[arg(long, value_name = "N")]
    pub max_workers: Option<String>,
    /// Default zone of schedules [env: SCHEDULER_TIMEZONE]
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
    /// This node's id [env: DWSCHED_NODE_ID] [default: the host name]
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
    /// Serve the HTTP API on this address [env: DWSCHED_HTTP_ADDR]
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Write the process id to this file while running
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// Create a demo job (DEMO) that runs every 10 seconds, if it does not exist
    #[arg(long)]
    pub demo: bool,
}

#[derive(Debug, Args, Default)]
pub struct ParamArgs {
    #[arg(long, value_name = "V")]
    pub param1: Option<String>,
    #[arg(long, value_name = "V")]
    pub param2: Option<String>,
    #[arg(long, value_name = "V")]
    pub param3: Option<String>,
    #[arg(long, value_name = "V")]
    pub param4: Option<String>,
    #[arg(long, value_name = "V")]
    pub param5: Option<String>,
    #[arg(long, value_name = "V")]
    pub param6: Option<String>,
    #[arg(long, value_name = "V")]
    pub param7: Option<String>,
    #[arg(long, value_name = "V")]
    pub param8: Option<String>,
    #[arg(long, value_name = "V")]
    pub param9: Option<String>,
    #[arg(long, value_name = "V")]
    pub param10: Option<String>,
}

impl ParamArgs {
    pub fn into_array(self) -> [Option<String>; 10] {
        [
            self.param1,
            self.param2,
            self.param3,
            self.param4,
            self.param5,
            self.param6,
            self.param7,
            self.param8,
            self.param9,
            self.param10,
        ]
    }
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Register or replace a job's flow (TOML or JSON)
    Put {
        mapref: String,
        #[arg(long, value_name = "FILE")]
        flow: PathBuf,
    },
    /// List the jobs
    List,
    /// Show a job's current flow and schedules
    Show { mapref: String },
}

#[derive(Debug, Subcommand)]
pub enum DwtoolCommand {
    /// One OK / WARN / FAIL line per mapping job's plan (what dwsched will run, what it
    /// cannot); exit 1 on a FAIL
    Check { mapref: Option<String> },
    /// The plan of a mapping job, readable
    Show { mapref: String },
    /// Recompute RWHKEY of the current rows from the source, versioning nothing (for
    /// rows whose hashes another driver rendered)
    Rehash { mapref: String },
}

#[derive(Debug, Subcommand)]
pub enum ConnCommand {
    /// Register or replace a named connection
    Put {
        name: String,
        #[arg(long, value_name = "URL")]
        url: String,
        /// The password, or env:NAME to read it from a variable at run time
        #[arg(long, value_name = "PASSWORD")]
        password: Option<String>,
        /// Default schema of the connection's statements (PostgreSQL search_path; the
        /// database on MySQL when the URL names none)
        #[arg(long, value_name = "SCHEMA")]
        default_schema: Option<String>,
    },
    /// List the connections (passwords are never shown)
    List,
}

/// The rule flags shared by `schedule add` and `schedule preview`.
#[derive(Debug, Args)]
pub struct RuleArgs {
    /// Frequency code: ID, DL, WK, FN, MN, QT, HY, YR or CR
    #[arg(long, value_name = "CODE")]
    pub frqcd: Option<String>,
    /// Day: MON..SUN for WK/FN, 1..31 or L for MN/QT/HY/YR
    #[arg(long, value_name = "D")]
    pub frqdd: Option<String>,
    /// Hour (or interval hours for ID)
    #[arg(long, value_name = "H", allow_negative_numbers = true)]
    pub frqhh: Option<i64>,
    /// Minute (or interval minutes for ID)
    #[arg(long, value_name = "M", allow_negative_numbers = true)]
    pub frqmi: Option<i64>,
    /// Cron expression for CR: 5 fields, or 6 with seconds first
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,
    /// First time a fire may have: a date, a wall-clock time, or RFC 3339
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Last time a fire may have: a date, a wall-clock time, or RFC 3339
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// IANA zone of the schedule [default: SCHEDULER_TIMEZONE]
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Add a schedule for a job; prints the new JOBSCHID
    Add {
        mapref: String,
        #[command(flatten)]
        rule: RuleArgs,
        /// COALESCE (default), SKIP or CATCHUP
        #[arg(long, value_name = "POLICY")]
        misfire: Option<String>,
        /// Run after this schedule's run succeeds instead of by time
        #[arg(long, value_name = "JOBSCHID")]
        after: Option<i64>,
        /// Disable the schedule after this many consecutive failed runs
        #[arg(long, value_name = "N")]
        maxfail: Option<i64>,
        /// Enable the schedule at once
        #[arg(long)]
        enable: bool,
    },
    /// List the current schedules
    List {
        #[arg(long)]
        json: bool,
    },
    /// Enable a schedule
    Enable { jobschid: i64 },
    /// Disable a schedule
    Disable { jobschid: i64 },
    /// Print the next fires, one RFC 3339 UTC time per line
    Preview {
        /// Preview a stored schedule
        #[arg(long, value_name = "N", conflicts_with_all = ["frqcd", "frqdd", "frqhh", "frqmi", "cron", "start", "end"])]
        jobschid: Option<i64>,
        #[command(flatten)]
        rule: RuleArgs,
        /// Fires strictly after this RFC 3339 time [default: now]
        #[arg(long, value_name = "RFC3339")]
        after: Option<String>,
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
}
