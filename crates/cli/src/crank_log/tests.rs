//! The crank log file: one JSON line per record, rotation at the cap.

use std::fs;

use ocap_kernel::{CrankHash, CrankOutcome, CrankRecord, EndpointId, RunQueueItem, VatId};

use super::{CrankLogOptions, open_crank_log};

fn record(crank: u64) -> CrankRecord {
    CrankRecord {
        crank,
        item: RunQueueItem::BringOutYourDead {
            endpoint: EndpointId::Vat(VatId(1)),
        },
        outcome: CrankOutcome::Delivered,
        syscalls: vec!["dropImports"],
        host_inputs: Vec::new(),
        crank_hash: CrankHash([crank as u8; 32]),
    }
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
            assert_eq!(json["syscalls"][0], "dropImports");
            assert_eq!(json["crankHash"].as_str().unwrap().len(), 64);
            json["crank"].as_u64().unwrap()
        })
        .collect();
    // Only the newest records are kept, in order, with none missing at the end.
    assert_eq!(numbers.last(), Some(&40));
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    assert!(numbers.len() < 40);
}
