//! The built-in catalog of public threat feeds.
//!
//! Each entry says where a feed lives, how to parse it, what its trails mean and whether it
//! is on by default. The config switches entries on and off (`[feeds] enable/disable`) and
//! adds its own (`[[feeds.custom]]`).

use spoor_core::{Severity, TrailKind};

use crate::format::{CsvOptions, FormatSpec};

/// One public feed Spoor knows about.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogFeed {
    /// Stable identifier used in the config (`enable = ["tor-exits"]`).
    pub name: &'static str,
    pub url: &'static str,
    pub format: FormatSpec,
    /// Info attached to each trail (`emotet (malware)` style; the category in parentheses
    /// drives the default severity).
    pub info: &'static str,
    /// Who publishes it (shown as the hit's reference).
    pub reference: &'static str,
    /// Severity forced for the whole feed, when the info rules would not fit.
    pub severity: Option<Severity>,
    /// Minimum number of sources that must list an indicator from this feed (noisy IP
    /// reputation feeds use 2; curated feeds 1).
    pub min_consensus: u32,
    pub default_enabled: bool,
    pub description: &'static str,
}

/// Consensus asked of noisy reputation feeds (scanners, brute-forcers, fail2ban reports):
/// one such list alone names too many shared, dynamic or already-cleaned addresses to alert on.
const NOISY_CONSENSUS: u32 = 2;

