//! Warning lists for the organisation departments (预警名单) and the training part of the annual
//! assessment form (年度考核登记表): who is to be followed up, and why, from a dossier alone.

use crate::dossier::{Dossier, Light};
use crate::entries::TrainingEntry;
use crate::error::{ReasonCode, Rejection};
use crate::policy::Policy;
use chrono::Datelike;

/// The warning lists a department follows up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningList {
    /// `RED`: no off-job party training in the window (刚性调训, to be dispatched first).
    Red,
    /// Behind this year's hours: online self-study below the yearly requirement, or (when not
    /// `GREEN`) all hours of the year below the year's share of the requirement.
    Behind,
    /// `REMEDIAL_REQUIRED`: a failed assessment to be retaken.
    Remedial,
    /// `LONG_TRAINING_LIMIT`: a second long off-job class within the span.
    LongTraining,
}

impl WarningList {
    /// Every list, in the order the page and the exports show them.
    pub const ALL: [WarningList; 4] = [
        WarningList::Red,
        WarningList::Behind,
        WarningList::Remedial,
        WarningList::LongTraining,
    ];

    /// Parses `red`, `behind`, `remedial` or `long-training` (the flag codes are accepted too).
    pub fn parse(text: &str) -> Result<WarningList, Rejection> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "red" => Ok(WarningList::Red),
            "behind" => Ok(WarningList::Behind),
            "remedial" | "remedial-required" => Ok(WarningList::Remedial),
            "long-training" | "long-training-limit" => Ok(WarningList::LongTraining),
            other => Err(Rejection::invalid(
                ReasonCode::UnknownCode,
                "list",
                format!("`list` is {other:?}, not a warning list (red, behind, remedial, long-training)"),
            )),
        }
    }

    /// The list's name on the command line, in URLs and in file names.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningList::Red => "red",
            WarningList::Behind => "behind",
            WarningList::Remedial => "remedial",
            WarningList::LongTraining => "long-training",
        }
    }

    /// The list's title in the policy's own terms.
    pub fn title_zh(self) -> &'static str {
        match self {
            WarningList::Red => "红灯名单（五年内未参加脱产培训，刚性调训）",
            WarningList::Behind => "本年度学时不足名单",
            WarningList::Remedial => "需补训名单（考核不合格）",
            WarningList::LongTraining => "长期脱产培训超限名单",
        }
    }
}

/// Why a person is on a list, in the department's language and in English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// 中文.
    pub zh: String,
    /// English.
    pub en: String,
}

impl Reason {
    fn of(parts: Vec<(String, String)>) -> Option<Reason> {
        if parts.is_empty() {
            return None;
        }
        let (zh, en): (Vec<String>, Vec<String>) = parts.into_iter().unzip();
        Some(Reason {
            zh: zh.join("；"),
            en: en.join("; "),
        })
    }
}

/// Why the person of `d` is on `list`, or `None` when they are not. Persons out of scope
/// (`EXEMPT`) are on no list.
pub fn warning(d: &Dossier, list: WarningList, policy: &Policy) -> Option<Reason> {
    if !d.in_scope || d.light == Light::Exempt {
        return None;
    }
    match list {
        WarningList::Red => Reason::of(if d.light == Light::Red {
            vec![(
                format!("{}至{}未参加脱产党性教育培训", d.window_start, d.as_of),
                format!(
                    "no off-job party training from {} to {}",
                    d.window_start, d.as_of
                ),
            )]
        } else {
            Vec::new()
        }),
        WarningList::Behind => behind(d, policy),
        WarningList::Remedial => flagged(d, "REMEDIAL_REQUIRED", "培训考核不合格，需补训"),
        WarningList::LongTraining => flagged(d, "LONG_TRAINING_LIMIT", "长期脱产培训超出次数限制"),
    }
}

fn flagged(d: &Dossier, code: &str, zh: &str) -> Option<Reason> {
    Reason::of(
        d.flags
            .iter()
            .filter(|f| f.code == code)
            .map(|f| {
                let year = f.year.map(|y| format!("{y}年")).unwrap_or_default();
                (format!("{year}{zh}"), f.message.clone())
            })
            .collect(),
    )
}

/// The hours one year asks for: the yearly requirement of the junior ranks, or the window's
/// requirement spread over its years for the senior ones.
pub fn yearly_hours(d: &Dossier, policy: &Policy) -> f64 {
    if policy.is_senior(d.rank) {
        crate::entries::round2(policy.senior_hours / f64::from(policy.window_years.max(1)))
    } else {
        policy.junior_hours_per_year
    }
}

fn behind(d: &Dossier, policy: &Policy) -> Option<Reason> {
    let year = d.as_of.year();
    let (online, total) = d
        .years
        .iter()
        .find(|y| y.year == year)
        .map(|y| {
            (
                y.online_hours,
                y.online_hours + y.off_job_hours + y.on_job_hours,
            )
        })
        .unwrap_or_default();
    let mut why = Vec::new();
    if online + 1e-9 < policy.online_hours_per_year {
        let required = policy.online_hours_per_year;
        why.push((
            format!("{year}年网络学习{online:.2}学时，低于{required}学时"),
            format!("online {online:.2} of {required} 学时 in {year}"),
        ));
    }
    let share = yearly_hours(d, policy);
    if d.light != Light::Green && total + 1e-9 < share {
        why.push((
            format!("{year}年累计{total:.2}学时，低于{share}学时"),
            format!("in all {total:.2} of {share} 学时 in {year}"),
        ));
    }
    Reason::of(why)
}

/// The trainings for the annual assessment form of `year`: off-job trainings that end in it,
/// oldest first.
pub fn annual_form(d: &Dossier, year: i32) -> Vec<&TrainingEntry> {
    let mut rows: Vec<&TrainingEntry> = d
        .trainings
        .iter()
        .filter(|t| t.annual_form && t.end_date.year() == year)
        .collect();
    rows.sort_by_key(|t| (t.start_date, t.end_date));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_by_name_and_by_flag_code() {
        for list in WarningList::ALL {
            assert_eq!(WarningList::parse(list.as_str()).unwrap(), list);
        }
        assert_eq!(
            WarningList::parse("REMEDIAL_REQUIRED").unwrap(),
            WarningList::Remedial
        );
        assert_eq!(
            WarningList::parse("LONG_TRAINING_LIMIT").unwrap(),
            WarningList::LongTraining
        );
        let e = WarningList::parse("yellow").unwrap_err();
        assert!(e.message.contains("not a warning list"), "{}", e.message);
    }
}
