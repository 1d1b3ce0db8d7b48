//! `cloister`: the user's side of Cloister.
//!
//! * `account new` creates the account key the issuer knows this client by;
//! * `tokens fetch` / `tokens status` manage the Privacy Pass wallet;
//! * `run FEATURE --input FILE` runs any feature on an attested host with
//!   the JSON input in FILE (the input type its WIT world declares);
//!   `summarise` / `suggest` are the same for the bundled features, with a
//!   request file naming its feature: RA-TLS
//!   through the relay and the gateway, one token per OHTTP request, and
//!   the payload sent only after the host's evidence verified; every answer
//!   is labelled with the feature, the host and the release;
//! * `chat off` / `chat on` / `chat status` keep the per-chat switch: with
//!   features off for a chat (`--chat ID`), nothing leaves the device.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use cloister_api::{FeatureRequest, FeatureResponse, Suggestions, Summary};
use cloister_cli::config::Config;
use cloister_cli::session::{self, Outcome, open_wallet, unix_now};

use cloister_client::chats::ChatSettings;
use cloister_client::tokens::{AccountKey, WalletStatus};

/// Cloister's client: private AI features on an attested confidential VM.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file (see client/cli/cloister.example.toml);
    /// built-in defaults when absent.
    #[arg(long, short, env = "CLOISTER_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Print results as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// DEMO ONLY: run without a pinned reviewer policy, with the pinned
    /// allow-list or with the simulated attestation policy (as `demo = true`
    /// in the configuration). Nothing is then protected by reviewed software.
    #[arg(long, global = true)]
    demo: bool,
    /// DEMO ONLY: accept plain `http://` URLs for the relay, issuer and
    /// ledger (as `[tls] insecure_plain_http = true`). Without it a plain
    /// relay is refused: RFC 9458 expects HTTPS between client and relay.
    #[arg(long, global = true)]
    insecure_plain_http: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The account key that identifies this client to the issuer.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// The Privacy Pass token wallet.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Run any feature with its input (JSON of the input type its WIT world
    /// declares; the host checks it against that type).
    Run {
        /// The feature's name (its plugin's manifest names it).
        feature: String,
        /// The input file (JSON).
        #[arg(long)]
        input: PathBuf,
        /// The chat it comes from: refused here if its features are off.
        #[arg(long)]
        chat: Option<String>,
    },
    /// Summarise a conversation (a cloister-api summarise request, JSON).
    Summarise {
        /// The conversation file.
        file: PathBuf,
        /// The chat it comes from: refused here if its features are off.
        #[arg(long)]
        chat: Option<String>,
    },
    /// Suggest rewrites of a draft (a cloister-api suggest request, JSON).
    Suggest {
        /// The draft file.
        file: PathBuf,
        /// The chat it is for: refused here if its features are off.
        #[arg(long)]
        chat: Option<String>,
    },
    /// Turn AI features off or on for a chat.
    Chat {
        #[command(subcommand)]
        command: ChatCommand,
    },
}

#[derive(Subcommand)]
enum ChatCommand {
    /// Turn AI features off for a chat: requests for it are refused on
    /// this device and nothing is sent.
    Off {
        /// The chat id.
        chat: String,
    },
    /// Turn AI features back on for a chat.
    On {
        /// The chat id.
        chat: String,
    },
    /// List the chats whose features are off.
    Status,
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account key (never replaces an existing one) and print
    /// the entry to add to the issuer's accounts file.
    New {
        /// The account id (letters, digits and -_.@).
        #[arg(long)]
        id: String,
    },
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Fetch tokens from the issuer into the wallet.
    Fetch {
        /// How many (default: the configured batch).
        #[arg(long)]
        count: Option<usize>,
    },
    /// Show how many tokens the wallet holds.
    Status,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref())?;
    config.demo |= cli.demo;
    config.tls.insecure_plain_http |= cli.insecure_plain_http;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match cli.command {
        Command::Account {
            command: AccountCommand::New { id },
        } => account_new(&config, &id, cli.json),
        Command::Tokens {
            command: TokensCommand::Fetch { count },
        } => {
            let wallet = open_wallet(&config)?;
            let count = count.unwrap_or(config.tokens.batch);
            let fetched = runtime.block_on(async {
                let issuer_keys = cloister_cli::issuer_key_check(&config).await?;
                session::fetch_tokens(&config, &wallet, count, issuer_keys).await
            })?;
            print_status(&wallet.status(unix_now())?, Some(fetched), cli.json)
        }
        Command::Tokens {
            command: TokensCommand::Status,
        } => print_status(&open_wallet(&config)?.status(unix_now())?, None, cli.json),
        Command::Run {
            feature,
            input,
            chat,
        } => {
            let request = FeatureRequest::new(feature, session::read_input(&input)?);
            run_feature(&runtime, &config, &request, chat.as_deref(), cli.json)
        }
        Command::Summarise { file, chat } => {
            let request = session::read_request(&file, "summarise")?;
            run_feature(&runtime, &config, &request, chat.as_deref(), cli.json)
        }
        Command::Suggest { file, chat } => {
            let request = session::read_request(&file, "suggest")?;
            run_feature(&runtime, &config, &request, chat.as_deref(), cli.json)
        }
        Command::Chat { command } => chat(&config, command, cli.json),
    }
}

