<?php

declare(strict_types=1);

// PHPUnit bootstrap: the library's autoloader (gen/ must exist: run build.sh first).
if (!is_dir(__DIR__ . '/../gen/Warpmesh')) {
    fwrite(STDERR, "clients/php/gen is missing: run clients/php/build.sh first\n");
    exit(1);
}
error_reporting(E_ALL);
require __DIR__ . '/../autoload.php';
require __DIR__ . '/FakeAgent.php';
require __DIR__ . '/FakeAgentTestCase.php';
