//! The fake Modal's commands: `ContainerExec`, `ContainerExecPutInput`,
//! `ContainerExecWait` and the `ContainerExecGetOutput` long poll. Commands run for
//! real in the sandbox's machine; requests and replies are official `api.proto`
//! messages ([`Msg`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::Response;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, Notify};

use super::official::{self, Msg};
use super::{
    FAILED_PRECONDITION, INTERNAL, INVALID_ARGUMENT, ModalState, NOT_FOUND, Status,
    file_descriptor, frame, grpc_response, unary,
};
use crate::fakes::{Output, next_id};

/// An exec's output as Modal keeps it: numbered batches, dropped once both streams'
/// readers are past them, and a bound on what is held (the command waits).
#[derive(Default)]
struct Items {
    list: std::collections::VecDeque<(i32, Vec<u8>)>,
    /// The index of `list[0]`.
    base: usize,
    exit: Option<i32>,
    /// How far the reader of each file descriptor got.
    cursors: HashMap<i32, usize>,
}

/// Output items held before the command has to wait for readers.
const HELD_ITEMS: usize = 1024;
/// The most bytes sent in one batch.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

pub struct FakeExec {
    items: Mutex<Items>,
    changed: Notify,
    stdin: Mutex<Option<tokio::process::ChildStdin>>,
    next_input: Mutex<u64>,
}

pub async fn container_exec(state: &ModalState, request: Msg) -> Result<Msg, Status> {
    let task_id = request.str("task_id");
    let (machine, env) = {
        let sandboxes = state.sandboxes.lock().await;
        let sandbox = sandboxes
            .values()
            .find(|sandbox| sandbox.task_id == task_id)
            .ok_or_else(|| Status(NOT_FOUND, format!("task {task_id} not found")))?;
        if sandbox.ended.is_some() {
            return Err(Status(
                FAILED_PRECONDITION,
                "the sandbox has finished".into(),
            ));
        }
        (sandbox.machine.clone(), sandbox.env.clone())
    };
    let workdir = request.has("workdir").then(|| request.str("workdir"));
    let mut running = machine
        .spawn(&request.strings("command"), workdir.as_deref(), &env)
        .map_err(|error| Status(INTERNAL, format!("cannot start the command: {error}")))?;
    let exec = Arc::new(FakeExec {
        items: Mutex::new(Items::default()),
        changed: Notify::new(),
        stdin: Mutex::new(running.stdin.take()),
        next_input: Mutex::new(1),
    });
    let exec_id = next_id("ex");
    state
        .execs
        .lock()
        .await
        .insert(exec_id.clone(), exec.clone());
    let timeout_secs = request.int("timeout_secs");
    if timeout_secs > 0 {
        // Modal ends an exec that outlives its timeout.
        let pid = running.pid as i32;
        let timeout = Duration::from_secs(timeout_secs as u64);
        let watched = exec.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            // Only a command still running: its process group id is still its own.
            if watched.items.lock().await.exit.is_some() {
                return;
            }
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(-pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        });
    }
    let stdout = file_descriptor("FILE_DESCRIPTOR_STDOUT");
    let stderr = file_descriptor("FILE_DESCRIPTOR_STDERR");
    tokio::spawn(async move {
        while let Some(output) = running.output.recv().await {
            loop {
                let drained = exec.changed.notified();
                if exec.items.lock().await.list.len() < HELD_ITEMS {
                    break;
                }
                drained.await;
            }
            let mut items = exec.items.lock().await;
            match output {
                Output::Stdout(bytes) => items.list.push_back((stdout, bytes)),
                Output::Stderr(bytes) => items.list.push_back((stderr, bytes)),
                Output::Exit(code) => items.exit = Some(code),
            }
            drop(items);
            exec.changed.notify_waiters();
        }
    });
    Ok(official::get()
        .reply("ContainerExecResponse")
        .set_str("exec_id", exec_id))
}

async fn find_exec(state: &ModalState, exec_id: &str) -> Result<Arc<FakeExec>, Status> {
    state
        .execs
        .lock()
        .await
        .get(exec_id)
        .cloned()
        .ok_or_else(|| Status(NOT_FOUND, format!("exec {exec_id} not found")))
}

pub async fn container_exec_put_input(state: &ModalState, request: Msg) -> Result<Msg, Status> {
    let exec = find_exec(state, &request.str("exec_id")).await?;
    let input = request
        .message("input")
        .ok_or_else(|| Status(INVALID_ARGUMENT, "input is required".into()))?;
    let index = input.int("message_index") as u64;
    let mut next = exec.next_input.lock().await;
    if index < *next {
        return Ok(official::get().empty()); // a retried message: already written
    }
    *next = index + 1;
    let message = input.bytes("message");
    let mut stdin = exec.stdin.lock().await;
    if let Some(pipe) = stdin.as_mut()
        && !message.is_empty()
        && pipe.write_all(&message).await.is_err()
    {
        *stdin = None;
    }
    if input.bool("eof") {
        *stdin = None;
    }
    Ok(official::get().empty())
}

