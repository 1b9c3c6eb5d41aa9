package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"klab.dev/klab/admin"
)

// partitionOffsets is kafka-delete-records.sh's --offset-json-file:
// {"partitions":[{"topic":"orders","partition":0,"offset":3}],"version":1}.
type partitionOffsets struct {
	Partitions []struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
	} `json:"partitions"`
	Version int `json:"version"`
}

// runDeleteRecords is kafka-delete-records.sh: delete each partition's
// records before an offset (-1: every record up to the high watermark).
func runDeleteRecords(args []string) error {
	fs := flag.NewFlagSet("delete-records", flag.ContinueOnError)
	bootstrap := fs.String("bootstrap-server", "127.0.0.1:9092", "brokers to start from, host:port, comma-separated")
	file := fs.String("offset-json-file", "", `the partitions and offsets: {"partitions":[{"topic":"t","partition":0,"offset":3}],"version":1}`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("--offset-json-file is required")
	}
	offsets, err := readPartitionOffsets(*file)
	if err != nil {
		return err
	}
	adm := admin.New(admin.Options{Bootstrap: strings.Split(*bootstrap, ",")})
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), configsTimeout)
	defer cancel()
	fmt.Println("Executing records delete operation")
	results, err := adm.DeleteRecords(ctx, offsets)
	fmt.Println("Records delete operation completed:")
	for _, tp := range slices.SortedFunc(maps.Keys(results), compareTopicPartitions) {
		if r := results[tp]; r.Err != nil {
			fmt.Printf("partition: %s\terror: %v\n", tp, r.Err)
		} else {
			fmt.Printf("partition: %s\tlow_watermark: %d\n", tp, r.LowWatermark)
		}
	}
	if err != nil {
		return errors.New("some partitions kept their records; see the errors above")
	}
	return nil
}

// readPartitionOffsets reads an --offset-json-file, refusing a partition
// named twice, as Kafka's tool does.
func readPartitionOffsets(path string) (map[admin.TopicPartition]int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var in partitionOffsets
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(in.Partitions) == 0 {
		return nil, fmt.Errorf("%s names no partitions", path)
	}
	out := map[admin.TopicPartition]int64{}
	for _, p := range in.Partitions {
		tp := admin.TopicPartition{Topic: p.Topic, Partition: p.Partition}
		if _, dup := out[tp]; dup {
			return nil, fmt.Errorf("%s names partition %s twice", path, tp)
		}
		out[tp] = p.Offset
	}
	return out, nil
}
