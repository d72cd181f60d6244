//! Lambda `invitation-accept`: accepting an invitation.

use peak_api::{Handler, Route, dispatch};
use peak_functions::{Ports, identity_provider_from_env, no_files};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::AcceptInvitation, dispatch::AcceptInvitation)];
    let ports = Ports {
        files: no_files,
        idp: identity_provider_from_env,
    };
    peak_functions::run("invitation-accept", routes, ports).await
}
