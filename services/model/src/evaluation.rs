//! Multi-rater evaluation (多元评价, DESIGN §5): per training and dimension, the mean within each
//! rater role, combined across the roles present with weights renormalised over them; a
//! training's score is the mean over its dimensions; the dossier's is the mean over the window's
//! evaluated trainings. Dimensions map to 德能勤绩廉 through the policy's indicator map.

use crate::entries::StoredRecord;
use crate::policy::Policy;
use crate::record::{Body, Evaluation};
use chrono::{Datelike, NaiveDate};
use std::collections::BTreeMap;

/// The evaluation summary of a dossier.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct EvaluationSummary {
    /// Mean weighted score over the window's evaluated trainings (0 when none).
    pub weighted_score: f64,
    /// Per-criterion mean over the window's trainings (0–100).
    pub capability: BTreeMap<String, f64>,
    /// Weighted score per year of the classes' end dates.
    pub growth: Vec<(i32, f64)>,
}

/// One class's combined dimension scores.
fn combine(evals: &[&Evaluation], policy: &Policy) -> BTreeMap<String, f64> {
    // dimension → role → (sum, count)
    let mut by_dim: BTreeMap<&str, BTreeMap<_, (f64, f64)>> = BTreeMap::new();
    for e in evals {
        if policy
            .rater_weights
            .get(&e.rater_role)
            .is_none_or(|w| *w <= 0.0)
        {
            continue;
        }
        for (dim, score) in &e.dimensions {
            let cell = by_dim
                .entry(dim)
                .or_default()
                .entry(e.rater_role)
                .or_insert((0.0, 0.0));
            cell.0 += score;
            cell.1 += 1.0;
        }
    }
    by_dim
        .into_iter()
        .map(|(dim, roles)| {
            let total: f64 = roles.keys().map(|r| policy.rater_weights[r]).sum();
            let score = roles
                .iter()
                .map(|(r, (sum, n))| policy.rater_weights[r] / total * (sum / n))
                .sum();
            (dim.to_owned(), score)
        })
        .collect()
}

fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// The summary over classes ending in `[start, as_of]`; `class_end` gives a class's end date.
pub fn summarise(
    records: &[StoredRecord],
    class_end: impl Fn(&str) -> Option<NaiveDate>,
    start: NaiveDate,
    as_of: NaiveDate,
    policy: &Policy,
) -> EvaluationSummary {
    let mut by_class: BTreeMap<&str, Vec<&Evaluation>> = BTreeMap::new();
    let mut sorted: Vec<&StoredRecord> = records.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.source.system, &a.source.record_id).cmp(&(&b.source.system, &b.source.record_id))
    });
    for r in sorted {
        if let Body::Evaluation(e) = &r.body {
            by_class.entry(&e.class_id).or_default().push(e);
        }
    }
    let mut scores = Vec::new();
    let mut per_year: BTreeMap<i32, Vec<f64>> = BTreeMap::new();
    let mut criteria: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (class_id, evals) in by_class {
        let Some(end) = class_end(class_id).filter(|e| *e >= start && *e <= as_of) else {
            continue;
        };
        let dims = combine(&evals, policy);
        let Some(score) = mean(dims.values().copied()) else {
            continue;
        };
        scores.push(score);
        per_year.entry(end.year()).or_default().push(score);
        let mut class_criteria: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for (dim, s) in &dims {
            if let Some(c) = policy.criterion(dim) {
                class_criteria.entry(c).or_default().push(*s);
            }
        }
        for (c, v) in class_criteria {
            criteria.entry(c.to_owned()).or_default().extend(mean(v));
        }
    }
    let round = crate::entries::round2;
    EvaluationSummary {
        weighted_score: mean(scores).map(round).unwrap_or(0.0),
        capability: criteria
            .into_iter()
            .filter_map(|(c, v)| Some((c, round(mean(v)?))))
            .collect(),
        growth: per_year
            .into_iter()
            .filter_map(|(y, v)| Some((y, round(mean(v)?))))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::RaterRole;
    use crate::record::{PersonRef, SourceRef};

    fn eval(id: &str, class: &str, role: RaterRole, dims: &[(&str, f64)]) -> StoredRecord {
        StoredRecord {
            source: SourceRef {
                system: "s".into(),
                kind: crate::record::Kind::Evaluation,
                record_id: id.into(),
                version: 1,
            },
            received_at: String::new(),
            profile: String::new(),
            body: Body::Evaluation(Evaluation {
                person: PersonRef::Account {
                    account_system: "a".into(),
                    account_id: "b".into(),
                },
                class_id: class.into(),
                rater_role: role,
                dimensions: dims.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                evaluated_at: None,
            }),
        }
    }

    #[test]
    fn weights_are_renormalised_over_present_roles() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let records = vec![
            // Two class teachers average to 80; one peer gives 60; self is weightless.
            eval(
                "1",
                "c",
                RaterRole::ClassTeacher,
                &[("ability", 70.0), ("discipline", 90.0)],
            ),
            eval(
                "2",
                "c",
                RaterRole::ClassTeacher,
                &[("ability", 90.0), ("discipline", 90.0)],
            ),
            eval("3", "c", RaterRole::Peer, &[("ability", 60.0)]),
            eval("4", "c", RaterRole::SelfRater, &[("ability", 0.0)]),
            eval("5", "old", RaterRole::Peer, &[("ability", 10.0)]),
        ];
        let ends = |c: &str| {
            Some(if c == "c" {
                d("2024-05-01")
            } else {
                d("2010-01-01")
            })
        };
        let s = summarise(
            &records,
            ends,
            d("2020-07-01"),
            d("2025-06-30"),
            &Policy::default(),
        );
        // ability: (0.3 × 80 + 0.2 × 60) / 0.5 = 72; discipline: class teachers only = 90.
        assert_eq!(s.capability.get("ability"), Some(&72.0));
        assert_eq!(s.capability.get("diligence"), Some(&90.0));
        assert_eq!(s.weighted_score, 81.0);
        assert_eq!(s.growth, vec![(2024, 81.0)]);
    }
}
