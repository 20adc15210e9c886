//! Where a profile reads its values: a table row, a JSON document (with `each` scoping), the
//! elements of an XML form.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// Where a profile reads its values.
pub trait Source {
    /// The value at `path`, if present and not blank (already trimmed).
    fn get(&self, path: &str) -> Option<Cow<'_, str>>;

    /// The structured value at `path` (an array for a list field, an object for a map
    /// field); only JSON sources have them.
    fn value(&self, _path: &str) -> Option<&serde_json::Value> {
        None
    }

    /// The whole document, for `each`; only JSON sources have one.
    fn document(&self) -> Option<&serde_json::Value> {
        None
    }
}

/// A JSON value as text: strings trimmed, numbers and booleans written out; blank is none.
pub(super) fn scalar(value: &serde_json::Value) -> Option<Cow<'_, str>> {
    let text = match value {
        serde_json::Value::String(s) => Cow::Borrowed(s.trim()),
        serde_json::Value::Number(n) => Cow::Owned(n.to_string()),
        serde_json::Value::Bool(b) => Cow::Owned(b.to_string()),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

impl Source for serde_json::Value {
    fn get(&self, path: &str) -> Option<Cow<'_, str>> {
        scalar(Source::value(self, path)?)
    }

    fn value(&self, path: &str) -> Option<&serde_json::Value> {
        if path.starts_with('/') {
            self.pointer(path)
        } else {
            self.get(path)
        }
    }

    fn document(&self) -> Option<&serde_json::Value> {
        Some(self)
    }
}

/// One element matched by `each`, with the elements it sits in: `/x` is relative to the
/// element, `../x` to the enclosing matched element (`../../x` two up), `//x` to the document.
pub(super) struct Scoped<'a> {
    pub(super) chain: Vec<&'a serde_json::Value>,
}

impl Scoped<'_> {
    fn resolve(&self, path: &str) -> Option<&serde_json::Value> {
        if let Some(rest) = path.strip_prefix("//") {
            return self.chain[0].pointer(&format!("/{rest}"));
        }
        let mut rest = path;
        let mut up = 0;
        while let Some(r) = rest.strip_prefix("../") {
            up += 1;
            rest = r;
        }
        let at = self.chain.len().checked_sub(1 + up)?;
        let rest = if rest.starts_with('/') {
            rest.to_owned()
        } else {
            format!("/{rest}")
        };
        self.chain[at].pointer(&rest)
    }
}

impl Source for Scoped<'_> {
    fn get(&self, path: &str) -> Option<Cow<'_, str>> {
        scalar(self.resolve(path)?)
    }

    fn value(&self, path: &str) -> Option<&serde_json::Value> {
        self.resolve(path)
    }
}

/// The chains of elements an `each` pattern (`/classes/*/roster/*`) matches: the document,
/// then each element a `*` stepped into.
pub(super) fn matches<'a>(
    root: &'a serde_json::Value,
    pattern: &str,
) -> Vec<Vec<&'a serde_json::Value>> {
    let mut chains = vec![vec![root]];
    let mut at: Vec<&'a serde_json::Value> = vec![root];
    for segment in pattern.trim_start_matches('/').split('/') {
        let mut next_chains = Vec::new();
        let mut next_at = Vec::new();
        for (chain, value) in chains.into_iter().zip(at) {
            if segment == "*" {
                let items: Vec<&serde_json::Value> = match value {
                    serde_json::Value::Array(a) => a.iter().collect(),
                    serde_json::Value::Object(o) => o.values().collect(),
                    _ => Vec::new(),
                };
                for item in items {
                    let mut c = chain.clone();
                    c.push(item);
                    next_chains.push(c);
                    next_at.push(item);
                }
            } else if let Some(v) = value.get(segment) {
                next_chains.push(chain);
                next_at.push(v);
            }
        }
        chains = next_chains;
        at = next_at;
    }
    // A pattern that ends on a name (no `*`) matches that value itself.
    chains
        .into_iter()
        .zip(at)
        .map(|(mut c, v)| {
            if !std::ptr::eq(*c.last().expect("starts with the root"), v) {
                c.push(v);
            }
            c
        })
        .collect()
}

impl Source for BTreeMap<String, String> {
    fn get(&self, path: &str) -> Option<Cow<'_, str>> {
        let text = self.get(path)?.trim();
        (!text.is_empty()).then_some(Cow::Borrowed(text))
    }
}
