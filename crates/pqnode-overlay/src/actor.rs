//! The task that owns the sans-IO [`Node`] and connects it to the world.
//!
//! Everything that touches the node goes through one `select!` loop, so the node needs no lock
//! and nothing in the loop waits on the network: each outbound request runs in a task of its
//! own and comes back as a [`Completion`]. Inbound requests and API calls arrive as
//! [`Command`]s; the core's timers (request deadlines, refresh, ping, republish) are one
//! `sleep_until` on [`Node::poll_timeout`].

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use pqnode_dht::{
    Contact, Counters, Event, Instant, Node, Peer, QueryId, Request, RequestId, Response, codec,
};
use pqnode_health::Health;
use pqnode_net::{Network, PeerAddr, PeerEvent};
use pqnode_store::Store;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::command::{Command, DhtSnapshot, Finished, Operation};
use crate::metrics;
use crate::metrics::rpc_name;
use crate::persist;

/// An outbound request's outcome, fed back to the node.
struct Completion {
    id: RequestId,
    /// The authenticated responder (at the address its answer came from) and its answer, or
    /// `None` if the request failed.
    answer: Option<(Contact, Response)>,
}

/// Someone waiting for an operation to end.
struct Waiter {
    reply: oneshot::Sender<Result<Finished, pqnode_dht::RecordError>>,
    started: tokio::time::Instant,
    operation: &'static str,
}

pub(crate) struct Actor {
    node: Node,
    network: Network,
    store: Option<Store>,
    /// The origin of the node's clock.
    origin: tokio::time::Instant,
    commands: mpsc::Receiver<Command>,
    completions: mpsc::UnboundedReceiver<Completion>,
    completion_tx: mpsc::UnboundedSender<Completion>,
    waiting: HashMap<QueryId, Waiter>,
    /// Stops the request tasks at shutdown; the tracker waits for them.
    cancel: CancellationToken,
    tasks: TaskTracker,
    health: watch::Sender<Health>,
    /// The core's counters as last published to `metrics`.
    published: Counters,
    save_interval: Duration,
    /// Connections the transport authenticated, whatever protocol they carry: contacts.
    connections: broadcast::Receiver<PeerEvent>,
}

impl Actor {
    pub(crate) fn new(
        node: Node,
        network: Network,
        store: Option<Store>,
        origin: tokio::time::Instant,
        commands: mpsc::Receiver<Command>,
        health: watch::Sender<Health>,
        save_interval: Duration,
    ) -> Self {
        let (completion_tx, completions) = mpsc::unbounded_channel();
        let connections = network.subscribe();
        Self {
            node,
            network,
            store,
            origin,
            commands,
            completions,
            completion_tx,
            waiting: HashMap::new(),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            health,
            published: Counters::default(),
            save_interval,
            connections,
        }
    }

