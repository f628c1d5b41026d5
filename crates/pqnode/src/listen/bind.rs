//! Binding a TCP port for one of the HTTP listeners.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Pending connections the kernel queues per listener. tokio's default (128)
/// drops SYNs when a few hundred browsers reconnect at once.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds a TCP listener; the error names the address and the setting to change.
pub(crate) async fn bind_tcp(addr: SocketAddr, setting: &str) -> anyhow::Result<TcpListener> {
    let bind = || -> std::io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_nodelay(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    bind().map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                format!(
                    "port {} is already in use; choose another with {setting}",
                    addr.port()
                )
            }
            std::io::ErrorKind::PermissionDenied => {
                format!("not allowed to bind {addr}; choose another with {setting}")
            }
            _ => format!("check {setting}"),
        };
        anyhow::anyhow!("cannot listen on {addr}: {e} ({hint})")
    })
}
