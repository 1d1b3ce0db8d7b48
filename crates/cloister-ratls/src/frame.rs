//! Application messages inside the TLS session.
//!
//! TLS delivers a byte stream, so messages are framed: a 4-byte big-endian
//! length (of what follows), a 1-byte tag, then the body. Bodies that may
//! carry conversation plaintext live in [`Zeroizing`] buffers so they are
//! wiped when dropped.
//!
//! | tag | message | direction | body |
//! |---|---|---|---|
//! | 1 | `Attest` | client -> host | the client's 32-byte nonce |
//! | 2 | `Evidence` | host -> client | encoded evidence ([`cloister_attestation::Evidence`], itself versioned) |
//! | 3, 4 | retired: unpadded `Request` and `Response` | | |
//! | 9 | `Request` | client -> host | padded: JSON feature request |
//! | 10 | `Response` | host -> client | padded: JSON `Result<FeatureResponse, RequestError>` |
//! | 5 | `Refused` | host -> client | UTF-8 reason |
//! | 6 | `Challenge` | host -> caller | the host's 32-byte nonce |
//! | 7 | `CallerEvidence` | caller -> host | the 32-byte nonce answered, then encoded evidence |
//! | 8 | `CallerAccepted` | host -> caller | empty |
//! | 11 | `Partial` | host -> client | padded: part of the answer to the request in flight, sent before its `Response` (streamed tokens) |
//!
//! A padded body is the 4-byte big-endian length of the JSON, the JSON,
//! then zero bytes up to the next of the [`PADDED_FRAME_SIZES`] (length
//! prefix and tag included). The TLS records, the OHTTP messages around
//! them and the HTTP bodies the relay and the gateway see therefore take
//! one of a few sizes, whatever the conversation: two requests (or two
//! answers) in the same bucket are the same length on the wire. A padded
//! frame whose padding is not exactly that, or not zero, is malformed.
//!
//! The tag is the version: a message whose layout or meaning changes gets a
//! new tag, never a new reading of an old one, and an unknown tag ends the
//! session ([`FrameError::UnknownTag`]). A peer that predates a message
//! therefore stops instead of misreading it.

use zeroize::Zeroizing;

/// Largest frame body accepted (evidence with a full certificate table is a
/// few KiB; a feature request is a conversation excerpt).
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// The sizes every `Request` and `Response` frame is padded to, in bytes
/// (length prefix and tag included): 1 KiB to 64 KiB, doubling. A frame
/// larger than the last is padded to a multiple of it (and refused by the
/// TLS layer's 64 KiB send buffer before it leaves).
pub const PADDED_FRAME_SIZES: [usize; 7] = [
    1 << 10,
    1 << 11,
    1 << 12,
    1 << 13,
    1 << 14,
    1 << 15,
    1 << 16,
];

const HEADER_LEN: usize = 4;
/// Tag and the content length inside a padded frame.
const PADDED_OVERHEAD: usize = HEADER_LEN + 1 + 4;

const TAG_ATTEST: u8 = 1;
const TAG_EVIDENCE: u8 = 2;
const TAG_REQUEST: u8 = 9;
const TAG_RESPONSE: u8 = 10;
const TAG_REFUSED: u8 = 5;
const TAG_CHALLENGE: u8 = 6;
const TAG_CALLER_EVIDENCE: u8 = 7;
const TAG_CALLER_ACCEPTED: u8 = 8;
const TAG_PARTIAL: u8 = 11;

const NONCE_LEN: usize = 32;

