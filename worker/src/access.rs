//! Who may do what: the plain rules behind sign-in, sessions' sharing, API token
//! scopes and CSRF, with no runtime in sight (tested natively).
//!
//! The Worker's handlers gather the facts (rows from D1) and ask these functions; no
//! handler decides access on its own.

use nightshift_protocol::ErrorCode;
use nightshift_protocol::auth::{Access, SessionRole, SigninPolicy, TeamRole, TokenScope};
/// The role a user has on a session: one rule for the Worker and the app.
pub use nightshift_protocol::roles::session_role;
use sha2::{Digest, Sha256};

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// Signed in, but not allowed (and allowed to know the resource exists).
    Forbidden,
    /// Must not learn that the resource exists.
    NotFound,
}

impl Denial {
    pub fn code(self) -> ErrorCode {
        match self {
            Denial::Forbidden => ErrorCode::Forbidden,
            Denial::NotFound => ErrorCode::NotFound,
        }
    }
}

/// Whether `role` (None: cannot see the session) passes a session route's `access`.
/// Someone who cannot see the session gets [`Denial::NotFound`], so its existence
/// does not leak; someone who sees it but may not do this gets [`Denial::Forbidden`].
/// What each role allows is [`SessionRole::allows`], shared with the app.
pub fn check_session(access: Access, role: Option<SessionRole>) -> Result<SessionRole, Denial> {
    let role = role.ok_or(Denial::NotFound)?;
    if role.allows(access) {
        Ok(role)
    } else {
        Err(Denial::Forbidden)
    }
}

/// Whether a team member passes a route's `access` that does not name a session.
pub fn check_team(access: Access, team_role: TeamRole) -> Result<(), Denial> {
    match access {
        Access::Public | Access::Member => Ok(()),
        Access::Admin if team_role == TeamRole::Admin => Ok(()),
        Access::Admin => Err(Denial::Forbidden),
        // Session routes are checked with the session at hand; runner routes never
        // admit a user.
        _ => Err(Denial::Forbidden),
    }
}

/// Whether a method only reads.
pub fn is_read_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// Whether an API token with `scopes` may send a `method` request.
pub fn scope_allows(scopes: &[TokenScope], method: &str) -> bool {
    if is_read_method(method) {
        scopes.contains(&TokenScope::Read) || scopes.contains(&TokenScope::Write)
    } else {
        scopes.contains(&TokenScope::Write)
    }
}

/// Whether a token with `child` scopes asks for nothing its parent (`parent`) lacks.
pub fn scopes_within(child: &[TokenScope], parent: &[TokenScope]) -> bool {
    child.iter().all(|scope| parent.contains(scope))
}

/// The expiry (ms) of a token created with a token that expires at `parent`: what
/// was asked for, capped at the parent's (a child never outlives its parent).
pub fn child_expiry(requested: Option<i64>, parent: Option<i64>) -> Option<i64> {
    match (requested, parent) {
        (Some(requested), Some(parent)) => Some(requested.min(parent)),
        (None, parent) => parent,
        (requested, None) => requested,
    }
}

/// Whether a request authenticated with `scopes` may read grant tokens (invite and
/// share-link tokens, which let their holder in): only with the `write` scope.
pub fn may_read_grants(scopes: &[TokenScope]) -> bool {
    scopes.contains(&TokenScope::Write)
}

/// Whether a share link still grants its role: its creator must still manage the
/// session (`creator_role`), and the person accepting must not have been removed
/// from the session's shares after the link was made (`removed_at` vs `created_at`),
/// since a removed co-owner may have made or seen it.
pub fn share_link_grants(
    creator_role: Option<SessionRole>,
    removed_at: Option<i64>,
    link_created_at: i64,
) -> bool {
    let creator_manages = creator_role.is_some_and(SessionRole::can_share);
    creator_manages && removed_at.is_none_or(|removed| removed < link_created_at)
}

/// Parses stored scopes (`"read write"`), ignoring unknown words.
pub fn parse_scopes(text: &str) -> Vec<TokenScope> {
    text.split_whitespace()
        .filter_map(|word| match word {
            "read" => Some(TokenScope::Read),
            "write" => Some(TokenScope::Write),
            _ => None,
        })
        .collect()
}

