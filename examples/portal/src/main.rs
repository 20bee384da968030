//! Loket as a program: `tweestap-example-portal --help`.

use clap::Parser;
use std::time::Duration;

/// Loket's command line: its [`Config`](tweestap_example_portal::Config) and the
/// step-up limit.
#[derive(Debug, clap::Parser)]
#[command(
    name = "tweestap-example-portal",
    about = "Loket: signs its users in through tweestap"
)]
struct Cli {
    #[command(flatten)]
    config: tweestap_example_portal::Config,
    /// Seconds a sign-in with a second factor stays good for changing the bank
    /// account; older, Loket asks tweestap again with max_age and acr_values.
    #[arg(long, env = "PORTAL_STEP_UP_MAX_AGE", default_value_t = 300)]
    step_up_max_age: u64,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let options = tweestap_example_portal::Options {
        step_up_max_age: Duration::from_secs(cli.step_up_max_age),
        ..Default::default()
    };
    match tweestap_example_portal::serve_with(cli.config, options).await {
        Ok((addr, handle)) => {
            println!("Loket listens on http://{addr}");
            let _ = handle.await;
        }
        Err(e) => {
            eprintln!("loket: {e}");
            std::process::exit(1);
        }
    }
}
