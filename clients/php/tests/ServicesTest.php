<?php

declare(strict_types=1);

namespace Warpmesh\Agent\Tests;

use Warpmesh\Agent\Client;
use Warpmesh\Agent\Codec;
use Warpmesh\Agent\Player;
use Warpmesh\Agent\PlayerList;
use Warpmesh\Agent\Proto\AgentMessage;
use Warpmesh\Agent\Proto\Error;
use Warpmesh\Agent\Proto\ErrorCode;
use Warpmesh\Agent\Proto\Player as ProtoPlayer;
use Warpmesh\Agent\Proto\PlayerEvent;
use Warpmesh\Agent\Proto\PlayerResult;
use Warpmesh\Agent\Proto\Result;
use Warpmesh\Agent\Proto\ServerEvent;
use Warpmesh\Agent\Proto\ServerInfo as ProtoServerInfo;
use Warpmesh\Agent\Proto\ServerList;
use Warpmesh\Agent\Proto\ServiceCall as ProtoServiceCall;
use Warpmesh\Agent\Proto\TransferDone as ProtoTransferDone;
use Warpmesh\Agent\ServerInfo;
use Warpmesh\Agent\ServiceCall;
use Warpmesh\Agent\TransferDone;
use Warpmesh\Agent\WarpmeshException;

/** The network services calls against the fake agent: frames written, answers decoded, calls answered. */
final class ServicesTest extends FakeAgentTestCase
{
    /** Connects $c, returns the Hello the fake agent received, and welcomes it. */
    private function connect(Client $c): \Warpmesh\Agent\Proto\Hello
    {
        $c->connect();
        $this->agent->accept();
        $m = $this->agent->recv($c);
        $this->assertSame('hello', $m->getBody());
        $this->agent->welcome();
        $this->pollUntil($c, fn () => $c->isReady());
        return $m->getHello();
    }

    private static function protoPlayer(string $name, string $server, string $proxy = ''): ProtoPlayer
    {
        return (new ProtoPlayer())->setName($name)->setXuid('2535400000000001')->setServer($server)->setProxy($proxy)->setFields(['rank' => 'vip']);
    }

    private static function protoServer(string $id, string $state, int $players, int $max): ProtoServerInfo
    {
        return (new ProtoServerInfo())->setId($id)->setRole('downstream')->setState($state)->setMode('skywars')
            ->setTags(['eu'])->setPlayers($players)->setMax($max)->setFields(['map' => 'islands']);
    }

    private function settle(Client $c, \Warpmesh\Agent\Pending $p): mixed
    {
        $this->pollUntil($c, fn () => $p->isDone());
        return $p->value();
    }

    public function testHelloCarriesTheServicesOptions(): void
    {
        $c = $this->client(['server' => ['state' => 'lobby', 'mode' => 'skywars', 'max' => 50, 'tags' => ['eu']], 'playerEvents' => true]);
        $c->onTransferRequest(fn (ServiceCall $x) => true)->onKick(fn (ServiceCall $x) => true);
        $h = $this->connect($c);
        $this->assertTrue($h->getServices());
        $this->assertTrue($h->getPlayerEvents());
        $s = $h->getServer();
        $this->assertNotNull($s);
        $this->assertSame('lobby', $s->getState());
        $this->assertSame('skywars', $s->getMode());
        $this->assertSame(50, $s->getMax());
        $this->assertTrue($s->getSetMax());
        $this->assertSame(['eu'], iterator_to_array($s->getTags()));
        $this->assertTrue($s->getSetTags());
        $this->assertFalse($s->getSetFields(), 'fields left unset');
        $this->assertSame([ProtoServiceCall\Kind::TRANSFER_REQUEST, ProtoServiceCall\Kind::KICK], iterator_to_array($h->getHandles()));
    }

