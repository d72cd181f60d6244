//! One module per resource; a handler is named after its route
//! (`Route::UserUpdate` → `users::user_update`). A handler parses the
//! request, calls one domain use case — which authorizes the caller — and
//! shapes the response. The Auth0 webhook also verifies the delivery's
//! signature or token before it hands it to the identity-events use case
//! (`webhooks.rs`). `batch.rs` runs many user changes, each through its
//! single route's use case. The exception: the bulk-invite handlers drive the job
//! and file stores directly (`bulk.rs`; the policy's `authorize_invite`
//! decides there).

pub mod accounts;
pub mod batch;
pub mod bulk;
pub mod catalogue;
pub mod me;
pub mod profiles;
pub mod public;
pub mod settings;
pub mod stuck_work;
mod table;
pub mod users;
pub mod webhooks;

// Every route's function (`routes!`), by its route's name: a Lambda's
// `main` names `handlers::UserGet`.
pub use accounts::*;
pub use batch::*;
pub use bulk::*;
pub use catalogue::*;
pub use me::*;
pub use profiles::*;
pub use public::*;
pub use settings::*;
pub use stuck_work::*;
pub use table::handler;
pub use users::*;
pub use webhooks::*;

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;

pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned());
    let mut resp = Response::new(Body::Text(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// JSON that is already text (a document built into the binary).
pub(crate) fn json_text(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::Text(text.to_owned()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Body::Empty);
    *resp.status_mut() = status;
    resp
}
