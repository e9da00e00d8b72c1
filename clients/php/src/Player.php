<?php

declare(strict_types=1);

namespace Warpmesh\Agent;

/** A player in the network's directory (the services' replicated player list). */
final class Player
{
    /**
     * @param string $name name as announced (Bedrock names are compared case-insensitively)
     * @param string $xuid XUID (digits), '' when unknown
     * @param string $server node id of the server the player is on
     * @param string $proxy node id of the proxy they are connected through, '' when none (then their server moves, messages and kicks them)
     * @param array<string,string> $fields free fields
     */
    public function __construct(
        public readonly string $name,
        public readonly string $xuid,
        public readonly string $server,
        public readonly string $proxy,
        public readonly array $fields,
    ) {
    }

    /** @internal */
    public static function fromProto(?Proto\Player $p): self
    {
        if ($p === null) {
            return new self('', '', '', '', []);
        }
        return new self($p->getName(), $p->getXuid(), $p->getServer(), $p->getProxy(), Codec::mapToArray($p->getFields()));
    }
}
