package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"klab.dev/klab/admin"
)

// partitionList is the JSON of kafka-leader-election.sh's
// --path-to-json-file: {"partitions":[{"topic":"t","partition":0}]}.
type partitionList struct {
	Partitions []struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
	} `json:"partitions"`
}

// readPartitionList reads a --path-to-json-file.
func readPartitionList(path string) ([]admin.TopicPartition, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var in partitionList
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []admin.TopicPartition
	seen := map[admin.TopicPartition]bool{}
	for _, p := range in.Partitions {
		tp := admin.TopicPartition{Topic: p.Topic, Partition: p.Partition}
		if seen[tp] {
			return nil, fmt.Errorf("%s names partition %s twice", path, tp)
		}
		seen[tp] = true
		out = append(out, tp)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s names no partitions", path)
	}
	return out, nil
}

// compareTopicPartitions orders partitions as Kafka's tools print them: by
// topic, then by number.
func compareTopicPartitions(a, b admin.TopicPartition) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return int(a.Partition) - int(b.Partition)
}

// joinPartitions prints partitions as Kafka's tools list them: t-0,t-1.
func joinPartitions(tps []admin.TopicPartition, sep string) string {
	s := make([]string, len(tps))
	for i, tp := range tps {
		s[i] = tp.String()
	}
	return strings.Join(s, sep)
}
