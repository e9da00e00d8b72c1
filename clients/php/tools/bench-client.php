<?php

declare(strict_types=1);

/*
 * The bench/test client of the agent contract (same CLI in Node, Java and PHP),
 * driven by the cross-language test and `npm run bench:agent`.
 *
 *   php clients/php/tools/bench-client.php
 *     --socket PATH | --tcp HOST:PORT --token T
 *     --id ID [--role ROLE] [--topic T]... [--meta k=v]...
 *     --mode echo|pingpong|flood|repl
 *     --peer ID --count N --size BYTES [--warmup W] [--timeout-ms MS]
 *     [--services] [--player-events] [--server k=v,...] [--handle KIND[=REFUSAL]]...
 *
 * Network services (as the Java bench client): --server lists the node (state, mode, max,
 * tags=a;b); --handle answers ServiceCalls of KIND (transfer-request, move, message, kick) with
 * ok, or refused with REFUSAL, printing each as {"ev":"service-call",...}. Repl commands:
 *   join TAG NAME [XUID|-] [PROXY|-]; leave TAG PLAYER; server TAG k=v,...; locate TAG PLAYER;
 *   players TAG MODE|- SERVER|- LIMIT; servers TAG MODE|- STATE[;STATE]|- TAG2|-;
 *   transfer TAG PLAYER SERVER|k=v,... [TIMEOUT_MS] (selector keys: mode, state=a;b, tag,
 *   exclude=a;b, fallback=SERVER); message TAG PLAYER TEXT; kick TAG PLAYER TEXT.
 *
 * Every mode prints `ready` once welcomed. Exit codes: 0 success; 1 usage,
 * connection or request failure; 2 --peer not in the table within --timeout-ms;
 * 3 a pingpong reply differs from its request; 4 flood count not reached within
 * --timeout-ms. Errors go to stderr.
 */


use Warpmesh\Agent\Client;
use Warpmesh\Agent\IncomingRequest;
use Warpmesh\Agent\Message;
use Warpmesh\Agent\Peer;
use Warpmesh\Agent\Pending;
use Warpmesh\Agent\Player;
use Warpmesh\Agent\PlayerList;
use Warpmesh\Agent\ServerInfo;
use Warpmesh\Agent\ServiceCall;
use Warpmesh\Agent\TransferDone;
use Warpmesh\Agent\Proto\Delivery;
use Warpmesh\Agent\WarpmeshException;

const EXIT_FAILURE = 1;
const EXIT_NO_PEER = 2;
const EXIT_MISMATCH = 3;
const EXIT_FLOOD_TIMEOUT = 4;

try {
    require __DIR__ . '/../autoload.php';
} catch (RuntimeException $e) {
    fail($e->getMessage());
}

function fail(string $message, int $code = EXIT_FAILURE): never
{
    fwrite(STDERR, "bench-client: $message\n");
    exit($code);
}

function out(string $line): void
{
    fwrite(STDOUT, $line . "\n");
    fflush(STDOUT);
}

/** @param array<string,mixed> $o */
function emit(array $o): void
{
    out(json_encode($o, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE));
}

/** @return array<string, list<string>> */
function parseArgs(array $argv): array
{
    $multi = ['topic', 'meta', 'handle'];
    $flags = ['services', 'player-events'];
    $known = ['socket', 'tcp', 'token', 'id', 'role', 'topic', 'meta', 'mode', 'peer', 'count', 'size', 'warmup', 'timeout-ms',
        'services', 'player-events', 'server', 'handle'];
    $a = [];
    for ($i = 1; $i < count($argv); $i++) {
        $arg = $argv[$i];
        if (!str_starts_with($arg, '--')) {
            fail("unexpected argument " . json_encode($arg));
        }
        $name = substr($arg, 2);
        $value = null;
        if (str_contains($name, '=')) {
            [$name, $value] = explode('=', $name, 2);
        }
        if (!in_array($name, $known, true)) {
            fail("unknown option --$name");
        }
        if ($value === null && in_array($name, $flags, true)) {
            $value = '1';
        } elseif ($value === null) {
            if ($i + 1 >= count($argv)) {
                fail("--$name needs a value");
            }
            $value = $argv[++$i];
        }
        if (isset($a[$name]) && !in_array($name, $multi, true)) {
            fail("--$name given twice");
        }
        $a[$name][] = $value;
    }
    return $a;
}

