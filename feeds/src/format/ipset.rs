//! FireHOL `.ipset` / `.netset` files: one IP or CIDR per line under a `#` header.

use std::path::Path;

use spoor_core::TrailKind;

use super::{Sink, TrailFormat, parse_lines};

/// A FireHOL ipset or netset.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ipset;

impl TrailFormat for Ipset {
    fn parse(&self, text: &str, file: &Path, sink: &mut Sink<'_>) {
        // A CIDR list already takes bare addresses as host routes.
        parse_lines(text, file, Some(TrailKind::Cidr), sink);
    }
}

#[cfg(test)]
mod tests {
    use spoor_core::Indicator;

    use super::*;
    use crate::format::ParseReport;

    fn run(text: &str) -> (Vec<Indicator>, ParseReport) {
        crate::format::parse_indicators(&Ipset, text, "x.netset")
    }

    #[test]
    fn header_ips_and_nets() {
        let (inds, rep) = run("#\n# feodo\n#\n1.2.3.4\n5.6.7.0/24\n2001:db8::/32\n");
        assert_eq!(rep.malformed_count, 0);
        assert_eq!(inds.len(), 3);
        assert_eq!(inds[1], Indicator::Cidr("5.6.7.0/24".parse().unwrap()));
    }

    #[test]
    fn hostile() {
        let (inds, rep) =
            run("1.2.3.4/33\r\n1.2.3\r\n<html>\r\n\u{0}\u{0}\r\n1.2.3.4 5.6.7.8\r\n9.9.9.9");
        assert_eq!(inds.len(), 1);
        let lines: Vec<_> = rep.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5]);
    }
}
