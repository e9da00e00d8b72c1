<?php

declare(strict_types=1);

namespace Warpmesh\Agent\Tests;

use PHPUnit\Framework\TestCase;
use Warpmesh\Agent\Codec;
use Warpmesh\Agent\Proto\AgentMessage;
use Warpmesh\Agent\Proto\ClientMessage;
use Warpmesh\Agent\Proto\CoordinatorEvent;
use Warpmesh\Agent\Proto\Error;
use Warpmesh\Agent\Proto\ErrorCode;
use Warpmesh\Agent\Proto\IncomingRequest;
use Warpmesh\Agent\Proto\Message;
use Warpmesh\Agent\Proto\Peer;
use Warpmesh\Agent\Proto\PeerEvent;
use Warpmesh\Agent\Proto\PeerEvent\Kind;
use Warpmesh\Agent\Proto\Peers;
use Warpmesh\Agent\Proto\Response;
use Warpmesh\Agent\Proto\Result;

/** tools/bench-client.php as a real process against the fake agent: the contract's output, literally. */
final class BenchClientTest extends TestCase
{
    private FakeAgent $agent;
    /** @var resource|null */
    private $proc = null;
    /** @var array<int,resource> */
    private array $pipes = [];
    private string $outBuf = '';

    protected function setUp(): void
    {
        $this->agent = new FakeAgent();
    }

    protected function tearDown(): void
    {
        if ($this->proc !== null) {
            $st = proc_get_status($this->proc);
            if ($st['running']) {
                proc_terminate($this->proc, 9);
            }
            foreach ($this->pipes as $p) {
                if (is_resource($p)) {
                    fclose($p);
                }
            }
            proc_close($this->proc);
        }
        $this->agent->close();
    }

    /** @param list<string> $args */
    private function start(array $args): void
    {
        $cmd = array_merge([PHP_BINARY, __DIR__ . '/../tools/bench-client.php', '--socket', $this->agent->path], $args);
        $this->proc = proc_open($cmd, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $this->pipes);
        stream_set_blocking($this->pipes[1], false);
        stream_set_blocking($this->pipes[2], false);
    }

    private function line(float $timeout = 10.0): string
    {
        $deadline = microtime(true) + $timeout;
        while (($nl = strpos($this->outBuf, "\n")) === false) {
            if (microtime(true) > $deadline) {
                $this->fail('no line from bench-client; stderr: ' . stream_get_contents($this->pipes[2]));
            }
            $r = [$this->pipes[1]];
            $w = $e = null;
            if (@stream_select($r, $w, $e, 0, 20_000) > 0) {
                $chunk = fread($this->pipes[1], 65536);
                if ($chunk === '' && feof($this->pipes[1])) {
                    $this->fail('bench-client closed stdout; stderr: ' . stream_get_contents($this->pipes[2]));
                }
                $this->outBuf .= $chunk;
            }
        }
        $line = substr($this->outBuf, 0, $nl);
        $this->outBuf = substr($this->outBuf, $nl + 1);
        return $line;
    }

    /** @return array<string,mixed> */
    private function json(): array
    {
        $l = $this->line();
        $v = json_decode($l, true);
        $this->assertIsArray($v, "not a JSON object: $l");
        return $v;
    }

    private function exitCode(float $timeout = 10.0): int
    {
        $deadline = microtime(true) + $timeout;
        while (true) {
            $st = proc_get_status($this->proc);
            if (!$st['running']) {
                return $st['exitcode'];
            }
            if (microtime(true) > $deadline) {
                $this->fail('bench-client did not exit');
            }
            usleep(5000);
        }
    }

    private static function peer(string $id, string $role = 'proxy', array $meta = []): Peer
    {
        return (new Peer())->setId($id)->setRole($role)->setAddress('127.0.0.1')->setPort(4000)->setMeta($meta);
    }

    private static function msg(string $field, object $body): AgentMessage
    {
        return (new AgentMessage())->{'set' . $field}($body);
    }

    /** Accepts, checks Hello, welcomes; returns the Hello's ClientMessage. */
    private function welcome(array $peers = []): ClientMessage
    {
        $this->agent->accept(10);
        $hello = $this->agent->recv(null, 10);
        $this->agent->welcome($peers);
        return $hello;
    }

