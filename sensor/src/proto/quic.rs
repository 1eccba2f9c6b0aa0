//! QUIC client Initial packets (RFC 9000 §17.2.2), opened the way any on-path observer can:
//! the keys come from the Destination Connection ID and a salt published per version
//! (RFC 9001 §5.2 for v1, RFC 9369 §3.3 for v2), so the ClientHello inside the CRYPTO
//! frames (its SNI and everything JA4 needs) is readable.
//!
//! [`open_initial`] removes header protection (AES-128-ECB over a sample, §5.4.3) and
//! decrypts the payload (AES-128-GCM, §5.3) into a caller's scratch buffer;
//! [`for_each_crypto_frame`] walks the decrypted frames. Reassembling CRYPTO data that
//! spans frames or packets is the caller's job (the sensor's stream buffers). Pure
//! functions, no panics, bounded work: a datagram holds at most [`MAX_COALESCED`] packets
//! examined, a payload at most [`MAX_FRAMES`] non-padding frames.

use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::{aead, cipher, hkdf};

/// QUIC version 1 (RFC 9000).
pub const VERSION_1: u32 = 0x0000_0001;
/// QUIC version 2 (RFC 9369).
pub const VERSION_2: u32 = 0x6b33_43cf;
/// A client pads every datagram carrying an Initial to at least this many octets
/// (RFC 9000 §14.1); shorter datagrams are not client Initials and cost no decryption.
pub const MIN_INITIAL_DATAGRAM: usize = 1200;
/// Longest connection ID (RFC 9000 §17.2).
pub const MAX_CID_LEN: usize = 20;
/// Packets examined in one datagram (an Initial may be coalesced with 0-RTT and Handshake
/// packets; more than a few is crafted).
pub const MAX_COALESCED: usize = 4;
/// Frames examined in one payload, not counting PADDING octets. A ClientHello split by a
/// browser is a dozen CRYPTO frames plus PING/ACK; 256 bounds a crafted packet's cost.
pub const MAX_FRAMES: usize = 256;
/// ACK ranges accepted in one ACK frame of an Initial (a client's first flight has none).
pub const MAX_ACK_RANGES: u64 = 64;
/// AEAD tag length of AES-128-GCM.
const TAG_LEN: usize = 16;
/// Header protection sample length (RFC 9001 §5.4.2).
const SAMPLE_LEN: usize = 16;

/// Why a datagram yielded no Initial payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuicError {
    /// Not a long-header Initial packet of a version this sensor can open.
    #[error("not a QUIC Initial packet")]
    NotInitial,
    /// A length field points past the datagram.
    #[error("truncated QUIC packet")]
    Truncated,
    /// A field is out of range or a frame is not allowed in an Initial packet.
    #[error("malformed QUIC {0}")]
    Malformed(&'static str),
    /// The cipher refused the key or the input (never expected with valid lengths).
    #[error("QUIC Initial could not be decrypted")]
    Decrypt,
}

/// What differs between QUIC versions for Initial protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionParams {
    /// The version number on the wire.
    pub version: u32,
    /// `initial_salt` for HKDF-Extract.
    pub salt: [u8; 20],
    /// Long header packet type of Initial packets (bits 4-5 of the first octet).
    pub initial_type: u8,
    /// HKDF labels of the packet key, IV and header protection key.
    pub key_label: &'static [u8],
    pub iv_label: &'static [u8],
    pub hp_label: &'static [u8],
}

/// RFC 9001 §5.2.
pub const V1: VersionParams = VersionParams {
    version: VERSION_1,
    salt: [
        0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c,
        0xad, 0xcc, 0xbb, 0x7f, 0x0a,
    ],
    initial_type: 0b00,
    key_label: b"quic key",
    iv_label: b"quic iv",
    hp_label: b"quic hp",
};

/// RFC 9369 §3.3 (salt), §3.2 (packet types), §3.3.2 (labels).
pub const V2: VersionParams = VersionParams {
    version: VERSION_2,
    salt: [
        0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d,
        0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
    ],
    initial_type: 0b01,
    key_label: b"quicv2 key",
    iv_label: b"quicv2 iv",
    hp_label: b"quicv2 hp",
};

/// The parameters of `version`, if it is one this sensor opens.
pub fn version_params(version: u32) -> Option<&'static VersionParams> {
    match version {
        VERSION_1 => Some(&V1),
        VERSION_2 => Some(&V2),
        _ => None,
    }
}

