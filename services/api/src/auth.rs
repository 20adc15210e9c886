//! Who is calling (DESIGN §6.3, §8): partners and readers authenticate with a bearer token, of
//! which the hub keeps only the SHA-256 digest. With no principals configured the hub is
//! **open**: every call is allowed, and the hub listens on loopback only.
//!
//! Each gRPC service is wrapped in an interceptor that authenticates the call, checks that the
//! caller holds one of the roles the service needs, and leaves a [`Caller`] in the request's
//! extensions for the handlers' finer checks (a partner's system, a method's own role).

use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::Arc;
use tonic::{Request, Status};

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Submit records (partners) and report their own counts.
    Ingest,
    /// Read dossiers, appointment lines, dispatch checks.
    DossierRead,
    /// Read coverage reports.
    CoverageRead,
    /// Resolve identity conflicts.
    ReviewWrite,
    /// Read connector status and dead letters.
    HealthRead,
    /// Replay dead letters.
    DlqReplay,
}

impl Role {
    /// Every role, as written in the configuration.
    pub const ALL: [Role; 6] = [
        Role::Ingest,
        Role::DossierRead,
        Role::CoverageRead,
        Role::ReviewWrite,
        Role::HealthRead,
        Role::DlqReplay,
    ];

    /// The configuration name, e.g. `dossier:read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::DossierRead => "dossier:read",
            Role::CoverageRead => "coverage:read",
            Role::ReviewWrite => "review:write",
            Role::HealthRead => "health:read",
            Role::DlqReplay => "dlq:replay",
        }
    }

    /// The role a configuration name stands for.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// An authenticated partner or reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Its configured name (in logs and, later, the audit trail).
    pub name: String,
    /// For a partner: the one source system it may submit as.
    pub system: Option<String>,
    /// What it may do.
    pub roles: BTreeSet<Role>,
    /// For a partner: most records a second it may submit (none: no limit).
    pub records_per_second: Option<u32>,
    /// For a reader scoped to cadre-management authorities: the ones whose persons it may
    /// read (none: every person).
    pub authorities: Option<BTreeSet<String>>,
}

/// The caller of a request: a principal, or nobody in particular when the hub is open.
#[derive(Debug, Clone)]
pub struct Caller(pub Option<Arc<Principal>>);

impl Caller {
    /// The caller of `request` (open when no interceptor ran, as in unit tests).
    pub fn of<T>(request: &Request<T>) -> Caller {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .unwrap_or(Caller(None))
    }

    /// Refuses with `PERMISSION_DENIED` unless the caller holds `role` (open: allowed).
    pub fn require(&self, role: Role) -> Result<(), Status> {
        match &self.0 {
            Some(p) if !p.roles.contains(&role) => Err(Status::permission_denied(format!(
                "`{}` lacks the role `{}`",
                p.name,
                role.as_str()
            ))),
            _ => Ok(()),
        }
    }

    /// The caller's name for the audit trail: the principal's, or `open`.
    pub fn name(&self) -> &str {
        self.0.as_ref().map_or("open", |p| p.name.as_str())
    }

    /// The authorities whose persons the caller may read: `None` for every person.
    pub fn authorities(&self) -> Option<&BTreeSet<String>> {
        self.0.as_ref()?.authorities.as_ref()
    }

    /// How the audit trail names the caller: its name, and its scope when it has one
    /// (`county-reader[320102]`).
    pub fn audit_name(&self) -> String {
        match self.authorities() {
            Some(scope) => {
                let list: Vec<&str> = scope.iter().map(String::as_str).collect();
                format!("{}[{}]", self.name(), list.join(","))
            }
            None => self.name().to_owned(),
        }
    }

    /// Refuses with `PERMISSION_DENIED` a person of an authority outside the caller's scope.
    /// The same answer whether or not the person exists.
    pub fn may_read(&self, authority: Option<&str>) -> Result<(), Status> {
        match (self.authorities(), authority) {
            (None, _) => Ok(()),
            (Some(scope), Some(a)) if scope.contains(a) => Ok(()),
            (Some(_), _) => Err(Status::permission_denied(format!(
                "`{}` may read persons of its cadre-management authorities only",
                self.name()
            ))),
        }
    }

