<?php

declare(strict_types=1);

namespace Warpmesh\Agent;

use Warpmesh\Agent\Proto\AgentMessage;
use Warpmesh\Agent\Proto\Broadcast;
use Warpmesh\Agent\Proto\ClientMessage;
use Warpmesh\Agent\Proto\Delivery;
use Warpmesh\Agent\Proto\ErrorCode;
use Warpmesh\Agent\Proto\GetPeers;
use Warpmesh\Agent\Proto\GetServers;
use Warpmesh\Agent\Proto\GetStats;
use Warpmesh\Agent\Proto\Goodbye;
use Warpmesh\Agent\Proto\Hello;
use Warpmesh\Agent\Proto\KickPlayer;
use Warpmesh\Agent\Proto\ListPlayers;
use Warpmesh\Agent\Proto\Locate;
use Warpmesh\Agent\Proto\MessagePlayer;
use Warpmesh\Agent\Proto\PeerEvent\Kind;
use Warpmesh\Agent\Proto\PlayerJoin;
use Warpmesh\Agent\Proto\PlayerLeave;
use Warpmesh\Agent\Proto\Publish;
use Warpmesh\Agent\Proto\ServiceAnswer;
use Warpmesh\Agent\Proto\SetServer;
use Warpmesh\Agent\Proto\SetMeta;
use Warpmesh\Agent\Proto\Subscribe;
use Warpmesh\Agent\Proto\Transfer;
use Warpmesh\Agent\Proto\Unsubscribe;

/**
 * A connection to the local warpmesh agent: one mesh node.
 *
 * Non-blocking: the socket never blocks; poll() reads what is ready, dispatches
 * callbacks, writes pending output as far as the socket takes and returns at
 * once (call it every tick). Blocking helpers for scripts: connectAndWait(),
 * await(), requestSync(), waitFor().
 *
 * Operations need a welcomed connection (isReady()). While not ready, send()
 * returns false and operations with an answer fail at once with CLOSED, except
 * setMeta/subscribe/unsubscribe, which update the state the next Hello announces
 * and succeed at once. When the connection drops, outstanding operations fail
 * with CLOSED and the client reconnects from poll() (100 ms doubling to 2 s),
 * announcing its id, role, current meta and topics again.
 *
 * Network services (option services, server or playerEvents): join()/leave() the players this
 * server hosts, setServer(), locate(), listPlayers(), servers(), transfer(), message(), kick(),
 * ServiceCall handlers (onTransferRequest, onMove, onPlayerMessage, onKick) and player/server
 * events. Like meta and topics, this server's settings and hosted players are state the client
 * keeps: they are announced again after a reconnect.
 */
final class Client
{
    private const DISCONNECTED = 0;   // no socket; a reconnect may be scheduled
    private const CONNECTING = 1;     // Hello sent, waiting for Welcome
    private const READY = 2;          // welcomed
    private const CLOSED = 3;         // close() called, or dropped without reconnect

    /** Protocol version spoken (Hello.protocol_version). */
    public const PROTOCOL_VERSION = 1;
    /** Output waiting beyond this is written at once by the operation that queued it. */
    private const FLUSH_THRESHOLD = 65536;
    /** Largest read() of the socket. */
    private const READ_CHUNK = 262144;
    /** Input bytes already dispatched kept at the buffer's head before it is compacted. */
    private const COMPACT_INPUT_AFTER = 65536;

    private ClientOptions $opts;
    /** @var \Closure():float */
    private \Closure $clock;
    private ?Connection $conn = null;
    private int $state = self::DISCONNECTED;
    private bool $everWelcomed = false;
    private bool $polling = false;

    private string $in = '';
    private int $inPos = 0;
    private int $maxFrame;

    private int $nextId = 1;
    /** @var array<int, array{0:Pending,1:float}> id => [handle, deadline ms] */
    private array $pending = [];
    private float $nextDeadline = INF;

    private int $backoffMs;
    private float $reconnectAt = 0.0;
    private ?WarpmeshException $lastError = null;

    /** @var array<string,string> */
    private array $meta;
    /** @var array<string,true> */
    private array $topics = [];
    /** @var array<string,Peer> */
    private array $peers = [];
    private ?Proto\Welcome $welcome = null;

    private int $messagesReceived = 0;
    /** @var array<string,int> */
    private array $counters = [
        'framesIn' => 0, 'framesOut' => 0, 'requestsReceived' => 0,
        'badFrames' => 0, 'strayAnswers' => 0, 'connectAttempts' => 0, 'disconnects' => 0, 'reconnects' => 0, 'sendRefused' => 0,
    ];

    private ?\Closure $onMessage = null;
    private ?\Closure $onRequest = null;
    private ?\Closure $onPeerUp = null;
    private ?\Closure $onPeerDown = null;
    private ?\Closure $onPeerUpdated = null;
    private ?\Closure $onCoordinator = null;
    private ?\Closure $onUndelivered = null;
    private ?\Closure $onError = null;
    private ?\Closure $onConnected = null;
    private ?\Closure $onDisconnected = null;
    private ?\Closure $onReconnected = null;
    /** @var array<int,\Closure> ServiceCall kind => handler */
    private array $serviceHandlers = [];
    private ?\Closure $onPlayerJoined = null;
    private ?\Closure $onPlayerLeft = null;
    private ?\Closure $onPlayerMoved = null;
    private ?\Closure $onServerUpdated = null;
    private ?\Closure $onServerRemoved = null;
    /** @var ?array<string,mixed> this server's registry settings (announced again in every Hello) */
    private ?array $server;
    /** @var array<string,PlayerJoin> players this server hosts, by lower-case name (announced again after a reconnect) */
    private array $hosted = [];

    /**
     * @param ClientOptions|array<string,mixed> $options see ClientOptions
     */
    public function __construct(ClientOptions|array $options)
    {
        $this->opts = $options instanceof ClientOptions ? $options : ClientOptions::fromArray($options);
        $this->clock = $this->opts->clock ?? static fn (): float => hrtime(true) / 1e6;
        $this->maxFrame = $this->opts->maxFrame;
        $this->backoffMs = $this->opts->reconnectMinMs;
        $this->meta = $this->opts->meta;
        foreach ($this->opts->topics as $t) {
            $this->topics[$t] = true;
        }
        $this->server = $this->opts->server;
    }

    // ------------------------------------------------------------ callbacks

    /** fn(Message $m): a message from a peer (send, broadcast, publication). */
    public function onMessage(?callable $cb): self
    {
        $this->onMessage = $cb === null ? null : \Closure::fromCallable($cb);
        return $this;
    }

    /**
     * fn(IncomingRequest $r): ?string — a peer's request. Return the reply bytes; throw to fail
     * it (the caller gets REMOTE_ERROR with the exception's message); return null to answer later
     * with reply()/replyError(). Without a handler, requests fail with "no request handler".
     */
    public function onRequest(?callable $cb): self
    {
        $this->onRequest = $cb === null ? null : \Closure::fromCallable($cb);
        return $this;
    }

    /** fn(Peer $p): a peer joined. */
    public function onPeerUp(?callable $cb): self
    {
        $this->onPeerUp = $cb === null ? null : \Closure::fromCallable($cb);
        return $this;
    }

    /** fn(Peer $p, string $reason): a peer left ("left", "expired", "timeout", ...). */
    public function onPeerDown(?callable $cb): self
    {
        $this->onPeerDown = $cb === null ? null : \Closure::fromCallable($cb);
        return $this;
    }

