//! Reaching a client over ssh, with russh used directly: one connection per client, one
//! session channel per program, stdio streamed both ways with ssh flow control.
//!
//! The connection is opened on the first [`exec`](ClientConnector::exec), kept for the next
//! ones and opened again if it died. Every network step (TCP connect, handshake,
//! authentication, channel open, exec request) is bounded by
//! [`SshSettings::connect_timeout`]. The server's host key is checked against the configured
//! `known_hosts` file ([`check_host_key`]); the client authenticates with its private key
//! only. The key's path and contents stay in this module: plugins never reach it.
//!
//! The remote side runs one command string: the argv words, each quoted for a POSIX shell
//! ([`shell_quote`]), because an ssh server always hands the command to the login shell of
//! the user. The client account must therefore have a POSIX login shell (sh, bash, dash,
//! zsh, ...).
//!
//! Flow control: russh grants the server window as data arrives and delivers it into a
//! bounded queue per channel, which one task per channel (the [`ChannelPump`]) empties.
//! Standard output keeps back-pressure: the pump hands it to a bounded queue and, when its
//! reader stops reading, waits; russh's queue then fills and russh stops reading the socket.
//! Memory stays bounded (a few MiB per channel) however long the stream, at the price that a
//! program whose stdout nobody reads stalls the other programs on the same connection.
//!
//! Standard error never makes the pump wait. ssh carries both streams in one channel under
//! one window, so a pump that waited for a stderr reader also stopped delivering stdout: a
//! reader busy with stdout alone (the tar plugin copying a file's content into the pool inside
//! the host) then waited for data stuck behind unread stderr, while the program waited for its
//! stderr to be read: a deadlock. Stderr is text, and little of it, so it is kept by bytes, up
//! to 8 MiB per program; beyond that the oldest whole lines are dropped and the reader finds
//! one line in their place, `hoard: N bytes of standard error dropped (more than 8388608
//! bytes unread)`, on a line of its own. The other ways out were worse: stdout cannot be
//! buffered without bound (it is the archive, gigabytes), and a second channel per stream does
//! not exist in ssh. Read stdout whenever you wait for stderr: stderr that the server sent
//! after unread stdout waits behind it.

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use russh::client::{self, Handle, Msg};
use russh::keys::known_hosts::{known_host_keys_path, learn_known_hosts_path};
use russh::keys::{Algorithm, HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Preferred, Sig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc, oneshot, watch};

use super::stderr::{STDERR_BUFFER_BYTES, StderrBuffer, StderrEnd, StderrReader, StderrSink};
use super::{ClientConnector, ClientError, ExitStatus, RemoteProcess};

/// How many chunks (each at most one ssh packet, 32 KiB) wait for a reader of stdout before
/// the channel stops being read.
const STREAM_QUEUE_CHUNKS: usize = 16;

/// How often an idle connection is probed, so a dead one is noticed.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// How to reach one client over ssh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSettings {
    /// Host name or IP address of the client.
    pub address: String,
    /// The port its sshd listens on (22 usually).
    pub port: u16,
    /// The account to log in as.
    pub user: String,
    /// The private key to authenticate with (OpenSSH or PEM format, no passphrase).
    pub private_key: PathBuf,
    /// The `known_hosts` file the client's host key is checked against.
    pub known_hosts: PathBuf,
    /// When the host has no key in `known_hosts` yet: learn the key and go on (true), or
    /// refuse (false). A key that differs from a recorded one is refused either way.
    pub accept_new_host_keys: bool,
    /// The limit for each network step: TCP connect, handshake, authentication, channel
    /// open, exec request.
    pub connect_timeout: Duration,
}

/// Runs programs on one client over one ssh connection, opened lazily and reopened when it
/// died.
pub struct SshClient {
    settings: Arc<SshSettings>,
    ip: IpAddr,
    connection: Mutex<Option<Arc<Connection>>>,
}

type Connection = Handle<HostKeyCheck>;

impl std::fmt::Debug for SshClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshClient")
            .field("address", &self.settings.address)
            .field("port", &self.settings.port)
            .field("user", &self.settings.user)
            .field("ip", &self.ip)
            .finish_non_exhaustive()
    }
}

