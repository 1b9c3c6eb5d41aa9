package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"klab.dev/klab/cmd/klab/internal/perf"
)

// perfFailover measures a failover as a client sees it (perf.Failover):
// three `klab broker` processes; each trial SIGKILLs the partition's
// leader and times, from the kill, until a producer has an acks=all write
// acknowledged.
func perfFailover(args []string) error {
	fs := flag.NewFlagSet("perf failover", flag.ContinueOnError)
	trials := fs.Int("trials", 5, "how many times to kill a leader")
	tuned := fs.Bool("tuned-client", false, "give the producer short metadata ages, retry backoffs and request timeouts, for comparison;\nby default it has franz-go's defaults, as most applications do")
	dir := fs.String("dir", "", "the brokers' data directory (default: a temporary folder, removed after)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	work, cleanup, err := workDir(*dir)
	if err != nil {
		return err
	}
	defer cleanup()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	client := "franz-go's defaults"
	if *tuned {
		client = "a tuned franz-go (1 s request timeout, 10 ms retry backoff, 10 ms metadata age)"
	}
	fmt.Printf("klab perf failover: 3 broker processes (data and output in %s), topic %s (1 partition, replication factor 3, min.insync.replicas=2), a producer with %s, %d trials\n",
		work, perf.FailoverTopic, client, *trials)
	res, err := perf.Failover(ctx, perf.FailoverConfig{
		Klab: self, Dir: work, Trials: *trials, TunedClient: *tuned,
		Trial: func(t perf.FailoverTrial) {
			fmt.Printf("  trial %2d: killed leader %d (pid %d); a new leader took an acks=all write after %v\n",
				t.N, t.Leader, t.PID, t.Took.Round(time.Millisecond))
		},
	})
	if err != nil {
		return err
	}
	fmt.Printf("\nfailover, SIGKILL to the next acknowledged write: p50 %v, p90 %v, max %v (%d trials)\n",
		res.Percentile(0.5).Round(time.Millisecond), res.Percentile(0.9).Round(time.Millisecond), res.Percentile(1).Round(time.Millisecond), len(res.Trials))
	return nil
}
