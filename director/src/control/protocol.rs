//! The control protocol: one JSON object per line over a Unix stream socket.
//!
//! The client sends a [`Request`] line, the daemon answers with one [`Response`] line; a
//! connection may carry several requests in turn (`ipvsadm -R` uses one connection). The
//! wire forms below are decoupled from the internal model so that the model can change
//! without breaking the protocol; [`PROTOCOL_VERSION`] changes when they do.
//!
//! ```text
//! {"version":1,"command":{"op":"add_service","service":{"key":{"kind":"tcp","addr":"10.1.1.200","port":80},"scheduler":"rr",...}}}
//! {"ok":true,"output":"","error":"","exit_code":0}
//! ```

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::cli::args::{Command, ListFormat, ListRequest, ListWhat};
use crate::control::table::Timeouts;
use crate::model::{DestConfig, ForwardMethod, Protocol, SchedFlags, ServiceConfig, ServiceKey};

/// Version of the request/response format.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line the daemon reads (bytes, newline included).
pub const MAX_LINE: usize = 64 * 1024;

/// A request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Must be [`PROTOCOL_VERSION`].
    pub version: u32,
    /// What to do.
    pub command: WireCommand,
}

impl Request {
    /// A request for `cmd` at the current protocol version.
    pub fn new(cmd: &Command) -> Self {
        Request {
            version: PROTOCOL_VERSION,
            command: WireCommand::from(cmd),
        }
    }
}

/// A response line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the command succeeded.
    pub ok: bool,
    /// Text for stdout (listings), printed as is.
    pub output: String,
    /// Message for stderr (without the final newline), empty on success.
    pub error: String,
    /// The exit status ipvsadm would have: 0, 1 (listing errors) or 255 (kernel errors).
    pub exit_code: i32,
}

impl Response {
    /// Success with `output` for stdout.
    pub fn success(output: impl Into<String>) -> Self {
        Response {
            ok: true,
            output: output.into(),
            error: String::new(),
            exit_code: 0,
        }
    }

    /// Failure with a message for stderr and an exit status.
    pub fn failure(error: impl Into<String>, exit_code: i32) -> Self {
        Response {
            ok: false,
            output: String::new(),
            error: error.into(),
            exit_code,
        }
    }
}

/// Wire form of a service key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WireKey {
    /// `-t addr:port`.
    Tcp {
        /// Virtual address.
        addr: IpAddr,
        /// Virtual port.
        port: u16,
    },
    /// `-u addr:port`.
    Udp {
        /// Virtual address.
        addr: IpAddr,
        /// Virtual port.
        port: u16,
    },
    /// `-f mark [-6]`.
    Fwmark {
        /// The mark.
        mark: u32,
        /// IPv6 service.
        ipv6: bool,
    },
}

/// Wire form of a forwarding method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireForward {
    /// `-g`.
    Route,
    /// `-i`.
    Tunnel,
    /// `-m`.
    Masq,
}

/// Wire form of a service configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireService {
    /// Identity.
    pub key: WireKey,
    /// Scheduler name.
    pub scheduler: String,
    /// Scheduler flags 1, 2, 3.
    pub flags: [bool; 3],
    /// Persistence timeout, if persistent.
    pub persistence: Option<u32>,
    /// Persistence netmask prefix length.
    pub netmask_prefix: u8,
    /// One-packet scheduling.
    pub one_packet: bool,
}

/// Wire form of a destination configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireDest {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Forwarding method.
    pub forward: WireForward,
    /// Weight.
    pub weight: u32,
    /// Upper threshold.
    pub u_threshold: u32,
    /// Lower threshold.
    pub l_threshold: u32,
}

/// Wire form of what a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum WireListWhat {
    /// All services.
    All,
    /// One service.
    Service {
        /// Which.
        key: WireKey,
    },
    /// Connections.
    Connections,
    /// Timeouts.
    Timeout,
    /// Sync daemon state.
    Daemon,
}

