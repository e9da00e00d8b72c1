package dev.warpmesh.agent;

/**
 * Answers a {@link ServiceCall} synchronously, on the client's reader thread: return null to accept
 * (or report the move, message or kick done), or a reason to refuse (the caller gets
 * {@link ErrorCode#REFUSED} with it). A throw refuses with the exception's message. For slow work (a
 * real move takes a round trip to the player) use {@link AsyncServiceHandler}.
 */
@FunctionalInterface
public interface ServiceHandler {
  /** Decides or performs {@code call}; null = ok, otherwise the refusal's reason. */
  String handle(ServiceCall call) throws Exception;
}
