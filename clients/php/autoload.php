<?php

declare(strict_types=1);

/*
 * Autoloader of the warpmesh PHP client: no Composer needed.
 *
 * Registers three namespace roots:
 *   Warpmesh\Agent\          -> src/            (the library)
 *   Warpmesh\Agent\Proto\    -> gen/Warpmesh/Agent/Proto/ (build.sh: protoc --php_out)
 *   Google\Protobuf\, GPBMetadata\Google\  -> the pure-PHP protobuf runtime
 *
 * The runtime is looked up in this order:
 *   1. the constant WARPMESH_PROTOBUF_PHP, defined before including this file,
 *   2. the environment variable WARPMESH_PROTOBUF_PHP,
 *   3. /usr/share/php (Debian's php-google-protobuf).
 * Each names the directory that holds Google/Protobuf/ and GPBMetadata/
 * (for a vendored copy of google/protobuf's php/src that is that src/ directory).
 * If the protobuf classes are already loadable (the C extension, or a Composer
 * autoloader registered earlier), nothing is registered for them.
 */

(static function (): void {
    $here = __DIR__;
    if (!is_dir($here . '/gen/Warpmesh/Agent/Proto')) {
        throw new \RuntimeException("warpmesh: the generated protocol classes are missing in $here/gen: run $here/build.sh (needs protoc)");
    }
    $runtime = defined('WARPMESH_PROTOBUF_PHP') ? (string) constant('WARPMESH_PROTOBUF_PHP') : '';
    if ($runtime === '') {
        $env = getenv('WARPMESH_PROTOBUF_PHP');
        $runtime = is_string($env) && $env !== '' ? $env : '/usr/share/php';
    }
    $runtime = rtrim($runtime, '/');

    $roots = [
        'Warpmesh\\Agent\\Proto\\' => $here . '/gen/Warpmesh/Agent/Proto/',
        'Warpmesh\\Agent\\' => $here . '/src/',
    ];
    if (!class_exists('Google\\Protobuf\\Internal\\Message', false)) {
        $roots['Google\\Protobuf\\'] = $runtime . '/Google/Protobuf/';
        $roots['GPBMetadata\\Google\\'] = $runtime . '/GPBMetadata/Google/';
    }

    spl_autoload_register(static function (string $class) use ($roots): void {
        foreach ($roots as $prefix => $dir) {
            if (strncmp($class, $prefix, strlen($prefix)) === 0) {
                $file = $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
                if (is_file($file)) {
                    require $file;
                }
                return;
            }
        }
    });
})();
