//! Reading a flow file and validating it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::model::{Flow, LoadMode, Source, Step, StepKind, Target};
use crate::{BINDS, binds_in};

/// What is wrong with a flow, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowError {
    pub step: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl FlowError {
    fn flow(message: impl Into<String>) -> Self {
        Self {
            step: None,
            field: None,
            message: message.into(),
        }
    }

    fn at(step: &str, field: &str, message: impl Into<String>) -> Self {
        Self {
            step: Some(step.to_string()),
            field: Some(field.to_string()),
            message: message.into(),
        }
    }
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.step, &self.field) {
            (Some(step), Some(field)) => {
                write!(f, "step '{step}', field '{field}': {}", self.message)
            }
            (Some(step), None) => write!(f, "step '{step}': {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for FlowError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowFormat {
    Toml,
    Json,
}

impl FlowFormat {
    /// The format a file name suggests: `.json` is JSON, anything else TOML.
    pub fn from_path(path: &str) -> Self {
        if path.to_ascii_lowercase().ends_with(".json") {
            Self::Json
        } else {
            Self::Toml
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowFile {
    description: Option<String>,
    /// Read as plain values first, so that every error can name its step.
    steps: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "needs a statement or a list of statements")]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "needs seconds, or a duration such as 90s, 10m or 1h30m"
)]
enum TimeoutValue {
    Seconds(u64),
    Text(String),
}

/// The fields every step has, whatever its kind.
#[derive(Deserialize)]
struct CommonFile {
    depends_on: Option<Vec<String>>,
    retries: Option<u32>,
    timeout: Option<TimeoutValue>,
}

impl CommonFile {
    const FIELDS: [&str; 3] = ["depends_on", "retries", "timeout"];
}

/// The step kinds, as `kind` names them.
const KIND_NAMES: &str = "sql, load, mapping or command";

/// Reads the fields of a step of kind `kind_name` into that kind: one struct per kind,
/// which refuses the fields of other kinds. (Dispatched here rather than by serde's
/// internally tagged enums, which lose the path of a field of the wrong type.) Adding a
/// kind is one struct with its `into_kind`, one arm here, and its module to run it.
fn read_kind(
    step: &str,
    kind_name: &str,
    fields: serde_json::Map<String, serde_json::Value>,
) -> Result<StepKind, FlowError> {
    match kind_name {
        "sql" => deserialize_fields::<SqlFile>(step, fields, kind_name)?.into_kind(step),
        "load" => deserialize_fields::<LoadFile>(step, fields, kind_name)?.into_kind(step),
        "command" => deserialize_fields::<CommandFile>(step, fields, kind_name)?.into_kind(step),
        "mapping" => deserialize_fields::<MappingFile>(step, fields, kind_name)?.into_kind(step),
        other => Err(FlowError::at(
            step,
            "kind",
            format!("'{other}' is not {KIND_NAMES}"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlFile {
    connection: Option<String>,
    sql: Option<OneOrMany>,
    transaction: Option<bool>,
}

impl SqlFile {
    fn into_kind(self, step: &str) -> Result<StepKind, FlowError> {
        let sql = match self.sql {
            Some(OneOrMany::One(one)) => vec![one],
            Some(OneOrMany::Many(many)) => many,
            None => Vec::new(),
        };
        if sql.is_empty() || sql.iter().any(|s| s.trim().is_empty()) {
            return Err(FlowError::at(
                step,
                "sql",
                "needs one or more non-empty statements",
            ));
        }
        for statement in &sql {
            check_binds(step, "sql", statement)?;
        }
        Ok(StepKind::Sql {
            connection: required(step, self.connection, "connection")?,
            sql,
            transaction: self.transaction.unwrap_or(true),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFile {
    connection: Option<String>,
    query: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    connection: Option<String>,
    table: Option<String>,
    mode: Option<String>,
    key: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadFile {
    source: Option<SourceFile>,
    target: Option<TargetFile>,
    batch_size: Option<u64>,
    max_errors: Option<u64>,
}

impl LoadFile {
    fn into_kind(self, step: &str) -> Result<StepKind, FlowError> {
        let source = self
            .source
            .ok_or_else(|| FlowError::at(step, "source", "is required"))?;
        let target = self
            .target
            .ok_or_else(|| FlowError::at(step, "target", "is required"))?;
        let query = required(step, source.query, "source.query")?;
        check_binds(step, "source.query", &query)?;
        let table = required(step, target.table, "target.table")?;
        if !table.split('.').all(dwsched_model::is_valid_identifier) || table.split('.').count() > 2
        {
            return Err(FlowError::at(
                step,
                "target.table",
                format!("'{table}' is not a table name (name or schema.name)"),
            ));
        }
        let mode = match target.mode.as_deref().unwrap_or("append") {
            "append" => LoadMode::Append,
            "truncate" => LoadMode::Truncate,
            "upsert" => LoadMode::Upsert,
            other => {
                return Err(FlowError::at(
                    step,
                    "target.mode",
                    format!("'{other}' is not append, truncate or upsert"),
                ));
            }
        };
        let key = target.key.unwrap_or_default();
        match (mode, key.is_empty()) {
            (LoadMode::Upsert, true) => {
                return Err(FlowError::at(
                    step,
                    "target.key",
                    "upsert needs the key columns",
                ));
            }
            (LoadMode::Append | LoadMode::Truncate, false) => {
                return Err(FlowError::at(
                    step,
                    "target.key",
                    "applies only to mode = \"upsert\"",
                ));
            }
            _ => {}
        }
        if let Some(bad) = key.iter().find(|k| !dwsched_model::is_valid_identifier(k)) {
            return Err(FlowError::at(
                step,
                "target.key",
                format!("'{bad}' is not a column name"),
            ));
        }
        let batch_size = match self.batch_size {
            None => DEFAULT_BATCH_SIZE,
            Some(n @ 1..=MAX_BATCH_SIZE) => n as u32,
            Some(n) => {
                return Err(FlowError::at(
                    step,
                    "batch_size",
                    format!("{n} is not between 1 and {MAX_BATCH_SIZE}"),
                ));
            }
        };
        Ok(StepKind::Load {
            source: Source {
                connection: required(step, source.connection, "source.connection")?,
                query,
            },
            target: Target {
                connection: required(step, target.connection, "target.connection")?,
                table,
                mode,
                key,
            },
            batch_size,
            max_errors: u32::try_from(self.max_errors.unwrap_or(0)).unwrap_or(u32::MAX),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    mapref: Option<String>,
}

impl MappingFile {
    fn into_kind(self, step: &str) -> Result<StepKind, FlowError> {
        let mapref = required(step, self.mapref, "mapref")?;
        dwsched_model::validate_mapref(&mapref)
            .map_err(|reason| FlowError::at(step, "mapref", reason))?;
        Ok(StepKind::Mapping { mapref })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandFile {
    program: Option<String>,
    args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    workdir: Option<String>,
}

impl CommandFile {
    fn into_kind(self, step: &str) -> Result<StepKind, FlowError> {
        let env = self.env.unwrap_or_default();
        if let Some(bad) = env
            .keys()
            .find(|k| k.is_empty() || k.contains('=') || k.contains('\0'))
        {
            return Err(FlowError::at(
                step,
                "env",
                format!("'{bad}' is not a variable name"),
            ));
        }
        Ok(StepKind::Command {
            program: required(step, self.program, "program")?,
            args: self.args.unwrap_or_default(),
            env,
            workdir: self.workdir.filter(|w| !w.trim().is_empty()),
        })
    }
}

/// A text field that must be present and not blank.
fn required(step: &str, value: Option<String>, field: &str) -> Result<String, FlowError> {
    value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| FlowError::at(step, field, "is required"))
}

const DEFAULT_BATCH_SIZE: u32 = 10_000;
const MAX_BATCH_SIZE: u64 = 1_000_000;
const MAX_RETRIES: u32 = 100;

/// Parses and validates a flow.
pub fn parse_flow(text: &str, format: FlowFormat) -> Result<Flow, FlowError> {
    let file: FlowFile = match format {
        FlowFormat::Toml => toml::from_str(text)
            .map_err(|e| FlowError::flow(format!("not valid TOML: {}", e.to_string().trim())))?,
        FlowFormat::Json => serde_json::from_str(text)
            .map_err(|e| FlowError::flow(format!("not valid JSON: {e}")))?,
    };
    let step_values = file.steps.ok_or_else(|| {
        FlowError::flow("the flow has no 'steps' list (an empty list is a valid no-op flow)")
    })?;
    let mut steps: Vec<Step> = Vec::with_capacity(step_values.len());
    let mut index: HashMap<String, usize> = HashMap::new();
    for (position, value) in step_values.into_iter().enumerate() {
        let previous = steps.last().map(|s| s.name.clone());
        let step = read_step(position, value, previous)?;
        if index.insert(step.name.clone(), position).is_some() {
            return Err(FlowError::at(
                &step.name,
                "name",
                "another step has this name",
            ));
        }
        steps.push(step);
    }
    for step in &steps {
        for dependency in &step.depends_on {
            if dependency == &step.name {
                return Err(FlowError::at(
                    &step.name,
                    "depends_on",
                    "a step cannot depend on itself",
                ));
            }
            if !index.contains_key(dependency) {
                return Err(FlowError::at(
                    &step.name,
                    "depends_on",
                    format!("there is no step named '{dependency}'"),
                ));
            }
        }
    }
    check_acyclic(&steps, &index)?;
    Ok(Flow {
        description: file.description,
        steps,
    })
}

/// Reads one step: its name first, so that every later error names it; then the
/// fields every step has; then its kind's own struct, which refuses fields of other
/// kinds.
fn read_step(
    position: usize,
    value: serde_json::Value,
    previous: Option<String>,
) -> Result<Step, FlowError> {
    let serde_json::Value::Object(mut fields) = value else {
        return Err(FlowError::flow(format!(
            "step {} is not a table of fields",
            position + 1
        )));
    };
    let name = match fields.remove("name") {
        Some(serde_json::Value::String(name)) if !name.trim().is_empty() => name,
        _ => {
            return Err(FlowError::flow(format!(
                "step {} has no name",
                position + 1
            )));
        }
    };
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(FlowError::at(
            &name,
            "name",
            "use letters, digits, '_', '-' or '.'",
        ));
    }
    let kind_name = match fields.remove("kind") {
        None => {
            return Err(FlowError::at(
                &name,
                "kind",
                format!("missing; use {KIND_NAMES}"),
            ));
        }
        Some(serde_json::Value::String(kind)) => kind,
        Some(other) => other.to_string(),
    };
    let common: serde_json::Map<String, serde_json::Value> = CommonFile::FIELDS
        .iter()
        .filter_map(|field| fields.remove(*field).map(|v| (field.to_string(), v)))
        .collect();
    let common: CommonFile = deserialize_fields(&name, common, "")?;
    let kind = read_kind(&name, &kind_name, fields)?;
    let retries = common.retries.unwrap_or(0);
    if retries > MAX_RETRIES {
        return Err(FlowError::at(
            &name,
            "retries",
            format!("{retries} is more than {MAX_RETRIES}"),
        ));
    }
    let timeout = match common.timeout {
        None => None,
        Some(TimeoutValue::Seconds(0)) => {
            return Err(FlowError::at(&name, "timeout", "must be more than 0"));
        }
        Some(TimeoutValue::Seconds(s)) => Some(Duration::from_secs(s)),
        Some(TimeoutValue::Text(text)) => {
            let parsed = humantime::parse_duration(text.trim()).map_err(|e| {
                FlowError::at(
                    &name,
                    "timeout",
                    format!("'{text}' is not a duration such as 90s, 10m or 1h30m: {e}"),
                )
            })?;
            if parsed.is_zero() {
                return Err(FlowError::at(&name, "timeout", "must be more than 0"));
            }
            Some(parsed)
        }
    };
    Ok(Step {
        depends_on: common
            .depends_on
            .unwrap_or_else(|| previous.into_iter().collect()),
        name,
        kind,
        retries,
        timeout,
    })
}

/// Deserialises a step's `fields` into `T`, naming the field at fault: a field that
/// does not belong to the step's kind (`kind_name`), or one of the wrong type.
fn deserialize_fields<T: serde::de::DeserializeOwned>(
    step: &str,
    fields: serde_json::Map<String, serde_json::Value>,
    kind_name: &str,
) -> Result<T, FlowError> {
    serde_path_to_error::deserialize(serde_json::Value::Object(fields)).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        // serde's own wording for a field a struct does not declare.
        if let Some(unknown) = inner
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
        {
            // The path ends with the unknown field itself.
            let field = if path == "." {
                unknown.to_string()
            } else {
                path
            };
            let message = match field.rsplit_once('.') {
                Some((parent, _)) => format!("is not a field of {parent}"),
                None => format!("does not apply to a {kind_name} step"),
            };
            return FlowError::at(step, &field, message);
        }
        if path == "." {
            FlowError {
                step: Some(step.to_string()),
                field: None,
                message: inner,
            }
        } else {
            FlowError::at(step, &path, inner)
        }
    })
}

fn check_binds(step: &str, field: &str, sql: &str) -> Result<(), FlowError> {
    // Binds make a prepared statement, which holds one statement only; without binds
    // the text goes as it is and may hold several.
    if !binds_in(sql).is_empty() && crate::statement_count(sql) > 1 {
        return Err(FlowError::at(
            step,
            field,
            "holds several statements and uses binds; a statement with binds must stand \
             alone, so give each statement its own entry in the list",
        ));
    }
    match binds_in(sql)
        .into_iter()
        .find(|b| !BINDS.contains(&b.to_ascii_lowercase().as_str()))
    {
        Some(unknown) => Err(FlowError::at(
            step,
            field,
            format!(
                "unknown bind ':{unknown}'; a run provides :{}",
                BINDS.join(", :")
            ),
        )),
        None => Ok(()),
    }
}

/// Fails when `depends_on` forms a cycle, naming the steps on it.
fn check_acyclic(steps: &[Step], index: &HashMap<String, usize>) -> Result<(), FlowError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        at: usize,
        steps: &[Step],
        index: &HashMap<String, usize>,
        marks: &mut [Mark],
        path: &mut Vec<usize>,
    ) -> Result<(), FlowError> {
        marks[at] = Mark::Open;
        path.push(at);
        for dependency in &steps[at].depends_on {
            let next = index[dependency];
            match marks[next] {
                Mark::Open => {
                    let from = path.iter().position(|&p| p == next).unwrap_or(0);
                    let mut cycle: Vec<&str> = path[from..]
                        .iter()
                        .map(|&p| steps[p].name.as_str())
                        .collect();
                    cycle.push(steps[next].name.as_str());
                    return Err(FlowError::at(
                        &steps[at].name,
                        "depends_on",
                        format!("the steps form a cycle: {}", cycle.join(" -> ")),
                    ));
                }
                Mark::New => visit(next, steps, index, marks, path)?,
                Mark::Done => {}
            }
        }
        path.pop();
        marks[at] = Mark::Done;
        Ok(())
    }
    let mut marks = vec![Mark::New; steps.len()];
    for start in 0..steps.len() {
        if marks[start] == Mark::New {
            visit(start, steps, index, &mut marks, &mut Vec::new())?;
        }
    }
    Ok(())
}
