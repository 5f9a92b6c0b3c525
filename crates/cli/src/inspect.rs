//! `ocap inspect`: the sections of a store that no kernel runs, as tables for people or as
//! one JSON object for tools. The listings are the kernel's (`ocap_kernel::inspect`); this
//! module only renders them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use ocap_kernel::inspect::{
    self, CListRow, KernelStore, Listing, Message, ObjectRow, OfflineStore, Owner, PromiseRow,
    PromiseState, RunQueueItem, RunQueueRow, SubclusterRow, VatRow, VatStoreRow,
};
use ocap_kernel::{CapData, KRef, StoreError, VatCounters, VatId, VatLimits};
use serde_json::{Value as Json, json};

use crate::CliError;
use crate::daemon::Session;

/// A section of `ocap inspect`'s output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Section {
    /// The live vats.
    Vats,
    /// The subclusters.
    Subclusters,
    /// Kernel objects: owner, refcounts, pins, revoked.
    Objects,
    /// Kernel promises: state, decider, subscribers, queue length.
    Promises,
    /// Every endpoint's c-list.
    Clists,
    /// The run queue.
    RunQueue,
    /// The vats' stores: keys and value sizes.
    VatStores,
}

impl Section {
    /// Every section, in output order.
    pub const ALL: [Section; 7] = [
        Section::Vats,
        Section::Subclusters,
        Section::Objects,
        Section::Promises,
        Section::Clists,
        Section::RunQueue,
        Section::VatStores,
    ];

    /// The section's name in JSON output (camelCase).
    pub fn json_name(self) -> &'static str {
        match self {
            Section::Vats => "vats",
            Section::Subclusters => "subclusters",
            Section::Objects => "objects",
            Section::Promises => "promises",
            Section::Clists => "clists",
            Section::RunQueue => "runQueue",
            Section::VatStores => "vatStores",
        }
    }

    /// The section whose JSON name is `name`.
    pub fn from_json_name(name: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.json_name() == name)
    }
}

/// The running kernel's per-vat counters (`Kernel::vat_counters`); an offline store has
/// none (they live in the kernel's memory), and its rows show them as unknown.
pub(crate) type Counters = BTreeMap<VatId, VatCounters>;

/// A section read from the store, before rendering.
enum Rows {
    Vats(Listing<VatRow>),
    Subclusters(Listing<SubclusterRow>),
    Objects(Listing<ObjectRow>),
    Promises(Listing<PromiseRow>),
    Clists(Listing<CListRow>),
    RunQueue(Listing<RunQueueRow>),
    VatStores(Listing<VatStoreRow>),
}

fn read(store: &KernelStore, section: Section, limit: usize) -> Result<Rows, StoreError> {
    Ok(match section {
        Section::Vats => Rows::Vats(inspect::vats(store, limit)?),
        Section::Subclusters => Rows::Subclusters(inspect::subclusters(store, limit)?),
        Section::Objects => Rows::Objects(inspect::objects(store, limit)?),
        Section::Promises => Rows::Promises(inspect::promises(store, limit)?),
        Section::Clists => Rows::Clists(inspect::clists(store, limit)?),
        Section::RunQueue => Rows::RunQueue(inspect::run_queue(store, limit)?),
        Section::VatStores => Rows::VatStores(inspect::vat_stores(store, limit)?),
    })
}

/// Renders `sections` (every one if empty) of the store at `path`, at most `limit` rows
/// each: tables, or one JSON object with a `{"rows": [...], "more": bool}` per section.
///
/// # Errors
/// [`CliError::Store`] if the store cannot be opened (in use, missing, damaged) or read.
pub fn inspect_store(
    path: &Path,
    sections: &[Section],
    limit: usize,
    json: bool,
) -> Result<String, CliError> {
    let store = OfflineStore::open(path)?;
    if json {
        Ok(sections_json(store.tables(), sections, limit, None)?.to_string())
    } else {
        Ok(sections_text(store.tables(), sections, limit, None)?)
    }
}

