//! Carries stdin and stdout through one HBONE tunnel, like
//! `ambientctl hbone connect`:
//!
//! ```text
//! cargo run --example tunnel -- VIA AUTHORITY CERT.pem KEY.pem BUNDLE.pem [EXPECTED_ID]...
//! ```
//!
//! VIA is the HBONE server's numeric ip:port, AUTHORITY the host:port it
//! connects to. Exit status 0 after a clean end, 1 with the reason on stderr.
use std::cell::RefCell;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use ambient::hbone::{Role, TlsContext};
use ambient::runtime::{Loop, TunnelResult};

fn run(args: &[String]) -> Result<(), String> {
    let (via, authority) = (&args[0], &args[1]);
    let tls = TlsContext::from_files(
        Role::Client,
        args[2].as_ref(),
        args[3].as_ref(),
        args[4].as_ref(),
    )
    .map_err(|e| e.to_string())?;
    let expected: Vec<&str> = args[5..].iter().map(String::as_str).collect();
    let lp = Loop::new().map_err(|e| e.to_string())?;
    let client = lp.client(&tls, None).map_err(|e| e.to_string())?;
    let outcome: Rc<RefCell<Option<TunnelResult>>> = Rc::new(RefCell::new(None));
    let o = outcome.clone();
    let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
    client
        .tunnel(
            via,
            authority,
            &expected,
            stdin.as_fd(),
            stdout.as_fd(),
            move |r| *o.borrow_mut() = Some(r),
        )
        .map_err(|e| e.to_string())?;
    while outcome.borrow().is_none() {
        lp.run_for(Duration::from_millis(50));
    }
    let r = outcome.borrow_mut().take().unwrap();
    r.result.map_err(|e| format!("HTTP {}: {e}", r.http_status))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        eprintln!("usage: tunnel VIA AUTHORITY CERT.pem KEY.pem BUNDLE.pem [EXPECTED_ID]...");
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tunnel: {e}");
            ExitCode::from(1)
        }
    }
}
