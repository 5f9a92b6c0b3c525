//! A daemon's life: started in the background, used, stopped; killed and started again with
//! its state; refused when another serves the store; and the same commands offline.

use std::fs;

use serde_json::{Value as Json, json};

use super::{Background, Client, Place, ocap_in, record};

#[test]
fn daemon_start_launch_send_inspect_stop() {
    let place = Place::new();
    let run = place.ocap(&["daemon", "start"]);
    run.assert_code(0);
    let pid = record(&place.store).unwrap()["pid"].as_i64().unwrap();
    let _guard = Background {
        pid: i32::try_from(pid).unwrap(),
    };
    assert!(
        run.stdout.contains(&format!("process {pid}")),
        "{}",
        run.stdout
    );

    let root = place.launch_counter();
    let run = place.ocap(&["send", &root, "resume", "--wait"]);
    run.assert_code(0);
    let mut lines = run.stdout.lines();
    assert_eq!(lines.next(), Some("Counter incremented to: 2"));
    assert!(
        lines.next().unwrap().starts_with("result: kp"),
        "{}",
        run.stdout
    );

    let run = place.ocap(&["vats", "--json"]);
    run.assert_code(0);
    let vats = run.json();
    assert_eq!(vats[0]["name"], "counter");
    assert_eq!(vats[0]["code"], "persistence-counter");

    // Inspect and check go through the daemon, which holds the store's lock.
    let run = place.ocap(&["inspect", "--json", "objects", "subclusters"]);
    run.assert_code(0);
    let inspected = run.json();
    assert_eq!(inspected["objects"]["rows"][0]["id"], root.as_str());
    assert_eq!(inspected["subclusters"]["rows"][0]["vats"]["counter"], "v1");
    let run = place.ocap(&["check"]);
    run.assert_code(0);
    assert!(run.stdout.contains("audit: consistent"), "{}", run.stdout);
    // The daemon had a child walk every page of its store, between two cranks.
    let run = place.ocap(&["check", "--json"]);
    run.assert_code(0);
    let checked = run.json();
    assert_eq!(checked["ok"], true);
    assert!(
        checked["pages"]["entries"].as_u64().unwrap() > 0,
        "{checked}"
    );
    assert!(checked["pages"]["pages"].as_u64().unwrap() > 0, "{checked}");

    let run = place.ocap(&["daemon", "status", "--json"]);
    run.assert_code(0);
    let status = run.json();
    assert_eq!(status["pid"], pid);
    assert_eq!(status["runQueueLength"], 0);
    assert!(status["crankCount"].as_u64().unwrap() >= 2, "{status}");
    assert_eq!(status["vats"][0]["id"], "v1");
    // Counters since the daemon's kernel opened: bootstrap and one `resume`, each with one
    // syscall (its result); nothing denied; the limits beside them.
    let vat = &status["vats"][0];
    assert_eq!(
        (&vat["deliveries"], &vat["syscalls"], &vat["denials"]),
        (&json!(2), &json!(2), &json!(0)),
        "{vat}"
    );
    assert!(vat["vatstoreBytes"].as_u64().unwrap() > 0, "{vat}");
    assert_eq!(vat["queuedMessages"], 0);
    assert_eq!(vat["limits"]["queuedMessages"], 1_000_000);
    let run = place.ocap(&["inspect", "--json", "vats"]);
    run.assert_code(0);
    assert_eq!(run.json()["vats"]["rows"][0]["deliveries"], 2);
    let run = place.ocap(&["daemon", "status"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("v1 counter: 2 deliveries, 2 syscalls"),
        "{}",
        run.stdout
    );

    place.ocap(&["daemon", "stop"]).assert_code(0);
    // Stopped cleanly: record and socket gone, the store's lock free for a tool.
    assert!(record(&place.store).is_none());
    assert!(!place.store.join("control/ocap.sock").exists());
    place.ocap(&["daemon", "status"]).assert_code(1);
    let run = place.ocap(&["inspect", "--json", "vats"]);
    run.assert_code(0);
    assert_eq!(run.json()["vats"]["rows"][0]["name"], "counter");
    // Offline, no kernel counts: unknown, not zero.
    assert!(run.json()["vats"]["rows"][0]["deliveries"].is_null());
}

#[test]
fn killed_daemon_starts_again_with_its_state() {
    let place = Place::new();
    let served = place.serve();
    let root = place.launch_counter();
    let run = place.ocap(&["send", &root, "resume", "--wait"]);
    run.assert_code(0);
    assert!(
        run.stdout.starts_with("Counter incremented to: 2"),
        "{}",
        run.stdout
    );
    served.kill();

    // The dead daemon's record and socket are left behind; nobody answers there.
    assert!(record(&place.store).is_some());
    assert!(Client::try_connect(&place.store).is_none());
    let served = place.serve();
    let run = place.ocap(&["send", &root, "resume", "--wait"]);
    run.assert_code(0);
    assert!(
        run.stdout.starts_with("Counter incremented to: 3"),
        "{}",
        run.stdout
    );
    let run = place.ocap(&["subclusters", "--json"]);
    run.assert_code(0);
    assert_eq!(run.json()[0]["vats"][0]["name"], "counter");
    place.ocap(&["daemon", "stop"]).assert_code(0);
    assert_eq!(served.wait_exit(), Some(0));
}

#[test]
fn sigterm_and_sigint_stop_a_daemon_as_shutdown_does() {
    let place = Place::new();
    let root = {
        let served = place.serve();
        let root = place.launch_counter();
        place
            .ocap(&["send", &root, "resume", "--wait"])
            .assert_code(0);
        served.signal(rustix::process::Signal::TERM);
        assert_eq!(served.wait_exit(), Some(0));
        root
    };
    // Stopped cleanly: record and socket gone, so no stale daemon is looked for.
    assert!(record(&place.store).is_none());
    assert!(!place.store.join("control/ocap.sock").exists());
    let served = place.serve();
    let run = place.ocap(&["send", &root, "resume", "--wait"]);
    run.assert_code(0);
    assert!(
        run.stdout.starts_with("Counter incremented to: 3"),
        "{}",
        run.stdout
    );
    served.signal(rustix::process::Signal::INT);
    assert_eq!(served.wait_exit(), Some(0));
    assert!(record(&place.store).is_none());
}

#[test]
fn a_second_daemon_on_a_store_is_refused() {
    let place = Place::new();
    let served = place.serve();
    let run = place.ocap(&["daemon", "start"]);
    run.assert_code(4);
    let pid = served.child.id();
    assert!(
        run.stderr.contains(&format!(
            "a daemon (process {pid}) already serves the store"
        )),
        "{}",
        run.stderr
    );
    // Run directly, the store's lock refuses it and names the holder.
    let run = place.ocap(&["serve"]);
    run.assert_code(4);
    assert!(
        run.stderr.contains(&format!("in use by process {pid}")),
        "{}",
        run.stderr
    );
    // The first daemon is untouched.
    let mut client = Client::connect(&place.store);
    assert_eq!(
        client.call("status", serde_json::json!({}))["result"]["pid"],
        pid
    );
}

#[test]
fn commands_work_offline_and_results_are_held_until_released() {
    let place = Place::new();
    let root = place.launch_counter();
    let run = place.ocap(&["send", &root, "tally", "--wait", "--json"]);
    run.assert_code(0);
    let answer = run.json();
    assert_eq!(answer["status"], "fulfilled");
    assert_eq!(answer["value"]["body"]["@slot"][0], 0);
    let tally = answer["value"]["slots"][0].as_str().unwrap().to_owned();
    let promise = answer["promise"].as_str().unwrap().to_owned();

    // A ref handed out in an answer stays usable: the result promise holds it.
    let run = place.ocap(&["send", &tally, "add", "[5]", "--wait"]);
    run.assert_code(0);
    assert!(run.stdout.starts_with("5\n"), "{}", run.stdout);
    let run = place.ocap(&["inspect", "--json", "promises"]);
    let promises = run.json()["promises"]["rows"].clone();
    assert!(
        promises
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == promise.as_str()),
        "{promises}"
    );

    let run = place.ocap(&["release", &promise]);
    run.assert_code(0);
    assert_eq!(run.stdout.trim(), format!("released {promise}"));
    let run = place.ocap(&["release", &promise]);
    run.assert_code(0);
    assert!(run.stdout.contains("was not held"), "{}", run.stdout);

    // A rejected result is exit code 2, its reason printed.
    let run = place.ocap(&["send", &root, "noSuchMethod", "--wait"]);
    run.assert_code(2);
    assert!(run.stdout.starts_with("rejected: "), "{}", run.stdout);
    place.ocap(&["terminate", "vat", "v1"]).assert_code(0);
    let run = place.ocap(&["vats", "--json"]);
    run.assert_code(0);
    assert_eq!(run.json(), serde_json::json!([]));
}

