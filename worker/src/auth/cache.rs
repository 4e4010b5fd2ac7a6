//! The sign-in cache: a Worker isolate remembers, for [`TTL_MS`], who a session
//! cookie or an API token (by its hash) signed in as, so a burst of requests from
//! one browser reads D1 once instead of on every request.
//!
//! Revocation still takes effect at once, in two halves:
//! - In the isolate that handles the revoking request (sign-out, a member removed
//!   or demoted, a token revoked), the entries of that user are dropped before the
//!   change is acknowledged ([`forget_user`]).
//! - Other isolates cannot be told, so the revoking request is acknowledged only
//!   once every entry that could predate it has expired: it waits out [`TTL_MS`]
//!   after its D1 write ([`wait_out`]). When the caller sees the revocation
//!   succeed, no isolate anywhere still honours what it revoked.
//!
//! The cache itself is a plain type ([`TtlCache`]), tested natively; the isolate
//! holds two in thread locals (an isolate runs one thread): sign-ins by credential
//! hash, and team roles by user id for panel grants.

use std::cell::RefCell;
use std::collections::HashMap;

use nightshift_protocol::auth::TeamRole;

use super::User;

/// How long an isolate trusts a sign-in it read from D1.
pub const TTL_MS: i64 = 3_000;

/// Entries one isolate keeps at most (the oldest go first).
const CAPACITY: usize = 2_048;

/// Values an isolate trusts for [`TTL_MS`] after reading them, keyed by a string
/// (a credential's hash, a user id), bounded to [`CAPACITY`] entries.
#[derive(Debug)]
pub struct TtlCache<V> {
    entries: HashMap<String, (V, i64)>,
}

impl<V> Default for TtlCache<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

/// Credential hash -> the user it signed in as.
pub type SigninCache = TtlCache<User>;

impl<V: Clone> TtlCache<V> {
    /// The value of `key`, if read less than [`TTL_MS`] before `now` (a clock that
    /// went backwards does not extend trust).
    pub fn get(&mut self, key: &str, now: i64) -> Option<V> {
        match self.entries.get(key) {
            Some((value, read_at)) if now - read_at < TTL_MS && now >= *read_at => {
                Some(value.clone())
            }
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remembers `value` as read at `now`; when full, expired entries go first, then
    /// the oldest.
    pub fn put(&mut self, key: String, value: V, now: i64) {
        if self.entries.len() >= CAPACITY && !self.entries.contains_key(&key) {
            self.entries
                .retain(|_, (_, read_at)| now - *read_at < TTL_MS);
            if self.entries.len() >= CAPACITY
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, read_at))| *read_at)
                    .map(|(key, _)| key.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (value, now));
    }

