//! Operation ids: a number inside the profiler, the string `op-<n>` outside it.

use std::hash::{BuildHasherDefault, Hasher};

/// Prefix of every id string.
const PREFIX: &str = "op-";

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
