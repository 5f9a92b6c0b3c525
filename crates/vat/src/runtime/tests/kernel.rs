//! A toy kernel for scenario tests: c-lists, kernel promises with deciders, subscribers and
//! queued messages, and a FIFO run queue. It implements just enough of spec §8, §9 and §11
//! to run several SDK vats against each other; an illegal syscall fails the test.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ocap_types::{
    CapData, Delivery, ExportId, Message, Resolution, Syscall, VRef, Value, VatHost, VatLog,
    VatRuntime, VatStart,
};

use crate::runtime::Runtime;

type KRef = String;

#[derive(Default)]
struct Recorder {
    syscalls: Vec<Syscall>,
    test_logs: Vec<String>,
}

impl VatHost for Recorder {
    fn syscall(&mut self, syscall: Syscall) {
        self.syscalls.push(syscall);
    }

    fn log(&mut self, log: VatLog) {
        if log.tags.iter().any(|tag| tag == "test") {
            self.test_logs.push(log.message);
        }
    }
}

struct KernelVat {
    runtime: Runtime,
    clist: BTreeMap<VRef, KRef>,
    reverse: BTreeMap<KRef, VRef>,
    next_import_object: u64,
    next_import_promise: u64,
    test_logs: Vec<String>,
}

enum KPromise {
    Unresolved {
        decider: Option<usize>,
        subscribers: BTreeSet<usize>,
        queue: Vec<(CapData<KRef>, Option<KRef>)>,
    },
    Resolved {
        rejected: bool,
        data: CapData<KRef>,
    },
}

enum Item {
    Send {
        target: KRef,
        methargs: CapData<KRef>,
        result: Option<KRef>,
    },
    Notify {
        vat: usize,
        kpid: KRef,
    },
}

#[derive(Default)]
pub(super) struct Kernel {
    vats: Vec<KernelVat>,
    owners: BTreeMap<KRef, usize>,
    promises: BTreeMap<KRef, KPromise>,
    run_queue: VecDeque<Item>,
    next_object: u64,
    next_promise: u64,
}

impl Kernel {
    /// Starts a vat; returns its index.
    pub(super) fn add_vat(&mut self, name: &str, runtime: Runtime) -> usize {
        let vat_idx = self.vats.len();
        self.vats.push(KernelVat {
            runtime,
            clist: BTreeMap::new(),
            reverse: BTreeMap::new(),
            next_import_object: 1,
            next_import_promise: 1,
            test_logs: Vec::new(),
        });
        let start = VatStart {
            name: name.to_owned(),
            parameters: Value::Null,
            state: Vec::new(),
        };
        let mut recorder = Recorder::default();
        let outcome = self.vats[vat_idx].runtime.start(start, &mut recorder);
        assert_eq!(outcome.error, None, "start {name}");
        self.absorb(vat_idx, recorder);
        vat_idx
    }

    /// The root object of a vat.
    pub(super) fn root(&mut self, vat_idx: usize) -> KRef {
        self.translate_in(vat_idx, VRef::ROOT)
    }

    /// Queues `method(args)` to `target` from outside; returns the result promise.
    pub(super) fn queue_message(
        &mut self,
        target: &str,
        method: &str,
        args: Vec<Value>,
        slots: Vec<KRef>,
    ) -> KRef {
        let result = self.new_promise(None);
        let message = Message::new(method, args, slots, Some(result.clone()));
        self.run_queue.push_back(Item::Send {
            target: target.to_owned(),
            methargs: message.methargs,
            result: Some(result.clone()),
        });
        result
    }

    /// Runs until the run queue is empty.
    pub(super) fn run(&mut self) {
        let mut n_cranks = 0;
        while let Some(item) = self.run_queue.pop_front() {
            n_cranks += 1;
            assert!(n_cranks < 10_000, "runaway");
            match item {
                Item::Send {
                    target,
                    methargs,
                    result,
                } => self.deliver_send(target, methargs, result),
                Item::Notify { vat, kpid } => self.deliver_notify(vat, &kpid),
            }
        }
    }

