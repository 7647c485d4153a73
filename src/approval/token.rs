//! The portable form of an approval: a request and an SSH signature over its digest, as JSON text
//! that can travel (exported here, signed on another machine, imported here or handed to CI).

use serde::{Deserialize, Serialize};

use super::request::Request;
use super::signature::{self, SigError, Signer, Verified};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    pub guardsh_token: u32,
    pub request: Request,
    /// Armoured SSHSIG over `signature::message(request.digest)`.
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a guardsh approval token ({0})")]
    Malformed(String),
    #[error("the request in the token was altered after it was made")]
    Altered,
    #[error("request {0} has expired")]
    Expired(String),
    #[error("request {id} is for another command: {differences}")]
    OtherCommand { id: String, differences: String },
    #[error(transparent)]
    Signature(#[from] SigError),
}

impl Token {
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let t: Token = serde_json::from_str(text).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if t.guardsh_token != VERSION {
            return Err(TokenError::Malformed(format!("version {}", t.guardsh_token)));
        }
        Ok(t)
    }

    /// Checks everything that makes the token valid at `now`, apart from use-once (which needs the
    /// store): an intact request, unexpired, signed by an allowed signer.
    pub fn check(&self, signers: &[Signer], now: u64) -> Result<Verified, TokenError> {
        if !self.request.is_intact() {
            return Err(TokenError::Altered);
        }
        if self.request.is_expired(now) {
            return Err(TokenError::Expired(self.request.id.clone()));
        }
        Ok(signature::verify(&self.signature, &self.request.digest, signers, now)?)
    }
}
