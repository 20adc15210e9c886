//! What a replay did to each dead letter, written in the replay's own transaction: the letter
//! keeps its first refusal (stage, reason, message) and gains one line of history per attempt.
//! A letter's bytes may make several records (a row mapped to a class, an enrollment and a
//! result): its attempt is refused if any of them is, else the most telling of their
//! outcomes (accepted or parked, then superseded, then duplicate), and only then is the
//! letter marked replayed.

use crate::{DeadLetterInput, Result};
use sqlx::{Any, Transaction};
use std::collections::BTreeMap;
use trainhub_model::merge::OutcomeStatus;
use trainhub_model::Rejection;

/// One letter's attempt, gathered over its records.
#[derive(Default)]
struct Attempt<'a> {
    stored: Option<OutcomeStatus>,
    refused: Option<&'a Rejection>,
}

/// Appends each replayed letter's attempt: `stored` pairs each stored record's letter (if it
/// is a replay) with its outcome; `rejects` carry theirs.
pub(crate) async fn record_attempts(
    tx: &mut Transaction<'static, Any>,
    now: &str,
    stored: impl Iterator<Item = (Option<i64>, OutcomeStatus)>,
    rejects: &[DeadLetterInput],
) -> Result<()> {
    let mut letters: BTreeMap<i64, Attempt<'_>> = BTreeMap::new();
    for (letter, status) in stored {
        if let Some(id) = letter {
            let a = letters.entry(id).or_default();
            if a.stored.is_none_or(|s| status.weight() > s.weight()) {
                a.stored = Some(status);
            }
        }
    }
    for d in rejects {
        if let Some(id) = d.replay_of {
            letters
                .entry(id)
                .or_default()
                .refused
                .get_or_insert(&d.rejection);
        }
    }
    for (id, attempt) in letters {
        let (line, replayed) = match (attempt.refused, attempt.stored) {
            (Some(r), _) => (
                serde_json::json!({
                    "at": now,
                    "outcome": "REJECTED",
                    "stage": r.stage.as_str(),
                    "reason_code": r.code.as_str(),
                    "message": r.describe(),
                }),
                None,
            ),
            (None, Some(status)) => (
                serde_json::json!({ "at": now, "outcome": status.as_str().to_ascii_uppercase() }),
                Some(now),
            ),
            (None, None) => continue,
        };
        sqlx::query(
            "UPDATE dead_letters SET replayed_at = COALESCE($1, replayed_at), \
             replay_attempts = replay_attempts + 1, attempts = attempts || $2 WHERE id = $3",
        )
        .bind(replayed)
        .bind(format!("{line}\n"))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
