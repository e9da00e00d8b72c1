<?php

declare(strict_types=1);

namespace Warpmesh\Agent\Tests;

use Warpmesh\Agent\Client;
use Warpmesh\Agent\Codec;
use Warpmesh\Agent\Proto\AgentMessage;
use Warpmesh\Agent\Proto\ClientMessage;
use Warpmesh\Agent\Proto\Welcome;

/**
 * The agent's side of the socket, played inside the test process with the generated
 * classes: a listening Unix (or TCP) socket, one accepted connection at a time,
 * frames read and written through the protobuf runtime (not through the client's Codec).
 */
final class FakeAgent
{
    /** @var resource */
    private $server;
    /** @var resource|null */
    private $conn = null;
    private string $buf = '';
    public readonly string $path;
    public readonly string $tcp;
    /** The client polled while the fake agent waits for socket space. */
    public ?Client $client = null;

    public function __construct(bool $tcp = false)
    {
        if ($tcp) {
            $this->path = '';
            $s = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
            if ($s === false) {
                throw new \RuntimeException("fake agent: $errstr");
            }
            $this->server = $s;
            $this->tcp = stream_socket_get_name($s, false);
        } else {
            $this->tcp = '';
            $this->path = sys_get_temp_dir() . '/wm-php-test-' . getmypid() . '-' . bin2hex(random_bytes(4)) . '.sock';
            $s = stream_socket_server('unix://' . $this->path, $errno, $errstr);
            if ($s === false) {
                throw new \RuntimeException("fake agent: $errstr");
            }
            $this->server = $s;
        }
    }

    /** Accepts the client's connection (the client connects synchronously, so it is waiting). */
    public function accept(float $timeout = 10.0): void
    {
        $c = @stream_socket_accept($this->server, $timeout);
        if ($c === false) {
            throw new \RuntimeException('fake agent: no connection to accept');
        }
        stream_set_blocking($c, false);
        stream_set_read_buffer($c, 0);
        stream_set_write_buffer($c, 0);
        $this->conn = $c;
        $this->buf = '';
    }

    public function hasConnection(): bool
    {
        return $this->conn !== null;
    }

    /** Whether a connection is waiting to be accepted. */
    public function pendingConnection(): bool
    {
        $r = [$this->server];
        $w = $e = null;
        return @stream_select($r, $w, $e, 0, 0) === 1;
    }

    /**
     * The next ClientMessage, polling the client between reads so it writes its output.
     */
    public function recv(?Client $client = null, float $timeout = 10.0): ClientMessage
    {
        $frame = $this->recvFrame($client, $timeout);
        $m = new ClientMessage();
        $m->mergeFromString($frame);
        return $m;
    }

    /** The next frame's bytes (without its length prefix). */
    public function recvFrame(?Client $client = null, float $timeout = 10.0): string
    {
        $deadline = microtime(true) + $timeout;
        while (true) {
            $pos = 0;
            $len = Codec::readVarint($this->buf, $pos, strlen($this->buf));
            if ($len !== null && strlen($this->buf) - $pos >= $len) {
                $frame = substr($this->buf, $pos, $len);
                $this->buf = (string) substr($this->buf, $pos + $len);
                return $frame;
            }
            if (microtime(true) > $deadline) {
                throw new \RuntimeException('fake agent: no complete frame from the client');
            }
            $client?->poll();
            $chunk = @fread($this->conn, 65536);
            if ($chunk !== false && $chunk !== '') {
                $this->buf .= $chunk;
            } else {
                usleep(500);
            }
        }
    }

    /** True when nothing more arrived from the client (after polling it). */
    public function quiet(?Client $client = null): bool
    {
        $client?->poll();
        usleep(2000);
        $chunk = @fread($this->conn, 65536);
        if ($chunk !== false && $chunk !== '') {
            $this->buf .= $chunk;
        }
        return $this->buf === '';
    }

    /** Reads and discards everything the client wrote so far; returns the byte count. */
    public function drain(): int
    {
        $n = strlen($this->buf);
        $this->buf = '';
        while (($chunk = @fread($this->conn, 262144)) !== false && $chunk !== '') {
            $n += strlen($chunk);
        }
        return $n;
    }

    public function send(AgentMessage $m): void
    {
        $old = error_reporting(error_reporting() & ~E_DEPRECATED);
        $b = $m->serializeToString();
        error_reporting($old);
        $this->sendRaw(Codec::varint(strlen($b)) . $b);
    }

    /** Writes all of $bytes, polling the attached client while its socket is full. */
    public function sendRaw(string $bytes): void
    {
        $deadline = microtime(true) + 10;
        while ($bytes !== '') {
            $n = @fwrite($this->conn, $bytes);
            if ($n === false) {
                throw new \RuntimeException('fake agent: write failed');
            }
            $bytes = (string) substr($bytes, $n);
            if ($bytes !== '') {
                if (microtime(true) > $deadline) {
                    throw new \RuntimeException('fake agent: the client does not read');
                }
                $this->client?->poll();
                usleep(200);
            }
        }
    }

    /** @param list<\Warpmesh\Agent\Proto\Peer> $peers */
    public function welcome(array $peers = [], int $maxFrame = 1_052_672): void
    {
        $m = new AgentMessage();
        $m->setWelcome((new Welcome())->setProtocolVersion(1)->setId('x')->setUdpPort(40000)->setPeers($peers)
            ->setMaxFrame($maxFrame)->setAgentVersion('test'));
        $this->send($m);
    }

    /** Closes the client's connection (as a crashed or restarted agent would). */
    public function dropConnection(): void
    {
        if ($this->conn !== null) {
            fclose($this->conn);
            $this->conn = null;
        }
    }

    public function close(): void
    {
        $this->dropConnection();
        if (is_resource($this->server)) {
            fclose($this->server);
        }
        if ($this->path !== '') {
            @unlink($this->path);
        }
    }
}
