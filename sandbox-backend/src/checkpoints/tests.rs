//! The checkpoint store against real directories: what comes back is exactly what
//! was there, unchanged files cost nothing, and a hostile tree (links out, fifos,
//! too many files, too many bytes) is recorded without being followed or refused
//! with nothing kept.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use super::*;

const ROOMY: Limits = Limits {
    max_files: 10_000,
    max_bytes: 64 * 1024 * 1024,
};

struct Fixture {
    _temporary: tempfile::TempDir,
    workspace: PathBuf,
    outside: PathBuf,
    store: CheckpointStore,
}

fn fixture() -> Fixture {
    let temporary = tempfile::tempdir().unwrap();
    let workspace = temporary.path().join("workspace");
    let outside = temporary.path().join("outside");
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"host secret").unwrap();
    let store = CheckpointStore::of_sandbox(&temporary.path().join("sandbox"));
    Fixture {
        workspace,
        outside,
        store,
        _temporary: temporary,
    }
}

/// Every entry beneath `root`: kind, mode, content or link target.
fn tree(root: &Path) -> BTreeMap<Vec<u8>, String> {
    let mut found = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, found: &mut BTreeMap<Vec<u8>, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            let metadata = std::fs::symlink_metadata(&path).unwrap();
            let mode = metadata.permissions().mode() & 0o777;
            let description = if metadata.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&path).unwrap().display())
            } else if metadata.is_dir() {
                walk(root, &path, found);
                format!("dir {mode:o}")
            } else {
                format!(
                    "file {mode:o} {}",
                    String::from_utf8_lossy(&std::fs::read(&path).unwrap())
                )
            };
            found.insert(relative, description);
        }
    }
    walk(root, root, &mut found);
    found
}

fn write(root: &Path, path: &str, contents: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

fn a_project(fixture: &Fixture) {
    let workspace = &fixture.workspace;
    write(workspace, "README.md", "first turn");
    write(workspace, "src/main.rs", "fn main() {}");
    // A cloned repository's own `.git` is kept as the files it is.
    write(workspace, "repo/.git/HEAD", "ref: refs/heads/main\n");
    write(workspace, "repo/.git/objects/ab/cdef", "object bytes");
    write(workspace, "repo/file.txt", "tracked");
    std::fs::create_dir_all(workspace.join("empty")).unwrap();
    std::fs::set_permissions(
        workspace.join("src/main.rs"),
        PermissionsExt::from_mode(0o750),
    )
    .unwrap();
    symlink("src/main.rs", workspace.join("inside-link")).unwrap();
    symlink(fixture.outside.join("secret"), workspace.join("host-link")).unwrap();
    std::fs::write(workspace.join(OsStr::from_bytes(b"odd\xffname%")), b"bytes").unwrap();
}

#[test]
fn a_restore_brings_back_exactly_what_the_checkpoint_saw() {
    let fixture = fixture();
    a_project(&fixture);
    let before = tree(&fixture.workspace);
    let taken = fixture.store.take(&fixture.workspace, ROOMY, 1).unwrap();
    assert_eq!(taken.files, before.len() as u64);

    // The next turn edits, adds, deletes and swaps a directory for a link.
    write(&fixture.workspace, "README.md", "second turn");
    write(&fixture.workspace, "later.txt", "only after");
    std::fs::remove_dir_all(fixture.workspace.join("repo")).unwrap();
    std::fs::remove_dir(fixture.workspace.join("empty")).unwrap();
    symlink(&fixture.outside, fixture.workspace.join("empty")).unwrap();
    std::fs::set_permissions(
        fixture.workspace.join("src"),
        PermissionsExt::from_mode(0o500),
    )
    .unwrap();
    assert_ne!(tree(&fixture.workspace), before);

    let restored = fixture
        .store
        .restore(&taken.id, &fixture.workspace, None)
        .unwrap();
    assert_eq!(restored.files, taken.files);
    assert_eq!(tree(&fixture.workspace), before);
    // The link the sandbox planted was removed, not followed.
    assert_eq!(tree(&fixture.outside).len(), 1);
    assert_eq!(
        std::fs::read(fixture.outside.join("secret")).unwrap(),
        b"host secret"
    );
}

#[test]
fn a_link_to_a_host_path_is_kept_as_a_link_and_never_read() {
    let fixture = fixture();
    symlink(
        fixture.outside.join("secret"),
        fixture.workspace.join("host-link"),
    )
    .unwrap();
    symlink(&fixture.outside, fixture.workspace.join("host-dir")).unwrap();
    let taken = fixture.store.take(&fixture.workspace, ROOMY, 1).unwrap();
    assert_eq!(taken.files, 2);
    assert_eq!(taken.bytes_added, 0, "nothing behind a link was read");
    let blobs = tree(&fixture.store.root.join("blobs"));
    assert!(blobs.values().all(|entry| !entry.contains("host secret")));

    let elsewhere = fixture.workspace.with_file_name("fork");
    std::fs::create_dir_all(&elsewhere).unwrap();
    fixture.store.restore(&taken.id, &elsewhere, None).unwrap();
    let link = std::fs::symlink_metadata(elsewhere.join("host-link")).unwrap();
    assert!(link.file_type().is_symlink());
    assert_eq!(
        std::fs::read_link(elsewhere.join("host-dir")).unwrap(),
        fixture.outside
    );
}

#[test]
fn unchanged_files_cost_nothing_and_changed_ones_their_bytes() {
    let fixture = fixture();
    for index in 0..50 {
        write(
            &fixture.workspace,
            &format!("files/{index}.txt"),
            &"x".repeat(100 + index),
        );
    }
    let first = fixture.store.take(&fixture.workspace, ROOMY, 1).unwrap();
    assert!(first.bytes_added > 5000);
    let second = fixture.store.take(&fixture.workspace, ROOMY, 2).unwrap();
    assert_eq!(second.bytes_added, 0);

    // Same size and mtime after the edit: the ctime still tells.
    let path = fixture.workspace.join("files/7.txt");
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, "y".repeat(107)).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let third = fixture.store.take(&fixture.workspace, ROOMY, 3).unwrap();
    assert_eq!(third.bytes_added, 107);
    // Content seen before is not stored again.
    write(&fixture.workspace, "copy.txt", &"x".repeat(100));
    let fourth = fixture.store.take(&fixture.workspace, ROOMY, 4).unwrap();
    assert_eq!(fourth.bytes_added, 0);

    let listed: Vec<String> = fixture
        .store
        .list()
        .unwrap()
        .into_iter()
        .map(|info| info.id)
        .collect();
    assert_eq!(listed, [first.id, second.id, third.id.clone(), fourth.id]);
    fixture
        .store
        .restore(&third.id, &fixture.workspace, None)
        .unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "y".repeat(107));
    assert!(!fixture.workspace.join("copy.txt").exists());
}