    public function testWithoutServicesTheHelloSaysNothingAndCallsFailWithServicesOff(): void
    {
        $c = $this->client();
        $h = $this->connect($c);
        $this->assertFalse($h->getServices());
        $this->assertNull($h->getServer());
        foreach ([$c->locate('Steve'), $c->transfer('Steve', 'game-1'), $c->join('Steve'), $c->setServer(['state' => 'lobby'])] as $p) {
            $this->assertSame(ErrorCode::SERVICES_OFF, $p->error()?->getCode());
        }
        $this->assertTrue($this->agent->quiet($c), 'nothing was written');
        $this->expectException(\InvalidArgumentException::class);
        $c->onMove(fn () => true);
    }

    public function testJoinLeaveAndSetServerFrames(): void
    {
        $c = $this->client(['server' => ['state' => 'starting', 'max' => 2]]);
        $this->connect($c);
        $p = $c->join('Steve', '2535400000000001', 'proxy-1', ['rank' => 'vip']);
        $j = $this->agent->recv($c)->getPlayerJoin();
        $this->assertNotSame(0, (int) $j->getId());
        $this->assertSame(['Steve', '2535400000000001', 'proxy-1'], [$j->getName(), $j->getXuid(), $j->getProxy()]);
        $this->assertSame(['rank' => 'vip'], Codec::mapToArray($j->getFields()));
        $this->agent->send(self::agentMsg('Result', (new Result())->setId($j->getId())));
        $this->assertSame(0, $this->settle($c, $p));
        $c->join('Alex');
        $this->agent->recv($c);
        $this->assertSame(['Steve', 'Alex'], $c->hostedPlayers());

        $p = $c->leave('STEVE');
        $l = $this->agent->recv($c)->getPlayerLeave();
        $this->assertSame('STEVE', $l->getPlayer());
        $this->agent->send(self::agentMsg('Result', (new Result())->setId($l->getId())->setCount(1)));
        $this->assertTrue($this->settle($c, $p));
        $p = $c->leave('nobody');
        $l = $this->agent->recv($c)->getPlayerLeave();
        $this->agent->send(self::agentMsg('Result', (new Result())->setId($l->getId())->setCount(0)));
        $this->assertFalse($this->settle($c, $p));
        $this->assertSame(['Alex'], $c->hostedPlayers());

        $c->setServer(['state' => 'lobby', 'fields' => []]);
        $s = $this->agent->recv($c)->getSetServer()->getServer();
        $this->assertSame('lobby', $s->getState());
        $this->assertFalse($s->getSetMax(), 'max unset: keeps its value');
        $this->assertTrue($s->getSetFields(), 'an empty array replaces the fields');
        $this->assertSame(['state' => 'lobby', 'fields' => [], 'max' => 2], $c->serverSettings());
    }