    /** fn(Peer $p): a peer's meta or topics changed. */
    public function onPeerUpdated(?callable $cb): self
    {
        $this->onPeerUpdated = $cb === null ? null : \Closure::fromCallable($cb);
        return $this;
    }

    /** fn(bool $up, string $address): a coordinator came up or went down. */
    public function onCoordinator(?callable $cb): self
    {
        $this->onCoordinator = $cb === null ? null : \Closure::fromCallable($cb);
        return $this;
    }

    /** fn(string $peer, int $count, string $reason): queued reliable messages to $peer were dropped. */
    public function onUndelivered(?callable $cb): self
    {
        $this->onUndelivered = $cb === null ? null : \Closure::fromCallable($cb);
        return $this;
    }

    /** fn(WarpmeshException $e): an agent error not tied to an outstanding operation (id 0, or fatal). */
    public function onError(?callable $cb): self
    {
        $this->onError = $cb === null ? null : \Closure::fromCallable($cb);
        return $this;
    }

    /** fn(Proto\Welcome $w): the agent welcomed this node (first connection and every reconnection). */
    public function onConnected(?callable $cb): self
    {
        $this->onConnected = $cb === null ? null : \Closure::fromCallable($cb);
        return $this;
    }

    /** fn(WarpmeshException $why): the welcomed connection dropped; outstanding operations have failed with CLOSED. */
    public function onDisconnected(?callable $cb): self
    {
        $this->onDisconnected = $cb === null ? null : \Closure::fromCallable($cb);
        return $this;
    }

    /** fn(): welcomed again after a drop. */
    public function onReconnected(?callable $cb): self
    {
        $this->onReconnected = $cb === null ? null : \Closure::fromCallable($cb);
        return $this;
    }

    // ------------------------------------------------------------ network services: handlers and events

    /**
     * fn(ServiceCall $c): bool|string|null — at a target server: may $c->player (now on $c->from)
     * come here? true accepts; false or a reason refuses; null = answer later with answerServiceCall().
     * Asked after the state and capacity checks passed. Without a handler the agent accepts.
     * Register handlers before connect(): the Hello lists the kinds this client answers.
     */
    public function onTransferRequest(?callable $cb): self
    {
        return $this->onServiceCall(ServiceCall::TRANSFER_REQUEST, $cb);
    }

    /**
     * fn(ServiceCall $c): bool|string|null — at the player's proxy (or their server when they have
     * none): move $c->player to $c->server. Without a handler, moves are refused ("not handled").
     */
    public function onMove(?callable $cb): self
    {
        return $this->onServiceCall(ServiceCall::MOVE, $cb);
    }

    /** fn(ServiceCall $c): bool|string|null — show $c->text to $c->player. */
    public function onPlayerMessage(?callable $cb): self
    {
        return $this->onServiceCall(ServiceCall::MESSAGE, $cb);
    }

    /** fn(ServiceCall $c): bool|string|null — disconnect $c->player with reason $c->text. */
    public function onKick(?callable $cb): self
    {
        return $this->onServiceCall(ServiceCall::KICK, $cb);
    }

    /**
     * The handler of one ServiceCall kind (ServiceCall::TRANSFER_REQUEST, MOVE, MESSAGE, KICK).
     *
     * @throws \InvalidArgumentException for an unknown kind, or without option services
     */
    public function onServiceCall(int $kind, ?callable $cb): self
    {
        if ($kind < ServiceCall::TRANSFER_REQUEST || $kind > ServiceCall::KICK) {
            throw new \InvalidArgumentException("onServiceCall: kind must be a ServiceCall constant 1..4, got $kind");
        }
        if (!$this->opts->servicesOn()) {
            throw new \InvalidArgumentException('onServiceCall: needs option services (or server / playerEvents)');
        }
        if ($cb === null) {
            unset($this->serviceHandlers[$kind]);
        } else {
            $this->serviceHandlers[$kind] = \Closure::fromCallable($cb);
        }
        return $this;
    }

    /** fn(Player $p): a player appeared on $p->server (option playerEvents). */
    public function onPlayerJoined(?callable $cb): self
    {
        $this->onPlayerJoined = $cb === null ? null : \Closure::fromCallable($cb);
        return $this;
    }

    /** fn(Player $p): a player left the network (their server no longer lists them, or it went down). */
    public function onPlayerLeft(?callable $cb): self
    {
        $this->onPlayerLeft = $cb === null ? null : \Closure::fromCallable($cb);
        return $this;
    }

    /** fn(Player $p, string $from): a player left server $from and appeared on $p->server. */
    public function onPlayerMoved(?callable $cb): self
    {
        $this->onPlayerMoved = $cb === null ? null : \Closure::fromCallable($cb);
        return $this;
    }

    /** fn(ServerInfo $s): a server was listed, or its entry changed. */
    public function onServerUpdated(?callable $cb): self
    {
        $this->onServerUpdated = $cb === null ? null : \Closure::fromCallable($cb);
        return $this;
    }

    /** fn(string $id): a server left the registry. */
    public function onServerRemoved(?callable $cb): self
    {
        $this->onServerRemoved = $cb === null ? null : \Closure::fromCallable($cb);
        return $this;
    }

    // ------------------------------------------------------------ connection

    /**
     * Opens the connection and sends Hello; returns without waiting for Welcome
     * (poll() until isReady(), or use connectAndWait()). If the agent cannot be
     * reached and reconnect is on, attempts continue from poll().
     *
     * @throws WarpmeshException CLOSED when the socket cannot be opened and reconnect is off
     */
    public function connect(): void
    {
        if ($this->state === self::CLOSED) {
            throw new WarpmeshException(ErrorCode::CLOSED, 'the client is closed');
        }
        if ($this->state !== self::DISCONNECTED) {
            return;
        }
        if (!$this->attempt() && !$this->opts->reconnect) {
            $this->state = self::CLOSED;
            throw $this->lastError;
        }
    }

    /**
     * Connects and blocks until the agent's Welcome.
     *
     * @param float $timeoutSeconds how long to wait at most
     * @throws WarpmeshException the agent's fatal error (UNAUTHORIZED, DUPLICATE_NODE, START_FAILED...),
     *   CLOSED when the socket cannot be opened, TIMEOUT when no Welcome came in time
     */
    public function connectAndWait(float $timeoutSeconds = 10.0): Proto\Welcome
    {
        if ($this->state === self::READY) {
            return $this->welcome;
        }
        if ($this->state === self::CLOSED) {
            throw new WarpmeshException(ErrorCode::CLOSED, 'the client is closed');
        }
        if ($this->state === self::DISCONNECTED && !$this->attempt()) {
            throw $this->lastError;
        }
        $this->lastError = null;
        $failed = false;
        $ok = $this->waitFor(function () use (&$failed): bool {
            if ($this->state !== self::CONNECTING && $this->state !== self::READY) {
                $failed = true;
            }
            return $failed || $this->state === self::READY;
        }, $timeoutSeconds);
        if ($failed || !$ok) {
            $e = $this->lastError ?? new WarpmeshException(ErrorCode::TIMEOUT, "no Welcome from the agent within {$timeoutSeconds} s");
            if ($this->state !== self::READY && !$this->opts->reconnect) {
                $this->state = self::CLOSED;
            }
            throw $e;
        }
        return $this->welcome;
    }

    /** True when welcomed: operations go to the agent. */
    public function isReady(): bool
    {
        return $this->state === self::READY;
    }

