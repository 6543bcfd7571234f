//! Checks an X509-SVID chain against the trust bundle of a trust domain and
//! prints the SPIFFE ID it proves:
//!
//! ```text
//! cargo run --example verify -- BUNDLE.pem CHAIN.pem TRUST_DOMAIN [EXPECTED_ID]...
//! ```
//!
//! Exit status 0 with the ID on stdout, 1 with the reason on stderr, 2 for
//! missing arguments.
use std::process::ExitCode;

use ambient::identity::{SvidVerifier, TrustBundles, VerifyOptions};

fn run(bundle: &str, chain: &str, trust_domain: &str, expect: &[String]) -> Result<String, String> {
    let bundle_pem = std::fs::read(bundle).map_err(|e| format!("{bundle}: {e}"))?;
    let chain_pem = std::fs::read(chain).map_err(|e| format!("{chain}: {e}"))?;
    let bundles = TrustBundles::new().map_err(|e| e.to_string())?;
    bundles
        .set_pem(trust_domain, &bundle_pem)
        .map_err(|e| e.to_string())?;
    let options = VerifyOptions {
        expected_ids: expect.to_vec(),
        ..Default::default()
    };
    let verifier = SvidVerifier::new(&bundles, &options).map_err(|e| e.to_string())?;
    let id = verifier.verify_pem(&chain_pem).map_err(|e| e.to_string())?;
    Ok(id.as_str().to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: verify BUNDLE.pem CHAIN.pem TRUST_DOMAIN [EXPECTED_ID]...");
        return ExitCode::from(2);
    }
    match run(&args[0], &args[1], &args[2], &args[3..]) {
        Ok(id) => {
            println!("{id}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("verify: {e}");
            ExitCode::from(1)
        }
    }
}
