//! Loader tests: every kind of problem, with the exact line it is reported on.

use std::path::Path;

use super::*;

const FILE: &str = "/etc/spoor/spoor.toml";

fn problems(text: &str) -> Vec<String> {
    match parse(text, Path::new(FILE)) {
        Ok(config) => panic!("expected problems, got {config:#?}"),
        Err(LoadError::Invalid { problems, .. }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        Err(e) => panic!("expected problems, got {e}"),
    }
}

fn ok(text: &str) -> Config {
    parse(text, Path::new(FILE)).unwrap_or_else(|e| panic!("{e}"))
}

/// The sample with every example line (`#key`, `#[table]`) switched on.
fn sample_with_examples() -> String {
    SAMPLE
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '[') => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn same_settings(a: &Config, b: &Config) {
    assert_eq!(a.spoor, b.spoor);
    assert_eq!(a.trails, b.trails);
    assert_eq!(a.feeds, b.feeds);
    assert_eq!(a.sensor, b.sensor);
    assert_eq!(a.server, b.server);
    assert_eq!(a.respond, b.respond);
    assert_eq!(a.agent, b.agent);
}

#[test]
fn bundled_defaults_equal_the_sample_and_an_empty_file() {
    let bundled = bundled(Path::new(FILE));
    same_settings(&ok(SAMPLE), &bundled);
    same_settings(&ok(""), &bundled);
    assert_eq!(bundled.spoor.log_level, LogLevel::Info);
    assert_eq!(
        bundled.trails.snapshot,
        Path::new(spoor_feeds::config::DEFAULT_STATE_DIR).join("trails.snapshot")
    );
}

#[test]
fn sample_examples_are_valid() {
    let config = ok(&sample_with_examples());
    let names: Vec<&str> = config
        .trails
        .sources
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["maltrail-static", "maltrail-whitelist", "bad-domains.csv"]
    );
    // relative to the config file's folder
    assert_eq!(
        config.trails.sources[2].path,
        Path::new("/etc/spoor/local/bad-domains.csv")
    );
    assert_eq!(
        config.feeds.feeds.last().map(|f| f.name.as_str()),
        Some("company-reputation")
    );
}

/// The field names serde knows for `T`, read from its unknown-field message.
fn fields<T: for<'de> Deserialize<'de>>() -> Vec<String> {
    let doc = DeTable::parse("\"\\u0001\" = 1").unwrap();
    let value = Spanned::new(doc.span(), DeValue::Table(doc.into_inner()));
    let Err(err) = T::deserialize(ValueDeserializer::from(value)) else {
        panic!("accepted an unknown key");
    };
    let list = err.message().split_once("expected ").unwrap().1;
    let names: Vec<String> = quoted_names(list).into_iter().map(String::from).collect();
    assert!(!names.is_empty(), "{}", err.message());
    names
}

#[test]
fn sample_documents_every_key() {
    use spoor_feeds::config::{RawCustomFeed, RawFeedOverride, RawFeeds, RawSource, RawTrails};
    let all = [
        fields::<RawConfig>(),
        fields::<raw::RawSpoor>(),
        fields::<RawTrails>(),
        fields::<RawSource>(),
        fields::<RawFeeds>(),
        fields::<RawFeedOverride>(),
        fields::<RawCustomFeed>(),
        fields::<spoor_sensor::config::RawSensor>(),
        fields::<spoor_sensor::reassembly::RawReassembly>(),
        fields::<spoor_sensor::config::RawHeuristics>(),
        fields::<spoor_sensor::config::RawCounting>(),
        fields::<spoor_sensor::config::RawDga>(),
        fields::<spoor_sensor::config::RawLongDomain>(),
        fields::<spoor_server::config::RawServer>(),
        fields::<spoor_server::config::RawTls>(),
        fields::<spoor_server::config::RawRetention>(),
        fields::<spoor_server::config::RawPrivacy>(),
        fields::<spoor_server::config::RawFail2ban>(),
        fields::<spoor_server::config::RawSensorAuth>(),
        fields::<spoor_server::config::RawAgentAuth>(),
        fields::<spoor_server::config::RawWebhook>(),
        fields::<spoor_sensor::heuristics::content::RawSwitch>(),
        fields::<spoor_responders::config::RawRespond>(),
        fields::<spoor_responders::config::RawRule>(),
        fields::<spoor_responders::config::RawPf>(),
        fields::<spoor_responders::config::RawNft>(),
        fields::<spoor_responders::config::RawOpnsense>(),
        fields::<spoor_responders::agent::config::RawAgent>(),
    ];
    for field in all.iter().flatten() {
        let shown = SAMPLE.contains(&format!("{field} ="))
            || SAMPLE.contains(&format!("[{field}]"))
            || SAMPLE.contains(&format!(".{field}"))
            || SAMPLE.contains(&format!("#   {field} "));
        assert!(shown, "`{field}` is not in the sample");
    }
}

