//! Request payloads (SPEC §4): parsed from the JSON text in `DMS_PRCREQ.PAYLOAD` into
//! typed values, with an error that names the key and the value when they are wrong.
//!
//! Payloads are written by many tools, so reading is lenient where the meaning is clear
//! (numbers as parameters, `true` as a truncate flag, a nested `params` object) and
//! strict where a guess could run the wrong thing (a malformed date).

use chrono::NaiveDate;
use serde_json::{Map, Value, json};
use thiserror::Error;

use crate::PARAM_COUNT;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("payload is not valid JSON: {0}")]
    NotJson(String),
    #[error("payload must be a JSON object, not {0}")]
    NotObject(&'static str),
    #[error("payload key '{key}' has value {value}: {reason}")]
    BadValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("payload key '{0}' is required")]
    Missing(&'static str),
    #[error("payload key '{key}' is not known; the keys are {known}")]
    UnknownKey { key: String, known: String },
}

fn bad(key: &str, value: &Value, reason: impl Into<String>) -> PayloadError {
    PayloadError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Parses payload text into an object. An empty or missing payload is `{}`.
fn parse_object(text: Option<&str>) -> Result<Map<String, Value>, PayloadError> {
    let text = text.map(str::trim).unwrap_or("");
    if text.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => Err(PayloadError::NotObject(json_kind(&other))),
        Err(err) => Err(PayloadError::NotJson(err.to_string())),
    }
}

/// The keys of the run parameters, shared by `IMMEDIATE` and `HISTORY` payloads.
const PARAM_KEYS: [&str; PARAM_COUNT] = [
    "param1", "param2", "param3", "param4", "param5", "param6", "param7", "param8", "param9",
    "param10",
];

/// Refuses a key outside `known` (the parameter keys in either case, and a nested
/// `params` object of them, are always known). Rows other tools write are read
/// leniently; what users send to the HTTP API is checked with this, so that a typo
/// such as `rundate` is an error rather than a run with today's date.
fn refuse_unknown_keys(map: &Map<String, Value>, known: &[&str]) -> Result<(), PayloadError> {
    let is_param = |key: &str| PARAM_KEYS.contains(&key.to_ascii_lowercase().as_str());
    let unknown = |key: &str| {
        let mut listed: Vec<&str> = known.to_vec();
        listed.extend(["param1..param10", "params"]);
        PayloadError::UnknownKey {
            key: key.to_string(),
            known: listed.join(", "),
        }
    };
    for (key, value) in map {
        if key == "params" {
            if let Value::Object(inner) = value
                && let Some(bad_key) = inner.keys().find(|k| !is_param(k))
            {
                return Err(unknown(&format!("params.{bad_key}")));
            }
            continue;
        }
        if !is_param(key) && !known.contains(&key.as_str()) {
            return Err(unknown(key));
        }
    }
    Ok(())
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The parameters every run carries: `param1`..`param10`, the truncate flag and the
/// business date.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunParams {
    pub params: [Option<String>; PARAM_COUNT],
    pub truncate: bool,
    pub run_date: Option<NaiveDate>,
}

impl RunParams {
    /// The `PRCLOG` text of a run: `param1=… | param2=…`, naming the parameters set.
    pub fn prclog_text(&self) -> String {
        self.params
            .iter()
            .enumerate()
            .filter_map(|(i, value)| value.as_ref().map(|v| format!("param{}={v}", i + 1)))
            .collect::<Vec<_>>()
            .join(" | ")
    }

    fn read(map: &Map<String, Value>) -> Result<Self, PayloadError> {
        let mut out = RunParams::default();
        // A nested `params` object is read first so that top-level keys win.
        if let Some(nested) = map.get("params") {
            match nested {
                Value::Object(inner) => out.read_params(inner)?,
                Value::Null => {}
                other => return Err(bad("params", other, "expected an object")),
            }
        }
        out.read_params(map)?;
        if let Some(value) = map.get("truncate_flag") {
            out.truncate = read_flag("truncate_flag", value)?;
        }
        if let Some(value) = map.get("run_date") {
            out.run_date = read_optional_date("run_date", value)?;
        }
        Ok(out)
    }

