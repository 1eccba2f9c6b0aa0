//! Per-reason decode counters, for stats lines and for telling a broken capture from an
//! unusual network.

use std::borrow::Cow;

use super::{DecodeError, Layer, Unsupported};

/// Counts of what the decoder saw. Plain fields for the fixed counters; per-layer
/// truncations and per-reason malformations through [`DecodeCounters::truncated`],
/// [`DecodeCounters::malformed`] and [`DecodeCounters::iter`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeCounters {
    /// Frames given to `decode`.
    pub frames: u64,
    /// Frames that produced a packet.
    pub packets: u64,
    /// Unknown pcap link type.
    pub unsupported_link_type: u64,
    /// Ethertype that leads to no IP (ARP, LLDP, PPPoE discovery...).
    pub unsupported_ethertype: u64,
    /// PPP protocol other than IPv4/IPv6/MPLS (LCP, IPCP...).
    pub unsupported_ppp_protocol: u64,
    /// Loopback/pflog address family other than IPv4/IPv6.
    pub unsupported_address_family: u64,
    /// Version nibble other than 4/6 where the link layer does not say (raw IP, MPLS).
    pub unsupported_ip_version: u64,
    /// Fragments seen (IPv4 and IPv6).
    pub fragments: u64,
    /// Fragments stored while their datagram is incomplete (not an error).
    pub fragments_pending: u64,
    /// Datagrams completed and decoded.
    pub fragments_reassembled: u64,
    /// Partial datagrams dropped after the timeout.
    pub fragments_expired: u64,
    /// Non-final fragments cut down to a multiple of 8 bytes.
    pub fragments_trimmed: u64,
    /// Fragments overlapping bytes already held (first wins).
    pub fragments_overlap: u64,
    /// Fragments entirely made of bytes already held.
    pub fragments_duplicate: u64,
    /// New datagrams refused because the table was full.
    pub fragments_refused_table_full: u64,
    /// Fragments refused by the total byte budget.
    pub fragments_refused_budget: u64,
    /// Datagrams dropped for having too many fragments.
    pub fragments_too_many: u64,
    /// Fragments refused because the frame already used reassembly (fragment inside a
    /// reassembled tunnel payload).
    pub fragments_nested: u64,
    /// Tunnels (GRE, VXLAN, IP-in-IP) unwrapped.
    pub tunnels: u64,
    /// Frames returned at the tunnel depth bound instead of their inner packet.
    pub tunnel_depth_exceeded: u64,
    /// Tunnels whose inner frame carries no IP; the tunnel packet itself was returned.
    pub tunnel_inner_unsupported: u64,
    /// IPv4 headers with total length 0 (segmentation offload on the capturing host);
    /// the captured length was used instead.
    pub ipv4_zero_total_length: u64,
    /// Packets whose capture is shorter than their IP length (snap length).
    pub ip_payload_snapped: u64,
    truncated: [u64; Layer::ALL.len()],
    /// (layer, reason, count); grows once per distinct reason, and reasons are literals in
    /// this module, so it stays small.
    malformed: Vec<(Layer, &'static str, u64)>,
}

impl DecodeCounters {
    /// Frames that ended inside a header of `layer`.
    pub fn truncated(&self, layer: Layer) -> u64 {
        self.truncated.get(layer.index()).copied().unwrap_or(0)
    }

    /// Frames with an impossible header field of `layer` for `reason`.
    pub fn malformed(&self, layer: Layer, reason: &str) -> u64 {
        self.malformed
            .iter()
            .find(|(l, r, _)| *l == layer && *r == reason)
            .map_or(0, |m| m.2)
    }

    /// All truncations together.
    pub fn truncated_total(&self) -> u64 {
        self.truncated.iter().sum()
    }

    /// All malformations together.
    pub fn malformed_total(&self) -> u64 {
        self.malformed.iter().map(|m| m.2).sum()
    }

