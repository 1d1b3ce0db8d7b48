//! The user's switch for AI features, per chat.
//!
//! Features are optional. A user who turns them off for a chat gets a
//! refusal from the client itself, before it opens the wallet, syncs the
//! ledger or fetches a key: nothing about that chat leaves the device, not
//! even a token. The settings live in `<state dir>/chats.json` (mode 0600).
//! A settings file that cannot be read is an error for every chat, never
//! "on": the user's choice is not guessed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

const FILE_NAME: &str = "chats.json";
const VERSION: u32 = 1;
/// Longest chat id, in bytes.
pub const MAX_CHAT_ID_BYTES: usize = 256;

/// Why a chat's features may not run, or the settings could not be used.
#[derive(Debug, Error)]
pub enum ChatSettingsError {
    /// The user turned AI features off for this chat.
    #[error("AI features are off for chat `{chat}`: nothing was sent")]
    FeaturesOff {
        /// The chat.
        chat: String,
    },
    /// The chat id is empty, too long, or holds control characters.
    #[error("a chat id is 1 to {MAX_CHAT_ID_BYTES} bytes without control characters")]
    BadChatId,
    /// The settings file could not be read or written.
    #[error("chat settings {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The settings file is not one this client wrote.
    #[error("chat settings {} are unreadable ({reason}): no feature runs until the file is fixed or removed", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    version: u32,
    features_off: BTreeSet<String>,
}

/// The per-chat settings kept in a state directory.
#[derive(Debug, Clone)]
pub struct ChatSettings {
    path: PathBuf,
}

impl ChatSettings {
    /// The settings in `state_dir` (read at each call, so another process's
    /// change is seen at once; a missing file means no chat is off).
    #[must_use]
    pub fn open(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join(FILE_NAME),
        }
    }

    /// Succeeds only if features may run for `chat`.
    ///
    /// # Errors
    /// [`ChatSettingsError::FeaturesOff`] when the user turned them off, and
    /// any error reading the settings.
    pub fn check(&self, chat: &str) -> Result<(), ChatSettingsError> {
        validate(chat)?;
        if self.read()?.features_off.contains(chat) {
            return Err(ChatSettingsError::FeaturesOff {
                chat: chat.to_owned(),
            });
        }
        Ok(())
    }

    /// Turns features on or off for `chat`.
    ///
    /// # Errors
    /// A bad chat id, or the settings could not be read or written.
    pub fn set_features(&self, chat: &str, on: bool) -> Result<(), ChatSettingsError> {
        validate(chat)?;
        let mut settings = self.read()?;
        let changed = if on {
            settings.features_off.remove(chat)
        } else {
            settings.features_off.insert(chat.to_owned())
        };
        if !changed {
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| ChatSettingsError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        let json = serde_json::to_vec_pretty(&settings).map_err(|e| ChatSettingsError::Io {
            path: self.path.clone(),
            source: e.into(),
        })?;
        cloister_ledger_verify::private_file::replace(&self.path, &json)
            .map_err(|(path, source)| ChatSettingsError::Io { path, source })
    }

    /// The chats whose features are off.
    ///
    /// # Errors
    /// The settings could not be read.
    pub fn chats_with_features_off(&self) -> Result<BTreeSet<String>, ChatSettingsError> {
        Ok(self.read()?.features_off)
    }

    fn read(&self) -> Result<SettingsFile, ChatSettingsError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(SettingsFile {
                    version: VERSION,
                    ..SettingsFile::default()
                });
            }
            Err(source) => {
                return Err(ChatSettingsError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let corrupt = |reason: String| ChatSettingsError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        let settings: SettingsFile =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if settings.version != VERSION {
            return Err(corrupt(format!("unknown version {}", settings.version)));
        }
        Ok(settings)
    }
}

fn validate(chat: &str) -> Result<(), ChatSettingsError> {
    if chat.is_empty() || chat.len() > MAX_CHAT_ID_BYTES || chat.chars().any(char::is_control) {
        return Err(ChatSettingsError::BadChatId);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_run_until_turned_off_and_again_once_turned_on() {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = ChatSettings::open(dir.path());
        assert!(settings.check("family").is_ok(), "no file: features on");
        settings.set_features("family", false).expect("off");
        assert!(matches!(
            settings.check("family"),
            Err(ChatSettingsError::FeaturesOff { chat }) if chat == "family"
        ));
        assert!(settings.check("work").is_ok(), "other chats unaffected");
        // Another handle (another process) sees the change.
        let other = ChatSettings::open(dir.path());
        assert!(other.check("family").is_err());
        other.set_features("family", true).expect("on");
        assert!(settings.check("family").is_ok());
        assert!(settings.chats_with_features_off().expect("list").is_empty());
    }

    #[test]
    fn an_unreadable_file_keeps_every_chat_off_and_is_not_overwritten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = ChatSettings::open(dir.path());
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, b"{\"features_off\": [").expect("write");
        assert!(matches!(
            settings.check("anything"),
            Err(ChatSettingsError::Corrupt { .. })
        ));
        assert!(settings.set_features("anything", true).is_err());
        assert_eq!(
            std::fs::read(&path).expect("read"),
            b"{\"features_off\": [",
            "the user's file is left for them to repair"
        );
    }

    #[test]
    fn chat_ids_are_bounded_and_printable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = ChatSettings::open(dir.path());
        for bad in ["", "a\nb", &"x".repeat(MAX_CHAT_ID_BYTES + 1)] {
            assert!(matches!(
                settings.set_features(bad, false),
                Err(ChatSettingsError::BadChatId)
            ));
        }
        settings
            .set_features(&"x".repeat(MAX_CHAT_ID_BYTES), false)
            .expect("longest id");
    }
}
