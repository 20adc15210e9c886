//! Domain code tables (DESIGN §3). An unknown code is rejected with `UNKNOWN_CODE`, never guessed.

use crate::error::{ReasonCode, Rejection};

/// Declares a closed code table: an enum with its wire strings, `parse` and `as_str`.
macro_rules! code_table {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[allow(missing_docs)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every code of the table, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The code's wire string.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses a wire string; `field` names the field in the rejection.
            pub fn parse(field: &str, text: &str) -> Result<Self, Rejection> {
                match text.trim() {
                    $($text => Ok($name::$variant),)+
                    "" => Err(Rejection::missing(field)),
                    other => Err(Rejection::invalid(
                        ReasonCode::UnknownCode,
                        field,
                        format!(
                            "`{field}` has unknown code {other:?}; expected one of {}",
                            [$($text),+].join(", ")
                        ),
                    )),
                }
            }

            /// Like [`Self::parse`], but an empty string is `None`.
            pub fn parse_opt(field: &str, text: &str) -> Result<Option<Self>, Rejection> {
                if text.trim().is_empty() { Ok(None) } else { Self::parse(field, text).map(Some) }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

code_table!(
    /// GB/T 2261.1 sex codes.
    Gender { Unknown = "0", Male = "1", Female = "2", Unstated = "9" }
);

code_table!(
    /// Rank bands (GB/T 12407 post levels map onto these through profiles).
    Rank {
        /// 省部级
        Provincial = "provincial",
        /// 厅局级
        Bureau = "bureau",
        /// 县处级
        County = "county",
        /// 乡科级
        Township = "township",
        /// 一级主任科员 and below
        Staff = "staff",
    }
);

impl Rank {
    /// `county` and above: the 5-year 550 学时 requirement applies.
    pub fn is_county_or_above(self) -> bool {
        matches!(self, Rank::Provincial | Rank::Bureau | Rank::County)
    }
}

code_table!(
    /// Cadre categories.
    Category {
        PartyGovernmentLeader = "party_government_leader",
        CivilServant = "civil_servant",
        SoeLeader = "soe_leader",
        InstitutionLeader = "institution_leader",
        YoungCadre = "young_cadre",
        TheoryBackbone = "theory_backbone",
        Talent = "talent",
        Grassroots = "grassroots",
        PartyMember = "party_member",
    }
);

code_table!(
    /// Employment status of a person.
    PersonStatus { Active = "active", Retired = "retired", Left = "left" }
);

code_table!(
    /// Person events.
    EventKind {
        Hired = "hired",
        Promoted = "promoted",
        Transferred = "transferred",
        Retired = "retired",
        Left = "left",
    }
);

code_table!(
    /// Training themes.
    Theme {
        /// 党的创新理论
        PartyTheory = "party_theory",
        /// 党性教育
        PartySpirit = "party_spirit",
        /// 专业能力
        Professional = "professional",
        /// 知识更新
        Knowledge = "knowledge",
        Other = "other",
    }
);

code_table!(
    /// How a class is delivered.
    Format {
        /// 脱产
        OffJob = "off_job",
        OnJob = "on_job",
        Online = "online",
    }
);

code_table!(
    /// 条例 class categories.
    ClassCategory {
        Thematic = "thematic",
        Rotation = "rotation",
        Induction = "induction",
        Appointment = "appointment",
        InService = "in_service",
        Other = "other",
    }
);

code_table!(
    /// Enrollment status.
    EnrollmentStatus {
        Nominated = "nominated",
        Enrolled = "enrolled",
        Completed = "completed",
        Withdrawn = "withdrawn",
    }
);

code_table!(
    /// Who sent the person to the class.
    Dispatch {
        /// 组织调训
        Organised = "organised",
        /// 自主选学
        SelfSelected = "self_selected",
    }
);

code_table!(
    /// Attendance kinds.
    AttendanceKind { Present = "present", Leave = "leave", Absent = "absent" }
);

code_table!(
    /// Assessment outcomes.
    Outcome { Excellent = "excellent", Pass = "pass", Fail = "fail" }
);

code_table!(
    /// Rater roles of multi-rater evaluation.
    RaterRole {
        ClassTeacher = "class_teacher",
        Lecturer = "lecturer",
        Liaison = "liaison",
        Peer = "peer",
        SelfRater = "self",
        Colleague = "colleague",
        Leader = "leader",
        Public = "public",
    }
);

/// GB 3304 ethnicity codes: `01`–`56`, `97` (other) and `98` (foreign origin).
pub fn parse_ethnicity(field: &str, text: &str) -> Result<Option<String>, Rejection> {
    parse_numeric_code(field, text, |n| (1..=56).contains(&n) || n == 97 || n == 98)
}

/// GB/T 4658 education codes (the two-digit levels in use).
pub fn parse_education(field: &str, text: &str) -> Result<Option<String>, Rejection> {
    const KNOWN: &[u32] = &[
        10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 28, 29, 30, 31, 38, 39, 40, 41, 42,
        43, 44, 47, 48, 49, 60, 61, 62, 63, 70, 71, 72, 73, 80, 81, 90,
    ];
    parse_numeric_code(field, text, |n| KNOWN.contains(&n))
}

fn parse_numeric_code(
    field: &str,
    text: &str,
    known: impl Fn(u32) -> bool,
) -> Result<Option<String>, Rejection> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<u32>() {
        Ok(n) if text.len() == 2 && known(n) => Ok(Some(text.to_owned())),
        _ => Err(Rejection::invalid(
            ReasonCode::UnknownCode,
            field,
            format!("`{field}` has unknown code {text:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_codes() {
        assert_eq!(Rank::parse("rank", "county").unwrap(), Rank::County);
        let err = Rank::parse("person.rank", "general").unwrap_err();
        assert_eq!(err.code, ReasonCode::UnknownCode);
        assert!(err.message.contains("general"), "{}", err.message);
        assert_eq!(
            Gender::parse("g", "").unwrap_err().code,
            ReasonCode::MissingField
        );
        assert_eq!(Theme::parse_opt("t", " ").unwrap(), None);
    }

    #[test]
    fn ethnicity_and_education_tables() {
        assert_eq!(parse_ethnicity("e", "01").unwrap().as_deref(), Some("01"));
        assert!(parse_ethnicity("e", "57").is_err());
        assert!(parse_ethnicity("e", "1").is_err());
        assert_eq!(parse_education("e", "").unwrap(), None);
        assert!(parse_education("e", "20").unwrap().is_some());
        assert!(parse_education("e", "99").is_err());
    }
}
