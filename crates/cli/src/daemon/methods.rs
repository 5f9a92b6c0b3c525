//! The control protocol's methods, over a [`Kernel`]: what the daemon runs for a request,
//! and what a command runs in-process when no daemon serves the store, so both give the
//! same answers (`docs/control-protocol.md` lists them).
//!
//! Invariant: a method replies only once what it reports is durable. Every `Kernel` call
//! returns once the store holds its effect on disk (the kernel tells hosts only what is
//! durable, D22: at the crank's commit, or at the group commit in group mode), and a
//! `send` answers once its message is durably queued (`ResultHandle::promise`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ocap_kernel::inspect::KernelStore;
use ocap_kernel::{
    BundleSpec, CapData, Durability, KRef, Kernel, KernelError, SubclusterId, Value, VatConfig,
    VatId, VatUpgrade,
};
use serde_json::{Value as Json, json};

use super::protocol::{METHOD_NOT_FOUND, PROTOCOL_VERSION, RpcError};
use crate::check::{CheckOptions, check_running};
use crate::inspect::{Section, counters_json, sections_json, sections_text, value_json};
use crate::{CliError, Failure, error_chain, parse_cluster_json};

/// How long a `send` waits by default when it asks to wait.
const DEFAULT_WAIT: Duration = Duration::from_secs(60);
/// How often a waiting `send` looks whether the daemon is stopping.
const WAIT_SLICE: Duration = Duration::from_millis(100);
/// How many rows `inspect` shows per section by default.
const DEFAULT_LIMIT: usize = 100;
const DEFAULT_CHECK_SECS: u64 = 300;

/// What the methods know besides the kernel.
#[derive(Debug)]
pub(crate) struct Context {
    /// The store directory.
    pub(crate) store: PathBuf,
    /// When the kernel was opened.
    pub(crate) started: Instant,
    /// The kernel's durability mode.
    pub(crate) durability: Durability,
    /// Set when the daemon stops: waits give up.
    pub(crate) stopping: AtomicBool,
    /// True in the daemon; `status` and `shutdown` exist only there.
    pub(crate) daemon: bool,
}

impl Context {
    pub(crate) fn new(store: PathBuf, durability: Durability, daemon: bool) -> Self {
        Context {
            store,
            started: Instant::now(),
            durability,
            stopping: AtomicBool::new(false),
            daemon,
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Runs `method(params)` on `kernel`. `hello` and `shutdown` are the connection's and the
/// server's business; here `hello` only answers.
pub(crate) fn dispatch(
    kernel: &Kernel,
    ctx: &Context,
    method: &str,
    params: &Json,
) -> Result<Json, RpcError> {
    match method {
        "hello" => Ok(hello()),
        "status" if ctx.daemon => status(kernel, ctx),
        "launch" => launch(kernel, params),
        "send" => send(kernel, ctx, params),
        "vats" => vats(kernel),
        "subclusters" => subclusters(kernel),
        "terminateVat" => {
            let reason = optional_str(params, "reason")?.map(str::to_owned);
            kernel.terminate_vat(id_param(params, "vat")?, reason)?;
            Ok(json!({}))
        }
        "terminateSubcluster" => {
            let subcluster: SubclusterId = id_param(params, "subcluster")?;
            kernel.terminate_subcluster(subcluster)?;
            Ok(json!({}))
        }
        "restartVat" => {
            kernel.restart_vat(id_param(params, "vat")?)?;
            Ok(json!({}))
        }
        "upgradeVat" => {
            let bundle = match params.get("bundlePath") {
                Some(_) => BundleSpec::path(str_param(params, "bundlePath")?),
                None => BundleSpec::name(str_param(params, "bundle")?),
            };
            kernel.upgrade_vat(id_param(params, "vat")?, VatUpgrade::new(bundle))?;
            Ok(json!({}))
        }
        "revoke" => {
            kernel.revoke(id_param(params, "kref")?)?;
            Ok(json!({}))
        }
        "pin" => Ok(json!({"kref": kernel.pin_vat_root(id_param(params, "vat")?)?.to_string()})),
        "unpin" => {
            kernel.unpin_vat_root(id_param(params, "vat")?)?;
            Ok(json!({}))
        }
        "release" => Ok(json!({"released": kernel.release(id_param(params, "kref")?)?})),
        "reap" => {
            kernel.reap_vats()?;
            Ok(json!({}))
        }
        "gc" => {
            kernel.collect_garbage()?;
            Ok(json!({}))
        }
        "inspect" => inspect(kernel, params),
        "check" => check(kernel, ctx, params),
        "backup" => {
            let dest = PathBuf::from(str_param(params, "dest")?);
            if !dest.is_absolute() {
                return Err(RpcError::params("dest must be an absolute path".to_owned()));
            }
            kernel.backup(&dest)?;
            Ok(json!({}))
        }
        _ => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("no method {:?}", cut(method)),
        )),
    }
}

/// What `hello` answers: the protocol and the server.
pub(crate) fn hello() -> Json {
    json!({"protocol": PROTOCOL_VERSION, "server": format!("ocap {}", env!("CARGO_PKG_VERSION")),
           "pid": std::process::id()})
}

impl From<KernelError> for RpcError {
    /// The kernel's error with its causes, coded by its failure class.
    fn from(error: KernelError) -> Self {
        RpcError::from(CliError::Kernel(error))
    }
}

impl From<CliError> for RpcError {
    fn from(error: CliError) -> Self {
        let message = error_chain(&error).join(": ");
        RpcError::new(RpcError::code_of(Failure::of(&error)), message)
    }
}

/// Client text echoed in an error, cut short.
fn cut(text: &str) -> String {
    text.chars().take(64).collect()
}

/// What a vat runs, for listings: its registered code's name, or its executable's path.
fn code_of(config: &VatConfig) -> Option<String> {
    config
        .code()
        .map(str::to_owned)
        .or_else(|| config.executable().map(|path| path.display().to_string()))
}

fn str_param<'a>(params: &'a Json, name: &str) -> Result<&'a str, RpcError> {
    optional_str(params, name)?.ok_or_else(|| RpcError::params(format!("missing param {name:?}")))
}

