//! Operation ids: a number inside the profiler, the string `op-<n>` outside it.

use std::hash::{BuildHasherDefault, Hasher};

/// Prefix of every id string.
const PREFIX: &str = OperationId::PREFIX;

/// A typed operation id: the number behind an `op-<n>` id string. Bindings that keep ids as
/// numbers use it with [`Profiler::start_op`](super::Profiler::start_op) and friends, which skip
/// formatting and parsing strings.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct OperationId(u64);

impl OperationId {
    /// What every id string starts with: an id is this prefix then the number in decimal, without
    /// sign or leading zero (`op-17`). The one place the format is written; bindings that build
    /// or read ids on their side (the Node wrapper's hot path) take the prefix from here.
    pub const PREFIX: &'static str = "op-";

    /// The id with number `n` (the `17` of `op-17`).
    pub const fn new(n: u64) -> Self {
        Self(n)
    }

    /// The number of this id.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for OperationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}{}", self.0)
    }
}

impl std::str::FromStr for OperationId {
    type Err = crate::Error;

    /// Parses `op-<n>` exactly as `start` formats it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_id(s)
            .map(Self)
            .ok_or_else(|| crate::Error::InvalidArgument(format!("not an operation id: '{s}'")))
    }
}

/// The id string of operation number `n`, e.g. `op-17`.
#[inline]
pub(crate) fn format_id(n: u64) -> String {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(n);
    let mut s = String::with_capacity(PREFIX.len() + digits.len());
    s.push_str(PREFIX);
    s.push_str(digits);
    s
}

/// The number inside an id string, or `None` for anything `format_id` never produces
/// (no prefix, a sign, leading zeros, non-digits, overflow).
#[inline]
pub(crate) fn parse_id(id: &str) -> Option<u64> {
    let digits = id.strip_prefix(PREFIX)?;
    let bytes = digits.as_bytes();
    if bytes.is_empty() || bytes.len() > 20 || (bytes[0] == b'0' && bytes.len() > 1) {
        return None;
    }
    let mut n: u64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    Some(n)
}

/// A hasher for `u64` operation numbers: a Fibonacci multiply, enough for sequential keys and
/// several times cheaper than SipHash on the hot path.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `HashMap<u64, _>`; keep a correct fallback anyway.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// `BuildHasher` for maps keyed by operation number.
pub(crate) type IdBuildHasher = BuildHasherDefault<IdHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for n in [0, 1, 17, 1_000_000, u64::MAX] {
            assert_eq!(parse_id(&format_id(n)), Some(n));
        }
        assert_eq!(format_id(17), "op-17");
    }

    #[test]
    fn typed_ids_display_and_parse() {
        let id = OperationId::new(42);
        assert_eq!(id.to_string(), "op-42");
        assert_eq!("op-42".parse::<OperationId>().unwrap(), id);
        let e = "op-x".parse::<OperationId>().unwrap_err();
        assert!(e.to_string().contains("'op-x'"), "{e}");
    }

    #[test]
    fn foreign_strings_are_not_ids() {
        for s in [
            "",
            "op-",
            "17",
            "op-+17",
            "op-017",
            "op-1x",
            "op--1",
            "OP-1",
            "op-99999999999999999999",
        ] {
            assert_eq!(parse_id(s), None, "{s:?}");
        }
    }
}
