//! Feed formats: bytes of a list → indicators.
//!
//! Each format lives in its own file and implements [`TrailFormat`]: a pure function from
//! the text of one file to [`Record`]s, reporting every line it could not use in a
//! [`ParseReport`] (file:line and why) instead of failing. A feed with a thousand good
//! lines and one bad one gives a thousand trails and one counted complaint.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use spoor_core::{Indicator, Severity, TrailKind, normalize_domain};

pub mod csv;
pub mod hosts;
pub mod ipset;
pub mod ipsum;
pub mod maltrail;
pub mod maltrail_csv;
pub mod plain;
pub mod suricata;
pub mod tor;
pub mod whitelist;

/// Longest line any format reads. Real trails are far shorter (a URL trail stops at
/// `spoor_core::indicator::MAX_URL_LEN`); a longer line is a binary file or a minified page.
pub const MAX_LINE_LEN: usize = 4096;

/// Only the first malformed lines of a source are kept with their text; the rest are counted.
pub const MAX_REPORTED_MALFORMED: usize = 50;

/// One indicator read from a source, with what that line says about it. `None` fields take
/// the source's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub indicator: Indicator,
    /// Shared: a file's thousands of lines carry the same info.
    pub info: Option<Arc<str>>,
    pub reference: Option<Arc<str>>,
    pub severity: Option<Severity>,
}

impl Record {
    pub fn new(indicator: Indicator) -> Self {
        Record {
            indicator,
            info: None,
            reference: None,
            severity: None,
        }
    }
    pub fn with_info(mut self, info: impl Into<Arc<str>>) -> Self {
        self.info = Some(info.into());
        self
    }
}

/// A line that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub file: PathBuf,
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

/// What parsing one source produced besides its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseReport {
    /// Records handed to the sink.
    pub accepted: u64,
    /// Lines skipped as unusable (all of them, including those not kept below).
    pub malformed_count: u64,
    /// The first [`MAX_REPORTED_MALFORMED`] skipped lines.
    pub malformed: Vec<Malformed>,
}

impl ParseReport {
    pub fn malformed(&mut self, file: &Path, line: usize, reason: impl fmt::Display) {
        self.malformed_count += 1;
        if self.malformed.len() < MAX_REPORTED_MALFORMED {
            self.malformed.push(Malformed {
                file: file.to_path_buf(),
                line,
                reason: reason.to_string(),
            });
        }
    }

    pub fn merge(&mut self, other: ParseReport) {
        self.accepted += other.accepted;
        self.malformed_count += other.malformed_count;
        let room = MAX_REPORTED_MALFORMED.saturating_sub(self.malformed.len());
        self.malformed
            .extend(other.malformed.into_iter().take(room));
    }
}

/// Where parsed records go. Counting happens here so formats cannot forget it.
pub struct Sink<'a> {
    pub report: &'a mut ParseReport,
    out: &'a mut dyn FnMut(Record),
}

impl fmt::Debug for Sink<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink")
            .field("report", &self.report)
            .finish()
    }
}

impl<'a> Sink<'a> {
    pub fn new(report: &'a mut ParseReport, out: &'a mut dyn FnMut(Record)) -> Self {
        Sink { report, out }
    }
    pub fn push(&mut self, record: Record) {
        self.report.accepted += 1;
        (self.out)(record);
    }
    pub fn malformed(&mut self, file: &Path, line: usize, reason: impl fmt::Display) {
        self.report.malformed(file, line, reason);
    }
}

