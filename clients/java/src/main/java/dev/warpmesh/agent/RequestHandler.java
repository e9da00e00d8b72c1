package dev.warpmesh.agent;

/**
 * Answers a peer's request synchronously, on the client's reader thread: return the reply bytes
 * ({@code null} = empty), or throw to fail the request at the caller with {@link ErrorCode#REMOTE_ERROR}
 * and the exception's message. For slow work use {@link AsyncRequestHandler}.
 */
@FunctionalInterface
public interface RequestHandler {
  /** Computes the reply to {@code data} from peer {@code from}. */
  byte[] handle(String from, byte[] data) throws Exception;
}
