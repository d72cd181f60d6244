//! Lambda `profile-catalogue`: the profile settings catalogue (seven tabs and extension groups).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    peak_functions::run("profile-catalogue").await
}
