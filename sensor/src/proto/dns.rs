//! DNS messages (RFC 1035), also mDNS (RFC 6762) and LLMNR (RFC 4795), which share the format.
//!
//! [`parse_message`] checks the header and walks the question and answer sections once,
//! bounded by [`MAX_QUESTIONS`] and [`MAX_ANSWERS`]; [`DnsMessage::questions`] and
//! [`DnsMessage::answers`] then decode lazily from the caller's buffer. Names are
//! decompressed into an inline [`LowerName`] (no heap). Oddities that leave the rest usable
//! (counts that lie, a bad name in the answers) set [`DnsAnomalies`] instead of failing.
//! Over TCP, [`split_tcp_messages`] cuts a stream into length-prefixed messages.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{LowerName, be_u16, be_u32, wire_enum};

/// Fixed header size (RFC 1035 §4.1.1).
pub const HEADER_LEN: usize = 12;
/// Longest name on the wire, counting length octets and the root (RFC 1035 §2.3.4).
pub const MAX_NAME_WIRE: usize = 255;
/// Most labels a name can hold within [`MAX_NAME_WIRE`]: 127 one-octet labels plus root.
pub const MAX_LABELS: usize = 127;
/// Compression pointers followed while reading one name. Real encoders point once, at most a
/// handful of times along a chain; a loop or a deliberately long chain stops here.
pub const MAX_POINTER_JUMPS: usize = 16;
/// Questions decoded per message. Real resolvers send exactly one; mDNS batches a few.
pub const MAX_QUESTIONS: usize = 8;
/// Answer records decoded per message: enough for CDN answer chains and round-robin sets,
/// small enough that a message claiming 65535 records costs little.
pub const MAX_ANSWERS: usize = 32;

/// Why a DNS message or name could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The buffer ends inside the header, a name or a record.
    #[error("truncated DNS data")]
    Truncated,
    /// A TCP length prefix announces more bytes than the stream holds yet.
    #[error("incomplete DNS-over-TCP message: {needed} more bytes needed")]
    Incomplete {
        /// Bytes missing before the message is complete.
        needed: usize,
    },
    /// A TCP length prefix of zero: no DNS message is that short.
    #[error("zero-length DNS-over-TCP message")]
    ZeroLength,
    /// More than [`MAX_POINTER_JUMPS`] compression pointers: a loop or a hostile chain.
    #[error("DNS compression pointer loop")]
    PointerLoop,
    /// A compression pointer past the end of the message.
    #[error("DNS compression pointer out of bounds")]
    BadPointer,
    /// Longer than [`MAX_NAME_WIRE`] wire octets or [`MAX_LABELS`] labels.
    #[error("DNS name too long")]
    NameTooLong,
    /// Label type 0b01 or 0b10 (extended label types, obsolete and unused).
    #[error("unsupported DNS label type")]
    BadLabelType,
}

wire_enum! {
    /// RR type / QTYPE (RFC 1035 §3.2.2 and the IANA registry).
    pub struct DnsType(u16);
    A = 1, "A";
    NS = 2, "NS";
    CNAME = 5, "CNAME";
    SOA = 6, "SOA";
    NULL = 10, "NULL";
    PTR = 12, "PTR";
    HINFO = 13, "HINFO";
    MX = 15, "MX";
    TXT = 16, "TXT";
    AAAA = 28, "AAAA";
    SRV = 33, "SRV";
    NAPTR = 35, "NAPTR";
    DNAME = 39, "DNAME";
    OPT = 41, "OPT";
    DS = 43, "DS";
    RRSIG = 46, "RRSIG";
    NSEC = 47, "NSEC";
    DNSKEY = 48, "DNSKEY";
    SVCB = 64, "SVCB";
    HTTPS = 65, "HTTPS";
    AXFR = 252, "AXFR";
    ANY = 255, "ANY";
    CAA = 257, "CAA";
}

wire_enum! {
    /// CLASS / QCLASS (RFC 1035 §3.2.4). mDNS borrows the top bit; see [`Question::class`].
    pub struct DnsClass(u16);
    IN = 1, "IN";
    CH = 3, "CH";
    HS = 4, "HS";
    NONE = 254, "NONE";
    ANY = 255, "ANY";
}

