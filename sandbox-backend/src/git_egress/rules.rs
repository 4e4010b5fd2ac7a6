//! The plain rules of the injecting egress: which requests are the session
//! repository's git smart-HTTP requests (and so get its credential), how a request
//! head from the sandbox is checked (its framing must be unambiguous), and how the
//! head sent on is written (the sandbox's own `Authorization` replaced by the
//! credential, proxy headers dropped). Everything here reads attacker-written bytes.

/// The session's repository as the egress matches it: the authority git dials
/// (`host`, or `host:port` for another port than 443) and `owner/name`, both
/// lowercased (GitHub's names are case-insensitive), without `.git`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRoute {
    pub authority: String,
    pub path: String,
}

impl RepoRoute {
    /// The route of an `https` clone URL's host and path as the runner names them
    /// (`host[:port]`, `owner/name[.git]`); `None` for a path that is not
    /// `owner/name`.
    pub fn new(host: &str, path: &str) -> Option<RepoRoute> {
        let host = host.to_ascii_lowercase();
        let authority = host.strip_suffix(":443").unwrap_or(&host).to_string();
        let path = path.trim_matches('/');
        let path = path
            .strip_suffix(".git")
            .unwrap_or(path)
            .to_ascii_lowercase();
        let mut parts = path.split('/');
        let plain = |part: Option<&str>| {
            part.is_some_and(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            })
        };
        if authority.is_empty() || !plain(parts.next()) || !plain(parts.next()) {
            return None;
        }
        if parts.next().is_some() {
            return None;
        }
        Some(RepoRoute { authority, path })
    }

    /// Whether a tunnel to `host:port` goes to this repository's host.
    pub fn is_host(&self, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        let authority = if port == 443 {
            host
        } else {
            format!("{host}:{port}")
        };
        authority == self.authority
    }

    /// Whether `method target` is one of git's smart-HTTP requests for this
    /// repository: `GET /<owner>/<name>[.git]/info/refs?service=git-upload-pack`
    /// (or `git-receive-pack`), or `POST /<owner>/<name>[.git]/git-upload-pack`
    /// (or `git-receive-pack`). Only the origin form counts, spelled plainly: no
    /// escapes, no dot segments, no doubled slashes, no other query.
    pub fn is_git_request(&self, method: &str, target: &str) -> bool {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        if rest.contains('%') {
            return false;
        }
        let Some((owner, rest)) = rest.split_once('/') else {
            return false;
        };
        let Some((name, rest)) = rest.split_once('/') else {
            return false;
        };
        let name = name.strip_suffix(".git").unwrap_or(name);
        if format!("{owner}/{name}").to_ascii_lowercase() != self.path {
            return false;
        }
        matches!(
            (method, rest, query),
            (
                "GET",
                "info/refs",
                Some("service=git-upload-pack" | "service=git-receive-pack")
            ) | ("POST", "git-upload-pack" | "git-receive-pack", None)
        )
    }
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the connection closes (responses only).
    Close,
}

/// Why a request head is refused: a 4xx status and a stable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: &'static str,
}

impl Refusal {
    const fn bad(code: &'static str, message: &'static str) -> Refusal {
        Refusal {
            status: 400,
            code,
            message,
        }
    }

    pub const TOO_LARGE: Refusal = Refusal {
        status: 431,
        code: "request_head_too_large",
        message: "the request head is too large",
    };
    pub const MALFORMED: Refusal = Refusal::bad("malformed_request", "the request is not HTTP/1.1");

    /// The answer to the sandbox (JSON, and the connection closes after it).
    pub fn response(&self) -> Vec<u8> {
        let reason = match self.status {
            431 => "Request Header Fields Too Large",
            502 => "Bad Gateway",
            _ => "Bad Request",
        };
        let body = format!(
            "{{\"error\":{{\"code\":\"{}\",\"message\":\"{}\"}}}}",
            self.code, self.message
        );
        format!(
            "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.status,
            body.len()
        )
        .into_bytes()
    }
}