/// Every built-in feed, in display order: curated malware/C2 feeds first, then phishing,
/// Maltrail's own lists, anonymity networks, and the reputation/attacker lists last.
///
/// Info strings follow Maltrail (`emotet (malware)`); [`Severity::from_info`] turns them into
/// a severity, so an explicit `severity` is only set where those rules would be wrong.
pub fn builtin() -> Vec<CatalogFeed> {
    use FormatSpec as F;
    use Severity::Low;

    vec![
        // --- abuse.ch: curated malware infrastructure -----------------------------------
        feed(
            "feodotracker",
            "https://feodotracker.abuse.ch/downloads/ipblocklist.txt",
            F::Ip,
            "feodo botnet c2 (malware)",
            "feodotracker.abuse.ch",
        )
        .about("abuse.ch Feodo Tracker: active botnet C2 servers (Emotet, Dridex, QakBot...)"),
        feed(
            "urlhaus-hosts",
            "https://urlhaus.abuse.ch/downloads/hostfile/",
            F::Hosts,
            "malware distribution (malware)",
            "urlhaus.abuse.ch",
        )
        .about("abuse.ch URLhaus: domains currently serving malware (hosts file)"),
        feed(
            "urlhaus-urls",
            "https://urlhaus.abuse.ch/downloads/text_online/",
            F::Url,
            "malware distribution (malware)",
            "urlhaus.abuse.ch",
        )
        .about("abuse.ch URLhaus: malware download URLs that are online now"),
        feed(
            "sslbl-ip",
            "https://sslbl.abuse.ch/blacklist/sslipblacklist.txt",
            F::Ip,
            "botnet c2 (malware)",
            "sslbl.abuse.ch",
        )
        .about("abuse.ch SSLBL: IPs of botnet C2 servers seen with malicious TLS certificates"),
        feed(
            "sslbl-certs",
            "https://sslbl.abuse.ch/blacklist/sslblacklist.csv",
            // `# Listingdate,SHA1,Listingreason`: the reason names the family ("Vidar C&C").
            F::Csv(CsvOptions {
                column: 1,
                info_column: Some(2),
                delimiter: b',',
                header: false,
                kind: Some(TrailKind::CertSha1),
            }),
            "malicious ssl certificate (malware)",
            "sslbl.abuse.ch",
        )
        .about("abuse.ch SSLBL: SHA-1 fingerprints of TLS certificates used by malware C2"),
        feed(
            "threatfox-hosts",
            "https://threatfox.abuse.ch/downloads/hostfile/",
            F::Hosts,
            "threatfox ioc (malware)",
            "threatfox.abuse.ch",
        )
        .about("abuse.ch ThreatFox: malware C2 and payload domains (hosts file)"),
        feed(
            "threatfox-ip-port",
            "https://threatfox.abuse.ch/export/csv/ip-port/recent/",
            // "first_seen_utc","ioc_id","ioc_value","ioc_type","threat_type","fk_malware",
            // "malware_alias","malware_printable",...; the header is a `#` comment.
            F::Csv(CsvOptions {
                column: 2,
                info_column: Some(7),
                delimiter: b',',
                header: false,
                kind: Some(TrailKind::IpPort),
            }),
            "threatfox ioc (malware)",
            "threatfox.abuse.ch",
        )
        .about("abuse.ch ThreatFox: C2 IP:port IOCs of the last 48 hours, with malware family"),
        // --- other curated malware / C2 lists -------------------------------------------
        feed(
            "c2-tracker",
            "https://raw.githubusercontent.com/montysecurity/C2-Tracker/main/data/all.txt",
            F::Ip,
            "c2 server (malware)",
            "github.com/montysecurity/C2-Tracker",
        )
        .about("C2-Tracker: C2 servers (Cobalt Strike, Sliver, Metasploit...) found via Shodan"),
        feed(
            "viriback",
            "https://tracker.viriback.com/dump.php",
            // Family,URL,IP,FirstSeen
            F::Csv(CsvOptions {
                column: 1,
                info_column: Some(0),
                delimiter: b',',
                header: true,
                kind: Some(TrailKind::Url),
            }),
            "malware panel (malware)",
            "tracker.viriback.com",
        )
        .about("ViriBack C2 tracker: malware control panel URLs with their family"),
        feed(
            "botvrij-domains",
            "https://www.botvrij.eu/data/ioclist.domain.raw",
            F::Domain,
            "botvrij ioc (suspicious)",
            "botvrij.eu",
        )
        .about("botvrij.eu: domains from public threat reports (MISP)"),
        feed(
            "botvrij-ips",
            "https://www.botvrij.eu/data/ioclist.ip-dst.raw",
            F::Ip,
            "botvrij ioc (suspicious)",
            "botvrij.eu",
        )
        .about("botvrij.eu: destination IPs from public threat reports (MISP)"),
        feed(
            "blackbook",
            "https://raw.githubusercontent.com/stamparm/blackbook/master/blackbook.csv",
            // Domain,Malware,Date added,Source
            F::Csv(CsvOptions {
                column: 0,
                info_column: Some(1),
                delimiter: b',',
                header: true,
                kind: Some(TrailKind::Domain),
            }),
            "malware",
            "github.com/stamparm/blackbook",
        )
        .about("Blackbook: malware and ransomware domains with family (stamparm)"),
        feed(
            "minerchk",
            "https://raw.githubusercontent.com/Hestat/minerchk/master/hostslist.txt",
            F::Domain,
            "crypto mining (suspicious)",
            "github.com/Hestat/minerchk",
        )
        .about("minerchk: cryptojacking and mining pool domains"),
        // --- phishing -------------------------------------------------------------------
        feed(
            "openphish",
            "https://openphish.com/feed.txt",
            F::Url,
            "phishing",
            "openphish.com",
        )
        .about("OpenPhish community feed: live phishing URLs"),
        // --- Maltrail's own published lists ---------------------------------------------
        feed(
            "maltrail-static",
            "https://raw.githubusercontent.com/stamparm/aux/master/maltrail-static-trails.txt",
            // `trail,info,reference` per line: the line's info wins over this fallback.
            F::MaltrailCsv,
            "maltrail static trail (suspicious)",
            "(static)",
        )
        .about(
            "Maltrail's static trails, aggregated (about 1.6M malware, C2 and suspicious trails)",
        ),
        feed(
            "maltrail-ua",
            "https://raw.githubusercontent.com/stamparm/maltrail/master/misc/ua.txt",
            F::UserAgent,
            "suspicious user-agent (suspicious)",
            "(static)",
        )
        .about("Maltrail's suspicious HTTP User-Agent patterns (scanners, exploit kits, bots)"),
        feed(
            "maltrail-whitelist",
            "https://raw.githubusercontent.com/stamparm/maltrail/master/misc/whitelist.txt",
            F::Whitelist,
            "whitelisted",
            "(static)",
        )
        .about("Maltrail's whitelist: popular domains and addresses that must never alert"),
        // --- hijacked / criminal networks -----------------------------------------------
        // DROP and EDROP were merged by Spamhaus in 2024; edrop.txt is no longer maintained.
        feed(
            "spamhaus-drop",
            "https://www.spamhaus.org/drop/drop.txt",
            F::Cidr,
            "spamhaus drop (malicious)",
            "spamhaus.org",
        )
        .about("Spamhaus DROP (IPv4): hijacked netblocks run by criminals; drop all traffic"),
        feed(
            "spamhaus-drop-v6",
            "https://www.spamhaus.org/drop/dropv6.txt",
            F::Cidr,
            "spamhaus drop (malicious)",
            "spamhaus.org",
        )
        .about("Spamhaus DROP (IPv6): hijacked netblocks run by criminals; drop all traffic"),
        // --- anonymity networks ---------------------------------------------------------
        feed(
            "tor-exits",
            "https://check.torproject.org/torbulkexitlist",
            F::TorExits,
            "tor exit (suspicious)",
            "torproject.org",
        )
        // The info keeps Maltrail's category for its event lines, but using Tor is a policy
        // matter, not an attack: responders should not escalate on it.
        .severity(Low)
        .about("Tor Project: current Tor exit relays (policy decision, not an attack by itself)"),
        // --- compromised hosts and attackers --------------------------------------------
        feed(
            "et-compromised",
            "https://rules.emergingthreats.net/open/suricata/rules/compromised-ips.txt",
            F::Ip,
            "compromised (suspicious)",
            "emergingthreats.net",
        )
        .about("Proofpoint Emerging Threats: known compromised hosts"),
        feed(
            "et-block",
            "https://rules.emergingthreats.net/fwrules/emerging-Block-IPs.txt",
            F::Cidr,
            "known attacker",
            "emergingthreats.net",
        )
        .off()
        .about("Emerging Threats firewall block list (overlaps DShield, Spamhaus DROP, Feodo)"),
        feed(
            "cins-army",
            "https://cinsscore.com/list/ci-badguys.txt",
            F::Ip,
            "known attacker",
            "cinsscore.com",
        )
        .consensus(NOISY_CONSENSUS)
        .about("CINS Army: IPs with a poor Rogue Packet score not yet on other lists"),
        feed(
            "dshield-block",
            "https://iplists.firehol.org/files/dshield.netset",
            F::Ipset,
            "known attacker",
            "dshield.org",
        )
        .about("DShield top 20 attacking /24 networks of the last 3 days (FireHOL mirror)"),
        feed(
            "dshield-top1000",
            "https://iplists.firehol.org/files/dshield_top_1000.ipset",
            F::Ipset,
            "known attacker",
            "dshield.org",
        )
        .consensus(NOISY_CONSENSUS)
        .about("DShield top 1000 attacking IPs (FireHOL mirror)"),
        feed(
            "blocklist-de",
            "https://lists.blocklist.de/lists/all.txt",
            F::Ip,
            "known attacker",
            "blocklist.de",
        )
        .consensus(NOISY_CONSENSUS)
        .about("blocklist.de: all IPs reported by fail2ban users in the last 48 hours"),
        feed(
            "greensnow",
            "https://blocklist.greensnow.co/greensnow.txt",
            F::Ip,
            "known attacker",
            "greensnow.co",
        )
        .consensus(NOISY_CONSENSUS)
        .about("GreenSnow: IPs seen brute-forcing and scanning honeypots"),
        feed(
            "binarydefense",
            "https://www.binarydefense.com/banlist.txt",
            F::Ip,
            "known attacker",
            "binarydefense.com",
        )
        .consensus(NOISY_CONSENSUS)
        .about("Binary Defense Artillery threat intelligence ban list"),
        feed(
            "bruteforceblocker",
            "https://danger.rulez.sk/projects/bruteforceblocker/blist.php",
            // `IP<TAB># last reported count id`: the comment is stripped.
            F::Ip,
            "known attacker",
            "rulez.sk",
        )
        .consensus(NOISY_CONSENSUS)
        .about("BruteForceBlocker: IPs brute-forcing SSH"),
        feed(
            "dataplane-sshpwauth",
            "https://dataplane.org/sshpwauth.txt",
            dataplane(),
            "known attacker",
            "dataplane.org",
        )
        .consensus(NOISY_CONSENSUS)
        .about("DataPlane.org: IPs attempting SSH password logins"),
        feed(
            "dataplane-sshclient",
            "https://dataplane.org/sshclient.txt",
            dataplane(),
            "known attacker",
            "dataplane.org",
        )
        .consensus(NOISY_CONSENSUS)
        .off()
        .about("DataPlane.org: IPs opening SSH connections to remote hosts"),
        feed(
            "dataplane-vncrfb",
            "https://dataplane.org/vncrfb.txt",
            dataplane(),
            "known attacker",
            "dataplane.org",
        )
        .consensus(NOISY_CONSENSUS)
        .off()
        .about("DataPlane.org: IPs initiating VNC RFB sessions"),
        feed(
            "dataplane-sipinvitation",
            "https://dataplane.org/sipinvitation.txt",
            dataplane(),
            "known attacker",
            "dataplane.org",
        )
        .consensus(NOISY_CONSENSUS)
        .off()
        .about("DataPlane.org: IPs sending SIP INVITE to remote hosts"),
        feed(
            "dataplane-dnsrd",
            "https://dataplane.org/dnsrd.txt",
            dataplane(),
            "known attacker",
            "dataplane.org",
        )
        .consensus(NOISY_CONSENSUS)
        .off()
        .about("DataPlane.org: IPs sending recursive DNS queries to remote hosts"),
        feed(
            "turris-greylist",
            "https://view.sentinel.turris.cz/greylist-data/greylist-latest.csv",
            // Address,Tags
            F::Csv(CsvOptions {
                column: 0,
                info_column: None,
                delimiter: b',',
                header: true,
                kind: Some(TrailKind::Ip),
            }),
            "bad reputation",
            "turris.cz",
        )
        .consensus(NOISY_CONSENSUS)
        .off()
        .about("Turris Sentinel greylist: IPs attacking Turris routers (scans, brute force)"),
        feed(
            "ipsum",
            "https://raw.githubusercontent.com/stamparm/ipsum/master/ipsum.txt",
            // IPsum is itself a consensus of 30+ lists: 3 is where false positives fade.
            F::Ipsum { min_count: 3 },
            "bad reputation",
            "github.com/stamparm/ipsum",
        )
        .about("IPsum: IPs listed on at least 3 public blacklists (daily)"),
        // --- wide aggregates: noisy, opt in ---------------------------------------------
        feed(
            "firehol-level1",
            "https://iplists.firehol.org/files/firehol_level1.netset",
            F::Ipset,
            "bad reputation",
            "iplists.firehol.org",
        )
        .off()
        .about("FireHOL level 1: DROP, Feodo, DShield... plus bogons (includes private ranges!)"),
        feed(
            "firehol-level2",
            "https://iplists.firehol.org/files/firehol_level2.netset",
            F::Ipset,
            "bad reputation",
            "iplists.firehol.org",
        )
        .consensus(NOISY_CONSENSUS)
        .off()
        .about("FireHOL level 2: attacks seen in the last 48 hours (blocklist.de, GreenSnow...)"),
        feed(
            "firehol-level3",
            "https://iplists.firehol.org/files/firehol_level3.netset",
            F::Ipset,
            "bad reputation",
            "iplists.firehol.org",
        )
        .consensus(NOISY_CONSENSUS)
        .off()
        .about("FireHOL level 3: attackers, spyware and viruses of the last 30 days"),
        feed(
            "firehol-abusers-1d",
            "https://iplists.firehol.org/files/firehol_abusers_1d.netset",
            F::Ipset,
            "bad reputation",
            "iplists.firehol.org",
        )
        .consensus(NOISY_CONSENSUS)
        .off()
        .about("FireHOL abusers (1 day): abusive IPs, large and false-positive prone"),
        feed(
            "sblam",
            "https://sblam.com/blacklist.txt",
            F::Ip,
            "spam",
            "sblam.com",
        )
        .consensus(NOISY_CONSENSUS)
        .off()
        .about("Sblam!: IPs sending form spam to web sites"),
        feed(
            "myip-blacklist",
            "https://myip.ms/files/blacklist/general/latest_blacklist.txt",
            F::Ip,
            "crawler",
            "myip.ms",
        )
        .consensus(NOISY_CONSENSUS)
        .off()
        .about("myip.ms: IPs of abusive web crawlers and bots"),
    ]
}