wire_enum! {
    /// RCODE (RFC 1035 §4.1.1, RFC 6895). Four bits in the header; open to EDNS's wider range.
    pub struct DnsRcode(u16);
    NOERROR = 0, "NOERROR";
    FORMERR = 1, "FORMERR";
    SERVFAIL = 2, "SERVFAIL";
    NXDOMAIN = 3, "NXDOMAIN";
    NOTIMP = 4, "NOTIMP";
    REFUSED = 5, "REFUSED";
    YXDOMAIN = 6, "YXDOMAIN";
    YXRRSET = 7, "YXRRSET";
    NXRRSET = 8, "NXRRSET";
    NOTAUTH = 9, "NOTAUTH";
    NOTZONE = 10, "NOTZONE";
}

wire_enum! {
    /// OPCODE (RFC 1035 §4.1.1, RFC 6895).
    pub struct DnsOpcode(u8);
    QUERY = 0, "QUERY";
    IQUERY = 1, "IQUERY";
    STATUS = 2, "STATUS";
    NOTIFY = 4, "NOTIFY";
    UPDATE = 5, "UPDATE";
    DSO = 6, "DSO";
}

/// The header section (RFC 1035 §4.1.1):
///
/// ```text
///                                 1  1  1  1  1  1
///   0  1  2  3  4  5  6  7  8  9  0  1  2  3  4  5
/// +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
/// |                      ID                       |
/// |QR|   Opcode  |AA|TC|RD|RA| Z|AD|CD|   RCODE   |
/// |                    QDCOUNT                    |
/// |                    ANCOUNT                    |
/// |                    NSCOUNT                    |
/// |                    ARCOUNT                    |
/// +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsHeader {
    /// Transaction id.
    pub id: u16,
    /// The raw flags word; the accessors below decode it.
    pub flags: u16,
    /// Questions the header claims.
    pub qdcount: u16,
    /// Answer records the header claims.
    pub ancount: u16,
    /// Authority records the header claims.
    pub nscount: u16,
    /// Additional records the header claims.
    pub arcount: u16,
}

impl DnsHeader {
    /// Reads the 12-octet header.
    pub fn parse(buf: &[u8]) -> Result<Self, DnsError> {
        let word = |i| be_u16(buf, i).ok_or(DnsError::Truncated);
        Ok(Self {
            id: word(0)?,
            flags: word(2)?,
            qdcount: word(4)?,
            ancount: word(6)?,
            nscount: word(8)?,
            arcount: word(10)?,
        })
    }

    /// QR: true for a response.
    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }
    /// The kind of query.
    pub fn opcode(&self) -> DnsOpcode {
        DnsOpcode(((self.flags >> 11) & 0xf) as u8)
    }
    /// AA: authoritative answer.
    pub fn authoritative(&self) -> bool {
        self.flags & 0x0400 != 0
    }
    /// TC: the message was truncated by the sender (retry over TCP).
    pub fn truncated(&self) -> bool {
        self.flags & 0x0200 != 0
    }
    /// RD: recursion desired.
    pub fn recursion_desired(&self) -> bool {
        self.flags & 0x0100 != 0
    }
    /// RA: recursion available.
    pub fn recursion_available(&self) -> bool {
        self.flags & 0x0080 != 0
    }
    /// The response code from the header's four bits.
    pub fn rcode(&self) -> DnsRcode {
        DnsRcode(self.flags & 0xf)
    }
}

/// Oddities met while walking a message that did not stop it from being useful.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DnsAnomalies {
    /// A section ended early: the counts claim more records than the bytes hold.
    pub counts_exceed_data: bool,
    /// More questions than [`MAX_QUESTIONS`]; the rest were not decoded.
    pub questions_capped: bool,
    /// More answers than [`MAX_ANSWERS`]; the rest were not decoded.
    pub answers_capped: bool,
    /// A name failed to decode (the error is here); records from it on were skipped.
    pub bad_name: Option<DnsError>,
    /// An A/AAAA record with the wrong RDATA length, or a CNAME whose target is unreadable.
    pub bad_rdata: bool,
}

