//! Lambda `invitation-resend`: Resend an invitation (the old link stops working).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::InvitationResend, handlers::InvitationResend)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("invitation-resend", routes, ports).await
}