/// [`inspect_store`] of the store a daemon serves: the same listings, run by the daemon
/// inside `Kernel::inspect` between two cranks.
///
/// # Errors
/// As [`Session::call`].
pub fn inspect_through_daemon(
    session: &mut Session,
    sections: &[Section],
    limit: usize,
    json: bool,
) -> Result<String, CliError> {
    let names: Vec<&str> = sections.iter().map(|s| s.json_name()).collect();
    let format = if json { "json" } else { "text" };
    let params = json!({"sections": names, "limit": limit, "format": format});
    let result = session.call("inspect", params)?;
    Ok(match result {
        Json::Object(mut fields) if !json => match fields.remove("text") {
            Some(Json::String(text)) => text,
            _ => {
                return Err(CliError::Protocol(
                    "an inspect reply without text".to_owned(),
                ));
            }
        },
        other => other.to_string(),
    })
}

/// The sections to show, in output order: every one if none is named.
fn chosen(sections: &[Section]) -> Vec<Section> {
    let mut chosen: Vec<Section> = if sections.is_empty() {
        Section::ALL.to_vec()
    } else {
        sections.to_vec()
    };
    chosen.sort();
    chosen.dedup();
    chosen
}

/// `sections` of `store` as one JSON object, a `{"rows": [...], "more": bool}` per section:
/// what `ocap inspect --json` prints, offline or from a daemon (which runs it inside
/// `Kernel::inspect`).
pub(crate) fn sections_json(
    store: &KernelStore,
    sections: &[Section],
    limit: usize,
    counters: Option<&Counters>,
) -> Result<Json, StoreError> {
    let mut object = serde_json::Map::new();
    for section in chosen(sections) {
        let rows = read(store, section, limit)?;
        object.insert(section.json_name().to_owned(), to_json(&rows, counters));
    }
    Ok(Json::Object(object))
}

/// `sections` of `store` as tables, as [`sections_json`] for people.
pub(crate) fn sections_text(
    store: &KernelStore,
    sections: &[Section],
    limit: usize,
    counters: Option<&Counters>,
) -> Result<String, StoreError> {
    let mut out = String::new();
    for section in chosen(sections) {
        out.push_str(&to_table(&read(store, section, limit)?, counters));
    }
    Ok(out)
}

fn listing_json<T>(listing: &Listing<T>, row: impl Fn(&T) -> Json) -> Json {
    json!({"rows": listing.rows.iter().map(row).collect::<Vec<_>>(), "more": listing.more})
}

fn owner_json(owner: Option<Owner>) -> Json {
    owner.map_or(Json::Null, |owner| Json::String(owner.to_string()))
}

/// A settled value as JSON: its JSON form and the krefs its slots name.
pub(crate) fn value_json<R: std::fmt::Display>(value: &CapData<R>) -> Json {
    let body = match value.decode().map(|v| v.to_json()) {
        Ok(Ok(json)) => json,
        Ok(Err(e)) => Json::String(format!("<not representable: {e}>")),
        Err(e) => Json::String(format!("<undecodable: {e}>")),
    };
    let slots: Vec<String> = value.slots.iter().map(ToString::to_string).collect();
    json!({"body": body, "slots": slots})
}

/// A vat's counters and limits as JSON fields: `deliveries`, `syscalls` and `denials`
/// (null when unknown: no kernel runs the store) and `limits` (its `VatLimits`, camelCase).
pub(crate) fn counters_json(counters: Option<&Counters>, vat: VatId, limits: &VatLimits) -> Json {
    let counted = counters.map(|all| all.get(&vat).copied().unwrap_or_default());
    json!({"deliveries": counted.map(|c| c.deliveries), "syscalls": counted.map(|c| c.syscalls),
           "denials": counted.map(|c| c.denials),
           "limits": serde_json::to_value(limits).unwrap_or(Json::Null)})
}

fn to_json(rows: &Rows, counters: Option<&Counters>) -> Json {
    match rows {
        Rows::Vats(l) => listing_json(l, |v| {
            let mut row = json!({"id": v.id.to_string(), "name": v.name, "code": v.code,
                   "subcluster": v.subcluster.map(|s| s.to_string()),
                   "vatstoreBytes": v.vatstore_bytes, "queuedMessages": v.queued_messages});
            if let (Json::Object(row), Json::Object(more)) =
                (&mut row, counters_json(counters, v.id, &v.limits))
            {
                row.extend(more);
            }
            row
        }),
        Rows::Subclusters(l) => listing_json(l, |s| {
            let vats: serde_json::Map<String, Json> = s
                .vats
                .iter()
                .map(|(name, id)| (name.clone(), Json::String(id.to_string())))
                .collect();
            json!({"id": s.id.to_string(), "bootstrap": s.bootstrap, "vats": vats})
        }),
        Rows::Objects(l) => listing_json(l, |o| {
            json!({"id": o.id.to_string(), "owner": owner_json(o.owner),
                   "reachable": o.counts.reachable, "recognizable": o.counts.recognizable,
                   "pins": o.pins, "revoked": o.revoked})
        }),
        Rows::Promises(l) => listing_json(l, promise_json),
        Rows::Clists(l) => listing_json(l, |c| {
            json!({"endpoint": c.endpoint.to_string(), "kref": c.kref.to_string(),
                   "vref": c.vref.to_string(), "reachable": c.reachable})
        }),
        Rows::RunQueue(l) => listing_json(l, run_queue_json),
        Rows::VatStores(l) => listing_json(
            l,
            |s| json!({"vat": s.vat.to_string(), "key": s.key, "bytes": s.bytes}),
        ),
    }
}