#[test]
fn a_store_a_daemon_serves_is_backed_up_through_it() {
    let place = Place::new();
    let served = place.serve();
    let root = place.launch_counter();
    place
        .ocap(&["send", &root, "resume", "--wait"])
        .assert_code(0);
    // A relative destination is the client's (the daemon's working directory differs).
    let run = place.ocap(&["backup", "copy"]);
    run.assert_code(0);
    let copy = place.dir.path().join("copy");
    assert!(copy.join("data.mdb").is_file());
    // A destination that is not empty is refused through the daemon too.
    place.ocap(&["backup", "copy"]).assert_code(1);
    // The copy is a sound store with the counter, while the daemon serves on.
    let copy_arg = copy.to_str().unwrap();
    let check = ocap_in(place.dir.path(), &["check".as_ref(), copy_arg.as_ref()]);
    check.assert_code(0);
    let args: [&std::ffi::OsStr; 5] = [
        "inspect".as_ref(),
        "--json".as_ref(),
        "vats".as_ref(),
        "--store".as_ref(),
        copy_arg.as_ref(),
    ];
    let run = ocap_in(place.dir.path(), &args);
    run.assert_code(0);
    assert_eq!(run.json()["vats"]["rows"][0]["name"], "counter");
    place.ocap(&["vats"]).assert_code(0);
    served.kill();
}

