//! Cost of the content heuristics per message (one thread).
//!
//! `cargo bench -p spoor-sensor --bench content_heuristics` prints ns per request for
//! ordinary requests (plain paths, paths with a query, a form POST), for attack requests
//! (which build a verdict), and ns per ordinary response. The HTTP parse is done before
//! timing: only the heuristics are measured, in thread CPU time. Plain harness: the best of several rounds of
//! a timed loop over prepared messages, with `black_box` around inputs and results.
//! Results are recorded in BENCHMARKS.md.

use std::hint::black_box;
use std::net::IpAddr;

use spoor_sensor::heuristics::content::{ContentConfig, ContentHeuristics};
use spoor_sensor::heuristics::http::{RequestClassifier, RequestFacts, Scratch};
use spoor_sensor::heuristics::ua::UaClassifier;
use spoor_sensor::proto::http::{HttpRequest, parse_request, parse_response};

const ROUNDS: usize = 5;
const ITERATIONS: usize = 1_000_000;

const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

fn request(method: &str, target: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {target} HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: {UA}\r\nAccept: */*\r\nAccept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n{body}"
    )
    .into_bytes()
}

/// CPU time of this thread in ns: other processes on a busy machine do not count.
fn thread_cpu_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_THREAD_CPUTIME_ID exists on Linux and
    // FreeBSD.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// Best thread-CPU ns per call of `f` over `ITERATIONS` calls, in `ROUNDS` rounds.
fn best_ns(mut f: impl FnMut(usize)) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let start = thread_cpu_ns();
        for i in 0..ITERATIONS {
            f(i);
        }
        let ns = (thread_cpu_ns() - start) as f64 / ITERATIONS as f64;
        best = best.min(ns);
    }
    best
}

fn bench_requests(name: &str, payloads: &[Vec<u8>], content: &mut ContentHeuristics) {
    let dst: IpAddr = "203.0.113.80".parse().unwrap();
    let parsed: Vec<HttpRequest<'_>> = payloads
        .iter()
        .map(|p| parse_request(p).expect("request"))
        .collect();
    let facts: Vec<RequestFacts<'_>> = parsed
        .iter()
        .zip(payloads)
        .map(|(r, p)| RequestFacts {
            request: r,
            head: &p[..r.head_len],
            body: &p[r.head_len..],
            dst,
        })
        .collect();
    let mut verdicts = 0usize;
    let ns = best_ns(|i| {
        let f = black_box(&facts[i % facts.len()]);
        let (class, agent) = content.request(f);
        verdicts += usize::from(class.is_some()) + usize::from(agent.is_some());
        black_box((class, agent));
    });
    println!(
        "{name:<40} {ns:>8.1} ns/request  ({} distinct, {} verdicts per round)",
        facts.len(),
        verdicts / ROUNDS
    );
}

fn main() {
    let mut content = ContentHeuristics::default();
    let plain: Vec<Vec<u8>> = [
        "/",
        "/index.html",
        "/static/js/app.3f9a1c.min.js",
        "/images/logo.png",
        "/news/2024/05/article-title",
        "/css/main.css",
        "/favicon.ico",
        "/wp-content/uploads/photo.jpg",
    ]
    .iter()
    .map(|t| request("GET", t, ""))
    .collect();
    let query: Vec<Vec<u8>> = [
        "/search?q=how+to+select+a+laptop&hl=en",
        "/api/v1/items?id=42&lang=en",
        "/login?next=%2Fhome%2Fsettings",
        "/product/12345?color=red&size=m",
        "/css/main.css?v=1.2.3",
        "/news/feed.xml?page=2",
        "/img/photo.jpg?w=640&h=480",
        "/track?utm_source=newsletter&utm_medium=email&utm_campaign=spring",
    ]
    .iter()
    .map(|t| request("GET", t, ""))
    .collect();
    let post = vec![request(
        "POST",
        "/account/update",
        "user=guest&action=update&token=3f9a1c&lang=en",
    )];
    let attacks: Vec<Vec<u8>> = [
        "/items.php?id=1%20UNION%20ALL%20SELECT%20username,password%20FROM%20users",
        "/download?file=../../../../etc/passwd",
        "/search?q=<script>alert(1)</script>",
        "/cgi?cmd=;cat%20/etc/passwd",
        "/x?a=%24%7Bjndi%3Aldap%3A%2F%2Fx%2Fa%7D",
        "/.env",
        "/setup.exe",
    ]
    .iter()
    .map(|t| request("GET", t, ""))
    .collect();

    println!("content heuristics, one thread, best of {ROUNDS} rounds of {ITERATIONS} calls");
    bench_requests("ordinary GET, plain path", &plain, &mut content);
    bench_requests("ordinary GET, path and query", &query, &mut content);
    bench_requests("ordinary form POST", &post, &mut content);
    bench_requests("attack requests (verdict built)", &attacks, &mut content);

    // The two halves of a request's cost on the plain paths.
    let classifier = RequestClassifier::shared();
    let agents = UaClassifier::shared();
    let config = ContentConfig::default();
    let mut scratch = Scratch::default();
    let dst: IpAddr = "203.0.113.80".parse().unwrap();
    let parsed: Vec<HttpRequest<'_>> = plain.iter().map(|p| parse_request(p).unwrap()).collect();
    let ns = best_ns(|i| {
        let p = &plain[i % plain.len()];
        let r = &parsed[i % parsed.len()];
        let facts = RequestFacts {
            request: r,
            head: &p[..r.head_len],
            body: &p[r.head_len..],
            dst,
        };
        black_box(classifier.classify(black_box(&facts), &config, &mut scratch));
    });
    println!("{:<40} {ns:>8.1} ns/request", "  of which request classes");
    let ns = best_ns(|i| {
        let r = &parsed[i % parsed.len()];
        black_box(agents.classify(black_box(r.user_agent), "h", r.uri, dst, &config));
    });
    println!("{:<40} {ns:>8.1} ns/request", "  of which user agent");

    let response = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 1234\r\nCache-Control: max-age=600\r\nConnection: keep-alive\r\n\r\n<!doctype html><html><head><title>Example page</title></head><body>hello</body></html>";
    let parsed = parse_response(response).expect("response");
    let ns = best_ns(|_| {
        black_box(content.response(black_box(&parsed), black_box(response)));
    });
    println!(
        "{:<40} {ns:>8.1} ns/response",
        "ordinary response (head + title)"
    );
}