/// Wire form of a [`Command`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum WireCommand {
    /// `-A`.
    AddService {
        /// The service.
        service: WireService,
    },
    /// `-E`.
    EditService {
        /// The service.
        service: WireService,
    },
    /// `-D`.
    DeleteService {
        /// The service.
        key: WireKey,
    },
    /// `-C`.
    Clear,
    /// `-a`.
    AddDest {
        /// The service.
        key: WireKey,
        /// The destination.
        dest: WireDest,
    },
    /// `-e`.
    EditDest {
        /// The service.
        key: WireKey,
        /// The destination.
        dest: WireDest,
    },
    /// `-d`.
    DeleteDest {
        /// The service.
        key: WireKey,
        /// Destination address.
        addr: IpAddr,
        /// Destination port.
        port: u16,
    },
    /// `-Z`.
    Zero {
        /// The service, or all.
        key: Option<WireKey>,
    },
    /// `--set`.
    SetTimeouts {
        /// TCP.
        tcp: u32,
        /// TCP after FIN.
        tcp_fin: u32,
        /// UDP.
        udp: u32,
    },
    /// `-L`.
    List {
        /// What.
        what: WireListWhat,
        /// How.
        format: ListFormat,
    },
    /// `-S`.
    Save,
}

impl From<ServiceKey> for WireKey {
    fn from(k: ServiceKey) -> Self {
        match k {
            ServiceKey::Addr {
                proto: Protocol::Tcp,
                addr,
                port,
            } => WireKey::Tcp { addr, port },
            ServiceKey::Addr {
                proto: Protocol::Udp,
                addr,
                port,
            } => WireKey::Udp { addr, port },
            ServiceKey::Fwmark { mark, ipv6 } => WireKey::Fwmark { mark, ipv6 },
        }
    }
}

impl From<WireKey> for ServiceKey {
    fn from(k: WireKey) -> Self {
        match k {
            WireKey::Tcp { addr, port } => ServiceKey::Addr {
                proto: Protocol::Tcp,
                addr,
                port,
            },
            WireKey::Udp { addr, port } => ServiceKey::Addr {
                proto: Protocol::Udp,
                addr,
                port,
            },
            WireKey::Fwmark { mark, ipv6 } => ServiceKey::Fwmark { mark, ipv6 },
        }
    }
}

impl From<ForwardMethod> for WireForward {
    fn from(f: ForwardMethod) -> Self {
        match f {
            ForwardMethod::Route => WireForward::Route,
            ForwardMethod::Tunnel => WireForward::Tunnel,
            ForwardMethod::Masq => WireForward::Masq,
        }
    }
}

impl From<WireForward> for ForwardMethod {
    fn from(f: WireForward) -> Self {
        match f {
            WireForward::Route => ForwardMethod::Route,
            WireForward::Tunnel => ForwardMethod::Tunnel,
            WireForward::Masq => ForwardMethod::Masq,
        }
    }
}

impl From<&ServiceConfig> for WireService {
    fn from(c: &ServiceConfig) -> Self {
        WireService {
            key: c.key.into(),
            scheduler: c.scheduler.clone(),
            flags: [c.flags.flag1, c.flags.flag2, c.flags.flag3],
            persistence: c.persistence,
            netmask_prefix: c.netmask_prefix,
            one_packet: c.one_packet,
        }
    }
}

impl From<WireService> for ServiceConfig {
    fn from(w: WireService) -> Self {
        ServiceConfig {
            key: w.key.into(),
            scheduler: w.scheduler,
            flags: SchedFlags {
                flag1: w.flags[0],
                flag2: w.flags[1],
                flag3: w.flags[2],
            },
            persistence: w.persistence,
            netmask_prefix: w.netmask_prefix,
            one_packet: w.one_packet,
        }
    }
}