    /** True after close(), or after a drop with reconnect off. */
    public function isClosed(): bool
    {
        return $this->state === self::CLOSED;
    }

    /** The last Welcome (null before the first). */
    public function welcome(): ?Proto\Welcome
    {
        return $this->welcome;
    }

    /** The most recent connection failure (connect error, fatal agent error, drop), or null. */
    public function lastError(): ?WarpmeshException
    {
        return $this->lastError;
    }

    /**
     * The socket, for callers running their own stream_select() (null while disconnected).
     * Select it for reading; for writing too when wantsWrite().
     *
     * @return resource|null
     */
    public function stream()
    {
        return $this->conn?->stream();
    }

    /** True when output is waiting for the socket to accept it. */
    public function wantsWrite(): bool
    {
        return $this->conn !== null && $this->conn->buffered() > 0;
    }

    /** Operations awaiting the agent's answer. */
    public function outstanding(): int
    {
        return count($this->pending);
    }

    /** Bytes of output not yet accepted by the socket. */
    public function bufferedBytes(): int
    {
        return $this->conn?->buffered() ?? 0;
    }

    /**
     * Counters: framesIn, framesOut, messagesReceived, requestsReceived, badFrames (undecodable
     * frames dropped), strayAnswers (answers to unknown ids), connectAttempts, disconnects, reconnects, sendRefused.
     *
     * @return array<string,int>
     */
    public function counters(): array
    {
        return ['messagesReceived' => $this->messagesReceived] + $this->counters;
    }

    /** Messages received from peers so far (all kinds; also counted without an onMessage callback). */
    public function messagesReceived(): int
    {
        return $this->messagesReceived;
    }

    /**
     * Leaves the mesh: sends Goodbye, waits up to $waitSeconds for the agent's Goodbye (or the
     * connection's end), closes the socket. Outstanding operations fail with CLOSED. Idempotent.
     */
    public function close(string $reason = '', float $waitSeconds = 1.0): void
    {
        if ($this->state === self::CLOSED) {
            return;
        }
        $conn = $this->conn;
        if ($conn !== null && ($this->state === self::READY || $this->state === self::CONNECTING)) {
            $cm = new ClientMessage();
            $cm->setGoodbye((new Goodbye())->setReason($reason));
            $conn->queue(Codec::messageFrame($cm), PHP_INT_MAX);
            $this->counters['framesOut']++;
            $deadline = self::realMs() + $waitSeconds * 1000;
            $this->state = self::CLOSED;
            // Write everything, then read (and discard) until the agent, having answered
            // Goodbye, closes the connection.
            while (self::realMs() < $deadline) {
                if ($conn->buffered() > 0) {
                    if ($conn->flush() !== null) {
                        break;
                    }
                } else {
                    $chunk = $conn->read(self::READ_CHUNK);
                    if ($chunk === null) {
                        break;
                    }
                    if ($chunk !== '') {
                        continue;
                    }
                }
                $r = [$conn->stream()];
                $w = $conn->buffered() > 0 ? [$conn->stream()] : [];
                $e = null;
                $left = max(0.0, $deadline - self::realMs());
                if (@stream_select($r, $w, $e, 0, (int) min(100_000, $left * 1000)) === false) {
                    break;
                }
            }
        }
        $this->state = self::CLOSED;
        $this->closeSocket();
        $this->failAll(new WarpmeshException(ErrorCode::CLOSED, 'client closed'));
    }

    // ------------------------------------------------------------ network services: calls

    /**
     * Answers a ServiceCall whose handler returned null: $ok, or refused with $reason.
     *
     * @return bool false when not connected (the call died with the connection) or the buffer is full
     */
    public function answerServiceCall(int $callId, bool $ok, string $reason = ''): bool
    {
        if ($this->state !== self::READY) {
            return false;
        }
        $cm = new ClientMessage();
        $cm->setServiceAnswer((new ServiceAnswer())->setId($callId)->setOk($ok)->setReason($ok ? '' : ($reason === '' ? 'refused' : $reason)));
        return $this->queue(Codec::messageFrame($cm));
    }

    /** A services operation: fails at once with SERVICES_OFF when the options did not ask for the services. */
    private function serviceOperation(string $what, \Closure $encode, int $timeoutMs): Pending
    {
        if (!$this->opts->servicesOn()) {
            $p = new Pending(0);
            $p->reject(new WarpmeshException(ErrorCode::SERVICES_OFF, "$what: the client was created without option services"));
            return $p;
        }
        return $this->operation($encode, $timeoutMs);
    }

    /** @param Closure(int):object $body the message for an id; $setter the ClientMessage setter */
    private static function encoder(string $setter, \Closure $body): \Closure
    {
        return static function (int $id) use ($setter, $body): string {
            $cm = new ClientMessage();
            $cm->{$setter}($body($id));
            return Codec::messageFrame($cm);
        };
    }

    private function checkTimeout(?int $timeoutMs, string $what): int
    {
        $t = $timeoutMs ?? $this->opts->requestTimeoutMs;
        if ($t < 1 || $t > 0xffffffff) {
            throw new \InvalidArgumentException("$what: timeoutMs must be 1..4294967295, got $t");
        }
        return $t;
    }

    /**
     * This server now hosts the player: every node's directory lists them here (replacing this
     * server's own entry of that name). Kept across reconnects (announced again); while not
     * connected it only updates what the next connection announces. Resolves with 0.
     *
     * @param string $xuid XUID (digits), '' when unknown
     * @param string $proxy node id of the player's proxy, '' when none
     * @param array<string,string> $fields free fields (at most 8 pairs)
     */
    public function join(string $name, string $xuid = '', string $proxy = '', array $fields = []): Pending
    {
        Services::checkPlayer($name, 'join');
        ClientOptions::checkMeta($fields, 'join: fields');
        if (!$this->opts->servicesOn()) {
            return $this->serviceOperation('join', static fn () => '', 0);
        }
        $key = mb_strtolower($name);
        if (!isset($this->hosted[$key]) && count($this->hosted) >= Services::MAX_HOSTED_PLAYERS) {
            throw new \InvalidArgumentException('join: this client already hosts ' . Services::MAX_HOSTED_PLAYERS . ' players');
        }
        $j = (new PlayerJoin())->setName($name)->setXuid($xuid)->setProxy($proxy)->setFields($fields);
        $this->hosted[$key] = $j;
        return $this->stateOperation(self::encoder('setPlayerJoin', static fn (int $id) => (clone $j)->setId($id)));
    }

    /**
     * This server no longer hosts the player (name in any case, or XUID). Resolves with whether it
     * did (while not connected: whether it was among the hosted players).
     */
    public function leave(string $player): Pending
    {
        Services::checkPlayer($player, 'leave');
        if (!$this->opts->servicesOn()) {
            return $this->serviceOperation('leave', static fn () => '', 0);
        }
        $key = mb_strtolower($player);
        $was = isset($this->hosted[$key]);
        unset($this->hosted[$key]);
        foreach ($this->hosted as $k => $j) {
            if ($j->getXuid() === $player) {
                unset($this->hosted[$k]);
                $was = true;
            }
        }
        if ($this->state !== self::READY) {
            $p = new Pending(0);
            $p->resolve($was);
            return $p;
        }
        $p = $this->operation(self::encoder('setPlayerLeave', static fn (int $id) => (new PlayerLeave())->setId($id)->setPlayer($player)),
            $this->opts->requestTimeoutMs);
        $out = new Pending($p->id);
        $p->then(static fn (int $n) => $out->resolve($n > 0), static fn (WarpmeshException $e) => $out->reject($e));
        return $out;
    }

