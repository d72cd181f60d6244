//! Lambda `settings-update`: Change the tenant's settings (admins, If-Match required; audited).

use peak_api::{Handler, Route, handlers};
use peak_functions::{Ports, no_files, no_identity_provider};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let routes: &[(Route, Handler)] = &[(Route::SettingsUpdate, handlers::SettingsUpdate)];
    let ports = Ports {
        files: no_files,
        idp: no_identity_provider,
    };
    peak_functions::run("settings-update", routes, ports).await
}