/** @param array<string, list<string>> $a */
function intArg(array $a, string $name, ?int $default): int
{
    if (!isset($a[$name])) {
        if ($default === null) {
            fail("--$name is required for this mode");
        }
        return $default;
    }
    $v = $a[$name][0];
    if (preg_match('/^\d+$/D', $v) !== 1) {
        fail("--$name must be a non-negative integer, got " . json_encode($v));
    }
    return (int) $v;
}

/** @param array<string, list<string>> $a */
function strArg(array $a, string $name, ?string $default = null): string
{
    if (!isset($a[$name])) {
        if ($default === null) {
            fail("--$name is required for this mode");
        }
        return $default;
    }
    return $a[$name][0];
}

/** @return array<string,string> */
function parseMeta(string $s): array
{
    $meta = [];
    foreach ($s === '' ? [] : explode(',', $s) as $pair) {
        $kv = explode('=', $pair, 2);
        if (count($kv) !== 2) {
            throw new InvalidArgumentException("meta pair must be k=v, got " . json_encode($pair));
        }
        $meta[$kv[0]] = $kv[1];
    }
    return $meta;
}

/**
 * Server settings from "state=lobby,mode=skywars,max=16,tags=a;b".
 *
 * @return array<string,mixed>
 */
function parseSettings(string $s): array
{
    $out = [];
    foreach (parseMeta($s) as $k => $v) {
        $out[$k] = match ($k) {
            'max' => preg_match('/^\d+$/D', $v) === 1 ? (int) $v : throw new InvalidArgumentException("server: max must be an integer, got " . json_encode($v)),
            'tags' => $v === '' ? [] : explode(';', $v),
            default => $v,
        };
    }
    return $out;
}

/**
 * A selector from "mode=skywars,state=lobby;in-game,fallback=lobby-1".
 *
 * @return array<string,mixed>
 */
function parseSelector(string $s): array
{
    $out = [];
    foreach (parseMeta($s) as $k => $v) {
        $out[$k] = in_array($k, ['state', 'exclude'], true) ? explode(';', $v) : $v;
    }
    return $out;
}

/** --handle KIND[=REFUSAL]: prints each call, answers ok or refused with REFUSAL. */
function registerHandler(Client $c, string $spec): void
{
    [$name, $refusal] = array_pad(explode('=', $spec, 2), 2, null);
    $kinds = ['transfer-request' => ServiceCall::TRANSFER_REQUEST, 'move' => ServiceCall::MOVE, 'message' => ServiceCall::MESSAGE, 'kick' => ServiceCall::KICK];
    if (!isset($kinds[$name])) {
        throw new InvalidArgumentException('--handle: KIND is transfer-request, move, message or kick, got ' . json_encode($name));
    }
    $c->onServiceCall($kinds[$name], static function (ServiceCall $call) use ($name, $refusal): bool|string {
        emit(['ev' => 'service-call', 'kind' => $name, 'player' => playerJson($call->player), 'server' => $call->server,
            'from' => $call->from, 'text' => $call->text]);
        return $refusal ?? true;
    });
}

function playerJson(Player $p): array
{
    return ['name' => $p->name, 'xuid' => $p->xuid, 'server' => $p->server, 'proxy' => $p->proxy, 'fields' => (object) $p->fields];
}

function serverJson(ServerInfo $s): array
{
    return ['id' => $s->id, 'role' => $s->role, 'state' => $s->state, 'mode' => $s->mode, 'tags' => $s->tags,
        'players' => $s->players, 'max' => $s->max, 'fields' => (object) $s->fields];
}

function nowUs(): float
{
    return hrtime(true) / 1000;
}

/** Blocks until --peer is in the table (Welcome.peers or a PeerEvent UP), or exits 2. */
function waitForPeer(Client $c, string $peer, int $timeoutMs): void
{
    if (!$c->waitFor(fn (): bool => isset($c->peers()[$peer]), $timeoutMs / 1000)) {
        fail("peer $peer not in the table after $timeoutMs ms", EXIT_NO_PEER);
    }
}

// ---------------------------------------------------------------------------- set-up

