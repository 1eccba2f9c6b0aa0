//! TLS ClientHello and ServerHello records (RFC 8446 / RFC 5246) as TCP payloads.
//!
//! ```text
//! record:      content_type u8 (22 handshake, 20 change_cipher_spec, 23 application_data)
//!              | legacy_version u16 | length u16 | fragment
//! handshake:   msg_type u8 (1 client_hello, 2 server_hello) | length u24 | body
//! ClientHello: legacy_version u16 (0x0303) | random[32] | session_id<0..32>
//!              | cipher_suites<2..2^16-2> | compression_methods<1..2^8-1>
//!              | extensions<8..2^16-1>  (each: type u16 | length u16 | data)
//! server_name: server_name_list<1..2^16-1> of (name_type u8 (0 host_name) | host_name<1..2^16-1>)
//! ```
//! A "1.3" hello is what current browsers send (TLS 1.3 suites first, supported_versions and
//! key_share); a "1.2" hello is an older client without them. The server answers with a
//! ServerHello, a ChangeCipherSpec and encrypted records, which is a full TLS 1.3 handshake or
//! an abbreviated (resumed) TLS 1.2 one, so no certificate is needed.

use super::rng::Rng;

pub(crate) const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
pub(crate) const CONTENT_HANDSHAKE: u8 = 22;
pub(crate) const CONTENT_APPLICATION_DATA: u8 = 23;
pub(crate) const HANDSHAKE_CLIENT_HELLO: u8 = 1;
pub(crate) const HANDSHAKE_SERVER_HELLO: u8 = 2;
pub(crate) const EXT_SERVER_NAME: u16 = 0;
const EXT_STATUS_REQUEST: u16 = 5;
const EXT_SUPPORTED_GROUPS: u16 = 10;
const EXT_EC_POINT_FORMATS: u16 = 11;
const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
const EXT_ALPN: u16 = 16;
const EXT_EXTENDED_MASTER_SECRET: u16 = 23;
const EXT_SESSION_TICKET: u16 = 35;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const EXT_PSK_KEY_EXCHANGE_MODES: u16 = 45;
const EXT_KEY_SHARE: u16 = 51;
const EXT_RENEGOTIATION_INFO: u16 = 0xff01;
const TLS12: u16 = 0x0303;
const TLS13: u16 = 0x0304;
const GROUP_X25519: u16 = 0x001d;

const SUITES_TLS13: &[u16] = &[0x1301, 0x1302, 0x1303];
const SUITES_TLS12: &[u16] = &[
    0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
];
const GROUPS: &[u16] = &[GROUP_X25519, 0x0017, 0x0018];
const SIGNATURE_ALGORITHMS: &[u16] = &[
    0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
];
/// GREASE values (RFC 8701) that browsers sprinkle into lists.
const GREASE: &[u16] = &[
    0x0a0a, 0x1a1a, 0x2a2a, 0x3a3a, 0x4a4a, 0x5a5a, 0x6a6a, 0x7a7a,
];

/// Reserves a big-endian length field of `width` bytes and returns where it is.
fn open(out: &mut Vec<u8>, width: usize) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; 3][..width]);
    at
}

/// Fills the length field opened at `at` with the number of bytes written since.
fn close(out: &mut [u8], at: usize, width: usize) {
    let len = (out.len() - at - width) as u32;
    out[at..at + width].copy_from_slice(&len.to_be_bytes()[4 - width..]);
}

