//! Configuration (SPEC §5): command-line flag > environment variable > `.env` file >
//! default. A bad value stops with one line that names the flag or variable and the
//! value; a password is never shown.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use dwsched_store::{Backend, redact_url};

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The flag (`--max-workers`) or variable (`SCHEDULER_MAX_WORKERS`) it came from.
    pub name: String,
    /// The value as given, with any password masked.
    pub value: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}='{}': {}", self.name, self.value, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag(&'static str),
    Env(&'static str),
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(flag) => f.write_str(flag),
            Self::Env(var) => f.write_str(var),
            Self::Default => f.write_str("DATABASE_URL (default)"),
        }
    }
}

/// Values given on the command line; `None` where a flag was not given.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub database_url: Option<String>,
    pub schema: Option<String>,
    pub poll_interval: Option<String>,
    pub refresh_interval: Option<String>,
    pub max_workers: Option<String>,
    pub timezone: Option<String>,
    pub node_id: Option<String>,
    pub http: Option<String>,
    pub pid_file: Option<PathBuf>,
}

/// How the log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub database_url_origin: Origin,
    pub backend: Backend,
    pub schema: Option<String>,
    pub poll_interval: Duration,
    pub refresh_interval: Duration,
    pub max_workers: u32,
    /// Claims of one request after which a rescue fails it.
    pub max_attempts: u32,
    pub timezone: Tz,
    pub shutdown_timeout: Duration,
    pub lease: Duration,
    /// How late a slot may be handled and still count as on time (SPEC §6).
    pub misfire_grace: Duration,
    pub http_addr: Option<SocketAddr>,
    pub api_token: Option<String>,
    /// Where alerts are POSTed, and the command that gets them on stdin.
    pub alert_webhook: Option<String>,
    pub alert_command: Option<String>,
    pub log_format: LogFormat,
    pub node_id: Option<String>,
    pub pid_file: Option<PathBuf>,
    /// Where command output is kept, one file per run.
    pub log_dir: PathBuf,
    /// DWTOOL report delivery (SPEC §7.2): the output directory, SMTP, the query limit.
    pub reports: dwsched_service::ReportConfig,
    /// What happens to a DWTOOL upload's file around its run (SPEC §7.3).
    pub upload_files: dwsched_service::uploads::FileLifecycle,
}

impl Settings {
    /// The configuration as log fields, secrets masked.
    pub fn describe(&self) -> String {
        format!(
            "database={} ({}) schema={} poll_interval={}s refresh_interval={}s max_workers={} \
             max_attempts={} timezone={} shutdown_timeout={}s lease={}s misfire_grace={}s http={} \
             api_token={} log_dir={} report_output_dir={} smtp={}:{}",
            redact_url(&self.database_url),
            self.database_url_origin,
            self.schema.as_deref().unwrap_or("(default)"),
            self.poll_interval.as_secs(),
            self.refresh_interval.as_secs(),
            self.max_workers,
            self.max_attempts,
            self.timezone,
            self.shutdown_timeout.as_secs(),
            self.lease.as_secs(),
            self.misfire_grace.as_secs(),
            self.http_addr.map_or("off".to_string(), |a| a.to_string()),
            if self.api_token.is_some() {
                "set"
            } else {
                "unset"
            },
            self.log_dir.display(),
            self.reports.output_dir.display(),
            self.reports.smtp.host,
            self.reports.smtp.port,
        )
    }
}

/// Loads a `.env` file into the environment without overriding variables already set,
/// which gives the environment precedence over the file. An explicit `--env-file` must
/// exist; the default `.env` in the working directory is optional.
pub fn load_env_file(explicit: Option<&Path>) -> Result<(), ConfigError> {
    let (path, required) = match explicit {
        Some(path) => (path.to_path_buf(), true),
        None => (PathBuf::from(".env"), false),
    };
    if !path.exists() {
        if required {
            return Err(ConfigError {
                name: "--env-file".into(),
                value: path.display().to_string(),
                reason: "no such file".into(),
            });
        }
        return Ok(());
    }
    dotenvy::from_path(&path).map_err(|err| ConfigError {
        name: if required { "--env-file" } else { ".env" }.into(),
        value: path.display().to_string(),
        reason: format!("cannot be read: {err}"),
    })
}

