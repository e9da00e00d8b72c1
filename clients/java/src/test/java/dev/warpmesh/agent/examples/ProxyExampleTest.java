package dev.warpmesh.agent.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ProxyExampleTest {
  @Test
  void aServersListReplacesItsPreviousOne() {
    PlayerDirectory d = new PlayerDirectory(100);
    d.update("lobby-1", "steve, alex");
    d.update("lobby-2", "bob");
    assertEquals("lobby-1", d.where("steve"));
    assertEquals("lobby-2", d.where("bob"));
    d.update("lobby-1", "alex");
    assertNull(d.where("steve"));
    assertEquals(2, d.size());
    d.update("lobby-2", "bob,alex"); // alex moved
    assertEquals("lobby-2", d.where("alex"));
    d.forget("lobby-1");
    assertEquals("lobby-2", d.where("alex"), "forgetting lobby-1 keeps alex on lobby-2");
    d.forget("lobby-2");
    assertEquals(0, d.size());
    d.update("lobby-3", "");
    assertEquals(0, d.size());
  }

  @Test
  void theDirectoryIsBounded() {
    PlayerDirectory d = new PlayerDirectory(3);
    d.update("a", "p1,p2");
    d.update("b", "p3,p4,p5");
    assertEquals(3, d.size());
    assertEquals(2, d.dropped());
    assertNull(d.where("p4"));
    d.update("a", "p1,p2"); // names already known are not dropped
    assertEquals(2, d.dropped());
    assertThrows(IllegalArgumentException.class, () -> new PlayerDirectory(0));
  }

  @Test
  void whereRequestsAreAnswered() {
    ProxyExample p = new ProxyExample();
    p.onPlayers("lobby-1", "steve");
    assertEquals("lobby-1", new String(p.answer("x", "where steve"), StandardCharsets.UTF_8));
    assertEquals("unknown player bob", assertThrows(IllegalArgumentException.class, () -> p.answer("x", "where bob")).getMessage());
    assertThrows(IllegalArgumentException.class, () -> p.answer("x", "hello"));
    p.onServerDown("lobby-1");
    assertThrows(IllegalArgumentException.class, () -> p.answer("x", "where steve"));
  }
}