$args = parseArgs($argv);
$mode = strArg($args, 'mode');
if (!in_array($mode, ['echo', 'pingpong', 'flood', 'repl'], true)) {
    fail("--mode must be echo, pingpong, flood or repl, got " . json_encode($mode));
}
$meta = [];
foreach ($args['meta'] ?? [] as $m) {
    $kv = explode('=', $m, 2);
    if (count($kv) !== 2) {
        fail("--meta must be k=v, got " . json_encode($m));
    }
    $meta[$kv[0]] = $kv[1];
}
$opts = [
    'id' => strArg($args, 'id'),
    'role' => strArg($args, 'role', ''),
    'meta' => $meta,
    'topics' => $args['topic'] ?? [],
    'clientName' => 'warpmesh-php/bench-client',
];
if (isset($args['tcp'])) {
    $opts['tcp'] = strArg($args, 'tcp');
    $opts['token'] = strArg($args, 'token', '');
} elseif (isset($args['socket'])) {
    $opts['socket'] = strArg($args, 'socket');
}
$timeoutMs = intArg($args, 'timeout-ms', 10000);
if (isset($args['services'])) {
    $opts['services'] = true;
}
if (isset($args['player-events'])) {
    $opts['playerEvents'] = true;
}

try {
    if (isset($args['server'])) {
        $opts['server'] = parseSettings(strArg($args, 'server'));
    }
    $client = new Client($opts);
    foreach ($args['handle'] ?? [] as $spec) {
        registerHandler($client, $spec);
    }
    $client->connectAndWait(10);
} catch (InvalidArgumentException $e) {
    fail($e->getMessage());
} catch (WarpmeshException $e) {
    fail('connect: ' . $e->getErrorName() . ': ' . $e->getMessage());
}
// Agent errors without an operation (e.g. a flood's sends to a vanished peer): the first of
// each code is printed, the rest counted and summed up at exit.
$errorCounts = [];
$client->onError(static function (WarpmeshException $e) use (&$errorCounts): void {
    $name = $e->getErrorName();
    if (!isset($errorCounts[$name])) {
        $errorCounts[$name] = 0;
        fwrite(STDERR, "bench-client: agent error $name: " . $e->getMessage() . "\n");
    }
    $errorCounts[$name]++;
});
register_shutdown_function(static function () use (&$errorCounts): void {
    foreach ($errorCounts as $name => $n) {
        if ($n > 1) {
            fwrite(STDERR, "bench-client: $n agent errors $name in all\n");
        }
    }
});
// Signal handlers before `ready`: a driver may send SIGTERM as soon as it reads it.
$stop = false;
if (function_exists('pcntl_async_signals')) {
    pcntl_async_signals(true);
    $onSignal = static function () use (&$stop): void {
        $stop = true;
    };
    pcntl_signal(SIGTERM, $onSignal);
    pcntl_signal(SIGINT, $onSignal);
}
out('ready');


/**
 * Waits for input on stdin or the agent socket (or the client's next timer), at most 50 ms.
 *
 * @return bool whether stdin is readable
 */
function waitInput(Client $c, bool $stdinOpen): bool
{
    $r = $stdinOpen ? [STDIN] : [];
    $s = $c->stream();
    if ($s !== null) {
        $r[] = $s;
    }
    $w = $s !== null && $c->wantsWrite() ? [$s] : [];
    if ($r === [] && $w === []) {
        usleep(20_000);
        return false;
    }
    $e = null;
    $n = @stream_select($r, $w, $e, 0, 50_000);
    return $n !== false && $n > 0 && in_array(STDIN, $r, true);
}

// ---------------------------------------------------------------------------- modes

