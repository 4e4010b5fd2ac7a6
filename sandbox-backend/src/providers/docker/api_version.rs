//! Which Engine API version the Docker client speaks, agreed with the daemon.
//!
//! An Engine refuses a client that asks for a newer version than its own (`client
//! version 1.43 is too new. Maximum supported API version is 1.41` from Debian 12's
//! Engine 20.10) and, from Engine 25 on, one older than its minimum (Engine 29 wants
//! at least 1.44). So no single pinned version works everywhere: the client reads `GET
//! /version` (which needs no version in its path) and speaks the lower of the daemon's
//! `ApiVersion` and its own maximum, refusing with a clear error when that is below
//! the daemon's `MinAPIVersion` or below what the client needs.

use std::fmt;

/// The oldest version the provider's calls work with: Engine 20.10.
pub const CLIENT_MIN: ApiVersion = ApiVersion {
    major: 1,
    minor: 41,
};
/// The newest version the client has been written for: Engine 29.
pub const CLIENT_MAX: ApiVersion = ApiVersion {
    major: 1,
    minor: 52,
};

/// An Engine API version, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    pub fn parse(text: &str) -> Option<ApiVersion> {
        let (major, minor) = text.trim().trim_start_matches('v').split_once('.')?;
        Some(ApiVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }

    /// The prefix of every versioned path (`/v1.41`).
    pub fn path_prefix(self) -> String {
        format!("/v{self}")
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}.{}", self.major, self.minor)
    }
}

/// The version to speak with a daemon whose `GET /version` answered `body`.
pub fn negotiate(body: &serde_json::Value) -> Result<ApiVersion, String> {
    let field = |name: &str| {
        body[name]
            .as_str()
            .and_then(ApiVersion::parse)
            .ok_or_else(|| format!("the Docker daemon's /version has no usable {name}: {body}"))
    };
    let daemon_max = field("ApiVersion")?;
    // Engines before 1.25 do not say; they accept anything up to their maximum.
    let daemon_min = field("MinAPIVersion").unwrap_or(ApiVersion { major: 1, minor: 0 });
    let chosen = daemon_max.min(CLIENT_MAX);
    let engine = body["Version"].as_str().unwrap_or("unknown");
    if chosen < daemon_min {
        return Err(format!(
            "the Docker Engine ({engine}) accepts API versions {daemon_min} to {daemon_max}, \
             and this backend speaks {CLIENT_MIN} to {CLIENT_MAX}: use an Engine that still \
             accepts {CLIENT_MAX} or update Nightshift"
        ));
    }
    if chosen < CLIENT_MIN {
        return Err(format!(
            "the Docker Engine ({engine}) speaks API {daemon_max} at most; the docker \
             provider needs {CLIENT_MIN} (Docker Engine 20.10) or newer"
        ));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// `GET /version` of Debian 12's docker.io (Engine 20.10.24).
    fn engine_20_10() -> serde_json::Value {
        json!({"Version": "20.10.24+dfsg1", "ApiVersion": "1.41", "MinAPIVersion": "1.12",
               "Os": "linux", "Arch": "amd64"})
    }

    /// `GET /version` of Docker Engine 29.
    fn engine_29() -> serde_json::Value {
        json!({"Version": "29.0.0", "ApiVersion": "1.52", "MinAPIVersion": "1.44",
               "Os": "linux", "Arch": "amd64"})
    }

    #[test]
    fn an_older_engine_gets_its_own_maximum() {
        assert_eq!(negotiate(&engine_20_10()).unwrap().to_string(), "1.41");
    }

    #[test]
    fn a_newer_engine_gets_the_clients_maximum_above_its_minimum() {
        let chosen = negotiate(&engine_29()).unwrap();
        assert_eq!(chosen, CLIENT_MAX);
        assert!(chosen >= ApiVersion::parse("1.44").unwrap());
        let future = json!({"Version": "40.0.0", "ApiVersion": "1.70", "MinAPIVersion": "1.44"});
        assert_eq!(negotiate(&future).unwrap(), CLIENT_MAX);
    }

    #[test]
    fn engines_out_of_reach_are_refused_with_the_ranges() {
        let too_new = json!({"Version": "50.0.0", "ApiVersion": "1.90", "MinAPIVersion": "1.60"});
        let error = negotiate(&too_new).unwrap_err();
        assert!(
            error.contains("1.60 to 1.90") && error.contains("50.0.0"),
            "{error}"
        );
        let too_old = json!({"Version": "1.13.1", "ApiVersion": "1.26", "MinAPIVersion": "1.12"});
        let error = negotiate(&too_old).unwrap_err();
        assert!(error.contains("1.41"), "{error}");
        assert!(negotiate(&json!({"message": "page not found"})).is_err());
    }

    #[test]
    fn versions_compare_as_numbers() {
        assert!(ApiVersion::parse("1.9").unwrap() < ApiVersion::parse("1.41").unwrap());
        assert_eq!(ApiVersion::parse("v1.44").unwrap().path_prefix(), "/v1.44");
        assert!(ApiVersion::parse("1").is_none() && ApiVersion::parse("a.b").is_none());
    }
}
