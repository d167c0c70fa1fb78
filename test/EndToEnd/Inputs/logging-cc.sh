#!/bin/sh
# A C compiler for `kilnc build --cc`: appends its arguments to $KILN_CC_LOG,
# then runs $KILN_CC_REAL with them.
echo "$*" >> "$KILN_CC_LOG"
exec "$KILN_CC_REAL" "$@"
