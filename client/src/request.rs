//! The request the client wants the host to see.

use std::time::SystemTime;

use bhttp::Message;

/// An HTTP request to be carried inside Oblivious HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerRequest {
    method: String,
    scheme: String,
    authority: String,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    private_token: Option<String>,
}

impl InnerRequest {
    /// A request with no headers and no body. `authority` names the service
    /// behind the gateway (for example `cloister.invalid`), not a real host.
    #[must_use]
    pub fn new(method: &str, authority: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            scheme: "https".into(),
            authority: authority.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            private_token: None,
        }
    }

    /// Add a header field.
    #[must_use]
    pub fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Set the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Attach a Privacy Pass token: `token` is the base64url token, sent as
    /// `Authorization: PrivateToken token="…"` (RFC 9577 §2.2). The gateway
    /// redeems it and removes the header before the host sees the request.
    #[must_use]
    pub fn private_token(mut self, token: &str) -> Self {
        self.private_token = Some(token.to_owned());
        self
    }

    /// The Binary HTTP message, dated `date` for the gateway's replay check.
    pub(crate) fn to_message(&self, date: SystemTime) -> Message {
        let mut message = Message::request(
            self.method.clone().into_bytes(),
            self.scheme.clone().into_bytes(),
            self.authority.clone().into_bytes(),
            self.path.clone().into_bytes(),
        );
        message.put_header("date", httpdate::fmt_http_date(date));
        if let Some(token) = &self.private_token {
            message.put_header("authorization", format!("PrivateToken token=\"{token}\""));
        }
        for (name, value) in &self.headers {
            message.put_header(name.as_str(), value.as_slice());
        }
        message.write_content(&self.body);
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_date_token_headers_and_body() {
        let date = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        let message = InnerRequest::new("POST", "cloister.invalid", "/v1/summarise")
            .header("Cloister-Session", "abc")
            .private_token("dG9rZW4")
            .body("hello")
            .to_message(date);
        let header = message.header();
        assert_eq!(
            header.get(b"date"),
            Some(&b"Sun, 06 Nov 1994 08:49:37 GMT"[..])
        );
        assert_eq!(
            header.get(b"authorization"),
            Some(&b"PrivateToken token=\"dG9rZW4\""[..])
        );
        assert_eq!(header.get(b"cloister-session"), Some(&b"abc"[..]));
        assert_eq!(message.content(), b"hello");
        assert_eq!(message.control().method(), Some(&b"POST"[..]));
    }
}
