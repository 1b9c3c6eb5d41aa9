// Package perf measures a Kafka cluster from the outside, as a user of
// Kafka would: it drives the cluster with franz-go's client (or the
// course's own) as Kafka's kafka-producer-perf-test and
// kafka-consumer-perf-test do (records per second, megabytes per second,
// produce latency percentiles), kills a leader's process and times what a
// client sees, and reads a broker process's resident memory. It also
// times the commit log against a plain file and its recovery (lesson 01),
// and a Kafka Streams word count against a hand-written loop. Every
// throughput figure runs klab beside franz-go's in-process kfake in the
// same run, so that a ratio, not a machine-dependent rate, says how klab
// does. The `klab perf` commands are built on it (they add flags, progress
// and printing), and so are its benchmarks.
//
// It lives under cmd/klab, not broker/, because it measures the broker
// through its clients: the broker's own tree must not depend on them.
package perf

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Result is what one run measured.
type Result struct {
	Records int64
	Bytes   int64 // record values only, as the Kafka tools count them
	Elapsed time.Duration
	// Latencies are produce latencies, send to acknowledgement, sorted;
	// empty for a consume run.
	Latencies []time.Duration
}

// RecordsPerSec is the run's throughput in records.
func (r Result) RecordsPerSec() float64 { return float64(r.Records) / r.Elapsed.Seconds() }

// MBPerSec is the run's throughput in megabytes (10^6) of values.
func (r Result) MBPerSec() float64 { return float64(r.Bytes) / 1e6 / r.Elapsed.Seconds() }

// Percentile returns the latency below which a fraction p of records were
// acknowledged, 0 < p <= 1.
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(p*float64(len(r.Latencies))+0.5) - 1
	return r.Latencies[max(0, min(i, len(r.Latencies)-1))]
}

// Progress is reported when a run starts, about once a second during it,
// and once more, with Final set, when it stops.
type Progress struct {
	Done, Total int64
	Elapsed     time.Duration
	Final       bool
}

// ProduceConfig says what to produce and how.
type ProduceConfig struct {
	Brokers    []string
	Topic      string
	Records    int64
	RecordSize int
	// Acks is "0", "1" or "all", as the producer's acks setting.
	Acks string
	// Idempotent is enable.idempotence: the producer numbers its batches
	// and the leader writes a retried one once (lesson 09). It needs
	// acks=all.
	Idempotent bool
	// Linger is linger.ms: how long a batch waits for more records.
	Linger time.Duration
	// BatchSize is batch.size, the most bytes of one batch; zero means
	// franz-go's default, 1,000,012 (the Java client's is 16,384).
	BatchSize int
	// Throughput, if positive, paces the run to this many records per
	// second, as kafka-producer-perf-test's --throughput does: a latency
	// measured as fast as the client can send is mostly the time records
	// wait in the client's own buffer, and says little about the broker.
	Throughput int64
	// Clients is how many producers (franz-go clients, each with its own
	// connections) share the records, taking them in turn; zero means one.
	Clients int
	// Progress, if set, is called when the run starts, about once a second,
	// and when it stops.
	Progress func(Progress)
}

// batchSize is the batch.size both clients use in a run.
func (cfg ProduceConfig) batchSize() int {
	if cfg.BatchSize > 0 {
		return cfg.BatchSize
	}
	return 1_000_012
}

