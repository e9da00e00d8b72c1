package dev.warpmesh.agent;

import dev.warpmesh.agent.proto.AgentMessage;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Operations waiting for the agent's answer, by correlation id. Bounded: past {@code max} outstanding
 * operations, {@link #register} refuses with {@link ErrorCode#OVERLOADED}. Each entry has a local
 * deadline, so an answer that never comes fails the operation with {@link ErrorCode#TIMEOUT}.
 */
final class PendingOps {
  private static final class Entry {
    final CompletableFuture<AgentMessage> future = new CompletableFuture<>();
    ScheduledFuture<?> deadline;
  }

  private final ConcurrentHashMap<Long, Entry> entries = new ConcurrentHashMap<>();
  private final AtomicInteger count = new AtomicInteger();
  private final int max;
  private final ScheduledExecutorService timer;

  PendingOps(int max, ScheduledExecutorService timer) {
    this.max = max;
    this.timer = timer;
  }

  /** Registers operation {@code id}; it fails with TIMEOUT after {@code timeoutMs} without answer. */
  CompletableFuture<AgentMessage> register(long id, long timeoutMs, String what) {
    if (count.incrementAndGet() > max) {
      count.decrementAndGet();
      throw new WarpmeshException(
          ErrorCode.OVERLOADED, max + " operations already wait for the agent's answer (maxPending)");
    }
    Entry e = new Entry();
    entries.put(id, e);
    try {
      e.deadline =
          timer.schedule(
            () ->
                fail(
                    id,
                    new WarpmeshException(
                        ErrorCode.TIMEOUT, what + ": no answer from the agent within " + timeoutMs + " ms")),
            timeoutMs,
            TimeUnit.MILLISECONDS);
    } catch (RejectedExecutionException closed) {
      take(id);
      throw new WarpmeshException(ErrorCode.CLOSED, "the client is closed");
    }
    return e.future;
  }

  /** Completes {@code id} with the agent's answer; false if it is not pending (late or unknown). */
  boolean complete(long id, AgentMessage answer) {
    Entry e = take(id);
    if (e == null) return false;
    e.future.complete(answer);
    return true;
  }

  /** Fails {@code id}; false if it is not pending. */
  boolean fail(long id, Throwable error) {
    Entry e = take(id);
    if (e == null) return false;
    e.future.completeExceptionally(error);
    return true;
  }

  /** Fails every pending operation with {@code code} and {@code message}. */
  void failAll(ErrorCode code, String message) {
    List<Long> ids = new ArrayList<>(entries.keySet());
    for (Long id : ids) fail(id, new WarpmeshException(code, message));
  }

  /** Operations outstanding. */
  int size() {
    return count.get();
  }

  private Entry take(long id) {
    Entry e = entries.remove(id);
    if (e == null) return null;
    count.decrementAndGet();
    ScheduledFuture<?> d = e.deadline;
    if (d != null) d.cancel(false);
    return e;
  }
}