impl SshClient {
    /// Resolves the client's address (bounded by the connect timeout); connects nothing yet.
    ///
    /// The first resolved address is kept: ssh and the TCP connections of
    /// [`ClientConnector::address`] go to the same machine.
    pub async fn new(settings: SshSettings) -> Result<SshClient, ClientError> {
        let ip = match settings.address.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => resolve(&settings).await?,
        };
        Ok(SshClient {
            settings: Arc::new(settings),
            ip,
            connection: Mutex::new(None),
        })
    }

    /// The settings this client was built from.
    pub fn settings(&self) -> &SshSettings {
        &self.settings
    }

    /// Closes the connection, if one is open; running programs lose their channels. The next
    /// [`exec`](ClientConnector::exec) connects again.
    pub async fn disconnect(&self) {
        let taken = self.connection.lock().await.take();
        if let Some(connection) = taken {
            let _ = connection
                .disconnect(russh::Disconnect::ByApplication, "", "")
                .await;
        }
    }

    /// The open connection, or a new one. `stale` is a connection the caller found dead:
    /// it is replaced if it is still the current one.
    async fn connection(
        &self,
        stale: Option<&Arc<Connection>>,
    ) -> Result<Arc<Connection>, ClientError> {
        let mut slot = self.connection.lock().await;
        if let Some(current) = slot.as_ref() {
            let is_stale = stale.is_some_and(|s| Arc::ptr_eq(s, current));
            if !is_stale && !current.is_closed() {
                return Ok(Arc::clone(current));
            }
            tracing::debug!(address = %self.settings.address, "ssh connection died, reconnecting");
        }
        *slot = None;
        let connection = Arc::new(self.connect().await?);
        *slot = Some(Arc::clone(&connection));
        Ok(connection)
    }

    /// TCP connect, handshake with host key check, public key authentication.
    async fn connect(&self) -> Result<Connection, ClientError> {
        let s = &*self.settings;
        let after = s.connect_timeout;
        let socket = SocketAddr::new(self.ip, s.port);
        let target = format!("{}:{}", s.address, s.port);

        let key = load_key(&s.private_key)?;
        let stream = timed(
            after,
            format!("TCP connect to {target}"),
            TcpStream::connect(socket),
        )
        .await?
        .map_err(|source| ClientError::Connect {
            address: target.clone(),
            source,
        })?;
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }

        let config = client::Config {
            keepalive_interval: Some(KEEPALIVE_INTERVAL),
            preferred: Preferred {
                key: Cow::Owned(host_key_algorithms(s)?),
                cipher: Cow::Borrowed(cipher_preference()),
                ..Preferred::default()
            },
            ..client::Config::default()
        };
        let check = HostKeyCheck {
            address: s.address.clone(),
            port: s.port,
            known_hosts: s.known_hosts.clone(),
            accept_new: s.accept_new_host_keys,
        };
        let mut handle = timed(
            after,
            format!("ssh handshake with {target}"),
            client::connect_stream(Arc::new(config), stream, check),
        )
        .await?
        .map_err(|error| match error {
            HandshakeError::Refused(refusal) => refusal,
            HandshakeError::Ssh(error) => ssh_error(&target, "handshake", &error),
        })?;

        let hash = if key.algorithm().is_rsa() {
            timed(
                after,
                format!("ssh signature algorithms of {target}"),
                handle.best_supported_rsa_hash(),
            )
            .await?
            .map_err(|error| ssh_error(&target, "negotiate the RSA signature", &error))?
            .flatten()
        } else {
            None
        };
        let refused = || ClientError::AuthRefused {
            user: s.user.clone(),
            address: target.clone(),
            key: s.private_key.display().to_string(),
        };
        let auth = timed(
            after,
            format!("ssh authentication as {}@{target}", s.user),
            handle.authenticate_publickey(
                s.user.clone(),
                PrivateKeyWithHashAlg::new(Arc::new(key), hash),
            ),
        )
        .await?
        .map_err(|error| {
            tracing::debug!(%error, "ssh authentication failed");
            refused()
        })?;
        if !auth.success() {
            return Err(refused());
        }
        tracing::debug!(%target, user = %s.user, "ssh connected");
        Ok(handle)
    }

    /// Opens a session channel, on a fresh connection if the current one turns out dead.
    async fn open_channel(&self) -> Result<(Arc<Connection>, russh::Channel<Msg>), ClientError> {
        let after = self.settings.connect_timeout;
        let what = || format!("ssh channel open on {}", self.settings.address);
        let connection = self.connection(None).await?;
        match timed(after, what(), connection.channel_open_session()).await? {
            Ok(channel) => Ok((connection, channel)),
            Err(error) if connection.is_closed() => {
                tracing::debug!(%error, "channel open on a dead connection, reconnecting");
                let connection = self.connection(Some(&connection)).await?;
                let channel = timed(after, what(), connection.channel_open_session())
                    .await?
                    .map_err(|error| ssh_error(&self.settings.address, "open a channel", &error))?;
                Ok((connection, channel))
            }
            Err(error) => Err(ssh_error(&self.settings.address, "open a channel", &error)),
        }
    }
}

