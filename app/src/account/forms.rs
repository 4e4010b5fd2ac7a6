//! The settings, admin and share forms: their raw text fields turned into request
//! bodies, or a sentence saying what to fix. Nothing is sent until a form checks out.

use nightshift_protocol::auth::{
    CreateInviteRequest, CreateKeyRequest, CreateShareLinkRequest, CreateTokenRequest, KeyProvider,
    KeyScope, SessionRole, SigninPolicy, TeamRole, TeamSettings, TokenScope, UsageLimits,
};
use nightshift_protocol::sleep::SleepBounds;

/// Longest expiry and use limit the forms accept; the server has its own limits.
const MAX_EXPIRY_HOURS: u32 = 24 * 365;
const MAX_USES: u32 = 10_000;

/// The LLM providers a key can be for: wire name and label.
pub const KEY_PROVIDERS: [(&str, &str); 3] = [
    ("anthropic", "Anthropic"),
    ("openai", "OpenAI"),
    ("openai_compatible", "OpenAI-compatible"),
];

/// The sign-in policies an admin can pick: wire name and label.
pub const SIGNIN_POLICIES: [(&str, &str); 3] = [
    ("invite_only", "Invited people only"),
    ("domain", "Anyone with an email at one domain"),
    ("open", "Anyone who can sign in"),
];

/// The API token form: a name and whether the token may also write.
pub fn new_token(
    name: &str,
    write: bool,
    expires_in_days: &str,
) -> Result<CreateTokenRequest, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("Give the token a name, e.g. the script that will use it.".to_owned());
    }
    if name.chars().count() > 100 {
        return Err("Keep the token's name under 100 characters.".to_owned());
    }
    let expires_in_days = match expires_in_days.trim() {
        "" => None,
        days => Some(positive(days, "Expiry in days", 3650)?),
    };
    let mut scopes = vec![TokenScope::Read];
    if write {
        scopes.push(TokenScope::Write);
    }
    Ok(CreateTokenRequest {
        name: name.to_owned(),
        scopes,
        expires_in_days,
    })
}

/// The LLM key form. `models` is a comma- or newline-separated list.
pub fn new_llm_key(
    scope: &str,
    provider: &str,
    api_key: &str,
    base_url: &str,
    models: &str,
    name: &str,
) -> Result<CreateKeyRequest, String> {
    let provider = KeyProvider::parse(provider).ok_or("Pick a provider.")?;
    let api_key = api_key.trim();
    if api_key.len() < 8 {
        return Err("Paste the whole API key.".to_owned());
    }
    let compatible = provider == KeyProvider::OpenaiCompatible;
    let base_url = base_url.trim().trim_end_matches('/');
    let models: Vec<String> = models
        .split([',', '\n'])
        .map(str::trim)
        .filter(|model| !model.is_empty())
        .map(str::to_owned)
        .collect();
    if compatible {
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(
                "An OpenAI-compatible endpoint needs its base URL, e.g. https://host/v1."
                    .to_owned(),
            );
        }
        if models.is_empty() {
            return Err("List at least one model the endpoint serves.".to_owned());
        }
    }
    let name = name.trim();
    Ok(CreateKeyRequest {
        scope: if scope == "team" {
            KeyScope::Team
        } else {
            KeyScope::User
        },
        provider,
        api_key: api_key.into(),
        base_url: (compatible || !base_url.is_empty()).then(|| base_url.to_owned()),
        models: (!models.is_empty()).then_some(models),
        name: (!name.is_empty()).then(|| name.to_owned()),
    })
}

/// The invite form.
pub fn new_invite(
    role: &str,
    expires_in_hours: &str,
    max_uses: &str,
    email: &str,
) -> Result<CreateInviteRequest, String> {
    let role = TeamRole::parse(role).ok_or("Pick a role.")?;
    let email = email.trim();
    if !email.is_empty() && !email.contains('@') {
        return Err("That email address is not valid.".to_owned());
    }
    Ok(CreateInviteRequest {
        role,
        expires_in_hours: positive(expires_in_hours, "Expiry in hours", MAX_EXPIRY_HOURS)?,
        max_uses: positive(max_uses, "Use limit", MAX_USES)?,
        email: (!email.is_empty()).then(|| email.to_owned()),
    })
}

/// The share-link form in the share dialog.
pub fn new_share_link(
    role: &str,
    expires_in_hours: &str,
    max_uses: &str,
) -> Result<CreateShareLinkRequest, String> {
    let role = SessionRole::parse(role)
        .filter(|role| role.is_shareable())
        .ok_or("Pick a role.")?;
    Ok(CreateShareLinkRequest {
        role,
        expires_in_hours: positive(expires_in_hours, "Expiry in hours", MAX_EXPIRY_HOURS)?,
        max_uses: positive(max_uses, "Use limit", MAX_USES)?,
    })
}