/// Reads settings from flags and a variable lookup (the process environment in
/// production, a map in tests).
pub struct Resolver<'a> {
    flags: &'a Flags,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Resolver<'a> {
    pub fn new(flags: &'a Flags, env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { flags, env }
    }

    /// The first of the flag and the variables that is set (and not blank).
    fn lookup(
        &self,
        flag: Option<(&'static str, &Option<String>)>,
        vars: &[&'static str],
    ) -> Option<(Origin, String)> {
        if let Some((name, Some(value))) = flag {
            return Some((Origin::Flag(name), value.clone()));
        }
        vars.iter().find_map(|var| {
            (self.env)(var)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (Origin::Env(var), v))
        })
    }

    /// A whole number from 1 to `max`.
    fn count(
        &self,
        flag: Option<(&'static str, &Option<String>)>,
        var: &'static str,
        default: u32,
        max: u32,
    ) -> Result<u32, ConfigError> {
        match self.lookup(flag, &[var]) {
            None => Ok(default),
            Some((origin, text)) => match text.trim().parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(bad(
                    &origin,
                    &text,
                    &format!("expected a whole number from 1 to {max}"),
                )),
            },
        }
    }

    fn seconds(
        &self,
        flag: Option<(&'static str, &Option<String>)>,
        var: &'static str,
        default: u64,
    ) -> Result<Duration, ConfigError> {
        match self.lookup(flag, &[var]) {
            None => Ok(Duration::from_secs(default)),
            Some((origin, text)) => match text.trim().parse::<u64>() {
                Ok(n) if n >= 1 => Ok(Duration::from_secs(n)),
                _ => Err(bad(
                    &origin,
                    &text,
                    "expected a whole number of seconds, 1 or more",
                )),
            },
        }
    }

    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let f = self.flags;
        let (database_url, database_url_origin) = self.database_url()?;
        let backend = Backend::from_url(&database_url).map_err(|_| {
            bad(
                &database_url_origin,
                &redact_url(&database_url),
                "unknown database; use sqlite://, postgres:// or mysql://",
            )
        })?;
        let schema = match self.lookup(Some(("--schema", &f.schema)), &["SCHEMA", "DMS_SCHEMA"]) {
            None => None,
            Some((origin, name)) if dwsched_model::is_valid_identifier(name.trim()) => {
                let _ = origin;
                Some(name.trim().to_string())
            }
            Some((origin, name)) => {
                return Err(bad(
                    &origin,
                    &name,
                    "not a plain identifier ([A-Za-z_][A-Za-z0-9_$]{0,62})",
                ));
            }
        };
        let max_workers = self.count(
            Some(("--max-workers", &f.max_workers)),
            "SCHEDULER_MAX_WORKERS",
            4,
            1024,
        )?;
        let max_attempts = self.count(None, "SCHEDULER_MAX_ATTEMPTS", 3, 1000)?;
        let timezone = match self.lookup(
            Some(("--timezone", &f.timezone)),
            &["SCHEDULER_TIMEZONE", "DMS_TIMEZONE"],
        ) {
            None => Tz::UTC,
            Some((origin, name)) => name.trim().parse::<Tz>().map_err(|_| {
                bad(
                    &origin,
                    &name,
                    "not an IANA time zone name (such as Europe/London)",
                )
            })?,
        };
        let http_addr =
            match self.lookup(Some(("--http", &f.http)), &["DWSCHED_HTTP_ADDR"]) {
                None => None,
                Some((origin, text)) => Some(text.trim().parse::<SocketAddr>().map_err(|_| {
                    bad(&origin, &text, "expected an address such as 127.0.0.1:8080")
                })?),
            };
        let alert_webhook = match self.lookup(None, &["DWSCHED_ALERT_WEBHOOK"]) {
            None => None,
            Some((origin, text)) => match url::Url::parse(text.trim()) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url.to_string()),
                _ => return Err(bad(&origin, &text, "expected an http:// or https:// URL")),
            },
        };
        let alert_command = self
            .lookup(None, &["DWSCHED_ALERT_COMMAND"])
            .map(|(_, command)| command)
            .filter(|c| !c.trim().is_empty());
        let log_format = match self.lookup(None, &["DWSCHED_LOG_FORMAT"]) {
            None => LogFormat::Text,
            Some((origin, text)) => match text.trim().to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => return Err(bad(&origin, &text, "expected text or json")),
            },
        };
        let node_id = match self.lookup(Some(("--node-id", &f.node_id)), &["DWSCHED_NODE_ID"]) {
            None => None,
            Some((origin, id)) => {
                let id = id.trim().to_string();
                if id.len() > 100 || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(bad(
                        &origin,
                        &id,
                        "expected up to 100 characters without spaces",
                    ));
                }
                Some(id)
            }
        };
        Ok(Settings {
            database_url,
            database_url_origin,
            backend,
            schema,
            poll_interval: self.seconds(
                Some(("--poll-interval", &f.poll_interval)),
                "SCHEDULER_POLL_INTERVAL",
                15,
            )?,
            refresh_interval: self.seconds(
                Some(("--refresh-interval", &f.refresh_interval)),
                "SCHEDULER_REFRESH_INTERVAL",
                60,
            )?,
            max_workers,
            max_attempts,
            timezone,
            shutdown_timeout: self.seconds(None, "SCHEDULER_SHUTDOWN_TIMEOUT", 300)?,
            lease: self.seconds(None, "SCHEDULER_LEASE_SECONDS", 30)?,
            misfire_grace: self.seconds(None, "SCHEDULER_MISFIRE_GRACE", 60)?,
            http_addr,
            api_token: self.lookup(None, &["DWSCHED_API_TOKEN"]).map(|(_, t)| t),
            alert_webhook,
            alert_command,
            log_format,
            node_id,
            pid_file: f.pid_file.clone(),
            log_dir: self.lookup(None, &["DWSCHED_LOG_DIR"]).map_or_else(
                || PathBuf::from("logs"),
                |(_, dir)| PathBuf::from(dir.trim()),
            ),
            reports: self.reports()?,
            upload_files: match self.lookup(None, &["UPLOAD_FILE_LIFECYCLE"]) {
                None => dwsched_service::uploads::FileLifecycle::default(),
                Some((origin, text)) => dwsched_service::uploads::FileLifecycle::parse(&text)
                    .map_err(|reason| bad(&origin, &text, &reason))?,
            },
        })
    }

    /// The report settings: the original's `REPORT_OUTPUT_DIR` and `SMTP_*` variables,
    /// with its defaults, and `REPORT_QUERY_TIMEOUT`.
    fn reports(&self) -> Result<dwsched_service::ReportConfig, ConfigError> {
        let text = |name: &'static str| self.lookup(None, &[name]).map(|(_, v)| v);
        let defaults = dwsched_service::SmtpConfig::default();
        let port = match self.lookup(None, &["SMTP_PORT"]) {
            None => defaults.port,
            Some((origin, value)) => value
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad(&origin, &value, "expected a port number 1..65535"))?,
        };
        let use_tls = match self.lookup(None, &["SMTP_USE_TLS"]) {
            None => defaults.use_tls,
            Some((origin, value)) => match value.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => true,
                "false" | "no" | "0" => false,
                _ => return Err(bad(&origin, &value, "expected true or false")),
            },
        };
        Ok(dwsched_service::ReportConfig {
            output_dir: text("REPORT_OUTPUT_DIR")
                .map_or_else(|| PathBuf::from("reports"), |dir| PathBuf::from(dir.trim())),
            smtp: dwsched_service::SmtpConfig {
                host: text("SMTP_HOST").map_or(defaults.host, |h| h.trim().to_string()),
                port,
                user: text("SMTP_USER"),
                password: text("SMTP_PASSWORD"),
                use_tls,
                from_email: text("SMTP_FROM_EMAIL")
                    .map_or(defaults.from_email, |v| v.trim().to_string()),
                from_name: text("SMTP_FROM_NAME")
                    .map_or(defaults.from_name, |v| v.trim().to_string()),
                timeout: defaults.timeout,
            },
            query_time_limit: self.seconds(None, "REPORT_QUERY_TIMEOUT", 3600)?,
            ..dwsched_service::ReportConfig::default()
        })
    }

    /// `DATABASE_URL`, else a URL built from the original tool's `DB_*` variables,
    /// else the embedded SQLite default.
    fn database_url(&self) -> Result<(String, Origin), ConfigError> {
        if let Some((origin, url)) = self.lookup(
            Some(("--database-url", &self.flags.database_url)),
            &["DATABASE_URL"],
        ) {
            return Ok((url.trim().to_string(), origin));
        }
        let Some((type_origin, db_type)) = self.lookup(None, &["DB_TYPE"]) else {
            return Ok(("sqlite://dwsched.db".to_string(), Origin::Default));
        };
        use dwsched_flow::{DatabaseType, DbKind};
        let (scheme, default_port) = match DatabaseType::from_dbtyp(&db_type).map(|t| t.kind) {
            Some(Some(DbKind::Postgres)) => ("postgres", 5432),
            Some(Some(DbKind::MySql)) => ("mysql", 3306),
            Some(Some(DbKind::Sqlite)) => {
                let (_, path) = self.lookup(None, &["DB_NAME", "DB_SID"]).ok_or_else(|| {
                    missing("DB_NAME", "DB_TYPE=SQLITE needs DB_NAME, the database file")
                })?;
                return Ok((format!("sqlite://{}", path.trim()), type_origin));
            }
            Some(None) => {
                return Err(bad(
                    &type_origin,
                    &db_type,
                    "Oracle is not supported by this build; use POSTGRESQL, MYSQL or SQLITE",
                ));
            }
            None => {
                return Err(bad(
                    &type_origin,
                    &db_type,
                    "expected POSTGRESQL, MYSQL or SQLITE",
                ));
            }
        };
        let (_, host) = self
            .lookup(None, &["DB_HOST"])
            .ok_or_else(|| missing("DB_HOST", "DB_TYPE is set, so DB_HOST is needed"))?;
        let port = match self.lookup(None, &["DB_PORT"]) {
            None => default_port,
            Some((origin, text)) => text
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad(&origin, &text, "expected a port number 1..65535"))?,
        };
        let (_, database) = self.lookup(None, &["DB_NAME", "DB_SID"]).ok_or_else(|| {
            missing(
                "DB_NAME",
                "DB_TYPE is set, so DB_NAME (or DB_SID) is needed",
            )
        })?;
        let mut url = url::Url::parse(&format!("{scheme}://placeholder:{port}/"))
            .map_err(|e| bad(&Origin::Env("DB_HOST"), &host, &e.to_string()))?;
        url.set_host(Some(host.trim())).map_err(|e| {
            bad(
                &Origin::Env("DB_HOST"),
                &host,
                &format!("not a host name: {e}"),
            )
        })?;
        url.set_path(database.trim());
        if let Some((_, user)) = self.lookup(None, &["DB_USER"]) {
            let _ = url.set_username(user.trim());
        }
        if let Some((_, password)) = self.lookup(None, &["DB_PASSWORD"]) {
            let _ = url.set_password(Some(&password));
        }
        Ok((url.to_string(), type_origin))
    }
}

