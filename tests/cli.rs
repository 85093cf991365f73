//! The command line as users and scripts see it: real `dwsched` processes against each
//! backend, checking stdout, stderr and exit codes.

use std::process::{Command, Output};

use crate::util::TestDb;

crate::per_backend!(
    init_is_idempotent_and_commands_need_it,
    jobs_connections_and_schedules,
    invalid_input_exits_2_with_one_error_line,
    requests_print_their_id_alone,
    doctor_reports_each_check,
    business_calendars_from_the_command_line,
);

/// `doctor`: one line per check, exit 1 when one fails, and a bad setting is a failed
/// check rather than a refusal.
async fn doctor_reports_each_check(db: TestDb) {
    let cli = Cli::new(&db);
    let out = cli.run(&["doctor"]);
    let text = String::from_utf8(out.stdout).unwrap();
    if db.schema.is_some() {
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("not initialised"), "{text}");
        assert!(text.contains("run `dwsched init`"), "{text}");
    }
    cli.ok(&["init"]);
    let out = cli.run(&["doctor"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    for line in [
        "OK    configuration:",
        "OK    database:",
        "OK    schema: version",
        "OK    default zone",
        "WARN  nodes: none is running",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    let plain = cli.dir.join("plain.db");
    std::fs::File::create(&plain).unwrap();
    let plain_url = format!("sqlite://{}", plain.display());
    cli.ok(&[
        "conn",
        "put",
        "plain",
        "--url",
        &plain_url,
        "--password",
        "hunter2",
    ]);
    cli.ok(&[
        "conn",
        "put",
        "ghost",
        "--url",
        "postgres://etl@127.0.0.1:9/dw",
    ]);
    let out = cli.run(&["doctor"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("WARN  connection 'plain' keeps a plain-text password"),
        "{text}"
    );
    assert!(text.contains("OK    connection 'plain'"), "{text}");
    assert!(
        text.contains("FAIL  connection 'ghost' (PostgreSQL at 127.0.0.1:9/dw):"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");

    let out = cli.run(&["doctor", "--timezone-typo"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown flag is still a usage error"
    );
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_dwsched"));
    let out = command
        .args(["doctor", "--database-url", &db.url])
        .env("SCHEDULER_TIMEZONE", "Mars/Olympus")
        .current_dir(&cli.dir)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL  configuration: SCHEDULER_TIMEZONE='Mars/Olympus'"),
        "{text}"
    );
}

fn flow_path(name: &str) -> String {
    format!("{}/examples/flows/{name}", env!("CARGO_MANIFEST_DIR"))
}

struct Cli<'a> {
    db: &'a TestDb,
    dir: std::path::PathBuf,
}

impl<'a> Cli<'a> {
    fn new(db: &'a TestDb) -> Self {
        let dir =
            std::env::temp_dir().join(format!("dwsched-cli-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self { db, dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dwsched"));
        command
            .args(args)
            .arg("--database-url")
            .arg(&self.db.url)
            .current_dir(&self.dir)
            .env_remove("DATABASE_URL")
            .env_remove("SCHEMA")
            .env_remove("DMS_SCHEMA")
            .env_remove("DB_TYPE")
            .env_remove("RUST_LOG");
        if let Some(schema) = &self.db.schema {
            command.arg("--schema").arg(schema);
        }
        command.output().expect("run dwsched")
    }

    /// Runs a command that must succeed, returning its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail with `code`, returning its one stderr line.
    fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8(out.stderr).unwrap();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line expected: {stderr}");
        assert!(lines[0].starts_with("error: "), "{stderr}");
        assert!(
            out.stdout.is_empty(),
            "nothing on stdout: {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
        lines[0].to_string()
    }
}

impl Drop for Cli<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn init_is_idempotent_and_commands_need_it(db: TestDb) {
    let cli = Cli::new(&db);
    if db.schema.is_some() {
        let err = cli.fails(2, &["job", "list"]);
        assert!(err.contains("run `dwsched init`"), "{err}");
    }
    let first = cli.ok(&["init"]);
    assert!(first.contains("schema version none -> 8"), "{first}");
    assert!(first.contains("DMS_PRCREQ"), "{first}");
    let second = cli.ok(&["init"]);
    assert!(second.contains("up to date (schema version 8)"), "{second}");
    let store = db.open_unmigrated().await;
    assert_eq!(
        store.schema_version().await.unwrap(),
        Some(dwsched_store::schema::latest_version())
    );
}

async fn jobs_connections_and_schedules(db: TestDb) {
    let cli = Cli::new(&db);
    cli.ok(&["init"]);
    let put = cli.ok(&["job", "put", "DEMO", "--flow", &flow_path("demo.toml")]);
    assert!(put.contains("job DEMO: flow JOBFLWID"), "{put}");
    cli.ok(&[
        "conn",
        "put",
        "shop",
        "--url",
        "postgres://etl@shop-db:5432/shop",
        "--password",
        "env:SHOP_PW",
    ]);
    cli.ok(&[
        "conn",
        "put",
        "warehouse",
        "--url",
        "postgres://etl:hunter2@dw-db/dw",
    ]);
    let listed = cli.ok(&["conn", "list"]);
    assert!(
        listed.contains("env:SHOP_PW") && listed.contains("(plain text)"),
        "{listed}"
    );
    assert!(
        !listed.contains("hunter2"),
        "passwords are never shown: {listed}"
    );
    cli.ok(&[
        "job",
        "put",
        "SALES",
        "--flow",
        &flow_path("daily_sales.toml"),
    ]);

    let id = cli.ok(&[
        "schedule",
        "add",
        "SALES",
        "--frqcd",
        "WK",
        "--frqdd",
        "mon",
        "--frqhh",
        "6",
        "--timezone",
        "Europe/London",
        "--misfire",
        "skip",
        "--enable",
    ]);
    let id: i64 = id
        .trim()
        .parse()
        .expect("schedule add prints the JOBSCHID alone");
    let child = cli.ok(&[
        "schedule",
        "add",
        "DEMO",
        "--frqcd",
        "DL",
        "--after",
        &id.to_string(),
    ]);
    let child: i64 = child.trim().parse().unwrap();

    let store = db.open_unmigrated().await;
    let row = store.get_schedule(id).await.unwrap().unwrap();
    assert_eq!(row.frqdd.as_deref(), Some("MON"));
    assert_eq!(row.misfire.as_deref(), Some("SKIP"));
    assert!(row.is_scheduled());
    assert!(row.nxt_run_dt.is_some(), "NXT_RUN_DT is kept true");
    assert_eq!(
        row.jobflwid,
        store
            .current_flow("SALES")
            .await
            .unwrap()
            .map(|f| f.jobflwid)
    );
    assert_eq!(
        store
            .get_schedule(child)
            .await
            .unwrap()
            .unwrap()
            .dpnd_jobschid,
        Some(id)
    );

    let jobs = cli.ok(&["job", "list"]);
    assert!(
        jobs.contains("SALES") && jobs.contains("WK MON 06:00 (on)"),
        "{jobs}"
    );
    let show = cli.ok(&["job", "show", "SALES"]);
    assert!(show.contains("\"load_facts\""), "{show}");

    cli.ok(&["schedule", "disable", &id.to_string()]);
    let row = store.get_schedule(id).await.unwrap().unwrap();
    assert!(!row.is_scheduled());
    assert_eq!(row.nxt_run_dt, None, "a disabled schedule has no next fire");
    cli.ok(&["schedule", "enable", &id.to_string()]);
    assert!(
        store
            .get_schedule(id)
            .await
            .unwrap()
            .unwrap()
            .nxt_run_dt
            .is_some()
    );
    let listed = cli.ok(&["schedule", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let preview = cli.ok(&[
        "schedule",
        "preview",
        "--jobschid",
        &id.to_string(),
        "--after",
        "2026-03-25T00:00:00Z",
        "--count",
        "2",
    ]);
    assert_eq!(
        preview, "2026-03-30T05:00:00Z\n2026-04-06T05:00:00Z\n",
        "BST starts on 2026-03-29"
    );
}

async fn invalid_input_exits_2_with_one_error_line(db: TestDb) {
    let cli = Cli::new(&db);
    cli.ok(&["init"]);
    cli.ok(&["job", "put", "DEMO", "--flow", &flow_path("demo.toml")]);
    for command in ["show", "rehash", "check"] {
        let err = cli.fails(2, &["dwtool", command, "NO_SUCH_JOB"]);
        assert_eq!(
            err,
            "error: no job 'NO_SUCH_JOB' (no current DMS_JOB row and no current flow)"
        );
    }
    // A job that is not a mapping job fails its check (exit 1), with the reason.
    let out = cli.run(&["dwtool", "check", "DEMO"]);
    assert_eq!(out.status.code(), Some(1));
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(
        line.starts_with("FAIL DEMO: its current DWLOGIC is not DWTOOL-generated mapping code"),
        "{line}"
    );
    let bad_flow = cli.dir.join("bad.toml");
    std::fs::write(&bad_flow, "[[steps]]\nname = \"x\"\nkind = \"python\"\n").unwrap();
    let err = cli.fails(
        2,
        &["job", "put", "DEMO", "--flow", bad_flow.to_str().unwrap()],
    );
    assert_eq!(
        err,
        "error: flow of job 'DEMO': step 'x', field 'kind': 'python' is not sql, load, mapping or command"
    );
    std::fs::write(&bad_flow, "steps = [").unwrap();
    let err = cli.fails(
        2,
        &["job", "put", "DEMO", "--flow", bad_flow.to_str().unwrap()],
    );
    assert!(
        err.starts_with("error: flow of job 'DEMO': not valid TOML"),
        "{err}"
    );
    cli.fails(2, &["job", "put", "DEMO", "--flow", "/no/such/flow.toml"]);

    let err = cli.fails(2, &["schedule", "add", "DEMO", "--frqcd", "XX"]);
    assert!(err.contains("FRQCD 'XX': unknown code"), "{err}");
    let err = cli.fails(
        2,
        &["schedule", "add", "DEMO", "--frqcd", "MN", "--frqdd", "32"],
    );
    assert!(
        err.contains("FRQDD '32': expected a day 1..31 or L"),
        "{err}"
    );
    let err = cli.fails(
        2,
        &[
            "schedule",
            "add",
            "DEMO",
            "--frqcd",
            "DL",
            "--start",
            "2026-02-01",
            "--end",
            "2026-01-01",
        ],
    );
    assert!(err.contains("is before STRTDT"), "{err}");
    let err = cli.fails(2, &["schedule", "add", "NOPE", "--frqcd", "DL"]);
    assert!(err.contains("job 'NOPE' has no flow"), "{err}");
    let err = cli.fails(2, &["enqueue", "NOPE"]);
    assert!(err.contains("job 'NOPE' does not exist"), "{err}");
    let err = cli.fails(
        2,
        &[
            "history",
            "DEMO",
            "--from",
            "2026-01-02",
            "--to",
            "2026-01-01",
        ],
    );
    assert!(
        err.contains("the end date 2026-01-01 is before the start date 2026-01-02"),
        "{err}"
    );
    let err = cli.fails(2, &["enqueue", "DEMO", "--run-date", "01/02/2026"]);
    assert!(err.contains("--run-date='01/02/2026'"), "{err}");
    let err = cli.fails(2, &["schedule", "enable", "999999"]);
    assert!(err.contains("schedule 999999 does not exist"), "{err}");
    let err = cli.fails(
        2,
        &["schedule", "preview", "--frqcd", "CR", "--cron", "* * *"],
    );
    assert!(err.contains("has 3 fields"), "{err}");

    let mut command = Command::new(env!("CARGO_BIN_EXE_dwsched"));
    let out = command
        .args(["runs", "--database-url", &db.url])
        .env("SCHEDULER_TIMEZONE", "Europe/Lndon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: SCHEDULER_TIMEZONE='Europe/Lndon': not an IANA time zone name (such as Europe/London)"
    );
}

async fn requests_print_their_id_alone(db: TestDb) {
    let cli = Cli::new(&db);
    cli.ok(&["init"]);
    cli.ok(&["job", "put", "DEMO", "--flow", &flow_path("demo.toml")]);
    let id = cli.ok(&[
        "enqueue",
        "DEMO",
        "--param1",
        "EU",
        "--param10",
        "x",
        "--truncate",
        "--run-date",
        "2026-03-01",
    ]);
    let id = id.strip_suffix('\n').expect("one line");
    uuid::Uuid::parse_str(id).expect("stdout holds the request id alone");
    let store = db.open_unmigrated().await;
    let request = store.get_request(id).await.unwrap().unwrap();
    let payload = dwsched_model::RunPayload::parse(request.payload.as_deref()).unwrap();
    assert_eq!(payload.params.params[0].as_deref(), Some("EU"));
    assert_eq!(payload.params.params[9].as_deref(), Some("x"));
    assert!(payload.params.truncate);
    assert_eq!(payload.params.run_date.unwrap().to_string(), "2026-03-01");

    let history = cli.ok(&[
        "history",
        "DEMO",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-03",
    ]);
    let request = store.get_request(history.trim()).await.unwrap().unwrap();
    assert_eq!(request.request_type, dwsched_model::RequestType::History);
    let payload = dwsched_model::HistoryPayload::parse(request.payload.as_deref()).unwrap();
    assert_eq!(payload.dates().count(), 3);

    let stop = cli.ok(&["stop", "DEMO", "--force"]);
    let request = store.get_request(stop.trim()).await.unwrap().unwrap();
    assert_eq!(request.request_type, dwsched_model::RequestType::Stop);
    assert_eq!(request.payload.as_deref(), Some(r#"{"force":"Y"}"#));

    let out = cli.run(&["cancel", id]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    assert_eq!(
        store.get_request(id).await.unwrap().unwrap().status,
        Some(dwsched_model::RequestStatus::Cancelled)
    );
    let err = cli.fails(1, &["cancel", id]);
    assert!(
        err.contains("is CANCELLED and can no longer be cancelled"),
        "{err}"
    );
    cli.fails(2, &["cancel", "no-such-request"]);

    let runs = cli.ok(&["runs", "--json"]);
    assert_eq!(runs.trim(), "[]");
}

/// Calendars as an operator keeps them: created, holidays imported from the
/// published iCalendar file, added and removed, shown; schedules on them previewed with
/// what the calendar did; a malformed file refused whole, naming the line.
async fn business_calendars_from_the_command_line(db: TestDb) {
    let cli = Cli::new(&db);
    cli.ok(&["init"]);
    cli.ok(&["calendar", "put", "ENGLAND", "--descr", "England and Wales"]);
    let ics = format!(
        "{}/examples/calendars/england-and-wales-2026-2027.ics",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = cli.run(&["calendar", "import", "ENGLAND", &ics]);
    assert!(out.status.success());
    let note = String::from_utf8(out.stderr).unwrap();
    assert!(note.contains("16 holidays read"), "{note}");
    assert!(note.contains("16 new"), "{note}");

    // A file with a bad line adds nothing, and says which line.
    let bad = cli.dir.join("bad.csv");
    std::fs::write(
        &bad,
        "date,description\n2027-06-07,Company day\n07/06/2027,Typo\n",
    )
    .unwrap();
    let err = cli.fails(2, &["calendar", "import", "ENGLAND", bad.to_str().unwrap()]);
    assert!(
        err.contains("line 3: '07/06/2027' is not a date (YYYY-MM-DD)"),
        "{err}"
    );
    let shown = cli.ok(&["calendar", "show", "ENGLAND", "--json"]);
    let record: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(record["holidays"].as_array().unwrap().len(), 16);

    cli.ok(&[
        "calendar",
        "holiday",
        "add",
        "ENGLAND",
        "2027-06-07",
        "--descr",
        "Company day",
    ]);
    cli.ok(&["calendar", "holiday", "add", "ENGLAND", "2027-06-08"]);
    cli.ok(&["calendar", "holiday", "remove", "ENGLAND", "2027-06-08"]);
    let err = cli.fails(
        2,
        &["calendar", "holiday", "remove", "ENGLAND", "2027-06-08"],
    );
    assert!(err.contains("has no holiday on 2027-06-08"), "{err}");
    let err = cli.fails(2, &["calendar", "holiday", "add", "NOPE", "2027-06-08"]);
    assert!(err.contains("calendar 'NOPE' does not exist"), "{err}");
    let list = cli.ok(&["calendar", "list"]);
    assert!(list.contains("ENGLAND") && list.contains("17"), "{list}");

    // The year at a glance: 2027 starts on a Friday, a holiday.
    let year = cli.ok(&["calendar", "show", "ENGLAND", "--year", "2027"]);
    assert!(year.contains("January"), "{year}");
    assert!(year.contains(" 1*  2·  3·"), "{year}");
    assert!(year.contains("2027-06-07 Mon Company day"), "{year}");

    // Previews on the calendar: moved and skipped slots, and why.
    let preview = cli.ok(&[
        "schedule",
        "preview",
        "--frqcd",
        "WK",
        "--frqdd",
        "MON",
        "--frqhh",
        "7",
        "--timezone",
        "UTC",
        "--calendar",
        "ENGLAND",
        "--on-holiday",
        "next",
        "--after",
        "2027-03-25T00:00:00Z",
        "--count",
        "2",
        "--explain",
    ]);
    assert_eq!(
        preview,
        "2027-03-30T07:00:00Z  moved from slot 2027-03-29T07:00:00Z: Easter Monday\n\
         2027-04-05T07:00:00Z\n"
    );
    let preview = cli.ok(&[
        "schedule",
        "preview",
        "--frqcd",
        "DL",
        "--frqhh",
        "7",
        "--timezone",
        "UTC",
        "--calendar",
        "ENGLAND",
        "--after",
        "2027-12-24T12:00:00Z",
        "--count",
        "1",
        "--explain",
    ]);
    assert_eq!(
        preview,
        "skipped 2027-12-25T07:00:00Z: weekend\n\
         skipped 2027-12-26T07:00:00Z: weekend\n\
         skipped 2027-12-27T07:00:00Z: Christmas Day (substitute day)\n\
         skipped 2027-12-28T07:00:00Z: Boxing Day (substitute day)\n\
         2027-12-29T07:00:00Z\n"
    );
    let last_business_days = cli.ok(&[
        "schedule",
        "preview",
        "--frqcd",
        "BD",
        "--frqdd",
        "-1",
        "--frqhh",
        "18",
        "--timezone",
        "UTC",
        "--calendar",
        "ENGLAND",
        "--after",
        "2027-08-01T00:00:00Z",
        "--count",
        "2",
    ]);
    assert_eq!(
        last_business_days,
        "2027-08-31T18:00:00Z\n2027-09-30T18:00:00Z\n"
    );

    // Schedules name the calendar; an unknown one or a rule without one is refused.
    cli.ok(&["job", "put", "DEMO", "--flow", &flow_path("demo.toml")]);
    let id = cli.ok(&[
        "schedule",
        "add",
        "DEMO",
        "--frqcd",
        "BD",
        "--frqdd",
        "-1",
        "--frqhh",
        "18",
        "--calendar",
        "ENGLAND",
    ]);
    let list = cli.ok(&["schedule", "list"]);
    assert!(
        list.contains("BD -1 18:00, calendar ENGLAND (skip)"),
        "{list}"
    );
    let err = cli.fails(
        2,
        &[
            "schedule",
            "add",
            "DEMO",
            "--frqcd",
            "DL",
            "--calendar",
            "NOPE",
        ],
    );
    assert!(err.contains("CALNM 'NOPE': no such calendar"), "{err}");
    let err = cli.fails(
        2,
        &[
            "schedule",
            "add",
            "DEMO",
            "--frqcd",
            "DL",
            "--on-holiday",
            "next",
        ],
    );
    assert!(err.contains("needs --calendar"), "{err}");
    let err = cli.fails(
        2,
        &["schedule", "add", "DEMO", "--frqcd", "BD", "--frqdd", "0"],
    );
    assert!(err.contains("FRQDD '0'"), "{err}");
    let edited = cli.ok(&["schedule", "edit", id.trim(), "--on-holiday", "prev"]);
    let list = cli.ok(&["schedule", "list"]);
    assert!(list.contains("calendar ENGLAND (prev)"), "{list}");
    assert_ne!(edited.trim(), id.trim());
    // An empty name drops the calendar and its rule; a rule alone is refused.
    let plain = cli.ok(&["schedule", "edit", edited.trim(), "--calendar", ""]);
    let list = cli.ok(&["schedule", "list"]);
    assert!(
        list.contains("BD -1 18:00 ") && !list.contains("calendar ENGLAND"),
        "{list}"
    );
    let err = cli.fails(
        2,
        &["schedule", "edit", plain.trim(), "--on-holiday", "next"],
    );
    assert!(err.contains("needs --calendar"), "{err}");

    // A calendar with nothing in the coming year is a doctor's warning.
    cli.ok(&["calendar", "put", "EMPTY"]);
    let out = cli.run(&["doctor"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("WARN  calendar EMPTY: no holidays from"),
        "{text}"
    );
}
