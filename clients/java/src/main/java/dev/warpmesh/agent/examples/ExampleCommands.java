package dev.warpmesh.agent.examples;

import dev.warpmesh.agent.Player;
import dev.warpmesh.agent.PlayerList;
import dev.warpmesh.agent.ServerInfo;
import dev.warpmesh.agent.ServerSelector;
import dev.warpmesh.agent.TransferDone;
import dev.warpmesh.agent.WarpmeshClient;
import dev.warpmesh.agent.WarpmeshException;
import java.time.Duration;

import java.util.List;

/**
 * The console commands both examples accept (what a {@code /where}, {@code /send} or {@code /list}
 * command of a plugin would do), each answered with one line of text:
 *
 * <pre>
 * where PLAYER                 which server a player is on
 * transfer PLAYER SERVER       move a player to a server
 * play PLAYER MODE             move a player to the least full open server of MODE (else the hub)
 * players [MODE]               how many players the network has (of MODE)
 * servers [MODE]               the registry: id, state, players/max
 * message PLAYER TEXT          show TEXT to a player wherever they are
 * kick PLAYER REASON           disconnect a player wherever they are
 * </pre>
 */
public final class ExampleCommands {
  /** Server of last resort for {@code play}. */
  public static final String HUB = "lobby-1";

  private ExampleCommands() {}

  /** The usage line. */
  public static final String USAGE =
      "commands: where P | transfer P SERVER | play P MODE | players [MODE] | servers [MODE] | message P TEXT | kick P REASON";

  /** Runs one command line; returns what to print, or null when {@code line} is not one of these commands. */
  public static String run(WarpmeshClient client, String line) {
    String[] w = line.trim().split("\\s+", 3);
    try {
      switch (w[0]) {
        case "where":
          if (w.length != 2) return "usage: where PLAYER";
          Player p = client.locate(w[1]);
          return p == null
              ? w[1] + " is not online"
              : p.name() + " is on " + p.server() + (p.proxy().isEmpty() ? "" : " (via " + p.proxy() + ")");
        case "transfer":
          if (w.length != 3) return "usage: transfer PLAYER SERVER";
          return done(client.transfer(w[1], w[2].trim(), Duration.ofSeconds(5)));
        case "play":
          if (w.length != 3) return "usage: play PLAYER MODE";
          ServerSelector sel =
              ServerSelector.create().mode(w[2].trim()).states(List.of("lobby")).fallbackServer(HUB);
          return done(client.transfer(w[1], sel, Duration.ofSeconds(5)));
        case "players":
          PlayerList l = client.listPlayers(w.length > 1 ? w[1] : "", "", 10);
          StringBuilder b = new StringBuilder().append(l.count()).append(" online");
          for (Player x : l.players()) b.append(", ").append(x.name()).append('@').append(x.server());
          return l.count() > l.players().size() ? b.append(", ...").toString() : b.toString();
        case "servers":
          List<ServerInfo> servers = client.servers(w.length > 1 ? w[1] : "", List.of(), "");
          if (servers.isEmpty()) return "no servers listed";
          StringBuilder s = new StringBuilder();
          for (ServerInfo x : servers) {
            if (s.length() > 0) s.append('\n');
            s.append(x.id()).append(' ').append(x.state()).append(' ').append(x.mode().isEmpty() ? "-" : x.mode())
                .append(' ').append(x.players()).append('/').append(x.max() == 0 ? "∞" : String.valueOf(x.max()));
          }
          return s.toString();
        case "message":
          if (w.length != 3) return "usage: message PLAYER TEXT";
          client.message(w[1], w[2]);
          return "told " + w[1];
        case "kick":
          if (w.length != 3) return "usage: kick PLAYER REASON";
          client.kick(w[1], w[2]);
          return "kicked " + w[1];
        default:
          return null;
      }
    } catch (WarpmeshException e) {
      // UNKNOWN_PLAYER, NO_SUCH_SERVER, SERVER_FULL, REFUSED, TARGET_DOWN, TRANSFER_CONFLICT, TIMEOUT...
      return "failed: " + e.code() + ": " + e.detail();
    } catch (IllegalArgumentException e) {
      return "bad command: " + e.getMessage();
    }
  }

  private static String done(TransferDone d) {
    return d.player() + " moved from " + d.from() + " to " + d.server() + " (by " + d.via() + ")";
  }

}