#[async_trait::async_trait]
impl ClientConnector for SshClient {
    async fn exec(&self, argv: &[Vec<u8>]) -> Result<RemoteProcess, ClientError> {
        let program = argv
            .first()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        let invalid = |why: &str| ClientError::Spawn {
            program: program.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, why),
        };
        if argv.is_empty() {
            return Err(invalid("empty argv"));
        }
        if argv.iter().any(|word| word.contains(&0)) {
            return Err(invalid("an argument contains a NUL byte"));
        }
        let command = shell_quote(argv);

        let (connection, channel) = self.open_channel().await?;
        let (read, write) = channel.split();
        let stdin = write.make_writer();
        write
            .exec(true, command)
            .await
            .map_err(|error| ssh_error(&self.settings.address, "send the exec request", &error))?;

        let (stdout_tx, stdout_rx) = mpsc::channel(STREAM_QUEUE_CHUNKS);
        let stderr_buffer = StderrBuffer::new(STDERR_BUFFER_BYTES);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let (started_tx, started_rx) = oneshot::channel();
        let (exit_tx, exit) = oneshot::channel();
        let (closed_tx, closed_rx) = watch::channel(false);
        let pump = ChannelPump {
            read,
            write,
            stdout: Some(stdout_tx),
            stderr: Some(StderrSink(Arc::clone(&stderr_buffer))),
            control: control_rx,
            started: Some(started_tx),
            closed: closed_tx,
            status: ExitStatus::Unknown,
            _connection: connection,
        };
        tokio::spawn(pump.run(exit_tx));

        let process = RemoteProcess {
            stdin: Box::new(StdinWriter::new(
                Box::new(stdin),
                closed_rx,
                control_tx.clone(),
            )),
            stdout: Box::new(ChunkReader::new(stdout_rx)),
            stderr: Box::new(StderrReader::new(stderr_buffer)),
            exit,
            kill_on_drop: Box::new(KillOnDrop(control_tx)),
        };
        let after = self.settings.connect_timeout;
        let answer = timed(
            after,
            format!("start of {program} on {}", self.settings.address),
            started_rx,
        )
        .await?;
        match answer {
            Ok(true) => {
                tracing::debug!(%program, address = %self.settings.address, "remote program started");
                Ok(process)
            }
            Ok(false) => Err(ClientError::Spawn {
                program,
                source: io::Error::other("the ssh server refused the exec request"),
            }),
            Err(_) => Err(ClientError::Ssh {
                address: self.settings.address.clone(),
                message: format!("channel closed before {program} started"),
            }),
        }
    }

    fn address(&self) -> IpAddr {
        self.ip
    }
}

/// Quotes every word for a POSIX shell and joins them with spaces, so that `sh -c` on the
/// remote side sees exactly these words.
///
/// Each word is put in single quotes, inside which a shell gives no byte a special meaning;
/// a `'` in the word becomes `'\''` (close, escaped quote, reopen). The bytes are kept as
/// they are, UTF-8 or not. An empty word becomes `''`. A NUL byte cannot be passed to a
/// remote program at all; [`SshClient`] refuses such an argv before quoting.
pub fn shell_quote(argv: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(argv.iter().map(|w| w.len() + 3).sum());
    for (i, word) in argv.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.push(b'\'');
        for &byte in word {
            if byte == b'\'' {
                out.extend_from_slice(b"'\\''");
            } else {
                out.push(byte);
            }
        }
        out.push(b'\'');
    }
    out
}

