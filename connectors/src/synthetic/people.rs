//! The population, one person at a time: [`People`] yields each person with their own records
//! after the classes, so a benchmark of a million people never holds them all;
//! [`population`] collects it.

use super::{
    generate_classes, person_records, training_records, Population, SynthClass, SynthPerson,
};
use chrono::{Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::SeedableRng;
use trainhub_model::identity::make_national_id;
use trainhub_proto::v1 as pb;

/// Generates `persons` people with their classes and study. Roughly 20 records per person.
pub fn population(seed: u64, persons: usize) -> Population {
    let mut people = People::new(seed, persons);
    let mut out = Population {
        records: people.classes(),
        ..Population::default()
    };
    for (person, records) in people {
        let first = out.records.len();
        out.records.extend(records);
        out.spans.push(first..out.records.len());
        out.persons.push(person);
    }
    out
}

/// The people of a population in order, each with their own records; the same people and
/// records as [`population`] for the same seed and size.
pub struct People {
    rng: StdRng,
    classes: Vec<SynthClass>,
    class_records: Vec<pb::Record>,
    today: NaiveDate,
    units: usize,
    next: usize,
    persons: usize,
}

impl People {
    /// The generator of `persons` people.
    pub fn new(seed: u64, persons: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let today = NaiveDate::from_ymd_opt(2026, 6, 30).expect("valid date");
        let mut class_records = Vec::new();
        let classes = generate_classes(&mut rng, &mut class_records, (persons / 8).max(4), today);
        People {
            rng,
            classes,
            class_records,
            today,
            units: (persons / 25).max(1),
            next: 0,
            persons,
        }
    }

    /// The class records, which come before every person's (taken once).
    pub fn classes(&mut self) -> Vec<pb::Record> {
        std::mem::take(&mut self.class_records)
    }
}

impl Iterator for People {
    type Item = (SynthPerson, Vec<pb::Record>);

    fn next(&mut self) -> Option<Self::Item> {
        let n = self.next;
        if n == self.persons {
            return None;
        }
        self.next += 1;
        // IDs are unique: people sharing region and sequence (same n % 5000) differ in birth
        // date by their group number.
        let (slot, group) = (n % 5000, (n / 5000) as i64);
        let base = NaiveDate::from_ymd_opt(1965, 1, 1).expect("valid date");
        let birth = base + Duration::days((slot as i64 * 7919) % 12000 + group);
        let region = [110105u32, 320102, 440305, 510107, 330106][n % 5];
        let person = SynthPerson {
            national_id: make_national_id(region, birth, (slot / 5) as u32),
            account: (!n.is_multiple_of(10)).then(|| format!("u{n:07}")),
            unit_code: format!("U{:04}", n % self.units),
        };
        let mut records = Vec::new();
        person_records(&mut self.rng, &mut records, &person, birth, n, self.today);
        training_records(&mut self.rng, &mut records, &person, &self.classes, n);
        Some((person, records))
    }
}