switch ($mode) {
    case 'echo':
        $client->onRequest(static function (IncomingRequest $r) use ($client): string {
            return $r->data === '' ? (string) $client->messagesReceived() : $r->data;
        });
        stream_set_blocking(STDIN, false);
        while (!$stop) {
            $client->poll();
            if (waitInput($client, true)) {
                $chunk = fread(STDIN, 65536);
                if (($chunk === '' || $chunk === false) && feof(STDIN)) {
                    break;
                }
            }
        }
        $client->close('echo done');
        exit(0);

    case 'pingpong':
        $peer = strArg($args, 'peer');
        $count = intArg($args, 'count', null);
        $size = intArg($args, 'size', null);
        $warmup = intArg($args, 'warmup', 0);
        waitForPeer($client, $peer, $timeoutMs);
        $rtt = [];
        for ($i = -$warmup; $i < $count; $i++) {
            $data = random_bytes($size);
            $t0 = nowUs();
            $p = $client->request($peer, $data);
            try {
                $reply = $client->await($p, 60);
            } catch (WarpmeshException $e) {
                fail("request " . ($i + $warmup) . " failed: " . $e->getErrorName() . ': ' . $e->getMessage());
            }
            $t1 = nowUs();
            if ($reply !== $data) {
                fail("reply " . ($i + $warmup) . " differs from its request (" . strlen($reply) . " vs $size bytes)", EXIT_MISMATCH);
            }
            if ($i >= 0) {
                $rtt[] = (int) round($t1 - $t0);
            }
        }
        emit(['mode' => 'pingpong', 'count' => $count, 'rtt_us' => $rtt]);
        $client->close('pingpong done');
        exit(0);

    case 'flood':
        $peer = strArg($args, 'peer');
        $count = intArg($args, 'count', null);
        $size = intArg($args, 'size', null);
        $warmup = intArg($args, 'warmup', 0);
        waitForPeer($client, $peer, $timeoutMs);
        $payload = random_bytes($size);
        // Warm-up: W untimed messages, counted by the peer, before the timed N.
        if ($warmup > 0) {
            floodPhase($client, $peer, $payload, $warmup, $warmup, $timeoutMs);
        }
        $t0 = nowUs();
        $received = floodPhase($client, $peer, $payload, $count, $warmup + $count, $timeoutMs);
        $elapsedMs = (nowUs() - $t0) / 1000;
        emit(['mode' => 'flood', 'count' => $count, 'elapsed_ms' => round($elapsedMs, 3), 'received' => $received - $warmup]);
        $client->close('flood done');
        exit(0);

    case 'repl':
        runRepl($client, $stop);
        exit(0);
}

// ---------------------------------------------------------------------------- flood

/**
 * Sends $n one-way messages to $peer, then asks it for its count until the count reaches
 * $target; returns it. Exits 4 when it is not reached within $timeoutMs, or passes $target.
 */
function floodPhase(Client $client, string $peer, string $payload, int $n, int $target, int $timeoutMs): int
{
    for ($i = 0; $i < $n; $i++) {
        while (!$client->send($peer, $payload, 0, Delivery::RELIABLE_ORDERED)) {
            if (!$client->isReady()) {
                fail("agent connection lost after $i messages: " . ($client->lastError()?->getMessage() ?? ''));
            }
            // The output buffer is full: wait until the socket takes more.
            $s = $client->stream();
            $r = [$s];
            $w = [$s];
            $e = null;
            @stream_select($r, $w, $e, 0, 100_000);
            $client->poll();
        }
    }
    $deadline = hrtime(true) / 1e6 + $timeoutMs;
    $received = -1;
    while (true) {
        $left = $deadline - hrtime(true) / 1e6;
        if ($left <= 0) {
            fail("flood: the peer counted $received of $target messages within $timeoutMs ms", EXIT_FLOOD_TIMEOUT);
        }
        $p = $client->request($peer, '', (int) max(1, min($left, 5000)));
        try {
            $answer = $client->await($p, $left / 1000 + 1);
        } catch (WarpmeshException $e) {
            if ($e->getCode() === \Warpmesh\Agent\Proto\ErrorCode::TIMEOUT) {
                continue;
            }
            fail('flood: count request failed: ' . $e->getErrorName() . ': ' . $e->getMessage());
        }
        $received = (int) $answer;
        if ($received === $target) {
            return $received;
        }
        if ($received > $target) {
            fail("flood: the peer counted $received messages, more than the $target sent", EXIT_FLOOD_TIMEOUT);
        }
        $client->waitFor(static fn (): bool => false, 0.005);
    }
}

// ---------------------------------------------------------------------------- repl

/** @param array<string,string> $meta */
function metaObject(array $meta): object
{
    return (object) $meta;
}

function peerJson(Peer $p): array
{
    return ['id' => $p->id, 'role' => $p->role, 'meta' => metaObject($p->meta), 'topics' => $p->topics];
}

function errorJson(string $tag, WarpmeshException $e): array
{
    return ['ev' => 'error', 'tag' => $tag, 'code' => $e->getErrorName(), 'message' => $e->getMessage()];
}

