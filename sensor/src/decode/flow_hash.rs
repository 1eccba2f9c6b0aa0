//! A symmetric flow hash straight from a frame, for spreading frames over workers.
//!
//! Both directions of a conversation must reach the same worker (its flow table, stream
//! reassembly and DNS state are per worker), so the hash combines the two (address, port)
//! ends in an order-independent way. Only the outer IP header is read (tunnels go by
//! their outer addresses). Fragments of a datagram carry no ports after the first, so
//! every fragment hashes by addresses and protocol alone (all fragments of one datagram
//! meet on one worker, where it is reassembled). A frame that is not IP hashes to 0.

use super::DecodeLimits;
use super::link::{self, L3, LinkType};

/// IPv6 extension headers walked to find the transport header, at most.
const MAX_V6_EXTENSIONS: usize = 8;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    z = (z ^ (z >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    z ^ (z >> 33)
}

/// Order-independent combination of two ends: the same for (a, b) and (b, a).
fn ends(a: u64, b: u64, proto: u8) -> u64 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    mix(mix(lo ^ u64::from(proto) << 56) ^ hi.rotate_left(29))
}

fn fold(bytes: &[u8]) -> u64 {
    bytes.chunks(8).fold(0u64, |h, c| {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        mix(h ^ u64::from_le_bytes(w))
    })
}

fn ports(transport: &[u8]) -> Option<(u16, u16)> {
    Some((
        u16::from_be_bytes([*transport.first()?, *transport.get(1)?]),
        u16::from_be_bytes([*transport.get(2)?, *transport.get(3)?]),
    ))
}

/// The symmetric flow hash of a frame of pcap link type `linktype` (0 when the frame is
/// not IP or too short).
pub fn flow_hash(linktype: i32, frame: &[u8]) -> u64 {
    let limits = DecodeLimits::default();
    let mut vlan = None;
    match link::decode(LinkType(linktype), frame, &limits, &mut vlan) {
        Ok(L3::V4(ip)) => v4(ip),
        Ok(L3::V6(ip)) => v6(ip),
        Err(_) => 0,
    }
}

fn v4(ip: &[u8]) -> u64 {
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return 0;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let proto = ip[9];
    let src = fold(&ip[12..16]);
    let dst = fold(&ip[16..20]);
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
    let with_ports = matches!(proto, 6 | 17 | 132) && !fragment;
    match ip.get(ihl..).and_then(ports).filter(|_| with_ports) {
        Some((sp, dp)) => ends(mix(src ^ u64::from(sp)), mix(dst ^ u64::from(dp)), proto),
        None => ends(src, dst, proto),
    }
}

fn v6(ip: &[u8]) -> u64 {
    if ip.len() < 40 || ip[0] >> 4 != 6 {
        return 0;
    }
    let src = fold(&ip[8..24]);
    let dst = fold(&ip[24..40]);
    let mut next = ip[6];
    let mut at = 40;
    for _ in 0..MAX_V6_EXTENSIONS {
        match next {
            // Hop-by-hop, routing, destination options: length in 8-byte units.
            0 | 43 | 60 => {
                let (Some(&n), Some(&len)) = (ip.get(at), ip.get(at + 1)) else {
                    return ends(src, dst, next);
                };
                next = n;
                at += (usize::from(len) + 1) * 8;
            }
            // A fragment: addresses only, like every other fragment.
            44 => return ends(src, dst, 44),
            _ => break,
        }
    }
    match ip
        .get(at..)
        .and_then(ports)
        .filter(|_| matches!(next, 6 | 17 | 132))
    {
        Some((sp, dp)) => ends(mix(src ^ u64::from(sp)), mix(dst ^ u64::from(dp)), next),
        None => ends(src, dst, next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth_v4(src: [u8; 4], sp: u16, dst: [u8; 4], dp: u16, frag: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0];
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&sp.to_be_bytes());
        f.extend_from_slice(&dp.to_be_bytes());
        f.extend_from_slice(&[0u8; 16]);
        f
    }

    #[test]
    fn both_directions_hash_alike_and_flows_differ() {
        let a = eth_v4([10, 0, 0, 1], 40000, [192, 0, 2, 1], 443, 0);
        let b = eth_v4([192, 0, 2, 1], 443, [10, 0, 0, 1], 40000, 0);
        let c = eth_v4([10, 0, 0, 1], 40001, [192, 0, 2, 1], 443, 0);
        assert_eq!(flow_hash(1, &a), flow_hash(1, &b));
        assert_ne!(flow_hash(1, &a), flow_hash(1, &c));
        assert_ne!(flow_hash(1, &a), 0);
        // Ports swapped between the ends is another flow.
        let d = eth_v4([10, 0, 0, 1], 443, [192, 0, 2, 1], 40000, 0);
        assert_ne!(flow_hash(1, &a), flow_hash(1, &d));
    }

    #[test]
    fn fragments_hash_by_addresses() {
        let first = eth_v4([10, 0, 0, 1], 40000, [192, 0, 2, 1], 53, 0x2000);
        let later = eth_v4([10, 0, 0, 1], 1, [192, 0, 2, 1], 2, 0x0010);
        assert_eq!(flow_hash(1, &first), flow_hash(1, &later));
    }

    #[test]
    fn hostile_frames_hash_to_something_without_panicking() {
        for len in 0..60 {
            let f = eth_v4([1, 2, 3, 4], 1, [5, 6, 7, 8], 2, 0);
            let _ = flow_hash(1, &f[..len.min(f.len())]);
            let _ = flow_hash(229, &vec![0x60; len]);
        }
        assert_eq!(flow_hash(1, &[0u8; 10]), 0);
    }
}
