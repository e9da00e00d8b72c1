<?php

declare(strict_types=1);

namespace Warpmesh\Agent\Tests;

use Warpmesh\Agent\Client;
use Warpmesh\Agent\Codec;
use Warpmesh\Agent\IncomingRequest as InReq;
use Warpmesh\Agent\Message as InMsg;
use Warpmesh\Agent\Peer;
use Warpmesh\Agent\Pending;
use Warpmesh\Agent\Proto\AgentMessage;
use Warpmesh\Agent\Proto\CoordinatorEvent;
use Warpmesh\Agent\Proto\Error;
use Warpmesh\Agent\Proto\ErrorCode;
use Warpmesh\Agent\Proto\Goodbye;
use Warpmesh\Agent\Proto\IncomingRequest;
use Warpmesh\Agent\Proto\Message;
use Warpmesh\Agent\Proto\Peer as ProtoPeer;
use Warpmesh\Agent\Proto\PeerEvent;
use Warpmesh\Agent\Proto\PeerEvent\Kind;
use Warpmesh\Agent\Proto\Peers;
use Warpmesh\Agent\Proto\Response;
use Warpmesh\Agent\Proto\Result;
use Warpmesh\Agent\Proto\Stats;
use Warpmesh\Agent\Proto\Undelivered;
use Warpmesh\Agent\WarpmeshException;

/** The client against a fake agent played by the test over a real socket. */
final class ClientTest extends FakeAgentTestCase
{
    /** A welcomed client; returns it with the Hello the fake agent received. */
    private function ready(array $opts = [], array $peers = []): Client
    {
        $c = $this->client($opts);
        $c->connect();
        $this->agent->accept();
        $hello = $this->agent->recv($c);
        $this->assertSame('hello', $hello->getBody());
        $this->agent->welcome($peers);
        $this->pollUntil($c, fn () => $c->isReady());
        return $c;
    }

    private static function peer(string $id, string $role = 'downstream', array $meta = [], array $topics = []): ProtoPeer
    {
        return (new ProtoPeer())->setId($id)->setRole($role)->setAddress('127.0.0.1')->setPort(4000)->setMeta($meta)->setTopics($topics);
    }

    public function testHelloCarriesIdentityAndWelcomeMakesTheClientReady(): void
    {
        $c = $this->client(['role' => 'downstream', 'meta' => ['players' => '3'], 'topics' => ['chat', 'status'], 'clientName' => 't/1']);
        $connected = 0;
        $c->onConnected(function () use (&$connected) {
            $connected++;
        });
        $this->assertFalse($c->isReady());
        $c->connect();
        $this->agent->accept();
        $hello = $this->agent->recv($c)->getHello();
        $this->assertSame(1, $hello->getProtocolVersion());
        $this->assertSame('lobby-1', $hello->getId());
        $this->assertSame('downstream', $hello->getRole());
        $this->assertSame(['players' => '3'], Codec::mapToArray($hello->getMeta()));
        $this->assertSame(['chat', 'status'], iterator_to_array($hello->getTopics()));
        $this->assertSame('t/1', $hello->getClient());
        $this->assertSame('', $hello->getToken());
        $c->poll();
        $this->assertFalse($c->isReady(), 'not ready before Welcome');
        $this->agent->welcome([self::peer('proxy-1', 'proxy', ['tags' => 'eu'])]);
        $this->pollUntil($c, fn () => $c->isReady());
        $this->assertSame(1, $connected);
        $this->assertSame(['proxy-1'], array_keys($c->peers()));
        $this->assertSame('proxy', $c->peers()['proxy-1']->role);
        $this->assertSame(['tags' => 'eu'], $c->peers()['proxy-1']->meta);
        $this->assertSame(40000, $c->welcome()->getUdpPort());
    }

