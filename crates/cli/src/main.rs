//! The `tweestap` command: the server and its administration.

use clap::{Parser, Subcommand};
use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tweestap::config::Config;
use tweestap_domain::account::Role;
use tweestap_domain::clock::SystemClock;

#[derive(Parser)]
#[command(
    name = "tweestap",
    version,
    about = "Self-hosted login server with two-step verification"
)]
struct Cli {
    /// TOML configuration file (see tweestap.example.toml).
    #[arg(long, global = true, env = "TWEESTAP_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (SQLite database, secret key). Default ./data
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Address to listen on. Default 127.0.0.1:8080
    #[arg(long, global = true)]
    listen: Option<SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Apply pending database migrations and exit (for nodes started with
    /// `migrate_at_start = false`).
    Migrate,
    /// Write every account, factor and the audit log as JSON (to move between
    /// SQLite and PostgreSQL, or as a logical backup). Secrets stay encrypted.
    Export {
        /// File to write; standard output when absent.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Load an export into this (empty) database, all or nothing. The secret key
    /// must be the one of the exporting side.
    Import {
        /// The file `tweestap export` wrote; `-` for standard input.
        file: PathBuf,
    },
    /// Show the audit log, newest first.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only events of this e-mail address.
        #[arg(long)]
        email: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, default_value = "user", value_parser = ["user", "support", "admin"])]
        role: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts. Shared mailboxes (info@, secretariaat@, ...) are marked.
    List {
        /// Only the shared mailboxes, which should become personal accounts.
        #[arg(long)]
        shared: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TWEESTAP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

type BoxError = Box<dyn std::error::Error>;

fn load_config(cli: &Cli) -> Result<Config, BoxError> {
    let mut config = match &cli.config {
        Some(p) => Config::from_file(p)?,
        None => Config::default(),
    };
    config.apply_env()?;
    if let Some(d) = &cli.data_dir {
        config.data_dir = d.clone();
    }
    if let Some(l) = cli.listen {
        config.listen = l;
    }
    Ok(config)
}

async fn run(cli: Cli) -> Result<(), BoxError> {
    let config = load_config(&cli)?;
    let clock = Arc::new(SystemClock);
    let migrate = config.database.migrate_at_start;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let server = tweestap::spawn(&config, clock).await?;
            println!("tweestap is listening on {}", server.url());
            tracing::info!(url = %server.url(), data_dir = %config.data_dir.display(), "ready");
            server.wait().await;
        }
        Command::User(UserCommand::Add {
            email,
            name,
            role,
            password_stdin,
        }) => {
            let role: Role = role.parse()?;
            let password = read_password(password_stdin)?;
            let (app, _) = tweestap::engine(&config, clock, migrate).await?;
            let a = app.add_account(&email, &name, role, &password).await?;
            println!("created {} ({})", a.email, a.role);
        }
        Command::User(UserCommand::List { shared }) => {
            let (app, _) = tweestap::engine(&config, clock, migrate).await?;
            println!(
                "{:<40} {:<24} {:<8} {:<8} {:<7} CREATED",
                "E-MAIL", "NAME", "ROLE", "FACTORS", "SHARED"
            );
            for a in app.accounts().await? {
                let is_shared = app.is_shared_mailbox(&a.email);
                if shared && !is_shared {
                    continue;
                }
                let n = app.active_factors(a.id).await?.len();
                println!(
                    "{:<40} {:<24} {:<8} {:<8} {:<7} {}",
                    a.email,
                    a.name,
                    a.role,
                    n,
                    if is_shared { "yes" } else { "no" },
                    a.created_at.format("%Y-%m-%d")
                );
            }
        }
        Command::Migrate => {
            tweestap::open_store(&config, true).await?;
            println!(
                "database {} is up to date",
                tweestap::describe_database(&config)
            );
        }
        Command::Export { output } => {
            let (app, _) = tweestap::engine(&config, clock, migrate).await?;
            let snapshot = app.export().await?;
            let json = serde_json::to_vec_pretty(&snapshot)?;
            match output {
                Some(path) => {
                    write_private(&path, &json)?;
                    eprintln!(
                        "exported {} accounts, {} factors, {} audit entries to {}",
                        snapshot.accounts.len(),
                        snapshot.factors.len(),
                        snapshot.audit.len(),
                        path.display()
                    );
                }
                None => {
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    out.write_all(&json)?;
                    out.write_all(b"\n")?;
                }
            }
        }
        Command::Import { file } => {
            let bytes = if file.as_os_str() == "-" {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut b)?;
                b
            } else {
                std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?
            };
            let snapshot: tweestap_domain::snapshot::Snapshot = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not a tweestap export: {e}", file.display()))?;
            let (app, _) = tweestap::engine(&config, clock, migrate).await?;
            let n = app.import(&snapshot).await?;
            println!(
                "imported {} accounts, {} factors, {} audit entries into {}",
                n.accounts,
                n.factors,
                n.audit,
                tweestap::describe_database(&config)
            );
        }
        Command::Audit { limit, email } => {
            let (app, _) = tweestap::engine(&config, clock, migrate).await?;
            for r in app.audit_log(limit, email.as_deref()).await? {
                println!(
                    "{}  {:<16} {:<32} ip={} ua={:?} {}",
                    r.at.format("%Y-%m-%d %H:%M:%S"),
                    r.event,
                    r.email.unwrap_or_default(),
                    r.ip.unwrap_or_else(|| "-".into()),
                    r.user_agent.unwrap_or_default(),
                    r.detail.unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

fn read_password(from_stdin: bool) -> Result<String, BoxError> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Repeat password: ")?;
    if first != second {
        return Err("the passwords do not match".into());
    }
    Ok(first)
}

/// Exports hold password hashes and sealed secrets: only the owner may read them.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
