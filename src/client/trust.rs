//! What `get` trusts over https: the operating system's roots plus the
//! certificates of `--cacert`, and, beyond what a CA-based check accepts,
//! a `--cacert` certificate that *is* the server's (pinned).
//!
//! Why pinning: `openssl req -x509` makes self-signed certificates with
//! `CA:TRUE`, which webpki refuses as a server's own certificate
//! (`CaUsedAsEndEntity`) although curl accepts it with `--cacert`. When the
//! certificate the server presents is byte-identical to one the user handed
//! over, its name and validity dates are still checked, and the handshake's
//! signature is still verified with its key; only the chain rules are not.
//!
//! ureq builds its rustls config without a hook for a verifier, so TLS is
//! one connector of our own in ureq's chain ([`connector`]), after its TCP.

use std::fmt;
use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme, StreamOwned};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, TcpConnector, Transport, TransportAdapter,
};

/// The client's TLS set-up: `roots` to verify chains against, `pinned`
/// certificates accepted as they are.
pub fn client_config(
    roots: Vec<CertificateDer<'static>>,
    pinned: Vec<CertificateDer<'static>>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = crate::tls::provider();
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(roots);
    let builder = ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let config = if pinned.is_empty() {
        builder.with_root_certificates(store).with_no_client_auth()
    } else {
        let inner = if store.is_empty() {
            None
        } else {
            let built = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone()).build();
            Some(built.map_err(|e| rustls::Error::General(e.to_string()))?)
        };
        let verifier = Pinning { inner, pinned, schemes: provider.signature_verification_algorithms };
        builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier)).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// The chain ureq connects through: TCP, then our TLS for `https://`.
pub fn connector(config: Arc<ClientConfig>) -> impl Connector {
    ().chain(TcpConnector::default()).chain(Tls { config })
}

/// Accepts what the roots verify, or a pinned certificate by its bytes.
struct Pinning {
    /// `None` when there are no roots at all (an empty OS store).
    inner: Option<Arc<WebPkiServerVerifier>>,
    pinned: Vec<CertificateDer<'static>>,
    schemes: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl fmt::Debug for Pinning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pinning").field("pinned", &self.pinned.len()).finish()
    }
}

impl ServerCertVerifier for Pinning {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chained = match &self.inner {
            Some(inner) => inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
            None => Err(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)),
        };
        match chained {
            // The very certificate the user handed over: its own checks decide.
            Err(_) if self.pinned.iter().any(|p| p.as_ref() == end_entity.as_ref()) => {
                pinned_ok(end_entity, server_name, now)
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.schemes)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.schemes)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.supported_schemes()
    }
}

/// A pinned certificate's own checks: the name the client asked for, and
/// the validity dates.
fn pinned_ok(
    cert: &CertificateDer<'_>,
    name: &ServerName<'_>,
    now: UnixTime,
) -> Result<ServerCertVerified, rustls::Error> {
    use rustls::CertificateError as C;
    let parsed = rustls::server::ParsedCertificate::try_from(cert)?;
    rustls::client::verify_server_name(&parsed, name)?;
    let (not_before, not_after) =
        crate::tls::der::validity(cert).ok_or(rustls::Error::InvalidCertificate(C::BadEncoding))?;
    let now = UNIX_EPOCH + Duration::from_secs(now.as_secs());
    if now > not_after {
        return Err(rustls::Error::InvalidCertificate(C::Expired));
    }
    if now < not_before {
        return Err(rustls::Error::InvalidCertificate(C::NotValidYet));
    }
    Ok(ServerCertVerified::assertion())
}

/// Wraps the TCP transport of an `https://` request in rustls.
struct Tls {
    config: Arc<ClientConfig>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tls")
    }
}

impl<In: Transport> Connector<In> for Tls {
    type Out = Either<In, TlsTransport>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else { return Ok(None) };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned()).map_err(|_| ureq::Error::Tls("not a valid host name"))?;
        let mut conn = ClientConnection::new(self.config.clone(), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(Either::B(TlsTransport { buffers, stream: StreamOwned { conn, sock } })))
    }
}

/// An HTTP/1.1 transport over rustls (as ureq's own, over our config).
pub struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsTransport")
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject as _;

    #[test]
    fn a_pinned_certificate_is_still_checked_for_its_name_and_dates() {
        let (pem, _) = crate::tls::generate(&["files.lan".to_owned(), "10.0.0.5".to_owned()]).unwrap();
        let cert = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let name = |s: &str| ServerName::try_from(s.to_owned()).unwrap();
        let now = UnixTime::now();
        assert!(pinned_ok(&cert, &name("files.lan"), now).is_ok());
        assert!(pinned_ok(&cert, &name("10.0.0.5"), now).is_ok());
        assert!(pinned_ok(&cert, &name("evil.example"), now).is_err());
        let later = UnixTime::since_unix_epoch(Duration::from_secs(now.as_secs() + 400 * 86_400));
        assert!(matches!(
            pinned_ok(&cert, &name("files.lan"), later),
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Expired))
        ));
        let before = UnixTime::since_unix_epoch(Duration::from_secs(now.as_secs() - 2 * 86_400));
        assert!(pinned_ok(&cert, &name("files.lan"), before).is_err());
    }
}
