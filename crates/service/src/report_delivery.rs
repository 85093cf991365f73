//! Where a report's file goes (SPEC §7.2): a path on disk (`FILE`), written atomically,
//! or an e-mail attachment (`EMAIL`), sent with the original's `SMTP_*` settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dwsched_report::Format;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How reports are delivered, and how long their queries may run.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// `REPORT_OUTPUT_DIR`: where `FILE` reports go when the request gives no path.
    pub output_dir: PathBuf,
    pub smtp: SmtpConfig,
    /// `REPORT_QUERY_TIMEOUT`: a report's query is cancelled after this long.
    pub query_time_limit: Duration,
    /// The metadata database, where a report with no connection of its own runs.
    pub metadata_url: String,
    pub metadata_schema: Option<String>,
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self {
            output_dir: PathBuf::from("reports"),
            smtp: SmtpConfig::default(),
            query_time_limit: Duration::from_secs(3600),
            metadata_url: "sqlite://dwsched.db".into(),
            metadata_schema: None,
        }
    }
}

/// The original's `SMTP_*` variables (SPEC §5).
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    /// STARTTLS, required and verified (port 465 is implicit TLS whatever this says).
    pub use_tls: bool,
    pub from_email: String,
    pub from_name: String,
    /// Connecting; a whole exchange may take five times this.
    pub timeout: Duration,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: 587,
            user: None,
            password: None,
            use_tls: true,
            from_email: "reports@example.com".into(),
            from_name: "Report System".into(),
            timeout: Duration::from_secs(60),
        }
    }
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("use_tls", &self.use_tls)
            .field("from_email", &self.from_email)
            .finish()
    }
}

/// The file name the original gives a report: its name with every character but
/// letters, digits, `-` and `_` as `_`, then the time and the format's extension.
pub(crate) fn report_file_name(
    report_name: &str,
    at: chrono::NaiveDateTime,
    format: Format,
) -> String {
    let safe: String = report_name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{safe}_{}.{}",
        at.format("%Y%m%d_%H%M%S"),
        format.extension()
    )
}

/// Where a `FILE` report is written: `file_path` itself when it has an extension, else
/// `file_path` as a directory, else the output directory, with `file_name` in it; made
/// absolute against the working directory.
pub(crate) fn report_path(file_path: Option<&str>, output_dir: &Path, file_name: &str) -> PathBuf {
    let path = match file_path.map(str::trim).filter(|p| !p.is_empty()) {
        Some(given) if has_extension(given) => PathBuf::from(given),
        Some(directory) => Path::new(directory).join(file_name),
        None => output_dir.join(file_name),
    };
    std::path::absolute(&path).unwrap_or(path)
}

/// Python's `os.path.splitext(path)[1] != ''`: the last component has a dot that is
/// neither its first character nor its last.
fn has_extension(path: &str) -> bool {
    let last = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let name = last.trim_start_matches('.');
    name.rfind('.').is_some_and(|dot| dot + 1 < name.len())
}

/// The temporary file a report is written to before it is delivered: in the target's
/// directory for `FILE` (so that the rename that delivers it is atomic), else in the
/// system's temporary directory.
pub(crate) fn temporary_file(beside: Option<&Path>) -> Result<tempfile::NamedTempFile, String> {
    match beside {
        Some(path) => {
            let directory = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(directory)
                .map_err(|e| format!("cannot create the directory {}: {e}", directory.display()))?;
            tempfile::Builder::new()
                .prefix(".dwsched-report-")
                .tempfile_in(directory)
                .map_err(|e| format!("cannot write in {}: {e}", directory.display()))
        }
        None => tempfile::Builder::new()
            .prefix("dwsched-report-")
            .tempfile()
            .map_err(|e| format!("cannot create a temporary file: {e}")),
    }
}

/// Puts the finished file at `path`, replacing a file of that name.
pub(crate) fn deliver_file(file: tempfile::NamedTempFile, path: &Path) -> Result<(), String> {
    file.persist(path)
        .map(|_| ())
        .map_err(|e| format!("cannot write the report to {}: {}", path.display(), e.error))
}

/// What an e-mail carries.
pub(crate) struct ReportMail<'a> {
    pub report_name: &'a str,
    /// `EMAL_TO` as written: comma-separated addresses.
    pub recipients: &'a str,
    pub file_name: &'a str,
    pub format: Format,
    pub rows: u64,
    pub generated_at: chrono::NaiveDateTime,
}