/// A request head from the sandbox, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub framing: Framing,
    /// The sandbox asked to close the connection after this request.
    pub close: bool,
}

/// Headers a request can carry at most.
const MAX_HEADERS: usize = 100;

/// Parses a complete request head (through its blank line). Refused: anything that
/// is not an HTTP/1.1 request in origin form, more than one `Host` or
/// `Content-Length`, a `Transfer-Encoding` other than `chunked` alone, and both a
/// `Transfer-Encoding` and a `Content-Length` (the smuggling case: the two ends
/// could disagree on where the body ends).
pub fn parse_request(head: &[u8]) -> Result<RequestHead, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::TOO_LARGE),
        _ => return Err(Refusal::MALFORMED),
    }
    if request.version != Some(1) {
        return Err(Refusal::MALFORMED);
    }
    let (Some(method), Some(target)) = (request.method, request.path) else {
        return Err(Refusal::MALFORMED);
    };
    if !target.starts_with('/') {
        return Err(Refusal::bad(
            "not_origin_form",
            "requests through the tunnel name a path, not a URL",
        ));
    }
    let headers: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|header| (header.name.to_ascii_lowercase(), header.value.to_vec()))
        .collect();
    let all = |name: &'static str| headers.iter().filter(move |(n, _)| n == name);
    if all("host").count() != 1 {
        return Err(Refusal::bad("bad_host", "a request names exactly one Host"));
    }
    let lengths: Vec<&Vec<u8>> = all("content-length").map(|(_, v)| v).collect();
    let encodings: Vec<&Vec<u8>> = all("transfer-encoding").map(|(_, v)| v).collect();
    let framing = match (lengths.as_slice(), encodings.as_slice()) {
        ([], []) => Framing::None,
        ([_, ..], [_, ..]) => {
            return Err(Refusal::bad(
                "ambiguous_length",
                "a request has both Transfer-Encoding and Content-Length",
            ));
        }
        ([length], []) => Framing::Length(parse_length(length).ok_or(Refusal::bad(
            "bad_content_length",
            "Content-Length is not a number",
        ))?),
        ([], [encoding]) if encoding.eq_ignore_ascii_case(b"chunked") => Framing::Chunked,
        ([], _) => {
            return Err(Refusal::bad(
                "unsupported_transfer_encoding",
                "only Transfer-Encoding: chunked is accepted",
            ));
        }
        (_, []) => {
            return Err(Refusal::bad(
                "bad_content_length",
                "a request has more than one Content-Length",
            ));
        }
    };
    let close = all("connection").any(|(_, value)| {
        String::from_utf8_lossy(value)
            .split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("close"))
    });
    Ok(RequestHead {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        framing,
        close,
    })
}

/// A decimal length of at most 18 digits (no sign, no spaces).
pub fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

impl RequestHead {
    /// The `Host` header, when it names the repository's authority (`:443` or not).
    pub fn host_is(&self, route: &RepoRoute) -> bool {
        self.headers
            .iter()
            .find(|(name, _)| name == "host")
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
            .and_then(|host| RepoRoute::new(host, "o/r"))
            .is_some_and(|host| host.authority == route.authority)
    }

