//! Application messages inside the TLS session.
//!
//! TLS delivers a byte stream, so messages are framed: a 4-byte big-endian
//! length (of what follows), a 1-byte tag, then the body. Bodies that may
//! carry conversation plaintext live in [`Zeroizing`] buffers so they are
//! wiped when dropped.

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
    /// Host -> client: JSON `Result<FeatureResponse, String>`.
    Response(Zeroizing<Vec<u8>>),
    /// Host -> client: the host will not do what was asked (UTF-8 reason).
    Refused(String),
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
        let (tag, body): (u8, &[u8]) = match self {
            Self::Attest { nonce } => (TAG_ATTEST, nonce),
            Self::Evidence(bytes) => (TAG_EVIDENCE, bytes),
            Self::Request(bytes) => (TAG_REQUEST, bytes),
            Self::Response(bytes) => (TAG_RESPONSE, bytes),
            Self::Refused(reason) => (TAG_REFUSED, reason.as_bytes()),
        };
        let len = u32::try_from(body.len() + 1).unwrap_or(u32::MAX);
        let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + 1 + body.len()));
        out.extend_from_slice(&len.to_be_bytes());
        out.push(tag);
        out.extend_from_slice(body);
        out
    }

    fn decode(tag: u8, body: &[u8]) -> Result<Self, FrameError> {
        match tag {
            TAG_ATTEST => Ok(Self::Attest {
                nonce: body.try_into().map_err(|_| FrameError::Malformed("attest"))?,
            }),
            TAG_EVIDENCE => Ok(Self::Evidence(body.to_vec())),
            TAG_REQUEST => Ok(Self::Request(Zeroizing::new(body.to_vec()))),
            TAG_RESPONSE => Ok(Self::Response(Zeroizing::new(body.to_vec()))),
            TAG_REFUSED => String::from_utf8(body.to_vec())
                .map(Self::Refused)
                .map_err(|_| FrameError::Malformed("refused")),
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
    }

    #[test]
    fn bad_frames_are_rejected() {
        let cases: [(&[u8], FrameError); 4] = [
            (&[0, 0, 0, 0], FrameError::Empty),
            (&[0xff, 0, 0, 0], FrameError::TooLong(0xff00_0000)),
            (&[0, 0, 0, 1, 99], FrameError::UnknownTag(99)),
            (&[0, 0, 0, 2, TAG_ATTEST, 0], FrameError::Malformed("attest")),
        ];
        for (wire, expected) in cases {
            let mut buffer = FrameBuffer::default();
            buffer.push(wire);
            assert_eq!(buffer.next_frame(), Err(expected));
        }
    }
}
