//! What the Worker's local state (`wrangler dev --persist-to`: D1, R2 and Durable
//! Objects, as SQLite databases and blob files) holds, read as its own readers would:
//! every row of every table of every database, and every other file's bytes.
//!
//! SQLite keeps deleted rows' old bytes in its write-ahead log and free pages until
//! they are overwritten, so a byte search of the databases finds data no reader can
//! reach any more; this reads the rows instead. Call it with the Worker stopped.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::types::ValueRef;

/// Where `needle` is held under `dir`: `<database> <table>` for a row of a SQLite
/// database, or the path of any other file (write-ahead logs and shared-memory
/// files, which are the databases' own, are read through the databases).
///
/// One table is left out: `__miniflare_do_name`, where the local runtime records the
/// name a Durable Object was addressed by. A session's object is addressed by the
/// session id, and what stays of a deleted session's object is its tombstone (no id,
/// no content), which keeps a late sandbox from being kept; Cloudflare itself stores
/// no name (the object's id is a hash of it).
pub fn places_holding(dir: &Path, needle: &str) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for file in files_under(dir) {
        let name = file.to_string_lossy().into_owned();
        if name.ends_with("-wal") || name.ends_with("-shm") {
            continue;
        }
        if name.ends_with(".sqlite") {
            for table in tables_holding(&file, needle).with_context(|| format!("reading {name}"))? {
                found.push(format!("{name} {table}"));
            }
        } else if std::fs::read(&file)
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        {
            found.push(name);
        }
    }
    Ok(found)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// The tables of the database at `path` with a row whose text or blob holds `needle`.
fn tables_holding(path: &Path, needle: &str) -> anyhow::Result<Vec<String>> {
    let db = rusqlite::Connection::open(path)?;
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut holding = Vec::new();
    for table in tables {
        if table == "__miniflare_do_name" {
            continue;
        }
        // Internal tables (workerd's `_cf_KV`, sqlite's own) are read like any other.
        let Ok(mut statement) = db.prepare(&format!("SELECT * FROM \"{table}\"")) else {
            continue;
        };
        let columns = statement.column_count();
        let mut rows = statement.query([])?;
        let mut hit = false;
        while let Some(row) = rows.next()? {
            for index in 0..columns {
                let bytes: &[u8] = match row.get_ref(index)? {
                    ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes,
                    _ => continue,
                };
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    hit = true;
                }
            }
        }
        if hit {
            holding.push(table);
        }
    }
    Ok(holding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_found_until_it_is_deleted_whatever_bytes_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        let db = rusqlite::Connection::open(&path).unwrap();
        db.pragma_update(None, "journal_mode", "WAL").unwrap();
        db.execute_batch(
            "CREATE TABLE events (body TEXT); INSERT INTO events VALUES ('the secret-42');",
        )
        .unwrap();
        std::fs::write(dir.path().join("blob"), b"other secret-43").unwrap();
        let found = places_holding(dir.path(), "secret-42").unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].ends_with("state.sqlite events"));
        assert_eq!(places_holding(dir.path(), "secret-43").unwrap().len(), 1);

        db.execute("DELETE FROM events", []).unwrap();
        std::fs::remove_file(dir.path().join("blob")).unwrap();
        assert!(places_holding(dir.path(), "secret-42").unwrap().is_empty());
        assert!(places_holding(dir.path(), "secret-43").unwrap().is_empty());
        drop(db);
    }
}
