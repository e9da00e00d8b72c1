package dev.warpmesh.agent;

import java.util.List;
import java.util.Map;

/**
 * A server in the network's registry.
 *
 * @param id node id
 * @param role the node's mesh role
 * @param state "starting", "lobby", "in-game", "full", "stopping" or a custom state
 * @param mode game mode, "" for none
 * @param tags tags (unmodifiable)
 * @param players players the directory lists on this server
 * @param max capacity, 0 = unlimited
 * @param fields free fields (unmodifiable)
 */
public record ServerInfo(
    String id, String role, String state, String mode, List<String> tags, int players, int max, Map<String, String> fields) {
  /** Copies the collections so the record is immutable. */
  public ServerInfo {
    tags = List.copyOf(tags);
    fields = Map.copyOf(fields);
  }
}