function settleTo(Pending $p, string $tag, callable $onValue): void
{
    $p->then(static function ($v) use ($onValue, $tag): void {
        emit($onValue($v));
    }, static function (WarpmeshException $e) use ($tag): void {
        emit(errorJson($tag, $e));
    });
}

function runCommand(Client $c, string $line): void
{
    $line = rtrim($line, "\r");
    if (trim($line) === '') {
        return;
    }
    $head = explode(' ', $line, 3);
    $cmd = $head[0];
    $tag = $head[1] ?? '';
    $rest = $head[2] ?? '';
    $result = static fn (): array => ['ev' => 'result', 'tag' => $tag];
    $counted = static fn ($n): array => ['ev' => 'result', 'tag' => $tag, 'count' => (int) $n];
    try {
        switch ($cmd) {
            case 'send':
                [$peer, $text] = array_pad(explode(' ', $rest, 2), 2, '');
                settleTo($c->sendConfirmed($peer, $text), $tag, $result);
                return;
            case 'request':
                [$peer, $text] = array_pad(explode(' ', $rest, 2), 2, '');
                settleTo($c->request($peer, $text), $tag, static fn ($d): array => ['ev' => 'response', 'tag' => $tag, 'data' => $d]);
                return;
            case 'broadcast':
                [$role, $tag2, $text] = array_pad(explode(' ', $rest, 3), 3, '');
                settleTo($c->broadcast($role === '-' ? '' : $role, $tag2 === '-' ? '' : $tag2, $text), $tag, $counted);
                return;
            case 'publish':
                [$topic, $text] = array_pad(explode(' ', $rest, 2), 2, '');
                settleTo($c->publish($topic, $text), $tag, $counted);
                return;
            case 'subscribe':
                settleTo($c->subscribe(trim($rest)), $tag, $result);
                return;
            case 'unsubscribe':
                settleTo($c->unsubscribe(trim($rest)), $tag, $result);
                return;
            case 'meta':
                settleTo($c->setMeta(parseMeta(trim($rest))), $tag, $result);
                return;
            case 'peers':
                settleTo($c->getPeers(), $tag, static fn (array $peers): array => ['ev' => 'peers', 'tag' => $tag,
                    'peers' => array_map('peerJson', $peers)]);
                return;
            case 'join':
                $w = explode(' ', $rest);
                if (count($w) < 1 || count($w) > 3 || $w[0] === '') {
                    throw new InvalidArgumentException('usage: join TAG NAME [XUID|-] [PROXY|-]');
                }
                $any = static fn (?string $x): string => $x === null || $x === '-' ? '' : $x;
                settleTo($c->join($w[0], $any($w[1] ?? null), $any($w[2] ?? null)), $tag, $result);
                return;
            case 'leave':
                settleTo($c->leave(trim($rest)), $tag, $counted);
                return;
            case 'server':
                settleTo($c->setServer(parseSettings(trim($rest))), $tag, $result);
                return;
            case 'locate':
                settleTo($c->locate(trim($rest)), $tag, static fn (?Player $p): array => $p === null
                    ? ['ev' => 'player', 'tag' => $tag, 'found' => false]
                    : ['ev' => 'player', 'tag' => $tag, 'found' => true, 'player' => playerJson($p)]);
                return;
            case 'players':
                $w = explode(' ', $rest);
                if (count($w) !== 3 || preg_match('/^\d+$/D', $w[2]) !== 1) {
                    throw new InvalidArgumentException('usage: players TAG MODE|- SERVER|- LIMIT');
                }
                settleTo($c->listPlayers($w[0] === '-' ? '' : $w[0], $w[1] === '-' ? '' : $w[1], (int) $w[2]), $tag,
                    static fn (PlayerList $l): array => ['ev' => 'players', 'tag' => $tag, 'count' => $l->count,
                        'players' => array_map('playerJson', $l->players)]);
                return;
            case 'servers':
                $w = explode(' ', $rest);
                if (count($w) !== 3) {
                    throw new InvalidArgumentException('usage: servers TAG MODE|- STATE[;STATE]|- TAG2|-');
                }
                settleTo($c->servers($w[0] === '-' ? '' : $w[0], $w[1] === '-' ? [] : explode(';', $w[1]), $w[2] === '-' ? '' : $w[2]), $tag,
                    static fn (array $l): array => ['ev' => 'servers', 'tag' => $tag, 'servers' => array_map('serverJson', $l)]);
                return;
            case 'transfer':
                $w = explode(' ', $rest);
                if (count($w) < 2 || count($w) > 3 || (isset($w[2]) && preg_match('/^\d+$/D', $w[2]) !== 1)) {
                    throw new InvalidArgumentException('usage: transfer TAG PLAYER SERVER|k=v,... [TIMEOUT_MS]');
                }
                $target = str_contains($w[1], '=') ? parseSelector($w[1]) : $w[1];
                settleTo($c->transfer($w[0], $target, isset($w[2]) ? (int) $w[2] : null), $tag,
                    static fn (TransferDone $d): array => ['ev' => 'transfer-done', 'tag' => $tag, 'player' => $d->player,
                        'server' => $d->server, 'from' => $d->from, 'via' => $d->via]);
                return;
            case 'message':
            case 'kick':
                [$player, $text] = array_pad(explode(' ', $rest, 2), 2, '');
                settleTo($cmd === 'message' ? $c->message($player, $text) : $c->kick($player, $text), $tag, $result);
                return;
            default:
                emit(['ev' => 'error', 'tag' => $tag, 'code' => 'BAD_COMMAND', 'message' => "unknown command " . json_encode($cmd)]);
        }
    } catch (InvalidArgumentException $e) {
        emit(['ev' => 'error', 'tag' => $tag, 'code' => 'INVALID_ARGUMENT', 'message' => $e->getMessage()]);
    } catch (WarpmeshException $e) {
        emit(errorJson($tag, $e));
    }
}

