//! TLS records and the handshake messages a passive sensor can see (RFC 8446, RFC 5246):
//! ClientHello (SNI, ALPN and everything JA3/JA4 need), ServerHello and the server's first
//! certificate (TLS ≤ 1.2 sends it in clear).
//!
//! Handshake messages may span records and TCP segments. [`client_hello_needs`] tells the
//! reassembly stage how many octets to wait for; [`handshake_payload`] joins the fragments
//! of consecutive handshake records (borrowing when one record holds them all) and
//! [`parse_client_hello`] / [`parse_server_flight`] read the joined bytes. Lists inside a
//! ClientHello are kept as borrowed wire slices and iterated on demand.

use std::fmt::Write as _;

use super::{LowerName, be_u16, be_u24, wire_enum};

/// TLS record header: type, version, length.
pub const RECORD_HEADER_LEN: usize = 5;
/// Largest record fragment: 2^14 plaintext plus the 2048 octets TLS 1.2 allows for
/// expansion (RFC 5246 §6.2.3). Longer means "not TLS".
pub const MAX_RECORD_LEN: usize = (1 << 14) + 2048;
/// Handshake message header: type and 24-bit length.
pub const HANDSHAKE_HEADER_LEN: usize = 4;
/// Largest handshake message reassembled. A ClientHello is a few KiB even with
/// post-quantum key shares; a server certificate chain rarely exceeds 16 KiB. 64 KiB leaves
/// room for odd chains while bounding per-flow memory.
pub const MAX_HANDSHAKE_LEN: usize = 64 * 1024;
/// Extensions examined per hello: browsers send about 20; the list is bounded by its
/// length anyway, this stops a hello of 16k empty extensions from costing 16k steps.
pub const MAX_EXTENSIONS: usize = 128;
/// Handshake messages walked in a server flight before giving up on finding a certificate.
pub const MAX_FLIGHT_MESSAGES: usize = 16;

/// Why TLS bytes could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Not a TLS handshake (wrong record type, version or message type).
    #[error("not a TLS handshake")]
    NotTls,
    /// More octets are needed: at least `more` of them.
    #[error("incomplete TLS data: at least {more} more bytes needed")]
    Incomplete {
        /// Minimum octets still missing.
        more: usize,
    },
    /// A length field points past its enclosing structure.
    #[error("malformed TLS {0}")]
    Malformed(&'static str),
    /// A handshake message longer than [`MAX_HANDSHAKE_LEN`].
    #[error("TLS handshake message too large")]
    TooLarge,
}

wire_enum! {
    /// TLSPlaintext.type (RFC 8446 §5.1).
    pub struct ContentType(u8);
    CHANGE_CIPHER_SPEC = 20, "change_cipher_spec";
    ALERT = 21, "alert";
    HANDSHAKE = 22, "handshake";
    APPLICATION_DATA = 23, "application_data";
    HEARTBEAT = 24, "heartbeat";
}

wire_enum! {
    /// ProtocolVersion (RFC 8446 §4.2.1; DTLS: RFC 9147).
    pub struct ProtocolVersion(u16);
    SSL_3_0 = 0x0300, "SSLv3";
    TLS_1_0 = 0x0301, "TLSv1";
    TLS_1_1 = 0x0302, "TLSv1.1";
    TLS_1_2 = 0x0303, "TLSv1.2";
    TLS_1_3 = 0x0304, "TLSv1.3";
    DTLS_1_0 = 0xfeff, "DTLSv1";
    DTLS_1_2 = 0xfefd, "DTLSv1.2";
    DTLS_1_3 = 0xfefc, "DTLSv1.3";
}

wire_enum! {
    /// HandshakeType (RFC 8446 §4, RFC 5246 §7.4).
    pub struct HandshakeType(u8);
    CLIENT_HELLO = 1, "client_hello";
    SERVER_HELLO = 2, "server_hello";
    NEW_SESSION_TICKET = 4, "new_session_ticket";
    ENCRYPTED_EXTENSIONS = 8, "encrypted_extensions";
    CERTIFICATE = 11, "certificate";
    SERVER_KEY_EXCHANGE = 12, "server_key_exchange";
    CERTIFICATE_REQUEST = 13, "certificate_request";
    SERVER_HELLO_DONE = 14, "server_hello_done";
    CERTIFICATE_VERIFY = 15, "certificate_verify";
    CLIENT_KEY_EXCHANGE = 16, "client_key_exchange";
    FINISHED = 20, "finished";
}

wire_enum! {
    /// ExtensionType (IANA "TLS ExtensionType Values").
    pub struct ExtensionType(u16);
    SERVER_NAME = 0, "server_name";
    STATUS_REQUEST = 5, "status_request";
    SUPPORTED_GROUPS = 10, "supported_groups";
    EC_POINT_FORMATS = 11, "ec_point_formats";
    SIGNATURE_ALGORITHMS = 13, "signature_algorithms";
    ALPN = 16, "application_layer_protocol_negotiation";
    SIGNED_CERTIFICATE_TIMESTAMP = 18, "signed_certificate_timestamp";
    PADDING = 21, "padding";
    ENCRYPT_THEN_MAC = 22, "encrypt_then_mac";
    EXTENDED_MASTER_SECRET = 23, "extended_master_secret";
    COMPRESS_CERTIFICATE = 27, "compress_certificate";
    SESSION_TICKET = 35, "session_ticket";
    PRE_SHARED_KEY = 41, "pre_shared_key";
    EARLY_DATA = 42, "early_data";
    SUPPORTED_VERSIONS = 43, "supported_versions";
    PSK_KEY_EXCHANGE_MODES = 45, "psk_key_exchange_modes";
    KEY_SHARE = 51, "key_share";
    QUIC_TRANSPORT_PARAMETERS = 57, "quic_transport_parameters";
    APPLICATION_SETTINGS = 0x44cd, "application_settings";
    ENCRYPTED_CLIENT_HELLO = 0xfe0d, "encrypted_client_hello";
    RENEGOTIATION_INFO = 0xff01, "renegotiation_info";
}

wire_enum! {
    /// CipherSuite (IANA "TLS Cipher Suites"); a few common names, all values representable.
    pub struct CipherSuite(u16);
    TLS_RSA_WITH_AES_128_CBC_SHA = 0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA";
    TLS_RSA_WITH_AES_256_CBC_SHA = 0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA";
    TLS_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00ff, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV";
    TLS_AES_128_GCM_SHA256 = 0x1301, "TLS_AES_128_GCM_SHA256";
    TLS_AES_256_GCM_SHA384 = 0x1302, "TLS_AES_256_GCM_SHA384";
    TLS_CHACHA20_POLY1305_SHA256 = 0x1303, "TLS_CHACHA20_POLY1305_SHA256";
    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 = 0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 = 0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256";
}

wire_enum! {
    /// NamedGroup (RFC 8446 §4.2.7, RFC 8422 "elliptic curves").
    pub struct NamedGroup(u16);
    SECP256R1 = 23, "secp256r1";
    SECP384R1 = 24, "secp384r1";
    SECP521R1 = 25, "secp521r1";
    X25519 = 29, "x25519";
    X448 = 30, "x448";
    X25519_MLKEM768 = 0x11ec, "X25519MLKEM768";
}

