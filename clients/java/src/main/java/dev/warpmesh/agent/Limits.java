package dev.warpmesh.agent;

/** Constants of the client protocol and of this library, defined once. */
final class Limits {
  private Limits() {}

  /** Protocol version sent in Hello. */
  static final int PROTOCOL_VERSION = 1;
  /** Largest frame the agent accepts unless its Welcome says otherwise: 1 MiB + 4 KiB. */
  static final int MAX_FRAME = 1024 * 1024 + 4096;
  /** Buffer size of the reader and of the writer. */
  static final int IO_BUFFER = 64 * 1024;
  /** Default bound on outstanding operations. */
  static final int DEFAULT_MAX_PENDING = 65_536;
  /** Default request timeout, milliseconds (the agent's own default). */
  static final long DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
  /** Default time to wait for Welcome after Hello, milliseconds. */
  static final long DEFAULT_HELLO_TIMEOUT_MS = 15_000;
  /** Added to a timeout before the client fails an operation the agent has not answered. */
  static final long LOCAL_TIMEOUT_GRACE_MS = 250;
  /** Reconnect backoff: first delay and cap, milliseconds (doubling in between). */
  static final long RECONNECT_FIRST_MS = 100;
  static final long RECONNECT_MAX_MS = 2_000;
  /** How long close() waits for the agent's Goodbye, milliseconds. */
  static final long CLOSE_WAIT_MS = 1_000;
  /** Longest error text sent in a Reply, characters. */
  static final int MAX_REPLY_ERROR_CHARS = 1_024;
  /** Bound of the local peer-table mirror. */
  static final int MAX_KNOWN_PEERS = 100_000;
  /** Node ids: 1..64 of A-Z a-z 0-9 _ . : - (as MeshNodeOptions.id). */
  static final String ID_PATTERN = "[A-Za-z0-9_.:-]{1,64}";
  /** Metadata bounds (as the agent's): pairs, key length, value bytes. */
  static final int META_MAX_PAIRS = 32;
  static final int META_KEY_MAX = 32;
  static final int META_VALUE_MAX_BYTES = 128;
  /** Application channels 0..MAX_CHANNEL. */
  static final int MAX_CHANNEL = 15;
  /** Server states: 1..32 of a-z 0-9 _ - (lib/services). */
  static final String STATE_PATTERN = "[a-z0-9_-]{1,32}";
  /** Bound of the players this client re-announces after a reconnect. */
  static final int MAX_HOSTED_PLAYERS = 100_000;
  /** Client name sent in Hello. */
  static final String CLIENT_NAME = "warpmesh-java/0.1.0";
}
