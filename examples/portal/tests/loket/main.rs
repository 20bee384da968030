//! Loket's own tests, against a stand-in provider (tests/loket/provider.rs):
//! step-up before changing the bank account, and the back-channel logout
//! receiver's checks. The full journeys against a real tweestap are in the
//! server's integration tests (browser/portal*.rs).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test with its location"
)]

mod backchannel;
mod keys;
mod provider;
mod step_up;

/// A browser: keeps cookies, follows redirects itself (so tests see each hop).
pub struct Browser {
    pub http: reqwest::Client,
    /// Every URL visited, in order.
    pub visited: Vec<String>,
}

/// Where a browser ended: the URL, the status and the page.
pub struct Landing {
    pub url: String,
    pub status: u16,
    pub body: String,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            visited: Vec::new(),
        }
    }

    /// GETs `url` and follows redirects to the end.
    pub async fn open(&mut self, url: &str) -> Landing {
        let r = self.http.get(url).send().await.unwrap();
        self.follow(url, r).await
    }

    /// POSTs a form to `url` and follows redirects to the end.
    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Landing {
        let r = self.http.post(url).form(form).send().await.unwrap();
        self.follow(url, r).await
    }

    async fn follow(&mut self, url: &str, mut r: reqwest::Response) -> Landing {
        let mut url = openidconnect::url::Url::parse(url).unwrap();
        self.visited.push(url.to_string());
        for _ in 0..10 {
            let Some(to) = r.headers().get("location") else {
                break;
            };
            url = url.join(to.to_str().unwrap()).unwrap();
            self.visited.push(url.to_string());
            r = self.http.get(url.clone()).send().await.unwrap();
        }
        Landing {
            url: url.to_string(),
            status: r.status().as_u16(),
            body: r.text().await.unwrap(),
        }
    }
}