impl From<&DestConfig> for WireDest {
    fn from(d: &DestConfig) -> Self {
        WireDest {
            addr: d.addr,
            port: d.port,
            forward: d.forward.into(),
            weight: d.weight,
            u_threshold: d.u_threshold,
            l_threshold: d.l_threshold,
        }
    }
}

impl From<WireDest> for DestConfig {
    fn from(w: WireDest) -> Self {
        DestConfig {
            addr: w.addr,
            port: w.port,
            forward: w.forward.into(),
            weight: w.weight,
            u_threshold: w.u_threshold,
            l_threshold: w.l_threshold,
        }
    }
}

impl From<&Command> for WireCommand {
    fn from(c: &Command) -> Self {
        match c {
            Command::AddService(s) => WireCommand::AddService { service: s.into() },
            Command::EditService(s) => WireCommand::EditService { service: s.into() },
            Command::DeleteService(k) => WireCommand::DeleteService { key: (*k).into() },
            Command::Clear => WireCommand::Clear,
            Command::AddDest { service, dest } => WireCommand::AddDest {
                key: (*service).into(),
                dest: dest.into(),
            },
            Command::EditDest { service, dest } => WireCommand::EditDest {
                key: (*service).into(),
                dest: dest.into(),
            },
            Command::DeleteDest {
                service,
                addr,
                port,
            } => WireCommand::DeleteDest {
                key: (*service).into(),
                addr: *addr,
                port: *port,
            },
            Command::Zero(k) => WireCommand::Zero {
                key: k.map(Into::into),
            },
            Command::SetTimeouts(t) => WireCommand::SetTimeouts {
                tcp: t.tcp,
                tcp_fin: t.tcp_fin,
                udp: t.udp,
            },
            Command::List(r) => WireCommand::List {
                what: match r.what {
                    ListWhat::All => WireListWhat::All,
                    ListWhat::Service(k) => WireListWhat::Service { key: k.into() },
                    ListWhat::Connections => WireListWhat::Connections,
                    ListWhat::Timeout => WireListWhat::Timeout,
                    ListWhat::Daemon => WireListWhat::Daemon,
                },
                format: r.format,
            },
            Command::Save => WireCommand::Save,
        }
    }
}

impl From<WireCommand> for Command {
    fn from(w: WireCommand) -> Self {
        match w {
            WireCommand::AddService { service } => Command::AddService(service.into()),
            WireCommand::EditService { service } => Command::EditService(service.into()),
            WireCommand::DeleteService { key } => Command::DeleteService(key.into()),
            WireCommand::Clear => Command::Clear,
            WireCommand::AddDest { key, dest } => Command::AddDest {
                service: key.into(),
                dest: dest.into(),
            },
            WireCommand::EditDest { key, dest } => Command::EditDest {
                service: key.into(),
                dest: dest.into(),
            },
            WireCommand::DeleteDest { key, addr, port } => Command::DeleteDest {
                service: key.into(),
                addr,
                port,
            },
            WireCommand::Zero { key } => Command::Zero(key.map(Into::into)),
            WireCommand::SetTimeouts { tcp, tcp_fin, udp } => {
                Command::SetTimeouts(Timeouts { tcp, tcp_fin, udp })
            }
            WireCommand::List { what, format } => Command::List(ListRequest {
                what: match what {
                    WireListWhat::All => ListWhat::All,
                    WireListWhat::Service { key } => ListWhat::Service(key.into()),
                    WireListWhat::Connections => ListWhat::Connections,
                    WireListWhat::Timeout => ListWhat::Timeout,
                    WireListWhat::Daemon => ListWhat::Daemon,
                },
                format,
            }),
            WireCommand::Save => Command::Save,
        }
    }
}

/// Encode a request as one line (with the newline).
pub fn encode_request(cmd: &Command) -> String {
    line(&Request::new(cmd))
}

/// Encode a response as one line (with the newline).
pub fn encode_response(r: &Response) -> String {
    line(r)
}

