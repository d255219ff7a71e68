//! Who is asking: a bearer token matched against `[[api.tokens]]` (by its
//! SHA-256, in constant time) and, for the units' ticket API, the older
//! `[[tickets.units]] api_token`. A token is never logged; what is logged
//! is the holder's name.

use crate::routing::table::{ApiRole, ApiToken, TicketUnit};
use sha2::Digest as _;

/// A caller of the API that showed a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name (a unit's own token: the unit).
    pub name: String,
    pub role: ApiRole,
}

impl Principal {
    pub fn can_read(&self) -> bool {
        matches!(self.role, ApiRole::Viewer | ApiRole::Supervisor)
    }

    pub fn can_act(&self) -> bool {
        self.role == ApiRole::Supervisor
    }

    pub fn unit(&self) -> Option<&str> {
        match &self.role {
            ApiRole::Unit(u) => Some(u),
            _ => None,
        }
    }
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(auth: Option<&str>) -> Option<&str> {
    let (scheme, token) = auth?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Equal bytes, in time that depends only on the length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The holder of `token`, if any. Every configured token is compared
/// (no early exit), so the time taken says nothing about which matched.
pub fn authenticate(token: &str, tokens: &[ApiToken], units: &[TicketUnit]) -> Option<Principal> {
    let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
    let mut found: Option<Principal> = None;
    for t in tokens {
        if constant_time_eq(&t.sha256, &digest) && found.is_none() {
            found = Some(Principal {
                name: t.name.clone(),
                role: t.role.clone(),
            });
        }
    }
    for u in units {
        let Some(own) = &u.api_token else { continue };
        let own: [u8; 32] = sha2::Sha256::digest(own.as_bytes()).into();
        if constant_time_eq(&own, &digest) && found.is_none() {
            found = Some(Principal {
                name: u.unit.clone(),
                role: ApiRole::Unit(u.unit.clone()),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, role: ApiRole, secret: &str) -> ApiToken {
        ApiToken {
            name: name.into(),
            role,
            sha256: sha2::Sha256::digest(secret.as_bytes()).into(),
            plain: false,
        }
    }

    #[test]
    fn a_token_is_known_by_its_digest_and_gives_its_role() {
        let tokens = [
            token("wall", ApiRole::Viewer, "viewer-token-0123456789"),
            token("duty", ApiRole::Supervisor, "supervisor-token-0123456789"),
        ];
        let units = [TicketUnit {
            unit: "市住建局".into(),
            webhook_url: None,
            webhook_secret: None,
            api_token: Some("unit-token-0123456789".into()),
        }];
        let p = authenticate("supervisor-token-0123456789", &tokens, &units).unwrap();
        assert_eq!(p.name, "duty");
        assert!(p.can_act() && p.can_read());
        let v = authenticate("viewer-token-0123456789", &tokens, &units).unwrap();
        assert!(v.can_read() && !v.can_act() && v.unit().is_none());
        let u = authenticate("unit-token-0123456789", &tokens, &units).unwrap();
        assert_eq!(u.unit(), Some("市住建局"));
        assert!(!u.can_read() && !u.can_act());
        assert_eq!(
            authenticate("viewer-token-012345678", &tokens, &units),
            None
        );
        assert_eq!(authenticate("", &tokens, &units), None);
    }

    #[test]
    fn only_a_bearer_header_carries_a_token() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(Some("Bearer")), None);
        assert_eq!(bearer(None), None);
    }
}
