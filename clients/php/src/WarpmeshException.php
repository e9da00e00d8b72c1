<?php

declare(strict_types=1);

namespace Warpmesh\Agent;

use Warpmesh\Agent\Proto\ErrorCode;

/**
 * A failed operation: the agent's `Error`, or a failure the client detects itself.
 *
 * getCode() is the agent.proto `ErrorCode` number (constants on
 * Warpmesh\Agent\Proto\ErrorCode, e.g. ErrorCode::TIMEOUT), getErrorName() its
 * name ("TIMEOUT"). Codes the client produces locally:
 * - TIMEOUT: no answer within the request's timeout plus the client's grace
 *   (the agent's own TIMEOUT normally comes first);
 * - CLOSED: the agent connection dropped (or close() was called) while the
 *   operation was outstanding, or it was attempted while not connected;
 * - OVERLOADED: the client's output buffer or its table of outstanding
 *   operations is full;
 * - TOO_LARGE: the frame would exceed the agent's maximum frame size
 *   (thrown at the caller, a caller mistake);
 * - BAD_MESSAGE: the agent sent bytes the client cannot decode (connection closed).
 */
class WarpmeshException extends \RuntimeException
{
    /** True when the agent said it closes the connection after this error. */
    public readonly bool $fatal;

    /**
     * @param int $errorCode an agent.proto ErrorCode value
     * @param string $message what was wrong
     * @param bool $fatal the connection is closed after this error
     */
    public function __construct(int $errorCode, string $message, bool $fatal = false, ?\Throwable $previous = null)
    {
        parent::__construct($message, $errorCode, $previous);
        $this->fatal = $fatal;
    }

    /** The ErrorCode's name, e.g. "UNKNOWN_PEER" (the repl's "code" field). */
    public function getErrorName(): string
    {
        return self::nameOf($this->getCode());
    }

    /** Name of an ErrorCode value ("ERROR_CODE_<n>" for a number this version does not know). */
    public static function nameOf(int $code): string
    {
        try {
            return ErrorCode::name($code);
        } catch (\Throwable) {
            return 'ERROR_CODE_' . $code;
        }
    }
}
