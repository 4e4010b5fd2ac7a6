//! A template as Dockerfile lines, for every remote provider: Modal builds the lines
//! as an image, Docker as a `docker build`, Railway runs their `RUN` commands as its
//! template's shell instructions. Package names and the working directory are
//! checked here, once, since they become parts of shell command lines.

use crate::providers::ProviderError;
use crate::providers::shell::shell_quote;

/// Dockerfile lines for a template: `FROM`, `WORKDIR`, a `RUN` per package manager,
/// then a `RUN` per command from the template's working directory with its env.
pub fn template_dockerfile(
    base: &str,
    workspace: &str,
    spec: &nightshift_protocol::sandbox::TemplateSpec,
) -> Result<Vec<String>, ProviderError> {
    let mut lines = vec![format!("FROM {base}"), format!("WORKDIR {workspace}")];
    let mut by_manager: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for package in &spec.packages {
        let (manager, name) = package.split_once(':').ok_or_else(|| {
            ProviderError::InvalidRequest(format!(
                "package {package:?} is not `manager:name` (apt, pip or npm)"
            ))
        })?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+=@/:<>~".contains(&b))
        {
            return Err(ProviderError::InvalidRequest(format!(
                "package name {name:?} has characters that are not allowed"
            )));
        }
        match manager {
            "apt" | "pip" | "npm" => by_manager
                .entry(manager)
                .or_default()
                .push(shell_quote(name)),
            other => {
                return Err(ProviderError::InvalidRequest(format!(
                    "package manager {other:?} is not supported (apt, pip, npm)"
                )));
            }
        }
    }
    for (manager, names) in by_manager {
        let names = names.join(" ");
        lines.push(match manager {
            "apt" => format!(
                "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {names} && rm -rf /var/lib/apt/lists/*"
            ),
            "pip" => format!("RUN pip install --no-cache-dir {names}"),
            _ => format!("RUN npm install -g {names}"),
        });
    }
    let workdir = match spec.workdir.as_deref() {
        None | Some("") | Some(".") => workspace.to_string(),
        Some(dir) if dir.starts_with('/') || dir.split('/').any(|part| part == "..") => {
            return Err(ProviderError::InvalidRequest(format!(
                "template workdir {dir:?} must be relative to the workspace, without `..`"
            )));
        }
        Some(dir) => format!("{}/{dir}", workspace.trim_end_matches('/')),
    };
    let mut env = String::new();
    for (name, value) in &spec.env {
        env.push(' ');
        env.push_str(&shell_quote(&format!("{name}={value}")));
    }
    for command in &spec.commands {
        if command.contains('\n') {
            return Err(ProviderError::InvalidRequest(
                "template commands must be single lines".into(),
            ));
        }
        lines.push(format!(
            "RUN mkdir -p {dir} && cd {dir} && env{env} sh -c {command}",
            dir = shell_quote(&workdir),
            command = shell_quote(command),
        ));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_become_dockerfile_lines_and_bad_packages_are_refused() {
        let spec = nightshift_protocol::sandbox::TemplateSpec {
            base: None,
            packages: vec!["apt:jq".into(), "pip:requests".into()],
            commands: vec!["echo hi > a".into()],
            workdir: Some("app".into()),
            env: [("A".to_string(), "1".to_string())].into(),
        };
        let lines = template_dockerfile("debian:bookworm-slim", "/workspace", &spec).unwrap();
        assert_eq!(lines[0], "FROM debian:bookworm-slim");
        assert!(
            lines
                .iter()
                .any(|line| line.contains("apt-get install") && line.contains("jq"))
        );
        assert!(
            lines
                .iter()
                .any(|line| line.contains("pip install") && line.contains("requests"))
        );
        let last = lines.last().unwrap();
        assert!(
            last.contains("/workspace/app") && last.contains("A=1"),
            "{last}"
        );
        for package in ["cargo:x", "apt:", "apt:a;rm -rf /", "noseparator"] {
            let mut bad = spec.clone();
            bad.packages = vec![package.into()];
            assert!(
                template_dockerfile("b", "/workspace", &bad).is_err(),
                "{package}"
            );
        }
        let mut escape = spec.clone();
        escape.workdir = Some("../etc".into());
        assert!(template_dockerfile("b", "/workspace", &escape).is_err());
    }
}