#[test]
fn a_daemon_started_with_a_crank_log_writes_each_crank_and_shows_the_head() {
    let place = Place::new();
    let log = place.dir.path().join("cranks.jsonl");
    let run = place.ocap(&["daemon", "start", "--crank-log", log.to_str().unwrap()]);
    run.assert_code(0);
    let pid = record(&place.store).unwrap()["pid"].as_i64().unwrap();
    let _guard = Background {
        pid: i32::try_from(pid).unwrap(),
    };
    let root = place.launch_counter();
    place
        .ocap(&["send", &root, "resume", "--wait"])
        .assert_code(0);
    let run = place.ocap(&["daemon", "status", "--json"]);
    run.assert_code(0);
    let head = run.json()["crankHash"].as_str().unwrap().to_owned();
    assert_eq!(head.len(), 64, "{head}");
    place.ocap(&["daemon", "stop"]).assert_code(0);

    // Stopped: every record the daemon handed over is written.
    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<Json> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(lines.len() >= 2, "{text}");
    for (idx, line) in lines.iter().enumerate() {
        assert_eq!(line["crank"].as_u64(), Some(idx as u64 + 1), "{line}");
    }
    // The head status showed is that of a crank the log holds (the send's delivery, or a
    // crank after it).
    assert!(
        lines.iter().any(|line| line["crankHash"] == head.as_str()),
        "{head} not in {text}"
    );
}