    public function testEveryOperationWritesItsFrameAndSettlesWithItsAnswer(): void
    {
        $c = $this->ready();
        $a = $this->agent;

        $this->assertTrue($c->send('proxy-1', 'one-way', 3, 1));
        $s = $a->recv($c)->getSend();
        $this->assertSame([0, 'proxy-1', 'one-way', 3, 1], [(int) $s->getId(), $s->getTo(), $s->getData(), $s->getChannel(), $s->getDelivery()]);

        $ops = [];
        $ops['sendConfirmed'] = $c->sendConfirmed('proxy-1', 'x', 2, 4);
        $m = $a->recv($c)->getSend();
        $this->assertSame([$ops['sendConfirmed']->id, 'proxy-1', 'x', 2, 4], [(int) $m->getId(), $m->getTo(), $m->getData(), $m->getChannel(), $m->getDelivery()]);
        $a->send(self::agentMsg('Result', (new Result())->setId($m->getId())->setCount(1)));

        $ops['request'] = $c->request('proxy-1', 'where Steve', 1500);
        $m = $a->recv($c)->getRequest();
        $this->assertSame([$ops['request']->id, 'proxy-1', 'where Steve', 1500], [(int) $m->getId(), $m->getTo(), $m->getData(), (int) $m->getTimeoutMs()]);
        $a->send(self::agentMsg('Response', (new Response())->setId($m->getId())->setData('lobby-2')));

        $ops['broadcast'] = $c->broadcast('downstream', 'eu', 'hi all', 1, 3);
        $m = $a->recv($c)->getBroadcast();
        $this->assertSame([$ops['broadcast']->id, 'downstream', 'eu', 'hi all', 1, 3], [(int) $m->getId(), $m->getRole(), $m->getTag(), $m->getData(), $m->getChannel(), $m->getDelivery()]);
        $a->send(self::agentMsg('Result', (new Result())->setId($m->getId())->setCount(4)));

        $ops['publish'] = $c->publish('status', 'players=3', 2, 2);
        $m = $a->recv($c)->getPublish();
        $this->assertSame([$ops['publish']->id, 'status', 'players=3', 2, 2], [(int) $m->getId(), $m->getTopic(), $m->getData(), $m->getChannel(), $m->getDelivery()]);
        $a->send(self::agentMsg('Result', (new Result())->setId($m->getId())->setCount(2)));

        $ops['subscribe'] = $c->subscribe('chat');
        $m = $a->recv($c)->getSubscribe();
        $this->assertSame([$ops['subscribe']->id, 'chat'], [(int) $m->getId(), $m->getTopic()]);
        $a->send(self::agentMsg('Result', (new Result())->setId($m->getId())));

        $ops['unsubscribe'] = $c->unsubscribe('chat');
        $m = $a->recv($c)->getUnsubscribe();
        $this->assertSame([$ops['unsubscribe']->id, 'chat'], [(int) $m->getId(), $m->getTopic()]);
        $a->send(self::agentMsg('Result', (new Result())->setId($m->getId())));

        $ops['setMeta'] = $c->setMeta(['players' => '7', 'tags' => 'eu,pvp']);
        $m = $a->recv($c)->getSetMeta();
        $this->assertSame($ops['setMeta']->id, (int) $m->getId());
        $this->assertSame(['players' => '7', 'tags' => 'eu,pvp'], Codec::mapToArray($m->getMeta()));
        $a->send(self::agentMsg('Result', (new Result())->setId($m->getId())));

        $ops['getPeers'] = $c->getPeers();
        $m = $a->recv($c)->getGetPeers();
        $this->assertSame($ops['getPeers']->id, (int) $m->getId());
        $a->send(self::agentMsg('Peers', (new Peers())->setId($m->getId())->setPeers([self::peer('proxy-1', 'proxy', [], ['t'])])));

        $ops['getStats'] = $c->getStats();
        $m = $a->recv($c)->getGetStats();
        $this->assertSame($ops['getStats']->id, (int) $m->getId());
        $a->send(self::agentMsg('Stats', (new Stats())->setId($m->getId())->setMessagesSent(12)->setPeers(1)));

        $ids = array_map(fn (Pending $p) => $p->id, array_values($ops));
        $this->assertSame(count($ids), count(array_unique($ids)), 'distinct ids');
        $this->assertNotContains(0, $ids);

        $this->pollUntil($c, fn () => $ops['getStats']->isDone());
        $this->assertSame(1, $ops['sendConfirmed']->value());
        $this->assertSame('lobby-2', $ops['request']->value());
        $this->assertSame(4, $ops['broadcast']->value());
        $this->assertSame(2, $ops['publish']->value());
        $this->assertSame(0, $ops['subscribe']->value());
        $this->assertSame(0, $ops['unsubscribe']->value());
        $this->assertSame(0, $ops['setMeta']->value());
        $peers = $ops['getPeers']->value();
        $this->assertCount(1, $peers);
        $this->assertInstanceOf(Peer::class, $peers[0]);
        $this->assertSame(['proxy-1', ['t']], [$peers[0]->id, $peers[0]->topics]);
        $this->assertSame(12, (int) $ops['getStats']->value()->getMessagesSent());
        $this->assertSame(['players' => '7', 'tags' => 'eu,pvp'], $c->meta());
        $this->assertSame([], $c->topics());
        $this->assertSame(0, $c->counters()['strayAnswers']);
    }

    /** @return array<string, array{int}> */
    public static function errorCodes(): array
    {
        $codes = [];
        foreach (['TIMEOUT', 'UNKNOWN_PEER', 'PEER_DOWN', 'OVERLOADED', 'REMOTE_ERROR', 'CLOSED', 'INVALID_ARGUMENT', 'DUPLICATE_ID'] as $n) {
            $codes[$n] = [constant(ErrorCode::class . '::' . $n)];
        }
        return $codes;
    }