fn optional_str<'a>(params: &'a Json, name: &str) -> Result<Option<&'a str>, RpcError> {
    match params.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(text)) => Ok(Some(text)),
        Some(_) => Err(RpcError::params(format!("param {name:?} is a string"))),
    }
}

/// A param holding an id in its text form (`v1`, `s1`, `ko3`); a malformed one is the
/// caller's mistake, a usage error.
fn id_param<T: FromStr>(params: &Json, name: &str) -> Result<T, RpcError>
where
    T::Err: std::fmt::Display,
{
    let text = str_param(params, name)?;
    text.parse().map_err(|e| {
        RpcError::new(
            RpcError::code_of(Failure::Usage),
            format!("param {name:?}: {e}"),
        )
    })
}

fn status(kernel: &Kernel, ctx: &Context) -> Result<Json, RpcError> {
    let crank_count = kernel.crank_count()?;
    let run_queue = kernel
        .inspect(|store: &KernelStore| store.queue_bounds("run"))?
        .map_err(KernelError::from)?
        .map_or(0, |bounds| bounds.len());
    let durability = match ctx.durability {
        Durability::EveryCrank => "everyCrank",
        _ => "group",
    };
    Ok(json!({
        "pid": std::process::id(),
        "store": ctx.store.to_string_lossy(),
        "protocol": PROTOCOL_VERSION,
        "uptimeSecs": ctx.started.elapsed().as_secs(),
        "durability": durability,
        "crankCount": crank_count,
        "crankHash": kernel.crank_hash()?.to_string(),
        "runQueueLength": run_queue,
        "vats": vat_usage(kernel)?,
    }))
}

/// The running vats for `status`: [`vats`]' fields, with what each did since the kernel
/// was opened (`deliveries`, `syscalls`, `denials`: in memory, restarting at 0 with the
/// kernel), what it holds now (`vatstoreBytes`, `queuedMessages`: from the store) and its
/// `limits`; then the stopped vats.
fn vat_usage(kernel: &Kernel) -> Result<Json, RpcError> {
    let counters = kernel.vat_counters()?;
    let stored = kernel
        .inspect(|store: &KernelStore| ocap_kernel::inspect::vats(store, usize::MAX))?
        .map_err(KernelError::from)?;
    let usage: BTreeMap<VatId, (u64, u64)> = stored
        .rows
        .iter()
        .map(|row| (row.id, (row.vatstore_bytes, row.queued_messages)))
        .collect();
    let mut rows = Vec::new();
    for vat in kernel.vats()? {
        let id = vat.id;
        let (bytes, queued) = usage.get(&id).copied().unwrap_or_default();
        let mut row = json!({"id": id.to_string(), "name": vat.name, "code": code_of(&vat.config),
                             "subcluster": vat.subcluster.map(|s| s.to_string()), "running": true,
                             "vatstoreBytes": bytes, "queuedMessages": queued});
        if let (Json::Object(row), Json::Object(more)) = (
            &mut row,
            counters_json(Some(&counters), id, &vat.config.limits),
        ) {
            row.extend(more);
        }
        rows.push(row);
    }
    for (id, reason) in kernel.stopped_vats()? {
        rows.push(json!({"id": id.to_string(), "running": false, "reason": reason}));
    }
    Ok(Json::Array(rows))
}

fn launch(kernel: &Kernel, params: &Json) -> Result<Json, RpcError> {
    let cluster = params
        .get("cluster")
        .ok_or_else(|| RpcError::params("missing param \"cluster\""))?;
    let config = parse_cluster_json(cluster)?;
    let launched = kernel.launch_subcluster(&config)?;
    Ok(json!({
        "subcluster": launched.subcluster.to_string(),
        "root": launched.root.to_string(),
        "bootstrapResult": value_json(&launched.bootstrap_result),
    }))
}

