package dev.warpmesh.agent.tools;

import dev.warpmesh.agent.Delivery;
import dev.warpmesh.agent.ErrorCode;
import dev.warpmesh.agent.MeshMessage;
import dev.warpmesh.agent.PeerInfo;
import dev.warpmesh.agent.Player;
import dev.warpmesh.agent.ServerInfo;
import dev.warpmesh.agent.WarpmeshClient;
import dev.warpmesh.agent.WarpmeshException;
import dev.warpmesh.agent.WarpmeshListener;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The bench/test client of the agent contract (same CLI in Node, Java and PHP):
 *
 * <pre>
 * java -cp clients/java/build/warpmesh-client.jar:/usr/share/java/protobuf.jar \
 *   dev.warpmesh.agent.tools.BenchClient
 *   --socket PATH | --tcp HOST:PORT --token T
 *   --id ID [--role ROLE] [--topic T]... [--meta k=v]...
 *   --mode echo|pingpong|flood|repl
 *   --peer ID --count N --size BYTES [--warmup W] [--timeout-ms MS]
 *   [--services] [--player-events] [--server k=v,...] [--handle KIND[=REFUSAL]]...  (see ServicesRepl)
 * </pre>
 *
 * Exit codes: 0 done, 1 usage or connection failure, 2 peer not in the table within the timeout, 3
 * reply mismatch, 4 flood count not reached within the timeout.
 */
public final class BenchClient {
  static final int EXIT_OK = 0;
  static final int EXIT_FAIL = 1;
  static final int EXIT_NO_PEER = 2;
  static final int EXIT_MISMATCH = 3;
  static final int EXIT_FLOOD_TIMEOUT = 4;
  private static final long DEFAULT_TIMEOUT_MS = 10_000;
  private static final long REPL_DRAIN_MS = 10_000;
  private static final long MAX_ERRORS_SHOWN = 10;
  private static final byte[] EMPTY = new byte[0];
  private static final byte[] RE = "re:".getBytes(StandardCharsets.UTF_8);

  private BenchClient() {}

  /** Parsed command line. */
  static final class Options {
    String socket;
    String tcpHost;
    int tcpPort;
    String token;
    String id;
    String role = "";
    final List<String> topics = new ArrayList<>();
    final Map<String, String> meta = new LinkedHashMap<>();
    String mode;
    String peer;
    int count;
    int size;
    int warmup;
    long timeoutMs = DEFAULT_TIMEOUT_MS;
    boolean services;
    boolean playerEvents;
    String server;
    final List<String> handles = new ArrayList<>();

    static Options parse(String[] args) {
      Options o = new Options();
      for (int i = 0; i < args.length; i++) {
        String a = args[i];
        if (a.equals("--services")) {
          o.services = true;
          continue;
        }
        if (a.equals("--player-events")) {
          o.playerEvents = true;
          continue;
        }
        if (i + 1 >= args.length) throw new IllegalArgumentException(a + " needs a value");
        String v = args[++i];
        switch (a) {
          case "--socket":
            o.socket = v;
            break;
          case "--tcp":
            int colon = v.lastIndexOf(':');
            if (colon <= 0) throw new IllegalArgumentException("--tcp must be HOST:PORT, got " + v);
            o.tcpHost = v.substring(0, colon);
            o.tcpPort = integer("--tcp port", v.substring(colon + 1), 1, 65535);
            break;
          case "--token":
            o.token = v;
            break;
          case "--id":
            o.id = v;
            break;
          case "--role":
            o.role = v;
            break;
          case "--topic":
            o.topics.add(v);
            break;
          case "--meta":
            int eq = v.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("--meta must be k=v, got " + v);
            o.meta.put(v.substring(0, eq), v.substring(eq + 1));
            break;
          case "--mode":
            o.mode = v;
            break;
          case "--peer":
            o.peer = v;
            break;
          case "--count":
            o.count = integer(a, v, 0, Integer.MAX_VALUE);
            break;
          case "--size":
            o.size = integer(a, v, 0, 1024 * 1024);
            break;
          case "--warmup":
            o.warmup = integer(a, v, 0, Integer.MAX_VALUE);
            break;
          case "--timeout-ms":
            o.timeoutMs = integer(a, v, 1, Integer.MAX_VALUE);
            break;
          case "--server":
            o.server = v;
            break;
          case "--handle":
            o.handles.add(v);
            break;
          default:
            throw new IllegalArgumentException("unknown option " + a);
        }
      }
      if (o.id == null) throw new IllegalArgumentException("--id is required");
      if (o.mode == null) throw new IllegalArgumentException("--mode is required (echo|pingpong|flood|repl)");
      switch (o.mode) {
        case "echo":
        case "repl":
          break;
        case "pingpong":
        case "flood":
          if (o.peer == null) throw new IllegalArgumentException("--peer is required in mode " + o.mode);
          break;
        default:
          throw new IllegalArgumentException("--mode must be echo|pingpong|flood|repl, got " + o.mode);
      }
      if (o.tcpHost != null && o.token == null) throw new IllegalArgumentException("--tcp needs --token");
      return o;
    }