    public function testReplPrintsEveryResultAndEventAsOneJsonLine(): void
    {
        $this->start(['--id', 'lobby-1', '--role', 'downstream', '--topic', 'chat', '--topic', 'status', '--meta', 'players=0', '--mode', 'repl']);
        $hello = $this->welcome([self::peer('proxy-1')])->getHello();
        $this->assertSame(['lobby-1', 'downstream', ['chat', 'status'], ['players' => '0']],
            [$hello->getId(), $hello->getRole(), iterator_to_array($hello->getTopics()), Codec::mapToArray($hello->getMeta())]);
        $this->assertSame('ready', $this->line());
        $in = $this->pipes[0];
        $a = $this->agent;

        fwrite($in, "request r1 proxy-1 where is Steve\n");
        $req = $a->recv(null, 10)->getRequest();
        $this->assertSame(['proxy-1', 'where is Steve'], [$req->getTo(), $req->getData()]);
        $a->send(self::msg('Response', (new Response())->setId($req->getId())->setData('re:where is Steve')));
        $this->assertSame(['ev' => 'response', 'tag' => 'r1', 'data' => 're:where is Steve'], $this->json());

        fwrite($in, "send s1 ghost hi there\n");
        $send = $a->recv(null, 10)->getSend();
        $this->assertSame(['ghost', 'hi there'], [$send->getTo(), $send->getData()]);
        $this->assertNotSame(0, (int) $send->getId(), 'send in repl asks for a result');
        $a->send(self::msg('Error', (new Error())->setId($send->getId())->setCode(ErrorCode::UNKNOWN_PEER)->setMessage('no peer "ghost"')));
        $this->assertSame(['ev' => 'error', 'tag' => 's1', 'code' => 'UNKNOWN_PEER', 'message' => 'no peer "ghost"'], $this->json());

        fwrite($in, "broadcast b1 - eu to everyone\n");
        $b = $a->recv(null, 10)->getBroadcast();
        $this->assertSame(['', 'eu', 'to everyone'], [$b->getRole(), $b->getTag(), $b->getData()]);
        $a->send(self::msg('Result', (new Result())->setId($b->getId())->setCount(3)));
        $this->assertSame(['ev' => 'result', 'tag' => 'b1', 'count' => 3], $this->json());

        fwrite($in, "publish p1 status players=3\nsubscribe u1 news\nunsubscribe u2 chat\nmeta m1 players=3,tags=eu\npeers q1\n");
        $p = $a->recv(null, 10)->getPublish();
        $this->assertSame(['status', 'players=3'], [$p->getTopic(), $p->getData()]);
        $a->send(self::msg('Result', (new Result())->setId($p->getId())->setCount(2)));
        $this->assertSame(['ev' => 'result', 'tag' => 'p1', 'count' => 2], $this->json());
        $s = $a->recv(null, 10)->getSubscribe();
        $this->assertSame('news', $s->getTopic());
        $a->send(self::msg('Result', (new Result())->setId($s->getId())));
        $this->assertSame(['ev' => 'result', 'tag' => 'u1'], $this->json());
        $u = $a->recv(null, 10)->getUnsubscribe();
        $this->assertSame('chat', $u->getTopic());
        $a->send(self::msg('Result', (new Result())->setId($u->getId())));
        $this->assertSame(['ev' => 'result', 'tag' => 'u2'], $this->json());
        $m = $a->recv(null, 10)->getSetMeta();
        $this->assertSame(['players' => '3', 'tags' => 'eu'], Codec::mapToArray($m->getMeta()));
        $a->send(self::msg('Result', (new Result())->setId($m->getId())));
        $this->assertSame(['ev' => 'result', 'tag' => 'm1'], $this->json());
        $g = $a->recv(null, 10)->getGetPeers();
        $a->send(self::msg('Peers', (new Peers())->setId($g->getId())->setPeers([self::peer('proxy-1', 'proxy', ['tags' => 'eu'])])));
        $this->assertSame('{"ev":"peers","tag":"q1","peers":[{"id":"proxy-1","role":"proxy","meta":{"tags":"eu"},"topics":[]}]}', $this->line());

        // Events.
        $a->send(self::msg('Message', (new Message())->setFrom('proxy-1')->setData('héllo')->setChannel(2)));
        $this->assertSame('{"ev":"message","from":"proxy-1","data":"héllo","channel":2,"topic":""}', $this->line());
        $a->send(self::msg('Message', (new Message())->setFrom('lobby-2')->setData('3')->setTopic('status')));
        $this->assertSame(['ev' => 'message', 'from' => 'lobby-2', 'data' => '3', 'channel' => 0, 'topic' => 'status'], $this->json());
        $a->send(self::msg('PeerEvent', (new PeerEvent())->setKind(Kind::UP)->setPeer(self::peer('lobby-2', 'downstream'))));
        $this->assertSame('{"ev":"peer-up","id":"lobby-2","role":"downstream","meta":{},"reason":""}', $this->line());
        $a->send(self::msg('PeerEvent', (new PeerEvent())->setKind(Kind::UPDATED)->setPeer(self::peer('lobby-2', 'downstream', ['players' => '5']))));
        $this->assertSame(['ev' => 'peer-updated', 'id' => 'lobby-2', 'role' => 'downstream', 'meta' => ['players' => '5'], 'reason' => ''], $this->json());
        $a->send(self::msg('PeerEvent', (new PeerEvent())->setKind(Kind::DOWN)->setPeer(self::peer('lobby-2', 'downstream'))->setReason('left')));
        $this->assertSame(['ev' => 'peer-down', 'id' => 'lobby-2', 'role' => 'downstream', 'meta' => [], 'reason' => 'left'], $this->json());
        $a->send(self::msg('CoordinatorEvent', (new CoordinatorEvent())->setUp(true)->setAddress('127.0.0.1:7000')));
        $this->assertSame('{"ev":"coordinator","up":true,"address":"127.0.0.1:7000"}', $this->line());
        $a->send(self::msg('IncomingRequest', (new IncomingRequest())->setId(77)->setFrom('proxy-1')->setData('ping')));
        $r = $a->recv(null, 10)->getReply();
        $this->assertSame([77, 're:ping', ''], [(int) $r->getId(), $r->getData(), $r->getError()]);

        // Reconnect: the agent drops the connection; the client says so, comes back with its current state.
        $a->dropConnection();
        $this->assertSame('{"ev":"disconnected"}', $this->line());
        $hello = $this->welcome([self::peer('proxy-1')])->getHello();
        $this->assertSame(['news', 'status'], array_values(array_intersect(['news', 'status', 'chat'], iterator_to_array($hello->getTopics()))));
        $this->assertSame(['players' => '3', 'tags' => 'eu'], Codec::mapToArray($hello->getMeta()));
        $this->assertSame('{"ev":"reconnected"}', $this->line());

        // stdin EOF: Goodbye, exit 0.
        fclose($in);
        $this->assertSame('goodbye', $a->recv(null, 10)->getBody());
        $this->assertSame(0, $this->exitCode());
    }

