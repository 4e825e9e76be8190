#!/bin/sh
# Enforce the one-way module dependencies of ../shared/DESIGN.md ("Dependency
# direction"; an arrow means "may include"). Every quoted or angled include
# of every .c/.h in a checked module is resolved the way the compiler does
# (the including file's folder first, then -I. -Iinclude -Icommon -Itests;
# so "x/...", "../x/...", "../../x/..." and "svc/..." forms are all seen)
# and the folder of the file it names must be allowed for the includer.
# Sub-folder modules (kernel/svc, dict/svc) are modules of their own: the
# core kernel/ may not include kernel/svc/, and so on.
#
# Always allowed: the module itself, common/ and include/ (the error space
# and public headers are common code); headers found nowhere in the tree
# are system headers, and nines_*.pb-c.h are the generated protos ("proto",
# allowed only where listed). tools/, bench/, tests/ and fuzz/ are not
# checked.
# Run from the top folder; prints every violation as file:line.

cd "$(dirname "$0")/.." || exit 2

# module: what it may include besides itself, common/ and include/.
# An entry with a file name (kernel/kern_key.h) allows that header only.
rules='
common:
net:proto
arbitrator:net proto
kernel:
dict:
conv:kernel dict proto
runtime:net proto
updchan:kernel runtime net proto
kernel/svc:kernel updchan dict conv runtime net proto
dict/svc:dict runtime net proto
txctl:dict conv kernel/kern_key.h kernel/kern_val.h runtime net proto
supervisor:kernel/svc dict/svc updchan txctl arbitrator runtime net proto sql
client:net proto conv kernel/kern_key.h kernel/kern_val.h dict/dict.h
sql:
'
modules=$(printf '%s\n' "$rules" | sed -n 's/^\([^:]*\):.*/\1/p')

# The module a tree path belongs to: the longest module folder prefix.
module_of() {
    best=""
    for m in $modules; do
        case "$1" in
        "$m"/*) [ ${#m} -gt ${#best} ] && best=$m ;;
        esac
    done
    case "$1" in
    include/*) best=include ;;
    esac
    printf '%s' "$best"
}

rc=0
out=$(mktemp) || exit 2
for m in $modules; do
    [ -d "$m" ] || continue
    allowed=$(printf '%s\n' "$rules" | sed -n "s|^$m:||p")
    for f in "$m"/*.c "$m"/*.h; do
        [ -f "$f" ] || continue
        dir=$(dirname "$f")
        # line number and named path of every include
        awk '/^[ \t]*#[ \t]*include[ \t]*["<]/ {
                 s = $0; sub(/^[^"<]*["<]/, "", s); sub(/[">].*$/, "", s); print FNR " " s }' "$f" |
        while read -r line inc; do
            case "$inc" in
            nines_*.pb-c.h) target=proto; path="$inc" ;;
            *)
                path=""
                for base in "$dir" . include common tests; do
                    if [ -f "$base/$inc" ]; then
                        path=$(realpath -m --relative-to=. "$base/$inc")
                        break
                    fi
                done
                [ -n "$path" ] || continue          # a system header
                case "$path" in
                ../*) echo "$f:$line: includes \"$inc\", a file outside the tree"
                      echo bad; continue ;;
                esac
                target=$(module_of "$path")
                [ -n "$target" ] || target=$(dirname "$path")
                ;;
            esac
            [ "$target" = "$m" ] && continue
            [ "$target" = common ] || [ "$target" = include ] && continue
            ok=0
            for a in $allowed; do
                if [ "$a" = "$target" ] || [ "$a" = "$path" ]; then ok=1; break; fi
            done
            [ $ok = 1 ] && continue
            if [ -n "$allowed" ]; then
                echo "$f:$line: $m/ may include only ${allowed} (and common code), not \"$inc\" ($target)"
            else
                echo "$f:$line: $m/ may include only common code, not \"$inc\" ($target)"
            fi
            echo bad
        done
    done
done >"$out" 2>&1
grep -v '^bad$' "$out"
grep -q '^bad$' "$out" && rc=1
rm -f "$out"
if [ $rc = 0 ]; then
    echo "deps-check: module dependencies are one-way"
else
    echo "deps-check: FAILED (DESIGN.md \"Dependency direction\"; rules in tools/deps-check.sh)"
fi
exit $rc
