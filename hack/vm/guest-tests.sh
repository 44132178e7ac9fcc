#!/bin/sh
# guest-tests.sh DIR [LIBTEST-ARGS...] — run inside the VM by hack/vm/run-tests.sh: every test
# binary in DIR, one after the other, each with --test-threads=1 and a time limit
# ($HUSK_VM_TEST_TIMEOUT seconds, default 600). Prints one `HUSK-VM-TEST:` line per binary and
# exits 0 only if every binary passed.
dir=$1
shift
limit=${HUSK_VM_TEST_TIMEOUT:-600}
failed=0
stty -ixon 2>/dev/null
for t in "$dir"/*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	echo "HUSK-VM: running $name"
	start=$(date +%s)
	# Output goes to a file first and reaches the serial console filtered to printable text: a
	# stray control byte from a test (a ^S, a terminal test's escape) must not stop the console.
	timeout "$limit" "$t" --test-threads=1 "$@" </dev/null >/tmp/husk-vm-test.out 2>&1
	rc=$?
	tr -d '\000-\010\013-\037\177' </tmp/husk-vm-test.out
	secs=$(($(date +%s) - start))
	[ "$rc" = 143 ] && echo "HUSK-VM: $name killed after ${limit}s"
	echo "HUSK-VM-TEST: $name exit=$rc secs=$secs"
	[ "$rc" = 0 ] || failed=1
done
exit $failed
