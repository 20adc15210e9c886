//! The identity review queue's rules (DESIGN §4): which of a person's records contradict each
//! other, which records wait for a reviewer meanwhile, and what a reviewer's decision changes.
//!
//! Three conflicts are found:
//! - [`ConflictKind::AccountLinkedTwice`]: live links name one platform account for two or more
//!   persons. The account's records (and the links) count for nobody until a reviewer picks
//!   the owner; then they count for the owner only.
//! - [`ConflictKind::BirthDateMismatch`]: a person record's birth date is not the one embedded
//!   in its national ID. That person record waits; a reviewer keeps the ID's date or the
//!   record's.
//! - [`ConflictKind::NameMismatch`]: person records for one person (from several HR systems, or
//!   several records of one) carry different names. The name received first stands and the
//!   records naming someone else wait; a reviewer picks the record whose name is right, and
//!   then every person record counts under that name.
//!
//! A conflict's id is derived from what conflicts, so the same contradiction always has the
//! same id, a decision stays attached to it, and corrected data simply stops producing it.

use crate::entries::StoredRecord;
use crate::record::{Body, Kind, PersonRef, SourceRef};
use crate::PersonKey;
use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// What kind of contradiction a conflict is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConflictKind {
    /// One account linked to two or more persons.
    AccountLinkedTwice,
    /// A person record's birth date disagrees with its national ID.
    BirthDateMismatch,
    /// Person records of one person carry different names.
    NameMismatch,
}

impl ConflictKind {
    /// The stable name (`ACCOUNT_LINKED_TWICE`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictKind::AccountLinkedTwice => "ACCOUNT_LINKED_TWICE",
            ConflictKind::BirthDateMismatch => "BIRTH_DATE_MISMATCH",
            ConflictKind::NameMismatch => "NAME_MISMATCH",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(name: &str) -> Option<ConflictKind> {
        [
            ConflictKind::AccountLinkedTwice,
            ConflictKind::BirthDateMismatch,
            ConflictKind::NameMismatch,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

/// One side of a conflict: a record and what it says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Side {
    /// The record on this side (a link, or a person record).
    pub source: SourceRef,
    /// When its current version was received.
    pub received_at: String,
    /// The person this side names.
    pub person_key: PersonKey,
    /// The name this side gives (person records; empty for links).
    pub name: String,
    /// The birth date this side gives, if any.
    pub birth_date: Option<NaiveDate>,
    /// What `ResolveConflict` takes to decide for this side.
    pub choice: String,
}

/// A contradiction found in the records, with every side.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Conflict {
    /// Derived from what conflicts (see the module documentation).
    pub id: String,
    /// Its kind.
    pub kind: ConflictKind,
    /// The persons involved, sorted.
    pub persons: Vec<PersonKey>,
    /// For an account conflict: `(account_system, account_id)`.
    pub account: Option<(String, String)>,
    /// The sides, in a stable order.
    pub sides: Vec<Side>,
}

impl Conflict {
    /// Whether `choice` decides this conflict (it is one of the sides' choices).
    pub fn accepts(&self, choice: &str) -> bool {
        self.sides.iter().any(|s| s.choice == choice)
    }

    /// The choices a reviewer can make, for error messages.
    pub fn choices(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self.sides.iter().map(|s| s.choice.as_str()).collect();
        all.dedup();
        all
    }
}

/// A live link naming an account: whose it is and which record says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The person the link names.
    pub person_key: PersonKey,
    /// The link record.
    pub source: SourceRef,
    /// When its current version was received.
    pub received_at: String,
}

/// Every live link of the accounts a person's links name, by `(account_system, account_id)`.
pub type Claims = BTreeMap<(String, String), Vec<Claim>>;

/// Reviewers' decisions: conflict id → the chosen side's `choice`.
pub type Decisions = BTreeMap<String, String>;

