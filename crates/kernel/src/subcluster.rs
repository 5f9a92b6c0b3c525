//! Launching a subcluster (spec §15.1): its vats in order, then the bootstrap message.

use std::collections::BTreeMap;

use ocap_queue::{Crank, KernelState, Mode};
use ocap_store::{SubclusterRecord, VatRecord};
use ocap_types::{
    CapData, ClusterConfig, KObjectId, KPromiseId, KRef, Message, SubclusterId, Value, VatId,
};

use crate::core::Core;
use crate::error::KernelError;
use crate::handle::{ResultHandle, Settlement};
use crate::oneshot;

/// What a launched subcluster looks like before its bootstrap result is in.
#[derive(Debug)]
pub(crate) struct Launched {
    pub(crate) subcluster: SubclusterId,
    pub(crate) root: KObjectId,
    pub(crate) bootstrap: ResultHandle,
}

/// Launches every vat of `config` and queues `bootstrap(roots, services)` to the bootstrap
/// vat, all in one transaction: if any vat fails to launch nothing is kept (the ids it
/// consumed stay consumed) and the vats already started are stopped.
pub(crate) fn launch(
    core: &mut Core,
    state: &mut KernelState,
    config: &ClusterConfig,
) -> Result<Launched, KernelError> {
    config.validate()?;
    let mut started = Vec::new();
    let launched = state.transaction(|crank| launch_in_crank(core, crank, config, &mut started));
    match launched {
        Ok((launched, settled)) => {
            core.fire_settled(state, &settled);
            Ok(launched)
        }
        Err(error) => {
            for vat in started {
                core.vats.forget(vat);
            }
            Err(error)
        }
    }
}

fn launch_in_crank(
    core: &mut Core,
    crank: &mut Crank<'_>,
    config: &ClusterConfig,
    started: &mut Vec<VatId>,
) -> Result<Launched, KernelError> {
    let subcluster = crank.store_mut().allocate_subcluster_id()?;
    let services = services_of(core, config)?;
    let mut vats = Vec::new();
    for (name, vat_config) in &config.vats.0 {
        let vat = crank.store_mut().allocate_vat_id()?;
        let record = VatRecord {
            name: name.clone(),
            config: vat_config.clone(),
            subcluster: Some(subcluster),
            bundle_hash: None,
        };
        vats.push((name, vat, record));
    }
    // Every worker process starts up side by side; the vats start one after another.
    core.vats
        .prespawn(vats.iter().map(|(_, vat, record)| (*vat, record)));
    let launched = launch_vats(core, crank, vats, started);
    core.vats.discard_prespawned();
    let (roots, members) = launched?;
    crank.store_mut().put_subcluster(
        subcluster,
        &SubclusterRecord {
            config: config.clone(),
            vats: members,
        },
    )?;
    let root = *roots
        .get(&config.bootstrap)
        .expect("invariant: validate checked the bootstrap vat exists");
    // Records have sorted keys, so slots follow the sorted vat names.
    let mut slots = Vec::new();
    let mut record = BTreeMap::new();
    for (index, (name, object)) in roots.iter().enumerate() {
        let index = u32::try_from(index).expect("invariant: fewer than 2^32 vats");
        record.insert(
            name.clone(),
            Value::Slot {
                index,
                iface: Some(name.clone()),
            },
        );
        slots.push(KRef::Object(*object));
    }
    let mut service_record = BTreeMap::new();
    for (name, object) in services {
        let index = u32::try_from(slots.len()).expect("invariant: fewer than 2^32 slots");
        service_record.insert(
            name.clone(),
            Value::Slot {
                index,
                iface: Some(name),
            },
        );
        slots.push(KRef::Object(object));
    }
    let args = vec![Value::Record(record), Value::Record(service_record)];
    let (sender, receiver) = oneshot::channel();
    let promise = queue_host_message(
        core,
        crank,
        KRef::Object(root),
        "bootstrap",
        args,
        slots,
        sender,
    )?;
    let bootstrap = ResultHandle::new(promise, receiver);
    Ok(Launched {
        subcluster,
        root,
        bootstrap,
    })
}

/// The roots and members of a subcluster whose vats are launched, in order.
type LaunchedVats = (BTreeMap<String, KObjectId>, Vec<(String, VatId)>);

/// Launches `vats` in order, noting in `started` each one that started.
fn launch_vats(
    core: &mut Core,
    crank: &mut Crank<'_>,
    vats: Vec<(&String, VatId, VatRecord)>,
    started: &mut Vec<VatId>,
) -> Result<LaunchedVats, KernelError> {
    let mut roots = BTreeMap::new();
    let mut members = Vec::new();
    for (name, vat, record) in vats {
        let root = core.vats.launch_vat(crank, vat, &record)?;
        started.push(vat);
        roots.insert(name.clone(), root);
        members.push((name.clone(), vat));
    }
    Ok((roots, members))
}

/// Queues a message from the host with a fresh result promise the host subscribes to
/// (spec §13.1). Runs inside the caller's transaction. Input that would be refused is
/// refused before anything is allocated ([`check_host_message`]).
pub(crate) fn queue_host_message(
    core: &mut Core,
    crank: &mut Crank<'_>,
    target: KRef,
    method: &str,
    args: Vec<Value>,
    slots: Vec<KRef>,
    subscriber: oneshot::Sender<Settlement>,
) -> Result<KPromiseId, KernelError> {
    let methargs = check_host_message(crank.store(), method, args, slots)?;
    queue_checked_host_message(core, crank, target, methargs, subscriber)
}

/// The `methargs` of a host message, or the reason the kernel refuses it
/// ([`KernelError::Input`]): a slot naming nothing, or a message too large. It only reads,
/// so a refused message leaves nothing behind.
pub(crate) fn check_host_message(
    store: &ocap_store::KernelStore,
    method: &str,
    args: Vec<Value>,
    slots: Vec<KRef>,
) -> Result<CapData<KRef>, KernelError> {
    crate::input::check_known(store, &slots)?;
    let methargs = Value::List(vec![Value::str(method), Value::List(args)]);
    let methargs = CapData::new(&methargs, slots);
    crate::input::check_size(&methargs)?;
    Ok(methargs)
}

/// Queues a host message [`check_host_message`] accepted. Its errors are the kernel's
/// (the store failed), never the input's: a batch of host messages needs no savepoint
/// per message.
pub(crate) fn queue_checked_host_message(
    core: &mut Core,
    crank: &mut Crank<'_>,
    target: KRef,
    methargs: CapData<KRef>,
    subscriber: oneshot::Sender<Settlement>,
) -> Result<KPromiseId, KernelError> {
    // Pinned for the host: settled promises are collected once nothing names them, but a
    // host has no way yet to say it is done with a result and the refs in its value.
    let result = crank.store_mut().create_pinned_promise(None)?;
    core.subscribe(result, subscriber);
    let message = Message {
        methargs,
        result: Some(KRef::Promise(result)),
    };
    crank.enqueue_send(target, message, None, Mode::Immediate)?;
    Ok(result)
}

/// The kernel services the config asks for, by name (spec §15.1 step 4b).
fn services_of(
    core: &Core,
    config: &ClusterConfig,
) -> Result<BTreeMap<String, KObjectId>, KernelError> {
    let mut out = BTreeMap::new();
    for name in &config.services {
        let object = core
            .services
            .get(name)
            .ok_or_else(|| KernelError::NoSuchService { name: name.clone() })?;
        out.insert(name.clone(), object);
    }
    Ok(out)
}