fn promise_json(p: &PromiseRow) -> Json {
    let mut row = json!({"id": p.id.to_string(), "refcount": p.refcount,
                         "queueLength": p.queue_length, "pins": p.pins});
    let fields = match &p.state {
        PromiseState::Unresolved {
            decider,
            subscribers,
        } => json!({"state": "unresolved", "decider": owner_json(*decider),
                    "subscribers": subscribers.iter().map(ToString::to_string).collect::<Vec<_>>()}),
        PromiseState::Fulfilled(value) => json!({"state": "fulfilled", "value": value_json(value)}),
        PromiseState::Rejected(value) => json!({"state": "rejected", "value": value_json(value)}),
    };
    if let (Json::Object(row), Json::Object(fields)) = (&mut row, fields) {
        row.extend(fields);
    }
    row
}

fn run_queue_json(r: &RunQueueRow) -> Json {
    let mut row = json!({"index": r.index, "kind": r.item.kind()});
    let fields = match &r.item {
        RunQueueItem::Send {
            target,
            message,
            sender,
        } => json!({"target": target.to_string(), "method": method_of(message),
                    "result": message.result.map(|k| k.to_string()),
                    "sender": sender.map(|s| s.to_string())}),
        RunQueueItem::Notify { endpoint, promise } => {
            json!({"endpoint": endpoint.to_string(), "promise": promise.to_string()})
        }
        RunQueueItem::DropExports { endpoint, objects }
        | RunQueueItem::RetireExports { endpoint, objects }
        | RunQueueItem::RetireImports { endpoint, objects } => {
            json!({"endpoint": endpoint.to_string(),
                   "objects": objects.iter().map(ToString::to_string).collect::<Vec<_>>()})
        }
        RunQueueItem::BringOutYourDead { endpoint } => json!({"endpoint": endpoint.to_string()}),
    };
    if let (Json::Object(row), Json::Object(fields)) = (&mut row, fields) {
        row.extend(fields);
    }
    row
}

/// The method a send names, or a note on why it names none.
fn method_of(message: &Message<KRef>) -> String {
    match message.method_and_args() {
        Ok((method, _)) => method,
        Err(e) => format!("<undecodable: {e}>"),
    }
}

/// `rows` as a titled table with aligned columns.
fn table(title: &str, headers: &[&str], rows: Vec<Vec<String>>, more: bool) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = format!("{title} ({}{})\n", rows.len(), if more { "+" } else { "" });
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("  {}\n", padded.join("  ").trim_end())
    };
    if rows.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
        out.push_str(&line(&headers));
        for row in &rows {
            out.push_str(&line(row));
        }
    }
    if more {
        out.push_str("  ... more (raise --limit)\n");
    }
    out.push('\n');
    out
}

