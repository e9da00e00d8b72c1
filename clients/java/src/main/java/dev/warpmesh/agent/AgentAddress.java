package dev.warpmesh.agent;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;

/** Where the agent listens: a Unix domain socket, or TCP on a loopback address (with a token). */
final class AgentAddress {
  private final Path socketPath;
  private final String host;
  private final int port;

  private AgentAddress(Path socketPath, String host, int port) {
    this.socketPath = socketPath;
    this.host = host;
    this.port = port;
  }

  static AgentAddress unix(Path path) {
    return new AgentAddress(path, null, 0);
  }

  static AgentAddress tcp(String host, int port) {
    return new AgentAddress(null, host, port);
  }

  boolean isTcp() {
    return socketPath == null;
  }

  /** Opens a blocking connection. */
  SocketChannel open() throws IOException {
    if (socketPath != null) {
      SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
      try {
        ch.connect(UnixDomainSocketAddress.of(socketPath));
      } catch (IOException e) {
        ch.close();
        throw e;
      }
      return ch;
    }
    SocketChannel ch = SocketChannel.open();
    try {
      ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
      ch.connect(new InetSocketAddress(host, port));
    } catch (IOException e) {
      ch.close();
      throw e;
    }
    return ch;
  }

  @Override
  public String toString() {
    return socketPath != null ? "unix:" + socketPath : "tcp:" + host + ":" + port;
  }
}
