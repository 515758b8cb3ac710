//! The reachability check before a scheduled backup: BackupPC pings; hoard opens a TCP
//! connection to the port the transport uses (ssh's), which also proves the service is up.
//! A host that does not answer within the maximum round trip is skipped. The server's own
//! machine is always reachable.

use std::time::{Duration, Instant};

use crate::config::ResolvedHost;

/// What the check saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reach {
    /// The host answered in time.
    pub reachable: bool,
    /// How long the connection took, when it was made.
    pub rtt: Option<Duration>,
}

/// Checks `host`, allowing `max_rtt` for the connection.
pub async fn check(host: &ResolvedHost, max_rtt: Duration) -> Reach {
    let Some(ssh) = &host.ssh else {
        return Reach {
            reachable: true,
            rtt: None,
        };
    };
    let started = Instant::now();
    let connect = tokio::net::TcpStream::connect((ssh.address.as_str(), ssh.port));
    match tokio::time::timeout(max_rtt, connect).await {
        Ok(Ok(_stream)) => Reach {
            reachable: true,
            rtt: Some(started.elapsed()),
        },
        Ok(Err(e)) => {
            tracing::debug!(host = %host.name, error = %e, "not reachable");
            Reach {
                reachable: false,
                rtt: None,
            }
        }
        Err(_) => Reach {
            reachable: false,
            rtt: None,
        },
    }
}