pub fn format_scopes(scopes: &[TokenScope]) -> String {
    let mut words = Vec::new();
    if scopes.contains(&TokenScope::Read) {
        words.push("read");
    }
    if scopes.contains(&TokenScope::Write) {
        words.push("write");
    }
    words.join(" ")
}

/// SHA-256 of `text`, hex: how session cookies and API tokens are stored.
pub fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(digest)
}

/// The CSRF token of a cookie session: derived from the cookie, so it needs no
/// storage, and useless without the (HttpOnly) cookie itself.
pub fn csrf_token(session_token: &str) -> String {
    sha256_hex(&format!("nightshift-csrf:{session_token}"))[..40].to_owned()
}

/// Compares secrets in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a cookie-authenticated `method` request carrying `header` (its
/// `X-CSRF-Token`) passes the CSRF check for the session cookie `session_token`.
pub fn csrf_ok(method: &str, session_token: &str, header: Option<&str>) -> bool {
    if is_read_method(method) {
        return true;
    }
    header.is_some_and(|given| constant_time_eq(given.trim(), &csrf_token(session_token)))
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key.trim() == name && !value.trim().is_empty()).then(|| value.trim())
    })
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, path `/`, Secure unless the
/// deployment is on localhost (browsers refuse Secure cookies over plain HTTP there).
/// `max_age_secs == 0` deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age_secs: u64, secure: bool) -> String {
    let mut cookie =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}");
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// Whether cookies for `host` (a URL's host) must be `Secure`: everywhere except on
/// the loopback names.
pub fn cookie_secure(host: &str) -> bool {
    !matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1")
}

