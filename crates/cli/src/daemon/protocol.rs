//! The control protocol's wire format (`docs/control-protocol.md`): one JSON-RPC 2.0
//! request per line, one reply per line, lines capped at [`MAX_LINE_BYTES`].
//!
//! Invariant: nothing a client sends is buffered past [`MAX_LINE_BYTES`]: a longer line is
//! skipped to its end without being kept, and answered with an error.

#[cfg(test)]
mod tests;

use std::io::{self, Read};

use serde_json::{Value as Json, json};

use crate::Failure;

/// The protocol version this build speaks; a client says it in `hello` before anything else.
pub const PROTOCOL_VERSION: u64 = 1;

/// The longest request line the daemon reads (1 MiB, the newline not counted).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// JSON-RPC: the line is not JSON.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: the JSON is not a request (or the line is too long).
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: no such method.
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC: the params are missing or of the wrong shape.
pub(crate) const INVALID_PARAMS: i64 = -32602;
/// No `hello` yet, or a protocol version this daemon does not speak.
pub(crate) const PROTOCOL_MISMATCH: i64 = -32010;

/// An error reply: a code, a message, and maybe data (such as the promise of a `send`
/// whose wait timed out).
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The code: JSON-RPC's own, the protocol's (-32010, -32011), or a failure class's
    /// ([`RpcError::code_of`]).
    pub code: i64,
    /// What went wrong, for people.
    pub message: String,
    /// More, for programs.
    pub data: Option<Json>,
}

impl RpcError {
    /// An error without data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Bad params: -32602.
    pub fn params(message: impl Into<String>) -> Self {
        RpcError::new(INVALID_PARAMS, message)
    }

    /// The code of a failure class: `-32000 - exit code` (usage -32001, rejected -32002,
    /// timeout -32003, store -32004, internal -32005), so that a client exits as an offline
    /// command would.
    pub fn code_of(failure: Failure) -> i64 {
        -32000 - i64::from(failure.code())
    }

    /// The failure class of an error reply, for the client's exit code: a class's own code
    /// maps back to it, the protocol's codes are usage errors.
    pub fn failure(&self) -> Failure {
        match self.code {
            -32001 => Failure::Usage,
            -32002 => Failure::Rejected,
            -32003 => Failure::Timeout,
            -32004 => Failure::Store,
            -32005 => Failure::Internal,
            _ => Failure::Usage,
        }
    }

    fn to_json(&self) -> Json {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        error
    }
}

/// A request as the daemon read it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    pub(crate) id: Json,
    pub(crate) method: String,
    pub(crate) params: Json,
}

/// Parses one request line. On error, the id to answer with (`null` if unknown) and why.
pub(crate) fn parse_request(line: &[u8]) -> Result<Request, Box<(Json, RpcError)>> {
    let json: Json = serde_json::from_slice(line).map_err(|e| {
        Box::new((
            Json::Null,
            RpcError::new(PARSE_ERROR, format!("not JSON: {e}")),
        ))
    })?;
    let Json::Object(mut object) = json else {
        return Err(Box::new((
            Json::Null,
            invalid("a request is a JSON object"),
        )));
    };
    let id = object.remove("id").unwrap_or(Json::Null);
    if !matches!(id, Json::Number(_) | Json::String(_)) {
        return Err(Box::new((
            Json::Null,
            invalid("a request has an id, a number or string"),
        )));
    }
    if object.get("jsonrpc") != Some(&Json::from("2.0")) {
        return Err(Box::new((
            id,
            invalid(r#"a request says "jsonrpc": "2.0""#),
        )));
    }
    let method = match object.remove("method") {
        Some(Json::String(method)) => method,
        _ => {
            return Err(Box::new((
                id,
                invalid("a request names its method, a string"),
            )));
        }
    };
    let params = match object.remove("params") {
        None | Some(Json::Null) => Json::Object(serde_json::Map::new()),
        Some(params @ Json::Object(_)) => params,
        Some(_) => return Err(Box::new((id, RpcError::params("params are a JSON object")))),
    };
    Ok(Request { id, method, params })
}

fn invalid(message: &str) -> RpcError {
    RpcError::new(INVALID_REQUEST, message)
}

/// A request line, with `params` an object.
pub(crate) fn request_line(id: u64, method: &str, params: Json) -> String {
    let mut line =
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
    line.push('\n');
    line
}

/// A reply line for `id`.
pub(crate) fn reply_line(id: Json, res: Result<Json, RpcError>) -> String {
    let mut line = match res {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error.to_json()}),
    }
    .to_string();
    line.push('\n');
    line
}

/// Parses a reply line: the result, or the error it carries.
pub(crate) fn parse_reply(line: &[u8]) -> Result<Result<Json, RpcError>, String> {
    let mut json: Json =
        serde_json::from_slice(line).map_err(|e| format!("a reply that is not JSON: {e}"))?;
    if let Some(result) = json.get_mut("result") {
        return Ok(Ok(result.take()));
    }
    let Some(error) = json.get_mut("error") else {
        return Err("a reply with neither result nor error".to_owned());
    };
    let code = error.get("code").and_then(Json::as_i64).unwrap_or(0);
    let message = error
        .get("message")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_owned();
    let data = error.get_mut("data").map(Json::take);
    Ok(Err(RpcError {
        code,
        message,
        data,
    }))
}

/// What [`LineReader::next_line`] read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A whole line, without its newline.
    Text(Vec<u8>),
    /// A line longer than the cap, skipped to its end.
    TooLong,
    /// The peer closed the connection (a partial last line is dropped).
    End,
}

/// Reads lines of at most `max` bytes from a stream. It keeps its state across errors, so
/// a read timeout (used to notice the daemon stopping) loses nothing.
#[derive(Debug)]
pub(crate) struct LineReader {
    max: usize,
    /// Bytes read after the last line returned.
    pending: Vec<u8>,
    /// The line being read is over the cap: drop bytes up to its newline.
    skipping: bool,
}

impl LineReader {
    pub(crate) fn new(max: usize) -> Self {
        LineReader {
            max,
            pending: Vec::new(),
            skipping: false,
        }
    }

    /// The next line. Errors are the stream's (a timeout among them); calling again goes on
    /// where it stopped.
    pub(crate) fn next_line(&mut self, stream: &mut impl Read) -> io::Result<Line> {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(at) = self.pending.iter().position(|&b| b == b'\n') {
                let rest = self.pending.split_off(at + 1);
                let mut line = std::mem::replace(&mut self.pending, rest);
                line.pop();
                if std::mem::take(&mut self.skipping) || line.len() > self.max {
                    return Ok(Line::TooLong);
                }
                return Ok(Line::Text(line));
            }
            if self.pending.len() > self.max {
                self.skipping = true;
            }
            if self.skipping {
                self.pending.clear();
            }
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(Line::End);
            }
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }
}
