<?php

declare(strict_types=1);

namespace Warpmesh\Agent;

/** Answer of Client::listPlayers(). */
final class PlayerList
{
    /**
     * @param int $count every player matching the filter
     * @param list<Player> $players at most the asked limit of them
     */
    public function __construct(
        public readonly int $count,
        public readonly array $players,
    ) {
    }
}
