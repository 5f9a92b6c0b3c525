//! Classes and kits: instances, guards, facets, the receiver, and calls from the kernel.

use std::cell::RefCell;
use std::rc::Rc;

use ocap_types::{Delivery, Message, Syscall, VRef, Value, VatHost, VatLog, VatRuntime, VatStart};

use crate::{ClassKit, E, Guard, MethodGuard, Ref, Result, Runtime, Val, Vat};

#[derive(Default)]
struct Host(Vec<Syscall>);

impl VatHost for Host {
    fn syscall(&mut self, syscall: Syscall) {
        self.0.push(syscall);
    }
    fn log(&mut self, _log: VatLog) {}
}

fn start(runtime: &mut Runtime, host: &mut Host) {
    let start = VatStart {
        name: "v".to_owned(),
        parameters: Value::Null,
        state: Vec::new(),
    };
    assert_eq!(runtime.start(start, host).error, None);
}

/// Runs `body` inside a vat's build function; its failure fails the test.
fn in_vat(body: impl FnOnce(&Vat) -> Result<()> + 'static) {
    let mut runtime = Runtime::new(move |vat, _parameters, _baggage| {
        body(vat)?;
        Ok(vat.object("root").build())
    });
    start(&mut runtime, &mut Host::default());
}

/// A `Counter` class over an `f64`, its methods guarded.
fn counter_class(vat: &Vat) -> crate::Class<f64> {
    vat.class::<f64>("Counter")
        .method("getValue", |_vat, this, _args| Ok(Val::number(this.get()?)))
        .method_guarded(
            "increment",
            MethodGuard::call([Guard::Number]).returns(Guard::Number),
            |_vat, this, args| {
                let by = args.number(0)?;
                this.update(|value| {
                    *value += by;
                    Val::number(*value)
                })
            },
        )
        .build()
}

fn temperature_kit(vat: &Vat) -> ClassKit<f64> {
    vat.class_kit::<f64>("Temperature")
        .facet("celsius", |facet| {
            facet
                .method("getCelsius", |_vat, this, _args| {
                    Ok(Val::number(this.get()?))
                })
                .method("fahrenheit", |_vat, this, _args| this.facet("fahrenheit"))
        })
        .facet("fahrenheit", |facet| {
            facet
                .method("getFahrenheit", |_vat, this, _args| {
                    Ok(Val::number(this.get()? * 9.0 / 5.0 + 32.0))
                })
                .method_guarded("setFahrenheit", [Guard::Number], |_vat, this, args| {
                    let fahrenheit = args.number(0)?;
                    this.set((fahrenheit - 32.0) * 5.0 / 9.0)?;
                    Ok(Val::number(fahrenheit))
                })
                .method("me", |_vat, this, _args| this.me())
        })
        .build()
}

#[test]
fn instances_of_a_class_have_their_own_state() {
    in_vat(|vat| {
        let counters = counter_class(vat);
        assert_eq!(counters.name(), "Counter");
        let (a, b) = (counters.make(1.0), counters.make(100.0));
        assert_eq!(a.iface(), "Counter");
        assert_ne!(a, b);
        assert_eq!(a.call("increment", [2])?, Val::from(3));
        assert_eq!(a.call("increment", [0.5])?, Val::from(3.5));
        assert_eq!(b.call("getValue", ())?, Val::from(100));
        Ok(())
    });
}

