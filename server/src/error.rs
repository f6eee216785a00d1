//! The error a command answers with. It sits below every module that can fail a command
//! (the keyspace's type checks, the handlers, dispatch), so none of them imports another
//! to name it.

use std::borrow::Cow;
use std::fmt;

use brooklet_resp::{ArgError, Reply};
use brooklet_streams::StreamError;

/// A command's failure; `Display` is the exact error line Redis sends (without `-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// A malformed argument.
    Arg(ArgError),
    /// `-WRONGTYPE`.
    WrongType,
    /// Any other error, with its full text.
    Other(Cow<'static, str>),
}

impl CommandError {
    /// An error with a fixed text.
    pub const fn msg(text: &'static str) -> Self {
        CommandError::Other(Cow::Borrowed(text))
    }

    /// An error with a formatted text.
    pub fn text(text: String) -> Self {
        CommandError::Other(Cow::Owned(text))
    }

    /// `ERR syntax error`.
    pub const fn syntax() -> Self {
        CommandError::Arg(ArgError::Syntax)
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Arg(e) => e.fmt(f),
            CommandError::WrongType => {
                f.write_str("WRONGTYPE Operation against a key holding the wrong kind of value")
            }
            CommandError::Other(t) => f.write_str(t),
        }
    }
}

impl From<ArgError> for CommandError {
    fn from(e: ArgError) -> Self {
        CommandError::Arg(e)
    }
}

impl From<StreamError> for CommandError {
    fn from(e: StreamError) -> Self {
        CommandError::text(e.to_string())
    }
}

impl From<CommandError> for Reply {
    fn from(e: CommandError) -> Self {
        Reply::error(e.to_string())
    }
}