    private static int integer(String name, String v, int min, int max) {
      long n;
      try {
        n = Long.parseLong(v);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException(name + " must be an integer, got " + v);
      }
      if (n < min || n > max) throw new IllegalArgumentException(name + " must be " + min + ".." + max + ", got " + v);
      return (int) n;
    }
  }

  /** Entry point: exits with {@link #run}'s code; SIGTERM in echo/repl mode says Goodbye and exits 0. */
  public static void main(String[] args) {
    AtomicReference<WarpmeshClient> live = new AtomicReference<>();
    AtomicReference<String> mode = new AtomicReference<>();
    Thread hook =
        new Thread(
            () -> {
              WarpmeshClient c = live.get();
              if (c == null) return;
              c.close();
              System.out.flush();
              String m = mode.get();
              if ("echo".equals(m) || "repl".equals(m)) Runtime.getRuntime().halt(EXIT_OK);
            });
    Runtime.getRuntime().addShutdownHook(hook);
    int code = run(args, System.in, System.out, System.err, live, mode);
    live.set(null);
    System.exit(code);
  }

  /**
   * Runs one mode. {@code live} receives the connected client (for a signal handler) and is cleared when
   * the mode has closed it.
   */
  static int run(
      String[] args,
      InputStream stdin,
      PrintStream stdout,
      PrintStream stderr,
      AtomicReference<WarpmeshClient> live,
      AtomicReference<String> modeOut) {
    Options o;
    try {
      o = Options.parse(args);
    } catch (IllegalArgumentException e) {
      stderr.println("bench-client: " + e.getMessage());
      return EXIT_FAIL;
    }
    modeOut.set(o.mode);
    Out out = new Out(stdout);
    Events events = new Events(out, o.mode.equals("repl"));
    WarpmeshClient.Builder b = WarpmeshClient.builder().role(o.role).listener(events);
    WarpmeshClient client;
    try {
      b.id(o.id);
      for (String t : o.topics) b.topic(t);
      for (Map.Entry<String, String> e : o.meta.entrySet()) b.meta(e.getKey(), e.getValue());
      if (o.tcpHost != null) b.tcp(o.tcpHost, o.tcpPort, o.token);
      else if (o.socket != null) b.socketPath(Path.of(o.socket));
      if (o.mode.equals("echo")) b.onRequest((from, data) -> data.length == 0 ? countReply(events) : data);
      if (o.mode.equals("repl")) b.onRequest((from, data) -> concat(RE, data));
      if (o.services) b.services(true);
      if (o.playerEvents) b.playerEvents(true);
      if (o.server != null) b.server(ServicesRepl.settings(o.server));
      for (String h : o.handles) ServicesRepl.handle(b, h, out);
      client = b.connect();
    } catch (IllegalArgumentException | WarpmeshException e) {
      stderr.println("bench-client: " + e.getMessage());
      return EXIT_FAIL;
    }
    live.set(client);
    out.line("ready");
    try {
      switch (o.mode) {
        case "echo":
          drainStdin(stdin);
          return EXIT_OK;
        case "pingpong":
          return pingpong(client, o, events, out, stderr);
        case "flood":
          return flood(client, o, events, out, stderr);
        default:
          return repl(client, stdin, out);
      }
    } catch (WarpmeshException | IOException e) {
      stderr.println("bench-client: " + e.getMessage());
      return EXIT_FAIL;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      stderr.println("bench-client: interrupted");
      return EXIT_FAIL;
    } finally {
      client.close();
      live.set(null);
    }
  }

