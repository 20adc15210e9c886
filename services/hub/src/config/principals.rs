//! `[[partners]]` and `[[readers]]`: who may call the hub, with which token or certificate.

use super::Config;
use anyhow::Result;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One `[[partners]]` entry: a partner system expected to send over gRPC. Its status appears
/// before it first sends, and turns `degraded` when it has been silent too long.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    /// The partner's name.
    pub name: String,
    /// The source system it sends as.
    pub system: String,
    /// Seconds of silence after which its status turns `degraded`; none by default.
    #[serde(default)]
    pub max_silence_seconds: Option<u64>,
    /// Hex SHA-256 of the partner's bearer token (never the token; `trainhub token` makes
    /// one), or a list of them while a token is being rotated. A partner without one is only
    /// listed in sync health.
    #[serde(default)]
    pub token_sha256: Option<Digests>,
    /// A file holding the partner's bearer token itself (one a line: several while rotating),
    /// e.g. a mounted secret; the hub keeps only its SHA-256. Instead of, or besides,
    /// `token_sha256`.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// What it may do; `["ingest"]` by default.
    #[serde(default = "ingest_only")]
    pub roles: Vec<String>,
    /// Most records a second it may submit over gRPC (a burst of one second's worth); over
    /// it, calls get `RESOURCE_EXHAUSTED` with a retry hint. No limit by default.
    #[serde(default)]
    pub records_per_second: Option<u32>,
    /// Common name (CN) of the partner's client certificate, signed by
    /// `[server] tls_client_ca_file`: the certificate then authenticates it.
    #[serde(default)]
    pub cert_subject: Option<String>,
}

/// One token digest, or several: during a rotation both the old and the new token work.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Digests {
    /// One digest.
    One(String),
    /// Several, e.g. `[old, new]`.
    Many(Vec<String>),
}

impl Digests {
    /// The digests.
    pub fn all(&self) -> Vec<String> {
        match self {
            Digests::One(d) => vec![d.clone()],
            Digests::Many(d) => d.clone(),
        }
    }
}

fn ingest_only() -> Vec<String> {
    vec!["ingest".into()]
}

/// `[[readers]]`: a principal that reads (the appointment system, an ops team).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReaderConfig {
    /// The reader's name.
    pub name: String,
    /// Hex SHA-256 of its bearer token, or a list of them while rotating.
    #[serde(default)]
    pub token_sha256: Option<Digests>,
    /// A file holding its bearer token itself (one a line: several while rotating); the hub
    /// keeps only its SHA-256. A reader needs `token_sha256` or `token_file`.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// `dossier:read`, `coverage:read`, `review:write`, `health:read`, `dlq:replay`.
    pub roles: Vec<String>,
    /// Cadre-management authority codes (干部管理权限): the reader sees the persons of these
    /// only. Empty (the default): every person.
    #[serde(default)]
    pub authorities: Vec<String>,
}

/// One `[[authorities]]` entry: a cadre-management authority and the one above it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuthorityConfig {
    /// Its code, as persons' `authority` carries it.
    pub code: String,
    /// The code of the authority above it, if any.
    #[serde(default)]
    pub parent: Option<String>,
    /// Units whose persons it manages when their HR record names no authority: unit codes, or
    /// prefixes ending in `*` (`3201*`); an exact code wins over a prefix, a longer prefix over
    /// a shorter one.
    #[serde(default)]
    pub units: Vec<String>,
}

