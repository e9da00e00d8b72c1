package dev.warpmesh.agent;

import java.util.concurrent.CompletionStage;

/**
 * Answers a {@link ServiceCall} asynchronously: the stage completes with null (ok) or a refusal's
 * reason, or exceptionally (a refusal with the exception's message). Called on the client's reader
 * thread; do not block in it. The agent's answer deadline is the caller's timeout (5 s by default).
 */
@FunctionalInterface
public interface AsyncServiceHandler {
  /** Starts deciding or performing {@code call}. */
  CompletionStage<String> handle(ServiceCall call) throws Exception;
}