#[test]
fn relative_paths_follow_the_config_file() {
    let config = parse(
        "[spoor]\nstate_dir = \"state\"\n[[trails.source]]\npath = \"lists/a.txt\"\nformat = \"ip\"\n",
        Path::new("/srv/spoor/spoor.toml"),
    )
    .unwrap();
    assert_eq!(config.spoor.state_dir, Path::new("/srv/spoor/state"));
    assert_eq!(
        config.trails.snapshot,
        Path::new("/srv/spoor/state/trails.snapshot")
    );
    assert_eq!(config.feeds.dir, Path::new("/srv/spoor/state/feeds"));
    assert_eq!(
        config.trails.sources[0].path,
        Path::new("/srv/spoor/lists/a.txt")
    );
    assert_eq!(config.trails.sources[0].name, "a.txt");
}

#[test]
fn syntax_errors_name_line_and_column() {
    let p = problems("[spoor]\nlog_level = \"info\"\nstate_dir = /var/x\n");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].starts_with("/etc/spoor/spoor.toml:3:13: "), "{}", p[0]);
}

#[test]
fn syntax_errors_on_several_lines_are_all_reported() {
    let p = problems("a = \nb = 1\nc = \"x\nd = 2\n");
    let lines: Vec<&str> = p.iter().map(|p| p.split(':').nth(1).unwrap()).collect();
    assert_eq!(lines, ["1", "3"], "{p:#?}");
}

#[test]
fn type_errors_name_key_line_and_column() {
    let p = problems("[feeds]\nparallel = \"many\"\ninterval = \"6 weeks\"\n");
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].starts_with(
            "/etc/spoor/spoor.toml:2:12: feeds.parallel: invalid type: string \"many\""
        ),
        "{}",
        p[0]
    );
    assert!(
        p[1].starts_with("/etc/spoor/spoor.toml:3:12: feeds.interval: `6 weeks` is not a duration"),
        "{}",
        p[1]
    );
}

#[test]
fn type_names_are_said_in_toml_terms() {
    let p = problems("trails = 5\n[feeds]\nparallel = -1\nenable = \"x\"\n");
    assert_eq!(
        p,
        [
            "/etc/spoor/spoor.toml:1:10: trails: invalid type: integer `5`, expected a table",
            "/etc/spoor/spoor.toml:3:12: feeds.parallel: invalid value: integer `-1`, expected a whole number, 0 or more",
            "/etc/spoor/spoor.toml:4:10: feeds.enable: invalid type: string \"x\", expected an array",
        ]
    );
}

#[test]
fn bad_log_level_lists_the_levels() {
    let p = problems("[spoor]\nlog_level = \"loud\"\n");
    assert_eq!(
        p,
        [
            "/etc/spoor/spoor.toml:2:13: spoor.log_level: unknown variant `loud`, expected one of `error`, `warn`, `info`, `debug`, `trace`"
        ]
    );
}

#[test]
fn unknown_keys_are_all_reported_with_their_table() {
    let text = "\
colour = 1
[spoor]
log_levle = \"debug\"
[[trails.source]]
path = \"/x\"
format = \"ip\"
[[trails.source]]
path = \"/y\"
format = \"ip\"
foo = 2
[feeds.override.feodotracker]
severty = \"low\"
";
    let p = problems(text);
    assert_eq!(p.len(), 4, "{p:#?}");
    assert_eq!(
        p[0],
        "/etc/spoor/spoor.toml:1: unknown key `colour` at the top level (expected one of: spoor, trails, feeds, sensor, server, respond, agent)"
    );
    assert_eq!(
        p[1],
        "/etc/spoor/spoor.toml:3: unknown key `log_levle` in [spoor] (expected one of: state_dir, log_level)"
    );
    assert!(
        p[2].starts_with("/etc/spoor/spoor.toml:10: unknown key `foo` in [trails.source] (expected one of: name, path, format,"),
        "{}",
        p[2]
    );
    assert_eq!(
        p[3],
        "/etc/spoor/spoor.toml:12: unknown key `severty` in [feeds.override.feodotracker] (expected one of: severity, min_consensus)"
    );
}

#[test]
fn validation_errors_name_key_and_line() {
    let text = "\
[[trails.source]]
path = \"/a\"
format = \"plain\"

[[trails.source]]
format = \"ip\"
min_count = 3

[feeds]
parallel = 0
enable = [
  \"no-such-feed\",
]

[[feeds.custom]]
name = \"mine\"
url = \"ftp://example.org/list\"
format = \"domain\"
";
    let p = problems(text);
    let expected_starts = [
        "/etc/spoor/spoor.toml:3: trails.source[0].format: unknown format `plain` (expected one of: maltrail,",
        // a required key left out: the line of its table's header
        "/etc/spoor/spoor.toml:5: trails.source[1].path: required",
        "/etc/spoor/spoor.toml:7: trails.source[1].min_count: only applies to format `ipsum`",
        "/etc/spoor/spoor.toml:10: feeds.parallel: 0 is out of range (1..=64)",
        "/etc/spoor/spoor.toml:12: feeds.enable[0]: unknown feed `no-such-feed` (known: ",
        "/etc/spoor/spoor.toml:17: feeds.custom[0].url: `ftp://example.org/list` is not an http:// or https:// URL",
    ];
    assert_eq!(p.len(), expected_starts.len(), "{p:#?}");
    for (got, want) in p.iter().zip(expected_starts) {
        assert!(got.starts_with(want), "\n got: {got}\nwant: {want}...");
    }
}