/// DataPlane.org lists: `ASN | ASname | ipaddr | lastseen | category`, `#` comments.
fn dataplane() -> FormatSpec {
    FormatSpec::Csv(CsvOptions {
        column: 2,
        info_column: None,
        delimiter: b'|',
        header: false,
        kind: Some(TrailKind::Ip),
    })
}

/// A curated, enabled feed with no consensus needed and severity by info; the methods
/// below say where an entry differs.
fn feed(
    name: &'static str,
    url: &'static str,
    format: FormatSpec,
    info: &'static str,
    reference: &'static str,
) -> CatalogFeed {
    CatalogFeed {
        name,
        url,
        format,
        info,
        reference,
        severity: None,
        min_consensus: 1,
        default_enabled: true,
        description: "",
    }
}

impl CatalogFeed {
    fn about(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }
    fn off(mut self) -> Self {
        self.default_enabled = false;
        self
    }
    fn consensus(mut self, min: u32) -> Self {
        self.min_consensus = min;
        self
    }
    fn severity(mut self, severity: Severity) -> Self {
        self.severity = Some(severity);
        self
    }

    /// The severity this feed's trails get when a line carries no info of its own.
    pub fn effective_severity(&self) -> Severity {
        self.severity
            .unwrap_or_else(|| Severity::from_info(self.info))
    }
}

