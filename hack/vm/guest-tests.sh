#!/bin/sh
# guest-tests.sh DIR [LIBTEST-ARGS...] — run inside the VM by hack/vm/run-tests.sh: every test
# binary in DIR, one after the other, each with --test-threads=1 and a time limit
# ($HUSK_VM_TEST_TIMEOUT seconds, default 600). Prints one `HUSK-VM-TEST:` line per binary and
# exits 0 only if every binary passed.
dir=$1
shift
limit=${HUSK_VM_TEST_TIMEOUT:-600}
failed=0
for t in "$dir"/*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	echo "HUSK-VM: running $name"
	start=$(date +%s)
	timeout "$limit" "$t" --test-threads=1 "$@"
	rc=$?
	secs=$(($(date +%s) - start))
	[ "$rc" = 143 ] && echo "HUSK-VM: $name killed after ${limit}s"
	echo "HUSK-VM-TEST: $name exit=$rc secs=$secs"
	[ "$rc" = 0 ] || failed=1
done
exit $failed
