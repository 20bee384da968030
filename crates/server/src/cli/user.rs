//! `tweestap user ...`: accounts from the command line.

use clap::Subcommand;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;
use tweestap::config::Config;
use tweestap_domain::account::{Account, Role};
use tweestap_domain::audit::RequestContext;
use tweestap_domain::clock::SystemClock;
use tweestap_domain::service::{Actor, ImportOptions, ImportReport};
use tweestap_domain::Tweestap;

type BoxError = Box<dyn std::error::Error>;

#[derive(Subcommand)]
pub enum UserCommand {
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
    /// Reset an account's two-step verification, as support does for a lost phone:
    /// every app and every session of the account ends, and a mail with a link to set
    /// it up again is queued (the running server sends it).
    #[command(name = "reset-2fa")]
    ResetTwoFactor {
        /// The account's e-mail address.
        email: String,
        /// Why, for the audit log (required).
        #[arg(long)]
        reason: String,
    },
    /// Give an account another e-mail address, e.g. to turn a shared mailbox (info@)
    /// into a personal account. The old address stays in the audit log.
    SetEmail {
        /// The account's current e-mail address.
        old: String,
        /// Its new address.
        new: String,
    },
    /// Disable an account: it cannot sign in, its sessions end, every token portals
    /// hold of it stops working and the portals are told (back-channel logout).
    Disable {
        /// The account's e-mail address (or give it with --email).
        address: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
    /// Enable a disabled account again (its sessions and tokens stay ended).
    Enable {
        /// The account's e-mail address (or give it with --email).
        address: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
    /// Import accounts from a CSV file whose header names the columns, in any order:
    /// email (required), name, role, password_hash, invite. Known addresses get the
    /// name, role and password hash given; hashes (Argon2, PBKDF2-SHA256, scrypt,
    /// bcrypt) are copied and become Argon2id at the first sign-in. All or nothing
    /// unless --keep-going; a second run of the same file changes nothing. Exits
    /// non-zero when a line has an error.
    Import {
        /// The CSV file; `-` for standard input.
        file: PathBuf,
        /// Only report what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write the good lines even when others have errors (they are reported).
        #[arg(long)]
        keep_going: bool,
        /// Print the report as JSON, as the API answers it.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `user` command.
pub async fn run(
    command: UserCommand,
    config: &Config,
    clock: Arc<SystemClock>,
    migrate: bool,
) -> Result<(), BoxError> {
    match command {
        UserCommand::Add {
            email,
            name,
            role,
            password_stdin,
        } => {
            let role: Role = role.parse()?;
            let password = read_password(password_stdin)?;
            let (app, _) = tweestap::engine(config, clock.clone(), migrate).await?;
            let a = app.add_account(&email, &name, role, &password).await?;
            println!("created {} ({})", a.email, a.role);
        }
        UserCommand::List { shared } => {
            let (app, _) = tweestap::engine(config, clock.clone(), migrate).await?;
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
        UserCommand::ResetTwoFactor { email, reason } => {
            if reason.trim().is_empty() {
                return Err("give a reason with --reason; it is kept in the audit log".into());
            }
            let (app, _) = tweestap::engine(config, clock.clone(), migrate).await?;
            let account = account_by_email(&app, &email).await?;
            let base = tweestap::links_base(config, config.listen);
            let expires_at = app
                .reset_two_factor(
                    Actor::Console,
                    account.id,
                    &reason,
                    &base,
                    &RequestContext::default(),
                )
                .await?;
            println!(
                "two-step verification of {} has been reset: every app and every session of the account has ended",
                account.email
            );
            println!(
                "a mail with a link to set it up again ({base}/enroll/...) is queued for {}; the link works until {}",
                account.email,
                expires_at.format("%Y-%m-%d %H:%M UTC")
            );
            println!("the running server (tweestap serve) sends queued mail");
        }
        UserCommand::SetEmail { old, new } => {
            let (app, _) = tweestap::engine(config, clock.clone(), migrate).await?;
            let account = account_by_email(&app, &old).await?;
            let changed = app
                .change_email(Actor::Console, account.id, &new, &RequestContext::default())
                .await
                .map_err(|e| match e {
                    tweestap_domain::Error::InvalidEmail => {
                        format!("{new:?} is not a valid e-mail address")
                    }
                    tweestap_domain::Error::EmailTaken => {
                        format!("an account with the e-mail address {new} already exists")
                    }
                    e => e.to_string(),
                })?;
            println!("{} is now {}", account.email, changed.email);
            if app.is_shared_mailbox(&changed.email) {
                println!("note: {} still looks like a shared mailbox", changed.email);
            }
        }
        UserCommand::Disable { address, email } => {
            let email = address
                .or(email)
                .ok_or("give the account's e-mail address")?;
            let (app, _) = tweestap::engine(config, clock.clone(), migrate).await?;
            let account = app
                .set_account_disabled(&email, true)
                .await
                .map_err(|e| match e {
                    tweestap_domain::Error::NotFound => {
                        format!("no account with the e-mail address {email}")
                    }
                    e => e.to_string(),
                })?;
            println!(
                "{} is disabled: its sessions and tokens have ended; the running server tells the portals",
                account.email
            );
        }
        UserCommand::Enable { address, email } => {
            let email = address
                .or(email)
                .ok_or("give the account's e-mail address")?;
            let (app, _) = tweestap::engine(config, clock.clone(), migrate).await?;
            let account = app
                .set_account_disabled(&email, false)
                .await
                .map_err(|e| match e {
                    tweestap_domain::Error::NotFound => {
                        format!("no account with the e-mail address {email}")
                    }
                    e => e.to_string(),
                })?;
            println!("{} can sign in again", account.email);
        }
        UserCommand::Import {
            file,
            dry_run,
            keep_going,
            json,
        } => {
            let bytes = if file.as_os_str() == "-" {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut b)?;
                b
            } else {
                std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?
            };
            let (app, _) = tweestap::engine(config, clock.clone(), migrate).await?;
            let options = ImportOptions {
                dry_run,
                all_or_nothing: !keep_going,
            };
            let base = tweestap::links_base(config, config.listen);
            let ctx = RequestContext::default();
            let report = app
                .import_accounts(Actor::Console, &bytes, options, &base, &ctx)
                .await?;
            print_report(&report, json)?;
            if !report.errors.is_empty() {
                let n = report.errors.len();
                return Err(if report.written {
                    format!("{n} line(s) had errors and were left out; the others were imported")
                } else if dry_run {
                    format!("{n} line(s) have errors")
                } else {
                    format!("{n} line(s) have errors: nothing was written (--keep-going writes the good lines)")
                }
                .into());
            }
        }
    }
    Ok(())
}

/// The report of an import: the counts, then each bad line.
fn print_report(r: &ImportReport, json: bool) -> Result<(), BoxError> {
    if json {
        let errors: Vec<serde_json::Value> = r
            .errors
            .iter()
            .map(|e| serde_json::json!({ "line": e.line, "message": e.message }))
            .collect();
        let doc = serde_json::json!({
            "created": r.created,
            "updated": r.updated,
            "unchanged": r.unchanged,
            "invited": r.invited,
            "errors": errors,
            "written": r.written,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let state = if r.written { "imported" } else { "not written" };
    println!(
        "created: {}, updated: {}, unchanged: {}, invited: {}, errors: {} ({state})",
        r.created,
        r.updated,
        r.unchanged,
        r.invited,
        r.errors.len()
    );
    for e in &r.errors {
        println!("line {}: {}", e.line, e.message);
    }
    Ok(())
}

/// The account with this address, or an error that names it.
async fn account_by_email(app: &Tweestap, email: &str) -> Result<Account, BoxError> {
    app.account_by_email(email).await.map_err(|e| match e {
        tweestap_domain::Error::NotFound => {
            format!("no account with the e-mail address {email}").into()
        }
        tweestap_domain::Error::InvalidEmail => {
            format!("{email:?} is not a valid e-mail address").into()
        }
        e => e.into(),
    })
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