    /// The settlement of a kernel promise, decoded: `(rejected, value)`.
    pub(super) fn settlement(&self, kpid: &str) -> Option<(bool, Value)> {
        match self.promises.get(kpid)? {
            KPromise::Resolved { rejected, data } => Some((*rejected, data.decode().unwrap())),
            KPromise::Unresolved { .. } => None,
        }
    }

    pub(super) fn test_logs(&self, vat_idx: usize) -> &[String] {
        &self.vats[vat_idx].test_logs
    }

    fn new_promise(&mut self, decider: Option<usize>) -> KRef {
        self.next_promise += 1;
        let kpid = format!("kp{}", self.next_promise);
        self.promises.insert(
            kpid.clone(),
            KPromise::Unresolved {
                decider,
                subscribers: BTreeSet::new(),
                queue: Vec::new(),
            },
        );
        kpid
    }

    /// EtoK: an unknown export creates the kernel object or promise.
    fn translate_in(&mut self, vat_idx: usize, vref: VRef) -> KRef {
        if let Some(kref) = self.vats[vat_idx].clist.get(&vref) {
            return kref.clone();
        }
        let kref = match vref {
            VRef::ExportObject(_) => {
                self.next_object += 1;
                let koid = format!("ko{}", self.next_object);
                self.owners.insert(koid.clone(), vat_idx);
                koid
            }
            VRef::ExportPromise(_) => self.new_promise(Some(vat_idx)),
            _ => panic!("illegal syscall: {vref} is not an export reference"),
        };
        let vat = &mut self.vats[vat_idx];
        vat.clist.insert(vref, kref.clone());
        vat.reverse.insert(kref.clone(), vref);
        kref
    }

    /// KtoE with import.
    fn translate_out(&mut self, vat_idx: usize, kref: &str) -> VRef {
        let vat = &mut self.vats[vat_idx];
        if let Some(vref) = vat.reverse.get(kref) {
            return *vref;
        }
        let vref = if kref.starts_with("kp") {
            vat.next_import_promise += 1;
            VRef::ImportPromise(vat.next_import_promise - 1)
        } else {
            vat.next_import_object += 1;
            VRef::ImportObject(vat.next_import_object - 1)
        };
        vat.clist.insert(vref, kref.to_owned());
        vat.reverse.insert(kref.to_owned(), vref);
        vref
    }

    fn data_in(&mut self, vat_idx: usize, data: &CapData<VRef>) -> CapData<KRef> {
        CapData {
            body: data.body.clone(),
            slots: data
                .slots
                .iter()
                .map(|vref| self.translate_in(vat_idx, *vref))
                .collect(),
        }
    }

    fn data_out(&mut self, vat_idx: usize, data: &CapData<KRef>) -> CapData<VRef> {
        CapData {
            body: data.body.clone(),
            slots: data
                .slots
                .iter()
                .map(|kref| self.translate_out(vat_idx, kref))
                .collect(),
        }
    }

    fn deliver_send(&mut self, target: KRef, methargs: CapData<KRef>, result: Option<KRef>) {
        let target = match self.promises.get_mut(&target) {
            None => target,
            Some(KPromise::Unresolved { queue, .. }) => {
                queue.push((methargs, result));
                return;
            }
            Some(KPromise::Resolved { rejected, data }) => {
                let single = data.single_ref().cloned();
                match (*rejected, single) {
                    (false, Some(kref)) => {
                        self.run_queue.push_front(Item::Send {
                            target: kref,
                            methargs,
                            result,
                        });
                        return;
                    }
                    (rejected, _) => {
                        let data = if rejected {
                            data.clone()
                        } else {
                            CapData::error("not an object")
                        };
                        if let Some(result) = result {
                            self.resolve(&result, true, data);
                        }
                        return;
                    }
                }
            }
        };
        let vat_idx = self.owners[&target];
        if let Some(result) = &result
            && let Some(KPromise::Unresolved { decider, .. }) = self.promises.get_mut(result)
        {
            *decider = Some(vat_idx);
        }
        let target = self.translate_out(vat_idx, &target);
        assert!(matches!(target, VRef::ExportObject(ExportId::Ephemeral(_))));
        let methargs = self.data_out(vat_idx, &methargs);
        let result = result.map(|kpid| self.translate_out(vat_idx, &kpid));
        self.deliver(
            vat_idx,
            Delivery::Message {
                target,
                message: Message { methargs, result },
            },
        );
    }

