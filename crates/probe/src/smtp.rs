//! SMTP checks: greeting, `HELO` → 250, `QUIT` → 221.

use std::net::IpAddr;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use vantage_core::health::{FailureReason, Outcome};

use crate::net::{connect, io_failure, resolve};
use crate::{Progress, Target};

/// Longest reply read before giving up on a server that never ends its lines.
const MAX_REPLY: usize = 4096;

/// Reads one (possibly multi-line) reply and returns its code.
async fn reply<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Result<Option<u16>, FailureReason> {
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).await.map_err(|e| io_failure(&e))?;
        total += n;
        if n == 0 {
            return Ok(None);
        }
        if total > MAX_REPLY || line.len() < 3 {
            return Err(FailureReason::Other);
        }
        let code = line[..3].parse::<u16>().map_err(|_| FailureReason::Other)?;
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(Some(code));
        }
    }
}

pub(crate) async fn check(
    source: Option<IpAddr>,
    target: &Target<'_>,
    progress: &Progress,
) -> Result<Outcome, FailureReason> {
    let addr = resolve(target.address, target.port(), source).await?;
    let mut stream = connect(addr, source, progress).await?;
    // Borrowed halves: an owned write half shuts its side down when dropped, and the
    // connection would end with a FIN exchange instead of the reset every check ends with
    // (SO_LINGER 0, set at connect).
    let (read, mut write) = stream.split();
    let mut read = BufReader::new(read);
    match reply(&mut read).await? {
        Some(220) => {}
        // A server that refuses at the greeting (554 "no service") never gets to HELO.
        Some(code) => {
            return Ok(Outcome::Smtp {
                helo: code,
                quit: None,
            })
        }
        None => return Err(FailureReason::ConnectionReset),
    }
    write
        .write_all(b"HELO vantage.invalid\r\n")
        .await
        .map_err(|e| io_failure(&e))?;
    let helo = reply(&mut read)
        .await?
        .ok_or(FailureReason::ConnectionReset)?;
    if helo != 250 {
        return Ok(Outcome::Smtp { helo, quit: None });
    }
    write
        .write_all(b"QUIT\r\n")
        .await
        .map_err(|e| io_failure(&e))?;
    let quit = reply(&mut read).await?;
    Ok(Outcome::Smtp { helo, quit })
}