/// One application message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Client -> host: prove what you run, bound to this session and nonce.
    Attest {
        /// The client's fresh nonce.
        nonce: [u8; 32],
    },
    /// Host -> client: encoded [`cloister_attestation::Evidence`].
    Evidence(Vec<u8>),
    /// Client -> host: a JSON [`cloister_api::FeatureRequest`].
    Request(Zeroizing<Vec<u8>>),
    /// Host -> client: JSON `Result<FeatureResponse, RequestError>`.
    Response(Zeroizing<Vec<u8>>),
    /// Host -> client: the host will not do what was asked (UTF-8 reason).
    Refused(String),
    /// Host -> caller, right after its `Evidence` when the host requires
    /// callers to attest: prove what you run, bound to this session and
    /// the host's nonce.
    Challenge {
        /// The host's fresh nonce.
        nonce: [u8; 32],
    },
    /// Caller -> host: the answer to a `Challenge`.
    CallerEvidence {
        /// The challenge nonce this evidence answers.
        nonce: [u8; 32],
        /// Encoded [`cloister_attestation::Evidence`] of the caller.
        evidence: Vec<u8>,
    },
    /// Host -> caller: the caller's evidence verified; requests are served.
    CallerAccepted,
    /// Host -> client: part of the answer to the request in flight, ahead
    /// of its `Response` (a streamed token), padded like a response.
    Partial(Zeroizing<Vec<u8>>),
}

/// Why bytes inside the TLS session are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix exceeds [`MAX_FRAME_LEN`].
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME_LEN}")]
    TooLong(usize),
    /// A frame with no tag byte.
    #[error("empty frame")]
    Empty,
    /// An unknown message tag.
    #[error("unknown frame tag {0}")]
    UnknownTag(u8),
    /// The body does not fit the tag.
    #[error("malformed {0} frame")]
    Malformed(&'static str),
}

impl Frame {
    /// The frame's wire bytes, in a buffer wiped on drop.
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let (tag, head, body): (u8, &[u8], &[u8]) = match self {
            Self::Attest { nonce } => (TAG_ATTEST, nonce, &[]),
            Self::Evidence(bytes) => (TAG_EVIDENCE, bytes, &[]),
            Self::Request(json) => return encode_padded(TAG_REQUEST, json),
            Self::Response(json) => return encode_padded(TAG_RESPONSE, json),
            Self::Partial(bytes) => return encode_padded(TAG_PARTIAL, bytes),
            Self::Refused(reason) => (TAG_REFUSED, reason.as_bytes(), &[]),
            Self::Challenge { nonce } => (TAG_CHALLENGE, nonce, &[]),
            Self::CallerEvidence { nonce, evidence } => (TAG_CALLER_EVIDENCE, nonce, evidence),
            Self::CallerAccepted => (TAG_CALLER_ACCEPTED, &[], &[]),
        };
        encode_parts(tag, &[head, body], 0)
    }

    fn decode(tag: u8, body: &[u8]) -> Result<Self, FrameError> {
        match tag {
            TAG_ATTEST => Ok(Self::Attest {
                nonce: body
                    .try_into()
                    .map_err(|_| FrameError::Malformed("attest"))?,
            }),
            TAG_EVIDENCE => Ok(Self::Evidence(body.to_vec())),
            TAG_REQUEST => unpad(body, "request").map(Self::Request),
            TAG_RESPONSE => unpad(body, "response").map(Self::Response),
            TAG_PARTIAL => unpad(body, "partial").map(Self::Partial),
            TAG_REFUSED => String::from_utf8(body.to_vec())
                .map(Self::Refused)
                .map_err(|_| FrameError::Malformed("refused")),
            TAG_CHALLENGE => Ok(Self::Challenge {
                nonce: body
                    .try_into()
                    .map_err(|_| FrameError::Malformed("challenge"))?,
            }),
            TAG_CALLER_EVIDENCE => {
                let (nonce, evidence) = body
                    .split_first_chunk::<NONCE_LEN>()
                    .ok_or(FrameError::Malformed("caller evidence"))?;
                Ok(Self::CallerEvidence {
                    nonce: *nonce,
                    evidence: evidence.to_vec(),
                })
            }
            TAG_CALLER_ACCEPTED if body.is_empty() => Ok(Self::CallerAccepted),
            TAG_CALLER_ACCEPTED => Err(FrameError::Malformed("caller accepted")),
            other => Err(FrameError::UnknownTag(other)),
        }
    }
}

