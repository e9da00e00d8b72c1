<?php

declare(strict_types=1);

namespace Warpmesh\Agent;

/**
 * Validated options of a Client. Build with ClientOptions::fromArray([...]) or pass
 * the array to new Client([...]). Every invalid option throws
 * \InvalidArgumentException naming the option, the value and the expected form.
 */
final class ClientOptions
{
    /** Largest frame the agent accepts unless its Welcome says otherwise: 1 MiB + 4 KiB (agent.proto). */
    public const MAX_FRAME = 1_052_672;
    /** Default agent socket (the agent's WARPMESH_AGENT_SOCKET default). */
    public const DEFAULT_SOCKET = '/tmp/warpmesh-agent.sock';
    /** Metadata limits of MeshNode (lib/config.ts). */
    public const META_MAX_PAIRS = 32;
    public const META_KEY_MAX_LENGTH = 32;
    public const META_VALUE_MAX_BYTES = 128;
    /** Topic limits of MeshNode (lib/mesh/control.ts). */
    public const MAX_TOPICS = 64;
    public const TOPIC_MAX_LENGTH = 64;
    /** Node id form of MeshNode (lib/mesh/node.ts). */
    public const ID_PATTERN = '/^[A-Za-z0-9_.:-]{1,64}$/D';
    private const META_KEY_PATTERN = '/^[A-Za-z0-9_.-]{1,32}$/D';

    /**
     * @param string $id node id: 1..64 of A-Z a-z 0-9 _ . : - (required)
     * @param string $role node role; "" = the agent's default ("downstream")
     * @param array<string,string> $meta initial metadata (≤ 32 pairs, keys 1..32 of A-Z a-z 0-9 _ . -, values ≤ 128 bytes)
     * @param list<string> $topics topics subscribed from the start (≤ 64, each 1..64 characters)
     * @param string $socket Unix socket path; default env WARPMESH_AGENT_SOCKET, else /tmp/warpmesh-agent.sock
     * @param ?string $tcp "host:port" of the agent's TCP listener instead of the Unix socket (needs $token)
     * @param string $token the agent's WARPMESH_AGENT_TOKEN (TCP only)
     * @param int $requestTimeoutMs default request timeout, ms (default 5000); sent to the agent with each request
     * @param int $timeoutGraceMs extra wait beyond an operation's timeout before it fails locally with TIMEOUT, ms (default 1000)
     * @param bool $reconnect reconnect when the agent connection drops (default true)
     * @param int $reconnectMinMs first reconnect delay, ms (default 100), doubling per failed attempt
     * @param int $reconnectMaxMs largest reconnect delay, ms (default 2000)
     * @param int $maxFrame largest incoming frame accepted before Welcome says otherwise, bytes (default 1,052,672)
     * @param int $maxOutputBuffer bytes of unsent frames kept (default 8 MiB); beyond it send() returns false and
     *   other operations fail with OVERLOADED
     * @param int $maxPending outstanding operations awaiting an answer (default 65536); beyond it they fail with OVERLOADED
     * @param int $maxReadPerPoll bytes read from the socket in one poll() at most (default 4 MiB), so a tick stays short
     * @param int $connectTimeoutMs socket connect timeout, ms (default 1000)
     * @param string $clientName Hello.client, free text for the agent's logs
     * @param ?\Closure $clock monotonic clock in milliseconds (float); default hrtime(); tests inject a fake one
     * @param bool $services run the network services on this node (player directory, server registry, transfers,
     *   player messaging; default false); implied by $server and $playerEvents
     * @param ?array<string,mixed> $server list this node in the server registry with these settings
     *   (['state' => 'lobby', 'mode' => ..., 'tags' => [...], 'max' => N, 'fields' => [...]]; default: not listed, e.g. a proxy)
     * @param bool $playerEvents receive the services' player and server events (onPlayerJoined...; default false)
     */
    public function __construct(
        public readonly string $id,
        public readonly string $role = '',
        public readonly array $meta = [],
        public readonly array $topics = [],
        public readonly string $socket = '',
        public readonly ?string $tcp = null,
        public readonly string $token = '',
        public readonly int $requestTimeoutMs = 5000,
        public readonly int $timeoutGraceMs = 1000,
        public readonly bool $reconnect = true,
        public readonly int $reconnectMinMs = 100,
        public readonly int $reconnectMaxMs = 2000,
        public readonly int $maxFrame = self::MAX_FRAME,
        public readonly int $maxOutputBuffer = 8 * 1024 * 1024,
        public readonly int $maxPending = 65536,
        public readonly int $maxReadPerPoll = 4 * 1024 * 1024,
        public readonly int $connectTimeoutMs = 1000,
        public readonly string $clientName = 'warpmesh-php/0.1.0',
        public readonly ?\Closure $clock = null,
        public readonly bool $services = false,
        public readonly ?array $server = null,
        public readonly bool $playerEvents = false,
    ) {
        if ($server !== null) {
            Services::checkSettings($server, 'option server');
        }
        if (preg_match(self::ID_PATTERN, $id) !== 1) {
            throw new \InvalidArgumentException('option id must be 1..64 of A-Z a-z 0-9 _ . : -, got ' . json_encode($id));
        }
        if (strlen($role) > 64) {
            throw new \InvalidArgumentException('option role must be at most 64 characters, got ' . json_encode($role));
        }
        self::checkMeta($meta, 'option meta');
        if (!array_is_list($topics) || count($topics) > self::MAX_TOPICS) {
            throw new \InvalidArgumentException('option topics must be a list of at most ' . self::MAX_TOPICS . ' topics');
        }
        foreach ($topics as $t) {
            self::checkTopic($t, 'option topics');
        }
        if ($tcp !== null && preg_match('/^[^:\s]+:\d{1,5}$/D', $tcp) !== 1) {
            throw new \InvalidArgumentException('option tcp must be "host:port", got ' . json_encode($tcp));
        }
        if ($tcp !== null && $token === '') {
            throw new \InvalidArgumentException('option token is required with option tcp (the agent\'s WARPMESH_AGENT_TOKEN)');
        }
        foreach ([
            'requestTimeoutMs' => [$requestTimeoutMs, 1, 0xffffffff],
            'timeoutGraceMs' => [$timeoutGraceMs, 0, 3_600_000],
            'reconnectMinMs' => [$reconnectMinMs, 1, 3_600_000],
            'reconnectMaxMs' => [$reconnectMaxMs, $reconnectMinMs, 3_600_000],
            'maxFrame' => [$maxFrame, 16, 1 << 30],
            'maxOutputBuffer' => [$maxOutputBuffer, 1024, 1 << 40],
            'maxPending' => [$maxPending, 1, 1 << 30],
            'maxReadPerPoll' => [$maxReadPerPoll, 1024, 1 << 40],
            'connectTimeoutMs' => [$connectTimeoutMs, 1, 3_600_000],
        ] as $name => [$v, $min, $max]) {
            if ($v < $min || $v > $max) {
                throw new \InvalidArgumentException("option $name must be an integer in $min..$max, got $v");
            }
        }
    }

