package dev.warpmesh.agent;

import com.google.protobuf.ByteString;
import dev.warpmesh.agent.proto.AgentMessage;
import dev.warpmesh.agent.proto.Broadcast;
import dev.warpmesh.agent.proto.ClientMessage;
import dev.warpmesh.agent.proto.CoordinatorEvent;
import dev.warpmesh.agent.proto.GetPeers;
import dev.warpmesh.agent.proto.GetStats;
import dev.warpmesh.agent.proto.Goodbye;
import dev.warpmesh.agent.proto.Hello;
import dev.warpmesh.agent.proto.IncomingRequest;
import dev.warpmesh.agent.proto.Message;
import dev.warpmesh.agent.proto.PeerEvent;
import dev.warpmesh.agent.proto.Publish;
import dev.warpmesh.agent.proto.Reply;
import dev.warpmesh.agent.proto.Request;
import dev.warpmesh.agent.proto.Send;
import dev.warpmesh.agent.proto.SetMeta;
import dev.warpmesh.agent.proto.Subscribe;
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
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
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

  private final ReentrantLock writeLock = new ReentrantLock();
  private final AtomicLong nextId = new AtomicLong();
  private final ScheduledExecutorService timer;
  private final PendingOps pending;
  private final ConcurrentHashMap<String, PeerInfo> knownPeers = new ConcurrentHashMap<>();
  private final Set<String> topics = ConcurrentHashMap.newKeySet();
  private volatile Map<String, String> meta;

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
