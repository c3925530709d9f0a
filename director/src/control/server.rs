//! The control socket server: a Unix stream socket, one thread per client, one JSON
//! request per line (see [`super::protocol`]).
//!
//! The socket is created with mode 0600 before it becomes visible (bound under a temporary
//! name, chmod-ed, then renamed into place); a stale socket left by a dead daemon is
//! removed, a live one is refused. A request is applied only once its whole line has
//! arrived, so a client that disconnects mid-line changes nothing.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::protocol::{decode_request, encode_response, Response, MAX_LINE};
use super::ControlHandler;

/// Clients currently connected: their streams (to unblock them at shutdown) and threads.
#[derive(Default)]
struct Clients {
    next_id: u64,
    streams: HashMap<u64, UnixStream>,
    threads: Vec<JoinHandle<()>>,
}

/// A running control server; dropping it (or [`ControlServer::shutdown`]) stops it,
/// disconnects the clients and removes the socket file.
pub struct ControlServer {
    path: PathBuf,
    inode: (u64, u64),
    stop: Arc<AtomicBool>,
    clients: Arc<Mutex<Clients>>,
    acceptor: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Create the socket at `path` (parent directories too) and serve `handler` on it.
    pub fn bind(path: &Path, handler: Arc<dyn ControlHandler>) -> io::Result<ControlServer> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        remove_stale(path)?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp.{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = fs::remove_file(&tmp);
        let listener = UnixListener::bind(&tmp)?;
        let placed = fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
            .and_then(|()| fs::rename(&tmp, path));
        if let Err(e) = placed {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let meta = fs::metadata(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let clients = Arc::new(Mutex::new(Clients::default()));
        let acceptor = {
            let (stop, clients) = (stop.clone(), clients.clone());
            std::thread::Builder::new()
                .name("control-accept".into())
                .spawn(move || accept_loop(listener, handler, stop, clients))?
        };
        Ok(ControlServer {
            path: path.to_owned(),
            inode: (meta.dev(), meta.ino()),
            stop,
            clients,
            acceptor: Some(acceptor),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stop accepting, disconnect clients, wait for their threads, remove the socket.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() with a connection of our own. If the socket file was
        // removed behind our back that is impossible: leave the thread blocked rather than
        // hang here.
        if UnixStream::connect(&self.path).is_ok() {
            let _ = acceptor.join();
        }
        let threads = {
            let mut c = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
            for s in c.streams.values() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            std::mem::take(&mut c.threads)
        };
        for t in threads {
            let _ = t.join();
        }
        // Remove the socket only if it is still the one we created.
        if fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.inode) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Remove a socket file nobody listens on; refuse a live one or a non-socket.
fn remove_stale(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("a daemon is already listening on {}", path.display()),
        )),
        Err(_) => fs::remove_file(path),
    }
}

fn accept_loop(
    listener: UnixListener,
    handler: Arc<dyn ControlHandler>,
    stop: Arc<AtomicBool>,
    clients: Arc<Mutex<Clients>>,
) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = conn else { continue };
        let Ok(registered) = stream.try_clone() else {
            continue;
        };
        let mut c = clients.lock().unwrap_or_else(PoisonError::into_inner);
        c.threads.retain(|t| !t.is_finished());
        let id = c.next_id;
        c.next_id += 1;
        c.streams.insert(id, registered);
        let (handler, clients2) = (handler.clone(), clients.clone());
        let spawned = std::thread::Builder::new()
            .name("control-client".into())
            .spawn(move || {
                serve_client(stream, handler.as_ref());
                clients2
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .streams
                    .remove(&id);
            });
        match spawned {
            Ok(t) => c.threads.push(t),
            Err(_) => {
                c.streams.remove(&id);
            }
        }
    }
}

/// Serve requests on one connection until it closes.
fn serve_client(stream: UnixStream, handler: &dyn ControlHandler) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = match (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
        {
            Ok(n) => n,
            Err(_) => return,
        };
        if buf.last() != Some(&b'\n') {
            if n >= MAX_LINE {
                let r = Response::failure(format!("request longer than {MAX_LINE} bytes"), 255);
                let _ = writer.write_all(encode_response(&r).as_bytes());
            }
            // End of stream (possibly mid-line: nothing is applied) or an oversized line.
            return;
        }
        let response = match std::str::from_utf8(&buf) {
            Ok(line) => match decode_request(line.trim_end()) {
                Ok(cmd) => handler.handle(cmd),
                Err(r) => r,
            },
            Err(_) => Response::failure("malformed request: not UTF-8", 255),
        };
        if writer
            .write_all(encode_response(&response).as_bytes())
            .is_err()
        {
            return;
        }
    }
}
