//! Status codes and request types exactly as they are stored (SPEC §4).

use std::fmt;

/// `DMS_PRCREQ.STATUS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestStatus {
    New,
    Processing,
    Done,
    Failed,
    Cancelled,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 5] = [
        Self::New,
        Self::Processing,
        Self::Done,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::Processing => "PROCESSING",
            Self::Done => "DONE",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Reads a stored status. `QUEUED` and `CLAIMED`, written by older tools, read as
    /// `NEW` and `PROCESSING`. Returns `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_uppercase().as_str() {
            "NEW" | "QUEUED" => Self::New,
            "PROCESSING" | "CLAIMED" => Self::Processing,
            "DONE" => Self::Done,
            "FAILED" => Self::Failed,
            "CANCELLED" => Self::Cancelled,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Cancelled)
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `DMS_PRCREQ.REQUEST_TYPE`. Types that dwsched does not know are kept as written, so
/// the request can be failed with a message that quotes them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestType {
    Immediate,
    History,
    Stop,
    Cancel,
    RefreshSchedule,
    /// A DWTOOL report run (SPEC §7.2); its mapref is `REPORT:<RPRTID>`.
    Report,
    /// A DWTOOL file upload (SPEC §7.3); its mapref is `FLUPLD:<FLUPLDREF>`.
    FileUpload,
    Unknown(String),
}

impl RequestType {
    pub fn parse(text: &str) -> Self {
        match text.trim().to_ascii_uppercase().as_str() {
            "IMMEDIATE" => Self::Immediate,
            "HISTORY" => Self::History,
            "STOP" => Self::Stop,
            "CANCEL" => Self::Cancel,
            "REFRESH_SCHEDULE" => Self::RefreshSchedule,
            "REPORT" => Self::Report,
            "FILE_UPLOAD" => Self::FileUpload,
            _ => Self::Unknown(text.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Immediate => "IMMEDIATE",
            Self::History => "HISTORY",
            Self::Stop => "STOP",
            Self::Cancel => "CANCEL",
            Self::RefreshSchedule => "REFRESH_SCHEDULE",
            Self::Report => "REPORT",
            Self::FileUpload => "FILE_UPLOAD",
            Self::Unknown(text) => text,
        }
    }

    /// Whether a request of this type starts runs of its mapref. Only these wait for
    /// the mapref to be free; control requests (STOP, CANCEL, ...) never queue behind
    /// work.
    pub fn starts_runs(&self) -> bool {
        matches!(
            self,
            Self::Immediate | Self::History | Self::Report | Self::FileUpload
        )
    }

    /// The types that start runs, as stored, in byte order: the claim's queries take
    /// run requests by these and control requests as the ranges between them.
    pub const RUN_TYPES: [&'static str; 4] = ["FILE_UPLOAD", "HISTORY", "IMMEDIATE", "REPORT"];
}

impl fmt::Display for RequestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `DMS_PRCLOG.STATUS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    InProgress,
    Completed,
    Failed,
    Stopped,
}

impl RunStatus {
    pub const ALL: [RunStatus; 4] = [
        Self::InProgress,
        Self::Completed,
        Self::Failed,
        Self::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IP",
            Self::Completed => "PC",
            Self::Failed => "FL",
            Self::Stopped => "ST",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_uppercase().as_str() {
            "IP" => Self::InProgress,
            "PC" => Self::Completed,
            "FL" => Self::Failed,
            "ST" => Self::Stopped,
            _ => return None,
        })
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `DMS_PRCSTEP.STATUS`: a run's statuses, and `SK` for a step a run from a later step
/// (`--from-step`) did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepStatus {
    InProgress,
    Completed,
    Failed,
    Stopped,
    Skipped,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IP",
            Self::Completed => "PC",
            Self::Failed => "FL",
            Self::Stopped => "ST",
            Self::Skipped => "SK",
        }
    }

    /// A run's status, or `SK`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_uppercase().as_str() {
            "SK" => Some(Self::Skipped),
            other => RunStatus::parse(other).map(Self::from),
        }
    }
}

impl From<RunStatus> for StepStatus {
    fn from(status: RunStatus) -> Self {
        match status {
            RunStatus::InProgress => Self::InProgress,
            RunStatus::Completed => Self::Completed,
            RunStatus::Failed => Self::Failed,
            RunStatus::Stopped => Self::Stopped,
        }
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `DMS_JOBERR.ERRTYP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// A failed run.
    Job,
    /// A failed step.
    Step,
    /// A row rejected by a load.
    Row,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Job => "JOB",
            Self::Step => "STEP",
            Self::Row => "ROW",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_request_statuses_read_as_ours() {
        assert_eq!(RequestStatus::parse("QUEUED"), Some(RequestStatus::New));
        assert_eq!(
            RequestStatus::parse("claimed"),
            Some(RequestStatus::Processing)
        );
        assert_eq!(RequestStatus::parse("BOGUS"), None);
        for status in RequestStatus::ALL {
            assert_eq!(RequestStatus::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn request_types_round_trip_and_keep_unknown_text() {
        for text in [
            "IMMEDIATE",
            "HISTORY",
            "STOP",
            "CANCEL",
            "REFRESH_SCHEDULE",
            "REPORT",
            "FILE_UPLOAD",
        ] {
            assert_eq!(RequestType::parse(text).as_str(), text);
        }
        assert_eq!(RequestType::parse("EXPORT").as_str(), "EXPORT");
        assert!(RequestType::parse("REPORT").starts_runs());
        let mut sorted = RequestType::RUN_TYPES;
        sorted.sort_unstable();
        assert_eq!(sorted, RequestType::RUN_TYPES);
        assert!(RequestType::parse("immediate").starts_runs());
        assert!(!RequestType::parse("STOP").starts_runs());
    }

    #[test]
    fn run_statuses_round_trip() {
        for status in RunStatus::ALL {
            assert_eq!(RunStatus::parse(status.as_str()), Some(status));
            let step = StepStatus::from(status);
            assert_eq!(step.as_str(), status.as_str());
            assert_eq!(StepStatus::parse(step.as_str()), Some(step));
        }
        assert_eq!(StepStatus::parse("sk"), Some(StepStatus::Skipped));
        assert_eq!(RunStatus::parse("XX"), None);
    }
}