/// The size a padded frame of `len` unpadded bytes takes on the wire.
fn padded_size(len: usize) -> usize {
    const LARGEST: usize = PADDED_FRAME_SIZES[PADDED_FRAME_SIZES.len() - 1];
    PADDED_FRAME_SIZES
        .into_iter()
        .find(|&size| size >= len)
        .unwrap_or_else(|| len.div_ceil(LARGEST).saturating_mul(LARGEST))
}

/// A frame of `parts` followed by `padding` zero bytes.
fn encode_parts(tag: u8, parts: &[&[u8]], padding: usize) -> Zeroizing<Vec<u8>> {
    let body_len = parts.iter().map(|part| part.len()).sum::<usize>() + padding;
    let len = u32::try_from(body_len + 1).unwrap_or(u32::MAX);
    let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + 1 + body_len));
    out.extend_from_slice(&len.to_be_bytes());
    out.push(tag);
    for part in parts {
        out.extend_from_slice(part);
    }
    out.resize(HEADER_LEN + 1 + body_len, 0);
    out
}

/// `content` with its length in front, padded to [`padded_size`].
fn encode_padded(tag: u8, content: &[u8]) -> Zeroizing<Vec<u8>> {
    let content_len = u32::try_from(content.len()).unwrap_or(u32::MAX);
    let unpadded = PADDED_OVERHEAD + content.len();
    encode_parts(
        tag,
        &[&content_len.to_be_bytes(), content],
        padded_size(unpadded) - unpadded,
    )
}

/// The content of a padded body, checking that the padding is zeros up to
/// exactly the size [`encode_padded`] gives.
fn unpad(body: &[u8], what: &'static str) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let malformed = || FrameError::Malformed(what);
    let (len, rest) = body.split_first_chunk::<4>().ok_or_else(malformed)?;
    let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| malformed())?;
    let (content, padding) = (rest.get(..len), rest.get(len..));
    let (Some(content), Some(padding)) = (content, padding) else {
        return Err(malformed());
    };
    let canonical = padded_size(PADDED_OVERHEAD + len) == HEADER_LEN + 1 + body.len();
    if !canonical || padding.iter().any(|&byte| byte != 0) {
        return Err(malformed());
    }
    Ok(Zeroizing::new(content.to_vec()))
}

/// Collects decrypted bytes and cuts them into frames.
#[derive(Default)]
pub(crate) struct FrameBuffer {
    pending: Zeroizing<Vec<u8>>,
}