    /** @dataProvider errorCodes */
    public function testAgentErrorFailsTheRequestWithItsCode(int $code): void
    {
        $c = $this->ready();
        $p = $c->request('proxy-1', 'q');
        $id = $this->agent->recv($c)->getRequest()->getId();
        $failures = [];
        $p->then(fn () => $this->fail('must not succeed'), function (WarpmeshException $e) use (&$failures) {
            $failures[] = $e;
        });
        $this->agent->send(self::agentMsg('Error', (new Error())->setId($id)->setCode($code)->setMessage('why: ' . $code)));
        $this->pollUntil($c, fn () => $p->isDone());
        $this->assertCount(1, $failures);
        $this->assertSame($code, $failures[0]->getCode());
        $this->assertSame(ErrorCode::name($code), $failures[0]->getErrorName());
        $this->assertSame('why: ' . $code, $failures[0]->getMessage());
        $this->assertFalse($failures[0]->fatal);
        $this->assertSame($failures[0], $p->error());
        $this->assertTrue($c->isReady(), 'a non-fatal error keeps the connection');
        try {
            $p->value();
            $this->fail('value() must throw');
        } catch (WarpmeshException $e) {
            $this->assertSame($code, $e->getCode());
        }
    }

    public function testRequestTimesOutLocallyWhenTheAgentNeverAnswers(): void
    {
        $c = $this->ready(['requestTimeoutMs' => 300, 'timeoutGraceMs' => 50]);
        $p = $c->request('proxy-1', 'q');
        $q = $c->request('proxy-1', 'q2', 1000);
        $this->agent->recv($c);
        $this->now += 349;
        $c->poll();
        $this->assertFalse($p->isDone(), 'not before timeout + grace');
        $this->now += 1;
        $c->poll();
        $this->assertSame(ErrorCode::TIMEOUT, $p->error()?->getCode());
        $this->assertFalse($q->isDone(), 'the longer request still waits');
        $this->now += 700;
        $c->poll();
        $this->assertSame(ErrorCode::TIMEOUT, $q->error()?->getCode());
        // A late answer is counted as stray, not delivered twice.
        $this->agent->send(self::agentMsg('Response', (new Response())->setId($p->id)->setData('late')));
        $this->pollUntil($c, fn () => $c->counters()['strayAnswers'] === 1);
        $this->assertSame(ErrorCode::TIMEOUT, $p->error()?->getCode());
    }

    public function testIncomingRequestsAreAnsweredByTheHandler(): void
    {
        $c = $this->ready();
        $seen = [];
        $c->onRequest(function (InReq $r) use (&$seen): ?string {
            $seen[] = [$r->id, $r->from, $r->data];
            return match ($r->data) {
                'boom' => throw new \RuntimeException('no such player'),
                'silent' => throw new \LogicException(''),
                'later' => null,
                default => 're:' . $r->data,
            };
        });
        foreach ([[11, 'where Steve'], [12, 'boom'], [13, 'silent'], [14, 'later']] as [$id, $data]) {
            $this->agent->send(self::agentMsg('IncomingRequest', (new IncomingRequest())->setId($id)->setFrom('proxy-1')->setData($data)));
        }
        $r = $this->agent->recv($c)->getReply();
        $this->assertSame([11, 're:where Steve', ''], [(int) $r->getId(), $r->getData(), $r->getError()]);
        $r = $this->agent->recv($c)->getReply();
        $this->assertSame([12, '', 'no such player'], [(int) $r->getId(), $r->getData(), $r->getError()]);
        $r = $this->agent->recv($c)->getReply();
        $this->assertSame([13, 'LogicException'], [(int) $r->getId(), $r->getError()], 'an empty message still fails the request');
        $this->assertTrue($this->agent->quiet($c), 'a null return answers nothing yet');
        $this->assertTrue($c->reply(14, 'answered later'));
        $r = $this->agent->recv($c)->getReply();
        $this->assertSame([14, 'answered later'], [(int) $r->getId(), $r->getData()]);
        $this->assertTrue($c->replyError(15, ''));
        $this->assertSame('error', $this->agent->recv($c)->getReply()->getError());
        $this->assertSame([11, 'proxy-1', 'where Steve'], $seen[0]);
        $this->assertSame(4, $c->counters()['requestsReceived']);

        $c->onRequest(null);
        $this->agent->send(self::agentMsg('IncomingRequest', (new IncomingRequest())->setId(16)->setFrom('proxy-1')->setData('x')));
        $this->assertSame('no request handler', $this->agent->recv($c)->getReply()->getError());
    }