    /// Every non-zero counter as (name, count), names like `packets`,
    /// `truncated.ipv4`, `malformed.tcp.data_offset_below_5`.
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'static, str>, u64)> + '_ {
        let fixed = [
            ("frames", self.frames),
            ("packets", self.packets),
            ("unsupported.link_type", self.unsupported_link_type),
            ("unsupported.ethertype", self.unsupported_ethertype),
            ("unsupported.ppp_protocol", self.unsupported_ppp_protocol),
            (
                "unsupported.address_family",
                self.unsupported_address_family,
            ),
            ("unsupported.ip_version", self.unsupported_ip_version),
            ("fragments", self.fragments),
            ("fragments.pending", self.fragments_pending),
            ("fragments.reassembled", self.fragments_reassembled),
            ("fragments.expired", self.fragments_expired),
            ("fragments.trimmed", self.fragments_trimmed),
            ("fragments.overlap", self.fragments_overlap),
            ("fragments.duplicate", self.fragments_duplicate),
            (
                "fragments.refused_table_full",
                self.fragments_refused_table_full,
            ),
            ("fragments.refused_budget", self.fragments_refused_budget),
            ("fragments.too_many", self.fragments_too_many),
            ("fragments.nested", self.fragments_nested),
            ("tunnels", self.tunnels),
            ("tunnels.depth_exceeded", self.tunnel_depth_exceeded),
            ("tunnels.inner_unsupported", self.tunnel_inner_unsupported),
            ("ipv4_zero_total_length", self.ipv4_zero_total_length),
            ("ip_payload_snapped", self.ip_payload_snapped),
        ];
        let fixed = fixed.into_iter().map(|(n, c)| (Cow::Borrowed(n), c));
        let truncated = Layer::ALL
            .iter()
            .filter(|l| self.truncated(**l) > 0)
            .map(|l| (Cow::Owned(format!("truncated.{l}")), self.truncated(*l)));
        let malformed = self
            .malformed
            .iter()
            .map(|(l, r, c)| (Cow::Owned(format!("malformed.{l}.{r}")), *c));
        fixed
            .chain(truncated)
            .chain(malformed)
            .filter(|(_, c)| *c > 0)
    }

    pub(super) fn count_error(&mut self, e: &DecodeError) {
        match *e {
            DecodeError::Truncated { layer } => {
                if let Some(c) = self.truncated.get_mut(layer.index()) {
                    *c += 1;
                }
            }
            DecodeError::Malformed { layer, reason } => {
                match self
                    .malformed
                    .iter_mut()
                    .find(|(l, r, _)| *l == layer && *r == reason)
                {
                    Some(m) => m.2 += 1,
                    None => self.malformed.push((layer, reason, 1)),
                }
            }
            DecodeError::Unsupported { what } => match what {
                Unsupported::LinkType(_) => self.unsupported_link_type += 1,
                Unsupported::EtherType(_) => self.unsupported_ethertype += 1,
                Unsupported::PppProtocol(_) => self.unsupported_ppp_protocol += 1,
                Unsupported::AddressFamily(_) => self.unsupported_address_family += 1,
                Unsupported::IpVersion(_) => self.unsupported_ip_version += 1,
            },
            DecodeError::FragmentPending => self.fragments_pending += 1,
            DecodeError::FragmentRefused { reason } => {
                // Table-full, budget and too-many are counted where they happen.
                if reason == "nested_reassembly" {
                    self.fragments_nested += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason_and_names_them() {
        let mut c = DecodeCounters::default();
        c.count_error(&DecodeError::truncated(Layer::Ipv4));
        c.count_error(&DecodeError::truncated(Layer::Ipv4));
        c.count_error(&DecodeError::malformed(Layer::Tcp, "data_offset_below_5"));
        c.count_error(&DecodeError::malformed(Layer::Tcp, "data_offset_below_5"));
        c.count_error(&DecodeError::Unsupported {
            what: Unsupported::EtherType(0x0806),
        });
        c.count_error(&DecodeError::FragmentPending);
        assert_eq!(c.truncated(Layer::Ipv4), 2);
        assert_eq!(c.malformed(Layer::Tcp, "data_offset_below_5"), 2);
        assert_eq!(c.malformed_total(), 2);
        let all: Vec<_> = c.iter().map(|(n, v)| (n.into_owned(), v)).collect();
        assert_eq!(
            all,
            vec![
                ("unsupported.ethertype".to_string(), 1),
                ("fragments.pending".to_string(), 1),
                ("truncated.ipv4".to_string(), 2),
                ("malformed.tcp.data_offset_below_5".to_string(), 2),
            ]
        );
    }

    #[test]
    fn layer_index_matches_all() {
        for (i, l) in Layer::ALL.iter().enumerate() {
            assert_eq!(l.index(), i);
        }
    }
}
