//! Reading and parsing cluster files: the size limit and the refused fields.

use std::path::Path;

use super::{CliError, MAX_CLUSTER_FILE, parse_cluster, read_cluster_file};

#[test]
fn a_cluster_file_over_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.json");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(MAX_CLUSTER_FILE + 1).unwrap();
    assert!(matches!(
        read_cluster_file(&path),
        Err(CliError::TooLarge {
            max: MAX_CLUSTER_FILE,
            ..
        })
    ));
    // A file exactly at the limit is read (and then is not JSON).
    file.set_len(MAX_CLUSTER_FILE).unwrap();
    assert_eq!(
        read_cluster_file(&path).unwrap().len() as u64,
        MAX_CLUSTER_FILE
    );
}

#[test]
fn an_endless_source_is_read_only_up_to_the_limit() {
    let endless = Path::new("/dev/zero");
    if endless.exists() {
        assert!(matches!(
            read_cluster_file(endless),
            Err(CliError::TooLarge { .. })
        ));
    }
}

#[test]
fn unknown_cluster_fields_are_named_in_the_error() {
    let err =
        parse_cluster(r#"{"bootstrap": "a", "vats": {"a": {"bundleName": "bob"}}, "vat": 1}"#)
            .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("invalid cluster config: unknown field `vat`"),
        "{text}"
    );
    let ok = r#"{"bootstrap": "a", "vats": {"a": {"bundleName": "bob"}}, "bundles": {"x": 1}}"#;
    assert!(parse_cluster(ok).is_ok());
}

#[test]
fn results_render_as_words_or_as_json() {
    use std::collections::BTreeMap;

    use ocap_kernel::{CapData, KRef, Value};

    use super::render;

    let text = CapData::<KRef>::data(&Value::str("alice got: hello"));
    assert_eq!(render(&text), "alice got: hello");
    let record = Value::Record(BTreeMap::from([
        ("greeting".to_owned(), Value::str("hi")),
        (
            "counter".to_owned(),
            Value::Slot {
                index: 0,
                iface: Some("Counter".to_owned()),
            },
        ),
        (
            "n".to_owned(),
            Value::List(vec![Value::Int(1), Value::Undefined]),
        ),
    ]));
    let kref: KRef = "ko3".parse().unwrap();
    assert_eq!(
        render(&CapData::new(&record, vec![kref])),
        r#"{"counter":{"@slot":[0,"Counter"]},"greeting":"hi","n":[1,{"@undefined":null}]}"#
    );
    assert_eq!(render(&CapData::<KRef>::data(&Value::Int(42))), "42");
}

#[test]
fn bundle_paths_are_made_absolute_against_the_cluster_files_folder() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("my-vat");
    std::fs::create_dir_all(folder.join("target/release")).unwrap();
    std::fs::write(folder.join("target/release/my-vat"), b"").unwrap();
    let cluster = folder.join("cluster.json");
    std::fs::write(
        &cluster,
        r#"{"bootstrap": "a", "vats": {
            "a": {"bundlePath": "./target/release/my-vat"},
            "b": {"bundlePath": "../elsewhere/missing-vat"},
            "c": {"bundlePath": "/opt/vats/c"},
            "d": {"bundleName": "bob"}}}"#,
    )
    .unwrap();
    let json = super::read_cluster_json(&cluster).unwrap();
    let path_of = |vat: &str| json["vats"][vat]["bundlePath"].as_str().unwrap().to_owned();
    let real = folder.canonicalize().unwrap();
    // An existing executable by its real path; a missing one by the absolute path named.
    assert_eq!(
        path_of("a"),
        real.join("target/release/my-vat").to_str().unwrap()
    );
    assert!(Path::new(&path_of("b")).is_absolute(), "{}", path_of("b"));
    assert!(
        path_of("b").ends_with("elsewhere/missing-vat"),
        "{}",
        path_of("b")
    );
    assert_eq!(
        path_of("c"),
        "/opt/vats/c",
        "absolute paths stay as written"
    );
    assert!(json["vats"]["d"].get("bundlePath").is_none());
    let config = crate::parse_cluster_json(&json).unwrap();
    assert!(config.vat("a").unwrap().executable().is_some());
}
