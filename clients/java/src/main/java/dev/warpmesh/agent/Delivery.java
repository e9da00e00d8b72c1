package dev.warpmesh.agent;

/** Delivery modes of a message, as agent.proto's {@code Delivery}. */
public enum Delivery {
  /** The node's default: reliable ordered. */
  DEFAULT(0),
  /** Fire and forget. */
  UNRELIABLE(1),
  /** Newest wins, older dropped. */
  UNRELIABLE_SEQUENCED(2),
  /** Delivered once, in any order. */
  RELIABLE_UNORDERED(3),
  /** Delivered once, in order per channel. */
  RELIABLE_ORDERED(4);

  private final int number;

  Delivery(int number) {
    this.number = number;
  }

  /** The number on the wire. */
  public int number() {
    return number;
  }

  /** The mode for a wire number; unknown numbers map to {@link #DEFAULT}. */
  public static Delivery fromNumber(int number) {
    for (Delivery d : values()) {
      if (d.number == number) return d;
    }
    return DEFAULT;
  }
}
