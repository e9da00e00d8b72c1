package dev.warpmesh.agent;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * Picks the target of a transfer ({@link WarpmeshClient#transfer(String, ServerSelector, java.time.Duration)}):
 * among listed servers matching every set field, with room and a state that takes players, the least
 * full; when none accepts, the fallback (a server, or another selector) is tried. Immutable; build with
 * {@code ServerSelector.create().mode("skywars").states(List.of("lobby")).fallbackServer("lobby-1")}.
 */
public final class ServerSelector {
  private static final ServerSelector EMPTY = new ServerSelector("", List.of(), "", List.of(), "", null);

  private final String mode;
  private final List<String> states;
  private final String tag;
  private final List<String> exclude;
  private final String fallbackServer;
  private final ServerSelector fallback;

  private ServerSelector(
      String mode, List<String> states, String tag, List<String> exclude, String fallbackServer, ServerSelector fallback) {
    this.mode = mode;
    this.states = states;
    this.tag = tag;
    this.exclude = exclude;
    this.fallbackServer = fallbackServer;
    this.fallback = fallback;
  }

  /** A selector matching any listed server. */
  public static ServerSelector create() {
    return EMPTY;
  }

  /** Only servers of this mode ("" = any). */
  public ServerSelector mode(String value) {
    return new ServerSelector(Objects.requireNonNull(value, "mode"), states, tag, exclude, fallbackServer, fallback);
  }

  /** Only servers in one of these states (empty = any state that takes players). */
  public ServerSelector states(List<String> value) {
    return new ServerSelector(mode, copy(value, "states"), tag, exclude, fallbackServer, fallback);
  }

  /** Only servers with this tag ("" = any). */
  public ServerSelector tag(String value) {
    return new ServerSelector(mode, states, Objects.requireNonNull(value, "tag"), exclude, fallbackServer, fallback);
  }

  /** Leave these servers out (the player's current server is always left out). */
  public ServerSelector exclude(List<String> value) {
    return new ServerSelector(mode, states, tag, copy(value, "exclude"), fallbackServer, fallback);
  }

  /** When no server matches: this server (wins over {@link #fallback(ServerSelector)}). */
  public ServerSelector fallbackServer(String value) {
    return new ServerSelector(mode, states, tag, exclude, Objects.requireNonNull(value, "fallbackServer"), fallback);
  }

  /** When no server matches: this selector. */
  public ServerSelector fallback(ServerSelector value) {
    return new ServerSelector(mode, states, tag, exclude, fallbackServer, Objects.requireNonNull(value, "fallback"));
  }

  public String mode() {
    return mode;
  }

  public List<String> states() {
    return states;
  }

  public String tag() {
    return tag;
  }

  public List<String> exclude() {
    return exclude;
  }

  public String fallbackServer() {
    return fallbackServer;
  }

  /** The fallback selector, or null. */
  public ServerSelector fallback() {
    return fallback;
  }

  dev.warpmesh.agent.proto.Selector toProto() {
    dev.warpmesh.agent.proto.Selector.Builder b =
        dev.warpmesh.agent.proto.Selector.newBuilder()
            .setMode(mode)
            .addAllStates(states)
            .setTag(tag)
            .addAllExclude(exclude)
            .setFallbackServer(fallbackServer);
    if (fallback != null) b.setFallback(fallback.toProto());
    return b.build();
  }

  private static List<String> copy(List<String> value, String what) {
    List<String> c = new ArrayList<>(Objects.requireNonNull(value, what));
    for (String s : c) {
      if (s == null || s.isEmpty()) throw new IllegalArgumentException(what + " must be non-empty strings, got " + value);
    }
    return Collections.unmodifiableList(c);
  }

  @Override
  public String toString() {
    return "ServerSelector{mode=" + mode + ", states=" + states + ", tag=" + tag + ", exclude=" + exclude
        + ", fallbackServer=" + fallbackServer + ", fallback=" + fallback + "}";
  }
}