/// A parsed message; sections decode lazily from the borrowed buffer.
#[derive(Debug, Clone, Copy)]
pub struct DnsMessage<'a> {
    buf: &'a [u8],
    /// The header.
    pub header: DnsHeader,
    /// What went oddly while walking the sections.
    pub anomalies: DnsAnomalies,
    questions_ok: usize,
    answers_start: usize,
    answers_ok: usize,
}

/// One entry of the question section (RFC 1035 §4.1.2): `QNAME QTYPE QCLASS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question {
    /// The queried name, lower-cased, without the trailing dot.
    pub name: LowerName,
    /// QTYPE.
    pub qtype: DnsType,
    /// QCLASS as sent (mDNS sets the top bit to ask for a unicast response).
    pub qclass: DnsClass,
}

impl Question {
    /// The class without mDNS's unicast-response bit (RFC 6762 §5.4).
    pub fn class(&self) -> DnsClass {
        DnsClass(self.qclass.0 & 0x7fff)
    }
}

/// Resource record data this parser looks into; other types stay raw.
#[expect(
    clippy::large_enum_variant,
    reason = "the CNAME target stays inline like every name here: no heap on the packet path"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RData<'a> {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// The canonical name a CNAME points to.
    Cname(LowerName),
    /// Any other type, or an A/AAAA/CNAME whose data is malformed: the raw RDATA.
    Other(&'a [u8]),
}

/// One answer record (RFC 1035 §4.1.3): `NAME TYPE CLASS TTL RDLENGTH RDATA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer<'a> {
    /// The owner name, lower-cased.
    pub name: LowerName,
    /// TYPE.
    pub rtype: DnsType,
    /// CLASS as sent (mDNS sets the top bit for cache-flush).
    pub class: DnsClass,
    /// TTL in seconds.
    pub ttl: u32,
    /// The decoded data.
    pub data: RData<'a>,
}

/// Parses a DNS message from a UDP payload (or one message cut out by
/// [`split_tcp_messages`]).
///
/// Fails only when the header itself is unreadable; problems inside sections are reported in
/// [`DnsMessage::anomalies`] and the records read before them stay available.
pub fn parse_message(buf: &[u8]) -> Result<DnsMessage<'_>, DnsError> {
    let header = DnsHeader::parse(buf)?;
    let mut anomalies = DnsAnomalies::default();
    let mut pos = HEADER_LEN;
    let mut questions_ok = 0;
    let mut answers_ok = 0;
    let mut answers_start = pos;
    let mut broken = false;

    let wanted_q = usize::from(header.qdcount);
    anomalies.questions_capped = wanted_q > MAX_QUESTIONS;
    for _ in 0..wanted_q.min(MAX_QUESTIONS) {
        match read_question(buf, pos) {
            Ok((_, next)) => {
                pos = next;
                questions_ok += 1;
            }
            Err(e) => {
                note_error(&mut anomalies, e);
                broken = true;
                break;
            }
        }
    }
    // Answers follow *all* questions: skip undecoded extra ones without decoding names.
    if !broken && anomalies.questions_capped {
        for _ in MAX_QUESTIONS..wanted_q {
            match skip_name(buf, pos).and_then(|p| need(buf, p, 4)) {
                Ok(next) => pos = next,
                Err(e) => {
                    note_error(&mut anomalies, e);
                    broken = true;
                    break;
                }
            }
        }
    }
    if !broken {
        answers_start = pos;
        let wanted_a = usize::from(header.ancount);
        anomalies.answers_capped = wanted_a > MAX_ANSWERS;
        for _ in 0..wanted_a.min(MAX_ANSWERS) {
            match read_answer(buf, pos) {
                Ok((answer, next)) => {
                    if answer.bad_rdata {
                        anomalies.bad_rdata = true;
                    }
                    pos = next;
                    answers_ok += 1;
                }
                Err(e) => {
                    note_error(&mut anomalies, e);
                    break;
                }
            }
        }
    }
    Ok(DnsMessage {
        buf,
        header,
        anomalies,
        questions_ok,
        answers_start,
        answers_ok,
    })
}