wire_enum! {
    /// SignatureScheme (RFC 8446 §4.2.3).
    pub struct SignatureScheme(u16);
    RSA_PKCS1_SHA256 = 0x0401, "rsa_pkcs1_sha256";
    ECDSA_SECP256R1_SHA256 = 0x0403, "ecdsa_secp256r1_sha256";
    RSA_PSS_RSAE_SHA256 = 0x0804, "rsa_pss_rsae_sha256";
    ED25519 = 0x0807, "ed25519";
}

/// GREASE values (RFC 8701): `0x?a?a` with both octets equal. Clients sprinkle them into
/// every list to keep servers tolerant; fingerprints must skip them.
pub fn is_grease(value: u16) -> bool {
    value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
}

/// One TLS record:
///
/// ```text
/// struct {
///     ContentType type;
///     ProtocolVersion legacy_record_version;
///     uint16 length;
///     opaque fragment[TLSPlaintext.length];
/// } TLSPlaintext;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Record type.
    pub content_type: ContentType,
    /// Record-layer version (legacy; 0x0301 or 0x0303 in practice).
    pub version: ProtocolVersion,
    /// The fragment.
    pub fragment: &'a [u8],
}

/// Reads one record from the start of `buf`; returns it and the bytes after it.
/// Only SSLv3/TLS record versions (major 3) are accepted: anything else is [`TlsError::NotTls`].
pub fn parse_record(buf: &[u8]) -> Result<(Record<'_>, &[u8]), TlsError> {
    if buf.len() < RECORD_HEADER_LEN {
        // Judge what we have so junk is rejected early.
        if let Some(&t) = buf.first()
            && !(20..=24).contains(&t)
        {
            return Err(TlsError::NotTls);
        }
        if buf.get(1).is_some_and(|&major| major != 3) {
            return Err(TlsError::NotTls);
        }
        return Err(TlsError::Incomplete {
            more: RECORD_HEADER_LEN - buf.len(),
        });
    }
    let content_type = ContentType(buf[0]);
    let version = ProtocolVersion(u16::from_be_bytes([buf[1], buf[2]]));
    let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    if !(20..=24).contains(&buf[0]) || buf[1] != 3 || len > MAX_RECORD_LEN {
        return Err(TlsError::NotTls);
    }
    let body = &buf[RECORD_HEADER_LEN..];
    if body.len() < len {
        return Err(TlsError::Incomplete {
            more: len - body.len(),
        });
    }
    let (fragment, rest) = body.split_at(len);
    Ok((
        Record {
            content_type,
            version,
            fragment,
        },
        rest,
    ))
}

/// What the reassembly stage should do with the start of a client's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needed {
    /// The stream does not start with a handshake record holding a ClientHello.
    NotClientHello,
    /// The first `stream_len` octets hold the whole ClientHello.
    Complete {
        /// Stream octets (record headers included) up to the end of the message.
        stream_len: usize,
    },
    /// At least `more` octets are missing (later record headers may add a few more).
    Incomplete {
        /// Minimum octets still to come.
        more: usize,
    },
}

/// How many stream octets the ClientHello at the start of `stream` needs.
pub fn client_hello_needs(stream: &[u8]) -> Needed {
    match first_message_extent(stream, HandshakeType::CLIENT_HELLO) {
        Ok(stream_len) => Needed::Complete { stream_len },
        Err(TlsError::Incomplete { more }) => Needed::Incomplete { more },
        Err(_) => Needed::NotClientHello,
    }
}

/// Tracks the header and length of a handshake message fed in pieces.
struct MessageExtent {
    header: [u8; HANDSHAKE_HEADER_LEN],
    have: usize,
    want: Option<usize>,
}

impl MessageExtent {
    fn feed(&mut self, bytes: &[u8], expect: HandshakeType) -> Result<(), TlsError> {
        let take = HANDSHAKE_HEADER_LEN
            .saturating_sub(self.have)
            .min(bytes.len());
        if take > 0 {
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            if HandshakeType(self.header[0]) != expect {
                return Err(TlsError::NotTls);
            }
        }
        self.have += bytes.len();
        if self.want.is_none() && self.have >= HANDSHAKE_HEADER_LEN {
            let len = be_u24(&self.header, 1).unwrap_or(0) + HANDSHAKE_HEADER_LEN;
            if len > MAX_HANDSHAKE_LEN {
                return Err(TlsError::TooLarge);
            }
            self.want = Some(len);
        }
        Ok(())
    }

    fn missing(&self) -> usize {
        self.want
            .map_or(HANDSHAKE_HEADER_LEN.saturating_sub(self.have), |w| {
                w.saturating_sub(self.have)
            })
    }
}

/// Stream octets up to the end of the first handshake message, which must be of `expect`.
fn first_message_extent(stream: &[u8], expect: HandshakeType) -> Result<usize, TlsError> {
    let mut extent = MessageExtent {
        header: [0; HANDSHAKE_HEADER_LEN],
        have: 0,
        want: None,
    };
    let mut rest = stream;
    loop {
        let offset = stream.len() - rest.len();
        match parse_record(rest) {
            Ok((record, after)) => {
                if record.content_type != ContentType::HANDSHAKE {
                    return Err(TlsError::NotTls);
                }
                let before = extent.have;
                extent.feed(record.fragment, expect)?;
                if let Some(want) = extent.want
                    && extent.have >= want
                {
                    return Ok(offset + RECORD_HEADER_LEN + (want - before));
                }
                rest = after;
            }
            Err(TlsError::Incomplete { more }) if rest.len() < RECORD_HEADER_LEN => {
                return Err(TlsError::Incomplete {
                    more: more + extent.missing().max(1),
                });
            }
            Err(TlsError::Incomplete { more }) => {
                if ContentType(rest[0]) != ContentType::HANDSHAKE {
                    return Err(TlsError::NotTls);
                }
                let body = &rest[RECORD_HEADER_LEN..];
                let before = extent.have;
                extent.feed(body, expect)?;
                let record_len = body.len() + more;
                return match extent.want {
                    // The message ends in the part of the record already here.
                    Some(want) if want - before <= body.len() => {
                        Ok(offset + RECORD_HEADER_LEN + (want - before))
                    }
                    Some(want) if want - before <= record_len => Err(TlsError::Incomplete {
                        more: want - before - body.len(),
                    }),
                    // Also needs at least one more record header.
                    Some(_) => Err(TlsError::Incomplete {
                        more: extent.missing() + RECORD_HEADER_LEN,
                    }),
                    None => Err(TlsError::Incomplete {
                        more: extent.missing().max(1),
                    }),
                };
            }
            Err(e) => return Err(e),
        }
    }
}

/// Joins the fragments of the handshake records at the start of `stream` into one handshake
/// byte stream (RFC 8446 §5.1: messages may be split across records and coalesced in one).
///
/// Borrows the fragment when a single record holds everything; otherwise copies into
/// `scratch`, at most [`MAX_HANDSHAKE_LEN`] octets. Stops at the first non-handshake record;
/// a trailing partial record contributes the octets already present.
pub fn handshake_payload<'s>(
    stream: &'s [u8],
    scratch: &'s mut Vec<u8>,
) -> Result<&'s [u8], TlsError> {
    let mut pieces = 0;
    let mut first: &[u8] = &[];
    for_each_handshake_fragment(stream, |fragment| {
        if pieces == 0 {
            first = fragment;
        }
        pieces += 1;
    })?;
    if pieces <= 1 {
        return Ok(&first[..first.len().min(MAX_HANDSHAKE_LEN)]);
    }
    scratch.clear();
    for_each_handshake_fragment(stream, |fragment| {
        let room = MAX_HANDSHAKE_LEN - scratch.len();
        scratch.extend_from_slice(&fragment[..fragment.len().min(room)]);
    })?;
    Ok(scratch)
}

