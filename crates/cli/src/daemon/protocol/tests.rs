//! The wire format alone: line reading under the cap, request parsing, reply round trips.

use std::io::Cursor;

use serde_json::json;

use super::{Line, LineReader, RpcError, parse_reply, parse_request, reply_line};
use crate::Failure;

fn lines(input: &[u8], max: usize) -> Vec<Line> {
    let mut reader = LineReader::new(max);
    let mut stream = Cursor::new(input.to_vec());
    let mut out = Vec::new();
    loop {
        let line = reader.next_line(&mut stream).unwrap();
        let end = line == Line::End;
        out.push(line);
        if end {
            return out;
        }
    }
}

#[test]
fn a_line_over_the_cap_is_skipped_and_the_next_one_read() {
    let mut input = b"ok\n".to_vec();
    input.extend(vec![b'x'; 100_000]);
    input.extend(b"\nafter\n12345\npartial");
    assert_eq!(
        lines(&input, 5),
        vec![
            Line::Text(b"ok".to_vec()),
            Line::TooLong,
            Line::Text(b"after".to_vec()),
            Line::Text(b"12345".to_vec()),
            Line::End,
        ]
    );
}

#[test]
fn a_request_needs_an_id_a_method_and_the_version_tag() {
    let ok = parse_request(br#"{"jsonrpc":"2.0","id":"a","method":"vats"}"#).unwrap();
    assert_eq!(
        (ok.id, ok.method, ok.params),
        (json!("a"), "vats".to_owned(), json!({}))
    );
    let code = |line: &[u8]| parse_request(line).unwrap_err().1.code;
    assert_eq!(code(b"{"), -32700);
    assert_eq!(code(br#"{"jsonrpc":"2.0","method":"vats"}"#), -32600);
    assert_eq!(code(br#"{"id":1,"method":"vats"}"#), -32600);
    assert_eq!(code(br#"{"jsonrpc":"2.0","id":1,"method":7}"#), -32600);
    assert_eq!(
        code(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#),
        -32602
    );
}

#[test]
fn error_codes_carry_the_failure_class_both_ways() {
    for failure in [
        Failure::Usage,
        Failure::Rejected,
        Failure::Timeout,
        Failure::Store,
        Failure::Internal,
    ] {
        let error = RpcError::new(RpcError::code_of(failure), "m");
        let line = reply_line(json!(3), Err(error.clone()));
        let back = parse_reply(line.trim_end().as_bytes())
            .unwrap()
            .unwrap_err();
        assert_eq!(back, error);
        assert_eq!(back.failure(), failure);
    }
}
