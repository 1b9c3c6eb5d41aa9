package perf_test

import (
	"context"
	"testing"
	"time"

	"klab.dev/klab/cmd/klab/internal/perf"
)

// BenchmarkCourseClients produces benchRecords records with the course's
// producer and with franz-go's to one klab broker (acks=all, linger 5 ms),
// then reads them back with the course's consumer and with franz-go's;
// compare the records/s of each pair.
func BenchmarkCourseClients(b *testing.B) {
	ctx := context.Background()
	for _, client := range []string{"course", "franz-go"} {
		b.Run("produce/"+client, func(b *testing.B) {
			target := startTarget(b, "klab")
			var last perf.Result
			for b.Loop() {
				cfg := perf.ProduceConfig{Brokers: target.Brokers, Topic: "bench", Records: benchRecords, RecordSize: 100, Acks: "all", Linger: 5 * time.Millisecond}
				var err error
				if client == "course" {
					last, err = perf.ProduceCourse(ctx, cfg)
				} else {
					last, err = perf.Produce(ctx, cfg)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(last.RecordsPerSec(), "records/s")
		})
		b.Run("consume/"+client, func(b *testing.B) {
			target := startTarget(b, "klab")
			if _, err := perf.Produce(ctx, perf.ProduceConfig{Brokers: target.Brokers, Topic: "bench", Records: benchRecords, RecordSize: 100, Acks: "1", Linger: 5 * time.Millisecond}); err != nil {
				b.Fatal(err)
			}
			var last perf.Result
			for b.Loop() {
				cfg := perf.ConsumeConfig{Brokers: target.Brokers, Topic: "bench", Records: benchRecords}
				var err error
				if client == "course" {
					last, err = perf.ConsumeCourse(ctx, cfg)
				} else {
					last, err = perf.Consume(ctx, cfg)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(last.RecordsPerSec(), "records/s")
		})
	}
}