impl FrameBuffer {
    /// Appends decrypted bytes.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// The next complete frame, if one has arrived.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(prefix) = self.pending.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let len = usize::try_from(u32::from_be_bytes(*prefix)).unwrap_or(usize::MAX);
        if len > MAX_FRAME_LEN + 1 {
            return Err(FrameError::TooLong(len));
        }
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if self.pending.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let tag = self.pending[HEADER_LEN];
        let frame = Frame::decode(tag, &self.pending[HEADER_LEN + 1..HEADER_LEN + len]);
        // `drain` moves the tail down; the vacated bytes are overwritten or
        // wiped when the buffer is dropped.
        self.pending.drain(..HEADER_LEN + len);
        frame.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frame: Frame) {
        let mut buffer = FrameBuffer::default();
        let wire = frame.encode();
        // Byte by byte: a frame is only returned once complete.
        for (i, byte) in wire.iter().enumerate() {
            assert_eq!(buffer.next_frame(), Ok(None), "incomplete at {i}");
            buffer.push(&[*byte]);
        }
        assert_eq!(buffer.next_frame(), Ok(Some(frame)));
        assert_eq!(buffer.next_frame(), Ok(None));
    }

    #[test]
    fn every_frame_round_trips() {
        round_trip(Frame::Attest { nonce: [7; 32] });
        round_trip(Frame::Evidence(vec![1, 2, 3]));
        round_trip(Frame::Request(Zeroizing::new(b"{}".to_vec())));
        round_trip(Frame::Response(Zeroizing::new(b"{\"Ok\":1}".to_vec())));
        round_trip(Frame::Refused("no".into()));
        round_trip(Frame::Challenge { nonce: [8; 32] });
        round_trip(Frame::CallerEvidence {
            nonce: [9; 32],
            evidence: vec![4, 5, 6],
        });
        round_trip(Frame::CallerAccepted);
        round_trip(Frame::Partial(Zeroizing::new(b" lunch".to_vec())));
    }

    #[test]
    fn requests_and_responses_are_padded_to_a_bucket() {
        for (content_len, size) in [
            (0, 1024),
            (1024 - PADDED_OVERHEAD, 1024),
            (1024 - PADDED_OVERHEAD + 1, 2048),
            (5000, 8192),
            (65536 - PADDED_OVERHEAD, 65536),
            (65536, 131_072),
        ] {
            let content = Zeroizing::new(vec![b'x'; content_len]);
            for frame in [
                Frame::Request(content.clone()),
                Frame::Response(content.clone()),
            ] {
                let wire = frame.encode();
                assert_eq!(wire.len(), size, "{content_len} bytes of content");
                assert!(
                    wire[PADDED_OVERHEAD + content_len..]
                        .iter()
                        .all(|&b| b == 0)
                );
                let mut buffer = FrameBuffer::default();
                buffer.push(&wire);
                assert_eq!(buffer.next_frame(), Ok(Some(frame)));
            }
        }
        // Two requests of different lengths in one bucket: the same size.
        let short = Frame::Request(Zeroizing::new(b"{\"draft\":\"hi\"}".to_vec()));
        let long = Frame::Request(Zeroizing::new(vec![b'y'; 700]));
        assert_eq!(short.encode().len(), long.encode().len());
    }

    #[test]
    fn padding_that_is_not_canonical_is_malformed() {
        let mut wire = Frame::Response(Zeroizing::new(b"{}".to_vec())).encode();
        let last = wire.len() - 1;
        wire[last] = 1;
        let mut buffer = FrameBuffer::default();
        buffer.push(&wire);
        assert_eq!(buffer.next_frame(), Err(FrameError::Malformed("response")));
        // Unpadded (a content length that fills the body exactly): refused.
        let mut buffer = FrameBuffer::default();
        buffer.push(&[0, 0, 0, 7, TAG_REQUEST, 0, 0, 0, 2, b'{', b'}']);
        assert_eq!(buffer.next_frame(), Err(FrameError::Malformed("request")));
        // The retired unpadded tags are unknown.
        let mut buffer = FrameBuffer::default();
        buffer.push(&[0, 0, 0, 3, 3, b'{', b'}']);
        assert_eq!(buffer.next_frame(), Err(FrameError::UnknownTag(3)));
    }

    #[test]
    fn caller_evidence_is_nonce_then_evidence() {
        let frame = Frame::CallerEvidence {
            nonce: [9; 32],
            evidence: vec![4, 5],
        };
        let mut expected = vec![0, 0, 0, 35, TAG_CALLER_EVIDENCE];
        expected.extend_from_slice(&[9; 32]);
        expected.extend_from_slice(&[4, 5]);
        assert_eq!(frame.encode().as_slice(), expected.as_slice());
    }

    #[test]
    fn bad_frames_are_rejected() {
        let cases: [(&[u8], FrameError); 7] = [
            (&[0, 0, 0, 0], FrameError::Empty),
            (&[0xff, 0, 0, 0], FrameError::TooLong(0xff00_0000)),
            (&[0, 0, 0, 1, 99], FrameError::UnknownTag(99)),
            (
                &[0, 0, 0, 2, TAG_ATTEST, 0],
                FrameError::Malformed("attest"),
            ),
            (
                &[0, 0, 0, 2, TAG_CHALLENGE, 0],
                FrameError::Malformed("challenge"),
            ),
            (
                &[0, 0, 0, 4, TAG_CALLER_EVIDENCE, 1, 2, 3],
                FrameError::Malformed("caller evidence"),
            ),
            (
                &[0, 0, 0, 2, TAG_CALLER_ACCEPTED, 0],
                FrameError::Malformed("caller accepted"),
            ),
        ];
        for (wire, expected) in cases {
            let mut buffer = FrameBuffer::default();
            buffer.push(wire);
            assert_eq!(buffer.next_frame(), Err(expected));
        }
    }
}
