<?php

declare(strict_types=1);

namespace Warpmesh\Agent;

use Warpmesh\Agent\Proto\ErrorCode;

/**
 * One non-blocking stream socket to the agent and its bounded output buffer:
 * bytes in, bytes out, nothing about frames' meaning.
 *
 * @internal used by Client; not part of the public API.
 */
final class Connection
{
    /** Largest chunk handed to one fwrite(). */
    private const WRITE_CHUNK = 262144;
    /** Written bytes kept at the buffer's head before it is compacted. */
    private const COMPACT_AFTER = 1_048_576;

    /** @var resource */
    private $sock;
    private string $out = '';
    private int $outPos = 0;

    /** @param resource $sock */
    private function __construct($sock)
    {
        $this->sock = $sock;
    }

    /**
     * Connects to the agent: "unix://PATH" or "tcp://HOST:PORT". A loopback connect completes or
     * fails at once; $timeoutSeconds bounds the rare wait (a full listen backlog).
     *
     * @throws WarpmeshException CLOSED when the socket cannot be opened
     */
    public static function open(string $address, float $timeoutSeconds): self
    {
        $errno = 0;
        $errstr = '';
        $s = @stream_socket_client($address, $errno, $errstr, $timeoutSeconds);
        if ($s === false) {
            throw new WarpmeshException(ErrorCode::CLOSED, "cannot connect to the agent at $address: $errstr ($errno)");
        }
        stream_set_blocking($s, false);
        stream_set_write_buffer($s, 0);
        stream_set_read_buffer($s, 0);
        if (str_starts_with($address, 'tcp://') && function_exists('socket_import_stream') && defined('TCP_NODELAY')) {
            $sock = @socket_import_stream($s);
            if ($sock !== false && $sock !== null) {
                @socket_set_option($sock, SOL_TCP, TCP_NODELAY, 1);
            }
        }
        return new self($s);
    }

    /** @return resource the socket, for stream_select() */
    public function stream()
    {
        return $this->sock;
    }

    /** Bytes queued and not yet taken by the socket. */
    public function buffered(): int
    {
        return strlen($this->out) - $this->outPos;
    }

    /**
     * Appends bytes to the output unless that would hold more than $limit bytes unsent.
     *
     * @return bool false when refused (nothing appended)
     */
    public function queue(string $bytes, int $limit): bool
    {
        if (strlen($this->out) - $this->outPos + strlen($bytes) > $limit) {
            return false;
        }
        $this->out .= $bytes;
        return true;
    }

    /**
     * Writes queued output as far as the socket takes it.
     *
     * @return string|null null, or what failed (the connection is unusable)
     */
    public function flush(): ?string
    {
        $len = strlen($this->out);
        while ($this->outPos < $len) {
            $chunk = $this->outPos === 0 && $len <= self::WRITE_CHUNK ? $this->out : substr($this->out, $this->outPos, self::WRITE_CHUNK);
            $n = @fwrite($this->sock, $chunk);
            if ($n === false) {
                return 'write to the agent failed: ' . (error_get_last()['message'] ?? 'unknown error');
            }
            if ($n === 0) {
                break;
            }
            $this->outPos += $n;
        }
        if ($this->outPos >= $len) {
            $this->out = '';
            $this->outPos = 0;
        } elseif ($this->outPos > self::COMPACT_AFTER) {
            $this->out = substr($this->out, $this->outPos);
            $this->outPos = 0;
        }
        return null;
    }

    /**
     * Reads what is ready, at most $max bytes.
     *
     * @return string|null the bytes ("" when nothing is ready), null at the end of the stream
     */
    public function read(int $max): ?string
    {
        $chunk = @fread($this->sock, $max);
        if ($chunk === false || $chunk === '') {
            return feof($this->sock) ? null : '';
        }
        return $chunk;
    }

    public function close(): void
    {
        @fclose($this->sock);
        $this->out = '';
        $this->outPos = 0;
    }
}
