//! Agents and groups (Part Two §2.4.2): the actor, an agent or group as object, the
//! authority, the instructor and the team.

use super::format::{iri, known, object, required, text};
use super::{at, bad, Checked, Invalid};
use serde_json::{Map, Value};

pub(super) const IFIS: [&str; 4] = ["mbox", "mbox_sha1sum", "openid", "account"];

/// One agent or group (§2.4.2): `section` is the property's own (actor, authority, …).
pub(super) fn agent_or_group(value: &Value, path: &str, section: &'static str) -> Checked {
    let map = object(value, path, section)?;
    match map
        .get("objectType")
        .map(|t| text(t, &at(path, "objectType"), section))
    {
        Some(Ok("Group")) => group(map, path),
        None | Some(Ok("Agent")) => agent(map, path),
        Some(Ok(other)) => Err(bad(
            "2.4.2",
            &at(path, "objectType"),
            format!("`{other}` is neither Agent nor Group"),
        )),
        Some(Err(e)) => Err(e),
    }
}

/// An agent: exactly one inverse functional identifier (§2.4.2.1).
pub(super) fn agent(map: &Map<String, Value>, path: &str) -> Checked {
    let mut allowed = vec!["objectType", "name"];
    allowed.extend(IFIS);
    known(map, &allowed, path, "2.4.2.1")?;
    if let Some(n) = map.get("name") {
        text(n, &at(path, "name"), "2.4.2.1")?;
    }
    match ifis(map, path)? {
        1 => Ok(()),
        0 => Err(bad(
            "2.4.2.1",
            path,
            "an agent needs one of mbox, mbox_sha1sum, openid, account",
        )),
        _ => Err(bad(
            "2.4.2.3",
            path,
            "an agent has exactly one inverse functional identifier",
        )),
    }
}

/// A group: anonymous (members, no identifier) or identified (one identifier) (§2.4.2.2).
pub(super) fn group(map: &Map<String, Value>, path: &str) -> Checked {
    let mut allowed = vec!["objectType", "name", "member"];
    allowed.extend(IFIS);
    known(map, &allowed, path, "2.4.2.2")?;
    if let Some(n) = map.get("name") {
        text(n, &at(path, "name"), "2.4.2.2")?;
    }
    let identified = ifis(map, path)?;
    if identified > 1 {
        return Err(bad(
            "2.4.2.3",
            path,
            "a group has at most one inverse functional identifier",
        ));
    }
    match map.get("member") {
        Some(Value::Array(members)) => {
            for (i, m) in members.iter().enumerate() {
                let p = format!("{}[{i}]", at(path, "member"));
                let member = object(m, &p, "2.4.2.2")?;
                if member.get("objectType").and_then(Value::as_str) == Some("Group") {
                    return Err(bad(
                        "2.4.2.2",
                        &p,
                        "a group's members are agents, not groups",
                    ));
                }
                agent(member, &p)?;
            }
            if identified == 0 && members.is_empty() {
                return Err(bad(
                    "2.4.2.2",
                    &at(path, "member"),
                    "an anonymous group needs members",
                ));
            }
            Ok(())
        }
        Some(_) => Err(bad(
            "2.4.2.2",
            &at(path, "member"),
            "must be an array of agents",
        )),
        None if identified == 0 => Err(bad("2.4.2.2", path, "an anonymous group needs members")),
        None => Ok(()),
    }
}

/// Checks each identifier present; returns how many there are (§2.4.2.3, §2.4.2.4).
pub(super) fn ifis(map: &Map<String, Value>, path: &str) -> Result<usize, Invalid> {
    if let Some(m) = map.get("mbox") {
        let s = text(m, &at(path, "mbox"), "2.4.2.3")?;
        let address = s.strip_prefix("mailto:").unwrap_or_default();
        let ok = address.split_once('@').is_some_and(|(user, host)| {
            !user.is_empty() && !host.is_empty() && !host.contains('@')
        });
        if !ok {
            return Err(bad(
                "2.4.2.3",
                &at(path, "mbox"),
                format!("`{s}` is not a mailto: IRI of an address"),
            ));
        }
    }
    if let Some(m) = map.get("mbox_sha1sum") {
        let s = text(m, &at(path, "mbox_sha1sum"), "2.4.2.3")?;
        if s.len() != 40 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(
                "2.4.2.3",
                &at(path, "mbox_sha1sum"),
                "must be a SHA-1 hash in hex",
            ));
        }
    }
    if let Some(o) = map.get("openid") {
        iri(o, &at(path, "openid"), "2.4.2.3")?;
    }
    if let Some(a) = map.get("account") {
        let p = at(path, "account");
        let account = object(a, &p, "2.4.2.4")?;
        known(account, &["homePage", "name"], &p, "2.4.2.4")?;
        iri(
            required(account, "homePage", &p, "2.4.2.4")?,
            &at(&p, "homePage"),
            "2.4.2.4",
        )?;
        text(
            required(account, "name", &p, "2.4.2.4")?,
            &at(&p, "name"),
            "2.4.2.4",
        )?;
    }
    Ok(IFIS.iter().filter(|k| map.contains_key(**k)).count())
}
