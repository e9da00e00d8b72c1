package dev.warpmesh.agent.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.warpmesh.agent.FakeAgent;
import dev.warpmesh.agent.proto.AgentMessage;
import dev.warpmesh.agent.proto.ClientMessage;
import dev.warpmesh.agent.proto.ClientMessage.BodyCase;
import dev.warpmesh.agent.proto.CoordinatorEvent;
import dev.warpmesh.agent.proto.IncomingRequest;
import dev.warpmesh.agent.proto.Message;
import dev.warpmesh.agent.proto.Peer;
import dev.warpmesh.agent.proto.PeerEvent;
import dev.warpmesh.agent.proto.Peers;
import dev.warpmesh.agent.proto.Response;
import dev.warpmesh.agent.proto.Result;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class BenchClientTest {
  private FakeAgent agent;
  private Stdin stdin;
  private Lines stdout;
  private ByteArrayOutputStream stderr;

  @BeforeEach
  void setUp() throws Exception {
    agent = FakeAgent.unix();
    stdin = new Stdin();
    stdout = new Lines();
    stderr = new ByteArrayOutputStream();
  }

  @AfterEach
  void tearDown() throws Exception {
    stdin.close();
    agent.close();
  }

  /** stdin fed by the test; EOF on close(). */
  static final class Stdin extends InputStream {
    private final BlockingQueue<byte[]> chunks = new LinkedBlockingQueue<>();
    private byte[] current = new byte[0];
    private int at;
    private boolean eof;

    void line(String s) {
      chunks.add((s + "\n").getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public void close() {
      chunks.add(new byte[0]);
    }

    @Override
    public int read() throws IOException {
      byte[] one = new byte[1];
      return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (eof) return -1;
      while (at == current.length) {
        try {
          current = chunks.take();
        } catch (InterruptedException e) {
          throw new IOException(e);
        }
        at = 0;
        if (current.length == 0) {
          eof = true;
          return -1;
        }
      }
      int n = Math.min(len, current.length - at);
      System.arraycopy(current, at, b, off, n);
      at += n;
      return n;
    }
  }

  /** stdout split into lines. */
  static final class Lines extends OutputStream {
    final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    private final ByteArrayOutputStream partial = new ByteArrayOutputStream();

    @Override
    public synchronized void write(int b) {
      if (b == '\n') {
        lines.add(partial.toString(StandardCharsets.UTF_8));
        partial.reset();
      } else {
        partial.write(b);
      }
    }

    String next() throws InterruptedException {
      String l = lines.poll(10, TimeUnit.SECONDS);
      assertNotNull(l, "no output line");
      return l;
    }
  }

  private CompletableFuture<Integer> start(String... args) {
    List<String> all = new ArrayList<>(List.of("--socket", agent.socketPath.toString()));
    all.addAll(List.of(args));
    PrintStream out = new PrintStream(stdout, true, StandardCharsets.UTF_8);
    PrintStream err = new PrintStream(stderr, true, StandardCharsets.UTF_8);
    return CompletableFuture.supplyAsync(
        () -> BenchClient.run(all.toArray(new String[0]), stdin, out, err, new AtomicReference<>(), new AtomicReference<>()));
  }

  private static int exit(CompletableFuture<Integer> f) throws Exception {
    return f.get(20, TimeUnit.SECONDS);
  }

  private static Peer peer(String id) {
    return Peer.newBuilder().setId(id).setRole("downstream").putMeta("players", "3").addTopics("chat").build();
  }

  private static AgentMessage result(long id, int count) {
    return AgentMessage.newBuilder().setResult(Result.newBuilder().setId(id).setCount(count)).build();
  }

  private static AgentMessage response(long id, ByteString data) {
    return AgentMessage.newBuilder().setResponse(Response.newBuilder().setId(id).setData(data)).build();
  }

  // ------------------------------------------------------------------ options

  @Test
  void badOptionsExitOne() throws Exception {
    assertEquals(BenchClient.EXIT_FAIL, exit(start("--mode", "echo")));
    assertTrue(stderr.toString(StandardCharsets.UTF_8).contains("--id is required"));
    assertEquals(BenchClient.EXIT_FAIL, exit(start("--id", "a", "--mode", "nope")));
    assertEquals(BenchClient.EXIT_FAIL, exit(start("--id", "a", "--mode", "flood")));
    assertEquals(BenchClient.EXIT_FAIL, exit(start("--id", "a", "--mode", "echo", "--count", "x")));
    assertEquals(BenchClient.EXIT_FAIL, exit(start("--id", "a", "--mode", "echo", "--tcp", "127.0.0.1:1")));
    assertEquals(BenchClient.EXIT_FAIL, exit(start("--id", "a b", "--mode", "echo")));
    assertTrue(stdout.lines.isEmpty(), "no ready line: " + stdout.lines);
  }

  @Test
  void noAgentExitsOne() throws Exception {
    agent.close();
    assertEquals(BenchClient.EXIT_FAIL, exit(start("--id", "a", "--mode", "echo")));
    assertTrue(stderr.toString(StandardCharsets.UTF_8).contains("cannot reach the agent"));
  }

  // ------------------------------------------------------------------ echo

  @Test
  void echoAnswersBytesAndTheMessageCount() throws Exception {
    CompletableFuture<Integer> run = start("--id", "echo-1", "--role", "downstream", "--topic", "t", "--meta", "a=b", "--mode", "echo");
    assertEquals("ready", stdout.next());
    FakeAgent.Conn c = agent.nextConn();
    var hello = c.next(BodyCase.HELLO).getHello();
    assertEquals("echo-1", hello.getId());
    assertEquals(List.of("t"), hello.getTopicsList());
    assertEquals("b", hello.getMetaMap().get("a"));
    for (int i = 0; i < 3; i++) {
      c.send(AgentMessage.newBuilder().setMessage(Message.newBuilder().setFrom("x").setData(ByteString.copyFromUtf8("m"))).build());
    }
    c.send(AgentMessage.newBuilder().setIncomingRequest(IncomingRequest.newBuilder().setId(1).setFrom("x").setData(ByteString.copyFrom(new byte[] {0, 1, 2, (byte) 255}))).build());
    c.send(AgentMessage.newBuilder().setIncomingRequest(IncomingRequest.newBuilder().setId(2).setFrom("x")).build());
    var r1 = c.next(BodyCase.REPLY).getReply();
    assertEquals(1, r1.getId());
    assertEquals(ByteString.copyFrom(new byte[] {0, 1, 2, (byte) 255}), r1.getData());
    var r2 = c.next(BodyCase.REPLY).getReply();
    assertEquals(2, r2.getId());
    assertEquals("3", r2.getData().toStringUtf8());
    stdin.close();
    c.next(BodyCase.GOODBYE);
    assertEquals(BenchClient.EXIT_OK, exit(run));
  }

  // ------------------------------------------------------------------ pingpong

  @Test
  void pingpongPrintsOneRttPerRequest() throws Exception {
    agent.welcomePeers = List.of(peer("echo-1"));
    AtomicLong requests = new AtomicLong();
    agent.responder =
        m -> {
          requests.incrementAndGet();
          assertEquals(32, m.getRequest().getData().size());
          return response(m.getRequest().getId(), m.getRequest().getData());
        };
    CompletableFuture<Integer> run = start("--id", "pp", "--mode", "pingpong", "--peer", "echo-1", "--count", "5", "--size", "32", "--warmup", "2");
    assertEquals("ready", stdout.next());
    String line = stdout.next();
    assertTrue(line.matches("\\{\"mode\":\"pingpong\",\"count\":5,\"rtt_us\":\\[([0-9]+\\.[0-9],){4}[0-9]+\\.[0-9]\\]\\}"), line);
    assertEquals(BenchClient.EXIT_OK, exit(run));
    assertEquals(7, requests.get(), "2 warm-up + 5 requests");
  }

  @Test
  void pingpongWaitsForThePeerToComeUp() throws Exception {
    agent.responder = m -> response(m.getRequest().getId(), m.getRequest().getData());
    CompletableFuture<Integer> run = start("--id", "pp", "--mode", "pingpong", "--peer", "late", "--count", "1", "--size", "8");
    assertEquals("ready", stdout.next());
    FakeAgent.Conn c = agent.nextConn();
    c.next(BodyCase.HELLO);
    Thread.sleep(100);
    assertTrue(c.inbox.isEmpty(), "no request before the peer is up");
    c.send(AgentMessage.newBuilder().setPeerEvent(PeerEvent.newBuilder().setKind(PeerEvent.Kind.UP).setPeer(peer("late"))).build());
    assertTrue(stdout.next().startsWith("{\"mode\":\"pingpong\",\"count\":1,"));
    assertEquals(BenchClient.EXIT_OK, exit(run));
  }

  @Test
  void pingpongWithoutThePeerExitsTwo() throws Exception {
    CompletableFuture<Integer> run = start("--id", "pp", "--mode", "pingpong", "--peer", "ghost", "--count", "1", "--size", "8", "--timeout-ms", "200");
    assertEquals("ready", stdout.next());
    assertEquals(BenchClient.EXIT_NO_PEER, exit(run));
    assertTrue(stderr.toString(StandardCharsets.UTF_8).contains("ghost"));
  }

  @Test
  void pingpongMismatchExitsThree() throws Exception {
    agent.welcomePeers = List.of(peer("echo-1"));
    agent.responder = m -> response(m.getRequest().getId(), ByteString.copyFromUtf8("something else"));
    CompletableFuture<Integer> run = start("--id", "pp", "--mode", "pingpong", "--peer", "echo-1", "--count", "3", "--size", "8");
    assertEquals("ready", stdout.next());
    assertEquals(BenchClient.EXIT_MISMATCH, exit(run));
  }

  @Test
  void pingpongRequestErrorExitsOne() throws Exception {
    agent.welcomePeers = List.of(peer("echo-1"));
    agent.responder =
        m ->
            AgentMessage.newBuilder()
                .setError(dev.warpmesh.agent.proto.Error.newBuilder().setId(m.getRequest().getId()).setCodeValue(9).setMessage("peer went down"))
                .build();
    CompletableFuture<Integer> run = start("--id", "pp", "--mode", "pingpong", "--peer", "echo-1", "--count", "3", "--size", "8");
    assertEquals("ready", stdout.next());
    assertEquals(BenchClient.EXIT_FAIL, exit(run));
    assertTrue(stderr.toString(StandardCharsets.UTF_8).contains("PEER_DOWN"));
  }

  // ------------------------------------------------------------------ flood

  @Test
  void floodSendsNMessagesThenPollsTheCount() throws Exception {
    agent.welcomePeers = List.of(peer("echo-1"));
    AtomicLong sends = new AtomicLong();
    AtomicLong polls = new AtomicLong();
    agent.responder =
        m -> {
          if (m.hasSend()) {
            var s = m.getSend();
            boolean ok =
                s.getId() == 0 && s.getTo().equals("echo-1") && s.getChannel() == 0 && s.getData().size() == 64
                    && s.getDelivery() == dev.warpmesh.agent.proto.Delivery.RELIABLE_ORDERED;
            if (ok) sends.incrementAndGet();
            return null;
          }
          assertTrue(m.getRequest().getData().isEmpty());
          // The first poll answers a short count, as a peer still receiving would.
          long n = polls.incrementAndGet() == 1 ? sends.get() - 1 : sends.get();
          return response(m.getRequest().getId(), ByteString.copyFromUtf8(Long.toString(n)));
        };
    CompletableFuture<Integer> run = start("--id", "fl", "--mode", "flood", "--peer", "echo-1", "--count", "20000", "--size", "64");
    assertEquals("ready", stdout.next());
    String line = stdout.next();
    assertTrue(line.matches("\\{\"mode\":\"flood\",\"count\":20000,\"elapsed_ms\":[0-9]+\\.[0-9]{3},\"received\":20000\\}"), line);
    assertEquals(BenchClient.EXIT_OK, exit(run));
    assertEquals(20000, sends.get());
    assertEquals(2, polls.get());
  }

  @Test
  void floodWarmUpIsCountedThenTheTimedMessages() throws Exception {
    agent.welcomePeers = List.of(peer("echo-1"));
    AtomicLong sends = new AtomicLong();
    List<Long> sendsAtPoll = new java.util.concurrent.CopyOnWriteArrayList<>();
    agent.responder =
        m -> {
          if (m.hasSend()) {
            sends.incrementAndGet();
            return null;
          }
          sendsAtPoll.add(sends.get());
          return response(m.getRequest().getId(), ByteString.copyFromUtf8(Long.toString(sends.get())));
        };
    CompletableFuture<Integer> run =
        start("--id", "fl", "--mode", "flood", "--peer", "echo-1", "--count", "3000", "--size", "64", "--warmup", "500");
    assertEquals("ready", stdout.next());
    String line = stdout.next();
    assertTrue(line.matches("\\{\"mode\":\"flood\",\"count\":3000,\"elapsed_ms\":[0-9]+\\.[0-9]{3},\"received\":3000\\}"), line);
    assertEquals(BenchClient.EXIT_OK, exit(run));
    assertEquals(3500, sends.get());
    // The warm-up was counted by the peer before any timed message left.
    assertEquals(List.of(500L, 3500L), sendsAtPoll);
  }

  @Test
  void floodCountNeverReachedExitsFour() throws Exception {
    agent.welcomePeers = List.of(peer("echo-1"));
    agent.responder = m -> m.hasRequest() ? response(m.getRequest().getId(), ByteString.copyFromUtf8("1")) : null;
    CompletableFuture<Integer> run = start("--id", "fl", "--mode", "flood", "--peer", "echo-1", "--count", "10", "--size", "64", "--timeout-ms", "300");
    assertEquals("ready", stdout.next());
    assertEquals(BenchClient.EXIT_FLOOD_TIMEOUT, exit(run));
    assertTrue(stderr.toString(StandardCharsets.UTF_8).contains("counted 1 of 10"));
  }

  // ------------------------------------------------------------------ repl

  @Test
  void replRunsCommandsAndPrintsEvents() throws Exception {
    agent.welcomePeers = List.of(peer("lobby-1"));
    agent.responder =
        m -> {
          switch (m.getBodyCase()) {
            case SEND:
              return m.getSend().getTo().equals("ghost")
                  ? AgentMessage.newBuilder().setError(dev.warpmesh.agent.proto.Error.newBuilder().setId(m.getSend().getId()).setCodeValue(8).setMessage("no peer ghost")).build()
                  : result(m.getSend().getId(), 1);
            case REQUEST:
              return m.getRequest().getTo().equals("slow")
                  ? AgentMessage.newBuilder().setError(dev.warpmesh.agent.proto.Error.newBuilder().setId(m.getRequest().getId()).setCodeValue(10).setMessage("no reply within 5000 ms")).build()
                  : response(m.getRequest().getId(), ByteString.copyFromUtf8("re:" + m.getRequest().getData().toStringUtf8()));
            case BROADCAST:
              return result(m.getBroadcast().getId(), m.getBroadcast().getRole().isEmpty() ? 3 : 1);
            case PUBLISH:
              return result(m.getPublish().getId(), 2);
            case SUBSCRIBE:
              return result(m.getSubscribe().getId(), 0);
            case UNSUBSCRIBE:
              return result(m.getUnsubscribe().getId(), 0);
            case SET_META:
              return result(m.getSetMeta().getId(), 0);
            case GET_PEERS:
              return AgentMessage.newBuilder().setPeers(Peers.newBuilder().setId(m.getGetPeers().getId()).addPeers(peer("lobby-1"))).build();
            default:
              return null;
          }
        };
    CompletableFuture<Integer> run = start("--id", "repl-1", "--mode", "repl");
    assertEquals("ready", stdout.next());
    FakeAgent.Conn c = agent.nextConn();
    c.next(BodyCase.HELLO);

    stdin.line("send t1 lobby-1 hello world");
    assertEquals("{\"ev\":\"result\",\"tag\":\"t1\"}", stdout.next());
    assertEquals("hello world", c.next(BodyCase.SEND).getSend().getData().toStringUtf8());
    stdin.line("send t2 ghost x");
    assertEquals("{\"ev\":\"error\",\"tag\":\"t2\",\"code\":\"UNKNOWN_PEER\",\"message\":\"no peer ghost\"}", stdout.next());
    stdin.line("request t3 lobby-1 where \"steve\"");
    assertEquals("{\"ev\":\"response\",\"tag\":\"t3\",\"data\":\"re:where \\\"steve\\\"\"}", stdout.next());
    stdin.line("request t4 slow x");
    assertEquals("{\"ev\":\"error\",\"tag\":\"t4\",\"code\":\"TIMEOUT\",\"message\":\"no reply within 5000 ms\"}", stdout.next());
    stdin.line("broadcast t5 - - to all");
    assertEquals("{\"ev\":\"result\",\"tag\":\"t5\",\"count\":3}", stdout.next());
    stdin.line("broadcast t6 downstream eu to some");
    assertEquals("{\"ev\":\"result\",\"tag\":\"t6\",\"count\":1}", stdout.next());
    var b = c.next(BodyCase.SEND); // t2's send
    assertEquals("ghost", b.getSend().getTo());
    c.next(BodyCase.REQUEST);
    c.next(BodyCase.REQUEST);
    var b5 = c.next(BodyCase.BROADCAST).getBroadcast();
    assertEquals("", b5.getRole());
    assertEquals("", b5.getTag());
    assertEquals("to all", b5.getData().toStringUtf8());
    var b6 = c.next(BodyCase.BROADCAST).getBroadcast();
    assertEquals("downstream", b6.getRole());
    assertEquals("eu", b6.getTag());
    stdin.line("publish t7 chat hi all");
    assertEquals("{\"ev\":\"result\",\"tag\":\"t7\",\"count\":2}", stdout.next());
    assertEquals("chat", c.next(BodyCase.PUBLISH).getPublish().getTopic());
    stdin.line("subscribe t8 news");
    assertEquals("{\"ev\":\"result\",\"tag\":\"t8\"}", stdout.next());
    stdin.line("unsubscribe t9 news");
    assertEquals("{\"ev\":\"result\",\"tag\":\"t9\"}", stdout.next());
    stdin.line("meta t10 players=4,motd=hi");
    assertEquals("{\"ev\":\"result\",\"tag\":\"t10\"}", stdout.next());
    c.next(BodyCase.SUBSCRIBE);
    c.next(BodyCase.UNSUBSCRIBE);
    var meta = c.next(BodyCase.SET_META).getSetMeta().getMetaMap();
    assertEquals("4", meta.get("players"));
    assertEquals("hi", meta.get("motd"));
    stdin.line("peers t11");
    assertEquals(
        "{\"ev\":\"peers\",\"tag\":\"t11\",\"peers\":[{\"id\":\"lobby-1\",\"role\":\"downstream\",\"meta\":{\"players\":\"3\"},\"topics\":[\"chat\"]}]}",
        stdout.next());
    c.next(BodyCase.GET_PEERS);
    stdin.line("frobnicate t12");
    assertEquals("{\"ev\":\"error\",\"tag\":\"t12\",\"code\":\"INVALID_ARGUMENT\",\"message\":\"unknown command frobnicate\"}", stdout.next());
    stdin.line("subscribe t13");
    assertEquals("{\"ev\":\"error\",\"tag\":\"t13\",\"code\":\"INVALID_ARGUMENT\",\"message\":\"usage: subscribe TAG TOPIC\"}", stdout.next());

    // Events
    c.send(AgentMessage.newBuilder().setMessage(Message.newBuilder().setFrom("lobby-1").setData(ByteString.copyFromUtf8("hé")).setChannel(2).setTopic("chat")).build());
    assertEquals("{\"ev\":\"message\",\"from\":\"lobby-1\",\"data\":\"hé\",\"channel\":2,\"topic\":\"chat\"}", stdout.next());
    c.send(AgentMessage.newBuilder().setPeerEvent(PeerEvent.newBuilder().setKind(PeerEvent.Kind.DOWN).setPeer(peer("lobby-1")).setReason("expired")).build());
    assertEquals(
        "{\"ev\":\"peer-down\",\"id\":\"lobby-1\",\"role\":\"downstream\",\"meta\":{\"players\":\"3\"},\"topics\":[\"chat\"],\"reason\":\"expired\"}",
        stdout.next());
    c.send(AgentMessage.newBuilder().setPeerEvent(PeerEvent.newBuilder().setKind(PeerEvent.Kind.UP).setPeer(peer("lobby-2"))).build());
    assertTrue(stdout.next().startsWith("{\"ev\":\"peer-up\",\"id\":\"lobby-2\""));
    c.send(AgentMessage.newBuilder().setPeerEvent(PeerEvent.newBuilder().setKind(PeerEvent.Kind.UPDATED).setPeer(peer("lobby-2"))).build());
    assertTrue(stdout.next().startsWith("{\"ev\":\"peer-updated\",\"id\":\"lobby-2\""));
    c.send(AgentMessage.newBuilder().setCoordinatorEvent(CoordinatorEvent.newBuilder().setUp(true).setAddress("127.0.0.1:7000")).build());
    assertEquals("{\"ev\":\"coordinator\",\"up\":true,\"address\":\"127.0.0.1:7000\"}", stdout.next());
    c.send(AgentMessage.newBuilder().setIncomingRequest(IncomingRequest.newBuilder().setId(5).setFrom("lobby-2").setData(ByteString.copyFromUtf8("ping"))).build());
    var reply = c.next(BodyCase.REPLY).getReply();
    assertEquals(5, reply.getId());
    assertEquals("re:ping", reply.getData().toStringUtf8());

    // The agent restarts: disconnected, then reconnected with a new Hello.
    c.close();
    assertTrue(stdout.next().startsWith("{\"ev\":\"disconnected\""));
    FakeAgent.Conn c2 = agent.nextConn();
    var hello2 = c2.next(BodyCase.HELLO).getHello();
    assertEquals("4", hello2.getMetaMap().get("players"));
    assertEquals("{\"ev\":\"reconnected\"}", stdout.next());

    stdin.close();
    c2.next(BodyCase.GOODBYE);
    assertEquals(BenchClient.EXIT_OK, exit(run));
  }

  @Test
  void replWaitsForOutstandingRequestsAtEof() throws Exception {
    List<ClientMessage> held = new java.util.concurrent.CopyOnWriteArrayList<>();
    agent.responder =
        m -> {
          held.add(m);
          return null;
        };
    CompletableFuture<Integer> run = start("--id", "repl-1", "--mode", "repl");
    assertEquals("ready", stdout.next());
    FakeAgent.Conn c = agent.nextConn();
    c.next(BodyCase.HELLO);
    stdin.line("request r1 lobby-1 a");
    stdin.line("request r2 lobby-1 b");
    long id1 = c.next(BodyCase.REQUEST).getRequest().getId();
    long id2 = c.next(BodyCase.REQUEST).getRequest().getId();
    stdin.close();
    Thread.sleep(100);
    assertTrue(c.inbox.isEmpty(), "no Goodbye while requests are outstanding");
    c.send(response(id2, ByteString.copyFromUtf8("B")));
    c.send(response(id1, ByteString.copyFromUtf8("A")));
    assertEquals("{\"ev\":\"response\",\"tag\":\"r2\",\"data\":\"B\"}", stdout.next());
    assertEquals("{\"ev\":\"response\",\"tag\":\"r1\",\"data\":\"A\"}", stdout.next());
    c.next(BodyCase.GOODBYE);
    assertEquals(BenchClient.EXIT_OK, exit(run));
  }
}
