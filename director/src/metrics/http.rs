//! A minimal HTTP/1.1 server for `/metrics` and `/healthz` on one std thread.
//!
//! Scrapes are rare (every few seconds), so connections are served one at a time on the
//! server thread, each bounded by read/write timeouts, and closed after one response.
//! Nothing here touches the workers: the exporter only does relaxed loads.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::exporter::{Exporter, CONTENT_TYPE};

/// How long to wait for a request's headers.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a client may take to read the response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head accepted.
const MAX_REQUEST: usize = 8192;
/// Sleep between accept attempts when no connection is pending (bounds shutdown latency).
const ACCEPT_POLL: Duration = Duration::from_millis(50);

/// The running `/metrics` server. Dropping it (or [`MetricsServer::shutdown`]) stops it.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port) and serves `exporter` on a new thread.
    pub fn start(addr: SocketAddr, exporter: Arc<Exporter>) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || serve(listener, &exporter, &stop_flag))?;
        Ok(MetricsServer {
            addr,
            stop,
            handle: Some(handle),
        })
    }

    /// The bound address (with the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections and joins the server thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn serve(listener: TcpListener, exporter: &Exporter, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                // A failed exchange only concerns that client.
                let _ = handle(stream, exporter);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // WouldBlock, or a transient error such as EMFILE: wait a little.
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

/// A response: status line parts, content type and body.
struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: u16, reason: &'static str, body: &str) -> Self {
        Response {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: body.to_owned(),
        }
    }
}

fn handle(mut stream: TcpStream, exporter: &Exporter) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let head = read_head(&mut stream)?;
    let (head_only, resp) = match parse_request_line(&head) {
        None => (false, Response::text(400, "Bad Request", "bad request\n")),
        Some((method, path)) => {
            let head_only = method == "HEAD";
            let resp = if method != "GET" && !head_only {
                Response::text(405, "Method Not Allowed", "method not allowed\n")
            } else {
                route(path, exporter)
            };
            (head_only, resp)
        }
    };
    write_response(&mut stream, &resp, head_only)
}

fn route(path: &str, exporter: &Exporter) -> Response {
    match path {
        "/metrics" => match exporter.render() {
            Ok(body) => Response {
                status: 200,
                reason: "OK",
                content_type: CONTENT_TYPE,
                body,
            },
            Err(e) => Response::text(500, "Internal Server Error", &format!("{e}\n")),
        },
        "/healthz" => Response::text(200, "OK", "ok\n"),
        _ => Response::text(404, "Not Found", "not found\n"),
    }
}

/// Reads until the end of the request head (blank line), EOF or `MAX_REQUEST` bytes.
fn read_head(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while buf.len() < MAX_REQUEST {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            break;
        }
    }
    Ok(buf)
}

/// `"GET /metrics?x HTTP/1.1"` -> `("GET", "/metrics")`; `None` if malformed.
fn parse_request_line(head: &[u8]) -> Option<(&str, &str)> {
    let end = head.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&head[..end])
        .ok()?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    if parts.next().is_some() || !version.starts_with("HTTP/1.") || method.is_empty() {
        return None;
    }
    let path = target.split('?').next().unwrap_or(target);
    Some((method, path))
}

fn write_response(stream: &mut TcpStream, r: &Response, head_only: bool) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        r.reason,
        r.content_type,
        r.body.len()
    );
    if r.status == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&r.body);
    }
    stream.write_all(out.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::parse_request_line;

    #[test]
    fn request_line() {
        assert_eq!(
            parse_request_line(b"GET /metrics?name[]=x HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            parse_request_line(b"HEAD /healthz HTTP/1.0\n\n"),
            Some(("HEAD", "/healthz"))
        );
        assert_eq!(parse_request_line(b"GET /metrics\r\n\r\n"), None);
        assert_eq!(parse_request_line(b"GET / HTTP/2 x\r\n"), None);
        assert_eq!(parse_request_line(b"\xff\xfe / HTTP/1.1\r\n"), None);
        assert_eq!(parse_request_line(b"GET /metrics HTTP/1.1"), None);
    }
}
