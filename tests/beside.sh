#!/bin/sh
# Run a command at the lowest priority, as a scheduling group of its own: `make test` runs the
# background tests and the docs build this way, beside the browser tests, which keep the cores
# they ask for. On Linux with autogroup scheduling each session is a group that the scheduler
# serves as fairly as any other, whatever its processes' niceness, so `nice` alone gives the
# background as much CPU as the browser tests' own session. Here the command gets a session of
# its own (setsid), whose group is niced too (/proc/self/autogroup, where the kernel has it).
# Its exit status is the command's.
exec setsid --wait sh -c 'echo 19 > /proc/self/autogroup 2>/dev/null; exec nice -n 19 "$@"' beside "$@"