/// One feed format. `file` is only used to name lines in the report.
pub trait TrailFormat {
    fn parse(&self, text: &str, file: &Path, sink: &mut Sink<'_>);
}

/// Strip a trailing `# comment` and surrounding blanks; `None` for blank and comment lines.
pub fn content(line: &str) -> Option<&str> {
    let line = match line.find('#') {
        Some(at) => &line[..at],
        None => line,
    };
    let line = line.trim();
    (!line.is_empty()).then_some(line)
}

/// Parse `text` as a list with one indicator of `kind` per line (`None`: classify each
/// line the way Maltrail does), `#` comments allowed. IP and CIDR lists also take `;`
/// comments (Spamhaus DROP: `1.10.16.0/20 ; SBL256894` under `; ...` headers), since no
/// address contains one.
pub fn parse_lines(text: &str, file: &Path, kind: Option<TrailKind>, sink: &mut Sink<'_>) {
    let semicolon_comments = matches!(kind, Some(TrailKind::Ip | TrailKind::Cidr));
    for (no, line) in numbered_lines(text) {
        let Some(value) = usable_content(line, file, no, sink) else {
            continue;
        };
        let value = match value.split_once(';') {
            Some((before, _)) if semicolon_comments => match before.trim() {
                "" => continue,
                before => before,
            },
            _ => value,
        };
        let parsed = match kind {
            Some(kind) => parse_kind(kind, value),
            None => parse_trail(value),
        };
        match parsed {
            Ok(ind) => sink.push(Record::new(ind)),
            Err(reason) => sink.malformed(file, no, reason),
        }
    }
}

/// The lines of a file with their 1-based numbers. Ends lines at `\n`, `\r\n` and a lone
/// `\r` (old Mac exports and some Suricata reputation files use CR only), and drops a
/// leading byte-order mark.
pub fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut no = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        no += 1;
        let (line, next) = match rest.find(['\n', '\r']) {
            Some(at) => {
                let skip = if rest[at..].starts_with("\r\n") { 2 } else { 1 };
                (&rest[..at], &rest[at + skip..])
            }
            None => (rest, ""),
        };
        rest = next;
        Some((no, line))
    })
}

/// [`content`] plus the length limit: an over-long line is reported and skipped.
pub fn usable_content<'t>(
    line: &'t str,
    file: &Path,
    no: usize,
    sink: &mut Sink<'_>,
) -> Option<&'t str> {
    let value = content(line)?;
    if too_long(value, file, no, sink) {
        return None;
    }
    Some(value)
}

/// Report `value` if it is longer than [`MAX_LINE_LEN`]; true when it was.
pub fn too_long(value: &str, file: &Path, no: usize, sink: &mut Sink<'_>) -> bool {
    let long = value.len() > MAX_LINE_LEN;
    if long {
        sink.malformed(
            file,
            no,
            format_args!(
                "line is {} bytes long; the longest accepted is {MAX_LINE_LEN}",
                value.len()
            ),
        );
    }
    long
}

/// A trail classified the Maltrail way, with the checks the core parser leaves to feed
/// readers (see [`check_plausible`]).
pub fn parse_trail(value: &str) -> Result<Indicator, String> {
    let ind = Indicator::parse(value).map_err(|e| e.to_string())?;
    check_plausible(&ind)?;
    Ok(ind)
}

/// A trail of a known kind. A domain list line that is an IP address is refused: the
/// domain parser alone would take `1.2.3.4` as a four-label name.
pub fn parse_kind(kind: TrailKind, value: &str) -> Result<Indicator, String> {
    if kind == TrailKind::Domain && value.trim().parse::<IpAddr>().is_ok() {
        return Err(format!(
            "`{}` is an IP address, not a domain name",
            value.trim()
        ));
    }
    let value = match kind {
        TrailKind::UserAgent => python_regex_compat(value),
        _ => Cow::Borrowed(value),
    };
    let ind = Indicator::parse_as(kind, &value).map_err(|e| e.to_string())?;
    check_plausible(&ind)?;
    Ok(ind)
}

