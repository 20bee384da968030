//! `tweestap keys rotate-secret`: every secret at rest sealed again under a new
//! at-rest key, resumable, while servers keep running (see `at_rest` for the key
//! files and the domain's `secret_rotation` for the re-sealing).

use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tweestap::at_rest::{read_key, KeyFiles, Retired};
use tweestap::config::Config;
use tweestap_domain::clock::SystemClock;
use tweestap_domain::service::ResealOptions;

type BoxError = Box<dyn std::error::Error>;

#[derive(Args)]
pub struct RotateSecret {
    /// The key to move to (a file as `at-rest.key`: base64 of 32 random bytes)
    /// instead of a new one.
    #[arg(long, value_name = "FILE")]
    new_key_file: Option<PathBuf>,
    /// Only write the new key (`at-rest.key.next`) and stop, to copy it to the
    /// data directory of every other node first.
    #[arg(long)]
    prepare: bool,
    /// Secrets per transaction.
    #[arg(long, default_value_t = 500)]
    batch_size: u32,
    /// A pause after each batch (milliseconds), to spare a busy database.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pause_ms: u64,
    /// How long the new key file must exist before re-sealing starts, so that
    /// running servers (which read their key files every 2 seconds) seal under it.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    wait: u64,
    /// Stop after this many batches, as a crash would (for tests).
    #[arg(long, hide = true)]
    stop_after_batches: Option<u32>,
}

pub async fn run(
    args: RotateSecret,
    config: &Config,
    clock: Arc<SystemClock>,
    migrate: bool,
) -> Result<(), BoxError> {
    // The database first: a rotation that cannot reach it writes no key file.
    let (app, master) = tweestap::engine(config, clock, migrate).await?;
    let files = KeyFiles::new(&config.data_dir);
    let given = match &args.new_key_file {
        Some(path) => {
            Some(read_key(path)?.ok_or_else(|| format!("{}: no such file", path.display()))?)
        }
        None => None,
    };
    let (next, wrote) = files.prepare(&master, given)?;
    let next_path = files.next_path();
    if wrote {
        println!(
            "new at-rest key {} written to {}",
            next.id(),
            next_path.display()
        );
    } else {
        println!(
            "resuming the rotation to at-rest key {} ({})",
            next.id(),
            next_path.display()
        );
    }
    if args.prepare {
        println!(
            "copy {} (mode 0600) into the data directory of every other node, then run `tweestap keys rotate-secret` on one node",
            next_path.display()
        );
        return Ok(());
    }
    app.secrets().reload()?;
    if app.secrets().sealing_key() != next.id() {
        return Err(format!(
            "at-rest key {} does not seal here; is {} readable?",
            next.id(),
            next_path.display()
        )
        .into());
    }
    wait_for_servers(&next_path, Duration::from_secs(args.wait)).await?;

    let report = app
        .reseal_secrets(ResealOptions {
            batch_size: args.batch_size.max(1),
            pause: Duration::from_millis(args.pause_ms),
            stop_after_batches: args.stop_after_batches,
        })
        .await?;
    if !report.finished {
        return Err(format!(
            "stopped after {} batches as asked ({} secrets sealed again); both keys still open everything: run `tweestap keys rotate-secret` again to finish",
            report.batches, report.resealed
        )
        .into());
    }
    for (kind, n) in &report.checked {
        println!("{:<16} {n}", kind.as_str());
    }
    println!(
        "{} secrets sealed again under at-rest key {} (in {} transactions)",
        report.resealed,
        next.id(),
        report.batches
    );
    let census = app.sealed_key_census().await?;
    if let Some((other, n)) = census
        .iter()
        .find(|(key, _)| key.as_deref() != Some(&next.id().to_string()))
    {
        return Err(format!(
            "{n} secrets are still sealed under {}; run the command again",
            other.as_deref().unwrap_or("the key of the first version")
        )
        .into());
    }

    match files.promote(&master)? {
        Retired::Derived(old) => println!(
            "done: {} is now at-rest.key. The old at-rest key {old} was derived from secret.key, which stays (it keys the codes' MACs): nothing to delete, and database backups made before now open with secret.key alone.",
            next.id()
        ),
        Retired::KeptIn(old, path) => println!(
            "done: {} is now at-rest.key. The old at-rest key {old} opens nothing in the database any more; it is kept in {} for the database backups made before now: keep it with them and delete it when they expire.",
            next.id(),
            path.display()
        ),
    }
    println!(
        "running servers already seal under the new key; they forget the old one when restarted"
    );
    Ok(())
}

/// Waits until `next_path` is `wait` old: every running server on this data
/// directory has read it by then and seals under the new key.
async fn wait_for_servers(next_path: &std::path::Path, wait: Duration) -> Result<(), BoxError> {
    let age = std::fs::metadata(next_path)?
        .modified()?
        .elapsed()
        .unwrap_or_default();
    if let Some(left) = wait.checked_sub(age).filter(|d| !d.is_zero()) {
        println!(
            "waiting {} s for running servers to take up the new key",
            left.as_secs_f32().ceil()
        );
        tokio::time::sleep(left).await;
    }
    Ok(())
}
