//! The limits that protect the broker from its connections: how many there
//! may be ([`connections`]), how many request bytes they may hold
//! ([`memory`]), and the rate-limited warnings that count every hit
//! ([`report`]). `server.rs` applies them; `docs/limits.md` lists what a
//! client sees for each.

pub(crate) mod connections;
pub(crate) mod memory;
pub(crate) mod report;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tributary_config::BrokerLayers;
use tributary_config::connections::ConnectionLimits;

use self::connections::{ConnectionQuotas, ConnectionSlot};
use self::memory::RequestMemory;
use self::report::{Limit, LimitReports};

/// The connection limits in force, as the layers (dynamic broker, dynamic
/// default, static, default) give them.
pub(crate) fn effective_connection_limits(layers: &BrokerLayers) -> Result<ConnectionLimits, String> {
    ConnectionLimits::from_lookup(|key| layers.broker_value(key).and_then(|v| v.value))
}

/// Everything the listeners and connections share to apply the limits.
#[derive(Debug)]
pub(crate) struct ListenerLimits {
    pub(crate) quotas: Arc<ConnectionQuotas>,
    pub(crate) memory: Arc<RequestMemory>,
    pub(crate) reports: LimitReports,
}

impl ListenerLimits {
    /// Limits from the effective connection limits and `queued.max.request.bytes`.
    pub(crate) fn new(connections: &ConnectionLimits, request_bytes_budget: Option<u64>) -> ListenerLimits {
        ListenerLimits {
            quotas: ConnectionQuotas::new(connections),
            memory: RequestMemory::new(request_bytes_budget),
            reports: LimitReports::default(),
        }
    }

    /// Applies changed connection limits (a dynamic config update).
    pub(crate) fn reconfigure(&self, connections: &ConnectionLimits) {
        self.quotas.reconfigure(connections);
    }

    /// Admits a connection from `peer` the way Kafka's acceptor does: wait
    /// for the creation rate, then for a broker-wide slot (accepting nothing
    /// else meanwhile), then refuse it if its address is full. `None`: the
    /// caller closes the connection.
    pub(crate) async fn admit(&self, peer: SocketAddr) -> Option<ConnectionSlot> {
        let delay = self.quotas.creation_delay(Instant::now());
        if !delay.is_zero() {
            self.reports.hit(
                Limit::MaxConnectionCreationRate,
                peer,
                &format!("accepting new connections is delayed {} ms", delay.as_millis()),
            );
            tokio::time::sleep(delay).await;
        }
        let waiting = || {
            self.reports.hit(
                Limit::MaxConnections,
                peer,
                "the broker holds max.connections connections; this one is not served, and no further one is \
                 accepted, until one closes",
            )
        };
        match self.quotas.admit(peer.ip(), waiting).await {
            Ok(slot) => Some(slot),
            Err(refused) => {
                self.reports.hit(
                    Limit::MaxConnectionsPerIp,
                    peer,
                    &format!(
                        "closed right after accept: the address already has the maximum of {} connections",
                        refused.max
                    ),
                );
                None
            }
        }
    }
}