    public function testEventsAreDispatchedAndTheTableFollowsThem(): void
    {
        $c = $this->ready([], [self::peer('proxy-1', 'proxy')]);
        $log = [];
        $c->onMessage(function (InMsg $m) use (&$log) {
            $log[] = ['message', $m->from, $m->data, $m->channel, $m->delivery, $m->topic];
        });
        $c->onPeerUp(function (Peer $p) use (&$log) {
            $log[] = ['up', $p->id, $p->role];
        });
        $c->onPeerUpdated(function (Peer $p) use (&$log) {
            $log[] = ['updated', $p->id, $p->meta];
        });
        $c->onPeerDown(function (Peer $p, string $reason) use (&$log) {
            $log[] = ['down', $p->id, $reason];
        });
        $c->onCoordinator(function (bool $up, string $addr) use (&$log) {
            $log[] = ['coordinator', $up, $addr];
        });
        $c->onUndelivered(function (string $peer, int $n, string $reason) use (&$log) {
            $log[] = ['undelivered', $peer, $n, $reason];
        });
        $c->onError(function (WarpmeshException $e) use (&$log) {
            $log[] = ['error', $e->getErrorName(), $e->getMessage()];
        });
        $a = $this->agent;
        $a->send(self::agentMsg('Message', (new Message())->setFrom('proxy-1')->setData('hi')->setChannel(2)->setDelivery(4)));
        $a->send(self::agentMsg('Message', (new Message())->setFrom('lobby-2')->setData('3')->setTopic('status')));
        $a->send(self::agentMsg('PeerEvent', (new PeerEvent())->setKind(Kind::UP)->setPeer(self::peer('lobby-2'))));
        $a->send(self::agentMsg('PeerEvent', (new PeerEvent())->setKind(Kind::UPDATED)->setPeer(self::peer('lobby-2', 'downstream', ['players' => '9']))));
        $a->send(self::agentMsg('PeerEvent', (new PeerEvent())->setKind(Kind::DOWN)->setPeer(self::peer('proxy-1', 'proxy'))->setReason('expired')));
        $a->send(self::agentMsg('CoordinatorEvent', (new CoordinatorEvent())->setUp(false)->setAddress('127.0.0.1:7000')));
        $a->send(self::agentMsg('Undelivered', (new Undelivered())->setPeer('proxy-1')->setCount(5)->setReason('peer down')));
        $a->send(self::agentMsg('Error', (new Error())->setCode(ErrorCode::UNKNOWN_PEER)->setMessage('no peer "x"')));
        $this->pollUntil($c, function () use (&$log) {
            return count($log) === 8;
        });
        $this->assertSame([
            ['message', 'proxy-1', 'hi', 2, 4, ''],
            ['message', 'lobby-2', '3', 0, 0, 'status'],
            ['up', 'lobby-2', 'downstream'],
            ['updated', 'lobby-2', ['players' => '9']],
            ['down', 'proxy-1', 'expired'],
            ['coordinator', false, '127.0.0.1:7000'],
            ['undelivered', 'proxy-1', 5, 'peer down'],
            ['error', 'UNKNOWN_PEER', 'no peer "x"'],
        ], $log);
        $this->assertSame(['lobby-2'], array_keys($c->peers()));
        $this->assertSame(['players' => '9'], $c->peers()['lobby-2']->meta);
        $this->assertSame(2, $c->counters()['messagesReceived']);
        $this->assertTrue($c->isReady());
    }

    public function testFramesSplitAcrossReadsAndManyFramesInOneRead(): void
    {
        $c = $this->ready();
        $got = [];
        $c->onMessage(function (InMsg $m) use (&$got) {
            $got[] = $m->data;
        });
        $bytes = '';
        for ($i = 0; $i < 50; $i++) {
            $b = self::agentMsg('Message', (new Message())->setFrom('p')->setData(str_repeat(chr(65 + $i % 26), $i * 7)))->serializeToString();
            $bytes .= Codec::varint(strlen($b)) . $b;
        }
        // A 300-byte message whose length prefix itself is split (two-byte varint).
        $big = self::agentMsg('Message', (new Message())->setFrom('p')->setData(str_repeat('z', 300)))->serializeToString();
        $bytes .= Codec::varint(strlen($big)) . $big;
        // Byte by byte for the first 400 bytes, polling between each, then the rest in one write.
        for ($i = 0; $i < 400; $i++) {
            $this->agent->sendRaw($bytes[$i]);
            $c->poll();
        }
        $this->agent->sendRaw(substr($bytes, 400));
        $this->pollUntil($c, function () use (&$got) {
            return count($got) === 51;
        });
        for ($i = 0; $i < 50; $i++) {
            $this->assertSame(str_repeat(chr(65 + $i % 26), $i * 7), $got[$i]);
        }
        $this->assertSame(str_repeat('z', 300), $got[50]);
        $this->assertSame(0, $c->counters()['badFrames']);
    }

    public function testUndecodableFrameIsDroppedAndCounted(): void
    {
        $c = $this->ready();
        $got = [];
        $c->onMessage(function (InMsg $m) use (&$got) {
            $got[] = $m->data;
        });
        $this->agent->sendRaw("\x04\x12\x02\x12\x05");  // Message whose field claims 5 bytes of 0
        $this->agent->send(self::agentMsg('Message', (new Message())->setFrom('p')->setData('after')));
        $this->pollUntil($c, function () use (&$got) {
            return $got !== [];
        });
        $this->assertSame(['after'], $got);
        $this->assertSame(1, $c->counters()['badFrames']);
        $this->assertTrue($c->isReady());
    }