#[test]
fn serde_and_validation_errors_come_together_without_echoes() {
    // `format = 5` is a type error; the validator must not add "format: required" for the
    // key that was dropped, but the unrelated bad severity-free min_consensus still shows.
    let text = "\
[[trails.source]]
path = \"/a\"
format = 5
min_consensus = 0
";
    let p = problems(text);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].starts_with(
            "/etc/spoor/spoor.toml:3:10: trails.source[0].format: invalid type: integer `5`"
        ),
        "{}",
        p[0]
    );
    assert_eq!(
        p[1],
        "/etc/spoor/spoor.toml:4: trails.source[0].min_consensus: must be at least 1 (1 = no consensus needed)"
    );
}

#[test]
fn unknown_key_messages() {
    let key = KeyPath::root()
        .key("trails")
        .key("source")
        .index(0)
        .key("x");
    assert_eq!(
        unknown_key_message("unknown field `x`, expected `a` or `b`", Some(&key)).unwrap(),
        "unknown key `x` in [trails.source] (expected one of: a, b)"
    );
    assert_eq!(
        unknown_key_message("unknown field `x`, there are no fields", Some(&key)).unwrap(),
        "unknown key `x` in [trails.source] (this table takes no keys)"
    );
    assert!(unknown_key_message("invalid type", Some(&key)).is_none());
}

#[test]
fn server_section_is_validated_with_lines() {
    let p = problems("[server]\nlisten = \"0.0.0.0:8338\"\n");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(
        p[0].starts_with(
            "/etc/spoor/spoor.toml:2: server.listen: 0.0.0.0:8338 is not a loopback address"
        ),
        "{}",
        p[0]
    );
    let p = problems("[[server.sensor]]\nname = \"fw1\"\ntoken_sha256 = \"abc\"\n");
    assert!(
        p[0].contains("server.sensor[0].token_sha256: is not 64 hex digits"),
        "{}",
        p[0]
    );
    let c = ok("[server]\ndata_dir = \"db\"\n[server.tls]\nmode = \"self-signed\"\n");
    assert_eq!(c.server.data_dir, Path::new("/etc/spoor/db"));
}

#[test]
fn content_heuristic_tables_are_checked_by_name() {
    let p = problems(
        "[sensor.heuristics.sqli]\nenabled = false\n[sensor.heuristics.xss]\nseverity = \"urgent\"\n",
    );
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p[0].contains(":1:") && p[0].contains("sqli"), "{}", p[0]);
    assert!(p[1].contains(":4:") && p[1].contains("urgent"), "{}", p[1]);
    let config = ok("[sensor.heuristics.xss]\nenabled = false\n");
    use spoor_sensor::heuristics::content::Heuristic;
    assert!(!config.sensor.content_heuristics.enabled(Heuristic::Xss));
    assert!(
        config
            .sensor
            .content_heuristics
            .enabled(Heuristic::SqlInjection)
    );
}

#[test]
fn respond_problems_name_key_and_line() {
    let text = "\
[respond]
min_prefix_v4 = 40
allow = [\"192.0.2.0/24\", \"not-a-net\"]
mode = \"sometimes\"
[[respond.rule]]
name = \"malware\"
min_count = 0
[respond.opnsense]
url = \"http://192.0.2.1\"
";
    let p = problems(text);
    assert_eq!(p.len(), 5, "{p:#?}");
    assert!(
        p[4].starts_with("/etc/spoor/spoor.toml:9: respond.opnsense.url: must start with https://"),
        "{p:#?}"
    );
    assert!(
        p[0].starts_with("/etc/spoor/spoor.toml:2: respond.min_prefix_v4: must be 1 to 32"),
        "{p:#?}"
    );
    assert!(
        p[1].starts_with("/etc/spoor/spoor.toml:3: respond.allow[1]: `not-a-net`"),
        "{p:#?}"
    );
    assert!(p[2].starts_with("/etc/spoor/spoor.toml:4:"), "{p:#?}");
    assert!(
        p[2].contains("sometimes") || p[2].contains("unknown variant"),
        "{p:#?}"
    );
    assert!(
        p.iter()
            .any(|l| l.starts_with("/etc/spoor/spoor.toml:7: respond.rule[0].min_count")),
        "{p:#?}"
    );
    let ok = ok(
        "[respond]\nmode = \"auto\"\nbackend = \"nftables\"\n[[respond.rule]]\nname = \"m\"\nkinds = [\"dns\"]\naction = \"auto\"\n",
    );
    assert_eq!(ok.respond.rules.len(), 1);
    assert_eq!(
        ok.respond.ledger,
        Path::new(spoor_feeds::config::DEFAULT_STATE_DIR).join("decisions.sqlite")
    );
}
