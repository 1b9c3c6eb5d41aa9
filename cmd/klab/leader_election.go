package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/admin"
)

// runLeaderElection is kafka-leader-election.sh: ask the controller to
// elect leaders, preferred (each partition's first replica, if alive and in
// sync) or unclean (any live replica of a partition that has no leader,
// losing what it lacks).
func runLeaderElection(args []string) error {
	fs := flag.NewFlagSet("leader-election", flag.ContinueOnError)
	bootstrap := fs.String("bootstrap-server", "127.0.0.1:9092", "brokers to start from, host:port, comma-separated")
	electionType := fs.String("election-type", "", "preferred or unclean")
	topic := fs.String("topic", "", "the topic of the partition to elect a leader for (with --partition)")
	partition := fs.Int("partition", -1, "the partition to elect a leader for (with --topic)")
	allPartitions := fs.Bool("all-topic-partitions", false, "every partition of every topic")
	jsonFile := fs.String("path-to-json-file", "", `the partitions: {"partitions":[{"topic":"t","partition":0}]}`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	typ, err := parseElectionType(*electionType)
	if err != nil {
		return err
	}
	partitions, err := electionPartitions(*topic, *partition, *allPartitions, *jsonFile)
	if err != nil {
		return err
	}
	adm := admin.New(admin.Options{Bootstrap: strings.Split(*bootstrap, ",")})
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), configsTimeout)
	defer cancel()
	results, err := adm.ElectLeaders(ctx, typ, partitions...)
	if len(results) == 0 && err != nil {
		return err // the request failed as a whole
	}
	return printElection(typ, results)
}

// parseElectionType reads --election-type, in any case, as Kafka does.
func parseElectionType(s string) (admin.ElectionType, error) {
	switch strings.ToLower(s) {
	case "preferred":
		return admin.Preferred, nil
	case "unclean":
		return admin.Unclean, nil
	case "":
		return 0, errors.New("--election-type is required: preferred or unclean")
	}
	return 0, fmt.Errorf("--election-type %s: want preferred or unclean", s)
}

// electionPartitions are the partitions the flags name; nil for every
// partition. Exactly one way of naming them must be used.
func electionPartitions(topic string, partition int, all bool, jsonFile string) ([]admin.TopicPartition, error) {
	ways := 0
	for _, used := range []bool{topic != "" || partition >= 0, all, jsonFile != ""} {
		if used {
			ways++
		}
	}
	if ways != 1 {
		return nil, errors.New("name the partitions one way: --topic T --partition P, --all-topic-partitions, or --path-to-json-file F")
	}
	switch {
	case all:
		return nil, nil
	case jsonFile != "":
		return readPartitionList(jsonFile)
	case topic == "" || partition < 0:
		return nil, errors.New("--topic and --partition go together")
	}
	return []admin.TopicPartition{{Topic: topic, Partition: int32(partition)}}, nil
}

// printElection prints the outcome as kafka-leader-election.sh does: the
// partitions that got a new leader, those whose leader already was the one
// asked for, and each failure.
func printElection(typ admin.ElectionType, results map[admin.TopicPartition]error) error {
	var elected, notNeeded, failed []admin.TopicPartition
	for _, tp := range slices.SortedFunc(maps.Keys(results), compareTopicPartitions) {
		switch err := results[tp]; {
		case err == nil:
			elected = append(elected, tp)
		case errors.Is(err, kerr.ElectionNotNeeded):
			notNeeded = append(notNeeded, tp)
		default:
			failed = append(failed, tp)
		}
	}
	if len(elected) > 0 {
		fmt.Printf("Successfully completed leader election (%s) for partitions %s\n", typ, joinPartitions(elected, ", "))
	}
	if len(notNeeded) > 0 {
		fmt.Printf("Valid replica already elected for partitions %s\n", joinPartitions(notNeeded, ", "))
	}
	for _, tp := range failed {
		fmt.Printf("Error completing leader election (%s) for partition: %s: %v\n", typ, tp, results[tp])
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d replica(s) could not be elected", len(failed))
	}
	return nil
}
