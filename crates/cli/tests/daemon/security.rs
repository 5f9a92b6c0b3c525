//! Who can reach the daemon: the socket's and its directory's modes, a store path too long
//! for a socket address, and the default store every command shares.

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use super::{Background, Client, Place, ocap_in, record};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_socket_is_0600_in_a_0700_directory() {
    let place = Place::new();
    let _served = place.serve();
    let socket = record(&place.store).unwrap()["socket"]
        .as_str()
        .unwrap()
        .to_owned();
    let socket = Path::new(&socket);
    assert_eq!(socket, place.store.join("control/ocap.sock"));
    assert!(fs::metadata(socket).unwrap().file_type().is_socket());
    assert_eq!(mode(socket), 0o600);
    assert_eq!(mode(socket.parent().unwrap()), 0o700);
    assert_eq!(mode(&place.store.join("daemon.json")), 0o600);
}

#[test]
fn a_store_path_too_long_for_a_socket_gets_one_elsewhere() {
    let mut place = Place::new();
    let mut store = place.dir.path().to_path_buf();
    for _ in 0..4 {
        store.push("a-directory-name-long-enough-to-push-past-sun-path");
    }
    place.store = store;
    let served = place.serve();
    let socket = record(&place.store).unwrap()["socket"]
        .as_str()
        .unwrap()
        .to_owned();
    let socket = Path::new(&socket);
    assert!(!socket.starts_with(&place.store), "{}", socket.display());
    assert!(socket.as_os_str().len() < 108);
    assert_eq!(mode(socket), 0o600);
    assert_eq!(mode(socket.parent().unwrap()), 0o700);
    let root = place.launch_counter();
    let run = place.ocap(&["send", &root, "resume", "--wait"]);
    run.assert_code(0);
    place.ocap(&["daemon", "stop"]).assert_code(0);
    served.wait_exit();
    // The random directory goes with the daemon.
    assert!(!socket.exists());
    assert!(!socket.parent().unwrap().exists());
}

#[test]
fn every_command_defaults_to_the_users_store() {
    let place = Place::new();
    let dir = place.dir.path();
    let run = ocap_in(dir, &["daemon".as_ref(), "start".as_ref()]);
    run.assert_code(0);
    let store = dir.join("data/ocap/store");
    let pid = record(&store).unwrap()["pid"].as_i64().unwrap();
    let _guard = Background {
        pid: i32::try_from(pid).unwrap(),
    };
    assert!(
        run.stdout.contains(&store.display().to_string()),
        "{}",
        run.stdout
    );
    let run = ocap_in(dir, &["launch".as_ref(), place.cluster().as_os_str()]);
    run.assert_code(0);
    assert!(Client::try_connect(&store).is_some());
    let run = ocap_in(dir, &["vats".as_ref()]);
    run.assert_code(0);
    assert!(run.stdout.contains("counter"), "{}", run.stdout);
    ocap_in(dir, &["daemon".as_ref(), "stop".as_ref()]).assert_code(0);
    // `ocap run` uses the same store.
    let run = ocap_in(dir, &["run".as_ref(), place.cluster().as_os_str()]);
    run.assert_code(0);
    let run = ocap_in(
        dir,
        &[
            "inspect".as_ref(),
            "--json".as_ref(),
            "subclusters".as_ref(),
        ],
    );
    run.assert_code(0);
    assert_eq!(
        run.json()["subclusters"]["rows"].as_array().unwrap().len(),
        2
    );
}

/// The uid and gid of `nobody`.
const NOBODY: u32 = 65534;

/// Why this test cannot run a process as another user here, if it cannot: that needs
/// root, util-linux's `setpriv`, and an `ocap` executable every user may run.
fn cannot_switch_users() -> Option<String> {
    if rustix::process::getuid().as_raw() != 0 {
        return Some("not root".to_owned());
    }
    if !Path::new("/usr/bin/setpriv").exists() {
        return Some("no /usr/bin/setpriv".to_owned());
    }
    let program = Path::new(env!("CARGO_BIN_EXE_ocap"));
    if mode(program) & 0o001 == 0 {
        return Some(format!("{} is not executable by others", program.display()));
    }
    program
        .ancestors()
        .skip(1)
        .find(|dir| !dir.as_os_str().is_empty() && mode(dir) & 0o001 == 0)
        .map(|dir| format!("{} cannot be entered by others", dir.display()))
}

#[test]
fn a_client_of_another_user_is_refused_at_both_ends() {
    if let Some(why) = cannot_switch_users() {
        eprintln!("skipped: cannot run a daemon as another user ({why})");
        return;
    }
    let place = Place::new();
    // The daemon runs as nobody: it must reach its store and its data directory.
    fs::set_permissions(place.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for dir in [place.store.clone(), place.dir.path().join("data")] {
        fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let mut setpriv = std::process::Command::new("/usr/bin/setpriv");
    setpriv
        .arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"))
        .arg("--clear-groups")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_ocap"));
    let _served = place.serve_through(setpriv);

    // Root may open nobody's 0600 socket, but the daemon checks who is calling
    // (`SO_PEERCRED`) and answers nothing but a refusal.
    let mut client = Client::try_connect(&place.store).unwrap();
    let refusal = client.reply();
    assert_eq!(refusal["id"], serde_json::Value::Null, "{refusal}");
    assert!(
        refusal["error"]["message"]
            .as_str()
            .unwrap()
            .contains("serves only its own user"),
        "{refusal}"
    );
    // And the `ocap` client checks whose socket it is before it sends anything.
    let run = place.ocap(&["vats"]);
    assert_ne!(run.code, Some(0), "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!("belongs to uid {NOBODY}")),
        "{}",
        run.stderr
    );
}