impl Config {
    /// The mapping of `[[authorities]] units`: which authority a person record naming none
    /// gets from its unit. Codes are checked as persons' authorities are.
    pub fn unit_authorities(&self) -> Result<trainhub_model::authority::UnitAuthorities> {
        for a in &self.authorities {
            let ok = !a.code.is_empty()
                && a.code.len() <= 64
                && a.code
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                anyhow::bail!(
                    "[[authorities]] code `{}`: letters, digits, - and _ only, at most 64 (it is part of the events' routing key)",
                    a.code
                );
            }
        }
        let pairs = self
            .authorities
            .iter()
            .flat_map(|a| a.units.iter().map(|u| (u.clone(), a.code.clone())));
        trainhub_model::authority::UnitAuthorities::new(pairs)
            .map_err(|e| anyhow::anyhow!("[[authorities]]: {e}"))
    }

    /// `codes` and every authority below them in `[[authorities]]`.
    fn with_those_below(&self, codes: &[String]) -> std::collections::BTreeSet<String> {
        let mut scope: std::collections::BTreeSet<String> = codes.iter().cloned().collect();
        let mut grown = true;
        while grown {
            grown = false;
            for a in &self.authorities {
                let below = a.parent.as_ref().is_some_and(|p| scope.contains(p));
                if below && scope.insert(a.code.clone()) {
                    grown = true;
                }
            }
        }
        scope
    }

    /// The principals configured: partners with a token and every reader, token files read.
    /// Unknown roles, malformed digests and unreadable token files are errors naming the
    /// principal.
    pub fn principals(&self) -> Result<trainhub_api::auth::Principals> {
        self.build_principals(true)
    }

    /// Checks the principals as written, without reading token files (loading a configuration
    /// does not need its secrets mounted yet).
    pub(super) fn check_principals(&self) -> Result<()> {
        self.build_principals(false).map(|_| ())
    }

    fn build_principals(&self, read_files: bool) -> Result<trainhub_api::auth::Principals> {
        use trainhub_api::auth::{Principal, Principals, Role};
        let roles = |who: &str, names: &[String]| -> Result<std::collections::BTreeSet<Role>> {
            names
                .iter()
                .map(|n| {
                    Role::parse(n).ok_or_else(|| {
                        let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                        anyhow::anyhow!("`{who}`: unknown role `{n}` (known: {})", known.join(", "))
                    })
                })
                .collect()
        };
        let mut entries = Vec::new();
        let mut subjects = Vec::new();
        for p in &self.partners {
            let principal = Principal {
                name: p.name.clone(),
                system: Some(p.system.clone()),
                roles: roles(&p.name, &p.roles)?,
                records_per_second: p.records_per_second,
                authorities: None,
            };
            for digest in digests(
                &p.name,
                p.token_sha256.as_ref(),
                p.token_file.as_deref().filter(|_| read_files),
            )? {
                entries.push((digest, principal.clone()));
            }
            if let Some(cn) = &p.cert_subject {
                if self.server.tls_client_ca_file.is_none() {
                    anyhow::bail!(
                        "`{}`: `cert_subject` needs [server] tls_client_ca_file (the CA that signs \
                         partner certificates)",
                        p.name
                    );
                }
                subjects.push((cn.clone(), principal));
            }
        }
        for r in &self.readers {
            let principal = Principal {
                name: r.name.clone(),
                system: None,
                roles: roles(&r.name, &r.roles)?,
                records_per_second: None,
                authorities: (!r.authorities.is_empty())
                    .then(|| self.with_those_below(&r.authorities)),
            };
            if r.token_sha256.is_none() && r.token_file.is_none() {
                anyhow::bail!("reader `{}`: give `token_sha256` or `token_file`", r.name);
            }
            for digest in digests(
                &r.name,
                r.token_sha256.as_ref(),
                r.token_file.as_deref().filter(|_| read_files),
            )? {
                entries.push((digest, principal.clone()));
            }
        }
        Principals::new(entries)
            .and_then(|p| p.with_subjects(subjects))
            .map_err(anyhow::Error::msg)
    }
}

