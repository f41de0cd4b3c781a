//! Serial console over SOL against ipmi_sim, whose serial port is a TCP server the
//! test runs (the "host" side).

mod common;

use std::time::Duration;

use common::peers::{IpmiSim, SimOptions};
use common::task;
use ironic_core::ErrorKind;
use ironic_core::driver::ConsoleInterface;
use ironic_drivers_ipmi::IpmiInterfaces;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

async fn read_until(s: &mut TcpStream, want: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let r = timeout(Duration::from_secs(15), async {
        while !String::from_utf8_lossy(&got).contains(want) {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(
        r.is_ok() && text.contains(want),
        "wanted {want:?}, got {text:?}"
    );
    text
}

#[tokio::test]
async fn sol_console_carries_characters_both_ways() {
    // the machine's serial port: ipmi_sim connects to it
    let host = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = IpmiSim::start_with(SimOptions {
        sol_tcp: Some(host.local_addr().unwrap()),
    });
    let (mut serial, _) = timeout(Duration::from_secs(10), host.accept())
        .await
        .expect("ipmi_sim connects to the serial port")
        .unwrap();

    let console = IpmiInterfaces::new(common::config()).console;
    let term_port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut info = sim.driver_info();
    info["ipmi_terminal_port"] = term_port.into();
    let mut t = task(info);

    let e = console.get_console(&t).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    console.start_console(&mut t).await.unwrap();
    console.start_console(&mut t).await.unwrap(); // already started: fine
    let ci = console.get_console(&t).await.unwrap();
    assert_eq!(ci.kind, "socat");
    assert_eq!(ci.url, format!("tcp://127.0.0.1:{term_port}"));

    let mut client = TcpStream::connect(("127.0.0.1", term_port)).await.unwrap();
    // give the SOL session time to come up before the host writes
    tokio::time::sleep(Duration::from_millis(500)).await;
    serial.write_all(b"login: ").await.unwrap();
    read_until(&mut client, "login: ").await;
    client.write_all(b"root\r").await.unwrap();
    read_until(&mut serial, "root\r").await;
    // more than one SOL packet's worth
    let mut long: String = (0..600)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    long.push_str("<end>");
    serial.write_all(long.as_bytes()).await.unwrap();
    let got = read_until(&mut client, "<end>").await;
    assert!(got.contains(&long), "{got:?}");

    console.stop_console(&mut t).await.unwrap();
    console.stop_console(&mut t).await.unwrap();
    // the console closes the client's connection
    let mut rest = Vec::new();
    timeout(Duration::from_secs(10), client.read_to_end(&mut rest))
        .await
        .expect("client is disconnected")
        .ok();
    assert!(console.get_console(&t).await.is_err());
}

#[tokio::test]
async fn console_needs_a_terminal_port() {
    let console = IpmiInterfaces::new(common::config()).console;
    let t = task(serde_json::json!({"ipmi_address": "127.0.0.1"}));
    let e = ironic_core::driver::BaseInterface::validate(&*console, &t).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MissingParameter);
    assert!(e.to_string().contains("ipmi_terminal_port"), "{e}");
}
