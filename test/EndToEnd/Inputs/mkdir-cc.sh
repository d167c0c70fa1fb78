#!/bin/sh
# A C compiler for `kilnc build --cc` that first makes $KILN_MKDIR a
# directory: an output path that changes while kilnc builds.
mkdir -p "$KILN_MKDIR"
exec cc "$@"
