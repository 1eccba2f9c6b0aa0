//! Listed indicators sampled from a Maltrail trail folder, for generator configs.
//!
//! This is a small line reader for picking examples, not the feed parser (that lives in
//! `spoor-feeds`): it keeps plain IPv4 addresses, plain domains and `host/path` URLs, and skips
//! comments, IP:port, CIDR, IPv6, regular expressions and path-only lines. Sampling is reservoir
//! sampling with the generator's PRNG over the files in sorted order, so a seed and a folder give
//! the same sample every time.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::dns;
use super::rng::Rng;

/// Listed indicators for [`GeneratorConfig::with_listed`](super::GeneratorConfig::with_listed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListedIndicators {
    pub ips: Vec<Ipv4Addr>,
    pub domains: Vec<String>,
    /// `host/path`, lower-case host, no scheme.
    pub urls: Vec<String>,
}

/// Bytes that mark a trail line as a pattern rather than a literal.
const PATTERN_BYTES: &[u8] = b"\\^$*+?()[]{}|";

#[derive(Debug, PartialEq, Eq)]
enum Line {
    Ip(Ipv4Addr),
    Domain(String),
    Url(String),
}

impl ListedIndicators {
    /// Samples up to `per_kind` distinct IPv4 addresses, domains and URLs from the `*.txt` files
    /// under `dir` (recursively), deterministically for a `seed`.
    pub fn sample_trail_folder(dir: &Path, per_kind: usize, seed: u64) -> io::Result<Self> {
        let mut files = Vec::new();
        collect_txt_files(dir, &mut files)?;
        files.sort();
        let mut rng = Rng::new(seed);
        let mut ips = Reservoir::new(per_kind);
        let mut domains = Reservoir::new(per_kind);
        let mut urls = Reservoir::new(per_kind);
        for file in files {
            let bytes = fs::read(&file)?;
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines() {
                match classify(line) {
                    Some(Line::Ip(ip)) => ips.offer(ip, &mut rng),
                    Some(Line::Domain(d)) => domains.offer(d, &mut rng),
                    Some(Line::Url(u)) => urls.offer(u, &mut rng),
                    None => {}
                }
            }
        }
        Ok(ListedIndicators {
            ips: ips.items,
            domains: domains.items,
            urls: urls.items,
        })
    }
}

fn collect_txt_files(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_txt_files(&path, out)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "txt") {
            out.push(path);
        }
    }
    Ok(())
}

/// Algorithm R over distinct items: every distinct offer is equally likely to be kept (a
/// duplicate of an item already kept is ignored).
#[derive(Debug)]
struct Reservoir<T> {
    items: Vec<T>,
    kept: HashSet<T>,
    seen: u64,
    size: usize,
}

impl<T: Clone + Eq + std::hash::Hash> Reservoir<T> {
    fn new(size: usize) -> Self {
        Reservoir {
            items: Vec::with_capacity(size.min(1 << 16)),
            kept: HashSet::new(),
            seen: 0,
            size,
        }
    }

    fn offer(&mut self, item: T, rng: &mut Rng) {
        if self.size == 0 || self.kept.contains(&item) {
            return;
        }
        self.seen += 1;
        if self.items.len() < self.size {
            self.kept.insert(item.clone());
            self.items.push(item);
            return;
        }
        let slot = rng.below(self.seen) as usize;
        if slot < self.size {
            self.kept.remove(&self.items[slot]);
            self.kept.insert(item.clone());
            self.items[slot] = item;
        }
    }
}

fn classify(line: &str) -> Option<Line> {
    let line = line.split('#').next().unwrap_or("").trim();
    if line.is_empty()
        || line.contains(char::is_whitespace)
        || line.bytes().any(|b| PATTERN_BYTES.contains(&b))
    {
        return None;
    }
    if let Ok(ip) = line.parse::<Ipv4Addr>() {
        return Some(Line::Ip(ip));
    }
    if line.contains('/') {
        let lower = line.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("http://")
            .or_else(|| lower.strip_prefix("https://"))
            .unwrap_or(&lower);
        let (host, path) = rest.split_once('/')?;
        if !is_domain(host) {
            return None; // path-only, CIDR, IP or host:port URLs
        }
        // Keep the path as written (paths are case-sensitive).
        let path_at = line.len() - path.len();
        return Some(Line::Url(format!("{host}/{}", &line[path_at..])));
    }
    let lower = line.to_ascii_lowercase();
    is_domain(&lower).then_some(Line::Domain(lower))
}

/// A host name that a DNS query can carry, not an IP address (numeric last label).
fn is_domain(host: &str) -> bool {
    dns::valid_name(host)
        && host
            .rsplit('.')
            .next()
            .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classified() {
        let ip = |s: &str| Some(Line::Ip(s.parse().unwrap()));
        assert_eq!(classify("129.82.138.12 # pinger"), ip("129.82.138.12"));
        assert_eq!(
            classify("Bad.Example.COM"),
            Some(Line::Domain("bad.example.com".into()))
        );
        assert_eq!(
            classify("http://Evil.example/Gate.php"),
            Some(Line::Url("evil.example/Gate.php".into()))
        );
        assert_eq!(
            classify("carloadspry.com/SJI4C1/"),
            Some(Line::Url("carloadspry.com/SJI4C1/".into()))
        );
        for skipped in [
            "# comment",
            "",
            "188.127.224.127:443",
            "10.0.0.0/8",
            "/add_outstuk.php",
            "http://147.78.103.91",
            "http://147.78.103.91/x",
            "evil.example:8080/x",
            r"^evil\d+\.com$",
            "(?i)foo.bar",
            "2001:db8::1",
            "localhost",
        ] {
            assert_eq!(classify(skipped), None, "{skipped}");
        }
    }

    #[test]
    fn sampling_is_deterministic_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("malware");
        fs::create_dir(&sub).unwrap();
        let mut text = String::from("# header\n");
        for i in 0..200 {
            text.push_str(&format!(
                "198.51.{}.{}\nmal{i}.example.com\nmal{i}.example.net/p{i}.php\n",
                i / 250,
                i % 250
            ));
        }
        fs::write(sub.join("a.txt"), &text).unwrap();
        fs::write(
            dir.path().join("b.txt"),
            "dup.example.org\ndup.example.org\n",
        )
        .unwrap();
        fs::write(dir.path().join("ignored.py"), "not.a.trail.com\n").unwrap();

        let a = ListedIndicators::sample_trail_folder(dir.path(), 10, 7).unwrap();
        let b = ListedIndicators::sample_trail_folder(dir.path(), 10, 7).unwrap();
        let c = ListedIndicators::sample_trail_folder(dir.path(), 10, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!((a.ips.len(), a.domains.len(), a.urls.len()), (10, 10, 10));
        let distinct: HashSet<_> = a.domains.iter().collect();
        assert_eq!(distinct.len(), 10);
        assert!(!a.domains.iter().any(|d| d == "not.a.trail.com"));

        let all = ListedIndicators::sample_trail_folder(dir.path(), 1000, 7).unwrap();
        assert_eq!(all.ips.len(), 200);
        assert_eq!(all.domains.len(), 201); // duplicates count once
        assert_eq!(all.urls.len(), 200);
    }
}
