//! `exo-test`: the SDK's exo features through the kernel (spec §21.5) — guarded classes, a
//! two-facet class kit, a guarded object over a closure variable, map and set stores, and a
//! counter kept in baggage.
//!
//! Test logs carry the tags `test` and the `name` parameter (`ExoTest` in the scenario), as
//! the reference vat's sub-logger does. The texts below are the scenario's, except the
//! SDK's own error texts (the guard's, the missing method's), which are the Rust SDK's.

use std::cell::Cell;
use std::rc::Rc;

use ocap_vat::VatRuntime;
use ocap_vat::{
    Args, Baggage, Class, ClassKit, Error, Guard, Kit, Logger, MapStore, MethodGuard, Object, Ref,
    Reply, Result, Runtime, SetStore, Val, Vat,
};

pub(crate) fn runtime() -> Box<dyn VatRuntime> {
    Runtime::boxed(build)
}

/// A person's state.
#[derive(Debug, Clone)]
struct Person {
    name: String,
    age: f64,
    friends: Vec<Val>,
}

/// The vat's classes, objects and stores.
struct Exo {
    tlog: Logger,
    counter: Class<f64>,
    person: Class<Person>,
    temperature: ClassKit<f64>,
    simple_counter: Ref,
    /// The value the simple counter works on (the reference's closure variable).
    counter_value: Rc<Cell<f64>>,
    map: MapStore,
    set: SetStore,
}

/// The root (interface `root`):
///
/// * `bootstrap()` → `exo-test-complete`, after exercising every feature (spec §21.5.1);
/// * `testScalarStore()` → `scalar-store-tests-complete` (§21.5.2);
/// * `createCounter(n = 0)` → a new `Counter`; `createPerson(name, age)` → a new `Person`;
///   `createOrUpdateInMap(key, value)` → the map's size; `getFromMap(key)` → the value or
///   `null` (§21.5.3);
/// * `testExoClass()` → `exoClass-tests-complete` (§21.5.4);
/// * `testExoClassKit()` → `exoClassKit-tests-complete` (§21.5.5);
/// * `createTemperature(celsius = 0)` → the record `{celsius, fahrenheit}` of a new
///   `Temperature` kit's facets (§21.5.6).
fn build(vat: &Vat, parameters: &Val, baggage: &Baggage) -> Result<Ref> {
    let name = parameters
        .get("name")
        .and_then(Val::as_str)
        .unwrap_or("anonymous")
        .to_owned();
    let tlog = vat.logger().with_tag("test").with_tag(&name);
    vat.logger().info(format!("{name}: buildRootObject"));

    let counter = counter_class(vat);
    let person = person_class(vat);
    let temperature = temperature_kit(vat);

    if baggage.has("initialized") {
        tlog.info("state already initialized");
    } else {
        baggage.set("initialized", true)?;
        baggage.set("counterValue", 0)?;
        tlog.info("initializing state");
    }
    let stored = baggage.get("counterValue")?.unwrap_or(Val::Undefined);
    tlog.info(format!("counter value from baggage: {stored}"));
    let counter_value = Rc::new(Cell::new(stored.as_number().unwrap_or(0.0)));

    let exo = Exo {
        tlog,
        counter,
        person,
        temperature,
        simple_counter: simple_counter(vat, &counter_value),
        counter_value,
        map: MapStore::new("testMap"),
        set: SetStore::new("testSet"),
    };
    Ok(vat.make("root", Root(exo)))
}