    pub(crate) async fn run(mut self) {
        // Connections made before this task subscribed (a `--peer` dial can finish first)
        // are contacts too; later ones arrive as events.
        let now = self.now();
        for peer in self.network.peers() {
            self.node
                .observe_connection(now, Contact::new(peer.node_id, peer.address));
        }
        let mut save =
            tokio::time::interval_at(self.origin + self.save_interval, self.save_interval);
        save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.flush();
            let wake = self.origin + self.node.poll_timeout().elapsed();
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown { reply }) => {
                        self.stop().await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(command) => self.on_command(command),
                    // Every handle and the handler are gone: nobody can ask for anything.
                    None => {
                        self.stop().await;
                        return;
                    }
                },
                Some(completion) = self.completions.recv() => self.on_completion(completion),
                event = self.connections.recv() => match event {
                    Ok(PeerEvent::Connected { node_id, address, .. }) => {
                        let now = self.now();
                        self.node.observe_connection(now, Contact::new(node_id, address));
                    }
                    Ok(PeerEvent::Disconnected { .. }) => {}
                    // Missed events are only missed chances: lookups and refreshes find nodes too.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        self.connections = broadcast::channel(1).1;
                    }
                },
                () = tokio::time::sleep_until(wake) => {
                    let now = self.now();
                    self.node.handle_timeout(now);
                }
                _ = save.tick() => self.save_in_background(),
            }
        }
    }

    fn now(&self) -> Instant {
        Instant::from_elapsed(self.origin.elapsed())
    }

    fn on_command(&mut self, command: Command) {
        let now = self.now();
        match command {
            Command::Inbound {
                from,
                request,
                reply,
            } => {
                let held = persist::Held::asked_by(&request);
                let response = self.node.handle_request(now, from, request);
                match (held, &self.store, &response) {
                    (Some(held), Some(store), Response::Stored) => {
                        self.answer_once_durable(store.clone(), held, response, reply);
                    }
                    // The requester may have given up; its handler then answers nobody.
                    _ => {
                        let _ = reply.send(response);
                    }
                }
            }
            Command::Operation { operation, reply } => {
                let started = tokio::time::Instant::now();
                let name = operation.name();
                let query = match operation {
                    Operation::Bootstrap(seeds) => Ok(self.node.bootstrap(now, seeds)),
                    Operation::FindNode(target) => Ok(self.node.find_node(now, target)),
                    Operation::Get(key) => Ok(self.node.get(now, key)),
                    Operation::Put(record) => self.node.put(now, record),
                    Operation::AddProvider(provider) => self.node.add_provider(now, provider),
                    Operation::GetProviders(key) => Ok(self.node.get_providers(now, key)),
                    Operation::AddContact(contact) => Ok(self.node.add_contact(now, contact)),
                };
                match query {
                    Ok(id) => {
                        self.waiting.insert(
                            id,
                            Waiter {
                                reply,
                                started,
                                operation: name,
                            },
                        );
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Unpublish { key, reply } => {
                let _ = reply.send(self.node.unpublish(&key));
            }
            Command::RemoveContact { id, reply } => {
                let _ = reply.send(self.node.remove_contact(&id));
            }
            Command::Inspect { reply } => {
                let _ = reply.send(DhtSnapshot {
                    nodes: self.node.nodes(now),
                    stats: self.node.stats(now),
                });
            }
            Command::Shutdown { .. } => {} // Handled by the loop, which must await.
        }
    }

    fn on_completion(&mut self, completion: Completion) {
        let now = self.now();
        match completion.answer {
            Some((responder, response)) => {
                self.node
                    .handle_response(now, completion.id, responder, response);
            }
            None => self.node.handle_failure(now, completion.id),
        }
    }

    /// Sends what the node wants sent, hands finished operations to their callers, and
    /// publishes health and metrics.
    fn flush(&mut self) {
        while let Some(transmit) = self.node.poll_transmit() {
            self.spawn_request(transmit.id, transmit.to, transmit.request, transmit.timeout);
        }
        while let Some(event) = self.node.poll_event() {
            let Event::QueryFinished { id, result, stats } = event;
            if let Some(waiter) = self.waiting.remove(&id) {
                let elapsed = waiter.started.elapsed();
                metrics::record_operation(waiter.operation, stats.rounds, elapsed);
                let _ = waiter.reply.send(Ok(Finished {
                    result,
                    stats,
                    elapsed,
                }));
            }
        }
        let counters = self.node.counters();
        if *counters != self.published {
            metrics::publish_counters(&mut self.published, counters, self.node.table().len());
        }
        let health = self.node.health(self.now());
        self.health.send_if_modified(|current| {
            let changed = *current != health;
            if changed {
                *current = health;
            }
            changed
        });
    }

    /// Sends one request; gives up at the core's `timeout` for it (the core has counted it as
    /// failed by then, so a dial or stream still open would only hold a task and a socket).
    fn spawn_request(&self, id: RequestId, to: Peer, request: Request, timeout: Duration) {
        let network = self.network.clone();
        let completions = self.completion_tx.clone();
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            let started = tokio::time::Instant::now();
            let kind = rpc_name(request.kind());
            let answer = tokio::select! {
                () = cancel.cancelled() => return,
                answer = tokio::time::timeout(timeout, exchange(&network, to, &request)) => {
                    answer.unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
                }
            };
            metrics::record_rpc(kind, started.elapsed());
            let answer = match answer {
                Ok(answer) => Some(answer),
                Err(reason) => {
                    tracing::debug!(peer = ?to.id, addr = %to.addr, kind, %reason, "DHT request failed");
                    None
                }
            };
            // Fails only once the DHT task has stopped, when nobody needs the answer.
            let _ = completions.send(Completion { id, answer });
        });
    }

    /// Answers STORED only once the accepted item is committed to the store, outside the DHT
    /// task (it never waits on I/O); if the write fails, the publisher is told it was not
    /// stored (the copy in memory still serves lookups until it expires).
    fn answer_once_durable(
        &self,
        store: Store,
        held: persist::Held,
        stored: Response,
        reply: oneshot::Sender<Response>,
    ) {
        self.tasks.spawn(async move {
            let answer = match persist::save_held(&store, &held, SystemTime::now()).await {
                Ok(()) => stored,
                Err(e) => Response::Rejected {
                    reason: format!("not stored durably: {e}"),
                },
            };
            let _ = reply.send(answer);
        });
    }

    fn save_in_background(&self) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let saved = self.saved_state();
        self.tasks.spawn(async move { saved.write(&store).await });
    }

    fn saved_state(&self) -> SavedState {
        SavedState {
            table: self.node.export_table(),
        }
    }

    async fn stop(&mut self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        if let Some(store) = &self.store {
            self.saved_state().write(store).await;
            tracing::info!(entries = self.node.table().len(), "DHT state saved");
        }
        self.health.send_replace(Health::fail("DHT has stopped"));
        // Callers still waiting see their reply channel close: `OverlayError::Stopped`.
        self.waiting.clear();
    }
}

/// What the store keeps of the node besides the held records (those are written as they are
/// accepted), exported in the DHT task and written outside it.
struct SavedState {
    table: Vec<u8>,
}

impl SavedState {
    /// A failure is logged, and the next save tries again.
    async fn write(self, store: &Store) {
        if let Err(e) = persist::save_table(store, self.table).await {
            tracing::warn!(error = %e, "could not save the DHT routing table");
        }
    }
}

/// One request over QUIC: dial an address-only seed first to learn who it is. The answer may
/// come over a connection the peer opened from elsewhere; its address is the one returned.
async fn exchange(
    network: &Network,
    to: Peer,
    request: &Request,
) -> Result<(Contact, Response), String> {
    let responder = match to.id {
        Some(id) => {
            network.add_address(id, to.addr);
            id
        }
        None => network
            .connect(&PeerAddr::new(None, to.addr))
            .await
            .map_err(|e| e.to_string())?,
    };
    let payload = Bytes::from(codec::encode_request(request));
    let (reply, addr) = network
        .request_with_addr(responder, crate::DHT, payload)
        .await
        .map_err(|e| e.to_string())?;
    let response = codec::decode_response(&reply).map_err(|e| e.to_string())?;
    Ok((Contact::new(responder, addr), response))
}