    public function testLocateListPlayersAndServersDecode(): void
    {
        $c = $this->client(['services' => true]);
        $this->connect($c);
        $p = $c->locate('steve');
        $id = $this->agent->recv($c)->getLocate()->getId();
        $this->agent->send(self::agentMsg('PlayerResult', (new PlayerResult())->setId($id)->setFound(true)->setPlayer(self::protoPlayer('Steve', 'lobby-1', 'proxy-1'))));
        $this->assertEquals(new Player('Steve', '2535400000000001', 'lobby-1', 'proxy-1', ['rank' => 'vip']), $this->settle($c, $p));
        $p = $c->locate('Herobrine');
        $id = $this->agent->recv($c)->getLocate()->getId();
        $this->agent->send(self::agentMsg('PlayerResult', (new PlayerResult())->setId($id)));
        $this->assertNull($this->settle($c, $p));

        $p = $c->listPlayers('skywars', '', 2);
        $lp = $this->agent->recv($c)->getListPlayers();
        $this->assertSame(['skywars', '', 2], [$lp->getMode(), $lp->getServer(), $lp->getLimit()]);
        $this->agent->send(self::agentMsg('PlayerList', (new \Warpmesh\Agent\Proto\PlayerList())->setId($lp->getId())->setCount(7)
            ->setPlayers([self::protoPlayer('Steve', 'game-1'), self::protoPlayer('Alex', 'game-1')])));
        $list = $this->settle($c, $p);
        $this->assertInstanceOf(PlayerList::class, $list);
        $this->assertSame(7, $list->count);
        $this->assertSame(['Steve', 'Alex'], array_map(fn (Player $x) => $x->name, $list->players));

        $p = $c->servers('skywars', ['lobby', 'in-game'], 'eu');
        $gs = $this->agent->recv($c)->getGetServers();
        $this->assertSame(['skywars', ['lobby', 'in-game'], 'eu'], [$gs->getMode(), iterator_to_array($gs->getStates()), $gs->getTag()]);
        $this->agent->send(self::agentMsg('ServerList', (new ServerList())->setId($gs->getId())
            ->setServers([self::protoServer('game-1', 'lobby', 2, 16), self::protoServer('game-2', 'in-game', 16, 16)])));
        $servers = $this->settle($c, $p);
        $this->assertEquals(new ServerInfo('game-1', 'downstream', 'lobby', 'skywars', ['eu'], 2, 16, ['map' => 'islands']), $servers[0]);
        $this->assertSame('in-game', $servers[1]->state);
    }

    public function testTransferToAServerAndWithASelector(): void
    {
        $c = $this->client(['services' => true]);
        $this->connect($c);
        $p = $c->transfer('steve', 'game-1', 1500);
        $t = $this->agent->recv($c)->getTransfer();
        $this->assertSame(['steve', 'game-1', 1500], [$t->getPlayer(), $t->getServer(), $t->getTimeoutMs()]);
        $this->assertNull($t->getSelector());
        $this->agent->send(self::agentMsg('TransferDone', (new ProtoTransferDone())->setId($t->getId())->setPlayer('Steve')
            ->setServer('game-1')->setFrom('lobby-1')->setVia('proxy-1')));
        $this->assertEquals(new TransferDone('Steve', 'game-1', 'lobby-1', 'proxy-1'), $this->settle($c, $p));

        $c->transfer('Steve', ['mode' => 'skywars', 'state' => 'lobby', 'tag' => 'eu', 'exclude' => ['game-1'],
            'fallback' => ['mode' => 'hub', 'fallback' => 'lobby-1']]);
        $t = $this->agent->recv($c)->getTransfer();
        $this->assertSame('', $t->getServer());
        $this->assertSame(5000, $t->getTimeoutMs(), 'the default timeout');
        $s = $t->getSelector();
        $this->assertSame(['skywars', ['lobby'], 'eu', ['game-1'], ''],
            [$s->getMode(), iterator_to_array($s->getStates()), $s->getTag(), iterator_to_array($s->getExclude()), $s->getFallbackServer()]);
        $this->assertSame('hub', $s->getFallback()->getMode());
        $this->assertSame('lobby-1', $s->getFallback()->getFallbackServer());
    }

    /** @return array<string,array{int}> */
    public static function transferErrors(): array
    {
        $out = [];
        foreach (['UNKNOWN_PLAYER', 'NO_SUCH_SERVER', 'SERVER_FULL', 'REFUSED', 'TARGET_DOWN', 'TRANSFER_CONFLICT', 'TIMEOUT', 'PEER_DOWN'] as $n) {
            $out[$n] = [constant(ErrorCode::class . '::' . $n)];
        }
        return $out;
    }

    /** @dataProvider transferErrors */
    public function testAFailedTransferCarriesTheAgentsCode(int $code): void
    {
        $c = $this->client(['services' => true]);
        $this->connect($c);
        $p = $c->transfer('Steve', 'game-1');
        $id = $this->agent->recv($c)->getTransfer()->getId();
        $this->agent->send(self::agentMsg('Error', (new Error())->setId($id)->setCode($code)->setMessage('because')));
        $this->pollUntil($c, fn () => $p->isDone());
        $e = $p->error();
        $this->assertInstanceOf(WarpmeshException::class, $e);
        $this->assertSame($code, $e->getCode());
        $this->assertSame(ErrorCode::name($code), $e->getErrorName());
        $this->assertSame('because', $e->getMessage());
    }

