//! Lambda `settings-get`: The tenant's settings (admins; 404 for a tenant configured by deployment only).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::SettingsGet, handlers::SettingsGet)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("settings-get", routes, ports).await
}
