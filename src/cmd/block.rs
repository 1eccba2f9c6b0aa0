//! `spoor block add | remove | list | approve | reject | flush`: manage decisions in the
//! ledger by hand. The agent applies them; `flush` is the kill switch and also removes
//! Spoor's entries from the firewall at once (only Spoor's: others stay).

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Subcommand, ValueEnum};
use spoor_core::Duration;
use spoor_responders::decision::{DecisionId, NewDecision, Reason, parse_target, target_text};
use spoor_responders::guard::check_target;
use spoor_responders::ledger::{self, Ledger};
use spoor_responders::{Decision, DecisionState, GuardedBackend, agent, reconcile, system};

use super::Context;

/// TTL of a block added by hand when `--ttl` is not given.
const DEFAULT_MANUAL_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Subcommand)]
pub(crate) enum BlockCommand {
    /// Block addresses or networks (approved at once; the agent applies them)
    Add {
        #[arg(required = true, value_name = "IP|CIDR")]
        targets: Vec<String>,
        /// How long the block lasts
        #[arg(long, default_value_t = DEFAULT_MANUAL_TTL)]
        ttl: Duration,
        /// Why, for the audit log
        #[arg(long)]
        reason: Option<String>,
    },
    /// Revoke the blocks (or reject the proposals) on these targets
    Remove {
        #[arg(required = true, value_name = "IP|CIDR")]
        targets: Vec<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Approve proposed decisions by id
    Approve {
        #[arg(required = true)]
        ids: Vec<i64>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reject proposed decisions by id
    Reject {
        #[arg(required = true)]
        ids: Vec<i64>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Decisions that are proposed, approved or active (all with --all)
    List {
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Kill switch: revoke every block and remove Spoor's entries from the firewall now
    Flush,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ListFormat {
    Text,
    Json,
}

/// `cli:USER`, the actor recorded in the audit log.
fn actor() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| {
            // SAFETY: getuid has no preconditions.
            format!("uid{}", unsafe { libc::getuid() })
        });
    format!("cli:{user}")
}

pub(crate) fn run(ctx: &Context, command: BlockCommand) -> anyhow::Result<ExitCode> {
    let config = ctx.load_config()?;
    let cfg = &config.respond;
    let conn = ledger::open(&cfg.ledger)
        .with_context(|| format!("opening the decision ledger {}", cfg.ledger.display()))?;
    let l = Ledger::new(&conn);
    let now = ledger::now();
    let who = actor();
    match command {
        BlockCommand::Add {
            targets,
            ttl,
            reason,
        } => {
            let allowlist = agent::allowlist(cfg, &system::discover());
            let guards = agent::guards(cfg);
            let ttl = ttl.as_std().min(cfg.max_ttl.as_std());
            let mut parsed = Vec::new();
            for t in &targets {
                let net = parse_target(t).map_err(anyhow::Error::msg)?;
                if let Err(why) = check_target(&allowlist, &guards, &net) {
                    bail!("refusing to block {t}: {why}");
                }
                if !l.open_for(&net)?.is_empty() {
                    bail!("{t} already has an open decision (see `spoor block list`)");
                }
                parsed.push(net);
            }
            for net in parsed {
                let d = l.propose(
                    &NewDecision {
                        target: net,
                        reason: Reason {
                            rule: "manual".into(),
                            events: Vec::new(),
                            note: reason.clone(),
                        },
                        ttl_secs: ttl.as_secs(),
                        dry_run: false,
                    },
                    &who,
                    now,
                )?;
                let d = l.transition(d.id, DecisionState::Approved, &who, now, None)?;
                println!("{}", line(&d, now));
            }
        }
        BlockCommand::Remove { targets, reason } => {
            let mut found = false;
            for t in &targets {
                let net = parse_target(t).map_err(anyhow::Error::msg)?;
                for d in l.open_for(&net)? {
                    let to = if d.state == DecisionState::Proposed {
                        DecisionState::Rejected
                    } else {
                        DecisionState::Revoked
                    };
                    let d = l.transition(d.id, to, &who, now, reason.as_deref())?;
                    println!("{}", line(&d, now));
                    found = true;
                }
            }
            if !found {
                eprintln!("spoor: no open decision on {}", targets.join(", "));
                return Ok(ExitCode::from(super::EXIT_NOTHING_FOUND));
            }
        }
        BlockCommand::Approve { ids, reason } => {
            let allowlist = agent::allowlist(cfg, &system::discover());
            let guards = agent::guards(cfg);
            for id in ids {
                let d = l.get(DecisionId(id))?;
                if let Err(why) = check_target(&allowlist, &guards, &d.target) {
                    bail!("refusing to approve decision {id} on {}: {why}", d.target);
                }
                let d =
                    l.transition(d.id, DecisionState::Approved, &who, now, reason.as_deref())?;
                println!("{}", line(&d, now));
            }
        }
        BlockCommand::Reject { ids, reason } => {
            for id in ids {
                let d = l.transition(
                    DecisionId(id),
                    DecisionState::Rejected,
                    &who,
                    now,
                    reason.as_deref(),
                )?;
                println!("{}", line(&d, now));
            }
        }
        BlockCommand::List { all, format } => {
            let states: &[DecisionState] = if all {
                &[]
            } else {
                &[
                    DecisionState::Proposed,
                    DecisionState::Approved,
                    DecisionState::Active,
                ]
            };
            let list = l.list(states)?;
            match format {
                ListFormat::Json => {
                    for d in &list {
                        println!("{}", serde_json::to_string(d)?);
                    }
                }
                ListFormat::Text => {
                    for d in &list {
                        println!("{}", line(d, now));
                    }
                }
            }
        }
        BlockCommand::Flush => {
            let backend = agent::backend(cfg).context("opening the firewall backend")?;
            let mut guarded = GuardedBackend::new(
                backend,
                agent::allowlist(cfg, &system::discover()),
                agent::guards(cfg),
            );
            let r = reconcile::flush(&l, &mut guarded, &who, now)?;
            println!(
                "revoked {} decisions, removed {} entries from {}",
                r.revoked,
                r.removed.len(),
                guarded.name()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One decision on one line: id, state, target, time left, rule, actor.
fn line(d: &Decision, now: spoor_core::Micros) -> String {
    let left = match d.expires {
        Some(e) if d.state.wants_block() => {
            let secs = ((e.0 - now.0).max(0) / 1_000_000) as u64;
            format!("{} left", Duration::from_secs(secs))
        }
        _ => format!("ttl {}", Duration::from_secs(d.ttl_secs)),
    };
    format!(
        "{:>6}  {:<9} {:<20} {:<12} {}{}  by {}",
        d.id,
        d.state,
        target_text(&d.target),
        left,
        d.reason.rule,
        if d.dry_run { " (dry run)" } else { "" },
        d.actor
    )
}
