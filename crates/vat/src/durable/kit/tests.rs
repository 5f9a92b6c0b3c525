//! Durable kind kits driven by hand across incarnations, as the kernel would drive them.

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

type Build = fn(&Vat, &Val, &Baggage) -> Result<Ref>;

/// A vat with a durable `counter` kit: facet `incrementer` (`increment`), facet `reader`
/// (`read`, and `incrementer`, its sibling). The root's `make` makes one and keeps it in
/// baggage.
fn build(vat: &Vat, _parameters: &Val, baggage: &Baggage) -> Result<Ref> {
    let counters = vat
        .durable_kind_kit("counter")
        .facet("incrementer", |facet| {
            facet.method("increment", |_vat, state, _args| {
                let count = state.field("count")?.as_int().unwrap_or(0) + 1;
                state.set_field("count", count)?;
                Ok(count)
            })
        })
        .facet("reader", |facet| {
            facet
                .method("read", |_vat, state, _args| state.field("count"))
                .method("incrementer", |_vat, state, _args| {
                    state.facet("incrementer")
                })
        })
        .build()?;
    let baggage = baggage.clone();
    Ok(vat
        .object("root")
        .method("make", move |_vat, _args| {
            let kit = counters.make(Val::record([("count", 0)]))?;
            baggage.set("counter", kit.clone())?;
            Ok(kit)
        })
        .method("kept", |vat, _args| {
            Ok(vat.baggage().get("counter")?.unwrap_or_default())
        })
        .build())
}

/// The same kit with its facets the other way round.
fn build_reordered(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    vat.durable_kind_kit("counter")
        .facet("reader", |facet| facet)
        .facet("incrementer", |facet| facet)
        .build()?;
    Ok(vat.object("root").build())
}

struct Incarnation {
    runtime: Runtime,
    state: Vec<(String, ByteBuf)>,
}

impl Incarnation {
    fn start(build: Build, state: Vec<(String, ByteBuf)>) -> (Incarnation, DeliveryOutcome) {
        let mut runtime = Runtime::new(build);
        let start = VatStart {
            name: "v".to_owned(),
            parameters: Value::Null,
            state: state.clone(),
        };
        let outcome = runtime.start(start, &mut Host::default());
        let mut me = Incarnation { runtime, state };
        me.apply(outcome.checkpoint.clone());
        (me, outcome)
    }

    fn apply(&mut self, checkpoint: Checkpoint) {
        for (key, value) in checkpoint.sets {
            self.state.retain(|(k, _)| *k != key);
            self.state.push((key, value));
        }
        self.state.retain(|(k, _)| !checkpoint.deletes.contains(k));
        self.state.sort();
    }

    /// Delivers `method()` to `target`; returns the outcome and the answer
    /// `(rejected, value, slots)`.
    fn call(
        &mut self,
        target: &str,
        method: &str,
    ) -> (DeliveryOutcome, Option<(bool, Value, Vec<String>)>) {
        let mut host = Host::default();
        let message = Message::new(method, vec![], vec![], Some("p-1".parse().unwrap()));
        let outcome = self.runtime.deliver(
            Delivery::Message {
                target: target.parse::<VRef>().unwrap(),
                message,
            },
            &mut host,
        );
        self.apply(outcome.checkpoint.clone());
        let answer = host.0.iter().find_map(|syscall| match syscall {
            Syscall::Resolve(resolutions) => {
                let data = &resolutions[0].data;
                let slots = data.slots.iter().map(ToString::to_string).collect();
                Some((resolutions[0].rejected, data.decode().unwrap(), slots))
            }
            _ => None,
        });
        (outcome, answer)
    }

    fn answer(&mut self, target: &str, method: &str) -> (Value, Vec<String>) {
        let (outcome, answer) = self.call(target, method);
        assert_eq!(outcome.error, None);
        let (rejected, value, slots) = answer.unwrap();
        assert!(!rejected, "{value}");
        (value, slots)
    }
}

#[test]
fn a_durable_kit_s_facets_share_one_state_and_answer_a_later_incarnation() {
    let (mut first, outcome) = Incarnation::start(build, Vec::new());
    assert_eq!(outcome.error, None);
    let (_, slots) = first.answer("o+0", "make");
    assert_eq!(slots, ["o+d1/1:0", "o+d1/1:1"], "incrementer, reader");
    assert_eq!(first.answer("o+d1/1:0", "increment").0, Value::Int(1));
    assert_eq!(first.answer("o+d1/1:1", "read").0, Value::Int(1));
    // A facet answers only its own methods (a rejection, not a delivery error).
    let (outcome, answer) = first.call("o+d1/1:0", "read");
    assert_eq!(outcome.error, None);
    assert!(answer.unwrap().0);

    let (mut second, outcome) = Incarnation::start(build, first.state.clone());
    assert_eq!(outcome.error, None);
    assert_eq!(second.answer("o+d1/1:1", "read").0, Value::Int(1));
    assert_eq!(second.answer("o+d1/1:0", "increment").0, Value::Int(2));
    assert_eq!(second.answer("o+d1/1:1", "incrementer").1, ["o+d1/1:0"]);
    assert_eq!(second.answer("o+0", "kept").1, ["o+d1/1:0", "o+d1/1:1"]);
    // The kit has two facets: a third is unknown, as is an unfaceted vref of a kit.
    assert!(second.call("o+d1/1:2", "read").0.error.is_some());
    assert!(second.call("o+d1/1", "read").0.error.is_some());
}

#[test]
fn a_durable_kit_must_be_defined_again_with_the_same_facets() {
    let (mut first, _) = Incarnation::start(build, Vec::new());
    first.answer("o+0", "make");
    let (_, outcome) = Incarnation::start(build_reordered, first.state.clone());
    let error = outcome.error.unwrap_or_default();
    assert!(
        error.contains(r#"was defined with facets ["incrementer", "reader"]"#),
        "{error}"
    );
}

#[test]
fn a_kit_and_a_plain_kind_of_one_name_do_not_mix() {
    let (first, _) = Incarnation::start(build, Vec::new());
    let plain: Build = |vat, _, _| {
        vat.durable_kind("counter").build()?;
        Ok(vat.object("root").build())
    };
    let (_, outcome) = Incarnation::start(plain, first.state.clone());
    assert!(outcome.error.is_some_and(|e| e.contains("facets")));
    let empty: Build = |vat, _, _| {
        vat.durable_kind_kit("empty").build()?;
        Ok(vat.object("root").build())
    };
    let (_, outcome) = Incarnation::start(empty, Vec::new());
    assert!(outcome.error.is_some_and(|e| e.contains("no facets")));
}