#[test]
fn a_class_guard_rejects_before_the_method_runs() {
    in_vat(|vat| {
        let counter = counter_class(vat).make(8.0);
        let error = counter.call("increment", ["foo"]).unwrap_err();
        assert_eq!(
            error.message(),
            r#"In "increment" method of (Counter): arg 0: string "foo" - Must be a number"#
        );
        assert_eq!(counter.call("getValue", ())?, Val::from(8));
        // Negative numbers are numbers.
        assert_eq!(counter.call("increment", [-3])?, Val::from(5));
        let error = counter.call("reset", ()).unwrap_err();
        assert_eq!(error.message(), r#""Counter" has no method "reset""#);
        Ok(())
    });
}

#[test]
fn a_kits_facets_share_state_and_answer_only_their_own_methods() {
    in_vat(|vat| {
        let kit = temperature_kit(vat).make(25.0);
        let (celsius, fahrenheit) = (kit.facet("celsius")?, kit.facet("fahrenheit")?);
        assert_eq!(celsius.iface(), "Temperature celsius");
        assert_eq!(fahrenheit.iface(), "Temperature fahrenheit");
        assert_eq!(fahrenheit.call("getFahrenheit", ())?, Val::from(77));
        assert_eq!(fahrenheit.call("setFahrenheit", [68])?, Val::from(68));
        assert_eq!(celsius.call("getCelsius", ())?, Val::from(20));
        let error = celsius.call("getFahrenheit", ()).unwrap_err();
        assert_eq!(
            error.message(),
            r#""Temperature celsius" has no method "getFahrenheit""#
        );
        let error = fahrenheit.call("setFahrenheit", ["hot"]).unwrap_err();
        assert_eq!(
            error.message(),
            r#"In "setFahrenheit" method of (Temperature fahrenheit): arg 0: string "hot" - Must be a number"#
        );
        assert!(kit.facet("kelvin").is_err());
        // Two instances do not share state.
        let other = temperature_kit(vat).make(0.0);
        assert_eq!(
            other.facet("celsius")?.call("getCelsius", ())?,
            Val::from(0)
        );
        Ok(())
    });
}

#[test]
fn the_receiver_reaches_its_own_object_and_its_sibling_facets() {
    in_vat(|vat| {
        let kit = temperature_kit(vat).make(25.0);
        let (celsius, fahrenheit) = (kit.facet("celsius")?, kit.facet("fahrenheit")?);
        assert_eq!(celsius.call("fahrenheit", ())?, Val::from(&fahrenheit));
        assert_eq!(fahrenheit.call("me", ())?, Val::from(&fahrenheit));
        Ok(())
    });
}

#[test]
fn the_state_cannot_be_read_while_it_is_being_updated() {
    in_vat(|vat| {
        let class = vat
            .class::<i64>("Nested")
            .method("nested", |_vat, this, _args| {
                let inner = this.update(|_| this.get().map(|_| ()).unwrap_err())?;
                Ok(inner.message())
            })
            .build();
        assert_eq!(
            class.make(1).call("nested", ())?,
            Val::from("the state of (Nested) is already being updated")
        );
        Ok(())
    });
}

#[test]
fn a_kit_is_a_record_of_its_facets() {
    in_vat(|vat| {
        let kit = temperature_kit(vat).make(0.0);
        let as_val = Val::from(kit.clone());
        let fields = as_val.as_record().ok_or("not a record")?;
        assert_eq!(fields.keys().collect::<Vec<_>>(), ["celsius", "fahrenheit"]);
        assert_eq!(
            fields.get("celsius"),
            Some(&Val::from(kit.facet("celsius")?))
        );
        assert_eq!(kit.facets().len(), 2);
        Ok(())
    });
}

#[test]
fn calling_directly_needs_a_local_method_that_answers_at_once() {
    in_vat(|vat| {
        let slow = vat
            .class::<()>("Slow")
            .method_async("later", async |_vat, _this, _args| Ok(1))
            .build()
            .make(());
        let error = slow.call("later", ()).unwrap_err();
        assert_eq!(
            error.message(),
            r#""later" of (Slow) answers later: send it with E() instead"#
        );
        Ok(())
    });
}

/// A vat whose root makes counters and temperature kits for the kernel; records what the
/// root answered on each delivery.
struct Driven {
    runtime: Runtime,
    host: Host,
}

impl Driven {
    fn new() -> Driven {
        let mut runtime = Runtime::new(|vat, _parameters, _baggage| {
            let counters = counter_class(vat);
            let temperatures = temperature_kit(vat);
            let async_class = vat
                .class::<i64>("Async")
                .guard(
                    "double",
                    MethodGuard::call([Guard::Int]).returns(Guard::Int),
                )
                .method_async("double", async |_vat, this, args| {
                    let me = this.me()?;
                    let answer = E(&me).send("get", ()).await?;
                    Ok(answer.as_int().unwrap_or(0) * args.int(0)?)
                })
                .method("get", |_vat, this, _args| this.get())
                .build();
            Ok(vat
                .object("root")
                .method("counter", move |_vat, args| {
                    Ok(counters.make(args.number(0)?))
                })
                .method("temperature", move |_vat, _args| {
                    Ok(temperatures.make(100.0))
                })
                .method("async", move |_vat, _args| Ok(async_class.make(21)))
                .build())
        });
        let mut host = Host::default();
        start(&mut runtime, &mut host);
        Driven { runtime, host }
    }

    /// Delivers `method(args)` to `target`; the resolution of the result `p-1`:
    /// `(rejected, body, slots)`.
    fn call(&mut self, target: &str, method: &str, args: Vec<Value>) -> (bool, Value, Vec<VRef>) {
        self.host.0.clear();
        let message = Message::new(method, args, vec![], Some("p-1".parse().unwrap()));
        let outcome = self.runtime.deliver(
            Delivery::Message {
                target: target.parse().unwrap(),
                message,
            },
            &mut self.host,
        );
        assert_eq!(outcome.error, None);
        self.host
            .0
            .iter()
            .find_map(|syscall| match syscall {
                Syscall::Resolve(resolutions) => {
                    let resolution = &resolutions[0];
                    let data = &resolution.data;
                    Some((
                        resolution.rejected,
                        data.decode().unwrap(),
                        data.slots.clone(),
                    ))
                }
                _ => None,
            })
            .unwrap()
    }
}

#[test]
fn a_guard_rejects_a_message_from_the_kernel_and_the_vat_carries_on() {
    let mut vat = Driven::new();
    let (_, _, slots) = vat.call("o+0", "counter", vec![Value::Int(1)]);
    let counter = slots[0].to_string();
    let (rejected, reason, _) = vat.call(&counter, "increment", vec![Value::str("foo")]);
    assert!(rejected);
    assert_eq!(
        reason,
        Value::Error {
            name: "Error".to_owned(),
            message:
                r#"In "increment" method of (Counter): arg 0: string "foo" - Must be a number"#
                    .to_owned()
        }
    );
    assert_eq!(
        vat.call(&counter, "increment", vec![Value::Int(2)]),
        (false, Value::Int(3), vec![])
    );
}

#[test]
fn a_kit_leaves_the_vat_with_its_facets_in_key_order() {
    let mut vat = Driven::new();
    let (rejected, body, slots) = vat.call("o+0", "temperature", vec![]);
    assert!(!rejected);
    let slot = |index: u32, iface: &str| Value::Slot {
        index,
        iface: Some(iface.to_owned()),
    };
    assert_eq!(
        body,
        Value::Record(
            [
                ("celsius".to_owned(), slot(0, "Temperature celsius")),
                ("fahrenheit".to_owned(), slot(1, "Temperature fahrenheit")),
            ]
            .into()
        )
    );
    let (celsius, fahrenheit) = (slots[0].to_string(), slots[1].to_string());
    assert_eq!(vat.call(&celsius, "getCelsius", vec![]).1, Value::Int(100));
    assert_eq!(
        vat.call(&fahrenheit, "getFahrenheit", vec![]).1,
        Value::Int(212)
    );
    // The facet found through the receiver is the one the kernel knows.
    let (_, _, found) = vat.call(&celsius, "fahrenheit", vec![]);
    assert_eq!(found, [slots[1]]);
}

#[test]
fn an_async_method_is_guarded_and_may_await_its_own_instance() {
    let mut vat = Driven::new();
    let (_, _, slots) = vat.call("o+0", "async", vec![]);
    let target = slots[0].to_string();
    assert_eq!(
        vat.call(&target, "double", vec![Value::Int(2)]),
        (false, Value::Int(42), vec![])
    );
    let (rejected, reason, _) = vat.call(&target, "double", vec![Value::Float(0.5)]);
    assert!(rejected);
    assert_eq!(
        reason,
        Value::Error {
            name: "Error".to_owned(),
            message: r#"In "double" method of (Async): arg 0: number 0.5 - Must be an integer"#
                .to_owned()
        }
    );
}

#[test]
fn an_instance_lives_while_something_holds_it() {
    let seen = Rc::new(RefCell::new(None::<Ref>));
    let keep = Rc::clone(&seen);
    in_vat(move |vat| {
        let kit = temperature_kit(vat).make(1.0);
        let celsius = kit.facet("celsius")?;
        drop(kit);
        // The fahrenheit facet is gone with the kit; celsius still answers, and its
        // state is still there.
        assert_eq!(celsius.call("getCelsius", ())?, Val::from(1));
        assert_eq!(
            celsius.call("fahrenheit", ()).unwrap_err().message(),
            r#"facet "fahrenheit" of (Temperature) is gone"#
        );
        *keep.borrow_mut() = Some(celsius);
        Ok(())
    });
    assert!(seen.borrow().is_some());
}
