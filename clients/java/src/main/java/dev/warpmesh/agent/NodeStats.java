package dev.warpmesh.agent;

import java.util.List;

/**
 * Counters of this client's mesh node, as the agent reports them ({@code Stats} in agent.proto).
 *
 * @param messagesSent messages sent
 * @param messagesReceived messages received
 * @param requestsSent requests sent
 * @param requestsSucceeded requests answered
 * @param requestsFailed requests failed
 * @param requestsTimedOut requests timed out
 * @param requestsServed incoming requests answered
 * @param undeliverable reliable messages dropped because the peer could not be reached
 * @param peers peers in the table
 * @param coordinatorsUp coordinators reachable
 * @param peerStats per-peer session figures
 */
public record NodeStats(
    long messagesSent,
    long messagesReceived,
    long requestsSent,
    long requestsSucceeded,
    long requestsFailed,
    long requestsTimedOut,
    long requestsServed,
    long undeliverable,
    int peers,
    int coordinatorsUp,
    List<PeerSession> peerStats) {

  /** Copies the list so the record is immutable. */
  public NodeStats {
    peerStats = List.copyOf(peerStats);
  }

  /**
   * Figures of the direct session to one peer.
   *
   * @param id the peer's node id
   * @param rttMs smoothed round-trip time, milliseconds
   * @param packetsSent packets sent
   * @param packetsReceived packets received
   * @param retransmits retransmitted packets
   * @param bytesInFlight unacknowledged bytes
   */
  public record PeerSession(
      String id, double rttMs, long packetsSent, long packetsReceived, long retransmits, long bytesInFlight) {}
}
