//! Ethernet / IPv4 / IPv6 / UDP / TCP / ICMP framing with correct lengths and checksums.
//!
//! A frame is built in place in one reusable buffer: [`begin`] writes the link, network and
//! transport headers with zeroed length and checksum fields, the caller appends the payload
//! directly behind them, and [`finish`] fills in lengths and checksums. No copy of the payload,
//! no allocation once the buffer has grown to the largest frame.

use std::net::IpAddr;

pub(crate) const ETHERTYPE_IPV4: u16 = 0x0800;
pub(crate) const ETHERTYPE_IPV6: u16 = 0x86dd;
pub(crate) const IPPROTO_ICMP: u8 = 1;
pub(crate) const IPPROTO_TCP: u8 = 6;
pub(crate) const IPPROTO_UDP: u8 = 17;
pub(crate) const IPPROTO_ICMPV6: u8 = 58;

const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const IPV6_LEN: usize = 40;
const TCP_LEN: usize = 20;

pub(crate) const TCP_FIN: u8 = 0x01;
pub(crate) const TCP_SYN: u8 = 0x02;
pub(crate) const TCP_PSH: u8 = 0x08;
pub(crate) const TCP_ACK: u8 = 0x10;

/// SYN options as a typical stack sends them: MSS 1460, SACK permitted, window scale 7, padded
/// with NOPs to a multiple of four bytes.
const SYN_OPTIONS: [u8; 12] = [2, 4, 0x05, 0xb4, 4, 2, 1, 3, 3, 7, 1, 1];

/// The transport header of a frame.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Transport {
    Udp {
        sport: u16,
        dport: u16,
    },
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
    },
    /// ICMP echo (v4) or ICMPv6 echo, depending on the address family.
    Echo {
        reply: bool,
        id: u16,
        seq: u16,
    },
}

/// Everything below the payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Headers {
    pub(crate) src_mac: [u8; 6],
    pub(crate) dst_mac: [u8; 6],
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    pub(crate) ttl: u8,
    pub(crate) ip_id: u16,
    pub(crate) transport: Transport,
}

/// Where the headers sit in the buffer, for [`finish`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    l4_start: usize,
    v6: bool,
    proto: u8,
}

/// Clears `buf` and writes the headers; append the payload, then call [`finish`].
pub(crate) fn begin(buf: &mut Vec<u8>, h: &Headers) -> Layout {
    buf.clear();
    buf.extend_from_slice(&h.dst_mac);
    buf.extend_from_slice(&h.src_mac);
    let (v6, proto) = match (h.src, h.dst, h.transport) {
        (IpAddr::V6(_), _, Transport::Echo { .. }) => (true, IPPROTO_ICMPV6),
        (IpAddr::V4(_), _, Transport::Echo { .. }) => (false, IPPROTO_ICMP),
        (src, _, Transport::Udp { .. }) => (src.is_ipv6(), IPPROTO_UDP),
        (src, _, Transport::Tcp { .. }) => (src.is_ipv6(), IPPROTO_TCP),
    };
    match (h.src, h.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            buf.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            buf.extend_from_slice(&[0x45, 0, 0, 0]); // version 4, IHL 5, DSCP 0, length later
            buf.extend_from_slice(&h.ip_id.to_be_bytes());
            buf.extend_from_slice(&[0x40, 0, h.ttl, proto, 0, 0]); // DF, TTL, proto, checksum later
            buf.extend_from_slice(&src.octets());
            buf.extend_from_slice(&dst.octets());
        }
        (src, dst) => {
            // Mixed families cannot happen (conversations pick both ends from one family);
            // map a v4 end into v6 rather than panic.
            let src = to_v6(src);
            let dst = to_v6(dst);
            buf.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            let flow_label = u32::from(h.ip_id) & 0x000f_ffff;
            buf.extend_from_slice(&(0x6000_0000u32 | flow_label).to_be_bytes());
            buf.extend_from_slice(&[0, 0, proto, h.ttl]); // payload length later
            buf.extend_from_slice(&src.octets());
            buf.extend_from_slice(&dst.octets());
        }
    }
    let l4_start = buf.len();
    match h.transport {
        Transport::Udp { sport, dport } => {
            buf.extend_from_slice(&sport.to_be_bytes());
            buf.extend_from_slice(&dport.to_be_bytes());
            buf.extend_from_slice(&[0; 4]); // length and checksum later
        }
        Transport::Tcp {
            sport,
            dport,
            seq,
            ack,
            flags,
            window,
        } => {
            let options: &[u8] = if flags & TCP_SYN != 0 {
                &SYN_OPTIONS
            } else {
                &[]
            };
            let data_offset = ((TCP_LEN + options.len()) / 4) as u8;
            buf.extend_from_slice(&sport.to_be_bytes());
            buf.extend_from_slice(&dport.to_be_bytes());
            buf.extend_from_slice(&seq.to_be_bytes());
            buf.extend_from_slice(&ack.to_be_bytes());
            buf.extend_from_slice(&[data_offset << 4, flags]);
            buf.extend_from_slice(&window.to_be_bytes());
            buf.extend_from_slice(&[0; 4]); // checksum later, urgent pointer 0
            buf.extend_from_slice(options);
        }
        Transport::Echo { reply, id, seq } => {
            let ty = match (v6, reply) {
                (false, false) => 8,
                (false, true) => 0,
                (true, false) => 128,
                (true, true) => 129,
            };
            buf.extend_from_slice(&[ty, 0, 0, 0]);
            buf.extend_from_slice(&id.to_be_bytes());
            buf.extend_from_slice(&seq.to_be_bytes());
        }
    }
    Layout {
        l4_start,
        v6,
        proto,
    }
}