pub async fn container_exec_wait(state: &ModalState, request: Msg) -> Result<Msg, Status> {
    let exec = find_exec(state, &request.str("exec_id")).await?;
    let timeout = Duration::from_secs_f64(request.float("timeout").max(0.0));
    let deadline = tokio::time::Instant::now() + timeout;
    let response = official::get().reply("ContainerExecWaitResponse");
    loop {
        let changed = exec.changed.notified();
        if let Some(code) = exec.items.lock().await.exit {
            return Ok(response
                .set_int("exit_code", i64::from(code))
                .set_bool("completed", true));
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            return Ok(response.set_bool("completed", false));
        }
    }
}

/// Records that the reader of `wanted` got everything before `next`, and drops what
/// every reader has got (the command may then write more).
async fn release(exec: &FakeExec, wanted: i32, next: usize, fds: &[i32; 2]) {
    let mut items = exec.items.lock().await;
    items.cursors.insert(wanted, next);
    let low = fds
        .iter()
        .map(|fd| items.cursors.get(fd).copied().unwrap_or(0))
        .min()
        .unwrap_or(0)
        .max(items.cursors.get(&0).copied().unwrap_or(0));
    while items.base < low && items.list.pop_front().is_some() {
        items.base += 1;
    }
    drop(items);
    exec.changed.notify_waiters();
}

/// The output long poll. Like a gRPC server that sends its response headers with the
/// first message, it sends nothing at all (not even headers) until a batch is ready
/// or the poll's `timeout` ends, so a silent command keeps the caller waiting for the
/// whole poll.
pub async fn container_exec_get_output(state: &ModalState, request: Msg) -> Response<Body> {
    let exec = match find_exec(state, &request.str("exec_id")).await {
        Ok(exec) => exec,
        Err(status) => return unary(Err(status)),
    };
    let wanted = request.int("file_descriptor") as i32;
    let poll = Duration::from_secs_f64(request.float("timeout").clamp(0.0, 60.0));
    let deadline = tokio::time::Instant::now() + poll;
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Result<Bytes, Status>>(16);
    let mut sent = request.int("last_batch_index") as usize;
    let fds = [
        file_descriptor("FILE_DESCRIPTOR_STDOUT"),
        file_descriptor("FILE_DESCRIPTOR_STDERR"),
    ];
    tokio::spawn(async move {
        loop {
            let changed = exec.changed.notified();
            let (batch, next, exit) = {
                let items = exec.items.lock().await;
                let base = items.base;
                let start = sent.max(base);
                let mut bytes = 0;
                let mut batch = Vec::new();
                let mut next = start;
                for (fd, chunk) in items.list.iter().skip(start - base) {
                    if bytes >= BATCH_BYTES {
                        break;
                    }
                    next += 1;
                    if wanted == 0 || *fd == wanted {
                        bytes += chunk.len();
                        batch.push(
                            official::get()
                                .reply("RuntimeOutputMessage")
                                .set_int("file_descriptor", i64::from(*fd))
                                .set_bytes("message_bytes", chunk.clone()),
                        );
                    }
                }
                let all_read = next == base + items.list.len();
                (batch, next, items.exit.filter(|_| all_read))
            };
            if !batch.is_empty() || exit.is_some() {
                let mut message = official::get()
                    .reply("RuntimeOutputBatch")
                    .set_messages("items", batch)
                    .set_int("batch_index", next as i64);
                if let Some(code) = exit {
                    message = message.set_int("exit_code", i64::from(code));
                }
                if sender.send(Ok(frame(&message))).await.is_err() {
                    return; // the caller left: it resumes from its last batch index
                }
            }
            sent = next;
            release(&exec, wanted, next, &fds).await;
            if exit.is_some() {
                return;
            }
            // A poll lasts its `timeout`, however often the other stream's reader
            // wakes this one.
            if tokio::time::timeout_at(deadline, changed).await.is_err()
                || tokio::time::Instant::now() >= deadline
            {
                return; // the long poll ends; the client resumes
            }
            // Let output gather into a batch, as Modal does, rather than one message
            // per pipe read.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    // Headers go out with the first batch, or with the trailers at the poll's end.
    let first = receiver.recv().await;
    let rest = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    grpc_response(futures::stream::iter(first).chain(rest).boxed())
}
