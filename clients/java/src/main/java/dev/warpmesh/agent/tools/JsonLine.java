package dev.warpmesh.agent.tools;

import java.util.List;
import java.util.Map;

/** Builds one JSON object on one line (the bench client's output format); no dependency. */
final class JsonLine {
  private final StringBuilder sb = new StringBuilder(128).append('{');
  private boolean first = true;

  JsonLine put(String key, String value) {
    key(key);
    quote(sb, value);
    return this;
  }

  JsonLine put(String key, long value) {
    key(key);
    sb.append(value);
    return this;
  }

  JsonLine put(String key, boolean value) {
    key(key);
    sb.append(value);
    return this;
  }

  /** A pre-rendered JSON value (array or object). */
  JsonLine raw(String key, String json) {
    key(key);
    sb.append(json);
    return this;
  }

  @Override
  public String toString() {
    return sb.toString() + '}';
  }

  private void key(String key) {
    if (!first) sb.append(',');
    first = false;
    quote(sb, key);
    sb.append(':');
  }

  static String object(Map<String, String> map) {
    StringBuilder b = new StringBuilder().append('{');
    boolean f = true;
    for (Map.Entry<String, String> e : map.entrySet()) {
      if (!f) b.append(',');
      f = false;
      quote(b, e.getKey());
      b.append(':');
      quote(b, e.getValue());
    }
    return b.append('}').toString();
  }

  static String strings(List<String> list) {
    StringBuilder b = new StringBuilder().append('[');
    for (int i = 0; i < list.size(); i++) {
      if (i > 0) b.append(',');
      quote(b, list.get(i));
    }
    return b.append(']').toString();
  }

  static void quote(StringBuilder b, String s) {
    b.append('"');
    if (s == null) s = "";
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"':
          b.append("\\\"");
          break;
        case '\\':
          b.append("\\\\");
          break;
        case '\n':
          b.append("\\n");
          break;
        case '\r':
          b.append("\\r");
          break;
        case '\t':
          b.append("\\t");
          break;
        default:
          if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
          else b.append(c);
      }
    }
    b.append('"');
  }
}
