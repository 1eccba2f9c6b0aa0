//! DNS answers pointing into sinkholes or at parking services.
//!
//! Which addresses are sinkholes or parking servers is trail data: Maltrail's
//! `malware/sinkhole_<operator>.txt` files (info `sinkhole <operator> (malware)`) and
//! `suspicious/parking_site.txt` (info `parking site (suspicious)`), or any source whose
//! info says so. This module turns such an answer hit into the heuristic Maltrail reports:
//! "sinkholed by <operator>" (the name once belonged to malware and its owner lost it; a
//! host still asking for it is infected) or "parked site".

use super::content::{ContentConfig, Heuristic, Verdict};

/// What a listed answer address says about the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerClass<'a> {
    /// A sinkhole, with the operator's name from the trail info (`unknown` if none).
    Sinkhole { operator: &'a str },
    /// A domain-parking service.
    Parking,
}

/// The class of an answer address from its trail infos (every source listing it).
pub fn classify_infos<'a>(infos: impl IntoIterator<Item = &'a str>) -> Option<AnswerClass<'a>> {
    for info in infos {
        let mut words = info.split_whitespace();
        while let Some(word) = words.next() {
            let w = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            if w.eq_ignore_ascii_case("sinkhole") || w.eq_ignore_ascii_case("sinkholed") {
                let operator = words
                    .next()
                    .filter(|n| !n.starts_with('('))
                    .map_or("unknown", |n| {
                        n.trim_matches(|c: char| c == ',' || c == ':')
                    });
                return Some(AnswerClass::Sinkhole { operator });
            }
            if w.eq_ignore_ascii_case("parking") || w.eq_ignore_ascii_case("parked") {
                return Some(AnswerClass::Parking);
            }
        }
    }
    None
}

/// The verdict on a DNS answer `addr` for the queried `name`, given the infos of the
/// trail the address hit.
pub fn classify(
    name: &str,
    addr: std::net::IpAddr,
    infos: &[&str],
    config: &ContentConfig,
) -> Option<Verdict> {
    let listed = infos.first().copied().unwrap_or("");
    match classify_infos(infos.iter().copied())? {
        AnswerClass::Sinkhole { operator } if config.enabled(Heuristic::SinkholedAnswer) => {
            Some(Verdict {
                heuristic: Heuristic::SinkholedAnswer,
                trail: name.to_string(),
                info: format!(
                    "{} {operator} (malware)",
                    Heuristic::SinkholedAnswer.label()
                ),
                reason: format!("answer {addr} is listed as `{listed}`"),
            })
        }
        AnswerClass::Parking if config.enabled(Heuristic::ParkedAnswer) => Some(Verdict {
            heuristic: Heuristic::ParkedAnswer,
            trail: name.to_string(),
            info: format!("{} (suspicious)", Heuristic::ParkedAnswer.label()),
            reason: format!("answer {addr} is listed as `{listed}`"),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn addr() -> IpAddr {
        "198.51.100.90".parse().unwrap()
    }

    #[test]
    fn infos_name_the_operator() {
        assert_eq!(
            classify_infos(["sinkhole testsink (malware)"]),
            Some(AnswerClass::Sinkhole {
                operator: "testsink"
            })
        );
        assert_eq!(
            classify_infos(["emotet (malware)", "sinkhole shadowserver (malware)"]),
            Some(AnswerClass::Sinkhole {
                operator: "shadowserver"
            })
        );
        assert_eq!(
            classify_infos(["sinkhole (malware)"]),
            Some(AnswerClass::Sinkhole {
                operator: "unknown"
            })
        );
        assert_eq!(
            classify_infos(["parking site (suspicious)"]),
            Some(AnswerClass::Parking)
        );
        assert_eq!(classify_infos(["malware (test)"]), None);
        // Words containing the markers are not the markers.
        assert_eq!(
            classify_infos(["sinkholes-r-us tracker", "carparking"]),
            None
        );
        assert_eq!(classify_infos([""]), None);
        assert_eq!(classify_infos(std::iter::empty()), None);
    }

    #[test]
    fn verdicts_read_like_maltrail() {
        let on = ContentConfig::default();
        let v = classify(
            "sinkholed.com",
            addr(),
            &["sinkhole testsink (malware)"],
            &on,
        )
        .unwrap();
        assert_eq!(v.info, "sinkholed by testsink (malware)");
        assert_eq!(v.trail, "sinkholed.com");
        let v = classify("parked.com", addr(), &["parking site (suspicious)"], &on).unwrap();
        assert_eq!(v.info, "parked site (suspicious)");
        let off = on.without(Heuristic::ParkedAnswer);
        assert!(classify("parked.com", addr(), &["parking site (suspicious)"], &off).is_none());
    }
}
