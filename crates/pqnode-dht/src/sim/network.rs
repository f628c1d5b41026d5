//! The simulator's event loop: delivering requests, responses and failures between nodes,
//! firing their timers, and collecting what they send and finish.

use std::time::Duration;

use rand::RngExt;

use super::Simulator;
use super::link::{self, LossRecovery, MAX_RETRANSMITS};
use super::ops::Outcome;
use super::queue::SimEvent;
use crate::contact::{Contact, Peer};
use crate::node::{Event, QueryId};

impl Simulator {
    /// Processes the next event; returns the query it finished, if any.
    pub(super) fn step(&mut self) -> Option<(usize, QueryId)> {
        let (at, event) = self.queue.pop()?;
        self.now = self.now.max(at);
        self.counters.events_processed += 1;
        let now = self.now;
        match event {
            SimEvent::Timer { node } => {
                let n = self.nodes.get_mut(node)?;
                if !n.alive || n.timer != Some(at) {
                    return None;
                }
                n.timer = None;
                n.node.handle_timeout(now);
                self.settle(node)
            }
            SimEvent::Join { node, seeds } => {
                let n = self.nodes.get_mut(node).filter(|n| n.alive)?;
                n.node.bootstrap(now, seeds.into_iter().map(Peer::unpinned));
                self.settle(node)
            }
            SimEvent::Request {
                from,
                to,
                id,
                request,
            } => {
                let from_contact = self.contact(from)?;
                let from_group = self.nodes.get(from)?.group;
                let Some(target) = self.by_addr.get(&to.addr).copied() else {
                    self.counters.messages_dropped += 1;
                    return None;
                };
                let (alive, group) = self.nodes.get(target).map(|n| (n.alive, n.group))?;
                if !alive {
                    self.counters.requests_to_dead += 1;
                    let refused = self.config.refuse > 0.0
                        && self.rng.random_bool(self.config.refuse.clamp(0.0, 1.0));
                    if refused {
                        self.deliver(target, from, SimEvent::Failure { to: from, id });
                    } else {
                        self.counters.messages_dropped += 1;
                    }
                    return None;
                }
                if group != from_group {
                    self.counters.messages_dropped += 1;
                    return None;
                }
                self.counters.messages_delivered += 1;
                let n = self.nodes.get_mut(target)?;
                let responder = Contact::new(*n.node.local_id(), to.addr);
                let response = n.node.handle_request(now, from_contact, request);
                let done = self.settle(target);
                self.deliver(
                    target,
                    from,
                    SimEvent::Response {
                        to: from,
                        id,
                        responder,
                        response,
                    },
                );
                done
            }
            SimEvent::Response {
                to,
                id,
                responder,
                response,
            } => {
                let n = self.nodes.get_mut(to).filter(|n| n.alive)?;
                self.counters.messages_delivered += 1;
                n.node.handle_response(now, id, responder, response);
                self.settle(to)
            }
            SimEvent::Failure { to, id } => {
                let n = self.nodes.get_mut(to).filter(|n| n.alive)?;
                n.node.handle_failure(now, id);
                self.settle(to)
            }
        }
    }

    /// Schedules a message from node `from` to node `to` after its link's latency. A lost
    /// message is gone, or (with [`LossRecovery::Retransmit`]) arrives a probe timeout later
    /// for each time it was lost.
    fn deliver(&mut self, from: usize, to: usize, event: SimEvent) {
        let rtt = self.link_rtt(from, to);
        let mut delay = Duration::ZERO;
        let mut probe = link::probe_timeout(rtt);
        let mut resends = 0;
        while self.lost() {
            if self.config.recovery == LossRecovery::None || resends == MAX_RETRANSMITS {
                self.counters.messages_dropped += 1;
                return;
            }
            resends += 1;
            self.counters.retransmits += 1;
            delay += probe;
            probe *= 2;
        }
        let latency = link::message_latency(&mut self.rng, rtt, self.config.jitter);
        self.queue.push(self.now + delay + latency, event);
    }

    /// Draws whether one transmission of a message is lost.
    fn lost(&mut self) -> bool {
        self.config.loss > 0.0 && self.rng.random_bool(self.config.loss.clamp(0.0, 1.0))
    }

    /// After node `i` took an input: send its transmits, collect its events, requeue its timer.
    pub(super) fn settle(&mut self, i: usize) -> Option<(usize, QueryId)> {
        let mut outgoing = Vec::new();
        let mut done = None;
        let now = self.now;
        let n = self.nodes.get_mut(i)?;
        while let Some(t) = n.node.poll_transmit() {
            outgoing.push((
                self.by_addr.get(&t.to.addr).copied(),
                SimEvent::Request {
                    from: i,
                    to: t.to,
                    id: t.id,
                    request: t.request,
                },
            ));
        }
        while let Some(Event::QueryFinished { id, result, stats }) = n.node.poll_event() {
            let started = self.started.get(&(i, id)).copied().unwrap_or(now);
            let outcome = Outcome {
                value: result,
                stats,
                latency: now.saturating_duration_since(started),
            };
            self.finished.insert((i, id), outcome);
            done = Some((i, id));
        }
        // A timer already due (a node revived long after its timers were set) fires now; the
        // instant kept is the one queued, or the event would be taken for a stale one.
        let next = n.node.poll_timeout().max(now);
        if n.alive && n.timer.is_none_or(|t| next < t) {
            n.timer = Some(next);
            self.queue.push(next, SimEvent::Timer { node: i });
        }
        for (to, event) in outgoing {
            match to {
                Some(to) => self.deliver(i, to, event),
                // Nobody ever listened there: the request vanishes.
                None => self.counters.messages_dropped += 1,
            }
        }
        done
    }
}
