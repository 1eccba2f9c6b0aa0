//! Every catalog feed against a few lines in the exact shape its provider publishes:
//! headers, comment styles, quoting and separators as served. A catalog entry whose format
//! options do not fit its provider fails here, not on an admin's first update.
//!
//! Samples are written from the providers' public lists (addresses replaced where they
//! would name a real victim); each must parse with no malformed line.

use std::path::Path;

use spoor_feeds::catalog::{self, CatalogFeed};
use spoor_feeds::format::{ParseReport, Record, Sink, parse_text};

/// `(feed name, body as served, expected indicators and infos in file order)`.
/// An expected entry is `indicator` or `indicator => info` when the line carries an info.
const SAMPLES: &[(&str, &str, &[&str])] = &[
    (
        "feodotracker",
        "################################################################\n\
         # abuse.ch Feodo Tracker Botnet C2 IP Blocklist (recommended)  #\n\
         # Last updated: 2024-05-10 10:13:11 UTC                        #\n\
         #                                                              #\n\
         # Terms Of Use: https://feodotracker.abuse.ch/terms-of-use/    #\n\
         # For questions please contact feodotracker [at] abuse.ch      #\n\
         ################################################################\n\
         #\n\
         # DstIP\n\
         162.243.103.246\n\
         50.16.16.211\n\
         # END 2 entries\n",
        &["162.243.103.246", "50.16.16.211"],
    ),
    (
        "urlhaus-hosts",
        "################################################################\n\
         # abuse.ch URLhaus Host file                                   #\n\
         # Last updated: 2024-05-10 10:10:07 (UTC)                      #\n\
         #                                                              #\n\
         # Terms Of Use: https://urlhaus.abuse.ch/api/                  #\n\
         # For questions please contact urlhaus [at] abuse.ch           #\n\
         ################################################################\n\
         # \n\
         127.0.0.1\t1.top4top.io\n\
         127.0.0.1\tbitbucket-malware.example\n\
         # END 2 entries\n",
        &["1.top4top.io", "bitbucket-malware.example"],
    ),
    (
        "urlhaus-urls",
        "################################################################\n\
         # abuse.ch URLhaus Database Dump (text online)                 #\n\
         # Last updated: 2024-05-10 10:10:03 (UTC)                      #\n\
         #                                                              #\n\
         # Terms Of Use: https://urlhaus.abuse.ch/api/                  #\n\
         # For questions please contact urlhaus [at] abuse.ch           #\n\
         ################################################################\n\
         #\n\
         http://115.55.237.117:49465/Mozi.m\n\
         http://182.121.45.72:43562/bin.sh\n\
         https://dl.malware.example/files/invoice.exe\n",
        &[
            "115.55.237.117:49465/Mozi.m",
            "182.121.45.72:43562/bin.sh",
            "dl.malware.example/files/invoice.exe",
        ],
    ),
    (
        "sslbl-ip",
        "################################################################\n\
         # abuse.ch SSLBL Botnet C2 IP Blacklist                        #\n\
         # Last updated: 2024-05-10 10:09:11 UTC                        #\n\
         #                                                              #\n\
         # Terms Of Use: https://sslbl.abuse.ch/blacklist/              #\n\
         # For questions please contact sslbl [at] abuse.ch             #\n\
         ################################################################\n\
         #\n\
         # DstIP\n\
         91.92.254.14\n\
         185.196.9.36\n",
        &["91.92.254.14", "185.196.9.36"],
    ),
    (
        "sslbl-certs",
        "################################################################\n\
         # abuse.ch SSLBL SSL Certificate Blacklist (SHA1 Fingerprints) #\n\
         # Last updated: 2024-05-10 10:07:31 UTC                        #\n\
         #                                                              #\n\
         # Terms Of Use: https://sslbl.abuse.ch/blacklist/              #\n\
         # For questions please contact sslbl [at] abuse.ch             #\n\
         ################################################################\n\
         #\n\
         # Listingdate,SHA1,Listingreason\n\
         2024-05-10 06:09:58,057b2084f877c8737e60de6c07ad829ea411b9c6,Vidar C&C\n\
         2024-05-09 14:22:10,9a1e2c3d4b5f60718293a4b5c6d7e8f901122334,AsyncRAT C&C\n",
        &[
            "057b2084f877c8737e60de6c07ad829ea411b9c6 => Vidar C&C",
            "9a1e2c3d4b5f60718293a4b5c6d7e8f901122334 => AsyncRAT C&C",
        ],
    ),
    (
        "threatfox-hosts",
        "################################################################\n\
         # ThreatFox IOCs: Hostfile                                     #\n\
         # Last updated: 2024-05-10 10:05:12 UTC                        #\n\
         #                                                              #\n\
         # Terms Of Use: https://threatfox.abuse.ch/faq/#tos            #\n\
         # For questions please contact threatfox [at] abuse.ch         #\n\
         ################################################################\n\
         #\n\
         127.0.0.1\tdns.exe-gadgetpoint.example\n\
         127.0.0.1\tc2.panel-login.example\n",
        &["dns.exe-gadgetpoint.example", "c2.panel-login.example"],
    ),
    (
        "threatfox-ip-port",
        // ThreatFox separates fields with `", "` (a blank after each comma) and quotes
        // every field; aliases hold commas.
        "################################################################\n\
         # ThreatFox IOCs: CSV export                                   #\n\
         # Last updated: 2024-07-16 05:30:12 UTC                        #\n\
         #                                                              #\n\
         # Terms Of Use: https://threatfox.abuse.ch/faq/#tos            #\n\
         # For questions please contact threatfox [at] abuse.ch         #\n\
         ################################################################\n\
         #\n\
         # \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\",\"threat_type\",\"fk_malware\",\"malware_alias\",\"malware_printable\",\"last_seen_utc\",\"confidence_level\",\"reference\",\"tags\",\"anonymous\",\"reporter\"\n\
         \"2024-07-16 05:25:36\", \"1301610\", \"8.134.12.90:7777\", \"ip:port\", \"botnet_cc\", \"win.cobalt_strike\", \"Agentemis,BEACON,CobaltStrike,cobeacon\", \"Cobalt Strike\", \"\", \"100\", \"None\", \"CobaltStrike,cs-watermark-987654321\", \"0\", \"abuse_ch\"\n\
         \"2024-07-16 05:20:01\", \"1301601\", \"45.95.169.132:2404\", \"ip:port\", \"botnet_cc\", \"win.remcos\", \"RemcosRAT,Remvio,Socmer\", \"Remcos\", \"\", \"75\", \"https://bazaar.abuse.ch/sample/d5a6/\", \"RemcosRAT\", \"0\", \"abuse_ch\"\n\
         # Number of entries: 2\n",
        &[
            "8.134.12.90:7777 => Cobalt Strike",
            "45.95.169.132:2404 => Remcos",
        ],
    ),
    (
        "c2-tracker",
        "45.61.136.46\n103.179.188.23\n2a0e:97c0:3e3:6d5::1\n",
        &["45.61.136.46", "103.179.188.23", "2a0e:97c0:3e3:6d5::1"],
    ),
    (
        "viriback",
        "Family,URL,IP,FirstSeen\n\
         AgentTesla,http://panel.malware.example/webpanel/login.php,45.137.22.163,2024-05-10\n\
         Lokibot,https://loki.malware.example/five/fre.php,172.67.146.80,2024-05-09\n",
        &[
            "panel.malware.example/webpanel/login.php => AgentTesla",
            "loki.malware.example/five/fre.php => Lokibot",
        ],
    ),
    (
        "botvrij-domains",
        "adobe-update.malware.example\nmicrosoft-office365.phish.example\n",
        &[
            "adobe-update.malware.example",
            "microsoft-office365.phish.example",
        ],
    ),
    (
        "botvrij-ips",
        "5.188.86.172\n185.141.63.120\n",
        &["5.188.86.172", "185.141.63.120"],
    ),
    (
        "blackbook",
        "Domain,Malware,Date added,Source\n\
         gracebytry.tk,lokibot,2018-12-13,CyberCrime\n\
         sbfurniture-bd.com,emotet,2018-12-13,URLhaus\n",
        &["gracebytry.tk => lokibot", "sbfurniture-bd.com => emotet"],
    ),
    (
        "minerchk",
        "coinhive.com\ncoin-hive.com\nminero.cc\n",
        &["coinhive.com", "coin-hive.com", "minero.cc"],
    ),
    (
        "openphish",
        "https://secure-login.phish.example/signin/\n\
         http://203.0.113.7/paypal/webapps/mpp/\n\
         https://ipfs.io/ipfs/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi\n",
        &[
            "secure-login.phish.example/signin",
            "203.0.113.7/paypal/webapps/mpp",
            "ipfs.io/ipfs/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
        ],
    ),
    (
        "maltrail-static",
        "# Maltrail static trails (trail,info,reference)\n\
         gracebytry.tk,lokibot (malware),abuse.ch\n\
         185.141.63.120,\"cobalt strike, beacon (malware)\",(static)\n",
        &[
            "gracebytry.tk => lokibot (malware)",
            "185.141.63.120 => cobalt strike, beacon (malware)",
        ],
    ),
    (
        "maltrail-ua",
        "# Copyright (c) 2014-2026 Maltrail developers (https://github.com/stamparm/maltrail/)\n\
         # See the file 'LICENSE' for copying permission\n\
         \n\
         # Suspicious user-agent regular expressions\n\
         \n\
         # Reference: https://rules.emergingthreats.net/\n\
         \n\
         \\(\\) { :;\n\
         2search\n\
         \\A\\w{1,2}\\Z\n\
         \\Aaccess\\b\n\
         acunetix\n",
        &[
            r"\(\) \{ :;",
            "2search",
            r"\A\w{1,2}\z",
            r"\Aaccess\b",
            "acunetix",
        ],
    ),
    (
        "maltrail-whitelist",
        "# Copyright (c) 2014-2026 Maltrail developers (https://github.com/stamparm/maltrail/)\n\
         # See the file 'LICENSE' for copying permission\n\
         \n\
         # Reference: https://www.alexa.com/topsites\n\
         google.com\n\
         localhost\n\
         8.8.8.8\n\
         192.168.0.0/16\n",
        &["google.com", "localhost", "8.8.8.8", "192.168.0.0/16"],
    ),
    (
        "spamhaus-drop",
        "; Spamhaus DROP List 2024/05/10 - (c) 2024 The Spamhaus Project SLU\n\
         ; https://www.spamhaus.org/drop/drop.txt\n\
         ; Last-Modified: Fri, 10 May 2024 08:22:13 GMT\n\
         ; Expires: Fri, 10 May 2024 10:47:38 GMT\n\
         1.10.16.0/20 ; SBL256894\n\
         1.19.0.0/16 ; SBL434604\n\
         2.56.192.0/22 ; SBL459831\n",
        &["1.10.16.0/20", "1.19.0.0/16", "2.56.192.0/22"],
    ),
    (
        "spamhaus-drop-v6",
        "; Spamhaus DROPv6 List 2024/05/10 - (c) 2024 The Spamhaus Project SLU\n\
         ; https://www.spamhaus.org/drop/dropv6.txt\n\
         ; Last-Modified: Fri, 10 May 2024 08:22:13 GMT\n\
         ; Expires: Fri, 10 May 2024 10:47:38 GMT\n\
         2001:67c:2d4::/48 ; SBL655433\n\
         2a06:e480::/29 ; SBL303641\n",
        &["2001:67c:2d4::/48", "2a06:e480::/29"],
    ),
    (
        "tor-exits",
        "185.220.101.1\n171.25.193.77\n2001:67c:e60:c0c:192:42:116:16\n",
        &[
            "185.220.101.1",
            "171.25.193.77",
            "2001:67c:e60:c0c:192:42:116:16",
        ],
    ),
    (
        "et-compromised",
        "1.12.231.30\n1.13.102.152\n1.15.143.216\n",
        &["1.12.231.30", "1.13.102.152", "1.15.143.216"],
    ),
    (
        "et-block",
        "#\n\
         # Emerging Threats - Fwrules\n\
         #\n\
         # Rules created 2024-05-10\n\
         #\n\
         # Feodo Tracker\n\
         162.243.103.246\n\
         #\n\
         # Spamhaus DROP Nets\n\
         1.10.16.0/20\n\
         #\n\
         # Dshield Top Attackers\n\
         45.148.10.0/24\n",
        &["162.243.103.246", "1.10.16.0/20", "45.148.10.0/24"],
    ),
    (
        "cins-army",
        "1.0.134.254\n1.1.168.96\n1.4.171.55\n",
        &["1.0.134.254", "1.1.168.96", "1.4.171.55"],
    ),
    (
        "dshield-block",
        "#\n# dshield\n#\n# ipv4 hash:net ipset\n#\n# DShield.org top 20 attacking class C (/24)\n\
         # subnets over the last three days\n#\n# Source URL: http://feeds.dshield.org/block.txt\n\
         #\n45.148.10.0/24\n80.94.92.0/24\n",
        &["45.148.10.0/24", "80.94.92.0/24"],
    ),
    (
        "dshield-top1000",
        "#\n# dshield_top_1000\n#\n# ipv4 hash:ip ipset\n#\n# DShield.org top 1000 attacking IPs\n\
         #\n# Maintainer      : DShield.org\n#\n218.92.0.112\n61.177.172.140\n",
        &["218.92.0.112", "61.177.172.140"],
    ),
    (
        "blocklist-de",
        "1.0.171.2\n1.1.195.201\n2001:41d0:a:2f6c::1\n",
        &["1.0.171.2", "1.1.195.201", "2001:41d0:a:2f6c::1"],
    ),
    (
        "greensnow",
        "1.12.231.30\n1.14.130.36\n",
        &["1.12.231.30", "1.14.130.36"],
    ),
    (
        "binarydefense",
        "# Binary Defense Systems Artillery Threat Intelligence Feed and Banlist Feed\n\
         # https://www.binarydefense.com\n\
         #\n\
         # Note that this is for public use only.\n\
         # The ATIF feed may not be used for commercial resale or in products that are charging fees for such services.\n\
         # Use of these feeds for commerical (having others pay for a service) use is strictly prohibited.\n\
         #\n\
         1.12.231.30\n\
         1.13.102.152\n",
        &["1.12.231.30", "1.13.102.152"],
    ),
    (
        "bruteforceblocker",
        "# IP\t\t# Last Reported\t\t\tCount\tID\n\
         1.12.231.30\t\t# 2024-05-10 04:47:48\t\t1\t1234567\n\
         61.177.172.140\t\t# 2024-05-10 05:11:02\t\t12\t1234568\n",
        &["1.12.231.30", "61.177.172.140"],
    ),
    (
        "dataplane-sshpwauth",
        DATAPLANE_SAMPLE,
        &["36.64.218.5", "218.92.0.112"],
    ),
    (
        "dataplane-sshclient",
        DATAPLANE_SAMPLE,
        &["36.64.218.5", "218.92.0.112"],
    ),
    (
        "dataplane-vncrfb",
        DATAPLANE_SAMPLE,
        &["36.64.218.5", "218.92.0.112"],
    ),
    (
        "dataplane-sipinvitation",
        DATAPLANE_SAMPLE,
        &["36.64.218.5", "218.92.0.112"],
    ),
    (
        "dataplane-dnsrd",
        DATAPLANE_SAMPLE,
        &["36.64.218.5", "218.92.0.112"],
    ),
    (
        "turris-greylist",
        "# For the terms of use see https://view.sentinel.turris.cz/greylist-data/LICENSE.txt\n\
         Address,Tags\n\
         1.0.149.100,telnet\n\
         1.1.198.34,\"ftp,http,telnet\"\n",
        &["1.0.149.100", "1.1.198.34"],
    ),
    (
        "ipsum",
        "# IPsum Threat Intelligence Feed\n\
         # (https://github.com/stamparm/ipsum)\n\
         #\n\
         # Last update: Fri, 10 May 2024 03:01:38 +0200\n\
         #\n\
         # IP\tnumber of (black)lists\n\
         #\n\
         218.92.0.112\t10\n\
         61.177.172.140\t3\n\
         1.12.231.30\t2\n",
        &["218.92.0.112", "61.177.172.140"],
    ),
    (
        "firehol-level1",
        "#\n# firehol_level1\n#\n# ipv4 hash:net ipset\n#\n# A firewall blacklist composed from IP lists\n\
         #\n# Source URL: https://iplists.firehol.org/files/firehol_level1.netset\n#\n\
         0.0.0.0/8\n1.10.16.0/20\n162.243.103.246\n",
        &["0.0.0.0/8", "1.10.16.0/20", "162.243.103.246"],
    ),
    (
        "firehol-level2",
        "#\n# firehol_level2\n#\n# ipv4 hash:net ipset\n#\n1.0.171.2\n2.56.192.0/22\n",
        &["1.0.171.2", "2.56.192.0/22"],
    ),
    (
        "firehol-level3",
        "#\n# firehol_level3\n#\n# ipv4 hash:net ipset\n#\n1.12.231.30\n45.148.10.0/24\n",
        &["1.12.231.30", "45.148.10.0/24"],
    ),
    (
        "firehol-abusers-1d",
        "#\n# firehol_abusers_1d\n#\n# ipv4 hash:net ipset\n#\n1.0.134.254\n5.188.86.0/24\n",
        &["1.0.134.254", "5.188.86.0/24"],
    ),
    (
        "sblam",
        "# HTTP spam sources identified by http://sblam.com.\n\
         # Generated 2024-05-10 12:00:01\n\
         # This is a list of HTML form (comment) spammers--not for blocking e-mail spam!\n\
         1.12.231.30\n\
         5.188.62.140\n",
        &["1.12.231.30", "5.188.62.140"],
    ),
    (
        "myip-blacklist",
        "# Myip.ms IP Blacklist - https://myip.ms/browse/blacklist/\n\
         # Format: IP Address   # Date added, Host, Country, Web Site Ids\n\
         #\n\
         1.0.164.91\t\t\t# 2024-05-09, node-1d3.pool.example, THA, 1\n\
         2001:41d0:2:e1ce::\t\t# 2024-05-08, ns123.ip.example, FRA, 9\n",
        &["1.0.164.91", "2001:41d0:2:e1ce::"],
    ),
];