    /** @return list<string> the players this client hosts (names as announced) */
    public function hostedPlayers(): array
    {
        $names = [];
        foreach ($this->hosted as $j) {
            $names[] = $j->getName();
        }
        return $names;
    }

    /**
     * Updates this server's registry entry (lists it when it is not listed yet); keys left out keep
     * their value. Kept across reconnects; while not connected it only updates the next Hello.
     * Resolves with 0.
     *
     * @param array<string,mixed> $settings ['state' => 'in-game', 'mode' => ..., 'tags' => [...], 'max' => N, 'fields' => [...]]
     */
    public function setServer(array $settings): Pending
    {
        Services::checkSettings($settings, 'setServer');
        if (!$this->opts->servicesOn()) {
            return $this->serviceOperation('setServer', static fn () => '', 0);
        }
        $this->server = $settings + ($this->server ?? []);
        return $this->stateOperation(self::encoder('setSetServer',
            static fn (int $id) => (new SetServer())->setId($id)->setServer(Services::settingsToProto($settings))));
    }

    /** @return ?array<string,mixed> this server's registry settings as the client keeps them, null when not listed */
    public function serverSettings(): ?array
    {
        return $this->server;
    }

    /** Where a player is (name in any case, or XUID): resolves with a Player, or null when no server lists them. */
    public function locate(string $player): Pending
    {
        Services::checkPlayer($player, 'locate');
        return $this->serviceOperation('locate', self::encoder('setLocate',
            static fn (int $id) => (new Locate())->setId($id)->setPlayer($player)), $this->opts->requestTimeoutMs);
    }

    /**
     * Players in the network: resolves with a PlayerList (count of all matching, at most $limit players).
     *
     * @param string $mode only players on servers of this mode ('' = any)
     * @param string $server only players on this server ('' = any)
     * @param int $limit at most this many in the list (0 = all)
     */
    public function listPlayers(string $mode = '', string $server = '', int $limit = 0): Pending
    {
        if ($limit < 0 || $limit > 0xffffffff) {
            throw new \InvalidArgumentException("listPlayers: limit must be 0 (all)..4294967295, got $limit");
        }
        return $this->serviceOperation('listPlayers', self::encoder('setListPlayers',
            static fn (int $id) => (new ListPlayers())->setId($id)->setMode($mode)->setServer($server)->setLimit($limit)),
            $this->opts->requestTimeoutMs);
    }

    /**
     * Servers in the registry matching every filter ('' / [] = any): resolves with list<ServerInfo>.
     *
     * @param list<string> $states any of these states
     */
    public function servers(string $mode = '', array $states = [], string $tag = ''): Pending
    {
        foreach ($states as $st) {
            if (!is_string($st) || $st === '') {
                throw new \InvalidArgumentException('servers: states must be a list of non-empty strings, got ' . json_encode($states));
            }
        }
        return $this->serviceOperation('servers', self::encoder('setGetServers',
            static fn (int $id) => (new GetServers())->setId($id)->setMode($mode)->setStates(array_values($states))->setTag($tag)),
            $this->opts->requestTimeoutMs);
    }

    /**
     * Transfers a player: asks the target whether it accepts (state, capacity, its hook), then the
     * player's proxy to move them. Resolves with a TransferDone, or fails with UNKNOWN_PLAYER,
     * NO_SUCH_SERVER, SERVER_FULL, REFUSED (message = the reason), TARGET_DOWN, TRANSFER_CONFLICT,
     * TIMEOUT, PEER_DOWN (the player's proxy went down), CLOSED.
     *
     * @param string|array<string,mixed> $target a server id, or a selector ['mode' => ..., 'state' => 'lobby' or [...],
     *   'tag' => ..., 'exclude' => [...], 'fallback' => server id or selector]
     */
    public function transfer(string $player, string|array $target, ?int $timeoutMs = null): Pending
    {
        Services::checkPlayer($player, 'transfer');
        $t = $this->checkTimeout($timeoutMs, 'transfer');
        $msg = (new Transfer())->setPlayer($player)->setTimeoutMs($t);
        if (is_string($target)) {
            if ($target === '') {
                throw new \InvalidArgumentException('transfer: target must be a server id or a selector array, got ""');
            }
            $msg->setServer($target);
        } else {
            $msg->setSelector(Services::selectorToProto($target, 'transfer: selector'));
        }
        return $this->serviceOperation('transfer', self::encoder('setTransfer', static fn (int $id) => (clone $msg)->setId($id)), $t);
    }

    /** Shows $text to a player wherever they are. Resolves with 1, or fails with UNKNOWN_PLAYER, REFUSED, TIMEOUT, PEER_DOWN. */
    public function message(string $player, string $text, ?int $timeoutMs = null): Pending
    {
        Services::checkPlayer($player, 'message');
        $t = $this->checkTimeout($timeoutMs, 'message');
        return $this->serviceOperation('message', self::encoder('setMessagePlayer',
            static fn (int $id) => (new MessagePlayer())->setId($id)->setPlayer($player)->setText($text)->setTimeoutMs($t)), $t);
    }

    /** Disconnects a player wherever they are, with $reason. Resolves and fails as message(). */
    public function kick(string $player, string $reason, ?int $timeoutMs = null): Pending
    {
        Services::checkPlayer($player, 'kick');
        $t = $this->checkTimeout($timeoutMs, 'kick');
        return $this->serviceOperation('kick', self::encoder('setKickPlayer',
            static fn (int $id) => (new KickPlayer())->setId($id)->setPlayer($player)->setReason($reason)->setTimeoutMs($t)), $t);
    }

    // ------------------------------------------------------------ the tick

    /**
     * Does everything that is ready and returns at once: a due reconnect attempt, reading and
     * dispatching frames (at most maxReadPerPoll bytes), writing pending output, local timeouts.
     * Callbacks run from here. Calls from inside a callback return 0 at once.
     *
     * @return int frames handled
     */
    public function poll(): int
    {
        if ($this->polling) {
            return 0;
        }
        $this->polling = true;
        try {
            $now = ($this->clock)();
            if ($this->state === self::DISCONNECTED && $this->opts->reconnect && $this->reconnectAt > 0 && $now >= $this->reconnectAt) {
                $this->attempt();
            }
            $handled = 0;
            if ($this->conn !== null) {
                $handled = $this->readAndDispatch();
            }
            if ($this->conn !== null && $this->conn->buffered() > 0) {
                $this->flush();
            }
            if ($this->pending !== [] && ($this->clock)() >= $this->nextDeadline) {
                $this->checkTimeouts(($this->clock)());
            }
            return $handled;
        } finally {
            $this->polling = false;
        }
    }