/// `send`: queues the message and answers with its result promise once the message is
/// durably queued; with `wait`, once the result settled, with its value.
fn send(kernel: &Kernel, ctx: &Context, params: &Json) -> Result<Json, RpcError> {
    let target: KRef = id_param(params, "target")?;
    let method = str_param(params, "method")?;
    let args = match params.get("args") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(items)) => items
            .iter()
            .map(Value::from_json)
            .collect::<Result<_, _>>()
            .map_err(|e| RpcError::params(format!("param \"args\": {e}")))?,
        Some(_) => return Err(RpcError::params("param \"args\" is an array")),
    };
    let slots = match params.get("slots") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(items)) => items
            .iter()
            .map(|item| {
                let text = item
                    .as_str()
                    .ok_or_else(|| RpcError::params("a slot is a kref"))?;
                text.parse::<KRef>().map_err(|e| {
                    RpcError::new(RpcError::code_of(Failure::Usage), format!("slot: {e}"))
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(RpcError::params("param \"slots\" is an array of krefs")),
    };
    let handle = kernel.queue_message_with_slots(target, method, args, slots)?;
    let promise = handle.promise()?.to_string();
    if params.get("wait") != Some(&Json::Bool(true)) {
        return Ok(json!({"promise": promise}));
    }
    let timeout = params
        .get("timeoutMs")
        .and_then(Json::as_u64)
        .map_or(DEFAULT_WAIT, Duration::from_millis);
    let deadline = Instant::now() + timeout;
    let with_promise = |mut error: RpcError| {
        error.data = Some(json!({"promise": promise}));
        error
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let settled = |status: &str, value: &CapData<KRef>| json!({"promise": promise, "status": status, "value": value_json(value)});
        match handle.wait(left.min(WAIT_SLICE)) {
            Ok(value) => return Ok(settled("fulfilled", &value)),
            Err(KernelError::Rejected(rejection)) => {
                return Ok(settled("rejected", rejection.value()));
            }
            Err(KernelError::Timeout) if !left.is_zero() && !ctx.stopping() => {}
            Err(KernelError::Timeout) if ctx.stopping() => {
                let code = RpcError::code_of(Failure::Internal);
                return Err(with_promise(RpcError::new(code, "the daemon is stopping")));
            }
            Err(error) => return Err(with_promise(error.into())),
        }
    }
}

fn vats(kernel: &Kernel) -> Result<Json, RpcError> {
    let mut rows: Vec<Json> = kernel
        .vats()?
        .into_iter()
        .map(|vat| {
            json!({"id": vat.id.to_string(), "name": vat.name, "code": code_of(&vat.config),
                   "subcluster": vat.subcluster.map(|s| s.to_string()), "running": true})
        })
        .collect();
    for (id, reason) in kernel.stopped_vats()? {
        rows.push(json!({"id": id.to_string(), "running": false, "reason": reason}));
    }
    Ok(Json::Array(rows))
}

fn subclusters(kernel: &Kernel) -> Result<Json, RpcError> {
    let rows = kernel.subclusters()?.into_iter().map(|sub| {
        let vats: Vec<Json> = sub
            .vats
            .iter()
            .map(|(name, id)| json!({"name": name, "id": id.to_string()}))
            .collect();
        json!({"id": sub.id.to_string(), "bootstrap": sub.config.bootstrap, "vats": vats})
    });
    Ok(Json::Array(rows.collect()))
}

/// `inspect`: the sections the offline `ocap inspect` shows, listed inside
/// `Kernel::inspect` between two cranks.
fn inspect(kernel: &Kernel, params: &Json) -> Result<Json, RpcError> {
    let mut sections = Vec::new();
    if let Some(names) = params.get("sections") {
        let names = names
            .as_array()
            .ok_or_else(|| RpcError::params("param \"sections\" is an array of names"))?;
        for name in names {
            let section = name
                .as_str()
                .and_then(Section::from_json_name)
                .ok_or_else(|| RpcError::params(format!("no section {name}")))?;
            sections.push(section);
        }
    }
    let limit = params
        .get("limit")
        .and_then(Json::as_u64)
        .map_or(DEFAULT_LIMIT, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let text = params.get("format").and_then(Json::as_str) == Some("text");
    let counters = kernel.vat_counters()?;
    let res = if text {
        kernel
            .inspect(move |store| sections_text(store, &sections, limit, Some(&counters)))?
            .map(|text| json!({"text": text}))
    } else {
        kernel.inspect(move |store| sections_json(store, &sections, limit, Some(&counters)))?
    };
    Ok(res.map_err(KernelError::from)?)
}

/// `check`: the page walk in a child (this executable's `check-pages`, allowed
/// `timeoutSecs`, 300 by default) while the kernel waits between cranks, then the audit
/// over the live tables ([`check_running`]).
fn check(kernel: &Kernel, ctx: &Context, params: &Json) -> Result<Json, RpcError> {
    let timeout = params
        .get("timeoutSecs")
        .and_then(Json::as_u64)
        .unwrap_or(DEFAULT_CHECK_SECS);
    let options = CheckOptions {
        program: std::env::current_exe().map_err(CliError::Spawn)?,
        timeout: Duration::from_secs(timeout),
    };
    Ok(check_running(kernel, &ctx.store, &options)?.to_json())
}
