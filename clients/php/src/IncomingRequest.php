<?php

declare(strict_types=1);

namespace Warpmesh\Agent;

/**
 * A peer's request. The request handler (Client::onRequest) answers it by
 * returning a string; or returns null and answers later with
 * Client::reply($request->id, ...) / Client::replyError(...).
 */
final class IncomingRequest
{
    /**
     * @param int $id the agent's number for this request (answer with it)
     * @param string $from requester's node id
     * @param string $data the request payload
     */
    public function __construct(
        public readonly int $id,
        public readonly string $from,
        public readonly string $data,
    ) {
    }
}