    /**
     * Blocks, polling, until $condition() returns true or $timeoutSeconds pass. Sleeps in
     * stream_select() on the socket between polls, never longer than the next deadline.
     *
     * @param callable():bool $condition
     * @return bool whether the condition became true
     */
    public function waitFor(callable $condition, float $timeoutSeconds): bool
    {
        $deadline = self::realMs() + $timeoutSeconds * 1000;
        while (true) {
            $this->poll();
            if ($condition()) {
                return true;
            }
            $real = self::realMs();
            if ($real >= $deadline || $this->state === self::CLOSED) {
                return (bool) $condition();
            }
            // Sleep until data, the caller's deadline, or the client's next timer (protocol clock).
            $now = ($this->clock)();
            $timer = $this->nextDeadline;
            if ($this->state === self::DISCONNECTED && $this->reconnectAt > 0) {
                $timer = min($timer, $this->reconnectAt);
            }
            $waitMs = max(0.0, min($deadline - $real, $timer - $now, 50.0));
            if ($this->conn !== null) {
                $r = [$this->conn->stream()];
                $w = $this->wantsWrite() ? $r : [];
                $e = null;
                @stream_select($r, $w, $e, 0, (int) ($waitMs * 1000));
            } else {
                usleep((int) ($waitMs * 1000));
            }
        }
    }

    /**
     * Blocks until a Pending settles and returns its value.
     *
     * @throws WarpmeshException its failure, or TIMEOUT after $timeoutSeconds
     */
    public function await(Pending $p, float $timeoutSeconds = 30.0): mixed
    {
        if (!$this->waitFor(static fn (): bool => $p->isDone(), $timeoutSeconds)) {
            throw new WarpmeshException(ErrorCode::TIMEOUT, "operation {$p->id} not settled within {$timeoutSeconds} s");
        }
        return $p->value();
    }

    // ------------------------------------------------------------ operations

    /**
     * One-way message to a peer (id 0: no answer; a failure arrives as onError with id 0).
     * The Send frame is encoded by hand (no protobuf runtime on this path).
     *
     * @param int $channel application channel 0..15
     * @param int $delivery a Proto\Delivery value (default: reliable ordered)
     * @return bool false when not ready or the output buffer is over maxOutputBuffer (poll() and retry)
     * @throws WarpmeshException TOO_LARGE when the frame exceeds the agent's maximum
     * @throws \InvalidArgumentException for a channel or delivery out of range
     */
    public function send(string $to, string $data, int $channel = 0, int $delivery = Delivery::DELIVERY_DEFAULT): bool
    {
        if ($channel < 0 || $channel > 15 || $delivery < 0 || $delivery > 4) {
            throw new \InvalidArgumentException("send: channel must be 0..15 and delivery 0..4, got $channel and $delivery");
        }
        if ($this->state !== self::READY) {
            $this->counters['sendRefused']++;
            return false;
        }
        return $this->queue(Codec::sendFrame(0, $to, $data, $channel, $delivery));
    }

    /**
     * Like send(), with an answer: resolves with 1 once the agent accepted the message, or fails
     * (UNKNOWN_PEER, INVALID_ARGUMENT, CLOSED, OVERLOADED...).
     */
    public function sendConfirmed(string $to, string $data, int $channel = 0, int $delivery = Delivery::DELIVERY_DEFAULT): Pending
    {
        if ($channel < 0 || $channel > 15 || $delivery < 0 || $delivery > 4) {
            throw new \InvalidArgumentException("sendConfirmed: channel must be 0..15 and delivery 0..4, got $channel and $delivery");
        }
        return $this->operation(fn (int $id): string => Codec::sendFrame($id, $to, $data, $channel, $delivery), $this->opts->requestTimeoutMs);
    }

    /**
     * Request/response: resolves with the reply bytes, or fails with TIMEOUT, UNKNOWN_PEER,
     * PEER_DOWN, OVERLOADED, REMOTE_ERROR (message = the peer's error text), CLOSED...
     *
     * @param ?int $timeoutMs the request's timeout (default: option requestTimeoutMs)
     */
    public function request(string $to, string $data, ?int $timeoutMs = null): Pending
    {
        $t = $timeoutMs ?? $this->opts->requestTimeoutMs;
        if ($t < 1 || $t > 0xffffffff) {
            throw new \InvalidArgumentException("request: timeoutMs must be 1..4294967295, got $t");
        }
        return $this->operation(fn (int $id): string => Codec::requestFrame($id, $to, $data, $t), $t);
    }

    /**
     * Blocking request for scripts.
     *
     * @throws WarpmeshException as request() fails
     */
    public function requestSync(string $to, string $data, ?int $timeoutMs = null): string
    {
        $t = $timeoutMs ?? $this->opts->requestTimeoutMs;
        return $this->await($this->request($to, $data, $t), ($t + $this->opts->timeoutGraceMs) / 1000 + 1);
    }

    /**
     * Answers an incoming request whose handler returned null.
     *
     * @return bool false when not connected (the request is lost with the connection) or the buffer is full
     */
    public function reply(int $requestId, string $data): bool
    {
        return $this->state === self::READY && $this->queue(Codec::replyFrame($requestId, $data, ''));
    }

    /** Fails an incoming request (the caller gets REMOTE_ERROR with $message). */
    public function replyError(int $requestId, string $message): bool
    {
        return $this->state === self::READY && $this->queue(Codec::replyFrame($requestId, '', $message === '' ? 'error' : $message));
    }

    /**
     * To every peer with the role and tag ("" = any). Resolves with the number of peers it went to.
     */
    public function broadcast(string $role, string $tag, string $data, int $channel = 0, int $delivery = Delivery::DELIVERY_DEFAULT): Pending
    {
        return $this->operation(function (int $id) use ($role, $tag, $data, $channel, $delivery): string {
            $cm = new ClientMessage();
            $cm->setBroadcast((new Broadcast())->setId($id)->setRole($role)->setTag($tag)->setData($data)
                ->setChannel($channel)->setDelivery($delivery));
            return Codec::messageFrame($cm);
        }, $this->opts->requestTimeoutMs);
    }

    /** To every subscriber of the topic. Resolves with the number of subscribers it went to. */
    public function publish(string $topic, string $data, int $channel = 0, int $delivery = Delivery::DELIVERY_DEFAULT): Pending
    {
        ClientOptions::checkTopic($topic, 'publish');
        return $this->operation(function (int $id) use ($topic, $data, $channel, $delivery): string {
            $cm = new ClientMessage();
            $cm->setPublish((new Publish())->setId($id)->setTopic($topic)->setData($data)->setChannel($channel)->setDelivery($delivery));
            return Codec::messageFrame($cm);
        }, $this->opts->requestTimeoutMs);
    }

    /** Subscribes to a topic (kept across reconnects). Resolves with 0. */
    public function subscribe(string $topic): Pending
    {
        ClientOptions::checkTopic($topic, 'subscribe');
        if (!isset($this->topics[$topic]) && count($this->topics) >= ClientOptions::MAX_TOPICS) {
            throw new \InvalidArgumentException('subscribe: at most ' . ClientOptions::MAX_TOPICS . ' topics per node');
        }
        $this->topics[$topic] = true;
        return $this->stateOperation(function (int $id) use ($topic): string {
            $cm = new ClientMessage();
            $cm->setSubscribe((new Subscribe())->setId($id)->setTopic($topic));
            return Codec::messageFrame($cm);
        });
    }

    /** Unsubscribes from a topic. Resolves with 0. */
    public function unsubscribe(string $topic): Pending
    {
        ClientOptions::checkTopic($topic, 'unsubscribe');
        unset($this->topics[$topic]);
        return $this->stateOperation(function (int $id) use ($topic): string {
            $cm = new ClientMessage();
            $cm->setUnsubscribe((new Unsubscribe())->setId($id)->setTopic($topic));
            return Codec::messageFrame($cm);
        });
    }

