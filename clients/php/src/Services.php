<?php

declare(strict_types=1);

namespace Warpmesh\Agent;

/**
 * @internal Checks and converts the network services' array arguments (server settings,
 * selectors) to their protobuf form. Caller mistakes throw \InvalidArgumentException naming
 * the argument and the expected form.
 */
final class Services
{
    /** Server states: 1..32 of a-z 0-9 _ - (lib/services). */
    public const STATE_PATTERN = '/^[a-z0-9_-]{1,32}$/D';
    /** The documented states. */
    public const STARTING = 'starting';
    public const LOBBY = 'lobby';
    public const IN_GAME = 'in-game';
    public const FULL = 'full';
    public const STOPPING = 'stopping';
    /** Bound of the players a client re-announces after a reconnect. */
    public const MAX_HOSTED_PLAYERS = 100_000;

    private const SETTINGS_KEYS = ['state', 'mode', 'tags', 'max', 'fields'];
    private const SELECTOR_KEYS = ['mode', 'state', 'tag', 'exclude', 'fallback'];

    /**
     * Checks server settings: ['state' => 'lobby', 'mode' => 'skywars', 'tags' => [...], 'max' => 50,
     * 'fields' => [...]], every key optional (a missing key keeps its value).
     *
     * @param array<string,mixed> $s
     * @return array<string,mixed> $s
     */
    public static function checkSettings(array $s, string $what): array
    {
        foreach (array_keys($s) as $k) {
            if (!in_array($k, self::SETTINGS_KEYS, true)) {
                throw new \InvalidArgumentException("$what: unknown key " . json_encode($k) . '; known: ' . implode(', ', self::SETTINGS_KEYS));
            }
        }
        if (isset($s['state']) && (!is_string($s['state']) || preg_match(self::STATE_PATTERN, $s['state']) !== 1)) {
            throw new \InvalidArgumentException("$what: state must be 1..32 of a-z 0-9 _ - (e.g. \"lobby\"), got " . json_encode($s['state']));
        }
        if (isset($s['mode']) && !is_string($s['mode'])) {
            throw new \InvalidArgumentException("$what: mode must be a string, got " . json_encode($s['mode']));
        }
        if (isset($s['max']) && (!is_int($s['max']) || $s['max'] < 0 || $s['max'] > 0xffffffff)) {
            throw new \InvalidArgumentException("$what: max must be an integer 0 (unlimited)..4294967295, got " . json_encode($s['max']));
        }
        if (isset($s['tags'])) {
            self::checkList($s['tags'], "$what: tags");
        }
        if (isset($s['fields'])) {
            if (!is_array($s['fields'])) {
                throw new \InvalidArgumentException("$what: fields must be an array of strings");
            }
            ClientOptions::checkMeta($s['fields'], "$what: fields");
        }
        return $s;
    }

    /**
     * @param array<string,mixed> $s checked settings
     */
    public static function settingsToProto(array $s): Proto\ServerSettings
    {
        $p = new Proto\ServerSettings();
        if (isset($s['state'])) {
            $p->setState($s['state']);
        }
        if (isset($s['mode'])) {
            $p->setMode($s['mode']);
        }
        if (isset($s['tags'])) {
            $p->setTags($s['tags'])->setSetTags(true);
        }
        if (isset($s['max'])) {
            $p->setMax($s['max'])->setSetMax(true);
        }
        if (isset($s['fields'])) {
            $p->setFields($s['fields'])->setSetFields(true);
        }
        return $p;
    }

    /**
     * Checks a selector: ['mode' => ..., 'state' => 'lobby' or [...], 'tag' => ..., 'exclude' => [...],
     * 'fallback' => 'server-id' or another selector], every key optional.
     *
     * @param array<string,mixed> $sel
     */
    public static function selectorToProto(array $sel, string $what, int $depth = 0): Proto\Selector
    {
        if ($depth > 8) {
            throw new \InvalidArgumentException("$what: fallbacks nested deeper than 8");
        }
        foreach (array_keys($sel) as $k) {
            if (!in_array($k, self::SELECTOR_KEYS, true)) {
                throw new \InvalidArgumentException("$what: unknown key " . json_encode($k) . '; known: ' . implode(', ', self::SELECTOR_KEYS));
            }
        }
        $p = new Proto\Selector();
        foreach (['mode', 'tag'] as $k) {
            if (isset($sel[$k])) {
                if (!is_string($sel[$k])) {
                    throw new \InvalidArgumentException("$what: $k must be a string, got " . json_encode($sel[$k]));
                }
                $p->{'set' . ucfirst($k)}($sel[$k]);
            }
        }
        if (isset($sel['state'])) {
            $states = is_string($sel['state']) ? [$sel['state']] : $sel['state'];
            self::checkList($states, "$what: state");
            $p->setStates($states);
        }
        if (isset($sel['exclude'])) {
            self::checkList($sel['exclude'], "$what: exclude");
            $p->setExclude($sel['exclude']);
        }
        if (isset($sel['fallback'])) {
            $f = $sel['fallback'];
            if (is_string($f) && $f !== '') {
                $p->setFallbackServer($f);
            } elseif (is_array($f)) {
                $p->setFallback(self::selectorToProto($f, "$what: fallback", $depth + 1));
            } else {
                throw new \InvalidArgumentException("$what: fallback must be a server id or a selector array, got " . json_encode($f));
            }
        }
        return $p;
    }

    /** @throws \InvalidArgumentException unless $l is a list of non-empty strings */
    private static function checkList(mixed $l, string $what): void
    {
        if (!is_array($l) || !array_is_list($l)) {
            throw new \InvalidArgumentException("$what must be a list of non-empty strings, got " . json_encode($l));
        }
        foreach ($l as $x) {
            if (!is_string($x) || $x === '') {
                throw new \InvalidArgumentException("$what must be a list of non-empty strings, got " . json_encode($l));
            }
        }
    }

    /** @throws \InvalidArgumentException unless $player is a non-empty name or XUID */
    public static function checkPlayer(string $player, string $what): void
    {
        if ($player === '') {
            throw new \InvalidArgumentException("$what: player must be a name or an XUID, got \"\"");
        }
    }
}
