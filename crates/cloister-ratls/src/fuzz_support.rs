//! The body of the `frames` fuzz target (`crates/cloister-ratls/fuzz/`),
//! shared with a test that runs it over the seed corpus, so `cargo test`
//! checks the same properties without libFuzzer.

use cloister_api::{FeatureRequest, FeatureResponse, RequestError};
use cloister_attestation::Evidence;

use crate::frame::{Frame, FrameBuffer};

/// Reads `data` as a peer's decrypted session stream. The first byte sets
/// how the rest arrives (in pieces of 1 to 256 bytes, as TLS records may cut
/// it); every complete frame is then read as its receiver reads it: the
/// JSON of requests and answers, the evidence of attestations. The frames
/// read must re-encode to exactly the bytes they were read from (the
/// framing and padding are canonical). Returns how many frames were read.
///
/// # Panics
/// When a property fails: that is a finding.
pub fn exercise_frames(data: &[u8]) -> usize {
    let Some((&piece, stream)) = data.split_first() else {
        return 0;
    };
    let mut frames = 0;
    let mut buffer = FrameBuffer::default();
    let mut reencoded = Vec::new();
    'stream: for chunk in stream.chunks(usize::from(piece) + 1) {
        buffer.push(chunk);
        loop {
            match buffer.next_frame() {
                Ok(Some(frame)) => {
                    reencoded.extend_from_slice(&frame.encode());
                    read_body(&frame);
                    frames += 1;
                }
                Ok(None) => break,
                Err(_) => break 'stream,
            }
        }
    }
    assert_eq!(
        stream.get(..reencoded.len()),
        Some(reencoded.as_slice()),
        "frames do not re-encode to the bytes they were read from"
    );
    frames
}

/// What the host, the client and a caller do with a frame's body.
fn read_body(frame: &Frame) {
    match frame {
        Frame::Request(json) => {
            if let Ok(request) = serde_json::from_slice::<FeatureRequest>(json) {
                let _ = request.decode::<cloister_api::SummariseRequest>();
                let _ = request.decode::<cloister_api::SuggestRequest>();
            }
        }
        Frame::Response(json) => {
            if let Ok(Ok(response)) =
                serde_json::from_slice::<Result<FeatureResponse, RequestError>>(json)
            {
                let _ = response.decode::<cloister_api::Summary>();
                let _ = response.decode::<cloister_api::Suggestions>();
            }
        }
        Frame::Evidence(evidence) | Frame::CallerEvidence { evidence, .. } => {
            let _ = Evidence::decode(evidence);
        }
        Frame::Attest { .. }
        | Frame::Refused(_)
        | Frame::Challenge { .. }
        | Frame::CallerAccepted
        | Frame::Partial(_) => {}
    }
}