/// The guards of the `Counter` interface: `getValue()`, `increment(number)`,
/// `decrement(number)`, all answering a number.
fn counter_guards() -> [(&'static str, MethodGuard); 3] {
    [
        ("getValue", MethodGuard::call([]).returns(Guard::Number)),
        (
            "increment",
            MethodGuard::call([Guard::Number]).returns(Guard::Number),
        ),
        (
            "decrement",
            MethodGuard::call([Guard::Number]).returns(Guard::Number),
        ),
    ]
}

/// `Counter`: a number, with `getValue`, `increment(n)` and `decrement(n)`.
fn counter_class(vat: &Vat) -> Class<f64> {
    let mut class = vat.class::<f64>("Counter");
    for (method, guard) in counter_guards() {
        class = class.guard(method, guard);
    }
    class
        .method("getValue", |_vat, this, _args| Ok(Val::number(this.get()?)))
        .method("increment", |_vat, this, args| {
            let by = args.number(0)?;
            this.update(|value| {
                *value += by;
                Val::number(*value)
            })
        })
        .method("decrement", |_vat, this, args| {
            let by = args.number(0)?;
            this.update(|value| {
                *value -= by;
                Val::number(*value)
            })
        })
        .build()
}

/// `Person`: a name, an age and friends.
fn person_class(vat: &Vat) -> Class<Person> {
    vat.class::<Person>("Person")
        .method_guarded(
            "getName",
            MethodGuard::call([]).returns(Guard::String),
            |_vat, this, _args| this.state(|person| person.name.clone()),
        )
        .method_guarded(
            "getAge",
            MethodGuard::call([]).returns(Guard::Number),
            |_vat, this, _args| this.state(|person| Val::number(person.age)),
        )
        .method_guarded(
            "birthday",
            MethodGuard::call([]).returns(Guard::Number),
            |_vat, this, _args| {
                this.update(|person| {
                    person.age += 1.0;
                    Val::number(person.age)
                })
            },
        )
        .method_guarded(
            "addFriend",
            MethodGuard::call([Guard::Any]).returns(Guard::Number),
            |_vat, this, args| {
                let friend = args.val(0)?.clone();
                this.update(|person| {
                    person.friends.push(friend);
                    size(person.friends.len())
                })
            },
        )
        .method_guarded(
            "getFriends",
            MethodGuard::call([]).returns(Guard::List),
            |_vat, this, _args| this.state(|person| Val::List(person.friends.clone())),
        )
        .build()
}

/// `Temperature`: degrees Celsius, seen through a `celsius` and a `fahrenheit` facet.
fn temperature_kit(vat: &Vat) -> ClassKit<f64> {
    let number_in = || MethodGuard::call([Guard::Number]).returns(Guard::Number);
    let number_out = || MethodGuard::call([]).returns(Guard::Number);
    vat.class_kit::<f64>("Temperature")
        .facet("celsius", |facet| {
            facet
                .method_guarded("getCelsius", number_out(), |_vat, this, _args| {
                    Ok(Val::number(this.get()?))
                })
                .method_guarded("setCelsius", number_in(), |_vat, this, args| {
                    let celsius = args.number(0)?;
                    this.set(celsius)?;
                    Ok(Val::number(celsius))
                })
        })
        .facet("fahrenheit", |facet| {
            facet
                .method_guarded("getFahrenheit", number_out(), |_vat, this, _args| {
                    Ok(Val::number(this.get()? * 9.0 / 5.0 + 32.0))
                })
                .method_guarded("setFahrenheit", number_in(), |_vat, this, args| {
                    let fahrenheit = args.number(0)?;
                    this.set((fahrenheit - 32.0) * 5.0 / 9.0)?;
                    Ok(Val::number(fahrenheit))
                })
        })
        .build()
}

/// `SimpleCounter`: one object with the `Counter` interface over `value`.
fn simple_counter(vat: &Vat, value: &Rc<Cell<f64>>) -> Ref {
    let mut object = vat.object("SimpleCounter");
    for (method, guard) in counter_guards() {
        object = object.guard(method, guard);
    }
    let (read, up, down) = (Rc::clone(value), Rc::clone(value), Rc::clone(value));
    object
        .method("getValue", move |_vat, _args| Ok(Val::number(read.get())))
        .method("increment", move |_vat, args| {
            up.set(up.get() + args.number(0)?);
            Ok(Val::number(up.get()))
        })
        .method("decrement", move |_vat, args| {
            down.set(down.get() - args.number(0)?);
            Ok(Val::number(down.get()))
        })
        .build()
}

/// The root: dispatches to [`Exo`]'s methods.
struct Root(Exo);

impl Object for Root {
    fn invoke(&self, vat: &Vat, method: &str, args: Args) -> Reply {
        let exo = &self.0;
        match method {
            "bootstrap" => Reply::from(exo.bootstrap(vat)),
            "testScalarStore" => Reply::from(exo.test_scalar_store()),
            "createCounter" => Reply::from(exo.create_counter(&args)),
            "createPerson" => Reply::from(exo.create_person(&args)),
            "createOrUpdateInMap" => Reply::from(exo.create_or_update_in_map(&args)),
            "getFromMap" => Reply::from(exo.get_from_map(&args)),
            "testExoClass" => Reply::from(exo.test_exo_class()),
            "testExoClassKit" => Reply::from(exo.test_exo_class_kit()),
            "createTemperature" => Reply::from(exo.create_temperature(&args)),
            other => Reply::err(format!("\"root\" has no method {other:?}")),
        }
    }
}

impl Exo {
    fn bootstrap(&self, vat: &Vat) -> Result<&'static str> {
        let tlog = &self.tlog;
        tlog.info("bootstrap()");

        let counter = self.counter.make(10.0);
        tlog.info(format!(
            "Created counter with initial value: {}",
            counter.call("getValue", ())?
        ));
        let incremented = counter.call("increment", [5])?;
        tlog.info(format!("Incremented counter by 5 to: {incremented}"));
        // The guard accepts any number, so this does not fail (spec §21.5.1).
        match counter.call("increment", [-3]) {
            Ok(_) => tlog.info("ERROR: Increment with negative value should have failed"),
            Err(error) => tlog.info(format!(
                "Successfully caught error on negative increment: {error}"
            )),
        }

        let alice = self.make_person("Alice", 30.0);
        let bob = self.make_person("Bob", 25.0);
        alice.call("addFriend", [&bob])?;
        let friends = alice.call("getFriends", ())?;
        tlog.info(format!(
            "{} has {} friends",
            alice.call("getName", ())?,
            friends.as_list().map_or(0, <[Val]>::len)
        ));

        self.map.init("alice", &alice)?;
        self.map.init("bob", &bob)?;
        tlog.info(format!("Added {} entries to map store", self.map.size()));
        self.set.add(&alice)?;
        self.set.add(&bob)?;
        tlog.info(format!("Added {} entries to set store", self.set.size()));
        let retrieved = object(&self.map.get("alice")?)?;
        tlog.info(format!(
            "Retrieved {} from map store",
            retrieved.call("getName", ())?
        ));

        let kit = self.temperature.make(25.0);
        let (celsius, fahrenheit) = (kit.facet("celsius")?, kit.facet("fahrenheit")?);
        tlog.info(format!(
            "Temperature at 25°C = {}°F",
            fahrenheit.call("getFahrenheit", ())?
        ));
        fahrenheit.call("setFahrenheit", [68])?;
        tlog.info(format!(
            "After setting to 68°F, celsius is {}°C",
            celsius.call("getCelsius", ())?
        ));

        tlog.info(format!(
            "SimpleCounter initial value: {}",
            self.simple_counter.call("getValue", ())?
        ));
        let bumped = self.simple_counter.call("increment", [7])?;
        tlog.info(format!("SimpleCounter after +7: {bumped}"));

        let value = self.simple_counter.call("getValue", ())?;
        self.counter_value
            .set(value.as_number().unwrap_or_default());
        vat.baggage().set("counterValue", value.clone())?;
        tlog.info(format!("Updated baggage counter to: {value}"));
        Ok("exo-test-complete")
    }

    fn test_scalar_store(&self) -> Result<&'static str> {
        let tlog = &self.tlog;
        let charlie = self.make_person("Charlie", 40.0);
        self.map.init("charlie", &charlie)?;
        tlog.info(format!("Map store size: {}", self.map.size()));
        let keys: Vec<String> = self.map.keys()?.iter().map(Val::to_string).collect();
        tlog.info(format!("Map store keys: {}", keys.join(", ")));
        tlog.info(format!("Map has 'charlie': {}", self.map.has("charlie")));
        self.set.add(&charlie)?;
        tlog.info(format!("Set store size: {}", self.set.size()));
        tlog.info(format!("Set has Charlie: {}", self.set.has(&charlie)));
        Ok("scalar-store-tests-complete")
    }

    fn test_exo_class(&self) -> Result<&'static str> {
        let tlog = &self.tlog;
        let counter = self.counter.make(3.0);
        let sum = counter.call("increment", [5])?;
        tlog.info(format!("Counter: 3 + 5 = {sum}"));
        let difference = counter.call("decrement", [2])?;
        tlog.info(format!("Counter: 8 - 2 = {difference}"));
        match counter.call("increment", ["foo"]) {
            Ok(_) => tlog.info("ERROR: Increment with string should have failed"),
            Err(error) => tlog.info(format!("Successfully caught type error: {error}")),
        }
        Ok("exoClass-tests-complete")
    }

    fn test_exo_class_kit(&self) -> Result<&'static str> {
        let tlog = &self.tlog;
        let kit = self.temperature.make(20.0);
        let (celsius, fahrenheit) = (kit.facet("celsius")?, kit.facet("fahrenheit")?);
        tlog.info(format!(
            "20°C = {}°F",
            fahrenheit.call("getFahrenheit", ())?
        ));
        fahrenheit.call("setFahrenheit", [32])?;
        tlog.info(format!("32°F = {}°C", celsius.call("getCelsius", ())?));
        // A facet answers only its own methods.
        match celsius.call("getFahrenheit", ()) {
            Ok(_) => tlog.info("ERROR: Cross-facet access should have failed"),
            Err(error) => tlog.info(format!("Successfully caught cross-facet error: {error}")),
        }
        Ok("exoClassKit-tests-complete")
    }

    fn create_counter(&self, args: &Args) -> Result<Ref> {
        let initial = number_or_zero(args)?;
        let made = self.counter.make(initial);
        self.tlog.info(format!(
            "Created new counter with value: {}",
            Val::number(initial)
        ));
        Ok(made)
    }

    fn create_person(&self, args: &Args) -> Result<Ref> {
        let name = args.str(0)?;
        let age = args.number(1)?;
        let made = self.make_person(name, age);
        self.tlog
            .info(format!("Created person {name}, age {}", Val::number(age)));
        Ok(made)
    }

    fn create_or_update_in_map(&self, args: &Args) -> Result<Val> {
        let key = args.val(0)?.clone();
        let value = args.val_or_undefined(1);
        if self.map.has(key.clone()) {
            self.map.set(key.clone(), value)?;
            self.tlog.info(format!("Updated {key} in map"));
        } else {
            self.map.init(key.clone(), value)?;
            self.tlog
                .info(format!("Added {key} to map, size now: {}", self.map.size()));
        }
        Ok(size(self.map.size()))
    }

    fn get_from_map(&self, args: &Args) -> Result<Val> {
        let key = args.val(0)?.clone();
        if self.map.has(key.clone()) {
            self.tlog.info(format!("Found {key} in map"));
            return self.map.get(key);
        }
        self.tlog.info(format!("{key} not found in map"));
        Ok(Val::Null)
    }

    fn create_temperature(&self, args: &Args) -> Result<Kit> {
        let initial = number_or_zero(args)?;
        let made = self.temperature.make(initial);
        self.tlog.info(format!(
            "Created temperature converter starting at {}°C",
            Val::number(initial)
        ));
        Ok(made)
    }

    fn make_person(&self, name: &str, age: f64) -> Ref {
        self.person.make(Person {
            name: name.to_owned(),
            age,
            friends: Vec::new(),
        })
    }
}

/// The object in `val`.
fn object(val: &Val) -> Result<Ref> {
    val.as_object()
        .cloned()
        .ok_or_else(|| Error::new(format!("expected an object, got {}", val.kind())))
}

/// Argument 0 as a number, 0 when omitted.
fn number_or_zero(args: &Args) -> Result<f64> {
    if args.is_empty() {
        Ok(0.0)
    } else {
        args.number(0)
    }
}

/// A count as a number value.
fn size(n: usize) -> Val {
    Val::number(n as f64)
}
