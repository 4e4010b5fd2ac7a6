//! Ending sessions and finding them: the session list's filters (`GET
//! /api/sessions?scope=&q=&archived=`) and the bulk route's bodies (`POST
//! /api/sessions/bulk`).
//!
//! The filters are parsed here, once, so the Worker that applies them, the app and
//! the CLI that build them agree on every name and bound; a bad value is an error the
//! Worker answers with 400 `invalid_request`.

use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// The most sessions one `POST /api/sessions/bulk` names.
pub const MAX_BULK_IDS: usize = 100;
/// The longest search text (`q`), in characters.
pub const MAX_SEARCH_CHARS: usize = 200;
/// The most words a search matches (each must appear in the title).
pub const MAX_SEARCH_WORDS: usize = 8;

/// Whose sessions a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListScope {
    /// The caller's own.
    Mine,
    /// Those shared with the caller (by someone else).
    Shared,
    /// For a team admin, every session of the team; for anyone else, the sessions
    /// shared with them (all of the team's they can see that are not their own).
    Team,
}

impl ListScope {
    pub fn as_str(self) -> &'static str {
        match self {
            ListScope::Mine => "mine",
            ListScope::Shared => "shared",
            ListScope::Team => "team",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "mine" => ListScope::Mine,
            "shared" => ListScope::Shared,
            "team" => ListScope::Team,
            _ => return None,
        })
    }
}

/// Whether archived sessions are listed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchivedFilter {
    /// Only sessions that are not archived (`archived=false`, the default).
    #[default]
    Hide,
    /// Only archived sessions (`archived=true`).
    Only,
    /// Both (`archived=any`).
    Any,
}

impl ArchivedFilter {
    pub fn as_str(self) -> &'static str {
        match self {
            ArchivedFilter::Hide => "false",
            ArchivedFilter::Only => "true",
            ArchivedFilter::Any => "any",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "false" => ArchivedFilter::Hide,
            "true" => ArchivedFilter::Only,
            "any" => ArchivedFilter::Any,
            _ => return None,
        })
    }
}

/// The filters of one session list. The default lists every scope the caller can see,
/// not archived, unsearched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// `None`: every session the caller can see (their own, those shared with them,
    /// and for an admin the sessions of removed members).
    pub scope: Option<ListScope>,
    /// Lowercased words that must each appear in the title.
    pub words: Vec<String>,
    pub archived: ArchivedFilter,
}

/// Why a list's query was refused (answered as 400 `invalid_request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(pub String);

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl ListFilter {
    /// The filter `scope`, `q` and `archived` name (absent values take the default).
    pub fn parse(
        scope: Option<&str>,
        q: Option<&str>,
        archived: Option<&str>,
    ) -> Result<Self, FilterError> {
        let scope = scope
            .map(|text| {
                ListScope::parse(text).ok_or_else(|| {
                    FilterError(format!("scope must be mine, shared or team, not `{text}`"))
                })
            })
            .transpose()?;
        let archived = archived
            .map(|text| {
                ArchivedFilter::parse(text).ok_or_else(|| {
                    FilterError(format!("archived must be false, true or any, not `{text}`"))
                })
            })
            .transpose()?
            .unwrap_or_default();
        let q = q.unwrap_or_default();
        if q.chars().count() > MAX_SEARCH_CHARS {
            return Err(FilterError(format!(
                "q is longer than {MAX_SEARCH_CHARS} characters"
            )));
        }
        if q.chars().any(char::is_control) {
            return Err(FilterError("q holds a control character".into()));
        }
        let words: Vec<String> = q.split_whitespace().map(str::to_lowercase).collect();
        if words.len() > MAX_SEARCH_WORDS {
            return Err(FilterError(format!(
                "q has more than {MAX_SEARCH_WORDS} words"
            )));
        }
        Ok(ListFilter {
            scope,
            words,
            archived,
        })
    }

    /// The query pairs that say this filter (defaults left out), for clients.
    pub fn query_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(scope) = self.scope {
            pairs.push(("scope", scope.as_str().to_owned()));
        }
        if !self.words.is_empty() {
            pairs.push(("q", self.words.join(" ")));
        }
        if self.archived != ArchivedFilter::default() {
            pairs.push(("archived", self.archived.as_str().to_owned()));
        }
        pairs
    }

    /// A short tag of this filter that a list's cursor carries, so a cursor from one
    /// filter is refused with another (FNV-1a over the canonical query, in hex).
    pub fn fingerprint(&self) -> String {
        let canonical = format!(
            "{}|{}|{}",
            self.scope.map_or("", ListScope::as_str),
            self.words.join(" "),
            self.archived.as_str()
        );
        let mut hash: u32 = 0x811c_9dc5;
        for byte in canonical.bytes() {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        format!("{hash:08x}")
    }
}

