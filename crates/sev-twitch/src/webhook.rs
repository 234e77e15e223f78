//! EventSub webhooks: signing and verification (PLATFORM.md §3).
//!
//! The signature is `sha256=` + hex(HMAC-SHA256(secret, message id ‖ timestamp ‖ raw body)),
//! computed over the header strings verbatim and the body bytes unparsed. [`verify`] checks the
//! headers, the timestamp window and the signature (in constant time) before anything is parsed;
//! [`sign`] is public so tests and the simulator produce real signatures.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;

use crate::eventsub::{Notification, Subscription};

pub const MESSAGE_ID: &str = "twitch-eventsub-message-id";
pub const MESSAGE_RETRY: &str = "twitch-eventsub-message-retry";
pub const MESSAGE_TYPE: &str = "twitch-eventsub-message-type";
pub const MESSAGE_SIGNATURE: &str = "twitch-eventsub-message-signature";
pub const MESSAGE_TIMESTAMP: &str = "twitch-eventsub-message-timestamp";
pub const SUBSCRIPTION_TYPE: &str = "twitch-eventsub-subscription-type";
pub const SUBSCRIPTION_VERSION: &str = "twitch-eventsub-subscription-version";

/// Messages older than this are rejected as possible replays (Twitch's rule).
pub const MAX_AGE: Duration = Duration::minutes(10);
/// How far in the future a timestamp may be: allowance for clock skew between Twitch and us.
pub const MAX_SKEW: Duration = Duration::seconds(60);

type HmacSha256 = Hmac<Sha256>;

/// Why a webhook request was rejected. Every variant is a client error (403 for signature
/// problems, 400 otherwise); none of them panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("header {0} is not valid")]
    InvalidHeader(&'static str),
    #[error("timestamp is not RFC 3339")]
    InvalidTimestamp,
    #[error("message is older than 10 minutes")]
    TooOld,
    #[error("message timestamp is in the future")]
    FromTheFuture,
    #[error("signature must use sha256")]
    UnsupportedAlgorithm,
    #[error("signature is not 64 hex digits")]
    MalformedSignature,
    #[error("signature does not match")]
    SignatureMismatch,
}

impl VerifyError {
    /// The HTTP status to answer with: 403 when the signature is wrong, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Self::SignatureMismatch | Self::UnsupportedAlgorithm | Self::MalformedSignature => 403,
            _ => 400,
        }
    }
}

/// `sha256=<hex>` for a message.
pub fn sign(secret: &[u8], message_id: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(
            mac(secret, message_id, timestamp, body)
                .finalize()
                .into_bytes()
        )
    )
}

#[allow(clippy::expect_used)] // HMAC takes keys of any length: `new_from_slice` cannot fail.
fn mac(secret: &[u8], message_id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(message_id.as_bytes());
    mac.update(timestamp.as_bytes());
    mac.update(body);
    mac
}

/// The kind of a webhook message (`Twitch-Eventsub-Message-Type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageType {
    Notification,
    Verification,
    Revocation,
    /// A type Twitch may add later: acknowledge it, keep it, never fail on it.
    Other(String),
}

