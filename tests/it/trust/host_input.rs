//! What a host hands the kernel is checked before anything is allocated, and a host's own
//! broken code cannot hurt a vat.

use super::*;

/// A list nested `depth` levels around `null`, built without recursion.
fn nested(depth: usize) -> Value {
    let mut value = Value::Null;
    for _ in 0..depth {
        value = Value::List(vec![value]);
    }
    value
}

#[test]
fn a_host_argument_nested_too_deep_is_refused_and_the_receiver_lives() {
    let (test, vat, root) = one_probe();
    // Two levels go to `[method, args]`: this is the deepest argument a receiver decodes.
    let deepest = nested(MAX_DEPTH - 2);
    assert_eq!(
        call(&test.kernel, root, "echo", vec![deepest.clone()]),
        Ok(deepest)
    );
    let err = test
        .kernel
        .queue_message(root, "echo", vec![nested(MAX_DEPTH - 1)])
        .unwrap_err();
    assert!(
        matches!(
            err,
            KernelError::Input(InputError::Args(MethargsError::TooDeep(_)))
        ),
        "{err:?}"
    );
    assert_alive(&test, vat, root);
}

#[test]
fn a_host_argument_with_a_slot_index_past_its_slots_is_refused() {
    let (test, vat, root) = one_probe();
    let arg = Value::List(vec![Value::Slot {
        index: 1,
        iface: None,
    }]);
    let err = test
        .kernel
        .queue_message_with_slots(root, "echo", vec![arg], vec![root])
        .unwrap_err();
    let expected = MethargsError::Slot { index: 1, slots: 1 };
    assert!(
        matches!(&err, KernelError::Input(InputError::Args(e)) if *e == expected),
        "{err:?}"
    );
    assert_alive(&test, vat, root);
}

#[test]
fn a_dangling_kref_from_the_host_is_refused() {
    let (test, vat, root) = one_probe();
    let before = test.kernel.queue_message(root, "data", vec![]).unwrap();
    for dangling in ["ko8888", "kp9999"] {
        let dangling: KRef = dangling.parse().unwrap();
        let arg = Value::Slot {
            index: 0,
            iface: None,
        };
        let handle = test
            .kernel
            .queue_message_with_slots(root, "echo", vec![arg], vec![dangling])
            .unwrap();
        let err = handle.wait(WAIT).unwrap_err();
        assert!(
            matches!(&err, KernelError::Input(InputError::Unknown { kref }) if *kref == dangling),
            "{err:?}"
        );
        assert!(matches!(handle.promise(), Err(KernelError::Input(_))));
        let imported = test
            .kernel
            .inspect(move |s| s.clist_entry(EndpointId::Vat(vat), dangling))
            .unwrap()
            .unwrap();
        assert_eq!(imported, None, "{dangling} is in the vat's c-list");
    }
    // Nothing was allocated for the refused messages: the next result promise follows
    // the last one made.
    let after = test.kernel.queue_message(root, "data", vec![]).unwrap();
    assert_eq!(after.promise().unwrap().0, before.promise().unwrap().0 + 1);
    assert_alive(&test, vat, root);
}

/// Host messages queued back to back go into one transaction when the kernel thread finds
/// them waiting together; a refused one among them leaves the others queued and nothing of
/// its own behind (refusal happens before anything is written, so no savepoint is needed).
#[test]
fn a_refused_host_message_leaves_the_rest_of_its_batch_queued() {
    let (test, vat, root) = one_probe();
    let dangling: KRef = "ko8888".parse().unwrap();
    let slot = Value::Slot {
        index: 0,
        iface: None,
    };
    for _ in 0..3 {
        let first = test.kernel.queue_message(root, "data", vec![]).unwrap();
        let refused = test
            .kernel
            .queue_message_with_slots(root, "echo", vec![slot.clone()], vec![dangling])
            .unwrap();
        let last = test.kernel.queue_message(root, "data", vec![]).unwrap();
        let err = refused.wait(WAIT).unwrap_err();
        assert!(
            matches!(&err, KernelError::Input(InputError::Unknown { kref }) if *kref == dangling),
            "{err:?}"
        );
        // Nothing was allocated for the refused message between the two others.
        assert_eq!(last.promise().unwrap().0, first.promise().unwrap().0 + 1);
        first.wait(WAIT).unwrap();
        last.wait(WAIT).unwrap();
    }
    test.assert_refcounts_consistent();
    assert_alive(&test, vat, root);
}

