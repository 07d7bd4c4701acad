// Package bench holds rundock's benchmarks: Go benchmarks of the in-process costs
// (announce_bench_test.go: spec parsing, rendering, applying, records, lease operations
// against an embedded etcd) and, in its sub-directories, the programs scripts/bench.sh
// runs for the process-level figures (latency, footprint, memory, scale) and the baseline timer
// loop they are compared with. Nothing in rundock imports it.
package bench
