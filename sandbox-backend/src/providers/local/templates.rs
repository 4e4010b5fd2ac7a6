//! Building a template for the local provider: its image is a `workspace/` and a
//! `home/` on the host (the base is always the host's read-only system
//! directories), filled by running the template's package installs and commands in
//! a build sandbox on those directories; sandboxes made from it start with copies.

use std::collections::BTreeMap;
use std::time::Duration;

use nightshift_protocol::sandbox::NetworkMode;
use tokio_util::sync::CancellationToken;

use super::LocalProvider;
use super::environment::cwd;
use super::sandbox_dir::{as_sandbox_user, workspace};
use crate::exec::ExecPlan;
use crate::files::WorkspacePath;
use crate::providers::shell::shell_quote;
use crate::providers::{
    BuiltTemplate, Provider, ProviderError, ProviderHandle, SandboxSpec, TemplateBuild,
};

/// Package managers a template may name, and how each installs into the sandbox's
/// home (so the packages are part of the template's image).
pub(super) const PACKAGE_MANAGERS: [&str; 2] = ["pip", "npm"];

impl LocalProvider {
    /// Builds the template `build` into `build.dir` (see [`Provider::build_template`]).
    pub(super) async fn build_template_image(
        &self,
        build: &TemplateBuild,
    ) -> Result<BuiltTemplate, ProviderError> {
        match build.spec.base.as_deref() {
            None | Some("host") => {}
            Some(other) => {
                return Err(ProviderError::InvalidRequest(format!(
                    "the local provider has no image {other:?}: its only base is \"host\" (the host's read-only system directories)"
                )));
            }
        }
        let mut installs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for package in &build.spec.packages {
            let Some((manager, name)) = package.split_once(':') else {
                return Err(ProviderError::InvalidRequest(format!(
                    "package {package:?} must be `manager:name`, with manager one of {PACKAGE_MANAGERS:?}"
                )));
            };
            if !PACKAGE_MANAGERS.contains(&manager) {
                return Err(ProviderError::InvalidRequest(format!(
                    "the local provider cannot install {manager} packages (it has no image to install system packages into); supported managers: {PACKAGE_MANAGERS:?}"
                )));
            }
            if name.is_empty()
                || name.starts_with('-')
                || name
                    .chars()
                    .any(|c| c.is_whitespace() || "'\"`$;&|<>\\".contains(c))
            {
                return Err(ProviderError::InvalidRequest(format!(
                    "invalid package name {name:?}"
                )));
            }
            installs.entry(manager).or_default().push(name);
        }
        let sandbox = SandboxSpec {
            id: build.id.clone(),
            dir: build.dir.clone(),
            env: BTreeMap::new(),
            network: NetworkMode::Private,
            handle: ProviderHandle::none(),
            template: None,
            labels: BTreeMap::new(),
            gateway: None,
            shared_record: None,
            has_runner: false,
        };
        // Packages come from the public registries, through the egress proxy
        // (pip and npm honour HTTPS_PROXY) like every sandbox's traffic.
        let sandbox = SandboxSpec {
            network: NetworkMode::Isolated,
            ..sandbox
        };
        let handle = self.boot(&sandbox).await?;
        let sandbox = SandboxSpec { handle, ..sandbox };
        let mut log = String::new();
        let result = async {
            for (manager, names) in &installs {
                let names = names.join(" ");
                let script = match *manager {
                    "pip" => {
                        format!("python3 -m pip install --user --break-system-packages {names}")
                    }
                    _ => format!("npm install --global --prefix \"$HOME/.local\" {names}"),
                };
                self.build_step(&sandbox, script, &build.spec.env, &mut log)
                    .await?;
            }
            if let Some(workdir) = &build.spec.workdir {
                let workdir = WorkspacePath::parse(workdir)?;
                let dir = workspace(&sandbox).join(workdir.as_path());
                as_sandbox_user(self.host_user, || std::fs::create_dir_all(&dir))
                    .map_err(|error| ProviderError::io("cannot create the workdir", error))?;
            }
            for command in &build.spec.commands {
                let script = format!(
                    "cd {} && {command}",
                    shell_quote(&cwd(&sandbox, build.spec.workdir.as_deref()))
                );
                self.build_step(&sandbox, script, &build.spec.env, &mut log)
                    .await?;
            }
            Ok::<(), ProviderError>(())
        }
        .await;
        self.halt(&sandbox).await;
        let _ = std::fs::remove_file(build.dir.join("agent.log"));
        result?;
        Ok(BuiltTemplate {
            handle: ProviderHandle::none(),
            log,
        })
    }

    /// Runs one build step of a template in its build sandbox; its output goes to
    /// `log`. `Err` carries the log when the step failed.
    async fn build_step(
        &self,
        sandbox: &SandboxSpec,
        script: String,
        env: &BTreeMap<String, String>,
        log: &mut String,
    ) -> Result<(), ProviderError> {
        log.push_str(&format!("$ {script}\n"));
        let plan = ExecPlan {
            argv: vec!["sh".into(), "-c".into(), script],
            env: env.clone(),
            cwd: None,
            timeout: Duration::from_secs(30 * 60),
            stdin: None,
        };
        let run = self.exec(sandbox, plan, CancellationToken::new()).await?;
        tokio::spawn(run.driver);
        let result = crate::exec::collect(run.output).await;
        log.push_str(&result.stdout);
        log.push_str(&result.stderr);
        if result.exit.code != 0 {
            log.push_str(&format!("(exit code {})\n", result.exit.code));
            return Err(ProviderError::InvalidRequest(format!(
                "the template's build failed:\n{}",
                tail(log, 4000)
            )));
        }
        Ok(())
    }
}

/// The last `max` bytes of `text` (on a character boundary).
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