fn note_error(anomalies: &mut DnsAnomalies, e: DnsError) {
    if e == DnsError::Truncated {
        anomalies.counts_exceed_data = true;
    } else {
        anomalies.bad_name = Some(e);
    }
}

fn need(buf: &[u8], pos: usize, n: usize) -> Result<usize, DnsError> {
    let end = pos.checked_add(n).ok_or(DnsError::Truncated)?;
    if end > buf.len() {
        Err(DnsError::Truncated)
    } else {
        Ok(end)
    }
}

impl<'a> DnsMessage<'a> {
    /// The questions that decoded (at most [`MAX_QUESTIONS`]).
    pub fn questions(&self) -> impl Iterator<Item = Question> + 'a {
        let buf = self.buf;
        let mut pos = HEADER_LEN;
        (0..self.questions_ok).map_while(move |_| {
            let (q, next) = read_question(buf, pos).ok()?;
            pos = next;
            Some(q)
        })
    }

    /// The answer records that decoded (at most [`MAX_ANSWERS`]).
    pub fn answers(&self) -> impl Iterator<Item = Answer<'a>> + 'a {
        let buf = self.buf;
        let mut pos = self.answers_start;
        (0..self.answers_ok).map_while(move |_| {
            let (a, next) = read_answer(buf, pos).ok()?;
            pos = next;
            Some(a.answer)
        })
    }

    /// The first question, which is the whole question section for real resolvers.
    pub fn first_question(&self) -> Option<Question> {
        self.questions().next()
    }

    /// The addresses in A and AAAA answers, in order.
    pub fn answer_addrs(&self) -> impl Iterator<Item = std::net::IpAddr> + 'a {
        self.answers().filter_map(|a| match a.data {
            RData::A(v4) => Some(v4.into()),
            RData::Aaaa(v6) => Some(v6.into()),
            _ => None,
        })
    }

    /// The message bytes this was parsed from.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
}

fn read_question(buf: &[u8], pos: usize) -> Result<(Question, usize), DnsError> {
    let mut name = LowerName::new();
    let pos = read_name(buf, pos, &mut name)?;
    let qtype = be_u16(buf, pos).ok_or(DnsError::Truncated)?;
    let qclass = be_u16(buf, pos + 2).ok_or(DnsError::Truncated)?;
    Ok((
        Question {
            name,
            qtype: DnsType(qtype),
            qclass: DnsClass(qclass),
        },
        pos + 4,
    ))
}

struct ReadAnswer<'a> {
    answer: Answer<'a>,
    bad_rdata: bool,
}

fn read_answer(buf: &[u8], pos: usize) -> Result<(ReadAnswer<'_>, usize), DnsError> {
    let mut name = LowerName::new();
    let pos = read_name(buf, pos, &mut name)?;
    let rtype = DnsType(be_u16(buf, pos).ok_or(DnsError::Truncated)?);
    let class = DnsClass(be_u16(buf, pos + 2).ok_or(DnsError::Truncated)?);
    let ttl = be_u32(buf, pos + 4).ok_or(DnsError::Truncated)?;
    let rdlen = usize::from(be_u16(buf, pos + 8).ok_or(DnsError::Truncated)?);
    let start = pos + 10;
    let end = need(buf, start, rdlen)?;
    let raw = &buf[start..end];
    let mut bad_rdata = false;
    let data = match rtype {
        DnsType::A => match <[u8; 4]>::try_from(raw) {
            Ok(octets) => RData::A(Ipv4Addr::from(octets)),
            Err(_) => {
                bad_rdata = true;
                RData::Other(raw)
            }
        },
        DnsType::AAAA => match <[u8; 16]>::try_from(raw) {
            Ok(octets) => RData::Aaaa(Ipv6Addr::from(octets)),
            Err(_) => {
                bad_rdata = true;
                RData::Other(raw)
            }
        },
        DnsType::CNAME => {
            let mut target = LowerName::new();
            // The target may point anywhere in the message, but its own labels must stay
            // inside RDATA: read from a view that ends there, pointers resolve in `buf`.
            match read_name_bounded(buf, start, end, &mut target) {
                Ok(_) => RData::Cname(target),
                Err(_) => {
                    bad_rdata = true;
                    RData::Other(raw)
                }
            }
        }
        _ => RData::Other(raw),
    };
    Ok((
        ReadAnswer {
            answer: Answer {
                name,
                rtype,
                class,
                ttl,
                data,
            },
            bad_rdata,
        },
        end,
    ))
}

