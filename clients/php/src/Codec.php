<?php

declare(strict_types=1);

namespace Warpmesh\Agent;

use Warpmesh\Agent\Proto\AgentMessage;
use Warpmesh\Agent\Proto\ClientMessage;

/**
 * Bytes of the client protocol, written and read by hand for the hot messages.
 *
 * The pure-PHP protobuf runtime serializes about 15k small messages/s, far
 * below the 100k/s one-way goal, so the frames a busy client writes most
 * (Send, Request, Reply) are encoded here field by field, exactly as the
 * runtime would (fields in number order, proto3 defaults omitted; the unit
 * tests compare the bytes with serializeToString()). The agent messages a
 * busy client reads most (Message, IncomingRequest, Response, Result, Error)
 * are decoded here too; everything else goes through the generated classes.
 *
 * @internal used by Client; not part of the public API.
 */
final class Codec
{
    /** ClientMessage field numbers (agent.proto). */
    private const CM_SEND = 2;
    private const CM_REQUEST = 3;
    private const CM_REPLY = 4;

    /** AgentMessage field numbers (agent.proto). */
    public const AM_WELCOME = 1;
    public const AM_MESSAGE = 2;
    public const AM_INCOMING_REQUEST = 3;
    public const AM_RESPONSE = 4;
    public const AM_RESULT = 5;
    public const AM_ERROR = 6;

    /** Appends the varint encoding of a non-negative int (or a negative one as its 64-bit two's complement). */
    public static function varint(int $v): string
    {
        if ($v >= 0 && $v < 0x80) {
            return chr($v);
        }
        $s = '';
        if ($v < 0) {
            // uint64 above PHP_INT_MAX: 9 groups of 7 bits then the top bit.
            for ($i = 0; $i < 9; $i++) {
                $s .= chr(($v & 0x7f) | 0x80);
                $v = ($v >> 7) & 0x01ffffffffffffff;
            }
            return $s . chr($v);
        }
        while ($v >= 0x80) {
            $s .= chr(($v & 0x7f) | 0x80);
            $v >>= 7;
        }
        return $s . chr($v);
    }

    /** A length-delimited field: tag, length, bytes (omitted when empty, as proto3 does). */
    private static function bytesField(int $tag, string $b): string
    {
        $n = strlen($b);
        if ($n === 0) {
            return '';
        }
        return chr($tag) . ($n < 0x80 ? chr($n) : self::varint($n)) . $b;
    }

    /** A varint field (omitted when zero). */
    private static function varintField(int $tag, int $v): string
    {
        return $v === 0 ? '' : chr($tag) . self::varint($v);
    }

    /** Wraps a ClientMessage body field in its frame: length prefix + ClientMessage{field}. */
    private static function frame(int $field, string $body): string
    {
        $n = strlen($body);
        $msg = chr(($field << 3) | 2) . ($n < 0x80 ? chr($n) : self::varint($n)) . $body;
        $m = strlen($msg);
        return ($m < 0x80 ? chr($m) : self::varint($m)) . $msg;
    }

    /** Frame of ClientMessage{send: Send{id, to, data, channel, delivery}}. */
    public static function sendFrame(int $id, string $to, string $data, int $channel, int $delivery): string
    {
        return self::frame(self::CM_SEND, self::varintField(0x08, $id) . self::bytesField(0x12, $to)
            . self::bytesField(0x1a, $data) . self::varintField(0x20, $channel) . self::varintField(0x28, $delivery));
    }

    /** Frame of ClientMessage{request: Request{id, to, data, timeout_ms}}. */
    public static function requestFrame(int $id, string $to, string $data, int $timeoutMs): string
    {
        return self::frame(self::CM_REQUEST, self::varintField(0x08, $id) . self::bytesField(0x12, $to)
            . self::bytesField(0x1a, $data) . self::varintField(0x20, $timeoutMs));
    }

    /** Frame of ClientMessage{reply: Reply{id, data, error}}. */
    public static function replyFrame(int $id, string $data, string $error): string
    {
        return self::frame(self::CM_REPLY, self::varintField(0x08, $id) . self::bytesField(0x12, $data)
            . self::bytesField(0x1a, $error));
    }

    /**
     * A protobuf map field as a PHP array. The pure runtime's map iterator creates a dynamic
     * property, deprecated since PHP 8.2: the notice is silenced for the iteration only.
     *
     * @return array<string,string>
     */
    public static function mapToArray(\Google\Protobuf\Internal\MapField $map): array
    {
        $old = error_reporting(error_reporting() & ~E_DEPRECATED);
        try {
            $out = [];
            foreach ($map as $k => $v) {
                $out[(string) $k] = (string) $v;
            }
            return $out;
        } finally {
            error_reporting($old);
        }
    }

    /** Frame of any ClientMessage, through the protobuf runtime (the rare messages). */
    public static function messageFrame(ClientMessage $m): string
    {
        // The runtime's map serialization iterates with the deprecated dynamic property (see mapToArray).
        $old = error_reporting(error_reporting() & ~E_DEPRECATED);
        try {
            $b = $m->serializeToString();
        } finally {
            error_reporting($old);
        }
        return self::varint(strlen($b)) . $b;
    }

