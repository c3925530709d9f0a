//! `director-cli`: ipvsadm's command line for the director daemon. Install it (or a symlink
//! to it) as `ipvsadm`; messages name the program as invoked, like ipvsadm does.
//!
//! Commands are parsed here with ipvsadm 1.31's rules and sent to the daemon over its control
//! socket (`--socket PATH`, else `$DIRECTOR_SOCKET`, else /run/director/director.sock); its
//! answer is printed and its exit status used. `-h` and `-v` are answered locally. `-R`
//! reads commands from stdin, one per line, as ipvsadm does: a syntax error stops it
//! (exit 2), a refused command is reported and the next line runs, and the exit status is
//! that of the last line.

use std::ffi::OsString;
use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use director::cli::args::{parse, Invocation, ParseError};
use director::cli::restore::restore_lines;
use director::cli::usage::{usage, version_line};
use director::control::client::{socket_path, ClientError, ControlClient, DEFAULT_TIMEOUT};
use director::control::protocol::Response;

/// Exit status when the daemon cannot be reached (ipvsadm's "Can't initialize ipvs").
const EXIT_NO_DAEMON: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .map(|a: OsString| a.to_string_lossy().into_owned())
        .collect();
    let (args, socket) = match take_socket_option(args) {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(255);
        }
    };
    let program = args.first().cloned().unwrap_or_else(|| "ipvsadm".into());
    let path = socket_path(socket.as_deref());
    match parse(&args, false) {
        Err(e) => exit_with(&e),
        Ok(Invocation::Help) => {
            print!("{}", usage(&program));
            ExitCode::SUCCESS
        }
        Ok(Invocation::Version) => {
            println!("{}", version_line());
            ExitCode::SUCCESS
        }
        Ok(Invocation::Run(cmd)) => {
            match ControlClient::connect(&path, DEFAULT_TIMEOUT).and_then(|mut c| c.request(&cmd)) {
                Ok(r) => ExitCode::from(print_response(&r)),
                Err(e) => client_failed(&e),
            }
        }
        Ok(Invocation::Restore) => match ControlClient::connect(&path, DEFAULT_TIMEOUT) {
            Ok(client) => restore(client, &program),
            Err(e) => client_failed(&e),
        },
    }
}

/// `--socket PATH` / `--socket=PATH` (before any `--`) is ours, not ipvsadm's: take it out.
fn take_socket_option(args: Vec<String>) -> Result<(Vec<String>, Option<String>), String> {
    let mut out = Vec::with_capacity(args.len());
    let mut socket = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--" {
            out.push(a);
            out.extend(it.by_ref());
            break;
        }
        if let Some(v) = a.strip_prefix("--socket=") {
            socket = Some(v.to_owned());
        } else if a == "--socket" {
            socket = Some(it.next().ok_or("--socket: missing argument")?);
        } else {
            out.push(a);
        }
    }
    Ok((out, socket))
}

fn exit_with(e: &ParseError) -> ExitCode {
    eprintln!("{}", e.message);
    ExitCode::from(e.exit_code as u8)
}

fn client_failed(e: &ClientError) -> ExitCode {
    eprintln!("{e}");
    ExitCode::from(EXIT_NO_DAEMON)
}

/// Print a daemon response; returns its exit status.
fn print_response(r: &Response) -> u8 {
    let mut out = io::stdout().lock();
    let _ = out.write_all(r.output.as_bytes());
    let _ = out.flush();
    if !r.error.is_empty() {
        eprintln!("{}", r.error);
    }
    r.exit_code as u8
}

/// `-R`: run stdin's lines in order (ipvsadm's restore_table).
fn restore(mut client: ControlClient, program: &str) -> ExitCode {
    let mut status = 0u8;
    let mut input = io::stdin().lock();
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match input.read_until(b'\n', &mut raw) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("reading stdin: {e}");
                return ExitCode::from(255);
            }
        }
        let line = String::from_utf8_lossy(&raw);
        for argv in restore_lines(&line, program) {
            status = match parse(&argv, true) {
                Err(e) if e.aborts_restore => return exit_with(&e),
                Err(e) => {
                    eprintln!("{}", e.message);
                    e.exit_code as u8
                }
                Ok(Invocation::Help) => {
                    print!("{}", usage(program));
                    return ExitCode::SUCCESS;
                }
                Ok(Invocation::Version) => {
                    println!("{}", version_line());
                    return ExitCode::SUCCESS;
                }
                // parse() refuses a nested -R itself; nothing to do here.
                Ok(Invocation::Restore) => status,
                Ok(Invocation::Run(cmd)) => match client.request(&cmd) {
                    Ok(r) => print_response(&r),
                    Err(e) => return client_failed(&e),
                },
            };
        }
    }
    ExitCode::from(status)
}
