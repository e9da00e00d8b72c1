<?php

declare(strict_types=1);

namespace Warpmesh\Agent;

/** A completed transfer (Client::transfer). */
final class TransferDone
{
    /**
     * @param string $player the player's name
     * @param string $server the server they were moved to
     * @param string $from the server they were on
     * @param string $via the node that moved them (their proxy, or their server when they have none)
     */
    public function __construct(
        public readonly string $player,
        public readonly string $server,
        public readonly string $from,
        public readonly string $via,
    ) {
    }
}
