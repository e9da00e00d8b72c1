<?php

declare(strict_types=1);

namespace Warpmesh\Agent;

/**
 * A question of the network services to this client, for a kind it registered a handler for
 * (Client::onTransferRequest, onMove, onPlayerMessage, onKick). The handler's return value is
 * the answer: true = ok, false or a string = refused (the string is the reason the caller sees
 * in REFUSED), null = answer later with Client::answerServiceCall($call->id, ...).
 */
final class ServiceCall
{
    /** Kinds (agent.proto ServiceCall.Kind). */
    public const TRANSFER_REQUEST = 1;
    public const MOVE = 2;
    public const MESSAGE = 3;
    public const KICK = 4;

    /**
     * @param int $id the agent's number for this call
     * @param int $kind one of the constants
     * @param Player $player the player concerned
     * @param string $server MOVE: the server to move the player to
     * @param string $from TRANSFER_REQUEST: the player's current server
     * @param string $text MESSAGE: the text; KICK: the reason
     * @param int $players TRANSFER_REQUEST: players this server hosts now
     * @param int $arriving TRANSFER_REQUEST: players accepted before, not arrived yet (a limit counts players + arriving)
     */
    public function __construct(
        public readonly int $id,
        public readonly int $kind,
        public readonly Player $player,
        public readonly string $server,
        public readonly string $from,
        public readonly string $text,
        public readonly int $players = 0,
        public readonly int $arriving = 0,
    ) {
    }
}
