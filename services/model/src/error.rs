//! Rejections: a stable reason code, the pipeline stage, the offending field and a human message.

use std::fmt;

/// Where in the pipeline (DESIGN §1) a record failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The bytes could not be decoded into a record.
    Decode,
    /// A mapping profile could not map a native payload.
    Map,
    /// A canonical field failed validation.
    Validate,
    /// The record's identity could not be resolved or is not the partner's to send.
    Identity,
    /// The store refused the record.
    Store,
}

impl Stage {
    /// The stage's stable name, as stored in the dead-letter table.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Map => "map",
            Stage::Validate => "validate",
            Stage::Identity => "identity",
            Stage::Store => "store",
        }
    }
}

/// Stable, machine-readable reasons for a rejection (DESIGN §6.1). Never renamed once shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReasonCode {
    /// A national ID with a wrong length, charset, check digit or birth date.
    InvalidNationalId,
    /// A required field is absent or empty.
    MissingField,
    /// A domain code that is not in its code table.
    UnknownCode,
    /// A date or instant that is not in the expected format or does not exist.
    BadDate,
    /// Hours or minutes below zero.
    NegativeHours,
    /// A number outside its allowed range (e.g. a score above 100).
    OutOfRange,
    /// Dates in the wrong order (an end before its start).
    BadDateRange,
    /// `source.kind` disagrees with the body that is set.
    KindMismatch,
    /// The record speaks for a system the sender is not.
    SystemMismatch,
    /// The payload could not be decoded at all.
    MalformedPayload,
    /// The store refused the record for good (a constraint or trigger of the database): it
    /// failed the same way on every try and was set aside so the records behind it go on.
    StoreRefused,
}

impl ReasonCode {
    /// The code's wire form, e.g. `INVALID_NATIONAL_ID`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::InvalidNationalId => "INVALID_NATIONAL_ID",
            ReasonCode::MissingField => "MISSING_FIELD",
            ReasonCode::UnknownCode => "UNKNOWN_CODE",
            ReasonCode::BadDate => "BAD_DATE",
            ReasonCode::NegativeHours => "NEGATIVE_HOURS",
            ReasonCode::OutOfRange => "OUT_OF_RANGE",
            ReasonCode::BadDateRange => "BAD_DATE_RANGE",
            ReasonCode::KindMismatch => "KIND_MISMATCH",
            ReasonCode::SystemMismatch => "SYSTEM_MISMATCH",
            ReasonCode::MalformedPayload => "MALFORMED_PAYLOAD",
            ReasonCode::StoreRefused => "STORE_REFUSED",
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a record was refused. Carries everything a dead-letter row and an outcome need.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{stage}: {code}: {field}: {message}", stage = self.stage.as_str())]
pub struct Rejection {
    /// Pipeline stage that refused the record.
    pub stage: Stage,
    /// Stable reason code.
    pub code: ReasonCode,
    /// Path of the offending field, e.g. `person.national_id`; empty when not about one field.
    pub field: String,
    /// A sentence for the operator. Never contains a national ID or a name.
    pub message: String,
}

impl Rejection {
    /// A validation rejection about `field`.
    pub fn invalid(code: ReasonCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        Rejection {
            stage: Stage::Validate,
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    /// A required field that is absent.
    pub fn missing(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("required field `{field}` is missing");
        Rejection::invalid(ReasonCode::MissingField, field, message)
    }

    /// Same rejection, moved to another stage.
    pub fn at(mut self, stage: Stage) -> Self {
        self.stage = stage;
        self
    }

    /// The message as shown to partners: the field path, then the sentence.
    pub fn describe(&self) -> String {
        if self.field.is_empty() || self.message.contains(&format!("`{}`", self.field)) {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}