    pub fn forget(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Drops every entry whose value `doomed` picks.
    pub fn forget_where(&mut self, doomed: impl Fn(&V) -> bool) {
        self.entries.retain(|_, (value, _)| !doomed(value));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

impl SigninCache {
    /// Drops every entry of `user_id`.
    pub fn forget_user(&mut self, user_id: &str) {
        self.forget_where(|user| user.id == user_id);
    }
}

thread_local! {
    static CACHE: RefCell<SigninCache> = RefCell::new(SigninCache::default());
    /// User id -> their team role (`None`: not a member); for credentials that are
    /// not a sign-in (panel grants). Same lifetime and same revocation as the
    /// sign-ins.
    static TEAM_ROLES: RefCell<TtlCache<Option<TeamRole>>> =
        RefCell::new(TtlCache::default());
}

#[derive(serde::Deserialize)]
struct RoleRow {
    role: String,
}

/// `user_id`'s current team role (`None`: not a member), read from D1 at most once
/// per [`TTL_MS`] per isolate.
pub async fn team_role_of(
    env: &worker::Env,
    user_id: &str,
) -> crate::api_error::ApiResult<Option<TeamRole>> {
    let now = crate::clock::now_ms();
    let cached = TEAM_ROLES.with(|roles| roles.borrow_mut().get(user_id, now));
    if let Some(role) = cached {
        return Ok(role);
    }
    let row: Option<RoleRow> = super::d1::first(
        env,
        "SELECT role FROM memberships WHERE team_id = ? AND user_id = ?",
        &[
            super::d1::Arg::Text(super::TEAM_ID),
            super::d1::Arg::Text(user_id),
        ],
    )
    .await?;
    let role = row.and_then(|row| TeamRole::parse(&row.role));
    TEAM_ROLES.with(|roles| roles.borrow_mut().put(user_id.to_owned(), role, now));
    Ok(role)
}

pub fn get(hash: &str, now: i64) -> Option<User> {
    CACHE.with(|cache| cache.borrow_mut().get(hash, now))
}

pub fn put(hash: String, user: User, now: i64) {
    CACHE.with(|cache| cache.borrow_mut().put(hash, user, now));
}

/// Drops the entry of the credential hashed `hash` in this isolate.
pub fn forget(hash: &str) {
    CACHE.with(|cache| cache.borrow_mut().forget(hash));
}

/// Drops `user_id`'s entries in this isolate.
pub fn forget_user(user_id: &str) {
    CACHE.with(|cache| cache.borrow_mut().forget_user(user_id));
    TEAM_ROLES.with(|roles| roles.borrow_mut().forget(user_id));
}

/// Called after a revocation's D1 write: drops `user_id`'s entries here and waits
/// until no other isolate can still hold one read before the write.
pub async fn wait_out(user_id: &str) {
    forget_user(user_id);
    worker::Delay::from(std::time::Duration::from_millis(TTL_MS as u64)).await;
    // A request of this isolate may have read D1 before the write and put its
    // answer back while this one waited.
    forget_user(user_id);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthMethod;

    fn user(id: &str) -> User {
        User {
            id: id.to_owned(),
            email: None,
            name: id.to_owned(),
            avatar_url: None,
            role: TeamRole::Member,
            default_model: None,
            method: AuthMethod::Token {
                id: "t".into(),
                scopes: Vec::new(),
                expires_at: None,
            },
        }
    }

    #[test]
    fn an_entry_lives_for_the_ttl_only() {
        let mut cache = SigninCache::default();
        cache.put("h".into(), user("u1"), 1_000);
        assert_eq!(cache.get("h", 1_000).map(|u| u.id), Some("u1".into()));
        assert!(cache.get("h", 1_000 + TTL_MS - 1).is_some());
        assert!(cache.get("h", 1_000 + TTL_MS).is_none());
        assert_eq!(cache.len(), 0, "an expired entry is dropped when met");
        // A clock that went backwards does not extend trust.
        cache.put("h".into(), user("u1"), 5_000);
        assert!(cache.get("h", 4_999).is_none());
    }

    #[test]
    fn forgetting_a_user_drops_all_their_credentials_only() {
        let mut cache = SigninCache::default();
        cache.put("cookie".into(), user("u1"), 0);
        cache.put("token".into(), user("u1"), 0);
        cache.put("other".into(), user("u2"), 0);
        cache.forget_user("u1");
        assert!(cache.get("cookie", 1).is_none());
        assert!(cache.get("token", 1).is_none());
        assert_eq!(cache.get("other", 1).map(|u| u.id), Some("u2".into()));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let mut cache = SigninCache::default();
        for i in 0..CAPACITY + 10 {
            cache.put(format!("h{i}"), user("u"), i as i64 / 100);
        }
        assert!(cache.len() <= CAPACITY);
        assert!(cache.get(&format!("h{}", CAPACITY + 9), 30).is_some());
    }

    #[test]
    fn a_cached_not_a_member_is_remembered_as_such() {
        // `None` (not a member) is an answer too: it must not read as a miss, or a
        // removed member's panel requests would each cost a D1 read.
        let mut roles: TtlCache<Option<TeamRole>> = TtlCache::default();
        roles.put("u1".into(), None, 0);
        roles.put("u2".into(), Some(TeamRole::Admin), 0);
        assert_eq!(roles.get("u1", 1), Some(None));
        assert_eq!(roles.get("u2", 1), Some(Some(TeamRole::Admin)));
        roles.forget("u2");
        assert_eq!(roles.get("u2", 1), None);
        assert_eq!(roles.get("u1", TTL_MS), None);
    }
}