/// Look a built-in feed up by name.
pub fn find(name: &str) -> Option<CatalogFeed> {
    builtin().into_iter().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Providers known to serve only plain HTTP (none at the moment); everything else must be
    /// fetched over TLS so a network in the path cannot rewrite the list.
    const HTTP_ONLY: &[&str] = &[];

    #[test]
    fn catalog_is_large_unique_and_https() {
        let feeds = builtin();
        assert!(feeds.len() >= 30, "only {} feeds", feeds.len());
        let mut names = HashSet::new();
        let mut urls = HashSet::new();
        for f in &feeds {
            assert!(names.insert(f.name), "duplicate name {}", f.name);
            assert!(urls.insert(f.url), "duplicate url {}", f.url);
            assert!(
                f.url.starts_with("https://") || HTTP_ONLY.contains(&f.name),
                "{} is not https: {}",
                f.name,
                f.url
            );
            assert!(!f.description.is_empty(), "{} has no description", f.name);
            assert!(f.min_consensus >= 1, "{}", f.name);
            // names go into file names and config keys
            assert!(
                f.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{} is not a lower-case-dash name",
                f.name
            );
        }
    }

    #[test]
    fn severities_follow_the_info_rules() {
        let sev = |name: &str| find(name).unwrap().effective_severity();
        assert_eq!(sev("feodotracker"), Severity::High);
        assert_eq!(sev("sslbl-certs"), Severity::High);
        assert_eq!(sev("openphish"), Severity::High);
        assert_eq!(sev("tor-exits"), Severity::Low);
        assert_eq!(sev("blocklist-de"), Severity::Low);
        assert_eq!(sev("ipsum"), Severity::Low);
        assert_eq!(sev("et-block"), Severity::Low);
    }

    #[test]
    fn noisy_reputation_feeds_ask_for_consensus_curated_ones_do_not() {
        for f in builtin() {
            if f.effective_severity() == Severity::High {
                assert_eq!(f.min_consensus, 1, "{} is curated", f.name);
            }
        }
        assert_eq!(find("cins-army").unwrap().min_consensus, NOISY_CONSENSUS);
        assert!(!find("firehol-level1").unwrap().default_enabled);
    }

    #[test]
    fn certificate_feed_reads_the_sha1_column() {
        match find("sslbl-certs").unwrap().format {
            FormatSpec::Csv(o) => {
                assert_eq!(o.column, 1);
                assert_eq!(o.kind, Some(TrailKind::CertSha1));
            }
            other => panic!("sslbl-certs is {other:?}"),
        }
        assert_eq!(
            find("ipsum").unwrap().format,
            FormatSpec::Ipsum { min_count: 3 }
        );
    }
}
