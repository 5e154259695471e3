//! Hostile bytes on a real peer link: raw garbage on the socket, frames that claim the wrong
//! sender or addressee, a bad signature, another cluster's signature, and a correctly
//! signed frame of undecodable messages; over TLS, a link without a replica's certificate,
//! with a stranger's, carrying another replica's frames, or one stream too many. Each is
//! refused; the replicas keep ordering.

mod common;

use std::io::Write;
use std::time::Duration;

use common::five::Cluster;
use quintet::config::ClusterConfig;
use quintet::crypto::PeerCrypto;
use quintet::pb;
use quintet::crypto::tls;
use quintet::transport;
use quintet::wire::peer;
use tonic::transport::Endpoint;

fn frame(crypto: &PeerCrypto, from: u32, to: u32, messages: Vec<Vec<u8>>) -> pb::PeerFrame {
    signed(crypto, from, to, peer::encode_batch(messages))
}

/// A frame of any batch bytes, signed.
fn signed(crypto: &PeerCrypto, from: u32, to: u32, batch: Vec<u8>) -> pb::PeerFrame {
    let mut f = pb::PeerFrame { from, to, batch, signature: Vec::new(), sent_at_us: 0, version: 1 };
    f.signature = crypto.sign_frame(&peer::frame_signed_bytes(&f));
    f
}

async fn offer(link: &Endpoint, frames: Vec<pb::PeerFrame>) -> tonic::Status {
    let mut client = pb::peer_client::PeerClient::new(link.connect().await.expect("connects"));
    client.stream(tokio_stream::iter(frames)).await.expect_err("the replica refuses the stream")
}