fn for_each_handshake_fragment<'a>(
    stream: &'a [u8],
    mut f: impl FnMut(&'a [u8]),
) -> Result<(), TlsError> {
    let mut rest = stream;
    let mut first = true;
    loop {
        match parse_record(rest) {
            Ok((record, after)) if record.content_type == ContentType::HANDSHAKE => {
                f(record.fragment);
                rest = after;
            }
            Err(TlsError::Incomplete { .. })
                if rest.len() >= RECORD_HEADER_LEN
                    && ContentType(rest[0]) == ContentType::HANDSHAKE =>
            {
                f(&rest[RECORD_HEADER_LEN..]);
                return Ok(());
            }
            Err(e) if first => return Err(e),
            Ok(_) if first => return Err(TlsError::NotTls),
            _ => return Ok(()),
        }
        first = false;
    }
}

/// Splits one handshake message off the start of a handshake payload:
///
/// ```text
/// struct {
///     HandshakeType msg_type;
///     uint24 length;
///     select (msg_type) { ... } body;   /* `length` octets */
/// } Handshake;
/// ```
///
/// Returns the type, the body and the rest of the payload.
pub fn split_handshake(payload: &[u8]) -> Result<(HandshakeType, &[u8], &[u8]), TlsError> {
    let ty = *payload.first().ok_or(TlsError::Incomplete {
        more: HANDSHAKE_HEADER_LEN,
    })?;
    let len = be_u24(payload, 1).ok_or_else(|| TlsError::Incomplete {
        more: HANDSHAKE_HEADER_LEN.saturating_sub(payload.len()),
    })?;
    if len + HANDSHAKE_HEADER_LEN > MAX_HANDSHAKE_LEN {
        return Err(TlsError::TooLarge);
    }
    let body = &payload[HANDSHAKE_HEADER_LEN..];
    if body.len() < len {
        return Err(TlsError::Incomplete {
            more: len - body.len(),
        });
    }
    Ok((HandshakeType(ty), &body[..len], &body[len..]))
}

/// A bounds-checked reader over one structure.
struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], TlsError> {
        if self.buf.len() < n {
            return Err(TlsError::Malformed(self.what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, TlsError> {
        Ok(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, TlsError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Result<&'a [u8], TlsError> {
        let n = usize::from(self.u8()?);
        self.bytes(n)
    }
    fn vec16(&mut self) -> Result<&'a [u8], TlsError> {
        let n = usize::from(self.u16()?);
        self.bytes(n)
    }
    fn vec24(&mut self) -> Result<&'a [u8], TlsError> {
        let n = be_u24(self.buf, 0).ok_or(TlsError::Malformed(self.what))?;
        self.bytes(3)?;
        self.bytes(n)
    }
}

/// 16-bit values of a wire list, skipping a dangling odd octet.
fn u16s(raw: &[u8]) -> impl Iterator<Item = u16> + '_ {
    raw.chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
}

/// One extension: `struct { ExtensionType extension_type; opaque extension_data<0..2^16-1>; }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The type.
    pub ty: ExtensionType,
    /// The data, uninterpreted.
    pub data: &'a [u8],
}

/// Whole extensions of an extension block, at most [`MAX_EXTENSIONS`]; stops at one whose
/// length runs past the block.
fn extensions(block: &[u8]) -> impl Iterator<Item = Extension<'_>> {
    let mut r = Reader::new(block, "extension");
    std::iter::from_fn(move || {
        let ty = r.u16().ok()?;
        let data = r.vec16().ok()?;
        Some(Extension {
            ty: ExtensionType(ty),
            data,
        })
    })
    .take(MAX_EXTENSIONS)
}

/// Oddities in a ClientHello that did not stop parsing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HelloAnomalies {
    /// The extensions block length, or an extension's length, runs past the message.
    pub extensions_truncated: bool,
    /// More than [`MAX_EXTENSIONS`] extensions; the rest were ignored.
    pub extensions_capped: bool,
    /// Octets after the extensions block, inside the message.
    pub trailing_data: bool,
    /// server_name listed more than one host_name (RFC 6066 allows one); the first is used.
    pub multiple_server_names: bool,
    /// An extension whose inner lengths do not add up (its list is read up to the fault).
    pub bad_extension: Option<ExtensionType>,
    /// The SNI host name is longer than a DNS name can be; [`ClientHello::sni`] is `None`.
    pub sni_too_long: bool,
    /// The same extension type appears twice (RFC 8446 forbids it); checked for types below
    /// 256, which covers every extension a fingerprint cares about.
    pub duplicate_extension: bool,
}

/// A ClientHello (RFC 8446 §4.1.2; RFC 5246 §7.4.1.2 is the same shape):
///
/// ```text
/// struct {
///     ProtocolVersion legacy_version;            /* 0x0303 for TLS 1.3 */
///     Random random;                             /* 32 octets */
///     opaque legacy_session_id<0..32>;
///     CipherSuite cipher_suites<2..2^16-2>;
///     opaque legacy_compression_methods<1..2^8-1>;
///     Extension extensions<8..2^16-1>;           /* absent in some SSLv3/TLS 1.0 hellos */
/// } ClientHello;
/// ```
///
/// Lists stay as borrowed wire slices; the iterators decode them on demand.
#[derive(Debug, Clone, Copy)]
pub struct ClientHello<'a> {
    /// legacy_version.
    pub legacy_version: ProtocolVersion,
    /// The 32-octet random.
    pub random: &'a [u8],
    /// legacy_session_id.
    pub session_id: &'a [u8],
    /// legacy_compression_methods.
    pub compression_methods: &'a [u8],
    /// The first host_name of server_name (RFC 6066 §3), lower-cased.
    pub sni: Option<LowerName>,
    /// Oddities.
    pub anomalies: HelloAnomalies,
    cipher_suites: &'a [u8],
    extensions: &'a [u8],
    alpn: &'a [u8],
    supported_versions: Option<&'a [u8]>,
    signature_algorithms: &'a [u8],
    supported_groups: &'a [u8],
    ec_point_formats: &'a [u8],
}

