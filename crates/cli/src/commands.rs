//! The commands that act on a store's kernel (`launch`, `send`, `vats`, `terminate`, ...):
//! each becomes one control-protocol request, run by a [`Session`] (through the daemon, or
//! on a kernel of its own), and its answer is rendered for people or as JSON.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::daemon::Session;
use crate::run::read_cluster_json;
use crate::{CliError, Failure};

/// A command against a store's kernel; ids and krefs in their text forms (`v1`, `s1`,
/// `ko3`), checked by the kernel's side.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum KernelCommand {
    /// Launch the subcluster of a cluster file (read here, sent as JSON).
    Launch {
        /// The cluster file.
        cluster: PathBuf,
    },
    /// Send a message from the host.
    Send {
        /// The target kref.
        target: String,
        /// The method.
        method: String,
        /// The arguments: a JSON array of values in the JSON form of `Value`.
        args: Option<String>,
        /// The krefs the arguments' `{"@slot": [i, iface]}` name, by index.
        slots: Vec<String>,
        /// Wait for the result.
        wait: bool,
        /// How long to wait.
        timeout: Duration,
    },
    /// The kernel's vats.
    Vats,
    /// The subclusters.
    Subclusters,
    /// Terminate a vat.
    TerminateVat {
        /// The vat.
        vat: String,
        /// Why, as the vat's termination reason.
        reason: Option<String>,
    },
    /// Terminate a subcluster.
    TerminateSubcluster {
        /// The subcluster.
        subcluster: String,
    },
    /// Upgrade a vat to the registered vat code or the vat executable `bundle`.
    UpgradeVat {
        /// The vat.
        vat: String,
        /// The new version's code: a registry name, or a path (it has a `/`).
        bundle: String,
    },
    /// Restart a vat.
    RestartVat {
        /// The vat.
        vat: String,
    },
    /// Revoke an object.
    Revoke {
        /// The object.
        kref: String,
    },
    /// Pin a vat's root object.
    Pin {
        /// The vat.
        vat: String,
    },
    /// Remove a pin from a vat's root object.
    Unpin {
        /// The vat.
        vat: String,
    },
    /// Release the host's hold on a result or a pinned object.
    Release {
        /// The kref.
        kref: String,
    },
    /// Schedule a `bringOutYourDead` for every vat.
    Reap,
    /// Debug garbage collection.
    Gc,
}

/// What a command prints, and the failure class it ends with, if any (a rejected result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The text, ending with a newline unless empty.
    pub text: String,
    /// Set when the command's outcome is a failure although the request succeeded.
    pub failure: Option<Failure>,
}

impl KernelCommand {
    /// The request: its method and params.
    ///
    /// # Errors
    /// [`CliError::Read`] or [`CliError::Parse`] for the cluster file, [`CliError::Args`]
    /// for arguments that are not a JSON array.
    pub fn request(&self) -> Result<(&'static str, Json), CliError> {
        Ok(match self {
            KernelCommand::Launch { cluster } => {
                let json = read_cluster_json(cluster)?;
                ("launch", json!({"cluster": json}))
            }
            KernelCommand::Send {
                target,
                method,
                args,
                slots,
                wait,
                timeout,
            } => {
                let args = match args {
                    None => Json::Array(Vec::new()),
                    Some(text) => parse_args(text)?,
                };
                let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
                let params = json!({"target": target, "method": method, "args": args,
                                    "slots": slots, "wait": wait, "timeoutMs": timeout_ms});
                ("send", params)
            }
            KernelCommand::Vats => ("vats", json!({})),
            KernelCommand::Subclusters => ("subclusters", json!({})),
            KernelCommand::TerminateVat { vat, reason } => {
                ("terminateVat", json!({"vat": vat, "reason": reason}))
            }
            KernelCommand::TerminateSubcluster { subcluster } => {
                ("terminateSubcluster", json!({"subcluster": subcluster}))
            }
            KernelCommand::RestartVat { vat } => ("restartVat", json!({"vat": vat})),
            // A path (anything with a `/`) names a vat executable, made absolute here: the
            // daemon runs in another directory.
            KernelCommand::UpgradeVat { vat, bundle } if bundle.contains('/') => {
                let path = std::path::absolute(bundle).map_err(|source| CliError::Read {
                    path: bundle.into(),
                    source,
                })?;
                ("upgradeVat", json!({"vat": vat, "bundlePath": path}))
            }
            KernelCommand::UpgradeVat { vat, bundle } => {
                ("upgradeVat", json!({"vat": vat, "bundle": bundle}))
            }
            KernelCommand::Revoke { kref } => ("revoke", json!({"kref": kref})),
            KernelCommand::Pin { vat } => ("pin", json!({"vat": vat})),
            KernelCommand::Unpin { vat } => ("unpin", json!({"vat": vat})),
            KernelCommand::Release { kref } => ("release", json!({"kref": kref})),
            KernelCommand::Reap => ("reap", json!({})),
            KernelCommand::Gc => ("gc", json!({})),
        })
    }