/// A person's records after review.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reviewed {
    /// The records that count for the dossier (decisions applied).
    pub records: Vec<StoredRecord>,
    /// Records waiting for a reviewer, with the conflict they wait on.
    pub held: Vec<(SourceRef, String)>,
    /// Every conflict found, decided or not.
    pub conflicts: Vec<Conflict>,
}

/// The choice that keeps a birth date as the record states it.
pub const KEEP_RECORD: &str = "record";
/// The choice that takes the birth date embedded in the national ID.
pub const KEEP_ID: &str = "id";

fn conflict_id(prefix: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    format!("{prefix}-{}", &hex::encode(h.finalize())[..20])
}

/// Applies the review rules to `person`'s current `records` (as the store gathers them: the
/// person's own records, the records of linked accounts, the classes they refer to).
pub fn review(
    person: &PersonKey,
    records: Vec<StoredRecord>,
    claims: &Claims,
    decisions: &Decisions,
) -> Reviewed {
    let mut out = Reviewed::default();
    let accounts = contested_accounts(person, &records, claims, decisions, &mut out.conflicts);
    let mut kept = Vec::with_capacity(records.len());
    for mut r in records {
        let account = match &r.body {
            Body::Link(l) => Some((l.account_system.clone(), l.account_id.clone())),
            b => match b.person_ref() {
                Some(PersonRef::Account {
                    account_system,
                    account_id,
                }) => Some((account_system.clone(), account_id.clone())),
                _ => None,
            },
        };
        match account.and_then(|a| accounts.get(&a)) {
            Some(Standing::Held(id)) => out.held.push((r.source.clone(), id.clone())),
            Some(Standing::Dropped) => {}
            Some(Standing::Counts) | None => {
                if birth_date_decided(person, &mut r, decisions, &mut out) {
                    kept.push(r);
                }
            }
        }
    }
    out.records = names(person, kept, decisions, &mut out.held, &mut out.conflicts);
    out
}

/// Accounts this person's links name that another person's live link names too: each is a
/// conflict (pushed to `conflicts`), and what it means for this person's records.
fn contested_accounts(
    person: &PersonKey,
    records: &[StoredRecord],
    claims: &Claims,
    decisions: &Decisions,
    conflicts: &mut Vec<Conflict>,
) -> BTreeMap<(String, String), Standing> {
    let mut accounts: BTreeMap<(String, String), Standing> = BTreeMap::new();
    for r in records {
        let Body::Link(link) = &r.body else { continue };
        let account = (link.account_system.clone(), link.account_id.clone());
        if accounts.contains_key(&account) {
            continue;
        }
        let Some(claim) = claims.get(&account) else {
            continue;
        };
        let owners: BTreeSet<&PersonKey> = claim.iter().map(|c| &c.person_key).collect();
        if owners.len() < 2 {
            continue;
        }
        let mut parts: Vec<&str> = vec![&account.0, &account.1];
        parts.extend(owners.iter().map(|k| k.as_str()));
        let id = conflict_id("account", &parts);
        let mut sides: Vec<Side> = claim
            .iter()
            .map(|c| Side {
                source: c.source.clone(),
                received_at: c.received_at.clone(),
                person_key: c.person_key.clone(),
                name: String::new(),
                birth_date: None,
                choice: c.person_key.to_string(),
            })
            .collect();
        sides.sort_by(|a, b| (&a.choice, &a.source).cmp(&(&b.choice, &b.source)));
        let verdict = match decisions.get(&id) {
            Some(owner) if owner == person.as_str() => Standing::Counts,
            Some(_) => Standing::Dropped,
            None => Standing::Held(id.clone()),
        };
        conflicts.push(Conflict {
            id,
            kind: ConflictKind::AccountLinkedTwice,
            persons: owners.into_iter().cloned().collect(),
            account: Some(account.clone()),
            sides,
        });
        accounts.insert(account, verdict);
    }
    accounts
}

