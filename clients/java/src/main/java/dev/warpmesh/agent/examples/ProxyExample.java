package dev.warpmesh.agent.examples;

import dev.warpmesh.agent.PeerInfo;
import dev.warpmesh.agent.MeshMessage;
import dev.warpmesh.agent.WarpmeshClient;
import dev.warpmesh.agent.WarpmeshException;
import dev.warpmesh.agent.WarpmeshListener;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;

/**
 * The proxy of a Bedrock network, as a warpmesh member (what a WaterdogPE plugin would do):
 *
 * <ul>
 *   <li>keeps a directory of players from the lists downstream servers publish on topic
 *       {@code players} (payload: {@code name1,name2,...}, the sender's full list);
 *   <li>answers requests {@code where <player>} with the server's id (an unknown player fails the
 *       request: the caller gets REMOTE_ERROR "unknown player ...");
 *   <li>reads commands on stdin: {@code transfer <player> <server>} sends {@code transfer <player>
 *       <server>} to the server the player is on, {@code where <player>} prints the answer locally.
 * </ul>
 *
 * <pre>
 * java -cp clients/java/build/warpmesh-client.jar:/usr/share/java/protobuf.jar \
 *   dev.warpmesh.agent.examples.ProxyExample [ID]
 * </pre>
 *
 * The agent's socket comes from WARPMESH_AGENT_SOCKET (default /tmp/warpmesh-agent.sock).
 */
public final class ProxyExample {
  /** Topic the downstreams publish their player lists on. */
  public static final String PLAYERS_TOPIC = "players";

  private final PlayerDirectory directory = new PlayerDirectory(PlayerDirectory.DEFAULT_MAX_PLAYERS);

  /** Answers a request text: {@code where <player>} → the server id. */
  synchronized byte[] answer(String from, String text) {
    String[] w = text.trim().split("\\s+");
    if (w.length == 2 && w[0].equals("where")) {
      String server = directory.where(w[1]);
      if (server == null) throw new IllegalArgumentException("unknown player " + w[1]);
      return server.getBytes(StandardCharsets.UTF_8);
    }
    throw new IllegalArgumentException("expected \"where <player>\", got \"" + text + "\"");
  }

  synchronized void onPlayers(String server, String list) {
    directory.update(server, list);
  }

  synchronized void onServerDown(String server) {
    directory.forget(server);
  }

  synchronized String where(String player) {
    return directory.where(player);
  }

  /** Runs the proxy until stdin ends. */
  public static void main(String[] args) throws IOException {
    String id = args.length > 0 ? args[0] : "proxy-1";
    ProxyExample proxy = new ProxyExample();
    WarpmeshClient client =
        WarpmeshClient.builder()
            .id(id)
            .role("proxy")
            .topic(PLAYERS_TOPIC)
            .onRequest((from, data) -> proxy.answer(from, new String(data, StandardCharsets.UTF_8)))
            .listener(
                new WarpmeshListener() {
                  @Override
                  public void onMessage(MeshMessage m) {
                    if (PLAYERS_TOPIC.equals(m.topic())) proxy.onPlayers(m.from(), new String(m.data(), StandardCharsets.UTF_8));
                  }

                  @Override
                  public void onPeerUp(PeerInfo p) {
                    System.out.println("up: " + p.id() + " (" + p.role() + ") " + p.meta());
                  }

                  @Override
                  public void onPeerDown(PeerInfo p, String reason) {
                    proxy.onServerDown(p.id());
                    System.out.println("down: " + p.id() + " (" + reason + ")");
                  }

                  @Override
                  public void onDisconnected(String reason) {
                    System.out.println("agent connection lost (" + reason + "), reconnecting");
                  }

                  @Override
                  public void onReconnected() {
                    System.out.println("reconnected to the agent");
                  }
                })
            .connect();
    System.out.println(id + " joined the mesh; peers: " + client.knownPeers().size());
    try (client;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        String[] w = line.trim().split("\\s+");
        try {
          if (w.length == 3 && w[0].equals("transfer")) {
            String at = proxy.where(w[1]);
            if (at == null) {
              System.out.println("unknown player " + w[1]);
              continue;
            }
            client.sendChecked(at, ("transfer " + w[1] + " " + w[2]).getBytes(StandardCharsets.UTF_8));
            System.out.println("asked " + at + " to transfer " + w[1] + " to " + w[2]);
          } else if (w.length == 2 && w[0].equals("where")) {
            String at = proxy.where(w[1]);
            System.out.println(w[1] + ": " + (at == null ? "unknown" : at));
          } else if (!line.isBlank()) {
            System.out.println("commands: transfer <player> <server> | where <player>");
          }
        } catch (WarpmeshException e) {
          System.out.println("failed: " + e.getMessage());
        }
      }
    }
  }
}
