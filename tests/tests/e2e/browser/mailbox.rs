//! A small web server of the test's own on a loopback port: a mail
//! program's window (it shows an email's HTML part, whose links the browser
//! then follows) and a portal frontend's page (a script calling the API
//! from this origin, as a portal on its own origin does).

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Html;
use axum::routing::get;
use std::sync::{Arc, Mutex};

pub struct Mailbox {
    pub origin: String,
    mails: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A portal page: calls `GET {api}/me` with the token (both from the
/// fragment) and shows what happened in its heading.
const PORTAL_APP: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Portal</title></head>
<body><main><h1 id="result">calling the API</h1></main>
<script>
const p = new URLSearchParams(location.hash.slice(1));
fetch(p.get("api") + "/me", { headers: { Authorization: "Bearer " + p.get("token") } })
  .then(r => r.json().then(me => {
    document.getElementById("result").textContent =
      "allowed: " + r.status + " " + me.email + " etag " + r.headers.get("etag");
  }))
  .catch(e => { document.getElementById("result").textContent = "blocked: " + e.name; });
</script></body></html>"#;

impl Mailbox {
    pub async fn start() -> Mailbox {
        let mails = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/mail/{n}", get(show_mail))
            .route("/portal-app", get(|| async { Html(PORTAL_APP) }))
            .with_state(mails.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("mailbox port");
        let origin = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Mailbox {
            origin,
            mails,
            task,
        }
    }

    /// Keeps an email's HTML part; returns where the browser opens it.
    pub fn put(&self, html: String) -> String {
        let mut mails = self.mails.lock().expect("mails");
        mails.push(html);
        format!("{}/mail/{}", self.origin, mails.len() - 1)
    }

    pub fn portal_app(&self, api: &str, token: &str) -> String {
        format!("{}/portal-app#api={api}&token={token}", self.origin)
    }
}

async fn show_mail(
    State(mails): State<Arc<Mutex<Vec<String>>>>,
    Path(n): Path<usize>,
) -> Html<String> {
    let mails = mails.lock().expect("mails");
    Html(mails.get(n).cloned().unwrap_or_default())
}