    /**
     * Replaces this node's metadata everywhere (kept across reconnects). Resolves with 0.
     *
     * @param array<string,string> $meta
     * @throws \InvalidArgumentException beyond MeshNode's limits
     */
    public function setMeta(array $meta): Pending
    {
        ClientOptions::checkMeta($meta, 'setMeta');
        $this->meta = $meta;
        return $this->stateOperation(function (int $id) use ($meta): string {
            $cm = new ClientMessage();
            $cm->setSetMeta((new SetMeta())->setId($id)->setMeta($meta));
            return Codec::messageFrame($cm);
        });
    }

    /** The agent's peer table, fresh (a round trip). Resolves with list<Peer>. */
    public function getPeers(): Pending
    {
        return $this->operation(static function (int $id): string {
            $cm = new ClientMessage();
            $cm->setGetPeers((new GetPeers())->setId($id));
            return Codec::messageFrame($cm);
        }, $this->opts->requestTimeoutMs);
    }

    /** The node's statistics. Resolves with a Proto\Stats. */
    public function getStats(): Pending
    {
        return $this->operation(static function (int $id): string {
            $cm = new ClientMessage();
            $cm->setGetStats((new GetStats())->setId($id));
            return Codec::messageFrame($cm);
        }, $this->opts->requestTimeoutMs);
    }

    /**
     * The peer table as this client knows it (Welcome + peer events; emptied when the connection
     * drops, refilled by the next Welcome).
     *
     * @return array<string,Peer> by id
     */
    public function peers(): array
    {
        return $this->peers;
    }

    /** This node's current metadata (what the next Hello announces). @return array<string,string> */
    public function meta(): array
    {
        return $this->meta;
    }

    /** This node's current topics. @return list<string> */
    public function topics(): array
    {
        return array_keys($this->topics);
    }

    // ------------------------------------------------------------ internals: operations

    /**
     * Queues an operation with an answer: allocates an id, encodes, registers the handle.
     *
     * @param \Closure(int):string $encode
     */
    private function operation(\Closure $encode, int $timeoutMs): Pending
    {
        if ($this->state !== self::READY) {
            $p = new Pending(0);
            $p->reject(new WarpmeshException(ErrorCode::CLOSED, 'not connected to the agent'));
            return $p;
        }
        if (count($this->pending) >= $this->opts->maxPending) {
            $p = new Pending(0);
            $p->reject(new WarpmeshException(ErrorCode::OVERLOADED, "{$this->opts->maxPending} operations outstanding (option maxPending)"));
            return $p;
        }
        $id = $this->nextId++;
        $frame = $encode($id);
        $p = new Pending($id);
        if (!$this->queue($frame)) {
            $p->reject(new WarpmeshException(ErrorCode::OVERLOADED, 'output buffer full (option maxOutputBuffer): poll() until it drains'));
            return $p;
        }
        $deadline = ($this->clock)() + $timeoutMs + $this->opts->timeoutGraceMs;
        $this->pending[$id] = [$p, $deadline];
        if ($deadline < $this->nextDeadline) {
            $this->nextDeadline = $deadline;
        }
        return $p;
    }

    /** An operation on state the next Hello carries: while not ready it succeeds at once. */
    private function stateOperation(\Closure $encode): Pending
    {
        if ($this->state !== self::READY) {
            $p = new Pending(0);
            $p->resolve(0);
            return $p;
        }
        return $this->operation($encode, $this->opts->requestTimeoutMs);
    }

    /**
     * Appends a frame to the output; writes when enough is waiting.
     *
     * @throws WarpmeshException TOO_LARGE when the frame is above the agent's maximum
     */
    private function queue(string $frame): bool
    {
        $n = strlen($frame);
        if ($n > $this->maxFrame + 10) {
            throw new WarpmeshException(ErrorCode::TOO_LARGE, "frame of $n bytes exceeds the agent's maximum of {$this->maxFrame}");
        }
        $conn = $this->conn;
        $waiting = $conn->buffered();
        if (!$conn->queue($frame, $this->opts->maxOutputBuffer)) {
            // Full: write what the socket takes now, then try once more.
            if (!$this->flush() || !$conn->queue($frame, $this->opts->maxOutputBuffer)) {
                $this->counters['sendRefused']++;
                return false;
            }
        }
        $this->counters['framesOut']++;
        // One write attempt per FLUSH_THRESHOLD bytes queued (not one per frame while the socket is full).
        if (intdiv($waiting, self::FLUSH_THRESHOLD) !== intdiv($waiting + $n, self::FLUSH_THRESHOLD)) {
            $this->flush();
        }
        return true;
    }

    /**
     * Writes pending output as far as the socket takes it.
     *
     * @return bool false when the connection failed (and was dropped)
     */
    private function flush(): bool
    {
        if ($this->conn === null) {
            return false;
        }
        $failure = $this->conn->flush();
        if ($failure !== null) {
            $this->drop(new WarpmeshException(ErrorCode::CLOSED, $failure));
            return false;
        }
        return true;
    }

    // ------------------------------------------------------------ internals: connection

    /** Opens the socket and queues Hello. @return bool false when the socket could not be opened */
    private function attempt(): bool
    {
        $this->reconnectAt = 0.0;
        $this->counters['connectAttempts']++;
        $addr = $this->opts->tcp !== null ? 'tcp://' . $this->opts->tcp : 'unix://' . $this->opts->socketPath();
        try {
            $this->conn = Connection::open($addr, $this->opts->connectTimeoutMs / 1000);
        } catch (WarpmeshException $e) {
            $this->lastError = $e;
            $this->scheduleReconnect();
            return false;
        }
        $this->state = self::CONNECTING;
        $this->in = '';
        $this->inPos = 0;
        $this->maxFrame = $this->opts->maxFrame;
        $hello = (new Hello())->setProtocolVersion(self::PROTOCOL_VERSION)->setId($this->opts->id)->setRole($this->opts->role)
            ->setMeta($this->meta)->setTopics(array_keys($this->topics))->setToken($this->opts->token)
            ->setClient($this->opts->clientName);
        if ($this->opts->servicesOn()) {
            $hello->setServices(true)->setPlayerEvents($this->opts->playerEvents)->setHandles(array_keys($this->serviceHandlers));
            if ($this->server !== null) {
                $hello->setServer(Services::settingsToProto($this->server));
            }
        }
        $cm = new ClientMessage();
        $cm->setHello($hello);
        $this->conn->queue(Codec::messageFrame($cm), PHP_INT_MAX);
        $this->counters['framesOut']++;
        return $this->flush();
    }

    /** Real monotonic time, ms: bounds the blocking helpers whatever clock the protocol timers use. */
    private static function realMs(): float
    {
        return hrtime(true) / 1e6;
    }

    private function scheduleReconnect(): void
    {
        if (!$this->opts->reconnect || $this->state === self::CLOSED) {
            return;
        }
        $this->reconnectAt = ($this->clock)() + $this->backoffMs;
        $this->backoffMs = min($this->backoffMs * 2, $this->opts->reconnectMaxMs);
    }

    private function closeSocket(): void
    {
        $this->conn?->close();
        $this->conn = null;
        $this->in = '';
        $this->inPos = 0;
    }