impl<'a> ClientHello<'a> {
    /// Offered cipher suites in order, GREASE included (see [`is_grease`]).
    pub fn cipher_suites(&self) -> impl Iterator<Item = CipherSuite> + 'a {
        u16s(self.cipher_suites).map(CipherSuite)
    }
    /// Extensions in order, GREASE included.
    pub fn extensions(&self) -> impl Iterator<Item = Extension<'a>> + 'a {
        extensions(self.extensions)
    }
    /// ALPN protocol names in order (RFC 7301 §3.1).
    pub fn alpn(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut r = Reader::new(self.alpn, "alpn");
        std::iter::from_fn(move || r.vec8().ok())
    }
    /// True if the client sent supported_versions.
    pub fn has_supported_versions(&self) -> bool {
        self.supported_versions.is_some()
    }
    /// supported_versions (RFC 8446 §4.2.1), GREASE included.
    pub fn supported_versions(&self) -> impl Iterator<Item = ProtocolVersion> + 'a {
        u16s(self.supported_versions.unwrap_or(&[])).map(ProtocolVersion)
    }
    /// signature_algorithms (RFC 8446 §4.2.3) in order.
    pub fn signature_algorithms(&self) -> impl Iterator<Item = SignatureScheme> + 'a {
        u16s(self.signature_algorithms).map(SignatureScheme)
    }
    /// supported_groups (RFC 8446 §4.2.7) in order, GREASE included.
    pub fn supported_groups(&self) -> impl Iterator<Item = NamedGroup> + 'a {
        u16s(self.supported_groups).map(NamedGroup)
    }
    /// ec_point_formats (RFC 8422 §5.1.2).
    pub fn ec_point_formats(&self) -> &'a [u8] {
        self.ec_point_formats
    }
    /// True if a server_name extension is present (even one without a host_name).
    pub fn has_server_name(&self) -> bool {
        self.extensions()
            .any(|e| e.ty == ExtensionType::SERVER_NAME)
    }
}

/// Parses a ClientHello handshake message (header included: `msg` starts at msg_type).
/// `msg` usually comes from [`handshake_payload`]; bytes after the message are ignored.
pub fn parse_client_hello(msg: &[u8]) -> Result<ClientHello<'_>, TlsError> {
    let (ty, body, _) = split_handshake(msg)?;
    if ty != HandshakeType::CLIENT_HELLO {
        return Err(TlsError::NotTls);
    }
    let mut r = Reader::new(body, "client_hello");
    let legacy_version = ProtocolVersion(r.u16()?);
    if legacy_version.0 >> 8 != 3 && legacy_version.0 >> 8 != 0xfe {
        return Err(TlsError::NotTls);
    }
    let random = r.bytes(32)?;
    let session_id = r.vec8()?;
    if session_id.len() > 32 {
        return Err(TlsError::Malformed("session_id"));
    }
    let cipher_suites = r.vec16()?;
    let compression_methods = r.vec8()?;
    let mut hello = ClientHello {
        legacy_version,
        random,
        session_id,
        compression_methods,
        sni: None,
        anomalies: HelloAnomalies::default(),
        cipher_suites,
        extensions: &[],
        alpn: &[],
        supported_versions: None,
        signature_algorithms: &[],
        supported_groups: &[],
        ec_point_formats: &[],
    };
    if r.buf.is_empty() {
        return Ok(hello); // no extensions at all: legal before TLS 1.2
    }
    let claimed = usize::from(r.u16()?);
    let block = if claimed <= r.buf.len() {
        hello.anomalies.trailing_data = claimed < r.buf.len();
        &r.buf[..claimed]
    } else {
        // The block length lies: read whole extensions from what is there.
        hello.anomalies.extensions_truncated = true;
        r.buf
    };
    hello.extensions = block;
    read_client_extensions(&mut hello);
    Ok(hello)
}

fn read_client_extensions(hello: &mut ClientHello<'_>) {
    let block = hello.extensions;
    let mut seen = [0u64; 4]; // duplicate detection for types < 256
    let mut count = 0;
    let mut consumed = 0;
    for ext in extensions(block) {
        count += 1;
        consumed += 4 + ext.data.len();
        if let Some(slot) = seen.get_mut(usize::from(ext.ty.0 >> 6)) {
            let bit = 1u64 << (ext.ty.0 & 63);
            hello.anomalies.duplicate_extension |= *slot & bit != 0;
            *slot |= bit;
        }
        let mut r = Reader::new(ext.data, "extension");
        let ok = match ext.ty {
            ExtensionType::SERVER_NAME => read_server_name(hello, ext.data),
            ExtensionType::ALPN => r.vec16().map(|l| hello.alpn = l).is_ok(),
            ExtensionType::SUPPORTED_VERSIONS => {
                r.vec8().map(|l| hello.supported_versions = Some(l)).is_ok()
            }
            ExtensionType::SIGNATURE_ALGORITHMS => {
                r.vec16().map(|l| hello.signature_algorithms = l).is_ok()
            }
            ExtensionType::SUPPORTED_GROUPS => {
                r.vec16().map(|l| hello.supported_groups = l).is_ok()
            }
            ExtensionType::EC_POINT_FORMATS => r.vec8().map(|l| hello.ec_point_formats = l).is_ok(),
            _ => true,
        };
        if !ok {
            hello.anomalies.bad_extension.get_or_insert(ext.ty);
        }
    }
    if count == MAX_EXTENSIONS && consumed < block.len() {
        hello.anomalies.extensions_capped = true;
    } else if consumed < block.len() {
        hello.anomalies.extensions_truncated = true;
    }
}

/// server_name (RFC 6066 §3):
///
/// ```text
/// struct {
///     NameType name_type;                     /* host_name(0) */
///     select (name_type) { case host_name: HostName; } name;
/// } ServerName;
/// opaque HostName<1..2^16-1>;
/// struct { ServerName server_name_list<1..2^16-1> } ServerNameList;
/// ```
fn read_server_name(hello: &mut ClientHello<'_>, data: &[u8]) -> bool {
    let mut outer = Reader::new(data, "server_name");
    let Ok(list) = outer.vec16() else {
        return false;
    };
    let mut r = Reader::new(list, "server_name");
    let mut host_names = 0;
    while !r.buf.is_empty() {
        let (Ok(name_type), Ok(name)) = (r.u8(), r.vec16()) else {
            return false;
        };
        if name_type != 0 {
            continue;
        }
        host_names += 1;
        if host_names > 1 {
            hello.anomalies.multiple_server_names = true;
            continue;
        }
        let name = name.strip_suffix(b".").unwrap_or(name);
        hello.sni = LowerName::from_bytes(name);
        hello.anomalies.sni_too_long = hello.sni.is_none();
    }
    true
}

/// A ServerHello (RFC 8446 §4.1.3):
///
/// ```text
/// struct {
///     ProtocolVersion legacy_version;
///     Random random;
///     opaque legacy_session_id_echo<0..32>;
///     CipherSuite cipher_suite;
///     uint8 legacy_compression_method;
///     Extension extensions<6..2^16-1>;
/// } ServerHello;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerHello<'a> {
    /// legacy_version.
    pub legacy_version: ProtocolVersion,
    /// The 32-octet random.
    pub random: &'a [u8],
    /// legacy_session_id_echo.
    pub session_id: &'a [u8],
    /// The chosen suite.
    pub cipher_suite: CipherSuite,
    /// The chosen compression method.
    pub compression_method: u8,
    /// supported_versions' selected_version (TLS 1.3), if sent.
    pub selected_version: Option<ProtocolVersion>,
    extensions: &'a [u8],
}

impl<'a> ServerHello<'a> {
    /// The negotiated version: selected_version if sent, else legacy_version.
    pub fn version(&self) -> ProtocolVersion {
        self.selected_version.unwrap_or(self.legacy_version)
    }
    /// Extensions in order.
    pub fn extensions(&self) -> impl Iterator<Item = Extension<'a>> + 'a {
        extensions(self.extensions)
    }
}

