//! Suspicious HTTP requests, by class: injections (SQL, XSS, XXE, LDAP, PHP, template),
//! path traversal, remote code execution (log4shell and its obfuscations included),
//! config-file access, data leakage, DNS changers, scanner probes, open-proxy probes,
//! direct executable downloads and IoT-malware downloads from IP-literal hosts.
//!
//! The URI (and the start of a request body) is normalised first
//! ([`super::unquote::normalize_into`]: repeated percent-decoding, `%uXXXX`, `+`, overlong
//! UTF-8), then matched against one [`RegexSet`] of Spoor's own patterns, compiled once
//! per process ([`RequestClassifier::shared`]) and cloned per worker (a clone has its own
//! match cache). Header values are searched for log4shell lookups and shellshock only
//! when they contain `${` or `() {`. Downloads, traversal above the root and proxy
//! probes are hand-written checks on the path.
//!
//! Cost: an ordinary request with a plain path and no query never enters the regex engine
//! (see [`RequestClassifier::is_plain`]); the rest pay one lazy-DFA pass over the decoded URI. Nothing
//! allocates unless a verdict is returned.

use std::net::IpAddr;
use std::sync::LazyLock;

use memchr::memmem;
use regex::bytes::{Regex, RegexSet, RegexSetBuilder};

use super::content::{ContentConfig, Heuristic, Verdict, evidence};
use super::unquote::{MAX_SUBJECT_LEN, normalize_into};
use crate::proto::http::HttpRequest;

/// Where a pattern applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The decoded URI (path and query).
    Uri,
    /// The decoded URI and the start of the body.
    Any,
}

