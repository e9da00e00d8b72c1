<?php

declare(strict_types=1);

namespace Warpmesh\Agent;

/** A server in the network's registry. */
final class ServerInfo
{
    /**
     * @param string $id node id
     * @param string $role the node's mesh role
     * @param string $state starting, lobby, in-game, full, stopping, or a custom state
     * @param string $mode game mode, '' for none
     * @param list<string> $tags
     * @param int $players players the directory lists on this server
     * @param int $max capacity, 0 = unlimited
     * @param array<string,string> $fields free fields
     */
    public function __construct(
        public readonly string $id,
        public readonly string $role,
        public readonly string $state,
        public readonly string $mode,
        public readonly array $tags,
        public readonly int $players,
        public readonly int $max,
        public readonly array $fields,
    ) {
    }

    /** @internal */
    public static function fromProto(Proto\ServerInfo $s): self
    {
        $tags = [];
        foreach ($s->getTags() as $t) {
            $tags[] = (string) $t;
        }
        return new self($s->getId(), $s->getRole(), $s->getState(), $s->getMode(), $tags, (int) $s->getPlayers(),
            (int) $s->getMax(), Codec::mapToArray($s->getFields()));
    }
}