/// Checks a server's host key against `known_hosts` for `address:port`, the way
/// OpenSSH's `StrictHostKeyChecking=yes` (or `accept-new`, with `accept_new`) does.
///
/// - a recorded key for this host equals `key`: accepted;
/// - keys are recorded for this host but none equals `key`:
///   [`ClientError::HostKeyChanged`], whatever `accept_new` says;
/// - nothing is recorded: [`ClientError::HostKeyUnknown`], or with `accept_new` the key is
///   appended to the file (created if missing) and accepted.
///
/// Hosts are written as OpenSSH does: `address` on port 22, `[address]:port` otherwise;
/// hashed entries (`|1|...`) are understood.
pub fn check_host_key(
    address: &str,
    port: u16,
    known_hosts: &Path,
    accept_new: bool,
    key: &PublicKey,
) -> Result<(), ClientError> {
    let recorded = recorded_host_keys(address, port, known_hosts)?;
    if recorded.iter().any(|r| r.key_data() == key.key_data()) {
        return Ok(());
    }
    let fingerprint = key.fingerprint(HashAlg::Sha256);
    if !recorded.is_empty() {
        tracing::warn!(%address, port, %fingerprint, known_hosts = %known_hosts.display(),
            "host key differs from the recorded one");
        return Err(ClientError::HostKeyChanged {
            address: address.to_owned(),
            known_hosts: known_hosts.display().to_string(),
        });
    }
    if !accept_new {
        return Err(ClientError::HostKeyUnknown {
            address: address.to_owned(),
            known_hosts: known_hosts.display().to_string(),
        });
    }
    learn_known_hosts_path(address, port, key, known_hosts).map_err(|error| ClientError::Ssh {
        address: address.to_owned(),
        message: format!(
            "cannot record its host key in {}: {error}",
            known_hosts.display()
        ),
    })?;
    tracing::info!(%address, port, %fingerprint, known_hosts = %known_hosts.display(),
        "learned new host key");
    Ok(())
}

fn recorded_host_keys(
    address: &str,
    port: u16,
    known_hosts: &Path,
) -> Result<Vec<PublicKey>, ClientError> {
    if let Err(error) = std::fs::metadata(known_hosts)
        && error.kind() != io::ErrorKind::NotFound
    {
        return Err(ClientError::Ssh {
            address: address.to_owned(),
            message: format!("cannot read {}: {error}", known_hosts.display()),
        });
    }
    let recorded =
        known_host_keys_path(address, port, known_hosts).map_err(|error| ClientError::Ssh {
            address: address.to_owned(),
            message: format!("cannot read {}: {error}", known_hosts.display()),
        })?;
    Ok(recorded.into_iter().map(|(_line, key)| key).collect())
}

/// The ciphers to offer, best first. Backups move bulk data, so where the CPU has AES
/// instructions AES-GCM comes first: on this kind of machine it moves a loopback stream
/// several times faster than ChaCha20-Poly1305 (`scripts/bench-ssh.sh`), and the server
/// side (OpenSSH) gains as much. Without them, ChaCha20-Poly1305 is the faster and safer
/// choice, as russh's default order has it.
fn cipher_preference() -> &'static [russh::cipher::Name] {
    use russh::cipher::{AES_128_GCM, AES_256_CTR, AES_256_GCM, CHACHA20_POLY1305};
    const AES_FIRST: &[russh::cipher::Name] =
        &[AES_256_GCM, AES_128_GCM, CHACHA20_POLY1305, AES_256_CTR];
    if has_aes_instructions() {
        AES_FIRST
    } else {
        &Preferred::DEFAULT.cipher
    }
}