/// Spoor's request patterns, in priority order: when several classes match, the first
/// listed wins (XXE and PHP before RCE, RCE before traversal, injections before
/// config-file names). Matched case-insensitively, ASCII only, on decoded text.
const PATTERNS: &[(Heuristic, Scope, &str)] = &[
    // --- XXE: an entity declaration pointing outside, or an internal DTD subset.
    (
        Heuristic::Xxe,
        Scope::Any,
        r"<!ENTITY\s+(?:%\s*)?[\w.:-]+\s+(?:SYSTEM|PUBLIC)\b",
    ),
    (
        Heuristic::Xxe,
        Scope::Any,
        r"<!DOCTYPE\s+[\w:.-]+\s*\[\s*<!",
    ),
    // --- PHP code, stream wrappers and php.ini switches (PHP-CGI argument injection).
    (Heuristic::PhpInjection, Scope::Any, r"<\?(?:php\b|=)"),
    (
        Heuristic::PhpInjection,
        Scope::Any,
        r"\b(?:php://(?:input|filter|fd|memory|temp)|phar://|expect://|zip://|data://)",
    ),
    (
        Heuristic::PhpInjection,
        Scope::Any,
        r"\b(?:allow_url_include|auto_prepend_file|auto_append_file|disable_functions|open_basedir)\s*=",
    ),
    (
        Heuristic::PhpInjection,
        Scope::Any,
        r"\b(?:eval|assert|system|passthru|shell_exec|popen|proc_open|exec|base64_decode|include|require)(?:_once)?\s*\(\s*\$_(?:GET|POST|REQUEST|COOKIE|SERVER|FILES)\b",
    ),
    (Heuristic::PhpInjection, Scope::Any, r"\bphpinfo\s*\(\s*\)"),
    // --- Remote code execution: a shell command after a separator, download-and-run,
    // interpreters told to run code, Java runtime calls, OGNL, Spring4Shell, shellshock.
    (
        Heuristic::RemoteCodeExecution,
        Scope::Any,
        r"(?:[;|`]|&&|\$\()\s*(?:/(?:usr/)?s?bin/)?(?:cat|wget|curl|bash|sh|zsh|nc|ncat|netcat|telnet|tftp|id|uname|whoami|ping|nslookup|chmod|chown|rm|echo|python[23]?|perl|ruby|busybox|base64|ls|ifconfig|sleep|nohup|cd|mkfifo|mknod|killall)(?:[\s;|&<>$)`]|$)",
    ),
    // A newline before a command: only in the URI (a body may be text with lines).
    (
        Heuristic::RemoteCodeExecution,
        Scope::Uri,
        r"[\n\r]\s*(?:/(?:usr/)?s?bin/)?(?:cat|wget|curl|bash|sh|nc|id|uname|whoami|chmod|rm|echo|busybox)(?:[\s;|&<>$)`]|$)",
    ),
    (
        Heuristic::RemoteCodeExecution,
        Scope::Any,
        r"\b(?:wget|curl|tftp|fetch)\s+(?:-[\w-]+\s+(?:[\w./:-]+\s+)?)*(?:https?|ftp)://",
    ),
    (
        Heuristic::RemoteCodeExecution,
        Scope::Any,
        r"(?:^|[\s;|&(=])(?:/bin/|/usr/bin/)?(?:ba|z|da)?sh\s+-c\s",
    ),
    (
        Heuristic::RemoteCodeExecution,
        Scope::Any,
        r"\bcmd(?:\.exe)?\s+/[ck]\s|\bpowershell(?:\.exe)?\s+-(?:e|enc|encodedcommand|nop|noprofile|w|windowstyle|c|command|exec|executionpolicy)\b",
    ),
    (
        Heuristic::RemoteCodeExecution,
        Scope::Any,
        r"java\.lang\.(?:Runtime|ProcessBuilder)|getRuntime\s*\(\s*\)\s*\.\s*exec|new\s+ProcessBuilder\s*\(",
    ),
    (
        Heuristic::RemoteCodeExecution,
        Scope::Any,
        r"#_memberAccess|@ognl\.OgnlContext|%\{\s*\(?#|\(#[a-z_]+\s*=\s*[@#'(]",
    ),
    (
        Heuristic::RemoteCodeExecution,
        Scope::Any,
        r"class\.module\.classLoader|class\.classLoader\.",
    ),
    (
        Heuristic::RemoteCodeExecution,
        Scope::Any,
        r"\(\s*\)\s*\{[^}]{0,20}\}\s*;|/dev/(?:tcp|udp)/\d",
    ),
    (
        Heuristic::RemoteCodeExecution,
        Scope::Any,
        r"\$\{\s*jndi\s*:",
    ),
    // --- SQL injection.
    (
        Heuristic::SqlInjection,
        Scope::Any,
        r"\bunion\b[\s/*()+]+(?:all[\s/*()+]+|distinct[\s/*()+]+)?\(?\s*select\b",
    ),
    (
        Heuristic::SqlInjection,
        Scope::Any,
        r#"['"`)]\s*(?:or|and|xor|\|\||&&)\s*\(?\s*['"]?[\w@.-]+['"]?\s*(?:=|<>|!=|<=?|>=?|\blike\b|\bis\b|\bregexp\b)\s*\(?['"]?[\w@.-]*"#,
    ),
    (
        Heuristic::SqlInjection,
        Scope::Any,
        r"\b(?:or|and)\s+(\d+)\s*=\s*(\d+)\s*(?:--|#|/\*|;|$)",
    ),
    (
        Heuristic::SqlInjection,
        Scope::Any,
        r#"\w['"`]\s*(?:--|#|/\*|;\s*$)"#,
    ),
    (
        Heuristic::SqlInjection,
        Scope::Any,
        r"\b(?:sleep|benchmark|pg_sleep|dbms_pipe\.receive_message)\s*\(\s*\d|\bwaitfor\s+delay\s+'",
    ),
    (
        Heuristic::SqlInjection,
        Scope::Any,
        r"\b(?:information_schema|mysql\.user|sysobjects|syscolumns|sys\.tables|pg_catalog|pg_shadow|sqlite_master|all_tables|user_tables)\b",
    ),
    (
        Heuristic::SqlInjection,
        Scope::Any,
        r"\b(?:extractvalue|updatexml|load_file|group_concat|make_set)\s*\(|\b(?:char|chr)\s*\(\s*\d+\s*(?:,\s*\d+\s*){2,}\)",
    ),
    (
        Heuristic::SqlInjection,
        Scope::Any,
        r"\bselect\b[^&]{0,100}?[,*@()][^&]{0,100}?\bfrom\b\s*[\w`\x22\[(]|\bselect\s+[\w.]+\s+from\s+[\w.]+\s*(?:where|limit|order|group|--|#|;|$)",
    ),
    (
        Heuristic::SqlInjection,
        Scope::Any,
        r";\s*(?:drop|truncate|alter|create|insert|update|delete|shutdown|declare|exec(?:ute)?)\s+(?:table|database|into|from|@|xp_|master|\w+\s+set\b)|\bxp_cmdshell\b",
    ),
    // --- XSS.
    (
        Heuristic::Xss,
        Scope::Any,
        r"<\s*/?\s*(?:script|iframe|frame|frameset|object|embed|applet|svg|math|base|meta|isindex|marquee|xss)\b",
    ),
    (
        Heuristic::Xss,
        Scope::Any,
        r"<[^>]{0,200}?\bon[a-z]{3,25}\s*=",
    ),
    (
        Heuristic::Xss,
        Scope::Any,
        r"\b(?:javascript|vbscript|livescript)\s*:\s*[\w(/'`]",
    ),
    (
        Heuristic::Xss,
        Scope::Any,
        r"\b(?:alert|prompt|confirm)\s*(?:\(|`)|\bdocument\s*\.\s*(?:cookie|domain|write)\b|\bString\s*\.\s*fromCharCode\b|\beval\s*\(|\bsrcdoc\s*=|\bexpression\s*\(",
    ),
    // --- Template injection.
    (
        Heuristic::TemplateInjection,
        Scope::Any,
        r"\{\{[^}]{0,80}?(?:\d\s*[*+/-]\s*\d|\b(?:config|self|request|cycler|joiner|lipsum|namespace|range|_self|getClass|constructor)\b|__\w+__)[^}]{0,80}\}\}",
    ),
    (
        Heuristic::TemplateInjection,
        Scope::Any,
        r"[$#@*]\{\s*\d+\s*[*+/-]\s*\d+\s*\}|\$\{[^}]{0,80}?(?:T\s*\(\s*java|getClass|\.forName|freemarker|Runtime)|__\$\{|\$\{\{",
    ),
    (
        Heuristic::TemplateInjection,
        Scope::Any,
        r"\{%\s*(?:import|include|set|for|if|print|debug|filter|macro|load)\b[^%]{0,80}%\}|<%=?\s*[^%]{0,80}?(?:\d\s*[*+]\s*\d|system|exec|`|File\.)[^%]{0,80}%>|<#(?:assign|import)\b",
    ),
    // --- LDAP injection.
    (
        Heuristic::LdapInjection,
        Scope::Any,
        r"\*\s*\)\s*\(\s*[|&!]?\s*\(?\s*[\w-]+\s*[=~<>]|\)\s*\(\s*[|&]\s*\(\s*[\w-]+\s*=",
    ),
    (
        Heuristic::LdapInjection,
        Scope::Any,
        r"\(\s*[|&!]\s*\(\s*(?:objectclass|uid|cn|sn|mail|userpassword|samaccountname|ou|dc)\s*=",
    ),
    // --- Path traversal and operating-system files.
    (
        Heuristic::PathTraversal,
        Scope::Any,
        r"(?:\.{2,}[/\\]+){2,}",
    ),
    (
        Heuristic::PathTraversal,
        Scope::Any,
        r"(?:^|[=?&,;:])\s*\.{2,}[/\\]",
    ),
    (
        Heuristic::PathTraversal,
        Scope::Any,
        r"(?:^|[/\\=:])(?:etc[/\\]+(?:passwd|shadow|group|hosts|issue|hostname|sudoers|crontab|fstab|motd)|proc[/\\]+self[/\\]+(?:environ|cmdline|fd|maps|status)|windows[/\\]+(?:win\.ini|system\.ini|system32)|winnt[/\\]|boot\.ini|win\.ini)\b",
    ),
    (
        Heuristic::PathTraversal,
        Scope::Any,
        r"\b(?:file|netdoc):/{2,3}(?:[a-z]:)?[/\\]?\w",
    ),
    // --- A web server's secrets, asked for by name in the path.
    (
        Heuristic::ConfigFileAccess,
        Scope::Uri,
        r"^[^?]*/\.(?:env(?:\.[\w-]+)?|git(?:/|$|config)|svn/(?:entries|wc\.db)|hg/|bzr/|htaccess|htpasswd|ds_store|aws/credentials|ssh/|npmrc|pypirc|netrc|bash_history|zsh_history|mysql_history|docker/config\.json|dockercfg|kube/config|vscode/sftp\.json|idea/)",
    ),
    (
        Heuristic::ConfigFileAccess,
        Scope::Uri,
        r"^[^?]*/(?:wp-config|configuration|config|settings|database|db|localsettings|parameters|credentials|secrets?)\.(?:php|inc|ini|ya?ml|json|xml|conf|cfg|py|rb|js)(?:\.(?:bak|backup|old|orig|save|swp|swo|tmp|txt|dist|sample|1)|~)",
    ),
    (
        Heuristic::ConfigFileAccess,
        Scope::Uri,
        r"^[^?]*/(?:wp-config\.php|web\.config|configuration\.php|localsettings\.php|config\.inc\.php|appsettings\.json|phpinfo\.php|server-status|actuator/(?:env|heapdump|configprops)|id_(?:rsa|dsa|ecdsa|ed25519))(?:$|[?/])",
    ),
    // --- Data leakage: device identifiers or address lists sent out.
    (
        Heuristic::DataLeakage,
        Scope::Uri,
        r"[?&;](?:imei|meid|imsi|iccid)\d?=\d{14,20}(?:[&;]|$)",
    ),
    (
        Heuristic::DataLeakage,
        Scope::Uri,
        r"[?&;](?:mac|mac_?addr(?:ess)?|wlan_?mac)=(?:[0-9a-f]{2}[:-]){5}[0-9a-f]{2}(?:[&;]|$)",
    ),
    (
        Heuristic::DataLeakage,
        Scope::Uri,
        r"(?:[\w.+-]+@[\w-]+\.[\w.-]+[^@]{1,40}?){3}",
    ),
    // --- DNS changer: a request setting DNS servers.
    (
        Heuristic::DnsChanger,
        Scope::Uri,
        r"[?&;](?:dns[12]?|dns_?server[12]?|primary_?dns|secondary_?dns|dns_?primary|dns_?secondary|wan_?dns[12]?|dnsserver|static_?dns[12]?)=\d{1,3}(?:\.\d{1,3}){3}(?:[&;]|$)",
    ),
    // --- Scanner marker paths and out-of-band callback hosts.
    (
        Heuristic::ScannerProbe,
        Scope::Uri,
        r"acunetix|wvs_?(?:test|security)|netsparker|\bappscan|\bnessus|\bopenvas|\bnikto|\bw3af|\barachni|burpcollaborator\.net|\boastify\.com|\binteract\.sh|\boast\.(?:pro|live|site|online|fun|me)\b|\bdnslog\.cn|\bceye\.io|\bxss\.ht\b|\bbxss\.me",
    ),
];

