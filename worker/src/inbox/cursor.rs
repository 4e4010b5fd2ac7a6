//! The inbox's page cursor: the last entry's time and id, so a page starts strictly
//! after it in `created_at DESC, id DESC` order whatever was written meanwhile.
//!
//! Must not depend on `worker`.

use nightshift_protocol::inbox::InboxEntry;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub id: String,
}

impl Cursor {
    pub fn of(entry: &InboxEntry) -> Cursor {
        Cursor {
            created_at: entry.created_at,
            id: entry.id.clone(),
        }
    }

    /// `<created_at>.<id>`: ids are UUIDs, so neither part holds the dot.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at, self.id)
    }

    /// A cursor [`Cursor::encode`] could have made; `None` for anything else.
    pub fn parse(text: &str) -> Option<Cursor> {
        let (created_at, id) = text.split_once('.')?;
        let created_at: i64 = created_at.parse().ok()?;
        let well_formed = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-');
        (created_at >= 0 && well_formed).then(|| Cursor {
            created_at,
            id: id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_junk_does_not() {
        let cursor = Cursor {
            created_at: 1_700_000_000_000,
            id: "0b6f3a4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b".into(),
        };
        assert_eq!(Cursor::parse(&cursor.encode()), Some(cursor));
        for junk in ["", "12", "x.abc", "-1.abc", "12.", "12.a'b", "12.a.b"] {
            assert_eq!(Cursor::parse(junk), None, "{junk}");
        }
    }
}
