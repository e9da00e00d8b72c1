package dev.warpmesh.agent;

import java.util.Map;

/**
 * A player in the network's directory (the services' replicated player list).
 *
 * @param name name as announced (Bedrock names are compared case-insensitively)
 * @param xuid XUID (digits), or "" when unknown
 * @param server node id of the server the player is on (the node that announced them)
 * @param proxy node id of the proxy the player is connected through, or "" (then their server moves,
 *     messages and kicks them)
 * @param fields free fields (unmodifiable)
 */
public record Player(String name, String xuid, String server, String proxy, Map<String, String> fields) {
  /** Copies the map so the record is immutable. */
  public Player {
    fields = Map.copyOf(fields);
  }
}
