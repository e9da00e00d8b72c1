package dev.warpmesh.agent;

import java.util.List;
import java.util.Map;

/**
 * A peer in the mesh's table.
 *
 * @param id node id
 * @param role role ("proxy", "downstream", ...)
 * @param address the peer's UDP address as the coordinator saw it
 * @param port the peer's UDP port
 * @param meta the peer's metadata (unmodifiable)
 * @param topics the topics the peer subscribes to (unmodifiable)
 */
public record PeerInfo(
    String id, String role, String address, int port, Map<String, String> meta, List<String> topics) {
  /** Copies the collections so the record is immutable. */
  public PeerInfo {
    meta = Map.copyOf(meta);
    topics = List.copyOf(topics);
  }
}