/// Decodes the (possibly compressed) name at `pos` into `out`, lower-cased and dot-joined,
/// and returns the offset just after the name's bytes at `pos`.
///
/// RFC 1035 §4.1.4: a name is a sequence of labels ending in a zero octet or a pointer.
///
/// ```text
///   +--+--+--+--+--+--+--+--+   00xxxxxx  label of length 0..63 follows
///   | 1  1|     OFFSET      |   11 + 14-bit offset from the start of the message
///   +--+--+--+--+--+--+--+--+   01/10: reserved (RFC 6891 retired the only use)
/// ```
///
/// Loops are cut by [`MAX_POINTER_JUMPS`]; length by [`MAX_NAME_WIRE`] and [`MAX_LABELS`].
/// Forward pointers are followed (RFC 1035 says "prior occurrence", but following one is
/// harmless under these bounds and some encoders emit them).
pub fn read_name(buf: &[u8], pos: usize, out: &mut LowerName) -> Result<usize, DnsError> {
    read_name_bounded(buf, pos, buf.len(), out)
}

/// [`read_name`] where the uncompressed part at `pos` must end before `limit`.
fn read_name_bounded(
    buf: &[u8],
    mut pos: usize,
    limit: usize,
    out: &mut LowerName,
) -> Result<usize, DnsError> {
    *out = LowerName::new();
    let mut end_of_name: Option<usize> = None;
    let mut wire_len = 1; // the root octet
    let mut labels = 0;
    let mut jumps = 0;
    let mut limit = limit;
    loop {
        let len_octet = *buf
            .get(pos)
            .filter(|_| pos < limit)
            .ok_or(DnsError::Truncated)?;
        match len_octet & 0xc0 {
            0x00 if len_octet == 0 => {
                return Ok(end_of_name.unwrap_or(pos + 1));
            }
            0x00 => {
                let len = usize::from(len_octet);
                let start = pos + 1;
                let end = start + len;
                if end > limit || end > buf.len() {
                    return Err(DnsError::Truncated);
                }
                labels += 1;
                wire_len += 1 + len;
                if labels > MAX_LABELS || wire_len > MAX_NAME_WIRE {
                    return Err(DnsError::NameTooLong);
                }
                // wire_len <= 255 keeps the text within 253, so these pushes cannot fail.
                if !out.is_empty() && !out.push(b".") || !out.push(&buf[start..end]) {
                    return Err(DnsError::NameTooLong);
                }
                pos = end;
            }
            0xc0 => {
                let low = *buf
                    .get(pos + 1)
                    .filter(|_| pos + 1 < limit)
                    .ok_or(DnsError::Truncated)?;
                if end_of_name.is_none() {
                    end_of_name = Some(pos + 2);
                }
                jumps += 1;
                if jumps > MAX_POINTER_JUMPS {
                    return Err(DnsError::PointerLoop);
                }
                let target = usize::from(len_octet & 0x3f) << 8 | usize::from(low);
                if target >= buf.len() {
                    return Err(DnsError::BadPointer);
                }
                pos = target;
                // After a jump the name may continue anywhere in the message.
                limit = buf.len();
            }
            _ => return Err(DnsError::BadLabelType),
        }
    }
}

/// Steps over a name without decoding it (still bounded: no pointers are followed).
fn skip_name(buf: &[u8], mut pos: usize) -> Result<usize, DnsError> {
    let mut wire_len = 1;
    loop {
        let len_octet = *buf.get(pos).ok_or(DnsError::Truncated)?;
        match len_octet & 0xc0 {
            0x00 if len_octet == 0 => return Ok(pos + 1),
            0x00 => {
                wire_len += 1 + usize::from(len_octet);
                if wire_len > MAX_NAME_WIRE {
                    return Err(DnsError::NameTooLong);
                }
                pos += 1 + usize::from(len_octet);
            }
            0xc0 => return need(buf, pos, 2),
            _ => return Err(DnsError::BadLabelType),
        }
    }
}

