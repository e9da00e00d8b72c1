package dev.warpmesh.agent;

/**
 * A message from a peer: a send, a broadcast or a publication.
 *
 * @param from the sender's node id
 * @param data the payload (owned by the receiver)
 * @param channel application channel 0..15
 * @param delivery the delivery mode it was sent with
 * @param topic the topic for publications, "" otherwise
 */
public record MeshMessage(String from, byte[] data, int channel, Delivery delivery, String topic) {}