/// A person record whose birth date disagrees with its ID: a conflict, and the decision
/// applied. Whether the record counts now (false: it waits for a reviewer).
fn birth_date_decided(
    person: &PersonKey,
    r: &mut StoredRecord,
    decisions: &Decisions,
    out: &mut Reviewed,
) -> bool {
    let Body::Person(p) = &mut r.body else {
        return true;
    };
    let Some((id, stated, from_id)) = birth_conflict(&r.source, p) else {
        return true;
    };
    let side = |choice: &str, date: NaiveDate| Side {
        source: r.source.clone(),
        received_at: r.received_at.clone(),
        person_key: person.clone(),
        name: p.name.clone(),
        birth_date: Some(date),
        choice: choice.to_owned(),
    };
    out.conflicts.push(Conflict {
        id: id.clone(),
        kind: ConflictKind::BirthDateMismatch,
        persons: vec![person.clone()],
        account: None,
        sides: vec![side(KEEP_RECORD, stated), side(KEEP_ID, from_id)],
    });
    match decisions.get(&id).map(String::as_str) {
        Some(KEEP_ID) => p.birth_date = Some(from_id),
        Some(_) => {}
        None => {
            out.held.push((r.source.clone(), id));
            return false;
        }
    }
    true
}

/// The birth-date conflict a person record is in by itself, if any: its id, the stated date
/// and the ID's. Known as soon as the record arrives, so ingest can report it `PARKED`.
pub fn birth_conflict(
    source: &SourceRef,
    person: &crate::record::Person,
) -> Option<(String, NaiveDate, NaiveDate)> {
    let from_id = person.national_id.birth_date();
    let stated = person.birth_date.filter(|d| disagrees(*d, from_id))?;
    let id = conflict_id(
        "birth",
        &[
            person.person_key.as_str(),
            &source.system,
            &source.record_id,
            &stated.to_string(),
        ],
    );
    Some((id, stated, from_id))
}

/// Whether a stated birth date contradicts the ID's. HR forms often give only the month
/// (`yyyyMM`, `yyyy.MM` in LRMX and A01), read as its first day: a date on the 1st is compared
/// by year and month.
fn disagrees(stated: NaiveDate, from_id: NaiveDate) -> bool {
    use chrono::Datelike;
    if stated.day() == 1 {
        (stated.year(), stated.month()) != (from_id.year(), from_id.month())
    } else {
        stated != from_id
    }
}

enum Standing {
    Counts,
    Dropped,
    Held(String),
}

