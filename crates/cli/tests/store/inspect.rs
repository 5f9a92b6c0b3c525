//! `ocap inspect` shows what `ocap run` left in the store, as tables and as JSON.

use serde_json::Value as Json;

use super::{example_store, ocap};

fn inspect_json(store: &std::path::Path, extra: &[&str]) -> Json {
    let mut args = vec!["inspect", "--json", "--store", store.to_str().unwrap()];
    args.extend(extra);
    let run = ocap(&args);
    run.assert_code(0);
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn inspect_shows_the_example_clusters_vats_objects_and_promises() {
    let (_dir, store) = example_store();
    let run = ocap(["inspect", "--store", store.to_str().unwrap()]);
    run.assert_code(0);
    let out = &run.stdout;
    for expected in [
        "vats (2)",
        "alice",
        "bob",
        "subclusters (1)",
        "alice=v1 bob=v2",
        "objects (2)",
        "promises (1)",
        "fulfilled",
        "c-lists (3)",
        "run queue (0)",
        "sdk.idCounters",
    ] {
        assert!(out.contains(expected), "no {expected:?} in:\n{out}");
    }
}

#[test]
fn inspect_json_has_every_section_with_the_expected_fields() {
    let (_dir, store) = example_store();
    let json = inspect_json(&store, &[]);
    let vats = json["vats"]["rows"].as_array().unwrap();
    let names: Vec<&str> = vats.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(vats[0]["id"], "v1");
    assert_eq!(vats[0]["subcluster"], "s1");
    assert_eq!(json["vats"]["more"], false);
    assert_eq!(json["subclusters"]["rows"][0]["vats"]["bob"], "v2");

    let objects = json["objects"]["rows"].as_array().unwrap();
    assert_eq!(objects.len(), 2);
    for object in objects {
        for field in [
            "id",
            "owner",
            "reachable",
            "recognizable",
            "pins",
            "revoked",
        ] {
            assert!(object.get(field).is_some(), "no {field} in {object}");
        }
    }
    assert_eq!(objects[0]["owner"], "v1");
    assert_eq!(objects[0]["revoked"], false);

    // The bootstrap result: fulfilled with the greeting, pinned for the host.
    let promise = &json["promises"]["rows"][0];
    assert_eq!(promise["state"], "fulfilled");
    assert_eq!(
        promise["value"]["body"],
        "alice got: hello, alice, from bob"
    );
    assert_eq!(promise["pins"], 1);
    assert_eq!(promise["queueLength"], 0);

    let clists = json["clists"]["rows"].as_array().unwrap();
    assert!(
        clists
            .iter()
            .any(|c| c["endpoint"] == "v2" && c["vref"] == "o+0")
    );
    assert_eq!(json["runQueue"]["rows"].as_array().unwrap().len(), 0);
    assert_eq!(json["vatStores"]["rows"][0]["key"], "sdk.idCounters");
}

#[test]
fn inspect_limits_each_section_and_shows_only_the_sections_asked_for() {
    let (_dir, store) = example_store();
    let json = inspect_json(&store, &["--limit", "1", "objects", "clists"]);
    let sections: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(sections, ["objects", "clists"]);
    assert_eq!(json["objects"]["rows"].as_array().unwrap().len(), 1);
    assert_eq!(json["objects"]["more"], true);
    assert_eq!(json["clists"]["rows"].as_array().unwrap().len(), 1);
    assert_eq!(json["clists"]["more"], true);
}

#[test]
fn inspect_of_a_missing_store_is_a_usage_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing");
    let run = ocap(["inspect", "--store", missing.to_str().unwrap()]);
    run.assert_code(1);
    assert!(run.stderr.contains("no store here"), "{}", run.stderr);
    assert!(!missing.exists());
}