/// Whether the CPU has hardware AES and carry-less multiplication (what fast GCM needs).
fn has_aes_instructions() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// The host key algorithms to offer: all supported ones for a new host, else only those of
/// the kinds recorded for it, so that a server holding several keys proves the one we know
/// instead of one that would look like a changed key.
fn host_key_algorithms(s: &SshSettings) -> Result<Vec<Algorithm>, ClientError> {
    let supported = Preferred::DEFAULT.key;
    let recorded = recorded_host_keys(&s.address, s.port, &s.known_hosts)?;
    let known: Vec<Algorithm> = supported
        .iter()
        .filter(|offer| recorded.iter().any(|r| same_kind(offer, &r.algorithm())))
        .cloned()
        .collect();
    Ok(if known.is_empty() {
        supported.into_owned()
    } else {
        known
    })
}

fn same_kind(a: &Algorithm, b: &Algorithm) -> bool {
    match (a, b) {
        (Algorithm::Rsa { .. }, Algorithm::Rsa { .. }) => true,
        _ => a == b,
    }
}

/// The russh handler of one connection: checks the host key, nothing else.
#[derive(Debug)]
struct HostKeyCheck {
    address: String,
    port: u16,
    known_hosts: PathBuf,
    accept_new: bool,
}

/// Why a handshake failed: an ssh error, or our refusal of the host key.
#[derive(Debug)]
enum HandshakeError {
    Ssh(russh::Error),
    Refused(ClientError),
}

impl From<russh::Error> for HandshakeError {
    fn from(error: russh::Error) -> Self {
        HandshakeError::Ssh(error)
    }
}

impl client::Handler for HostKeyCheck {
    type Error = HandshakeError;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = server_key else {
            return Err(HandshakeError::Refused(ClientError::Ssh {
                address: self.address.clone(),
                message: "the server presented a host certificate; only host keys are checked"
                    .into(),
            }));
        };
        check_host_key(
            &self.address,
            self.port,
            &self.known_hosts,
            self.accept_new,
            key,
        )
        .map_err(HandshakeError::Refused)?;
        Ok(true)
    }
}

/// What the local handles of a process ask of its channel.
#[derive(Debug)]
enum Control {
    /// Stdin was dropped without shutdown: send EOF.
    Eof,
    /// The process handle was dropped: signal the program (if still running) and close.
    Kill,
}

/// The task that owns one channel: it sorts incoming data into stdout (waiting for the
/// reader when its queue is full) and stderr (never waiting: [`StderrBuffer`]), records the
/// exit status, and carries out the requests of the local handles.
struct ChannelPump {
    read: ChannelReadHalf,
    write: ChannelWriteHalf<Msg>,
    stdout: Option<mpsc::Sender<io::Result<Bytes>>>,
    stderr: Option<StderrSink>,
    control: mpsc::UnboundedReceiver<Control>,
    started: Option<oneshot::Sender<bool>>,
    closed: watch::Sender<bool>,
    status: ExitStatus,
    /// Keeps the connection open while the program runs.
    _connection: Arc<Connection>,
}

impl ChannelPump {
    async fn run(mut self, exit: oneshot::Sender<ExitStatus>) {
        // Stdout that waits for room in its reader's queue; nothing else is read meanwhile.
        let mut pending: Option<Bytes> = None;
        let mut control_open = true;
        let clean_end = loop {
            let queue = pending.as_ref().and_then(|_| self.stdout.clone());
            tokio::select! {
                biased;
                request = self.control.recv(), if control_open => match request {
                    Some(Control::Eof) => {
                        let _ = self.write.eof().await;
                    }
                    Some(Control::Kill) => {
                        if matches!(self.status, ExitStatus::Unknown) {
                            let _ = self.write.signal(Sig::KILL).await;
                        }
                        let _ = self.write.close().await;
                        // russh forgets a channel once it has sent CHANNEL_CLOSE: the
                        // server's answer and anything before it never reach us.
                        break true;
                    }
                    None => control_open = false,
                },
                permit = reserve(queue), if pending.is_some() => {
                    if let Some(data) = pending.take() {
                        match permit {
                            Some(permit) => {
                                permit.send(Ok(data));
                            }
                            // The reader is gone: drop its data, keep the channel moving.
                            None => self.stdout = None,
                        }
                    }
                }
                message = self.read.wait(), if pending.is_none() => match message {
                    Some(message) => {
                        if let Some(end) = self.on_message(message, &mut pending) {
                            break end;
                        }
                    }
                    None => break false,
                },
            }
        };
        let _ = self.closed.send(true);
        tracing::debug!(status = ?self.status, clean_end, "ssh channel closed");
        let _ = exit.send(self.status);
        let (stdout, stderr) = (self.stdout.take(), self.stderr.take());
        if !clean_end {
            // Readers must not take a lost connection for the end of the output.
            if let Some(stderr) = stderr {
                stderr.end(StderrEnd::Lost);
            }
            if let Some(stdout) = stdout {
                let aborted =
                    io::Error::new(io::ErrorKind::ConnectionAborted, "ssh connection lost");
                let _ = stdout.send(Err(aborted)).await;
            }
        }
    }

