package dev.warpmesh.agent.tools;

import dev.warpmesh.agent.Player;
import dev.warpmesh.agent.PlayerList;
import dev.warpmesh.agent.ServerInfo;
import dev.warpmesh.agent.ServerSelector;
import dev.warpmesh.agent.ServerSettings;
import dev.warpmesh.agent.ServiceCall;
import dev.warpmesh.agent.TransferDone;
import dev.warpmesh.agent.WarpmeshClient;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * The network services part of {@link BenchClient}: its options and repl commands.
 *
 * <pre>
 * options:  --services   --player-events   --server k=v[,k=v...]   --handle KIND[=REFUSAL]...
 *           (KIND: transfer-request | move | message | kick; answered ok, or refused with REFUSAL;
 *            every call printed as {"ev":"service-call",...})
 * commands: join TAG NAME [XUID|-] [PROXY|-]          -> result
 *           leave TAG PLAYER                          -> result {count: 1 if hosted, else 0}
 *           server TAG k=v[,k=v...]                   -> result  (state, mode, max, tags=a;b)
 *           locate TAG PLAYER                         -> {"ev":"player","found":..,"player":{...}}
 *           players TAG MODE|- SERVER|- LIMIT         -> {"ev":"players","count":N,"players":[...]}
 *           servers TAG MODE|- STATE[;STATE]|- TAG2|- -> {"ev":"servers","servers":[...]}
 *           transfer TAG PLAYER SERVER|k=v,... [TIMEOUT_MS]  -> {"ev":"transfer-done",...}
 *              (a selector: mode=, state=a;b, tag=, exclude=a;b, fallback=SERVER)
 *           message TAG PLAYER TEXT / kick TAG PLAYER TEXT -> result
 * </pre>
 */
final class ServicesRepl {
  private ServicesRepl() {}

  /** Parses {@code --server} / {@code server} settings: state, mode, max, tags (';'-separated). */
  static ServerSettings settings(String s) {
    ServerSettings out = ServerSettings.create();
    for (Map.Entry<String, String> e : pairs(s, "server").entrySet()) {
      String v = e.getValue();
      switch (e.getKey()) {
        case "state":
          out = out.state(v);
          break;
        case "mode":
          out = out.mode(v);
          break;
        case "max":
          out = out.max(Integer.parseInt(v));
          break;
        case "tags":
          out = out.tags(v.isEmpty() ? List.of() : Arrays.asList(v.split(";")));
          break;
        default:
          throw new IllegalArgumentException("server: keys are state, mode, max, tags; got " + e.getKey());
      }
    }
    return out;
  }

  /** Registers {@code --handle KIND[=REFUSAL]}: the call is printed and answered. */
  static void handle(WarpmeshClient.Builder b, String spec, BenchClient.Out out) {
    int eq = spec.indexOf('=');
    String name = eq < 0 ? spec : spec.substring(0, eq);
    String refusal = eq < 0 ? null : spec.substring(eq + 1);
    ServiceCall.Kind kind;
    try {
      kind = ServiceCall.Kind.valueOf(name.toUpperCase(Locale.ROOT).replace('-', '_'));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("--handle: KIND is transfer-request, move, message or kick, got " + name);
    }
    b.onServiceCall(
        kind,
        c -> {
          out.line(
              new JsonLine()
                  .put("ev", "service-call")
                  .put("kind", c.kind().name().toLowerCase(Locale.ROOT).replace('_', '-'))
                  .raw("player", playerJson(c.player()))
                  .put("server", c.server())
                  .put("from", c.from())
                  .put("text", c.text())
                  .toString());
          return refusal;
        });
  }

