//! A real nginx (Debian's package) in front of a static site, guarded by tweestap
//! with `auth_request`: anonymous visitors are sent to sign in and back, signed-in
//! ones pass with the `Remote-*` headers. Skips loudly without nginx; fails under
//! TWEESTAP_REQUIRE_ALL=1.

use crate::kit::{free_port, skip_for_want_of, totp, PASSWORD};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use tweestap::config::Config;
use tweestap_domain::account::Role;

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nginx_binary() -> Option<String> {
    ["/usr/sbin/nginx", "nginx"]
        .iter()
        .find(|c| {
            Command::new(c)
                .arg("-v")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
        })
        .map(|c| (*c).to_owned())
}

#[tokio::test]
async fn nginx_auth_request_sends_strangers_to_sign_in_and_lets_members_through() {
    let Some(nginx) = nginx_binary() else {
        skip_for_want_of("nginx", "apt-get install nginx-light");
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let clock = totp::test_clock();
    // The portal's port first: its origin is the one tweestap may send people back to.
    let port = free_port();
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().join("data"),
        forward_auth: tweestap::config::ForwardAuthConfig {
            return_hosts: vec![format!("http://127.0.0.1:{port}")],
        },
        ..Config::default()
    };
    let server = tweestap::spawn(&config, Arc::new(clock))
        .await
        .expect("server");
    server
        .app
        .add_account("an@example.be", "An Peeters", Role::User, PASSWORD)
        .await
        .expect("account");
    let auth = server.url();

    // The portal: a static page behind auth_request.
    let site = dir.path().join("site");
    std::fs::create_dir_all(&site).expect("site");
    std::fs::write(site.join("index.html"), "<h1>Loket</h1>").expect("page");
    let conf_path = dir.path().join("nginx.conf");
    let tmp = dir.path().display();
    let conf = format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {site};
        location = /_tweestap {{
            internal;
            proxy_pass {auth}/auth/request;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
        }}
        location @signin {{
            return 302 {auth}/login?rd=$scheme://$http_host$request_uri;
        }}
        location / {{
            auth_request /_tweestap;
            auth_request_set $remote_user_h $upstream_http_remote_user;
            auth_request_set $remote_email_h $upstream_http_remote_email;
            error_page 401 = @signin;
            add_header X-Remote-User $remote_user_h always;
            add_header X-Remote-Email $remote_email_h always;
        }}
    }}
}}
"#,
        site = site.display(),
    );
    std::fs::File::create(&conf_path)
        .and_then(|mut f| f.write_all(conf.as_bytes()))
        .expect("nginx.conf");
    let child = Command::new(&nginx)
        .args([
            "-p",
            &tmp.to_string(),
            "-c",
            &conf_path.display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nginx starts");
    let _nginx = Nginx(child);
    let portal = format!("http://127.0.0.1:{port}");

    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    // nginx needs a moment to listen.
    let mut first = None;
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{portal}/index.html?x=1")).send().await {
            first = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let first = first.unwrap_or_else(|| {
        panic!(
            "nginx did not answer; error.log: {}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        )
    });

    // Anonymous: sent to tweestap's sign-in, with the way back.
    assert_eq!(first.status().as_u16(), 302);
    let to = first.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(
        to,
        format!("{auth}/login?rd=http://127.0.0.1:{port}/index.html?x=1")
    );

    // Sign in at tweestap (the same host, so the browser sends the cookie to the
    // portal too), following the way back.
    let login_page = http.get(&to).send().await.expect("login page");
    assert_eq!(login_page.status().as_u16(), 200);
    let html = login_page.text().await.expect("html");
    let at = html.find("name=\"csrf\" value=\"").expect("csrf") + 19;
    let csrf = html[at..at + 64].to_owned();
    let r = http
        .post(format!("{auth}/login"))
        .form(&[
            ("email", "an@example.be"),
            ("password", PASSWORD),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status().as_u16(), 303);
    let r = http.get(format!("{auth}/")).send().await.expect("home");
    assert_eq!(
        r.headers()["location"].to_str().expect("ascii"),
        format!("http://127.0.0.1:{port}/index.html?x=1")
    );

    // Signed in: the page, with who it is.
    let r = http
        .get(format!("{portal}/index.html?x=1"))
        .send()
        .await
        .expect("portal");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-remote-user"], "an@example.be");
    assert_eq!(r.headers()["x-remote-email"], "an@example.be");
    assert_eq!(r.text().await.expect("body"), "<h1>Loket</h1>");

    // Signed out: sent to sign in again.
    let home = http
        .get(format!("{auth}/account"))
        .send()
        .await
        .expect("account");
    let html = home.text().await.expect("html");
    let at = html.find("name=\"csrf\" value=\"").expect("csrf") + 19;
    let csrf = html[at..at + 64].to_owned();
    http.post(format!("{auth}/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    let r = http.get(format!("{portal}/")).send().await.expect("portal");
    assert_eq!(r.status().as_u16(), 302);
    server.stop();
}
