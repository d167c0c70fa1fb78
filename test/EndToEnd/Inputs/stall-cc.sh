#!/bin/sh
# A C compiler for `kilnc build --cc` that never compiles: it writes its pid
# to $KILN_CC_PIDFILE and sleeps, so that a test can interrupt kilnc while
# kilnc waits for its C compiler.
echo $$ > "$KILN_CC_PIDFILE"
exec sleep 60
