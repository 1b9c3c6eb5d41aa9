package perf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/cmd/klab/internal/brokerproc"
)

// FailoverTopic is the topic a failover run writes to: one partition,
// on all three brokers.
const FailoverTopic = "failover"

// FailoverConfig is one failover run.
type FailoverConfig struct {
	Klab   string // the klab binary, run as three `klab broker` processes
	Dir    string // the brokers' data and their output, broker-N.log
	Trials int    // how many times to kill the leader
	// TunedClient gives the producer short metadata ages, retry backoffs
	// and request timeouts, as an application that cares about failover
	// would set them. Unset, the producer has franz-go's defaults, which
	// is what most clients run with and so what the figure is about.
	TunedClient bool
	// Trial, if set, is called after each trial.
	Trial func(FailoverTrial)
}

// FailoverTrial is one kill of a leader.
type FailoverTrial struct {
	N      int   // 1 for the first trial
	Leader int32 // the broker killed
	PID    int   // its process
	// Took is from the SIGKILL until the producer's next write was
	// acknowledged (acks=all) by a new leader.
	Took time.Duration
}

// FailoverResult is the trials of a run.
type FailoverResult struct{ Trials []FailoverTrial }

// Percentile is the time within which a fraction p of the trials had a
// write acknowledged, 0 < p <= 1.
func (r FailoverResult) Percentile(p float64) time.Duration {
	took := make([]time.Duration, len(r.Trials))
	for i, t := range r.Trials {
		took[i] = t.Took
	}
	slices.Sort(took)
	if len(took) == 0 {
		return 0
	}
	i := int(p*float64(len(took))+0.5) - 1
	return took[max(0, min(i, len(took)-1))]
}

// failoverTrialTimeout bounds one trial: a client that has not written
// after it is stuck, and the run reports it.
const failoverTrialTimeout = 2 * time.Minute

// Failover measures a failover as a client sees it: three `klab broker`
// processes, a topic of one partition with replication factor 3 and
// min.insync.replicas=2, and one producer, long-lived as an application's
// is. Each trial writes a record (so that the producer knows the leader
// and is connected to it), SIGKILLs the leader's process, and times from
// the kill until the producer's next write is acknowledged; then it
// starts the killed broker again, with its data, and waits until it is
// back in the ISR, so that every trial starts from a full ISR.
func Failover(ctx context.Context, cfg FailoverConfig) (FailoverResult, error) {
	if cfg.Klab == "" {
		return FailoverResult{}, errors.New("failover: no klab binary to run the brokers")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return FailoverResult{}, err
	}
	c, err := brokerproc.StartLoopback(cfg.Klab, cfg.Dir, 3)
	if err != nil {
		return FailoverResult{}, err
	}
	defer c.Stop()
	if err := c.WaitBrokers(ctx); err != nil {
		return FailoverResult{}, err
	}
	minISR := "2"
	if err := createTopics(ctx, c.Addrs, 1, 3, map[string]*string{"min.insync.replicas": &minISR}, []string{FailoverTopic}); err != nil {
		return FailoverResult{}, err
	}
	// acks=all is franz-go's default, as it is the Java client's since
	// Kafka 3.0; so is idempotence.
	var metadataAsked lastMetadata
	opts := []kgo.Opt{kgo.SeedBrokers(c.Addrs...), kgo.DefaultProduceTopic(FailoverTopic), kgo.WithHooks(&metadataAsked)}
	if cfg.TunedClient {
		opts = append(opts,
			kgo.ProduceRequestTimeout(time.Second),
			kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }),
			kgo.MetadataMinAge(10*time.Millisecond))
	}
	producer, err := kgo.NewClient(opts...)
	if err != nil {
		return FailoverResult{}, err
	}
	defer producer.Close()

	var res FailoverResult
	for n := 1; n <= cfg.Trials; n++ {
		leader, err := c.WaitFullISR(ctx, FailoverTopic)
		if err != nil {
			return res, err
		}
		if err := produceOne(ctx, producer, "before"); err != nil {
			return res, fmt.Errorf("trial %d: writing before the kill: %w", n, err)
		}
		// franz-go asks for metadata at most every metadata.min.age (5 s
		// by default): right after a failure, it asks at once, and then
		// not again for 5 s. A long-lived application has usually not
		// asked for minutes when a broker dies; the trials before this
		// one made this producer ask recently, so wait until its last
		// question is that old, as it would be in an application that
		// has run a while without trouble. (A broker dying within 5 s of
		// another trouble costs franz-go's defaults up to those 5 s.)
		if !cfg.TunedClient {
			if err := metadataAsked.olderThan(ctx, franzMetadataMinAge+500*time.Millisecond); err != nil {
				return res, err
			}
		}
		start := time.Now()
		pid, err := c.Kill(leader)
		if err != nil {
			return res, err
		}
		if err := produceOne(ctx, producer, "after"); err != nil {
			return res, fmt.Errorf("trial %d: writing after killing broker %d: %w", n, leader, err)
		}
		trial := FailoverTrial{N: n, Leader: leader, PID: pid, Took: time.Since(start)}
		res.Trials = append(res.Trials, trial)
		if cfg.Trial != nil {
			cfg.Trial(trial)
		}
		if _, err := c.Start(leader); err != nil {
			return res, err
		}
	}
	return res, nil
}

// produceOne writes one record and waits for its acknowledgement, for at
// most failoverTrialTimeout.
func produceOne(ctx context.Context, cl *kgo.Client, value string) error {
	ctx, cancel := context.WithTimeout(ctx, failoverTrialTimeout)
	defer cancel()
	return cl.ProduceSync(ctx, kgo.StringRecord(value)).FirstErr()
}

// franzMetadataMinAge is franz-go's default MetadataMinAge.
const franzMetadataMinAge = 5 * time.Second

// lastMetadata is a franz-go hook that notes when the client last sent a
// Metadata request.
type lastMetadata struct {
	mu sync.Mutex
	at time.Time
}

// OnBrokerWrite implements kgo.HookBrokerWrite.
func (h *lastMetadata) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, _ error) {
	if key == int16(kmsg.Metadata) {
		h.mu.Lock()
		h.at = time.Now()
		h.mu.Unlock()
	}
}

// olderThan waits until the last Metadata request is at least age old.
func (h *lastMetadata) olderThan(ctx context.Context, age time.Duration) error {
	for {
		h.mu.Lock()
		wait := age - time.Since(h.at)
		h.mu.Unlock()
		if wait <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}
