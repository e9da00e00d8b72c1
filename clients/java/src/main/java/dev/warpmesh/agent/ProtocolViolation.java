package dev.warpmesh.agent;

import java.io.IOException;

/** The agent sent bytes this client cannot trust (bad length prefix, oversized or undecodable frame). */
final class ProtocolViolation extends IOException {
  private static final long serialVersionUID = 1L;

  ProtocolViolation(String message, Throwable cause) {
    super(message, cause);
  }
}