    /// The head sent to the repository's host: the request line and the sandbox's
    /// headers, without proxy headers, and with `authorization` (when given) in
    /// place of every `Authorization` the sandbox sent.
    pub fn rewrite(&self, authorization: Option<&str>) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        for (name, value) in &self.headers {
            let replaced = authorization.is_some() && name == "authorization";
            if replaced || name.starts_with("proxy-") {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if let Some(authorization) = authorization {
            out.extend_from_slice(b"authorization: ");
            out.extend_from_slice(authorization.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// `Basic` credentials for `username:password`.
pub fn basic_authorization(username: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    )
}

/// A response head from the repository's host: its status and how its body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub framing: Framing,
    pub close: bool,
}

/// Parses a complete response head; `head_request` says the request was `HEAD`
/// (whose answer has no body whatever its headers say).
pub fn parse_response(head: &[u8], head_request: bool) -> Option<ResponseHead> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    if !matches!(response.parse(head), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let status = response.code?;
    let value_of = |wanted: &'static str| {
        response
            .headers
            .iter()
            .filter(move |header| header.name.eq_ignore_ascii_case(wanted))
            .map(|header| header.value)
    };
    let close = response.version == Some(0)
        || value_of("connection").any(|value| {
            String::from_utf8_lossy(value)
                .split(',')
                .any(|token| token.trim().eq_ignore_ascii_case("close"))
        });
    let chunked_last = value_of("transfer-encoding").next_back().map(|value| {
        String::from_utf8_lossy(value)
            .rsplit(',')
            .next()
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
    });
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        Framing::None
    } else {
        match chunked_last {
            Some(true) => Framing::Chunked,
            Some(false) => Framing::Close,
            None => {
                let lengths: Vec<&[u8]> = value_of("content-length").collect();
                match lengths.as_slice() {
                    [] => Framing::Close,
                    [length] => Framing::Length(parse_length(length)?),
                    _ => return None,
                }
            }
        }
    };
    Some(ResponseHead {
        status,
        framing,
        close: close || framing == Framing::Close,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> RepoRoute {
        RepoRoute::new("GitHub.com", "Octo/Hello.git").unwrap()
    }

    #[test]
    fn only_the_repositorys_smart_http_paths_match() {
        let route = route();
        for (method, target) in [
            ("GET", "/octo/hello.git/info/refs?service=git-upload-pack"),
            ("GET", "/Octo/Hello/info/refs?service=git-receive-pack"),
            ("POST", "/octo/hello.git/git-upload-pack"),
            ("POST", "/octo/hello/git-receive-pack"),
        ] {
            assert!(route.is_git_request(method, target), "{method} {target}");
        }
        for (method, target) in [
            ("GET", "/octo/other.git/info/refs?service=git-upload-pack"),
            ("GET", "/other/hello.git/info/refs?service=git-upload-pack"),
            ("GET", "/octo/hello.git/info/refs"),
            (
                "GET",
                "/octo/hello.git/info/refs?service=git-upload-pack&x=1",
            ),
            ("POST", "/octo/hello.git/info/refs?service=git-upload-pack"),
            ("GET", "/octo/hello.git/git-upload-pack"),
            ("POST", "/octo/hello.git/git-upload-pack?x"),
            ("POST", "/octo/hello.git/objects/info/packs"),
            ("GET", "/octo/hello"),
            ("GET", "/api/v3/repos/octo/hello"),
            ("POST", "/octo/hello.git/../other/git-receive-pack"),
            ("POST", "/octo/%68ello/git-receive-pack"),
            ("POST", "//octo/hello/git-receive-pack"),
            ("POST", "/octo//hello/git-receive-pack"),
            ("POST", "/octo/hello/x/git-receive-pack"),
            ("POST", "https://github.com/octo/hello/git-receive-pack"),
            ("POST", "*"),
        ] {
            assert!(!route.is_git_request(method, target), "{method} {target}");
        }
    }

    #[test]
    fn the_route_matches_its_host_and_port_only() {
        let route = route();
        assert!(route.is_host("github.com", 443));
        assert!(route.is_host("GITHUB.COM", 443));
        assert!(!route.is_host("github.com", 8443));
        assert!(!route.is_host("api.github.com", 443));
        let local = RepoRoute::new("127.0.0.1:4000", "o/r").unwrap();
        assert!(local.is_host("127.0.0.1", 4000));
        assert!(!local.is_host("127.0.0.1", 443));
        assert_eq!(
            RepoRoute::new("github.com:443", "o/r").unwrap().authority,
            "github.com"
        );
        for bad in ["", "o", "o/r/x", "../r", "o/..", "o/r%2f"] {
            assert!(RepoRoute::new("github.com", bad).is_none(), "{bad:?}");
        }
    }

    fn head(text: &str) -> Result<RequestHead, Refusal> {
        parse_request(text.as_bytes())
    }

    #[test]
    fn ambiguous_or_malformed_heads_are_refused() {
        let code = |text: &str| head(text).unwrap_err().code;
        assert_eq!(
            code(
                "POST /o/r/git-receive-pack HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
            ),
            "ambiguous_length"
        );
        assert_eq!(
            code(
                "POST /o/r/git-receive-pack HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            "ambiguous_length"
        );
        assert_eq!(
            code("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            "bad_content_length"
        );
        assert_eq!(
            code("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"),
            "bad_content_length"
        );
        assert_eq!(
            code("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            "unsupported_transfer_encoding"
        );
        assert_eq!(
            code(
                "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            "unsupported_transfer_encoding"
        );
        assert_eq!(code("GET / HTTP/1.1\r\n\r\n"), "bad_host");
        assert_eq!(
            code("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            "bad_host"
        );
        assert_eq!(
            code("GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n"),
            "not_origin_form"
        );
        assert_eq!(
            code("GET / HTTP/1.0\r\nHost: h\r\n\r\n"),
            "malformed_request"
        );
        assert_eq!(
            code("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"),
            "malformed_request"
        );
        assert_eq!(
            code("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n"),
            "malformed_request"
        );
        assert_eq!(code("\x16\x03\x01garbage\r\n\r\n"), "malformed_request");
        let many = format!(
            "GET / HTTP/1.1\r\nHost: h\r\n{}\r\n",
            "X: y\r\n".repeat(200)
        );
        assert_eq!(head(&many).unwrap_err().status, 431);
        let ok = head("POST /o/r/git-receive-pack HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n").unwrap();
        assert_eq!(ok.framing, Framing::Chunked);
        assert!(ok.close);
    }

    #[test]
    fn the_credential_replaces_the_sandboxs_authorization_and_proxy_headers_go() {
        let head = head(
            "GET /octo/hello/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: github.com\r\n\
             Authorization: Basic c2FuZGJveDpndWVzcw==\r\nAUTHORIZATION: Bearer x\r\n\
             Proxy-Authorization: Basic eA==\r\nGit-Protocol: version=2\r\n\r\n",
        )
        .unwrap();
        assert!(head.host_is(&route()));
        let sent =
            String::from_utf8(head.rewrite(Some(&basic_authorization("x-access-token", "ghs_1"))))
                .unwrap();
        assert_eq!(
            sent,
            "GET /octo/hello/info/refs?service=git-upload-pack HTTP/1.1\r\nhost: github.com\r\n\
             git-protocol: version=2\r\nauthorization: Basic eC1hY2Nlc3MtdG9rZW46Z2hzXzE=\r\n\r\n"
        );
        // Without a credential the sandbox's own header passes (its own business).
        let plain = String::from_utf8(head.rewrite(None)).unwrap();
        assert!(plain.contains("authorization: Basic c2FuZGJveDpndWVzcw==\r\n"));
        assert!(!plain.contains("proxy-authorization"));
        let other = parse_request(b"GET / HTTP/1.1\r\nHost: github.com:444\r\n\r\n").unwrap();
        assert!(!other.host_is(&route()));
    }

    #[test]
    fn response_bodies_end_where_their_headers_say() {
        let framing =
            |text: &str, head: bool| parse_response(text.as_bytes(), head).unwrap().framing;
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", false),
            Framing::Length(12)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", true),
            Framing::None
        );
        assert_eq!(
            framing(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false
            ),
            Framing::Chunked
        );
        assert_eq!(framing("HTTP/1.1 200 OK\r\n\r\n", false), Framing::Close);
        assert_eq!(
            framing("HTTP/1.1 100 Continue\r\n\r\n", false),
            Framing::None
        );
        assert_eq!(
            framing(
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n",
                false
            ),
            Framing::None
        );
        assert!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                false
            )
            .is_none()
        );
        assert!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
                false
            )
            .unwrap()
            .close
        );
    }
}
