//! The crank log file: one JSON line per record, rotation at the cap.

use std::fs;

use ocap_kernel::{
    CrankHash, CrankOutcome, CrankRecord, EndpointId, Message, RunQueueItem, Syscall, VRef, Value,
    VatId,
};

use super::{CrankLogOptions, open_crank_log};

fn record(crank: u64) -> CrankRecord {
    CrankRecord {
        crank,
        item: RunQueueItem::BringOutYourDead {
            endpoint: EndpointId::Vat(VatId(1)),
        },
        outcome: CrankOutcome::Delivered,
        syscalls: vec![Syscall::DropImports(vec![vref("o-1")])],
        host_inputs: Vec::new(),
        crank_hash: CrankHash([crank as u8; 32]),
    }
}

fn vref(text: &str) -> VRef {
    text.parse().unwrap()
}

#[test]
fn a_send_syscall_is_logged_with_its_target_arguments_and_result() {
    let mut send = record(1);
    let args = vec![Value::Slot {
        index: 0,
        iface: None,
    }];
    send.syscalls = vec![Syscall::Send {
        target: vref("o-2"),
        message: Message::new("hello", args, vec![vref("o+3")], Some(vref("p+4"))),
    }];
    let json = super::record_json(&send);
    let syscall = &json["syscalls"][0];
    assert_eq!(syscall["type"], "send");
    assert_eq!(syscall["target"], "o-2");
    assert_eq!(syscall["result"], "p+4");
    assert_eq!(syscall["methargs"]["slots"][0], "o+3");
    assert_eq!(syscall["methargs"]["body"][0], "hello");
}

#[test]
fn each_record_is_one_json_line_and_the_file_rotates_at_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cranks.log");
    let options = CrankLogOptions {
        path: path.clone(),
        max_bytes: 1000,
    };
    let (sink, writer) = open_crank_log(&options).unwrap();
    for crank in 1..=40 {
        sink(&record(crank));
    }
    drop(sink);
    writer.finish(&path).unwrap();
    let current = fs::read_to_string(&path).unwrap();
    let rotated = fs::read_to_string(dir.path().join("cranks.log.1")).unwrap();
    assert!(current.len() <= 1000 && rotated.len() <= 1000);
    let numbers: Vec<u64> = rotated
        .lines()
        .chain(current.lines())
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(json["outcome"], "delivered");
            assert_eq!(json["syscalls"][0]["type"], "dropImports");
            assert_eq!(json["syscalls"][0]["vrefs"][0], "o-1");
            assert_eq!(json["crankHash"].as_str().unwrap().len(), 64);
            json["crank"].as_u64().unwrap()
        })
        .collect();
    // Only the newest records are kept, in order, with none missing at the end.
    assert_eq!(numbers.last(), Some(&40));
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    assert!(numbers.len() < 40);
}