/// A cheap look before any cryptography: a long header of a version this sensor opens,
/// the Initial packet type, and the padded size of a client's datagram.
pub fn may_be_client_initial(datagram: &[u8]) -> bool {
    if datagram.len() < MIN_INITIAL_DATAGRAM || datagram[0] & 0x80 == 0 {
        return false;
    }
    let version = u32::from_be_bytes([datagram[1], datagram[2], datagram[3], datagram[4]]);
    version_params(version).is_some_and(|v| (datagram[0] >> 4) & 0b11 == v.initial_type)
}

/// A connection ID, copied (at most [`MAX_CID_LEN`] octets).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionId {
    len: u8,
    bytes: [u8; MAX_CID_LEN],
}

impl ConnectionId {
    /// `None` if longer than [`MAX_CID_LEN`].
    pub fn new(bytes: &[u8]) -> Option<Self> {
        let mut id = ConnectionId::default();
        id.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        id.len = bytes.len() as u8;
        Some(id)
    }
    /// The octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionId(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// The packet protection keys of one direction's Initial packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialKeys {
    pub key: [u8; 16],
    pub iv: [u8; 12],
    pub hp: [u8; 16],
}

/// The output length handed to HKDF-Expand.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context:
///
/// ```text
/// struct {
///     uint16 length = Length;
///     opaque label<7..255> = "tls13 " + Label;
///     opaque context<0..255> = Context;
/// } HkdfLabel;
/// ```
fn expand_label(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) -> Result<(), QuicError> {
    let length = (out.len() as u16).to_be_bytes();
    let label_len = [(b"tls13 ".len() + label.len()) as u8];
    let info: [&[u8]; 5] = [&length, &label_len, b"tls13 ", label, &[0]];
    prk.expand(&info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| QuicError::Malformed("key derivation"))
}

/// The client's Initial keys for a connection whose client chose `dcid` (RFC 9001 §5.2):
/// `client_initial_secret = HKDF-Expand-Label(HKDF-Extract(salt, dcid), "client in", "", 32)`.
pub fn client_initial_keys(params: &VersionParams, dcid: &[u8]) -> Result<InitialKeys, QuicError> {
    let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, &params.salt).extract(dcid);
    let mut secret = [0u8; 32];
    expand_label(&initial, b"client in", &mut secret)?;
    let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &secret);
    let mut keys = InitialKeys {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    expand_label(&client, params.key_label, &mut keys.key)?;
    expand_label(&client, params.iv_label, &mut keys.iv)?;
    expand_label(&client, params.hp_label, &mut keys.hp)?;
    Ok(keys)
}

/// A variable-length integer (RFC 9000 §16) at the start of `buf`: value and octets used.
pub fn varint(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let len = 1usize << (first >> 6);
    let bytes = buf.get(..len)?;
    let mut v = u64::from(first & 0x3f);
    for &b in &bytes[1..] {
        v = (v << 8) | u64::from(b);
    }
    Some((v, len))
}

/// A bounds-checked cursor.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn u8(&mut self) -> Result<u8, QuicError> {
        let b = *self.buf.get(self.pos).ok_or(QuicError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], QuicError> {
        let end = self.pos.checked_add(n).ok_or(QuicError::Truncated)?;
        let b = self.buf.get(self.pos..end).ok_or(QuicError::Truncated)?;
        self.pos = end;
        Ok(b)
    }
    fn varint(&mut self) -> Result<u64, QuicError> {
        let (v, n) =
            varint(&self.buf[self.pos.min(self.buf.len())..]).ok_or(QuicError::Truncated)?;
        self.pos += n;
        Ok(v)
    }
    /// A varint used as a length or offset into this buffer.
    fn len(&mut self) -> Result<usize, QuicError> {
        usize::try_from(self.varint()?).map_err(|_| QuicError::Truncated)
    }
}

/// The cleartext header of a long-header packet, up to the protected packet number:
///
/// ```text
/// Initial Packet {
///   Header Form (1) = 1, Fixed Bit (1) = 1, Long Packet Type (2) = 0 (v1) / 1 (v2),
///   Reserved Bits (2), Packet Number Length (2),      -- protected
///   Version (32),
///   Destination Connection ID Length (8), Destination Connection ID (0..160),
///   Source Connection ID Length (8), Source Connection ID (0..160),
///   Token Length (i), Token (..),
///   Length (i),
///   Packet Number (8..32),                             -- protected
///   Packet Payload (8..),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialHeader {
    pub version: u32,
    pub dcid: ConnectionId,
    pub scid: ConnectionId,
    /// Token length (a token means a retry or a resumption's address validation).
    pub token_len: usize,
    /// Offset of the packet number.
    pub pn_offset: usize,
    /// Offset just past this packet (start of the next coalesced packet).
    pub end: usize,
}

