<?php

declare(strict_types=1);

namespace Warpmesh\Agent;

/** One entry of the mesh's peer table, as the agent reports it. */
final class Peer
{
    /**
     * @param string $id node id
     * @param string $role node role ("proxy", "downstream", ...)
     * @param string $address the peer's UDP address
     * @param int $port the peer's UDP port
     * @param array<string,string> $meta the peer's metadata
     * @param list<string> $topics the peer's subscriptions
     */
    public function __construct(
        public readonly string $id,
        public readonly string $role,
        public readonly string $address,
        public readonly int $port,
        public readonly array $meta,
        public readonly array $topics,
    ) {
    }

    /** @internal builds a Peer from the generated class */
    public static function fromProto(Proto\Peer $p): self
    {
        $meta = Codec::mapToArray($p->getMeta());
        $topics = [];
        foreach ($p->getTopics() as $t) {
            $topics[] = (string) $t;
        }
        return new self($p->getId(), $p->getRole(), $p->getAddress(), (int) $p->getPort(), $meta, $topics);
    }
}
