//! The real `director-cli` binary against an in-process control server serving a
//! [`TableHandler`] over a real Unix socket: the classic walkthrough (also through a symlink
//! named `ipvsadm`), rejected commands, `-S | -R`, concurrent clients, a client that
//! disconnects mid-line, and the socket's life cycle.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use director::cli::args::{parse, Invocation};
use director::control::client::ControlClient;
use director::control::protocol::Response;
use director::control::server::ControlServer;
use director::control::table::IpvsTable;
use director::control::TableHandler;

const CLI: &str = env!("CARGO_BIN_EXE_director-cli");

/// A scratch directory with a control server in it; both go away on drop (also when a
/// test fails).
struct Daemon {
    dir: PathBuf,
    sock: PathBuf,
    handler: Arc<TableHandler>,
    server: Option<ControlServer>,
}

fn scratch_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "director-cli-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Daemon {
    fn start() -> Daemon {
        let dir = scratch_dir();
        let sock = dir.join("run").join("director.sock");
        let handler = Arc::new(TableHandler::new(IpvsTable::new()));
        let server = ControlServer::bind(&sock, handler.clone()).unwrap();
        Daemon {
            dir,
            sock,
            handler,
            server: Some(server),
        }
    }

    fn cli(&self, args: &str) -> Out {
        run(CLI, &self.sock, args, None)
    }

    fn cli_stdin(&self, args: &str, input: &str) -> Out {
        run(CLI, &self.sock, args, Some(input))
    }

    fn save(&self) -> String {
        let o = self.cli("-S -n");
        assert_eq!((o.code, o.stderr.as_str()), (0, ""), "-S failed");
        o.stdout
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Out {
    stdout: String,
    stderr: String,
    code: i32,
}

fn run(program: &str, sock: &Path, args: &str, input: Option<&str>) -> Out {
    let mut child = Process::new(program)
        .args(args.split_whitespace())
        .env("DIRECTOR_SOCKET", sock)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = input {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let o = child.wait_with_output().unwrap();
    Out {
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
        code: o.status.code().unwrap(),
    }
}

fn ok_silent(o: Out, what: &str) {
    assert_eq!(
        o,
        Out {
            stdout: String::new(),
            stderr: String::new(),
            code: 0
        },
        "{what}"
    );
}

const WALKTHROUGH: &[&str] = &[
    "-C",
    "-A -t 10.1.1.200:80 -s rr",
    "-a -t 10.1.1.200:80 -r 192.168.1.100:80 -m -w 1",
    "-a -t 10.1.1.200:80 -r 192.168.1.200:80 -m -w 1",
];

const WALKTHROUGH_LISTING: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.1.1.200:80 rr
  -> 192.168.1.100:80             Masq    1      0          0         
  -> 192.168.1.200:80             Masq    1      0          0         
";

#[test]
fn classic_walkthrough() {
    let d = Daemon::start();
    for cmd in WALKTHROUGH {
        ok_silent(d.cli(cmd), cmd);
    }
    let o = d.cli("-L -n");
    assert_eq!(
        (o.stdout.as_str(), o.stderr.as_str(), o.code),
        (WALKTHROUGH_LISTING, "", 0)
    );
    assert_eq!(
        d.save(),
        "-A -t 10.1.1.200:80 -s rr\n\
         -a -t 10.1.1.200:80 -r 192.168.1.100:80 -m -w 1\n\
         -a -t 10.1.1.200:80 -r 192.168.1.200:80 -m -w 1\n"
    );
    // The daemon's table holds the dests newest first, as the kernel does.
    let order: Vec<String> = d.handler.with_table(|t| {
        t.services()[0]
            .dests
            .iter()
            .map(|x| x.config.addr.to_string())
            .collect()
    });
    assert_eq!(order, vec!["192.168.1.200", "192.168.1.100"]);
}

#[test]
fn walkthrough_through_a_symlink_named_ipvsadm() {
    let d = Daemon::start();
    let link = d.dir.join("ipvsadm");
    std::os::unix::fs::symlink(CLI, &link).unwrap();
    let ipvsadm = link.to_str().unwrap();
    for cmd in WALKTHROUGH {
        ok_silent(run(ipvsadm, &d.sock, cmd, None), cmd);
    }
    let o = run(ipvsadm, &d.sock, "-L -n", None);
    assert_eq!((o.stdout.as_str(), o.code), (WALKTHROUGH_LISTING, 0));
    // Plain `ipvsadm` lists too.
    assert_eq!(run(ipvsadm, &d.sock, "", None).stdout, WALKTHROUGH_LISTING);
    // Messages name the program as invoked.
    let o = run(ipvsadm, &d.sock, "-n", None);
    assert_eq!(
        (o.stderr, o.code),
        (
            format!("Try `{ipvsadm} -h' or '{ipvsadm} --help' for more information.\n"),
            255
        )
    );
    let o = run(ipvsadm, &d.sock, "-h", None);
    assert!(
        o.stdout
            .starts_with("ipvsadm v1.31 2019/12/24 (compiled with director-cli "),
        "{}",
        o.stdout
    );
    assert!(o
        .stdout
        .contains(&format!("Usage:\n  {ipvsadm} -A|E virtual-service")));
    assert_eq!(o.code, 0);
}

/// A table with TCP, UDP and fwmark services and the three forwarding methods.
const FIXTURE: &str = "\
-A -t 10.1.1.200:80 -s rr
-a -t 10.1.1.200:80 -r 192.168.1.100:80 -m -w 1
-a -t 10.1.1.200:80 -r 192.168.1.200:8080 -m -w 3
-A -u 10.1.1.200:53 -s wrr -p 120 -M 255.255.255.0
-a -u 10.1.1.200:53 -r 192.168.1.53 -g -w 2
-A -f 7 -s sh -b sh-port
-a -f 7 -r 192.168.2.1 -i
-A -t [2001:db8::1]:443 -s wlc -p
-a -t [2001:db8::1]:443 -r [2001:db8::5]:443 -m -w 0
-A -u 10.1.1.201:5000 -s lc -o
--set 1000 0 30
";

#[test]
fn rejected_commands_leave_the_table_unchanged() {
    let d = Daemon::start();
    ok_silent(d.cli_stdin("-R", FIXTURE), "restore fixture");
    let before = d.save();
    let timeouts = d.cli("-L --timeout");
    assert_eq!(timeouts.stdout, "Timeout (tcp tcpfin udp): 1000 120 30\n");
    let rejected: &[(&str, &str, i32)] = &[
        ("-A -t 10.1.1.200:80", "Service already exists", 255),
        (
            "-A -t 10.1.1.202:80 -s bogus",
            "Scheduler or persistence engine not found",
            255,
        ),
        (
            "-E -t 10.1.1.200:80 -s bogus",
            "Scheduler or persistence engine not found",
            255,
        ),
        ("-E -t 10.9.9.9:80 -s rr", "No such service", 255),
        ("-D -t 10.9.9.9:80", "No such service", 255),
        ("-D -f 8", "No such service", 255),
        ("-Z -t 10.9.9.9:80", "No such service", 255),
        ("-a -t 10.9.9.9:80 -r 192.0.2.1", "Service not defined", 255),
        ("-e -t 10.9.9.9:80 -r 192.0.2.1", "Service not defined", 255),
        ("-d -t 10.9.9.9:80 -r 192.0.2.1", "Service not defined", 255),
        (
            "-a -t 10.1.1.200:80 -r 192.168.1.100:80 -m -w 5",
            "Destination already exists",
            255,
        ),
        (
            "-e -t 10.1.1.200:80 -r 192.0.2.99 -m",
            "No such destination",
            255,
        ),
        (
            "-d -t 10.1.1.200:80 -r 192.168.1.100:81",
            "No such destination",
            255,
        ),
        (
            "-a -t 10.1.1.200:80 -r 192.0.2.7 -m -x 10 -y 20",
            "Numerical result out of range",
            255,
        ),
        (
            "-e -t 10.1.1.200:80 -r 192.168.1.100:80 -m -y 1",
            "Numerical result out of range",
            255,
        ),
        (
            "-a -t 10.1.1.200:80 -r 224.0.0.1 -m",
            "Invalid operation.  Possibly wrong module version, address not unicast, ...",
            255,
        ),
        ("-L -n -t 10.9.9.9:80", "No such service", 1),
        (
            "-A -t 10.1.1.203",
            "Zero port specified for non-persistent service",
            2,
        ),
        (
            "-a -t 10.1.1.200:80 -r 192.0.2.1 -w 70000",
            "illegal weight specified",
            2,
        ),
        ("-A -t 10.1.1.200:80 -L", "invalid option `-L'", 2),
        ("-A -6 -f 7", "-6 used before -f\n", 2),
        ("-A -t 10.1.1.204:80 -q", "-q: unknown option", 255),
        (
            "-n",
            "Try `PROG -h' or 'PROG --help' for more information.",
            255,
        ),
        ("--set 1 2", "--set option requires 3 timeout values", 2),
    ];
    for (args, msg, code) in rejected {
        let o = d.cli(args);
        let msg = msg.replace("PROG", CLI);
        assert_eq!(
            (o.stdout.as_str(), o.stderr.as_str(), o.code),
            ("", format!("{msg}\n").as_str(), *code),
            "ipvsadm {args}"
        );
        assert_eq!(d.save(), before, "ipvsadm {args} changed the table");
    }
    assert_eq!(d.cli("-L --timeout").stdout, timeouts.stdout);
}

#[test]
fn save_then_restore_rebuilds_the_identical_table() {
    let a = Daemon::start();
    ok_silent(a.cli_stdin("-R", FIXTURE), "restore fixture");
    let saved = a.save();
    assert_eq!(
        saved,
        "-A -t 10.1.1.200:80 -s rr\n\
         -a -t 10.1.1.200:80 -r 192.168.1.100:80 -m -w 1\n\
         -a -t 10.1.1.200:80 -r 192.168.1.200:8080 -m -w 3\n\
         -A -u 10.1.1.200:53 -s wrr -p 120 -M 255.255.255.0\n\
         -a -u 10.1.1.200:53 -r 192.168.1.53:53 -g -w 2\n\
         -A -u 10.1.1.201:5000 -s lc -o\n\
         -A -t [2001:db8::1]:443 -s wlc -p 360\n\
         -a -t [2001:db8::1]:443 -r [2001:db8::5]:443 -m -w 0\n\
         -A -f 7 -s sh -b sh-port\n\
         -a -f 7 -r 192.168.2.1:0 -i -w 1 --tun-type ipip\n"
    );
    let b = Daemon::start();
    ok_silent(b.cli_stdin("-R", &saved), "restore saved");
    assert_eq!(b.save(), saved);
    assert_eq!(b.cli("-L -n").stdout, a.cli("-L -n").stdout);
    let configs = |d: &Daemon| {
        d.handler.with_table(|t| {
            t.services()
                .iter()
                .map(|s| {
                    let dests: Vec<_> = s.dests.iter().map(|x| x.config.clone()).collect();
                    (s.config.clone(), dests)
                })
                .collect::<Vec<_>>()
        })
    };
    // Same services and destinations; insertion order follows the sorted save.
    let mut ca = configs(&a);
    let mut cb = configs(&b);
    let key = |c: &(
        director::model::ServiceConfig,
        Vec<director::model::DestConfig>,
    )| { format!("{:?}", c.0.key) };
    ca.sort_by_key(key);
    cb.sort_by_key(key);
    assert_eq!(ca.len(), 5);
    for (x, y) in ca.iter().zip(&cb) {
        assert_eq!(x.0, y.0);
        let mut dx = x.1.clone();
        let mut dy = y.1.clone();
        dx.sort_by_key(|d| (d.addr, d.port));
        dy.sort_by_key(|d| (d.addr, d.port));
        assert_eq!(dx, dy);
    }
    // Clearing and restoring on the same daemon gives the same rules back.
    ok_silent(a.cli("-C"), "-C");
    assert_eq!(a.save(), "");
    ok_silent(a.cli_stdin("--restore", &saved), "restore again");
    assert_eq!(a.save(), saved);
}

#[test]
fn restore_runs_lines_in_order_like_ipvsadm() {
    let d = Daemon::start();
    // A refused command is reported and the next line runs; a syntax error stops -R.
    let input = "ipvsadm -A -t 10.0.0.1:80 -s rr\n\
                 -A -t 10.0.0.1:80 -s rr\n\
                 \n\
                 -a -t 10.0.0.1:80 -r 192.0.2.1 -m\n\
                 -A -t 10.0.0.2\n\
                 -A -t 10.0.0.3:80\n";
    let o = d.cli_stdin("-R", input);
    assert_eq!(
        (o.stderr.as_str(), o.code),
        (
            "Service already exists\nZero port specified for non-persistent service\n",
            2
        )
    );
    assert_eq!(
        d.save(),
        "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 192.0.2.1:80 -m -w 1\n"
    );
    // The exit status is the last line's.
    let o = d.cli_stdin("-R", "-D -t 10.0.0.9:80\n-A -t 10.0.0.4:80\n");
    assert_eq!((o.stderr.as_str(), o.code), ("No such service\n", 0));
    let o = d.cli_stdin("-R", "-A -t 10.0.0.5:80\n-D -t 10.0.0.9:80\n");
    assert_eq!((o.stderr.as_str(), o.code), ("No such service\n", 255));
    // An unknown option is reported but, unlike ipvsadm's fail(), does not stop -R.
    let o = d.cli_stdin("-R", "-A -t 10.0.0.6:80 -q\n-L --timeout\n");
    assert_eq!(
        (o.stdout.as_str(), o.stderr.as_str(), o.code),
        (
            "Timeout (tcp tcpfin udp): 900 120 300\n",
            "-q: unknown option\n",
            0
        )
    );
    // Listings inside -R print; a nested -R is refused.
    let o = d.cli_stdin("-R", "-L --timeout\n-R\n-C\n");
    let try_help = format!("Try `{CLI} -h' or '{CLI} --help' for more information.\n");
    assert_eq!(
        (o.stdout.as_str(), o.stderr.as_str(), o.code),
        (
            "Timeout (tcp tcpfin udp): 900 120 300\n",
            try_help.as_str(),
            255
        )
    );
    assert_ne!(d.save(), "", "-C after the refused -R must not run");
}

#[test]
fn concurrent_clients() {
    let d = Daemon::start();
    ok_silent(d.cli("-A -t 10.0.0.1:80 -s rr"), "add service");
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let sock = d.sock.clone();
            std::thread::spawn(move || {
                let mut c = ControlClient::connect(&sock, Duration::from_secs(30)).unwrap();
                for i in 0..20u8 {
                    let line = format!("ipvsadm -a -t 10.0.0.1:80 -r 192.0.{t}.{} -m", i + 1);
                    let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
                    let Ok(Invocation::Run(cmd)) = parse(&argv, false) else {
                        panic!("{line}")
                    };
                    let r: Response = c.request(&cmd).unwrap();
                    assert!(r.ok, "{line}: {}", r.error);
                    let list = parse(&["ipvsadm".into(), "-Ln".into()], false).unwrap();
                    let Invocation::Run(list) = list else {
                        panic!()
                    };
                    assert!(c
                        .request(&list)
                        .unwrap()
                        .output
                        .starts_with("IP Virtual Server"));
                }
            })
        })
        .collect();
    // Binaries at the same time, on their own services.
    let bins: Vec<_> = (0..4)
        .map(|i| {
            let sock = d.sock.clone();
            std::thread::spawn(move || run(CLI, &sock, &format!("-A -u 10.0.1.{i}:53"), None))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for b in bins {
        ok_silent(b.join().unwrap(), "concurrent -A");
    }
    let (services, ids) = d.handler.with_table(|t| {
        let ids: std::collections::BTreeSet<u32> =
            t.services()[0].dests.iter().map(|x| x.id).collect();
        (t.services().len(), ids)
    });
    assert_eq!(services, 5);
    assert_eq!(
        ids.len(),
        160,
        "every destination added once, with its own id"
    );
}

#[test]
fn a_client_that_disconnects_mid_line_changes_nothing() {
    let d = Daemon::start();
    ok_silent(d.cli("-A -t 10.0.0.1:80 -s rr"), "add service");
    let before = d.save();
    let clear = "{\"version\":1,\"command\":{\"op\":\"clear\"}}";
    {
        let mut s = UnixStream::connect(&d.sock).unwrap();
        // A complete request without its newline, then the client goes away.
        s.write_all(clear.as_bytes()).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = String::new();
        BufReader::new(&s).read_line(&mut reply).unwrap();
        assert_eq!(reply, "", "no answer to an incomplete line");
    }
    {
        // Half a line, then a hard close.
        let mut s = UnixStream::connect(&d.sock).unwrap();
        s.write_all(&clear.as_bytes()[..20]).unwrap();
    }
    assert_eq!(d.save(), before);
    // A complete line followed by a partial one: the first is applied, the second not.
    {
        let mut s = UnixStream::connect(&d.sock).unwrap();
        let add = "{\"version\":1,\"command\":{\"op\":\"add_service\",\"service\":{\"key\":\
                   {\"kind\":\"udp\",\"addr\":\"10.0.0.2\",\"port\":53},\"scheduler\":\"rr\",\
                   \"flags\":[false,false,false],\"persistence\":null,\"netmask_prefix\":32,\
                   \"one_packet\":false}}}\n";
        s.write_all(add.as_bytes()).unwrap();
        s.write_all(clear.as_bytes()).unwrap();
        let mut reply = String::new();
        BufReader::new(&s).read_line(&mut reply).unwrap();
        assert_eq!(
            reply,
            "{\"ok\":true,\"output\":\"\",\"error\":\"\",\"exit_code\":0}\n"
        );
    }
    assert_eq!(
        d.save(),
        "-A -t 10.0.0.1:80 -s rr\n-A -u 10.0.0.2:53 -s rr\n"
    );
}

#[test]
fn bad_requests_get_error_lines_and_the_connection_survives() {
    let d = Daemon::start();
    let mut s = UnixStream::connect(&d.sock).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut ask = |line: &str| {
        s.write_all(line.as_bytes()).unwrap();
        let mut reply = String::new();
        r.read_line(&mut reply).unwrap();
        serde_json::from_str::<Response>(&reply).unwrap()
    };
    let v = ask("{\"version\":99,\"command\":{\"op\":\"clear\"}}\n");
    assert_eq!(
        (v.ok, v.error.as_str(), v.exit_code),
        (
            false,
            "protocol version mismatch: client speaks 99, daemon speaks 1",
            255
        )
    );
    let m = ask("garbage\n");
    assert!(!m.ok && m.error.starts_with("malformed request"), "{m:?}");
    let t = ask("{\"version\":1,\"command\":{\"op\":\"list\",\"what\":{\"what\":\"timeout\"},\"format\":{\"numeric\":false,\"stats\":false,\"rate\":false,\"thresholds\":false,\"persistent_conn\":false,\"nosort\":false,\"exact\":false,\"tun_info\":false}}}\n");
    assert_eq!(t.output, "Timeout (tcp tcpfin udp): 900 120 300\n");
    // An oversized line is refused and the connection closed.
    let mut big = vec![b'x'; director::control::protocol::MAX_LINE + 10];
    big.push(b'\n');
    let mut s2 = UnixStream::connect(&d.sock).unwrap();
    let _ = s2.write_all(&big);
    let mut reply = String::new();
    BufReader::new(&s2).read_line(&mut reply).unwrap();
    let resp: Response = serde_json::from_str(&reply).unwrap();
    assert_eq!(resp.error, "request longer than 65536 bytes");
}

#[test]
fn no_daemon_gives_a_clear_error() {
    let dir = scratch_dir();
    let sock = dir.join("nothing.sock");
    let o = run(CLI, &sock, "-L -n", None);
    assert_eq!(
        (o.stdout.as_str(), o.stderr.clone(), o.code),
        (
            "",
            format!(
                "Can't connect to director at {}: is the daemon running?\n",
                sock.display()
            ),
            2
        )
    );
    // --socket wins over the environment, in either form.
    let other = dir.join("other.sock");
    let o = run(
        CLI,
        &sock,
        &format!("-L --socket {}", other.display()),
        None,
    );
    assert!(
        o.stderr.contains(&other.display().to_string()),
        "{}",
        o.stderr
    );
    let o = run(
        CLI,
        &sock,
        &format!("--socket={} -C", other.display()),
        None,
    );
    assert!(
        o.stderr.contains(&other.display().to_string()),
        "{}",
        o.stderr
    );
    // -h, -v and syntax errors need no daemon.
    let o = run(CLI, &sock, "-v", None);
    assert_eq!(o.code, 0);
    assert_eq!(
        o.stdout,
        format!(
            "ipvsadm v1.31 2019/12/24 (compiled with director-cli {} and IPVS v1.2.1)\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    let o = run(CLI, &sock, "-A -t 10.0.0.1", None);
    assert_eq!(
        (o.stderr.as_str(), o.code),
        ("Zero port specified for non-persistent service\n", 2)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn socket_life_cycle() {
    let dir = scratch_dir();
    let sock = dir.join("d.sock");
    let handler = Arc::new(TableHandler::default());
    // A stale socket (nobody listening) is replaced.
    drop(UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let server = ControlServer::bind(&sock, handler.clone()).unwrap();
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // A live one is refused and left alone.
    let e = ControlServer::bind(&sock, handler.clone()).err().unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    ok_silent(run(CLI, &sock, "-A -t 10.0.0.1:80", None), "served");
    // Shutdown disconnects idle clients and removes the socket.
    let idle = UnixStream::connect(&sock).unwrap();
    server.shutdown();
    assert!(!sock.exists());
    let mut buf = String::new();
    assert_eq!(BufReader::new(&idle).read_line(&mut buf).unwrap(), 0);
    // A path that is not a socket is never deleted.
    std::fs::write(&sock, "keep me").unwrap();
    let e = ControlServer::bind(&sock, handler).err().unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read_to_string(&sock).unwrap(), "keep me");
    let _ = std::fs::remove_dir_all(&dir);
}
