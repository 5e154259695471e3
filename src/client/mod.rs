//! The quorum client: sends each signed request to every replica at once, verifies the
//! signed replies, and accepts a result when `quorum` of them match ([`Tally`]). Live
//! deliveries are merged from every replica's stream the same way ([`DeliveryTally`]).
//!
//! A replica that cannot be reached is retried with the same signed request (replicas answer
//! a resend from their reply cache, so it never applies twice) until the deadline; then the
//! client gives up with an error that says what each replica did.

mod status;
mod tally;
#[cfg(test)]
mod tests;

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::transport::Channel;

pub use status::{StatusError, check_status, is_operator, status_ask};
pub use tally::{Agreed, Agreement, DeliveryTally, Live, Rejected, Tally};

use crate::config::ClusterConfig;
use crate::crypto::VerifyingKey;
use crate::pb;
use crate::pb::replica_client::ReplicaClient;

/// Default time to reach a quorum before giving up.
pub const DEADLINE_DEFAULT: Duration = Duration::from_secs(10);

/// The default time to reach a quorum in a cluster with this Δ: at least
/// `DEADLINE_DEFAULT`, and 80Δ, enough for f = 2 faulty leaders in a row to be blamed and
/// replaced. Each such view lasts up to 1.5 request timeouts (a request waits half a
/// timeout before it is relayed to the leader, S10, and its timer then runs from the relay),
/// the timeout doubling from 12Δ: 18Δ + 36Δ, plus each view change's 2Δ and 4Δ waits (S6,
/// S7) and the next leader's commit, about 4Δ: 70Δ. (At Δ = 200 ms: 16 s.)
pub fn deadline_for(delta_ms: u64) -> Duration {
    DEADLINE_DEFAULT.max(Duration::from_millis(80 * delta_ms))
}
/// Pause before resending to a replica that did not answer, or refused for now (doubled
/// after each refusal, up to `REFUSED_PAUSE_MAX`: a busy replica is not hammered).
const RETRY_PAUSE: Duration = Duration::from_millis(250);
const REFUSED_PAUSE_MAX: Duration = Duration::from_secs(2);
/// Bound on one call to one replica.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// After a quorum, how long the other replicas' replies are still awaited, only to show
/// which replicas agreed (they execute the same block at about the same moment).
const AGREEMENT_GRACE: Duration = Duration::from_millis(25);
/// Late contradictions kept until the session says them (`take_late`).
const LATE_MAX: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// One wording, everywhere: how many answered, how many were needed, what each replica
    /// did, and what to do.
    #[error(
        "no quorum: {answered} of {total} replicas answered, {needed} alike needed (waited {:.1} s): {report}; \
         nothing was confirmed, but a request that reached a replica may still be applied once enough are back: \
         check with history or read before sending it again, or ask the operator to check the replicas (quintet status)",
        *.waited_ms as f64 / 1000.0
    )]
    NoQuorum { answered: usize, total: usize, needed: usize, waited_ms: u128, report: String },
    /// Some replicas only refused for now (busy, rate-limited, ...) until the deadline: the
    /// request may still be applied through the others. It was only ever sent again with
    /// its own number, so it applies at most once.
    #[error(
        "not known whether applied: busy at {refused} replica(s), and not {needed} matching results (waited {:.1} s): {report}; \
         it may still be applied (only once): check with history before trying again",
        *.waited_ms as f64 / 1000.0
    )]
    Unconfirmed { refused: usize, needed: usize, waited_ms: u128, report: String },
    #[error("replica {id}: address {address} is unusable: {reason}")]
    Address { id: String, address: String, reason: String },
}

/// Live deliveries from every replica, merged; dropping it closes the streams.
pub struct Subscription {
    deliveries: mpsc::Receiver<Live>,
    /// The newest message id the user read from the mailbox (see `DeliveryTally`'s floor).
    read_floor: std::sync::Arc<std::sync::atomic::AtomicU64>,
    _tasks: tokio::task::JoinSet<()>,
}

