//! How an error's chain is told.

use std::fmt;

use super::error_chain;

/// An error whose message may repeat its cause's, as `lmdb backend: <heed error>` does.
#[derive(Debug)]
struct Layer {
    message: String,
    cause: Option<Box<Layer>>,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Layer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|c| c as _)
    }
}

fn layer(message: &str, cause: Option<Layer>) -> Layer {
    Layer {
        message: message.to_owned(),
        cause: cause.map(Box::new),
    }
}

#[test]
fn a_cause_the_message_already_says_is_not_repeated() {
    let leaf = layer("disk full", None);
    let error = layer("lmdb backend: disk full", Some(leaf));
    assert_eq!(error_chain(&error), ["lmdb backend: disk full"]);
}

#[test]
fn causes_the_message_does_not_say_are_listed_in_order() {
    let leaf = layer("No such file or directory (os error 2)", None);
    let middle = layer("cannot read x.json", Some(leaf));
    let error = layer("cannot launch", Some(middle));
    assert_eq!(
        error_chain(&error),
        [
            "cannot launch",
            "cannot read x.json",
            "No such file or directory (os error 2)"
        ]
    );
}