/// File extensions reported when fetched directly by a short name: Windows executables
/// and scripts, Java and Android packages, shell scripts, ELF binaries.
const DOWNLOAD_EXTENSIONS: &[&str] = &[
    "exe", "dll", "scr", "msi", "ps1", "hta", "jar", "apk", "bat", "cmd", "vbs", "vbe", "jse",
    "wsf", "pif", "cpl", "lnk", "chm", "sh", "elf",
];
/// Longest file stem (name without extension) still reported as a direct download:
/// droppers use short names (`1.exe`, `setup.exe`, `a.hta`); vendors name their
/// installers in full (`ChromeSetup.exe`, `Firefox Installer.exe`). Maltrail's rule too.
pub const MAX_DOWNLOAD_STEM_LEN: usize = 9;
/// Path prefixes where an executable name is a program the server runs, not a download.
const SERVER_PROGRAM_DIRS: &[&str] = &["/cgi-bin/", "/cgi/", "/scripts/", "/_vti_bin/"];

/// CPU architectures IoT bots are built for; a file named after one (`mips`, `mirai.arm7`)
/// fetched from an IP-literal host is a bot binary.
const BOT_ARCHES: &[&str] = &[
    "x86", "x86_64", "x64", "i386", "i486", "i586", "i686", "arm", "arm4", "arm5", "arm6", "arm7",
    "armv4l", "armv5l", "armv6l", "armv7l", "aarch64", "arm64", "mips", "mipsel", "mpsl", "mips64",
    "m68k", "ppc", "powerpc", "sparc", "sh4", "spc", "arc", "riscv64",
];
/// Bot family and dropper names seen in IoT infection commands.
const BOT_NAMES: &[&str] = &[
    "mirai", "mozi", "gafgyt", "bashlite", "hajime", "tsunami", "kaiten", "okiru", "sora", "owari",
    "hakai", "yakuza", "katana", "satori", "masuta", "bins", "8usa",
];

