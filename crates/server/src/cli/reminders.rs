//! `tweestap reminders ...`: the reminder campaign before a role's deadline. The
//! server runs it every hour by itself; this runs it now and says what it sent.

use clap::Subcommand;
use std::sync::Arc;
use tweestap::config::Config;
use tweestap_domain::account::Role;
use tweestap_domain::clock::SystemClock;

type BoxError = Box<dyn std::error::Error>;

#[derive(Subcommand)]
pub enum RemindersCommand {
    /// Queue the reminder mails due now (each stage at most once per account, also
    /// when a server runs it at the same time) and print them. The running server
    /// delivers the mail.
    Run,
    /// What is due today per role, and the latest reminders sent.
    Status,
}

pub async fn run(
    command: RemindersCommand,
    config: &Config,
    clock: Arc<SystemClock>,
    migrate: bool,
) -> Result<(), BoxError> {
    let (app, _) = tweestap::engine(config, clock, migrate).await?;
    match command {
        RemindersCommand::Run => {
            let sent = app.send_reminders().await?;
            for s in &sent {
                println!(
                    "sent  {:<40} deadline={} stage={} days before",
                    s.email, s.deadline, s.stage
                );
            }
            println!("{} reminder mail(s) queued", sent.len());
        }
        RemindersCommand::Status => {
            for role in [Role::User, Role::Support, Role::Admin] {
                match app.due_reminder(role) {
                    Some((deadline, stage)) => {
                        println!("{role:<8} due today: {stage} days before {deadline}")
                    }
                    None => println!("{role:<8} nothing due today"),
                }
            }
            for s in app.sent_reminders(50).await? {
                println!(
                    "{}  {:<40} deadline={} stage={}",
                    s.sent_at.format("%Y-%m-%d %H:%M"),
                    s.email,
                    s.deadline,
                    s.stage
                );
            }
        }
    }
    Ok(())
}
