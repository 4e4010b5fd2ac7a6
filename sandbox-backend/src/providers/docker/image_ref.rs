//! An image reference split the way the Engine's pull (`POST /images/create`) wants it:
//! `fromImage` is the repository, `tag` its tag or digest, as the Docker CLI sends
//! them. A colon is a tag separator only after the last `/` (`host:5000/repo` has no
//! tag), and a digest (`repo@sha256:...`) wins over a tag written beside it.

/// `fromImage` and `tag` of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullReference {
    pub repository: String,
    /// A tag (`latest` when none is written) or a digest (`sha256:...`).
    pub tag: String,
}

impl PullReference {
    pub fn parse(reference: &str) -> PullReference {
        if let Some((named, digest)) = reference.split_once('@') {
            return PullReference {
                repository: strip_tag(named).0.to_string(),
                tag: digest.to_string(),
            };
        }
        let (repository, tag) = strip_tag(reference);
        PullReference {
            repository: repository.to_string(),
            tag: tag.unwrap_or("latest").to_string(),
        }
    }
}

/// The repository and the tag of `name` (a colon after the last `/`).
fn strip_tag(name: &str) -> (&str, Option<&str>) {
    let last_segment = name.rfind('/').map_or(0, |slash| slash + 1);
    match name[last_segment..].rfind(':') {
        Some(colon) => (
            &name[..last_segment + colon],
            Some(&name[last_segment + colon + 1..]),
        ),
        None => (name, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(reference: &str) -> (String, String) {
        let parsed = PullReference::parse(reference);
        (parsed.repository, parsed.tag)
    }

    #[test]
    fn tags_and_their_absence() {
        assert_eq!(split("debian"), ("debian".into(), "latest".into()));
        assert_eq!(
            split("debian:bookworm-slim"),
            ("debian".into(), "bookworm-slim".into())
        );
        assert_eq!(
            split("ghcr.io/org/sandbox:1.2"),
            ("ghcr.io/org/sandbox".into(), "1.2".into())
        );
    }

    #[test]
    fn a_registry_port_is_not_a_tag() {
        assert_eq!(
            split("registry.local:5000/team/sandbox"),
            ("registry.local:5000/team/sandbox".into(), "latest".into())
        );
        assert_eq!(
            split("registry.local:5000/team/sandbox:v3"),
            ("registry.local:5000/team/sandbox".into(), "v3".into())
        );
    }

    #[test]
    fn a_digest_is_pulled_as_the_tag() {
        let digest = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";
        assert_eq!(
            split(&format!("debian@{digest}")),
            ("debian".into(), digest.into())
        );
        assert_eq!(
            split(&format!("localhost:5000/sandbox:1.2@{digest}")),
            ("localhost:5000/sandbox".into(), digest.into())
        );
    }
}
