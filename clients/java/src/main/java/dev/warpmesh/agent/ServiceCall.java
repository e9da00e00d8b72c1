package dev.warpmesh.agent;

/**
 * A question of the network services to this client (only for kinds it registered a handler for):
 * answer it by returning from the {@link ServiceHandler}.
 *
 * @param id the agent's number for this call
 * @param kind what is asked
 * @param player the player concerned
 * @param server {@link Kind#MOVE}: the server to move the player to; "" otherwise
 * @param from {@link Kind#TRANSFER_REQUEST}: the player's current server; "" otherwise
 * @param text {@link Kind#MESSAGE}: the text to show; {@link Kind#KICK}: the reason; "" otherwise
 * @param players {@link Kind#TRANSFER_REQUEST}: players this server hosts now; 0 otherwise
 * @param arriving {@link Kind#TRANSFER_REQUEST}: players accepted before and not arrived yet (a limit
 *     counts {@code players + arriving}); 0 otherwise
 */
public record ServiceCall(
    long id, Kind kind, Player player, String server, String from, String text, int players, int arriving) {
  /** What a {@link ServiceCall} asks; same numbers as agent.proto's {@code ServiceCall.Kind}. */
  public enum Kind {
    /** At a target server: may {@code player} (now on {@code from}) come here? */
    TRANSFER_REQUEST(1),
    /** At the player's proxy (or their server when they have none): move them to {@code server}. */
    MOVE(2),
    /** At the player's proxy (or server): show {@code text} to the player. */
    MESSAGE(3),
    /** At the player's proxy (or server): disconnect the player with reason {@code text}. */
    KICK(4);

    private final int number;

    Kind(int number) {
      this.number = number;
    }

    /** The number on the wire. */
    public int number() {
      return number;
    }

    /** The kind for a wire number, or null for a number this client does not know. */
    public static Kind fromNumber(int number) {
      for (Kind k : values()) {
        if (k.number == number) return k;
      }
      return null;
    }
  }
}