fn bad(origin: &Origin, value: &str, reason: &str) -> ConfigError {
    ConfigError {
        name: origin.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn missing(name: &str, reason: &str) -> ConfigError {
    ConfigError {
        name: name.to_string(),
        value: String::new(),
        reason: reason.to_string(),
    }
}

/// The process environment as a lookup.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A lookup over a fixed map, for tests.
#[cfg(test)]
pub fn map_env(
    vars: std::collections::HashMap<&'static str, &'static str>,
) -> impl Fn(&str) -> Option<String> {
    move |name| vars.get(name).map(|v| v.to_string())
}

/// Every setting `dwsched run` reads, with its variable and default (SPEC §5), for
/// `dwsched run --help`. Precedence: flag > environment > .env file > default.
pub const SETTINGS_HELP: &str = "\
Settings (flag > environment variable > .env file > default):
  DATABASE_URL                    metadata database [sqlite://dwsched.db]; or the original's
                                  DB_TYPE, DB_HOST, DB_PORT, DB_NAME/DB_SID, DB_USER, DB_PASSWORD
  SCHEMA, DMS_SCHEMA              schema (PostgreSQL) or database (MySQL) of the DMS_ tables
  SCHEDULER_POLL_INTERVAL         --poll-interval: seconds between queue polls, a fallback [15]
  SCHEDULER_REFRESH_INTERVAL      --refresh-interval: seconds between schedule syncs [60]
  SCHEDULER_MAX_WORKERS           --max-workers: concurrent runs on this node [4]
  SCHEDULER_TIMEZONE, DMS_TIMEZONE
                                  --timezone: default zone of schedules [UTC]
  SCHEDULER_SHUTDOWN_TIMEOUT      seconds a graceful stop waits for running runs [300]
  SCHEDULER_LEASE_SECONDS         node heartbeat lease [30]
  SCHEDULER_MISFIRE_GRACE         seconds a slot may be late and still be on time [60]
  SCHEDULER_MAX_ATTEMPTS          claims of a request before a rescue fails it [3]
  DWSCHED_NODE_ID                 --node-id: this node's id [the host name]
  DWSCHED_HTTP_ADDR               --http: address of the HTTP API and status page [off]
  DWSCHED_API_TOKEN               bearer token mutating HTTP calls need [unset]
  DWSCHED_LOG_DIR                 where each run's log is kept [logs]
  DWSCHED_ALERT_WEBHOOK           URL that failed runs and disabled schedules are posted to
  DWSCHED_ALERT_COMMAND           command run for each alert, the event as JSON on stdin
  RUST_LOG, DWSCHED_LOG_FORMAT    log filter [info]; text or json [text]
  REPORT_OUTPUT_DIR               where FILE reports go without a path of their own [reports]
  REPORT_QUERY_TIMEOUT            seconds a report's query may run before it is cancelled [3600]
  SMTP_HOST, SMTP_PORT            mail server of EMAIL reports [localhost, 587; 465 = implicit TLS]
  SMTP_USER, SMTP_PASSWORD        its login, used when both are set
  SMTP_USE_TLS                    STARTTLS, required and verified [true]
  SMTP_FROM_EMAIL, SMTP_FROM_NAME sender [reports@example.com, Report System]
  UPLOAD_FILE_LIFECYCLE           DWTOOL upload files: reread, skip-unchanged and/or archive [reread]
";

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(flags: Flags, vars: &[(&'static str, &'static str)]) -> Result<Settings, String> {
        let env = map_env(vars.iter().copied().collect());
        Resolver::new(&flags, &env)
            .resolve()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let s = resolve(Flags::default(), &[]).unwrap();
        assert_eq!(s.database_url, "sqlite://dwsched.db");
        assert_eq!(s.database_url_origin, Origin::Default);
        assert_eq!(s.backend, Backend::Sqlite);
        assert_eq!(s.poll_interval, Duration::from_secs(15));
        assert_eq!(s.refresh_interval, Duration::from_secs(60));
        assert_eq!(s.max_workers, 4);
        assert_eq!(s.max_attempts, 3);
        assert_eq!(s.timezone, Tz::UTC);
        assert_eq!(s.shutdown_timeout, Duration::from_secs(300));
        assert_eq!(s.lease, Duration::from_secs(30));
        assert_eq!(s.misfire_grace, Duration::from_secs(60));
        assert_eq!(
            (s.http_addr, s.api_token.as_deref(), s.schema.as_deref()),
            (None, None, None)
        );
        assert_eq!(s.log_format, LogFormat::Text);
    }

    #[test]
    fn flags_win_over_the_environment() {
        let flags = Flags {
            max_workers: Some("8".into()),
            timezone: Some("Europe/London".into()),
            ..Flags::default()
        };
        let s = resolve(
            flags,
            &[
                ("SCHEDULER_MAX_WORKERS", "2"),
                ("SCHEDULER_TIMEZONE", "Asia/Kolkata"),
                ("SCHEDULER_POLL_INTERVAL", "5"),
            ],
        )
        .unwrap();
        assert_eq!(s.max_workers, 8);
        assert_eq!(s.timezone.name(), "Europe/London");
        assert_eq!(s.poll_interval, Duration::from_secs(5));
    }

    #[test]
    fn aliases_are_read() {
        let s = resolve(
            Flags::default(),
            &[("DMS_SCHEMA", "dwt"), ("DMS_TIMEZONE", "Asia/Kolkata")],
        )
        .unwrap();
        assert_eq!(s.schema.as_deref(), Some("dwt"));
        assert_eq!(s.timezone.name(), "Asia/Kolkata");
        let s = resolve(
            Flags::default(),
            &[("SCHEMA", "main_one"), ("DMS_SCHEMA", "other")],
        )
        .unwrap();
        assert_eq!(s.schema.as_deref(), Some("main_one"));
    }

    #[test]
    fn bad_values_name_the_variable_and_the_value() {
        assert_eq!(
            resolve(Flags::default(), &[("SCHEDULER_MAX_WORKERS", "lots")]).unwrap_err(),
            "SCHEDULER_MAX_WORKERS='lots': expected a whole number from 1 to 1024"
        );
        assert_eq!(
            resolve(Flags::default(), &[("SCHEDULER_TIMEZONE", "Mars/Olympus")]).unwrap_err(),
            "SCHEDULER_TIMEZONE='Mars/Olympus': not an IANA time zone name (such as Europe/London)"
        );
        assert_eq!(
            resolve(
                Flags {
                    poll_interval: Some("0".into()),
                    ..Flags::default()
                },
                &[]
            )
            .unwrap_err(),
            "--poll-interval='0': expected a whole number of seconds, 1 or more"
        );
        assert_eq!(
            resolve(Flags::default(), &[("SCHEMA", "dw; drop")]).unwrap_err(),
            "SCHEMA='dw; drop': not a plain identifier ([A-Za-z_][A-Za-z0-9_$]{0,62})"
        );
        assert_eq!(
            resolve(Flags::default(), &[("DWSCHED_HTTP_ADDR", "localhost")]).unwrap_err(),
            "DWSCHED_HTTP_ADDR='localhost': expected an address such as 127.0.0.1:8080"
        );
        assert_eq!(
            resolve(Flags::default(), &[("SCHEDULER_LEASE_SECONDS", "-3")]).unwrap_err(),
            "SCHEDULER_LEASE_SECONDS='-3': expected a whole number of seconds, 1 or more"
        );
        assert_eq!(
            resolve(Flags::default(), &[("SCHEDULER_MAX_ATTEMPTS", "0")]).unwrap_err(),
            "SCHEDULER_MAX_ATTEMPTS='0': expected a whole number from 1 to 1000"
        );
    }

    #[test]
    fn database_urls_are_checked_and_never_show_a_password() {
        let err = resolve(
            Flags::default(),
            &[("DATABASE_URL", "oracle://scott:tiger@db/orcl")],
        )
        .unwrap_err();
        assert_eq!(
            err,
            "DATABASE_URL='oracle://scott:***@db/orcl': unknown database; use sqlite://, postgres:// or mysql://"
        );
    }

    #[test]
    fn the_original_db_variables_build_a_url() {
        let s = resolve(
            Flags::default(),
            &[
                ("DB_TYPE", "POSTGRESQL"),
                ("DB_HOST", "db.internal"),
                ("DB_NAME", "dw"),
                ("DB_USER", "etl"),
                ("DB_PASSWORD", "p@ss:word"),
            ],
        )
        .unwrap();
        assert_eq!(
            s.database_url,
            "postgres://etl:p%40ss%3Aword@db.internal:5432/dw"
        );
        assert_eq!(s.database_url_origin, Origin::Env("DB_TYPE"));
        assert!(!s.describe().contains("p%40ss"), "{}", s.describe());

        let s = resolve(
            Flags::default(),
            &[
                ("DB_TYPE", "mysql"),
                ("DB_HOST", "h"),
                ("DB_PORT", "3307"),
                ("DB_SID", "legacy"),
            ],
        )
        .unwrap();
        assert_eq!(s.database_url, "mysql://h:3307/legacy");
        // DATABASE_URL wins over the DB_ variables.
        let s = resolve(
            Flags::default(),
            &[("DATABASE_URL", "sqlite://x.db"), ("DB_TYPE", "POSTGRESQL")],
        )
        .unwrap();
        assert_eq!(s.database_url, "sqlite://x.db");

        assert_eq!(
            resolve(Flags::default(), &[("DB_TYPE", "ORACLE")]).unwrap_err(),
            "DB_TYPE='ORACLE': Oracle is not supported by this build; use POSTGRESQL, MYSQL or SQLITE"
        );
        assert_eq!(
            resolve(
                Flags::default(),
                &[("DB_TYPE", "POSTGRESQL"), ("DB_NAME", "dw")]
            )
            .unwrap_err(),
            "DB_HOST='': DB_TYPE is set, so DB_HOST is needed"
        );
        assert_eq!(
            resolve(
                Flags::default(),
                &[
                    ("DB_TYPE", "POSTGRESQL"),
                    ("DB_HOST", "h"),
                    ("DB_PORT", "99999"),
                    ("DB_NAME", "d")
                ]
            )
            .unwrap_err(),
            "DB_PORT='99999': expected a port number 1..65535"
        );
    }
}
