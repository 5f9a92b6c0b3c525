//! Durable kinds driven by hand across incarnations, as the kernel would drive them.

use ocap_types::{
    ByteBuf, Checkpoint, Delivery, DeliveryOutcome, Message, Syscall, VRef, Value, VatHost, VatLog,
    VatRuntime, VatStart,
};

use crate::{Baggage, Ref, Result, Runtime, Val, Vat};

#[derive(Default)]
struct Host(Vec<Syscall>);

impl VatHost for Host {
    fn syscall(&mut self, syscall: Syscall) {
        self.0.push(syscall);
    }
    fn log(&mut self, _log: VatLog) {}
}

/// A vat with a durable `counter` kind; `make` makes one (kept in baggage as `counter`),
/// `ephemeral` makes a plain object, `kept` answers the counter in baggage.
fn build(vat: &Vat, _parameters: &Val, baggage: &Baggage) -> Result<Ref> {
    let counters = vat
        .durable_kind("counter")
        .method("increment", |_vat, state, _args| {
            let count = state.field("count")?.as_int().unwrap_or(0) + 1;
            state.set_field("count", count)?;
            Ok(count)
        })
        .build()?;
    let baggage = baggage.clone();
    Ok(vat
        .object("root")
        .method("make", move |_vat, _args| {
            let counter = counters.make(Val::record([("count", 10)]))?;
            baggage.set("counter", counter.clone())?;
            Ok(counter)
        })
        .method("ephemeral", |vat, _args| Ok(vat.object("thing").build()))
        .method("kept", |vat, _args| {
            Ok(vat.baggage().get("counter")?.unwrap_or_default())
        })
        .build())
}

struct Incarnation {
    runtime: Runtime,
    host: Host,
    state: Vec<(String, ByteBuf)>,
}

impl Incarnation {
    fn start(state: Vec<(String, ByteBuf)>) -> Incarnation {
        let mut me = Incarnation {
            runtime: Runtime::new(build),
            host: Host::default(),
            state,
        };
        let start = VatStart {
            name: "v".to_owned(),
            parameters: Value::Null,
            state: me.state.clone(),
        };
        let outcome = me.runtime.start(start, &mut me.host);
        assert_eq!(outcome.error, None);
        me.apply(outcome.checkpoint);
        me
    }

    fn apply(&mut self, checkpoint: Checkpoint) {
        for (key, value) in checkpoint.sets {
            self.state.retain(|(k, _)| *k != key);
            self.state.push((key, value));
        }
        self.state.retain(|(k, _)| !checkpoint.deletes.contains(k));
        self.state.sort();
    }

    /// Delivers `method()` to `target`; returns the outcome and the answer's data.
    fn call(
        &mut self,
        target: &str,
        method: &str,
    ) -> (DeliveryOutcome, Option<(Value, Vec<VRef>)>) {
        self.host.0.clear();
        let message = Message::new(method, vec![], vec![], Some("p-1".parse().unwrap()));
        let outcome = self.runtime.deliver(
            Delivery::Message {
                target: target.parse().unwrap(),
                message,
            },
            &mut self.host,
        );
        self.apply(outcome.checkpoint.clone());
        let answer = self.host.0.iter().find_map(|syscall| match syscall {
            Syscall::Resolve(resolutions) => {
                let data = &resolutions[0].data;
                Some((data.decode().unwrap(), data.slots.clone()))
            }
            _ => None,
        });
        (outcome, answer)
    }
}

#[test]
fn durable_objects_answer_a_later_incarnation_ephemeral_ones_do_not() {
    let mut first = Incarnation::start(Vec::new());
    let (_, made) = first.call("o+0", "make");
    assert_eq!(made.unwrap().1[0].to_string(), "o+d1/1");
    let (_, ephemeral) = first.call("o+0", "ephemeral");
    assert_eq!(ephemeral.unwrap().1[0].to_string(), "o+1");
    let (_, answer) = first.call("o+d1/1", "increment");
    assert_eq!(answer.unwrap().0, Value::Int(11));

    let mut second = Incarnation::start(first.state.clone());
    let (outcome, answer) = second.call("o+d1/1", "increment");
    assert_eq!(outcome.error, None);
    assert_eq!(answer.unwrap().0, Value::Int(12));
    // The same instance comes back out of baggage, under the same vref.
    let (_, kept) = second.call("o+0", "kept");
    assert_eq!(kept.unwrap().1[0].to_string(), "o+d1/1");
    // A new instance gets the next number; the ephemeral object of the first is gone.
    let (_, made) = second.call("o+0", "make");
    assert_eq!(made.unwrap().1[0].to_string(), "o+d1/2");
    let (outcome, _) = second.call("o+1", "anything");
    assert!(outcome.error.is_some());
}

#[test]
fn an_instance_whose_kind_is_not_defined_again_is_unknown() {
    let mut first = Incarnation::start(Vec::new());
    first.call("o+0", "make");
    let mut runtime = Runtime::new(|vat, _parameters, _baggage| Ok(vat.object("root").build()));
    let mut host = Host::default();
    let start = VatStart {
        name: "v".to_owned(),
        parameters: Value::Null,
        state: first.state.clone(),
    };
    assert_eq!(runtime.start(start, &mut host).error, None);
    let message = Message::new("increment", vec![], vec![], Some("p-1".parse().unwrap()));
    let outcome = runtime.deliver(
        Delivery::Message {
            target: "o+d1/1".parse().unwrap(),
            message,
        },
        &mut host,
    );
    assert!(outcome.error.is_some());
}

#[test]
fn a_kind_is_defined_once_per_incarnation() {
    let mut runtime = Runtime::new(|vat, _parameters, _baggage| {
        vat.durable_kind("k").build()?;
        vat.durable_kind("k").build()?;
        Ok(vat.object("root").build())
    });
    let start = VatStart {
        name: "v".to_owned(),
        parameters: Value::Null,
        state: Vec::new(),
    };
    let outcome = runtime.start(start, &mut Host::default());
    assert!(
        outcome
            .error
            .as_deref()
            .is_some_and(|e| e.contains("already defined")),
        "{outcome:?}"
    );
}
