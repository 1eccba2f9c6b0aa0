//! Application protocols parsed from transport payloads: DNS, HTTP/1.x, TLS and QUIC
//! Initial packets (plus the MD5 that JA3 is defined with).
//!
//! Each file holds pure functions from bytes to structs: no I/O, no state beyond the
//! arguments. The promises every parser here keeps:
//! - **no panics** on any input (each file ends with hostile-input tests; each public parser
//!   has a fuzz target in `sensor/fuzz/`),
//! - **zero-copy** where the wire allows it: results borrow the caller's buffer; names that
//!   must be lower-cased go into a small inline [`LowerName`], never the heap,
//! - **bounded work**: every loop is capped by a named constant with the reason beside it,
//! - **recoverable oddities set flags** (a lying count, a second SNI, a bare-LF header)
//!   instead of failing, so one odd packet still yields what it does contain.
//!
//! Wire values are open newtypes (`DnsType(pub u16)` with named constants), so a value no
//! RFC has named yet stays representable.

pub mod dns;
pub mod http;
pub mod md5;
pub mod quic;
pub mod tls;

use std::fmt;

/// Longest name kept in a [`LowerName`], in text octets: a DNS name is at most 255 wire
/// octets (RFC 1035 §3.1), which is 253 characters in dotted text. Host headers and SNI
/// names are DNS names too, so the same bound serves all three.
pub const MAX_NAME_TEXT: usize = 253;

/// A host or domain name, ASCII lower-cased, held inline (no allocation).
///
/// Bytes are kept as sent apart from ASCII case: a hostile name may hold any octet, and a
/// detector must see it rather than a cleaned-up version.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LowerName {
    len: u8,
    buf: [u8; MAX_NAME_TEXT],
}

impl LowerName {
    /// An empty name (the DNS root).
    pub const fn new() -> Self {
        Self {
            len: 0,
            buf: [0; MAX_NAME_TEXT],
        }
    }

    /// Lower-cases `bytes` into a new name; `None` if longer than [`MAX_NAME_TEXT`].
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let mut name = Self::new();
        name.push(bytes).then_some(name)
    }

    /// Appends `bytes` lower-cased; false (and unchanged) if the result would be too long.
    fn push(&mut self, bytes: &[u8]) -> bool {
        let start = usize::from(self.len);
        let Some(end) = start
            .checked_add(bytes.len())
            .filter(|&e| e <= MAX_NAME_TEXT)
        else {
            return false;
        };
        for (dst, src) in self.buf[start..end].iter_mut().zip(bytes) {
            *dst = src.to_ascii_lowercase();
        }
        // `end <= MAX_NAME_TEXT` (253) fits a u8.
        self.len = end as u8;
        true
    }

    /// The name's bytes (lower-cased ASCII; other octets as sent).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// The name as text if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()).ok()
    }

    /// Length in octets.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True for the empty (root) name.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for LowerName {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for LowerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

impl fmt::Debug for LowerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LowerName({:?})",
            String::from_utf8_lossy(self.as_bytes())
        )
    }
}

impl PartialEq<str> for LowerName {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for LowerName {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// Big-endian reads that return `None` instead of panicking past the end.
pub(crate) fn be_u16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

pub(crate) fn be_u24(buf: &[u8], at: usize) -> Option<usize> {
    let b = buf.get(at..at.checked_add(3)?)?;
    Some(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
}

pub(crate) fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Declares an open newtype over a wire integer with named constants and a `name()`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis struct $ty:ident($inner:ty);
        $( $(#[$cmeta:meta])* $konst:ident = $value:expr, $text:expr; )*
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
        $vis struct $ty(pub $inner);

        impl $ty {
            $( $(#[$cmeta])* pub const $konst: Self = Self($value); )*

            /// The registry name of this value, if it has one.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($text), )*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}", self.0),
                }
            }
        }
    };
}
pub(crate) use wire_enum;
