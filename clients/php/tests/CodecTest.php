<?php

declare(strict_types=1);

namespace Warpmesh\Agent\Tests;

use PHPUnit\Framework\TestCase;
use Warpmesh\Agent\Codec;
use Warpmesh\Agent\Proto\AgentMessage;
use Warpmesh\Agent\Proto\ClientMessage;
use Warpmesh\Agent\Proto\Error;
use Warpmesh\Agent\Proto\ErrorCode;
use Warpmesh\Agent\Proto\IncomingRequest;
use Warpmesh\Agent\Proto\Message;
use Warpmesh\Agent\Proto\Reply;
use Warpmesh\Agent\Proto\Request;
use Warpmesh\Agent\Proto\Response;
use Warpmesh\Agent\Proto\Result;
use Warpmesh\Agent\Proto\Send;

/** The hand-written frames are byte-equal to the protobuf runtime's, and decode as it does. */
final class CodecTest extends TestCase
{
    /** @return array<string, array{int,string,string,int,int}> */
    public static function sendCases(): array
    {
        return [
            '64-byte reliable ordered flood message' => [0, 'peer-b', str_repeat("\x5a", 64), 0, 0],
            'all defaults' => [0, '', '', 0, 0],
            'id, channel and delivery set' => [7, 'lobby-1', 'hello', 15, 4],
            'two-byte length (200 B)' => [300, 'p', random_bytes(200), 3, 1],
            'three-byte length (20000 B)' => [1 << 40, str_repeat('x', 64), random_bytes(20000), 1, 2],
            'UTF-8 id and binary data' => [PHP_INT_MAX, 'nœud-é', "\x00\xff\x80\x7f", 2, 3],
        ];
    }

    /** @dataProvider sendCases */
    public function testSendFrameEqualsRuntime(int $id, string $to, string $data, int $channel, int $delivery): void
    {
        $m = new ClientMessage();
        $m->setSend((new Send())->setId($id)->setTo($to)->setData($data)->setChannel($channel)->setDelivery($delivery));
        $b = $m->serializeToString();
        $this->assertSame(bin2hex(Codec::varint(strlen($b)) . $b), bin2hex(Codec::sendFrame($id, $to, $data, $channel, $delivery)));
    }

    /** @dataProvider sendCases */
    public function testRequestFrameEqualsRuntime(int $id, string $to, string $data, int $timeout, int $unused): void
    {
        $timeout *= 1000;
        $m = new ClientMessage();
        $m->setRequest((new Request())->setId($id)->setTo($to)->setData($data)->setTimeoutMs($timeout));
        $b = $m->serializeToString();
        $this->assertSame(bin2hex(Codec::varint(strlen($b)) . $b), bin2hex(Codec::requestFrame($id, $to, $data, $timeout)));
    }

    /** @dataProvider sendCases */
    public function testReplyFrameEqualsRuntime(int $id, string $to, string $data, int $unused1, int $unused2): void
    {
        foreach (['', 'handler failed: ' . $to] as $error) {
            $m = new ClientMessage();
            $m->setReply((new Reply())->setId($id)->setData($data)->setError($error));
            $b = $m->serializeToString();
            $this->assertSame(bin2hex(Codec::varint(strlen($b)) . $b), bin2hex(Codec::replyFrame($id, $data, $error)));
        }
    }

    public function testVarintOfUint64AboveIntMaxMatchesRuntime(): void
    {
        // 2^64 - 1 is -1 as a PHP int; the runtime writes it as ten bytes.
        $m = new ClientMessage();
        $m->setSend((new Send())->setId(-1));
        $b = $m->serializeToString();
        $this->assertSame(bin2hex(Codec::varint(strlen($b)) . $b), bin2hex(Codec::sendFrame(-1, '', '', 0, 0)));
        $this->assertSame('ffffffffffffffffff01', bin2hex(Codec::varint(-1)));
        $pos = 0;
        $this->assertSame(-1, Codec::readVarint(Codec::varint(-1), $pos, 10));
        $this->assertSame(10, $pos);
    }

    public function testReadVarintRefusesElevenBytesAndReportsTruncation(): void
    {
        $pos = 0;
        $this->assertNull(Codec::readVarint(str_repeat("\xff", 11), $pos, 11));
        $this->assertSame(-1, $pos);
        $pos = 0;
        $this->assertNull(Codec::readVarint("\xff\xff", $pos, 2));
        $this->assertSame(0, $pos);
    }

    /** @return array<string, array{AgentMessage, int, array<int,int|string>}> */
    public static function hotCases(): array
    {
        $msg = fn (string $field, $v) => (new AgentMessage())->{'set' . $field}($v);
        return [
            'message' => [$msg('Message', (new Message())->setFrom('a')->setData(str_repeat('y', 300))->setChannel(5)->setDelivery(3)->setTopic('t')),
                Codec::AM_MESSAGE, [1 => 'a', 2 => str_repeat('y', 300), 3 => 5, 4 => 3, 5 => 't']],
            'empty message' => [$msg('Message', new Message()), Codec::AM_MESSAGE, []],
            'incoming request' => [$msg('IncomingRequest', (new IncomingRequest())->setId(1 << 50)->setFrom('b')->setData('q')),
                Codec::AM_INCOMING_REQUEST, [1 => 1 << 50, 2 => 'b', 3 => 'q']],
            'response' => [$msg('Response', (new Response())->setId(9)->setData("\x00\x01")), Codec::AM_RESPONSE, [1 => 9, 2 => "\x00\x01"]],
            'result' => [$msg('Result', (new Result())->setId(3)->setCount(2)), Codec::AM_RESULT, [1 => 3, 2 => 2]],
            'error' => [$msg('Error', (new Error())->setId(4)->setCode(ErrorCode::PEER_DOWN)->setMessage('gone')->setFatal(true)),
                Codec::AM_ERROR, [1 => 4, 2 => ErrorCode::PEER_DOWN, 3 => 'gone', 4 => 1]],
        ];
    }