    public function testEchoRepliesWithTheBytesOrTheMessageCount(): void
    {
        $this->start(['--id', 'echo-1', '--mode', 'echo']);
        $this->welcome();
        $this->assertSame('ready', $this->line());
        $a = $this->agent;
        $a->send(self::msg('IncomingRequest', (new IncomingRequest())->setId(1)->setFrom('p')->setData("\x00bytes\xff")));
        $this->assertSame("\x00bytes\xff", $a->recv(null, 10)->getReply()->getData());
        for ($i = 0; $i < 5; $i++) {
            $a->send(self::msg('Message', (new Message())->setFrom('p')->setData("m$i")->setTopic($i === 4 ? 't' : '')));
        }
        $a->send(self::msg('IncomingRequest', (new IncomingRequest())->setId(2)->setFrom('p')));
        $r = $a->recv(null, 10)->getReply();
        $this->assertSame([2, '5'], [(int) $r->getId(), $r->getData()]);
        fclose($this->pipes[0]);
        $this->assertSame('goodbye', $a->recv(null, 10)->getBody());
        $this->assertSame(0, $this->exitCode());
    }

    public function testEchoEndsWithGoodbyeOnSigterm(): void
    {
        if (!function_exists('pcntl_signal')) {
            $this->markTestSkipped('pcntl not available');
        }
        $this->start(['--id', 'echo-1', '--mode', 'echo']);
        $this->welcome();
        $this->assertSame('ready', $this->line());
        proc_terminate($this->proc, 15);
        $this->assertSame('goodbye', $this->agent->recv(null, 10)->getBody());
        $this->assertSame(0, $this->exitCode());
    }

    public function testPingpongChecksEveryReplyAndPrintsRoundTrips(): void
    {
        $this->start(['--id', 'pp', '--mode', 'pingpong', '--peer', 'echo-1', '--count', '20', '--size', '64', '--warmup', '3']);
        $this->welcome();   // the peer is not there yet: it comes up by event
        $this->agent->send(self::msg('PeerEvent', (new PeerEvent())->setKind(Kind::UP)->setPeer(self::peer('echo-1'))));
        $seen = [];
        for ($i = 0; $i < 23; $i++) {
            $req = $this->agent->recv(null, 10)->getRequest();
            $this->assertSame(['echo-1', 64], [$req->getTo(), strlen($req->getData())]);
            $seen[] = $req->getData();
            $this->agent->send(self::msg('Response', (new Response())->setId($req->getId())->setData($req->getData())));
        }
        $this->assertSame('ready', $this->line());
        $out = $this->json();
        $this->assertSame(['mode', 'count', 'rtt_us'], array_keys($out));
        $this->assertSame(20, $out['count']);
        $this->assertCount(20, $out['rtt_us']);
        foreach ($out['rtt_us'] as $us) {
            $this->assertIsInt($us);
            $this->assertGreaterThan(0, $us);
        }
        $this->assertCount(23, array_unique($seen), 'fresh random content per request');
        $this->assertSame(0, $this->exitCode());
    }

