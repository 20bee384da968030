//! An HTTP client on a test app: JSON requests to the API with their answers.

use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

/// Keeps cookies and does not follow redirects, like a browser's API calls.
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Client {
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("request");
        reply(r).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        reply(
            self.http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn delete(&self, path: &str, body: Value) -> Reply {
        reply(
            self.http
                .delete(format!("{}{path}", self.base))
                .json(&body)
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        reply(r).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/api/v1/login",
            json!({ "email": email, "password": password }),
        )
        .await
    }
}

async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply { status, body }
}