fn u16s(out: &mut Vec<u8>, values: &[u16]) {
    for v in values {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn extension(out: &mut Vec<u8>, ty: u16, body: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(&ty.to_be_bytes());
    let at = open(out, 2);
    body(out);
    close(out, at, 2);
}

/// What a client offers.
#[derive(Debug)]
pub(crate) struct ClientHello<'a> {
    pub(crate) sni: &'a str,
    pub(crate) tls13: bool,
    /// Browser-like: GREASE values and `h2` in ALPN.
    pub(crate) browser: bool,
}

pub(crate) fn client_hello(out: &mut Vec<u8>, rng: &mut Rng, h: &ClientHello<'_>) {
    out.push(CONTENT_HANDSHAKE);
    out.extend_from_slice(&0x0301u16.to_be_bytes()); // record version as clients send it
    let record = open(out, 2);
    out.push(HANDSHAKE_CLIENT_HELLO);
    let handshake = open(out, 3);
    out.extend_from_slice(&TLS12.to_be_bytes());
    let mut random = [0u8; 32];
    rng.fill(&mut random);
    out.extend_from_slice(&random);
    if h.tls13 {
        // Middlebox compatibility mode: a random 32-byte legacy session id.
        out.push(32);
        rng.fill(&mut random);
        out.extend_from_slice(&random);
    } else {
        out.push(0);
    }
    let grease = rng.pick(GREASE);
    let suites = open(out, 2);
    if h.browser {
        u16s(out, &[grease]);
    }
    if h.tls13 {
        u16s(out, SUITES_TLS13);
    }
    u16s(out, SUITES_TLS12);
    close(out, suites, 2);
    out.extend_from_slice(&[1, 0]); // compression: null only
    let extensions = open(out, 2);
    if h.browser {
        extension(out, grease, |_| {});
    }
    extension(out, EXT_SERVER_NAME, |out| {
        let list = open(out, 2);
        out.push(0); // host_name
        out.extend_from_slice(&(h.sni.len() as u16).to_be_bytes());
        out.extend_from_slice(h.sni.as_bytes());
        close(out, list, 2);
    });
    extension(out, EXT_EXTENDED_MASTER_SECRET, |_| {});
    extension(out, EXT_RENEGOTIATION_INFO, |out| out.push(0));
    extension(out, EXT_SUPPORTED_GROUPS, |out| {
        let list = open(out, 2);
        u16s(out, GROUPS);
        close(out, list, 2);
    });
    extension(out, EXT_EC_POINT_FORMATS, |out| {
        out.extend_from_slice(&[1, 0])
    });
    extension(out, EXT_SESSION_TICKET, |_| {});
    extension(out, EXT_ALPN, |out| {
        let list = open(out, 2);
        if h.browser {
            out.push(2);
            out.extend_from_slice(b"h2");
        }
        out.push(8);
        out.extend_from_slice(b"http/1.1");
        close(out, list, 2);
    });
    extension(out, EXT_STATUS_REQUEST, |out| {
        out.extend_from_slice(&[1, 0, 0, 0, 0])
    });
    extension(out, EXT_SIGNATURE_ALGORITHMS, |out| {
        let list = open(out, 2);
        u16s(out, SIGNATURE_ALGORITHMS);
        close(out, list, 2);
    });
    if h.tls13 {
        extension(out, EXT_KEY_SHARE, |out| {
            let list = open(out, 2);
            u16s(out, &[GROUP_X25519, 32]);
            let mut key = [0u8; 32];
            rng.fill(&mut key);
            out.extend_from_slice(&key);
            close(out, list, 2);
        });
        extension(out, EXT_PSK_KEY_EXCHANGE_MODES, |out| {
            out.extend_from_slice(&[1, 1])
        });
        extension(out, EXT_SUPPORTED_VERSIONS, |out| {
            out.push(4);
            u16s(out, &[TLS13, TLS12]);
        });
    }
    close(out, extensions, 2);
    close(out, handshake, 3);
    close(out, record, 2);
}

/// ServerHello + ChangeCipherSpec + one encrypted handshake record of `encrypted.len()` bytes.
pub(crate) fn server_hello(out: &mut Vec<u8>, rng: &mut Rng, tls13: bool, encrypted: &[u8]) {
    out.push(CONTENT_HANDSHAKE);
    out.extend_from_slice(&TLS12.to_be_bytes());
    let record = open(out, 2);
    out.push(HANDSHAKE_SERVER_HELLO);
    let handshake = open(out, 3);
    out.extend_from_slice(&TLS12.to_be_bytes());
    let mut random = [0u8; 32];
    rng.fill(&mut random);
    out.extend_from_slice(&random);
    out.push(32);
    rng.fill(&mut random);
    out.extend_from_slice(&random);
    let suite = if tls13 { 0x1301 } else { 0xc02f };
    out.extend_from_slice(&(suite as u16).to_be_bytes());
    out.push(0); // compression null
    let extensions = open(out, 2);
    if tls13 {
        extension(out, EXT_SUPPORTED_VERSIONS, |out| u16s(out, &[TLS13]));
        extension(out, EXT_KEY_SHARE, |out| {
            u16s(out, &[GROUP_X25519, 32]);
            let mut key = [0u8; 32];
            rng.fill(&mut key);
            out.extend_from_slice(&key);
        });
    } else {
        extension(out, EXT_RENEGOTIATION_INFO, |out| out.push(0));
        extension(out, EXT_EXTENDED_MASTER_SECRET, |_| {});
    }
    close(out, extensions, 2);
    close(out, handshake, 3);
    close(out, record, 2);
    out.extend_from_slice(&[CONTENT_CHANGE_CIPHER_SPEC, 0x03, 0x03, 0, 1, 1]);
    application_data(out, encrypted);
}

/// One record of opaque (encrypted-looking) bytes.
pub(crate) fn application_data(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(CONTENT_APPLICATION_DATA);
    out.extend_from_slice(&TLS12.to_be_bytes());
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The SNI host name of a ClientHello record, for tests: a strict walk of the structure above.
#[cfg(test)]
pub(crate) fn sni_of(record: &[u8]) -> Option<String> {
    let be16 = |b: &[u8], at: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *b.get(at)?,
            *b.get(at + 1)?,
        ])))
    };
    if *record.first()? != CONTENT_HANDSHAKE || be16(record, 3)? != record.len() - 5 {
        return None;
    }
    let hs = &record[5..];
    let hs_len = (usize::from(hs[1]) << 16) | (usize::from(hs[2]) << 8) | usize::from(hs[3]);
    if hs[0] != HANDSHAKE_CLIENT_HELLO || hs_len != hs.len() - 4 {
        return None;
    }
    let mut at = 4 + 2 + 32;
    at += 1 + usize::from(*hs.get(at)?);
    at += 2 + be16(hs, at)?;
    at += 1 + usize::from(*hs.get(at)?);
    let end = at + 2 + be16(hs, at)?;
    if end != hs.len() {
        return None;
    }
    at += 2;
    while at < end {
        let ty = be16(hs, at)? as u16;
        let len = be16(hs, at + 2)?;
        if ty == EXT_SERVER_NAME {
            let name_len = be16(hs, at + 7)?;
            return String::from_utf8(hs.get(at + 9..at + 9 + name_len)?.to_vec()).ok();
        }
        at += 4 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_hello_is_well_formed_and_names_its_server() {
        let mut rng = Rng::new(5);
        for (tls13, browser) in [(true, true), (true, false), (false, false)] {
            let mut out = Vec::new();
            let h = ClientHello {
                sni: "login.example.org",
                tls13,
                browser,
            };
            client_hello(&mut out, &mut rng, &h);
            assert_eq!(sni_of(&out).as_deref(), Some("login.example.org"));
        }
    }

    #[test]
    fn server_flight_record_lengths_add_up() {
        let mut rng = Rng::new(5);
        let mut out = Vec::new();
        server_hello(&mut out, &mut rng, true, &[7; 100]);
        let mut at = 0;
        let mut types = Vec::new();
        while at < out.len() {
            types.push(out[at]);
            at += 5 + usize::from(u16::from_be_bytes([out[at + 3], out[at + 4]]));
        }
        assert_eq!(at, out.len());
        assert_eq!(types, [22, 20, 23]);
        assert_eq!(out[5], HANDSHAKE_SERVER_HELLO);
    }
}