/// Deepest nesting of `${...}` lookups evaluated when looking for log4shell.
pub const MAX_LOOKUP_DEPTH: usize = 8;

/// The request facts the classifier reads.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub request: &'a HttpRequest<'a>,
    /// The head as sent (request line and header lines), for header-borne payloads.
    pub head: &'a [u8],
    /// The body octets present in this packet.
    pub body: &'a [u8],
    /// The server's address.
    pub dst: IpAddr,
}

/// Reused buffers (one per worker).
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    subject: Vec<u8>,
    tmp: Vec<u8>,
    lookups: Vec<u8>,
}

/// The compiled request patterns.
#[derive(Debug, Clone)]
pub struct RequestClassifier {
    set: RegexSet,
    /// [`PLAIN_PATH_WORDS`] as one literal search (on the lower-cased path).
    plain_words: Regex,
    /// `${` and `() {` in header values.
    lookup_open: memmem::Finder<'static>,
    function_open: memmem::Finder<'static>,
    /// The same patterns one by one, compiled lazily for the evidence of a verdict.
    singles: Vec<Regex>,
}

static SHARED: LazyLock<RequestClassifier> = LazyLock::new(RequestClassifier::compile);

fn builder<I, S>(patterns: I) -> RegexSetBuilder
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut b = RegexSetBuilder::new(patterns);
    b.case_insensitive(true)
        .unicode(false)
        .multi_line(false)
        .dot_matches_new_line(true)
        .size_limit(32 << 20)
        .dfa_size_limit(8 << 20);
    b
}

