//! One database backend under test: a data directory (always: it holds the keys),
//! and for PostgreSQL a fresh database, dropped afterwards.

use crate::BoxError;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sqlite => "SQLite",
            Kind::Postgres => "PostgreSQL",
        }
    }
}

pub struct Backend {
    pub kind: Kind,
    pub dir: PathBuf,
    pub port: u16,
    pub config_path: PathBuf,
    pub database_url: String,
}

impl Backend {
    /// `None` (after a loud message, as the tests do) when PostgreSQL cannot be
    /// used; with `TWEESTAP_REQUIRE_ALL=1` that is an error.
    pub async fn create(kind: Kind) -> Result<Option<Self>, BoxError> {
        let dir = std::env::temp_dir().join(format!(
            "tweestap-bench-{}-{}",
            match kind {
                Kind::Sqlite => "sqlite",
                Kind::Postgres => "postgres",
            },
            uuid::Uuid::new_v4().simple()
        ));
        let database_url = match kind {
            Kind::Sqlite => String::new(),
            Kind::Postgres => {
                match tokio::spawn(tweestap_testkit::fresh_postgres_database()).await {
                    Ok(Some(url)) => url,
                    Ok(None) => return Ok(None),
                    Err(e) => return Err(panic_message(e).into()),
                }
            }
        };
        std::fs::create_dir_all(&dir)?;
        let port = crate::server::free_port()?;
        let config_path = crate::server::write_config(&dir, port, &database_url)?;
        Ok(Some(Self {
            kind,
            dir,
            port,
            config_path,
            database_url,
        }))
    }

    pub async fn remove(self) {
        if self.kind == Kind::Postgres {
            tweestap_testkit::drop_database(&self.database_url).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The testkit panics (with its message) when `TWEESTAP_REQUIRE_ALL=1` and
/// PostgreSQL cannot be used: that becomes the error.
fn panic_message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let p = e.into_panic();
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "PostgreSQL cannot be used".into())
}
