//! `hoard:plugin/credentials`: secrets used for a plugin without being shown to it.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynOutputStream, StreamError};

use crate::plugin::bindings::WitError;
use crate::plugin::bindings::transport::hoard::plugin::credentials::{Host, SecretForm};
use crate::plugin::grant::Secret;
use crate::plugin::state::JobState;

impl JobState {
    fn secret(&self, name: &str) -> Result<Secret, WitError> {
        self.grant
            .secrets
            .get(name)
            .cloned()
            .ok_or_else(|| self.not_granted(format!("secret({name})")))
    }
}

/// What `form` of `secret` looks like on the wire.
pub fn render_secret(secret: &Secret, form: &SecretForm) -> Result<Vec<u8>, WitError> {
    Ok(match form {
        SecretForm::User => secret.user.clone().into_bytes(),
        SecretForm::Password => secret.password.clone().into_bytes(),
        SecretForm::SaslPlainBase64 => {
            let plain = format!("\0{}\0{}", secret.user, secret.password);
            STANDARD.encode(plain).into_bytes()
        }
        SecretForm::RsyncAuth((digest, challenge)) => {
            let response = rsync_response(digest, secret.password.as_bytes(), challenge)?;
            format!("{} {}\n", secret.user, response).into_bytes()
        }
    })
}

/// The rsync daemon's challenge response: the digest of password then challenge, in base64
/// without padding.
fn rsync_response(digest: &str, password: &[u8], challenge: &[u8]) -> Result<String, WitError> {
    fn hash<D: sha2::Digest>(password: &[u8], challenge: &[u8]) -> Vec<u8> {
        let mut d = D::new();
        d.update(password);
        d.update(challenge);
        d.finalize().to_vec()
    }
    let sum = match digest {
        "md4" => hash::<md4::Md4>(password, challenge),
        "md5" => hash::<md5::Md5>(password, challenge),
        "sha1" => hash::<sha1::Sha1>(password, challenge),
        "sha256" => hash::<sha2::Sha256>(password, challenge),
        "sha512" => hash::<sha2::Sha512>(password, challenge),
        other => {
            return Err(WitError::Protocol(format!(
                "unknown rsync auth digest {other:?}"
            )));
        }
    };
    Ok(STANDARD_NO_PAD.encode(sum))
}

impl Host for JobState {
    async fn user(&mut self, secret: String) -> wasmtime::Result<Result<String, WitError>> {
        Ok(self.secret(&secret).map(|s| s.user))
    }

    async fn write_secret(
        &mut self,
        secret: String,
        form: SecretForm,
        destination: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Result<(), WitError>> {
        let bytes = match self.secret(&secret).and_then(|s| render_secret(&s, &form)) {
            Ok(bytes) => bytes,
            Err(e) => return Ok(Err(e)),
        };
        let stream = self.table().get_mut(&destination)?;
        Ok(match stream.blocking_write_and_flush(bytes.into()).await {
            Ok(()) => Ok(()),
            Err(StreamError::Closed) => Err(WitError::Client("connection closed".into())),
            Err(StreamError::LastOperationFailed(e)) => Err(WitError::Client(e.to_string())),
            Err(StreamError::Trap(e)) => return Err(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_plain_is_nul_separated_base64() {
        let s = Secret {
            user: "u".into(),
            password: "p".into(),
            domain: None,
        };
        assert_eq!(
            render_secret(&s, &SecretForm::SaslPlainBase64).ok(),
            Some(b"AHUAcA==".to_vec())
        );
    }

    #[test]
    fn rsync_response_is_unpadded_base64_of_the_digest() {
        // md5("s3cret" + "challenge") computed independently with coreutils:
        // printf 's3cretchallenge' | md5sum | xxd -r -p | base64 | tr -d =
        let r = rsync_response("md5", b"s3cret", b"challenge").ok();
        assert_eq!(r.as_deref(), Some("T45UhOTWEo1IlsNF9HiQBQ"));
        assert!(rsync_response("crc32", b"x", b"y").is_err());
    }
}
