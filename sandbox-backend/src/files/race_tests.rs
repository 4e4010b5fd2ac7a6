//! Specifications for the files API under a hostile sandbox: while a command keeps
//! swapping a directory of the workspace for a symlink that leads out of it, reads
//! never return and writes never change anything outside the workspace; writes replace
//! files whole, keep their permissions, and refuse named pipes.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use nix::fcntl::{RenameFlags, renameat2};

use super::{WorkspacePath, read_file, write_file};
use crate::providers::error::ProviderError;

const SECRET: &[u8] = b"CANARY-SECRET: the host's own file";
const HARMLESS: &[u8] = b"harmless\n";
const ROUNDS: usize = 3000;

/// Sets the flag when dropped, so the swapping thread stops even when an assertion
/// fails half-way.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What a directory's files are, to tell whether anything in it changed.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>, i64, i64)> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let metadata = fs::symlink_metadata(entry.path()).unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                fs::read(entry.path()).unwrap_or_default(),
                metadata.mtime(),
                metadata.mtime_nsec(),
            )
        })
        .collect();
    entries.sort();
    entries
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn reads_and_writes_racing_a_directory_swapped_for_an_outward_symlink_stay_inside() {
    let temporary = tempfile::tempdir().unwrap();
    let root = temporary.path().join("workspace");
    let canary = temporary.path().join("canary");
    fs::create_dir_all(root.join("d")).unwrap();
    fs::create_dir_all(&canary).unwrap();
    fs::write(root.join("d/f"), HARMLESS).unwrap();
    fs::write(canary.join("f"), SECRET).unwrap();
    std::os::unix::fs::symlink("../canary", root.join("swap")).unwrap();
    let canary_before = snapshot(&canary);

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapper = {
        let stop = stop.clone();
        let swaps = swaps.clone();
        let root = root.clone();
        std::thread::spawn(move || {
            let handle = fs::File::open(&root).unwrap();
            // Each exchange atomically turns `d` from the real directory into the
            // symlink to `../canary` or back, as a command in the sandbox could.
            while !stop.load(Ordering::SeqCst) {
                if renameat2(&handle, "d", &handle, "swap", RenameFlags::RENAME_EXCHANGE).is_err() {
                    break;
                }
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let _stop = StopOnDrop(stop.clone());

    let path = WorkspacePath::parse("d/f").unwrap();
    let nested = WorkspacePath::parse("d/new/f").unwrap();
    let mut good_reads = 0;
    for round in 0..ROUNDS {
        match read_file(&root, &path) {
            Ok(contents) => {
                assert!(
                    !contains(&contents, b"CANARY"),
                    "round {round}: a read returned the outside file"
                );
                good_reads += 1;
            }
            Err(error) => assert!(
                !error.to_string().contains("CANARY"),
                "round {round}: {error}"
            ),
        }
        let _ = write_file(&root, &path, HARMLESS);
        let _ = write_file(&root, &nested, HARMLESS);
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
    assert!(good_reads > 0, "no read of d/f ever succeeded");
}

#[test]
fn a_write_onto_a_named_pipe_is_refused_without_waiting() {
    let root = tempfile::tempdir().unwrap();
    nix::unistd::mkfifo(
        &root.path().join("pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    let dir = root.path().to_path_buf();
    std::thread::spawn(move || {
        let _ = done.send(write_file(
            &dir,
            &WorkspacePath::parse("pipe").unwrap(),
            b"x",
        ));
    });
    let written = finished
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a write onto a named pipe hung");
    assert!(
        matches!(written, Err(ProviderError::NotAFile(_))),
        "{written:?}"
    );
    assert!(
        fs::symlink_metadata(root.path().join("pipe"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

#[test]
fn a_replaced_file_keeps_its_permissions_and_no_temporary_file_is_left() {
    let root = tempfile::tempdir().unwrap();
    fs::write(root.path().join("run.sh"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(
        root.path().join("run.sh"),
        fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    write_file(
        root.path(),
        &WorkspacePath::parse("run.sh").unwrap(),
        b"#!/bin/sh\necho hi\n",
    )
    .unwrap();
    let metadata = fs::metadata(root.path().join("run.sh")).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o7777, 0o750);
    assert_eq!(
        fs::read(root.path().join("run.sh")).unwrap(),
        b"#!/bin/sh\necho hi\n"
    );
    let names: Vec<_> = fs::read_dir(root.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["run.sh"]);
}

#[test]
fn a_write_through_a_symlink_inside_the_workspace_replaces_its_target() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("real")).unwrap();
    fs::write(root.path().join("real/file"), b"old").unwrap();
    std::os::unix::fs::symlink("real/file", root.path().join("alias")).unwrap();
    write_file(root.path(), &WorkspacePath::parse("alias").unwrap(), b"new").unwrap();
    assert_eq!(fs::read(root.path().join("real/file")).unwrap(), b"new");
    assert!(
        fs::symlink_metadata(root.path().join("alias"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}
