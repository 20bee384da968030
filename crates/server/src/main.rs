//! The `tweestap` command: the server and its administration.

mod cli;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tweestap::config::Config;
use tweestap_domain::clock::SystemClock;
use tweestap_domain::oidc::{ClientSource, SigningAlg};

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
    User(cli::user::UserCommand),
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
    /// The keys ID tokens are signed with, and the key secrets are sealed with.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The portals (OpenID Connect clients) that may sign people in through
    /// tweestap.
    #[command(subcommand)]
    Client(ClientCommand),
    /// The reminder mails before a role's `required_from` date.
    #[command(subcommand)]
    Reminders(cli::reminders::RemindersCommand),
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
enum KeysCommand {
    /// Show every signing key: kid, algorithm, created, retired.
    List,
    /// Make a new key per algorithm the active one. The old ones stay published in
    /// the JWKS for `[oidc] key_retention_hours`, so tokens they signed still verify.
    Rotate,
    /// Seal every secret at rest (app keys, phone numbers, signing keys, links in
    /// queued mail) again under a new at-rest key, in batches, while servers keep
    /// running. Interrupted, it finishes when run again. The old key ends up unused
    /// (kept as at-rest.key.retired-<id> for older backups).
    #[command(name = "rotate-secret")]
    RotateSecret(cli::secret_rotation::RotateSecret),
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client. Prints its client_id and, unless --public, its secret:
    /// shown this once, only a hash of it is kept.
    Add {
        /// Shown to people signing in.
        #[arg(long)]
        name: String,
        /// Where the client receives its answers (https, or http to localhost);
        /// matched exactly. Repeat for several.
        #[arg(long = "redirect-uri", required_unless_present = "service")]
        redirect_uris: Vec<String>,
        /// A client that cannot keep a secret (single-page or native app); it must
        /// use PKCE.
        #[arg(long)]
        public: bool,
        /// What its ID tokens are signed with (id_token_signed_response_alg).
        #[arg(long = "id-token-alg", default_value = "RS256")]
        id_token_alg: SigningAlg,
        /// Not the organisation's own portal: people are asked to consent to the
        /// scopes it wants (once; they can withdraw it in My Profile).
        #[arg(long = "third-party")]
        third_party: bool,
        /// OIDC Back-Channel Logout: where logout tokens are POSTed when a session
        /// that signed in to it ends (https, or http to localhost).
        #[arg(long = "backchannel-logout-uri", value_name = "URL")]
        backchannel_logout_uri: Option<String>,
        /// Accept authorization requests only through PAR (RFC 9126).
        #[arg(long = "require-par")]
        require_par: bool,
        /// A machine, not a portal: the client_credentials grant only, with the
        /// --scope and --audience given; no redirect URI.
        #[arg(long)]
        service: bool,
        /// A service's scope; repeat for several.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Who a service's tokens are for; repeat for several (default: its id).
        #[arg(long = "audience", value_name = "AUDIENCE")]
        audience: Vec<String>,
    },
    /// List the clients, from the configuration file and the database.
    List,
    /// Remove a client added with `client add`.
    Remove {
        /// Its client_id.
        id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    tweestap::allocator::return_large_blocks_to_the_system();
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
    config.validate()?;
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
        Command::User(cmd) => cli::user::run(cmd, &config, clock, migrate).await?,
        Command::Reminders(cmd) => cli::reminders::run(cmd, &config, clock, migrate).await?,
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
                "imported {} accounts, {} factors, {} audit entries, {} signing keys, {} clients, {} consents into {}",
                n.accounts,
                n.factors,
                n.audit,
                n.signing_keys,
                n.clients,
                n.consents,
                tweestap::describe_database(&config)
            );
        }
        Command::Keys(KeysCommand::List) => {
            let (app, _) = tweestap::engine(&config, clock, migrate).await?;
            app.ensure_signing_keys().await?;
            println!("{:<24} {:<6} {:<17} RETIRED", "KID", "ALG", "CREATED");
            for k in app.signing_keys().await? {
                println!(
                    "{:<24} {:<6} {:<17} {}",
                    k.kid,
                    k.alg,
                    k.created_at.format("%Y-%m-%d %H:%M"),
                    k.retired_at
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        Command::Keys(KeysCommand::RotateSecret(args)) => {
            cli::secret_rotation::run(args, &config, clock, migrate).await?
        }
        Command::Keys(KeysCommand::Rotate) => {
            let (app, _) = tweestap::engine(&config, clock, migrate).await?;
            for k in app.rotate_signing_keys().await? {
                println!("new {} key {}", k.alg, k.kid);
            }
            println!(
                "the previous keys stay published for {} hours, then they are deleted",
                config.oidc.key_retention_hours
            );
        }
        Command::Client(ClientCommand::Add {
            name,
            redirect_uris,
            public,
            id_token_alg,
            third_party,
            backchannel_logout_uri,
            require_par,
            service,
            scopes,
            audience,
        }) => {
            let (app, _) = tweestap::engine(&config, clock, migrate).await?;
            let options = tweestap_domain::oidc::ClientOptions {
                third_party,
                backchannel_logout_uri,
                require_par,
                service,
                scopes,
                audience,
            };
            let new = app
                .add_client(&name, &redirect_uris, public, id_token_alg, options)
                .await?;
            println!("client_id: {}", new.client.id);
            match new.secret {
                Some(secret) => {
                    println!("client_secret: {secret}");
                    eprintln!(
                        "keep the secret now: it is not shown again (only a hash of it is stored)"
                    );
                }
                None => println!("public client: no secret; it must use PKCE (S256)"),
            }
        }
        Command::Client(ClientCommand::List) => {
            let (app, _) = tweestap::engine(&config, clock, migrate).await?;
            println!(
                "{:<34} {:<24} {:<13} {:<9} {:<6} REDIRECT URIS / OPTIONS",
                "CLIENT ID", "NAME", "TYPE", "SOURCE", "ALG"
            );
            for c in app.clients().await? {
                let o = &c.options;
                let mut extra: Vec<String> = Vec::new();
                if o.third_party {
                    extra.push("third-party".into());
                }
                if o.require_par {
                    extra.push("require-par".into());
                }
                if let Some(u) = &o.backchannel_logout_uri {
                    extra.push(format!("backchannel-logout-uri={u}"));
                }
                if o.service {
                    extra.push(format!(
                        "service scopes=[{}] audience=[{}]",
                        o.scopes.join(" "),
                        c.service_audience().join(" ")
                    ));
                }
                let kind = if o.service {
                    "service"
                } else {
                    c.client_type()
                };
                println!(
                    "{:<34} {:<24} {:<13} {:<9} {:<6} {}",
                    c.id,
                    c.name,
                    kind,
                    match c.source {
                        ClientSource::Config => "config",
                        ClientSource::Database => "database",
                    },
                    c.id_token_alg,
                    c.redirect_uris
                        .iter()
                        .cloned()
                        .chain(extra)
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
        }
        Command::Client(ClientCommand::Remove { id }) => {
            let (app, _) = tweestap::engine(&config, clock, migrate).await?;
            app.remove_client(&id).await.map_err(|e| match e {
                tweestap_domain::Error::NotFound => format!("no client with the id {id}"),
                e => e.to_string(),
            })?;
            println!("removed client {id}");
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