/// A pattern written for Python's `re` (Maltrail's `ua.txt`) in the syntax of Rust's
/// `regex`, for the two Python habits Rust refuses: `\Z` (end of text, Rust's `\z`) and
/// a `{` that does not start a repetition (`\(\) { :;`, Python reads it as a literal).
/// `{,n}` becomes `{0,n}`. Patterns without these are returned as they are.
pub fn python_regex_compat(pattern: &str) -> Cow<'_, str> {
    if !pattern.contains("\\Z") && !pattern.contains('{') {
        return Cow::Borrowed(pattern);
    }
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, 'Z')) => out.push_str("\\z"),
                Some((_, next)) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '{' if !is_repetition(&pattern[at + 1..]) => out.push_str("\\{"),
            // `{,n}`: Python's 0 to n.
            '{' if pattern[at + 1..].starts_with(',') => out.push_str("{0"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// True if `rest` (what follows a `{`) is `m}`, `m,}`, `m,n}` or `,n}`.
fn is_repetition(rest: &str) -> bool {
    let Some((inner, _)) = rest.split_once('}') else {
        return false;
    };
    let (min, max) = inner.split_once(',').unwrap_or((inner, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    !inner.is_empty() && digits(min) && digits(max) && (min.len() + max.len()) > 0
}

/// Reject what `Indicator::parse` lets through but no feed means: a URL whose host is not
/// a name or address (`</html>`, `<a href=x/y>`), a pattern that does not compile, text
/// with U+FFFD (bytes that were not UTF-8, replaced when the file was decoded).
pub fn check_plausible(ind: &Indicator) -> Result<(), String> {
    if let Indicator::Domain(s)
    | Indicator::Url(s)
    | Indicator::Path(s)
    | Indicator::Wildcard(s)
    | Indicator::UserAgent(s) = ind
        && s.contains(char::REPLACEMENT_CHARACTER)
    {
        return Err(format!("`{s}` contains bytes that are not UTF-8"));
    }
    match ind {
        Indicator::Url(url) => {
            let host = url.split('/').next().unwrap_or_default();
            if plausible_host(host) {
                Ok(())
            } else {
                Err(format!(
                    "`{url}`: URL host `{host}` is not a domain name or IP address"
                ))
            }
        }
        Indicator::Wildcard(pattern) | Indicator::UserAgent(pattern) => {
            if pattern.chars().any(char::is_control) {
                return Err(format!("`{pattern}` contains control characters"));
            }
            match regex::Regex::new(pattern) {
                Ok(_) => Ok(()),
                Err(_) => Err(format!("invalid regular expression `{pattern}`")),
            }
        }
        _ => Ok(()),
    }
}

/// `name`, `name:port`, `1.2.3.4`, `1.2.3.4:80`, `[v6]`, `[v6]:443`.
fn plausible_host(host: &str) -> bool {
    if let Some(rest) = host.strip_prefix('[') {
        let Some((addr, port)) = rest.split_once(']') else {
            return false;
        };
        return addr.parse::<Ipv6Addr>().is_ok()
            && (port.is_empty() || port.strip_prefix(':').is_some_and(is_port));
    }
    if host.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if is_port(port) => name,
        Some(_) => return false,
        None => host,
    };
    name.parse::<IpAddr>().is_ok() || normalize_domain(name).is_some()
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Column choice for CSV feeds (Blackbook: `Domain,Malware,Date added,Source`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// 0-based column holding the indicator.
    pub column: usize,
    /// 0-based column whose text becomes the trail's info (e.g. the malware family).
    pub info_column: Option<usize>,
    pub delimiter: u8,
    /// Skip the first row.
    pub header: bool,
    /// Kind of the indicator column; `None` classifies each value like a Maltrail trail.
    pub kind: Option<TrailKind>,
}

/// Every supported format, with its options. The config's `format = "..."` names are
/// [`FormatSpec::name`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatSpec {
    /// A Maltrail static/custom trail folder (or one trail file): one indicator per line,
    /// info from the file and folder name (`malware/emotet.txt` → `emotet (malware)`).
    Maltrail,
    /// Maltrail's `trails.csv`: `trail,info,reference`.
    MaltrailCsv,
    /// Domains (with their subdomains), IPs and CIDRs never to be trails.
    Whitelist,
    /// One IP address per line.
    Ip,
    /// One CIDR (or bare address) per line.
    Cidr,
    /// One domain per line.
    Domain,
    /// One URL per line (scheme optional).
    Url,
    /// One user-agent regular expression per line.
    UserAgent,
    /// One JA4 fingerprint per line.
    Ja4,
    /// One certificate SHA-1 per line (hex, colons allowed).
    CertSha1,
    /// FireHOL `.ipset`/`.netset`: IPs and CIDRs with `#` headers.
    Ipset,
    /// A hosts file: `0.0.0.0 evil.example [more names]`.
    Hosts,
    Csv(CsvOptions),
    /// IPsum: `IP<TAB>count`; lines below `min_count` are skipped. A bare IP counts as
    /// listed (the level files carry no count).
    Ipsum {
        min_count: u32,
    },
    /// Suricata IP reputation: `ip,category,score` (score 0..=127); lines below
    /// `min_score` are skipped.
    SuricataIprep {
        min_score: u8,
    },
    /// Suricata dataset list: one value per line, plain or base64 (`string` datasets),
    /// of the given kind (domain, url, ip, ua, ja4, cert...).
    SuricataDataset {
        kind: TrailKind,
    },
    /// Tor exit lists: bare IPs, or the `ExitAddress IP date` lines of the exit-addresses file.
    TorExits,
}

impl FormatSpec {
    /// Format names as written in the config.
    pub const NAMES: &'static [&'static str] = &[
        "maltrail",
        "maltrail-csv",
        "whitelist",
        "ip",
        "cidr",
        "domain",
        "url",
        "ua",
        "ja4",
        "cert-sha1",
        "ipset",
        "hosts",
        "csv",
        "ipsum",
        "suricata-iprep",
        "suricata-dataset",
        "tor-exits",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            FormatSpec::Maltrail => "maltrail",
            FormatSpec::MaltrailCsv => "maltrail-csv",
            FormatSpec::Whitelist => "whitelist",
            FormatSpec::Ip => "ip",
            FormatSpec::Cidr => "cidr",
            FormatSpec::Domain => "domain",
            FormatSpec::Url => "url",
            FormatSpec::UserAgent => "ua",
            FormatSpec::Ja4 => "ja4",
            FormatSpec::CertSha1 => "cert-sha1",
            FormatSpec::Ipset => "ipset",
            FormatSpec::Hosts => "hosts",
            FormatSpec::Csv(_) => "csv",
            FormatSpec::Ipsum { .. } => "ipsum",
            FormatSpec::SuricataIprep { .. } => "suricata-iprep",
            FormatSpec::SuricataDataset { .. } => "suricata-dataset",
            FormatSpec::TorExits => "tor-exits",
        }
    }

    /// True for a whitelist source: its records exempt, they never alert.
    pub fn is_whitelist(&self) -> bool {
        matches!(self, FormatSpec::Whitelist)
    }
}

