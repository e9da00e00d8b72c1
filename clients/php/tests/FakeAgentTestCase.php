<?php

declare(strict_types=1);

namespace Warpmesh\Agent\Tests;

use PHPUnit\Framework\TestCase;
use Warpmesh\Agent\Client;
use Warpmesh\Agent\Proto\AgentMessage;

/** Tests of the client against a fake agent played by the test over a real socket: the shared set-up. */
abstract class FakeAgentTestCase extends TestCase
{
    protected FakeAgent $agent;
    protected float $now = 1000.0;
    /** @var list<Client> */
    protected array $clients = [];

    protected function setUp(): void
    {
        $this->agent = new FakeAgent();
    }

    protected function tearDown(): void
    {
        foreach ($this->clients as $c) {
            $c->close('', 0);
        }
        $this->agent->close();
    }

    /** @param array<string,mixed> $opts */
    protected function client(array $opts = []): Client
    {
        $c = new Client($opts + ['id' => 'lobby-1', 'socket' => $this->agent->path, 'clock' => fn (): float => $this->now]);
        $this->clients[] = $c;
        $this->agent->client = $c;
        return $c;
    }

    protected function pollUntil(Client $c, callable $cond): void
    {
        $deadline = microtime(true) + 10;
        while (!$cond()) {
            if (microtime(true) > $deadline) {
                $this->fail('condition not reached within 10 s');
            }
            $c->poll();
            usleep(200);
        }
    }

    protected static function agentMsg(string $field, object $body): AgentMessage
    {
        return (new AgentMessage())->{'set' . $field}($body);
    }
}
