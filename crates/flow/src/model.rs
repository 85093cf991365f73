//! The validated flow. Serialising it gives the normalised JSON stored in
//! `DMS_JOBFLW.DWLOGIC`: every default written out, `depends_on` explicit.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub name: String,
    #[serde(flatten)]
    pub kind: StepKind,
    /// The steps that must succeed first.
    pub depends_on: Vec<String>,
    /// Further attempts after a failure.
    pub retries: u32,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_timeout"
    )]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StepKind {
    Sql {
        connection: String,
        sql: Vec<String>,
        transaction: bool,
    },
    Load {
        source: Source,
        target: Target,
        batch_size: u32,
        max_errors: u32,
    },
    /// A DWTOOL mapping job's load, planned from its metadata (SPEC §7.1).
    Mapping { mapref: String },
    Command {
        program: String,
        args: Vec<String>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        env: BTreeMap<String, String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        workdir: Option<String>,
    },
}

impl StepKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sql { .. } => "sql",
            Self::Load { .. } => "load",
            Self::Mapping { .. } => "mapping",
            Self::Command { .. } => "command",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    pub connection: String,
    pub query: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub connection: String,
    pub table: String,
    pub mode: LoadMode,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadMode {
    Append,
    Truncate,
    Upsert,
}

fn serialize_timeout<S: Serializer>(timeout: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match timeout {
        Some(t) => s.serialize_str(&humantime::format_duration(*t).to_string()),
        None => s.serialize_none(),
    }
}

impl Flow {
    /// The connection names the flow uses, each once.
    pub fn connections(&self) -> BTreeSet<&str> {
        let mut names = BTreeSet::new();
        for step in &self.steps {
            match &step.kind {
                StepKind::Sql { connection, .. } => {
                    names.insert(connection.as_str());
                }
                StepKind::Load { source, target, .. } => {
                    names.insert(source.connection.as_str());
                    names.insert(target.connection.as_str());
                }
                StepKind::Command { .. } | StepKind::Mapping { .. } => {}
            }
        }
        names
    }

    /// The mapping jobs the flow's `mapping` steps run, each once. Their connections
    /// come from their plans.
    pub fn mappings(&self) -> BTreeSet<&str> {
        self.steps
            .iter()
            .filter_map(|step| match &step.kind {
                StepKind::Mapping { mapref } => Some(mapref.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The flow a DWTOOL mapping job runs as: one `mapping` step for its own mapref.
    pub fn for_mapping_job(mapref: &str) -> Self {
        Self {
            description: Some(format!("DWTOOL mapping job {mapref}")),
            steps: vec![Step {
                name: "mapping".to_string(),
                kind: StepKind::Mapping {
                    mapref: mapref.to_string(),
                },
                depends_on: Vec::new(),
                retries: 0,
                timeout: None,
            }],
        }
    }

    /// The normalised JSON of the flow, as stored in `DWLOGIC`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a flow always serialises")
    }
}
