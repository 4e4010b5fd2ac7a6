//! The sign-in page's decisions: where to go after signing in, the provider links,
//! and what each `?error=` code from the OAuth callback means to a person.

/// The sign-in providers the Worker may offer, in the order their buttons appear.
pub const OAUTH_PROVIDERS: [(&str, &str); 2] = [("github", "GitHub"), ("google", "Google")];

/// A readable sentence for a sign-in error code (`/signin?error=<code>`).
pub fn error_message(code: &str) -> String {
    match code {
        "oauth_state_mismatch" => {
            "The sign-in link expired or was opened in another browser. Please try again."
        }
        "oauth_denied" => "Sign-in was cancelled at the provider.",
        "email_unverified" => {
            "Your email address at the provider is not verified. Verify it there, then sign in again."
        }
        "invite_invalid" => {
            "This invite link is no longer valid (it expired, was used up or was revoked). Ask an admin for a new one."
        }
        "signin_not_allowed" => {
            "This team only admits invited people. Ask an admin for an invite link."
        }
        "setup_required" => {
            "This Nightshift has no admin yet. The first admin signs in with the setup link the \
             operator was given (or the operator lists their email in ADMIN_EMAILS)."
        }
        "oauth_failed" => "The provider did not complete the sign-in. Please try again.",
        "dev_auth_disabled" => "Development sign-in is not available on this server.",
        "session_expired" | "unauthenticated" => "Your session ended. Please sign in again.",
        other => return format!("Sign-in failed ({other}). Please try again."),
    }
    .to_owned()
}

/// What to show when `POST /auth/dev/login` is refused: the readable sentence for a
/// sign-in code, whether the server sent it as the error's code or at the start of its
/// message (`"signin_not_allowed: ..."`), else the server's own message.
pub fn refusal_message(code: Option<&str>, message: &str) -> String {
    const KNOWN: [&str; 5] = [
        "invite_invalid",
        "signin_not_allowed",
        "setup_required",
        "dev_auth_disabled",
        "email_unverified",
    ];
    let prefix = message.split(':').next().unwrap_or_default().trim();
    match [code.unwrap_or_default(), prefix]
        .into_iter()
        .find(|candidate| KNOWN.contains(candidate))
    {
        Some(known) => error_message(known),
        None if message.is_empty() => "Sign-in failed. Please try again.".to_owned(),
        None => message.to_owned(),
    }
}

/// Where to send the user after signing in: a path on this site, never another
/// origin (`//evil.example`, `https://...`) and never back to a sign-in page.
pub fn safe_redirect(requested: Option<&str>) -> String {
    let Some(path) = requested.map(str::trim) else {
        return "/".to_owned();
    };
    let local = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.contains(|c: char| c.is_control());
    let auth_page = ["/signin", "/invite/", "/auth/"]
        .iter()
        .any(|prefix| path.starts_with(prefix));
    if local && !auth_page {
        path.to_owned()
    } else {
        "/".to_owned()
    }
}

/// `/auth/{provider}/login?redirect=...&invite=...`.
pub fn login_url(provider: &str, redirect: &str, invite: Option<&str>) -> String {
    let mut url = format!(
        "/auth/{}/login?redirect={}",
        encode_component(provider),
        encode_component(redirect)
    );
    if let Some(invite) = invite.filter(|invite| !invite.is_empty()) {
        url.push_str("&invite=");
        url.push_str(&encode_component(invite));
    }
    url
}

/// `/signin?redirect=<path>`, which the app opens for a visitor who is not signed in.
pub fn signin_url(redirect: &str) -> String {
    if redirect == "/" || redirect.is_empty() {
        "/signin".to_owned()
    } else {
        format!("/signin?redirect={}", encode_component(redirect))
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, like
/// `encodeURIComponent` minus its few extra exemptions.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A dev sign-in form's values, trimmed and checked.
pub fn check_dev_signin(name: &str, email: &str) -> Result<(String, String), String> {
    let (name, email) = (name.trim(), email.trim());
    let mut parts = email.split('@');
    let valid_email = matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty()
    );
    if !valid_email {
        return Err("Enter an email address like ada@example.com.".to_owned());
    }
    let name = if name.is_empty() {
        email.split('@').next().unwrap_or(email)
    } else {
        name
    };
    Ok((name.to_owned(), email.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_callback_error_code_reads_as_a_sentence() {
        for code in [
            "oauth_state_mismatch",
            "oauth_denied",
            "email_unverified",
            "invite_invalid",
            "signin_not_allowed",
            "oauth_failed",
        ] {
            let message = error_message(code);
            assert!(!message.contains(code), "{code}: {message}");
            assert!(message.ends_with('.'), "{message}");
        }
        assert!(error_message("weird_thing").contains("weird_thing"));
    }

    #[test]
    fn refusals_read_as_sentences_whichever_way_the_code_comes() {
        let by_code = refusal_message(Some("signin_not_allowed"), "no");
        let by_prefix = refusal_message(
            Some("forbidden"),
            "signin_not_allowed: this email may not sign in",
        );
        assert_eq!(by_code, by_prefix);
        assert!(by_code.contains("invite"), "{by_code}");
        assert_eq!(refusal_message(Some("forbidden"), "go away"), "go away");
        assert!(refusal_message(None, "").contains("failed"));
    }

    #[test]
    fn redirects_stay_on_this_site() {
        assert_eq!(
            safe_redirect(Some("/sessions/abc?x=1")),
            "/sessions/abc?x=1"
        );
        assert_eq!(safe_redirect(Some("/share/tok")), "/share/tok");
        for hostile in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "javascript:alert(1)",
            "/signin?redirect=/x",
            "/invite/abc",
            "/auth/github/login",
            "",
        ] {
            assert_eq!(safe_redirect(Some(hostile)), "/", "{hostile}");
        }
        assert_eq!(safe_redirect(None), "/");
    }

    #[test]
    fn login_urls_encode_their_parameters() {
        assert_eq!(
            login_url("github", "/sessions/a b", Some("t&1")),
            "/auth/github/login?redirect=%2Fsessions%2Fa%20b&invite=t%261"
        );
        assert_eq!(
            login_url("google", "/", None),
            "/auth/google/login?redirect=%2F"
        );
        assert_eq!(signin_url("/"), "/signin");
        assert_eq!(signin_url("/admin"), "/signin?redirect=%2Fadmin");
        assert_eq!(encode_component("é"), "%C3%A9");
    }

    #[test]
    fn dev_signin_needs_an_email_and_names_itself_after_it() {
        assert_eq!(
            check_dev_signin(" ", " ada@x.dev "),
            Ok(("ada".into(), "ada@x.dev".into()))
        );
        assert_eq!(
            check_dev_signin("Ada", "ada@x.dev"),
            Ok(("Ada".into(), "ada@x.dev".into()))
        );
        assert!(check_dev_signin("Ada", "ada").is_err());
        assert!(check_dev_signin("Ada", "@x").is_err());
        assert!(check_dev_signin("Ada", "a@b@c").is_err());
    }
}