    public function testReconnectsWithCurrentStateAndFailsOutstandingWithClosed(): void
    {
        $c = $this->ready(['meta' => ['players' => '1'], 'topics' => ['chat']], [self::peer('proxy-1')]);
        $events = [];
        $c->onDisconnected(function (WarpmeshException $why) use (&$events) {
            $events[] = 'disconnected';
        });
        $c->onReconnected(function () use (&$events) {
            $events[] = 'reconnected';
        });
        $p = $c->request('proxy-1', 'q');
        $this->agent->recv($c);
        $this->agent->dropConnection();
        $this->pollUntil($c, fn () => !$c->isReady());
        $this->assertSame(['disconnected'], $events);
        $this->assertSame(ErrorCode::CLOSED, $p->error()?->getCode());
        $this->assertSame([], $c->peers(), 'the table is unknown while disconnected');

        // While disconnected: send refused, requests fail at once, state changes are kept for the next Hello.
        $this->assertFalse($c->send('proxy-1', 'x'));
        $this->assertSame(ErrorCode::CLOSED, $c->request('proxy-1', 'x')->error()?->getCode());
        $this->assertTrue($c->setMeta(['players' => '2'])->isOk());
        $this->assertTrue($c->subscribe('status')->isOk());
        $this->assertTrue($c->unsubscribe('chat')->isOk());

        $attempts = $c->counters()['connectAttempts'];
        $this->now += 99;
        $c->poll();
        $this->assertSame($attempts, $c->counters()['connectAttempts'], 'no attempt before 100 ms');
        $this->now += 1;
        $c->poll();
        $this->assertSame($attempts + 1, $c->counters()['connectAttempts']);
        $this->agent->accept();
        $hello = $this->agent->recv($c)->getHello();
        $this->assertSame('lobby-1', $hello->getId());
        $this->assertSame(['players' => '2'], Codec::mapToArray($hello->getMeta()));
        $this->assertSame(['status'], iterator_to_array($hello->getTopics()));
        $this->agent->welcome([self::peer('proxy-1')]);
        $this->pollUntil($c, fn () => $c->isReady());
        $this->assertSame(['disconnected', 'reconnected'], $events);
        $this->assertSame(['proxy-1'], array_keys($c->peers()));
        $this->assertSame(1, $c->counters()['reconnects']);
        $this->assertTrue($c->send('proxy-1', 'resumed'));
        $this->assertSame('resumed', $this->agent->recv($c)->getSend()->getData());
    }

    public function testReconnectBackoffDoublesToTheMaximumAndResetsOnWelcome(): void
    {
        $c = $this->ready(['reconnectMinMs' => 100, 'reconnectMaxMs' => 400]);
        $path = $this->agent->path;
        $this->agent->close();              // the agent is gone: connects fail
        $this->pollUntil($c, fn () => !$c->isReady());
        $at = [];
        $start = $this->now;
        for ($t = 0; $t <= 2000; $t += 10) {
            $this->now = $start + $t;
            $before = $c->counters()['connectAttempts'];
            $c->poll();
            if ($c->counters()['connectAttempts'] > $before) {
                $at[] = $t;
            }
        }
        $this->assertSame([100, 300, 700, 1100, 1500, 1900], $at, 'delays 100, 200, 400, 400, ...');
        $this->assertSame(ErrorCode::CLOSED, $c->lastError()?->getCode());
        $this->assertStringContainsString($path, $c->lastError()->getMessage());
    }

    public function testCloseSendsGoodbyeAndStopsReconnecting(): void
    {
        $c = $this->ready();
        $p = $c->request('proxy-1', 'q');
        $this->agent->recv($c);
        $c->close('shutting down', 0.05);
        $this->assertTrue($c->isClosed());
        $this->assertSame('shutting down', $this->agent->recv()->getGoodbye()->getReason());
        $this->assertSame(ErrorCode::CLOSED, $p->error()?->getCode());
        $this->assertFalse($c->send('proxy-1', 'x'));
        $this->now += 10_000;
        $c->poll();
        $this->assertSame(1, $c->counters()['connectAttempts']);
        try {
            $c->connectAndWait(1);
            $this->fail('connectAndWait after close must throw');
        } catch (WarpmeshException $e) {
            $this->assertSame(ErrorCode::CLOSED, $e->getCode());
        }
        $this->expectException(WarpmeshException::class);
        $c->connect();
    }

    public function testAgentGoodbyeIsADropAndTheClientReconnects(): void
    {
        $c = $this->ready();
        $this->agent->send(self::agentMsg('Goodbye', (new Goodbye())->setReason('agent stopping')));
        $this->pollUntil($c, fn () => !$c->isReady());
        $this->assertStringContainsString('agent stopping', $c->lastError()->getMessage());
        $this->assertFalse($c->isClosed());
    }

    public function testOversizedFrameFromTheAgentClosesTheConnection(): void
    {
        $c = $this->ready();
        $errors = [];
        $c->onError(function (WarpmeshException $e) use (&$errors) {
            $errors[] = $e;
        });
        $p = $c->request('proxy-1', 'q');
        $this->agent->recv($c);
        $this->agent->sendRaw(Codec::varint(1_052_673) . 'xxxx');   // one byte above the maximum
        $this->pollUntil($c, fn () => !$c->isReady());
        $this->assertCount(1, $errors);
        $this->assertSame(ErrorCode::TOO_LARGE, $errors[0]->getCode());
        $this->assertTrue($errors[0]->fatal);
        $this->assertSame(ErrorCode::CLOSED, $p->error()?->getCode());
        $this->assertFalse($c->isClosed(), 'it will reconnect');
    }

