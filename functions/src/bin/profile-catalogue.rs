//! Lambda `profile-catalogue`: the profile settings catalogue (seven tabs).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run(&[peak_api::Route::GetCatalogue]).await
}
