package dev.warpmesh.agent.examples;

import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * Which server each player is on, as the downstream servers last announced it: each server publishes
 * its full player list, which replaces what it announced before. Bounded: at most {@code maxPlayers}
 * players in total; names past the bound are dropped and counted. Not thread-safe (the example uses it
 * from the client's reader thread and under its own lock).
 */
public final class PlayerDirectory {
  /** Default bound on players known. */
  public static final int DEFAULT_MAX_PLAYERS = 100_000;

  private final Map<String, String> serverOf = new HashMap<>();
  private final Map<String, Set<String>> playersOf = new HashMap<>();
  private final int maxPlayers;
  private long dropped;

  /** A directory holding at most {@code maxPlayers} players. */
  public PlayerDirectory(int maxPlayers) {
    if (maxPlayers < 1) throw new IllegalArgumentException("maxPlayers must be at least 1, got " + maxPlayers);
    this.maxPlayers = maxPlayers;
  }

  /** Replaces the player list of {@code server} with the comma-separated {@code list} ("" = none). */
  public void update(String server, String list) {
    forget(server);
    Set<String> names = new LinkedHashSet<>();
    for (String raw : list.split(",")) {
      String name = raw.trim();
      if (name.isEmpty()) continue;
      if (serverOf.size() >= maxPlayers && !serverOf.containsKey(name)) {
        dropped++;
        continue;
      }
      String previous = serverOf.put(name, server);
      if (previous != null && !previous.equals(server)) {
        Set<String> old = playersOf.get(previous);
        if (old != null) old.remove(name);
      }
      names.add(name);
    }
    if (!names.isEmpty()) playersOf.put(server, names);
  }

  /** Forgets the players of {@code server} (it went down). */
  public void forget(String server) {
    Set<String> names = playersOf.remove(server);
    if (names == null) return;
    for (String n : names) serverOf.remove(n, server);
  }

  /** The server {@code player} is on, or null. */
  public String where(String player) {
    return serverOf.get(player);
  }

  /** Players known. */
  public int size() {
    return serverOf.size();
  }

  /** Player names dropped because the directory was full. */
  public long dropped() {
    return dropped;
  }
}
