package dev.warpmesh.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.warpmesh.agent.proto.AgentMessage;
import dev.warpmesh.agent.proto.ClientMessage;
import dev.warpmesh.agent.proto.ClientMessage.BodyCase;
import dev.warpmesh.agent.proto.Hello;
import dev.warpmesh.agent.proto.PlayerEvent;
import dev.warpmesh.agent.proto.PlayerJoin;
import dev.warpmesh.agent.proto.PlayerResult;
import dev.warpmesh.agent.proto.Selector;
import dev.warpmesh.agent.proto.ServerEvent;
import dev.warpmesh.agent.proto.ServiceAnswer;
import dev.warpmesh.agent.proto.Transfer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The network services calls against the fake agent: frames written, answers decoded, calls answered. */
@Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ServicesTest {
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

  static dev.warpmesh.agent.proto.Player protoPlayer(String name, String server, String proxy) {
    return dev.warpmesh.agent.proto.Player.newBuilder()
        .setName(name)
        .setXuid("2535400000000001")
        .setServer(server)
        .setProxy(proxy)
        .putFields("rank", "vip")
        .build();
  }

  static dev.warpmesh.agent.proto.ServerInfo protoServer(String id, String state, int players, int max) {
    return dev.warpmesh.agent.proto.ServerInfo.newBuilder()
        .setId(id)
        .setRole("downstream")
        .setState(state)
        .setMode("skywars")
        .addTags("eu")
        .setPlayers(players)
        .setMax(max)
        .putFields("map", "islands")
        .build();
  }

  private FakeAgent.Conn connect(WarpmeshClient.Builder b) throws InterruptedException {
    client = b.connect();
    FakeAgent.Conn c = agent.nextConn();
    c.next(BodyCase.HELLO);
    return c;
  }

  static WarpmeshException failure(CompletableFuture<?> f) throws Exception {
    Throwable t = WarpmeshClientTest.failure(f);
    assertTrue(t instanceof WarpmeshException, "expected WarpmeshException, got " + t);
    return (WarpmeshException) t;
  }

  /** Records the services events as strings. */
  static final class Recorder implements WarpmeshListener {
    final BlockingQueue<String> events = new LinkedBlockingQueue<>();

    String next() throws InterruptedException {
      String e = events.poll(FakeAgent.WAIT_MS, TimeUnit.MILLISECONDS);
      assertNotNull(e, "no listener event");
      return e;
    }

    @Override
    public void onPlayerJoined(Player p) {
      events.add("joined " + p);
    }

    @Override
    public void onPlayerLeft(Player p) {
      events.add("left " + p.name() + " " + p.server());
    }

    @Override
    public void onPlayerMoved(Player p, String from) {
      events.add("moved " + p.name() + " " + from + "->" + p.server());
    }

    @Override
    public void onServerUpdated(ServerInfo s) {
      events.add("server " + s);
    }

    @Override
    public void onServerRemoved(String id) {
      events.add("removed " + id);
    }

    @Override
    public void onError(WarpmeshException e) {
      events.add("error " + e.code() + " " + e.detail());
    }

    @Override
    public void onReconnected() {
      events.add("reconnected");
    }
  }

  // ------------------------------------------------------------------ hello

  @Test
  void helloCarriesTheServicesOptions() throws Exception {
    client =
        agent
            .builder("lobby-1")
            .server(ServerSettings.create().state(ServerSettings.LOBBY).mode("skywars").max(50).tags(List.of("eu")))
            .playerEvents(true)
            .onServiceCall(ServiceCall.Kind.TRANSFER_REQUEST, c -> null)
            .onServiceCall(ServiceCall.Kind.KICK, c -> null)
            .connect();
    Hello h = agent.nextConn().next(BodyCase.HELLO).getHello();
    assertTrue(h.getServices());
    assertTrue(h.getPlayerEvents());
    assertTrue(h.hasServer());
    assertEquals("lobby", h.getServer().getState());
    assertEquals("skywars", h.getServer().getMode());
    assertEquals(50, h.getServer().getMax());
    assertTrue(h.getServer().getSetMax());
    assertEquals(List.of("eu"), h.getServer().getTagsList());
    assertTrue(h.getServer().getSetTags());
    assertFalse(h.getServer().getSetFields(), "fields left unset");
    assertEquals(
        List.of(dev.warpmesh.agent.proto.ServiceCall.Kind.TRANSFER_REQUEST, dev.warpmesh.agent.proto.ServiceCall.Kind.KICK),
        h.getHandlesList());
  }

  @Test
  void helloWithoutServicesSaysSoAndServicesCallsFailLocally() throws Exception {
    FakeAgent.Conn c = connect(agent.builder("plain"));
    WarpmeshException e = assertThrows(WarpmeshException.class, () -> client.locate("Steve"));
    assertEquals(ErrorCode.SERVICES_OFF, e.code());
    assertTrue(e.detail().contains("services(true)"), e.detail());
    assertEquals(ErrorCode.SERVICES_OFF, failure(client.transferAsync("Steve", "game-1", Duration.ofSeconds(1))).code());
    client.send("x", new byte[0]);
    assertEquals(BodyCase.SEND, c.next().getBodyCase(), "nothing was written for the refused calls");
  }

  @Test
  void aProxyHelloHasServicesButNoServer() throws Exception {
    client = agent.builder("proxy-1").role("proxy").services(true).onServiceCall(ServiceCall.Kind.MOVE, c -> null).connect();
    Hello h = agent.nextConn().next(BodyCase.HELLO).getHello();
    assertTrue(h.getServices());
    assertFalse(h.hasServer());
    assertFalse(h.getPlayerEvents());
    assertEquals(List.of(dev.warpmesh.agent.proto.ServiceCall.Kind.MOVE), h.getHandlesList());
  }

  // ------------------------------------------------------------------ directory and registry

  @Test
  void joinLeaveAndSetServerFrames() throws Exception {
    agent.responder =
        m -> m.hasPlayerJoin() ? WarpmeshClientTest.result(m.getPlayerJoin().getId(), 0)
            : m.hasPlayerLeave() ? WarpmeshClientTest.result(m.getPlayerLeave().getId(), m.getPlayerLeave().getPlayer().equalsIgnoreCase("steve") ? 1 : 0)
            : m.hasSetServer() ? WarpmeshClientTest.result(m.getSetServer().getId(), 0)
            : null;
    FakeAgent.Conn c = connect(agent.builder("lobby-1").server(ServerSettings.create().state("starting").max(2)));
    client.join("Steve", "2535400000000001", "proxy-1", Map.of("rank", "vip"));
    PlayerJoin j = c.next(BodyCase.PLAYER_JOIN).getPlayerJoin();
    assertTrue(j.getId() != 0, "an id, for the answer");
    assertEquals("Steve", j.getName());
    assertEquals("2535400000000001", j.getXuid());
    assertEquals("proxy-1", j.getProxy());
    assertEquals(Map.of("rank", "vip"), j.getFieldsMap());
    client.join("Alex", "");
    assertEquals("", c.next(BodyCase.PLAYER_JOIN).getPlayerJoin().getProxy());
    assertEquals(List.of("Alex", "Steve"), sorted(client.hostedPlayers()));

    assertTrue(client.leave("STEVE"));
    assertEquals("STEVE", c.next(BodyCase.PLAYER_LEAVE).getPlayerLeave().getPlayer());
    assertFalse(client.leave("nobody"));
    c.next(BodyCase.PLAYER_LEAVE);
    assertEquals(List.of("Alex"), client.hostedPlayers());

    client.setServer(ServerSettings.create().state("lobby").fields(Map.of()));
    dev.warpmesh.agent.proto.ServerSettings s = c.next(BodyCase.SET_SERVER).getSetServer().getServer();
    assertEquals("lobby", s.getState());
    assertFalse(s.getSetMax(), "max unset: keeps its value");
    assertFalse(s.getSetTags());
    assertTrue(s.getSetFields(), "an empty map replaces the fields");
    assertEquals(ServerSettings.create().state("lobby").max(2).fields(Map.of()), client.serverSettings(), "merged");
  }

  private static List<String> sorted(List<String> l) {
    List<String> c = new ArrayList<>(l);
    c.sort(null);
    return c;
  }

  @Test
  void locateFoundAndNotFound() throws Exception {
    agent.responder =
        m -> {
          if (!m.hasLocate()) return null;
          PlayerResult.Builder r = PlayerResult.newBuilder().setId(m.getLocate().getId());
          if (m.getLocate().getPlayer().equalsIgnoreCase("steve")) r.setFound(true).setPlayer(protoPlayer("Steve", "lobby-1", "proxy-1"));
          return AgentMessage.newBuilder().setPlayerResult(r).build();
        };
    FakeAgent.Conn c = connect(agent.builder("n1").services(true));
    assertEquals(new Player("Steve", "2535400000000001", "lobby-1", "proxy-1", Map.of("rank", "vip")), client.locate("steve"));
    assertEquals("steve", c.next(BodyCase.LOCATE).getLocate().getPlayer());
    assertNull(client.locate("Herobrine"));
  }

  @Test
  void listPlayersAndServersDecode() throws Exception {
    agent.responder =
        m -> {
          if (m.hasListPlayers()) {
            return AgentMessage.newBuilder()
                .setPlayerList(
                    dev.warpmesh.agent.proto.PlayerList.newBuilder()
                        .setId(m.getListPlayers().getId())
                        .setCount(7)
                        .addPlayers(protoPlayer("Steve", "game-1", ""))
                        .addPlayers(protoPlayer("Alex", "game-1", "")))
                .build();
          }
          if (m.hasGetServers()) {
            return AgentMessage.newBuilder()
                .setServerList(
                    dev.warpmesh.agent.proto.ServerList.newBuilder()
                        .setId(m.getGetServers().getId())
                        .addServers(protoServer("game-1", "lobby", 2, 16))
                        .addServers(protoServer("game-2", "in-game", 16, 16)))
                .build();
          }
          return null;
        };
    FakeAgent.Conn c = connect(agent.builder("n1").services(true));
    PlayerList l = client.listPlayers("skywars", null, 2);
    assertEquals(7, l.count());
    assertEquals(List.of("Steve", "Alex"), l.players().stream().map(Player::name).toList());
    dev.warpmesh.agent.proto.ListPlayers lp = c.next(BodyCase.LIST_PLAYERS).getListPlayers();
    assertEquals("skywars", lp.getMode());
    assertEquals("", lp.getServer());
    assertEquals(2, lp.getLimit());

    List<ServerInfo> servers = client.servers("skywars", List.of("lobby", "in-game"), "eu");
    assertEquals(
        new ServerInfo("game-1", "downstream", "lobby", "skywars", List.of("eu"), 2, 16, Map.of("map", "islands")), servers.get(0));
    assertEquals("in-game", servers.get(1).state());
    dev.warpmesh.agent.proto.GetServers gs = c.next(BodyCase.GET_SERVERS).getGetServers();
    assertEquals("skywars", gs.getMode());
    assertEquals(List.of("lobby", "in-game"), gs.getStatesList());
    assertEquals("eu", gs.getTag());
    assertThrows(IllegalArgumentException.class, () -> client.listPlayers(null, null, -1));
  }

  // ------------------------------------------------------------------ transfers, messages, kicks

  @Test
  void transferToAServerResolvesWithTransferDone() throws Exception {
    agent.responder =
        m -> {
          if (!m.hasTransfer()) return null;
          Transfer t = m.getTransfer();
          return AgentMessage.newBuilder()
              .setTransferDone(
                  dev.warpmesh.agent.proto.TransferDone.newBuilder()
                      .setId(t.getId())
                      .setPlayer("Steve")
                      .setServer(t.getServer())
                      .setFrom("lobby-1")
                      .setVia("proxy-1"))
              .build();
        };
    FakeAgent.Conn c = connect(agent.builder("n1").services(true));
    assertEquals(new TransferDone("Steve", "game-1", "lobby-1", "proxy-1"), client.transfer("steve", "game-1", Duration.ofMillis(1500)));
    Transfer t = c.next(BodyCase.TRANSFER).getTransfer();
    assertEquals("steve", t.getPlayer());
    assertEquals("game-1", t.getServer());
    assertFalse(t.hasSelector());
    assertEquals(1500, t.getTimeoutMs());
    client.transfer("steve", "game-2");
    assertEquals(5000, c.next(BodyCase.TRANSFER).getTransfer().getTimeoutMs(), "the client's default timeout");
  }

  @Test
  void transferWithASelectorEncodesItsFallbacks() throws Exception {
    agent.responder =
        m -> m.hasTransfer()
            ? AgentMessage.newBuilder()
                .setTransferDone(dev.warpmesh.agent.proto.TransferDone.newBuilder().setId(m.getTransfer().getId()).setServer("game-3"))
                .build()
            : null;
    FakeAgent.Conn c = connect(agent.builder("n1").services(true));
    ServerSelector sel =
        ServerSelector.create()
            .mode("skywars")
            .states(List.of("lobby"))
            .tag("eu")
            .exclude(List.of("game-1"))
            .fallback(ServerSelector.create().mode("hub").fallbackServer("lobby-1"));
    assertEquals("game-3", client.transfer("Steve", sel, Duration.ofSeconds(2)).server());
    Transfer t = c.next(BodyCase.TRANSFER).getTransfer();
    assertEquals("", t.getServer());
    Selector s = t.getSelector();
    assertEquals("skywars", s.getMode());
    assertEquals(List.of("lobby"), s.getStatesList());
    assertEquals("eu", s.getTag());
    assertEquals(List.of("game-1"), s.getExcludeList());
    assertEquals("", s.getFallbackServer());
    assertEquals("hub", s.getFallback().getMode());
    assertEquals("lobby-1", s.getFallback().getFallbackServer());
  }

  @ParameterizedTest
  @EnumSource(
      value = ErrorCode.class,
      names = {"UNKNOWN_PLAYER", "NO_SUCH_SERVER", "SERVER_FULL", "REFUSED", "TARGET_DOWN", "TRANSFER_CONFLICT", "TIMEOUT", "PEER_DOWN"})
  void aFailedTransferThrowsTheAgentsCode(ErrorCode code) throws Exception {
    agent.responder =
        m -> m.hasTransfer()
            ? AgentMessage.newBuilder()
                .setError(
                    dev.warpmesh.agent.proto.Error.newBuilder()
                        .setId(m.getTransfer().getId())
                        .setCodeValue(code.number())
                        .setMessage("because " + code))
                .build()
            : null;
    connect(agent.builder("n1").services(true));
    WarpmeshException e = assertThrows(WarpmeshException.class, () -> client.transfer("Steve", "game-1"));
    assertEquals(code, e.code());
    assertEquals("because " + code, e.detail());
    assertEquals(code, failure(client.transferAsync("Steve", "game-1", Duration.ofSeconds(1))).code());
  }

  @Test
  void aTransferTheAgentNeverAnswersTimesOutLocally() throws Exception {
    connect(agent.builder("n1").services(true));
    long t0 = System.nanoTime();
    assertEquals(ErrorCode.TIMEOUT, failure(client.transferAsync("Steve", "game-1", Duration.ofMillis(50))).code());
    assertTrue((System.nanoTime() - t0) / 1_000_000 >= 50, "not before the transfer's own timeout");
  }

  @Test
  void messageAndKickFrames() throws Exception {
    agent.responder =
        m -> m.hasMessagePlayer() ? WarpmeshClientTest.result(m.getMessagePlayer().getId(), 1)
            : m.hasKickPlayer() ? AgentMessage.newBuilder()
                .setError(
                    dev.warpmesh.agent.proto.Error.newBuilder()
                        .setId(m.getKickPlayer().getId())
                        .setCodeValue(ErrorCode.UNKNOWN_PLAYER.number())
                        .setMessage("unknown player"))
                .build()
            : null;
    FakeAgent.Conn c = connect(agent.builder("n1").services(true));
    client.message("Steve", "hello there");
    dev.warpmesh.agent.proto.MessagePlayer mp = c.next(BodyCase.MESSAGE_PLAYER).getMessagePlayer();
    assertEquals("Steve", mp.getPlayer());
    assertEquals("hello there", mp.getText());
    assertEquals(5000, mp.getTimeoutMs());
    WarpmeshException e = assertThrows(WarpmeshException.class, () -> client.kick("Ghost", "bye"));
    assertEquals(ErrorCode.UNKNOWN_PLAYER, e.code());
    dev.warpmesh.agent.proto.KickPlayer k = c.next(BodyCase.KICK_PLAYER).getKickPlayer();
    assertEquals("Ghost", k.getPlayer());
    assertEquals("bye", k.getReason());
  }

  @Test
  void badArgumentsThrowAtOnce() throws Exception {
    connect(agent.builder("n1").services(true));
    assertThrows(IllegalArgumentException.class, () -> client.locate(""));
    assertThrows(IllegalArgumentException.class, () -> client.join("", ""));
    assertThrows(IllegalArgumentException.class, () -> client.transfer("Steve", ""));
    assertThrows(IllegalArgumentException.class, () -> client.transfer("Steve", "game-1", Duration.ZERO));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ServerSettings.create().state("In Game"));
    assertTrue(e.getMessage().contains("state"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> ServerSettings.create().max(-1));
    assertThrows(IllegalArgumentException.class, () -> ServerSelector.create().states(List.of("")));
  }

  // ------------------------------------------------------------------ service calls and events

  static AgentMessage call(long id, dev.warpmesh.agent.proto.ServiceCall.Kind kind, String server, String text) {
    return AgentMessage.newBuilder()
        .setServiceCall(
            dev.warpmesh.agent.proto.ServiceCall.newBuilder()
                .setId(id)
                .setKind(kind)
                .setPlayer(protoPlayer("Steve", "lobby-1", "proxy-1"))
                .setServer(server)
                .setFrom("lobby-1")
                .setText(text))
        .build();
  }

  @Test
  void serviceCallsAreAnsweredByTheirHandlers() throws Exception {
    BlockingQueue<ServiceCall> seen = new LinkedBlockingQueue<>();
    CompletableFuture<String> slowMove = new CompletableFuture<>();
    FakeAgent.Conn c =
        connect(
            agent
                .builder("proxy-1")
                .services(true)
                .onServiceCallAsync(
                    ServiceCall.Kind.MOVE,
                    call -> {
                      seen.add(call);
                      return slowMove;
                    })
                .onServiceCall(ServiceCall.Kind.MESSAGE, call -> call.text().isEmpty() ? "empty text" : null)
                .onServiceCall(
                    ServiceCall.Kind.KICK,
                    call -> {
                      throw new IllegalStateException("kicks are off today");
                    }));
    c.send(call(7, dev.warpmesh.agent.proto.ServiceCall.Kind.MOVE, "game-1", ""));
    ServiceCall move = seen.poll(FakeAgent.WAIT_MS, TimeUnit.MILLISECONDS);
    assertEquals(
        new ServiceCall(7, ServiceCall.Kind.MOVE, new Player("Steve", "2535400000000001", "lobby-1", "proxy-1", Map.of("rank", "vip")), "game-1", "lobby-1", "", 0, 0),
        move);
    c.send(call(8, dev.warpmesh.agent.proto.ServiceCall.Kind.MESSAGE, "", "hi"));
    c.send(call(9, dev.warpmesh.agent.proto.ServiceCall.Kind.MESSAGE, "", ""));
    c.send(call(10, dev.warpmesh.agent.proto.ServiceCall.Kind.KICK, "", "bye"));
    c.send(call(11, dev.warpmesh.agent.proto.ServiceCall.Kind.TRANSFER_REQUEST, "", ""));
    // The move is still in progress: the other answers come first.
    assertEquals(ServiceAnswer.newBuilder().setId(8).setOk(true).build(), c.next(BodyCase.SERVICE_ANSWER).getServiceAnswer());
    assertEquals(ServiceAnswer.newBuilder().setId(9).setReason("empty text").build(), c.next(BodyCase.SERVICE_ANSWER).getServiceAnswer());
    assertEquals(ServiceAnswer.newBuilder().setId(10).setReason("kicks are off today").build(), c.next(BodyCase.SERVICE_ANSWER).getServiceAnswer());
    assertEquals(ServiceAnswer.newBuilder().setId(11).setReason("not handled by proxy-1").build(), c.next(BodyCase.SERVICE_ANSWER).getServiceAnswer());
    slowMove.complete(null);
    assertEquals(ServiceAnswer.newBuilder().setId(7).setOk(true).build(), c.next(BodyCase.SERVICE_ANSWER).getServiceAnswer());
  }

  @Test
  void aFailedAsyncHandlerRefusesWithItsMessage() throws Exception {
    BlockingQueue<ServiceCall> seen = new LinkedBlockingQueue<>();
    FakeAgent.Conn c =
        connect(
            agent
                .builder("game-1")
                .server(ServerSettings.create().state("lobby"))
                .onServiceCallAsync(
                    ServiceCall.Kind.TRANSFER_REQUEST,
                    call -> {
                      seen.add(call);
                      return CompletableFuture.failedFuture(new RuntimeException("whitelist only"));
                    }));
    c.send(
        AgentMessage.newBuilder()
            .setServiceCall(
                call(3, dev.warpmesh.agent.proto.ServiceCall.Kind.TRANSFER_REQUEST, "", "").getServiceCall().toBuilder()
                    .setPlayers(5)
                    .setArriving(2))
            .build());
    assertEquals(ServiceAnswer.newBuilder().setId(3).setReason("whitelist only").build(), c.next(BodyCase.SERVICE_ANSWER).getServiceAnswer());
    ServiceCall req = seen.poll(FakeAgent.WAIT_MS, TimeUnit.MILLISECONDS);
    assertEquals(5, req.players());
    assertEquals(2, req.arriving());
    assertEquals("lobby-1", req.from());
  }

  @Test
  void playerAndServerEventsReachTheListener() throws Exception {
    Recorder rec = new Recorder();
    FakeAgent.Conn c = connect(agent.builder("n1").playerEvents(true).listener(rec));
    c.send(AgentMessage.newBuilder().setPlayerEvent(PlayerEvent.newBuilder().setKind(PlayerEvent.Kind.JOINED).setPlayer(protoPlayer("Steve", "lobby-1", ""))).build());
    c.send(AgentMessage.newBuilder().setPlayerEvent(PlayerEvent.newBuilder().setKind(PlayerEvent.Kind.MOVED).setPlayer(protoPlayer("Steve", "game-1", "")).setFrom("lobby-1")).build());
    c.send(AgentMessage.newBuilder().setPlayerEvent(PlayerEvent.newBuilder().setKind(PlayerEvent.Kind.LEFT).setPlayer(protoPlayer("Steve", "game-1", ""))).build());
    c.send(AgentMessage.newBuilder().setServerEvent(ServerEvent.newBuilder().setInfo(protoServer("game-1", "full", 16, 16))).build());
    c.send(AgentMessage.newBuilder().setServerEvent(ServerEvent.newBuilder().setRemoved(true).setInfo(dev.warpmesh.agent.proto.ServerInfo.newBuilder().setId("game-1"))).build());
    assertEquals("joined " + new Player("Steve", "2535400000000001", "lobby-1", "", Map.of("rank", "vip")), rec.next());
    assertEquals("moved Steve lobby-1->game-1", rec.next());
    assertEquals("left Steve game-1", rec.next());
    assertEquals("server " + new ServerInfo("game-1", "downstream", "full", "skywars", List.of("eu"), 16, 16, Map.of("map", "islands")), rec.next());
    assertEquals("removed game-1", rec.next());
  }

  @Test
  void reconnectAnnouncesTheServerAndItsPlayersAgain() throws Exception {
    Recorder rec = new Recorder();
    agent.responder =
        m -> m.hasPlayerJoin() ? WarpmeshClientTest.result(m.getPlayerJoin().getId(), 0)
            : m.hasPlayerLeave() ? WarpmeshClientTest.result(m.getPlayerLeave().getId(), 1)
            : m.hasSetServer() ? WarpmeshClientTest.result(m.getSetServer().getId(), 0)
            : null;
    FakeAgent.Conn c = connect(agent.builder("lobby-1").server(ServerSettings.create().state("starting").mode("hub")).listener(rec));
    client.join("Steve", "1", "proxy-1", Map.of());
    client.join("Alex", "2");
    client.join("Bob", "3");
    client.leave("3"); // by XUID
    client.setServer(ServerSettings.create().state("lobby").max(20));
    c.next(BodyCase.PLAYER_JOIN);
    c.next(BodyCase.PLAYER_JOIN);
    c.next(BodyCase.PLAYER_JOIN);
    c.next(BodyCase.PLAYER_LEAVE);
    c.next(BodyCase.SET_SERVER);
    c.close();
    FakeAgent.Conn c2 = agent.nextConn();
    Hello h = c2.next(BodyCase.HELLO).getHello();
    assertTrue(h.getServices());
    assertEquals("lobby", h.getServer().getState());
    assertEquals("hub", h.getServer().getMode());
    assertEquals(20, h.getServer().getMax());
    List<String> again = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      PlayerJoin j = c2.next(BodyCase.PLAYER_JOIN).getPlayerJoin();
      assertEquals(0, j.getId(), "no answer asked");
      again.add(j.getName() + "/" + j.getXuid() + "/" + j.getProxy());
    }
    assertEquals(List.of("Alex/2/", "Steve/1/proxy-1"), sorted(again));
    assertEquals("reconnected", rec.next());
  }
}
