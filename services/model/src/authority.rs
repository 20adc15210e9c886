//! Which cadre-management authority manages a person whose HR record names none: derived from
//! the person's unit by the operator's mapping (`[[authorities]] units = [...]`).

/// Unit codes (exact, or a prefix ending in `*`) → authority codes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitAuthorities {
    exact: std::collections::BTreeMap<String, String>,
    /// (prefix, authority), longest prefix first.
    prefixes: Vec<(String, String)>,
}

impl UnitAuthorities {
    /// The mapping of `(unit pattern, authority)` pairs. A unit named twice, exactly or as
    /// the same prefix, for two authorities is an error naming both.
    pub fn new(
        entries: impl IntoIterator<Item = (String, String)>,
    ) -> Result<UnitAuthorities, String> {
        let mut map = UnitAuthorities::default();
        for (pattern, authority) in entries {
            let pattern = pattern.trim().to_owned();
            if pattern.is_empty() || pattern == "*" {
                return Err(format!(
                    "authority `{authority}`: a unit pattern is empty or `*` (name units or prefixes such as `3201*`)"
                ));
            }
            let (key, prefix) = match pattern.strip_suffix('*') {
                Some(p) => (p.to_owned(), true),
                None => (pattern.clone(), false),
            };
            let earlier = if prefix {
                map.prefixes
                    .iter()
                    .find(|(p, _)| *p == key)
                    .map(|(_, a)| a.clone())
            } else {
                map.exact.get(&key).cloned()
            };
            if let Some(other) = earlier.filter(|other| *other != authority) {
                return Err(format!(
                    "unit pattern `{pattern}` is mapped to two authorities, `{other}` and `{authority}`"
                ));
            }
            if prefix {
                map.prefixes.push((key, authority));
            } else {
                map.exact.insert(key, authority);
            }
        }
        map.prefixes
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        Ok(map)
    }

    /// Whether nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// The authority of `unit_code`: its exact entry, else the longest matching prefix.
    pub fn of(&self, unit_code: &str) -> Option<&str> {
        self.exact.get(unit_code).map(String::as_str).or_else(|| {
            self.prefixes
                .iter()
                .find(|(p, _)| unit_code.starts_with(p.as_str()))
                .map(|(_, a)| a.as_str())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(u, a)| (u.to_string(), a.to_string()))
            .collect()
    }

    #[test]
    fn an_exact_unit_wins_then_the_longest_prefix() {
        let map = UnitAuthorities::new(pairs(&[
            ("32*", "js-prov"),
            ("3201*", "js-nanjing"),
            ("320102", "js-nanjing-xuanwu"),
        ]))
        .unwrap();
        assert_eq!(map.of("320102"), Some("js-nanjing-xuanwu"));
        assert_eq!(map.of("320105"), Some("js-nanjing"));
        assert_eq!(map.of("320500"), Some("js-prov"));
        assert_eq!(map.of("110000"), None);
        assert!(UnitAuthorities::default().of("32").is_none());
    }

    #[test]
    fn a_unit_mapped_twice_or_a_bare_star_is_refused() {
        let e = UnitAuthorities::new(pairs(&[("3201*", "a"), ("3201*", "b")])).unwrap_err();
        assert!(e.contains("`a` and `b`"), "{e}");
        assert!(UnitAuthorities::new(pairs(&[("*", "a")])).is_err());
        assert!(UnitAuthorities::new(pairs(&[("U1", "a"), ("U1", "a")])).is_ok());
    }
}