/// Reads the long header at the start of `packet` if it is an Initial of v1 or v2.
pub fn parse_initial_header(packet: &[u8]) -> Result<InitialHeader, QuicError> {
    let mut c = Cursor {
        buf: packet,
        pos: 0,
    };
    let first = c.u8().map_err(|_| QuicError::NotInitial)?;
    if first & 0x80 == 0 {
        return Err(QuicError::NotInitial); // short header
    }
    let version = u32::from_be_bytes(
        c.bytes(4)
            .map_err(|_| QuicError::NotInitial)?
            .try_into()
            .map_err(|_| QuicError::NotInitial)?,
    );
    let params = version_params(version).ok_or(QuicError::NotInitial)?;
    if (first >> 4) & 0b11 != params.initial_type {
        return Err(QuicError::NotInitial);
    }
    let dcid_len = usize::from(c.u8()?);
    let dcid = ConnectionId::new(c.bytes(dcid_len)?).ok_or(QuicError::Malformed("dcid length"))?;
    let scid_len = usize::from(c.u8()?);
    let scid = ConnectionId::new(c.bytes(scid_len)?).ok_or(QuicError::Malformed("scid length"))?;
    let token_len = c.len()?;
    c.bytes(token_len)?;
    let length = c.len()?;
    let pn_offset = c.pos;
    let end = pn_offset.checked_add(length).ok_or(QuicError::Truncated)?;
    if end > packet.len() {
        return Err(QuicError::Truncated);
    }
    // The sample starts 4 octets after the packet number's start (§5.4.2), and the
    // payload must hold at least the tag after a 1-octet packet number.
    if length < 4 + SAMPLE_LEN || length < 1 + TAG_LEN {
        return Err(QuicError::Malformed("packet length"));
    }
    Ok(InitialHeader {
        version,
        dcid,
        scid,
        token_len,
        pn_offset,
        end,
    })
}

/// One opened Initial packet: its header, packet number and decrypted frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenedInitial<'s> {
    pub header: InitialHeader,
    pub packet_number: u32,
    /// The AEAD tag verified. Only a damaged (or oddly generated) packet fails it: anyone
    /// can compute a valid tag, so a verified tag is no proof of origin either.
    pub authenticated: bool,
    /// The decrypted payload (frames), in the caller's scratch buffer.
    pub payload: &'s [u8],
}

/// Removes header protection from and decrypts the client Initial at the start of
/// `packet`, using the keys its own DCID gives. `scratch` receives a copy of the packet
/// (reused between calls: no allocation once it is large enough).
pub fn open_initial<'s>(
    packet: &[u8],
    scratch: &'s mut Vec<u8>,
) -> Result<OpenedInitial<'s>, QuicError> {
    let header = parse_initial_header(packet)?;
    let params = version_params(header.version).ok_or(QuicError::NotInitial)?;
    let keys = client_initial_keys(params, header.dcid.as_bytes())?;
    open_with_keys(packet, header, &keys, scratch)
}

