//! The `gateway` binary: command line → [`Config`] → [`wraith_gateway::run`].

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use wraith_gateway::config::Config;
use wraith_gateway::ops::ConfigSource;

mod verbs;

/// jemalloc instead of the system allocator: parsing, checking and
/// re-serialising events allocates many short-lived strings across threads.
/// End to end it is 1.2–1.4× glibc's throughput for ~7 MiB more peak memory;
/// mimalloc was as fast but tripled peak memory (docs/BENCHMARKS.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Wraith: a telemetry gateway extended with WebAssembly plugins.
///
/// Receives events over HTTP, runs every batch through the `.wasm` plugins in
/// the plugins folder (reloaded when files change) and writes what survives as
/// JSON Lines under the data folder — or, with --nats, to NATS JetStream,
/// from where `gateway load` moves it into ClickHouse. `gateway --plugins DIR`
/// is short for `gateway serve --plugins DIR`.
#[derive(Parser)]
#[command(name = "gateway", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default command).
    Serve(ServeArgs),
    /// Load every plugin of a folder, report what fails and why, and with
    /// --sample show each event before and after the chain. Starts no server;
    /// exits with status 1 if a plugin does not load.
    Check(CheckArgs),
    /// Move events from NATS JetStream into ClickHouse: a durable consumer
    /// that any number of loaders share. Creates the ClickHouse schema at
    /// start, acknowledges events only after they are inserted, and puts
    /// messages that cannot be loaded into the `dead_letters` table.
    Load(LoadArgs),
    /// Start a plugin project (`plugin new`) or build one into NAME.wasm
    /// (`plugin build`).
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Reload the running gateway (SIGHUP): reread its config file, tokens
    /// and plugins folder, and print what changed, what needs a restart, or
    /// why the new config was refused (the running one then stays).
    Reload(OpsArgs),
    /// Stop the running gateway (SIGTERM) and wait until it has answered the
    /// requests in flight, flushed its sinks and exited.
    Stop(StopArgs),
    /// Show the running gateway's chain, counters and sinks as a table.
    Status(StatusArgs),
    /// Print the version.
    Version,
    /// Print an example config file with every setting at its default.
    Config,
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Folder of `.wasm` plugins (and an optional plugins.toml) [default: plugins]
    #[arg(long, value_name = "DIR", env = "WRAITH_PLUGINS")]
    plugins: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR", env = "WRAITH_LISTEN")]
    listen: Option<SocketAddr>,
    /// Folder for the JSON Lines output and the compiled-plugin cache [default: ./data]
    #[arg(long, value_name = "DIR", env = "WRAITH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML config file; flags override its settings (`gateway config` prints an example)
    #[arg(long, value_name = "FILE", env = "WRAITH_CONFIG")]
    config: Option<PathBuf>,
    /// NATS server URL(s), comma-separated: publish events to JetStream
    /// instead of the data folder (dead letters stay in the data folder)
    #[arg(long, value_name = "URL", env = "NATS_URL")]
    nats: Option<String>,
    /// File of API tokens, one `token` or `client-name:token` per line,
    /// reread when it changes (adds to auth.tokens and WRAITH_API_TOKENS)
    #[arg(long, value_name = "FILE", env = "WRAITH_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,
    /// Serve a non-loopback --listen address without API tokens (only when
    /// something in front of the gateway checks who sends)
    #[arg(long, env = "WRAITH_ALLOW_ANONYMOUS")]
    allow_anonymous: bool,
    /// PEM certificate chain: serve HTTPS (with --tls-key; reread on SIGHUP)
    #[arg(
        long,
        value_name = "FILE",
        env = "WRAITH_TLS_CERT",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert
    #[arg(
        long,
        value_name = "FILE",
        env = "WRAITH_TLS_KEY",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// Log format on stderr
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        env = "WRAITH_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: wraith_gateway::telemetry::LogFormat,
}

/// Which running gateway: the one whose data folder holds its pid file.
#[derive(Args)]
struct OpsArgs {
    /// The gateway's data folder [default: the config's, else ./data]
    #[arg(long, value_name = "DIR", env = "WRAITH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The gateway's config file (for its data folder)
    #[arg(long, value_name = "FILE", env = "WRAITH_CONFIG")]
    config: Option<PathBuf>,
    /// How long to wait for the gateway, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    timeout: u64,
}

#[derive(Args)]
struct StopArgs {
    #[command(flatten)]
    ops: OpsArgs,
}

