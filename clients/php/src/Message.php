<?php

declare(strict_types=1);

namespace Warpmesh\Agent;

/** A message from a peer: a send, a broadcast, or a publication (topic set). */
final class Message
{
    /**
     * @param string $from sender's node id
     * @param string $data the payload
     * @param int $channel application channel 0..15
     * @param int $delivery a Proto\Delivery value
     * @param string $topic the topic for publications, "" otherwise
     */
    public function __construct(
        public readonly string $from,
        public readonly string $data,
        public readonly int $channel,
        public readonly int $delivery,
        public readonly string $topic,
    ) {
    }
}