    fn read_params(&mut self, map: &Map<String, Value>) -> Result<(), PayloadError> {
        for (i, slot) in self.params.iter_mut().enumerate() {
            let key = format!("param{}", i + 1);
            let value = map.get(&key).or_else(|| map.get(&key.to_ascii_uppercase()));
            match value {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => *slot = Some(s.clone()),
                Some(Value::Number(n)) => *slot = Some(n.to_string()),
                Some(Value::Bool(b)) => *slot = Some(b.to_string()),
                Some(other) => return Err(bad(&key, other, "expected a string or a number")),
            }
        }
        Ok(())
    }

    fn write(&self, map: &mut Map<String, Value>) {
        for (i, value) in self.params.iter().enumerate() {
            if let Some(v) = value {
                map.insert(format!("param{}", i + 1), json!(v));
            }
        }
        if self.truncate {
            map.insert("truncate_flag".into(), json!("Y"));
        }
        if let Some(date) = self.run_date {
            map.insert("run_date".into(), json!(date.to_string()));
        }
    }
}

fn read_flag(key: &str, value: &Value) -> Result<bool, PayloadError> {
    match value {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.trim().to_ascii_uppercase().as_str() {
            "Y" | "YES" | "TRUE" | "1" => Ok(true),
            "N" | "NO" | "FALSE" | "0" | "" => Ok(false),
            _ => Err(bad(key, value, "expected 'Y' or 'N'")),
        },
        other => Err(bad(key, other, "expected 'Y' or 'N'")),
    }
}

fn read_optional_date(key: &str, value: &Value) -> Result<Option<NaiveDate>, PayloadError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => parse_business_date(s)
            .map(Some)
            .map_err(|reason| bad(key, value, reason)),
        other => Err(bad(key, other, "expected a date as 'YYYY-MM-DD'")),
    }
}

fn read_date(map: &Map<String, Value>, key: &'static str) -> Result<NaiveDate, PayloadError> {
    match map.get(key) {
        None => Err(PayloadError::Missing(key)),
        Some(value) => read_optional_date(key, value)?.ok_or(PayloadError::Missing(key)),
    }
}

/// Parses a business date, `YYYY-MM-DD`. A timestamp whose date part is such a date is
/// accepted too, as older tools wrote them that way.
pub fn parse_business_date(text: &str) -> Result<NaiveDate, String> {
    let text = text.trim();
    let date_part = text.get(..10).unwrap_or(text);
    NaiveDate::parse_from_str(date_part, "%Y-%m-%d")
        .ok()
        .filter(|_| text.len() == 10 || text[10..].starts_with(['T', ' ']))
        .ok_or_else(|| format!("'{text}' is not a date as YYYY-MM-DD"))
}

/// What made the service queue a run by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A schedule's slot came: `{"source":"schedule","jobschid":N,"slot":"…"}`, with
    /// `"fire":"…"` when a business calendar moved the fire off its slot.
    Schedule {
        jobschid: i64,
        slot: String,
        fire: Option<String>,
    },
    /// The parent's run succeeded: `{"source":"dependency","jobschid":N,"parent_prcid":P}`.
    Dependency { jobschid: i64, parent_prcid: i64 },
}

impl Trigger {
    /// The schedule whose run this is.
    pub fn jobschid(&self) -> i64 {
        match self {
            Self::Schedule { jobschid, .. } | Self::Dependency { jobschid, .. } => *jobschid,
        }
    }
}

/// The payload of an `IMMEDIATE` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunPayload {
    pub params: RunParams,
    /// Set when the service queued the run: a schedule fire or a dependency.
    pub trigger: Option<Trigger>,
    /// Run the flow from this step: the steps it depends on are recorded skipped.
    pub from_step: Option<String>,
}

fn read_id(map: &Map<String, Value>, key: &'static str) -> Result<i64, PayloadError> {
    match map.get(key) {
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or_default()),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
            Ok(s.trim().parse().unwrap_or_default())
        }
        Some(other) => Err(bad(key, other, "expected a whole number")),
        None => Err(PayloadError::Missing(key)),
    }
}

impl RunPayload {
    /// The keys a user may send (the HTTP API refuses others).
    pub const USER_KEYS: &[&str] = &["truncate_flag", "run_date", "from_step"];

    /// Parses what a user sent: as [`RunPayload::parse`], refusing unknown keys and the
    /// keys only the service writes.
    pub fn parse_strict(text: Option<&str>) -> Result<Self, PayloadError> {
        refuse_unknown_keys(&parse_object(text)?, Self::USER_KEYS)?;
        Self::parse(text)
    }