  private static byte[] countReply(Events events) {
    return Long.toString(events.received.get()).getBytes(StandardCharsets.US_ASCII);
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] r = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }

  private static void drainStdin(InputStream in) throws IOException {
    byte[] buf = new byte[4096];
    while (in.read(buf) >= 0) {
      // wait for EOF
    }
  }

  // ------------------------------------------------------------------ pingpong / flood

  private static int pingpong(WarpmeshClient client, Options o, Events events, Out out, PrintStream err)
      throws InterruptedException {
    if (!events.awaitPeer(client, o.peer, o.timeoutMs)) {
      err.println("bench-client: peer " + o.peer + " not in the table within " + o.timeoutMs + " ms");
      return EXIT_NO_PEER;
    }
    SplittableRandom random = new SplittableRandom();
    Duration timeout = Duration.ofMillis(o.timeoutMs);
    long[] rttNs = new long[o.count];
    for (int i = 0; i < o.warmup + o.count; i++) {
      byte[] data = new byte[o.size];
      random.nextBytes(data);
      long t0 = System.nanoTime();
      byte[] reply = get(client.request(o.peer, data, timeout));
      long t1 = System.nanoTime();
      if (!Arrays.equals(reply, data)) {
        err.println("bench-client: reply " + i + " differs from the request (" + reply.length + " bytes for " + data.length + ")");
        return EXIT_MISMATCH;
      }
      if (i >= o.warmup) rttNs[i - o.warmup] = t1 - t0;
    }
    StringBuilder rtts = new StringBuilder(o.count * 8).append('[');
    for (int i = 0; i < o.count; i++) {
      if (i > 0) rtts.append(',');
      rtts.append(String.format(Locale.ROOT, "%.1f", rttNs[i] / 1000.0));
    }
    rtts.append(']');
    out.line(new JsonLine().put("mode", "pingpong").put("count", o.count).raw("rtt_us", rtts.toString()).toString());
    return EXIT_OK;
  }

  private static int flood(WarpmeshClient client, Options o, Events events, Out out, PrintStream err)
      throws InterruptedException {
    if (!events.awaitPeer(client, o.peer, o.timeoutMs)) {
      err.println("bench-client: peer " + o.peer + " not in the table within " + o.timeoutMs + " ms");
      return EXIT_NO_PEER;
    }
    byte[] payload = new byte[o.size];
    new SplittableRandom().nextBytes(payload);
    // Warm-up: W untimed messages, counted by the peer, before the timed N (a server runs for hours; the
    // first second of a JVM is the JIT's).
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(o.timeoutMs);
    if (o.warmup > 0) {
      long warm = floodPhase(client, o, payload, o.warmup, o.warmup, deadline);
      if (warm != o.warmup) return floodFailed(err, o, warm, o.warmup);
    }
    long t0 = System.nanoTime();
    long total = (long) o.warmup + o.count;
    long counted = floodPhase(client, o, payload, o.count, total, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(o.timeoutMs));
    if (counted != total) return floodFailed(err, o, counted, total);
    long elapsedNs = System.nanoTime() - t0;
    out.line(
        new JsonLine()
            .put("mode", "flood")
            .put("count", o.count)
            .raw("elapsed_ms", String.format(Locale.ROOT, "%.3f", elapsedNs / 1e6))
            .put("received", counted - o.warmup)
            .toString());
    return EXIT_OK;
  }

  /**
   * Sends {@code n} messages, then asks the peer for its count until it reaches {@code target} (or passes
   * it, or the deadline passes); returns the last count (-1 if none came).
   */
  private static long floodPhase(WarpmeshClient client, Options o, byte[] payload, int n, long target, long deadline)
      throws InterruptedException {
    for (int i = 0; i < n; i++) {
      client.sendBuffered(o.peer, payload, 0, Delivery.RELIABLE_ORDERED);
    }
    client.flush();
    long received = -1;
    while (true) {
      long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
      if (left < 1) return received;
      byte[] answer = get(client.request(o.peer, EMPTY, Duration.ofMillis(left)));
      received = Long.parseLong(new String(answer, StandardCharsets.US_ASCII).trim());
      if (received >= target) return received;
      Thread.sleep(1);
    }
  }

  private static int floodFailed(PrintStream err, Options o, long counted, long expected) {
    err.println(
        "bench-client: flood: the peer counted " + counted + " of " + expected + " messages within " + o.timeoutMs
            + " ms");
    return EXIT_FLOOD_TIMEOUT;
  }

  private static <T> T get(CompletableFuture<T> f) throws InterruptedException {
    try {
      return f.get();
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof WarpmeshException) throw (WarpmeshException) c;
      throw new WarpmeshException(ErrorCode.INTERNAL, String.valueOf(c), c);
    }
  }

  // ------------------------------------------------------------------ repl

  private static int repl(WarpmeshClient client, InputStream stdin, Out out) throws IOException, InterruptedException {
    Set<CompletableFuture<?>> outstanding = ConcurrentHashMap.newKeySet();
    BufferedReader in = new BufferedReader(new InputStreamReader(stdin, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      if (line.isBlank()) continue;
      String[] w = line.split(" ", 2);
      String cmd = w[0];
      String rest = w.length > 1 ? w[1] : "";
      String tag = rest.split(" ", 2)[0];
      try {
        CompletableFuture<?> f = command(client, cmd, rest, out);
        if (f != null) {
          outstanding.add(f);
          f.whenComplete((v, t) -> outstanding.remove(f));
        }
      } catch (WarpmeshException e) {
        out.error(tag, e.code().name(), e.detail());
      } catch (IllegalArgumentException e) {
        out.error(tag, ErrorCode.INVALID_ARGUMENT.name(), e.getMessage());
      }
    }
    try {
      CompletableFuture.allOf(outstanding.toArray(new CompletableFuture<?>[0])).get(REPL_DRAIN_MS, TimeUnit.MILLISECONDS);
    } catch (ExecutionException | TimeoutException e) {
      // each failure was printed with its tag
    }
    return EXIT_OK;
  }

  /** Runs one repl command; returns its future when the answer comes later. */
  private static CompletableFuture<?> command(WarpmeshClient client, String cmd, String rest, Out out) {
    String[] a;
    switch (cmd) {
      case "send":
        a = words(rest, 3, "send TAG PEER TEXT");
        return out.result(a[0], client.sendAsync(a[1], utf8(a[2]), 0, Delivery.DEFAULT), null);
      case "request":
        a = words(rest, 3, "request TAG PEER TEXT");
        String tag = a[0];
        return client
            .request(a[1], utf8(a[2]))
            .whenComplete(
                (data, t) -> {
                  if (t != null) out.failure(tag, t);
                  else out.line(new JsonLine().put("ev", "response").put("tag", tag).put("data", text(data)).toString());
                });
      case "broadcast":
        a = words(rest, 4, "broadcast TAG ROLE|- TAG2|- TEXT");
        return out.result(a[0], client.broadcastAsync(any(a[1]), any(a[2]), utf8(a[3]), 0, Delivery.DEFAULT), "count");
      case "publish":
        a = words(rest, 3, "publish TAG TOPIC TEXT");
        return out.result(a[0], client.publishAsync(a[1], utf8(a[2]), 0, Delivery.DEFAULT), "count");
      case "subscribe":
        a = words(rest, 2, "subscribe TAG TOPIC");
        return out.result(a[0], client.subscribeAsync(a[1]), null);
      case "unsubscribe":
        a = words(rest, 2, "unsubscribe TAG TOPIC");
        return out.result(a[0], client.unsubscribeAsync(a[1]), null);
      case "meta":
        a = words(rest, 2, "meta TAG k=v[,k=v...]");
        return out.result(a[0], client.setMetaAsync(pairs(a[1])), null);
      case "peers":
        a = words(rest, 1, "peers TAG");
        String ptag = a[0];
        return client
            .peersAsync()
            .whenComplete(
                (peers, t) -> {
                  if (t != null) out.failure(ptag, t);
                  else out.line(new JsonLine().put("ev", "peers").put("tag", ptag).raw("peers", peerList(peers)).toString());
                });
      default:
        CompletableFuture<?> f = ServicesRepl.command(client, cmd, rest, out);
        if (f == null) throw new IllegalArgumentException("unknown command " + cmd);
        return f;
    }
  }

  private static String[] words(String rest, int n, String usage) {
    String[] a = rest.split(" ", n);
    if (a.length < n - 1 || a[0].isEmpty()) throw new IllegalArgumentException("usage: " + usage);
    if (a.length == n - 1) {
      // the last word (TEXT) may be empty; other commands need all words
      if (!usage.endsWith("TEXT")) throw new IllegalArgumentException("usage: " + usage);
      a = Arrays.copyOf(a, n);
      a[n - 1] = "";
    }
    return a;
  }

  private static String any(String s) {
    return "-".equals(s) ? "" : s;
  }

  private static Map<String, String> pairs(String s) {
    Map<String, String> m = new LinkedHashMap<>();
    for (String kv : s.split(",")) {
      int eq = kv.indexOf('=');
      if (eq <= 0) throw new IllegalArgumentException("meta: expected k=v[,k=v...], got " + s);
      m.put(kv.substring(0, eq), kv.substring(eq + 1));
    }
    return m;
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static String text(byte[] b) {
    return new String(b, StandardCharsets.UTF_8);
  }

  static String peerJson(PeerInfo p) {
    return new JsonLine()
        .put("id", p.id())
        .put("role", p.role())
        .raw("meta", JsonLine.object(p.meta()))
        .raw("topics", JsonLine.strings(p.topics()))
        .toString();
  }

  private static String peerList(List<PeerInfo> peers) {
    StringBuilder b = new StringBuilder().append('[');
    for (int i = 0; i < peers.size(); i++) {
      if (i > 0) b.append(',');
      b.append(peerJson(peers.get(i)));
    }
    return b.append(']').toString();
  }

  // ------------------------------------------------------------------ output and events

  /** Serialized, flushed line output. */
  static final class Out {
    private final PrintStream stream;

    Out(PrintStream stream) {
      this.stream = stream;
    }

    synchronized void line(String s) {
      stream.print(s);
      stream.print('\n');
      stream.flush();
    }

    void error(String tag, String code, String message) {
      line(new JsonLine().put("ev", "error").put("tag", tag).put("code", code).put("message", message).toString());
    }

    void failure(String tag, Throwable t) {
      Throwable c = t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
      if (c instanceof WarpmeshException) {
        WarpmeshException w = (WarpmeshException) c;
        error(tag, w.code().name(), w.detail());
      } else {
        error(tag, ErrorCode.INTERNAL.name(), String.valueOf(c));
      }
    }

    /** Prints {"ev":"result","tag":TAG[,countKey:N]} or the error when {@code f} completes. */
    <T> CompletableFuture<T> result(String tag, CompletableFuture<T> f, String countKey) {
      return f.whenComplete(
          (v, t) -> {
            if (t != null) {
              failure(tag, t);
              return;
            }
            JsonLine j = new JsonLine().put("ev", "result").put("tag", tag);
            if (countKey != null) j.put(countKey, ((Integer) v).longValue());
            line(j.toString());
          });
    }
  }

  /** Counts messages, tracks the awaited peer, and prints events in repl mode. */
  static final class Events implements WarpmeshListener {
    final AtomicLong received = new AtomicLong();
    private final AtomicLong errors = new AtomicLong();
    private final Out out;
    private final boolean print;
    private final Object peerSeen = new Object();

    Events(Out out, boolean print) {
      this.out = out;
      this.print = print;
    }

    boolean awaitPeer(WarpmeshClient client, String peer, long timeoutMs) throws InterruptedException {
      long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
      synchronized (peerSeen) {
        while (client.knownPeer(peer) == null) {
          long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
          if (left <= 0) return false;
          peerSeen.wait(left);
        }
      }
      return true;
    }

    @Override
    public void onMessage(MeshMessage m) {
      received.incrementAndGet();
      if (print) {
        out.line(
            new JsonLine()
                .put("ev", "message")
                .put("from", m.from())
                .put("data", text(m.data()))
                .put("channel", m.channel())
                .put("topic", m.topic())
                .toString());
      }
    }

    @Override
    public void onPeerUp(PeerInfo p) {
      synchronized (peerSeen) {
        peerSeen.notifyAll();
      }
      peer("peer-up", p, "");
    }

    @Override
    public void onPeerDown(PeerInfo p, String reason) {
      peer("peer-down", p, reason);
    }

    @Override
    public void onPeerUpdated(PeerInfo p) {
      peer("peer-updated", p, "");
    }

    private void peer(String ev, PeerInfo p, String reason) {
      if (!print) return;
      out.line(
          new JsonLine()
              .put("ev", ev)
              .put("id", p.id())
              .put("role", p.role())
              .raw("meta", JsonLine.object(p.meta()))
              .raw("topics", JsonLine.strings(p.topics()))
              .put("reason", reason)
              .toString());
    }

    @Override
    public void onCoordinator(boolean up, String address) {
      if (print) out.line(new JsonLine().put("ev", "coordinator").put("up", up).put("address", address).toString());
    }

    @Override
    public void onDisconnected(String reason) {
      if (print) out.line(new JsonLine().put("ev", "disconnected").put("reason", reason).toString());
    }

    @Override
    public void onReconnected() {
      synchronized (peerSeen) {
        peerSeen.notifyAll();
      }
      if (print) out.line(new JsonLine().put("ev", "reconnected").toString());
    }

    @Override
    public void onPlayerJoined(Player p) {
      if (print) ServicesRepl.printPlayer(out, "player-joined", p, null);
    }

    @Override
    public void onPlayerLeft(Player p) {
      if (print) ServicesRepl.printPlayer(out, "player-left", p, null);
    }

    @Override
    public void onPlayerMoved(Player p, String from) {
      if (print) ServicesRepl.printPlayer(out, "player-moved", p, from);
    }

    @Override
    public void onServerUpdated(ServerInfo s) {
      if (print) out.line(new JsonLine().put("ev", "server-updated").raw("server", ServicesRepl.serverJson(s)).toString());
    }

    @Override
    public void onServerRemoved(String id) {
      if (print) out.line(new JsonLine().put("ev", "server-removed").put("id", id).toString());
    }

    @Override
    public void onUndelivered(String peer, int count, String reason) {
      System.err.println("bench-client: " + count + " message(s) to " + peer + " undelivered: " + reason);
    }

    @Override
    public void onError(WarpmeshException e) {
      long n = errors.incrementAndGet();
      if (n <= MAX_ERRORS_SHOWN) System.err.println("bench-client: agent error: " + e.getMessage());
      else if (n == MAX_ERRORS_SHOWN + 1) System.err.println("bench-client: further agent errors not shown");
    }
  }
}
