//! Round-trip time estimation and the request timeouts derived from it.
//!
//! The estimator is TCP's (RFC 6298, as mainline DHT clients use too): a smoothed RTT and its
//! mean deviation, updated with gains 1/8 and 1/4, and a retransmission timeout of
//! `srtt + 4 × rttvar`. Every answer is a valid sample: the DHT never retransmits a request,
//! so Karn's ambiguity does not arise.

use std::time::Duration;

/// A smoothed round-trip time and its variation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rtt {
    srtt: Duration,
    rttvar: Duration,
}

impl Rtt {
    /// The estimate after a first sample (RFC 6298 2.2).
    pub(crate) fn first(sample: Duration) -> Self {
        Self {
            srtt: sample,
            rttvar: sample / 2,
        }
    }

    /// Folds in a new sample (RFC 6298 2.3).
    pub(crate) fn update(&mut self, sample: Duration) {
        let deviation = self.srtt.abs_diff(sample);
        self.rttvar = (self.rttvar * 3 + deviation) / 4;
        self.srtt = (self.srtt * 7 + sample) / 8;
    }

    pub(crate) fn srtt(&self) -> Duration {
        self.srtt
    }

    /// `srtt + 4 × rttvar`: how long an answer may take before it is overdue.
    pub(crate) fn rto(&self) -> Duration {
        self.srtt + self.rttvar * 4
    }
}

/// How long to wait for an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// Past this, a lookup stops counting on the answer and asks someone else in its place;
    /// an answer that still comes is used.
    pub soft: Duration,
    /// Past this, the request has failed.
    pub hard: Duration,
    /// How long a lookup of this contact's own id waits for its answer, overdue or not (no
    /// other contact can stand in for the target): its hard timeout when it was measured;
    /// otherwise the hard timeout it would have with the first contacts' estimate, since the
    /// conservative hard timeout of a never-measured contact is mostly waited out by targets
    /// that are dead.
    pub patience: Duration,
}

/// The bounds that turn estimates into timeouts (a subset of [`crate::Config`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeoutBounds {
    /// Upper bound of every hard timeout, and the hard timeout of a never-measured contact
    /// (it may need a dial, with a post-quantum handshake, before it can answer).
    pub max: Duration,
    /// Lower bound of a measured contact's hard timeout.
    pub min: Duration,
    /// Lower bound of every soft timeout.
    pub min_soft: Duration,
    /// Soft timeout when nothing has been measured yet, from anyone.
    pub initial_soft: Duration,
}

/// QUIC's default `max_ack_delay` (RFC 9000, 18.2): part of its probe timeout.
const QUIC_MAX_ACK_DELAY: Duration = Duration::from_millis(25);

impl Rtt {
    /// How long an answer may take before it is not coming: twice the RTO (RFC 6298's
    /// backoff), and never less than the time one QUIC retransmission takes. The transport
    /// resends a lost request or answer after its probe timeout (`srtt + 4 × rttvar +
    /// max_ack_delay`, RFC 9002 6.2), so such an answer comes about `2 × srtt + 4 × rttvar +
    /// max_ack_delay` after the request; on a steady link (rttvar near zero) twice the RTO
    /// is shorter than that, and one lost packet would fail a live contact. The floor, `3 ×
    /// srtt + 2 × max_ack_delay`, leaves a round trip and an ack delay of margin for the
    /// estimates of the two ends to differ.
    fn hard(&self) -> Duration {
        (self.rto() * 2).max(self.srtt * 3 + QUIC_MAX_ACK_DELAY * 2)
    }
}

