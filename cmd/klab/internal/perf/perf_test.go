package perf_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"klab.dev/klab/cmd/klab/internal/perf"
)

// TestFiguresProduceAndConsumeThroughBoth runs the cheap figures at a
// tiny size: every record goes through klab and kfake, and each figure has
// its ratio and target.
func TestFiguresProduceAndConsumeThroughBoth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	figures, err := perf.Figures(ctx, perf.FiguresConfig{
		Records: 2000, OnePartitionRecords: 500, RecordSize: 100, Partitions: 3, Linger: time.Millisecond,
		Dir: t.TempDir(), Only: []string{"produce", "consume", "one-partition"},
	})
	require.NoError(t, err)
	require.Len(t, figures, 4)
	for _, f := range figures {
		assert.Positive(t, f.Ratio, f.Name)
		assert.Contains(t, f.Klab, "rec/s", f.Name)
		assert.Contains(t, f.Peer, "rec/s", f.Name)
		assert.NotEmpty(t, f.Target, f.Name)
	}
}

func TestFiguresRefusesAnUnknownSet(t *testing.T) {
	_, err := perf.Figures(context.Background(), perf.FiguresConfig{Only: []string{"latency"}})
	assert.ErrorContains(t, err, `no figure set "latency"`)
}

func TestResidentBytesOfThisProcess(t *testing.T) {
	rss, err := perf.ResidentBytes(os.Getpid())
	require.NoError(t, err)
	assert.Greater(t, rss, int64(1<<20), "a Go test binary holds more than a megabyte")
}

// benchRecords is what each benchmark iteration moves. `klab perf compare`
// runs 1,000,000 by default; the benchmark keeps a run short.
const benchRecords = 200_000

// BenchmarkProduce produces with acks=1 and acks=all to klab (one broker,
// data on disk) and to kfake (in memory), in the same run; compare the
// records/s of the klab and kfake lines.
func BenchmarkProduce(b *testing.B) {
	for _, acks := range []string{"1", "all"} {
		for _, name := range []string{"klab", "kfake"} {
			b.Run(name+"/acks="+acks, func(b *testing.B) { benchProduce(b, startTarget(b, name), acks) })
		}
	}
}

// BenchmarkProduceReplicated produces benchRecords records with acks=all
// to three klab brokers, replication factor 3 and min.insync.replicas=2,
// and to one kfake broker, which replicates nothing: the ratio of their
// records/s is what replication costs klab.
func BenchmarkProduceReplicated(b *testing.B) {
	for _, name := range []string{"klab3", "kfake"} {
		b.Run(name, func(b *testing.B) { benchProduce(b, startTarget(b, name), "all") })
	}
}

// benchProduce produces benchRecords records to target with acks, once
// per iteration, and reports the last run's rate and latencies.
func benchProduce(b *testing.B, target perf.Target, acks string) {
	var last perf.Result
	for b.Loop() {
		r, err := perf.Produce(context.Background(), perf.ProduceConfig{
			Brokers: target.Brokers, Topic: "bench", Records: benchRecords, RecordSize: 100,
			Acks: acks, Linger: 5 * time.Millisecond,
		})
		if err != nil {
			b.Fatal(err)
		}
		last = r
	}
	b.ReportMetric(last.RecordsPerSec(), "records/s")
	b.ReportMetric(float64(last.Percentile(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(last.Percentile(0.99).Microseconds())/1000, "p99-ms")
}

// BenchmarkConsume reads benchRecords records from the start of a topic.
func BenchmarkConsume(b *testing.B) {
	for _, name := range []string{"klab", "kfake"} {
		b.Run(name, func(b *testing.B) {
			target := startTarget(b, name)
			if _, err := perf.Produce(context.Background(), perf.ProduceConfig{
				Brokers: target.Brokers, Topic: "bench", Records: benchRecords, RecordSize: 100, Acks: "1", Linger: 5 * time.Millisecond,
			}); err != nil {
				b.Fatal(err)
			}
			var last perf.Result
			for b.Loop() {
				r, err := perf.Consume(context.Background(), perf.ConsumeConfig{Brokers: target.Brokers, Topic: "bench", Records: benchRecords})
				if err != nil {
					b.Fatal(err)
				}
				last = r
			}
			b.ReportMetric(last.RecordsPerSec(), "records/s")
		})
	}
}

func startTarget(b *testing.B, name string) perf.Target {
	b.Helper()
	var t perf.Target
	var err error
	switch name {
	case "klab":
		t, err = perf.StartKlab(context.Background(), b.TempDir(), 6, "bench")
	case "klab3":
		t, err = perf.StartKlabCluster(context.Background(), b.TempDir(), 3, 2, 6, "bench")
	default:
		t, err = perf.StartKfake(6, "bench")
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(t.Close)
	return t
}
