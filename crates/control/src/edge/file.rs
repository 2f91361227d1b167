//! The edge's snapshot file: the last applied snapshot, so an edge restarted while every
//! controller is unreachable serves the last known routes at once. The file carries an
//! HMAC-SHA256 of its body keyed by the edge's token: an edited or foreign file is refused,
//! never applied.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const MAGIC: &str = "vantage-edge-snapshot/1";

fn mac(token: &str) -> Hmac<Sha256> {
    // Keyed by a digest of the token, so the key is never the token itself.
    let key = Sha256::new()
        .chain_update(b"vantage edge snapshot file\0")
        .chain_update(token.as_bytes())
        .finalize();
    <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap_or_else(|_| unreachable!("any key length"))
}

/// Writes `body` to `path` atomically (a temporary file renamed over it), mode 0600.
pub fn write(path: &Path, token: &str, body: &[u8]) -> anyhow::Result<()> {
    let mut m = mac(token);
    m.update(body);
    let tag = hex::encode(m.finalize().into_bytes());
    let tmp = path.with_extension("tmp");
    let mut f = crate::secrets::open_private(&tmp, false)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(format!("{MAGIC} {tag}\n").as_bytes())?;
    f.write_all(body)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))?;
    Ok(())
}

/// The body stored at `path`, if there is a file; an error when it is not one this edge's
/// token wrote (edited, truncated, or another edge's).
pub fn read(path: &Path, token: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let Some(newline) = bytes.iter().position(|b| *b == b'\n') else {
        bail!("it has no header line");
    };
    let header = std::str::from_utf8(&bytes[..newline]).unwrap_or("");
    let Some(tag) = header.strip_prefix(MAGIC).map(str::trim) else {
        bail!("it does not start with {MAGIC:?}");
    };
    let tag = hex::decode(tag).context("its checksum is not hex")?;
    let body = &bytes[newline + 1..];
    let mut m = mac(token);
    m.update(body);
    // Constant time: the tag is a secret-keyed value.
    m.verify_slice(&tag).map_err(|_| {
        anyhow::anyhow!(
            "its checksum does not match its content (the file was changed, or written under another edge token)"
        )
    })?;
    Ok(Some(body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_file_reads_back_and_any_change_is_refused() {
        let dir = std::env::temp_dir().join(format!("vantage-edge-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("snapshot.json");
        assert!(read(&path, "t").unwrap().is_none());
        write(&path, "t", b"{\"a\":1}").unwrap();
        assert_eq!(read(&path, "t").unwrap().unwrap(), b"{\"a\":1}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Another token's file.
        assert!(read(&path, "u").is_err());
        // One byte of the body changed.
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] = b'2';
        std::fs::write(&path, &bytes).unwrap();
        let err = read(&path, "t").unwrap_err().to_string();
        assert!(err.contains("checksum does not match"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