    pub fn parse(text: Option<&str>) -> Result<Self, PayloadError> {
        let map = parse_object(text)?;
        let params = RunParams::read(&map)?;
        let from_step = match map.get("from_step") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(other) => return Err(bad("from_step", other, "expected a step name")),
        };
        let trigger = match map.get("source").and_then(Value::as_str) {
            Some("schedule") => Some(Trigger::Schedule {
                jobschid: read_id(&map, "jobschid")?,
                slot: match map.get("slot") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => return Err(bad("slot", other, "expected an RFC 3339 time")),
                    None => return Err(PayloadError::Missing("slot")),
                },
                fire: match map.get("fire") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(other) => return Err(bad("fire", other, "expected an RFC 3339 time")),
                },
            }),
            Some("dependency") => Some(Trigger::Dependency {
                jobschid: read_id(&map, "jobschid")?,
                parent_prcid: read_id(&map, "parent_prcid")?,
            }),
            _ => None,
        };
        Ok(Self {
            params,
            trigger,
            from_step,
        })
    }

    pub fn to_json(&self) -> String {
        let mut map = Map::new();
        self.params.write(&mut map);
        match &self.trigger {
            Some(Trigger::Schedule {
                jobschid,
                slot,
                fire,
            }) => {
                map.insert("source".into(), json!("schedule"));
                map.insert("jobschid".into(), json!(jobschid));
                map.insert("slot".into(), json!(slot));
                if let Some(fire) = fire {
                    map.insert("fire".into(), json!(fire));
                }
            }
            Some(Trigger::Dependency {
                jobschid,
                parent_prcid,
            }) => {
                map.insert("source".into(), json!("dependency"));
                map.insert("jobschid".into(), json!(jobschid));
                map.insert("parent_prcid".into(), json!(parent_prcid));
            }
            None => {}
        }
        if let Some(step) = &self.from_step {
            map.insert("from_step".into(), json!(step));
        }
        Value::Object(map).to_string()
    }
}

/// The payload of a `HISTORY` request: one run per business date, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPayload {
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub params: RunParams,
    /// Go on with the next date after a failed one (default: stop at the first
    /// failure, so that later dates never build on a missing one).
    pub continue_on_failure: bool,
}

impl HistoryPayload {
    /// The longest range one request may cover, so that a typo in a year cannot queue
    /// centuries of runs.
    pub const MAX_DAYS: i64 = 366 * 20;

    pub fn new(
        start_date: NaiveDate,
        end_date: NaiveDate,
        params: RunParams,
    ) -> Result<Self, PayloadError> {
        if end_date < start_date {
            return Err(PayloadError::BadValue {
                key: "end_date".into(),
                value: format!("\"{end_date}\""),
                reason: format!("it is before start_date {start_date}"),
            });
        }
        if (end_date - start_date).num_days() >= Self::MAX_DAYS {
            return Err(PayloadError::BadValue {
                key: "end_date".into(),
                value: format!("\"{end_date}\""),
                reason: format!("the range from {start_date} spans more than 20 years"),
            });
        }
        Ok(Self {
            start_date,
            end_date,
            params,
            continue_on_failure: false,
        })
    }

    /// The keys a user may send (the HTTP API refuses others).
    pub const USER_KEYS: &[&str] = &[
        "start_date",
        "end_date",
        "truncate_flag",
        "continue_on_failure",
    ];

    /// Parses what a user sent: as [`HistoryPayload::parse`], refusing unknown keys.
    pub fn parse_strict(text: Option<&str>) -> Result<Self, PayloadError> {
        refuse_unknown_keys(&parse_object(text)?, Self::USER_KEYS)?;
        Self::parse(text)
    }

    pub fn parse(text: Option<&str>) -> Result<Self, PayloadError> {
        let map = parse_object(text)?;
        let start = read_date(&map, "start_date")?;
        let end = read_date(&map, "end_date")?;
        let mut history = Self::new(start, end, RunParams::read(&map)?)?;
        if let Some(value) = map.get("continue_on_failure") {
            history.continue_on_failure = read_flag("continue_on_failure", value)?;
        }
        Ok(history)
    }