/// A cheap check that `buf` could be a DNS message: plausible header fields and, when a
/// question is claimed, a first question that decodes. Meant for UDP payloads on
/// non-standard ports before committing to a full parse.
pub fn is_probably_dns(buf: &[u8]) -> bool {
    let Ok(header) = DnsHeader::parse(buf) else {
        return false;
    };
    // Opcodes 3 and 7..15 are unassigned; the Z bit (0x0040) must be zero.
    let opcode = header.opcode().0;
    if opcode == 3 || opcode > 6 || header.flags & 0x0040 != 0 {
        return false;
    }
    if header.rcode().0 > 10 {
        return false;
    }
    // A question needs at least 5 octets (root name + type + class), a record 11.
    let min = usize::from(header.qdcount) * 5
        + (usize::from(header.ancount) + usize::from(header.nscount) + usize::from(header.arcount))
            * 11;
    if HEADER_LEN + min > buf.len() {
        return false;
    }
    if header.qdcount == 0 {
        // Only responses (mDNS announcements) come without a question.
        return header.is_response() && header.ancount > 0;
    }
    read_question(buf, HEADER_LEN).is_ok()
}

/// Size of the DNS-over-TCP length prefix (RFC 1035 §4.2.2).
pub const TCP_LENGTH_PREFIX: usize = 2;