/// Parses a ServerHello body (after the handshake header).
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello<'_>, TlsError> {
    let mut r = Reader::new(body, "server_hello");
    let legacy_version = ProtocolVersion(r.u16()?);
    let random = r.bytes(32)?;
    let session_id = r.vec8()?;
    let cipher_suite = CipherSuite(r.u16()?);
    let compression_method = r.u8()?;
    let extensions_block = if r.buf.is_empty() {
        &[][..]
    } else {
        r.vec16()?
    };
    let selected_version = extensions(extensions_block)
        .find(|e| e.ty == ExtensionType::SUPPORTED_VERSIONS)
        .and_then(|e| be_u16(e.data, 0))
        .map(ProtocolVersion);
    Ok(ServerHello {
        legacy_version,
        random,
        session_id,
        cipher_suite,
        compression_method,
        selected_version,
        extensions: extensions_block,
    })
}

/// What a server's first flight shows in clear.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerFlight<'a> {
    /// The ServerHello, if it was in the payload.
    pub server_hello: Option<ServerHello<'a>>,
    /// DER of the first (leaf) certificate, if a Certificate message was in the payload.
    /// TLS 1.3 encrypts it, so it is only ever seen for TLS ≤ 1.2.
    pub first_certificate: Option<&'a [u8]>,
    /// The payload ended inside a message: more bytes may hold the certificate.
    pub incomplete: bool,
    /// The part of the flight sent in clear is over: a TLS 1.3 ServerHello (the rest is
    /// encrypted), ServerHelloDone, or the Certificate message itself.
    pub finished: bool,
}

/// Reads a server's handshake payload (from [`handshake_payload`]): ServerHello, then the
/// Certificate message if sent in clear (RFC 5246 §7.4.2):
///
/// ```text
/// opaque ASN.1Cert<1..2^24-1>;
/// struct { ASN.1Cert certificate_list<0..2^24-1>; } Certificate;
/// ```
///
/// Walks at most [`MAX_FLIGHT_MESSAGES`] messages.
pub fn parse_server_flight(payload: &[u8]) -> Result<ServerFlight<'_>, TlsError> {
    let mut flight = ServerFlight::default();
    let mut rest = payload;
    for _ in 0..MAX_FLIGHT_MESSAGES {
        if rest.is_empty() {
            break;
        }
        let (ty, body, after) = match split_handshake(rest) {
            Ok(x) => x,
            Err(TlsError::Incomplete { .. }) => {
                flight.incomplete = true;
                // A Certificate message cut short may already hold the whole leaf.
                if rest.first() == Some(&HandshakeType::CERTIFICATE.0) {
                    flight.first_certificate =
                        rest.get(HANDSHAKE_HEADER_LEN..).and_then(partial_leaf);
                }
                break;
            }
            Err(e) => return Err(e),
        };
        match ty {
            HandshakeType::SERVER_HELLO => {
                let hello = parse_server_hello(body)?;
                let tls13 = hello.version() == ProtocolVersion::TLS_1_3;
                flight.server_hello = Some(hello);
                if tls13 {
                    flight.finished = true;
                    break; // everything after is encrypted
                }
            }
            HandshakeType::CERTIFICATE => {
                let mut r = Reader::new(body, "certificate");
                let list = r.vec24()?;
                let mut list = Reader::new(list, "certificate_list");
                if !list.buf.is_empty() {
                    flight.first_certificate = Some(list.vec24()?);
                }
                flight.finished = true;
                break;
            }
            HandshakeType::SERVER_HELLO_DONE => {
                flight.finished = true;
                break;
            }
            _ => {}
        }
        rest = after;
    }
    if flight.server_hello.is_none() && flight.first_certificate.is_none() && !flight.incomplete {
        return Err(TlsError::NotTls);
    }
    Ok(flight)
}

/// The leaf certificate from the start of a Certificate body that may be cut short: the
/// list length, then the first certificate's length and all of its octets.
fn partial_leaf(body: &[u8]) -> Option<&[u8]> {
    let list_len = be_u24(body, 0)?;
    let cert_len = be_u24(body, 3)?;
    if cert_len == 0 || cert_len + 3 > list_len {
        return None;
    }
    body.get(6..6 + cert_len)
}

/// What a server's stream shows of its certificate so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCertificate<'a> {
    /// DER of the leaf certificate.
    Leaf(&'a [u8]),
    /// The clear part of the flight is still coming: wait for more bytes.
    Pending,
    /// No certificate will be seen in clear (TLS 1.3, a resumed session, not a server
    /// flight at all).
    Absent,
}

/// Looks for the leaf certificate in the start of a server's stream (records as sent;
/// `scratch` joins fragments of several records, see [`handshake_payload`]).
pub fn server_certificate<'s>(stream: &'s [u8], scratch: &'s mut Vec<u8>) -> ServerCertificate<'s> {
    let ended = clear_records_ended(stream);
    let payload = match handshake_payload(stream, scratch) {
        Ok(p) => p,
        Err(TlsError::Incomplete { .. }) => return ServerCertificate::Pending,
        Err(_) => return ServerCertificate::Absent,
    };
    match parse_server_flight(payload) {
        Ok(ServerFlight {
            first_certificate: Some(der),
            ..
        }) => ServerCertificate::Leaf(der),
        Ok(flight) if !flight.finished && !ended => ServerCertificate::Pending,
        // A record header whose fragment has not started yet.
        Err(TlsError::NotTls) if payload.is_empty() && !ended => ServerCertificate::Pending,
        _ => ServerCertificate::Absent,
    }
}

/// True when the handshake records at the start of `stream` are followed by a record of
/// another type (ChangeCipherSpec, application data) or by bytes that are not TLS: nothing
/// more of the flight will come in clear.
fn clear_records_ended(stream: &[u8]) -> bool {
    let mut rest = stream;
    loop {
        match parse_record(rest) {
            Ok((record, after)) if record.content_type == ContentType::HANDSHAKE => rest = after,
            Ok(_) => return true,
            Err(TlsError::Incomplete { .. }) => return false,
            Err(_) => return true,
        }
    }
}

/// The transport a ClientHello arrived over: JA4's first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TLS over TCP: `t`.
    Tcp,
    /// QUIC (TLS inside QUIC CRYPTO frames): `q`.
    Quic,
    /// DTLS: `d`.
    Dtls,
}

/// The JA3 string (Salesforce JA3): `SSLVersion,Ciphers,Extensions,EllipticCurves,
/// EllipticCurvePointFormats`, decimal values joined by `-`, GREASE removed, wire order.
/// Hashing it (MD5) is left to the caller.
pub fn ja3_string(hello: &ClientHello<'_>) -> String {
    fn list(out: &mut String, values: impl Iterator<Item = u16>) {
        for (i, v) in values.filter(|&v| !is_grease(v)).enumerate() {
            if i > 0 {
                out.push('-');
            }
            let _ = write!(out, "{v}");
        }
    }
    let mut s = String::with_capacity(256);
    let _ = write!(s, "{},", hello.legacy_version.0);
    list(&mut s, hello.cipher_suites().map(|c| c.0));
    s.push(',');
    list(&mut s, hello.extensions().map(|e| e.ty.0));
    s.push(',');
    list(&mut s, hello.supported_groups().map(|g| g.0));
    s.push(',');
    list(
        &mut s,
        hello.ec_point_formats().iter().map(|&p| u16::from(p)),
    );
    s
}

