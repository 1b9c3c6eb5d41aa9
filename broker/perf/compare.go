package perf

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
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
// disk in dir, and creates the topics with the given partitions.
func StartKlab(ctx context.Context, dir string, partitions int32, topics ...string) (Target, error) {
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := broker.Start(cfg)
	if err != nil {
		return Target{}, err
	}
	t := Target{Name: "klab", Brokers: []string{b.Addr()}, Close: func() { b.Close() }}
	if err := createTopics(ctx, t.Brokers, partitions, 1, nil, topics); err != nil {
		t.Close()
		return Target{}, err
	}
	return t, nil
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

// CompareConfig is one comparison run.
type CompareConfig struct {
	Records    int64
	RecordSize int
	Partitions int32
	Linger     time.Duration
	Dir        string // klab's data directory
	Progress   func(label string, p Progress)
}

// Row is one measurement of the comparison.
type Row struct {
	Test          string
	Klab, Kfake   Result
	RatioRecsPerS float64 // klab's records/s over kfake's
}

// Compare produces with acks=1, then with acks=all, then consumes what
// acks=all wrote, against klab and against kfake, in this one run.
func Compare(ctx context.Context, cfg CompareConfig) ([]Row, error) {
	topics := []string{"perf-acks-1", "perf-acks-all"}
	k, err := StartKlab(ctx, cfg.Dir, cfg.Partitions, topics...)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	f, err := StartKfake(cfg.Partitions, topics...)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	steps := []struct {
		test string
		run  func(Target) (Result, error)
	}{
		{"produce acks=1", func(t Target) (Result, error) { return produceTo(ctx, t, cfg, topics[0], "1") }},
		{"produce acks=all", func(t Target) (Result, error) { return produceTo(ctx, t, cfg, topics[1], "all") }},
		{"consume", func(t Target) (Result, error) {
			return Consume(ctx, ConsumeConfig{Brokers: t.Brokers, Topic: topics[1], Records: cfg.Records, Progress: progressFor(cfg, t.Name+" consume")})
		}},
	}
	var rows []Row
	for i, s := range steps {
		// Take turns at going first, so that neither always meets the page
		// cache and the garbage collector in the state the other left.
		order := []Target{k, f}
		if i%2 == 1 {
			order = []Target{f, k}
		}
		results := map[string]Result{}
		for _, t := range order {
			r, err := s.run(t)
			if err != nil {
				return rows, fmt.Errorf("%s %s: %w", t.Name, s.test, err)
			}
			results[t.Name] = r
		}
		kr, fr := results[k.Name], results[f.Name]
		rows = append(rows, Row{Test: s.test, Klab: kr, Kfake: fr, RatioRecsPerS: kr.RecordsPerSec() / fr.RecordsPerSec()})
	}
	return rows, nil
}

func produceTo(ctx context.Context, t Target, cfg CompareConfig, topic, acks string) (Result, error) {
	return Produce(ctx, ProduceConfig{
		Brokers: t.Brokers, Topic: topic, Records: cfg.Records, RecordSize: cfg.RecordSize,
		Acks: acks, Linger: cfg.Linger, Progress: progressFor(cfg, t.Name+" produce acks="+acks),
	})
}

func progressFor(cfg CompareConfig, label string) func(Progress) {
	if cfg.Progress == nil {
		return nil
	}
	return func(p Progress) { cfg.Progress(label, p) }
}

// PrintRows writes the comparison as a table.
func PrintRows(w io.Writer, rows []Row) {
	fmt.Fprintf(w, "%-18s %14s %14s %9s %12s %12s %12s %12s\n", "", "klab rec/s", "kfake rec/s", "klab/kfake", "klab p50", "klab p99", "kfake p50", "kfake p99")
	for _, r := range rows {
		fmt.Fprintf(w, "%-18s %14.0f %14.0f %9.2f", r.Test, r.Klab.RecordsPerSec(), r.Kfake.RecordsPerSec(), r.RatioRecsPerS)
		if len(r.Klab.Latencies) > 0 {
			fmt.Fprintf(w, " %12s %12s %12s %12s", ms(r.Klab.Percentile(0.5)), ms(r.Klab.Percentile(0.99)), ms(r.Kfake.Percentile(0.5)), ms(r.Kfake.Percentile(0.99)))
		}
		fmt.Fprintln(w)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// PrintClientRows writes the client comparison as a table.
func PrintClientRows(w io.Writer, rows []ClientRow) {
	fmt.Fprintf(w, "%-18s %14s %14s %12s %12s %12s %12s %12s\n", "", "course rec/s", "franz rec/s", "course/franz", "course p50", "course p99", "franz p50", "franz p99")
	for _, r := range rows {
		fmt.Fprintf(w, "%-18s %14.0f %14.0f %12.2f", r.Test, r.Course.RecordsPerSec(), r.Franz.RecordsPerSec(), r.Ratio)
		if len(r.Course.Latencies) > 0 {
			fmt.Fprintf(w, " %12s %12s %12s %12s", ms(r.Course.Percentile(0.5)), ms(r.Course.Percentile(0.99)), ms(r.Franz.Percentile(0.5)), ms(r.Franz.Percentile(0.99)))
		}
		fmt.Fprintln(w)
	}
}
