//! Feed formats: bytes of a list → indicators.
//!
//! Each format lives in its own file and implements [`TrailFormat`]: a pure function from
//! the text of one file to [`Record`]s, reporting every line it could not use in a
//! [`ParseReport`] (file:line and why) instead of failing. A feed with a thousand good
//! lines and one bad one gives a thousand trails and one counted complaint.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use spoor_core::{Indicator, Severity, TrailKind};

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
/// line the way Maltrail does), `#` comments allowed.
pub fn parse_lines(text: &str, file: &Path, kind: Option<TrailKind>, sink: &mut Sink<'_>) {
    for (n, line) in text.lines().enumerate() {
        let Some(value) = content(line) else { continue };
        let parsed = match kind {
            Some(kind) => Indicator::parse_as(kind, value),
            None => Indicator::parse(value),
        };
        match parsed {
            Ok(ind) => sink.push(Record::new(ind)),
            Err(e) => sink.malformed(file, n + 1, e),
        }
    }
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
/// by the source loader, which calls this for each file.
pub fn parse_text(spec: &FormatSpec, text: &str, file: &Path, sink: &mut Sink<'_>) {
    // Interim: every format is read as a Maltrail-style list until the format parsers land.
    let _ = spec;
    parse_lines(text, file, None, sink);
}