/// JA3: the MD5 of [`ja3_string`], in lower-case hex.
pub fn ja3(hello: &ClientHello<'_>) -> String {
    super::md5::md5_hex(ja3_string(hello).as_bytes())
}

/// JA4 (FoxIO JA4 TLS client fingerprint), e.g. `t13d1516h2_8daaf6152771_e5627efa2ab1`.
pub fn ja4(hello: &ClientHello<'_>, transport: Transport) -> String {
    let parts = Ja4Parts::new(hello, transport);
    format!(
        "{}_{}_{}",
        parts.a,
        hash12(&parts.ciphers),
        hash12(&parts.extensions)
    )
}

/// JA4's raw form (`ja4_r`): the same with the sorted lists unhashed. For debugging and tests.
pub fn ja4_raw(hello: &ClientHello<'_>, transport: Transport) -> String {
    let parts = Ja4Parts::new(hello, transport);
    format!("{}_{}_{}", parts.a, parts.ciphers, parts.extensions)
}

struct Ja4Parts {
    a: String,
    ciphers: String,
    extensions: String,
}

impl Ja4Parts {
    fn new(hello: &ClientHello<'_>, transport: Transport) -> Self {
        let proto = match transport {
            Transport::Tcp => 't',
            Transport::Quic => 'q',
            Transport::Dtls => 'd',
        };
        let version = if hello.has_supported_versions() {
            hello
                .supported_versions()
                .map(|v| v.0)
                .filter(|&v| !is_grease(v))
                .max()
        } else {
            None
        }
        .unwrap_or(hello.legacy_version.0);
        let version = match ProtocolVersion(version) {
            ProtocolVersion::TLS_1_3 => "13",
            ProtocolVersion::TLS_1_2 => "12",
            ProtocolVersion::TLS_1_1 => "11",
            ProtocolVersion::TLS_1_0 => "10",
            ProtocolVersion::SSL_3_0 => "s3",
            ProtocolVersion(0x0002) => "s2",
            ProtocolVersion::DTLS_1_0 => "d1",
            ProtocolVersion::DTLS_1_2 => "d2",
            ProtocolVersion::DTLS_1_3 => "d3",
            _ => "00",
        };
        let sni = if hello.has_server_name() { 'd' } else { 'i' };

        let mut ciphers: Vec<u16> = hello
            .cipher_suites()
            .map(|c| c.0)
            .filter(|&c| !is_grease(c))
            .collect();
        let mut exts: Vec<u16> = hello
            .extensions()
            .map(|e| e.ty.0)
            .filter(|&e| !is_grease(e))
            .collect();
        let cipher_count = ciphers.len().min(99);
        let ext_count = exts.len().min(99);
        let alpn = ja4_alpn(hello.alpn().next());
        let a = format!("{proto}{version}{sni}{cipher_count:02}{ext_count:02}{alpn}");

        ciphers.sort_unstable();
        // SNI and ALPN are already in part a; they are left out of the sorted list.
        exts.retain(|&e| e != ExtensionType::SERVER_NAME.0 && e != ExtensionType::ALPN.0);
        exts.sort_unstable();
        let mut extensions = hex_list(&exts);
        let sigs: Vec<u16> = hello
            .signature_algorithms()
            .map(|s| s.0)
            .filter(|&s| !is_grease(s))
            .collect();
        if !sigs.is_empty() {
            extensions.push('_');
            extensions.push_str(&hex_list(&sigs));
        }
        Self {
            a,
            ciphers: hex_list(&ciphers),
            extensions,
        }
    }
}

/// First and last character of the first ALPN value; if either is not ASCII alphanumeric,
/// the first and last hex digits of the value instead; `00` when there is none.
fn ja4_alpn(first: Option<&[u8]>) -> String {
    match first {
        Some([f, .., l]) | Some([f @ l])
            if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() =>
        {
            format!("{}{}", char::from(*f), char::from(*l))
        }
        Some([f, .., l]) | Some([f @ l]) => {
            let hi = format!("{f:02x}");
            let lo = format!("{l:02x}");
            format!("{}{}", &hi[..1], &lo[1..])
        }
        _ => "00".to_string(),
    }
}

fn hex_list(values: &[u16]) -> String {
    let mut s = String::with_capacity(values.len() * 5);
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{v:04x}");
    }
    s
}