    /// The business dates to run, oldest first.
    pub fn dates(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.start_date
            .iter_days()
            .take_while(move |d| *d <= self.end_date)
    }

    pub fn to_json(&self) -> String {
        let mut map = Map::new();
        self.params.write(&mut map);
        map.remove("run_date");
        map.insert("start_date".into(), json!(self.start_date.to_string()));
        map.insert("end_date".into(), json!(self.end_date.to_string()));
        if self.continue_on_failure {
            map.insert("continue_on_failure".into(), json!("Y"));
        }
        Value::Object(map).to_string()
    }
}

/// The payload of a `STOP` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopPayload {
    pub force: bool,
}

impl StopPayload {
    /// Parses what a user sent, refusing unknown keys.
    pub fn parse_strict(text: Option<&str>) -> Result<Self, PayloadError> {
        let map = parse_object(text)?;
        if let Some(key) = map.keys().find(|k| k.as_str() != "force") {
            return Err(PayloadError::UnknownKey {
                key: key.clone(),
                known: "force".into(),
            });
        }
        Self::parse(text)
    }

    pub fn parse(text: Option<&str>) -> Result<Self, PayloadError> {
        let map = parse_object(text)?;
        let force = match map.get("force") {
            Some(value) => read_flag("force", value)?,
            None => false,
        };
        Ok(Self { force })
    }

    pub fn to_json(&self) -> String {
        json!({ "force": if self.force { "Y" } else { "N" } }).to_string()
    }
}

/// The payload of a `CANCEL` request: the request to cancel.
pub fn parse_cancel_payload(text: Option<&str>) -> Result<String, PayloadError> {
    let map = parse_object(text)?;
    match map.get("request_id") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(other) => Err(bad("request_id", other, "expected a request id")),
        None => Err(PayloadError::Missing("request_id")),
    }
}

pub fn cancel_payload_json(request_id: &str) -> String {
    json!({ "request_id": request_id }).to_string()
}

/// A `REPORT` request's payload (SPEC §7.2), as DWTOOL's scheduler and API write it:
/// `reportId`, `outputFormat`, `destination`, `email`, `filePath`, `requestedBy`, and
/// `parameters` (an object). Other keys the UI's clients send are kept by the request
/// and ignored here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportPayload {
    /// `reportId`; `None` when absent (the mapref `REPORT:<id>` gives it then).
    pub report_id: Option<i64>,
    /// `outputFormat` as written; `None` or blank means CSV.
    pub output_format: Option<String>,
    /// `destination` as written; `None` or blank means FILE.
    pub destination: Option<String>,
    pub email: Option<String>,
    pub file_path: Option<String>,
    pub requested_by: Option<String>,
    /// `parameters`: bound by name where the report's SQL uses them.
    pub parameters: Map<String, Value>,
}

impl ReportPayload {
    pub fn parse(text: Option<&str>) -> Result<Self, PayloadError> {
        let map = parse_object(text)?;
        let text_of = |key: &str| -> Result<Option<String>, PayloadError> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                Some(other) => Err(bad(key, other, "expected a string")),
            }
        };
        let report_id = match map.get("reportId") {
            None | Some(Value::Null) => None,
            Some(_) => Some(read_id(&map, "reportId")?),
        };
        let parameters = match map.get("parameters") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(parameters)) => parameters.clone(),
            Some(other) => {
                return Err(bad(
                    "parameters",
                    other,
                    "expected an object of values by bind name",
                ));
            }
        };
        Ok(Self {
            report_id,
            output_format: text_of("outputFormat")?,
            destination: text_of("destination")?,
            email: text_of("email")?,
            file_path: text_of("filePath")?,
            requested_by: text_of("requestedBy")?,
            parameters,
        })
    }
}

/// A `FILE_UPLOAD` request's payload (SPEC §7.3): `flupldref`, `load_mode` (`INSERT`,
/// `TRUNCATE_LOAD` or `UPSERT`; `INSERT` when absent), `username` (`system` when
/// absent), and `file_path`, which the original's scheduler ignored and dwsched
/// ignores too (the configuration's `FLPTH` is the file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadPayload {
    pub flupldref: Option<String>,
    pub load_mode: LoadMode,
    pub username: String,
}

/// How an upload loads its target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LoadMode {
    #[default]
    Insert,
    TruncateLoad,
    Upsert,
}

