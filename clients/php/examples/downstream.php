<?php

declare(strict_types=1);

/*
 * An example downstream server on the network services (what a PocketMine-MP plugin does, as a
 * plain script at 20 ticks per second, each tick calling poll()):
 * - lists itself in the server registry: state "starting", then "lobby" once ready; mode and
 *   capacity from the command line;
 * - announces the players it hosts with join()/leave() (simulated: now and then a player connects
 *   through the proxy, or leaves), so every node can locate them;
 * - a "game" starts when half full (state "in-game": its transfer hook refuses newcomers) and
 *   ends 10 s later (state "lobby");
 * - every 10 s sends one of its players to the least full open server of mode "skywars"
 *   (falling back to lobby-1) and locates a player, printing the typed answer or failure;
 * - prints the network's player and server events.
 *
 *   php clients/php/examples/downstream.php [ID [MODE [MAX [PROXY]]]]   (lobby-1 hub 20 proxy-1)
 * Reaches the agent at WARPMESH_AGENT_SOCKET (default /tmp/warpmesh-agent.sock).
 * Ctrl-C leaves the mesh cleanly (state "stopping" first).
 */

require __DIR__ . '/../autoload.php';

use Warpmesh\Agent\Client;
use Warpmesh\Agent\Player;
use Warpmesh\Agent\ServerInfo;
use Warpmesh\Agent\ServiceCall;
use Warpmesh\Agent\Services;
use Warpmesh\Agent\TransferDone;
use Warpmesh\Agent\WarpmeshException;

const TICK_US = 50_000;          // 20 ticks per second
const EVERY_10S = 200;           // ticks
const GAME_TICKS = 200;

$id = $argv[1] ?? 'lobby-1';
$mode = $argv[2] ?? 'hub';
$max = (int) ($argv[3] ?? 20);
$proxy = $argv[4] ?? 'proxy-1';
$inGame = false;

$client = new Client([
    'id' => $id,
    'role' => 'downstream',
    'server' => ['state' => Services::STARTING, 'mode' => $mode, 'max' => $max],
    'playerEvents' => true,
]);
// Asked after the services checked state and capacity: refuse newcomers during a game.
$client->onTransferRequest(static function (ServiceCall $c) use (&$inGame): bool|string {
    return $inGame ? 'a game is running on this server' : true;
});
$client->onPlayerJoined(static fn (Player $p) => print("+ {$p->name} on {$p->server}\n"));
$client->onPlayerLeft(static fn (Player $p) => print("- {$p->name} left {$p->server}\n"));
$client->onPlayerMoved(static fn (Player $p, string $from) => print("> {$p->name}: $from -> {$p->server}\n"));
$client->onServerUpdated(static fn (ServerInfo $s) => print("server {$s->id}: {$s->state} {$s->mode} {$s->players}/{$s->max}\n"));
$client->onServerRemoved(static fn (string $sid) => print("server $sid left\n"));
$client->onDisconnected(static fn (WarpmeshException $e) => print("agent connection lost: {$e->getMessage()}; reconnecting\n"));

try {
    $client->connectAndWait(10);
} catch (WarpmeshException $e) {
    fwrite(STDERR, "cannot join the mesh: {$e->getErrorName()}: {$e->getMessage()}\n");
    exit(1);
}
// Worlds loaded: open for players.
$client->setServer(['state' => Services::LOBBY]);
echo "$id ($mode, max $max) is open\n";

$running = true;
if (function_exists('pcntl_async_signals')) {
    pcntl_async_signals(true);
    foreach ([SIGINT, SIGTERM] as $sig) {
        pcntl_signal($sig, static function () use (&$running): void {
            $running = false;
        });
    }
}

$failed = static fn (string $what) => static fn (WarpmeshException $e) => print("$what failed: {$e->getErrorName()}: {$e->getMessage()}\n");
$gameEnds = 0;
for ($tick = 0; $running; $tick++) {
    $client->poll();
    $hosted = $client->hostedPlayers();

    // Simulated players: one connects through the proxy every 3 s, one leaves now and then.
    if ($tick % 60 === 59 && count($hosted) < $max && !$inGame) {
        $name = 'Player' . random_int(100, 999);
        $client->join($name, (string) random_int(2535400000000000, 2535499999999999), $proxy)
            ->then(null, $failed("join $name"));
    } elseif ($tick % 170 === 169 && $hosted !== []) {
        $client->leave($hosted[array_rand($hosted)]);
    }

    // Half full: a game starts, and ends GAME_TICKS later.
    if (!$inGame && count($hosted) >= max(2, intdiv($max, 2))) {
        $inGame = true;
        $gameEnds = $tick + GAME_TICKS;
        $client->setServer(['state' => Services::IN_GAME]);
        echo "game started\n";
    } elseif ($inGame && $tick >= $gameEnds) {
        $inGame = false;
        $client->setServer(['state' => Services::LOBBY]);
        echo "game over\n";
    }

    if ($tick % EVERY_10S === EVERY_10S - 1 && $hosted !== [] && $client->isReady()) {
        $who = $hosted[0];
        $client->transfer($who, ['mode' => 'skywars', 'state' => Services::LOBBY, 'fallback' => 'lobby-1'])->then(
            static function (TransferDone $d) use ($client): void {
                // The player left for $d->server (which announces them when they arrive): no longer ours.
                $client->leave($d->player);
                echo "{$d->player} sent to {$d->server} (by {$d->via})\n";
            },
            $failed("transfer of $who"),   // UNKNOWN_PLAYER, NO_SUCH_SERVER, SERVER_FULL, REFUSED, TIMEOUT...
        );
        $client->locate($hosted[array_key_last($hosted)])->then(
            static fn (?Player $p) => print($p === null ? "not found\n" : "{$p->name} is on {$p->server}\n"),
            $failed('locate'),
        );
        $client->listPlayers()->then(static fn ($l) => print("the network has {$l->count} players\n"), $failed('listPlayers'));
    }
    usleep(TICK_US);
}
$client->setServer(['state' => Services::STOPPING]);
$client->poll();
$client->close('server stopping');
echo "$id left the mesh\n";
