// Package clustertest holds the tests of issue 10 ("Store v2") that need the
// real binary: several "letterbox serve" processes on one Maildir tree, a
// kill -9 loop, and change-visibility and throughput measurements. The
// package has no code of its own; everything is in its _test.go files.
//
// The tests build cmd/letterbox once per test run (or use
// CLUSTERTEST_BIN), start servers on 127.0.0.1 with port 0 and
// read the bound addresses from their JSON log, and stop every process they
// start by its PID.
//
// Environment:
//
//	CLUSTERTEST_ROOTS    colon-separated directories, one per
//	                               instance (reused round-robin), under which
//	                               the shared mail tree is made; two FUSE
//	                               mounts of one GlusterFS volume stand for
//	                               two hosts (deploy/glusterfs/test.sh).
//	                               Default: one local temporary directory.
//	CLUSTERTEST_SCALE    multiplies the workload sizes (default 1,
//	                               CI-sized; -short divides them further).
//	CLUSTERTEST_KILL_ROUNDS  rounds of the kill -9 test (default 30).
//	CLUSTERTEST_KILL_BOUND   how long the first operation after a
//	                               restart may take before the test fails
//	                               (default 60s).
//	CLUSTERTEST_KILL_KEEPGOING=1  go on after a round over the bound
//	                               (waiting up to 3 minutes for it), to
//	                               measure; default: stop at the first.
//	CLUSTERTEST_MEASURE=1  run TestMeasure (visibility, throughput).
//	CLUSTERTEST_SAMPLES  samples per figure in TestMeasure (10).
//	CLUSTERTEST_RACE=1   build the binary with -race.
//	CLUSTERTEST_BIN      use this binary instead of building one.
//	CLUSTERTEST_KEEP=1   keep the data and logs of a failed test.
//
// MODSEQ checks (strictly increasing per folder, never going back) run only
// when the server advertises CONDSTORE; see checkModSeqs in modseq_test.go.
package clustertest
