//! Specifications for confinement under a hostile sandbox: while a process in the
//! sandbox keeps swapping a directory of the workspace for a symlink that leads out
//! of it, the file tools never read, write or list anything outside the workspace;
//! and named pipes planted in the workspace are refused instead of hanging a tool.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use nix::fcntl::{RenameFlags, renameat2};
use nix::sys::stat::Mode;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::ToolSet;
use super::files::{EditFileArgs, ReadFileArgs, WriteFileArgs, edit_file, read_file, write_file};
use super::paths::Workspace;
use super::search::{GrepArgs, ListArgs, grep, list};

const SECRET: &str = "CANARY-SECRET the host's own file; harmless text too";
const HARMLESS: &str = "harmless\n";
/// Rounds of read, write, edit and grep run against the swapping directory.
const ROUNDS: usize = 3000;

/// Sets the flag when dropped, so the swapping thread stops even when an
/// assertion fails half-way.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What a directory's files are, to tell whether anything in it changed.
fn snapshot(dir: &Path) -> Vec<(String, String, i64, i64)> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let metadata = fs::symlink_metadata(entry.path()).unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                fs::read_to_string(entry.path()).unwrap_or_default(),
                metadata.mtime(),
                metadata.mtime_nsec(),
            )
        })
        .collect();
    entries.sort();
    entries
}

#[test]
fn tools_racing_a_directory_swapped_for_an_outward_symlink_never_touch_the_outside() {
    let temporary = tempfile::tempdir().unwrap();
    let workspace_dir = temporary.path().join("workspace");
    let canary = temporary.path().join("canary");
    fs::create_dir_all(workspace_dir.join("d")).unwrap();
    fs::create_dir_all(&canary).unwrap();
    fs::write(workspace_dir.join("d/f"), HARMLESS).unwrap();
    fs::write(canary.join("f"), SECRET).unwrap();
    std::os::unix::fs::symlink("../canary", workspace_dir.join("swap")).unwrap();
    let canary_before = snapshot(&canary);

    let workspace = Workspace::new(&workspace_dir, Path::new("/workspace")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapper = {
        let stop = stop.clone();
        let swaps = swaps.clone();
        let workspace_dir = workspace_dir.clone();
        std::thread::spawn(move || {
            let handle = fs::File::open(&workspace_dir).unwrap();
            // Each exchange atomically turns `d` from the real directory into the
            // symlink to `../canary` or back, as a process in the sandbox could.
            while !stop.load(Ordering::SeqCst) {
                if renameat2(&handle, "d", &handle, "swap", RenameFlags::RENAME_EXCHANGE).is_err() {
                    break;
                }
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let _stop = StopOnDrop(stop.clone());

    let mut harmless_reads = 0;
    for round in 0..ROUNDS {
        let read = read_file(
            &workspace,
            ReadFileArgs {
                path: "d/f".into(),
                offset: None,
                limit: None,
                line_numbers: Some(false),
            },
        );
        assert!(
            !read.text.contains("CANARY"),
            "round {round}: read_file returned the outside file: {}",
            read.text
        );
        if !read.is_error && read.text.starts_with("harmless") {
            harmless_reads += 1;
        }

        write_file(
            &workspace,
            WriteFileArgs {
                path: "d/f".into(),
                content: HARMLESS.into(),
            },
        );
        let edit = edit_file(
            &workspace,
            EditFileArgs {
                path: "d/f".into(),
                old_string: "harmless".into(),
                new_string: "harmless, edited".into(),
                replace_all: true,
            },
        );
        assert!(
            !edit.text.contains("CANARY"),
            "round {round}: edit_file showed the outside file: {}",
            edit.text
        );

        let found = grep(
            &workspace,
            GrepArgs {
                // Written so that "no matches" quoting the pattern does not contain the secret.
                pattern: "CANA[R]Y|harmless".into(),
                path: if round % 2 == 0 {
                    None
                } else {
                    Some("d".into())
                },
                glob: None,
            },
        );
        assert!(
            !found.text.contains("CANARY"),
            "round {round}: grep returned the outside file: {}",
            found.text
        );
        let listed = list(
            &workspace,
            ListArgs {
                pattern: None,
                path: None,
            },
        );
        assert!(
            !listed.text.contains("canary"),
            "round {round}: list showed the outside directory: {}",
            listed.text
        );
        assert_eq!(
            snapshot(&canary),
            canary_before,
            "round {round}: the outside directory changed"
        );
    }
    stop.store(true, Ordering::SeqCst);
    swapper.join().unwrap();

    assert_eq!(snapshot(&canary), canary_before);
    assert!(
        swaps.load(Ordering::Relaxed) > ROUNDS,
        "the directory was swapped only {} times",
        swaps.load(Ordering::Relaxed)
    );
    // The race must not make the tools useless: while `d` was the real directory
    // they worked.
    assert!(harmless_reads > 0, "no read of d/f ever succeeded");
}

fn make_fifo(path: &Path) {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600)).unwrap();
}

#[tokio::test]
async fn named_pipes_are_refused_promptly_by_every_file_tool() {
    let dir = tempfile::tempdir().unwrap();
    make_fifo(&dir.path().join("pipe"));
    fs::create_dir(dir.path().join("sub")).unwrap();
    make_fifo(&dir.path().join("sub/.gitignore"));
    make_fifo(&dir.path().join(".ignore"));
    fs::write(dir.path().join("sub/notes.txt"), "hello\n").unwrap();
    let tools = ToolSet::new(dir.path(), "/workspace", Vec::new()).unwrap();
    let cancel = CancellationToken::new();

    let calls = [
        ("read_file", json!({"path": "pipe"})),
        ("write_file", json!({"path": "pipe", "content": "x"})),
        (
            "edit_file",
            json!({"path": "pipe", "old_string": "a", "new_string": "b"}),
        ),
    ];
    for (name, args) in calls {
        let output = tokio::time::timeout(Duration::from_secs(10), tools.run(name, &args, &cancel))
            .await
            .unwrap_or_else(|_| panic!("{name} hung on a named pipe"));
        assert!(output.is_error, "{name}: {}", output.text);
        assert!(
            output.text.contains("not a regular file"),
            "{name}: {}",
            output.text
        );
    }

    // A search walks past the pipe (and past pipes named like ignore files) and
    // still finds what the regular files hold.
    let found = tokio::time::timeout(
        Duration::from_secs(10),
        tools.run("grep", &json!({"pattern": "hello"}), &cancel),
    )
    .await
    .expect("grep hung on a named pipe");
    assert_eq!(found.text, "sub/notes.txt:1: hello");
    let listed = tokio::time::timeout(
        Duration::from_secs(10),
        tools.run("list", &json!({}), &cancel),
    )
    .await
    .expect("list hung on a named pipe");
    assert!(!listed.is_error, "{}", listed.text);
    assert!(listed.text.contains("pipe"), "{}", listed.text);
}
