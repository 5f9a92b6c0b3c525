//! The [`Key`] buffer the key builders write into, and how decimal digits are written.

/// Room for the hot keys (`v123.c.kp12345678901234567890`, `queue.run.<n>`, a durable
/// vref's c-list key) without touching the heap.
pub(super) const INLINE_KEY: usize = 64;

/// A key (or a short value) built on the stack: every crank builds dozens of keys, and
/// allocating each showed in crank profiles. A longer one moves to the heap. Derefs to
/// its bytes.
#[derive(Clone)]
pub(crate) struct Key {
    inline: [u8; INLINE_KEY],
    len: usize,
    /// The bytes, once they outgrew `inline` (then `len` is unused).
    spilled: Option<Vec<u8>>,
}

impl Key {
    pub(crate) fn new() -> Self {
        Key {
            inline: [0; INLINE_KEY],
            len: 0,
            spilled: None,
        }
    }

    pub(crate) fn push(&mut self, byte: u8) {
        self.put(&[byte]);
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.spilled {
            Some(bytes) => bytes,
            None => &self.inline[..self.len],
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
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if end <= INLINE_KEY && self.spilled.is_none() {
            self.inline[self.len..end].copy_from_slice(bytes);
            self.len = end;
        } else {
            self.spill(bytes);
        }
    }

    // Inlined for the same reason. The digits are copied as a fixed-length window of
    // `MAX_DIGITS` bytes (those after the digits are scratch, past `len`): a copy of their
    // run-time length was a `memcpy` call per number.
    #[inline(always)]
    fn put_u64(&mut self, n: u64) {
        let mut scratch = [[0; MAX_DIGITS]; 2];
        let at = write_digits(n, &mut scratch[0]);
        let window = &scratch.as_flattened()[at..at + MAX_DIGITS];
        let end = self.len + MAX_DIGITS;
        if end <= INLINE_KEY && self.spilled.is_none() {
            self.inline[self.len..end].copy_from_slice(window);
            self.len += MAX_DIGITS - at;
        } else {
            self.put(&window[..MAX_DIGITS - at]);
        }
    }
}

impl Key {
    #[cold]
    fn spill(&mut self, bytes: &[u8]) {
        match &mut self.spilled {
            Some(spilled) => spilled.extend_from_slice(bytes),
            None => {
                let mut spilled = Vec::with_capacity(self.len + bytes.len());
                spilled.extend_from_slice(&self.inline[..self.len]);
                spilled.extend_from_slice(bytes);
                self.spilled = Some(spilled);
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
