//! The [`Key`] buffer the key builders write into, and how decimal digits are written.

/// Room for the hot keys (at most `v4294967295.c.kp18446744073709551615`, 36 bytes;
/// `queue.run.<n>`; a durable vref's c-list key) without touching the heap: 46 bytes, so
/// that with its length and the enum's tag a [`Key`] is 48 bytes to zero and to return
/// (64 measured 0.06k instructions a crank more).
pub(super) const INLINE_KEY: usize = 46;

/// A key (or a short value) built on the stack: every crank builds dozens of keys, and
/// allocating each showed in crank profiles. A longer one moves to the heap. Derefs to
/// its bytes.
#[derive(Clone)]
pub(crate) struct Key(Repr);

#[derive(Clone)]
enum Repr {
    /// The first `len` bytes of `bytes` (`len` at most [`INLINE_KEY`]).
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    /// The bytes, once they outgrew `Inline`.
    Spilled(Vec<u8>),
}

impl Key {
    pub(crate) fn new() -> Self {
        Key(Repr::Inline {
            len: 0,
            bytes: [0; INLINE_KEY],
        })
    }

    pub(crate) fn push(&mut self, byte: u8) {
        self.put(&[byte]);
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Spilled(bytes) => bytes,
        }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.escape_ascii().to_string())
    }
}

/// Where key bytes are appended: a [`Key`], or a `Vec` for the keys built rarely.
pub(crate) trait KeySink {
    fn put(&mut self, bytes: &[u8]);
    /// Appends the decimal digits of `n`, written in place (see [`super::push_u64`]).
    fn put_u64(&mut self, n: u64);
}

impl KeySink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn put_u64(&mut self, n: u64) {
        let mut digits = [0; MAX_DIGITS];
        let at = write_digits(n, &mut digits);
        self.extend_from_slice(&digits[at..]);
    }
}

impl KeySink for Key {
    // Inlined: most pieces have a length known at the call site, and the copy then needs
    // no `memcpy` call (an out-of-line `put` cost more than the allocation it saved).
    #[inline(always)]
    fn put(&mut self, more: &[u8]) {
        if let Repr::Inline { len, bytes } = &mut self.0 {
            let start = usize::from(*len);
            let end = start + more.len();
            if end <= INLINE_KEY {
                bytes[start..end].copy_from_slice(more);
                *len = end as u8; // at most INLINE_KEY
                return;
            }
        }
        self.spill(more);
    }

    // Inlined for the same reason. The digits are copied as a fixed-length window of
    // `MAX_DIGITS` bytes (those after the digits are scratch, past `len`): a copy of their
    // run-time length was a `memcpy` call per number.
    #[inline(always)]
    fn put_u64(&mut self, n: u64) {
        let mut scratch = [[0; MAX_DIGITS]; 2];
        let at = write_digits(n, &mut scratch[0]);
        let window = &scratch.as_flattened()[at..at + MAX_DIGITS];
        if let Repr::Inline { len, bytes } = &mut self.0 {
            let start = usize::from(*len);
            if start + MAX_DIGITS <= INLINE_KEY {
                bytes[start..start + MAX_DIGITS].copy_from_slice(window);
                *len += (MAX_DIGITS - at) as u8; // at most MAX_DIGITS
                return;
            }
        }
        self.put(&window[..MAX_DIGITS - at]);
    }
}

impl Key {
    #[cold]
    fn spill(&mut self, more: &[u8]) {
        match &mut self.0 {
            Repr::Spilled(spilled) => spilled.extend_from_slice(more),
            Repr::Inline { len, bytes } => {
                let mut spilled = Vec::with_capacity(usize::from(*len) + more.len());
                spilled.extend_from_slice(&bytes[..usize::from(*len)]);
                spilled.extend_from_slice(more);
                self.0 = Repr::Spilled(spilled);
            }
        }
    }
}

/// The most decimal digits a `u64` has (`u64::MAX` is 20 digits long).
const MAX_DIGITS: usize = 20;

/// Writes the decimal digits of `n` at the end of `out` and returns where they start: from
/// the last digit back, two digits at a time from a table, as `itoa` does (a division per
/// digit showed in crank profiles).
#[inline]
fn write_digits(mut n: u64, out: &mut [u8; MAX_DIGITS]) -> usize {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut at = MAX_DIGITS;
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        out[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        at -= 2;
        out[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        out[at] = b'0' + n as u8;
    }
    at
}

#[cfg(test)]
mod tests {
    /// The inline room is sized so that a key is 48 bytes (see [`super::INLINE_KEY`]); a
    /// layout change that grows it should be a choice, measured in crank profiles.
    #[test]
    fn a_key_is_48_bytes() {
        assert_eq!(std::mem::size_of::<super::Key>(), 48);
    }
}
