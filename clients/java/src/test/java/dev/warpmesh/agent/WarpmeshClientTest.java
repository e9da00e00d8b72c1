package dev.warpmesh.agent;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.warpmesh.agent.proto.AgentMessage;
import dev.warpmesh.agent.proto.ClientMessage;
import dev.warpmesh.agent.proto.ClientMessage.BodyCase;
import dev.warpmesh.agent.proto.CoordinatorEvent;
import dev.warpmesh.agent.proto.Hello;
import dev.warpmesh.agent.proto.IncomingRequest;
import dev.warpmesh.agent.proto.Message;
import dev.warpmesh.agent.proto.Peer;
import dev.warpmesh.agent.proto.PeerEvent;
import dev.warpmesh.agent.proto.PeerStats;
import dev.warpmesh.agent.proto.Peers;
import dev.warpmesh.agent.proto.Reply;
import dev.warpmesh.agent.proto.Response;
import dev.warpmesh.agent.proto.Result;
import dev.warpmesh.agent.proto.Stats;
import dev.warpmesh.agent.proto.Undelivered;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

@Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class WarpmeshClientTest {
  private FakeAgent agent;
  private WarpmeshClient client;

  @BeforeEach
  void setUp() throws Exception {
    agent = FakeAgent.unix();
  }

  @AfterEach
  void tearDown() throws Exception {
    if (client != null) client.close();
    agent.close();
  }

  // ------------------------------------------------------------------ helpers

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static AgentMessage result(long id, int count) {
    return AgentMessage.newBuilder().setResult(Result.newBuilder().setId(id).setCount(count)).build();
  }

  static AgentMessage error(long id, ErrorCode code, String message, boolean fatal) {
    return AgentMessage.newBuilder()
        .setError(
            dev.warpmesh.agent.proto.Error.newBuilder()
                .setId(id)
                .setCodeValue(code.number())
                .setMessage(message)
                .setFatal(fatal))
        .build();
  }

  static Peer peer(String id, String role) {
    return Peer.newBuilder().setId(id).setRole(role).setAddress("127.0.0.1").setPort(4000).putMeta("k", "v").addTopics("t").build();
  }

  static Throwable failure(CompletableFuture<?> f) throws InterruptedException {
    try {
      f.get(10, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      return e.getCause();
    } catch (java.util.concurrent.TimeoutException e) {
      throw new AssertionError("future did not complete", e);
    }
    throw new AssertionError("future succeeded: expected a failure");
  }

  static ErrorCode codeOf(CompletableFuture<?> f) throws InterruptedException {
    Throwable t = failure(f);
    assertTrue(t instanceof WarpmeshException, "expected WarpmeshException, got " + t);
    return ((WarpmeshException) t).code();
  }

  /** Records listener calls as strings. */
  static final class Recorder implements WarpmeshListener {
    final BlockingQueue<String> events = new LinkedBlockingQueue<>();

    String next() throws InterruptedException {
      String e = events.poll(FakeAgent.WAIT_MS, TimeUnit.MILLISECONDS);
      assertNotNull(e, "no listener event");
      return e;
    }

    @Override
    public void onMessage(MeshMessage m) {
      events.add("message " + m.from() + " " + new String(m.data(), StandardCharsets.UTF_8) + " ch" + m.channel() + " " + m.delivery() + " topic=" + m.topic());
    }

    @Override
    public void onPeerUp(PeerInfo p) {
      events.add("up " + p.id() + " " + p.role() + " " + p.meta() + " " + p.topics());
    }

    @Override
    public void onPeerDown(PeerInfo p, String reason) {
      events.add("down " + p.id() + " " + reason);
    }

    @Override
    public void onPeerUpdated(PeerInfo p) {
      events.add("updated " + p.id() + " " + new java.util.TreeMap<>(p.meta()));
    }

    @Override
    public void onCoordinator(boolean up, String address) {
      events.add("coordinator " + up + " " + address);
    }

    @Override
    public void onUndelivered(String peer, int count, String reason) {
      events.add("undelivered " + peer + " " + count + " " + reason);
    }

    @Override
    public void onError(WarpmeshException e) {
      events.add("error " + e.code() + " " + e.detail() + " fatal=" + e.fatal());
    }

    @Override
    public void onDisconnected(String reason) {
      events.add("disconnected " + reason);
    }

    @Override
    public void onReconnected() {
      events.add("reconnected");
    }
  }

  /** Connects a client and returns the fake agent's side, Hello consumed. */
  private FakeAgent.Conn connect(WarpmeshClient.Builder b) throws InterruptedException {
    client = b.connect();
    FakeAgent.Conn c = agent.nextConn();
    c.next(BodyCase.HELLO);
    return c;
  }

  // ------------------------------------------------------------------ hello / welcome

  @Test
  void helloCarriesIdentityAndWelcomeFillsThePeerTable() throws Exception {
    agent.welcomePeers = List.of(peer("lobby-1", "downstream"));
    client = agent.builder("proxy-1").role("proxy").meta("region", "eu").topic("players").topic("chat").connect();
    FakeAgent.Conn c = agent.nextConn();
    Hello h = c.next(BodyCase.HELLO).getHello();
    assertEquals(1, h.getProtocolVersion());
    assertEquals("proxy-1", h.getId());
    assertEquals("proxy", h.getRole());
    assertEquals(Map.of("region", "eu"), h.getMetaMap());
    assertEquals(Set.of("players", "chat"), Set.copyOf(h.getTopicsList()));
    assertEquals("", h.getToken());
    assertTrue(h.getClient().startsWith("warpmesh-java/"));
    assertTrue(client.isConnected());
    assertEquals(40000, client.udpPort());
    assertEquals("fake", client.agentVersion());
    PeerInfo p = client.knownPeer("lobby-1");
    assertNotNull(p);
    assertEquals(new PeerInfo("lobby-1", "downstream", "127.0.0.1", 4000, Map.of("k", "v"), List.of("t")), p);
    assertEquals(1, client.knownPeers().size());
  }

  @Test
  void tcpHelloCarriesTheToken() throws Exception {
    agent.close();
    agent = FakeAgent.tcp();
    client = agent.builder("tcp-node").connect();
    Hello h = agent.nextConn().next(BodyCase.HELLO).getHello();
    assertEquals("secret", h.getToken());
    assertEquals("tcp-node", h.getId());
    assertTrue(client.isConnected());
  }

  @Test
  void aRefusedHelloThrowsTheAgentsCode() throws Exception {
    agent.autoWelcome = false;
    CompletableFuture<WarpmeshClient> f = CompletableFuture.supplyAsync(() -> agent.builder("n1").connect());
    FakeAgent.Conn c = agent.nextConn();
    c.next(BodyCase.HELLO);
    c.send(error(0, ErrorCode.UNAUTHORIZED, "wrong token", true));
    c.close();
    WarpmeshException e = (WarpmeshException) failure(f);
    assertEquals(ErrorCode.UNAUTHORIZED, e.code());
    assertTrue(e.fatal());
    assertEquals("wrong token", e.detail());
  }

  @Test
  void noAgentMeansClosed() throws Exception {
    WarpmeshClient.Builder b = WarpmeshClient.builder().id("n1").socketPath(agent.dir.resolve("nothing.sock"));
    WarpmeshException e = assertThrows(WarpmeshException.class, b::connect);
    assertEquals(ErrorCode.CLOSED, e.code());
  }

  @Test
  void noWelcomeWithinTheHelloTimeout() throws Exception {
    agent.autoWelcome = false;
    WarpmeshClient.Builder b = agent.builder("n1").helloTimeout(Duration.ofMillis(200));
    WarpmeshException e = assertThrows(WarpmeshException.class, b::connect);
    assertEquals(ErrorCode.TIMEOUT, e.code());
  }

  @Test
  void somethingElseThanWelcomeIsRefused() throws Exception {
    agent.autoWelcome = false;
    CompletableFuture<WarpmeshClient> f = CompletableFuture.supplyAsync(() -> agent.builder("n1").connect());
    FakeAgent.Conn c = agent.nextConn();
    c.next(BodyCase.HELLO);
    c.send(result(1, 1));
    WarpmeshException e = (WarpmeshException) failure(f);
    assertEquals(ErrorCode.CLOSED, e.code());
    assertTrue(e.detail().contains("expected Welcome"), e.detail());
    assertTrue(c.awaitEof());
  }

  @Test
  void builderRejectsBadOptions() {
    assertThrows(IllegalArgumentException.class, () -> WarpmeshClient.builder().id(""));
    assertThrows(IllegalArgumentException.class, () -> WarpmeshClient.builder().id("a b"));
    assertThrows(IllegalArgumentException.class, () -> WarpmeshClient.builder().id("x".repeat(65)));
    assertThrows(IllegalArgumentException.class, () -> WarpmeshClient.builder().meta("k".repeat(33), "v"));
    assertThrows(IllegalArgumentException.class, () -> WarpmeshClient.builder().meta("k", "v".repeat(129)));
    assertThrows(IllegalArgumentException.class, () -> WarpmeshClient.builder().tcp("127.0.0.1", 0, "t"));
    assertThrows(IllegalArgumentException.class, () -> WarpmeshClient.builder().maxPending(0));
    assertThrows(IllegalArgumentException.class, () -> WarpmeshClient.builder().requestTimeout(Duration.ZERO));
    assertThrows(IllegalStateException.class, () -> WarpmeshClient.builder().connect());
    WarpmeshClient.Builder many = WarpmeshClient.builder();
    for (int i = 0; i < 32; i++) many.meta("k" + i, "v");
    assertThrows(IllegalArgumentException.class, () -> many.meta("k32", "v"));
  }

  // ------------------------------------------------------------------ operations' frames

  @Test
  void sendWritesAFireAndForgetFrame() throws Exception {
    FakeAgent.Conn c = connect(agent.builder("n1"));
    client.send("lobby-1", utf8("hi"));
    client.send("lobby-2", utf8("yo"), 3, Delivery.UNRELIABLE);
    var s1 = c.next(BodyCase.SEND).getSend();
    assertEquals(0, s1.getId());
    assertEquals("lobby-1", s1.getTo());
    assertEquals("hi", s1.getData().toStringUtf8());
    assertEquals(0, s1.getChannel());
    assertEquals(dev.warpmesh.agent.proto.Delivery.DELIVERY_DEFAULT, s1.getDelivery());
    var s2 = c.next(BodyCase.SEND).getSend();
    assertEquals("lobby-2", s2.getTo());
    assertEquals(3, s2.getChannel());
    assertEquals(dev.warpmesh.agent.proto.Delivery.UNRELIABLE, s2.getDelivery());
    assertThrows(IllegalArgumentException.class, () -> client.send("x", new byte[0], 16, Delivery.DEFAULT));
  }

  @Test
  void bufferedSendsLeaveOnFlushInOrder() throws Exception {
    FakeAgent.Conn c = connect(agent.builder("n1"));
    for (int i = 0; i < 3000; i++) client.sendBuffered("p", utf8("m" + i), 0, Delivery.RELIABLE_ORDERED);
    client.flush();
    for (int i = 0; i < 3000; i++) {
      var s = c.next(BodyCase.SEND).getSend();
      assertEquals("m" + i, s.getData().toStringUtf8());
      assertEquals(dev.warpmesh.agent.proto.Delivery.RELIABLE_ORDERED, s.getDelivery());
    }
  }

  @Test
  void sendAsyncWaitsForTheResultAndReportsUnknownPeer() throws Exception {
    agent.responder =
        m -> m.getSend().getTo().equals("ghost")
            ? error(m.getSend().getId(), ErrorCode.UNKNOWN_PEER, "no peer ghost", false)
            : result(m.getSend().getId(), 1);
    FakeAgent.Conn c = connect(agent.builder("n1"));
    client.sendChecked("lobby-1", utf8("hi"));
    var s = c.next(BodyCase.SEND).getSend();
    assertTrue(s.getId() != 0);
    WarpmeshException e = assertThrows(WarpmeshException.class, () -> client.sendChecked("ghost", utf8("x")));
    assertEquals(ErrorCode.UNKNOWN_PEER, e.code());
    assertEquals("no peer ghost", e.detail());
  }

  @Test
  void broadcastFrameAndCount() throws Exception {
    agent.responder = m -> result(m.getBroadcast().getId(), 4);
    FakeAgent.Conn c = connect(agent.builder("n1"));
    assertEquals(4, client.broadcast("downstream", "eu", utf8("all")));
    var b = c.next(BodyCase.BROADCAST).getBroadcast();
    assertEquals("downstream", b.getRole());
    assertEquals("eu", b.getTag());
    assertEquals("all", b.getData().toStringUtf8());
    assertEquals(4, client.broadcastAsync(null, null, utf8("x"), 2, Delivery.RELIABLE_UNORDERED).get());
    var b2 = c.next(BodyCase.BROADCAST).getBroadcast();
    assertEquals("", b2.getRole());
    assertEquals("", b2.getTag());
    assertEquals(2, b2.getChannel());
    assertEquals(dev.warpmesh.agent.proto.Delivery.RELIABLE_UNORDERED, b2.getDelivery());
  }

  @Test
  void publishFrameAndCount() throws Exception {
    agent.responder = m -> result(m.getPublish().getId(), 2);
    FakeAgent.Conn c = connect(agent.builder("n1"));
    assertEquals(2, client.publish("players", utf8("lobby-1 steve")));
    var p = c.next(BodyCase.PUBLISH).getPublish();
    assertEquals("players", p.getTopic());
    assertEquals("lobby-1 steve", p.getData().toStringUtf8());
    assertTrue(p.getId() != 0);
  }

  @Test
  void subscribeAndUnsubscribeFramesTrackTopics() throws Exception {
    agent.responder = m -> result(m.hasSubscribe() ? m.getSubscribe().getId() : m.getUnsubscribe().getId(), 0);
    FakeAgent.Conn c = connect(agent.builder("n1").topic("a"));
    client.subscribe("b");
    assertEquals("b", c.next(BodyCase.SUBSCRIBE).getSubscribe().getTopic());
    assertEquals(Set.of("a", "b"), client.topics());
    client.unsubscribe("a");
    assertEquals("a", c.next(BodyCase.UNSUBSCRIBE).getUnsubscribe().getTopic());
    assertEquals(Set.of("b"), client.topics());
  }

  @Test
  void setMetaFrameReplacesMeta() throws Exception {
    agent.responder = m -> result(m.getSetMeta().getId(), 0);
    FakeAgent.Conn c = connect(agent.builder("n1").meta("players", "0"));
    client.setMeta(Map.of("players", "12", "motd", "hi"));
    assertEquals(Map.of("players", "12", "motd", "hi"), c.next(BodyCase.SET_META).getSetMeta().getMetaMap());
    assertEquals(Map.of("players", "12", "motd", "hi"), client.meta());
    assertThrows(IllegalArgumentException.class, () -> client.setMeta(Map.of("", "x")));
  }

  @Test
  void setMetaRefusedKeepsTheOldMeta() throws Exception {
    agent.responder = m -> error(m.getSetMeta().getId(), ErrorCode.INVALID_ARGUMENT, "bad meta", false);
    connect(agent.builder("n1").meta("players", "0"));
    WarpmeshException e = assertThrows(WarpmeshException.class, () -> client.setMeta(Map.of("players", "1")));
    assertEquals(ErrorCode.INVALID_ARGUMENT, e.code());
    assertEquals(Map.of("players", "0"), client.meta());
  }

  @Test
  void peersAndStatsAnswers() throws Exception {
    agent.responder =
        m -> {
          if (m.hasGetPeers()) {
            return AgentMessage.newBuilder()
                .setPeers(Peers.newBuilder().setId(m.getGetPeers().getId()).addPeers(peer("a", "proxy")).addPeers(peer("b", "downstream")))
                .build();
          }
          return AgentMessage.newBuilder()
              .setStats(
                  Stats.newBuilder()
                      .setId(m.getGetStats().getId())
                      .setMessagesSent(1)
                      .setMessagesReceived(2)
                      .setRequestsSent(3)
                      .setRequestsSucceeded(4)
                      .setRequestsFailed(5)
                      .setRequestsTimedOut(6)
                      .setRequestsServed(7)
                      .setUndeliverable(8)
                      .setPeers(9)
                      .setCoordinatorsUp(1)
                      .addPeerStats(PeerStats.newBuilder().setId("a").setRttMs(0.5).setPacketsSent(10).setPacketsReceived(11).setRetransmits(1).setBytesInFlight(64)))
              .build();
        };
    FakeAgent.Conn c = connect(agent.builder("n1"));
    List<PeerInfo> peers = client.peers();
    assertEquals(List.of("a", "b"), peers.stream().map(PeerInfo::id).toList());
    assertEquals("proxy", peers.get(0).role());
    assertTrue(c.next(BodyCase.GET_PEERS).getGetPeers().getId() != 0);
    NodeStats s = client.stats();
    assertEquals(
        new NodeStats(1, 2, 3, 4, 5, 6, 7, 8, 9, 1, List.of(new NodeStats.PeerSession("a", 0.5, 10, 11, 1, 64))), s);
    c.next(BodyCase.GET_STATS);
  }

  @Test
  void aWrongAnswerTypeFailsTheOperation() throws Exception {
    agent.responder = m -> result(m.getGetPeers().getId(), 0);
    connect(agent.builder("n1"));
    WarpmeshException e = assertThrows(WarpmeshException.class, () -> client.peers());
    assertEquals(ErrorCode.INTERNAL, e.code());
  }

  // ------------------------------------------------------------------ requests

  @Test
  void requestSucceedsWithTheReplyBytes() throws Exception {
    agent.responder =
        m ->
            AgentMessage.newBuilder()
                .setResponse(Response.newBuilder().setId(m.getRequest().getId()).setData(ByteString.copyFromUtf8("pong:" + m.getRequest().getData().toStringUtf8())))
                .build();
    FakeAgent.Conn c = connect(agent.builder("n1").requestTimeout(Duration.ofMillis(1234)));
    assertArrayEquals(utf8("pong:ping"), client.request("lobby-1", utf8("ping")).get(5, TimeUnit.SECONDS));
    var r = c.next(BodyCase.REQUEST).getRequest();
    assertEquals("lobby-1", r.getTo());
    assertEquals(1234, r.getTimeoutMs());
    assertArrayEquals(utf8("pong:x"), client.request("lobby-1", utf8("x"), Duration.ofSeconds(2)).get(5, TimeUnit.SECONDS));
    var r2 = c.next(BodyCase.REQUEST).getRequest();
    assertEquals(2000, r2.getTimeoutMs());
    assertTrue(r2.getId() != r.getId(), "ids differ");
    assertEquals(0, client.pendingCount());
  }

  @ParameterizedTest
  @EnumSource(names = {"TIMEOUT", "UNKNOWN_PEER", "PEER_DOWN", "OVERLOADED", "REMOTE_ERROR", "CLOSED", "DUPLICATE_ID", "INVALID_ARGUMENT"})
  void requestErrorMapsToItsCode(ErrorCode code) throws Exception {
    agent.responder = m -> error(m.getRequest().getId(), code, "because " + code, false);
    connect(agent.builder("n1"));
    Throwable t = failure(client.request("lobby-1", utf8("x")));
    WarpmeshException e = (WarpmeshException) t;
    assertEquals(code, e.code());
    assertEquals("because " + code, e.detail());
    assertTrue(client.isConnected(), "a non-fatal error keeps the connection");
  }

  @Test
  void requestTimesOutWhenTheAgentNeverAnswers() throws Exception {
    connect(agent.builder("n1"));
    long t0 = System.nanoTime();
    CompletableFuture<byte[]> f = client.request("lobby-1", utf8("x"), Duration.ofMillis(100));
    assertEquals(ErrorCode.TIMEOUT, codeOf(f));
    assertTrue(System.nanoTime() - t0 >= TimeUnit.MILLISECONDS.toNanos(100), "not before the timeout");
    assertEquals(0, client.pendingCount());
  }

  @Test
  void aLateAnswerIsIgnored() throws Exception {
    FakeAgent.Conn c = connect(agent.builder("n1"));
    CompletableFuture<byte[]> f = client.request("p", utf8("x"), Duration.ofMillis(50));
    long id = c.next(BodyCase.REQUEST).getRequest().getId();
    assertEquals(ErrorCode.TIMEOUT, codeOf(f));
    c.send(AgentMessage.newBuilder().setResponse(Response.newBuilder().setId(id)).build());
    agent.responder = m -> result(m.getSubscribe().getId(), 0);
    client.subscribe("still-works");
  }

  @Test
  void pendingOperationsAreBounded() throws Exception {
    connect(agent.builder("n1").maxPending(3));
    CompletableFuture<?>[] fs = new CompletableFuture<?>[3];
    for (int i = 0; i < 3; i++) fs[i] = client.request("p", utf8("x"), Duration.ofSeconds(30));
    assertEquals(3, client.pendingCount());
    assertEquals(ErrorCode.OVERLOADED, codeOf(client.request("p", utf8("x"))));
    assertEquals(ErrorCode.OVERLOADED, codeOf(client.peersAsync()));
    for (CompletableFuture<?> f : fs) assertFalse(f.isDone());
  }

  @Test
  void aMessageAboveTheMaximumFrameIsRefusedLocally() throws Exception {
    agent.maxFrame = 1000;
    agent.responder = m -> result(m.getSubscribe().getId(), 0);
    FakeAgent.Conn c = connect(agent.builder("n1"));
    WarpmeshException e = assertThrows(WarpmeshException.class, () -> client.send("p", new byte[2000]));
    assertEquals(ErrorCode.TOO_LARGE, e.code());
    assertEquals(ErrorCode.TOO_LARGE, codeOf(client.request("p", new byte[2000])));
    assertEquals(0, client.pendingCount());
    client.subscribe("ok");
    assertEquals(BodyCase.SUBSCRIBE, c.next().getBodyCase(), "nothing was written for the refused ones");
  }

  // ------------------------------------------------------------------ incoming requests

  private static AgentMessage incoming(long id, String from, String data) {
    return AgentMessage.newBuilder()
        .setIncomingRequest(IncomingRequest.newBuilder().setId(id).setFrom(from).setData(ByteString.copyFromUtf8(data)))
        .build();
  }

  @Test
  void incomingRequestIsAnswered() throws Exception {
    FakeAgent.Conn c = connect(agent.builder("n1").onRequest((from, data) -> utf8(from + ":" + new String(data, StandardCharsets.UTF_8))));
    c.send(incoming(7, "lobby-1", "where steve"));
    Reply r = c.next(BodyCase.REPLY).getReply();
    assertEquals(7, r.getId());
    assertEquals("lobby-1:where steve", r.getData().toStringUtf8());
    assertEquals("", r.getError());
  }

  @Test
  void aThrowingHandlerRepliesWithAnError() throws Exception {
    FakeAgent.Conn c =
        connect(
            agent.builder("n1").onRequest(
                (from, data) -> {
                  throw new IllegalStateException("no such player");
                }));
    c.send(incoming(8, "lobby-1", "where bob"));
    Reply r = c.next(BodyCase.REPLY).getReply();
    assertEquals(8, r.getId());
    assertEquals("no such player", r.getError());
    assertTrue(client.isConnected());
  }

  @Test
  void asyncHandlerRepliesWhenItsFutureCompletes() throws Exception {
    CompletableFuture<byte[]> ok = new CompletableFuture<>();
    CompletableFuture<byte[]> bad = new CompletableFuture<>();
    FakeAgent.Conn c =
        connect(agent.builder("n1").onRequestAsync((from, data) -> new String(data, StandardCharsets.UTF_8).equals("ok") ? ok : bad));
    c.send(incoming(1, "a", "ok"));
    c.send(incoming(2, "a", "bad"));
    bad.completeExceptionally(new RuntimeException("failed later"));
    Reply r2 = c.next(BodyCase.REPLY).getReply();
    assertEquals(2, r2.getId());
    assertEquals("failed later", r2.getError());
    ok.complete(utf8("fine"));
    Reply r1 = c.next(BodyCase.REPLY).getReply();
    assertEquals(1, r1.getId());
    assertEquals("fine", r1.getData().toStringUtf8());
  }

  @Test
  void noHandlerRepliesWithAnError() throws Exception {
    FakeAgent.Conn c = connect(agent.builder("n1"));
    c.send(incoming(3, "a", "x"));
    Reply r = c.next(BodyCase.REPLY).getReply();
    assertEquals(3, r.getId());
    assertTrue(r.getError().contains("no request handler"), r.getError());
  }

  @Test
  void nullReplyIsEmpty() throws Exception {
    FakeAgent.Conn c = connect(agent.builder("n1").onRequest((from, data) -> null));
    c.send(incoming(4, "a", "x"));
    Reply r = c.next(BodyCase.REPLY).getReply();
    assertEquals(4, r.getId());
    assertTrue(r.getData().isEmpty());
    assertEquals("", r.getError());
  }

  // ------------------------------------------------------------------ events

  @Test
  void eventsAreDispatchedInOrder() throws Exception {
    Recorder rec = new Recorder();
    FakeAgent.Conn c = connect(agent.builder("n1").listener(rec));
    c.send(AgentMessage.newBuilder().setMessage(Message.newBuilder().setFrom("a").setData(ByteString.copyFromUtf8("hi")).setChannel(2).setDeliveryValue(3)).build());
    c.send(AgentMessage.newBuilder().setMessage(Message.newBuilder().setFrom("b").setData(ByteString.copyFromUtf8("news")).setTopic("chat")).build());
    c.send(AgentMessage.newBuilder().setPeerEvent(PeerEvent.newBuilder().setKind(PeerEvent.Kind.UP).setPeer(peer("lobby-2", "downstream"))).build());
    assertEquals("message a hi ch2 RELIABLE_UNORDERED topic=", rec.next());
    assertEquals("message b news ch0 DEFAULT topic=chat", rec.next());
    assertEquals("up lobby-2 downstream {k=v} [t]", rec.next());
    assertNotNull(client.knownPeer("lobby-2"));
    c.send(AgentMessage.newBuilder().setPeerEvent(PeerEvent.newBuilder().setKind(PeerEvent.Kind.UPDATED).setPeer(peer("lobby-2", "downstream").toBuilder().putMeta("players", "3"))).build());
    assertEquals("updated lobby-2 {k=v, players=3}", rec.next());
    assertEquals("3", client.knownPeer("lobby-2").meta().get("players"));
    c.send(AgentMessage.newBuilder().setPeerEvent(PeerEvent.newBuilder().setKind(PeerEvent.Kind.DOWN).setPeer(peer("lobby-2", "downstream")).setReason("expired")).build());
    assertEquals("down lobby-2 expired", rec.next());
    assertNull(client.knownPeer("lobby-2"));
    c.send(AgentMessage.newBuilder().setCoordinatorEvent(CoordinatorEvent.newBuilder().setUp(false).setAddress("127.0.0.1:7000")).build());
    assertEquals("coordinator false 127.0.0.1:7000", rec.next());
    c.send(AgentMessage.newBuilder().setUndelivered(Undelivered.newBuilder().setPeer("lobby-3").setCount(5).setReason("peer down")).build());
    assertEquals("undelivered lobby-3 5 peer down", rec.next());
    c.send(error(0, ErrorCode.UNKNOWN_PEER, "send to ghost", false));
    assertEquals("error UNKNOWN_PEER send to ghost fatal=false", rec.next());
    c.send(error(999, ErrorCode.UNKNOWN_REQUEST, "reply 999 not pending", false));
    assertEquals("error UNKNOWN_REQUEST reply 999 not pending fatal=false", rec.next());
  }

  @Test
  void aThrowingListenerDoesNotStopTheReader() throws Exception {
    BlockingQueue<String> seen = new LinkedBlockingQueue<>();
    FakeAgent.Conn c =
        connect(
            agent.builder("n1").listener(
                new WarpmeshListener() {
                  @Override
                  public void onMessage(MeshMessage m) {
                    seen.add(m.from());
                    throw new RuntimeException("listener bug");
                  }
                }));
    c.send(AgentMessage.newBuilder().setMessage(Message.newBuilder().setFrom("a")).build());
    c.send(AgentMessage.newBuilder().setMessage(Message.newBuilder().setFrom("b")).build());
    assertEquals("a", seen.poll(5, TimeUnit.SECONDS));
    assertEquals("b", seen.poll(5, TimeUnit.SECONDS));
    assertTrue(client.isConnected());
  }

  @Test
  void largeAndSplitFramesDecode() throws Exception {
    Recorder rec = new Recorder();
    FakeAgent.Conn c = connect(agent.builder("n1").listener(rec));
    String big = "x".repeat(300_000);
    byte[] f1 = FakeAgent.frame(AgentMessage.newBuilder().setMessage(Message.newBuilder().setFrom("a").setData(ByteString.copyFromUtf8(big))).build());
    byte[] f2 = FakeAgent.frame(AgentMessage.newBuilder().setMessage(Message.newBuilder().setFrom("b").setData(ByteString.copyFromUtf8("small"))).build());
    byte[] both = new byte[f1.length + f2.length];
    System.arraycopy(f1, 0, both, 0, f1.length);
    System.arraycopy(f2, 0, both, f1.length, f2.length);
    // Byte by byte for the first few, then the rest: length prefixes split across reads.
    for (int i = 0; i < 3; i++) {
      c.sendRaw(new byte[] {both[i]});
      Thread.sleep(5);
    }
    c.sendRaw(java.util.Arrays.copyOfRange(both, 3, both.length));
    String e1 = rec.next();
    assertTrue(e1.startsWith("message a " + big.substring(0, 10)), e1.substring(0, 20));
    assertEquals(("message a " + big + " ch0 DEFAULT topic=").length(), e1.length());
    assertEquals("message b small ch0 DEFAULT topic=", rec.next());
  }

  // ------------------------------------------------------------------ reconnect, bad input, close

  @Test
  void reconnectSendsHelloWithCurrentMetaAndTopicsAndFailsPendingWithClosed() throws Exception {
    Recorder rec = new Recorder();
    agent.responder =
        m -> m.hasSetMeta() ? result(m.getSetMeta().getId(), 0) : m.hasSubscribe() ? result(m.getSubscribe().getId(), 0) : null;
    FakeAgent.Conn c = connect(agent.builder("n1").role("downstream").meta("players", "0").topic("a").listener(rec));
    client.setMeta(Map.of("players", "7"));
    client.subscribe("b");
    CompletableFuture<byte[]> outstanding = client.request("lobby-1", utf8("x"), Duration.ofSeconds(30));
    c.next(BodyCase.SET_META);
    c.next(BodyCase.SUBSCRIBE);
    c.next(BodyCase.REQUEST);
    c.close();
    assertEquals(ErrorCode.CLOSED, codeOf(outstanding));
    assertTrue(rec.next().startsWith("disconnected "));
    FakeAgent.Conn c2 = agent.nextConn();
    Hello h = c2.next(BodyCase.HELLO).getHello();
    assertEquals("n1", h.getId());
    assertEquals("downstream", h.getRole());
    assertEquals(Map.of("players", "7"), h.getMetaMap());
    assertEquals(Set.of("a", "b"), Set.copyOf(h.getTopicsList()));
    assertEquals("reconnected", rec.next());
    assertTrue(client.isConnected());
    client.send("lobby-1", utf8("again"));
    assertEquals("again", c2.next(BodyCase.SEND).getSend().getData().toStringUtf8());
  }

  @Test
  void reconnectRetriesUntilTheAgentIsBack() throws Exception {
    Recorder rec = new Recorder();
    FakeAgent.Conn c = connect(agent.builder("n1").listener(rec));
    agent.autoWelcome = false;
    c.close();
    assertTrue(rec.next().startsWith("disconnected "));
    // Refused twice (the agent answers an error and closes), then welcomed.
    for (int i = 0; i < 2; i++) {
      FakeAgent.Conn r = agent.nextConn();
      r.next(BodyCase.HELLO);
      r.send(error(0, ErrorCode.DUPLICATE_NODE, "n1 still leaving", true));
      r.close();
    }
    assertFalse(client.isConnected());
    WarpmeshException e = assertThrows(WarpmeshException.class, () -> client.send("p", utf8("x")));
    assertEquals(ErrorCode.CLOSED, e.code());
    assertEquals(ErrorCode.CLOSED, codeOf(client.request("p", utf8("x"))));
    agent.autoWelcome = true;
    agent.nextConn().next(BodyCase.HELLO);
    assertEquals("reconnected", rec.next());
    assertTrue(client.isConnected());
  }

  @Test
  void reconnectBackoffDoublesFrom100MsTo2s() {
    long d = Backoff.first();
    StringBuilder seq = new StringBuilder().append(d);
    for (int i = 0; i < 6; i++) seq.append(',').append(d = Backoff.next(d));
    assertEquals("100,200,400,800,1600,2000,2000", seq.toString());
  }

  @Test
  void manyFramesAcrossBufferBoundariesArriveInOrder() throws Exception {
    BlockingQueue<MeshMessage> got = new LinkedBlockingQueue<>();
    FakeAgent.Conn c =
        connect(
            agent.builder("n1").listener(
                new WarpmeshListener() {
                  @Override
                  public void onMessage(MeshMessage m) {
                    got.add(m);
                  }
                }));
    java.io.ByteArrayOutputStream burst = new java.io.ByteArrayOutputStream();
    int n = 5000;
    for (int i = 0; i < n; i++) {
      byte[] data = new byte[i % 301];
      java.util.Arrays.fill(data, (byte) i);
      burst.write(FakeAgent.frame(AgentMessage.newBuilder().setMessage(Message.newBuilder().setFrom("p" + i).setData(ByteString.copyFrom(data))).build()));
    }
    assertTrue(burst.size() > 4 * Limits.IO_BUFFER, "the burst spans several reader buffers");
    c.sendRaw(burst.toByteArray());
    for (int i = 0; i < n; i++) {
      MeshMessage m = got.poll(5, TimeUnit.SECONDS);
      assertNotNull(m, "message " + i);
      assertEquals("p" + i, m.from());
      assertEquals(i % 301, m.data().length);
      if (m.data().length > 0) assertEquals((byte) i, m.data()[m.data().length - 1]);
    }
  }

  @Test
  void noReconnectWhenDisabled() throws Exception {
    Recorder rec = new Recorder();
    FakeAgent.Conn c = connect(agent.builder("n1").reconnect(false).listener(rec));
    c.close();
    assertTrue(rec.next().startsWith("disconnected the agent closed the connection"));
    assertTrue(agent.noConnWithin(500), "no new connection");
    assertFalse(client.isConnected());
    assertEquals(ErrorCode.CLOSED, assertThrows(WarpmeshException.class, () -> client.peers()).code());
  }

  @Test
  void aFatalErrorIsReportedThenTheDropNamesIt() throws Exception {
    Recorder rec = new Recorder();
    FakeAgent.Conn c = connect(agent.builder("n1").reconnect(false).listener(rec));
    c.send(error(0, ErrorCode.SLOW_CLIENT, "output buffer above 8 MiB", true));
    c.close();
    assertEquals("error SLOW_CLIENT output buffer above 8 MiB fatal=true", rec.next());
    String d = rec.next();
    assertTrue(d.startsWith("disconnected ") && d.contains("SLOW_CLIENT"), d);
  }

  @Test
  void anOversizedFrameFromTheAgentClosesTheConnection() throws Exception {
    Recorder rec = new Recorder();
    FakeAgent.Conn c = connect(agent.builder("n1").reconnect(false).listener(rec));
    CompletableFuture<byte[]> outstanding = client.request("p", utf8("x"), Duration.ofSeconds(30));
    c.next(BodyCase.REQUEST);
    byte[] prefix = FakeAgent.varint(Limits.MAX_FRAME + 1);
    c.sendRaw(java.util.Arrays.copyOf(prefix, prefix.length + 100)); // one write: the client closes after reading it
    String d = rec.next();
    assertTrue(d.startsWith("disconnected protocol error: frame of " + (Limits.MAX_FRAME + 1)), d);
    assertEquals(ErrorCode.CLOSED, codeOf(outstanding));
    assertTrue(c.awaitEof(), "the client closed the connection");
    assertFalse(client.isConnected());
  }

  @Test
  void anUndecodableFrameFromTheAgentClosesTheConnection() throws Exception {
    Recorder rec = new Recorder();
    FakeAgent.Conn c = connect(agent.builder("n1").reconnect(false).listener(rec));
    c.sendRaw(new byte[] {4, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff});
    String d = rec.next();
    assertTrue(d.startsWith("disconnected protocol error: undecodable frame"), d);
    assertTrue(c.awaitEof());
  }

  @Test
  void aMalformedLengthPrefixClosesTheConnection() throws Exception {
    Recorder rec = new Recorder();
    FakeAgent.Conn c = connect(agent.builder("n1").reconnect(false).listener(rec));
    byte[] junk = new byte[12];
    java.util.Arrays.fill(junk, (byte) 0xff);
    c.sendRaw(junk);
    String d = rec.next();
    assertTrue(d.startsWith("disconnected protocol error: malformed length prefix"), d);
    assertTrue(c.awaitEof());
  }

  @Test
  void aTruncatedFrameIsADrop() throws Exception {
    Recorder rec = new Recorder();
    FakeAgent.Conn c = connect(agent.builder("n1").reconnect(false).listener(rec));
    c.sendRaw(new byte[] {10, 1, 2});
    c.channel.shutdownOutput();
    String d = rec.next();
    assertTrue(d.startsWith("disconnected connection lost") && d.contains("inside a frame"), d);
  }

  @Test
  void closeSendsGoodbyeAndFailsPending() throws Exception {
    Recorder rec = new Recorder();
    FakeAgent.Conn c = connect(agent.builder("n1").listener(rec));
    CompletableFuture<byte[]> outstanding = client.request("p", utf8("x"), Duration.ofSeconds(30));
    c.next(BodyCase.REQUEST);
    client.close();
    assertEquals("client closed", c.next(BodyCase.GOODBYE).getGoodbye().getReason());
    assertEquals(ErrorCode.CLOSED, codeOf(outstanding));
    assertTrue(c.awaitEof());
    assertFalse(client.isConnected());
    assertTrue(agent.noConnWithin(300), "no reconnect after close");
    assertTrue(rec.events.isEmpty(), "no disconnected event for a close: " + rec.events);
    WarpmeshException e = assertThrows(WarpmeshException.class, () -> client.send("p", utf8("x")));
    assertEquals(ErrorCode.CLOSED, e.code());
    assertTrue(e.detail().contains("closed"));
    client.close(); // idempotent
  }

  @Test
  void aWriterIsSlowedByTheSocketAndCloseStillReturns() throws Exception {
    FakeAgent.Conn c = connect(agent.builder("n1"));
    c.paused = true;
    // 600 MB cannot fit in the socket buffers: the writer blocks until the agent reads or we close.
    CompletableFuture<Throwable> writer =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                for (int i = 0; i < 10_000; i++) client.send("p", new byte[60_000]);
                return null;
              } catch (Throwable t) {
                return t;
              }
            });
    Thread.sleep(200);
    assertFalse(writer.isDone(), "the writer is held back while the agent does not read");
    client.close();
    Throwable t = writer.get(10, TimeUnit.SECONDS);
    assertTrue(t instanceof WarpmeshException, "writer failed with " + t);
    assertEquals(ErrorCode.CLOSED, ((WarpmeshException) t).code());
    assertFalse(client.isConnected());
  }

  @Test
  void closeDoesNotHangWhenTheAgentNeverAnswersGoodbye() throws Exception {
    agent.answerGoodbye = false;
    FakeAgent.Conn c = connect(agent.builder("n1"));
    client.close();
    c.next(BodyCase.GOODBYE);
    assertTrue(c.awaitEof());
  }

  @Test
  void closeWhileReconnectingStopsRetrying() throws Exception {
    Recorder rec = new Recorder();
    FakeAgent.Conn c = connect(agent.builder("n1").listener(rec));
    agent.close(); // nothing listens any more
    c.close();
    assertTrue(rec.next().startsWith("disconnected "));
    client.close();
    assertFalse(client.isConnected());
  }
}