/// The caps form's fields as [`UsageLimits`]: whole numbers within their range.
pub fn usage_limits(
    live_sessions: &str,
    queued_prompts: &str,
    open_streams: &str,
    keys: &str,
) -> Result<UsageLimits, String> {
    let number = |label: &str, text: &str| {
        text.trim()
            .parse::<u32>()
            .map_err(|_| format!("{label} must be a whole number"))
    };
    let limits = UsageLimits {
        live_sessions: number("Live sessions", live_sessions)?,
        queued_prompts: number("Queued prompts", queued_prompts)?,
        open_streams: number("Open streams", open_streams)?,
        keys: number("Keys", keys)?,
    };
    limits.validate()?;
    Ok(limits)
}

/// The sign-in policy form.
pub fn team_settings(policy: &str, domain: &str) -> Result<TeamSettings, String> {
    let policy = SigninPolicy::parse(policy).ok_or("Pick a sign-in policy.")?;
    let domain = domain.trim().trim_start_matches('@').to_ascii_lowercase();
    let allowed_domain = if policy == SigninPolicy::Domain {
        if !domain.contains('.') || domain.contains(|c: char| c.is_whitespace() || c == '@') {
            return Err("Enter the email domain to admit, e.g. example.com.".to_owned());
        }
        Some(domain)
    } else {
        None
    };
    Ok(TeamSettings {
        limits: None,
        sleep: None,
        signin_policy: policy,
        allowed_domain,
    })
}

/// The GitHub settings form: one allowed `owner/name` or `owner/*` a line (blank
/// lines skipped, repeats dropped); empty allows every repository.
pub fn github_settings(
    allowed: &str,
    draft_pull_requests: bool,
) -> Result<nightshift_protocol::repo::GithubSettings, String> {
    let mut allowed_repos: Vec<String> = Vec::new();
    for line in allowed.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let whole_owner = line
            .strip_suffix("/*")
            .is_some_and(|owner| nightshift_protocol::repo::valid_full_name(&format!("{owner}/x")));
        if !whole_owner && !nightshift_protocol::repo::valid_full_name(line) {
            return Err(format!(
                "{line:?} is neither owner/name nor owner/* (one a line)."
            ));
        }
        if !allowed_repos.iter().any(|known| known == line) {
            allowed_repos.push(line.to_owned());
        }
    }
    Ok(nightshift_protocol::repo::GithubSettings {
        allowed_repos,
        draft_pull_requests,
    })
}

/// A sleep-time field, in minutes (fractions allowed: `0.5` is 30 seconds), as
/// milliseconds: blank is `None` (the default, or no maximum) and `never` or `0` is
/// `Some(0)` where `never` is a choice. Checked against `bounds` as the server will.
pub fn sleep_minutes(text: &str, bounds: SleepBounds, never: bool) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let range = format!(
        "from {} to {} minutes",
        minutes_text(bounds.min_ms),
        minutes_text(bounds.max_ms)
    );
    let ms = if never && text.eq_ignore_ascii_case("never") {
        0
    } else {
        match text.parse::<f64>() {
            Ok(minutes) if minutes.is_finite() && minutes >= 0.0 => {
                (minutes * 60_000.0).round() as u64
            }
            _ => return Err(format!("The sleep time is a number of minutes, {range}.")),
        }
    };
    let checked = if never {
        bounds.check_user(Some(ms))
    } else {
        bounds.check_team_max(Some(ms))
    };
    checked.map_err(|_| {
        if never {
            format!("The sleep time is {range}, or never (0); leave it blank for the default.")
        } else {
            format!("The maximum is {range}; leave it blank for none.")
        }
    })?;
    Ok(Some(ms))
}

