//! `capsule`: the user's command for digital capsules.
//!
//! Keys (`keygen`), sealing to recipients with an optional task binding (`seal`), opening
//! (`open`), adding recipients without touching the payload (`rewrap`), reading a header
//! without a key (`inspect`), and moving capsules in and out of a content-addressed store
//! (`put`, `get`) under the CID IPFS computes for their payload. `--json` prints one JSON
//! object on success, for scripts; progress bars go to a terminal's stderr only.
use std::{
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use capsule_format::{Binding, HeaderInfo, Opener, PublicKey, Recipient, SecretKey, StanzaInfo};
use capsule_store::{BlockStore, FsStore, KuboStore};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "capsule",
    version,
    about = "Seal, open, re-wrap and store digital capsules"
)]
struct Cli {
    /// Print one JSON object on success instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Replace an existing output file (by default an existing file is never overwritten).
    #[arg(long, global = true)]
    force: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make an X25519 key pair: writes an identity file (as age-keygen does), prints the
    /// public key to seal to.
    Keygen {
        /// Where to write the identity file (it must not exist).
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Seal a file to one or more recipients.
    Seal {
        /// A recipient's public key (age1…); repeat for more.
        #[arg(short, long = "recipient", required = true)]
        recipients: Vec<String>,
        /// Bind every recipient's stanza to this task or function digest (64 hex digits).
        #[arg(long)]
        bind: Option<String>,
        /// The capsule to write.
        #[arg(short, long)]
        output: PathBuf,
        /// The file to seal.
        input: PathBuf,
    },
    /// Open a capsule. The plaintext appears only once every chunk verified.
    Open {
        #[command(flatten)]
        identity: IdentityArgs,
        /// Where to write the plaintext.
        #[arg(short, long)]
        output: PathBuf,
        /// The capsule.
        input: PathBuf,
    },
    /// Add recipients to a capsule: a new header, the payload byte for byte the same.
    Rewrap {
        #[command(flatten)]
        identity: IdentityArgs,
        /// A recipient to add (age1…); repeat for more.
        #[arg(short, long = "recipient", required = true)]
        recipients: Vec<String>,
        /// Bind the added recipients to this digest (64 hex digits).
        #[arg(long)]
        bind_new: Option<String>,
        /// The re-wrapped capsule to write.
        #[arg(short, long)]
        output: PathBuf,
        /// The capsule.
        input: PathBuf,
    },
    /// Show a capsule's header without opening it.
    Inspect {
        /// The capsule.
        input: PathBuf,
    },
    /// Store a capsule: its payload as blocks under its CID, its header beside it. Prints the
    /// CID that names it on chain.
    Put {
        #[command(flatten)]
        store: StoreArgs,
        /// Store this header even if the stored one has recipients it lacks (by default an
        /// older copy cannot undo a re-wrap).
        #[arg(long)]
        replace_header: bool,
        /// The capsule.
        input: PathBuf,
    },
    /// Fetch a capsule from the store by CID, every block verified.
    Get {
        #[command(flatten)]
        store: StoreArgs,
        /// Where to write the capsule.
        #[arg(short, long)]
        output: PathBuf,
        /// The largest payload to fetch, in bytes: a tree declaring more is refused before any
        /// block is written [default: 64 GiB].
        #[arg(long, default_value_t = 64 << 30)]
        max_size: u64,
        /// The capsule's CID (bafy… or bafk…).
        cid: String,
    },
}

#[derive(Args)]
struct IdentityArgs {
    /// An identity file (AGE-SECRET-KEY-1… lines, as keygen or age-keygen write them).
    #[arg(short, long)]
    identity: PathBuf,
    /// The digest the capsule is bound to, if it is (64 hex digits).
    #[arg(long)]
    bind: Option<String>,
}

#[derive(Args)]
struct StoreArgs {
    /// The embedded store's directory [default: $CAPSULE_STORE, else ~/.local/share/capsule/store].
    #[arg(long, conflicts_with = "kubo")]
    store: Option<PathBuf>,
    /// Use a kubo node's RPC instead (e.g. http://127.0.0.1:5001).
    #[arg(long)]
    kubo: Option<String>,
}

impl StoreArgs {
    fn open(&self) -> Result<Box<dyn BlockStore>> {
        if let Some(url) = &self.kubo {
            return Ok(Box::new(KuboStore::new(url)));
        }
        let directory = match (&self.store, std::env::var_os("CAPSULE_STORE")) {
            (Some(directory), _) => directory.clone(),
            (None, Some(directory)) => PathBuf::from(directory),
            (None, None) => {
                let home = std::env::var_os("HOME")
                    .context("no --store given and $HOME is unset: pass --store DIR")?;
                PathBuf::from(home).join(".local/share/capsule/store")
            }
        };
        Ok(Box::new(FsStore::open(&directory).with_context(|| {
            format!("opening the store in {}", directory.display())
        })?))
    }
}

fn binding(hex_digest: &Option<String>) -> Result<Option<Binding>> {
    let Some(text) = hex_digest else {
        return Ok(None);
    };
    let bytes = hex::decode(text.trim_start_matches("0x"))
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .with_context(|| format!("--bind takes a 32-byte digest as 64 hex digits, not {text:?}"))?;
    Ok(Some(Binding(bytes)))
}

fn recipients(keys: &[String], bind: Option<Binding>) -> Result<Vec<Recipient>> {
    keys.iter()
        .map(|text| {
            let key: PublicKey = text.parse().with_context(|| {
                format!("{text:?} is not a recipient; recipients look like age1…")
            })?;
            Ok(Recipient { key, binding: bind })
        })
        .collect()
}

fn read_identities(path: &Path) -> Result<Vec<SecretKey>> {
    let text = zeroize::Zeroizing::new(
        fs::read_to_string(path)
            .with_context(|| format!("reading the identity file {}", path.display()))?,
    );
    SecretKey::parse_identity_file(&text)
        .with_context(|| format!("reading the identity file {}", path.display()))
}

/// The input file and its length. Unbuffered: the library reads in 64 KiB chunks and 1 MiB
/// blocks, so a buffer would only add a copy.
fn open_input(path: &Path) -> Result<(File, u64)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((file, len))
}

