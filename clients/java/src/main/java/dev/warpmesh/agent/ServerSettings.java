package dev.warpmesh.agent;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * What a server says of itself in the network's registry ({@link WarpmeshClient.Builder#server},
 * {@link WarpmeshClient#setServer}). Immutable; every field left unset (null) keeps its current value
 * when sent. Build with {@code ServerSettings.create().state("lobby").mode("skywars").max(50)}.
 */
public final class ServerSettings {
  /** The documented states; any other 1..32 of a-z 0-9 _ - is a custom state. */
  public static final String STARTING = "starting";
  public static final String LOBBY = "lobby";
  public static final String IN_GAME = "in-game";
  public static final String FULL = "full";
  public static final String STOPPING = "stopping";

  private static final Pattern STATE = Pattern.compile(Limits.STATE_PATTERN);
  private static final ServerSettings EMPTY = new ServerSettings(null, null, null, null, null);

  private final String state;
  private final String mode;
  private final List<String> tags;
  private final Integer max;
  private final Map<String, String> fields;

  private ServerSettings(String state, String mode, List<String> tags, Integer max, Map<String, String> fields) {
    this.state = state;
    this.mode = mode;
    this.tags = tags;
    this.max = max;
    this.fields = fields;
  }

  /** Settings with nothing set. */
  public static ServerSettings create() {
    return EMPTY;
  }

  /** With state {@code value}: a documented state or 1..32 of a-z 0-9 _ - */
  public ServerSettings state(String value) {
    if (value == null || !STATE.matcher(value).matches()) {
      throw new IllegalArgumentException("state must be 1..32 of a-z 0-9 _ - (e.g. \"lobby\"), got \"" + value + "\"");
    }
    return new ServerSettings(value, mode, tags, max, fields);
  }

  /** With game mode {@code value} ("" = none). */
  public ServerSettings mode(String value) {
    return new ServerSettings(state, Objects.requireNonNull(value, "mode"), tags, max, fields);
  }

  /** With these tags (replacing the current ones, also by none). */
  public ServerSettings tags(List<String> value) {
    List<String> copy = new ArrayList<>(Objects.requireNonNull(value, "tags"));
    for (String t : copy) {
      if (t == null || t.isEmpty()) throw new IllegalArgumentException("tags must be non-empty strings, got " + value);
    }
    return new ServerSettings(state, mode, Collections.unmodifiableList(copy), max, fields);
  }

  /** With capacity {@code value} (0 = unlimited). */
  public ServerSettings max(int value) {
    if (value < 0) throw new IllegalArgumentException("max must be 0 (unlimited) or more, got " + value);
    return new ServerSettings(state, mode, tags, value, fields);
  }

  /** With these free fields (replacing the current ones, also by none). */
  public ServerSettings fields(Map<String, String> value) {
    Map<String, String> copy = new LinkedHashMap<>(Objects.requireNonNull(value, "fields"));
    return new ServerSettings(state, mode, tags, max, Collections.unmodifiableMap(copy));
  }

  /** The state, or null when unset. */
  public String state() {
    return state;
  }

  /** The mode, or null when unset. */
  public String mode() {
    return mode;
  }

  /** The tags, or null when unset. */
  public List<String> tags() {
    return tags;
  }

  /** The capacity, or null when unset. */
  public Integer max() {
    return max;
  }

  /** The free fields, or null when unset. */
  public Map<String, String> fields() {
    return fields;
  }

  /** These settings with every field {@code next} sets replaced (what the registry holds after both). */
  public ServerSettings merge(ServerSettings next) {
    return new ServerSettings(
        next.state != null ? next.state : state,
        next.mode != null ? next.mode : mode,
        next.tags != null ? next.tags : tags,
        next.max != null ? next.max : max,
        next.fields != null ? next.fields : fields);
  }

  /** The protobuf form: set_tags / set_max / set_fields say which of the zero-able fields are set. */
  dev.warpmesh.agent.proto.ServerSettings toProto() {
    dev.warpmesh.agent.proto.ServerSettings.Builder b = dev.warpmesh.agent.proto.ServerSettings.newBuilder();
    if (state != null) b.setState(state);
    if (mode != null) b.setMode(mode);
    if (tags != null) b.addAllTags(tags).setSetTags(true);
    if (max != null) b.setMax(max).setSetMax(true);
    if (fields != null) b.putAllFields(fields).setSetFields(true);
    return b.build();
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof ServerSettings)) return false;
    ServerSettings s = (ServerSettings) o;
    return Objects.equals(state, s.state)
        && Objects.equals(mode, s.mode)
        && Objects.equals(tags, s.tags)
        && Objects.equals(max, s.max)
        && Objects.equals(fields, s.fields);
  }

  @Override
  public int hashCode() {
    return Objects.hash(state, mode, tags, max, fields);
  }

  @Override
  public String toString() {
    return "ServerSettings{state=" + state + ", mode=" + mode + ", tags=" + tags + ", max=" + max + ", fields=" + fields + "}";
  }
}
