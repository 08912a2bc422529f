//! Webhook signatures: `X-Berth-Signature-256: sha256=<hex HMAC-SHA256 of
//! the body>` under the target's secret — the scheme GitHub's webhooks use,
//! so receivers' existing verification code works. The body carries the
//! event time, so a receiver can refuse stale replays.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const HEADER: &str = "x-berth-signature-256";

/// The header value for `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231 test case 2 (key "Jefe").
    #[test]
    fn matches_rfc_4231() {
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
