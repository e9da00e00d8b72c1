package dev.warpmesh.agent.examples;

import dev.warpmesh.agent.Player;
import dev.warpmesh.agent.ServerSettings;
import dev.warpmesh.agent.ServiceCall;
import dev.warpmesh.agent.WarpmeshClient;
import dev.warpmesh.agent.WarpmeshListener;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * A downstream game server on the network services (what a Nukkit plugin would do):
 *
 * <ul>
 *   <li>lists itself in the registry: state {@code starting} until it is ready, then {@code lobby}; its
 *       mode and capacity from the command line;
 *   <li>announces the players it hosts ({@code join NAME [XUID]} / {@code leave NAME} on stdin stand for
 *       players connecting and disconnecting), naming the proxy they came through;
 *   <li>{@code start} / {@code end} switch the state to {@code in-game} / {@code lobby}: while a game
 *       runs, its transfer hook refuses newcomers;
 *   <li>locates and transfers players with the console commands of {@link ExampleCommands}.
 * </ul>
 *
 * <pre>
 * java -cp clients/java/build/warpmesh-client.jar:/usr/share/java/protobuf.jar \
 *   dev.warpmesh.agent.examples.ServerExample [ID [MODE [MAX [PROXY]]]]     (lobby-1 hub 20 proxy-1)
 * </pre>
 */
public final class ServerExample {
  private volatile boolean inGame;

  /** TRANSFER_REQUEST: state and capacity were checked by the services; refuse while a game runs. */
  String admit(ServiceCall call) {
    return inGame ? "a game is running on this server" : null;
  }

  void setInGame(boolean value) {
    inGame = value;
  }

  /** Runs the server until stdin ends. */
  public static void main(String[] args) throws IOException {
    String id = args.length > 0 ? args[0] : "lobby-1";
    String mode = args.length > 1 ? args[1] : "hub";
    int max = args.length > 2 ? Integer.parseInt(args[2]) : 20;
    String proxy = args.length > 3 ? args[3] : "proxy-1";
    ServerExample server = new ServerExample();
    WarpmeshClient client =
        WarpmeshClient.builder()
            .id(id)
            .role("downstream")
            .server(ServerSettings.create().state(ServerSettings.STARTING).mode(mode).max(max))
            .playerEvents(true)
            .onServiceCall(ServiceCall.Kind.TRANSFER_REQUEST, server::admit)
            .listener(
                new WarpmeshListener() {
                  @Override
                  public void onPlayerMoved(Player p, String from) {
                    System.out.println("> " + p.name() + ": " + from + " -> " + p.server());
                  }

                  @Override
                  public void onServerRemoved(String sid) {
                    System.out.println("server " + sid + " left");
                  }
                })
            .connect();
    // Worlds loaded: open for players.
    client.setServer(ServerSettings.create().state(ServerSettings.LOBBY));
    System.out.println(id + " (" + mode + ", max " + max + ") is open; join NAME [XUID] | leave NAME | start | end | "
        + ExampleCommands.USAGE);
    try (client;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        String[] w = line.trim().split("\\s+");
        if (w[0].isEmpty()) continue;
        switch (w[0]) {
          case "join":
            if (w.length < 2) break;
            client.join(w[1], w.length > 2 ? w[2] : "", proxy, Map.of());
            System.out.println(w[1] + " announced; the network has " + client.listPlayers("", "", 0).count() + " players");
            continue;
          case "leave":
            if (w.length < 2) break;
            System.out.println(client.leave(w[1]) ? w[1] + " left" : w[1] + " was not here");
            continue;
          case "start":
            server.setInGame(true);
            client.setServer(ServerSettings.create().state(ServerSettings.IN_GAME));
            System.out.println("game started: state in-game");
            continue;
          case "end":
            server.setInGame(false);
            client.setServer(ServerSettings.create().state(ServerSettings.LOBBY));
            System.out.println("game over: state lobby");
            continue;
          default:
            String out = ExampleCommands.run(client, line);
            if (out != null) {
              System.out.println(out);
              continue;
            }
        }
        System.out.println("join NAME [XUID] | leave NAME | start | end | " + ExampleCommands.USAGE);
      }
      client.setServer(ServerSettings.create().state(ServerSettings.STOPPING));
    }
  }
}
