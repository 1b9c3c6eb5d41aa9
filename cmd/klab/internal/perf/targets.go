package perf

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"klab.dev/klab/broker"
)

// Target is a cluster to measure: its bootstrap addresses and how to stop it.
type Target struct {
	Name    string
	Brokers []string
	Close   func()
}

// StartKlab starts one klab broker on a loopback port with its data on
// disk in dir and its warnings in dir.log, and creates the topics with the
// given partitions.
func StartKlab(ctx context.Context, dir string, partitions int32, topics ...string) (Target, error) {
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	log, err := warningsTo(dir + ".log")
	if err != nil {
		return Target{}, err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := broker.Start(cfg)
	if err != nil {
		log.Close()
		return Target{}, err
	}
	t := Target{Name: "klab", Brokers: []string{b.Addr()}, Close: func() { b.Close(); log.Close() }}
	if err := createTopics(ctx, t.Brokers, partitions, 1, nil, topics); err != nil {
		t.Close()
		return Target{}, err
	}
	return t, nil
}

// warningsTo opens the file that takes an in-process broker's warnings:
// on standard error they would mix with the run's progress, and a broker
// that stops while the others run, as they all do at the end of a run,
// makes the others warn.
func warningsTo(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.Create(path)
}

// createTopics creates topics on a cluster with kadm.
func createTopics(ctx context.Context, brokers []string, partitions int32, rf int16, configs map[string]*string, topics []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, rf, configs, topics...)
	if err == nil {
		err = resp.Error()
	}
	return err
}

// StartKfake starts franz-go's in-process fake Kafka with one broker, which
// keeps everything in memory, and the topics.
func StartKfake(partitions int32, topics ...string) (Target, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		return Target{}, err
	}
	return Target{Name: "kfake", Brokers: c.ListenAddrs(), Close: c.Close}, nil
}

// CompareConfig is one comparison run of `klab perf clients` or `klab perf
// replicated`.
type CompareConfig struct {
	Records    int64
	RecordSize int
	Partitions int32
	Linger     time.Duration
	Dir        string // klab's data directory
	Progress   func(label string, p Progress)
}

// Pair is one task measured on klab and on a peer, kfake.
type Pair struct {
	Test        string
	Klab, Kfake Result
	Ratio       float64 // klab's records/s over kfake's
}

func newPair(test string, klab, kfake Result) Pair {
	return Pair{Test: test, Klab: klab, Kfake: kfake, Ratio: klab.RecordsPerSec() / kfake.RecordsPerSec()}
}

// produceTo produces cfg.Records records to topic on t, with acks, as a
// step of a comparison.
func produceTo(ctx context.Context, t Target, cfg CompareConfig, topic, acks string) (Result, error) {
	return Produce(ctx, ProduceConfig{
		Brokers: t.Brokers, Topic: topic, Records: cfg.Records, RecordSize: cfg.RecordSize,
		Acks: acks, Linger: cfg.Linger, Progress: labelled(cfg.Progress, t.Name+" produce acks="+acks),
	})
}

// labelled is progress, a reporter of several steps, for the step named
// label; nil if progress is.
func labelled(progress func(string, Progress), label string) func(Progress) {
	if progress == nil {
		return nil
	}
	return func(p Progress) { progress(label, p) }
}