impl Subscription {
    /// The user read the mailbox up to message `id`: older live copies are not shown.
    pub fn read_up_to(&self, id: u64) {
        self.read_floor.fetch_max(id, std::sync::atomic::Ordering::Relaxed);
    }

    /// The next message (or session-closed notice) a quorum delivered. A message the user
    /// read meanwhile is skipped here too: its copy may have been queued before the read.
    pub async fn recv(&mut self) -> Option<Live> {
        loop {
            let live = self.deliveries.recv().await?;
            match &live {
                Live::Message(_, m, _) if m.id <= self.read_floor.load(std::sync::atomic::Ordering::Relaxed) => continue,
                _ => return Some(live),
            }
        }
    }
}

#[derive(Clone)]
struct Remote {
    id: String,
    key: VerifyingKey,
    rpc: ReplicaClient<Channel>,
}

/// Cloning shares the connections (tonic channels).
#[derive(Clone)]
pub struct QuorumClient {
    remotes: Vec<Remote>,
    quorum: usize,
    /// The cluster tag (name#id) status answers must carry.
    cluster: String,
    pub deadline: Duration,
    /// A replica's id and key, to be shown the operators' counters in status answers.
    pub operator: Option<(String, crate::crypto::SigningKey)>,
    /// Some replica answered this client once: a later moment when every replica refuses
    /// the connection is a restart of them all, worth waiting through until the deadline.
    reached: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The cluster's keys, to check proofs against replicas before keeping them, and the
    /// file that keeps them (`keep_evidence`).
    keys: std::sync::Arc<crate::evidence::Keys>,
    evidence: Option<std::path::PathBuf>,
    /// Signed answers that differed from a result already shown, heard after it (`take_late`).
    late: std::sync::Arc<std::sync::Mutex<Vec<Late>>>,
}

/// A replica's signed answer that differs from the result shown for a request, heard
/// after the result was decided (the client keeps listening for the replies in flight).
/// With at most two faulty replicas the result shown is right and this replica lies;
/// with three or more, either side may.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Late {
    pub replica: String,
    /// The height of the result shown.
    pub height: u64,
    /// A proof against it was checked and kept (same height, `crate::evidence`).
    pub proven: bool,
}

/// Checks and keeps (in `file`, if any) the proofs `agreed` gives against replicas whose
/// counted answer contradicted it; returns whom they accuse. A proof that does not check
/// (a planted client quorum of one) is not kept.
fn keep_proofs(keys: &crate::evidence::Keys, file: Option<&std::path::Path>, tally: &Tally, agreed: &Agreed) -> Vec<usize> {
    let mut proven = Vec::new();
    for (index, proof) in tally.contradictions(agreed) {
        let Ok(accusation) = crate::evidence::check(&proof, keys) else { continue };
        if accusation.replica != index {
            continue;
        }
        proven.push(index);
        if let Some(file) = file {
            let (mut store, _) = crate::evidence::Store::open(file, keys);
            if let Err(e) = store.keep(proof, accusation) {
                eprintln!("warning: cannot keep a proof against replica {} in {}: {e}", keys.id(index), file.display());
            }
        }
    }
    proven
}

/// What happened with one replica during one request, for the error report.
#[derive(Clone, Debug)]
enum Heard {
    Nothing,
    Failed(String),
    Rejected(Rejected),
    /// It refused for now (a height-0 answer other than `replayed`: its code and text);
    /// asked again.
    Refused(String),
    Voted,
}

/// What `failure` says of a replica that refused the connection (nothing listens there).
const CONNECTION_REFUSED: &str = "connection refused";

/// What a replica's task tells the waiting client.
enum Event {
    /// An answer (or a failed call) from replica `index`.
    Answer(usize, Result<tonic::Response<pb::SignedReply>, tonic::Status>),
    /// Replica `index` is being asked again.
    Asking(usize),
}

