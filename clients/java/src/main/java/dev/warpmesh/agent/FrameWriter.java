package dev.warpmesh.agent;

import com.google.protobuf.CodedOutputStream;
import dev.warpmesh.agent.proto.ClientMessage;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;

/**
 * Writes varint-length-delimited {@link ClientMessage}s into one reused buffer; {@link #flush()} hands
 * the buffer to the channel (blocking while the agent is not reading: that is the flow control).
 * Not thread-safe: the client serializes callers.
 */
final class FrameWriter {
  private final CodedOutputStream out;

  FrameWriter(WritableByteChannel channel) {
    this.out = CodedOutputStream.newInstance(new ChannelOutput(channel), Limits.IO_BUFFER);
  }

  /** Buffers one frame (the buffer is written out whenever it fills). */
  void write(ClientMessage message) throws IOException {
    out.writeUInt32NoTag(message.getSerializedSize());
    message.writeTo(out);
  }

  /** Writes everything buffered to the channel. */
  void flush() throws IOException {
    out.flush();
  }

  /** An OutputStream over a blocking channel, without java.nio.channels.Channels' blocking lock. */
  private static final class ChannelOutput extends OutputStream {
    private final WritableByteChannel channel;

    ChannelOutput(WritableByteChannel channel) {
      this.channel = channel;
    }

    @Override
    public void write(int b) throws IOException {
      write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      ByteBuffer bb = ByteBuffer.wrap(b, off, len);
      while (bb.hasRemaining()) channel.write(bb);
    }
  }
}
