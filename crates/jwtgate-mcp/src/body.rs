//! Reading an MCP request's body, and what it calls.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use serde_json::Value;

/// A body, read up to its limit.
pub(crate) enum Read {
    Whole(Bytes),
    TooLarge,
    /// The client went away, or sent a broken body.
    Failed,
}

pub(crate) async fn read<B>(body: B, limit: usize) -> Read
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Read::Whole(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Read::TooLarge,
        Err(_) => Read::Failed,
    }
}

/// What a JSON-RPC body asks for: the tools it calls, and whether it opens a session.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Calls {
    /// The `params.name` of every `tools/call` request, in order.
    pub(crate) tools: Vec<String>,
    /// Whether an `initialize` request is among the messages.
    pub(crate) initializes: bool,
}

impl Calls {
    /// Reads a single JSON-RPC message or a batch. A body that is not JSON, or not of that shape, calls
    /// nothing: the server answers it as it always does.
    pub(crate) fn parse(body: &[u8]) -> Self {
        let mut calls = Self::default();
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(messages)) => messages.iter().for_each(|message| calls.add(message)),
            Ok(message) => calls.add(&message),
            Err(_) => {}
        }
        calls
    }

    fn add(&mut self, message: &Value) {
        match message.get("method").and_then(Value::as_str) {
            Some("tools/call") => {
                // A call whose name is not a string names no tool the server knows; it refuses it itself.
                if let Some(name) = message.pointer("/params/name").and_then(Value::as_str) {
                    self.tools.push(name.to_owned());
                }
            }
            Some("initialize") => self.initializes = true,
            _ => {}
        }
    }
}

/// 413 for a body over the limit, in the words of rmcp's streamable HTTP server.
pub(crate) fn too_large(limit: usize) -> Response<Bytes> {
    plain(StatusCode::PAYLOAD_TOO_LARGE, format!("Payload Too Large: request body exceeds {limit} bytes"))
}

/// 400 for a body that could not be read (the client went away, or broke its framing).
pub(crate) fn unreadable() -> Response<Bytes> {
    plain(StatusCode::BAD_REQUEST, "Bad Request: the request body could not be read".to_owned())
}

/// 404 for a session that this principal did not open, or that is unknown, as rmcp answers an unknown
/// session: the client starts a new one, and learns nothing of whose session it was.
pub(crate) fn session_not_found() -> Response<Bytes> {
    plain(StatusCode::NOT_FOUND, "Not Found: Session not found".to_owned())
}

pub(crate) fn plain(status: StatusCode, text: String) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_messages_and_batches_name_their_tools() {
        let call =
            |name: &str| format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}"}}}}"#);
        assert_eq!(Calls::parse(call("whoami").as_bytes()).tools, ["whoami"]);
        let batch =
            format!(r#"[{},{{"jsonrpc":"2.0","method":"notifications/initialized"}},{}]"#, call("a"), call("b"));
        assert_eq!(Calls::parse(batch.as_bytes()), Calls { tools: vec!["a".into(), "b".into()], initializes: false });
        let initialize = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#;
        assert!(Calls::parse(initialize.as_bytes()).initializes);
        for body in
            ["", "not json", "[", "42", r#"{"method":"tools/call","params":{"name":7}}"#, r#"{"method":"tools/list"}"#]
        {
            assert_eq!(Calls::parse(body.as_bytes()), Calls::default(), "{body}");
        }
    }
}