#[test]
fn garbage_and_forged_frames_on_a_peer_link_are_refused_and_ordering_goes_on() {
    let cluster = Cluster::start("peerinput", 50);
    let config = ClusterConfig::load(cluster.config()).unwrap();
    let target = config.replicas[2].address.clone();
    assert!(config.tls(), "the test clusters use TLS");
    let keys: Vec<_> = config.replicas.iter().map(|r| r.verifying_key()).collect();
    let key_of = |i: usize| quintet::crypto::read_key_file(&cluster.config().parent().unwrap().join(format!("{}.key", config.replicas[i].id))).unwrap();
    let as_a = PeerCrypto::new(key_of(0), keys.clone(), &config.cluster_id);
    let other_cluster = PeerCrypto::new(key_of(0), keys.clone(), "another cluster");
    let as_b = PeerCrypto::new(key_of(1), keys.clone(), &config.cluster_id);
    // A's link to C, with A's certificate (the attacker holds A's key).
    let link = transport::endpoint(&config.replicas[2], Some(&tls::identity(&key_of(0)))).unwrap();

    // Raw garbage on the socket: the connection is dropped, nothing else happens.
    let mut raw = std::net::TcpStream::connect(&target).unwrap();
    let _ = raw.write_all(&[0xde, 0xad, 0xbe, 0xef].repeat(4096));
    drop(raw);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let vote = vec![0x12, 0x00];
        // TLS: a link must carry the certificate of the replica whose frames it brings.
        let client_link = transport::endpoint(&config.replicas[2], None).unwrap();
        let refused = offer(&client_link, vec![frame(&as_a, 0, 2, vec![vote.clone()])]).await;
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "a link without a certificate: {refused:?}");
        let refused = offer(&link, vec![frame(&as_b, 1, 2, vec![vote.clone()])]).await;
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "B's frame on A's link: {refused:?}");
        let stranger = transport::endpoint(&config.replicas[2], Some(&tls::identity(&quintet::crypto::generate_key()))).unwrap();
        let attempt = async {
            let mut client = pb::peer_client::PeerClient::new(stranger.connect().await?);
            client.stream(tokio_stream::iter(vec![frame(&as_a, 0, 2, vec![vote.clone()])])).await.map_err(Into::<Box<dyn std::error::Error>>::into)
        };
        assert!(attempt.await.is_err(), "a certificate that is not the config's: the handshake fails");
        // A's certificate may hold at most two streams at C at once (A's own link is one).
        let mut held = Vec::new();
        let mut refused = None;
        for _ in 0..3 {
            let (tx, rx) = tokio::sync::mpsc::channel::<pb::PeerFrame>(1);
            let mut client = pb::peer_client::PeerClient::new(link.connect().await.unwrap());
            let call = tokio::spawn(async move { client.stream(tokio_stream::wrappers::ReceiverStream::new(rx)).await });
            tokio::time::sleep(Duration::from_millis(300)).await;
            if call.is_finished() {
                refused = Some(call.await.unwrap().expect_err("refused"));
                break;
            }
            held.push((tx, call));
        }
        let refused = refused.expect("a stream past the cap is refused");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused:?}");
        for (_, call) in held {
            call.abort();
        }
        let refused = offer(&link, vec![frame(&as_a, 0, 3, vec![vote.clone()])]).await;
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "addressed to another replica: {refused:?}");
        let refused = offer(&link, vec![frame(&as_a, 2, 2, vec![vote.clone()])]).await;
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "claims to come from the replica itself: {refused:?}");
        let mut forged = frame(&as_a, 0, 2, vec![vote.clone()]);
        forged.signature[0] ^= 1;
        let refused = offer(&link, vec![forged]).await;
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
        // A newer release's frame: refused with what to do; the previous release's (no
        // version) is read.
        let mut newer = frame(&as_a, 0, 2, vec![vote.clone()]);
        newer.version = quintet::wire::peer::PEER_VERSION + 1;
        let refused = offer(&link, vec![newer]).await;
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
        assert!(refused.message().contains("run one release of quintet on every replica"), "{refused:?}");
        let mut older = frame(&as_a, 0, 2, vec![]);
        older.version = 0;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(older).await.unwrap();
        let mut client = quintet::pb::peer_client::PeerClient::new(link.connect().await.unwrap());
        let call = tokio::spawn(async move { client.stream(tokio_stream::wrappers::ReceiverStream::new(rx)).await });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        if call.is_finished() {
            panic!("a frame of the previous release (no version) must be read, not refused: {:?}", call.await);
        }
        drop(tx);
        call.abort();
        let refused = offer(&link, vec![frame(&other_cluster, 0, 2, vec![vote.clone()])]).await;
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "another cluster's signature: {refused:?}");
        let refused = offer(&link, vec![frame(&as_a, 0, 2, vec![vec![0xff; 64]])]).await;
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "undecodable message: {refused:?}");
        let many = frame(&as_a, 0, 2, vec![Vec::new(); 100_000]);
        let refused = offer(&link, vec![many]).await;
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "too many messages: {refused:?}");
        // A frame over the frame limit (about 5 MiB: larger messages travel in parts) is
        // refused by the transport before it is read whole.
        let refused = offer(&link, vec![signed(&as_a, 0, 2, [0x0a, 0x00].repeat(4_000_000))]).await;
        assert_eq!(refused.code(), tonic::Code::OutOfRange, "an 8 MB frame: {refused:?}");
        // Counted before allocating: a batch of 2 million empty messages (4 MB on the wire,
        // about 50 MB once decoded) and one message that is a block of 1.5 million empty
        // requests are refused by their counts.
        let refused = offer(&link, vec![signed(&as_a, 0, 2, [0x0a, 0x00].repeat(2_000_000))]).await;
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "a batch of empty messages: {refused:?}");
        assert!(refused.message().contains("too many"), "{refused:?}");
        // A message in parts must be a state transfer: a 5 MB block sent in parts is refused
        // once whole; parts out of order are refused at once.
        let mut request = vec![0x3a]; // Block.requests (field 7): one of 5 MB
        prost::encoding::encode_varint(5_000_000, &mut request);
        request.resize(request.len() + 5_000_000, 0);
        let mut huge_block = vec![0x42]; // PeerMessage.block (field 8)
        prost::encoding::encode_varint(request.len() as u64, &mut huge_block);
        huge_block.extend_from_slice(&request);
        let in_parts: Vec<pb::PeerFrame> = peer::parts(&huge_block).map(|b| signed(&as_a, 0, 2, b)).collect();
        let refused = offer(&link, in_parts.clone()).await;
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "a block in parts: {refused:?}");
        assert!(refused.message().contains("limit is 4194304"), "refused as a block, by its size: {refused:?}");
        let refused = offer(&link, in_parts.into_iter().rev().collect()).await;
        assert!(refused.message().contains("out of order"), "parts out of order: {refused:?}");
        let requests = [0x3a, 0x00].repeat(1_500_000); // Block.requests (field 7), empty, 3 MB
        let mut block = vec![0x42]; // PeerMessage.block (field 8)
        prost::encoding::encode_varint(requests.len() as u64, &mut block);
        block.extend_from_slice(&requests);
        let refused = offer(&link, vec![frame(&as_a, 0, 2, vec![block])]).await;
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "a block of empty requests: {refused:?}");
        assert!(refused.message().contains("too many"), "{refused:?}");
    });

    // The cluster still orders, and the attacked replica is in step with the others.
    let mut alice = cluster.chat("alice");
    assert_eq!(alice.run("create")["type"], "result");
    assert_eq!(alice.run("send alice hello")["type"], "result");
    drop(alice);
    cluster.wait_converged(Duration::from_secs(30));
}
