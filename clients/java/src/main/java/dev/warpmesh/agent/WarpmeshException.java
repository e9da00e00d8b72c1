package dev.warpmesh.agent;

/**
 * A failed warpmesh operation, with a stable {@link ErrorCode}. Unchecked: the blocking API throws it,
 * and the futures of the asynchronous API complete exceptionally with it.
 */
public class WarpmeshException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final ErrorCode code;
  private final boolean fatal;

  /** An error with a code and a message. */
  public WarpmeshException(ErrorCode code, String message) {
    this(code, message, false, null);
  }

  /** An error with a code, a message and a cause. */
  public WarpmeshException(ErrorCode code, String message, Throwable cause) {
    this(code, message, false, cause);
  }

  /**
   * An error with a code, a message, whether the agent closes the connection after it, and a cause.
   */
  public WarpmeshException(ErrorCode code, String message, boolean fatal, Throwable cause) {
    super(code + ": " + message, cause);
    this.code = code;
    this.fatal = fatal;
  }

  /** Why the operation failed. */
  public ErrorCode code() {
    return code;
  }

  /** True when the agent closes the connection after this error. */
  public boolean fatal() {
    return fatal;
  }

  /** The message without the code prefix. */
  public String detail() {
    String m = getMessage();
    String prefix = code + ": ";
    return m.startsWith(prefix) ? m.substring(prefix.length()) : m;
  }
}
