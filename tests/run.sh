#!/bin/sh
# Run each test program given; print a summary; fail if any failed.
fail=0
for t in "$@"; do
    name=$(basename "$t")
    start=$(date +%s)
    if "$t" > "$t.log" 2>&1; then
        echo "PASS $name ($(( $(date +%s) - start ))s)"
    else
        echo "FAIL $name ($(( $(date +%s) - start ))s) — output follows:"
        tail -n 60 "$t.log"
        fail=1
    fi
done
exit $fail