/// A progress bar on a terminal's stderr (hidden otherwise, and in --json mode).
fn progress(len: u64, what: &str, json: bool) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
        )
        .expect("a valid template"),
    );
    bar.set_message(what.to_string());
    bar
}

/// Refuses to write `output` over `input` (whatever the path spelling), or over an existing
/// file unless `force`.
fn check_output(output: &Path, input: Option<&Path>, force: bool) -> Result<()> {
    let Ok(existing) = fs::metadata(output) else {
        return Ok(());
    };
    if let Some(input) = input {
        use std::os::unix::fs::MetadataExt;
        let source = fs::metadata(input).with_context(|| format!("reading {}", input.display()))?;
        if (source.dev(), source.ino()) == (existing.dev(), existing.ino()) {
            bail!(
                "{} is the input itself: write the output to another path",
                output.display()
            );
        }
    }
    if !force {
        bail!(
            "{} exists: choose another output, or pass --force to replace it",
            output.display()
        );
    }
    Ok(())
}

/// Writes `output` through a temporary file renamed into place once `write` succeeded.
/// Unbuffered: everything written here comes in chunks of 64 KiB or more, or is a header.
fn write_atomically(output: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    capsule_format::write_then_rename(output, ".capsule-", write)
        .with_context(|| format!("writing {}", output.display()))
}

fn stanza_json(info: &HeaderInfo) -> serde_json::Value {
    json!({
        "header_bytes": info.header_len,
        "recipients": info.recipients.iter().map(|r| match r {
            StanzaInfo::X25519 { .. } => json!({ "type": "X25519" }),
            StanzaInfo::BoundX25519 { .. } => json!({ "type": "bound-X25519" }),
            StanzaInfo::Other { tag } => json!({ "type": "other", "tag": tag }),
        }).collect::<Vec<_>>(),
    })
}