    /**
     * Builds options from an array with the constructor's parameter names as keys.
     *
     * @param array<string,mixed> $o
     */
    public static function fromArray(array $o): self
    {
        $known = ['id', 'role', 'meta', 'topics', 'socket', 'tcp', 'token', 'requestTimeoutMs', 'timeoutGraceMs',
            'reconnect', 'reconnectMinMs', 'reconnectMaxMs', 'maxFrame', 'maxOutputBuffer', 'maxPending',
            'maxReadPerPoll', 'connectTimeoutMs', 'clientName', 'clock', 'services', 'server', 'playerEvents'];
        foreach (array_keys($o) as $k) {
            if (!in_array($k, $known, true)) {
                throw new \InvalidArgumentException('unknown option ' . json_encode($k) . '; known: ' . implode(', ', $known));
            }
        }
        if (!isset($o['id']) || !is_string($o['id'])) {
            throw new \InvalidArgumentException('option id (string) is required');
        }
        if (isset($o['clock']) && !($o['clock'] instanceof \Closure)) {
            $o['clock'] = \Closure::fromCallable($o['clock']);
        }
        try {
            return new self(...$o);
        } catch (\TypeError $e) {
            throw new \InvalidArgumentException('invalid option type: ' . $e->getMessage(), 0, $e);
        }
    }

    /** True when the network services are on (option services, server or playerEvents). */
    public function servicesOn(): bool
    {
        return $this->services || $this->server !== null || $this->playerEvents;
    }

    /** The Unix socket path to use: the option, else WARPMESH_AGENT_SOCKET, else the default. */
    public function socketPath(): string
    {
        if ($this->socket !== '') {
            return $this->socket;
        }
        $env = getenv('WARPMESH_AGENT_SOCKET');
        return is_string($env) && $env !== '' ? $env : self::DEFAULT_SOCKET;
    }

    /**
     * Checks metadata against MeshNode's limits.
     *
     * @param array<mixed,mixed> $meta
     * @throws \InvalidArgumentException naming $what
     */
    public static function checkMeta(array $meta, string $what): void
    {
        if (count($meta) > self::META_MAX_PAIRS) {
            throw new \InvalidArgumentException("$what: " . count($meta) . ' pairs, at most ' . self::META_MAX_PAIRS);
        }
        foreach ($meta as $k => $v) {
            if (!is_string($v) || preg_match(self::META_KEY_PATTERN, (string) $k) !== 1) {
                throw new \InvalidArgumentException("$what: key " . json_encode((string) $k)
                    . ' must be 1..' . self::META_KEY_MAX_LENGTH . ' of A-Z a-z 0-9 _ . - with a string value');
            }
            if (strlen($v) > self::META_VALUE_MAX_BYTES) {
                throw new \InvalidArgumentException("$what: value of " . json_encode((string) $k) . ' exceeds ' . self::META_VALUE_MAX_BYTES . ' bytes');
            }
        }
    }

    /** @throws \InvalidArgumentException naming $what */
    public static function checkTopic(mixed $topic, string $what): void
    {
        if (!is_string($topic) || $topic === '' || (int) preg_match_all('/./su', $topic) > self::TOPIC_MAX_LENGTH
            || preg_match('//u', $topic) !== 1) {
            throw new \InvalidArgumentException("$what: a topic must be 1.." . self::TOPIC_MAX_LENGTH . ' characters, got ' . json_encode($topic));
        }
    }
}