/// Sends the report at `file` by e-mail: the original's subject and text, the file as
/// an attachment of its format's MIME type.
pub(crate) async fn send_report(
    smtp: &SmtpConfig,
    mail: &ReportMail<'_>,
    file: &Path,
) -> Result<(), String> {
    let fail = |cause: String| format!("Failed to send email: {cause}");
    let from: Mailbox = format!("{} <{}>", smtp.from_name, smtp.from_email)
        .parse()
        .or_else(|_| smtp.from_email.parse())
        .map_err(|e| fail(format!("SMTP_FROM_EMAIL '{}': {e}", smtp.from_email)))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(format!("Report: {}", mail.report_name));
    let mut count = 0;
    for address in mail
        .recipients
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        let to: Mailbox = address
            .parse()
            .map_err(|e| fail(format!("recipient '{address}': {e}")))?;
        builder = builder.to(to);
        count += 1;
    }
    if count == 0 {
        return Err("Email address is required for EMAIL destination".into());
    }
    let body = format!(
        "Please find attached the report '{}' generated on {}.\n\nRows: {}",
        mail.report_name,
        mail.generated_at.format("%Y-%m-%d %H:%M:%S"),
        mail.rows
    );
    let content = tokio::fs::read(file)
        .await
        .map_err(|e| fail(format!("cannot read the report file: {e}")))?;
    let content_type =
        ContentType::parse(mail.format.mime_type()).map_err(|e| fail(format!("MIME type: {e}")))?;
    let message = builder
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(body))
                .singlepart(
                    Attachment::new(mail.file_name.to_string()).body(content, content_type),
                ),
        )
        .map_err(|e| fail(e.to_string()))?;
    let transport = smtp_transport(smtp).map_err(fail)?;
    // The transport bounds the connect only (a tokio stream has no read or write
    // timeout), so the whole exchange has a deadline too.
    let deadline = smtp.timeout * SEND_TIMEOUTS;
    match tokio::time::timeout(deadline, transport.send(message)).await {
        Ok(sent) => sent.map(|_| ()).map_err(|e| fail(smtp_error(&e))),
        Err(_) => Err(fail(format!(
            "no answer from {}:{} within {} s",
            smtp.host,
            smtp.port,
            deadline.as_secs()
        ))),
    }
}

/// A whole SMTP exchange may take this many connect timeouts (the attachment's upload
/// included).
const SEND_TIMEOUTS: u32 = 5;

/// The SMTP connection the settings describe: implicit TLS on port 465, else STARTTLS
/// required when `SMTP_USE_TLS`, else plain; certificates verified against the
/// system's roots; credentials only when both user and password are set.
fn smtp_transport(smtp: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    // lettre's rustls is built without a default provider; ring is this build's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls =
        || TlsParameters::new(smtp.host.clone()).map_err(|e| format!("TLS for {}: {e}", smtp.host));
    let tls = if smtp.port == 465 {
        Tls::Wrapper(tls()?)
    } else if smtp.use_tls {
        Tls::Required(tls()?)
    } else {
        Tls::None
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(smtp.timeout));
    if let (Some(user), Some(password)) = (&smtp.user, &smtp.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

/// An SMTP error with its causes: lettre's own text is often only "network error".
fn smtp_error(err: &lettre::transport::smtp::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    /// An SMTP server that offers no STARTTLS (`greet`), or that accepts connections
    /// and never says a word.
    async fn server(greet: bool) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    if !greet {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                    let _ = write.write_all(b"220 plain ESMTP\r\n").await;
                    let mut lines = BufReader::new(read).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let reply: &[u8] = if line.to_ascii_uppercase().starts_with("EHLO") {
                            b"250-plain\r\n250 8BITMIME\r\n"
                        } else if line.to_ascii_uppercase().starts_with("QUIT") {
                            b"221 bye\r\n"
                        } else {
                            b"250 OK\r\n"
                        };
                        if write.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    async fn send(port: u16, use_tls: bool, timeout: Duration) -> Result<(), String> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "a,b\r\n1,2\r\n").unwrap();
        let smtp = SmtpConfig {
            host: "localhost".into(),
            port,
            use_tls,
            timeout,
            ..SmtpConfig::default()
        };
        let mail = ReportMail {
            report_name: "Daily Sales",
            recipients: "ops@example.com",
            file_name: "Daily_Sales_20260301_063000.csv",
            format: Format::Csv,
            rows: 1,
            generated_at: chrono::NaiveDate::from_ymd_opt(2026, 3, 1)
                .unwrap()
                .and_hms_opt(6, 30, 0)
                .unwrap(),
        };
        send_report(&smtp, &mail, file.path()).await
    }

    #[tokio::test]
    async fn starttls_is_required_unless_turned_off() {
        let port = server(true).await;
        let refused = send(port, true, Duration::from_secs(10)).await.unwrap_err();
        assert!(refused.starts_with("Failed to send email"), "{refused}");
        assert!(refused.to_lowercase().contains("tls"), "{refused}");
        // The same server in clear, as SMTP_USE_TLS=false asks.
        send(port, false, Duration::from_secs(10)).await.unwrap();
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let port = server(false).await;
        let started = std::time::Instant::now();
        let err = send(port, false, Duration::from_secs(1)).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
        assert!(err.contains("no answer"), "{err}");
        assert!(err.starts_with("Failed to send email"), "{err}");
    }

    #[test]
    fn file_names_and_paths_follow_the_original() {
        let at = chrono::NaiveDate::from_ymd_opt(2025, 12, 11)
            .unwrap()
            .and_hms_opt(21, 9, 46)
            .unwrap();
        assert_eq!(
            report_file_name("Sales / Zürich (daily)", at, Format::Json),
            "Sales___Zürich__daily__20251211_210946.json"
        );
        let name = "r_20251211_210946.csv";
        let out = Path::new("/srv/out");
        assert_eq!(
            report_path(Some("/data/exports/sales.csv"), out, name),
            PathBuf::from("/data/exports/sales.csv")
        );
        assert_eq!(
            report_path(Some("/data/exports"), out, name),
            PathBuf::from("/data/exports/r_20251211_210946.csv")
        );
        assert_eq!(
            report_path(Some("  "), out, name),
            PathBuf::from("/srv/out/r_20251211_210946.csv")
        );
        assert!(report_path(None, Path::new("reports"), name).is_absolute());
        // As Python's splitext: a leading dot is not an extension, nor a trailing one.
        assert!(!has_extension("/data/.hidden"));
        assert!(!has_extension("/data/dir."));
        assert!(has_extension("C:\\temp\\test3.json"));
        assert!(!has_extension("/data.d/exports"));
    }
}