impl RequestClassifier {
    fn compile() -> RequestClassifier {
        let set = builder(PATTERNS.iter().map(|p| p.2))
            .build()
            .expect("the built-in request patterns compile");
        let singles = PATTERNS
            .iter()
            .map(|p| {
                regex::bytes::RegexBuilder::new(p.2)
                    .case_insensitive(true)
                    .unicode(false)
                    .dot_matches_new_line(true)
                    .build()
                    .expect("the built-in request patterns compile")
            })
            .collect();
        let plain_words = regex::bytes::RegexBuilder::new(
            &PLAIN_PATH_WORDS
                .iter()
                .map(|w| regex::escape(w))
                .collect::<Vec<_>>()
                .join("|"),
        )
        .unicode(false)
        .build()
        .expect("the plain-path words compile");
        RequestClassifier {
            set,
            plain_words,
            lookup_open: memmem::Finder::new(b"${").into_owned(),
            function_open: memmem::Finder::new(b"() {").into_owned(),
            singles,
        }
    }

    /// The process-wide compiled patterns, cloned: the clone shares the compiled program
    /// and has its own match cache, so workers do not contend.
    pub fn shared() -> RequestClassifier {
        SHARED.clone()
    }

    /// The first suspicious class this request belongs to, if any.
    pub fn classify(
        &self,
        facts: &RequestFacts<'_>,
        config: &ContentConfig,
        scratch: &mut Scratch,
    ) -> Option<Verdict> {
        let req = facts.request;
        let dst_local = is_local(facts.dst);

        // 1. Patterns over the decoded URI, then the body.
        let uri = req.uri;
        if !self.is_plain(uri) {
            normalize_into(uri, false, &mut scratch.subject, &mut scratch.tmp);
            if let Some((h, matched)) =
                self.first_match(&scratch.subject, Scope::Uri, config, dst_local)
            {
                let reason = format!("`{matched}` in the URI");
                return Some(request_verdict(h, &host_text(req), req, None, &reason));
            }
            if let Some(v) = self.lookups(facts, config, scratch, false) {
                return Some(v);
            }
            if config.enabled(Heuristic::PathTraversal)
                && let Some(at) = climbs_above_root(&scratch.subject)
            {
                let matched = evidence(&scratch.subject[..at.min(scratch.subject.len())]);
                return Some(request_verdict(
                    Heuristic::PathTraversal,
                    &host_text(req),
                    req,
                    None,
                    &format!("`..` above the root in {matched}"),
                ));
            }
        }
        let body = &facts.body[..facts.body.len().min(MAX_SUBJECT_LEN)];
        if !body.is_empty() {
            normalize_into(body, true, &mut scratch.subject, &mut scratch.tmp);
            if let Some((h, matched)) =
                self.first_match(&scratch.subject, Scope::Any, config, dst_local)
            {
                let reason = format!("`{matched}` in the body");
                return Some(request_verdict(
                    h,
                    &host_text(req),
                    req,
                    Some(body),
                    &reason,
                ));
            }
            if let Some(v) = self.lookups(facts, config, scratch, true) {
                return Some(v);
            }
        }
        // 2. Header-borne code execution: log4shell lookups, shellshock.
        if let Some(v) = self.header_payload(facts, config, scratch) {
            return Some(v);
        }
        // 3. Requests shaped like probes and downloads.
        if config.enabled(Heuristic::ProxyProbe)
            && let Some(v) = proxy_probe(facts)
        {
            return Some(v);
        }
        let host_bytes = req.host.as_ref().map_or(&b""[..], |h| h.as_bytes());
        let host_is_ip = std::str::from_utf8(host_bytes)
            .is_ok_and(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().is_ok());
        if host_is_ip
            && config.enabled(Heuristic::IotDownload)
            && let Some(name) = bot_download(req.path())
        {
            return Some(request_verdict(
                Heuristic::IotDownload,
                &host_text(req),
                req,
                None,
                &format!("`{name}` fetched from an IP-literal host"),
            ));
        }
        if !dst_local
            && config.enabled(Heuristic::DirectDownload)
            && let Some(ext) = direct_download(req)
        {
            let mut v = request_verdict(
                Heuristic::DirectDownload,
                &host_text(req),
                req,
                None,
                &format!("a .{ext} file fetched directly by a short name"),
            );
            v.info = format!("direct .{ext} download (suspicious)");
            return Some(v);
        }
        None
    }

    /// The first enabled pattern class matching `subject` within `scope`, with the matched
    /// text. Data leakage towards a local server is not reported (as Maltrail).
    fn first_match(
        &self,
        subject: &[u8],
        scope: Scope,
        config: &ContentConfig,
        dst_local: bool,
    ) -> Option<(Heuristic, String)> {
        if !self.set.is_match(subject) {
            return None;
        }
        self.set.matches(subject).into_iter().find_map(|i| {
            let (h, s, _) = PATTERNS[i];
            let in_scope = s == Scope::Any || scope == Scope::Uri;
            let wanted = config.enabled(h) && !(h == Heuristic::DataLeakage && dst_local);
            (in_scope && wanted).then(|| {
                let found = self.singles[i].find(subject);
                (
                    h,
                    found.map_or_else(String::new, |m| evidence(m.as_bytes())),
                )
            })
        })
    }

