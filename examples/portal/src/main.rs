//! Loket as a program: `tweestap-example-portal --help`.

use clap::Parser;

#[tokio::main]
async fn main() {
    let config = tweestap_example_portal::Config::parse();
    match tweestap_example_portal::serve(config).await {
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