    public function testATransferTheAgentNeverAnswersTimesOutLocally(): void
    {
        $c = $this->client(['services' => true, 'timeoutGraceMs' => 100]);
        $this->connect($c);
        $p = $c->transfer('Steve', 'game-1', 200);
        $this->agent->recv($c);
        $this->now += 299;
        $c->poll();
        $this->assertFalse($p->isDone(), 'not before the timeout plus the grace');
        $this->now += 1;
        $c->poll();
        $this->assertSame(ErrorCode::TIMEOUT, $p->error()?->getCode());
    }

    public function testMessageAndKickFrames(): void
    {
        $c = $this->client(['services' => true]);
        $this->connect($c);
        $p = $c->message('Steve', 'hello there');
        $m = $this->agent->recv($c)->getMessagePlayer();
        $this->assertSame(['Steve', 'hello there', 5000], [$m->getPlayer(), $m->getText(), $m->getTimeoutMs()]);
        $this->agent->send(self::agentMsg('Result', (new Result())->setId($m->getId())->setCount(1)));
        $this->assertSame(1, $this->settle($c, $p));
        $p = $c->kick('Ghost', 'bye', 700);
        $k = $this->agent->recv($c)->getKickPlayer();
        $this->assertSame(['Ghost', 'bye', 700], [$k->getPlayer(), $k->getReason(), $k->getTimeoutMs()]);
        $this->agent->send(self::agentMsg('Error', (new Error())->setId($k->getId())->setCode(ErrorCode::UNKNOWN_PLAYER)->setMessage('unknown player')));
        $this->pollUntil($c, fn () => $p->isDone());
        $this->assertSame('UNKNOWN_PLAYER', $p->error()?->getErrorName());
    }

    /** @return array<string,array{\Closure,string}> */
    public static function badArguments(): array
    {
        return [
            'empty player' => [fn (Client $c) => $c->locate(''), 'locate: player'],
            'empty target' => [fn (Client $c) => $c->transfer('Steve', ''), 'transfer: target'],
            'bad timeout' => [fn (Client $c) => $c->transfer('Steve', 'game-1', 0), 'transfer: timeoutMs'],
            'bad state' => [fn (Client $c) => $c->setServer(['state' => 'In Game']), 'setServer: state'],
            'unknown settings key' => [fn (Client $c) => $c->setServer(['players' => 3]), 'setServer: unknown key'],
            'negative max' => [fn (Client $c) => $c->setServer(['max' => -1]), 'setServer: max'],
            'bad selector key' => [fn (Client $c) => $c->transfer('Steve', ['modes' => 'x']), 'transfer: selector: unknown key'],
            'bad fallback' => [fn (Client $c) => $c->transfer('Steve', ['fallback' => 3]), 'transfer: selector: fallback'],
            'negative limit' => [fn (Client $c) => $c->listPlayers('', '', -1), 'listPlayers: limit'],
            'bad kind' => [fn (Client $c) => $c->onServiceCall(9, fn () => true), 'onServiceCall: kind'],
        ];
    }

    /** @dataProvider badArguments */
    public function testBadArgumentsThrowNamingWhatWasWrong(\Closure $call, string $message): void
    {
        $c = $this->client(['services' => true]);
        $this->expectException(\InvalidArgumentException::class);
        $this->expectExceptionMessage($message);
        $call($c);
    }

    public function testABadServerOptionIsRefused(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->expectExceptionMessage('option server: state');
        new Client(['id' => 'x', 'server' => ['state' => 'LOBBY']]);
    }