    /** The connection is gone: fail what was outstanding, tell the application, schedule a reconnect. */
    private function drop(WarpmeshException $why): void
    {
        $wasReady = $this->state === self::READY;
        $this->closeSocket();
        $this->lastError = $why;
        $this->peers = [];
        if ($this->state !== self::CLOSED) {
            $this->state = $this->opts->reconnect ? self::DISCONNECTED : self::CLOSED;
        }
        $this->scheduleReconnect();
        $this->failAll(new WarpmeshException(ErrorCode::CLOSED, 'agent connection lost: ' . $why->getMessage(), false, $why));
        if ($wasReady) {
            $this->counters['disconnects']++;
            if ($this->onDisconnected !== null) {
                ($this->onDisconnected)($why);
            }
        }
    }

    private function failAll(WarpmeshException $e): void
    {
        $pending = $this->pending;
        $this->pending = [];
        $this->nextDeadline = INF;
        foreach ($pending as [$p]) {
            $p->reject($e);
        }
    }

    private function checkTimeouts(float $now): void
    {
        $next = INF;
        foreach ($this->pending as $id => [$p, $deadline]) {
            if ($deadline <= $now) {
                unset($this->pending[$id]);
                $p->reject(new WarpmeshException(ErrorCode::TIMEOUT, "no answer to operation $id from the agent in time"));
            } elseif ($deadline < $next) {
                $next = $deadline;
            }
        }
        $this->nextDeadline = $this->pending === [] ? INF : $next;
    }

    /** Reads what is ready (bounded) and dispatches complete frames. */
    private function readAndDispatch(): int
    {
        $handled = 0;
        $read = 0;
        while ($this->conn !== null && $read < $this->opts->maxReadPerPoll) {
            $chunk = $this->conn->read(self::READ_CHUNK);
            if ($chunk === null) {
                $this->drop(new WarpmeshException(ErrorCode::CLOSED, 'the agent closed the connection'));
                break;
            }
            if ($chunk === '') {
                break;
            }
            $read += strlen($chunk);
            if ($this->inPos === strlen($this->in)) {
                $this->in = $chunk;
                $this->inPos = 0;
            } else {
                $this->in .= $chunk;
            }
            $handled += $this->dispatchFrames();
        }
        return $handled;
    }

    /** Cuts complete frames out of the input buffer and handles them. */
    private function dispatchFrames(): int
    {
        $handled = 0;
        while ($this->conn !== null) {
            $len = strlen($this->in);
            $pos = $this->inPos;
            if ($pos >= $len) {
                break;
            }
            $n = Codec::readVarint($this->in, $pos, $len);
            if ($n === null) {
                if ($pos === -1 || $len - $this->inPos > 10) {
                    $this->protocolError(ErrorCode::BAD_MESSAGE, 'malformed frame length from the agent');
                }
                break;
            }
            if ($n > $this->maxFrame || $n < 0) {
                $this->protocolError(ErrorCode::TOO_LARGE, "frame of $n bytes from the agent exceeds the maximum of {$this->maxFrame}");
                break;
            }
            if ($len - $pos < $n) {
                break;
            }
            $this->inPos = $pos + $n;
            $this->counters['framesIn']++;
            $handled++;
            // Messages from peers, the bulk of a busy client's input, are decoded in place;
            // without an onMessage callback they are only counted.
            if ($n > 0 && $this->in[$pos] === "\x12") {
                if ($this->onMessage === null) {
                    $this->messagesReceived++;
                    continue;
                }
                $m = Codec::decodeMessageAt($this->in, $pos, $pos + $n);
                if ($m !== null) {
                    $this->messagesReceived++;
                    ($this->onMessage)($m);
                    continue;
                }
            }
            $this->handleFrame(substr($this->in, $pos, $n));
        }
        if ($this->conn !== null && $this->inPos > 0) {
            if ($this->inPos >= strlen($this->in)) {
                $this->in = '';
                $this->inPos = 0;
            } elseif ($this->inPos > self::COMPACT_INPUT_AFTER) {
                $this->in = substr($this->in, $this->inPos);
                $this->inPos = 0;
            }
        }
        return $handled;
    }

    private function protocolError(int $code, string $message): void
    {
        $e = new WarpmeshException($code, $message, true);
        if ($this->onError !== null) {
            ($this->onError)($e);
        }
        $this->drop($e);
    }

    private function handleFrame(string $frame): void
    {
        $d = Codec::decodeAgentMessage($frame);
        if ($d === null) {
            $this->counters['badFrames']++;
            return;
        }
        if (is_array($d)) {
            $this->handleHot($d[0], $d[1]);
            return;
        }
        $this->handleOther($d);
    }

    /**
     * The hot messages, as decoded fields.
     *
     * @param array<int,int|string> $f
     */
    private function handleHot(int $kind, array $f): void
    {
        switch ($kind) {
            case Codec::AM_MESSAGE:
                $this->messagesReceived++;
                if ($this->onMessage !== null) {
                    ($this->onMessage)(new Message((string) ($f[1] ?? ''), (string) ($f[2] ?? ''), (int) ($f[3] ?? 0),
                        (int) ($f[4] ?? 0), (string) ($f[5] ?? '')));
                }
                return;
            case Codec::AM_INCOMING_REQUEST:
                $this->counters['requestsReceived']++;
                $this->answer(new IncomingRequest((int) ($f[1] ?? 0), (string) ($f[2] ?? ''), (string) ($f[3] ?? '')));
                return;
            case Codec::AM_RESPONSE:
                $this->settle((int) ($f[1] ?? 0), (string) ($f[2] ?? ''));
                return;
            case Codec::AM_RESULT:
                $this->settle((int) ($f[1] ?? 0), (int) ($f[2] ?? 0));
                return;
            default: // Codec::AM_ERROR
                $this->handleError((int) ($f[1] ?? 0), (int) ($f[2] ?? 0), (string) ($f[3] ?? ''), (bool) ($f[4] ?? 0));
        }
    }