function runRepl(Client $c, bool &$stop): void
{
    $c->onRequest(static fn (IncomingRequest $r): string => 're:' . $r->data);
    $c->onMessage(static function (Message $m): void {
        emit(['ev' => 'message', 'from' => $m->from, 'data' => $m->data, 'channel' => $m->channel, 'topic' => $m->topic]);
    });
    $peerEvent = static function (string $ev): Closure {
        return static function (Peer $p, string $reason = '') use ($ev): void {
            emit(['ev' => $ev, 'id' => $p->id, 'role' => $p->role, 'meta' => metaObject($p->meta), 'reason' => $reason]);
        };
    };
    $c->onPeerUp($peerEvent('peer-up'));
    $c->onPeerDown($peerEvent('peer-down'));
    $c->onPeerUpdated($peerEvent('peer-updated'));
    $c->onCoordinator(static function (bool $up, string $address): void {
        emit(['ev' => 'coordinator', 'up' => $up, 'address' => $address]);
    });
    $c->onDisconnected(static function (): void {
        emit(['ev' => 'disconnected']);
    });
    $c->onReconnected(static function (): void {
        emit(['ev' => 'reconnected']);
    });
    $c->onPlayerJoined(static fn (Player $p) => emit(['ev' => 'player-joined', 'player' => playerJson($p)]));
    $c->onPlayerLeft(static fn (Player $p) => emit(['ev' => 'player-left', 'player' => playerJson($p)]));
    $c->onPlayerMoved(static fn (Player $p, string $from) => emit(['ev' => 'player-moved', 'player' => playerJson($p), 'from' => $from]));
    $c->onServerUpdated(static fn (ServerInfo $s) => emit(['ev' => 'server-updated', 'server' => serverJson($s)]));
    $c->onServerRemoved(static fn (string $id) => emit(['ev' => 'server-removed', 'id' => $id]));
    stream_set_blocking(STDIN, false);
    $buf = '';
    $eof = false;
    while (!$stop && !$eof) {
        $c->poll();
        if (!waitInput($c, true)) {
            continue;
        }
        while (true) {
            $chunk = fread(STDIN, 65536);
            if ($chunk === false || $chunk === '') {
                $eof = feof(STDIN);
                break;
            }
            $buf .= $chunk;
        }
        while (($nl = strpos($buf, "\n")) !== false) {
            runCommand($c, substr($buf, 0, $nl));
            $buf = substr($buf, $nl + 1);
        }
    }
    if ($buf !== '') {
        runCommand($c, $buf);
    }
    // Answers to the last commands (bounded by their timeouts), then Goodbye.
    $c->waitFor(static fn (): bool => $c->outstanding() === 0 && !$c->wantsWrite(), 10);
    $c->close('repl done');
}
