//! The projector's lanes: the marks split by the first character of their keys, one lane per
//! core, so that one lane reads while another computes.

/// A share of the marks by key: person keys are hex, so lane `i` of `n` takes the keys whose
/// first digit is in its sixteenth-range; the deferred account and class marks (`acct:`,
/// `class:`) fall in the lanes of their first letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lane {
    index: usize,
    of: usize,
}

impl Lane {
    /// Every mark.
    pub const ALL: Lane = Lane { index: 0, of: 1 };

    /// Lane `index` of `of` (at most 16 lanes; `index < of`).
    pub fn new(index: usize, of: usize) -> Lane {
        let of = of.clamp(1, 16);
        Lane {
            index: index.min(of - 1),
            of,
        }
    }

    /// Whether this lane's keys include `key` (by its first character).
    pub(crate) fn takes(self, key: &str) -> bool {
        let digit = key
            .bytes()
            .next()
            .and_then(|b| (b as char).to_digit(16))
            .unwrap_or(15) as usize;
        (0..self.of).rev().find(|i| i * 16 / self.of <= digit) == Some(self.index)
    }

    /// Whether this is the first lane of its split (or [`Lane::ALL`]).
    pub fn is_first(self) -> bool {
        self.index == 0
    }

    /// Every lane of a split into `of`.
    pub fn all(of: usize) -> Vec<Lane> {
        let of = of.clamp(1, 16);
        (0..of).map(|i| Lane::new(i, of)).collect()
    }

    /// ` WHERE …` limiting the marks to this lane (empty for [`Lane::ALL`]).
    pub(crate) fn clause(self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let bound = |i: usize| DIGITS[i * 16 / self.of] as char;
        let low = (self.index > 0).then(|| format!("person_key >= '{}'", bound(self.index)));
        let high =
            (self.index + 1 < self.of).then(|| format!("person_key < '{}'", bound(self.index + 1)));
        match (low, high) {
            (None, None) => String::new(),
            (Some(c), None) | (None, Some(c)) => format!(" WHERE {c}"),
            (Some(l), Some(h)) => format!(" WHERE {l} AND {h}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Lane;

    #[test]
    fn lanes_split_the_hex_keys_and_shared_marks_go_by_their_first_letter() {
        assert_eq!(Lane::ALL.clause(), "");
        let two: Vec<String> = Lane::all(2).into_iter().map(Lane::clause).collect();
        assert_eq!(two, [" WHERE person_key < '8'", " WHERE person_key >= '8'"]);
        let three: Vec<String> = Lane::all(3).into_iter().map(Lane::clause).collect();
        assert_eq!(
            three,
            [
                " WHERE person_key < '5'",
                " WHERE person_key >= '5' AND person_key < 'a'",
                " WHERE person_key >= 'a'",
            ]
        );
        // "acct:…" and "class:…" sort with the keys of their first letters.
        assert!("acct:" >= "a" && "class:" >= "a" && "9f" < "a");
        let [low, high] = [Lane::new(0, 2), Lane::new(1, 2)];
        assert!(!low.takes("class:") && high.takes("class:") && high.takes("acct:"));
        assert!(low.takes("7f") && !high.takes("7f") && Lane::ALL.takes("acct:"));
        let sixteen = Lane::all(16);
        assert!(sixteen[10].takes("acct:") && sixteen[12].takes("class:"));
        assert_eq!(
            sixteen[10].clause(),
            " WHERE person_key >= 'a' AND person_key < 'b'"
        );
        assert_eq!(Lane::all(40).len(), 16);
        assert_eq!(Lane::new(7, 2), Lane::new(1, 2));
    }
}