#[test]
fn a_host_argument_of_any_depth_cannot_overflow_the_kernel_stack() {
    let (test, vat, root) = one_probe();
    let err = test
        .kernel
        .queue_message(root, "echo", vec![nested(1_000_000)])
        .unwrap_err();
    assert!(
        matches!(
            err,
            KernelError::Input(InputError::Args(MethargsError::TooDeep(_)))
        ),
        "{err:?}"
    );
    assert_alive(&test, vat, root);
}

#[test]
fn cluster_parameters_of_any_depth_are_refused() {
    let test = TestKernel::new();
    let mut config = cluster(&[("a", "probe")]);
    let deep = Value::Record([("deep".to_owned(), nested(1_000_000))].into());
    config.vats.0[0].1.parameters = deep;
    let err = test.kernel.launch_subcluster(&config).unwrap_err();
    assert!(
        matches!(&err, KernelError::Config(ConfigError::DeepParameters { vat }) if vat == "a"),
        "{err:?}"
    );
    assert!(test.kernel.vat_ids().unwrap().is_empty());
    // The host's own copy is the host's to tear down.
    std::mem::take(&mut config.vats.0[0].1.parameters).dispose();
}

#[test]
fn unknown_cluster_fields_are_refused() {
    let text = r#"{"bootstrap": "a", "vats": {"a": {"bundleName": "bob"}}, "vatz": {}}"#;
    let err = ocap_cli::parse_cluster(text).unwrap_err();
    assert!(
        matches!(&err, CliError::Parse(text) if text.contains("unknown field `vatz`")),
        "{err:?}"
    );
    // `bundles` is in the spec's cluster config (accepted, unused).
    let text = r#"{"bootstrap": "a", "vats": {"a": {"bundleName": "bob"}}, "bundles": {}}"#;
    assert!(ocap_cli::parse_cluster(text).is_ok());
}

#[test]
fn duplicate_vat_names_are_refused() {
    let test = TestKernel::new();
    let mut config = cluster(&[("a", "probe"), ("b", "probe")]);
    config.vats.0[1].0 = "a".to_owned();
    let err = test.try_launch(&config).unwrap_err();
    assert!(
        matches!(&err, KernelError::Config(ConfigError::DuplicateVat { name }) if name == "a"),
        "{err:?}"
    );
    assert!(test.kernel.vat_ids().unwrap().is_empty());
}

#[test]
fn a_cluster_file_over_the_size_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.json");
    let file = std::fs::File::create(&huge).unwrap();
    file.set_len(ocap_cli::MAX_CLUSTER_FILE + 1).unwrap();
    let mut paths = vec![huge];
    // An endless source is read up to the limit, not until memory runs out.
    paths.extend(["/dev/urandom".into(), "/dev/zero".into()]);
    for path in paths.into_iter().filter(|p| p.exists()) {
        let err = ocap_cli::run_cluster(&path, &ocap_cli::RunOptions::default()).unwrap_err();
        assert!(
            matches!(err, CliError::TooLarge { .. }),
            "{path:?}: {err:?}"
        );
    }
}

/// A host message larger than a worker frame could carry is the host's error; before, it
/// reached the receiving worker vat and terminated it.
#[test]
fn a_host_message_too_large_to_deliver_is_refused_and_the_receiver_lives() {
    let (test, vat, root) = one_probe();
    let big = Value::str("x".repeat(ocap_kernel::MAX_HOST_MESSAGE_BYTES + 1));
    let refused = test
        .kernel
        .queue_message(root, "echo", vec![big])
        .unwrap()
        .wait(WAIT);
    assert!(
        matches!(
            refused,
            Err(KernelError::Input(InputError::TooLarge { .. }))
        ),
        "the oversized message was not refused as the host's error"
    );
    assert_alive(&test, vat, root);
    // Just under the limit is delivered (`data` ignores its arguments).
    let fits = Value::str("x".repeat(ocap_kernel::MAX_HOST_MESSAGE_BYTES - 64));
    assert_eq!(
        call(&test.kernel, root, "data", vec![fits]),
        Ok(Value::Int(42))
    );
}

#[test]
fn a_panicking_host_log_sink_does_not_hurt_the_vat_that_logged() {
    let mut config = config();
    config.log_sink = Some(std::sync::Arc::new(|_, _: &ocap_types::VatLog| {
        panic!("the host's log sink is broken")
    }));
    let test = TestKernel::with_config(config);
    let launched = test.launch(&cluster(&[("probe", "probe")]));
    // `sleep` logs a line before it answers.
    assert_eq!(
        call(&test.kernel, launched.root, "sleep", vec![Value::Int(0)]),
        Ok(Value::str("slept"))
    );
    assert_eq!(test.kernel.vat_ids().unwrap().len(), 1);
    assert_eq!(
        call(&test.kernel, launched.root, "data", vec![]),
        Ok(Value::Int(42))
    );
}