/// First 12 hex digits of SHA-256, or twelve zeros for an empty list (as JA4 specifies).
fn hash12(list: &str) -> String {
    if list.is_empty() {
        return "000000000000".to_string();
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, list.as_bytes());
    let mut s = String::with_capacity(12);
    for b in &digest.as_ref()[..6] {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(ty: u16, data: &[u8]) -> Vec<u8> {
        let mut e = ty.to_be_bytes().to_vec();
        e.extend_from_slice(&(data.len() as u16).to_be_bytes());
        e.extend_from_slice(data);
        e
    }

    fn vec16(items: &[u16]) -> Vec<u8> {
        let mut v = ((items.len() * 2) as u16).to_be_bytes().to_vec();
        items
            .iter()
            .for_each(|i| v.extend_from_slice(&i.to_be_bytes()));
        v
    }

    fn sni(names: &[&str]) -> Vec<u8> {
        let mut list = Vec::new();
        for n in names {
            list.push(0);
            list.extend_from_slice(&(n.len() as u16).to_be_bytes());
            list.extend_from_slice(n.as_bytes());
        }
        let mut d = (list.len() as u16).to_be_bytes().to_vec();
        d.extend(list);
        d
    }

    fn hello_message(ciphers: &[u16], exts: &[Vec<u8>]) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[0x11; 32]);
        body.push(32);
        body.extend_from_slice(&[0x22; 32]);
        body.extend(vec16(ciphers));
        body.extend_from_slice(&[1, 0]);
        let exts: Vec<u8> = exts.concat();
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let mut msg = vec![1];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend(body);
        msg
    }

    fn records(msg: &[u8], split: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for part in [&msg[..split], &msg[split..]] {
            if part.is_empty() {
                continue;
            }
            out.extend_from_slice(&[22, 3, 1]);
            out.extend_from_slice(&(part.len() as u16).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    /// Chrome 143 as reported by browserleaks (JA3 text, JA4 and JA4_r published together),
    /// rebuilt with GREASE where Chrome puts it.
    fn chrome() -> Vec<u8> {
        let ciphers = [
            0x0a0a, 4865, 4866, 4867, 49195, 49199, 49196, 49200, 52393, 52392, 49171, 49172, 156,
            157, 47, 53,
        ];
        let mut alpn = vec![0, 12, 2];
        alpn.extend_from_slice(b"h2");
        alpn.push(8);
        alpn.extend_from_slice(b"http/1.1");
        let exts = vec![
            ext(0x1a1a, &[]),
            ext(45, &[1, 1]),
            ext(51, &[0, 6, 0x2a, 0x2a, 0, 1, 0]),
            ext(16, &alpn),
            ext(65037, &[0; 8]),
            ext(23, &[]),
            ext(17613, &[0, 3, 2, b'h', b'2']),
            ext(0, &sni(&["TLS-Outer.Browserleaks.com"])),
            ext(11, &[1, 0]),
            ext(10, &vec16(&[0x3a3a, 4588, 29, 23, 24])),
            ext(43, &[6, 0x4a, 0x4a, 3, 4, 3, 3]),
            ext(65281, &[0]),
            ext(35, &[]),
            ext(18, &[]),
            ext(5, &[1, 0, 0, 0, 0]),
            ext(
                13,
                &vec16(&[
                    0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
                ]),
            ),
            ext(27, &[2, 0, 2]),
            ext(0x5a5a, &[0]),
        ];
        hello_message(&ciphers, &exts)
    }

    #[test]
    fn client_hello_fields() {
        let msg = chrome();
        let h = parse_client_hello(&msg).unwrap();
        assert_eq!(h.legacy_version, ProtocolVersion::TLS_1_2);
        assert_eq!(h.session_id.len(), 32);
        assert_eq!(h.sni.unwrap(), "tls-outer.browserleaks.com");
        assert_eq!(h.alpn().collect::<Vec<_>>(), [&b"h2"[..], b"http/1.1"]);
        assert_eq!(h.cipher_suites().count(), 16);
        assert!(is_grease(h.cipher_suites().next().unwrap().0));
        assert_eq!(h.extensions().count(), 18);
        assert!(
            h.supported_versions()
                .any(|v| v == ProtocolVersion::TLS_1_3)
        );
        assert_eq!(h.ec_point_formats(), &[0]);
        assert_eq!(h.anomalies, HelloAnomalies::default());
    }

    #[test]
    fn ja3_and_ja4_match_published_vector() {
        let msg = chrome();
        let h = parse_client_hello(&msg).unwrap();
        assert_eq!(
            ja3_string(&h),
            "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,\
             45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0"
        );
        assert_eq!(
            ja4_raw(&h, Transport::Tcp),
            "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,\
             cca9_0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,fe0d,ff01_0403,\
             0804,0401,0503,0805,0501,0806,0601"
        );
        assert_eq!(
            ja4(&h, Transport::Tcp),
            "t13d1516h2_8daaf6152771_d8a2da3f94cd"
        );
        assert!(ja4(&h, Transport::Quic).starts_with("q13d1516h2_"));
    }

    #[test]
    fn ja4_edge_cases() {
        // No SNI, no ALPN, no extensions, TLS 1.0.
        let mut msg = hello_message(&[0x0035, 0x002f], &[]);
        msg[4] = 3;
        msg[5] = 1;
        let h = parse_client_hello(&msg).unwrap();
        let fp = ja4(&h, Transport::Tcp);
        assert!(fp.starts_with("t10i020000_"), "{fp}");
        assert!(fp.ends_with("_000000000000"), "{fp}");
        assert_eq!(ja4_alpn(Some(b"\xab\x01\xcd")), "ad");
        assert_eq!(ja4_alpn(Some(b"h")), "hh");
        assert_eq!(ja4_alpn(Some(b"")), "00");
        assert_eq!(ja4_alpn(None), "00");
    }

    #[test]
    fn grease_helper() {
        for v in [0x0a0a, 0x1a1a, 0xfafa] {
            assert!(is_grease(v));
        }
        for v in [0x0a1a, 0x1301, 0x0000, 0xaaab] {
            assert!(!is_grease(v));
        }
    }

    #[test]
    fn needs_and_reassembly_across_records() {
        let msg = chrome();
        let one = records(&msg, msg.len());
        assert_eq!(
            client_hello_needs(&one),
            Needed::Complete {
                stream_len: one.len()
            }
        );
        let mut scratch = Vec::new();
        let payload = handshake_payload(&one, &mut scratch).unwrap();
        assert_eq!(payload, &msg[..]);

        let two = records(&msg, 100);
        assert_eq!(
            client_hello_needs(&two),
            Needed::Complete {
                stream_len: two.len()
            }
        );
        let payload = handshake_payload(&two, &mut scratch).unwrap();
        assert_eq!(payload, &msg[..]);
        assert_eq!(
            parse_client_hello(payload).unwrap().sni.unwrap(),
            "tls-outer.browserleaks.com"
        );

        // Every cut: never complete early, and the promised bytes are a lower bound.
        for n in 0..two.len() {
            match client_hello_needs(&two[..n]) {
                Needed::Incomplete { more } => assert!(more >= 1 && n + more <= two.len(), "{n}"),
                other => panic!("prefix {n}: {other:?}"),
            }
        }
        assert_eq!(
            client_hello_needs(b"GET / HTTP/1.1\r\n"),
            Needed::NotClientHello
        );
        assert_eq!(
            client_hello_needs(&[22, 3, 1, 0, 4, 2, 0, 0, 0]),
            Needed::NotClientHello
        );
        assert_eq!(
            client_hello_needs(&[22, 3, 1, 0, 4, 1, 0xff, 0, 0]),
            Needed::NotClientHello
        );
    }

    // ---- hostile input ----

    #[test]
    fn every_truncation_is_safe() {
        let msg = chrome();
        let stream = records(&msg, 77);
        for n in 0..msg.len() {
            assert!(parse_client_hello(&msg[..n]).is_err(), "prefix {n}");
        }
        let mut scratch = Vec::new();
        for n in 0..stream.len() {
            if let Ok(p) = handshake_payload(&stream[..n], &mut scratch) {
                let _ = parse_client_hello(p);
            }
            let _ = parse_server_flight(&stream[..n]);
        }
    }

    #[test]
    fn extension_lengths_that_lie() {
        // One extension claims 200 octets but the block ends after 4.
        let mut msg = hello_message(&[0x1301], &[ext(0, &sni(&["a.example"]))]);
        let ext_len_at = msg.len() - sni(&["a.example"]).len() - 2;
        msg[ext_len_at..ext_len_at + 2].copy_from_slice(&200u16.to_be_bytes());
        let h = parse_client_hello(&msg).unwrap();
        assert!(h.anomalies.extensions_truncated);
        assert_eq!(h.extensions().count(), 0);
        assert!(h.sni.is_none());

        // The block length itself overstates.
        let mut msg = hello_message(&[0x1301], &[ext(23, &[])]);
        let block_at = msg.len() - 6;
        msg[block_at..block_at + 2].copy_from_slice(&0xffffu16.to_be_bytes());
        let h = parse_client_hello(&msg).unwrap();
        assert!(h.anomalies.extensions_truncated);
        assert_eq!(h.extensions().count(), 1);

        // server_name whose inner list lies.
        let msg = hello_message(&[0x1301], &[ext(0, &[0, 50, 0, 0, 1, b'x'])]);
        let h = parse_client_hello(&msg).unwrap();
        assert_eq!(h.anomalies.bad_extension, Some(ExtensionType::SERVER_NAME));
        assert!(h.has_server_name());
    }

    #[test]
    fn several_server_names_and_long_names() {
        let msg = hello_message(
            &[0x1301],
            &[ext(0, &sni(&["First.Example", "second.example"]))],
        );
        let h = parse_client_hello(&msg).unwrap();
        assert_eq!(h.sni.unwrap(), "first.example");
        assert!(h.anomalies.multiple_server_names);

        let long = "a".repeat(300);
        let msg = hello_message(&[0x1301], &[ext(0, &sni(&[&long]))]);
        let h = parse_client_hello(&msg).unwrap();
        assert!(h.sni.is_none());
        assert!(h.anomalies.sni_too_long);

        let msg = hello_message(&[0x1301], &[ext(23, &[]), ext(23, &[])]);
        assert!(
            parse_client_hello(&msg)
                .unwrap()
                .anomalies
                .duplicate_extension
        );
    }

    #[test]
    fn many_tiny_extensions_are_capped() {
        let exts: Vec<Vec<u8>> = (0..1000).map(|i| ext(0x1000 + i, &[])).collect();
        let msg = hello_message(&[0x1301], &exts);
        let h = parse_client_hello(&msg).unwrap();
        assert!(h.anomalies.extensions_capped);
        assert_eq!(h.extensions().count(), MAX_EXTENSIONS);
    }

    #[test]
    fn junk_is_not_tls() {
        assert_eq!(
            parse_record(b"GET / HTTP/1.1").unwrap_err(),
            TlsError::NotTls
        );
        assert_eq!(parse_record(&[22, 2]).unwrap_err(), TlsError::NotTls);
        assert_eq!(
            parse_record(&[22, 3, 1, 0xff, 0xff]).unwrap_err(),
            TlsError::NotTls
        );
        assert_eq!(
            parse_client_hello(&[2, 0, 0, 0]).unwrap_err(),
            TlsError::NotTls
        );
        let mut scratch = Vec::new();
        assert!(handshake_payload(&[23, 3, 3, 0, 1, 0], &mut scratch).is_err());
    }

    fn server_flight(version_ext: Option<u16>) -> Vec<u8> {
        let mut sh = vec![3, 3];
        sh.extend_from_slice(&[0x33; 32]);
        sh.push(0);
        sh.extend_from_slice(&[0xc0, 0x2f, 0]);
        let exts = version_ext
            .map(|v| ext(43, &v.to_be_bytes()))
            .unwrap_or_default();
        sh.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        sh.extend(exts);
        let cert = b"\x30\x82\x00\x04fake";
        let mut list = (cert.len() as u32).to_be_bytes()[1..].to_vec();
        list.extend_from_slice(cert);
        let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
        body.extend(list);
        let mut payload = vec![2];
        payload.extend_from_slice(&(sh.len() as u32).to_be_bytes()[1..]);
        payload.extend(sh);
        payload.push(11);
        payload.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        payload.extend(body);
        payload.extend_from_slice(&[14, 0, 0, 0]);
        payload
    }

    #[test]
    fn server_hello_and_certificate() {
        let payload = server_flight(None);
        let f = parse_server_flight(&payload).unwrap();
        let sh = f.server_hello.unwrap();
        assert_eq!(
            sh.cipher_suite,
            CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        );
        assert_eq!(sh.version(), ProtocolVersion::TLS_1_2);
        assert_eq!(f.first_certificate, Some(&b"\x30\x82\x00\x04fake"[..]));

        let tls13 = server_flight(Some(0x0304));
        let f = parse_server_flight(&tls13).unwrap();
        assert_eq!(f.server_hello.unwrap().version(), ProtocolVersion::TLS_1_3);
        assert_eq!(f.first_certificate, None);

        for n in 0..payload.len() {
            let _ = parse_server_flight(&payload[..n]);
        }
        let stream = records(&payload, 50);
        let mut scratch = Vec::new();
        let joined = handshake_payload(&stream, &mut scratch).unwrap();
        assert!(
            parse_server_flight(joined)
                .unwrap()
                .first_certificate
                .is_some()
        );
    }

    /// A TLS 1.2 server flight: ServerHello, Certificate (leaf and a second certificate),
    /// ServerHelloDone, cut into records of `record` octets.
    fn tls12_flight(record: usize) -> (Vec<u8>, Vec<u8>) {
        let leaf: Vec<u8> = (0..1500u32).map(|i| (i * 7) as u8).collect();
        let issuer = vec![0x5a; 900];
        let mut list = Vec::new();
        for c in [&leaf, &issuer] {
            list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
            list.extend_from_slice(c);
        }
        let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
        body.extend(list);
        let mut payload = server_flight(None);
        payload.truncate(payload.len() - 4 - 4 - body_len(&payload)); // drop its tiny cert + done
        payload.push(11);
        payload.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        payload.extend(body);
        payload.extend_from_slice(&[14, 0, 0, 0]);
        let mut stream = Vec::new();
        for part in payload.chunks(record) {
            stream.extend_from_slice(&[22, 3, 3]);
            stream.extend_from_slice(&(part.len() as u16).to_be_bytes());
            stream.extend_from_slice(part);
        }
        (stream, leaf)
    }

    /// Length of the fake Certificate body at the end of `server_flight`'s payload.
    fn body_len(payload: &[u8]) -> usize {
        // ... cert message: 11, len(3), body; then 14 0 0 0.
        let at = payload.len() - 4;
        let mut i = 0;
        while i < at {
            let (ty, body, _) = split_handshake(&payload[i..]).unwrap();
            if ty == HandshakeType::CERTIFICATE {
                return body.len();
            }
            i += 4 + body.len();
        }
        unreachable!()
    }

    #[test]
    fn server_certificate_across_records_and_cuts() {
        for record in [100, 1000, 16384] {
            let (stream, leaf) = tls12_flight(record);
            let mut scratch = Vec::new();
            assert_eq!(
                server_certificate(&stream, &mut scratch),
                ServerCertificate::Leaf(&leaf)
            );
            // Every prefix: pending until the leaf is whole, then the leaf.
            let mut first_leaf = None;
            for n in 0..stream.len() {
                match server_certificate(&stream[..n], &mut scratch) {
                    ServerCertificate::Pending => assert!(first_leaf.is_none(), "{record} {n}"),
                    ServerCertificate::Leaf(der) => {
                        assert_eq!(der, &leaf[..]);
                        first_leaf.get_or_insert(n);
                    }
                    ServerCertificate::Absent => panic!("absent at {n} of {record}"),
                }
            }
            // The leaf is seen before the second certificate has arrived.
            assert!(first_leaf.unwrap() < stream.len() - 900, "{record}");
        }
    }

    #[test]
    fn server_certificate_absent() {
        let mut scratch = Vec::new();
        // TLS 1.3: the certificate is encrypted.
        let tls13 = records(&server_flight(Some(0x0304)), 60);
        assert_eq!(
            server_certificate(&tls13, &mut scratch),
            ServerCertificate::Absent
        );
        // A resumed TLS 1.2 session: ServerHello, then ChangeCipherSpec.
        let sh = server_flight(None);
        let (_, body, _) = split_handshake(&sh).unwrap();
        let mut stream = records(&sh[..4 + body.len()], 4 + body.len());
        assert_eq!(
            server_certificate(&stream, &mut scratch),
            ServerCertificate::Pending
        );
        stream.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
        assert_eq!(
            server_certificate(&stream, &mut scratch),
            ServerCertificate::Absent
        );
        assert_eq!(
            server_certificate(b"HTTP/1.1 200 OK\r\n", &mut scratch),
            ServerCertificate::Absent
        );
    }
}