/// The name rule over the records still counting: see [`ConflictKind::NameMismatch`].
fn names(
    person: &PersonKey,
    mut records: Vec<StoredRecord>,
    decisions: &Decisions,
    held: &mut Vec<(SourceRef, String)>,
    conflicts: &mut Vec<Conflict>,
) -> Vec<StoredRecord> {
    let distinct: BTreeSet<&str> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Person(p) => Some(p.name.trim()),
            _ => None,
        })
        .collect();
    if distinct.len() < 2 {
        return records;
    }
    let mut sides: Vec<Side> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Person(p) => Some(Side {
                source: r.source.clone(),
                received_at: r.received_at.clone(),
                person_key: person.clone(),
                name: p.name.trim().to_owned(),
                birth_date: p.birth_date,
                choice: format!("{}/{}", r.source.system, r.source.record_id),
            }),
            _ => None,
        })
        .collect();
    // Received first stands; ties by source.
    sides.sort_by(|a, b| (&a.received_at, &a.source).cmp(&(&b.received_at, &b.source)));
    let mut parts: Vec<String> = vec![person.to_string()];
    let mut pairs: Vec<(&str, &str)> = sides
        .iter()
        .map(|s| (s.choice.as_str(), s.name.as_str()))
        .collect();
    pairs.sort_unstable();
    parts.extend(pairs.iter().map(|(c, n)| format!("{c}={n}")));
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let id = conflict_id("name", &refs);
    let chosen = decisions
        .get(&id)
        .and_then(|c| sides.iter().find(|s| &s.choice == c));
    match chosen {
        Some(side) => {
            let name = side.name.clone();
            for r in &mut records {
                if let Body::Person(p) = &mut r.body {
                    p.name = name.clone();
                }
            }
        }
        None => {
            let first = sides[0].name.clone();
            let waiting: BTreeSet<SourceRef> = sides
                .iter()
                .filter(|s| s.name != first)
                .map(|s| s.source.clone())
                .collect();
            records.retain(|r| {
                let wait = r.source.kind == Kind::Person && waiting.contains(&r.source);
                if wait {
                    held.push((r.source.clone(), id.clone()));
                }
                !wait
            });
        }
    }
    conflicts.push(Conflict {
        id,
        kind: ConflictKind::NameMismatch,
        persons: vec![person.clone()],
        account: None,
        sides,
    });
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::PersonStatus;
    use crate::identity::{make_national_id, NationalId, PersonKeyer};
    use crate::record::{Learning, Link, Person};

    fn key(seq: u32, birth: NaiveDate) -> (NationalId, PersonKey) {
        let id = NationalId::parse("id", &make_national_id(110105, birth, seq)).unwrap();
        let key = PersonKeyer::new(b"test").key(&id);
        (id, key)
    }

    fn stored(system: &str, record_id: &str, received_at: &str, body: Body) -> StoredRecord {
        StoredRecord {
            source: SourceRef {
                system: system.into(),
                kind: body.kind(),
                record_id: record_id.into(),
                version: 1,
            },
            received_at: received_at.into(),
            profile: String::new(),
            body,
        }
    }

    fn person(id: &NationalId, key: &PersonKey, name: &str, birth: Option<NaiveDate>) -> Body {
        Body::Person(Person {
            national_id: id.clone(),
            person_key: key.clone(),
            name: name.into(),
            gender: None,
            birth_date: birth,
            ethnicity: None,
            education: None,
            rank: None,
            category: None,
            unit_code: None,
            unit_name: None,
            region_code: None,
            position: None,
            status: PersonStatus::Active,
            hired_on: None,
            status_since: None,
            authority: None,
        })
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn link(key: &PersonKey) -> Body {
        Body::Link(Link {
            person_key: key.clone(),
            account_system: "elearn".into(),
            account_id: "u1".into(),
        })
    }

    fn learning() -> Body {
        Body::Learning(Learning {
            person: PersonRef::Account {
                account_system: "elearn".into(),
                account_id: "u1".into(),
            },
            course_id: "c1".into(),
            course_title: "Course".into(),
            themes: vec![],
            amount: crate::record::StudyAmount::Hours(2.0),
            completed_at: "2025-03-01T00:00:00Z".into(),
            completed_on: date(2025, 3, 1),
        })
    }

    fn kinds(r: &Reviewed) -> Vec<Kind> {
        r.records.iter().map(|r| r.source.kind).collect()
    }

    #[test]
    fn an_account_claimed_twice_waits_then_counts_for_the_chosen_owner_only() {
        let birth = date(1980, 1, 1);
        let (ida, a) = key(1, birth);
        let (_, b) = key(2, birth);
        let records = vec![
            stored("hr", "pa", "t1", person(&ida, &a, "甲", Some(birth))),
            stored("elearn", "la", "t1", link(&a)),
            stored("elearn", "s1", "t2", learning()),
        ];
        let claim = |k: &PersonKey, rid: &str| Claim {
            person_key: k.clone(),
            source: SourceRef {
                system: "elearn".into(),
                kind: Kind::Link,
                record_id: rid.into(),
                version: 1,
            },
            received_at: "t1".into(),
        };
        let mut claims = Claims::new();
        claims.insert(
            ("elearn".into(), "u1".into()),
            vec![claim(&a, "la"), claim(&b, "lb")],
        );
        let open = review(&a, records.clone(), &claims, &Decisions::new());
        assert_eq!(kinds(&open), vec![Kind::Person]);
        assert_eq!(open.held.len(), 2, "the link and the account's record wait");
        let c = &open.conflicts[0];
        assert_eq!(c.kind, ConflictKind::AccountLinkedTwice);
        assert_eq!(c.persons.len(), 2);
        assert!(c.accepts(a.as_str()) && c.accepts(b.as_str()) && !c.accepts("x"));

        let mine: Decisions = [(c.id.clone(), a.to_string())].into();
        let decided = review(&a, records.clone(), &claims, &mine);
        assert_eq!(
            kinds(&decided),
            vec![Kind::Person, Kind::Link, Kind::Learning]
        );
        assert!(decided.held.is_empty());
        assert_eq!(decided.conflicts[0].id, c.id, "the id is stable");

        let theirs: Decisions = [(c.id.clone(), b.to_string())].into();
        let other = review(&a, records, &claims, &theirs);
        assert_eq!(kinds(&other), vec![Kind::Person]);
        assert!(other.held.is_empty());
    }

    #[test]
    fn a_birth_date_against_the_id_waits_until_a_side_is_kept() {
        let (id, k) = key(3, date(1975, 6, 1));
        let records = vec![stored(
            "hr",
            "p",
            "t1",
            person(&id, &k, "乙", Some(date(1975, 1, 6))),
        )];
        let open = review(&k, records.clone(), &Claims::new(), &Decisions::new());
        assert!(open.records.is_empty());
        let c = &open.conflicts[0];
        assert_eq!(c.kind, ConflictKind::BirthDateMismatch);
        assert_eq!(c.choices(), vec![KEEP_RECORD, KEEP_ID]);
        let birth_after = |choice: &str| {
            let d: Decisions = [(c.id.clone(), choice.to_owned())].into();
            match &review(&k, records.clone(), &Claims::new(), &d).records[0].body {
                Body::Person(p) => p.birth_date,
                _ => None,
            }
        };
        assert_eq!(birth_after(KEEP_ID), Some(date(1975, 6, 1)));
        assert_eq!(birth_after(KEEP_RECORD), Some(date(1975, 1, 6)));
        // The ID's birth date, or only its month (a form giving `yyyy.MM`): no conflict.
        let (id, k) = key(3, date(1975, 6, 17));
        for stated in [date(1975, 6, 17), date(1975, 6, 1)] {
            let fine = vec![stored("hr", "p", "t1", person(&id, &k, "乙", Some(stated)))];
            assert!(review(&k, fine, &Claims::new(), &Decisions::new())
                .conflicts
                .is_empty());
        }
        let off = vec![stored(
            "hr",
            "p",
            "t1",
            person(&id, &k, "乙", Some(date(1975, 7, 1))),
        )];
        assert_eq!(
            review(&k, off, &Claims::new(), &Decisions::new())
                .conflicts
                .len(),
            1
        );
    }

    #[test]
    fn a_second_name_waits_and_the_chosen_name_applies_to_every_record() {
        let (id, k) = key(4, date(1970, 2, 2));
        let records = vec![
            stored("hr-b", "p9", "2026-02-01", person(&id, &k, "张叁", None)),
            stored("hr-a", "p1", "2026-01-01", person(&id, &k, "张三", None)),
        ];
        let open = review(&k, records.clone(), &Claims::new(), &Decisions::new());
        assert_eq!(open.records.len(), 1, "the first name received stands");
        assert_eq!(open.records[0].source.system, "hr-a");
        assert_eq!(open.held[0].0.system, "hr-b");
        let c = &open.conflicts[0];
        assert_eq!(c.kind, ConflictKind::NameMismatch);
        let d: Decisions = [(c.id.clone(), "hr-b/p9".to_owned())].into();
        let decided = review(&k, records, &Claims::new(), &d);
        assert_eq!(decided.records.len(), 2);
        for r in &decided.records {
            let Body::Person(p) = &r.body else { panic!() };
            assert_eq!(p.name, "张叁");
        }
    }
}
