// Package clustertest holds the tests of issue 10 ("Store v2") that need the
// real binary: several "letterbox serve" processes on one Maildir tree, a
// kill -9 loop, and change-visibility and throughput measurements. The
// package has no code of its own; everything is in its _test.go files.
//
// The tests build cmd/letterbox once per test run (or use CLUSTERTEST_BIN),
// start servers on 127.0.0.1 with port 0, read the bound addresses from
// their JSON log, and stop every process they start by its PID.
//
// Environment (the tests pass none of it to the processes they start: the
// server reads LETTERBOX_* variables as configuration):
//
//	CLUSTERTEST_ROOTS           colon-separated directories, one per instance
//	                            (reused round-robin), under which the shared
//	                            mail tree is made: two FUSE mounts of one
//	                            GlusterFS volume stand for two hosts
//	                            (deploy/glusterfs/test.sh). Default: one local
//	                            temporary directory for all.
//	CLUSTERTEST_SCALE           factor on the workload sizes, such as 0.3 or 5
//	                            (default 1, CI-sized; -short divides by 4).
//	CLUSTERTEST_KILL_ROUNDS     rounds of TestKill9 (default 30; 5 with -short).
//	CLUSTERTEST_KILL_BOUND      how long the first SELECT+APPEND after a restart
//	                            may take before TestKill9 fails (default 60s).
//	CLUSTERTEST_KILL_KEEPGOING  1: go on after a round over the bound, waiting
//	                            up to 3 minutes for it, to measure.
//	CLUSTERTEST_MEASURE         1: run TestMeasure (visibility, throughput).
//	CLUSTERTEST_SAMPLES         samples per figure in TestMeasure (default 10).
//	CLUSTERTEST_RACE            1: build the binary with -race.
//	CLUSTERTEST_BIN             a binary to use instead of building one.
//	CLUSTERTEST_KEEP            1: keep the configuration and logs of a failed
//	                            test (and the mail tree under
//	                            CLUSTERTEST_ROOTS).
//
// MODSEQ checks (strictly increasing per folder, never going back) run only
// when the server advertises CONDSTORE; see checkModSeqs in modseq_test.go.
package clustertest