/// A same-site path to send the browser to after sign-in: only local paths
/// (`/x`, not `//host` or `https://...`), else `/`.
pub fn safe_redirect(redirect: Option<&str>) -> String {
    match redirect {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The facts about an invite presented at sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteFacts {
    pub role: TeamRole,
    pub email: Option<String>,
    pub expires_at: i64,
    pub max_uses: u32,
    pub uses: u32,
    pub revoked: bool,
}

/// Whether an invite can still be used by `email` at `now_ms`.
pub fn invite_usable(invite: &InviteFacts, email: &str, now_ms: i64) -> bool {
    !invite.revoked
        && invite.expires_at > now_ms
        && invite.uses < invite.max_uses
        && invite
            .email
            .as_deref()
            .is_none_or(|only| only.eq_ignore_ascii_case(email))
}

/// What sign-in decides for someone with a verified `email`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigninDecision {
    /// Already a member: keep their role.
    Member(TeamRole),
    /// Join the team with this role; `use_invite` says the invite was consumed.
    Join { role: TeamRole, use_invite: bool },
    /// Become the team's first member and admin (only while the team is empty).
    FirstAdmin,
    /// Refused, with the code `/signin?error=` shows.
    Refuse(&'static str),
}

/// What sign-in knows about the person and the team.
#[derive(Debug, Clone, Copy)]
pub struct SigninFacts<'a> {
    /// Their team role, if they are a member already.
    pub existing: Option<TeamRole>,
    pub team_has_members: bool,
    /// The invite they presented, if it exists.
    pub invite: Option<&'a InviteFacts>,
    /// Whether they presented an invite token at all.
    pub invite_presented: bool,
    pub policy: SigninPolicy,
    pub allowed_domain: Option<&'a str>,
    /// Their verified email.
    pub email: &'a str,
    pub now_ms: i64,
    /// The operator named them an admin (`ADMIN_EMAILS`).
    pub operator_admin: bool,
    /// The operator vouches for this sign-in as the first admin's: the setup code
    /// was presented, or it is the development sign-in (loopback only).
    pub operator_vouched: bool,
}

/// The sign-in rules: members always get in; people the operator named
/// (`ADMIN_EMAILS`) join as admins; on an empty team only someone the operator
/// vouched for (the setup code, or the loopback-only development sign-in) becomes
/// the first admin, and anyone else is told setup is needed; a presented invite must
/// be usable; otherwise the team's policy decides.
pub fn decide_signin(facts: SigninFacts<'_>) -> SigninDecision {
    let SigninFacts {
        existing,
        team_has_members,
        invite,
        invite_presented,
        policy,
        allowed_domain,
        email,
        now_ms,
        operator_admin,
        operator_vouched,
    } = facts;
    if let Some(role) = existing {
        return SigninDecision::Member(role);
    }
    if operator_admin {
        return SigninDecision::Join {
            role: TeamRole::Admin,
            use_invite: false,
        };
    }
    if !team_has_members {
        return if operator_vouched {
            SigninDecision::FirstAdmin
        } else {
            SigninDecision::Refuse("setup_required")
        };
    }
    if invite_presented {
        return match invite {
            Some(invite) if invite_usable(invite, email, now_ms) => SigninDecision::Join {
                role: invite.role,
                use_invite: true,
            },
            _ => SigninDecision::Refuse("invite_invalid"),
        };
    }
    let domain_ok = || {
        let domain = email.rsplit_once('@').map(|(_, domain)| domain);
        match (domain, allowed_domain) {
            (Some(domain), Some(allowed)) => domain.eq_ignore_ascii_case(allowed.trim()),
            _ => false,
        }
    };
    match policy {
        SigninPolicy::Open => SigninDecision::Join {
            role: TeamRole::Member,
            use_invite: false,
        },
        SigninPolicy::Domain if domain_ok() => SigninDecision::Join {
            role: TeamRole::Member,
            use_invite: false,
        },
        _ => SigninDecision::Refuse("signin_not_allowed"),
    }
}

/// A plausible email address (sign-in takes emails only from providers that verified
/// them, and from the development form).
pub fn valid_email(email: &str) -> bool {
    let email = email.trim();
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && email.len() <= 254
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_token_never_out_scopes_or_outlives_its_parent() {
        use TokenScope::{Read, Write};
        assert!(scopes_within(&[Read], &[Read, Write]));
        assert!(scopes_within(&[Read, Write], &[Read, Write]));
        assert!(!scopes_within(&[Read, Write], &[Read]));
        assert_eq!(child_expiry(None, Some(100)), Some(100));
        assert_eq!(child_expiry(Some(500), Some(100)), Some(100));
        assert_eq!(child_expiry(Some(50), Some(100)), Some(50));
        assert_eq!(child_expiry(Some(50), None), Some(50));
        assert_eq!(child_expiry(None, None), None);
    }

    #[test]
    fn grant_tokens_need_the_write_scope() {
        assert!(!may_read_grants(&[TokenScope::Read]));
        assert!(may_read_grants(&[TokenScope::Read, TokenScope::Write]));
    }

    #[test]
    fn a_share_link_dies_with_its_creators_access_and_cannot_return_the_removed() {
        use SessionRole::*;
        assert!(share_link_grants(Some(Owner), None, 100));
        assert!(share_link_grants(Some(CoOwner), None, 100));
        assert!(share_link_grants(Some(Admin), None, 100));
        assert!(!share_link_grants(Some(Collaborator), None, 100));
        assert!(!share_link_grants(None, None, 100));
        // Removed after the link was made: it cannot bring them back.
        assert!(!share_link_grants(Some(Owner), Some(200), 100));
        // A link made after the removal is a deliberate new invitation.
        assert!(share_link_grants(Some(Owner), Some(50), 100));
    }

    const NOW: i64 = 1_000_000;

    #[test]
    fn owners_admins_and_shares_see_sessions() {
        let member = TeamRole::Member;
        assert_eq!(
            session_role("u", member, "u", None),
            Some(SessionRole::Owner)
        );
        assert_eq!(
            session_role("a", TeamRole::Admin, "u", None),
            Some(SessionRole::Admin)
        );
        assert_eq!(
            session_role("v", member, "u", Some(SessionRole::Viewer)),
            Some(SessionRole::Viewer)
        );
        assert_eq!(session_role("x", member, "u", None), None);
        // A stored share can never grant ownership.
        assert_eq!(
            session_role("x", member, "u", Some(SessionRole::Owner)),
            None
        );
    }

    #[test]
    fn session_access_hides_existence_from_strangers_only() {
        use Access::*;
        assert_eq!(check_session(SessionViewer, None), Err(Denial::NotFound));
        assert_eq!(check_session(SessionManager, None), Err(Denial::NotFound));
        let viewer = Some(SessionRole::Viewer);
        assert!(check_session(SessionViewer, viewer).is_ok());
        assert_eq!(
            check_session(SessionCollaborator, viewer),
            Err(Denial::Forbidden)
        );
        let collaborator = Some(SessionRole::Collaborator);
        assert!(check_session(SessionCollaborator, collaborator).is_ok());
        assert_eq!(
            check_session(SessionManager, collaborator),
            Err(Denial::Forbidden)
        );
        for role in [SessionRole::CoOwner, SessionRole::Admin, SessionRole::Owner] {
            assert!(check_session(SessionManager, Some(role)).is_ok());
        }
        assert_eq!(
            check_session(Admin, Some(SessionRole::Owner)),
            Err(Denial::Forbidden)
        );
    }

    #[test]
    fn team_routes() {
        assert!(check_team(Access::Member, TeamRole::Member).is_ok());
        assert_eq!(
            check_team(Access::Admin, TeamRole::Member),
            Err(Denial::Forbidden)
        );
        assert!(check_team(Access::Admin, TeamRole::Admin).is_ok());
        assert_eq!(
            check_team(Access::Runner, TeamRole::Admin),
            Err(Denial::Forbidden)
        );
    }

    #[test]
    fn read_tokens_cannot_write() {
        let read = [TokenScope::Read];
        assert!(scope_allows(&read, "GET"));
        assert!(!scope_allows(&read, "POST"));
        assert!(!scope_allows(&read, "DELETE"));
        let write = parse_scopes("read write");
        assert!(scope_allows(&write, "POST"));
        assert!(scope_allows(&write, "GET"));
        assert!(!scope_allows(&[], "GET"));
        assert_eq!(format_scopes(&write), "read write");
        assert_eq!(parse_scopes("read bogus"), vec![TokenScope::Read]);
    }

    #[test]
    fn csrf_tokens_bind_to_the_cookie() {
        let token = csrf_token("cookie-a");
        assert_ne!(token, csrf_token("cookie-b"));
        assert!(csrf_ok("POST", "cookie-a", Some(&token)));
        assert!(!csrf_ok("POST", "cookie-b", Some(&token)));
        assert!(!csrf_ok("DELETE", "cookie-a", None));
        assert!(!csrf_ok("PATCH", "cookie-a", Some("")));
        assert!(csrf_ok("GET", "cookie-a", None));
    }

    #[test]
    fn cookies_parse_and_are_built_safely() {
        assert_eq!(
            cookie_value("a=1; ns_session=abc ; b=2", "ns_session"),
            Some("abc")
        );
        assert_eq!(cookie_value("ns_session=", "ns_session"), None);
        assert_eq!(cookie_value("xns_session=1", "ns_session"), None);
        let cookie = set_cookie("ns_session", "t", 60, true);
        assert!(cookie.contains("HttpOnly"));
        assert!(cookie.contains("SameSite=Lax"));
        assert!(cookie.ends_with("; Secure"));
        assert!(!set_cookie("ns_session", "t", 60, false).contains("Secure"));
        assert!(!cookie_secure("127.0.0.1"));
        assert!(!cookie_secure("localhost"));
        assert!(cookie_secure("nightshift.example.com"));
    }

    #[test]
    fn redirects_stay_on_site() {
        assert_eq!(safe_redirect(Some("/sessions/1")), "/sessions/1");
        assert_eq!(safe_redirect(Some("//evil.example")), "/");
        assert_eq!(safe_redirect(Some("https://evil.example")), "/");
        assert_eq!(safe_redirect(Some("/\\evil")), "/");
        assert_eq!(safe_redirect(None), "/");
    }

    fn invite(role: TeamRole) -> InviteFacts {
        InviteFacts {
            role,
            email: None,
            expires_at: NOW + 1,
            max_uses: 2,
            uses: 1,
            revoked: false,
        }
    }

    #[test]
    fn invites_expire_run_out_and_can_be_revoked() {
        let ok = invite(TeamRole::Member);
        assert!(invite_usable(&ok, "b@x.io", NOW));
        assert!(!invite_usable(&ok, "b@x.io", NOW + 1));
        assert!(!invite_usable(
            &InviteFacts {
                uses: 2,
                ..ok.clone()
            },
            "b@x.io",
            NOW
        ));
        assert!(!invite_usable(
            &InviteFacts {
                revoked: true,
                ..ok.clone()
            },
            "b@x.io",
            NOW
        ));
        let only = InviteFacts {
            email: Some("B@x.io".into()),
            ..ok
        };
        assert!(invite_usable(&only, "b@x.io", NOW));
        assert!(!invite_usable(&only, "c@x.io", NOW));
    }

    #[test]
    fn signin_rules() {
        use SigninDecision::*;
        use SigninPolicy::*;
        let facts =
            |existing, members, inv: Option<&'static InviteFacts>, presented, policy, domain| {
                SigninFacts {
                    existing,
                    team_has_members: members,
                    invite: inv,
                    invite_presented: presented,
                    policy,
                    allowed_domain: domain,
                    email: "a@corp.io",
                    now_ms: NOW,
                    operator_admin: false,
                    operator_vouched: false,
                }
            };
        let decide = |existing, members, inv: Option<&InviteFacts>, presented, policy, domain| {
            decide_signin(SigninFacts {
                existing,
                team_has_members: members,
                invite: inv,
                invite_presented: presented,
                policy,
                allowed_domain: domain,
                email: "a@corp.io",
                now_ms: NOW,
                operator_admin: false,
                operator_vouched: false,
            })
        };
        // Whoever arrives first on an empty team is not admin by that alone, whatever
        // the policy...
        for policy in [InviteOnly, Open, Domain] {
            assert_eq!(
                decide(None, false, None, false, policy, Some("corp.io")),
                Refuse("setup_required")
            );
        }
        // ...only someone the operator vouched for (setup code, loopback dev sign-in).
        assert_eq!(
            decide_signin(SigninFacts {
                operator_vouched: true,
                ..facts(None, false, None, true, Open, None)
            }),
            FirstAdmin
        );
        // A vouched sign-in on a team that has members is an ordinary one.
        assert_eq!(
            decide_signin(SigninFacts {
                operator_vouched: true,
                ..facts(None, true, None, false, InviteOnly, None)
            }),
            Refuse("signin_not_allowed")
        );
        // People the operator named join as admins, first or later.
        for members in [false, true] {
            assert_eq!(
                decide_signin(SigninFacts {
                    operator_admin: true,
                    ..facts(None, members, None, false, InviteOnly, None)
                }),
                Join {
                    role: TeamRole::Admin,
                    use_invite: false
                }
            );
        }
        // Members keep their role.
        assert_eq!(
            decide(Some(TeamRole::Member), true, None, false, InviteOnly, None),
            Member(TeamRole::Member)
        );
        // Invite-only is the default and refuses strangers.
        assert_eq!(
            decide(None, true, None, false, InviteOnly, None),
            Refuse("signin_not_allowed")
        );
        let good = invite(TeamRole::Admin);
        assert_eq!(
            decide(None, true, Some(&good), true, InviteOnly, None),
            Join {
                role: TeamRole::Admin,
                use_invite: true
            }
        );
        let expired = InviteFacts {
            expires_at: NOW - 1,
            ..good
        };
        assert_eq!(
            decide(None, true, Some(&expired), true, Open, None),
            Refuse("invite_invalid")
        );
        assert_eq!(
            decide(None, true, None, true, Open, None),
            Refuse("invite_invalid")
        );
        assert_eq!(
            decide(None, true, None, false, Domain, Some("corp.io")),
            Join {
                role: TeamRole::Member,
                use_invite: false
            }
        );
        assert_eq!(
            decide(None, true, None, false, Domain, Some("other.io")),
            Refuse("signin_not_allowed")
        );
        assert_eq!(
            decide(None, true, None, false, Open, None),
            Join {
                role: TeamRole::Member,
                use_invite: false
            }
        );
    }

    #[test]
    fn emails() {
        assert!(valid_email("alice@example.com"));
        assert!(!valid_email("alice"));
        assert!(!valid_email("@example.com"));
        assert!(!valid_email("a@b"));
        assert!(!valid_email("a b@example.com"));
    }
}