  /** Runs a services command; null when {@code cmd} is not one. */
  static CompletableFuture<?> command(WarpmeshClient client, String cmd, String rest, BenchClient.Out out) {
    String[] a;
    switch (cmd) {
      case "join":
        a = rest.split(" ");
        if (a.length < 2 || a.length > 4) throw new IllegalArgumentException("usage: join TAG NAME [XUID|-] [PROXY|-]");
        String xuid = a.length > 2 ? any(a[2]) : "";
        String proxy = a.length > 3 ? any(a[3]) : "";
        return out.result(a[0], client.joinAsync(a[1], xuid, proxy, Map.of()), null);
      case "leave":
        a = exactly(rest, 2, "leave TAG PLAYER");
        return out.result(a[0], client.leaveAsync(a[1]).thenApply(hosted -> hosted ? 1 : 0), "count");
      case "server":
        a = exactly(rest, 2, "server TAG k=v[,k=v...]");
        return out.result(a[0], client.setServerAsync(settings(a[1])), null);
      case "locate":
        a = exactly(rest, 2, "locate TAG PLAYER");
        String ltag = a[0];
        return answer(out, ltag, client.locateAsync(a[1]), p -> {
          JsonLine j = new JsonLine().put("ev", "player").put("tag", ltag).put("found", p != null);
          if (p != null) j.raw("player", playerJson(p));
          return j.toString();
        });
      case "players":
        a = exactly(rest, 4, "players TAG MODE|- SERVER|- LIMIT");
        String ptag = a[0];
        return answer(out, ptag, client.listPlayersAsync(any(a[1]), any(a[2]), Integer.parseInt(a[3])), (PlayerList l) -> {
          StringBuilder b = new StringBuilder().append('[');
          for (int i = 0; i < l.players().size(); i++) b.append(i > 0 ? "," : "").append(playerJson(l.players().get(i)));
          return new JsonLine().put("ev", "players").put("tag", ptag).put("count", l.count()).raw("players", b.append(']').toString()).toString();
        });
      case "servers":
        a = exactly(rest, 4, "servers TAG MODE|- STATE[;STATE]|- TAG2|-");
        String stag = a[0];
        List<String> states = any(a[2]).isEmpty() ? List.of() : Arrays.asList(a[2].split(";"));
        return answer(out, stag, client.serversAsync(any(a[1]), states, any(a[3])), (List<ServerInfo> l) -> {
          StringBuilder b = new StringBuilder().append('[');
          for (int i = 0; i < l.size(); i++) b.append(i > 0 ? "," : "").append(serverJson(l.get(i)));
          return new JsonLine().put("ev", "servers").put("tag", stag).raw("servers", b.append(']').toString()).toString();
        });
      case "transfer":
        a = rest.split(" ");
        if (a.length < 3 || a.length > 4) throw new IllegalArgumentException("usage: transfer TAG PLAYER SERVER|k=v,... [TIMEOUT_MS]");
        String ttag = a[0];
        Duration timeout = Duration.ofMillis(a.length > 3 ? Long.parseLong(a[3]) : 5000);
        CompletableFuture<TransferDone> f =
            a[2].contains("=") ? client.transferAsync(a[1], selector(a[2]), timeout) : client.transferAsync(a[1], a[2], timeout);
        return answer(out, ttag, f, d -> new JsonLine()
            .put("ev", "transfer-done").put("tag", ttag).put("player", d.player()).put("server", d.server())
            .put("from", d.from()).put("via", d.via()).toString());
      case "message":
      case "kick":
        a = rest.split(" ", 3);
        if (a.length < 3) throw new IllegalArgumentException("usage: " + cmd + " TAG PLAYER TEXT");
        CompletableFuture<Void> m =
            cmd.equals("message")
                ? client.messageAsync(a[1], a[2], Duration.ofMillis(5000))
                : client.kickAsync(a[1], a[2], Duration.ofMillis(5000));
        return out.result(a[0], m, null);
      default:
        return null;
    }
  }

  static ServerSelector selector(String s) {
    ServerSelector sel = ServerSelector.create();
    for (Map.Entry<String, String> e : pairs(s, "selector").entrySet()) {
      String v = e.getValue();
      switch (e.getKey()) {
        case "mode":
          sel = sel.mode(v);
          break;
        case "state":
          sel = sel.states(Arrays.asList(v.split(";")));
          break;
        case "tag":
          sel = sel.tag(v);
          break;
        case "exclude":
          sel = sel.exclude(Arrays.asList(v.split(";")));
          break;
        case "fallback":
          sel = sel.fallbackServer(v);
          break;
        default:
          throw new IllegalArgumentException("selector: keys are mode, state, tag, exclude, fallback; got " + e.getKey());
      }
    }
    return sel;
  }

  private static <T> CompletableFuture<T> answer(
      BenchClient.Out out, String tag, CompletableFuture<T> f, java.util.function.Function<T, String> line) {
    return f.whenComplete(
        (v, t) -> {
          if (t != null) out.failure(tag, t);
          else out.line(line.apply(v));
        });
  }

  static String playerJson(Player p) {
    return new JsonLine()
        .put("name", p.name())
        .put("xuid", p.xuid())
        .put("server", p.server())
        .put("proxy", p.proxy())
        .raw("fields", JsonLine.object(p.fields()))
        .toString();
  }

  static String serverJson(ServerInfo s) {
    return new JsonLine()
        .put("id", s.id())
        .put("role", s.role())
        .put("state", s.state())
        .put("mode", s.mode())
        .raw("tags", JsonLine.strings(s.tags()))
        .put("players", s.players())
        .put("max", s.max())
        .raw("fields", JsonLine.object(s.fields()))
        .toString();
  }

  private static String[] exactly(String rest, int n, String usage) {
    String[] a = rest.split(" ");
    if (a.length != n || a[0].isEmpty()) throw new IllegalArgumentException("usage: " + usage);
    return a;
  }

  private static String any(String s) {
    return "-".equals(s) ? "" : s;
  }

  private static Map<String, String> pairs(String s, String what) {
    Map<String, String> m = new LinkedHashMap<>();
    for (String kv : s.split(",")) {
      int eq = kv.indexOf('=');
      if (eq <= 0) throw new IllegalArgumentException(what + ": expected k=v[,k=v...], got " + s);
      m.put(kv.substring(0, eq), kv.substring(eq + 1));
    }
    return m;
  }

  /** Prints the services events in repl mode. */
  static void printPlayer(BenchClient.Out out, String ev, Player p, String from) {
    JsonLine j = new JsonLine().put("ev", ev).raw("player", playerJson(p));
    if (from != null) j.put("from", from);
    out.line(j.toString());
  }

}
