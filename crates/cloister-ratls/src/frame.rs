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
//! | 3 | `Request` | client -> host | JSON feature request |
//! | 4 | `Response` | host -> client | JSON `Result<FeatureResponse, RequestError>` |
//! | 5 | `Refused` | host -> client | UTF-8 reason |
//! | 6 | `Challenge` | host -> caller | the host's 32-byte nonce |
//! | 7 | `CallerEvidence` | caller -> host | the 32-byte nonce answered, then encoded evidence |
//! | 8 | `CallerAccepted` | host -> caller | empty |
//!
//! The tag is the version: a message whose layout or meaning changes gets a
//! new tag, never a new reading of an old one, and an unknown tag ends the
//! session ([`FrameError::UnknownTag`]). A peer that predates a message
//! therefore stops instead of misreading it.

use zeroize::Zeroizing;

/// Largest frame body accepted (evidence with a full certificate table is a
/// few KiB; a feature request is a conversation excerpt).
pub const MAX_FRAME_LEN: usize = 1 << 20;

const HEADER_LEN: usize = 4;

const TAG_ATTEST: u8 = 1;
const TAG_EVIDENCE: u8 = 2;
const TAG_REQUEST: u8 = 3;
const TAG_RESPONSE: u8 = 4;
const TAG_REFUSED: u8 = 5;
const TAG_CHALLENGE: u8 = 6;
const TAG_CALLER_EVIDENCE: u8 = 7;
const TAG_CALLER_ACCEPTED: u8 = 8;

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
            Self::Request(bytes) => (TAG_REQUEST, bytes, &[]),
            Self::Response(bytes) => (TAG_RESPONSE, bytes, &[]),
            Self::Refused(reason) => (TAG_REFUSED, reason.as_bytes(), &[]),
            Self::Challenge { nonce } => (TAG_CHALLENGE, nonce, &[]),
            Self::CallerEvidence { nonce, evidence } => (TAG_CALLER_EVIDENCE, nonce, evidence),
            Self::CallerAccepted => (TAG_CALLER_ACCEPTED, &[], &[]),
        };
        let body_len = head.len() + body.len();
        let len = u32::try_from(body_len + 1).unwrap_or(u32::MAX);
        let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + 1 + body_len));
        out.extend_from_slice(&len.to_be_bytes());
        out.push(tag);
        out.extend_from_slice(head);
        out.extend_from_slice(body);
        out
    }

    fn decode(tag: u8, body: &[u8]) -> Result<Self, FrameError> {
        match tag {
            TAG_ATTEST => Ok(Self::Attest {
                nonce: body
                    .try_into()
                    .map_err(|_| FrameError::Malformed("attest"))?,
            }),
            TAG_EVIDENCE => Ok(Self::Evidence(body.to_vec())),
            TAG_REQUEST => Ok(Self::Request(Zeroizing::new(body.to_vec()))),
            TAG_RESPONSE => Ok(Self::Response(Zeroizing::new(body.to_vec()))),
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
