//! Session arguments: a whole id, or a prefix of exactly one id the caller can see.

use nightshift_protocol::api::Session;
use nightshift_protocol::session_list::{ArchivedFilter, ListFilter};

use crate::client::Client;
use crate::error::{CliError, CliResult};

/// The most sessions read while looking for a prefix (pages of [`PAGE`]).
const MAX_SCANNED: usize = 10_000;
const PAGE: u32 = 200;

/// What a prefix matches among some ids.
#[derive(Debug, PartialEq, Eq)]
pub enum PrefixMatch {
    One(String),
    Nothing,
    Several(Vec<String>),
}

/// The ids among `ids` that start with `prefix`.
pub fn match_prefix<'a>(prefix: &str, ids: impl IntoIterator<Item = &'a str>) -> PrefixMatch {
    let mut found: Vec<String> = ids
        .into_iter()
        .filter(|id| id.starts_with(prefix))
        .map(str::to_string)
        .collect();
    found.dedup();
    match found.len() {
        0 => PrefixMatch::Nothing,
        1 => PrefixMatch::One(found.remove(0)),
        _ => PrefixMatch::Several(found),
    }
}

/// True for a whole session id (a UUID), which needs no lookup.
pub fn is_whole_id(argument: &str) -> bool {
    argument.len() == 36
        && argument.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The session id `argument` names: itself when it is a whole id, else the one id
/// of the caller's sessions that starts with it.
pub async fn session_id(client: &Client, argument: &str) -> CliResult<String> {
    let argument = argument.trim();
    if argument.is_empty() {
        return Err(CliError::Usage("a session id or prefix is required".into()));
    }
    if is_whole_id(argument) {
        return Ok(argument.to_string());
    }
    // Archived sessions too: they can still be watched, and archived or deleted.
    let every_session = ListFilter {
        archived: ArchivedFilter::Any,
        ..ListFilter::default()
    };
    let mut sessions: Vec<Session> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = client
            .sessions_page(PAGE, cursor.as_deref(), &every_session)
            .await?;
        sessions.extend(page.sessions);
        cursor = page.next_cursor;
        if cursor.is_none() || sessions.len() >= MAX_SCANNED {
            break;
        }
    }
    match match_prefix(argument, sessions.iter().map(|s| s.id.as_str())) {
        PrefixMatch::One(id) => Ok(id),
        PrefixMatch::Nothing => Err(CliError::SessionNotFound(format!(
            "no session of yours has an id starting with {argument:?}"
        ))),
        PrefixMatch::Several(ids) => Err(CliError::Usage(format!(
            "{argument:?} matches {} sessions ({}); give more of the id",
            ids.len(),
            ids.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_one_none_or_several() {
        let ids = ["3b241101-aaaa", "3b99", "7c00"];
        assert_eq!(
            match_prefix("3b2", ids),
            PrefixMatch::One("3b241101-aaaa".into())
        );
        assert_eq!(match_prefix("9", ids), PrefixMatch::Nothing);
        assert_eq!(
            match_prefix("3b", ids),
            PrefixMatch::Several(vec!["3b241101-aaaa".into(), "3b99".into()])
        );
    }

    #[test]
    fn whole_ids_are_uuids() {
        assert!(is_whole_id("3b241101-e2bb-4255-8caf-4136c566a962"));
        assert!(!is_whole_id("3b241101"));
        assert!(!is_whole_id("3b241101-e2bb-4255-8caf-4136c566a96z"));
        assert!(!is_whole_id("3b241101xe2bb-4255-8caf-4136c566a962"));
    }
}
