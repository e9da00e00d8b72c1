<?php

declare(strict_types=1);

/*
 * An example downstream server (what a PocketMine-MP plugin does, as a plain script):
 * - keeps its meta "players" up to date with setMeta(),
 * - publishes its player count on the topic "status" every 5 s,
 * - answers requests from the proxy or other servers:
 *     "where <player>"             -> "yes" when the player is here, else "no"
 *     "transfer <player> <server>" -> "ok: <player> -> <server>" (the player leaves this server)
 *     "players"                    -> the comma-separated player list
 * - prints what happens on the mesh (peers, status of other servers).
 *
 * The loop runs at 20 ticks per second, like a game server; each tick calls poll().
 *
 *   php clients/php/examples/downstream.php [ID]     (default lobby-1)
 * Reaches the agent at WARPMESH_AGENT_SOCKET (default /tmp/warpmesh-agent.sock).
 * Ctrl-C leaves the mesh cleanly.
 */

require __DIR__ . '/../autoload.php';

use Warpmesh\Agent\Client;
use Warpmesh\Agent\IncomingRequest;
use Warpmesh\Agent\Message;
use Warpmesh\Agent\Peer;
use Warpmesh\Agent\WarpmeshException;

const TICK_US = 50_000;           // 20 ticks per second
const STATUS_EVERY_TICKS = 100;   // 5 s
const STATUS_TOPIC = 'status';

$id = $argv[1] ?? 'lobby-1';
/** @var array<string,true> $players the players on this server (simulated) */
$players = ['Steve' => true, 'Alex' => true];

$client = new Client([
    'id' => $id,
    'role' => 'downstream',
    'meta' => ['players' => (string) count($players), 'tags' => 'lobby'],
    'topics' => [STATUS_TOPIC],
]);

$client->onRequest(static function (IncomingRequest $r) use (&$players): string {
    $words = explode(' ', trim($r->data));
    switch ($words[0]) {
        case 'where':
            return isset($players[$words[1] ?? '']) ? 'yes' : 'no';
        case 'transfer':
            [, $player, $server] = array_pad($words, 3, '');
            if (!isset($players[$player]) || $server === '') {
                throw new RuntimeException("cannot transfer " . json_encode($player) . ": not on this server");
            }
            unset($players[$player]);   // a real server would send the transfer packet here
            return "ok: $player -> $server";
        case 'players':
            return implode(',', array_keys($players));
        default:
            throw new RuntimeException('unknown request ' . json_encode($words[0]));
    }
});
$client->onMessage(static function (Message $m): void {
    if ($m->topic === STATUS_TOPIC) {
        echo "status from {$m->from}: {$m->data}\n";
    }
});
$client->onPeerUp(static fn (Peer $p) => print("peer up: {$p->id} ({$p->role})\n"));
$client->onPeerDown(static fn (Peer $p, string $reason) => print("peer down: {$p->id} ($reason)\n"));
$client->onDisconnected(static fn (WarpmeshException $e) => print("agent connection lost: {$e->getMessage()}; reconnecting\n"));
$client->onReconnected(static fn () => print("reconnected\n"));

try {
    $welcome = $client->connectAndWait(10);
} catch (WarpmeshException $e) {
    fwrite(STDERR, "cannot join the mesh: {$e->getErrorName()}: {$e->getMessage()}\n");
    exit(1);
}
echo "$id joined the mesh (UDP port {$welcome->getUdpPort()}); peers: " . implode(', ', array_keys($client->peers())) . "\n";

$running = true;
if (function_exists('pcntl_async_signals')) {
    pcntl_async_signals(true);
    pcntl_signal(SIGINT, static function () use (&$running): void {
        $running = false;
    });
    pcntl_signal(SIGTERM, static function () use (&$running): void {
        $running = false;
    });
}

$lastCount = count($players);
for ($tick = 0; $running; $tick++) {
    $client->poll();

    // Simulated game: now and then a player joins.
    if ($tick % 60 === 59) {
        $players['Player' . random_int(1, 99)] = true;
    }
    if (count($players) !== $lastCount) {
        $lastCount = count($players);
        $client->setMeta(['players' => (string) $lastCount, 'tags' => 'lobby']);
    }
    if ($tick % STATUS_EVERY_TICKS === 0 && $client->isReady()) {
        $client->publish(STATUS_TOPIC, json_encode(['server' => $id, 'players' => $lastCount]))
            ->then(null, static fn (WarpmeshException $e) => print("publish failed: {$e->getErrorName()}\n"));
    }
    usleep(TICK_US);
}
$client->close('server stopping');
echo "$id left the mesh\n";
