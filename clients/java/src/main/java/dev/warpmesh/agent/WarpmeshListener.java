package dev.warpmesh.agent;

/**
 * Events of a {@link WarpmeshClient}. Every method has an empty default; override what you need.
 *
 * <p>All methods run on the client's reader thread, one at a time, in the order the agent sent the
 * events: return quickly, and never wait there for an answer of the same client (hand the work to
 * your own executor). An exception thrown by a listener is logged and ignored.
 */
public interface WarpmeshListener {
  /** A message from a peer (send, broadcast or publication). */
  default void onMessage(MeshMessage message) {}

  /** A peer joined the mesh. */
  default void onPeerUp(PeerInfo peer) {}

  /** A peer left or expired; {@code reason} is "left", "expired", "timeout", ... */
  default void onPeerDown(PeerInfo peer, String reason) {}

  /** A peer changed its metadata or subscriptions. */
  default void onPeerUpdated(PeerInfo peer) {}

  /** A coordinator became reachable ({@code up}) or unreachable, at {@code address} (host:port). */
  default void onCoordinator(boolean up, String address) {}

  /** {@code count} queued reliable messages to {@code peer} were dropped: it could not be reached. */
  default void onUndelivered(String peer, int count, String reason) {}

  /** Network services (with {@code playerEvents(true)}): a player appeared on {@code player.server()}. */
  default void onPlayerJoined(Player player) {}

  /** Network services: a player left the network (their server no longer lists them, or it went down). */
  default void onPlayerLeft(Player player) {}

  /** Network services: a player left server {@code from} and appeared on {@code player.server()}. */
  default void onPlayerMoved(Player player, String from) {}

  /** Network services: a server was listed, or its entry changed (state, players, mode...). */
  default void onServerUpdated(ServerInfo server) {}

  /** Network services: server {@code id} left the registry (it went down or stopped its services). */
  default void onServerRemoved(String id) {}

  /**
   * An error the agent reported without an operation to fail: a failed fire-and-forget send, an
   * unknown reply id, or a fatal error just before the agent closes the connection.
   */
  default void onError(WarpmeshException error) {}

  /**
   * The connection to the agent dropped (or the agent sent something this client cannot trust, so the
   * client closed it). Outstanding operations have failed with {@link ErrorCode#CLOSED}. When reconnect
   * is on, the client now retries in the background.
   */
  default void onDisconnected(String reason) {}

  /** The client is connected again: the agent answered the new Hello with Welcome. */
  default void onReconnected() {}
}