    public function testPingpongExitsThreeOnAMismatchedReply(): void
    {
        $this->start(['--id', 'pp', '--mode', 'pingpong', '--peer', 'echo-1', '--count', '2', '--size', '8']);
        $this->welcome([self::peer('echo-1')]);
        $req = $this->agent->recv(null, 10)->getRequest();
        $this->agent->send(self::msg('Response', (new Response())->setId($req->getId())->setData('12345678')));
        $this->assertSame(3, $this->exitCode());
    }

    public function testPingpongExitsTwoWhenThePeerNeverComes(): void
    {
        $this->start(['--id', 'pp', '--mode', 'pingpong', '--peer', 'echo-1', '--count', '2', '--size', '8', '--timeout-ms', '200']);
        $this->welcome();
        $this->assertSame('ready', $this->line());
        $this->assertSame(2, $this->exitCode());
    }

    public function testFloodSendsEveryMessageThenPollsTheCount(): void
    {
        $n = 3000;
        $this->start(['--id', 'fl', '--mode', 'flood', '--peer', 'echo-1', '--count', (string) $n, '--size', '64']);
        $this->welcome([self::peer('echo-1')]);
        $sent = 0;
        $answered = false;
        $deadline = microtime(true) + 20;
        while (!$answered && microtime(true) < $deadline) {
            $m = $this->agent->recv(null, 5);
            if ($m->getBody() === 'send') {
                $s = $m->getSend();
                $this->assertSame(['echo-1', 64, 0, 0, 4], [$s->getTo(), strlen($s->getData()), (int) $s->getId(), $s->getChannel(), $s->getDelivery()]);
                $sent++;
                continue;
            }
            $req = $m->getRequest();
            $this->assertSame('', $req->getData(), 'the count request is empty');
            // Answer the first count request with less than N, the next ones with the truth.
            $count = $sent === $n && isset($first) ? $sent : $sent - 1;
            $first = true;
            $this->agent->send(self::msg('Response', (new Response())->setId($req->getId())->setData((string) $count)));
            $answered = $count === $n;
        }
        $this->assertSame($n, $sent);
        $this->assertSame('ready', $this->line());
        $out = $this->json();
        $this->assertSame(['mode', 'count', 'elapsed_ms', 'received'], array_keys($out));
        $this->assertSame([$n, $n], [$out['count'], $out['received']]);
        $this->assertGreaterThan(0, $out['elapsed_ms']);
        $this->assertSame(0, $this->exitCode());
    }

    public function testFloodWarmUpIsCountedBeforeTheTimedMessages(): void
    {
        $this->start(['--id', 'fl', '--mode', 'flood', '--peer', 'echo-1', '--count', '400', '--size', '64', '--warmup', '100']);
        $this->welcome([self::peer('echo-1')]);
        $sent = 0;
        $sentAtPoll = [];
        $deadline = microtime(true) + 20;
        while ($sent + count($sentAtPoll) < 502 && microtime(true) < $deadline) {
            $m = $this->agent->recv(null, 5);
            if ($m->getBody() === 'send') {
                $sent++;
                continue;
            }
            $sentAtPoll[] = $sent;
            $this->agent->send(self::msg('Response', (new Response())->setId($m->getRequest()->getId())->setData((string) $sent)));
        }
        // The peer counted the warm-up before any timed message left.
        $this->assertSame([100, 500], $sentAtPoll);
        $this->assertSame('ready', $this->line());
        $out = $this->json();
        $this->assertSame([400, 400], [$out['count'], $out['received']]);
        $this->assertSame(0, $this->exitCode());
    }

    public function testFloodExitsFourWhenTheCountNeverArrives(): void
    {
        $this->start(['--id', 'fl', '--mode', 'flood', '--peer', 'echo-1', '--count', '10', '--size', '64', '--timeout-ms', '300']);
        $this->welcome([self::peer('echo-1')]);
        $deadline = microtime(true) + 15;
        $code = null;
        while ($code === null && microtime(true) < $deadline) {
            try {
                $m = $this->agent->recv(null, 0.05);
                if ($m->getBody() === 'request') {
                    $this->agent->send(self::msg('Response', (new Response())->setId($m->getRequest()->getId())->setData('9')));
                }
            } catch (\RuntimeException) {
                // nothing this turn
            }
            $st = proc_get_status($this->proc);
            $code = $st['running'] ? null : $st['exitcode'];
        }
        $this->assertSame(4, $code);
    }

    public function testUsageErrorsExitNonZero(): void
    {
        $this->start(['--id', 'x', '--mode', 'warp']);
        $this->assertSame(1, $this->exitCode());
        $this->assertStringContainsString('--mode must be', stream_get_contents($this->pipes[2]));
    }
}
