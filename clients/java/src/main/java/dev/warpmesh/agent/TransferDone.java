package dev.warpmesh.agent;

/**
 * A completed transfer ({@link WarpmeshClient#transfer}).
 *
 * @param player the player's name
 * @param server the server they were moved to
 * @param from the server they were on
 * @param via the node that moved them (their proxy, or their server when they have none)
 */
public record TransferDone(String player, String server, String from, String via) {}
