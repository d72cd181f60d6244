//! Lambda `invitation-accept`: Accept an invitation: where to set the password, as JSON, or as 303 See Other to a browser's form post.

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, identity_provider_from_env, no_files};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::InvitationAccept, handlers::InvitationAccept)];
    let ports = Ports {
        files: no_files,
        idp: identity_provider_from_env,
    };
    peak_functions::run("invitation-accept", routes, ports).await
}