/// DataPlane.org's layout, the same for each of its lists.
const DATAPLANE_SAMPLE: &str = "#\n\
# ASN\t\t|  ASname\t\t\t\t|  ipaddr\t\t|  lastseen\t\t\t|  category\n\
#\n\
# DataPlane.org is a community-powered Internet data, feeds, and measurement resource\n\
# for operators, by operators.  We provide reliable and trustworthy service at no cost.\n\
#\n\
7713   |  TELKOMNET-AS-AP PT Telekomunikasi Indonesia, ID  |  36.64.218.5      |  2024-05-10 06:42:11  |  sshpwauth\n\
4134   |  CHINANET-BACKBONE No.31,Jin-rong Street, CN  |  218.92.0.112     |  2024-05-10 07:01:56  |  sshpwauth\n";

fn parse(feed: &CatalogFeed, text: &str) -> (Vec<Record>, ParseReport) {
    let mut report = ParseReport::default();
    let mut records = Vec::new();
    let mut push = |r: Record| records.push(r);
    let mut sink = Sink::new(&mut report, &mut push);
    parse_text(&feed.format, text, Path::new(feed.name), &mut sink);
    (records, report)
}

fn shown(record: &Record) -> String {
    match &record.info {
        Some(info) => format!("{} => {info}", record.indicator),
        None => record.indicator.to_string(),
    }
}

#[test]
fn every_catalog_feed_has_a_sample() {
    let missing: Vec<&str> = catalog::builtin()
        .iter()
        .map(|f| f.name)
        .filter(|name| !SAMPLES.iter().any(|(n, _, _)| n == name))
        .collect();
    assert!(missing.is_empty(), "no sample for: {missing:?}");
    for (name, _, _) in SAMPLES {
        assert!(
            catalog::find(name).is_some(),
            "sample for unknown feed {name}"
        );
    }
}

#[test]
fn samples_parse_to_the_expected_trails() {
    let mut failures = Vec::new();
    for (name, text, expected) in SAMPLES {
        let feed = catalog::find(name).unwrap();
        let (records, report) = parse(&feed, text);
        let got: Vec<String> = records.iter().map(shown).collect();
        if report.malformed_count != 0 || got != *expected {
            failures.push(format!(
                "{name}: got {got:?}, malformed {:?}",
                report.malformed
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