impl TimeoutBounds {
    /// Timeouts for a contact with estimate `contact`, where first answers of contacts never
    /// measured before have estimate `first_contacts`.
    ///
    /// A measured contact: soft = its RTO, hard = twice that, or the time one QUIC
    /// retransmission takes if longer (see [`Rtt::hard`]: a small multiple of what it has
    /// shown, enough for a redial or a resend). A never-measured one: soft = the RTO of first
    /// contacts (it probably needs a dial like they did), hard = the conservative maximum.
    pub(crate) fn for_contact(
        &self,
        contact: Option<Rtt>,
        first_contacts: Option<Rtt>,
    ) -> Timeouts {
        let max = self.max.max(self.min);
        match contact {
            Some(rtt) => {
                let hard = rtt.hard().clamp(self.min, max);
                let soft = rtt.rto().clamp(self.min_soft.min(hard), hard);
                Timeouts {
                    soft,
                    hard,
                    patience: hard,
                }
            }
            None => {
                let soft = first_contacts
                    .map_or(self.initial_soft, |n| n.rto())
                    .clamp(self.min_soft.min(max), max);
                let patience = first_contacts.map_or(self.initial_soft * 2, |n| n.hard());
                Timeouts {
                    soft,
                    hard: max,
                    patience: patience.clamp(self.min.max(soft), max),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    const BOUNDS: TimeoutBounds = TimeoutBounds {
        max: Duration::from_secs(5),
        min: Duration::from_millis(250),
        min_soft: Duration::from_millis(50),
        initial_soft: Duration::from_secs(1),
    };

    #[test]
    fn follows_rfc_6298() {
        let mut rtt = Rtt::first(ms(100));
        assert_eq!((rtt.srtt(), rtt.rto()), (ms(100), ms(300)));
        rtt.update(ms(100));
        assert_eq!(rtt.srtt(), ms(100));
        assert_eq!(rtt.rto(), ms(100) + ms(150)); // rttvar 50 → 37.5
        for _ in 0..50 {
            rtt.update(ms(100));
        }
        assert!(rtt.rto() < ms(101), "a steady link converges on its RTT");
        rtt.update(ms(900));
        assert_eq!(rtt.srtt(), ms(200));
        assert!(rtt.rto() > ms(400), "a spike widens the timeout at once");
    }

    #[test]
    fn timeouts_are_bounded_and_unmeasured_contacts_get_the_conservative_one() {
        let fast = Some(Rtt::first(ms(2)));
        assert_eq!(
            BOUNDS.for_contact(fast, None),
            Timeouts {
                soft: ms(50),
                hard: ms(250),
                patience: ms(250),
            }
        );
        let slow = Some(Rtt::first(ms(4000)));
        assert_eq!(
            BOUNDS.for_contact(slow, None),
            Timeouts {
                soft: ms(5000),
                hard: ms(5000),
                patience: ms(5000),
            }
        );
        let network = Some(Rtt::first(ms(100)));
        assert_eq!(
            BOUNDS.for_contact(None, network),
            Timeouts {
                soft: ms(300),
                hard: ms(5000),
                patience: ms(600),
            }
        );
        assert_eq!(
            BOUNDS.for_contact(None, None),
            Timeouts {
                soft: ms(1000),
                hard: ms(5000),
                patience: ms(2000),
            }
        );
    }

    #[test]
    fn a_steady_link_still_gets_time_for_one_quic_retransmission() {
        let mut rtt = Rtt::first(ms(200));
        for _ in 0..50 {
            rtt.update(ms(200));
        }
        let t = BOUNDS.for_contact(Some(rtt), None);
        assert!(t.soft < ms(201), "a lookup still moves on after one RTT");
        // A lost request is resent after QUIC's probe timeout (srtt + 4 × rttvar + 25 ms),
        // and its answer comes a round trip later: 425 ms here, more than 2 × RTO (400 ms).
        let resent = rtt.srtt() + rtt.rto() + ms(25);
        assert!(rtt.rto() * 2 < resent);
        assert_eq!(t.hard, ms(650), "3 × srtt + 2 × max_ack_delay");
        assert!(t.hard >= resent + ms(200));
        // Bounded above like every hard timeout.
        let mut slow = Rtt::first(ms(3000));
        for _ in 0..50 {
            slow.update(ms(3000));
        }
        assert_eq!(BOUNDS.for_contact(Some(slow), None).hard, BOUNDS.max);
    }

    proptest! {
        #[test]
        fn soft_never_exceeds_hard_and_both_stay_in_bounds(
            samples in proptest::collection::vec(0u64..20_000, 1..20),
            network in proptest::option::of(0u64..20_000),
        ) {
            let mut rtt = Rtt::first(ms(samples[0]));
            for s in &samples[1..] {
                rtt.update(ms(*s));
            }
            let network = network.map(|n| Rtt::first(ms(n)));
            for contact in [Some(rtt), None] {
                let t = BOUNDS.for_contact(contact, network);
                prop_assert!(t.soft <= t.hard);
                prop_assert!(t.patience <= t.hard && t.patience >= t.soft.min(BOUNDS.min));
                prop_assert!(t.hard <= BOUNDS.max && t.hard >= BOUNDS.min);
                prop_assert!(t.soft >= BOUNDS.min_soft);
            }
        }
    }
}
