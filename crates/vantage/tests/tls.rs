//! The control plane over HTTPS: API clients and a remote agent trust a private CA.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{eventually, Server, TOKEN};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

const AGENT_TOKEN: &str = "vantage-test-agent-token_0123456789abcdefghijklmnopqrs";

#[tokio::test]
async fn agents_and_clients_over_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let (ca_file, cert_file, key_file) = (
        tmp.path().join("ca.pem"),
        tmp.path().join("cert.pem"),
        tmp.path().join("key.pem"),
    );
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();

    let dir = tmp.path().join("data");
    let env = [
        ("VANTAGE_BOOTSTRAP_TOKEN", TOKEN),
        ("VANTAGE_BOOTSTRAP_AGENT_TOKEN", AGENT_TOKEN),
        ("VANTAGE_BOOTSTRAP_AGENT_LOCATION", "OC/syd1"),
    ];
    let flags = [
        "--no-agent",
        "--tls-cert",
        cert_file.to_str().unwrap(),
        "--tls-key",
        key_file.to_str().unwrap(),
    ];
    let s = Server::start_with(&dir, &env, &flags).unwrap();
    assert!(s.startup_log.contains("(https)"), "{}", s.startup_log);
    let port = s.addr.rsplit(':').next().unwrap().to_owned();
    let base = format!("https://localhost:{port}");

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let accounts: serde_json::Value = client
        .get(format!("{base}/client/v4/accounts"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account = accounts["result"][0]["id"].as_str().unwrap().to_owned();
    // Plain HTTP to the TLS port gets nowhere.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/client/v4/accounts")).await;
    assert!(!plain.is_ok_and(|r| r.status().is_success()));

    let mut agent = Command::new(common::bin())
        .args([
            "agent",
            "--controller",
            &base,
            "--token",
            AGENT_TOKEN,
            "--region",
            "OC",
            "--location",
            "syd1",
        ])
        .arg("--controller-ca-file")
        .arg(&ca_file)
        .env("VANTAGE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let locations = format!("{base}/client/v4/accounts/{account}/load_balancers/probe_locations");
    eventually(
        Duration::from_secs(20),
        "the agent reaches the controller over TLS",
        || async {
            let v: serde_json::Value = client
                .get(&locations)
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["result"].as_array().is_some_and(|l| {
                l.iter()
                    .any(|x| x["location"] == "syd1" && x["region"] == "OC")
            })
        },
    )
    .await;
    let _ = agent.kill();
    let _ = agent.wait();
}