fn opt(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn to_table(rows: &Rows, counters: Option<&Counters>) -> String {
    match rows {
        Rows::Vats(l) => {
            let cells = l.rows.iter().map(|v| vat_cells(v, counters));
            table("vats", &VAT_HEADERS, cells.collect(), l.more)
        }
        Rows::Subclusters(l) => {
            let cells = l.rows.iter().map(|s| {
                let vats: Vec<String> = s.vats.iter().map(|(n, id)| format!("{n}={id}")).collect();
                vec![s.id.to_string(), s.bootstrap.clone(), vats.join(" ")]
            });
            let headers = ["SUBCLUSTER", "BOOTSTRAP", "VATS"];
            table("subclusters", &headers, cells.collect(), l.more)
        }
        Rows::Objects(l) => {
            let cells = l.rows.iter().map(object_cells);
            let headers = ["OBJECT", "OWNER", "REFS", "PINS", "REVOKED"];
            table("objects", &headers, cells.collect(), l.more)
        }
        Rows::Promises(l) => {
            let cells = l.rows.iter().map(promise_cells);
            let headers = [
                "PROMISE",
                "STATE",
                "DECIDER",
                "SUBSCRIBERS",
                "QUEUE",
                "REFS",
                "PINS",
            ];
            table("promises", &headers, cells.collect(), l.more)
        }
        Rows::Clists(l) => {
            let cells = l.rows.iter().map(|c| {
                vec![
                    c.endpoint.to_string(),
                    c.kref.to_string(),
                    c.vref.to_string(),
                    if c.reachable { "yes" } else { "no" }.to_owned(),
                ]
            });
            let headers = ["ENDPOINT", "KREF", "VREF", "REACHABLE"];
            table("c-lists", &headers, cells.collect(), l.more)
        }
        Rows::RunQueue(l) => {
            let cells = l.rows.iter().map(|r| {
                vec![
                    r.index.to_string(),
                    r.item.kind().to_owned(),
                    run_queue_detail(r),
                ]
            });
            table(
                "run queue",
                &["INDEX", "KIND", "DETAIL"],
                cells.collect(),
                l.more,
            )
        }
        Rows::VatStores(l) => {
            let cells = l
                .rows
                .iter()
                .map(|s| vec![s.vat.to_string(), s.key.clone(), s.bytes.to_string()]);
            table(
                "vat stores",
                &["VAT", "KEY", "BYTES"],
                cells.collect(),
                l.more,
            )
        }
    }
}

/// A run-queue item's fields past its kind, as `name=value` pairs (its JSON row's).
fn run_queue_detail(row: &RunQueueRow) -> String {
    let mut detail = String::new();
    if let Json::Object(fields) = run_queue_json(row) {
        for (name, value) in fields {
            if name == "index" || name == "kind" || value.is_null() {
                continue;
            }
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            let gap = if detail.is_empty() { "" } else { " " };
            let _ = write!(detail, "{gap}{name}={value}");
        }
    }
    detail
}

/// The columns of the vats section.
const VAT_HEADERS: [&str; 9] = [
    "VAT",
    "NAME",
    "CODE",
    "SUBCLUSTER",
    "DELIVERIES",
    "SYSCALLS",
    "DENIALS",
    "STORE BYTES/LIMIT",
    "QUEUED/LIMIT",
];

/// A vat's row: counters are `-` when no kernel runs the store (they live in its memory).
fn vat_cells(v: &VatRow, counters: Option<&Counters>) -> Vec<String> {
    let counted = counters.map(|all| all.get(&v.id).copied().unwrap_or_default());
    vec![
        v.id.to_string(),
        v.name.clone(),
        opt(v.code.as_ref()),
        opt(v.subcluster),
        opt(counted.map(|c| c.deliveries)),
        opt(counted.map(|c| c.syscalls)),
        opt(counted.map(|c| c.denials)),
        format!("{}/{}", v.vatstore_bytes, v.limits.vatstore_total_bytes),
        format!("{}/{}", v.queued_messages, v.limits.queued_messages),
    ]
}

fn object_cells(o: &ObjectRow) -> Vec<String> {
    vec![
        o.id.to_string(),
        opt(o.owner),
        format!("{},{}", o.counts.reachable, o.counts.recognizable),
        o.pins.to_string(),
        if o.revoked { "yes" } else { "no" }.to_owned(),
    ]
}

fn promise_cells(p: &PromiseRow) -> Vec<String> {
    let (state, decider, subscribers) = match &p.state {
        PromiseState::Unresolved {
            decider,
            subscribers,
        } => {
            let subs: Vec<String> = subscribers.iter().map(ToString::to_string).collect();
            ("unresolved", opt(*decider), subs.join(","))
        }
        PromiseState::Fulfilled(_) => ("fulfilled", "-".to_owned(), String::new()),
        PromiseState::Rejected(_) => ("rejected", "-".to_owned(), String::new()),
    };
    vec![
        p.id.to_string(),
        state.to_owned(),
        decider,
        if subscribers.is_empty() {
            "-".to_owned()
        } else {
            subscribers
        },
        p.queue_length.to_string(),
        p.refcount.to_string(),
        p.pins.to_string(),
    ]
}
