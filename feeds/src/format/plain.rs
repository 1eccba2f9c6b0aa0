//! Plain lists: one indicator of a known kind per line (`ip`, `cidr`, `domain`, `url`,
//! `ua`, `ja4`, `cert-sha1` feeds), `#` comments allowed.

use std::path::Path;

use spoor_core::TrailKind;

use super::{Sink, TrailFormat, parse_lines};

/// A list with one indicator of `kind` per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainList {
    pub kind: TrailKind,
}

impl PlainList {
    pub fn new(kind: TrailKind) -> Self {
        PlainList { kind }
    }
}

impl TrailFormat for PlainList {
    fn parse(&self, text: &str, file: &Path, sink: &mut Sink<'_>) {
        parse_lines(text, file, Some(self.kind), sink);
    }
}

#[cfg(test)]
mod tests {
    use spoor_core::Indicator;

    use super::*;
    use crate::format::{MAX_LINE_LEN, ParseReport};

    fn run(kind: TrailKind, text: &str) -> (Vec<Indicator>, ParseReport) {
        crate::format::parse_indicators(&PlainList::new(kind), text, "list")
    }

    #[test]
    fn each_kind_takes_its_own() {
        let (ok, rep) = run(
            TrailKind::Ip,
            "1.2.3.4\r\n::ffff:5.6.7.8\r\nevil.example\r\n1.2.3.0/24\r\n",
        );
        assert_eq!(ok.len(), 2);
        assert_eq!(
            rep.malformed.iter().map(|m| m.line).collect::<Vec<_>>(),
            [3, 4]
        );

        let (ok, rep) = run(TrailKind::Cidr, "1.2.3.4/24 # net\n5.6.7.8\nnope\n");
        assert_eq!(ok[0], Indicator::Cidr("1.2.3.0/24".parse().unwrap()));
        assert_eq!(rep.malformed_count, 1);

        let (ok, rep) = run(
            TrailKind::Domain,
            "Evil.Example\n1.2.3.4\nhttp://x.example/\n",
        );
        assert_eq!(ok, [Indicator::Domain("evil.example".into())]);
        assert!(rep.malformed[0].reason.contains("IP address, not a domain"));
        assert_eq!(rep.malformed_count, 2);

        let (ok, rep) = run(
            TrailKind::Url,
            "http://x.example/a?b=1\ny.example\n</html>\n",
        );
        assert_eq!(ok.len(), 2);
        assert_eq!(rep.malformed[0].line, 3);

        let (ok, rep) = run(TrailKind::UserAgent, "^sqlmap/\n(unclosed\n");
        assert_eq!(ok.len(), 1);
        assert_eq!(rep.malformed_count, 1);

        let (ok, rep) = run(
            TrailKind::Ja4,
            "t13d1516h2_8daaf6152771_02713d6af862\nt13d\n",
        );
        assert_eq!((ok.len(), rep.malformed_count), (1, 1));

        let sha = "a1b2c3d4e5f60718293a4b5c6d7e8f9001122334";
        let (ok, rep) = run(TrailKind::CertSha1, &format!("{sha}\n{}\n", &sha[..39]));
        assert_eq!((ok.len(), rep.malformed_count), (1, 1));
    }

    #[test]
    fn semicolon_comments_in_address_lists() {
        // Spamhaus DROP: `;` headers and `; SBL...` references after each net.
        let text = "; Spamhaus DROP List 2024/05/10 - (c) 2024 The Spamhaus Project SLU\n\
                    ; Last-Modified: Fri, 10 May 2024 08:22:13 GMT\n\
                    1.10.16.0/20 ; SBL256894\n2a06:e480::/29 ; SBL303641\n";
        let (ok, rep) = run(TrailKind::Cidr, text);
        assert_eq!(rep.malformed_count, 0, "{:?}", rep.malformed);
        assert_eq!(ok.len(), 2);
        let (ok, rep) = run(TrailKind::Ip, "; header\n1.2.3.4;x\n");
        assert_eq!((ok.len(), rep.malformed_count), (1, 0));
        // Other kinds keep `;`: it is part of URLs and user-agent patterns.
        let (ok, _) = run(TrailKind::UserAgent, "\\(\\) \\{ :;\n");
        assert_eq!(ok[0], Indicator::UserAgent(r"\(\) \{ :;".into()));
    }

    #[test]
    fn python_user_agent_patterns() {
        // Maltrail's ua.txt is written for Python's `re`.
        let (ok, rep) = run(
            TrailKind::UserAgent,
            "\\(\\) { :;\n\\A\\w{1,2}\\Z\nx{,3}y\n\\{ok}\n[{]\n",
        );
        assert_eq!(rep.malformed_count, 0, "{:?}", rep.malformed);
        let got: Vec<_> = ok.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [r"\(\) \{ :;", r"\A\w{1,2}\z", "x{0,3}y", r"\{ok}", r"[\{]"]
        );
    }

    #[test]
    fn html_binary_and_long_lines() {
        let long = format!("{}.example", "a".repeat(MAX_LINE_LEN));
        let text = format!(
            "<!DOCTYPE html>\n<html>\n<body>502 Bad Gateway</body>\n\u{0}\u{1}\u{2}\n{long}\n\u{fffd}\u{fffd}\n"
        );
        for kind in [
            TrailKind::Ip,
            TrailKind::Domain,
            TrailKind::Url,
            TrailKind::Cidr,
        ] {
            let (ok, rep) = run(kind, &text);
            assert!(ok.is_empty(), "{kind}: {ok:?}");
            assert_eq!(rep.malformed_count, 6, "{kind}");
        }
    }
}