    private static function call(int $id, int $kind, string $server = '', string $text = '', int $players = 0, int $arriving = 0): AgentMessage
    {
        return self::agentMsg('ServiceCall', (new ProtoServiceCall())->setId($id)->setKind($kind)
            ->setPlayer(self::protoPlayer('Steve', 'lobby-1', 'proxy-1'))->setServer($server)->setFrom('lobby-1')->setText($text)
            ->setPlayers($players)->setArriving($arriving));
    }

    public function testATransferRequestCarriesTheCountsAndARefusalWithoutReasonNamesTheServer(): void
    {
        $c = $this->client(['id' => 'game-1', 'server' => ['state' => 'lobby']]);
        $seen = [];
        $c->onTransferRequest(function (ServiceCall $x) use (&$seen) {
            $seen[] = $x;
            return $x->players + $x->arriving < 6;
        });
        $this->connect($c);
        $this->agent->send(self::call(3, ProtoServiceCall\Kind::TRANSFER_REQUEST, '', '', 5, 2));
        $a = $this->agent->recv($c)->getServiceAnswer();
        $this->assertSame([3, false, 'refused by game-1'], [(int) $a->getId(), $a->getOk(), $a->getReason()]);
        $this->assertSame([5, 2, 'lobby-1'], [$seen[0]->players, $seen[0]->arriving, $seen[0]->from]);
        $this->agent->send(self::call(4, ProtoServiceCall\Kind::TRANSFER_REQUEST, '', '', 3, 2));
        $a = $this->agent->recv($c)->getServiceAnswer();
        $this->assertSame([4, true], [(int) $a->getId(), $a->getOk()]);
    }

    public function testServiceCallsAreAnsweredByTheirHandlers(): void
    {
        $c = $this->client(['id' => 'proxy-1', 'services' => true]);
        $moves = [];
        $c->onMove(function (ServiceCall $x) use (&$moves) {
            $moves[] = $x;
            return null; // answered later
        });
        $c->onPlayerMessage(fn (ServiceCall $x) => $x->text === '' ? 'empty text' : true);
        $c->onKick(fn (ServiceCall $x) => throw new \RuntimeException('kicks are off today'));
        $c->onTransferRequest(fn (ServiceCall $x) => false);
        $c->onTransferRequest(null); // unregistered again
        $h = $this->connect($c);
        $this->assertSame([ProtoServiceCall\Kind::MOVE, ProtoServiceCall\Kind::MESSAGE, ProtoServiceCall\Kind::KICK], iterator_to_array($h->getHandles()));

        $this->agent->send(self::call(7, ProtoServiceCall\Kind::MOVE, 'game-1'));
        $this->agent->send(self::call(8, ProtoServiceCall\Kind::MESSAGE, '', 'hi'));
        $this->agent->send(self::call(9, ProtoServiceCall\Kind::MESSAGE));
        $this->agent->send(self::call(10, ProtoServiceCall\Kind::KICK, '', 'bye'));
        $this->agent->send(self::call(11, ProtoServiceCall\Kind::TRANSFER_REQUEST));
        $answers = [];
        for ($i = 0; $i < 4; $i++) {
            $a = $this->agent->recv($c)->getServiceAnswer();
            $answers[] = [(int) $a->getId(), $a->getOk(), $a->getReason()];
        }
        $this->assertSame([[8, true, ''], [9, false, 'empty text'], [10, false, 'kicks are off today'], [11, false, 'not handled by proxy-1']], $answers);
        $this->assertCount(1, $moves);
        $this->assertEquals(new ServiceCall(7, ServiceCall::MOVE, new Player('Steve', '2535400000000001', 'lobby-1', 'proxy-1', ['rank' => 'vip']),
            'game-1', 'lobby-1', ''), $moves[0]);
        $this->assertTrue($c->answerServiceCall(7, true));
        $a = $this->agent->recv($c)->getServiceAnswer();
        $this->assertSame([7, true], [(int) $a->getId(), $a->getOk()]);
    }

