<?php

declare(strict_types=1);

namespace Warpmesh\Agent;

/**
 * The outcome of an operation that the agent answers later (a promise-like handle).
 *
 * Settled from Client::poll() (or at once, when the operation fails locally):
 * with a value (request: the reply bytes; send/broadcast/publish: the count of
 * peers; subscribe/unsubscribe/setMeta: 0; getPeers: list<Peer>; getStats:
 * Proto\Stats), or with a WarpmeshException. Callbacks registered with then()
 * run when it settles, or immediately if it already has. An exception thrown by
 * a callback propagates out of poll().
 */
final class Pending
{
    private const PENDING = 0;
    private const OK = 1;
    private const FAILED = 2;

    private int $state = self::PENDING;
    private mixed $value = null;
    private ?WarpmeshException $error = null;
    /** @var list<array{0:?callable,1:?callable}> */
    private array $callbacks = [];

    /**
     * @param int $id the operation id on the wire (0 when it never reached the wire)
     */
    public function __construct(public readonly int $id)
    {
    }

    /**
     * Registers callbacks: $onSuccess($value) or $onFailure(WarpmeshException $e).
     *
     * @return $this
     */
    public function then(?callable $onSuccess, ?callable $onFailure = null): self
    {
        if ($this->state === self::OK) {
            if ($onSuccess !== null) {
                $onSuccess($this->value);
            }
        } elseif ($this->state === self::FAILED) {
            if ($onFailure !== null) {
                $onFailure($this->error);
            }
        } else {
            $this->callbacks[] = [$onSuccess, $onFailure];
        }
        return $this;
    }

    /** True once settled (either way). */
    public function isDone(): bool
    {
        return $this->state !== self::PENDING;
    }

    /** True when settled with a value. */
    public function isOk(): bool
    {
        return $this->state === self::OK;
    }

    /** The failure, or null (pending or succeeded). */
    public function error(): ?WarpmeshException
    {
        return $this->error;
    }

    /**
     * The value; throws the failure if it failed.
     *
     * @throws WarpmeshException when it failed
     * @throws \LogicException when still pending
     */
    public function value(): mixed
    {
        if ($this->state === self::FAILED) {
            throw $this->error;
        }
        if ($this->state === self::PENDING) {
            throw new \LogicException('operation ' . $this->id . ' is still pending: poll() the client (or use Client::await())');
        }
        return $this->value;
    }

    /** @internal settles with a value (ignored when already settled) */
    public function resolve(mixed $value): void
    {
        if ($this->state !== self::PENDING) {
            return;
        }
        $this->state = self::OK;
        $this->value = $value;
        $cbs = $this->callbacks;
        $this->callbacks = [];
        foreach ($cbs as [$ok]) {
            if ($ok !== null) {
                $ok($value);
            }
        }
    }

    /** @internal settles with a failure (ignored when already settled) */
    public function reject(WarpmeshException $e): void
    {
        if ($this->state !== self::PENDING) {
            return;
        }
        $this->state = self::FAILED;
        $this->error = $e;
        $cbs = $this->callbacks;
        $this->callbacks = [];
        foreach ($cbs as [, $fail]) {
            if ($fail !== null) {
                $fail($e);
            }
        }
    }
}
