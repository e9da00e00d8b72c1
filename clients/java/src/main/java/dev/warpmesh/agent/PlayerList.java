package dev.warpmesh.agent;

import java.util.List;

/**
 * Answer of {@link WarpmeshClient#listPlayers}.
 *
 * @param count every player matching the filter
 * @param players at most the asked limit of them (unmodifiable)
 */
public record PlayerList(int count, List<Player> players) {
  /** Copies the list so the record is immutable. */
  public PlayerList {
    players = List.copyOf(players);
  }
}
