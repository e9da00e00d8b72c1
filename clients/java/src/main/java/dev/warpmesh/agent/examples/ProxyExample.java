package dev.warpmesh.agent.examples;

import dev.warpmesh.agent.Player;
import dev.warpmesh.agent.ServerInfo;
import dev.warpmesh.agent.ServiceCall;
import dev.warpmesh.agent.WarpmeshClient;
import dev.warpmesh.agent.WarpmeshListener;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The proxy of a Bedrock network on the network services (what a WaterdogPE plugin would do):
 *
 * <ul>
 *   <li>performs the moves the services ask of it (a transfer of one of its players, started by any
 *       node: {@code ServiceCall.MOVE}); here it records where the player now is and prints it, where
 *       WaterdogPE would call {@code player.connect(server)};
 *   <li>shows messages ({@code MESSAGE}) and disconnects players ({@code KICK}) on request;
 *   <li>prints the network's player and server events;
 *   <li>takes console commands on stdin ({@link ExampleCommands}): {@code where}, {@code transfer},
 *       {@code play}, {@code players}, {@code servers}, {@code message}, {@code kick}.
 * </ul>
 *
 * The downstream servers announce the players (see {@link ServerExample}), naming this proxy.
 *
 * <pre>
 * java -cp clients/java/build/warpmesh-client.jar:/usr/share/java/protobuf.jar \
 *   dev.warpmesh.agent.examples.ProxyExample [ID]
 * </pre>
 *
 * The agent's socket comes from WARPMESH_AGENT_SOCKET (default /tmp/warpmesh-agent.sock).
 */
public final class ProxyExample {
  /** Players this proxy moved, and where to (a real proxy has its own session list). */
  private final Map<String, String> movedTo = new ConcurrentHashMap<>();
  private final String id;

  ProxyExample(String id) {
    this.id = id;
  }

  /** MOVE: connect the player to the target (refused when they are not connected through this proxy). */
  String move(ServiceCall call) {
    Player p = call.player();
    if (!p.proxy().equals(id)) return p.name() + " is not connected through " + id;
    movedTo.put(p.name(), call.server());
    System.out.println("moving " + p.name() + ": " + p.server() + " -> " + call.server());
    return null;
  }

  /** Where this proxy last moved {@code player}, or null. */
  String movedTo(String player) {
    return movedTo.get(player);
  }

  /** The builder of this proxy's client: services, events and the handlers. */
  WarpmeshClient.Builder configure(WarpmeshClient.Builder b) {
    return b.id(id)
        .role("proxy")
        .playerEvents(true)
        .onServiceCall(ServiceCall.Kind.MOVE, this::move)
        .onServiceCall(
            ServiceCall.Kind.MESSAGE,
            c -> {
              System.out.println("[to " + c.player().name() + "] " + c.text());
              return null;
            })
        .onServiceCall(
            ServiceCall.Kind.KICK,
            c -> {
              System.out.println("kicking " + c.player().name() + ": " + c.text());
              return null;
            })
        .listener(
            new WarpmeshListener() {
              @Override
              public void onPlayerJoined(Player p) {
                System.out.println("+ " + p.name() + " on " + p.server());
              }

              @Override
              public void onPlayerLeft(Player p) {
                System.out.println("- " + p.name() + " left " + p.server());
              }

              @Override
              public void onPlayerMoved(Player p, String from) {
                System.out.println("> " + p.name() + ": " + from + " -> " + p.server());
              }

              @Override
              public void onServerUpdated(ServerInfo s) {
                System.out.println("server " + s.id() + ": " + s.state() + " " + s.mode() + " max " + s.max());
              }

              @Override
              public void onServerRemoved(String sid) {
                System.out.println("server " + sid + " left");
              }

              @Override
              public void onDisconnected(String reason) {
                System.out.println("agent connection lost (" + reason + "), reconnecting");
              }
            });
  }

  /** Runs the proxy until stdin ends. */
  public static void main(String[] args) throws IOException {
    ProxyExample proxy = new ProxyExample(args.length > 0 ? args[0] : "proxy-1");
    WarpmeshClient client = proxy.configure(WarpmeshClient.builder()).connect();
    System.out.println(proxy.id + " joined the mesh; " + ExampleCommands.USAGE);
    try (client;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        if (line.isBlank()) continue;
        String out = ExampleCommands.run(client, line);
        System.out.println(out != null ? out : ExampleCommands.USAGE);
      }
    }
  }
}
