//! The sessions list as a table for people: short ids (any unique prefix works as a
//! session argument), status, agent, when it last changed, the GitHub repository
//! and pull request (only when some listed session has a repository, so lists
//! without GitHub stay narrow), and the title.

use nightshift_protocol::api::Session;

use crate::render::clean;

/// How much of an id the table shows.
const SHORT_ID: usize = 8;
const TITLE_CHARS: usize = 60;

/// The table, header first, one line per session.
pub fn sessions_table(sessions: &[Session], now_ms: i64) -> String {
    let with_repos = sessions.iter().any(|s| s.repo.is_some());
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            let mut title = clean(&s.title, false);
            if title.chars().count() > TITLE_CHARS {
                title = title.chars().take(TITLE_CHARS - 1).collect::<String>() + "…";
            }
            let mut row = vec![
                s.id.chars().take(SHORT_ID).collect(),
                s.status.as_str().to_string(),
                s.agent.as_str().to_string(),
                ago(now_ms - s.updated_at),
            ];
            if with_repos {
                let (repo, pr) = repo_cells(s);
                row.extend([repo, pr]);
            }
            row.push(if title.is_empty() {
                "(untitled)".into()
            } else {
                title
            });
            row
        })
        .collect();
    let mut header: Vec<String> = ["ID", "STATUS", "AGENT", "UPDATED"]
        .map(str::to_string)
        .to_vec();
    if with_repos {
        header.extend(["REPO".to_string(), "PR".to_string()]);
    }
    header.push("TITLE".to_string());
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    std::iter::once(&header)
        .chain(&rows)
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.push_str(&" ".repeat(pad));
                }
            }
            line.trim_end().to_string() + "\n"
        })
        .collect()
}

/// A session's repository and pull request cells (`-` for none); the names are
/// cleaned of control characters like every other text from the server.
fn repo_cells(session: &Session) -> (String, String) {
    let Some(repo) = &session.repo else {
        return ("-".into(), "-".into());
    };
    let pr = repo.pull_request.as_ref().map_or_else(
        || "-".to_string(),
        |pr| format!("#{} {}", pr.number, pr.state.as_str()),
    );
    (clean(&repo.full_name, false), pr)
}

/// A duration in the past, in the largest whole unit.
pub fn ago(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        3600..=86_399 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use nightshift_protocol::api::SessionStatus;

    use super::*;

    fn session(id: &str, title: &str, status: SessionStatus, updated_at: i64) -> Session {
        serde_json::from_value(serde_json::json!({
            "id": id, "title": title, "status": status, "owner_id": "u",
            "sandbox_id": null, "error": null, "created_at": 0, "updated_at": updated_at
        }))
        .unwrap()
    }

    #[test]
    fn the_table_aligns_its_columns() {
        let sessions = [
            session(
                "3b241101-e2bb-4255-8caf-4136c566a962",
                "Fix the build",
                SessionStatus::Running,
                95_000,
            ),
            session(
                "7c000000-0000-0000-0000-000000000000",
                "",
                SessionStatus::Idle,
                0,
            ),
        ];
        assert_eq!(
            sessions_table(&sessions, 100_000),
            "ID        STATUS   AGENT    UPDATED  TITLE\n\
             3b241101  running  builtin  5s ago   Fix the build\n\
             7c000000  idle     builtin  1m ago   (untitled)\n"
        );
    }

    #[test]
    fn repositories_and_pull_requests_get_columns_when_any_session_has_one() {
        let mut with_repo = session("aaaaaaaa-1", "Fix", SessionStatus::Idle, 0);
        with_repo.repo = serde_json::from_value(serde_json::json!({
            "full_name": "acme/web\u{1b}[31m", "branch": "nightshift/x", "base_branch": "main",
            "pull_request": {"number": 7, "state": "draft", "url": "https://github.com/acme/web/pull/7"}
        }))
        .unwrap();
        let without = session("bbbbbbbb-2", "Other", SessionStatus::Idle, 0);
        assert_eq!(
            sessions_table(&[with_repo, without], 0),
            "ID        STATUS  AGENT    UPDATED  REPO          PR        TITLE\n\
             aaaaaaaa  idle    builtin  0s ago   acme/web[31m  #7 draft  Fix\n\
             bbbbbbbb  idle    builtin  0s ago   -             -         Other\n"
        );
    }

    #[test]
    fn ages_use_the_largest_unit() {
        assert_eq!(ago(-5), "0s ago");
        assert_eq!(ago(3_600_000), "1h ago");
        assert_eq!(ago(200_000_000), "2d ago");
    }
}