    /**
     * Reads a varint at $pos of $buf, advancing $pos.
     *
     * @return int|null the value (uint64 above PHP_INT_MAX wraps to negative), or null when
     *   the buffer ends first; -1 in $pos when the varint is longer than 10 bytes.
     */
    public static function readVarint(string $buf, int &$pos, int $end): ?int
    {
        $v = 0;
        $shift = 0;
        $p = $pos;
        while ($p < $end) {
            $b = ord($buf[$p++]);
            $v |= ($b & 0x7f) << $shift;
            if ($b < 0x80) {
                $pos = $p;
                return $v;
            }
            $shift += 7;
            if ($shift > 63) {
                $pos = -1;
                return null;
            }
        }
        return null;
    }

    /**
     * The hottest path of a receiving client: AgentMessage{message: Message} decoded in place
     * from the input buffer ($p at the AgentMessage's first byte, $end after its last), for the
     * usual shape (one-byte tags, known fields). Anything else returns null and the frame takes
     * decodeAgentMessage(), which handles unknown fields and reports malformed bytes.
     */
    public static function decodeMessageAt(string $b, int $p, int $end): ?Message
    {
        if ($end - $p < 2 || $b[$p] !== "\x12") {
            return null;
        }
        $p++;
        $len = ord($b[$p++]);
        if ($len >= 0x80) {
            $p--;
            $len = self::readVarint($b, $p, $end);
            if ($len === null) {
                return null;
            }
        }
        if ($p + $len !== $end) {
            return null;
        }
        $from = $data = $topic = '';
        $channel = $delivery = 0;
        while ($p < $end) {
            $tag = ord($b[$p++]);
            if ($tag === 0x0a || $tag === 0x12 || $tag === 0x2a) {
                if ($p >= $end) {
                    return null;
                }
                $l = ord($b[$p++]);
                if ($l >= 0x80) {
                    $p--;
                    $l = self::readVarint($b, $p, $end);
                    if ($l === null) {
                        return null;
                    }
                }
                if ($l > $end - $p) {
                    return null;
                }
                $v = substr($b, $p, $l);
                $p += $l;
                if ($tag === 0x12) {
                    $data = $v;
                } elseif ($tag === 0x0a) {
                    $from = $v;
                } else {
                    $topic = $v;
                }
            } elseif ($tag === 0x18 || $tag === 0x20) {
                $v = self::readVarint($b, $p, $end);
                if ($v === null) {
                    return null;
                }
                if ($tag === 0x18) {
                    $channel = $v;
                } else {
                    $delivery = $v;
                }
            } else {
                return null;
            }
        }
        return new Message($from, $data, $channel, $delivery, $topic);
    }

    /**
     * Decodes the fields of a flat message (varints and length-delimited only; no
     * nested messages needed) into [fieldNumber => int|string]; the last occurrence
     * of a field wins, as protobuf merges scalars. Unknown varint / 64-bit / 32-bit /
     * length-delimited fields are skipped.
     *
     * @return array<int, int|string>|null null when the bytes are malformed
     */
    public static function decodeFlat(string $buf, int $pos, int $end): ?array
    {
        $f = [];
        while ($pos < $end) {
            $tag = self::readVarint($buf, $pos, $end);
            if ($tag === null || $tag <= 0) {
                return null;
            }
            $field = $tag >> 3;
            switch ($tag & 7) {
                case 0:
                    $v = self::readVarint($buf, $pos, $end);
                    if ($v === null) {
                        return null;
                    }
                    $f[$field] = $v;
                    break;
                case 2:
                    $n = self::readVarint($buf, $pos, $end);
                    if ($n === null || $n < 0 || $n > $end - $pos) {
                        return null;
                    }
                    $f[$field] = substr($buf, $pos, $n);
                    $pos += $n;
                    break;
                case 1:
                    if ($end - $pos < 8) {
                        return null;
                    }
                    $pos += 8;
                    break;
                case 5:
                    if ($end - $pos < 4) {
                        return null;
                    }
                    $pos += 4;
                    break;
                default:
                    return null;
            }
        }
        return $f;
    }

    /**
     * Splits an AgentMessage into its oneof field number and the body's bounds when
     * the body is one of the hot flat messages; otherwise decodes it with the runtime.
     *
     * @return array{0:int,1:array<int,int|string>}|AgentMessage|null [field, fields] for the
     *   hot messages, the decoded AgentMessage for the others, null when malformed
     */
    public static function decodeAgentMessage(string $frame): array|AgentMessage|null
    {
        $end = strlen($frame);
        $pos = 0;
        $tag = self::readVarint($frame, $pos, $end);
        if ($tag !== null && ($tag & 7) === 2) {
            $field = $tag >> 3;
            if ($field >= self::AM_MESSAGE && $field <= self::AM_ERROR) {
                $n = self::readVarint($frame, $pos, $end);
                // Only when the body is the whole frame: a frame with several fields
                // (merged oneof, unknown fields) takes the runtime's general path.
                if ($n !== null && $pos + $n === $end) {
                    $fields = self::decodeFlat($frame, $pos, $end);
                    return $fields === null ? null : [$field, $fields];
                }
            }
        }
        $m = new AgentMessage();
        try {
            $m->mergeFromString($frame);
        } catch (\Throwable) {
            return null;
        }
        return $m;
    }
}