impl LoadMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insert => "INSERT",
            Self::TruncateLoad => "TRUNCATE_LOAD",
            Self::Upsert => "UPSERT",
        }
    }
}

impl UploadPayload {
    pub fn parse(text: Option<&str>) -> Result<Self, PayloadError> {
        let map = parse_object(text)?;
        let text_of = |key: &str| -> Result<Option<String>, PayloadError> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                Some(other) => Err(bad(key, other, "expected a string")),
            }
        };
        let load_mode = match text_of("load_mode")?.map(|m| m.to_ascii_uppercase()) {
            None => LoadMode::Insert,
            Some(mode) => match mode.as_str() {
                "INSERT" => LoadMode::Insert,
                "TRUNCATE_LOAD" => LoadMode::TruncateLoad,
                "UPSERT" => LoadMode::Upsert,
                _ => {
                    return Err(bad(
                        "load_mode",
                        &Value::String(mode.clone()),
                        "expected INSERT, TRUNCATE_LOAD or UPSERT",
                    ));
                }
            },
        };
        Ok(Self {
            flupldref: text_of("flupldref")?,
            load_mode,
            username: text_of("username")?.unwrap_or_else(|| "system".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn empty_payloads_are_empty_objects() {
        for text in [None, Some(""), Some("  "), Some("null"), Some("{}")] {
            assert_eq!(RunPayload::parse(text).unwrap(), RunPayload::default());
        }
    }

    #[test]
    fn run_payload_reads_params_flags_and_dates() {
        let p = RunPayload::parse(Some(
            r#"{"param1":"A","param10":7,"truncate_flag":"Y","run_date":"2026-03-01"}"#,
        ))
        .unwrap();
        assert_eq!(p.params.params[0].as_deref(), Some("A"));
        assert_eq!(p.params.params[9].as_deref(), Some("7"));
        assert!(p.params.truncate);
        assert_eq!(p.params.run_date, Some(date("2026-03-01")));
        assert_eq!(p.params.prclog_text(), "param1=A | param10=7");
        assert_eq!(RunPayload::parse(Some(&p.to_json())).unwrap(), p);
    }

    #[test]
    fn strict_parsing_refuses_unknown_keys_and_names_them() {
        let err = RunPayload::parse_strict(Some(r#"{"rundate":"2026-03-02"}"#)).unwrap_err();
        assert!(err.to_string().contains("'rundate' is not known"), "{err}");
        let err = RunPayload::parse_strict(Some(r#"{"source":"schedule"}"#)).unwrap_err();
        assert!(err.to_string().contains("'source'"), "{err}");
        let err = RunPayload::parse_strict(Some(r#"{"params":{"parm1":"x"}}"#)).unwrap_err();
        assert!(err.to_string().contains("'params.parm1'"), "{err}");
        let ok = RunPayload::parse_strict(Some(
            r#"{"PARAM1":"a","params":{"param2":"b"},"run_date":"2026-03-02","from_step":"s2"}"#,
        ))
        .unwrap();
        assert_eq!(ok.from_step.as_deref(), Some("s2"));
        assert_eq!(RunPayload::parse(Some(&ok.to_json())).unwrap(), ok);
        let err = HistoryPayload::parse_strict(Some(
            r#"{"start_date":"2026-01-01","end_date":"2026-01-02","stop_on_error":"N"}"#,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("'stop_on_error'"), "{err}");
        let h = HistoryPayload::parse_strict(Some(
            r#"{"start_date":"2026-01-01","end_date":"2026-01-02","continue_on_failure":"Y"}"#,
        ))
        .unwrap();
        assert!(h.continue_on_failure);
        assert_eq!(HistoryPayload::parse(Some(&h.to_json())).unwrap(), h);
        assert!(StopPayload::parse_strict(Some(r#"{"forced":"Y"}"#)).is_err());
        assert!(
            StopPayload::parse_strict(Some(r#"{"force":"Y"}"#))
                .unwrap()
                .force
        );
    }

    #[test]
    fn nested_params_are_accepted_and_top_level_wins() {
        let p = RunPayload::parse(Some(
            r#"{"params":{"param1":"in","param2":"two"},"param1":"top"}"#,
        ))
        .unwrap();
        assert_eq!(p.params.params[0].as_deref(), Some("top"));
        assert_eq!(p.params.params[1].as_deref(), Some("two"));
    }

    #[test]
    fn schedule_fires_round_trip() {
        let p = RunPayload::parse(Some(
            r#"{"source":"schedule","jobschid":12,"slot":"2026-01-01T06:00:00Z"}"#,
        ))
        .unwrap();
        assert_eq!(
            p.trigger,
            Some(Trigger::Schedule {
                jobschid: 12,
                slot: "2026-01-01T06:00:00Z".into(),
                fire: None,
            })
        );
        assert_eq!(RunPayload::parse(Some(&p.to_json())).unwrap(), p);
        let moved = RunPayload {
            trigger: Some(Trigger::Schedule {
                jobschid: 12,
                slot: "2026-12-25T06:00:00Z".into(),
                fire: Some("2026-12-29T06:00:00Z".into()),
            }),
            ..RunPayload::default()
        };
        assert!(moved.to_json().contains(r#""fire":"2026-12-29T06:00:00Z""#));
        assert_eq!(RunPayload::parse(Some(&moved.to_json())).unwrap(), moved);
        let dependent = RunPayload {
            params: RunParams::default(),
            trigger: Some(Trigger::Dependency {
                jobschid: 3,
                parent_prcid: 99,
            }),
            from_step: None,
        };
        assert_eq!(
            RunPayload::parse(Some(&dependent.to_json())).unwrap(),
            dependent
        );
        let err = RunPayload::parse(Some(r#"{"source":"dependency","jobschid":"x"}"#)).unwrap_err();
        assert!(err.to_string().contains("'jobschid'"), "{err}");
    }

    #[test]
    fn bad_payloads_name_the_key_and_value() {
        let err = RunPayload::parse(Some("{not json")).unwrap_err();
        assert!(err.to_string().starts_with("payload is not valid JSON"));
        assert_eq!(
            RunPayload::parse(Some("[1]")).unwrap_err(),
            PayloadError::NotObject("an array")
        );
        let err = RunPayload::parse(Some(r#"{"run_date":"2026-13-01"}"#)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "payload key 'run_date' has value \"2026-13-01\": '2026-13-01' is not a date as YYYY-MM-DD"
        );
        let err = RunPayload::parse(Some(r#"{"truncate_flag":"maybe"}"#)).unwrap_err();
        assert!(err.to_string().contains("'truncate_flag'"));
        let err = RunPayload::parse(Some(r#"{"param3":[1]}"#)).unwrap_err();
        assert!(err.to_string().contains("'param3'"));
    }

    #[test]
    fn history_payloads() {
        let h = HistoryPayload::parse(Some(
            r#"{"start_date":"2026-02-27","end_date":"2026-03-01","truncate_flag":"Y"}"#,
        ))
        .unwrap();
        let dates: Vec<_> = h.dates().map(|d| d.to_string()).collect();
        assert_eq!(dates, ["2026-02-27", "2026-02-28", "2026-03-01"]);
        assert!(h.params.truncate);
        assert_eq!(HistoryPayload::parse(Some(&h.to_json())).unwrap(), h);

        assert_eq!(
            HistoryPayload::parse(Some(r#"{"start_date":"2026-01-01"}"#)).unwrap_err(),
            PayloadError::Missing("end_date")
        );
        let err = HistoryPayload::parse(Some(
            r#"{"start_date":"2026-01-02","end_date":"2026-01-01"}"#,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("before start_date 2026-01-02"));
    }

    #[test]
    fn business_dates_accept_timestamps_with_a_date_part() {
        assert_eq!(
            parse_business_date("2026-01-05").unwrap(),
            date("2026-01-05")
        );
        assert_eq!(
            parse_business_date("2026-01-05T00:00:00").unwrap(),
            date("2026-01-05")
        );
        assert!(parse_business_date("2026-01-05x").is_err());
        assert!(parse_business_date("05/01/2026").is_err());
    }

    #[test]
    fn stop_and_cancel_payloads() {
        assert!(StopPayload::parse(Some(r#"{"force":"Y"}"#)).unwrap().force);
        assert!(!StopPayload::parse(None).unwrap().force);
        assert_eq!(
            parse_cancel_payload(Some(&cancel_payload_json("abc"))).unwrap(),
            "abc"
        );
        assert_eq!(
            parse_cancel_payload(Some("{}")).unwrap_err(),
            PayloadError::Missing("request_id")
        );
    }
}