    /// log4shell in the decoded subject, obfuscated lookups included.
    fn lookups(
        &self,
        facts: &RequestFacts<'_>,
        config: &ContentConfig,
        scratch: &mut Scratch,
        in_body: bool,
    ) -> Option<Verdict> {
        if !config.enabled(Heuristic::RemoteCodeExecution)
            || memmem::find(&scratch.subject, b"${").is_none()
        {
            return None;
        }
        let jndi = log4shell(&scratch.subject, &mut scratch.lookups)?;
        let host = host_text(facts.request);
        let body = in_body.then_some(facts.body);
        Some(request_verdict(
            Heuristic::RemoteCodeExecution,
            &host,
            facts.request,
            body,
            &format!("log4shell lookup {jndi}"),
        ))
    }
}

impl RequestClassifier {
    /// True for a URI that no pattern can match: `/`-separated names of letters, digits,
    /// `-` and `_`, single dots inside names, no query, none of the words the path
    /// patterns look for. `GET /index.html` stops here.
    pub fn is_plain(&self, uri: &[u8]) -> bool {
        plain_shape(uri) && !self.plain_words.is_match(&ascii_lower_prefix(uri))
    }
}

/// The character shape of a plain URI (see [`RequestClassifier::is_plain`]).
fn plain_shape(uri: &[u8]) -> bool {
    let mut prev = b'/';
    for &b in uri {
        let ok = match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => true,
            // A dot starting a name (`/.env`, `/..`) or doubled is not plain.
            b'.' => prev != b'/' && prev != b'.',
            b'/' => true,
            _ => false,
        };
        if !ok {
            return false;
        }
        prev = b;
    }
    true
}

/// Words that make an otherwise plain path worth the regex pass: names of config files,
/// scanners and operating-system files are letters too.
const PLAIN_PATH_WORDS: &[&str] = &[
    "config",
    "settings",
    "database",
    "credentials",
    "secret",
    "parameters",
    "phpinfo",
    "server-status",
    "actuator",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "passwd",
    "shadow",
    "etc/",
    "proc/",
    "win.ini",
    "windows/",
    "winnt",
    "boot.ini",
    "system32",
    "acunetix",
    "wvs",
    "netsparker",
    "appscan",
    "nessus",
    "openvas",
    "nikto",
    "w3af",
    "arachni",
    "db.",
];

/// Lower-cased copy of the first 256 octets, on the stack.
fn ascii_lower_prefix(uri: &[u8]) -> LowerPrefix {
    let mut buf = [0u8; 256];
    let n = uri.len().min(buf.len());
    for (d, s) in buf[..n].iter_mut().zip(&uri[..n]) {
        *d = s.to_ascii_lowercase();
    }
    LowerPrefix { buf, len: n }
}

struct LowerPrefix {
    buf: [u8; 256],
    len: usize,
}

