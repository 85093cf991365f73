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
    #[command(after_help = crate::config::SETTINGS_HELP)]
    Run(RunArgs),
    /// Register, inspect, run and retire jobs and their flows
    #[command(subcommand)]
    Job(JobCommand),
    /// Register, list and retire the connections flow steps use
    #[command(subcommand)]
    Conn(ConnCommand),
    /// Add, edit, list, enable, disable, delete and preview schedules
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Business calendars: work days and holidays that schedules skip or move around
    #[command(subcommand)]
    Calendar(CalendarCommand),
    /// Queue a run of a job; prints the request id
    Enqueue {
        /// The job (MAPREF)
        mapref: String,
        #[command(flatten)]
        params: ParamArgs,
        /// Truncate the targets of append loads before the run
        #[arg(long)]
        truncate: bool,
        /// The business date bound as :run_date (YYYY-MM-DD) [default: today in
        /// SCHEDULER_TIMEZONE]
        #[arg(long, value_name = "DATE")]
        run_date: Option<String>,
        /// Run the flow from this step: the steps it depends on are recorded skipped
        /// (SK); the others run as usual
        #[arg(long, value_name = "STEP")]
        from_step: Option<String>,
        /// Wait for the run to end, with progress lines on stderr; exit 1 unless it
        /// ends PC
        #[arg(long)]
        wait: bool,
    },
    /// Queue one run per business date, oldest first; prints the request id
    History {
        /// The job (MAPREF)
        mapref: String,
        /// The first business date (YYYY-MM-DD), included
        #[arg(long, value_name = "DATE")]
        from: String,
        /// The last business date (YYYY-MM-DD), included
        #[arg(long, value_name = "DATE")]
        to: String,
        /// Truncate the targets of append loads once, before the first date
        #[arg(long)]
        truncate: bool,
        /// Go on with the next date after a failed one [default: stop at the first
        /// failure]
        #[arg(long)]
        continue_on_failure: bool,
        /// Wait for the runs, with progress on stderr; exit 1 if the request fails
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        params: ParamArgs,
    },
    /// Stop the running run of a job; prints the request id
    Stop {
        /// The job (MAPREF)
        mapref: String,
        /// Kill its commands at once instead of after 5 s of SIGTERM
        #[arg(long)]
        force: bool,
    },
    /// Cancel a request that has not started
    Cancel {
        /// The request id (DMS_PRCREQ.REQUEST_ID) that enqueue, history or stop printed
        request_id: String,
    },
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
    /// List recent runs, newest first; `runs show PRCID` shows one with its steps
    #[command(args_conflicts_with_subcommands = true)]
    Runs {
        #[command(subcommand)]
        show: Option<RunsCommand>,
        #[command(flatten)]
        filter: RunsFilter,
    },
    /// Print a run's log, or say which node holds it
    Logs {
        /// The run (DMS_PRCLOG.PRCID)
        prcid: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// A run and its steps (DMS_PRCSTEP)
    Show {
        /// The run (DMS_PRCLOG.PRCID)
        prcid: i64,
        /// Print JSON instead of tables
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct RunsFilter {
    /// Only this job's runs
    #[arg(long, value_name = "MAPREF")]
    pub mapref: Option<String>,
    /// Only runs with this status: IP, PC, FL or ST
    #[arg(long, value_name = "S")]
    pub status: Option<String>,
    /// Only runs started within this span before now (90s, 15m, 2h, 7d)
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// How many runs to show, 1 to 10000
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: u32,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
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
    /// The value bound as :param1
    #[arg(long, value_name = "V")]
    pub param1: Option<String>,
    /// The value bound as :param2
    #[arg(long, value_name = "V")]
    pub param2: Option<String>,
    /// The value bound as :param3
    #[arg(long, value_name = "V")]
    pub param3: Option<String>,
    /// The value bound as :param4
    #[arg(long, value_name = "V")]
    pub param4: Option<String>,
    /// The value bound as :param5
    #[arg(long, value_name = "V")]
    pub param5: Option<String>,
    /// The value bound as :param6
    #[arg(long, value_name = "V")]
    pub param6: Option<String>,
    /// The value bound as :param7
    #[arg(long, value_name = "V")]
    pub param7: Option<String>,
    /// The value bound as :param8
    #[arg(long, value_name = "V")]
    pub param8: Option<String>,
    /// The value bound as :param9
    #[arg(long, value_name = "V")]
    pub param9: Option<String>,
    /// The value bound as :param10
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
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum JobCommand {
    /// Register or replace a job's flow (TOML or JSON); every connection it names must
    /// be registered first (`conn put`)
    Put {
        /// The job (MAPREF): letters, digits, `_`, `-` and `.`
        mapref: String,
        /// The flow file: .toml, or .json (SPEC §7)
        #[arg(long, value_name = "FILE")]
        flow: PathBuf,
    },
    /// List the jobs
    List,
    /// Show a job's current flow and schedules
    Show {
        /// The job (MAPREF)
        mapref: String,
    },
    /// Run the job once in the foreground, without a service, recorded like any run;
    /// step lines go to stderr; exit 0 when it ends PC, else 1
    Run {
        /// The job (MAPREF)
        mapref: String,
        /// The business date bound as :run_date (YYYY-MM-DD) [default: today in
        /// SCHEDULER_TIMEZONE]
        #[arg(long, value_name = "DATE")]
        run_date: Option<String>,
        #[command(flatten)]
        params: ParamArgs,
        /// Truncate the targets of append loads before the run
        #[arg(long)]
        truncate: bool,
        /// Run the flow from this step: the steps it depends on are recorded skipped
        #[arg(long, value_name = "STEP")]
        from_step: Option<String>,
    },
    /// Retire the job's flow and DMS_JOB row (CURFLG='N'); refused while enabled
    /// schedules use it
    Delete {
        /// The job (MAPREF)
        mapref: String,
        /// Retire its schedules with it, enabled or not
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DwtoolCommand {
    /// One OK / WARN / FAIL line per mapping job's plan (what dwsched will run, what it
    /// cannot); exit 1 on a FAIL
    Check {
        /// Only this mapping job [default: every one]
        mapref: Option<String>,
    },
    /// The plan of a mapping job, readable
    Show {
        /// The mapping job (MAPREF)
        mapref: String,
    },
    /// Recompute RWHKEY of the current rows from the source, versioning nothing (for
    /// rows whose hashes another driver rendered)
    Rehash {
        /// The mapping job (MAPREF)
        mapref: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConnCommand {
    /// Register or replace a named connection
    Put {
        /// The name flows use (DMS_DBCONDTLS.CONNM)
        name: String,
        /// postgres://user@host:5432/db, mysql://user@host:3306/db or
        /// sqlite:///absolute/path.db (sqlite://relative.db is relative to the
        /// service's working directory)
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
    /// Retire a connection (CURFLG='N'); refused while a current flow uses it
    Delete {
        /// The connection's name (CONNM)
        name: String,
    },
}

/// The rule flags shared by `schedule add` and `schedule preview`.
#[derive(Debug, Args)]
pub struct RuleArgs {
    /// Frequency code: ID (interval), DL (daily), WK (weekly), FN (fortnightly), MN
    /// (monthly), QT (quarterly), HY (half-yearly), YR (yearly), CR (cron) or BD
    /// (business day N of the month)
    #[arg(long, value_name = "CODE")]
    pub frqcd: Option<String>,
    /// Day: MON..SUN for WK and FN; 1..31 or L (last day) for MN, QT, HY and YR;
    /// 1..23, or -1..-23 back from the last, for BD; refused for other codes
    #[arg(long, value_name = "D", allow_negative_numbers = true)]
    pub frqdd: Option<String>,
    /// Hour, 0..23 (for ID: the interval's hours)
    #[arg(long, value_name = "H", allow_negative_numbers = true)]
    pub frqhh: Option<i64>,
    /// Minute, 0..59 (for ID: the interval's minutes)
    #[arg(long, value_name = "M", allow_negative_numbers = true)]
    pub frqmi: Option<i64>,
    /// Cron expression, for --frqcd CR only: 5 fields, or 6 with seconds first
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,
    /// No fire before this time (included): a date, a wall-clock time in the
    /// schedule's zone (2026-03-01 06:00), or RFC 3339
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// No fire after this time (included): a date, a wall-clock time in the
    /// schedule's zone, or RFC 3339
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,
    /// IANA zone of the schedule [default: SCHEDULER_TIMEZONE]
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
    /// The business calendar the schedule follows (`calendar list`); BD counts its
    /// business days [default: none; BD counts Monday to Friday]
    #[arg(long, value_name = "NAME")]
    pub calendar: Option<String>,
    /// What a slot on a day that is not a business day does: skip (default), next
    /// (the next business day, same time) or prev (the previous one)
    #[arg(long, value_name = "RULE")]
    pub on_holiday: Option<String>,
}

/// What `schedule add` and `schedule edit` set beside the rule.
#[derive(Debug, Args)]
pub struct ScheduleExtras {
    /// What a missed slot does: COALESCE (default: one run for all), SKIP or CATCHUP
    #[arg(long, value_name = "POLICY")]
    pub misfire: Option<String>,
    /// Run after this schedule's run succeeds instead of by time
    #[arg(long, value_name = "JOBSCHID", alias = "after")]
    pub depends_on: Option<i64>,
    /// Disable the schedule after this many consecutive failed runs
    #[arg(long, value_name = "N")]
    pub maxfail: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Add a schedule for a job; prints the new JOBSCHID
    Add {
        /// The job (MAPREF)
        mapref: String,
        #[command(flatten)]
        rule: RuleArgs,
        #[command(flatten)]
        extras: ScheduleExtras,
        /// Enable the schedule at once [default: added disabled]
        #[arg(long)]
        enable: bool,
    },
    /// Write a new version of a schedule (new JOBSCHID, the old row CURFLG='N'), with
    /// the fields given changed; prints the new JOBSCHID
    Edit {
        /// The schedule (JOBSCHID)
        jobschid: i64,
        #[command(flatten)]
        rule: RuleArgs,
        #[command(flatten)]
        extras: ScheduleExtras,
    },
    /// List the current schedules
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Enable a schedule
    Enable {
        /// The schedule (JOBSCHID)
        jobschid: i64,
    },
    /// Disable a schedule
    Disable {
        /// The schedule (JOBSCHID)
        jobschid: i64,
    },
    /// Retire a schedule (CURFLG='N'); refused while other schedules run after it
    Delete {
        /// The schedule (JOBSCHID)
        jobschid: i64,
    },
    /// Print the next fires, one RFC 3339 UTC time per line
    Preview {
        /// Preview a stored schedule
        #[arg(long, value_name = "N", conflicts_with_all = ["frqcd", "frqdd", "frqhh", "frqmi", "cron", "start", "end", "calendar", "on_holiday"])]
        jobschid: Option<i64>,
        #[command(flatten)]
        rule: RuleArgs,
        /// Fires strictly after this RFC 3339 time [default: now]
        #[arg(long, value_name = "RFC3339")]
        after: Option<String>,
        /// How many fires to print
        #[arg(long, default_value_t = 5, value_name = "N")]
        count: usize,
        /// Also list the slots the calendar skipped or moved, and why
        #[arg(long)]
        explain: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// Create a calendar, or change its work days and description
    Put {
        /// The calendar's name (CALNM)
        name: String,
        /// Its work days [default: MON,TUE,WED,THU,FRI]
        #[arg(long, value_name = "MON,TUE,..")]
        workdays: Option<String>,
        /// What the calendar is for
        #[arg(long, value_name = "TEXT")]
        descr: Option<String>,
    },
    /// Add or remove a holiday
    #[command(subcommand)]
    Holiday(HolidayCommand),
    /// Add the holidays of an iCalendar file (.ics, all-day events) or a CSV file
    /// (date,description); a malformed file adds nothing
    Import {
        /// The calendar's name (CALNM)
        name: String,
        /// The file
        file: std::path::PathBuf,
    },
    /// List the calendars
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Show a calendar's year as month grids, holidays marked, and its holidays
    Show {
        /// The calendar's name (CALNM)
        name: String,
        /// The year [default: this year]
        #[arg(long, value_name = "YYYY")]
        year: Option<i32>,
        /// Print the calendar and its holidays as JSON instead
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum HolidayCommand {
    /// Add a holiday (a date it has already gets the new description)
    Add {
        /// The calendar's name (CALNM)
        name: String,
        /// The date, YYYY-MM-DD
        date: String,
        /// What the holiday is, shown where a schedule skips or moves a slot
        #[arg(long, value_name = "TEXT")]
        descr: Option<String>,
    },
    /// Remove a holiday
    Remove {
        /// The calendar's name (CALNM)
        name: String,
        /// The date, YYYY-MM-DD
        date: String,
        /// Not used by remove; taken so that add and remove read the same arguments
        #[arg(long, value_name = "TEXT")]
        descr: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// Every argument and flag of every command says what it is.
    #[test]
    fn every_argument_has_a_description() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &format!("{path} {}", sub.get_name()), missing);
                }
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (the command)", sub.get_name()));
                }
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "dwsched", &mut missing);
        assert!(missing.is_empty(), "no description: {missing:#?}");
    }

    #[test]
    fn depends_on_keeps_after_as_a_hidden_alias() {
        use clap::Parser as _;
        let parsed =
            super::Cli::try_parse_from(["dwsched", "schedule", "add", "J", "--after", "7"])
                .unwrap();
        match parsed.command {
            super::Command::Schedule(super::ScheduleCommand::Add { extras, .. }) => {
                assert_eq!(extras.depends_on, Some(7));
            }
            other => panic!("{other:?}"),
        }
        let mut command = super::Cli::command();
        let help = command
            .find_subcommand_mut("schedule")
            .and_then(|s| s.find_subcommand_mut("add"))
            .unwrap()
            .render_help()
            .to_string();
        assert!(help.contains("--depends-on <JOBSCHID>"), "{help}");
        assert!(!help.contains("--after"), "{help}");
    }
}