fn line<T: Serialize>(v: &T) -> String {
    // Serializing these plain structs cannot fail (no maps with non-string keys).
    let mut s = serde_json::to_string(v).unwrap_or_else(|e| {
        serde_json::json!({"ok": false, "output": "", "error": e.to_string(), "exit_code": 255})
            .to_string()
    });
    s.push('\n');
    s
}

/// Decode a request line into a command, or the response to send back instead.
pub fn decode_request(line: &str) -> Result<Command, Response> {
    #[derive(Deserialize)]
    struct VersionOnly {
        version: u32,
    }
    let v: VersionOnly = serde_json::from_str(line)
        .map_err(|e| Response::failure(format!("malformed request: {e}"), 255))?;
    if v.version != PROTOCOL_VERSION {
        return Err(Response::failure(
            format!(
                "protocol version mismatch: client speaks {}, daemon speaks {PROTOCOL_VERSION}",
                v.version
            ),
            255,
        ));
    }
    let req: Request = serde_json::from_str(line)
        .map_err(|e| Response::failure(format!("malformed request: {e}"), 255))?;
    Ok(req.command.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::{parse, Invocation};

    fn cmd(line: &str) -> Command {
        let argv: Vec<String> = std::iter::once("ipvsadm")
            .chain(line.split_whitespace())
            .map(String::from)
            .collect();
        match parse(&argv, false).unwrap() {
            Invocation::Run(c) => c,
            other => panic!("not a command: {other:?}"),
        }
    }

    #[test]
    fn every_command_round_trips_through_json() {
        let cmds = [
            "-A -t 10.0.0.1:80 -s sh -b sh-port -p 100 -M 255.255.255.0",
            "-E -u [2001:db8::1]:53 -s rr -o",
            "-D -f 7 -6",
            "-C",
            "-a -t 10.0.0.1:80 -r 192.0.2.1:8080 -m -w 3 -x 10 -y 5",
            "-e -f 1 -r 192.0.2.1 -i",
            "-d -u 10.0.0.1:53 -r 192.0.2.1",
            "-Z",
            "-Z -t 10.0.0.1:80",
            "--set 1 2 3",
            "-L -n --stats --exact --nosort",
            "-L -t 10.0.0.1:80",
            "-L -c --persistent-conn",
            "-L --timeout",
            "-L --daemon",
            "-S",
        ];
        for c in cmds {
            let command = cmd(c);
            let line = encode_request(&command);
            assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
            assert_eq!(decode_request(&line), Ok(command), "{c}");
        }
    }

    #[test]
    fn wire_format_is_stable() {
        let line = encode_request(&cmd("-d -t 10.0.0.1:80 -r 192.0.2.1"));
        assert_eq!(
            line,
            "{\"version\":1,\"command\":{\"op\":\"delete_dest\",\"key\":{\"kind\":\"tcp\",\
             \"addr\":\"10.0.0.1\",\"port\":80},\"addr\":\"192.0.2.1\",\"port\":80}}\n"
        );
        let r = encode_response(&Response::failure("No such service", 255));
        assert_eq!(
            r,
            "{\"ok\":false,\"output\":\"\",\"error\":\"No such service\",\"exit_code\":255}\n"
        );
    }

    #[test]
    fn bad_requests_get_error_responses() {
        let e = decode_request("{\"version\":2,\"command\":{\"op\":\"clear\"}}").unwrap_err();
        assert_eq!(
            e.error,
            "protocol version mismatch: client speaks 2, daemon speaks 1"
        );
        assert_eq!(e.exit_code, 255);
        let e = decode_request("not json").unwrap_err();
        assert!(e.error.starts_with("malformed request: "), "{}", e.error);
        let e = decode_request("{\"version\":1,\"command\":{\"op\":\"explode\"}}").unwrap_err();
        assert!(e.error.starts_with("malformed request: "), "{}", e.error);
    }
}