// Produce sends cfg.Records records of cfg.RecordSize random bytes, without
// keys (so the partitioner spreads batches across partitions), and waits for
// every acknowledgement.
func Produce(ctx context.Context, cfg ProduceConfig) (Result, error) {
	acks := map[string]kgo.Acks{"0": kgo.NoAck(), "1": kgo.LeaderAck(), "all": kgo.AllISRAcks(), "-1": kgo.AllISRAcks()}
	ack, ok := acks[cfg.Acks]
	if !ok {
		return Result{}, fmt.Errorf("acks=%q; want 0, 1 or all", cfg.Acks)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RequiredAcks(ack),
		kgo.ProducerLinger(cfg.Linger),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(100_000),
		kgo.ProducerBatchMaxBytes(int32(cfg.batchSize())),
	}
	switch {
	case !cfg.Idempotent:
		// Five requests in flight per broker, as the Java client's
		// max.in.flight.requests.per.connection and as franz-go allows an
		// idempotent producer (alone it keeps one): the two modes then
		// differ only by idempotence.
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(5))
	case ack != kgo.AllISRAcks():
		return Result{}, fmt.Errorf("acks=%s: an idempotent producer needs acks=all (or --idempotent=false)", cfg.Acks)
	}
	clients := make([]*kgo.Client, max(cfg.Clients, 1))
	for i := range clients {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return Result{}, err
		}
		defer cl.Close()
		clients[i] = cl
	}
	next := 0 // the client that takes the next record; send is called from one goroutine
	return measureProduce(ctx, cfg,
		func(value []byte, done func(error)) {
			cl := clients[next]
			next = (next + 1) % len(clients)
			cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) { done(err) })
		},
		func(ctx context.Context) error {
			for _, cl := range clients {
				if err := cl.Flush(ctx); err != nil {
					return err
				}
			}
			return nil
		})
}

// measureProduce sends cfg.Records records of random bytes through send,
// which calls done once the record is answered, waits with flush, and
// measures: the same harness for every client, so that they compare.
func measureProduce(ctx context.Context, cfg ProduceConfig, send func(value []byte, done func(error)), flush func(context.Context) error) (Result, error) {
	value := make([]byte, cfg.RecordSize)
	rand.Read(value)
	latencies := make([]time.Duration, cfg.Records)
	var answered atomic.Int64
	var firstErr error
	var errOnce sync.Once
	stop := reportEvery(cfg.Progress, &answered, cfg.Records)
	start := time.Now()
	for i := int64(0); i < cfg.Records; i++ {
		if cfg.Throughput > 0 {
			// Record i is due i/Throughput seconds after the start; sleeping
			// less than a millisecond is not worth the call.
			if wait := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(cfg.Throughput))); wait > time.Millisecond {
				time.Sleep(wait)
			}
		}
		sent := time.Now()
		i := i
		send(value, func(err error) {
			latencies[i] = time.Since(sent)
			if err != nil {
				errOnce.Do(func() { firstErr = err })
			}
			answered.Add(1)
		})
	}
	err := flush(ctx)
	elapsed := time.Since(start)
	stop()
	if err != nil {
		return Result{}, err
	}
	if firstErr != nil {
		return Result{}, fmt.Errorf("produce: %w", firstErr)
	}
	slices.Sort(latencies)
	return Result{Records: cfg.Records, Bytes: cfg.Records * int64(cfg.RecordSize), Elapsed: elapsed, Latencies: latencies}, nil
}

// ConsumeConfig says what to consume.
type ConsumeConfig struct {
	Brokers  []string
	Topic    string
	Records  int64 // stop after this many
	Progress func(Progress)
}

// Consume reads cfg.Records records from the start of the topic.
func Consume(ctx context.Context, cfg ConsumeConfig) (Result, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20),
	)
	if err != nil {
		return Result{}, err
	}
	defer cl.Close()
	var done atomic.Int64
	var bytes int64
	stop := reportEvery(cfg.Progress, &done, cfg.Records)
	defer stop()
	start := time.Now()
	for done.Load() < cfg.Records {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return Result{}, fmt.Errorf("consume after %d records: %w", done.Load(), err)
		}
		fs.EachRecord(func(r *kgo.Record) { bytes += int64(len(r.Value)) })
		done.Add(int64(fs.NumRecords()))
	}
	return Result{Records: done.Load(), Bytes: bytes, Elapsed: time.Since(start)}, nil
}

// reportEvery calls report now, about once a second until stop is called,
// and once more, Final, when it is.
func reportEvery(report func(Progress), done *atomic.Int64, total int64) (stop func()) {
	if report == nil {
		return func() {}
	}
	start := time.Now()
	report(Progress{Done: done.Load(), Total: total})
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				report(Progress{Done: done.Load(), Total: total, Elapsed: time.Since(start)})
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
		report(Progress{Done: done.Load(), Total: total, Elapsed: time.Since(start), Final: true})
	}
}
