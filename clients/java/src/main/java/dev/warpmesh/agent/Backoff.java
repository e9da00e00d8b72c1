package dev.warpmesh.agent;

/** Reconnect delays: {@link Limits#RECONNECT_FIRST_MS}, doubling up to {@link Limits#RECONNECT_MAX_MS}. */
final class Backoff {
  private Backoff() {}

  /** The delay before the first attempt, ms. */
  static long first() {
    return Limits.RECONNECT_FIRST_MS;
  }

  /** The delay after a failed attempt that waited {@code delayMs}. */
  static long next(long delayMs) {
    return Math.min(delayMs * 2, Limits.RECONNECT_MAX_MS);
  }
}