/// The token digests of one principal: those given, and the SHA-256 of each token in its
/// token file.
fn digests(who: &str, given: Option<&Digests>, file: Option<&Path>) -> Result<Vec<String>> {
    let mut all = given.map(Digests::all).unwrap_or_default();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "`{who}`: cannot read token_file {}: {e} (generate one with `trainhub token`, \
                 or `openssl rand -hex 32 > FILE`)",
                path.display()
            )
        })?;
        let tokens: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if tokens.is_empty() {
            anyhow::bail!("`{who}`: token_file {} is empty", path.display());
        }
        if let Some(short) = tokens.iter().find(|t| t.len() < 16) {
            anyhow::bail!(
                "`{who}`: a token in {} has {} characters; use at least 16 (32 random bytes as \
                 hex: `openssl rand -hex 32`)",
                path.display(),
                short.len()
            );
        }
        all.extend(tokens.into_iter().map(trainhub_api::auth::token_digest));
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::super::tests::load_text;

    #[test]
    fn principals_as_the_design_shows() {
        let digest = "a".repeat(64);
        let c = load_text(&format!(
            r#"
            [[partners]]
            name   = "party-school"
            system = "party-school"
            token_sha256 = "{digest}"
            roles  = ["ingest"]

            [[readers]]
            name  = "appointment-system"
            token_sha256 = ["{}", "{}"]
            roles = ["dossier:read", "coverage:read"]
            "#,
            "b".repeat(64),
            "c".repeat(64)
        ))
        .unwrap();
        assert!(!c.principals().unwrap().is_open());
        assert_eq!(c.readers[0].token_sha256.as_ref().unwrap().all().len(), 2);

        let unknown = format!(
            "[[readers]]\nname = \"r\"\ntoken_sha256 = \"{digest}\"\nroles = [\"dossier:write\"]\n"
        );
        let err = format!("{:#}", load_text(&unknown).unwrap_err());
        assert!(
            err.contains("`r`") && err.contains("dossier:write"),
            "{err}"
        );
        let short = "[[readers]]\nname = \"r\"\ntoken_sha256 = \"abc\"\nroles = []\n";
        let err = format!("{:#}", load_text(short).unwrap_err());
        assert!(err.contains("token_sha256"), "{err}");
        assert!(load_text("").unwrap().principals().unwrap().is_open());
        let no_ca = "[[partners]]\nname = \"p\"\nsystem = \"s\"\ncert_subject = \"p\"\n";
        let err = format!("{:#}", load_text(no_ca).unwrap_err());
        assert!(err.contains("tls_client_ca_file"), "{err}");
        let half = "[server]\ntls_cert_file = \"a.pem\"\n";
        let err = format!("{:#}", load_text(half).unwrap_err());
        assert!(err.contains("tls_key_file"), "{err}");
    }

    #[test]
    fn a_reader_of_an_authority_reads_those_below_it() {
        let token = "p".repeat(40);
        let c = load_text(&format!(
            r#"
            [[authorities]]
            code = "js-nanjing"
            parent = "js-prov"

            [[authorities]]
            code = "js-nanjing-xuanwu"
            parent = "js-nanjing"

            [[authorities]]
            code = "js-suzhou"
            parent = "js-prov"

            [[readers]]
            name = "nanjing"
            token_sha256 = "{}"
            roles = ["dossier:read"]
            authorities = ["js-nanjing"]
            "#,
            trainhub_api::auth::token_digest(&token)
        ))
        .unwrap();
        let principals = c.principals().unwrap();
        let caller = principals
            .authenticate(Some(&format!("Bearer {token}")))
            .unwrap();
        let scope: Vec<&str> = caller
            .authorities()
            .unwrap()
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(scope, ["js-nanjing", "js-nanjing-xuanwu"]);
        assert!(caller.may_read(Some("js-nanjing-xuanwu")).is_ok());
        assert!(caller.may_read(Some("js-suzhou")).is_err());
        assert!(caller.may_read(Some("js-prov")).is_err());
    }

    #[test]
    fn token_files_are_read_when_the_hub_starts_not_when_it_loads() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token-ops");
        let text = |path: &std::path::Path| {
            format!(
                "[[readers]]\nname = \"ops\"\ntoken_file = \"{}\"\nroles = [\"health:read\"]\n",
                path.display()
            )
        };
        // Loads while the secret is not mounted yet; starting needs it.
        let c = load_text(&text(&file)).unwrap();
        let err = format!("{:#}", c.principals().unwrap_err());
        assert!(err.contains("`ops`") && err.contains("token-ops"), "{err}");
        std::fs::write(&file, "\n").unwrap();
        let err = format!("{:#}", c.principals().unwrap_err());
        assert!(err.contains("is empty"), "{err}");
        std::fs::write(&file, "short\n").unwrap();
        let err = format!("{:#}", c.principals().unwrap_err());
        assert!(err.contains("at least 16"), "{err}");
        // Two tokens while rotating: both admit the reader.
        let (old, new) = ("1".repeat(64), "2".repeat(64));
        std::fs::write(&file, format!("{old}\n{new}\n")).unwrap();
        let principals = c.principals().unwrap();
        for token in [&old, &new] {
            let caller = principals
                .authenticate(Some(&format!("Bearer {token}")))
                .unwrap();
            assert!(caller.require(trainhub_api::auth::Role::HealthRead).is_ok());
        }
        assert!(principals
            .authenticate(Some("Bearer 3333333333333333"))
            .is_err());
        let neither = "[[readers]]\nname = \"r\"\nroles = []\n";
        let err = format!("{:#}", load_text(neither).unwrap_err());
        assert!(
            err.contains("token_sha256") && err.contains("token_file"),
            "{err}"
        );
    }
}