/// Parse the text of one file in the given format. Folder formats (`maltrail`) are walked
/// by the source loader ([`crate::source::load_source`]), which calls this for each file; a
/// lone Maltrail file is read as if its folder were the trail root.
pub fn parse_text(spec: &FormatSpec, text: &str, file: &Path, sink: &mut Sink<'_>) {
    match spec {
        FormatSpec::Maltrail => {
            let root = file.parent().unwrap_or(Path::new(""));
            maltrail::parse_file(root, text, file, sink);
        }
        FormatSpec::MaltrailCsv => maltrail_csv::MaltrailTrailsCsv.parse(text, file, sink),
        FormatSpec::Whitelist => whitelist::Whitelist.parse(text, file, sink),
        FormatSpec::Ip => plain::PlainList::new(TrailKind::Ip).parse(text, file, sink),
        FormatSpec::Cidr => plain::PlainList::new(TrailKind::Cidr).parse(text, file, sink),
        FormatSpec::Domain => plain::PlainList::new(TrailKind::Domain).parse(text, file, sink),
        FormatSpec::Url => plain::PlainList::new(TrailKind::Url).parse(text, file, sink),
        FormatSpec::UserAgent => {
            plain::PlainList::new(TrailKind::UserAgent).parse(text, file, sink);
        }
        FormatSpec::Ja4 => plain::PlainList::new(TrailKind::Ja4).parse(text, file, sink),
        FormatSpec::CertSha1 => {
            plain::PlainList::new(TrailKind::CertSha1).parse(text, file, sink);
        }
        FormatSpec::Ipset => ipset::Ipset.parse(text, file, sink),
        FormatSpec::Hosts => hosts::HostsFile.parse(text, file, sink),
        FormatSpec::Csv(options) => csv::CsvColumns::new(options.clone()).parse(text, file, sink),
        FormatSpec::Ipsum { min_count } => ipsum::Ipsum {
            min_count: *min_count,
        }
        .parse(text, file, sink),
        FormatSpec::SuricataIprep { min_score } => suricata::SuricataIprep {
            min_score: *min_score,
        }
        .parse(text, file, sink),
        FormatSpec::SuricataDataset { kind } => {
            suricata::SuricataDataset { kind: *kind }.parse(text, file, sink);
        }
        FormatSpec::TorExits => tor::TorExits.parse(text, file, sink),
    }
}

/// Run `format` over `text` and keep every record (tests).
#[cfg(test)]
pub(crate) fn parse_records(
    format: &dyn TrailFormat,
    text: &str,
    file: &str,
) -> (Vec<Record>, ParseReport) {
    let mut report = ParseReport::default();
    let mut out = Vec::new();
    let mut push = |r| out.push(r);
    let mut sink = Sink::new(&mut report, &mut push);
    format.parse(text, Path::new(file), &mut sink);
    (out, report)
}

/// Run `format` over `text` and keep the indicators (tests).
#[cfg(test)]
pub(crate) fn parse_indicators(
    format: &dyn TrailFormat,
    text: &str,
    file: &str,
) -> (Vec<Indicator>, ParseReport) {
    let (records, report) = parse_records(format, text, file);
    (records.into_iter().map(|r| r.indicator).collect(), report)
}