fn chat(config: &Config, command: ChatCommand, json: bool) -> anyhow::Result<()> {
    let settings = ChatSettings::open(&config.state_dir);
    match command {
        ChatCommand::Off { chat } => {
            settings.set_features(&chat, false)?;
            println!("AI features are off for chat `{chat}`: nothing from it will be sent");
        }
        ChatCommand::On { chat } => {
            settings.set_features(&chat, true)?;
            println!("AI features are on for chat `{chat}`");
        }
        ChatCommand::Status => {
            let off = settings.chats_with_features_off()?;
            if json {
                println!("{}", serde_json::json!({ "features_off": off }));
            } else if off.is_empty() {
                println!("AI features are on for every chat");
            } else {
                println!("AI features are off for:");
                for chat in off {
                    println!("  {chat}");
                }
            }
        }
    }
    Ok(())
}

fn account_new(config: &Config, id: &str, json: bool) -> anyhow::Result<()> {
    let account = AccountKey::generate(id)?;
    if let Some(dir) = config
        .account_file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    account.save_new(&config.account_file)?;
    if json {
        let entry = serde_json::json!({
            "account_file": config.account_file,
            "issuer_entry": account.issuer_entry(),
        });
        println!("{entry}");
    } else {
        println!("account key written to {}", config.account_file.display());
        println!("add this to the issuer's accounts file:\n");
        print!("{}", account.issuer_entry());
    }
    Ok(())
}

fn print_status(status: &WalletStatus, fetched: Option<usize>, json: bool) -> anyhow::Result<()> {
    if json {
        let mut value = serde_json::to_value(status)?;
        if let (Some(fetched), Some(map)) = (fetched, value.as_object_mut()) {
            map.insert("fetched".into(), fetched.into());
        }
        println!("{value}");
        return Ok(());
    }
    if let Some(fetched) = fetched {
        println!("fetched {fetched} tokens");
    }
    println!("usable tokens: {}", status.usable);
    if status.expired > 0 {
        println!("expired (dropped at next use): {}", status.expired);
    }
    if status.other_challenge > 0 {
        println!(
            "for another issuer or origin (kept, not spent): {}",
            status.other_challenge
        );
    }
    if let Some(at) = status.next_expiry {
        println!("first expiry in {} s", at.saturating_sub(unix_now()));
    }
    Ok(())
}

fn run_feature(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
    request: &FeatureRequest,
    chat: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let outcome = runtime.block_on(session::run_in_chat(config, chat, request))?;
    if outcome.attestation.simulated {
        eprintln!("WARNING: {}", cloister_attestation::SIMULATION_WARNING);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print_outcome(&outcome);
    }
    Ok(())
}

/// The bundled features' outputs as text; any other feature's as JSON.
fn print_output(response: &FeatureResponse) {
    match response.feature() {
        "summarise" => {
            if let Ok(Summary {
                text,
                messages_covered,
            }) = response.decode()
            {
                println!("{text}\n\n(covers {messages_covered} messages)");
                return;
            }
        }
        "suggest" => {
            if let Ok(Suggestions(items)) = response.decode() {
                for (i, item) in items.iter().enumerate() {
                    println!("{}. {item}", i + 1);
                }
                return;
            }
        }
        _ => {}
    }
    println!("{:#}", response.output);
}

fn print_outcome(outcome: &Outcome) {
    println!("[{}]\n", outcome.label);
    print_output(&outcome.response);
    let a = &outcome.attestation;
    let platform = if a.simulated {
        "SIMULATED platform: no hardware guarantee"
    } else {
        "AMD SEV-SNP"
    };
    println!("\nattested host ({platform}, root {})", a.root);
    println!("  measurement {}", a.measurement);
    println!("  host data   {}", a.host_data);
    let tcb = &a.tcb;
    println!(
        "  vmpl {}, tcb bootloader {} tee {} snp {} microcode {}",
        a.vmpl, tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode
    );
    println!(
        "tokens spent {}, left {}",
        outcome.tokens_spent, outcome.tokens_left
    );
}