#[test]
fn a_subscriber_gets_each_durable_crank_as_a_notification() {
    let place = Place::new();
    let served = place.serve();
    let mut subscriber = Client::connect(&place.store);
    let answer = subscriber.call("subscribeCranks", json!({}));
    assert_eq!(answer["result"]["subscribed"], true, "{answer}");
    let root = place.launch_counter();
    place
        .ocap(&["send", &root, "resume", "--wait"])
        .assert_code(0);
    let status = place.ocap(&["daemon", "status", "--json"]);
    status.assert_code(0);
    let head = status.json()["crankHash"].as_str().unwrap().to_owned();
    // Notifications come in crank order, each once its crank is durable, up to the head.
    let mut last = 0;
    loop {
        let note = subscriber.reply();
        assert_eq!(note["method"], "crank", "{note}");
        let crank = note["params"]["crank"].as_u64().unwrap();
        assert!(crank > last, "{note}");
        last = crank;
        if note["params"]["crankHash"] == head.as_str() {
            break;
        }
    }
    assert!(last >= 2, "the launch and the send took cranks");
    // The kernel records cranks only while someone subscribes: after the subscriber left,
    // a new one is told of the cranks that come after it subscribed.
    drop(subscriber);
    let mut again = Client::connect(&place.store);
    let answer = again.call("subscribeCranks", json!({}));
    assert_eq!(answer["result"]["subscribed"], true, "{answer}");
    place
        .ocap(&["send", &root, "resume", "--wait"])
        .assert_code(0);
    let note = again.reply();
    assert_eq!(note["method"], "crank", "{note}");
    assert!(note["params"]["crank"].as_u64().unwrap() > last, "{note}");
    served.kill();
}

#[test]
fn a_session_ref_is_released_when_its_client_leaves() {
    let place = Place::new();
    let served = place.serve();
    let root = place.launch_counter();
    let mut client = Client::connect(&place.store);
    let sent = client.call(
        "send",
        json!({"target": root, "method": "resume", "wait": true, "session": true}),
    );
    let promise = sent["result"]["promise"].as_str().unwrap().to_owned();
    let promises = |client: &mut Client| -> Vec<String> {
        let listed = client.call("inspect", json!({"sections": ["promises"]}));
        listed["result"]["promises"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|row| row["id"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        promises(&mut client).contains(&promise),
        "held while the client is here"
    );
    drop(client);
    // Once the daemon sees the client gone it releases the result, which nothing else
    // holds, so it is collected.
    let mut watcher = Client::connect(&place.store);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while promises(&mut watcher).contains(&promise) {
        assert!(
            std::time::Instant::now() < deadline,
            "{promise} was never released"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // A plain send's result stays held until released.
    let kept = watcher.call(
        "send",
        json!({"target": root, "method": "resume", "wait": true}),
    );
    let kept = kept["result"]["promise"].as_str().unwrap().to_owned();
    drop(watcher);
    let mut last = Client::connect(&place.store);
    assert!(promises(&mut last).contains(&kept));
    let released = last.call("release", json!({"kref": kept}));
    assert_eq!(released["result"]["released"], true, "{released}");
    served.kill();
}

#[test]
fn a_daemon_runs_a_vat_executable_named_relative_to_the_cluster_file_and_relaunches_it() {
    let place = Place::new();
    // `ocap worker persistence-counter` is that vat: a copy of `ocap` is a vat executable.
    let bin = place.dir.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy(env!("CARGO_BIN_EXE_ocap"), bin.join("counter-vat")).unwrap();
    let cluster = place.dir.path().join("own.json");
    fs::write(
        &cluster,
        r#"{"bootstrap": "persistence-counter",
            "vats": {"persistence-counter": {"bundlePath": "./bin/counter-vat"}}}"#,
    )
    .unwrap();
    // The daemon's working directory is not the cluster file's: the client resolves.
    let served = place.serve();
    let run = place.ocap(&["launch", cluster.to_str().unwrap(), "--json"]);
    run.assert_code(0);
    let launched = run.json();
    assert_eq!(
        launched["bootstrapResult"]["body"],
        "Counter initialized with count: 1"
    );
    let root = launched["root"].as_str().unwrap().to_owned();
    served.kill();

    // A new daemon relaunches it from the store alone.
    let served = place.serve();
    let run = place.ocap(&["send", &root, "resume", "--wait"]);
    run.assert_code(0);
    assert!(
        run.stdout.starts_with("Counter incremented to: 2"),
        "{}",
        run.stdout
    );
    let run = place.ocap(&["vats", "--json"]);
    run.assert_code(0);
    let real = bin.join("counter-vat").canonicalize().unwrap();
    assert_eq!(run.json()[0]["code"], real.to_str().unwrap());
    place.ocap(&["daemon", "stop"]).assert_code(0);
    assert_eq!(served.wait_exit(), Some(0));
}
