package dev.warpmesh.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import com.google.protobuf.CodedOutputStream;
import dev.warpmesh.agent.proto.AgentMessage;
import dev.warpmesh.agent.proto.ClientMessage;
import dev.warpmesh.agent.proto.Peer;
import dev.warpmesh.agent.proto.Welcome;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * An agent stand-in for tests: listens on a Unix socket (or loopback TCP), reads ClientMessages,
 * answers Hello with Welcome (unless told otherwise), and lets the test read what the client sent and
 * write whatever it wants back, including garbage.
 */
public final class FakeAgent implements AutoCloseable {
  public static final long WAIT_MS = 5_000;

  public final Path dir;
  public final Path socketPath;
  public final int tcpPort;
  private final ServerSocketChannel server;
  private final BlockingQueue<Conn> accepted = new LinkedBlockingQueue<>();
  private final List<Conn> all = new java.util.concurrent.CopyOnWriteArrayList<>();
  private final Thread acceptor;

  /** Welcome.peers for the next hellos. */
  public volatile List<Peer> welcomePeers = List.of();
  /** Welcome.max_frame (0 = unset). */
  public volatile int maxFrame = 0;
  /** Answer Hello with Welcome automatically. */
  public volatile boolean autoWelcome = true;
  /** Answer Goodbye with Goodbye and close, as the agent does. */
  public volatile boolean answerGoodbye = true;
  /** Answers other messages (null = no answer). */
  public volatile Function<ClientMessage, AgentMessage> responder = m -> null;

  private FakeAgent(boolean tcp) throws IOException {
    if (tcp) {
      dir = null;
      socketPath = null;
      server = ServerSocketChannel.open();
      server.bind(new InetSocketAddress("127.0.0.1", 0));
      tcpPort = ((InetSocketAddress) server.getLocalAddress()).getPort();
    } else {
      dir = Files.createTempDirectory("warpmesh-java-test");
      socketPath = dir.resolve("agent.sock");
      server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
      server.bind(UnixDomainSocketAddress.of(socketPath));
      tcpPort = 0;
    }
    acceptor = new Thread(this::acceptLoop, "fake-agent-accept");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  public static FakeAgent unix() throws IOException {
    return new FakeAgent(false);
  }

  public static FakeAgent tcp() throws IOException {
    return new FakeAgent(true);
  }

  /** A client builder pointed at this agent, with a short request timeout. */
  public WarpmeshClient.Builder builder(String id) {
    WarpmeshClient.Builder b = WarpmeshClient.builder().id(id);
    return socketPath != null ? b.socketPath(socketPath) : b.tcp("127.0.0.1", tcpPort, "secret");
  }

  private void acceptLoop() {
    try {
      while (true) {
        SocketChannel ch = server.accept();
        Conn c = new Conn(ch);
        all.add(c);
        accepted.add(c);
        c.start();
      }
    } catch (IOException e) {
      // closed
    }
  }

  /** The next accepted connection (fails the test after 5 s). */
  public Conn nextConn() throws InterruptedException {
    Conn c = accepted.poll(WAIT_MS, TimeUnit.MILLISECONDS);
    assertNotNull(c, "no connection from the client");
    return c;
  }

  /** True when no new connection arrives within {@code ms}. */
  public boolean noConnWithin(long ms) throws InterruptedException {
    return accepted.poll(ms, TimeUnit.MILLISECONDS) == null;
  }

  @Override
  public void close() throws IOException {
    server.close();
    for (Conn c : all) c.close();
    if (socketPath != null) {
      Files.deleteIfExists(socketPath);
      Files.deleteIfExists(dir);
    }
  }

  public static byte[] frame(AgentMessage m) {
    try {
      ByteArrayOutputStream b = new ByteArrayOutputStream();
      m.writeDelimitedTo(b);
      return b.toByteArray();
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  public static byte[] varint(long n) {
    try {
      ByteArrayOutputStream b = new ByteArrayOutputStream();
      CodedOutputStream c = CodedOutputStream.newInstance(b);
      c.writeUInt64NoTag(n);
      c.flush();
      return b.toByteArray();
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  /** One client connection as the agent sees it. */
  public final class Conn {
    public final SocketChannel channel;
    public final BlockingQueue<ClientMessage> inbox = new LinkedBlockingQueue<>();
    public final CountDownLatch eof = new CountDownLatch(1);
    /** While true, the agent reads nothing more from this connection (its socket buffer fills). */
    public volatile boolean paused;
    private final Thread reader;

    Conn(SocketChannel channel) {
      this.channel = channel;
      this.reader = new Thread(this::readLoop, "fake-agent-conn");
      reader.setDaemon(true);
    }

    void start() {
      reader.start();
    }

    private void readLoop() {
      InputStream in =
          new BufferedInputStream(
              new InputStream() {
                @Override
                public int read() throws IOException {
                  byte[] one = new byte[1];
                  return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
                }

                @Override
                public int read(byte[] b, int off, int len) throws IOException {
                  return channel.read(ByteBuffer.wrap(b, off, len));
                }
              });
      try {
        ClientMessage m;
        boolean first = true;
        while (true) {
          while (paused) Thread.sleep(5);
          m = ClientMessage.parseDelimitedFrom(in);
          if (m == null) break;
          inbox.add(m);
          if (first && m.hasHello() && autoWelcome) {
            send(welcome(m.getHello().getId()));
          } else if (m.hasGoodbye() && answerGoodbye) {
            send(AgentMessage.newBuilder().setGoodbye(m.getGoodbye()).build());
            close();
          } else if (!m.hasHello()) {
            AgentMessage a = responder.apply(m);
            if (a != null) send(a);
          }
          first = false;
        }
      } catch (IOException | InterruptedException e) {
        // dropped
      } finally {
        eof.countDown();
      }
    }

    AgentMessage welcome(String id) {
      return AgentMessage.newBuilder()
          .setWelcome(
              Welcome.newBuilder()
                  .setProtocolVersion(1)
                  .setId(id)
                  .setUdpPort(40000)
                  .addAllPeers(welcomePeers)
                  .setMaxFrame(maxFrame)
                  .setAgentVersion("fake"))
          .build();
    }

    /** The next message from the client (fails the test after 5 s). */
    public ClientMessage next() throws InterruptedException {
      ClientMessage m = inbox.poll(WAIT_MS, TimeUnit.MILLISECONDS);
      assertNotNull(m, "no message from the client");
      return m;
    }

    /** The next message, which must be of {@code kind}. */
    public ClientMessage next(ClientMessage.BodyCase kind) throws InterruptedException {
      ClientMessage m = next();
      assertEquals(kind, m.getBodyCase(), "unexpected message " + m);
      return m;
    }

    public synchronized void send(AgentMessage m) {
      sendRaw(frame(m));
    }

    public synchronized void sendRaw(byte[] bytes) {
      try {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        while (b.hasRemaining()) channel.write(b);
      } catch (IOException e) {
        throw new AssertionError("fake agent write failed", e);
      }
    }

    /** True when the client closed the connection within 5 s. */
    public boolean awaitEof() throws InterruptedException {
      return eof.await(WAIT_MS, TimeUnit.MILLISECONDS);
    }

    public void close() {
      try {
        channel.close();
      } catch (IOException e) {
        // closing
      }
    }
  }
}