    /**
     * @dataProvider hotCases
     * @param array<int,int|string> $expected
     */
    public function testHotMessagesDecodeAsTheRuntimeEncodedThem(AgentMessage $m, int $field, array $expected): void
    {
        $d = Codec::decodeAgentMessage($m->serializeToString());
        $this->assertIsArray($d);
        $this->assertSame($field, $d[0]);
        ksort($d[1]);
        $this->assertSame($expected, $d[1]);
    }

    public function testUnknownFieldsAreSkippedAndOtherMessagesUseTheRuntime(): void
    {
        // Response{id: 5, data: "ok"} with unknown fields of every wire type (9: varint, 10: fixed64, 11: fixed32, 12: bytes).
        $body = "\x08\x05\x12\x02ok" . "\x48\x96\x01" . "\x51" . str_repeat("\x01", 8) . "\x5d" . str_repeat("\x02", 4) . "\x62\x03abc";
        $d = Codec::decodeAgentMessage("\x22" . chr(strlen($body)) . $body);
        $this->assertSame([Codec::AM_RESPONSE, [1 => 5, 2 => 'ok', 9 => 150, 12 => 'abc']], $d);

        $w = (new AgentMessage())->setCoordinatorEvent((new \Warpmesh\Agent\Proto\CoordinatorEvent())->setUp(true)->setAddress('127.0.0.1:1'));
        $d = Codec::decodeAgentMessage($w->serializeToString());
        $this->assertInstanceOf(AgentMessage::class, $d);
        $this->assertSame('127.0.0.1:1', $d->getCoordinatorEvent()->getAddress());
    }

    public function testMalformedBytesDecodeToNull(): void
    {
        $this->assertNull(Codec::decodeAgentMessage("\x22\x03\x08"), 'body shorter than declared, runtime path');
        $this->assertNull(Codec::decodeAgentMessage("\x22\x02\x12\x05"), 'field length beyond the body');
        $this->assertNull(Codec::decodeAgentMessage("\x22\x02\x0b\x00"), 'group wire type');
        $this->assertNull(Codec::decodeAgentMessage("\x22\x01\x08"), 'truncated varint');
        $this->assertNull(Codec::decodeAgentMessage("\x22\x02\x09\x00"), 'truncated fixed64');
        $this->assertNull(Codec::decodeAgentMessage("\x22\x02\x0d\x00"), 'truncated fixed32');
        $this->assertNull(Codec::decodeAgentMessage("\x22\x01\x00"), 'field number 0');
        $this->assertNull(Codec::decodeAgentMessage("\x0a\x05ab"), 'welcome shorter than declared, runtime path');
    }

    /** @return array<string, array{Message}> */
    public static function messageShapes(): array
    {
        return [
            'flood message' => [(new Message())->setFrom('peer-a')->setData(random_bytes(64))->setDelivery(4)],
            'every field, two-byte lengths' => [(new Message())->setFrom(str_repeat('f', 64))->setData(random_bytes(300))
                ->setChannel(15)->setDelivery(3)->setTopic(str_repeat('t', 200))],
            'empty' => [new Message()],
            'large data (three-byte lengths)' => [(new Message())->setFrom('p')->setData(random_bytes(70000))],
            'multi-byte enum value' => [(new Message())->setFrom('p')->setDelivery(300)],
        ];
    }

    /** @dataProvider messageShapes */
    public function testMessageDecodedInPlaceEqualsTheRuntime(Message $m): void
    {
        $b = 'junk' . (new AgentMessage())->setMessage($m)->serializeToString() . 'more';
        $d = Codec::decodeMessageAt($b, 4, strlen($b) - 4);
        $this->assertNotNull($d);
        $this->assertSame([$m->getFrom(), $m->getData(), $m->getChannel(), $m->getDelivery(), $m->getTopic()],
            [$d->from, $d->data, $d->channel, $d->delivery, $d->topic]);
    }

    public function testMessageInPlaceLeavesUnusualShapesToTheGeneralPath(): void
    {
        $ok = (new AgentMessage())->setMessage((new Message())->setFrom('p')->setData('d'))->serializeToString();
        $this->assertNotNull(Codec::decodeMessageAt($ok, 0, strlen($ok)));
        $this->assertNull(Codec::decodeMessageAt($ok . "\x08\x01", 0, strlen($ok) + 2), 'a second AgentMessage field');
        $this->assertNull(Codec::decodeMessageAt("\x12\x03\x30\x01\x00", 0, 5), 'unknown field 6');
        $this->assertNull(Codec::decodeMessageAt("\x12\x02\x0a\x05", 0, 4), 'length beyond the body');
        $this->assertNull(Codec::decodeMessageAt("\x12\x01\x0a", 0, 3), 'tag without length');
        $this->assertNull(Codec::decodeMessageAt("\x12\x01\x18", 0, 3), 'varint field without value');
        $this->assertNull(Codec::decodeMessageAt("\x12\x05\x0a\x81", 0, 4), 'truncated body length');
        $this->assertNull(Codec::decodeMessageAt("\x12\x02\x0a\xff", 0, 4), 'truncated field length varint');
        $this->assertNull(Codec::decodeMessageAt("\x22\x00", 0, 2), 'not a Message');
        $this->assertNull(Codec::decodeMessageAt("\x12", 0, 1), 'too short');
        $this->assertNull(Codec::decodeMessageAt("\x12\xff", 0, 2), 'truncated length varint');
    }
}
