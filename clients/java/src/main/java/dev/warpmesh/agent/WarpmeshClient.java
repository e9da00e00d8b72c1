package dev.warpmesh.agent;

import com.google.protobuf.ByteString;
import dev.warpmesh.agent.proto.AgentMessage;
import dev.warpmesh.agent.proto.Broadcast;
import dev.warpmesh.agent.proto.ClientMessage;
import dev.warpmesh.agent.proto.CoordinatorEvent;
import dev.warpmesh.agent.proto.GetPeers;
import dev.warpmesh.agent.proto.GetServers;
import dev.warpmesh.agent.proto.GetStats;
import dev.warpmesh.agent.proto.Goodbye;
import dev.warpmesh.agent.proto.Hello;
import dev.warpmesh.agent.proto.IncomingRequest;
import dev.warpmesh.agent.proto.KickPlayer;
import dev.warpmesh.agent.proto.ListPlayers;
import dev.warpmesh.agent.proto.Locate;
import dev.warpmesh.agent.proto.Message;
import dev.warpmesh.agent.proto.MessagePlayer;
import dev.warpmesh.agent.proto.PeerEvent;
import dev.warpmesh.agent.proto.PlayerEvent;
import dev.warpmesh.agent.proto.PlayerJoin;
import dev.warpmesh.agent.proto.PlayerLeave;
import dev.warpmesh.agent.proto.Publish;
import dev.warpmesh.agent.proto.Reply;
import dev.warpmesh.agent.proto.Request;
import dev.warpmesh.agent.proto.Send;
import dev.warpmesh.agent.proto.ServerEvent;
import dev.warpmesh.agent.proto.ServiceAnswer;
import dev.warpmesh.agent.proto.SetServer;
import dev.warpmesh.agent.proto.SetMeta;
import dev.warpmesh.agent.proto.Subscribe;
import dev.warpmesh.agent.proto.Transfer;
import dev.warpmesh.agent.proto.Undelivered;
import dev.warpmesh.agent.proto.Unsubscribe;
import dev.warpmesh.agent.proto.Welcome;
import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * A member of the warpmesh mesh through a local {@code warpmesh agent}: one connection, one mesh node.
 *
 * <pre>{@code
 * try (WarpmeshClient client = WarpmeshClient.builder()
 *     .id("proxy-1").role("proxy")
 *     .onRequest((from, data) -> "pong".getBytes())
 *     .connect()) {
 *   byte[] answer = client.request("lobby-1", "ping".getBytes()).join();
 * }
 * }</pre>
 *
 * <p>Thread-safe. Blocking methods wait at most the default request timeout (plus a short grace) and
 * throw {@link WarpmeshException}; the {@code ...Async} methods and {@link #request} return futures that
 * complete on the reader thread. Listeners and request handlers run on the reader thread.
 *
 * <p>Reconnect (on by default): when the connection drops, every outstanding operation fails with
 * {@link ErrorCode#CLOSED}, {@link WarpmeshListener#onDisconnected} is called, and the client retries
 * (100 ms, doubling to 2 s, until {@link #close()}), sending Hello again with the same id and role and the
 * current metadata and topics (as last confirmed by the agent). While disconnected, operations fail at
 * once with {@link ErrorCode#CLOSED}.
 */
public final class WarpmeshClient implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger("dev.warpmesh.agent");
  private static final Pattern ID = Pattern.compile(Limits.ID_PATTERN);

  private static final Function<AgentMessage, byte[]> RESPONSE_DATA =
      m -> expect(m, AgentMessage.BodyCase.RESPONSE).getResponse().getData().toByteArray();
  private static final Function<AgentMessage, Integer> RESULT_COUNT =
      m -> expect(m, AgentMessage.BodyCase.RESULT).getResult().getCount();
  private static final Function<AgentMessage, List<PeerInfo>> PEERS =
      m -> Convert.peers(expect(m, AgentMessage.BodyCase.PEERS).getPeers().getPeersList());
  private static final Function<AgentMessage, NodeStats> STATS =
      m -> Convert.stats(expect(m, AgentMessage.BodyCase.STATS).getStats());
  private static final Function<AgentMessage, Player> PLAYER_RESULT =
      m -> {
        dev.warpmesh.agent.proto.PlayerResult r = expect(m, AgentMessage.BodyCase.PLAYER_RESULT).getPlayerResult();
        return r.getFound() ? Convert.player(r.getPlayer()) : null;
      };
  private static final Function<AgentMessage, PlayerList> PLAYER_LIST =
      m -> {
        dev.warpmesh.agent.proto.PlayerList l = expect(m, AgentMessage.BodyCase.PLAYER_LIST).getPlayerList();
        return new PlayerList(l.getCount(), Convert.players(l.getPlayersList()));
      };
  private static final Function<AgentMessage, List<ServerInfo>> SERVER_LIST =
      m -> Convert.servers(expect(m, AgentMessage.BodyCase.SERVER_LIST).getServerList().getServersList());
  private static final Function<AgentMessage, TransferDone> TRANSFER_DONE =
      m -> Convert.transferDone(expect(m, AgentMessage.BodyCase.TRANSFER_DONE).getTransferDone());

  /** One live connection to the agent, after Welcome. */
  private static final class Conn {
    final SocketChannel channel;
    final FrameWriter writer;
    final FrameReader reader;
    final Welcome welcome;
    final int maxFrame;

    Conn(SocketChannel channel, FrameWriter writer, FrameReader reader, Welcome welcome) {
      this.channel = channel;
      this.writer = writer;
      this.reader = reader;
      this.welcome = welcome;
      this.maxFrame = welcome.getMaxFrame() > 0 ? welcome.getMaxFrame() : Limits.MAX_FRAME;
    }
  }

  private final String id;
  private final String role;
  private final AgentAddress address;
  private final String token;
  private final long requestTimeoutMs;
  private final long helloTimeoutMs;
  private final boolean reconnect;
  private final WarpmeshListener listener;
  private final AsyncRequestHandler handler;
  private final boolean services;
  private final boolean playerEvents;
  private final Map<ServiceCall.Kind, AsyncServiceHandler> serviceHandlers;

  private final ReentrantLock writeLock = new ReentrantLock();
  private final AtomicLong nextId = new AtomicLong();
  private final ScheduledExecutorService timer;
  private final PendingOps pending;
  private final ConcurrentHashMap<String, PeerInfo> knownPeers = new ConcurrentHashMap<>();
  private final Set<String> topics = ConcurrentHashMap.newKeySet();
  private volatile Map<String, String> meta;
  /** This server's registry entry as last confirmed by the agent (sent again on reconnect), or null. */
  private volatile ServerSettings server;
  private final Object serverLock = new Object();
  /** Players this client announced (join confirmed, no leave since), by lower-case name: re-announced on reconnect. */
  private final ConcurrentHashMap<String, PlayerJoin> hosted = new ConcurrentHashMap<>();

  private volatile Conn conn; // null while disconnected; written under writeLock
  private volatile SocketChannel connecting; // the channel of a handshake in progress
  private volatile boolean closing;
  private volatile String fatalReason;
  private Thread reader;

  private WarpmeshClient(Builder b) {
    this.id = b.id;
    this.role = b.role;
    this.address = b.address != null ? b.address : AgentAddress.unix(defaultSocketPath());
    this.token = b.token;
    this.requestTimeoutMs = b.requestTimeoutMs;
    this.helloTimeoutMs = b.helloTimeoutMs;
    this.reconnect = b.reconnect;
    this.listener = b.listener != null ? b.listener : new WarpmeshListener() {};
    this.handler = b.handler;
    this.services = b.services;
    this.playerEvents = b.playerEvents;
    this.serviceHandlers = Collections.unmodifiableMap(new EnumMap<>(b.serviceHandlers));
    this.server = b.server;
    this.meta = Map.copyOf(b.meta);
    this.topics.addAll(b.topics);
    ScheduledThreadPoolExecutor t =
        new ScheduledThreadPoolExecutor(
            1,
            r -> {
              Thread th = new Thread(r, "warpmesh-timer-" + b.id);
              th.setDaemon(true);
              return th;
            });
    t.setRemoveOnCancelPolicy(true); // answered operations leave the timer queue at once
    this.timer = t;
    this.pending = new PendingOps(b.maxPending, timer);
  }

  /** A builder; {@link Builder#id} is required. */
  public static Builder builder() {
    return new Builder();
  }

  /** The Unix socket path from {@code WARPMESH_AGENT_SOCKET}, default /tmp/warpmesh-agent.sock. */
  public static Path defaultSocketPath() {
    String env = System.getenv("WARPMESH_AGENT_SOCKET");
    return Path.of(env != null && !env.isEmpty() ? env : "/tmp/warpmesh-agent.sock");
  }

  // ------------------------------------------------------------------ connection

  private void start() {
    Conn c;
    try {
      c = handshake();
    } catch (IOException e) {
      timer.shutdownNow();
      throw new WarpmeshException(ErrorCode.CLOSED, "cannot reach the agent at " + address + ": " + e.getMessage(), e);
    } catch (RuntimeException e) {
      timer.shutdownNow();
      throw e;
    }
    install(c);
    reader = new Thread(() -> runReader(c), "warpmesh-reader-" + id);
    reader.setDaemon(true);
    reader.start();
  }

  private ClientMessage hello() {
    Hello.Builder h =
        Hello.newBuilder()
            .setProtocolVersion(Limits.PROTOCOL_VERSION)
            .setId(id)
            .setRole(role)
            .putAllMeta(meta)
            .addAllTopics(new ArrayList<>(topics))
            .setClient(Limits.CLIENT_NAME);
    if (token != null) h.setToken(token);
    if (services) {
      h.setServices(true).setPlayerEvents(playerEvents);
      ServerSettings s = server;
      if (s != null) h.setServer(s.toProto());
      for (ServiceCall.Kind k : serviceHandlers.keySet()) h.addHandlesValue(k.number());
    }
    return ClientMessage.newBuilder().setHello(h).build();
  }

  /** Connects, sends Hello and waits for Welcome (or a refusal, thrown with its code). */
  private Conn handshake() throws IOException {
    SocketChannel ch = address.open();
    connecting = ch;
    AtomicBoolean timedOut = new AtomicBoolean();
    ScheduledFuture<?> guard =
        timer.schedule(
            () -> {
              timedOut.set(true);
              closeQuietly(ch);
            },
            helloTimeoutMs,
            TimeUnit.MILLISECONDS);
    try {
      FrameWriter w = new FrameWriter(ch);
      FrameReader r = new FrameReader(ch, Limits.MAX_FRAME);
      w.write(hello());
      w.flush();
      AgentMessage m;
      try {
        m = r.read();
      } catch (IOException e) {
        if (timedOut.get()) {
          throw new WarpmeshException(ErrorCode.TIMEOUT, "no Welcome from the agent within " + helloTimeoutMs + " ms");
        }
        throw e;
      }
      if (m == null) throw new IOException("the agent closed the connection before Welcome");
      switch (m.getBodyCase()) {
        case WELCOME:
          return new Conn(ch, w, r, m.getWelcome());
        case ERROR:
          throw Convert.error(m.getError());
        default:
          throw new ProtocolViolation("expected Welcome from the agent, got " + m.getBodyCase(), null);
      }
    } catch (IOException | RuntimeException e) {
      closeQuietly(ch);
      throw e;
    } finally {
      guard.cancel(false);
      connecting = null;
    }
  }

  private void install(Conn c) {
    knownPeers.clear();
    for (PeerInfo p : Convert.peers(c.welcome.getPeersList())) rememberPeer(p);
    fatalReason = null;
    writeLock.lock();
    try {
      conn = c;
    } finally {
      writeLock.unlock();
    }
  }

  private void runReader(Conn first) {
    Conn c = first;
    while (c != null) {
      String reason = readUntilDrop(c);
      drop(c, reason);
      if (closing || !reconnect) return;
      c = reconnectLoop();
      if (c == null) return;
      install(c);
      if (closing) {
        drop(c, "client closed");
        return;
      }
      reannounce();
      safely(listener::onReconnected);
    }
  }

  private String readUntilDrop(Conn c) {
    try {
      while (true) {
        AgentMessage m = c.reader.read();
        if (m == null) {
          String fatal = fatalReason;
          return fatal != null ? "the agent closed the connection after " + fatal : "the agent closed the connection";
        }
        if (!dispatch(m)) return "the agent said goodbye: " + m.getGoodbye().getReason();
      }
    } catch (ProtocolViolation e) {
      return "protocol error: " + e.getMessage();
    } catch (IOException e) {
      return closing ? "client closed" : "connection lost: " + e;
    }
  }

  /**
   * The new node knows none of this server's players: announce them again (id 0: a failure reaches
   * {@link WarpmeshListener#onError}).
   */
  private void reannounce() {
    for (PlayerJoin j : hosted.values()) {
      try {
        write(ClientMessage.newBuilder().setPlayerJoin(j.toBuilder().setId(0)).build(), false);
      } catch (WarpmeshException e) {
        LOG.log(System.Logger.Level.DEBUG, "warpmesh client {0}: re-announcing {1} failed: {2}", id, j.getName(), e.getMessage());
        return;
      }
    }
    try {
      flush();
    } catch (WarpmeshException e) {
      // dropped again: the reader notices
    }
  }

  private void drop(Conn c, String reason) {
    closeQuietly(c.channel);
    writeLock.lock();
    try {
      if (conn == c) conn = null;
    } finally {
      writeLock.unlock();
    }
    pending.failAll(ErrorCode.CLOSED, "the connection to the agent dropped: " + reason);
    if (!closing) {
      LOG.log(System.Logger.Level.DEBUG, "warpmesh client {0} disconnected: {1}", id, reason);
      safely(() -> listener.onDisconnected(reason));
    }
  }

  private Conn reconnectLoop() {
    long delay = Backoff.first();
    while (!closing) {
      try {
        Thread.sleep(delay);
      } catch (InterruptedException e) {
        return null;
      }
      if (closing) return null;
      try {
        return handshake();
      } catch (IOException | WarpmeshException e) {
        LOG.log(System.Logger.Level.DEBUG, "warpmesh client {0}: reconnect failed: {1}", id, e.getMessage());
      } catch (RejectedExecutionException e) {
        return null; // close() stopped the timer
      }
      delay = Backoff.next(delay);
    }
    return null;
  }

  // ------------------------------------------------------------------ incoming

  /** Handles one message from the agent; false when it said Goodbye. */
  private boolean dispatch(AgentMessage m) {
    switch (m.getBodyCase()) {
      case MESSAGE:
        Message msg = m.getMessage();
        MeshMessage mm =
            new MeshMessage(
                msg.getFrom(),
                msg.getData().toByteArray(),
                msg.getChannel(),
                Delivery.fromNumber(msg.getDeliveryValue()),
                msg.getTopic());
        safely(() -> listener.onMessage(mm));
        break;
      case INCOMING_REQUEST:
        handleIncoming(m.getIncomingRequest());
        break;
      case RESPONSE:
        pending.complete(m.getResponse().getId(), m);
        break;
      case RESULT:
        pending.complete(m.getResult().getId(), m);
        break;
      case PEERS:
        pending.complete(m.getPeers().getId(), m);
        break;
      case STATS:
        pending.complete(m.getStats().getId(), m);
        break;
      case PLAYER_RESULT:
        pending.complete(m.getPlayerResult().getId(), m);
        break;
      case PLAYER_LIST:
        pending.complete(m.getPlayerList().getId(), m);
        break;
      case SERVER_LIST:
        pending.complete(m.getServerList().getId(), m);
        break;
      case TRANSFER_DONE:
        pending.complete(m.getTransferDone().getId(), m);
        break;
      case SERVICE_CALL:
        handleServiceCall(m.getServiceCall());
        break;
      case PLAYER_EVENT:
        handlePlayerEvent(m.getPlayerEvent());
        break;
      case SERVER_EVENT:
        ServerEvent se = m.getServerEvent();
        if (se.getRemoved()) {
          String sid = se.getInfo().getId();
          safely(() -> listener.onServerRemoved(sid));
        } else {
          ServerInfo info = Convert.server(se.getInfo());
          safely(() -> listener.onServerUpdated(info));
        }
        break;
      case ERROR:
        dev.warpmesh.agent.proto.Error e = m.getError();
        WarpmeshException ex = Convert.error(e);
        if (e.getFatal()) fatalReason = ex.getMessage();
        if (e.getId() == 0 || !pending.fail(e.getId(), ex)) safely(() -> listener.onError(ex));
        break;
      case PEER_EVENT:
        handlePeerEvent(m.getPeerEvent());
        break;
      case COORDINATOR_EVENT:
        CoordinatorEvent ce = m.getCoordinatorEvent();
        safely(() -> listener.onCoordinator(ce.getUp(), ce.getAddress()));
        break;
      case UNDELIVERED:
        Undelivered u = m.getUndelivered();
        safely(() -> listener.onUndelivered(u.getPeer(), u.getCount(), u.getReason()));
        break;
      case GOODBYE:
        return false;
      default:
        // A second Welcome, or a message type newer than this client: nothing to do.
        break;
    }
    return true;
  }

  private void handlePeerEvent(PeerEvent ev) {
    PeerInfo p = Convert.peer(ev.getPeer());
    switch (ev.getKind()) {
      case UP:
        rememberPeer(p);
        safely(() -> listener.onPeerUp(p));
        break;
      case DOWN:
        knownPeers.remove(p.id());
        safely(() -> listener.onPeerDown(p, ev.getReason()));
        break;
      case UPDATED:
        rememberPeer(p);
        safely(() -> listener.onPeerUpdated(p));
        break;
      default:
        break;
    }
  }

  private void handlePlayerEvent(PlayerEvent ev) {
    Player p = Convert.player(ev.getPlayer());
    switch (ev.getKind()) {
      case JOINED:
        safely(() -> listener.onPlayerJoined(p));
        break;
      case LEFT:
        safely(() -> listener.onPlayerLeft(p));
        break;
      case MOVED:
        safely(() -> listener.onPlayerMoved(p, ev.getFrom()));
        break;
      default:
        break;
    }
  }

  private void handleServiceCall(dev.warpmesh.agent.proto.ServiceCall c) {
    long cid = c.getId();
    Conn from = conn;
    ServiceCall call = Convert.serviceCall(c);
    AsyncServiceHandler h = call == null ? null : serviceHandlers.get(call.kind());
    if (h == null) {
      sendServiceAnswer(from, cid, "not handled by " + id);
      return;
    }
    CompletionStage<String> stage;
    try {
      stage = h.handle(call);
    } catch (Throwable t) {
      sendServiceAnswer(from, cid, errorText(t));
      return;
    }
    if (stage == null) {
      sendServiceAnswer(from, cid, null);
      return;
    }
    stage.whenComplete((reason, t) -> sendServiceAnswer(from, cid, t != null ? errorText(t) : reason));
  }

  /** Answers a ServiceCall: {@code refusal} null = ok. */
  private void sendServiceAnswer(Conn from, long cid, String refusal) {
    if (conn != from) return; // the call died with its connection
    ServiceAnswer.Builder a = ServiceAnswer.newBuilder().setId(cid).setOk(refusal == null);
    if (refusal != null) {
      a.setReason(refusal.length() > Limits.MAX_REPLY_ERROR_CHARS ? refusal.substring(0, Limits.MAX_REPLY_ERROR_CHARS) : refusal);
    }
    try {
      write(ClientMessage.newBuilder().setServiceAnswer(a).build(), true);
    } catch (WarpmeshException e) {
      LOG.log(System.Logger.Level.DEBUG, "warpmesh client {0}: service answer {1} not sent: {2}", id, cid, e.getMessage());
    }
  }

  private void rememberPeer(PeerInfo p) {
    if (knownPeers.size() < Limits.MAX_KNOWN_PEERS || knownPeers.containsKey(p.id())) {
      knownPeers.put(p.id(), p);
    }
  }

  private void handleIncoming(IncomingRequest r) {
    long rid = r.getId();
    Conn from = conn;
    AsyncRequestHandler h = handler;
    if (h == null) {
      sendReply(from, rid, null, "no request handler on " + id);
      return;
    }
    CompletionStage<byte[]> stage;
    try {
      stage = h.handle(r.getFrom(), r.getData().toByteArray());
    } catch (Throwable t) {
      sendReply(from, rid, null, errorText(t));
      return;
    }
    if (stage == null) {
      sendReply(from, rid, new byte[0], null);
      return;
    }
    stage.whenComplete(
        (data, t) -> {
          if (t != null) sendReply(from, rid, null, errorText(t));
          else sendReply(from, rid, data, null);
        });
  }

  private static String errorText(Throwable t) {
    Throwable cause = t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
    String text = cause.getMessage();
    if (text == null || text.isEmpty()) text = cause.getClass().getName();
    return text.length() > Limits.MAX_REPLY_ERROR_CHARS ? text.substring(0, Limits.MAX_REPLY_ERROR_CHARS) : text;
  }

  private void sendReply(Conn from, long rid, byte[] data, String error) {
    if (conn != from) return; // the request died with its connection
    Reply.Builder rb = Reply.newBuilder().setId(rid);
    if (error != null) rb.setError(error);
    else if (data != null) rb.setData(ByteString.copyFrom(data));
    try {
      write(ClientMessage.newBuilder().setReply(rb).build(), true);
    } catch (WarpmeshException e) {
      if (e.code() == ErrorCode.TOO_LARGE) {
        sendReply(from, rid, null, "reply too large: " + e.detail());
      } else {
        LOG.log(System.Logger.Level.DEBUG, "warpmesh client {0}: reply {1} not sent: {2}", id, rid, e.getMessage());
      }
    }
  }

  private void safely(Runnable r) {
    try {
      r.run();
    } catch (Throwable t) {
      LOG.log(System.Logger.Level.WARNING, "warpmesh client " + id + ": listener failed", t);
    }
  }

  // ------------------------------------------------------------------ outgoing

  /** Writes one frame; throws CLOSED when not connected, TOO_LARGE above the agent's maximum. */
  private void write(ClientMessage m, boolean flush) {
    writeLock.lock();
    try {
      Conn c = conn;
      if (c == null) throw notConnected();
      if (m.getSerializedSize() > c.maxFrame) {
        throw new WarpmeshException(
            ErrorCode.TOO_LARGE,
            "message of " + m.getSerializedSize() + " bytes, above the agent's maximum frame " + c.maxFrame);
      }
      try {
        c.writer.write(m);
        if (flush) c.writer.flush();
      } catch (IOException e) {
        closeQuietly(c.channel); // the reader thread notices and runs the disconnect
        throw new WarpmeshException(ErrorCode.CLOSED, "the connection to the agent dropped: " + e, e);
      }
    } finally {
      writeLock.unlock();
    }
  }

  private WarpmeshException notConnected() {
    return new WarpmeshException(
        ErrorCode.CLOSED, closing ? "the client is closed" : "not connected to the agent (reconnecting)");
  }

  private CompletableFuture<AgentMessage> call(long opId, ClientMessage m, long timeoutMs, String what) {
    if (conn == null) return CompletableFuture.failedFuture(notConnected());
    CompletableFuture<AgentMessage> f;
    try {
      f = pending.register(opId, timeoutMs + Limits.LOCAL_TIMEOUT_GRACE_MS, what);
    } catch (WarpmeshException e) {
      return CompletableFuture.failedFuture(e);
    }
    try {
      write(m, true);
    } catch (WarpmeshException e) {
      pending.fail(opId, e);
    }
    return f;
  }

  private long newId() {
    return nextId.incrementAndGet();
  }

  private static AgentMessage expect(AgentMessage m, AgentMessage.BodyCase kind) {
    if (m.getBodyCase() != kind) {
      throw new WarpmeshException(ErrorCode.INTERNAL, "the agent answered " + m.getBodyCase() + " where " + kind + " was expected");
    }
    return m;
  }

  private static <T> T await(CompletableFuture<T> f) {
    try {
      return f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new WarpmeshException(ErrorCode.INTERRUPTED, "interrupted while waiting for the agent", e);
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof WarpmeshException) {
        WarpmeshException w = (WarpmeshException) c;
        // A new exception, so the stack trace shows the caller.
        throw new WarpmeshException(w.code(), w.detail(), w.fatal(), w);
      }
      throw new WarpmeshException(ErrorCode.INTERNAL, String.valueOf(c), c);
    }
  }

  private static void checkChannel(int channel) {
    if (channel < 0 || channel > Limits.MAX_CHANNEL) {
      throw new IllegalArgumentException("channel must be 0.." + Limits.MAX_CHANNEL + ", got " + channel);
    }
  }

  private static ByteString bytes(byte[] data) {
    return data == null || data.length == 0 ? ByteString.EMPTY : ByteString.copyFrom(data);
  }

  private static ClientMessage sendMessage(long opId, String to, byte[] data, int channel, Delivery delivery) {
    checkChannel(channel);
    return ClientMessage.newBuilder()
        .setSend(
            Send.newBuilder()
                .setId(opId)
                .setTo(Objects.requireNonNull(to, "to"))
                .setData(bytes(data))
                .setChannel(channel)
                .setDelivery(Convert.delivery(Objects.requireNonNull(delivery, "delivery"))))
        .build();
  }

  /**
   * Sends {@code data} to peer {@code to} on channel 0, reliable ordered, without waiting for an answer.
   * A failure at the agent (unknown peer...) reaches {@link WarpmeshListener#onError}.
   *
   * @throws WarpmeshException CLOSED when not connected, TOO_LARGE above the maximum frame
   */
  public void send(String to, byte[] data) {
    send(to, data, 0, Delivery.DEFAULT);
  }

  /** As {@link #send(String, byte[])}, on {@code channel} (0..15) with {@code delivery}. */
  public void send(String to, byte[] data, int channel, Delivery delivery) {
    write(sendMessage(0, to, data, channel, delivery), true);
  }

  /**
   * As {@link #send(String, byte[], int, Delivery)} but leaves the frame in the write buffer (written
   * when the buffer fills, at the next flushing call, or at {@link #flush()}): for bursts.
   */
  public void sendBuffered(String to, byte[] data, int channel, Delivery delivery) {
    write(sendMessage(0, to, data, channel, delivery), false);
  }

  /** Writes out frames left in the buffer by {@link #sendBuffered}. */
  public void flush() {
    writeLock.lock();
    try {
      Conn c = conn;
      if (c == null) throw notConnected();
      try {
        c.writer.flush();
      } catch (IOException e) {
        closeQuietly(c.channel);
        throw new WarpmeshException(ErrorCode.CLOSED, "the connection to the agent dropped: " + e, e);
      }
    } finally {
      writeLock.unlock();
    }
  }

  /** Sends and completes when the agent's node accepted the message (or fails: UNKNOWN_PEER...). */
  public CompletableFuture<Void> sendAsync(String to, byte[] data, int channel, Delivery delivery) {
    long opId = newId();
    return call(opId, sendMessage(opId, to, data, channel, delivery), requestTimeoutMs, "send")
        .thenApply(m -> null);
  }

  /** Blocking {@link #sendAsync}: returns once the agent's node accepted the message. */
  public void sendChecked(String to, byte[] data) {
    await(sendAsync(to, data, 0, Delivery.DEFAULT));
  }

  /** Requests with the default timeout: see {@link #request(String, byte[], Duration)}. */
  public CompletableFuture<byte[]> request(String to, byte[] data) {
    return request(to, data, Duration.ofMillis(requestTimeoutMs));
  }

  /**
   * Sends a request to peer {@code to}; the future completes with the reply bytes, or exceptionally
   * with a {@link WarpmeshException}: TIMEOUT, UNKNOWN_PEER, PEER_DOWN, OVERLOADED, REMOTE_ERROR (the
   * peer's handler failed), CLOSED (the connection dropped or the client closed).
   */
  public CompletableFuture<byte[]> request(String to, byte[] data, Duration timeout) {
    long ms = timeout.toMillis();
    if (ms < 1 || ms > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("timeout must be 1 ms .. 2^31-1 ms, got " + timeout);
    }
    long opId = newId();
    ClientMessage m =
        ClientMessage.newBuilder()
            .setRequest(
                Request.newBuilder()
                    .setId(opId)
                    .setTo(Objects.requireNonNull(to, "to"))
                    .setData(bytes(data))
                    .setTimeoutMs((int) ms))
            .build();
    return call(opId, m, ms, "request to " + to).thenApply(RESPONSE_DATA);
  }

  /** Broadcasts to every peer matching {@code role} and {@code tag} (null or "" = any); returns the count. */
  public int broadcast(String role, String tag, byte[] data) {
    return await(broadcastAsync(role, tag, data, 0, Delivery.DEFAULT));
  }

  /** Asynchronous broadcast; completes with the number of peers it went to. */
  public CompletableFuture<Integer> broadcastAsync(
      String role, String tag, byte[] data, int channel, Delivery delivery) {
    checkChannel(channel);
    long opId = newId();
    ClientMessage m =
        ClientMessage.newBuilder()
            .setBroadcast(
                Broadcast.newBuilder()
                    .setId(opId)
                    .setRole(role == null ? "" : role)
                    .setTag(tag == null ? "" : tag)
                    .setData(bytes(data))
                    .setChannel(channel)
                    .setDelivery(Convert.delivery(delivery)))
            .build();
    return call(opId, m, requestTimeoutMs, "broadcast").thenApply(RESULT_COUNT);
  }

  /** Publishes to every subscriber of {@code topic}; returns the count. */
  public int publish(String topic, byte[] data) {
    return await(publishAsync(topic, data, 0, Delivery.DEFAULT));
  }

  /** Asynchronous publish; completes with the number of subscribers it went to. */
  public CompletableFuture<Integer> publishAsync(String topic, byte[] data, int channel, Delivery delivery) {
    checkChannel(channel);
    long opId = newId();
    ClientMessage m =
        ClientMessage.newBuilder()
            .setPublish(
                Publish.newBuilder()
                    .setId(opId)
                    .setTopic(Objects.requireNonNull(topic, "topic"))
                    .setData(bytes(data))
                    .setChannel(channel)
                    .setDelivery(Convert.delivery(delivery)))
            .build();
    return call(opId, m, requestTimeoutMs, "publish").thenApply(RESULT_COUNT);
  }

  /** Subscribes to {@code topic} (kept across reconnects). */
  public void subscribe(String topic) {
    await(subscribeAsync(topic));
  }

  /** Asynchronous {@link #subscribe}. */
  public CompletableFuture<Void> subscribeAsync(String topic) {
    long opId = newId();
    ClientMessage m =
        ClientMessage.newBuilder()
            .setSubscribe(Subscribe.newBuilder().setId(opId).setTopic(Objects.requireNonNull(topic, "topic")))
            .build();
    return call(opId, m, requestTimeoutMs, "subscribe")
        .thenApply(
            a -> {
              expect(a, AgentMessage.BodyCase.RESULT);
              topics.add(topic);
              return null;
            });
  }

  /** Unsubscribes from {@code topic}. */
  public void unsubscribe(String topic) {
    await(unsubscribeAsync(topic));
  }

  /** Asynchronous {@link #unsubscribe}. */
  public CompletableFuture<Void> unsubscribeAsync(String topic) {
    long opId = newId();
    ClientMessage m =
        ClientMessage.newBuilder()
            .setUnsubscribe(Unsubscribe.newBuilder().setId(opId).setTopic(Objects.requireNonNull(topic, "topic")))
            .build();
    return call(opId, m, requestTimeoutMs, "unsubscribe")
        .thenApply(
            a -> {
              expect(a, AgentMessage.BodyCase.RESULT);
              topics.remove(topic);
              return null;
            });
  }

  /** Replaces this node's metadata everywhere (kept across reconnects). */
  public void setMeta(Map<String, String> newMeta) {
    await(setMetaAsync(newMeta));
  }

  /** Asynchronous {@link #setMeta}. */
  public CompletableFuture<Void> setMetaAsync(Map<String, String> newMeta) {
    Map<String, String> copy = checkMeta(newMeta);
    long opId = newId();
    ClientMessage m =
        ClientMessage.newBuilder().setSetMeta(SetMeta.newBuilder().setId(opId).putAllMeta(copy)).build();
    return call(opId, m, requestTimeoutMs, "setMeta")
        .thenApply(
            a -> {
              expect(a, AgentMessage.BodyCase.RESULT);
              meta = copy;
              return null;
            });
  }

  /** The agent's current peer table. */
  public List<PeerInfo> peers() {
    return await(peersAsync());
  }

  /** Asynchronous {@link #peers}. */
  public CompletableFuture<List<PeerInfo>> peersAsync() {
    long opId = newId();
    ClientMessage m = ClientMessage.newBuilder().setGetPeers(GetPeers.newBuilder().setId(opId)).build();
    return call(opId, m, requestTimeoutMs, "peers").thenApply(PEERS);
  }

  /** This node's counters. */
  public NodeStats stats() {
    return await(statsAsync());
  }

  /** Asynchronous {@link #stats}. */
  public CompletableFuture<NodeStats> statsAsync() {
    long opId = newId();
    ClientMessage m = ClientMessage.newBuilder().setGetStats(GetStats.newBuilder().setId(opId)).build();
    return call(opId, m, requestTimeoutMs, "stats").thenApply(STATS);
  }

  // ------------------------------------------------------------------ network services

  private CompletableFuture<AgentMessage> serviceCall(long opId, ClientMessage m, long timeoutMs, String what) {
    if (!services) {
      return CompletableFuture.failedFuture(
          new WarpmeshException(ErrorCode.SERVICES_OFF, what + ": this client was built without services(true)"));
    }
    return call(opId, m, timeoutMs, what);
  }

  private static String checkPlayer(String player) {
    if (player == null || player.isEmpty()) throw new IllegalArgumentException("player must be a name or an XUID, got \"" + player + "\"");
    return player;
  }

  private static int timeoutMs(Duration timeout) {
    long ms = timeout.toMillis();
    if (ms < 1 || ms > Integer.MAX_VALUE) throw new IllegalArgumentException("timeout must be 1 ms .. 2^31-1 ms, got " + timeout);
    return (int) ms;
  }

  /** This server now hosts player {@code name} (XUID "" when unknown, connected through no proxy). */
  public void join(String name, String xuid) {
    await(joinAsync(name, xuid, "", Map.of()));
  }

  /**
   * This server now hosts the player: every node's directory lists them here (replacing this server's
   * own entry of that name). Kept across reconnects: the client announces its players again to the new
   * node.
   *
   * @param name the player's name
   * @param xuid XUID (digits), "" when unknown
   * @param proxy node id of the proxy the player is connected through, "" when none
   * @param fields free fields (at most 8 pairs)
   */
  public void join(String name, String xuid, String proxy, Map<String, String> fields) {
    await(joinAsync(name, xuid, proxy, fields));
  }

  /** Asynchronous {@link #join(String, String, String, Map)}. */
  public CompletableFuture<Void> joinAsync(String name, String xuid, String proxy, Map<String, String> fields) {
    PlayerJoin.Builder j =
        PlayerJoin.newBuilder()
            .setName(checkPlayer(name))
            .setXuid(Objects.requireNonNull(xuid, "xuid"))
            .setProxy(Objects.requireNonNull(proxy, "proxy"))
            .putAllFields(Objects.requireNonNull(fields, "fields"));
    long opId = newId();
    PlayerJoin announced = j.build();
    ClientMessage m = ClientMessage.newBuilder().setPlayerJoin(j.setId(opId)).build();
    return serviceCall(opId, m, requestTimeoutMs, "join")
        .thenApply(
            a -> {
              expect(a, AgentMessage.BodyCase.RESULT);
              String key = name.toLowerCase(Locale.ROOT);
              if (hosted.size() < Limits.MAX_HOSTED_PLAYERS || hosted.containsKey(key)) hosted.put(key, announced);
              return null;
            });
  }

  /** This server no longer hosts the player (name in any case, or XUID); false when it did not. */
  public boolean leave(String player) {
    return await(leaveAsync(player));
  }

  /** Asynchronous {@link #leave}. */
  public CompletableFuture<Boolean> leaveAsync(String player) {
    long opId = newId();
    ClientMessage m =
        ClientMessage.newBuilder().setPlayerLeave(PlayerLeave.newBuilder().setId(opId).setPlayer(checkPlayer(player))).build();
    return serviceCall(opId, m, requestTimeoutMs, "leave")
        .thenApply(
            a -> {
              int n = expect(a, AgentMessage.BodyCase.RESULT).getResult().getCount();
              String key = player.toLowerCase(Locale.ROOT);
              if (hosted.remove(key) == null) hosted.values().removeIf(j -> j.getXuid().equals(player));
              return n > 0;
            });
  }

  /** The players this client announced and has not left (what it announces again after a reconnect). */
  public List<String> hostedPlayers() {
    List<String> names = new ArrayList<>();
    for (PlayerJoin j : hosted.values()) names.add(j.getName());
    return names;
  }

  /**
   * Updates this server's registry entry (lists it when it is not yet listed); fields left unset keep
   * their value. Kept across reconnects.
   */
  public void setServer(ServerSettings settings) {
    await(setServerAsync(settings));
  }

  /** Asynchronous {@link #setServer}. */
  public CompletableFuture<Void> setServerAsync(ServerSettings settings) {
    Objects.requireNonNull(settings, "settings");
    long opId = newId();
    ClientMessage m =
        ClientMessage.newBuilder().setSetServer(SetServer.newBuilder().setId(opId).setServer(settings.toProto())).build();
    return serviceCall(opId, m, requestTimeoutMs, "setServer")
        .thenApply(
            a -> {
              expect(a, AgentMessage.BodyCase.RESULT);
              synchronized (serverLock) {
                ServerSettings s = server;
                server = s == null ? settings : s.merge(settings);
              }
              return null;
            });
  }

  /** This server's registry settings as last confirmed by the agent, or null when it is not listed. */
  public ServerSettings serverSettings() {
    return server;
  }

  /** Where a player is (name in any case, or XUID), or null when no server lists them. No mesh round trip. */
  public Player locate(String player) {
    return await(locateAsync(player));
  }

  /** Asynchronous {@link #locate}. */
  public CompletableFuture<Player> locateAsync(String player) {
    long opId = newId();
    ClientMessage m = ClientMessage.newBuilder().setLocate(Locate.newBuilder().setId(opId).setPlayer(checkPlayer(player))).build();
    return serviceCall(opId, m, requestTimeoutMs, "locate").thenApply(PLAYER_RESULT);
  }

  /**
   * Players in the network: {@code count} of all matching, {@code players} at most {@code limit} of them.
   *
   * @param mode only players on servers of this mode (null or "" = any)
   * @param server only players on this server (null or "" = any)
   * @param limit at most this many players in the list (0 = all)
   */
  public PlayerList listPlayers(String mode, String server, int limit) {
    return await(listPlayersAsync(mode, server, limit));
  }

  /** Asynchronous {@link #listPlayers}. */
  public CompletableFuture<PlayerList> listPlayersAsync(String mode, String server, int limit) {
    if (limit < 0) throw new IllegalArgumentException("limit must be 0 (all) or more, got " + limit);
    long opId = newId();
    ClientMessage m =
        ClientMessage.newBuilder()
            .setListPlayers(
                ListPlayers.newBuilder()
                    .setId(opId)
                    .setMode(mode == null ? "" : mode)
                    .setServer(server == null ? "" : server)
                    .setLimit(limit))
            .build();
    return serviceCall(opId, m, requestTimeoutMs, "listPlayers").thenApply(PLAYER_LIST);
  }

  /**
   * Servers in the registry matching every given filter.
   *
   * @param mode null or "" = any
   * @param states any of these states (null or empty = any)
   * @param tag null or "" = any
   */
  public List<ServerInfo> servers(String mode, List<String> states, String tag) {
    return await(serversAsync(mode, states, tag));
  }

  /** Asynchronous {@link #servers}. */
  public CompletableFuture<List<ServerInfo>> serversAsync(String mode, List<String> states, String tag) {
    long opId = newId();
    GetServers.Builder g = GetServers.newBuilder().setId(opId).setMode(mode == null ? "" : mode).setTag(tag == null ? "" : tag);
    if (states != null) g.addAllStates(states);
    ClientMessage m = ClientMessage.newBuilder().setGetServers(g).build();
    return serviceCall(opId, m, requestTimeoutMs, "servers").thenApply(SERVER_LIST);
  }

  /** Transfers a player to server {@code server}, with the default timeout. */
  public TransferDone transfer(String player, String server) {
    return await(transferAsync(player, server, Duration.ofMillis(requestTimeoutMs)));
  }

  /** Transfers a player to server {@code server} within {@code timeout}. */
  public TransferDone transfer(String player, String server, Duration timeout) {
    return await(transferAsync(player, server, timeout));
  }

  /** Transfers a player to the server {@code selector} picks, within {@code timeout}. */
  public TransferDone transfer(String player, ServerSelector selector, Duration timeout) {
    return await(transferAsync(player, selector, timeout));
  }

  /**
   * Asks the target whether it accepts the player (state, capacity, its hook), then the player's proxy
   * to move them. Completes with where they went, or exceptionally with a {@link WarpmeshException}:
   * UNKNOWN_PLAYER, NO_SUCH_SERVER, SERVER_FULL, REFUSED (the message is the reason), TARGET_DOWN,
   * TRANSFER_CONFLICT (another transfer of the player is in progress), TIMEOUT, PEER_DOWN (the player's
   * proxy went down), CLOSED.
   */
  public CompletableFuture<TransferDone> transferAsync(String player, String server, Duration timeout) {
    if (server == null || server.isEmpty()) throw new IllegalArgumentException("server must be a node id, got \"" + server + "\"");
    return transferAsync(Transfer.newBuilder().setPlayer(checkPlayer(player)).setServer(server), timeout);
  }

  /** As {@link #transferAsync(String, String, Duration)}, to the server {@code selector} picks. */
  public CompletableFuture<TransferDone> transferAsync(String player, ServerSelector selector, Duration timeout) {
    Objects.requireNonNull(selector, "selector");
    return transferAsync(Transfer.newBuilder().setPlayer(checkPlayer(player)).setSelector(selector.toProto()), timeout);
  }

  private CompletableFuture<TransferDone> transferAsync(Transfer.Builder t, Duration timeout) {
    int ms = timeoutMs(timeout);
    long opId = newId();
    ClientMessage m = ClientMessage.newBuilder().setTransfer(t.setId(opId).setTimeoutMs(ms)).build();
    return serviceCall(opId, m, ms, "transfer of " + t.getPlayer()).thenApply(TRANSFER_DONE);
  }

  /**
   * Shows {@code text} to a player wherever they are (through their proxy's handler). Throws
   * UNKNOWN_PLAYER, REFUSED, TIMEOUT, PEER_DOWN...
   */
  public void message(String player, String text) {
    await(messageAsync(player, text, Duration.ofMillis(requestTimeoutMs)));
  }

  /** Asynchronous {@link #message}. */
  public CompletableFuture<Void> messageAsync(String player, String text, Duration timeout) {
    int ms = timeoutMs(timeout);
    long opId = newId();
    ClientMessage m =
        ClientMessage.newBuilder()
            .setMessagePlayer(
                MessagePlayer.newBuilder()
                    .setId(opId)
                    .setPlayer(checkPlayer(player))
                    .setText(Objects.requireNonNull(text, "text"))
                    .setTimeoutMs(ms))
            .build();
    return serviceCall(opId, m, ms, "message to " + player).thenApply(a -> null);
  }

  /** Disconnects a player wherever they are, with {@code reason}. Throws as {@link #message}. */
  public void kick(String player, String reason) {
    await(kickAsync(player, reason, Duration.ofMillis(requestTimeoutMs)));
  }

  /** Asynchronous {@link #kick}. */
  public CompletableFuture<Void> kickAsync(String player, String reason, Duration timeout) {
    int ms = timeoutMs(timeout);
    long opId = newId();
    ClientMessage m =
        ClientMessage.newBuilder()
            .setKickPlayer(
                KickPlayer.newBuilder()
                    .setId(opId)
                    .setPlayer(checkPlayer(player))
                    .setReason(Objects.requireNonNull(reason, "reason"))
                    .setTimeoutMs(ms))
            .build();
    return serviceCall(opId, m, ms, "kick of " + player).thenApply(a -> null);
  }

  // ------------------------------------------------------------------ state

  /** This node's id. */
  public String id() {
    return id;
  }

  /** True while connected and welcomed. */
  public boolean isConnected() {
    return conn != null;
  }

  /** The peer table as of the last Welcome plus the peer events since (no round trip). */
  public List<PeerInfo> knownPeers() {
    return List.copyOf(knownPeers.values());
  }

  /** A peer of {@link #knownPeers()}, or null. */
  public PeerInfo knownPeer(String peerId) {
    return knownPeers.get(peerId);
  }

  /** The metadata as last confirmed by the agent (sent again on reconnect). */
  public Map<String, String> meta() {
    return meta;
  }

  /** The topics as last confirmed by the agent (sent again on reconnect). */
  public Set<String> topics() {
    return Collections.unmodifiableSet(new LinkedHashSet<>(topics));
  }

  /** The UDP port of this client's mesh node (from the last Welcome), or 0 while disconnected. */
  public int udpPort() {
    Conn c = conn;
    return c == null ? 0 : c.welcome.getUdpPort();
  }

  /** The agent's version (from the last Welcome), or "" while disconnected. */
  public String agentVersion() {
    Conn c = conn;
    return c == null ? "" : c.welcome.getAgentVersion();
  }

  /** Operations waiting for the agent's answer. */
  public int pendingCount() {
    return pending.size();
  }

  /**
   * Leaves the mesh: sends Goodbye, waits up to 1 s for the agent's Goodbye, closes the connection and
   * fails outstanding operations with {@link ErrorCode#CLOSED}. Idempotent.
   */
  @Override
  public void close() {
    if (closing) return;
    closing = true;
    sendGoodbye();
    Thread t = reader;
    if (t != null && t != Thread.currentThread()) {
      try {
        t.join(Limits.CLOSE_WAIT_MS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    Conn c = conn;
    if (c != null) closeQuietly(c.channel);
    SocketChannel h = connecting;
    if (h != null) closeQuietly(h);
    if (t != null && t != Thread.currentThread()) {
      t.interrupt();
      try {
        t.join(Limits.CLOSE_WAIT_MS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    writeLock.lock();
    try {
      conn = null;
    } finally {
      writeLock.unlock();
    }
    pending.failAll(ErrorCode.CLOSED, "the client is closed");
    timer.shutdownNow();
  }

  /**
   * Writes Goodbye unless a writer blocked by a full socket holds the lock for longer than the close
   * wait (then the connection is closed without it, which also unblocks that writer).
   */
  private void sendGoodbye() {
    boolean locked = false;
    try {
      locked = writeLock.tryLock(Limits.CLOSE_WAIT_MS, TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    Conn c = conn;
    if (!locked) {
      if (c != null) closeQuietly(c.channel);
      return;
    }
    try {
      if (c == null) return;
      c.writer.write(ClientMessage.newBuilder().setGoodbye(Goodbye.newBuilder().setReason("client closed")).build());
      c.writer.flush();
    } catch (IOException e) {
      closeQuietly(c.channel);
    } finally {
      writeLock.unlock();
    }
  }

  private static void closeQuietly(SocketChannel ch) {
    try {
      ch.close();
    } catch (IOException ignored) {
      // closing anyway
    }
  }

  private static Map<String, String> checkMeta(Map<String, String> m) {
    Objects.requireNonNull(m, "meta");
    if (m.size() > Limits.META_MAX_PAIRS) {
      throw new IllegalArgumentException("meta: at most " + Limits.META_MAX_PAIRS + " pairs, got " + m.size());
    }
    for (Map.Entry<String, String> e : m.entrySet()) {
      String k = e.getKey();
      String v = e.getValue();
      if (k == null || k.isEmpty() || k.length() > Limits.META_KEY_MAX) {
        throw new IllegalArgumentException("meta: keys must be 1.." + Limits.META_KEY_MAX + " characters, got \"" + k + "\"");
      }
      if (v == null || v.getBytes(StandardCharsets.UTF_8).length > Limits.META_VALUE_MAX_BYTES) {
        throw new IllegalArgumentException(
            "meta: value of \"" + k + "\" must be 0.." + Limits.META_VALUE_MAX_BYTES + " UTF-8 bytes");
      }
    }
    return Collections.unmodifiableMap(new LinkedHashMap<>(m));
  }

  // ------------------------------------------------------------------ builder

  /** Options of a {@link WarpmeshClient}; {@link #connect()} connects and waits for Welcome. */
  public static final class Builder {
    private String id;
    private String role = "";
    private final Map<String, String> meta = new LinkedHashMap<>();
    private final List<String> topics = new ArrayList<>();
    private AgentAddress address;
    private String token;
    private long requestTimeoutMs = Limits.DEFAULT_REQUEST_TIMEOUT_MS;
    private long helloTimeoutMs = Limits.DEFAULT_HELLO_TIMEOUT_MS;
    private boolean reconnect = true;
    private int maxPending = Limits.DEFAULT_MAX_PENDING;
    private WarpmeshListener listener;
    private AsyncRequestHandler handler;
    private boolean services;
    private boolean playerEvents;
    private ServerSettings server;
    private final Map<ServiceCall.Kind, AsyncServiceHandler> serviceHandlers = new EnumMap<>(ServiceCall.Kind.class);

    private Builder() {}

    /** Node id (required): 1..64 of A-Z a-z 0-9 _ . : - */
    public Builder id(String value) {
      if (value == null || !ID.matcher(value).matches()) {
        throw new IllegalArgumentException("id must be 1..64 of A-Z a-z 0-9 _ . : -, got \"" + value + "\"");
      }
      this.id = value;
      return this;
    }

    /** Role ("proxy", "downstream", ...); default "" (the agent's default, "downstream"). */
    public Builder role(String value) {
      this.role = Objects.requireNonNull(value, "role");
      return this;
    }

    /** Adds one metadata pair to announce in Hello. */
    public Builder meta(String key, String value) {
      Map<String, String> next = new LinkedHashMap<>(meta);
      next.put(key, value);
      checkMeta(next);
      meta.put(key, value);
      return this;
    }

    /** Adds a topic to subscribe to from the start. */
    public Builder topic(String value) {
      topics.add(Objects.requireNonNull(value, "topic"));
      return this;
    }

    /** The agent's Unix socket; default {@link WarpmeshClient#defaultSocketPath()}. */
    public Builder socketPath(Path path) {
      this.address = AgentAddress.unix(Objects.requireNonNull(path, "socketPath"));
      this.token = null;
      return this;
    }

    /** The agent's TCP listener (WARPMESH_AGENT_LISTEN) and its token (WARPMESH_AGENT_TOKEN). */
    public Builder tcp(String host, int port, String tokenValue) {
      if (port < 1 || port > 65535) throw new IllegalArgumentException("port must be 1..65535, got " + port);
      this.address = AgentAddress.tcp(Objects.requireNonNull(host, "host"), port);
      this.token = Objects.requireNonNull(tokenValue, "token");
      return this;
    }

    /** Default request timeout (also bounds the other blocking calls); default 5 s. */
    public Builder requestTimeout(Duration value) {
      long ms = value.toMillis();
      if (ms < 1 || ms > Integer.MAX_VALUE) throw new IllegalArgumentException("requestTimeout must be 1 ms .. 2^31-1 ms, got " + value);
      this.requestTimeoutMs = ms;
      return this;
    }

    /** How long to wait for Welcome after Hello; default 15 s. */
    public Builder helloTimeout(Duration value) {
      long ms = value.toMillis();
      if (ms < 1) throw new IllegalArgumentException("helloTimeout must be at least 1 ms, got " + value);
      this.helloTimeoutMs = ms;
      return this;
    }

    /** Reconnect after a drop (default true). */
    public Builder reconnect(boolean value) {
      this.reconnect = value;
      return this;
    }

    /** Bound on operations waiting for an answer (default 65536); past it calls fail with OVERLOADED. */
    public Builder maxPending(int value) {
      if (value < 1) throw new IllegalArgumentException("maxPending must be at least 1, got " + value);
      this.maxPending = value;
      return this;
    }

    /** Receives messages and events. */
    public Builder listener(WarpmeshListener value) {
      this.listener = value;
      return this;
    }

    /** Answers incoming requests synchronously (on the reader thread). */
    public Builder onRequest(RequestHandler value) {
      Objects.requireNonNull(value, "handler");
      this.handler = (from, data) -> CompletableFuture.completedFuture(value.handle(from, data));
      return this;
    }

    /** Answers incoming requests asynchronously. */
    public Builder onRequestAsync(AsyncRequestHandler value) {
      this.handler = Objects.requireNonNull(value, "handler");
      return this;
    }

    /**
     * Runs the network services on this node (player directory, server registry, transfers, player
     * messaging): needed by {@link #join}, {@link #locate}, {@link #transfer} and the other services
     * calls. Default false.
     */
    public Builder services(boolean value) {
      this.services = value;
      return this;
    }

    /** Lists this node in the server registry with these settings (a proxy leaves it unset); implies services. */
    public Builder server(ServerSettings value) {
      this.server = Objects.requireNonNull(value, "server");
      this.services = true;
      return this;
    }

    /**
     * Receives the services' player and server events ({@link WarpmeshListener#onPlayerJoined} ...
     * {@link WarpmeshListener#onServerRemoved}); implies services. Default false.
     */
    public Builder playerEvents(boolean value) {
      this.playerEvents = value;
      if (value) this.services = true;
      return this;
    }

    /**
     * Answers service calls of {@code kind} synchronously, on the reader thread; implies services.
     * Without a handler the agent accepts transfer requests itself (state and capacity are still
     * checked) and refuses moves, messages and kicks ("not handled").
     */
    public Builder onServiceCall(ServiceCall.Kind kind, ServiceHandler value) {
      Objects.requireNonNull(value, "handler");
      return onServiceCallAsync(kind, c -> CompletableFuture.completedFuture(value.handle(c)));
    }

    /** Answers service calls of {@code kind} asynchronously; implies services. */
    public Builder onServiceCallAsync(ServiceCall.Kind kind, AsyncServiceHandler value) {
      serviceHandlers.put(Objects.requireNonNull(kind, "kind"), Objects.requireNonNull(value, "handler"));
      this.services = true;
      return this;
    }

    /**
     * Connects, sends Hello and waits for Welcome.
     *
     * @throws WarpmeshException CLOSED if the agent cannot be reached, TIMEOUT without Welcome, or the
     *     agent's refusal (UNAUTHORIZED, DUPLICATE_NODE, START_FAILED, ...)
     */
    public WarpmeshClient connect() {
      if (id == null) throw new IllegalStateException("id is required");
      WarpmeshClient c = new WarpmeshClient(this);
      c.start();
      return c;
    }
  }
}
