package main

import "errors"

// runCluster will start the local cluster. The wire-protocol broker it runs
// is built in lesson 03; until then it says so rather than pretend.
func runCluster(args []string) error {
	return errors.New("not built yet: the broker that speaks Kafka's wire protocol arrives with lesson 03 " +
		"(see README.md, \"What works today\"). Today klab has the commit log: try `go run ./cmd/klab perf log`")
}
