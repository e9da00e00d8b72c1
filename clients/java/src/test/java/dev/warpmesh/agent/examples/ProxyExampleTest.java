package dev.warpmesh.agent.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.warpmesh.agent.ErrorCode;
import dev.warpmesh.agent.FakeAgent;
import dev.warpmesh.agent.Player;
import dev.warpmesh.agent.ServiceCall;
import dev.warpmesh.agent.WarpmeshClient;
import dev.warpmesh.agent.proto.AgentMessage;
import dev.warpmesh.agent.proto.ClientMessage.BodyCase;
import dev.warpmesh.agent.proto.PlayerResult;
import dev.warpmesh.agent.proto.ServerInfo;
import dev.warpmesh.agent.proto.ServerList;
import dev.warpmesh.agent.proto.ServiceAnswer;
import dev.warpmesh.agent.proto.TransferDone;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 20, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ProxyExampleTest {
  static Player steve(String proxy) {
    return new Player("Steve", "", "lobby-1", proxy, Map.of());
  }

  @Test
  void theProxyMovesOnlyItsOwnPlayers() {
    ProxyExample p = new ProxyExample("proxy-1");
    assertNull(p.move(new ServiceCall(1, ServiceCall.Kind.MOVE, steve("proxy-1"), "game-1", "", "", 0, 0)));
    assertEquals("game-1", p.movedTo("Steve"));
    assertEquals(
        "Steve is not connected through proxy-1",
        p.move(new ServiceCall(2, ServiceCall.Kind.MOVE, steve("proxy-2"), "game-2", "", "", 0, 0)));
    assertEquals("game-1", p.movedTo("Steve"));
  }

  @Test
  void theServerRefusesNewcomersDuringAGame() {
    ServerExample s = new ServerExample();
    ServiceCall req = new ServiceCall(1, ServiceCall.Kind.TRANSFER_REQUEST, steve("proxy-1"), "", "lobby-1", "", 3, 0);
    assertNull(s.admit(req));
    s.setInGame(true);
    assertEquals("a game is running on this server", s.admit(req));
  }

  @Test
  void theProxyAnswersMovesThroughTheAgent() throws Exception {
    try (FakeAgent agent = FakeAgent.unix();
        WarpmeshClient client = new ProxyExample("proxy-1").configure(WarpmeshClient.builder().socketPath(agent.socketPath)).connect()) {
      FakeAgent.Conn c = agent.nextConn();
      dev.warpmesh.agent.proto.Hello h = c.next(BodyCase.HELLO).getHello();
      assertEquals("proxy", h.getRole());
      assertEquals(3, h.getHandlesCount());
      c.send(
          AgentMessage.newBuilder()
              .setServiceCall(
                  dev.warpmesh.agent.proto.ServiceCall.newBuilder()
                      .setId(4)
                      .setKind(dev.warpmesh.agent.proto.ServiceCall.Kind.MOVE)
                      .setPlayer(dev.warpmesh.agent.proto.Player.newBuilder().setName("Steve").setServer("lobby-1").setProxy("proxy-1"))
                      .setServer("game-1"))
              .build());
      assertEquals(ServiceAnswer.newBuilder().setId(4).setOk(true).build(), c.next(BodyCase.SERVICE_ANSWER).getServiceAnswer());
    }
  }

  @Test
  void consoleCommandsAnswerInOneLine() throws Exception {
    try (FakeAgent agent = FakeAgent.unix()) {
      agent.responder =
          m -> {
            switch (m.getBodyCase()) {
              case LOCATE:
                PlayerResult.Builder r = PlayerResult.newBuilder().setId(m.getLocate().getId());
                if (m.getLocate().getPlayer().equals("Steve")) {
                  r.setFound(true).setPlayer(dev.warpmesh.agent.proto.Player.newBuilder().setName("Steve").setServer("lobby-1").setProxy("proxy-1"));
                }
                return AgentMessage.newBuilder().setPlayerResult(r).build();
              case TRANSFER:
                if (m.getTransfer().hasSelector()) {
                  return AgentMessage.newBuilder()
                      .setError(
                          dev.warpmesh.agent.proto.Error.newBuilder()
                              .setId(m.getTransfer().getId())
                              .setCodeValue(ErrorCode.SERVER_FULL.number())
                              .setMessage("every server matching skywars is full"))
                      .build();
                }
                return AgentMessage.newBuilder()
                    .setTransferDone(
                        TransferDone.newBuilder().setId(m.getTransfer().getId()).setPlayer("Steve").setServer(m.getTransfer().getServer())
                            .setFrom("lobby-1").setVia("proxy-1"))
                    .build();
              case GET_SERVERS:
                return AgentMessage.newBuilder()
                    .setServerList(
                        ServerList.newBuilder()
                            .setId(m.getGetServers().getId())
                            .addServers(ServerInfo.newBuilder().setId("game-1").setState("lobby").setMode("skywars").setPlayers(3).setMax(8))
                            .addServers(ServerInfo.newBuilder().setId("lobby-1").setState("lobby").setPlayers(1)))
                    .build();
              default:
                return null;
            }
          };
      try (WarpmeshClient client = WarpmeshClient.builder().id("ctl").socketPath(agent.socketPath).services(true).connect()) {
        assertEquals("Steve is on lobby-1 (via proxy-1)", ExampleCommands.run(client, "where Steve"));
        assertEquals("Bob is not online", ExampleCommands.run(client, "where Bob"));
        assertEquals("Steve moved from lobby-1 to game-1 (by proxy-1)", ExampleCommands.run(client, "transfer Steve game-1"));
        assertEquals("failed: SERVER_FULL: every server matching skywars is full", ExampleCommands.run(client, "play Steve skywars"));
        assertEquals("game-1 lobby skywars 3/8\nlobby-1 lobby - 1/∞", ExampleCommands.run(client, "servers"));
        assertEquals("usage: where PLAYER", ExampleCommands.run(client, "where"));
        assertNull(ExampleCommands.run(client, "dance"));
      }
    }
  }
}
