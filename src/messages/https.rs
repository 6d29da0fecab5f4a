//! A minimal HTTPS GET for talking to AWS (SNS certificates, subscription confirmations), and
//! a JSON POST for Slack incoming webhooks (alerts):
//! one HTTP/1.1 request per connection, rustls with the ring provider given explicitly (no
//! process-wide default is installed), the system's roots (rustls-platform-verifier), no
//! redirects followed, a size cap on the answer and a deadline on the whole exchange.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use url::Url;

/// What a GET answered.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// The TLS settings, built once: TLS 1.2 and 1.3, server certificates checked against the
/// system's roots.
fn tls_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
                .map_err(|e| format!("TLS roots: {e}"))?;
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

/// GETs an `https://` URL; the answer's body is cut off with an error beyond `max_bytes`.
pub async fn get(url: &Url, max_bytes: usize, deadline: Duration) -> Result<Answer, String> {
    tokio::time::timeout(deadline, exchange(url, max_bytes))
        .await
        .map_err(|_| format!("no answer within {} s", deadline.as_secs()))?
}

async fn exchange(url: &Url, max_bytes: usize) -> Result<Answer, String> {
    if url.scheme() != "https" {
        return Err("only https URLs are fetched".into());
    }
    let host = url.host_str().ok_or("URL has no host")?.to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let name = ServerName::try_from(host.clone()).map_err(|_| "invalid host name")?;
    let tls = TlsConnector::from(tls_config()?)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    // The connection is driven until the answer is read; dropped (closed) afterwards.
    let driver = tokio::spawn(connection);
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let request = Request::get(target)
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "lux-analytics")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), max_bytes)
            .collect()
            .await
            .map_err(|e| format!("answer: {e}"))?
            .to_bytes()
            .to_vec();
        Ok(Answer { status, body })
    }
    .await;
    driver.abort();
    result
}

/// POSTs a JSON body (a Slack incoming webhook, for the alerts) to an `https://` URL, or an
/// `http://` one (a webhook relay on the local network, the tests' receiver); answers the
/// status. Same TLS settings and deadline rule as [`get`].
pub async fn post_json(url: &Url, body: Vec<u8>, deadline: Duration) -> Result<StatusCode, String> {
    tokio::time::timeout(deadline, post_exchange(url, body))
        .await
        .map_err(|_| format!("no answer within {} s", deadline.as_secs()))?
}

async fn post_exchange(url: &Url, body: Vec<u8>) -> Result<StatusCode, String> {
    let host = url.host_str().ok_or("URL has no host")?.to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let target = url[url::Position::BeforePath..url::Position::AfterQuery].to_string();
    let request = Request::post(target)
        .header(hyper::header::HOST, host.clone())
        .header(hyper::header::USER_AGENT, "lux-analytics")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(Bytes::from(body)))
        .map_err(|e| format!("request: {e}"))?;
    match url.scheme() {
        "http" => send(TokioIo::new(tcp), request).await,
        "https" => {
            let name = ServerName::try_from(host).map_err(|_| "invalid host name")?;
            let tls = TlsConnector::from(tls_config()?)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            send(TokioIo::new(tls), request).await
        }
        other => Err(format!("cannot POST to a {other}: URL")),
    }
}

async fn send<T>(
    io: TokioIo<T>,
    request: Request<http_body_util::Full<Bytes>>,
) -> Result<StatusCode, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let driver = tokio::spawn(connection);
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let status = response.status();
        // Read (and drop) a bounded answer so the exchange completes.
        let _ = Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await;
        Ok(status)
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::ServerConfig;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    // A self-signed certificate that no system root vouches for.
    const CERT: &[u8] = include_bytes!("../../tests/fixtures/sns/signer_cert.pem");
    const KEY: &[u8] = include_bytes!("../../tests/fixtures/sns/signer_key.pem");

    #[tokio::test]
    async fn only_https_urls_are_fetched() {
        let url = Url::parse("http://127.0.0.1:9/cert.pem").unwrap();
        let error = get(&url, 1024, Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(error, "only https URLs are fetched");
    }

    #[tokio::test]
    async fn a_server_no_trusted_root_vouches_for_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![CertificateDer::from_pem_slice(CERT).unwrap()],
                    PrivateKeyDer::from_pem_slice(KEY).unwrap(),
                )
                .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        // Would serve a certificate if the client went through with the handshake.
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
                    .await;
            }
        });
        let url = Url::parse(&format!("https://127.0.0.1:{port}/cert.pem")).unwrap();
        let error = get(&url, 1024, Duration::from_secs(10)).await.unwrap_err();
        assert!(error.contains("invalid peer certificate"), "{error}");
        server.abort();
    }
}
