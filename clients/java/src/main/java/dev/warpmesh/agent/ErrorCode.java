package dev.warpmesh.agent;

/**
 * Why an operation failed: the agent's {@code warpmesh.agent.ErrorCode} (same names and numbers, see
 * agent.proto), plus {@link #INTERRUPTED}, which only this library produces.
 *
 * <p>Codes produced locally by the client: {@link #CLOSED} (the connection to the agent dropped or the
 * client was closed while the operation was outstanding, or the client is not connected),
 * {@link #TIMEOUT} (no answer from the agent within the timeout plus a grace period),
 * {@link #OVERLOADED} (too many outstanding operations, see {@code Builder.maxPending}),
 * {@link #TOO_LARGE} (a message above the agent's maximum frame), {@link #INTERRUPTED}.
 */
public enum ErrorCode {
  /** The agent sent no code (should not happen). */
  ERROR_CODE_UNSPECIFIED(0),
  /** A frame did not decode, or a field was out of range. */
  BAD_MESSAGE(1),
  /** A frame above the maximum size. */
  TOO_LARGE(2),
  /** The first message was not Hello, or a second Hello. */
  NOT_HELLO(3),
  /** TCP listener: missing or wrong token. */
  UNAUTHORIZED(4),
  /** An operation id already outstanding (a client bug). */
  DUPLICATE_ID(5),
  /** The node id is live elsewhere in the mesh. */
  DUPLICATE_NODE(6),
  /** A field is invalid for the mesh node (bad id, channel, topic, meta...). */
  INVALID_ARGUMENT(7),
  /** No such peer in the table. */
  UNKNOWN_PEER(8),
  /** The peer went down before answering or before delivery. */
  PEER_DOWN(9),
  /** No reply within the timeout. */
  TIMEOUT(10),
  /** A bounded queue is full. */
  OVERLOADED(11),
  /** The peer's request handler failed; the message is its text. */
  REMOTE_ERROR(12),
  /** The node or the connection is closing, or closed. */
  CLOSED(13),
  /** The agent's buffer for this client overflowed (the client read too slowly). */
  SLOW_CLIENT(14),
  /** A Reply for an incoming request that is no longer pending. */
  UNKNOWN_REQUEST(15),
  /** The agent could not start the mesh node (no coordinator reachable...). */
  START_FAILED(16),
  /** An agent bug. */
  INTERNAL(17),
  /** A services operation on a client built without {@code services(true)}. */
  SERVICES_OFF(18),
  /** No server lists the player. */
  UNKNOWN_PLAYER(19),
  /** The server is not in the registry, or no server matches the selector. */
  NO_SUCH_SERVER(20),
  /** The target (or every server a selector matched) has no room, or is in state {@code full}. */
  SERVER_FULL(21),
  /**
   * The target's hook or the player's proxy said no (or has no handler), or the target is {@code starting}
   * or {@code stopping}, or the player is already there; the message is the reason.
   */
  REFUSED(22),
  /** The target went down during the transfer. */
  TARGET_DOWN(23),
  /** Another transfer of the player is in progress. */
  TRANSFER_CONFLICT(24),
  /** Local only: the calling thread was interrupted while it waited. */
  INTERRUPTED(-1);

  private final int number;

  ErrorCode(int number) {
    this.number = number;
  }

  /** The number on the wire (-1 for local-only codes). */
  public int number() {
    return number;
  }

  /** The code for a wire number; unknown numbers map to {@link #ERROR_CODE_UNSPECIFIED}. */
  public static ErrorCode fromNumber(int number) {
    for (ErrorCode c : values()) {
      if (c.number == number && number >= 0) return c;
    }
    return ERROR_CODE_UNSPECIFIED;
  }
}
