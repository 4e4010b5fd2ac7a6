//! Waking a docker sandbox onto the backend's current runner, on the real Docker
//! Engine with the sandbox image built from this tree and the real sandbox backend
//! (`SANDBOX_DOCKER_ISOLATED=true`, so a session's runner may run in the container).
//!
//! A sandbox is created with a runner from an image tag of the test's own; once it
//! sleeps, the tag is moved to an image whose runner is another build (this tree's
//! runner with a marker appended: another SHA-256, the same program). Woken, the
//! runner process in the container (`/proc/<pid>/exe`, hashed from inside) is that
//! build, the wake's answer names its digest, and the workspace's files are there.
//!
//! The attacker: links planted where the runner is installed (the installed
//! directory, then the installed file, each pointing into the workspace the sandbox's
//! user owns) do not carry the upload there, and the runner that starts is never the
//! one the sandbox's user left in the workspace. The sandbox's user cannot plant them
//! itself (it cannot write to `/` or to root's directories: checked too); the Engine
//! plants them as root here, as a sandbox whose user could would.
//!
//! A run without an Engine fails saying so, unless it opts out with
//! `DOCKER_TESTS=skip`.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use nightshift_e2e::docker::{DockerBackend, Engine};
use nightshift_e2e::stack::binary;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SESSION: &str = "ses_docker_wake";
/// Nothing listens there: the runner keeps trying to reach its Worker, which is
/// enough to have a runner process to look at.
const WORKER_URL: &str = "http://127.0.0.1:9";
/// What the sandbox's user leaves in the workspace, posing as the runner.
const ATTACKER_RUNNER: &str = "#!/bin/sh\n# planted by the sandbox user\nsleep 1000000\n";

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The test's own tag of the sandbox image (moved to other runner builds), and a
/// directory for those builds; the tag goes with it.
struct Images {
    engine: Engine,
    tag: String,
    dir: tempfile::TempDir,
    /// The images committed, which the tag leaves behind as it moves.
    committed: std::sync::Mutex<Vec<String>>,
}

impl Images {
    fn new(engine: &Engine, image: &str) -> anyhow::Result<Images> {
        let engine = Engine {
            host: engine.host.clone(),
            base: engine.base.clone(),
        };
        let tag = format!("nightshift-wake-test:{}", uuid::Uuid::new_v4().simple());
        run(&engine, &["tag", image, &tag])?;
        Ok(Images {
            engine,
            tag,
            dir: tempfile::tempdir()?,
            committed: Default::default(),
        })
    }

    /// Moves the tag to an image whose runner is this tree's with `marker` appended
    /// (root's, 0755, where the sandbox image has it); the new runner's SHA-256.
    fn with_runner_marked(&self, marker: &str) -> anyhow::Result<String> {
        let mut runner = std::fs::read(binary("runner")).context("reading the runner")?;
        runner.extend_from_slice(format!("\n{marker}\n").as_bytes());
        let path = self.dir.path().join("runner");
        std::fs::write(&path, &runner)?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let builder = format!("nightshift-wake-build-{}", uuid::Uuid::new_v4().simple());
        run(&self.engine, &["create", "--name", &builder, &self.tag])?;
        let built = run(
            &self.engine,
            &[
                "cp",
                &path.display().to_string(),
                &format!("{builder}:/usr/local/bin/runner"),
            ],
        )
        .and_then(|_| run(&self.engine, &["commit", &builder, &self.tag]));
        let _ = self.engine.docker(&["rm", "-f", &builder]);
        self.committed.lock().expect("not poisoned").push(built?);
        Ok(sha256_hex(&runner))
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        let _ = self.engine.docker(&["rmi", &self.tag]);
        for image in self.committed.lock().expect("not poisoned").iter() {
            let _ = self.engine.docker(&["rmi", image]);
        }
    }
}

