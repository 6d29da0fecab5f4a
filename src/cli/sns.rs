//! `lux sns trust-cert --url URL --cert-file PEM`: pins an SNS signing certificate for its URL,
//! for installations that cannot fetch it from AWS (SES webhooks then verify offline).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;

use super::owner_pool;

#[derive(Subcommand)]
pub enum SnsCommand {
    /// Pin the certificate SNS signs with at URL (an https://sns.<region>.amazonaws.com/….pem
    /// SigningCertURL); prints the URL as stored, as JSON.
    TrustCert {
        #[arg(long)]
        url: String,
        /// The certificate, PEM.
        #[arg(long)]
        cert_file: PathBuf,
    },
}

pub async fn run(command: SnsCommand, url: &str) -> anyhow::Result<()> {
    match command {
        SnsCommand::TrustCert {
            url: cert_url,
            cert_file,
        } => {
            let pem = std::fs::read(&cert_file)
                .with_context(|| format!("reading {}", cert_file.display()))?;
            let owner = owner_pool(url).await?;
            let pinned = lux::messages::sns_certs::pin(&owner, &cert_url, &pem).await;
            owner.close().await;
            let pinned = pinned.with_context(|| format!("{}", cert_file.display()))?;
            println!(
                "{}",
                serde_json::json!({ "url": pinned.as_str(), "pinned": true })
            );
            Ok(())
        }
    }
}