/// Fills in the length and checksum fields of a frame started with [`begin`].
pub(crate) fn finish(buf: &mut [u8], layout: Layout) {
    let l4_len = buf.len() - layout.l4_start;
    let ip = ETH_LEN;
    if layout.v6 {
        put_u16(buf, ip + 4, l4_len as u16);
    } else {
        put_u16(buf, ip + 2, (IPV4_LEN + l4_len) as u16);
        let sum = checksum(0, &buf[ip..ip + IPV4_LEN]);
        put_u16(buf, ip + 10, sum);
    }
    let l4 = layout.l4_start;
    let checksum_at = match layout.proto {
        IPPROTO_UDP => {
            put_u16(buf, l4 + 4, l4_len as u16);
            l4 + 6
        }
        IPPROTO_TCP => l4 + 16,
        _ => l4 + 2,
    };
    let pseudo = if layout.proto == IPPROTO_ICMP {
        0 // ICMPv4 has no pseudo-header
    } else if layout.v6 {
        let addrs = &buf[ip + 8..ip + IPV6_LEN];
        sum_words(0, addrs) + l4_len as u64 + u64::from(layout.proto)
    } else {
        let addrs = &buf[ip + 12..ip + IPV4_LEN];
        sum_words(0, addrs) + l4_len as u64 + u64::from(layout.proto)
    };
    let mut sum = checksum(pseudo, &buf[l4..]);
    if sum == 0 && layout.proto == IPPROTO_UDP {
        sum = 0xffff; // 0 means "no checksum" in UDP
    }
    put_u16(buf, checksum_at, sum);
}

/// Sets extra TCP flags on a frame started with [`begin`] (e.g. PSH once the caller knows a
/// segment ends a response).
pub(crate) fn add_tcp_flags(buf: &mut [u8], layout: Layout, flags: u8) {
    if layout.proto == IPPROTO_TCP {
        buf[layout.l4_start + 13] |= flags;
    }
}

fn to_v6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

fn put_u16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

/// Adds big-endian 16-bit words of `data` (odd tail padded with zero) to `acc`.
fn sum_words(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for word in &mut chunks {
        acc += u64::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// The Internet checksum (RFC 1071) of `data` plus a partial sum, as it goes on the wire.
pub(crate) fn checksum(partial: u64, data: &[u8]) -> u16 {
    let mut sum = sum_words(partial, data);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn headers(src: IpAddr, dst: IpAddr, transport: Transport) -> Headers {
        Headers {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src,
            dst,
            ttl: 64,
            ip_id: 0x1234,
            transport,
        }
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example: words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d.
        assert_eq!(
            checksum(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    #[test]
    fn ipv4_udp_frame_verifies() {
        let mut buf = Vec::new();
        let h = headers(
            Ipv4Addr::new(10, 0, 0, 1).into(),
            Ipv4Addr::new(192, 0, 2, 53).into(),
            Transport::Udp {
                sport: 40000,
                dport: 53,
            },
        );
        let layout = begin(&mut buf, &h);
        buf.extend_from_slice(b"hello");
        finish(&mut buf, layout);
        assert_eq!(buf.len(), 14 + 20 + 8 + 5);
        assert_eq!(u16::from_be_bytes([buf[16], buf[17]]), 33); // IPv4 total length
        assert_eq!(checksum(0, &buf[14..34]), 0); // header checksum verifies
        assert_eq!(u16::from_be_bytes([buf[38], buf[39]]), 13); // UDP length
        let pseudo = sum_words(0, &buf[26..34]) + 13 + 17;
        assert_eq!(checksum(pseudo, &buf[34..]), 0);
    }

    #[test]
    fn ipv6_tcp_and_icmpv6_frames_verify() {
        let src: IpAddr = "2001:db8::1".parse::<Ipv6Addr>().unwrap().into();
        let dst: IpAddr = "2001:db8::2".parse::<Ipv6Addr>().unwrap().into();
        for transport in [
            Transport::Tcp {
                sport: 1,
                dport: 443,
                seq: 7,
                ack: 0,
                flags: TCP_SYN,
                window: 64240,
            },
            Transport::Echo {
                reply: false,
                id: 1,
                seq: 2,
            },
        ] {
            let mut buf = Vec::new();
            let layout = begin(&mut buf, &headers(src, dst, transport));
            buf.extend_from_slice(b"abc");
            finish(&mut buf, layout);
            let l4_len = buf.len() - 54;
            assert_eq!(u16::from_be_bytes([buf[18], buf[19]]) as usize, l4_len);
            let proto = buf[20];
            let pseudo = sum_words(0, &buf[22..54]) + l4_len as u64 + u64::from(proto);
            assert_eq!(checksum(pseudo, &buf[54..]), 0);
        }
    }
}