impl std::ops::Deref for LowerPrefix {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The host as text (lower-cased, port stripped), or the destination-less empty string.
fn host_text(req: &HttpRequest<'_>) -> String {
    req.host
        .as_ref()
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// Maltrail's trail for a request: `host(uri)`, or `host(uri \(METHOD body\))` when the
/// body carried it. Spaces are shown as `%20`, as Maltrail writes them.
fn request_verdict(
    h: Heuristic,
    host: &str,
    req: &HttpRequest<'_>,
    body: Option<&[u8]>,
    reason: &str,
) -> Verdict {
    let uri = String::from_utf8_lossy(req.uri);
    let trail = match body {
        None => format!("{host}({uri})"),
        Some(body) => {
            let body = evidence(body.trim_ascii()).replace(' ', "%20");
            format!("{host}({uri} \\({} {body}\\))", req.method)
        }
    };
    Verdict {
        heuristic: h,
        trail,
        info: format!("{} (suspicious)", h.label()),
        reason: reason.to_string(),
    }
}

/// Offset just past a `..` segment that climbs above the root of the path, if any.
/// Clients normalise dot segments before sending (RFC 3986 §5.2.4); a raw `/../` at the
/// top is a traversal attempt.
fn climbs_above_root(subject: &[u8]) -> Option<usize> {
    let path_end = subject
        .iter()
        .position(|&b| b == b'?')
        .unwrap_or(subject.len());
    let path = &subject[..path_end];
    let mut depth: usize = 0;
    let mut start = 0;
    for i in 0..=path.len() {
        if i == path.len() || path[i] == b'/' || path[i] == b'\\' {
            match &path[start..i] {
                b"" | b"." => {}
                b".." => {
                    if depth == 0 {
                        return Some(i);
                    }
                    depth -= 1;
                }
                _ => depth += 1,
            }
            start = i + 1;
        }
    }
    None
}

/// log4shell: evaluates `${...}` lookups the way Log4j would resolve their names
/// (`${lower:j}`, `${::-n}`, `${env:X:-d}`, `${upper:ı}`) and looks for `jndi:`.
/// Returns the evaluated lookup as evidence.
fn log4shell(subject: &[u8], out: &mut Vec<u8>) -> Option<String> {
    out.clear();
    eval_lookups(subject, 0, out);
    let lower: Vec<u8> = out.iter().map(u8::to_ascii_lowercase).collect();
    let at = memmem::find(&lower, b"${jndi:")?;
    Some(evidence(&out[at..out.len().min(at + 80)]))
}

/// Copies `input` into `out`, replacing each `${...}` by what it resolves to.
fn eval_lookups(input: &[u8], depth: usize, out: &mut Vec<u8>) {
    let mut i = 0;
    while i < input.len() && out.len() < MAX_SUBJECT_LEN {
        if input[i] == b'$' && input.get(i + 1) == Some(&b'{') && depth < MAX_LOOKUP_DEPTH {
            let Some(end) = closing_brace(&input[i + 2..]) else {
                out.extend_from_slice(&input[i..]);
                return;
            };
            let mut inner = Vec::new();
            eval_lookups(&input[i + 2..i + 2 + end], depth + 1, &mut inner);
            resolve_lookup(&inner, out);
            i += 2 + end + 1;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
}

/// Offset of the `}` closing a lookup whose body starts at `s[0]`, nesting counted.
fn closing_brace(s: &[u8]) -> Option<usize> {
    let mut level = 0usize;
    for (i, &b) in s.iter().enumerate() {
        match b {
            b'{' => level += 1,
            b'}' if level == 0 => return Some(i),
            b'}' => level -= 1,
            _ => {}
        }
    }
    None
}

/// What one evaluated lookup body becomes.
fn resolve_lookup(body: &[u8], out: &mut Vec<u8>) {
    let lower: Vec<u8> = body.iter().map(u8::to_ascii_lowercase).collect();
    if lower.starts_with(b"jndi:") {
        out.extend_from_slice(b"${");
        out.extend_from_slice(body);
        out.push(b'}');
    } else if let Some(at) = memmem::find(body, b":-") {
        // `${prefix:name:-default}` resolves to the default when the name is unknown.
        out.extend_from_slice(&body[at + 2..]);
    } else if let Some(rest) = lower.strip_prefix(b"date:") {
        // `${date:'j'}` formats a quoted literal: the letter itself.
        let rest = &body[body.len() - rest.len()..];
        let quoted = rest.strip_prefix(b"'").and_then(|r| r.strip_suffix(b"'"));
        out.extend_from_slice(quoted.unwrap_or(b""));
    } else if let Some(rest) = lower.strip_prefix(b"lower:") {
        let text = String::from_utf8_lossy(&body[body.len() - rest.len()..]).to_lowercase();
        out.extend_from_slice(text.as_bytes());
    } else if let Some(rest) = lower.strip_prefix(b"upper:") {
        let text = String::from_utf8_lossy(&body[body.len() - rest.len()..]).to_uppercase();
        out.extend_from_slice(text.as_bytes());
    }
    // Other lookups (`${env:USER}`, `${date:...}`) resolve to values we cannot know.
}

impl RequestClassifier {
    /// log4shell and shellshock in header values (`User-Agent`, `X-Api-Version`, `Referer`...).
    fn header_payload(
        &self,
        facts: &RequestFacts<'_>,
        config: &ContentConfig,
        scratch: &mut Scratch,
    ) -> Option<Verdict> {
        if !config.enabled(Heuristic::RemoteCodeExecution) {
            return None;
        }
        // The request line was handled with the URI; headers start after it.
        let head = facts.head;
        let first_lf = memchr::memchr(b'\n', head)?;
        let headers = &head[first_lf + 1..head.len().min(first_lf + 1 + MAX_SUBJECT_LEN)];
        let lookup = self.lookup_open.find(headers).is_some();
        let shellshock = self.function_open.find(headers).is_some();
        if !lookup && !shellshock {
            return None;
        }
        for (name, value) in facts.request.headers() {
            let name = String::from_utf8_lossy(name);
            let found = if shellshock && is_shellshock(value) {
                Some(format!("shellshock function definition in {name}"))
            } else if lookup && memmem::find(value, b"${").is_some() {
                log4shell(value, &mut scratch.lookups)
                    .map(|j| format!("log4shell lookup {j} in {name}"))
            } else {
                None
            };
            if let Some(reason) = found {
                let uri = String::from_utf8_lossy(facts.request.uri);
                let host = host_text(facts.request);
                return Some(Verdict {
                    heuristic: Heuristic::RemoteCodeExecution,
                    trail: format!("{host}({uri})"),
                    info: format!("{} (suspicious)", Heuristic::RemoteCodeExecution.label()),
                    reason,
                });
            }
        }
        None
    }
}

/// `() {` opening a header value: bash function import (CVE-2014-6271).
fn is_shellshock(value: &[u8]) -> bool {
    let v = value.trim_ascii_start();
    let Some(rest) = v.strip_prefix(b"(") else {
        return false;
    };
    let rest = rest.trim_ascii_start();
    let Some(rest) = rest.strip_prefix(b")") else {
        return false;
    };
    rest.trim_ascii_start().starts_with(b"{")
}

/// An absolute-form request to a public address for a host that address does not claim
/// to serve: open-proxy hunting. Real proxy clients repeat the target host in `Host`.
fn proxy_probe(facts: &RequestFacts<'_>) -> Option<Verdict> {
    let req = facts.request;
    // Origin-form targets (`/path`) are the ordinary case.
    if req.target.first() == Some(&b'/') || req.method == "CONNECT" || is_local(facts.dst) {
        return None;
    }
    let target = req.target;
    let scheme_end = memmem::find(target, b"://")?;
    if !target[..scheme_end].eq_ignore_ascii_case(b"http")
        && !target[..scheme_end].eq_ignore_ascii_case(b"https")
    {
        return None;
    }
    let target_host = req.host.as_ref()?.as_bytes();
    let header_host = req.header("host").map(|h| {
        let h = h.trim_ascii();
        match h.iter().rposition(|&b| b == b':') {
            Some(c) if !h.starts_with(b"[") => &h[..c],
            _ => h,
        }
    });
    if header_host.is_some_and(|h| h.eq_ignore_ascii_case(target_host)) {
        return None;
    }
    let target_text = String::from_utf8_lossy(target).into_owned();
    let shown = header_host.map_or_else(
        || "no Host header".to_string(),
        |h| format!("Host `{}`", String::from_utf8_lossy(h)),
    );
    Some(Verdict {
        heuristic: Heuristic::ProxyProbe,
        trail: target_text.clone(),
        info: format!("{} (suspicious)", Heuristic::ProxyProbe.label()),
        reason: format!(
            "absolute-form request for {} to public address {} with {shown}",
            evidence(target),
            facts.dst
        ),
    })
}

/// The last path segment when it names a bot binary or dropper: an architecture
/// (`mips`, `x86`), `name.arch` (`mirai.arm7`), a bot family, anything under `/bins/`,
/// or a shell script.
fn bot_download(path: &[u8]) -> Option<String> {
    let under_bins = memmem::find(path, b"/bins/").is_some();
    let last = ascii_lower_prefix(last_segment(path));
    let last: &[u8] = &last;
    if last.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(last).into_owned();
    let (stem, ext) = match last.iter().rposition(|&b| b == b'.') {
        Some(dot) if dot > 0 => (&last[..dot], Some(&last[dot + 1..])),
        _ => (last, None),
    };
    let is = |list: &[&str], s: &[u8]| list.iter().any(|w| w.as_bytes() == s);
    let arch = is(BOT_ARCHES, stem) || ext.is_some_and(|e| is(BOT_ARCHES, e));
    // `mirai`, `mozi.m`, `sora-x`, but not `robins`.
    let family = BOT_NAMES.iter().any(|n| {
        stem.strip_prefix(n.as_bytes())
            .is_some_and(|rest| rest.first().is_none_or(|b| !b.is_ascii_alphabetic()))
    });
    let script = ext == Some(b"sh");
    (under_bins || arch || family || script).then_some(text)
}

/// The extension of a direct executable download (see [`DOWNLOAD_EXTENSIONS`]): a short
/// file name, no parameters, not a server-side program directory.
fn direct_download(req: &HttpRequest<'_>) -> Option<&'static str> {
    let path = req.path();
    let last = last_segment(path);
    let dot = last.iter().rposition(|&b| b == b'.')?;
    let (stem, ext) = (&last[..dot], &last[dot + 1..]);
    if stem.is_empty() || stem.len() > MAX_DOWNLOAD_STEM_LEN {
        return None;
    }
    let ext = DOWNLOAD_EXTENSIONS
        .iter()
        .find(|e| e.as_bytes().eq_ignore_ascii_case(ext))
        .copied()?;
    if req.query().is_some_and(|q| q.contains(&b'='))
        || SERVER_PROGRAM_DIRS.iter().any(|d| {
            path.windows(d.len())
                .any(|w| w.eq_ignore_ascii_case(d.as_bytes()))
        })
    {
        return None;
    }
    Some(ext)
}

/// The last `/`-separated segment of a path.
fn last_segment(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(&[])
}

/// Private, loopback, link-local, CGNAT and unique-local addresses: a local server.
pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_local(IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests;
