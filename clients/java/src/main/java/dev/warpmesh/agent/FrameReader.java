package dev.warpmesh.agent;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.warpmesh.agent.proto.AgentMessage;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;

/**
 * Reads varint-length-delimited {@link AgentMessage}s from a channel through one reused buffer.
 * Checks every declared length against the maximum before reading the frame.
 */
final class FrameReader {
  private final ReadableByteChannel channel;
  private final int maxFrame;
  private final ByteBuffer buffer = ByteBuffer.allocate(Limits.IO_BUFFER);

  FrameReader(ReadableByteChannel channel, int maxFrame) {
    this.channel = channel;
    this.maxFrame = maxFrame;
    buffer.flip();
  }

  /** The next message, or null on a clean end of stream (between frames). */
  AgentMessage read() throws IOException {
    int length = readLength();
    if (length < 0) return null;
    if (length > maxFrame) {
      throw new ProtocolViolation(
          "frame of " + length + " bytes from the agent, above the maximum " + maxFrame, null);
    }
    try {
      if (length <= buffer.capacity()) {
        fill(length);
        int at = buffer.position();
        buffer.position(at + length);
        return AgentMessage.parser().parseFrom(buffer.array(), at, length);
      }
      byte[] big = new byte[length];
      int got = Math.min(buffer.remaining(), length);
      buffer.get(big, 0, got);
      ByteBuffer rest = ByteBuffer.wrap(big, got, length - got);
      while (rest.hasRemaining()) {
        if (channel.read(rest) < 0) throw new EOFException("end of stream inside a frame");
      }
      return AgentMessage.parseFrom(big);
    } catch (InvalidProtocolBufferException e) {
      throw new ProtocolViolation("undecodable frame of " + length + " bytes from the agent: " + e.getMessage(), e);
    }
  }

  /** Reads the varint length prefix; -1 at a clean end of stream. */
  private int readLength() throws IOException {
    int value = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      if (!buffer.hasRemaining() && !refill()) {
        if (shift == 0) return -1;
        throw new EOFException("end of stream inside a length prefix");
      }
      int b = buffer.get() & 0xff;
      if (shift == 28 && (b & 0xf0) != 0) break;
      value |= (b & 0x7f) << shift;
      if ((b & 0x80) == 0) return value;
    }
    throw new ProtocolViolation("malformed length prefix from the agent (above 2^32)", null);
  }

  /** Makes at least {@code n} (≤ capacity) bytes available. */
  private void fill(int n) throws IOException {
    if (buffer.remaining() >= n) return;
    buffer.compact();
    try {
      while (buffer.position() < n) {
        if (channel.read(buffer) < 0) throw new EOFException("end of stream inside a frame");
      }
    } finally {
      buffer.flip();
    }
  }

  /** Reads whatever is available into the empty buffer; false at end of stream. */
  private boolean refill() throws IOException {
    buffer.clear();
    int n;
    try {
      do {
        n = channel.read(buffer);
      } while (n == 0);
    } finally {
      buffer.flip();
    }
    return n > 0;
  }
}
