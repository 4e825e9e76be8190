#!/bin/sh
# Enforce the one-way module dependencies of ../shared/DESIGN.md:
# kernel, dict, net and common include nothing from other modules.
rc=0
for m in common kernel dict net; do
    [ -d "$m" ] || continue
    bad=$(grep -HnE '#include "(\.\./)?(runtime|kernel|dict|net|txctl|updchan|supervisor|client)/' "$m"/*.[ch] 2>/dev/null \
          | grep -v "\"$m/" || true)
    if [ -n "$bad" ]; then
        echo "deps-check: $m/ may use only common code, but includes:"; echo "$bad"; rc=1
    fi
done
# conv (the one wire value -> kernel value conversion) may use kernel/ and
# dict/ besides common code and the wire schema: nothing with a runtime.
bad=$(grep -HnE '#include "(\.\./)?(runtime|net|txctl|updchan|supervisor|client)/' conv/*.[ch] 2>/dev/null || true)
if [ -n "$bad" ]; then
    echo "deps-check: conv/ may use only kernel/, dict/, common code and the wire schema, but includes:"; echo "$bad"; rc=1
fi
[ $rc = 0 ] && echo "deps-check: module dependencies are one-way"
exit $rc
