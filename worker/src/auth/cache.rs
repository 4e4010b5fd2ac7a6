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
//! The cache itself is a plain type ([`SigninCache`]), tested natively; the isolate
//! holds one in a thread local (an isolate runs one thread).

use std::cell::RefCell;
use std::collections::HashMap;

use nightshift_protocol::auth::TeamRole;

use super::User;

/// How long an isolate trusts a sign-in it read from D1.
pub const TTL_MS: i64 = 3_000;

/// Entries one isolate keeps at most (the oldest go first).
const CAPACITY: usize = 2_048;

/// Credential hash -> the user it signed in as, with when that was read.
#[derive(Debug, Default)]
pub struct SigninCache {
    entries: HashMap<String, (User, i64)>,
}

impl SigninCache {
    /// The user `hash` signed in as, if read less than [`TTL_MS`] before `now`.
    pub fn get(&mut self, hash: &str, now: i64) -> Option<User> {
        match self.entries.get(hash) {
            Some((user, read_at)) if now - read_at < TTL_MS && now >= *read_at => {
                Some(user.clone())
            }
            Some(_) => {
                self.entries.remove(hash);
                None
            }
            None => None,
        }
    }

    pub fn put(&mut self, hash: String, user: User, now: i64) {
        if self.entries.len() >= CAPACITY && !self.entries.contains_key(&hash) {
            self.entries
                .retain(|_, (_, read_at)| now - *read_at < TTL_MS);
            if self.entries.len() >= CAPACITY
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, read_at))| *read_at)
                    .map(|(hash, _)| hash.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(hash, (user, now));
    }

    pub fn forget(&mut self, hash: &str) {
        self.entries.remove(hash);
    }

    /// Drops every entry of `user_id`.
    pub fn forget_user(&mut self, user_id: &str) {
        self.entries.retain(|_, (user, _)| user.id != user_id);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

thread_local! {
    static CACHE: RefCell<SigninCache> = RefCell::new(SigninCache::default());
    /// User id -> their team role (`None`: not a member), with when it was read; for
    /// credentials that are not a sign-in (panel grants). Same lifetime and same
    /// revocation as the sign-ins.
    static TEAM_ROLES: RefCell<HashMap<String, (Option<TeamRole>, i64)>> =
        RefCell::new(HashMap::new());
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
    let cached = TEAM_ROLES.with(|roles| {
        roles
            .borrow()
            .get(user_id)
            .filter(|(_, read_at)| now >= *read_at && now - read_at < TTL_MS)
            .map(|(role, _)| *role)
    });
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
    TEAM_ROLES.with(|roles| {
        let mut roles = roles.borrow_mut();
        if roles.len() >= CAPACITY {
            roles.retain(|_, (_, read_at)| now - *read_at < TTL_MS);
        }
        if roles.len() < CAPACITY {
            roles.insert(user_id.to_owned(), (role, now));
        }
    });
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
    TEAM_ROLES.with(|roles| roles.borrow_mut().remove(user_id));
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
}
