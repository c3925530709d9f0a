//! The control client used by `director-cli`: connect, send a request line, read the reply.

use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{encode_request, Response};
use crate::cli::args::Command;

/// Where `director-cli` looks for the daemon unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/director/director.sock";

/// Environment variable naming the socket.
pub const SOCKET_ENV: &str = "DIRECTOR_SOCKET";

/// How long the client waits for the daemon to read a request or answer it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request could not be completed.
#[derive(Debug)]
pub enum ClientError {
    /// The socket could not be connected to.
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Reading or writing failed (including a timeout).
    Io(io::Error),
    /// The daemon closed the connection without answering.
    Closed,
    /// The reply was not a valid response line.
    BadReply(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { path, .. } => write!(
                f,
                "Can't connect to director at {}: is the daemon running?",
                path.display()
            ),
            ClientError::Io(e) if is_timeout(e) => {
                write!(f, "No answer from the director daemon: {e}")
            }
            ClientError::Io(e) => write!(f, "Control connection to the director failed: {e}"),
            ClientError::Closed => f.write_str("The director daemon closed the connection"),
            ClientError::BadReply(e) => write!(f, "Bad reply from the director daemon: {e}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Connect { source, .. } | ClientError::Io(source) => Some(source),
            _ => None,
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The socket path: `explicit` (from `--socket`), else `$DIRECTOR_SOCKET`, else the default.
pub fn socket_path(explicit: Option<&str>) -> PathBuf {
    explicit
        .map(PathBuf::from)
        .or_else(|| std::env::var_os(SOCKET_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// A connection to the daemon; requests are answered in order.
pub struct ControlClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl ControlClient {
    /// Connect to the daemon at `path`; `timeout` bounds every read and write.
    pub fn connect(path: &Path, timeout: Duration) -> Result<ControlClient, ClientError> {
        let connect_err = |source| ClientError::Connect {
            path: path.to_owned(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(connect_err)?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(ClientError::Io)?;
        let writer = stream.try_clone().map_err(ClientError::Io)?;
        Ok(ControlClient {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Send one command and wait for its response.
    pub fn request(&mut self, cmd: &Command) -> Result<Response, ClientError> {
        self.writer
            .write_all(encode_request(cmd).as_bytes())
            .map_err(ClientError::Io)?;
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).map_err(ClientError::Io)?;
        if n == 0 || !line.ends_with('\n') {
            return Err(ClientError::Closed);
        }
        serde_json::from_str(&line).map_err(|e| ClientError::BadReply(e.to_string()))
    }
}