    public function testPlayerAndServerEventsReachTheirCallbacks(): void
    {
        $c = $this->client(['playerEvents' => true]);
        $events = [];
        $c->onPlayerJoined(function (Player $p) use (&$events) {
            $events[] = "joined {$p->name} {$p->server} {$p->fields['rank']}";
        });
        $c->onPlayerMoved(function (Player $p, string $from) use (&$events) {
            $events[] = "moved {$p->name} $from->{$p->server}";
        });
        $c->onPlayerLeft(function (Player $p) use (&$events) {
            $events[] = "left {$p->name}";
        });
        $c->onServerUpdated(function (ServerInfo $s) use (&$events) {
            $events[] = "server {$s->id} {$s->state} {$s->players}/{$s->max}";
        });
        $c->onServerRemoved(function (string $id) use (&$events) {
            $events[] = "removed $id";
        });
        $this->connect($c);
        $this->agent->send(self::agentMsg('PlayerEvent', (new PlayerEvent())->setKind(PlayerEvent\Kind::JOINED)->setPlayer(self::protoPlayer('Steve', 'lobby-1'))));
        $this->agent->send(self::agentMsg('PlayerEvent', (new PlayerEvent())->setKind(PlayerEvent\Kind::MOVED)->setPlayer(self::protoPlayer('Steve', 'game-1'))->setFrom('lobby-1')));
        $this->agent->send(self::agentMsg('PlayerEvent', (new PlayerEvent())->setKind(PlayerEvent\Kind::LEFT)->setPlayer(self::protoPlayer('Steve', 'game-1'))));
        $this->agent->send(self::agentMsg('ServerEvent', (new ServerEvent())->setInfo(self::protoServer('game-1', 'full', 16, 16))));
        $this->agent->send(self::agentMsg('ServerEvent', (new ServerEvent())->setRemoved(true)->setInfo((new ProtoServerInfo())->setId('game-1'))));
        $this->pollUntil($c, function () use (&$events) {
            return count($events) >= 5;
        });
        $this->assertSame(['joined Steve lobby-1 vip', 'moved Steve lobby-1->game-1', 'left Steve', 'server game-1 full 16/16', 'removed game-1'], $events);
    }

    public function testReconnectAnnouncesTheServerAndItsPlayersAgain(): void
    {
        $c = $this->client(['server' => ['state' => 'starting', 'mode' => 'hub']]);
        $this->connect($c);
        $c->join('Steve', '1', 'proxy-1');
        $c->join('Alex', '2');
        $c->join('Bob', '3');
        $c->leave('3'); // by XUID
        for ($i = 0; $i < 4; $i++) {
            $this->agent->recv($c);
        }
        $this->agent->dropConnection();
        $this->pollUntil($c, fn () => !$c->isReady());
        // While disconnected: kept for the next connection.
        $this->assertTrue($c->setServer(['state' => 'lobby', 'max' => 20])->isOk());
        $this->assertTrue($c->join('Dan', '4')->isOk());
        $this->assertFalse($c->leave('nobody')->value());
        $this->now += 100;
        $c->poll();
        $this->agent->accept();
        $h = $this->agent->recv($c)->getHello();
        $this->assertTrue($h->getServices());
        $this->assertSame(['lobby', 'hub', 20], [$h->getServer()->getState(), $h->getServer()->getMode(), $h->getServer()->getMax()]);
        $this->agent->welcome();
        $again = [];
        for ($i = 0; $i < 3; $i++) {
            $j = $this->agent->recv($c)->getPlayerJoin();
            $this->assertSame(0, (int) $j->getId(), 'no answer asked');
            $again[] = "{$j->getName()}/{$j->getXuid()}/{$j->getProxy()}";
        }
        $this->assertSame(['Steve/1/proxy-1', 'Alex/2/', 'Dan/4/'], $again);
    }
}