    private function handleOther(AgentMessage $m): void
    {
        switch ($m->getBody()) {
            case 'welcome':
                $this->handleWelcome($m->getWelcome());
                return;
            case 'message':
                $x = $m->getMessage();
                $this->handleHot(Codec::AM_MESSAGE, [1 => $x->getFrom(), 2 => $x->getData(), 3 => $x->getChannel(), 4 => $x->getDelivery(), 5 => $x->getTopic()]);
                return;
            case 'incoming_request':
                $x = $m->getIncomingRequest();
                $this->handleHot(Codec::AM_INCOMING_REQUEST, [1 => (int) $x->getId(), 2 => $x->getFrom(), 3 => $x->getData()]);
                return;
            case 'response':
                $x = $m->getResponse();
                $this->handleHot(Codec::AM_RESPONSE, [1 => (int) $x->getId(), 2 => $x->getData()]);
                return;
            case 'result':
                $x = $m->getResult();
                $this->handleHot(Codec::AM_RESULT, [1 => (int) $x->getId(), 2 => $x->getCount()]);
                return;
            case 'error':
                $x = $m->getError();
                $this->handleError((int) $x->getId(), $x->getCode(), $x->getMessage(), $x->getFatal());
                return;
            case 'peer_event':
                $this->handlePeerEvent($m->getPeerEvent());
                return;
            case 'coordinator_event':
                $x = $m->getCoordinatorEvent();
                if ($this->onCoordinator !== null) {
                    ($this->onCoordinator)($x->getUp(), $x->getAddress());
                }
                return;
            case 'undelivered':
                $x = $m->getUndelivered();
                if ($this->onUndelivered !== null) {
                    ($this->onUndelivered)($x->getPeer(), (int) $x->getCount(), $x->getReason());
                }
                return;
            case 'peers':
                $x = $m->getPeers();
                $list = [];
                foreach ($x->getPeers() as $p) {
                    $list[] = Peer::fromProto($p);
                }
                $this->settle((int) $x->getId(), $list);
                return;
            case 'stats':
                $x = $m->getStats();
                $this->settle((int) $x->getId(), $x);
                return;
            case 'player_result':
                $x = $m->getPlayerResult();
                $this->settle((int) $x->getId(), $x->getFound() ? Player::fromProto($x->getPlayer()) : null);
                return;
            case 'player_list':
                $x = $m->getPlayerList();
                $list = [];
                foreach ($x->getPlayers() as $p) {
                    $list[] = Player::fromProto($p);
                }
                $this->settle((int) $x->getId(), new PlayerList((int) $x->getCount(), $list));
                return;
            case 'server_list':
                $x = $m->getServerList();
                $list = [];
                foreach ($x->getServers() as $s) {
                    $list[] = ServerInfo::fromProto($s);
                }
                $this->settle((int) $x->getId(), $list);
                return;
            case 'transfer_done':
                $x = $m->getTransferDone();
                $this->settle((int) $x->getId(), new TransferDone($x->getPlayer(), $x->getServer(), $x->getFrom(), $x->getVia()));
                return;
            case 'service_call':
                $this->handleServiceCall($m->getServiceCall());
                return;
            case 'player_event':
                $this->handlePlayerEvent($m->getPlayerEvent());
                return;
            case 'server_event':
                $x = $m->getServerEvent();
                $info = $x->getInfo();
                if ($x->getRemoved()) {
                    if ($this->onServerRemoved !== null) {
                        ($this->onServerRemoved)($info === null ? '' : $info->getId());
                    }
                } elseif ($info === null) {
                    $this->counters['badFrames']++;
                } elseif ($this->onServerUpdated !== null) {
                    ($this->onServerUpdated)(ServerInfo::fromProto($info));
                }
                return;
            case 'goodbye':
                // The agent is going away (shutting down, or answering our Goodbye).
                $reason = $m->getGoodbye()->getReason();
                $this->drop(new WarpmeshException(ErrorCode::CLOSED, 'the agent said goodbye' . ($reason !== '' ? ": $reason" : '')));
                return;
            default:
                $this->counters['badFrames']++;
        }
    }

    private function handleWelcome(Proto\Welcome $w): void
    {
        if ($this->state !== self::CONNECTING) {
            $this->counters['badFrames']++;
            return;
        }
        $this->state = self::READY;
        $this->welcome = $w;
        $this->lastError = null;
        $this->backoffMs = $this->opts->reconnectMinMs;
        if ($w->getMaxFrame() > 0) {
            $this->maxFrame = (int) $w->getMaxFrame();
        }
        $this->peers = [];
        foreach ($w->getPeers() as $p) {
            $peer = Peer::fromProto($p);
            $this->peers[$peer->id] = $peer;
        }
        $again = $this->everWelcomed;
        $this->everWelcomed = true;
        // The new node knows none of this server's players: announce them again (id 0: failures reach onError).
        foreach ($this->hosted as $j) {
            $cm = new ClientMessage();
            $cm->setPlayerJoin((clone $j)->setId(0));
            $this->queue(Codec::messageFrame($cm));
        }
        if ($again) {
            $this->counters['reconnects']++;
        }
        if ($this->onConnected !== null) {
            ($this->onConnected)($w);
        }
        if ($again && $this->onReconnected !== null) {
            ($this->onReconnected)();
        }
    }

    private function handlePeerEvent(Proto\PeerEvent $e): void
    {
        $pp = $e->getPeer();
        if ($pp === null) {
            $this->counters['badFrames']++;
            return;
        }
        $peer = Peer::fromProto($pp);
        switch ($e->getKind()) {
            case Kind::UP:
                $this->peers[$peer->id] = $peer;
                if ($this->onPeerUp !== null) {
                    ($this->onPeerUp)($peer);
                }
                return;
            case Kind::DOWN:
                unset($this->peers[$peer->id]);
                if ($this->onPeerDown !== null) {
                    ($this->onPeerDown)($peer, $e->getReason());
                }
                return;
            case Kind::UPDATED:
                $this->peers[$peer->id] = $peer;
                if ($this->onPeerUpdated !== null) {
                    ($this->onPeerUpdated)($peer);
                }
                return;
            default:
                $this->counters['badFrames']++;
        }
    }

    private function handlePlayerEvent(Proto\PlayerEvent $e): void
    {
        $p = Player::fromProto($e->getPlayer());
        switch ($e->getKind()) {
            case Proto\PlayerEvent\Kind::JOINED:
                if ($this->onPlayerJoined !== null) {
                    ($this->onPlayerJoined)($p);
                }
                return;
            case Proto\PlayerEvent\Kind::LEFT:
                if ($this->onPlayerLeft !== null) {
                    ($this->onPlayerLeft)($p);
                }
                return;
            case Proto\PlayerEvent\Kind::MOVED:
                if ($this->onPlayerMoved !== null) {
                    ($this->onPlayerMoved)($p, $e->getFrom());
                }
                return;
            default:
                $this->counters['badFrames']++;
        }
    }

    private function handleServiceCall(Proto\ServiceCall $x): void
    {
        $id = (int) $x->getId();
        $h = $this->serviceHandlers[$x->getKind()] ?? null;
        if ($h === null) {
            $this->answerServiceCall($id, false, "not handled by {$this->opts->id}");
            return;
        }
        $call = new ServiceCall($id, $x->getKind(), Player::fromProto($x->getPlayer()), $x->getServer(), $x->getFrom(), $x->getText(),
            (int) $x->getPlayers(), (int) $x->getArriving());
        try {
            $out = $h($call);
        } catch (\Throwable $t) {
            $msg = $t->getMessage();
            $this->answerServiceCall($id, false, $msg !== '' ? $msg : get_class($t));
            return;
        }
        if ($out === true) {
            $this->answerServiceCall($id, true);
        } elseif ($out === false) {
            $this->answerServiceCall($id, false, "refused by {$this->opts->id}");
        } elseif (is_string($out)) {
            $this->answerServiceCall($id, false, $out === '' ? "refused by {$this->opts->id}" : $out);
        }
        // null: the application answers later with answerServiceCall().
    }

    private function handleError(int $id, int $code, string $message, bool $fatal): void
    {
        $e = new WarpmeshException($code, $message, $fatal);
        if ($id !== 0 && isset($this->pending[$id])) {
            $p = $this->pending[$id][0];
            unset($this->pending[$id]);
            $p->reject($e);
        } elseif ($this->onError !== null) {
            ($this->onError)($e);
        }
        if ($fatal) {
            $this->drop($e);
        }
    }

    private function settle(int $id, mixed $value): void
    {
        if (!isset($this->pending[$id])) {
            $this->counters['strayAnswers']++;
            return;
        }
        $p = $this->pending[$id][0];
        unset($this->pending[$id]);
        $p->resolve($value);
    }

    private function answer(IncomingRequest $r): void
    {
        if ($this->onRequest === null) {
            $this->replyError($r->id, 'no request handler');
            return;
        }
        try {
            $out = ($this->onRequest)($r);
        } catch (\Throwable $t) {
            $msg = $t->getMessage();
            $this->replyError($r->id, $msg !== '' ? $msg : get_class($t));
            return;
        }
        if ($out !== null) {
            $this->reply($r->id, (string) $out);
        }
    }
}
