package dev.warpmesh.agent;

import java.util.concurrent.CompletionStage;

/**
 * Answers a peer's request asynchronously: return a stage that completes with the reply bytes
 * ({@code null} = empty) or exceptionally to fail the request at the caller with
 * {@link ErrorCode#REMOTE_ERROR}. Called on the client's reader thread; do not block in it.
 */
@FunctionalInterface
public interface AsyncRequestHandler {
  /** Starts computing the reply to {@code data} from peer {@code from}. */
  CompletionStage<byte[]> handle(String from, byte[] data) throws Exception;
}
