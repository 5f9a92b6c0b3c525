//! Clients that misbehave: each gets an error reply (or is simply dropped), and the daemon
//! serves on, to them and to the next client.

use serde_json::json;

use super::{Client, Place};

/// The daemon still answers a fresh client.
#[track_caller]
fn still_serving(place: &Place) {
    let mut client = Client::connect(&place.store);
    let status = client.call("status", json!({}));
    assert!(status["result"]["pid"].is_u64(), "{status}");
}

#[test]
fn malformed_json_gets_a_parse_error_and_the_connection_serves_on() {
    let place = Place::new();
    let _served = place.serve();
    let mut client = Client::connect(&place.store);
    client.send_raw(b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \n");
    let reply = client.reply();
    assert_eq!(reply["error"]["code"], -32700, "{reply}");
    assert_eq!(reply["id"], json!(null));
    client.send_raw(b"[1, 2]\n");
    assert_eq!(client.reply()["error"]["code"], -32600);
    client.send_raw(b"{\"jsonrpc\": \"2.0\", \"method\": \"status\"}\n");
    assert_eq!(client.reply()["error"]["code"], -32600);
    let reply = client.call("status", json!({}));
    assert!(reply["result"]["pid"].is_u64(), "{reply}");
}

#[test]
fn the_protocol_version_is_checked_before_anything_else() {
    let place = Place::new();
    let _served = place.serve();
    let mut client = Client::try_connect(&place.store).unwrap();
    let reply = client.call("status", json!({}));
    assert_eq!(reply["error"]["code"], -32010, "{reply}");
    let reply = client.call("hello", json!({"protocol": 2}));
    assert_eq!(reply["error"]["code"], -32010, "{reply}");
    assert_eq!(reply["error"]["data"]["supported"], json!([1]));
    let reply = client.call("hello", json!({"protocol": 1}));
    assert_eq!(reply["result"]["protocol"], 1, "{reply}");
    assert!(client.call("status", json!({}))["result"].is_object());
}

#[test]
fn an_unknown_method_gets_method_not_found() {
    let place = Place::new();
    let _served = place.serve();
    let mut client = Client::connect(&place.store);
    let reply = client.call("launchMissiles", json!({}));
    assert_eq!(reply["error"]["code"], -32601, "{reply}");
    let reply = client.call("send", json!({"method": "x"}));
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    still_serving(&place);
}

#[test]
fn forged_krefs_are_refused_or_splat() {
    let place = Place::new();
    let _served = place.serve();
    place.launch_counter();
    let mut client = Client::connect(&place.store);
    // Not a kref at all, or not a kernel one: refused as the caller's mistake.
    for target in ["x1", "o+0", "ko", ""] {
        let reply = client.call("send", json!({"target": target, "method": "resume"}));
        assert_eq!(reply["error"]["code"], -32001, "{target}: {reply}");
    }
    // A kref naming nothing: the message splats, its result rejected.
    let reply = client.call(
        "send",
        json!({"target": "ko999", "method": "resume", "wait": true}),
    );
    assert_eq!(reply["result"]["status"], "rejected", "{reply}");
    // A slot naming nothing is refused before anything is queued.
    let reply = client.call(
        "send",
        json!({"target": "ko1", "method": "resume",
               "args": [{"@slot": [0, null]}], "slots": ["ko999"]}),
    );
    assert_eq!(reply["error"]["code"], -32001, "{reply}");
    let reply = client.call("revoke", json!({"kref": "ko999"}));
    assert_eq!(reply["error"]["code"], -32001, "{reply}");
    let reply = client.call("release", json!({"kref": "kp999"}));
    assert_eq!(reply["result"]["released"], false, "{reply}");
    let reply = client.call("terminateVat", json!({"vat": "v99"}));
    assert_eq!(reply["error"]["code"], -32001, "{reply}");
    let run = place.ocap(&["send", "ko1", "resume", "--wait"]);
    run.assert_code(0);
    assert!(
        run.stdout.starts_with("Counter incremented to: 2"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_huge_line_gets_an_error_and_the_connection_serves_on() {
    let place = Place::new();
    let _served = place.serve();
    let mut client = Client::connect(&place.store);
    let mut huge = vec![b'x'; 3 << 20];
    huge.push(b'\n');
    // Written on a thread of its own: the daemon answers as soon as it is past the cap.
    let mut writer = client.stream.try_clone().unwrap();
    let write = std::thread::spawn(move || {
        std::io::Write::write_all(&mut writer, &huge).unwrap();
    });
    let reply = client.reply();
    write.join().unwrap();
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than 1048576"),
        "{reply}"
    );
    let reply = client.call("status", json!({}));
    assert!(reply["result"]["pid"].is_u64(), "{reply}");
}

#[test]
fn a_client_leaving_mid_request_harms_nothing() {
    let place = Place::new();
    let _served = place.serve();
    let root = place.launch_counter();
    // Half a line, then gone.
    let mut client = Client::connect(&place.store);
    client.send_raw(br#"{"jsonrpc": "2.0", "id": 1, "method": "sen"#);
    drop(client);
    // A whole request whose answer nobody reads: the message is still delivered.
    let mut client = Client::connect(&place.store);
    let request = json!({"jsonrpc": "2.0", "id": 9, "method": "send",
                         "params": {"target": root, "method": "resume", "wait": true}});
    client.send_raw(format!("{request}\n").as_bytes());
    drop(client);
    still_serving(&place);
    // Its message is delivered all the same: the count reaches 2 without us.
    let started = std::time::Instant::now();
    let mut client = Client::connect(&place.store);
    loop {
        let reply = client.call(
            "send",
            json!({"target": root, "method": "count", "wait": true}),
        );
        if reply["result"]["value"]["body"] == 2 {
            break;
        }
        assert!(started.elapsed() < super::DEADLINE, "{reply}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let run = place.ocap(&["send", &root, "resume", "--wait"]);
    run.assert_code(0);
    assert!(
        run.stdout.starts_with("Counter incremented to: 3"),
        "{}",
        run.stdout
    );
}