    /// Handles one message from the server; `Some(clean)` ends the channel.
    fn on_message(&mut self, message: ChannelMsg, pending: &mut Option<Bytes>) -> Option<bool> {
        match message {
            // Data for a reader that is gone is dropped: the channel keeps moving.
            ChannelMsg::Data { data } if self.stdout.is_some() => {
                *pending = Some(data);
            }
            ChannelMsg::ExtendedData { data, ext: 1 } => {
                if let Some(stderr) = &self.stderr {
                    stderr.push(&data);
                }
            }
            ChannelMsg::Eof => {
                self.stdout = None;
                self.stderr = None;
            }
            ChannelMsg::ExitStatus { exit_status } => {
                self.status = ExitStatus::Code(i32::try_from(exit_status).unwrap_or(i32::MAX));
            }
            ChannelMsg::ExitSignal { signal_name, .. } => {
                self.status = ExitStatus::Signal(signal_number(&signal_name));
            }
            ChannelMsg::Success => {
                if let Some(started) = self.started.take() {
                    let _ = started.send(true);
                }
            }
            ChannelMsg::Failure => {
                if let Some(started) = self.started.take() {
                    let _ = started.send(false);
                }
            }
            ChannelMsg::Close => return Some(true),
            _ => {}
        }
        None
    }
}

/// Waits for room in a reader's queue; `None` when the reader is gone (or there is none).
async fn reserve<T>(queue: Option<mpsc::Sender<T>>) -> Option<mpsc::OwnedPermit<T>> {
    queue?.reserve_owned().await.ok()
}

/// Linux signal numbers of the names ssh carries; 0 for others.
fn signal_number(signal: &Sig) -> i32 {
    match signal {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(_) => 0,
    }
}

/// A program's stdout: the chunks the channel pump queued, read in order. One read takes
/// every chunk already queued that fits, not just one ssh packet's worth, so a reader with a
/// large buffer gets large reads.
struct ChunkReader {
    queue: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    /// An error queued behind data already handed out, reported by the next read.
    failed: Option<io::Error>,
}

impl ChunkReader {
    fn new(queue: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        Self {
            queue,
            current: Bytes::new(),
            failed: None,
        }
    }

    /// Moves what `current` holds into `buf`, as much as fits.
    fn hand_out(&mut self, buf: &mut ReadBuf<'_>) {
        let n = buf.remaining().min(self.current.len());
        buf.put_slice(&self.current.split_to(n));
    }
}

impl AsyncRead for ChunkReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(error) = self.failed.take() {
            return Poll::Ready(Err(error));
        }
        while self.current.is_empty() {
            match ready!(self.queue.poll_recv(cx)) {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(error)) => return Poll::Ready(Err(error)),
                None => return Poll::Ready(Ok(())),
            }
        }
        self.hand_out(buf);
        while buf.remaining() > 0 {
            match self.queue.try_recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.hand_out(buf);
                }
                Ok(Err(error)) => {
                    self.failed = Some(error);
                    break;
                }
                // The end (a closed queue) is seen by the next read.
                Err(_) => break,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// A program's stdin: russh's window-respecting channel writer, failing with `BrokenPipe`
/// once the channel is closed, and sending EOF when dropped without shutdown.
struct StdinWriter {
    inner: Box<dyn AsyncWrite + Send + Unpin>,
    closed: Pin<Box<dyn Future<Output = ()> + Send>>,
    is_closed: bool,
    shut_down: bool,
    control: mpsc::UnboundedSender<Control>,
}

