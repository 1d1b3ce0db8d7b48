//! The `application/ohttp-keys` list framing of RFC 9540 §3.

use thiserror::Error;

/// Why a key configuration list could not be split.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum KeyListError {
    /// The list ended inside a length prefix or inside a configuration.
    #[error("key configuration list truncated at byte {offset}")]
    Truncated {
        /// Where the incomplete item starts.
        offset: usize,
    },
    /// A length prefix of zero: RFC 9458 configurations are never empty.
    #[error("empty key configuration at byte {offset}")]
    EmptyConfig {
        /// Where the empty item starts.
        offset: usize,
    },
    /// A configuration longer than a two-byte length can describe.
    #[error("key configuration of {len} bytes does not fit a 16-bit length")]
    TooLong {
        /// The offending length.
        len: usize,
    },
}

/// Encode key configurations as an `application/ohttp-keys` body: each one
/// preceded by its length as a 16-bit big-endian integer.
///
/// # Errors
/// [`KeyListError::TooLong`] or [`KeyListError::EmptyConfig`] for an item
/// that cannot be framed.
pub fn encode_key_list<C: AsRef<[u8]>>(configs: &[C]) -> Result<Vec<u8>, KeyListError> {
    let mut out = Vec::with_capacity(configs.iter().map(|c| c.as_ref().len() + 2).sum());
    for config in configs {
        let config = config.as_ref();
        if config.is_empty() {
            return Err(KeyListError::EmptyConfig { offset: out.len() });
        }
        let len =
            u16::try_from(config.len()).map_err(|_| KeyListError::TooLong { len: config.len() })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(config);
    }
    Ok(out)
}

/// Split an `application/ohttp-keys` body into the exact bytes of each
/// configuration, in order. Unlike `ohttp::KeyConfig::decode_list`, this
/// keeps configurations the client cannot use, so that their digests can
/// still be checked and the caller decides which one to pick.
///
/// # Errors
/// [`KeyListError::Truncated`] when the body ends early,
/// [`KeyListError::EmptyConfig`] for a zero length.
pub fn split_key_list(body: &[u8]) -> Result<Vec<&[u8]>, KeyListError> {
    let mut configs = Vec::new();
    let mut offset = 0;
    while offset < body.len() {
        let truncated = KeyListError::Truncated { offset };
        let prefix = body.get(offset..offset + 2).ok_or(truncated.clone())?;
        let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
        if len == 0 {
            return Err(KeyListError::EmptyConfig { offset });
        }
        let config = body.get(offset + 2..offset + 2 + len).ok_or(truncated)?;
        configs.push(config);
        offset += 2 + len;
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_prefixes_each_item_with_its_length() {
        let items: [&[u8]; 2] = [&[1, 2, 3], &[9; 300]];
        let body = encode_key_list(&items).expect("encodable");
        assert_eq!(&body[..5], &[0, 3, 1, 2, 3]);
        assert_eq!(&body[5..7], &[0x01, 0x2c]);
        assert_eq!(body.len(), 2 + 3 + 2 + 300);
        assert_eq!(split_key_list(&body).expect("splits"), items.to_vec());
    }

    #[test]
    fn rejects_truncation_anywhere() {
        let body = encode_key_list(&[[7u8; 10]]).expect("encodable");
        for cut in 1..body.len() {
            assert_eq!(
                split_key_list(&body[..cut]),
                Err(KeyListError::Truncated { offset: 0 }),
                "cut at {cut}"
            );
        }
        assert_eq!(split_key_list(&[]), Ok(vec![]));
    }

    #[test]
    fn rejects_empty_and_oversized_items() {
        assert_eq!(
            split_key_list(&[0, 0]),
            Err(KeyListError::EmptyConfig { offset: 0 })
        );
        assert_eq!(
            encode_key_list(&[Vec::<u8>::new()]),
            Err(KeyListError::EmptyConfig { offset: 0 })
        );
        let huge = vec![0u8; 70_000];
        assert_eq!(
            encode_key_list(&[huge]),
            Err(KeyListError::TooLong { len: 70_000 })
        );
    }
}
