package perf

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"klab.dev/klab/broker/client"
	"klab.dev/klab/consumer"
	"klab.dev/klab/producer"
)

// ProduceCourse is Produce with the course's own producer (lesson 04)
// instead of franz-go's.
func ProduceCourse(ctx context.Context, cfg ProduceConfig) (Result, error) {
	pc := producer.DefaultConfig()
	pc.BootstrapServers = cfg.Brokers
	pc.Linger = cfg.Linger
	pc.BatchSize = cfg.batchSize()
	pc.BufferMemory = max(pc.BufferMemory, 4*pc.BatchSize)
	if err := pc.Set("acks", cfg.Acks); err != nil {
		return Result{}, err
	}
	p, err := producer.New(pc)
	if err != nil {
		return Result{}, err
	}
	defer p.Close()
	return measureProduce(ctx, cfg,
		func(value []byte, done func(error)) {
			p.SendAsync(&producer.Record{Topic: cfg.Topic, Value: value}, func(_ producer.RecordMetadata, err error) { done(err) })
		},
		p.Flush)
}

// ConsumeCourse is Consume with the course's own consumer (lesson 05):
// every partition of the topic, from the start.
func ConsumeCourse(ctx context.Context, cfg ConsumeConfig) (Result, error) {
	cluster := client.NewCluster(cfg.Brokers, "klab-perf")
	err := cluster.Refresh(ctx, cfg.Topic)
	n := len(cluster.Partitions(cfg.Topic))
	cluster.Close()
	if err != nil {
		return Result{}, err
	}
	cc := consumer.DefaultConfig()
	cc.BootstrapServers = cfg.Brokers
	cc.AutoOffsetReset = "earliest"
	cc.MaxPollRecords = 10_000
	c, err := consumer.New(cc)
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	tps := make([]consumer.TopicPartition, n)
	for i := range tps {
		tps[i] = consumer.TopicPartition{Topic: cfg.Topic, Partition: int32(i)}
	}
	c.Assign(tps...)
	var done atomic.Int64
	var bytes int64
	stop := reportEvery(cfg.Progress, &done, cfg.Records)
	defer stop()
	start := time.Now()
	for done.Load() < cfg.Records {
		recs, err := c.Poll(ctx)
		if err != nil {
			return Result{}, fmt.Errorf("consume after %d records: %w", done.Load(), err)
		}
		for _, r := range recs {
			bytes += int64(len(r.Value))
		}
		done.Add(int64(len(recs)))
	}
	return Result{Records: done.Load(), Bytes: bytes, Elapsed: time.Since(start)}, nil
}

// ClientRow compares the course's client with franz-go's on one task.
type ClientRow struct {
	Test          string
	Course, Franz Result
	Ratio         float64 // the course's records/s over franz-go's
}

// CompareClients produces to one klab broker with franz-go and with the
// course's producer (acks=all), each into a topic of its own, then reads
// each topic back with the matching consumer.
func CompareClients(ctx context.Context, cfg CompareConfig) ([]ClientRow, error) {
	topics := []string{"perf-franz", "perf-course"}
	k, err := StartKlab(ctx, cfg.Dir, cfg.Partitions, topics...)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	pcfg := func(topic, label string) ProduceConfig {
		return ProduceConfig{Brokers: k.Brokers, Topic: topic, Records: cfg.Records, RecordSize: cfg.RecordSize,
			Acks: "all", Linger: cfg.Linger, Progress: labelled(cfg.Progress, label)}
	}
	ccfg := func(topic, label string) ConsumeConfig {
		return ConsumeConfig{Brokers: k.Brokers, Topic: topic, Records: cfg.Records, Progress: labelled(cfg.Progress, label)}
	}
	var rows []ClientRow
	fp, err := Produce(ctx, pcfg(topics[0], "franz-go produce"))
	if err != nil {
		return nil, fmt.Errorf("franz-go produce: %w", err)
	}
	cp, err := ProduceCourse(ctx, pcfg(topics[1], "course produce"))
	if err != nil {
		return nil, fmt.Errorf("course produce: %w", err)
	}
	rows = append(rows, ClientRow{"produce acks=all", cp, fp, cp.RecordsPerSec() / fp.RecordsPerSec()})
	cc, err := ConsumeCourse(ctx, ccfg(topics[1], "course consume"))
	if err != nil {
		return nil, fmt.Errorf("course consume: %w", err)
	}
	fc, err := Consume(ctx, ccfg(topics[0], "franz-go consume"))
	if err != nil {
		return nil, fmt.Errorf("franz-go consume: %w", err)
	}
	rows = append(rows, ClientRow{"consume", cc, fc, cc.RecordsPerSec() / fc.RecordsPerSec()})
	return rows, nil
}