    public function testFrameAtTheMaximumIsAccepted(): void
    {
        $c = $this->ready();
        $got = null;
        $c->onMessage(function (InMsg $m) use (&$got) {
            $got = $m->data;
        });
        // AgentMessage{Message{from "p", data: n bytes}} of exactly 1,052,672 bytes: find n.
        $n = 1_052_672 - 20;
        $build = fn (int $n) => self::agentMsg('Message', (new Message())->setFrom('p')->setData(str_repeat('d', $n)))->serializeToString();
        while (strlen($build($n)) < 1_052_672) {
            $n++;
        }
        while (strlen($build($n)) > 1_052_672) {
            $n--;
        }
        $b = $build($n);
        $this->assertSame(1_052_672, strlen($b));
        $this->agent->sendRaw(Codec::varint(strlen($b)) . $b);
        $this->pollUntil($c, function () use (&$got) {
            return $got !== null;
        });
        $this->assertSame($n, strlen($got));
        $this->assertTrue($c->isReady());
    }

    public function testFatalErrorBeforeWelcomeMakesConnectAndWaitThrow(): void
    {
        $c = $this->client();
        $c->connect();
        $this->agent->accept();
        $this->agent->recv($c);
        $this->agent->send(self::agentMsg('Error', (new Error())->setCode(ErrorCode::DUPLICATE_NODE)->setMessage('lobby-1 is live elsewhere')->setFatal(true)));
        try {
            $c->connectAndWait(2);
            $this->fail('connectAndWait must throw');
        } catch (WarpmeshException $e) {
            $this->assertSame(ErrorCode::DUPLICATE_NODE, $e->getCode());
            $this->assertTrue($e->fatal);
        }
        $this->assertFalse($c->isReady());
    }

    public function testConnectAndWaitThrowsClosedWhenNoAgentListens(): void
    {
        $c = $this->client(['socket' => sys_get_temp_dir() . '/wm-php-none-' . getmypid() . '.sock', 'reconnect' => false]);
        try {
            $c->connectAndWait(1);
            $this->fail('must throw');
        } catch (WarpmeshException $e) {
            $this->assertSame(ErrorCode::CLOSED, $e->getCode());
            $this->assertStringContainsString('cannot connect', $e->getMessage());
        }
        $this->expectException(WarpmeshException::class);
        $c->connect();
    }

    public function testConnectWithoutReconnectThrowsAtOnce(): void
    {
        $c = $this->client(['socket' => sys_get_temp_dir() . '/wm-php-none-' . getmypid() . '.sock', 'reconnect' => false]);
        $this->expectException(WarpmeshException::class);
        $this->expectExceptionCode(ErrorCode::CLOSED);
        $c->connect();
    }

    public function testOperationsBeforeWelcomeFailOrAreKeptForHello(): void
    {
        $c = $this->client();
        $this->assertFalse($c->send('proxy-1', 'x'));
        $this->assertSame(ErrorCode::CLOSED, $c->request('proxy-1', 'x')->error()?->getCode());
        $this->assertSame(ErrorCode::CLOSED, $c->getPeers()->error()?->getCode());
        $this->assertFalse($c->reply(1, 'x'));
        $c->setMeta(['players' => '4']);
        $c->subscribe('chat');
        $c->connect();
        $this->agent->accept();
        $hello = $this->agent->recv($c)->getHello();
        $this->assertSame(['players' => '4'], Codec::mapToArray($hello->getMeta()));
        $this->assertSame(['chat'], iterator_to_array($hello->getTopics()));
        $this->assertSame(1, $c->counters()['sendRefused']);
    }

    public function testOutputBufferBoundRefusesSendsUntilTheAgentReads(): void
    {
        $c = $this->ready(['maxOutputBuffer' => 65536]);
        $payload = str_repeat('p', 1000);
        $accepted = 0;
        // The kernel's socket buffers take some first; the bound applies after them.
        for ($i = 0; $i < 100_000 && $c->send('proxy-1', $payload); $i++) {
            $accepted++;
        }
        $this->assertLessThan(100_000, $accepted, 'send() returned false at the bound');
        $this->assertLessThanOrEqual(65536, $c->bufferedBytes());
        $this->assertGreaterThan(65536 - 1100, $c->bufferedBytes());
        $p = $c->request('proxy-1', $payload);
        $this->assertSame(ErrorCode::OVERLOADED, $p->error()?->getCode());
        $this->assertGreaterThan(0, $c->counters()['sendRefused']);
        // The agent reads everything: all accepted frames arrive, then sends work again.
        $received = 0;
        $deadline = microtime(true) + 5;
        $expected = $accepted * strlen(Codec::sendFrame(0, 'proxy-1', $payload, 0, 0)) + 0;
        while ($received < $expected && microtime(true) < $deadline) {
            $received += $this->agent->drain();
            $c->poll();
        }
        $this->assertSame($expected, $received, 'every accepted frame was written, none of the refused');
        $this->assertTrue($c->send('proxy-1', 'again'));
    }