/// `text` with what a terminal would obey shown escaped instead (tabs kept): control
/// characters (escape sequences that clear the screen or set the window title, line breaks
/// that fake a line) and direction marks that reorder what follows, as `\u{1b}`. Every
/// string a replica or another user supplies goes through it before it is shown: a message
/// text, and a replica's own error text (one liar, or anyone on a plaintext link, could
/// otherwise paint the terminal).
pub fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let direction = matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if (c.is_control() && c != '\t') || direction {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// What a failed call says (neutralised: it comes from the replica, or from whatever
/// answered at its address), with what to check when the link itself failed: a
/// certificate that is not the pinned one, or one side speaking TLS and the other not.
fn failure(status: &tonic::Status) -> String {
    let message = shown(status.message());
    let message = message.as_str();
    let source = std::error::Error::source(status).map(|s| format!("{s:?}")).unwrap_or_default();
    let said = format!("{message} {source}");
    if said.contains("certificate") {
        format!("{message}: its TLS certificate is not the one cluster.toml pins for it")
    } else if said.contains("FRAME_SIZE_ERROR") || said.contains("InvalidContentType") {
        format!("{message}: one side speaks TLS and the other does not (does this cluster.toml have the replicas' certificates?)")
    } else if said.contains("Connection refused") {
        CONNECTION_REFUSED.to_owned()
    } else {
        message.to_owned()
    }
}

impl QuorumClient {
    pub fn new(config: &ClusterConfig) -> Result<Self, ClientError> {
        let mut remotes = Vec::new();
        for r in &config.replicas {
            let endpoint = crate::transport::endpoint(r, None)
                .map_err(|reason| ClientError::Address { id: r.id.clone(), address: r.address.clone(), reason })?
                .connect_timeout(Duration::from_secs(1))
                .tcp_nodelay(true)
                .timeout(CALL_TIMEOUT);
            let rpc = ReplicaClient::new(endpoint.connect_lazy()).max_decoding_message_size(crate::wire::GRPC_MESSAGE_MAX * 8);
            remotes.push(Remote { id: r.id.clone(), key: r.verifying_key(), rpc });
        }
        // Planted bug for the Byzantine tests' negative control: a result on one reply.
        let planted = std::env::var("QUINTET_PLANTED").is_ok_and(|p| p == "client-quorum-1");
        if planted {
            eprintln!("PLANTED BUG (tests only, QUINTET_PLANTED=client-quorum-1): this client believes a single reply");
        }
        let quorum = if planted { 1 } else { config.quorum() };
        Ok(QuorumClient {
            remotes,
            quorum,
            cluster: config.tag(),
            deadline: deadline_for(config.delta_ms),
            operator: None,
            reached: Default::default(),
            keys: std::sync::Arc::new(crate::evidence::Keys::new(config)),
            evidence: None,
            late: Default::default(),
        })
    }

    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Keeps the proofs this client comes upon in `file` (`crate::evidence::client_file`).
    pub fn keep_evidence(&mut self, file: std::path::PathBuf) {
        self.evidence = Some(file);
    }

    /// Where this client keeps proofs, if it does.
    pub fn evidence_file(&self) -> Option<&std::path::Path> {
        self.evidence.as_deref()
    }

    /// Signed answers that differed from results already shown, heard since the last call.
    pub fn take_late(&self) -> Vec<Late> {
        std::mem::take(&mut *self.late.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn keep_proofs(&self, tally: &Tally, agreed: &Agreed) -> Vec<usize> {
        keep_proofs(&self.keys, self.evidence.as_deref(), tally, agreed)
    }

    pub fn replica_ids(&self) -> Vec<String> {
        self.remotes.iter().map(|r| r.id.clone()).collect()
    }

    /// Sends one signed request to every replica and returns the agreed result.
    ///
    /// A replica that cannot be reached, or that refuses for now (a height-0 answer other
    /// than `replayed`, see `Tally`), is asked again with the same signed request until
    /// the deadline. The wait ends with `quorum` matching results; before the deadline
    /// otherwise only when every replica has answered and none is being asked again: with
    /// a refusal `quorum` gave alike (`Agreed::settled` false), or with no way to a quorum.
    pub async fn submit(&self, request: pb::SignedRequest) -> Result<Agreed, ClientError> {
        let started = Instant::now();
        let deadline = started + self.deadline;
        let mut tally = Tally::new(self.quorum, crate::wire::digest(&request.body));
        let (tx, mut rx) = mpsc::channel(self.remotes.len() * 4);
        let mut tasks = tokio::task::JoinSet::new();
        // Set once the result is decided: the calls in flight are still heard (to flag an
        // answer that differs from it), but nobody is asked again.
        let decided = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        for (index, remote) in self.remotes.iter().enumerate() {
            let (mut rpc, request, tx, decided) = (remote.rpc.clone(), request.clone(), tx.clone(), decided.clone());
            tasks.spawn(async move {
                let mut pause = RETRY_PAUSE;
                loop {
                    let result = rpc.submit(request.clone()).await;
                    let refused = result.as_ref().is_ok_and(|r| tally::is_refusal(r.get_ref()));
                    let again = (refused || result.is_err()) && !decided.load(std::sync::atomic::Ordering::Relaxed);
                    if tx.send(Event::Answer(index, result)).await.is_err() || !again {
                        return;
                    }
                    tokio::time::sleep(pause).await;
                    if decided.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    if refused {
                        pause = (pause * 2).min(REFUSED_PAUSE_MAX);
                    }
                    if tx.send(Event::Asking(index)).await.is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut heard = vec![Heard::Nothing; self.remotes.len()];
        // Calls in flight per replica (a replica asked again is waited for again).
        let mut asking = vec![true; self.remotes.len()];
        loop {
            let next = tokio::time::timeout_at(deadline, rx.recv()).await;
            let Ok(Some(event)) = next else { break };
            let (index, result) = match event {
                Event::Asking(index) => {
                    asking[index] = true;
                    continue;
                }
                Event::Answer(index, result) => (index, result),
            };
            asking[index] = false;
            let remote = &self.remotes[index];
            if result.is_ok() {
                self.reached.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            match result {
                Err(status) => heard[index] = Heard::Failed(failure(&status)),
                Ok(reply) => match tally.add(index, &remote.id, &remote.key, &reply.into_inner()) {
                    Ok(Some(agreed)) => return Ok(self.settle(agreed, tally, rx, &heard, (tasks, decided, deadline)).await),
                    Ok(None) if tally.refused_by(index) => heard[index] = Heard::Refused(tally.refusal_text(index).unwrap_or_default()),
                    Ok(None) => heard[index] = Heard::Voted,
                    Err(Rejected::Duplicate) => {}
                    Err(rejected) => heard[index] = Heard::Rejected(rejected),
                },
            }
            // No replica accepts a connection, and none ever answered this client (nothing
            // runs at those addresses): nothing will come of waiting.
            if !self.reached.load(std::sync::atomic::Ordering::Relaxed)
                && heard.iter().all(|h| matches!(h, Heard::Failed(e) if e == CONNECTION_REFUSED))
            {
                break;
            }
            if asking.iter().any(|a| *a) || heard.iter().any(|h| matches!(h, Heard::Nothing)) {
                continue;
            }
            if let Some(refused) = tally.refused() {
                return Ok(self.settle(refused, tally, rx, &heard, (tasks, decided, deadline)).await);
            }
            if tally.hopeless(self.remotes.len()) && heard.iter().all(|h| matches!(h, Heard::Voted | Heard::Rejected(_))) {
                break;
            }
        }
        let (waited_ms, report) = (started.elapsed().as_millis(), self.report(&heard, &tally));
        let answered = heard.iter().filter(|h| matches!(h, Heard::Voted | Heard::Refused(_))).count();
        match tally.refusal_count() {
            0 => Err(ClientError::NoQuorum { answered, total: self.remotes.len(), needed: self.quorum, waited_ms, report }),
            refused => Err(ClientError::Unconfirmed { refused, needed: self.quorum, waited_ms, report }),
        }
    }

    /// The result is decided; the replies that come within `AGREEMENT_GRACE` only say who
    /// else agreed or differed (a reply refused as unverifiable counts as differing). The
    /// calls still in flight then are heard until the deadline, off this call (`listen_on`).
    async fn settle(
        &self,
        mut agreed: Agreed,
        mut tally: Tally,
        mut rx: mpsc::Receiver<Event>,
        heard: &[Heard],
        (tasks, decided, deadline): (tokio::task::JoinSet<()>, std::sync::Arc<std::sync::atomic::AtomicBool>, Instant),
    ) -> Agreed {
        decided.store(true, std::sync::atomic::Ordering::Relaxed);
        let a = &mut agreed.agreement;
        for (index, h) in heard.iter().enumerate() {
            if matches!(h, Heard::Rejected(_)) && !a.differed.contains(&index) {
                a.differed.push(index);
            }
        }
        let until = Instant::now() + AGREEMENT_GRACE;
        while a.agreed.len() + a.differed.len() < self.remotes.len() {
            let Ok(Some(event)) = tokio::time::timeout_at(until, rx.recv()).await else { break };
            let Event::Answer(index, Ok(reply)) = event else { continue };
            let remote = &self.remotes[index];
            match tally.add(index, &remote.id, &remote.key, &reply.into_inner()) {
                Ok(Some(again)) if again.height == agreed.height && again.outcome == agreed.outcome => a.agreed = again.agreement.agreed,
                Ok(None) if !agreed.settled && tally.refused().is_some_and(|r| r.outcome == agreed.outcome) => a.agreed.push(index),
                Err(Rejected::Duplicate) => {}
                _ => a.differed.push(index),
            }
        }
        a.agreed.sort_unstable();
        a.differed.sort_unstable();
        let answered = a.agreed.len() + a.differed.len();
        agreed.proven = self.keep_proofs(&tally, &agreed);
        if answered < self.remotes.len() && agreed.settled {
            self.listen_on(agreed.clone(), tally, rx, tasks, deadline);
        }
        agreed
    }

    /// After a result was shown: the replies still in flight, until the deadline. One that
    /// verifies and differs from the result is noted (`take_late`), with a proof kept when
    /// it is at the same height. With three or more liars agreeing, this is all a client
    /// can still see: the honest replicas' answers contradicting what it showed.
    fn listen_on(&self, agreed: Agreed, mut tally: Tally, mut rx: mpsc::Receiver<Event>, tasks: tokio::task::JoinSet<()>, deadline: Instant) {
        let remotes: Vec<(String, VerifyingKey)> = self.remotes.iter().map(|r| (r.id.clone(), r.key)).collect();
        let (keys, file, late) = (self.keys.clone(), self.evidence.clone(), self.late.clone());
        let vote = (agreed.height, prost::Message::encode_to_vec(&agreed.outcome));
        tokio::spawn(async move {
            let _tasks = tasks;
            while let Ok(Some(event)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                let Event::Answer(index, Ok(reply)) = event else { continue };
                let (id, key) = &remotes[index];
                if tally.add(index, id, key, &reply.into_inner()).is_err() || tally.refused_by(index) {
                    continue;
                }
                let Some(said) = tally.vote_of(index) else { continue };
                if said == vote {
                    continue;
                }
                // Only an answer of the execution itself, for the same slot, says the replica
                // lied (one from what it kept may say less): that is a proof.
                if keep_proofs(&keys, file.as_deref(), &tally, &agreed).contains(&index) {
                    let mut late = late.lock().unwrap_or_else(|e| e.into_inner());
                    if late.len() < LATE_MAX {
                        late.push(Late { replica: id.clone(), height: agreed.height, proven: true });
                    }
                }
            }
        });
    }

    /// Replica ids by index (for showing who agreed).
    pub fn ids(&self) -> Vec<String> {
        self.remotes.iter().map(|r| r.id.clone()).collect()
    }

    fn report(&self, heard: &[Heard], tally: &Tally) -> String {
        let parts: Vec<String> = self
            .remotes
            .iter()
            .zip(heard)
            .enumerate()
            .map(|(index, (r, h))| match h {
                Heard::Nothing => format!("{}: no answer", r.id),
                Heard::Failed(e) if e.contains("Timeout expired") => format!("{}: no answer within {} s (up, but waiting for others?)", r.id, CALL_TIMEOUT.as_secs()),
                Heard::Failed(e) if e == CONNECTION_REFUSED => format!("{}: down ({e})", r.id),
                Heard::Failed(e) => format!("{}: unreachable ({e})", r.id),
                Heard::Rejected(why) => format!("{}: its reply did not count ({why})", r.id),
                Heard::Refused(why) => format!("{}: refused for now ({why})", r.id),
                Heard::Voted => format!("{}: answered {}{}", r.id, tally.said(index).unwrap_or_default(), self.alike(index, tally)),
            })
            .collect();
        parts.join("; ")
    }

    /// How replica `index`'s answer compares with the other answers: too few alike is
    /// not the same as a replica that contradicts the others.
    fn alike(&self, index: usize, tally: &Tally) -> String {
        let (alike, unlike) = tally.compared(index);
        let names = |who: &[usize]| who.iter().map(|i| self.remotes[*i].id.as_str()).collect::<Vec<_>>().join(", ");
        match (alike.is_empty(), unlike.is_empty()) {
            (true, true) => String::new(),
            (false, true) => format!(" (the same as {})", names(&alike)),
            (true, false) => format!(", unlike {}", names(&unlike)),
            (false, false) => format!(" (the same as {}), unlike {}", names(&alike), names(&unlike)),
        }
    }

    /// Subscribes at every replica and yields each message once a quorum delivered it.
    /// `sign(replica, challenge)` signs a subscription for that replica with the challenge
    /// it just issued (each is good once). The streams are re-opened, each with a new
    /// challenge, while the returned receiver is alive.
    pub fn subscribe(&self, sign: impl Fn(&str, Vec<u8>) -> pb::SignedSubscribe + Send + Sync + 'static) -> Subscription {
        let mut tasks = tokio::task::JoinSet::new();
        let (raw_tx, mut raw_rx) = mpsc::channel::<(usize, pb::SignedDelivery)>(256);
        let (out_tx, out_rx) = mpsc::channel(256);
        let sign = std::sync::Arc::new(sign);
        for (index, remote) in self.remotes.iter().enumerate() {
            let (mut rpc, raw_tx, sign, id) = (remote.rpc.clone(), raw_tx.clone(), sign.clone(), remote.id.clone());
            tasks.spawn(async move {
                while !raw_tx.is_closed() {
                    let challenge = rpc.challenge(pb::ChallengeRequest {}).await.map(|r| r.into_inner().challenge);
                    if let Ok(challenge) = challenge
                        && let Ok(response) = rpc.subscribe(sign(&id, challenge)).await
                    {
                        let mut stream = response.into_inner();
                        while let Ok(Some(delivery)) = stream.message().await {
                            if raw_tx.send((index, delivery)).await.is_err() {
                                return;
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            });
        }
        let keys: Vec<(String, VerifyingKey)> = self.remotes.iter().map(|r| (r.id.clone(), r.key)).collect();
        let mut tally = DeliveryTally::new(self.quorum);
        let read_floor = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let floor = read_floor.clone();
        tasks.spawn(async move {
            while let Some((index, delivery)) = raw_rx.recv().await {
                tally.raise_floor(floor.load(std::sync::atomic::Ordering::Relaxed));
                let (id, key) = &keys[index];
                if let Some(shown) = tally.add(index, id, key, &delivery)
                    && out_tx.send(shown).await.is_err()
                {
                    return;
                }
            }
        });
        Subscription { deliveries: out_rx, read_floor, _tasks: tasks }
    }
}

#[cfg(test)]
#[path = "refusal_tests.rs"]
mod refusal_tests;