/// `POST /api/sessions/{id}/archive`: no fields (an empty body or `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSessionRequest {}

/// What `POST /api/sessions/bulk` does to each session it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    Archive,
    Delete,
}

/// `POST /api/sessions/bulk`: one action on at most [`MAX_BULK_IDS`] sessions, each
/// checked and done on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    pub action: BulkAction,
    pub ids: Vec<String>,
}

/// What became of one session of a bulk request: `ok`, or the error code the single
/// route would have answered (`not_found`, `forbidden`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkOutcome {
    pub id: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorCode>,
}

/// `POST /api/sessions/bulk`'s answer: one outcome per id, in the request's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkResponse {
    pub results: Vec<BulkOutcome>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_values_are_the_default_filter() {
        let filter = ListFilter::parse(None, None, None).unwrap();
        assert_eq!(filter, ListFilter::default());
        assert_eq!(filter.archived, ArchivedFilter::Hide);
        assert!(filter.query_pairs().is_empty());
    }

    #[test]
    fn values_parse_and_round_trip_through_the_query() {
        let filter = ListFilter::parse(Some("team"), Some("  Fix  the BUG "), Some("any")).unwrap();
        assert_eq!(filter.scope, Some(ListScope::Team));
        assert_eq!(filter.words, ["fix", "the", "bug"]);
        assert_eq!(filter.archived, ArchivedFilter::Any);
        let pairs = filter.query_pairs();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.as_str())
        };
        let again = ListFilter::parse(get("scope"), get("q"), get("archived")).unwrap();
        assert_eq!(again, filter);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(ListFilter::parse(Some("everyone"), None, None).is_err());
        assert!(ListFilter::parse(None, None, Some("yes")).is_err());
        assert!(ListFilter::parse(None, Some(&"a".repeat(MAX_SEARCH_CHARS + 1)), None).is_err());
        assert!(ListFilter::parse(None, Some("a b c d e f g h i"), None).is_err());
        assert!(ListFilter::parse(None, Some("a\u{0}b"), None).is_err());
    }

    #[test]
    fn different_filters_have_different_fingerprints() {
        let default = ListFilter::default().fingerprint();
        let searched = ListFilter::parse(None, Some("x"), None)
            .unwrap()
            .fingerprint();
        let mine = ListFilter::parse(Some("mine"), None, None)
            .unwrap()
            .fingerprint();
        let archived = ListFilter::parse(None, None, Some("true"))
            .unwrap()
            .fingerprint();
        assert_eq!(default.len(), 8);
        let all = [&default, &searched, &mine, &archived];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Case and spacing of the search do not matter.
        assert_eq!(
            ListFilter::parse(None, Some("X"), None)
                .unwrap()
                .fingerprint(),
            searched
        );
    }

    #[test]
    fn a_bulk_body_is_strict() {
        let body: BulkRequest =
            serde_json::from_str(r#"{"action":"archive","ids":["a","b"]}"#).unwrap();
        assert_eq!(body.action, BulkAction::Archive);
        assert!(serde_json::from_str::<BulkRequest>(r#"{"action":"burn","ids":[]}"#).is_err());
        assert!(
            serde_json::from_str::<BulkRequest>(r#"{"action":"delete","ids":[],"x":1}"#).is_err()
        );
        let outcome = BulkOutcome {
            id: "a".into(),
            ok: false,
            error: Some(ErrorCode::Forbidden),
        };
        assert_eq!(
            serde_json::to_value(&outcome).unwrap(),
            serde_json::json!({"id": "a", "ok": false, "error": "forbidden"})
        );
    }
}