#[derive(Args)]
struct StatusArgs {
    /// The gateway's address [default: http:// + the config's server.listen]
    #[arg(long, value_name = "URL", env = "WRAITH_URL")]
    url: Option<String>,
    /// The gateway's config file (for its listen address)
    #[arg(long, value_name = "FILE", env = "WRAITH_CONFIG")]
    config: Option<PathBuf>,
    /// An API token, when the gateway has tokens on
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WRAITH_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Print the status as JSON instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Write a plugin project with one test into DIR/NAME; its README's
    /// first command builds NAME.wasm.
    New {
        /// The plugin's name: lowercase letters, digits and `-`
        name: String,
        /// The language: rust, python or js
        #[arg(long)]
        lang: wraith_gateway::starter::Lang,
        /// Folder to create the project in
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
    /// Build the plugin project in DIR into DIR/NAME.wasm with its
    /// language's toolchain (NAME is the folder's name).
    Build {
        /// The project folder
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
}

/// API tokens from the environment: `WRAITH_API_TOKENS`, comma-separated,
/// each `token` or `client-name:token`.
const TOKENS_ENV: &str = "WRAITH_API_TOKENS";

#[derive(Args)]
struct LoadArgs {
    /// NATS server URL(s), comma-separated
    #[arg(long, value_name = "URL", env = "NATS_URL")]
    nats: Option<String>,
    /// ClickHouse HTTP URL, e.g. http://127.0.0.1:8123
    #[arg(long, value_name = "URL", env = "CLICKHOUSE_URL")]
    clickhouse: Option<String>,
    /// Address for the loader's /metrics and /health [default: 127.0.0.1:9464]
    #[arg(long, value_name = "ADDR", env = "WRAITH_LOADER_METRICS")]
    metrics_listen: Option<SocketAddr>,
    /// TOML config file (the [loader] and [sinks.nats] sections)
    #[arg(long, value_name = "FILE", env = "WRAITH_CONFIG")]
    config: Option<PathBuf>,
    /// Print the ClickHouse schema (every DDL statement) and exit
    #[arg(long)]
    print_schema: bool,
}

#[derive(Args)]
struct CheckArgs {
    /// Folder of `.wasm` plugins [default: plugins]
    #[arg(long, value_name = "DIR")]
    plugins: Option<PathBuf>,
    /// JSON Lines file of events to run through the chain
    #[arg(long, value_name = "FILE.jsonl")]
    sample: Option<PathBuf>,
    /// TOML config file: checked for errors (a wrong key is named), and its
    /// plugin limits are used
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn load_config(path: Option<&PathBuf>) -> Result<Config> {
    let config = match path {
        Some(p) => Config::from_file(p)?,
        None => Config::default(),
    };
    Ok(config)
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Check(args)) => {
            let mut config = load_config(args.config.as_ref())?;
            if let Some(p) = args.plugins {
                config.plugins.dir = p;
            }
            config.validate()?;
            let stdout = std::io::stdout();
            let ok =
                wraith_gateway::check::check(&config, args.sample.as_deref(), &mut stdout.lock())?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Some(Command::Load(args)) => load(args),
        Some(Command::Plugin(PluginCommand::New { name, lang, dir })) => {
            let root = wraith_gateway::starter::new_project(&name, lang, &dir)?;
            println!(
                "created {}: build it with `cd {} && gateway plugin build`",
                root.display(),
                root.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Plugin(PluginCommand::Build { dir })) => {
            let out = wraith_gateway::starter::build(&dir)?;
            println!("built {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Reload(args)) => verbs::reload(&args),
        Some(Command::Stop(args)) => verbs::stop(&args.ops),
        Some(Command::Status(args)) => verbs::status(&args),
        Some(Command::Version) => {
            println!(
                "gateway {} (plugin contract {})",
                env!("CARGO_PKG_VERSION"),
                wraith_gateway::host::CONTRACTS
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Config) => {
            print!("{}", Config::example_toml());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load(args: LoadArgs) -> Result<ExitCode> {
    let mut config = load_config(args.config.as_ref())?;
    if args.print_schema {
        for s in wraith_gateway::loader::schema::all_statements(
            &config.loader.database,
            &config.loader.table,
        ) {
            println!("{s};\n");
        }
        return Ok(ExitCode::SUCCESS);
    }
    wraith_gateway::telemetry::init_tracing();
    if let Some(n) = args.nats {
        config.sinks.nats.url = n;
    }
    if let Some(c) = args.clickhouse {
        config.loader.clickhouse_url = c;
    }
    if let Some(m) = args.metrics_listen {
        config.loader.metrics_listen = m;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(wraith_gateway::loader::run(config))?;
    Ok(ExitCode::SUCCESS)
}

fn serve(args: ServeArgs) -> Result<ExitCode> {
    wraith_gateway::telemetry::init_tracing_as(args.log_format);
    // The environment is read once; a reload reapplies what it said.
    let env_tokens = std::env::var(TOKENS_ENV).ok();
    let path = args.config.clone();
    let overrides =
        move |config: &mut Config| apply_overrides(&args, env_tokens.as_deref(), config);
    let source = ConfigSource {
        path,
        overrides: Arc::new(overrides),
    };
    let config = source.read()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(wraith_gateway::run_with(config, Some(source)))?;
    Ok(ExitCode::SUCCESS)
}

/// Flags and environment over the config file's settings.
fn apply_overrides(args: &ServeArgs, env_tokens: Option<&str>, config: &mut Config) {
    if let Some(p) = &args.plugins {
        config.plugins.dir = p.clone();
    }
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    if let Some(d) = &args.data_dir {
        config.sinks.file.dir = d.clone();
    }
    if let Some(n) = &args.nats {
        config.sinks.nats.url = n.clone();
    }
    if let Some(f) = &args.tokens_file {
        config.auth.tokens_file = f.clone();
    }
    if args.allow_anonymous {
        config.auth.allow_anonymous = true;
    }
    if let (Some(c), Some(k)) = (&args.tls_cert, &args.tls_key) {
        config.server.tls_cert = c.clone();
        config.server.tls_key = k.clone();
    }
    if let Some(v) = env_tokens {
        config.auth.tokens.extend(
            v.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string),
        );
    }
}
