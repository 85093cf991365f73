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
    steps: Option<Vec<StepFile>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TimeoutValue {
    Seconds(u64),
    Text(String),
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
struct StepFile {
    name: Option<String>,
    kind: Option<String>,
    connection: Option<String>,
    sql: Option<OneOrMany>,
    transaction: Option<bool>,
    source: Option<SourceFile>,
    target: Option<TargetFile>,
    batch_size: Option<u64>,
    max_errors: Option<u64>,
    program: Option<String>,
    args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    workdir: Option<String>,
    depends_on: Option<Vec<String>>,
    retries: Option<u32>,
    timeout: Option<TimeoutValue>,
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
    let step_files = file.steps.ok_or_else(|| {
        FlowError::flow("the flow has no 'steps' list (an empty list is a valid no-op flow)")
    })?;
    let mut steps: Vec<Step> = Vec::with_capacity(step_files.len());
    let mut index: HashMap<String, usize> = HashMap::new();
    for (position, file) in step_files.into_iter().enumerate() {
        let previous = steps.last().map(|s| s.name.clone());
        let step = read_step(position, file, previous)?;
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

fn read_step(position: usize, f: StepFile, previous: Option<String>) -> Result<Step, FlowError> {
    let name = f
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| FlowError::flow(format!("step {} has no name", position + 1)))?;
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
    let kind_name = f
        .kind
        .clone()
        .ok_or_else(|| FlowError::at(&name, "kind", "missing; use sql, load or command"))?;
    let unexpected = |fields: &[(&str, bool)]| -> Result<(), FlowError> {
        match fields.iter().find(|(_, present)| *present) {
            Some((field, _)) => Err(FlowError::at(
                &name,
                field,
                format!("does not apply to a {kind_name} step"),
            )),
            None => Ok(()),
        }
    };
    let required = |value: Option<String>, field: &str| -> Result<String, FlowError> {
        value
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| FlowError::at(&name, field, "is required"))
    };
    let kind = match kind_name.as_str() {
        "sql" => {
            unexpected(&[
                ("source", f.source.is_some()),
                ("target", f.target.is_some()),
                ("batch_size", f.batch_size.is_some()),
                ("max_errors", f.max_errors.is_some()),
                ("program", f.program.is_some()),
                ("args", f.args.is_some()),
                ("env", f.env.is_some()),
                ("workdir", f.workdir.is_some()),
            ])?;
            let sql = match f.sql {
                Some(OneOrMany::One(one)) => vec![one],
                Some(OneOrMany::Many(many)) => many,
                None => Vec::new(),
            };
            if sql.is_empty() || sql.iter().any(|s| s.trim().is_empty()) {
                return Err(FlowError::at(
                    &name,
                    "sql",
                    "needs one or more non-empty statements",
                ));
            }
            for statement in &sql {
                check_binds(&name, "sql", statement)?;
            }
            StepKind::Sql {
                connection: required(f.connection, "connection")?,
                sql,
                transaction: f.transaction.unwrap_or(true),
            }
        }
        "load" => {
            unexpected(&[
                ("connection", f.connection.is_some()),
                ("sql", f.sql.is_some()),
                ("transaction", f.transaction.is_some()),
                ("program", f.program.is_some()),
                ("args", f.args.is_some()),
                ("env", f.env.is_some()),
                ("workdir", f.workdir.is_some()),
            ])?;
            let source = f
                .source
                .ok_or_else(|| FlowError::at(&name, "source", "is required"))?;
            let target = f
                .target
                .ok_or_else(|| FlowError::at(&name, "target", "is required"))?;
            let query = required(source.query, "source.query")?;
            check_binds(&name, "source.query", &query)?;
            let table = required(target.table, "target.table")?;
            if !table.split('.').all(dwsched_model::is_valid_identifier)
                || table.split('.').count() > 2
            {
                return Err(FlowError::at(
                    &name,
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
                        &name,
                        "target.mode",
                        format!("'{other}' is not append, truncate or upsert"),
                    ));
                }
            };
            let key = target.key.unwrap_or_default();
            match (mode, key.is_empty()) {
                (LoadMode::Upsert, true) => {
                    return Err(FlowError::at(
                        &name,
                        "target.key",
                        "upsert needs the key columns",
                    ));
                }
                (LoadMode::Append | LoadMode::Truncate, false) => {
                    return Err(FlowError::at(
                        &name,
                        "target.key",
                        "applies only to mode = \"upsert\"",
                    ));
                }
                _ => {}
            }
            if let Some(bad) = key.iter().find(|k| !dwsched_model::is_valid_identifier(k)) {
                return Err(FlowError::at(
                    &name,
                    "target.key",
                    format!("'{bad}' is not a column name"),
                ));
            }
            let batch_size = match f.batch_size {
                None => DEFAULT_BATCH_SIZE,
                Some(n @ 1..=MAX_BATCH_SIZE) => n as u32,
                Some(n) => {
                    return Err(FlowError::at(
                        &name,
                        "batch_size",
                        format!("{n} is not between 1 and {MAX_BATCH_SIZE}"),
                    ));
                }
            };
            StepKind::Load {
                source: Source {
                    connection: required(source.connection, "source.connection")?,
                    query,
                },
                target: Target {
                    connection: required(target.connection, "target.connection")?,
                    table,
                    mode,
                    key,
                },
                batch_size,
                max_errors: u32::try_from(f.max_errors.unwrap_or(0)).unwrap_or(u32::MAX),
            }
        }
        "command" => {
            unexpected(&[
                ("connection", f.connection.is_some()),
                ("sql", f.sql.is_some()),
                ("transaction", f.transaction.is_some()),
                ("source", f.source.is_some()),
                ("target", f.target.is_some()),
                ("batch_size", f.batch_size.is_some()),
                ("max_errors", f.max_errors.is_some()),
            ])?;
            let env = f.env.unwrap_or_default();
            if let Some(bad) = env
                .keys()
                .find(|k| k.is_empty() || k.contains('=') || k.contains('\0'))
            {
                return Err(FlowError::at(
                    &name,
                    "env",
                    format!("'{bad}' is not a variable name"),
                ));
            }
            StepKind::Command {
                program: required(f.program, "program")?,
                args: f.args.unwrap_or_default(),
                env,
                workdir: f.workdir.filter(|w| !w.trim().is_empty()),
            }
        }
        other => {
            return Err(FlowError::at(
                &name,
                "kind",
                format!("'{other}' is not sql, load or command"),
            ));
        }
    };
    let retries = f.retries.unwrap_or(0);
    if retries > MAX_RETRIES {
        return Err(FlowError::at(
            &name,
            "retries",
            format!("{retries} is more than {MAX_RETRIES}"),
        ));
    }
    let timeout = match f.timeout {
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
        depends_on: f
            .depends_on
            .unwrap_or_else(|| previous.into_iter().collect()),
        name,
        kind,
        retries,
        timeout,
    })
}

fn check_binds(step: &str, field: &str, sql: &str) -> Result<(), FlowError> {
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