    /// The caller's record rate limit, with its name: `None` when open or unlimited.
    pub fn rate(&self) -> Option<(&str, u32)> {
        let p = self.0.as_ref()?;
        Some((p.name.as_str(), p.records_per_second?))
    }

    /// The source system the caller may submit as; empty when the hub is open or the caller
    /// is not a partner (then any system).
    pub fn scope(&self) -> &str {
        self.0
            .as_ref()
            .and_then(|p| p.system.as_deref())
            .unwrap_or("")
    }
}

/// The configured principals, by the digest of their token and by the common name (CN) of
/// their client certificate.
#[derive(Debug, Clone, Default)]
pub struct Principals {
    by_digest: Arc<Vec<([u8; 32], Arc<Principal>)>>,
    by_subject: Arc<Vec<(String, Arc<Principal>)>>,
}

/// The common name of the first certificate a TLS client presented (already verified against
/// the configured CA by the TLS layer).
pub fn peer_common_name<T>(request: &Request<T>) -> Option<String> {
    let certs = request.peer_certs()?;
    let der = certs.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// The hex SHA-256 digest of a token, as configured in `token_sha256`.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two digests without stopping at the first difference.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Principals {
    /// Principals from `(hex token digest, principal)`; a digest that is not 64 hex digits is
    /// an error naming the principal.
    pub fn new(entries: Vec<(String, Principal)>) -> Result<Principals, String> {
        let mut by_digest = Vec::with_capacity(entries.len());
        for (digest, principal) in entries {
            let bytes: [u8; 32] = hex::decode(digest.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    format!(
                        "`{}`: `token_sha256` must be 64 hex digits (the SHA-256 of the token)",
                        principal.name
                    )
                })?;
            if by_digest.iter().any(|(d, _)| same(d, &bytes)) {
                return Err(format!(
                    "`{}`: the same token is configured twice",
                    principal.name
                ));
            }
            by_digest.push((bytes, Arc::new(principal)));
        }
        Ok(Principals {
            by_digest: Arc::new(by_digest),
            by_subject: Arc::default(),
        })
    }

    /// Also maps client certificates, by subject common name, to principals.
    pub fn with_subjects(
        mut self,
        subjects: Vec<(String, Principal)>,
    ) -> Result<Principals, String> {
        let mut by_subject: Vec<(String, Arc<Principal>)> = Vec::new();
        for (cn, principal) in subjects {
            if by_subject.iter().any(|(c, _)| *c == cn) {
                return Err(format!(
                    "`{}`: certificate subject `{cn}` is configured twice",
                    principal.name
                ));
            }
            by_subject.push((cn, Arc::new(principal)));
        }
        self.by_subject = Arc::new(by_subject);
        Ok(self)
    }

    /// No principals: every call is allowed.
    pub fn is_open(&self) -> bool {
        self.by_digest.is_empty() && self.by_subject.is_empty()
    }

    /// HTTP Basic authentication (the xAPI resource): the user is a principal's name, the
    /// password its token. Returns the caller and the user name given (the system an open hub
    /// files the records under).
    pub fn authenticate_basic(
        &self,
        authorization: Option<&str>,
    ) -> Result<(Caller, String), Status> {
        use base64::Engine;
        let credentials = authorization
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                Status::unauthenticated("send `authorization: Basic <base64 of name:token>`")
            })?;
        let (user, password) = credentials.split_once(':').ok_or_else(|| {
            Status::unauthenticated("Basic credentials are `name:token`, base64-encoded")
        })?;
        if self.is_open() {
            return Ok((Caller(None), user.to_owned()));
        }
        let caller = self.authenticate(Some(&format!("Bearer {password}")))?;
        match &caller.0 {
            Some(p) if p.name == user => Ok((caller, user.to_owned())),
            _ => Err(Status::unauthenticated("unknown name or token")),
        }
    }

    /// The principal an `authorization` header value names, `None` when open.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, Status> {
        self.authenticate_with(authorization, None)
    }

    /// The principal a bearer token or, without one, a verified client certificate's common
    /// name names.
    pub fn authenticate_with(
        &self,
        authorization: Option<&str>,
        certificate_cn: Option<&str>,
    ) -> Result<Caller, Status> {
        if self.is_open() {
            return Ok(Caller(None));
        }
        if authorization.is_none() {
            if let Some(cn) = certificate_cn {
                return self
                    .by_subject
                    .iter()
                    .find(|(c, _)| c == cn)
                    .map(|(_, p)| Caller(Some(p.clone())))
                    .ok_or_else(|| {
                        Status::unauthenticated(format!(
                            "no partner or reader has the certificate subject `{cn}`"
                        ))
                    });
            }
        }
        let token = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Status::unauthenticated("send `authorization: Bearer <token>` with every call")
            })?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every entry is compared, so the time taken does not tell which one matched.
        let mut found = None;
        for (d, p) in self.by_digest.iter() {
            if same(d, &digest) {
                found = Some(p.clone());
            }
        }
        found
            .map(|p| Caller(Some(p)))
            .ok_or_else(|| Status::unauthenticated("unknown token"))
    }

    /// A tonic interceptor: authenticates, requires one of `any_of`, records the [`Caller`].
    pub fn interceptor(
        &self,
        any_of: &'static [Role],
    ) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
        let principals = self.clone();
        move |mut request: Request<()>| {
            let header = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            let cn = peer_common_name(&request);
            let caller = principals.authenticate_with(header, cn.as_deref())?;
            if let Some(p) = &caller.0 {
                if !any_of.iter().any(|r| p.roles.contains(r)) {
                    let wanted: Vec<&str> = any_of.iter().map(|r| r.as_str()).collect();
                    return Err(Status::permission_denied(format!(
                        "`{}` may not call this service (it needs one of: {})",
                        p.name,
                        wanted.join(", ")
                    )));
                }
            }
            request.extensions_mut().insert(caller);
            Ok(request)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principals() -> Principals {
        Principals::new(vec![
            (
                token_digest("partner-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
                Principal {
                    name: "hr".into(),
                    system: Some("hr-prov".into()),
                    roles: [Role::Ingest].into(),
                    records_per_second: None,
                    authorities: None,
                },
            ),
            (
                token_digest("reader-token-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
                Principal {
                    name: "appointments".into(),
                    system: None,
                    roles: [Role::DossierRead].into(),
                    records_per_second: None,
                    authorities: None,
                },
            ),
        ])
        .unwrap()
    }

    #[test]
    fn a_known_token_names_its_principal() {
        let p = principals();
        let caller = p
            .authenticate(Some("Bearer partner-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))
            .unwrap();
        assert_eq!(caller.scope(), "hr-prov");
        assert!(caller.require(Role::Ingest).is_ok());
        let denied = caller.require(Role::DossierRead).unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn missing_malformed_and_unknown_tokens_are_unauthenticated() {
        let p = principals();
        for header in [
            None,
            Some(""),
            Some("Basic abc"),
            Some("Bearer "),
            Some("Bearer nope"),
        ] {
            let e = p.authenticate(header).unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated, "{header:?}");
        }
    }

    #[test]
    fn open_allows_everything() {
        let open = Principals::default();
        let caller = open.authenticate(None).unwrap();
        assert!(caller.require(Role::DlqReplay).is_ok());
        assert_eq!(caller.scope(), "");
    }

    #[test]
    fn bad_digests_are_refused_with_the_principal_named() {
        let p = Principal {
            name: "x".into(),
            system: None,
            roles: BTreeSet::new(),
            records_per_second: None,
            authorities: None,
        };
        let e = Principals::new(vec![("abc".into(), p.clone())]).unwrap_err();
        assert!(e.contains("`x`") && e.contains("token_sha256"), "{e}");
        let d = token_digest("t");
        let e = Principals::new(vec![(d.clone(), p.clone()), (d, p)]).unwrap_err();
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn roles_round_trip_their_names() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("dossier:write"), None);
    }
}
