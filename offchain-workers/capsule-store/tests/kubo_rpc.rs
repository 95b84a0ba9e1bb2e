//! The kubo backend against an HTTP server that follows kubo's documented RPC
//! (docs.ipfs.tech/reference/kubo/rpc): `block/put` (multipart `file`, `cid-codec`, `mhtype`,
//! answering `{"Key","Size"}`), `block/get`, `block/stat`, `files/write`, `files/read`, and
//! errors as HTTP 500 with `{"Message","Code","Type":"error"}`. kubo itself is not installable
//! here (no package, no Go toolchain), so this server stands in for it; it hashes blocks
//! itself, as kubo does, so a CID mismatch would show.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    thread,
};

use capsule_primitives::capsule::{CapsuleCid, CidCodec};
use capsule_store::{
    get_payload, put_payload, unixfs::BLOCK_SIZE, BlockStore, KuboStore, StoreError,
};
use tiny_http::{Method, Response, Server};

#[derive(Default)]
struct Kubo {
    blocks: HashMap<String, Vec<u8>>,
    files: HashMap<String, Vec<u8>>,
    /// Answer `block/put` with CIDv0-style keys, as a misconfigured node would.
    wrong_keys: bool,
}

fn query(url: &str) -> HashMap<String, String> {
    url.split_once('?')
        .map(|(_, query)| query)
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The `file` part of a multipart body.
fn multipart_file(body: &[u8], content_type: &str) -> Option<Vec<u8>> {
    let boundary = content_type.split("boundary=").nth(1)?;
    let start = body.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let end_marker = format!("\r\n--{boundary}--");
    let end = body
        .windows(end_marker.len())
        .rposition(|w| w == end_marker.as_bytes())?;
    Some(body[start..end].to_vec())
}

fn error(message: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(format!(
        r#"{{"Message":"{message}","Code":0,"Type":"error"}}"#
    ))
    .with_status_code(500)
}

fn serve(kubo: Arc<Mutex<Kubo>>) -> String {
    let server = Server::http("127.0.0.1:0").expect("binds a loopback port");
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    thread::spawn(move || {
        for mut request in server.incoming_requests() {
            assert_eq!(*request.method(), Method::Post, "kubo's RPC is POST only");
            let url = request.url().to_string();
            let params = query(&url);
            let content_type = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Content-Type"))
                .map(|h| h.value.to_string())
                .unwrap_or_default();
            let mut body = Vec::new();
            request.as_reader().read_to_end(&mut body).unwrap();
            let command = url
                .split('?')
                .next()
                .unwrap()
                .trim_start_matches("/api/v0/");
            let mut kubo = kubo.lock().unwrap();
            let response = match command {
                "block/put" => match multipart_file(&body, &content_type) {
                    Some(block) => {
                        assert_eq!(params.get("mhtype").map(String::as_str), Some("sha2-256"));
                        let codec = match params.get("cid-codec").map(String::as_str) {
                            Some("raw") => CidCodec::Raw,
                            Some("dag-pb") => CidCodec::DagPb,
                            _ => CidCodec::Raw, // kubo's default codec is raw
                        };
                        let cid = CapsuleCid {
                            codec,
                            digest: capsule_primitives::hashing::sha256(&block),
                        };
                        let key = if kubo.wrong_keys {
                            "QmNotOurs".to_string()
                        } else {
                            cid.to_string()
                        };
                        let size = block.len();
                        kubo.blocks.insert(cid.to_string(), block);
                        Response::from_string(format!(r#"{{"Key":"{key}","Size":{size}}}"#))
                    }
                    None => error("file argument 'data' is required"),
                },
                "block/get" => match kubo.blocks.get(&params["arg"]) {
                    Some(block) => Response::from_data(block.clone()),
                    None => error("block was not found locally (offline)"),
                },
                "block/stat" => match kubo.blocks.get(&params["arg"]) {
                    Some(block) => Response::from_string(format!(
                        r#"{{"Key":"{}","Size":{}}}"#,
                        params["arg"],
                        block.len()
                    )),
                    None => error("block was not found locally (offline)"),
                },
                "files/write" => match multipart_file(&body, &content_type) {
                    Some(data) => {
                        kubo.files.insert(params["arg"].clone(), data);
                        Response::from_string("")
                    }
                    None => error("file argument 'data' is required"),
                },
                "files/read" => match kubo.files.get(&params["arg"]) {
                    Some(data) => Response::from_data(data.clone()),
                    None => error("file does not exist"),
                },
                _ => Response::from_string("404 page not found").with_status_code(404),
            };
            let _ = request.respond(response);
        }
    });
    url
}

#[test]
fn a_payload_and_its_header_round_trip_through_kubo() {
    let kubo = Arc::new(Mutex::new(Kubo::default()));
    let store = KuboStore::new(&serve(kubo.clone()));
    let payload: Vec<u8> = (0..2 * BLOCK_SIZE + 9).map(|i| (i % 199) as u8).collect();
    let (root, _) = put_payload(&store, &payload[..], &mut |_| {}).expect("kubo stores the blocks");
    assert_eq!(root.codec, CidCodec::DagPb);
    assert_eq!(
        kubo.lock().unwrap().blocks.len(),
        4,
        "three leaves and the root"
    );
    store.put_header(&root, b"header v1").unwrap();
    store.put_header(&root, b"header v2").unwrap();
    assert_eq!(store.get_header(&root).unwrap(), b"header v2");
    let mut back = Vec::new();
    get_payload(&store, &root, &mut back, u64::MAX, &mut |_| {}).unwrap();
    assert_eq!(back, payload);
    assert!(store.has(&root).unwrap());

    // Missing blocks and headers are typed errors.
    let absent = CapsuleCid::raw(b"absent");
    assert!(!store.has(&absent).unwrap());
    assert!(matches!(store.get(&absent), Err(StoreError::Missing(_))));
    assert!(matches!(
        store.get_header(&absent),
        Err(StoreError::NoHeader(_))
    ));

    // A block kubo serves altered is refused.
    let leaf = CapsuleCid::raw(&payload[..BLOCK_SIZE]);
    kubo.lock()
        .unwrap()
        .blocks
        .get_mut(&leaf.to_string())
        .unwrap()[0] ^= 1;
    assert!(matches!(store.get(&leaf), Err(StoreError::Corrupt(_))));

    // A node that names blocks by other CIDs is refused at once.
    kubo.lock().unwrap().wrong_keys = true;
    assert!(matches!(
        store.put(&absent, b"absent"),
        Err(StoreError::KuboCid { .. })
    ));
}

#[test]
fn no_node_at_the_address_is_a_clear_error() {
    let store = KuboStore::new("http://127.0.0.1:1");
    let error = store.get(&CapsuleCid::raw(b"x")).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("ipfs daemon"), "{message}");
}
