<?php

declare(strict_types=1);

/*
 * An example proxy on the network services (the part of a proxy plugin that the services call):
 * - performs the moves the services ask of it: any node's transfer of a player connected through
 *   this proxy arrives here as ServiceCall MOVE (a real proxy would send the player to the
 *   target server; here the move is recorded and printed);
 * - shows messages and disconnects players on request (MESSAGE, KICK);
 * - prints the network's player and server events, and every 10 s the directory's count per
 *   server next to the registry.
 *
 *   php clients/php/examples/proxy.php [ID]     (default proxy-1)
 * Reaches the agent at WARPMESH_AGENT_SOCKET (default /tmp/warpmesh-agent.sock).
 */

require __DIR__ . '/../autoload.php';

use Warpmesh\Agent\Client;
use Warpmesh\Agent\Player;
use Warpmesh\Agent\ServerInfo;
use Warpmesh\Agent\ServiceCall;
use Warpmesh\Agent\WarpmeshException;

const TICK_US = 50_000;
const REPORT_TICKS = 200;

$id = $argv[1] ?? 'proxy-1';
/** @var array<string,string> $movedTo where this proxy last sent each player */
$movedTo = [];

$client = new Client(['id' => $id, 'role' => 'proxy', 'services' => true, 'playerEvents' => true]);
$client->onMove(static function (ServiceCall $c) use ($id, &$movedTo): bool|string {
    if ($c->player->proxy !== $id) {
        return "{$c->player->name} is not connected through $id";
    }
    $movedTo[$c->player->name] = $c->server;
    echo "moving {$c->player->name}: {$c->player->server} -> {$c->server}\n";
    return true;
});
$client->onPlayerMessage(static function (ServiceCall $c): bool {
    echo "[to {$c->player->name}] {$c->text}\n";
    return true;
});
$client->onKick(static function (ServiceCall $c): bool {
    echo "kicking {$c->player->name}: {$c->text}\n";
    return true;
});
$client->onPlayerJoined(static fn (Player $p) => print("+ {$p->name} on {$p->server}\n"));
$client->onPlayerLeft(static fn (Player $p) => print("- {$p->name} left {$p->server}\n"));
$client->onPlayerMoved(static fn (Player $p, string $from) => print("> {$p->name}: $from -> {$p->server}\n"));
$client->onServerRemoved(static fn (string $sid) => print("server $sid left\n"));

try {
    $client->connectAndWait(10);
} catch (WarpmeshException $e) {
    fwrite(STDERR, "cannot join the mesh: {$e->getErrorName()}: {$e->getMessage()}\n");
    exit(1);
}
echo "$id joined the mesh\n";

$running = true;
if (function_exists('pcntl_async_signals')) {
    pcntl_async_signals(true);
    foreach ([SIGINT, SIGTERM] as $sig) {
        pcntl_signal($sig, static function () use (&$running): void {
            $running = false;
        });
    }
}
for ($tick = 0; $running; $tick++) {
    $client->poll();
    if ($tick % REPORT_TICKS === REPORT_TICKS - 1 && $client->isReady()) {
        $client->servers()->then(static function (array $servers): void {
            foreach ($servers as $s) {
                /** @var ServerInfo $s */
                echo "  {$s->id}: {$s->state} {$s->mode} {$s->players}/" . ($s->max === 0 ? '-' : $s->max) . "\n";
            }
        }, static fn (WarpmeshException $e) => print("servers failed: {$e->getErrorName()}\n"));
    }
    usleep(TICK_US);
}
$client->close('proxy stopping');
echo "$id left the mesh\n";