/// Cuts a DNS-over-TCP byte stream into messages. Each message is preceded by a two-octet
/// length:
///
/// ```text
///   +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
///   |                    LENGTH                     |  then LENGTH octets of message
///   +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
/// ```
///
/// Yields each complete message; a trailing partial one (or a lone length octet) ends the
/// iteration with [`DnsError::Incomplete`], a zero length with [`DnsError::ZeroLength`].
pub fn split_tcp_messages(stream: &[u8]) -> impl Iterator<Item = Result<&[u8], DnsError>> {
    let mut rest = stream;
    let mut done = false;
    std::iter::from_fn(move || {
        if done || rest.is_empty() {
            return None;
        }
        let Some(len) = be_u16(rest, 0) else {
            done = true;
            return Some(Err(DnsError::Incomplete {
                needed: TCP_LENGTH_PREFIX - rest.len(),
            }));
        };
        let len = usize::from(len);
        if len == 0 {
            done = true;
            return Some(Err(DnsError::ZeroLength));
        }
        let body = &rest[TCP_LENGTH_PREFIX..];
        if body.len() < len {
            done = true;
            return Some(Err(DnsError::Incomplete {
                needed: len - body.len(),
            }));
        }
        let (message, tail) = body.split_at(len);
        rest = tail;
        Some(Ok(message))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `WWW.Example.COM` A, as dig sends it (RD set).
    const QUERY: &[u8] = &[
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        3, b'W', b'W', b'W', 7, b'E', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'C', b'O', b'M', 0,
        0x00, 0x01, 0x00, 0x01,
    ];

    /// The response: CNAME to cdn.example.net (suffix compressed), then two A records.
    fn response() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
        m.extend_from_slice(&QUERY[12..]);
        // answer 1: www.example.com CNAME cdn.example.net
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0x0e, 0x10, 0, 17]);
        m.extend_from_slice(&[3, b'c', b'd', b'n', 7]);
        m.extend_from_slice(b"example");
        m.extend_from_slice(&[3, b'n', b'e', b't', 0]);
        let cdn = 12 + 21 + 12; // offset of "cdn" label
        for last in [1u8, 2] {
            m.extend_from_slice(&[
                0xc0, cdn as u8, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, last,
            ]);
        }
        m
    }

    #[test]
    fn query_fields() {
        let msg = parse_message(QUERY).unwrap();
        assert_eq!(msg.header.id, 0x1234);
        assert!(!msg.header.is_response());
        assert!(msg.header.recursion_desired());
        assert_eq!(msg.header.opcode(), DnsOpcode::QUERY);
        let q = msg.first_question().unwrap();
        assert_eq!(q.name, "www.example.com");
        assert_eq!(q.qtype, DnsType::A);
        assert_eq!(q.qclass, DnsClass::IN);
        assert_eq!(msg.answers().count(), 0);
        assert_eq!(msg.anomalies, DnsAnomalies::default());
        assert!(is_probably_dns(QUERY));
    }

    #[test]
    fn response_with_compression() {
        let buf = response();
        let msg = parse_message(&buf).unwrap();
        assert!(msg.header.is_response());
        assert!(msg.header.recursion_available());
        assert_eq!(msg.header.rcode(), DnsRcode::NOERROR);
        let answers: Vec<_> = msg.answers().collect();
        assert_eq!(answers.len(), 3);
        assert_eq!(answers[0].name, "www.example.com");
        assert_eq!(answers[0].ttl, 3600);
        let RData::Cname(target) = answers[0].data else {
            panic!("{:?}", answers[0])
        };
        assert_eq!(target, "cdn.example.net");
        assert_eq!(answers[1].name, "cdn.example.net");
        let addrs: Vec<_> = msg.answer_addrs().map(|a| a.to_string()).collect();
        assert_eq!(addrs, ["192.0.2.1", "192.0.2.2"]);
        assert_eq!(msg.anomalies, DnsAnomalies::default());
    }

    #[test]
    fn names_of_wire_values() {
        assert_eq!(DnsType::HTTPS.to_string(), "HTTPS");
        assert_eq!(DnsType(65280).to_string(), "65280");
        assert_eq!(DnsRcode::NXDOMAIN.name(), Some("NXDOMAIN"));
        assert_eq!(DnsRcode(3), DnsRcode::NXDOMAIN);
    }

    // ---- hostile input ----

    #[test]
    fn every_prefix_is_safe() {
        let buf = response();
        for n in 0..buf.len() {
            let _ = is_probably_dns(&buf[..n]);
            if let Ok(msg) = parse_message(&buf[..n]) {
                let _ = msg.questions().count();
                let _ = msg.answers().count();
                if n < buf.len() {
                    assert!(
                        msg.answers().count() < 3,
                        "prefix {n} cannot hold all answers"
                    );
                }
            } else {
                assert!(n < HEADER_LEN);
            }
        }
    }

    fn with_name(name: &[u8]) -> Vec<u8> {
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(name);
        m.extend_from_slice(&[0, 1, 0, 1]);
        m
    }

    #[test]
    fn self_pointer_is_a_loop() {
        let m = with_name(&[0xc0, 12]);
        let mut name = LowerName::new();
        assert_eq!(read_name(&m, 12, &mut name), Err(DnsError::PointerLoop));
        let msg = parse_message(&m).unwrap();
        assert_eq!(msg.anomalies.bad_name, Some(DnsError::PointerLoop));
        assert_eq!(msg.questions().count(), 0);
        assert!(!is_probably_dns(&m));
    }

    #[test]
    fn mutual_pointers_are_a_loop() {
        // 12: "a" then pointer to 17; 17: "b" then pointer to 12.
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[1, b'a', 0xc0, 17, 0, 1, b'b', 0xc0, 12]);
        let mut name = LowerName::new();
        assert!(matches!(
            read_name(&m, 12, &mut name),
            Err(DnsError::PointerLoop | DnsError::NameTooLong)
        ));
    }

    #[test]
    fn forward_pointer_is_followed() {
        // 12: pointer to 18; 14: type/class; 18: "fwd" root.
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 18, 0, 1, 0, 1, 3, b'F', b'w', b'D', 0]);
        let msg = parse_message(&m).unwrap();
        assert_eq!(msg.first_question().unwrap().name, "fwd");
    }

    #[test]
    fn pointer_out_of_bounds() {
        let m = with_name(&[0xff, 0xff]);
        let mut name = LowerName::new();
        assert_eq!(read_name(&m, 12, &mut name), Err(DnsError::BadPointer));
    }

    #[test]
    fn reserved_label_type() {
        let m = with_name(&[0x41, 0]);
        let mut name = LowerName::new();
        assert_eq!(read_name(&m, 12, &mut name), Err(DnsError::BadLabelType));
    }

    #[test]
    fn label_and_length_limits() {
        // 127 one-octet labels: 254 wire octets + root = 255, the maximum.
        let mut ok: Vec<u8> = (0..127).flat_map(|_| [1, b'x']).collect();
        ok.push(0);
        let m = with_name(&ok);
        let q = parse_message(&m).unwrap().first_question().unwrap();
        assert_eq!(q.name.len(), 253);

        // 256 labels (and longer than 255 octets).
        let mut long: Vec<u8> = (0..256).flat_map(|_| [1, b'x']).collect();
        long.push(0);
        let mut name = LowerName::new();
        assert_eq!(
            read_name(&with_name(&long), 12, &mut name),
            Err(DnsError::NameTooLong)
        );

        // Four 63-octet labels: 257 wire octets.
        let mut big = Vec::new();
        for _ in 0..4 {
            big.push(63);
            big.extend_from_slice(&[b'y'; 63]);
        }
        big.push(0);
        assert_eq!(
            read_name(&with_name(&big), 12, &mut name),
            Err(DnsError::NameTooLong)
        );
    }

    #[test]
    fn pointer_chain_cannot_exceed_length_limit() {
        // Many labels reached through a chain of pointers still count toward 255.
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        // 12: 60-octet label then pointer back to 12 → repeats until the length limit.
        m.push(60);
        m.extend_from_slice(&[b'z'; 60]);
        m.extend_from_slice(&[0xc0, 12]);
        let mut name = LowerName::new();
        assert_eq!(read_name(&m, 12, &mut name), Err(DnsError::NameTooLong));
    }

    #[test]
    fn counts_that_lie() {
        let mut m = QUERY.to_vec();
        m[5] = 200; // qdcount 200, one present
        m[7] = 9; // ancount 9, none present
        let msg = parse_message(&m).unwrap();
        assert_eq!(msg.questions().count(), 1);
        assert!(msg.anomalies.counts_exceed_data);
        assert!(msg.anomalies.questions_capped);
        assert!(!is_probably_dns(&m));

        let mut m = response();
        m[7] = 0xff; // 255 answers claimed, 3 present
        let msg = parse_message(&m).unwrap();
        assert_eq!(msg.answers().count(), 3);
        assert!(msg.anomalies.answers_capped);
        assert!(msg.anomalies.counts_exceed_data);
    }

    #[test]
    fn bad_a_rdata_is_flagged() {
        let mut m = vec![0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&[0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 3, 1, 2, 3]);
        let msg = parse_message(&m).unwrap();
        assert!(msg.anomalies.bad_rdata);
        assert_eq!(msg.answers().next().unwrap().data, RData::Other(&[1, 2, 3]));
    }

    #[test]
    fn tcp_stream_splitting() {
        let mut stream = Vec::new();
        for _ in 0..3 {
            stream.extend_from_slice(&(QUERY.len() as u16).to_be_bytes());
            stream.extend_from_slice(QUERY);
        }
        let parts: Vec<_> = split_tcp_messages(&stream).collect();
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| *p == Ok(QUERY)));

        // Every cut of the stream: whole messages first, then at most one error.
        for n in 0..stream.len() {
            let parts: Vec<_> = split_tcp_messages(&stream[..n]).collect();
            let whole = n / (QUERY.len() + 2);
            assert_eq!(parts.iter().filter(|p| p.is_ok()).count(), whole);
            if n % (QUERY.len() + 2) != 0 {
                assert!(matches!(
                    parts.last(),
                    Some(Err(DnsError::Incomplete { .. }))
                ));
            }
        }
        assert_eq!(
            split_tcp_messages(&[0, 0, 1]).next(),
            Some(Err(DnsError::ZeroLength))
        );
        assert_eq!(
            split_tcp_messages(&[0, 40, 1]).next(),
            Some(Err(DnsError::Incomplete { needed: 39 }))
        );
    }

    #[test]
    fn junk_is_not_dns() {
        assert!(!is_probably_dns(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!is_probably_dns(&[0xff; 64]));
        assert!(!is_probably_dns(&[]));
    }
}