    public function testMaxPendingBoundFailsWithOverloaded(): void
    {
        $c = $this->ready(['maxPending' => 2]);
        $a = $c->request('proxy-1', '1');
        $b = $c->request('proxy-1', '2');
        $x = $c->request('proxy-1', '3');
        $this->assertFalse($a->isDone());
        $this->assertFalse($b->isDone());
        $this->assertSame(ErrorCode::OVERLOADED, $x->error()?->getCode());
        $this->assertSame(0, $x->id, 'never reached the wire');
    }

    public function testTooLargeOutgoingFrameThrowsAtTheCaller(): void
    {
        $c = $this->ready();
        $this->agent->welcome();  // ignored: a second Welcome is counted as bad
        $this->expectException(WarpmeshException::class);
        $this->expectExceptionCode(ErrorCode::TOO_LARGE);
        $c->send('proxy-1', str_repeat('x', 1_052_672));
    }

    public function testRequestSyncAndAwait(): void
    {
        $c = $this->ready();
        $c->onRequest(fn (InReq $r) => 'unused');
        // requestSync blocks; the answer must already be on its way: queue it after the request's frame is read.
        $p = $c->request('proxy-1', 'q');
        $id = $this->agent->recv($c)->getRequest()->getId();
        $this->agent->send(self::agentMsg('Response', (new Response())->setId($id)->setData('pong')));
        $this->assertSame('pong', $c->await($p, 2));
        $q = $c->request('proxy-1', 'never answered', 60_000);
        try {
            $c->await($q, 0.05);
            $this->fail('await must time out');
        } catch (WarpmeshException $e) {
            $this->assertSame(ErrorCode::TIMEOUT, $e->getCode());
        }
        $this->expectException(\LogicException::class);
        $q->value();
    }

    public function testRequestSyncFailsWithTheAgentsError(): void
    {
        $c = $this->ready();
        // Pre-answer the request id the client will use next (ids count from 1: Hello has none).
        $this->agent->send(self::agentMsg('Error', (new Error())->setId(1)->setCode(ErrorCode::UNKNOWN_PEER)->setMessage('no such peer')));
        try {
            $c->requestSync('ghost', 'q', 500);
            $this->fail('requestSync must throw');
        } catch (WarpmeshException $e) {
            $this->assertSame(ErrorCode::UNKNOWN_PEER, $e->getCode());
        }
    }

    public function testWaitForReturnsFalseAtItsTimeout(): void
    {
        $c = $this->ready();
        $this->assertFalse($c->waitFor(fn () => false, 0.05));
        $this->assertTrue($c->waitFor(fn () => true, 0.05));
    }

    public function testTcpWithTokenCarriesTheTokenInHello(): void
    {
        $tcp = new FakeAgent(true);
        try {
            $c = new Client(['id' => 'lobby-1', 'tcp' => $tcp->tcp, 'token' => 's3cret', 'clock' => fn (): float => $this->now]);
            $this->clients[] = $c;
            $tcp->client = $c;
            $c->connect();
            $tcp->accept();
            $hello = $tcp->recv($c)->getHello();
            $this->assertSame(['lobby-1', 's3cret'], [$hello->getId(), $hello->getToken()]);
            $tcp->welcome();
            $this->pollUntil($c, fn () => $c->isReady());
            $this->assertTrue($c->send('proxy-1', 'over tcp'));
            $this->assertSame('over tcp', $tcp->recv($c)->getSend()->getData());
        } finally {
            $tcp->close();
        }
    }

    public function testWrongTokenFatalErrorIsReported(): void
    {
        $tcp = new FakeAgent(true);
        try {
            $c = new Client(['id' => 'lobby-1', 'tcp' => $tcp->tcp, 'token' => 'wrong', 'reconnect' => false]);
            $this->clients[] = $c;
            $tcp->client = $c;
            $c->connect();
            $tcp->accept();
            $tcp->recv($c);
            $tcp->send(self::agentMsg('Error', (new Error())->setCode(ErrorCode::UNAUTHORIZED)->setMessage('bad token')->setFatal(true)));
            try {
                $c->connectAndWait(2);
                $this->fail('must throw');
            } catch (WarpmeshException $e) {
                $this->assertSame('UNAUTHORIZED', $e->getErrorName());
            }
            $this->assertTrue($c->isClosed(), 'reconnect off: closed');
        } finally {
            $tcp->close();
        }
    }