impl MessageType {
    fn parse(s: &str) -> Self {
        match s {
            "notification" => Self::Notification,
            "webhook_callback_verification" => Self::Verification,
            "revocation" => Self::Revocation,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// A webhook request whose signature and timestamp were verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub message_id: String,
    pub message_type: MessageType,
    pub timestamp: DateTime<Utc>,
    /// `Twitch-Eventsub-Message-Retry`, 0 on the first attempt.
    pub retry: u32,
    pub subscription_type: Option<String>,
    pub subscription_version: Option<String>,
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, VerifyError> {
    headers
        .get(name)
        .ok_or(VerifyError::MissingHeader(name))?
        .to_str()
        .map_err(|_| VerifyError::InvalidHeader(name))
}

fn optional_header(headers: &HeaderMap, name: &'static str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Verifies a webhook request: required headers, timestamp within [`MAX_AGE`] (and not more
/// than [`MAX_SKEW`] ahead of `now`), and the signature over the raw body.
pub fn verify(
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Verified, VerifyError> {
    let message_id = header(headers, MESSAGE_ID)?;
    let timestamp_raw = header(headers, MESSAGE_TIMESTAMP)?;
    let signature = header(headers, MESSAGE_SIGNATURE)?;
    let message_type = header(headers, MESSAGE_TYPE)?;
    if message_id.is_empty() {
        return Err(VerifyError::InvalidHeader(MESSAGE_ID));
    }

    let timestamp = DateTime::parse_from_rfc3339(timestamp_raw)
        .map_err(|_| VerifyError::InvalidTimestamp)?
        .with_timezone(&Utc);
    if now - timestamp > MAX_AGE {
        return Err(VerifyError::TooOld);
    }
    if timestamp - now > MAX_SKEW {
        return Err(VerifyError::FromTheFuture);
    }

    let hex_sig = signature
        .strip_prefix("sha256=")
        .ok_or(VerifyError::UnsupportedAlgorithm)?;
    // Check the length before decoding: a wrong-length signature is an error, never a panic.
    if hex_sig.len() != 64 {
        return Err(VerifyError::MalformedSignature);
    }
    let expected = hex::decode(hex_sig).map_err(|_| VerifyError::MalformedSignature)?;
    mac(secret, message_id, timestamp_raw, body)
        .verify_slice(&expected)
        .map_err(|_| VerifyError::SignatureMismatch)?;

    let retry = match headers.get(MESSAGE_RETRY) {
        None => 0,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(VerifyError::InvalidHeader(MESSAGE_RETRY))?,
    };
    Ok(Verified {
        message_id: message_id.to_owned(),
        message_type: MessageType::parse(message_type),
        timestamp,
        retry,
        subscription_type: optional_header(headers, SUBSCRIPTION_TYPE),
        subscription_version: optional_header(headers, SUBSCRIPTION_VERSION),
    })
}

/// The body of a verified webhook message.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookBody {
    /// Answer 200 with exactly this text (`Content-Type: text/plain`).
    Challenge {
        challenge: String,
        subscription: Subscription,
    },
    Notification(Box<Notification>),
    Revocation {
        subscription: Subscription,
    },
    /// A message type we do not know: keep the raw JSON.
    Other {
        message_type: String,
        raw: serde_json::Value,
    },
}

/// Parses a verified body by its message type. A malformed body is an error (400); an
/// unknown event type inside a notification is not (see [`crate::eventsub::Event`]).
pub fn parse_body(
    message_type: &MessageType,
    body: &[u8],
) -> Result<WebhookBody, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Challenge {
        challenge: String,
        subscription: Subscription,
    }
    #[derive(serde::Deserialize)]
    struct Revocation {
        subscription: Subscription,
    }
    Ok(match message_type {
        MessageType::Verification => {
            let c: Challenge = serde_json::from_slice(body)?;
            WebhookBody::Challenge {
                challenge: c.challenge,
                subscription: c.subscription,
            }
        }
        MessageType::Notification => {
            WebhookBody::Notification(Box::new(Notification::from_json(body)?))
        }
        MessageType::Revocation => {
            let r: Revocation = serde_json::from_slice(body)?;
            WebhookBody::Revocation {
                subscription: r.subscription,
            }
        }
        MessageType::Other(t) => WebhookBody::Other {
            message_type: t.clone(),
            raw: serde_json::from_slice(body)?,
        },
    })
}

/// The headers Twitch sends with a webhook message, signed (for tests and the simulator).
pub fn signed_headers(
    secret: &[u8],
    message_id: &str,
    message_type: &str,
    timestamp: DateTime<Utc>,
    subscription: Option<(&str, &str)>,
    retry: u32,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let ts = timestamp.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let mut h = vec![
        (MESSAGE_ID, message_id.to_owned()),
        (MESSAGE_RETRY, retry.to_string()),
        (MESSAGE_TYPE, message_type.to_owned()),
        (MESSAGE_SIGNATURE, sign(secret, message_id, &ts, body)),
        (MESSAGE_TIMESTAMP, ts),
    ];
    if let Some((t, v)) = subscription {
        h.push((SUBSCRIPTION_TYPE, t.to_owned()));
        h.push((SUBSCRIPTION_VERSION, v.to_owned()));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"s3cr3t-for-tests-only";
    const BODY: &[u8] = br#"{"subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"enabled","type":"stream.online","version":"1","condition":{"broadcaster_user_id":"4242"},"transport":{"method":"webhook","callback":"https://sev.example/eventsub"},"created_at":"2026-01-02T10:00:00.123456789Z","cost":1},"event":{"id":"9876","broadcaster_user_id":"4242","broadcaster_user_login":"favstreamer","broadcaster_user_name":"FavStreamer","type":"live","started_at":"2026-01-02T18:00:01Z"}}"#;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T18:00:05Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap()
    }

    fn headers_at(ts: DateTime<Utc>, body: &[u8]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in signed_headers(
            SECRET,
            "msg-1",
            "notification",
            ts,
            Some(("stream.online", "1")),
            0,
            body,
        ) {
            map.insert(k, HeaderValue::from_str(&v).unwrap());
        }
        map
    }

    fn valid() -> HeaderMap {
        headers_at(now() - Duration::seconds(3), BODY)
    }

    #[test]
    fn a_valid_message_verifies() {
        let v = verify(SECRET, &valid(), BODY, now()).unwrap();
        assert_eq!(v.message_id, "msg-1");
        assert_eq!(v.message_type, MessageType::Notification);
        assert_eq!(v.subscription_type.as_deref(), Some("stream.online"));
        assert_eq!(v.retry, 0);
    }

    #[test]
    fn a_known_vector_matches() {
        // From OpenSSL: printf 'idts{}' | openssl dgst -sha256 -hmac secret0123
        assert_eq!(
            sign(b"secret0123", "id", "ts", b"{}"),
            "sha256=3acf541052f90c645be19238799353b10201998d8d7b9bb85f07b2ec9e231b2e"
        );
    }

    #[test]
    fn the_wrong_secret_is_a_mismatch() {
        assert_eq!(
            verify(b"another-secret", &valid(), BODY, now()),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn a_body_changed_by_one_byte_is_a_mismatch() {
        let mut body = BODY.to_vec();
        let i = body.iter().position(|&b| b == b'4').unwrap();
        body[i] = b'5';
        assert_eq!(
            verify(SECRET, &valid(), &body, now()),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn the_same_json_reserialised_is_a_mismatch() {
        let reserialised =
            serde_json::to_vec_pretty(&serde_json::from_slice::<serde_json::Value>(BODY).unwrap())
                .unwrap();
        assert_ne!(reserialised, BODY);
        assert_eq!(
            verify(SECRET, &valid(), &reserialised, now()),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn each_missing_header_is_named() {
        for name in [
            MESSAGE_ID,
            MESSAGE_TIMESTAMP,
            MESSAGE_SIGNATURE,
            MESSAGE_TYPE,
        ] {
            let mut h = valid();
            h.remove(name);
            assert_eq!(
                verify(SECRET, &h, BODY, now()),
                Err(VerifyError::MissingHeader(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn garbled_headers_are_rejected() {
        let garble = |name: &'static str, value: &[u8]| {
            let mut h = valid();
            h.insert(name, HeaderValue::from_bytes(value).unwrap());
            verify(SECRET, &h, BODY, now())
        };
        assert_eq!(
            garble(MESSAGE_TIMESTAMP, b"yesterday"),
            Err(VerifyError::InvalidTimestamp)
        );
        assert_eq!(
            garble(MESSAGE_SIGNATURE, b"sha256=zz"),
            Err(VerifyError::MalformedSignature)
        );
        assert_eq!(
            garble(MESSAGE_SIGNATURE, b"\xff\xfe"),
            Err(VerifyError::InvalidHeader(MESSAGE_SIGNATURE))
        );
        assert_eq!(
            garble(MESSAGE_ID, b""),
            Err(VerifyError::InvalidHeader(MESSAGE_ID))
        );
        // A changed message id changes what was signed.
        assert_eq!(
            garble(MESSAGE_ID, b"msg-2"),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            garble(MESSAGE_RETRY, b"many"),
            Err(VerifyError::InvalidHeader(MESSAGE_RETRY))
        );
    }

    #[test]
    fn a_sha1_prefix_is_refused() {
        let mut h = valid();
        let sig = h[MESSAGE_SIGNATURE]
            .to_str()
            .unwrap()
            .replacen("sha256=", "sha1=", 1);
        h.insert(MESSAGE_SIGNATURE, HeaderValue::from_str(&sig).unwrap());
        assert_eq!(
            verify(SECRET, &h, BODY, now()),
            Err(VerifyError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn a_signature_of_the_wrong_length_is_refused() {
        for sig in [
            "sha256=",
            "sha256=abcd",
            &format!("sha256={}", "a".repeat(66)),
            &format!("sha256={}", "a".repeat(63)),
        ] {
            let mut h = valid();
            h.insert(MESSAGE_SIGNATURE, HeaderValue::from_str(sig).unwrap());
            assert_eq!(
                verify(SECRET, &h, BODY, now()),
                Err(VerifyError::MalformedSignature),
                "{sig}"
            );
        }
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let at = |offset: Duration| verify(SECRET, &headers_at(now() + offset, BODY), BODY, now());
        assert_eq!(
            at(-Duration::minutes(10) - Duration::seconds(1)),
            Err(VerifyError::TooOld)
        );
        assert!(at(-Duration::minutes(9)).is_ok());
        assert!(
            at(Duration::seconds(30)).is_ok(),
            "small clock skew is tolerated"
        );
        assert_eq!(at(Duration::minutes(5)), Err(VerifyError::FromTheFuture));
    }

    #[test]
    fn statuses_follow_twitch_guidance() {
        assert_eq!(VerifyError::SignatureMismatch.status(), 403);
        assert_eq!(VerifyError::MissingHeader(MESSAGE_ID).status(), 400);
    }

    proptest! {
        #[test]
        fn sign_then_verify_round_trips(body in proptest::collection::vec(any::<u8>(), 0..4096), id in "[a-zA-Z0-9-]{1,40}", secret in proptest::collection::vec(any::<u8>(), 10..100)) {
            let ts = now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            let mut h = HeaderMap::new();
            h.insert(MESSAGE_ID, HeaderValue::from_str(&id).unwrap());
            h.insert(MESSAGE_TIMESTAMP, HeaderValue::from_str(&ts).unwrap());
            h.insert(MESSAGE_TYPE, HeaderValue::from_static("notification"));
            h.insert(MESSAGE_SIGNATURE, HeaderValue::from_str(&sign(&secret, &id, &ts, &body)).unwrap());
            let v = verify(&secret, &h, &body, now()).unwrap();
            prop_assert_eq!(v.message_id, id);
            let mut flipped = body.clone();
            if let Some(b) = flipped.first_mut() { *b ^= 1; prop_assert!(verify(&secret, &h, &flipped, now()).is_err()); }
        }
    }
}
