package dev.warpmesh.agent;

import dev.warpmesh.agent.proto.Peer;
import dev.warpmesh.agent.proto.PeerStats;
import dev.warpmesh.agent.proto.Stats;
import java.util.ArrayList;
import java.util.List;

/** Generated protobuf types to the library's public types. */
final class Convert {
  private Convert() {}

  static PeerInfo peer(Peer p) {
    return new PeerInfo(
        p.getId(), p.getRole(), p.getAddress(), p.getPort(), p.getMetaMap(), p.getTopicsList());
  }

  static List<PeerInfo> peers(List<Peer> list) {
    List<PeerInfo> out = new ArrayList<>(list.size());
    for (Peer p : list) out.add(peer(p));
    return List.copyOf(out);
  }

  static NodeStats stats(Stats s) {
    List<NodeStats.PeerSession> sessions = new ArrayList<>(s.getPeerStatsCount());
    for (PeerStats p : s.getPeerStatsList()) {
      sessions.add(
          new NodeStats.PeerSession(
              p.getId(),
              p.getRttMs(),
              p.getPacketsSent(),
              p.getPacketsReceived(),
              p.getRetransmits(),
              p.getBytesInFlight()));
    }
    return new NodeStats(
        s.getMessagesSent(),
        s.getMessagesReceived(),
        s.getRequestsSent(),
        s.getRequestsSucceeded(),
        s.getRequestsFailed(),
        s.getRequestsTimedOut(),
        s.getRequestsServed(),
        s.getUndeliverable(),
        s.getPeers(),
        s.getCoordinatorsUp(),
        sessions);
  }

  static Player player(dev.warpmesh.agent.proto.Player p) {
    return new Player(p.getName(), p.getXuid(), p.getServer(), p.getProxy(), p.getFieldsMap());
  }

  static List<Player> players(List<dev.warpmesh.agent.proto.Player> list) {
    List<Player> out = new ArrayList<>(list.size());
    for (dev.warpmesh.agent.proto.Player p : list) out.add(player(p));
    return List.copyOf(out);
  }

  static ServerInfo server(dev.warpmesh.agent.proto.ServerInfo s) {
    return new ServerInfo(
        s.getId(), s.getRole(), s.getState(), s.getMode(), s.getTagsList(), s.getPlayers(), s.getMax(), s.getFieldsMap());
  }

  static List<ServerInfo> servers(List<dev.warpmesh.agent.proto.ServerInfo> list) {
    List<ServerInfo> out = new ArrayList<>(list.size());
    for (dev.warpmesh.agent.proto.ServerInfo s : list) out.add(server(s));
    return List.copyOf(out);
  }

  static TransferDone transferDone(dev.warpmesh.agent.proto.TransferDone t) {
    return new TransferDone(t.getPlayer(), t.getServer(), t.getFrom(), t.getVia());
  }

  /** The call, or null when its kind is one this client does not know. */
  static ServiceCall serviceCall(dev.warpmesh.agent.proto.ServiceCall c) {
    ServiceCall.Kind kind = ServiceCall.Kind.fromNumber(c.getKindValue());
    if (kind == null) return null;
    return new ServiceCall(
        c.getId(), kind, player(c.getPlayer()), c.getServer(), c.getFrom(), c.getText(), c.getPlayers(), c.getArriving());
  }

  static WarpmeshException error(dev.warpmesh.agent.proto.Error e) {
    return new WarpmeshException(
        ErrorCode.fromNumber(e.getCodeValue()), e.getMessage(), e.getFatal(), null);
  }

  static dev.warpmesh.agent.proto.Delivery delivery(Delivery d) {
    return dev.warpmesh.agent.proto.Delivery.forNumber(d.number());
  }
}