fn run(cli: Cli) -> Result<serde_json::Value> {
    let (json, force) = (cli.json, cli.force);
    match cli.command {
        Command::Keygen { output } => {
            let key = SecretKey::generate();
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&output).with_context(|| {
                format!(
                    "creating {} (an existing identity file is never overwritten)",
                    output.display()
                )
            })?;
            file.write_all(key.to_identity_file().as_bytes())?;
            file.sync_all()?;
            if !json {
                println!("{}", key.public());
            }
            Ok(json!({ "public_key": key.public().to_string(), "identity_file": output }))
        }
        Command::Seal {
            recipients: keys,
            bind,
            output,
            input,
        } => {
            let recipients = recipients(&keys, binding(&bind)?)?;
            check_output(&output, Some(&input), force)?;
            let (reader, len) = open_input(&input)?;
            let bar = progress(len, "sealing", json);
            let mut sealed = 0;
            write_atomically(&output, |writer| {
                sealed = capsule_format::seal(reader, writer, &recipients, &mut |n| {
                    bar.set_position(n)
                })?;
                Ok(())
            })?;
            bar.finish_and_clear();
            Ok(
                json!({ "output": output, "plaintext_bytes": sealed, "recipients": keys.len(), "bound": bind.is_some() }),
            )
        }
        Command::Open {
            identity,
            output,
            input,
        } => {
            let keys = read_identities(&identity.identity)?;
            let opener = Opener {
                keys: &keys,
                binding: binding(&identity.bind)?,
            };
            check_output(&output, Some(&input), force)?;
            let (reader, len) = open_input(&input)?;
            let bar = progress(len, "opening", json);
            let opened = capsule_format::open_to_file(reader, &output, &opener, &mut |n| {
                bar.set_position(n)
            })?;
            bar.finish_and_clear();
            Ok(json!({ "output": output, "plaintext_bytes": opened }))
        }
        Command::Rewrap {
            identity,
            recipients: keys,
            bind_new,
            output,
            input,
        } => {
            let identities = read_identities(&identity.identity)?;
            let opener = Opener {
                keys: &identities,
                binding: binding(&identity.bind)?,
            };
            let add = recipients(&keys, binding(&bind_new)?)?;
            check_output(&output, Some(&input), force)?;
            let (reader, _) = open_input(&input)?;
            write_atomically(&output, |writer| {
                capsule_format::rewrap(reader, writer, &opener, &add)?;
                Ok(())
            })?;
            Ok(json!({ "output": output, "added": keys.len() }))
        }
        Command::Inspect { input } => {
            let (reader, _) = open_input(&input)?;
            let info = capsule_format::inspect(reader)?;
            if !json {
                println!("age v1 capsule, header {} bytes", info.header_len);
                for recipient in &info.recipients {
                    match recipient {
                        StanzaInfo::X25519 { .. } => println!("  recipient: X25519"),
                        StanzaInfo::BoundX25519 { .. } => {
                            println!("  recipient: X25519, bound to a digest")
                        }
                        StanzaInfo::Other { tag } => println!("  other stanza: {tag}"),
                    }
                }
            }
            Ok(stanza_json(&info))
        }
        Command::Put {
            store,
            replace_header,
            input,
        } => {
            let store = store.open()?;
            let (reader, len) = open_input(&input)?;
            // The header first (bounded and checked), then the payload streamed into blocks.
            let (header, payload) = capsule_format::read_split(reader)?;
            let bar = progress(len, "storing", json);
            let header_len = header.len() as u64;
            let (root, payload_bytes) =
                capsule_store::put_payload(store.as_ref(), payload, &mut |n| {
                    bar.set_position(header_len + n)
                })?;
            capsule_store::put_header_extending(store.as_ref(), &root, &header, replace_header)?;
            bar.finish_and_clear();
            if !json {
                println!("{root}");
            }
            Ok(
                json!({ "cid": root.to_string(), "header_bytes": header.len(), "payload_bytes": payload_bytes }),
            )
        }
        Command::Get {
            store,
            output,
            max_size,
            cid,
        } => {
            check_output(&output, None, force)?;
            let store = store.open()?;
            let root = capsule_store::parse_cid(&cid)?;
            let header = store.get_header(&root)?;
            let bar = progress(0, "fetching", json);
            let mut payload_bytes = 0;
            write_atomically(&output, |writer| {
                writer.write_all(&header)?;
                let mut writer = writer;
                payload_bytes = capsule_store::get_payload(
                    store.as_ref(),
                    &root,
                    &mut writer,
                    max_size,
                    &mut |n| bar.set_position(n),
                )?;
                Ok(())
            })?;
            bar.finish_and_clear();
            Ok(json!({ "output": output, "cid": cid, "payload_bytes": payload_bytes }))
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(value) => {
            if json {
                println!("{value}");
            }
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_are_64_hex_digits() {
        assert_eq!(
            binding(&Some("07".repeat(32))).unwrap(),
            Some(Binding([7; 32]))
        );
        assert_eq!(
            binding(&Some(format!("0x{}", "07".repeat(32)))).unwrap(),
            Some(Binding([7; 32]))
        );
        let error = binding(&Some("abc".into())).unwrap_err().to_string();
        assert!(error.contains("64 hex digits"), "{error}");
        assert_eq!(binding(&None).unwrap(), None);
    }
}