impl StdinWriter {
    fn new(
        inner: Box<dyn AsyncWrite + Send + Unpin>,
        mut closed: watch::Receiver<bool>,
        control: mpsc::UnboundedSender<Control>,
    ) -> Self {
        Self {
            inner,
            closed: Box::pin(async move {
                let _ = closed.wait_for(|closed| *closed).await;
            }),
            is_closed: false,
            shut_down: false,
            control,
        }
    }

    /// True once the channel is closed; registers the waker otherwise.
    fn poll_closed(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.is_closed && self.closed.as_mut().poll(cx).is_ready() {
            self.is_closed = true;
        }
        self.is_closed
    }
}

impl AsyncWrite for StdinWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.poll_closed(cx) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the remote program's channel is closed",
            )));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shut_down || self.poll_closed(cx) {
            return Poll::Ready(Ok(()));
        }
        let result = ready!(Pin::new(&mut self.inner).poll_shutdown(cx));
        self.shut_down = true;
        Poll::Ready(result)
    }
}

impl Drop for StdinWriter {
    fn drop(&mut self) {
        if !self.shut_down {
            let _ = self.control.send(Control::Eof);
        }
    }
}

/// Signals the remote program and closes its channel when the process handle is dropped.
struct KillOnDrop(mpsc::UnboundedSender<Control>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(Control::Kill);
    }
}

/// Runs `future` for at most `after`; [`ClientError::Timeout`] names `what` otherwise.
async fn timed<F: Future>(
    after: Duration,
    what: String,
    future: F,
) -> Result<F::Output, ClientError> {
    tokio::time::timeout(after, future)
        .await
        .map_err(|_| ClientError::Timeout { what, after })
}

fn ssh_error(address: &str, step: &str, error: &russh::Error) -> ClientError {
    ClientError::Ssh {
        address: address.to_owned(),
        message: format!("cannot {step}: {error}"),
    }
}

fn load_key(path: &Path) -> Result<russh::keys::PrivateKey, ClientError> {
    russh::keys::load_secret_key(path, None).map_err(|error| ClientError::Key {
        path: path.display().to_string(),
        message: error.to_string(),
    })
}

