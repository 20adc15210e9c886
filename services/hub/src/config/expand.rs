//! `${NAME}` in the configuration file's strings is replaced by the environment variable
//! `NAME`, so that credentials inside values (a broker URL's password) can come from a
//! secret while the file itself stays in a ConfigMap or in version control. Only `${` followed
//! by letters, digits and `_` and a closing `}` is a reference; a variable that is not set is
//! an error naming the key, never an empty string.

use anyhow::{bail, Result};

/// Expands every string in `table`; `at` is the dotted path of the table, for errors.
pub(super) fn table(table: &mut toml::Table, at: &str, env: &[(String, String)]) -> Result<()> {
    for (key, value) in table.iter_mut() {
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        self::value(value, &path, env)?;
    }
    Ok(())
}

fn value(value: &mut toml::Value, at: &str, env: &[(String, String)]) -> Result<()> {
    match value {
        toml::Value::String(s) => *s = string(s, at, env)?,
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                self::value(item, &format!("{at}[{i}]"), env)?;
            }
        }
        toml::Value::Table(t) => table(t, at, env)?,
        _ => {}
    }
    Ok(())
}

fn string(s: &str, at: &str, env: &[(String, String)]) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len == 0 || !after[name_len..].starts_with('}') {
            out.push_str(&rest[..start + 2]);
            rest = after;
            continue;
        }
        let name = &after[..name_len];
        let Some((_, found)) = env.iter().find(|(n, _)| n == name) else {
            bail!(
                "`{at}` refers to the environment variable {name}, which is not set (set it, \
                 e.g. from a secret, or write the value into the file)"
            );
        };
        out.push_str(&rest[..start]);
        out.push_str(found);
        rest = &after[name_len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        vec![("BROKER_PASSWORD".into(), "s3cret".into())]
    }

    #[test]
    fn references_are_replaced_and_the_rest_kept() {
        let at = "events.url";
        let url = string("amqp://hub:${BROKER_PASSWORD}@mq:5672/%2f", at, &env()).unwrap();
        assert_eq!(url, "amqp://hub:s3cret@mq:5672/%2f");
        for kept in [
            "$HOME",
            "${",
            "${}",
            "${A-B}",
            "cost $5",
            "${BROKER_PASSWORD",
        ] {
            assert_eq!(string(kept, at, &env()).unwrap(), kept);
        }
    }

    #[test]
    fn an_unset_variable_names_the_key() {
        let mut doc: toml::Table =
            toml::from_str("[[connectors]]\nurl = \"amqp://u:${NOPE}@h\"\n").unwrap();
        let err = table(&mut doc, "", &env()).unwrap_err().to_string();
        assert!(
            err.contains("connectors[0].url") && err.contains("NOPE"),
            "{err}"
        );
    }
}