    fn deliver_notify(&mut self, vat_idx: usize, kpid: &str) {
        if !self.vats[vat_idx].reverse.contains_key(kpid) {
            return;
        }
        // The promise and every settled promise reachable from its value (spec §5.6).
        let mut todo = vec![kpid.to_owned()];
        let mut seen = BTreeSet::new();
        let mut resolutions = Vec::new();
        while let Some(kpid) = todo.pop() {
            if !seen.insert(kpid.clone()) {
                continue;
            }
            let Some(KPromise::Resolved { rejected, data }) = self.promises.get(&kpid) else {
                continue;
            };
            let (rejected, data) = (*rejected, data.clone());
            todo.extend(data.slots.iter().filter(|s| s.starts_with("kp")).cloned());
            resolutions.push(Resolution {
                promise: self.translate_out(vat_idx, &kpid),
                rejected,
                data: self.data_out(vat_idx, &data),
            });
        }
        self.deliver(vat_idx, Delivery::Notify(resolutions));
    }

    fn deliver(&mut self, vat_idx: usize, delivery: Delivery) {
        let mut recorder = Recorder::default();
        let outcome = self.vats[vat_idx].runtime.deliver(delivery, &mut recorder);
        assert_eq!(outcome.error, None, "delivery error in vat {vat_idx}");
        self.absorb(vat_idx, recorder);
    }

    fn absorb(&mut self, vat_idx: usize, recorder: Recorder) {
        self.vats[vat_idx].test_logs.extend(recorder.test_logs);
        for syscall in recorder.syscalls {
            self.syscall(vat_idx, syscall);
        }
    }

    fn syscall(&mut self, vat_idx: usize, syscall: Syscall) {
        match syscall {
            Syscall::Send { target, message } => {
                let target = self.translate_in(vat_idx, target);
                let methargs = self.data_in(vat_idx, &message.methargs);
                let result = message.result.map(|vpid| self.translate_in(vat_idx, vpid));
                self.run_queue.push_back(Item::Send {
                    target,
                    methargs,
                    result,
                });
            }
            Syscall::Subscribe(vpid) => {
                let kpid = self.translate_in(vat_idx, vpid);
                match self.promises.get_mut(&kpid) {
                    Some(KPromise::Unresolved { subscribers, .. }) => {
                        subscribers.insert(vat_idx);
                    }
                    _ => self
                        .run_queue
                        .push_back(Item::Notify { vat: vat_idx, kpid }),
                }
            }
            Syscall::Resolve(resolutions) => {
                for resolution in resolutions {
                    let kpid = self.translate_in(vat_idx, resolution.promise);
                    let data = self.data_in(vat_idx, &resolution.data);
                    match &self.promises[&kpid] {
                        KPromise::Unresolved { decider, .. } => {
                            assert_eq!(*decider, Some(vat_idx), "illegal syscall: not decider");
                        }
                        KPromise::Resolved { .. } => panic!("illegal syscall: {kpid} settled"),
                    }
                    self.resolve(&kpid, resolution.rejected, data);
                }
            }
            other => panic!("unexpected syscall {other:?}"),
        }
    }

    fn resolve(&mut self, kpid: &str, rejected: bool, data: CapData<KRef>) {
        let previous = self
            .promises
            .insert(kpid.to_owned(), KPromise::Resolved { rejected, data });
        let Some(KPromise::Unresolved {
            subscribers, queue, ..
        }) = previous
        else {
            panic!("{kpid} resolved twice");
        };
        for vat in subscribers {
            self.run_queue.push_back(Item::Notify {
                vat,
                kpid: kpid.to_owned(),
            });
        }
        for (methargs, result) in queue {
            self.run_queue.push_back(Item::Send {
                target: kpid.to_owned(),
                methargs,
                result,
            });
        }
    }
}