/// [`open_initial`] with keys already derived.
pub fn open_with_keys<'s>(
    packet: &[u8],
    header: InitialHeader,
    keys: &InitialKeys,
    scratch: &'s mut Vec<u8>,
) -> Result<OpenedInitial<'s>, QuicError> {
    let pn_offset = header.pn_offset;
    let sample = packet
        .get(pn_offset + 4..pn_offset + 4 + SAMPLE_LEN)
        .ok_or(QuicError::Truncated)?;
    let hp = aead::quic::HeaderProtectionKey::new(&aead::quic::AES_128, &keys.hp)
        .map_err(|_| QuicError::Decrypt)?;
    let mask = hp.new_mask(sample).map_err(|_| QuicError::Decrypt)?;

    scratch.clear();
    scratch.extend_from_slice(&packet[..header.end]);
    scratch[0] ^= mask[0] & 0x0f;
    let pn_len = usize::from(scratch[0] & 0x03) + 1;
    let mut packet_number = 0u32;
    for i in 0..pn_len {
        scratch[pn_offset + i] ^= mask[1 + i];
        packet_number = (packet_number << 8) | u32::from(scratch[pn_offset + i]);
    }
    let payload_start = pn_offset + pn_len;
    if header.end < payload_start + TAG_LEN {
        return Err(QuicError::Malformed("packet length"));
    }
    // nonce = iv XOR packet number, right-aligned (RFC 9001 §5.3).
    let mut nonce = keys.iv;
    for (n, p) in nonce[8..].iter_mut().zip(packet_number.to_be_bytes()) {
        *n ^= p;
    }
    let key = aead::UnboundKey::new(&aead::AES_128_GCM, &keys.key)
        .map(aead::LessSafeKey::new)
        .map_err(|_| QuicError::Decrypt)?;
    let (aad, in_out) = scratch.split_at_mut(payload_start);
    let authenticated = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(&*aad),
            in_out,
        )
        .is_ok();
    let plain_len = header.end - payload_start - TAG_LEN;
    if !authenticated {
        // Initial keys are public: the tag says nothing about who sent the packet, only
        // that it was not damaged. A packet whose tag fails is still read with GCM's
        // keystream (AES-CTR from counter 2, NIST SP 800-38D §7.2) and flagged; the frame
        // and ClientHello parsers judge what comes out.
        in_out.copy_from_slice(&packet[payload_start..header.end]);
        let mut iv = [0u8; 16];
        iv[..12].copy_from_slice(&nonce);
        iv[15] = 2;
        cipher::UnboundCipherKey::new(&cipher::AES_128, &keys.key)
            .and_then(cipher::DecryptingKey::ctr)
            .and_then(|k| {
                k.decrypt(
                    &mut in_out[..plain_len],
                    cipher::DecryptionContext::Iv128(FixedLength::from(iv)),
                )
                .map(|_| ())
            })
            .map_err(|_| QuicError::Decrypt)?;
    }
    Ok(OpenedInitial {
        header,
        packet_number,
        authenticated,
        payload: &scratch[payload_start..payload_start + plain_len],
    })
}

/// Frame types allowed in Initial packets (RFC 9000 §12.4, Table 3).
mod frame {
    pub(super) const PADDING: u64 = 0x00;
    pub(super) const PING: u64 = 0x01;
    pub(super) const ACK: u64 = 0x02;
    pub(super) const ACK_ECN: u64 = 0x03;
    pub(super) const CRYPTO: u64 = 0x06;
    pub(super) const CONNECTION_CLOSE: u64 = 0x1c;
    pub(super) const CONNECTION_CLOSE_APP: u64 = 0x1d;
}