    /** @return array<string, array{array<string,mixed>, string}> */
    public static function badOptions(): array
    {
        return [
            'id with a space' => [['id' => 'a b'], 'option id'],
            'id too long' => [['id' => str_repeat('a', 65)], 'option id'],
            'tcp without token' => [['id' => 'a', 'tcp' => '127.0.0.1:1'], 'option token'],
            'tcp without port' => [['id' => 'a', 'tcp' => 'localhost', 'token' => 't'], 'option tcp'],
            'meta key' => [['id' => 'a', 'meta' => ['a b' => 'x']], 'option meta'],
            'meta value too long' => [['id' => 'a', 'meta' => ['k' => str_repeat('v', 129)]], 'option meta'],
            'too many meta pairs' => [['id' => 'a', 'meta' => array_fill_keys(array_map(fn ($i) => "k$i", range(1, 33)), 'v')], 'option meta'],
            'empty topic' => [['id' => 'a', 'topics' => ['']], 'option topics'],
            'unknown option' => [['id' => 'a', 'sockets' => 'x'], 'unknown option'],
            'zero timeout' => [['id' => 'a', 'requestTimeoutMs' => 0], 'option requestTimeoutMs'],
            'max below min backoff' => [['id' => 'a', 'reconnectMinMs' => 500, 'reconnectMaxMs' => 100], 'option reconnectMaxMs'],
            'wrong type' => [['id' => 'a', 'reconnect' => 'yes'], 'invalid option type'],
            'missing id' => [['role' => 'proxy'], 'option id'],
        ];
    }

    /**
     * @dataProvider badOptions
     * @param array<string,mixed> $opts
     */
    public function testInvalidOptionsThrowNamingTheOption(array $opts, string $named): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->expectExceptionMessage($named);
        new Client($opts);
    }

    public function testCallerMistakesInOperationsThrow(): void
    {
        $c = $this->ready();
        foreach ([
            fn () => $c->send('p', 'x', 16),
            fn () => $c->send('p', 'x', 0, 5),
            fn () => $c->request('p', 'x', 0),
            fn () => $c->publish('', 'x'),
            fn () => $c->subscribe(str_repeat('t', 65)),
            fn () => $c->setMeta(['players' => 3]),
        ] as $i => $op) {
            try {
                $op();
                $this->fail("operation $i must throw");
            } catch (\InvalidArgumentException) {
                $this->addToAssertionCount(1);
            }
        }
        $this->assertTrue($this->agent->quiet($c), 'nothing was written');
    }

    public function testSocketPathDefaultsToTheAgentsVariable(): void
    {
        $old = getenv('WARPMESH_AGENT_SOCKET');
        putenv('WARPMESH_AGENT_SOCKET=' . $this->agent->path);
        try {
            $c = new Client(['id' => 'lobby-1']);
            $this->clients[] = $c;
            $this->agent->client = $c;
            $c->connect();
            $this->agent->accept();
            $this->assertSame('lobby-1', $this->agent->recv($c)->getHello()->getId());
        } finally {
            putenv($old === false ? 'WARPMESH_AGENT_SOCKET' : "WARPMESH_AGENT_SOCKET=$old");
        }
        putenv('WARPMESH_AGENT_SOCKET');
        $this->assertSame('/tmp/warpmesh-agent.sock', \Warpmesh\Agent\ClientOptions::fromArray(['id' => 'x'])->socketPath());
    }

    public function testMessagesAreCountedWithoutACallbackAndUnusualOnesTakeTheGeneralPath(): void
    {
        $c = $this->ready();
        for ($i = 0; $i < 3; $i++) {
            $this->agent->send(self::agentMsg('Message', (new Message())->setFrom('p')->setData("m$i")));
        }
        $this->pollUntil($c, fn () => $c->messagesReceived() === 3);
        $got = [];
        $c->onMessage(function (InMsg $m) use (&$got) {
            $got[] = [$m->from, $m->data];
        });
        // Message{from "p", data "x", unknown field 9}: not the in-place shape, decoded by the general path.
        $body = "\x0a\x01p\x12\x01x\x48\x07";
        $this->agent->sendRaw(Codec::varint(strlen($body) + 2) . "\x12" . chr(strlen($body)) . $body);
        $this->pollUntil($c, function () use (&$got) {
            return count($got) === 1;
        });
        $this->assertSame([['p', 'x']], $got);
        $this->assertSame(4, $c->counters()['messagesReceived']);
        $this->assertSame(0, $c->counters()['badFrames']);
    }

    public function testFatalErrorAfterWelcomeDropsAndReconnects(): void
    {
        $c = $this->ready();
        $seen = [];
        $c->onError(function (WarpmeshException $e) use (&$seen) {
            $seen[] = 'error ' . $e->getErrorName();
        });
        $c->onDisconnected(function (WarpmeshException $e) use (&$seen) {
            $seen[] = 'disconnected ' . $e->getErrorName();
        });
        $p = $c->request('proxy-1', 'q');
        $this->agent->recv($c);
        $this->agent->send(self::agentMsg('Error', (new Error())->setCode(ErrorCode::SLOW_CLIENT)->setMessage('buffer limit')->setFatal(true)));
        $this->pollUntil($c, fn () => !$c->isReady());
        $this->assertSame(['error SLOW_CLIENT', 'disconnected SLOW_CLIENT'], $seen);
        $this->assertSame(ErrorCode::CLOSED, $p->error()?->getCode());
        $this->assertSame(ErrorCode::SLOW_CLIENT, $p->error()->getPrevious()?->getCode(), 'the cause is kept');
        $this->now += 100;
        $c->poll();
        $this->agent->accept();
        $this->assertSame('hello', $this->agent->recv($c)->getBody());
    }
}
