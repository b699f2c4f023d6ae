"""The suite's toolbox, built on `eventfn.testing` (the test API users get): event builders and
in-process clients (`support`), HTTP sinks (`sink`, `faults`), served functions and WebSockets
(`live`), an OIDC issuer (`oidc`), Redis servers of the tests' own (`redis_servers`, `faults`),
and CESQL's reference grammar (`cesql_lark`)."""