/// Milliseconds as a number of minutes, with at most two decimals.
pub fn minutes_text(ms: u64) -> String {
    let text = format!("{:.2}", ms as f64 / 60_000.0);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A sleep time in words: `never`, `45 seconds`, `15 minutes`.
pub fn sleep_words(ms: u64) -> String {
    match ms {
        0 => "never".to_owned(),
        ms if ms < 60_000 => format!("{} seconds", ms.div_ceil(1000)),
        60_000 => "1 minute".to_owned(),
        ms => format!("{} minutes", minutes_text(ms)),
    }
}

fn positive(text: &str, what: &str, max: u32) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(value) if (1..=max).contains(&value) => Ok(value),
        _ => Err(format!("{what} must be a whole number from 1 to {max}.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_repositories_are_names_or_whole_owners() {
        let settings = github_settings("acme/web\n\n  acme/*  \nacme/web\n", false).unwrap();
        assert_eq!(settings.allowed_repos, ["acme/web", "acme/*"]);
        assert!(!settings.draft_pull_requests);
        assert!(github_settings("", true).unwrap().allowed_repos.is_empty());
        for bad in ["acme", "acme/*/x", "*/web", "a b/c", "../*"] {
            assert!(github_settings(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn sleep_times_are_minutes_within_the_bounds_or_blank() {
        let bounds = SleepBounds::with_min(60_000);
        assert_eq!(sleep_minutes(" ", bounds, true), Ok(None));
        assert_eq!(sleep_minutes("30", bounds, true), Ok(Some(1_800_000)));
        assert_eq!(sleep_minutes("1.5", bounds, false), Ok(Some(90_000)));
        assert_eq!(sleep_minutes("never", bounds, true), Ok(Some(0)));
        assert_eq!(sleep_minutes("0", bounds, true), Ok(Some(0)));
        // A maximum is never "never".
        assert!(sleep_minutes("0", bounds, false).is_err());
        assert!(sleep_minutes("never", bounds, false).is_err());
        for bad in ["0.5", "1441", "-3", "ten", "NaN", "inf"] {
            assert!(sleep_minutes(bad, bounds, true).is_err(), "{bad}");
        }
        // A deployment with a shorter minimum takes fractions of a minute.
        let short = SleepBounds::with_min(1_000);
        assert_eq!(sleep_minutes("0.05", short, true), Ok(Some(3_000)));
    }

    #[test]
    fn sleep_times_read_as_minutes_or_words() {
        assert_eq!(minutes_text(900_000), "15");
        assert_eq!(minutes_text(3_000), "0.05");
        assert_eq!(minutes_text(90_000), "1.5");
        assert_eq!(sleep_words(0), "never");
        assert_eq!(sleep_words(60_000), "1 minute");
        assert_eq!(sleep_words(900_000), "15 minutes");
        assert_eq!(sleep_words(3_000), "3 seconds");
    }

    #[test]
    fn caps_are_whole_numbers_in_range() {
        let limits = usage_limits("3", " 50 ", "10", "5").unwrap();
        assert_eq!((limits.live_sessions, limits.queued_prompts), (3, 50));
        assert!(
            usage_limits("x", "1", "1", "1")
                .unwrap_err()
                .contains("Live sessions")
        );
        assert!(
            usage_limits("1", "1", "0", "1")
                .unwrap_err()
                .contains("open_streams")
        );
    }

    #[test]
    fn tokens_are_read_only_unless_write_is_ticked() {
        let token = new_token(" ci ", false, "").unwrap();
        assert_eq!(token.name, "ci");
        assert_eq!(token.scopes, vec![TokenScope::Read]);
        assert_eq!(token.expires_in_days, None);
        let writer = new_token("bot", true, "30").unwrap();
        assert_eq!(writer.scopes, vec![TokenScope::Read, TokenScope::Write]);
        assert_eq!(writer.expires_in_days, Some(30));
        assert!(new_token("  ", true, "").is_err());
        assert!(new_token("x", true, "0").is_err());
        assert!(new_token("x", true, "soon").is_err());
    }

    #[test]
    fn compatible_keys_need_a_base_url_and_models() {
        let key = new_llm_key(
            "user",
            "openai_compatible",
            " sk-123456789 ",
            "http://llm.local/v1/",
            "a, b\nc,",
            "",
        )
        .unwrap();
        assert_eq!(key.api_key.expose(), "sk-123456789");
        assert_eq!(key.base_url.as_deref(), Some("http://llm.local/v1"));
        assert_eq!(key.models, Some(vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(key.name, None);
        assert!(new_llm_key("user", "openai_compatible", "sk-123456789", "", "a", "").is_err());
        assert!(
            new_llm_key(
                "user",
                "openai_compatible",
                "sk-123456789",
                "http://x",
                "",
                ""
            )
            .is_err()
        );
        let plain = new_llm_key("team", "anthropic", "sk-ant-12345", "", "", "Main").unwrap();
        assert_eq!(plain.scope, KeyScope::Team);
        assert_eq!(plain.base_url, None);
        let json = serde_json::to_value(&plain).unwrap();
        assert!(json.get("models").is_none(), "{json}");
        assert!(new_llm_key("user", "mistral", "sk-123456789", "", "", "").is_err());
        assert!(new_llm_key("user", "openai", "short", "", "", "").is_err());
    }

    #[test]
    fn invites_and_share_links_check_their_numbers_and_roles() {
        let invite = new_invite("member", "48", "5", "").unwrap();
        assert_eq!(
            serde_json::to_value(&invite).unwrap(),
            serde_json::json!({"role": "member", "expires_in_hours": 48, "max_uses": 5})
        );
        assert!(new_invite("owner", "48", "5", "").is_err());
        assert!(new_invite("admin", "0", "5", "").is_err());
        assert!(new_invite("admin", "1", "-1", "").is_err());
        assert!(new_invite("admin", "1", "1", "nope").is_err());
        let link = new_share_link("viewer", "24", "1").unwrap();
        assert_eq!(link.role, SessionRole::Viewer);
        assert!(new_share_link("owner", "24", "1").is_err());
        assert!(new_share_link("admin", "24", "1").is_err());
    }

    #[test]
    fn the_domain_policy_needs_a_domain() {
        let settings = team_settings("domain", " @Example.com ").unwrap();
        assert_eq!(settings.allowed_domain.as_deref(), Some("example.com"));
        assert!(team_settings("domain", "").is_err());
        assert_eq!(
            team_settings("open", "ignored.com").unwrap().allowed_domain,
            None
        );
        assert!(team_settings("closed", "").is_err());
    }
}