#[test]
fn fifos_and_sockets_are_skipped_without_waiting() {
    let fixture = fixture();
    nix::unistd::mkfifo(
        &fixture.workspace.join("pipe"),
        nix::sys::stat::Mode::S_IRWXU,
    )
    .unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(fixture.workspace.join("sock")).unwrap();
    write(&fixture.workspace, "real.txt", "content");
    let taken = fixture.store.take(&fixture.workspace, ROOMY, 1).unwrap();
    assert_eq!(taken.files, 1);
}

/// No manifest, and no blob besides those an earlier checkpoint kept.
fn assert_nothing_kept(fixture: &Fixture, blobs_before: usize) {
    assert!(fixture.store.list().unwrap().is_empty());
    let blobs = tree(&fixture.store.root.join("blobs"));
    let files = blobs
        .values()
        .filter(|entry| entry.starts_with("file"))
        .count();
    assert_eq!(files, blobs_before);
}

#[test]
fn too_many_files_is_refused_with_nothing_kept() {
    let fixture = fixture();
    for index in 0..30 {
        write(
            &fixture.workspace,
            &format!("many/{index}"),
            &format!("content {index}"),
        );
    }
    let limits = Limits {
        max_files: 20,
        max_bytes: ROOMY.max_bytes,
    };
    let error = fixture
        .store
        .take(&fixture.workspace, limits, 1)
        .unwrap_err();
    assert!(
        matches!(error, CheckpointError::TooManyFiles { limit: 20 }),
        "{error}"
    );
    assert_eq!(ApiError::from(error).code, ErrorCode::PayloadTooLarge);
    assert_nothing_kept(&fixture, 0);
}

#[test]
fn too_many_bytes_is_refused_with_nothing_kept() {
    let fixture = fixture();
    write(&fixture.workspace, "a.txt", &"a".repeat(600));
    write(&fixture.workspace, "b.txt", &"b".repeat(600));
    let limits = Limits {
        max_files: 100,
        max_bytes: 1000,
    };
    let error = fixture
        .store
        .take(&fixture.workspace, limits, 1)
        .unwrap_err();
    assert!(
        matches!(error, CheckpointError::TooLarge { limit: 1000 }),
        "{error}"
    );
    assert_nothing_kept(&fixture, 0);
}

#[test]
fn unknown_and_malformed_checkpoint_ids_are_not_found() {
    let fixture = fixture();
    for id in [
        "cp_00000000000000000000000000000000",
        "../../etc/passwd",
        "",
    ] {
        let error = fixture
            .store
            .restore(id, &fixture.workspace, None)
            .unwrap_err();
        assert!(matches!(error, CheckpointError::NotFound(_)), "{error}");
        assert!(!fixture.store.has(id));
    }
}

#[test]
fn limits_come_from_the_environment_or_their_defaults() {
    let limits = Limits::from_lookup(|name| match name {
        "SANDBOX_CHECKPOINT_MAX_FILES" => Some("12".into()),
        "SANDBOX_CHECKPOINT_MAX_BYTES" => Some("zero".into()),
        _ => None,
    });
    assert_eq!(limits.max_files, 12);
    assert_eq!(limits.max_bytes, DEFAULT_MAX_BYTES);
}