/// Calls `f(offset, data)` for each CRYPTO frame of a decrypted Initial payload, in the
/// order sent:
///
/// ```text
/// CRYPTO Frame { Type (i) = 0x06, Offset (i), Length (i), Crypto Data (..) }
/// ```
///
/// PADDING, PING, ACK and CONNECTION_CLOSE are skipped; any other frame type is an error
/// (it is not allowed in an Initial), as is a frame running past the payload. Frames before
/// the fault have been reported.
pub fn for_each_crypto_frame(
    payload: &[u8],
    mut f: impl FnMut(u64, &[u8]),
) -> Result<(), QuicError> {
    let mut c = Cursor {
        buf: payload,
        pos: 0,
    };
    let mut frames = 0;
    while c.pos < payload.len() {
        if payload[c.pos] == 0 {
            c.pos += 1; // PADDING: one octet each, often a thousand in a row
            continue;
        }
        frames += 1;
        if frames > MAX_FRAMES {
            return Err(QuicError::Malformed("too many frames"));
        }
        match c.varint()? {
            frame::PADDING | frame::PING => {}
            frame::CRYPTO => {
                let offset = c.varint()?;
                let len = c.len()?;
                let data = c.bytes(len)?;
                if offset.checked_add(len as u64).is_none_or(|e| e >= 1 << 62) {
                    return Err(QuicError::Malformed("crypto offset"));
                }
                f(offset, data);
            }
            ty @ (frame::ACK | frame::ACK_ECN) => {
                c.varint()?; // largest acknowledged
                c.varint()?; // ack delay
                let ranges = c.varint()?;
                if ranges > MAX_ACK_RANGES {
                    return Err(QuicError::Malformed("ack ranges"));
                }
                c.varint()?; // first range
                for _ in 0..ranges {
                    c.varint()?; // gap
                    c.varint()?; // range length
                }
                if ty == frame::ACK_ECN {
                    for _ in 0..3 {
                        c.varint()?;
                    }
                }
            }
            ty @ (frame::CONNECTION_CLOSE | frame::CONNECTION_CLOSE_APP) => {
                c.varint()?; // error code
                if ty == frame::CONNECTION_CLOSE {
                    c.varint()?; // frame type
                }
                let len = c.len()?;
                c.bytes(len)?;
            }
            _ => return Err(QuicError::Malformed("frame type in Initial")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tls;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 9001 Appendix A.2: the client Initial, 1200 octets.
    fn v1_packet() -> Vec<u8> {
        unhex(include_str!("testdata/rfc9001_a2_client_initial.hex"))
    }

    /// RFC 9369 Appendix A.2: the same payload protected for QUIC v2.
    fn v2_packet() -> Vec<u8> {
        unhex(include_str!("testdata/rfc9369_a2_client_initial.hex"))
    }

    const DCID: &str = "8394c8f03e515708";

    /// The CRYPTO frame of RFC 9001 A.2 / RFC 9369 A.2 (both carry the same payload).
    const CRYPTO_FRAME: &str = "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868\
        04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578\
        616d706c652e636f6dff01000100000a00080006001d00170018001000070005\
        04616c706e0005000501000000000033 00260024001d00209370b2c9caa47fba\
        baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400\
        0d0010000e0403050306030203080408050806002d00020101001c0002400100\
        3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000\
        75300901100f088394c8f03e51570806048000ffff";

    #[test]
    fn rfc9001_a1_keys() {
        let k = client_initial_keys(&V1, &unhex(DCID)).unwrap();
        assert_eq!(k.key.to_vec(), unhex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(k.iv.to_vec(), unhex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(k.hp.to_vec(), unhex("9f50449e04a0e810283a1e9933adedd2"));
    }

    #[test]
    fn rfc9369_a1_keys() {
        let k = client_initial_keys(&V2, &unhex(DCID)).unwrap();
        assert_eq!(k.key.to_vec(), unhex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(k.iv.to_vec(), unhex("91f73e2351d8fa91660e909f"));
        assert_eq!(k.hp.to_vec(), unhex("45b95e15235d6f45a6b19cbcb0294ba9"));
    }

    fn check_opened(packet: &[u8], version: u32) {
        let mut scratch = Vec::new();
        let opened = open_initial(packet, &mut scratch).unwrap();
        assert_eq!(opened.header.version, version);
        assert_eq!(opened.header.dcid.as_bytes(), unhex(DCID));
        assert_eq!(opened.header.end, 1200);
        assert_eq!(opened.packet_number, 2);
        assert!(opened.authenticated);
        assert_eq!(opened.payload.len(), 1162);
        let frame = unhex(CRYPTO_FRAME);
        assert_eq!(&opened.payload[..frame.len()], &frame[..]);
        assert!(opened.payload[frame.len()..].iter().all(|&b| b == 0));

        let mut crypto = Vec::new();
        for_each_crypto_frame(opened.payload, |offset, data| {
            assert_eq!(offset, 0);
            crypto.extend_from_slice(data);
        })
        .unwrap();
        assert_eq!(crypto.len(), 0xf1);
        let hello = tls::parse_client_hello(&crypto).unwrap();
        assert_eq!(hello.sni.unwrap(), "example.com");
        // JA4 worked out by hand from the RFC's ClientHello: 2 suites, 11 extensions,
        // ALPN "alpn"; the hashes are SHA-256 of the raw lists (Python's hashlib).
        assert_eq!(
            tls::ja4_raw(&hello, tls::Transport::Quic),
            "q13d0211an_1301,1302_0005,000a,000d,001c,002b,002d,0033,0039,ff01_\
             0403,0503,0603,0203,0804,0805,0806"
        );
        assert_eq!(
            tls::ja4(&hello, tls::Transport::Quic),
            "q13d0211an_62ed6f6ca7ad_4d634acda6c0"
        );
    }

    #[test]
    fn rfc9001_a2_client_initial_opens() {
        check_opened(&v1_packet(), VERSION_1);
    }

    #[test]
    fn rfc9369_a2_client_initial_opens() {
        check_opened(&v2_packet(), VERSION_2);
    }

    #[test]
    fn a_bad_tag_still_yields_the_payload() {
        let mut p = v1_packet();
        let last = p.len() - 1;
        p[last] ^= 1;
        let mut scratch = Vec::new();
        let opened = open_initial(&p, &mut scratch).unwrap();
        assert!(!opened.authenticated);
        assert_eq!(&opened.payload[..4], &[0x06, 0x00, 0x40, 0xf1]);
        assert_eq!(opened.payload.len(), 1162);
    }

    #[test]
    fn versions_do_not_mix() {
        // The v1 packet relabelled as v2 (type bits adjusted) must fail authentication.
        let mut p = v1_packet();
        p[1..5].copy_from_slice(&VERSION_2.to_be_bytes());
        p[0] = (p[0] & !0x30) | 0x10;
        let mut scratch = Vec::new();
        let opened = open_initial(&p, &mut scratch).unwrap();
        assert!(!opened.authenticated);
        assert!(for_each_crypto_frame(opened.payload, |_, _| {}).is_err());
        // Unknown version, short header, Handshake type.
        let mut p = v1_packet();
        p[4] = 2;
        assert_eq!(
            open_initial(&p, &mut scratch).unwrap_err(),
            QuicError::NotInitial
        );
        let mut p = v1_packet();
        p[0] = 0x40;
        assert_eq!(
            open_initial(&p, &mut scratch).unwrap_err(),
            QuicError::NotInitial
        );
        let mut p = v1_packet();
        p[0] |= 0x20;
        assert_eq!(
            open_initial(&p, &mut scratch).unwrap_err(),
            QuicError::NotInitial
        );
    }

    // ---- hostile input ----

    #[test]
    fn every_truncation_and_bit_flip_is_safe() {
        let packet = v1_packet();
        let mut scratch = Vec::new();
        for n in 0..packet.len() {
            assert!(
                open_initial(&packet[..n], &mut scratch).is_err(),
                "prefix {n}"
            );
        }
        for i in 0..packet.len() {
            let mut p = packet.clone();
            p[i] ^= 0x41;
            if let Ok(opened) = open_initial(&p, &mut scratch) {
                let _ = for_each_crypto_frame(opened.payload, |_, _| {});
            }
        }
    }

    #[test]
    fn frames_that_lie() {
        let mut seen = Vec::new();
        // CRYPTO claiming 100 octets with 3 present.
        assert_eq!(
            for_each_crypto_frame(&[6, 0, 0x40, 100, 1, 2, 3], |o, d| seen.push((o, d.len()))),
            Err(QuicError::Truncated)
        );
        // A STREAM frame is not allowed in an Initial; the CRYPTO frame before it counts.
        assert_eq!(
            for_each_crypto_frame(&[6, 5, 1, 0xaa, 0x08, 0, 0], |o, d| seen.push((o, d.len()))),
            Err(QuicError::Malformed("frame type in Initial"))
        );
        assert_eq!(seen, [(5, 1)]);
        // An ACK frame with a huge range count.
        assert!(for_each_crypto_frame(&[2, 0, 0, 0x7f, 0xff, 0], |_, _| {}).is_err());
        // Padding, ping, ACK with ECN, then CRYPTO.
        let mut seen = Vec::new();
        for_each_crypto_frame(
            &[0, 0, 1, 3, 9, 0, 1, 0, 2, 3, 1, 1, 1, 6, 0, 1, 0x16],
            |o, d| seen.push((o, d.to_vec())),
        )
        .unwrap();
        assert_eq!(seen, [(0, vec![0x16])]);
        // Offsets near 2^62 are refused.
        let mut frame = vec![6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0];
        assert!(for_each_crypto_frame(&frame, |_, _| {}).is_err());
        frame[8] = 0xfe; // 2^62 - 2, plus one octet: the last offset allowed
        assert!(for_each_crypto_frame(&frame, |_, _| {}).is_ok());
        // A thousand frames of PING are capped.
        assert!(for_each_crypto_frame(&[1; 1000], |_, _| {}).is_err());
    }

    #[test]
    fn varints() {
        // RFC 9000 §A.1's examples.
        assert_eq!(
            varint(&unhex("c2197c5eff14e88c")),
            Some((151_288_809_941_952_652, 8))
        );
        assert_eq!(varint(&unhex("9d7f3e7d")), Some((494_878_333, 4)));
        assert_eq!(varint(&unhex("7bbd")), Some((15_293, 2)));
        assert_eq!(varint(&unhex("25")), Some((37, 1)));
        assert_eq!(varint(&unhex("4025")), Some((37, 2)));
        assert_eq!(varint(&unhex("c2197c")), None);
        assert_eq!(varint(&[]), None);
    }
}