/// The docker CLI, which must succeed; its standard output.
fn run(engine: &Engine, args: &[&str]) -> anyhow::Result<String> {
    let output = engine.docker(args)?;
    ensure!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn launch(token: &str) -> Value {
    json!({"worker_url": WORKER_URL, "session_id": SESSION, "token": token})
}

/// A backend on the test's image tag, with a docker sandbox whose runner runs.
struct Setup {
    images: Images,
    backend: DockerBackend,
    id: String,
}

impl Setup {
    async fn start(test: &str) -> anyhow::Result<Option<Setup>> {
        let Some(engine) = Engine::find(test)? else {
            return Ok(None);
        };
        let image = engine.sandbox_image()?;
        let images = Images::new(&engine, &image)?;
        let backend =
            DockerBackend::start_with(&engine, &images.tag, &[("SANDBOX_DOCKER_ISOLATED", "true")])
                .await?;
        let mut setup = Setup {
            images,
            backend,
            id: String::new(),
        };
        let created = setup
            .call(
                Method::POST,
                "/v1/sandboxes",
                json!({"provider": "docker", "network": "isolated", "runner": launch("v2.first-token")}),
            )
            .await?;
        setup.id = created["id"]
            .as_str()
            .map(String::from)
            .with_context(|| format!("no sandbox: {created}"))?;
        Ok(Some(setup))
    }

    fn engine(&self) -> &Engine {
        &self.images.engine
    }

    async fn call(&self, method: Method, path: &str, body: Value) -> anyhow::Result<Value> {
        let answer = self
            .backend
            .request(method, path)
            .json(&body)
            .send()
            .await?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        ensure!(status.is_success(), "{path}: {status} {body}");
        Ok(body)
    }

    /// A shell in the container as root (with the container's few capabilities):
    /// the test's own hand, planting what the sandbox's user cannot.
    fn as_root(&self, script: &str) -> anyhow::Result<String> {
        self.exec(&["sh", "-c", script])
    }

    fn exec(&self, argv: &[&str]) -> anyhow::Result<String> {
        let name = format!("nightshift-{}", self.id);
        let mut args = vec!["exec", "-u", "0", &name];
        args.extend_from_slice(argv);
        run(self.engine(), &args)
    }

    /// A command as the sandbox's user, through the backend: exit code and output.
    async fn as_sandbox_user(&self, script: &str) -> anyhow::Result<(i64, String)> {
        self.backend.sh(&self.id, script, "").await
    }

    /// The SHA-256 of the executable of the one runner process in the container (as
    /// the runner's user), waited for until it is `wanted` when given.
    async fn running_runner(&self, wanted: Option<&str>) -> anyhow::Result<String> {
        // As the runner's user with the runner's capabilities (as its start script
        // becomes it), which may read its `/proc/<pid>/exe`: root without
        // `CAP_SYS_PTRACE` may not, nor may a user with fewer capabilities.
        let script = "for pid in $(pgrep -u nightshift-runner -x runner); do \
                      sha256sum < /proc/$pid/exe | cut -d ' ' -f 1; done";
        let argv = [
            "setpriv",
            "--reuid=1001",
            "--regid=1001",
            "--init-groups",
            "--inh-caps=-all,+setuid,+setgid,+kill",
            "--ambient-caps=+setuid,+setgid,+kill",
            "--",
            "sh",
            "-c",
            script,
        ];
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let seen = self.exec(&argv)?;
            let digests: Vec<&str> = seen.lines().collect();
            if let [digest] = digests[..]
                && wanted.is_none_or(|wanted| wanted == digest)
            {
                return Ok(digest.to_string());
            }
            if Instant::now() > deadline {
                let mut diagnose = argv;
                diagnose[9] =
                    "ps -eo user,pid,args; tail -n 30 /run/nightshift-runner/runner.log; true";
                let inside = self.exec(&diagnose).unwrap_or_default();
                bail!(
                    "the runner running in the container is not {wanted:?} but {digests:?}:\n{inside}"
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Runs `before_sleep` in the awake sandbox, sleeps it, moves the image tag to a
    /// runner build of `marker` and wakes it: the new runner's digest and the wake's
    /// answer.
    async fn sleep_upgrade_wake(
        &self,
        marker: &str,
        before_sleep: impl FnOnce() -> anyhow::Result<()>,
    ) -> anyhow::Result<(String, Value)> {
        before_sleep()?;
        self.sleep().await?;
        let current = self.images.with_runner_marked(marker)?;
        let woken = self.wake(marker).await?;
        Ok((current, woken))
    }

    async fn sleep(&self) -> anyhow::Result<()> {
        let id = &self.id;
        let snapshot = self
            .call(
                Method::POST,
                &format!("/v1/sandboxes/{id}/sleep"),
                json!({}),
            )
            .await?;
        ensure!(snapshot["kind"] == "stopped_container", "{snapshot}");
        Ok(())
    }

    /// Wakes the sandbox with a token of `marker`: the wake's answer.
    async fn wake(&self, marker: &str) -> anyhow::Result<Value> {
        let id = &self.id;
        let started = Instant::now();
        let woken = self
            .call(
                Method::POST,
                &format!("/v1/sandboxes/{id}/wake"),
                json!({"runner": launch(&format!("v2.{marker}"))}),
            )
            .await?;
        eprintln!("the wake took {} ms", started.elapsed().as_millis());
        Ok(woken)
    }

    /// Removes the sandbox; the outcome, with the backend's log when it failed.
    async fn finish(self, outcome: anyhow::Result<()>) -> anyhow::Result<()> {
        let _ = self
            .backend
            .request(Method::DELETE, &format!("/v1/sandboxes/{}", self.id))
            .send()
            .await;
        outcome.map_err(|error| anyhow::anyhow!("{error:#}\nbackend log:\n{}", self.backend.logs()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_woken_docker_sandbox_runs_the_current_runner_with_its_files_kept() -> anyhow::Result<()>
{
    let Some(setup) = Setup::start("docker_wake").await? else {
        return Ok(());
    };
    let outcome = async {
        let created = setup.running_runner(None).await?;
        let (code, output) = setup
            .as_sandbox_user(
                "echo kept > /workspace/kept.txt && mkdir -p ~/notes && echo home > ~/notes/a",
            )
            .await?;
        ensure!(code == 0, "{output}");
        let (current, woken) = setup
            .sleep_upgrade_wake("nightshift-wake-test-newer-runner", || Ok(()))
            .await?;
        ensure!(created != current, "the runner builds do not differ");
        ensure!(woken["status"] == "ready", "{woken}");
        // The process, not only the file: the runner running is the new build.
        setup.running_runner(Some(&current)).await?;
        ensure!(
            woken["runner_digest"] == format!("sha256:{current}").as_str(),
            "the wake does not name the current runner ({current}): {woken}"
        );
        let (code, output) = setup
            .as_sandbox_user("cat /workspace/kept.txt ~/notes/a")
            .await?;
        ensure!(
            code == 0 && output == "kept\nhome\n",
            "the files did not survive: {output:?}"
        );
        let listed = setup
            .call(
                Method::GET,
                &format!("/v1/sandboxes/{}", setup.id),
                Value::Null,
            )
            .await?;
        ensure!(
            listed["runner_digest"] == woken["runner_digest"],
            "{listed}"
        );
        // Woken again on the same image: the runner installed before, still running.
        setup.sleep().await?;
        let again = setup.wake("nightshift-wake-test-same-image").await?;
        ensure!(again["runner_digest"] == woken["runner_digest"], "{again}");
        setup.running_runner(Some(&current)).await?;
        Ok(())
    }
    .await;
    setup.finish(outcome).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_planted_where_the_runner_is_installed_do_not_redirect_it() -> anyhow::Result<()> {
    let Some(setup) = Setup::start("docker_wake").await? else {
        return Ok(());
    };
    let outcome = async {
        setup.running_runner(None).await?;
        // The sandbox's user leaves its own "runner" in the workspace, and cannot
        // put a link or a file where the runner is installed or found.
        let attacker_digest = sha256_hex(ATTACKER_RUNNER.as_bytes());
        let (code, output) = setup
            .as_sandbox_user(&format!(
                "mkdir -p /workspace/evil && printf %s '{ATTACKER_RUNNER}' > /workspace/evil/runner \
                 && chmod 755 /workspace/evil/runner && echo planted; \
                 ln -s /workspace/evil /.nightshift-runner && echo linked-root; \
                 cp /workspace/evil/runner /usr/local/bin/runner && echo replaced-image-runner; \
                 ln -s /workspace/evil /usr/local/bin/nightshift && echo linked-bin; true"
            ))
            .await?;
        ensure!(code == 0 && output.starts_with("planted"), "{output}");
        for refused in ["linked-root", "replaced-image-runner", "linked-bin"] {
            ensure!(!output.contains(refused), "the sandbox's user could: {output}");
        }
        let evil = || setup.as_root("sha256sum < /workspace/evil/runner | cut -d ' ' -f 1; ls -A /workspace/evil");
        ensure!(evil()? == format!("{attacker_digest}\nrunner"), "{}", evil()?);

        // A link in place of the directory the runner is installed in.
        let (current, woken) = setup
            .sleep_upgrade_wake("nightshift-wake-test-directory-link", || {
                setup.as_root("ln -s /workspace/evil /.nightshift-runner").map(drop)
            })
            .await?;
        ensure!(woken["runner_digest"] == format!("sha256:{current}").as_str(), "{woken}");
        setup.running_runner(Some(&current)).await?;
        ensure!(evil()? == format!("{attacker_digest}\nrunner"), "the upload went through the link: {}", evil()?);
        let installed = setup.as_root(
            "stat -c '%F %u:%g %a' /.nightshift-runner /.nightshift-runner/runner",
        )?;
        ensure!(
            installed == "directory 0:0 755\nregular file 0:0 755",
            "the runner is not root's own: {installed}"
        );

        // A link in place of the installed runner itself.
        let (current, woken) = setup
            .sleep_upgrade_wake("nightshift-wake-test-file-link", || {
                setup
                    .as_root("ln -sfn /workspace/evil/runner /.nightshift-runner/runner")
                    .map(drop)
            })
            .await?;
        ensure!(woken["runner_digest"] == format!("sha256:{current}").as_str(), "{woken}");
        setup.running_runner(Some(&current)).await?;
        ensure!(evil()? == format!("{attacker_digest}\nrunner"), "the upload went through the link: {}", evil()?);
        ensure!(
            setup.as_root("pgrep -af '/workspace/[e]vil' || true")?.is_empty(),
            "the sandbox user's runner runs"
        );
        Ok(())
    }
    .await;
    setup.finish(outcome).await
}