async fn resolve(settings: &SshSettings) -> Result<IpAddr, ClientError> {
    let target = format!("{}:{}", settings.address, settings.port);
    let mut found = timed(
        settings.connect_timeout,
        format!("name lookup of {}", settings.address),
        tokio::net::lookup_host((settings.address.as_str(), settings.port)),
    )
    .await?
    .map_err(|source| ClientError::Connect {
        address: target.clone(),
        source,
    })?;
    found
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| ClientError::Connect {
            address: target,
            source: io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address"),
        })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hoard_conformance::peers::SshdPeer;

    use super::{SshClient, SshSettings, shell_quote};
    use crate::client::{ClientConnector, ExitStatus, RemoteProcess};

    fn quote(words: &[&[u8]]) -> Vec<u8> {
        shell_quote(&words.iter().map(|w| w.to_vec()).collect::<Vec<_>>())
    }

    #[test]
    fn plain_words_are_single_quoted() {
        assert_eq!(quote(&[b"/bin/tar", b"-cf", b"-"]), b"'/bin/tar' '-cf' '-'");
    }

    #[test]
    fn spaces_stay_inside_one_word() {
        assert_eq!(quote(&[b"a b", b"  c"]), b"'a b' '  c'");
    }

    #[test]
    fn single_quote_is_closed_escaped_and_reopened() {
        assert_eq!(quote(&[b"it's"]), b"'it'\\''s'");
        assert_eq!(quote(&[b"'"]), b"''\\'''");
    }

    #[test]
    fn shell_metacharacters_are_inert() {
        assert_eq!(
            quote(&[b"$(rm -rf /); `x` \"y\" \\ * ? ~ # & | ; < >"]),
            b"'$(rm -rf /); `x` \"y\" \\ * ? ~ # & | ; < >'"
        );
    }

    #[test]
    fn newline_is_kept_verbatim() {
        assert_eq!(quote(&[b"line1\nline2"]), b"'line1\nline2'");
    }

    #[test]
    fn non_utf8_bytes_pass_unchanged() {
        assert_eq!(quote(&[b"\xff\xfe\x80name"]), b"'\xff\xfe\x80name'");
    }

    #[test]
    fn empty_argument_is_an_empty_quoted_word() {
        assert_eq!(quote(&[b"printf", b""]), b"'printf' ''");
        assert_eq!(quote(&[]), b"");
    }

    /// Regression test for the stall that had the one-run tar incremental reverted: GNU tar
    /// names every member on stderr (`-v`) while the archive goes to stdout, and the reader
    /// takes stdout to its end before it touches stderr (as the tar plugin does inside a
    /// host-side copy of a file's content). With one pump feeding two bounded queues, the full
    /// stderr queue stopped the pump and stdout never ended.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unread_stderr_never_holds_back_stdout() {
        use std::os::unix::ffi::OsStrExt;
        use tokio::io::AsyncReadExt;

        let tree = tempfile::tempdir().expect("temporary tree");
        // About 2.4 MB of names on stderr: far more than any queue between sshd and the reader
        // holds, even in full 32 KiB packets; well under the stderr buffer's cap.
        let long = "n".repeat(200);
        let mut members = 1;
        for d in 0..40 {
            let dir = tree.path().join(format!("d{d:02}"));
            std::fs::create_dir(&dir).expect("directory");
            members += 1;
            for f in 0..300 {
                std::fs::write(dir.join(format!("{long}{f:04}")), b"x").expect("small file");
                members += 1;
            }
        }
        std::fs::write(tree.path().join("big"), vec![7u8; 16 << 20]).expect("big file");
        members += 1;

        let peer = SshdPeer::start().expect("sshd peer");
        let client = SshClient::new(SshSettings {
            address: peer.address().to_owned(),
            port: peer.port(),
            user: peer.user().to_owned(),
            private_key: peer.client_key(),
            known_hosts: peer.known_hosts(),
            accept_new_host_keys: false,
            connect_timeout: Duration::from_secs(10),
        })
        .await
        .expect("client");
        let argv: Vec<Vec<u8>> = ["/usr/bin/tar", "-c", "-v", "-f", "-", "-C"]
            .iter()
            .map(|w| w.as_bytes().to_vec())
            .chain([tree.path().as_os_str().as_bytes().to_vec(), b".".to_vec()])
            .collect();
        let RemoteProcess {
            stdin,
            mut stdout,
            mut stderr,
            exit,
            kill_on_drop,
        } = client.exec(&argv).await.expect("exec tar");
        drop(stdin);

        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), stdout.read_to_end(&mut out))
            .await
            .expect("stdout ended in time: unread stderr must not hold it back")
            .expect("read stdout");
        let mut err = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), stderr.read_to_end(&mut err))
            .await
            .expect("stderr ended in time")
            .expect("read stderr");
        let status = exit.await.expect("exit status");
        drop(kill_on_drop);

        assert_eq!(
            status,
            ExitStatus::Code(0),
            "{}",
            String::from_utf8_lossy(&err)
        );
        assert!(out.len() > 16 << 20, "archive of {} bytes", out.len());
        let names = err.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
        assert_eq!(names, members, "one line per member on stderr");
        assert!(err.windows(4).any(|w| w == b"/big"));
    }

    /// The shell on this machine turns the quoted string back into exactly these words.
    #[test]
    fn sh_reads_back_the_same_words() {
        use std::os::unix::ffi::OsStrExt;
        let words: Vec<Vec<u8>> = vec![
            b"printf".to_vec(),
            b"%s\\0".to_vec(),
            b"a b".to_vec(),
            b"it's".to_vec(),
            b"".to_vec(),
            b"x\ny".to_vec(),
            b"\xff\xfe".to_vec(),
            b"$HOME `id` \\".to_vec(),
        ];
        let output = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(std::ffi::OsStr::from_bytes(&shell_quote(&words)))
            .output()
            .expect("run /bin/sh");
        assert!(output.status.success());
        let expected: Vec<u8> = words[2..]
            .iter()
            .flat_map(|w| w.iter().copied().chain([0]))
            .collect();
        assert_eq!(output.stdout, expected);
    }
}