    /// Renders the answer: the result as JSON, or text for people.
    pub fn render(&self, result: &Json, json: bool) -> Output {
        let failure = match self {
            KernelCommand::Send { .. } if result["status"] == "rejected" => Some(Failure::Rejected),
            _ => None,
        };
        let text = if json {
            format!("{result}\n")
        } else {
            self.text(result)
        };
        Output { text, failure }
    }

    fn text(&self, result: &Json) -> String {
        let str_of = |name: &str| result[name].as_str().unwrap_or("?").to_owned();
        match self {
            KernelCommand::Launch { .. } => format!(
                "launched {} (root {})\n{}\n",
                str_of("subcluster"),
                str_of("root"),
                value_text(&result["bootstrapResult"])
            ),
            KernelCommand::Send { .. } => send_text(result),
            KernelCommand::Vats => vats_text(result),
            KernelCommand::Subclusters => subclusters_text(result),
            KernelCommand::TerminateVat { vat, .. } => format!("terminated {vat}\n"),
            KernelCommand::TerminateSubcluster { subcluster } => {
                format!("terminated {subcluster}\n")
            }
            KernelCommand::RestartVat { vat } => format!("restarted {vat}\n"),
            KernelCommand::UpgradeVat { vat, bundle } => format!("upgraded {vat} to {bundle}\n"),
            KernelCommand::Revoke { kref } => format!("revoked {kref}\n"),
            KernelCommand::Pin { .. } => format!("pinned {}\n", str_of("kref")),
            KernelCommand::Unpin { vat } => format!("unpinned the root of {vat}\n"),
            KernelCommand::Release { kref } if result["released"] == true => {
                format!("released {kref}\n")
            }
            KernelCommand::Release { kref } => format!("{kref} was not held: nothing released\n"),
            KernelCommand::Reap => "reap scheduled for every vat\n".to_owned(),
            KernelCommand::Gc => "garbage collected\n".to_owned(),
        }
    }
}

/// Runs `command` in `session` and renders its answer.
///
/// # Errors
/// As [`KernelCommand::request`] and [`Session::call`].
pub fn run_command(
    session: &mut Session,
    command: &KernelCommand,
    json: bool,
) -> Result<Output, CliError> {
    let (method, params) = command.request()?;
    let result = session.call(method, params)?;
    Ok(command.render(&result, json))
}

/// The arguments of `ocap send`: a JSON array.
fn parse_args(text: &str) -> Result<Json, CliError> {
    let json: Json =
        serde_json::from_str(text).map_err(|e| CliError::Args(format!("ARGS is not JSON: {e}")))?;
    if !json.is_array() {
        return Err(CliError::Args(
            r#"ARGS is a JSON array of values, like '["alice", 1]'"#.to_owned(),
        ));
    }
    Ok(json)
}

/// A value as `{"body", "slots"}` for people: a string as it is, anything else as JSON,
/// then the krefs of its slots if it has any.
fn value_text(value: &Json) -> String {
    let body = match &value["body"] {
        Json::String(text) => text.clone(),
        other => other.to_string(),
    };
    match value["slots"].as_array() {
        Some(slots) if !slots.is_empty() => {
            let krefs: Vec<&str> = slots.iter().filter_map(Json::as_str).collect();
            format!("{body}\nslots: {}", krefs.join(" "))
        }
        _ => body,
    }
}

fn send_text(result: &Json) -> String {
    let promise = result["promise"].as_str().unwrap_or("?");
    match result["status"].as_str() {
        None => format!("queued; result {promise}\n"),
        Some("rejected") => format!(
            "rejected: {}\nresult: {promise}\n",
            value_text(&result["value"])
        ),
        Some(_) => format!("{}\nresult: {promise}\n", value_text(&result["value"])),
    }
}

fn vats_text(result: &Json) -> String {
    let rows = result.as_array().map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        return "no vats\n".to_owned();
    }
    let mut out = String::new();
    for vat in rows {
        let field = |name: &str| vat[name].as_str().unwrap_or("-").to_owned();
        if vat["running"] == true {
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                field("id"),
                field("name"),
                field("code"),
                field("subcluster")
            ));
        } else {
            out.push_str(&format!("{}\tstopped: {}\n", field("id"), field("reason")));
        }
    }
    out
}

fn subclusters_text(result: &Json) -> String {
    let rows = result.as_array().map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        return "no subclusters\n".to_owned();
    }
    let mut out = String::new();
    for sub in rows {
        let vats: Vec<String> = sub["vats"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|v| {
                format!(
                    "{}={}",
                    v["name"].as_str().unwrap_or("?"),
                    v["id"].as_str().unwrap_or("?")
                )
            })
            .collect();
        out.push_str(&format!(
            "{}\tbootstrap={}\t{}\n",
            sub["id"].as_str().unwrap_or("?"),
            sub["bootstrap"].as_str().unwrap_or("?"),
            vats.join(" ")
        ));
    }
    out
}
