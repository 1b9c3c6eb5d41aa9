package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const topicsHelp = `klab topics create   --topic T [--partitions N] [--replication-factor R] [--config name=value ...]
klab topics list     [--exclude-internal]
klab topics describe [--topic T] [--under-replicated-partitions | --unavailable-partitions] [--exclude-internal]
klab topics delete   --topic T
All take --bootstrap-server host:port (default 127.0.0.1:9092), as kafka-topics does.`

// configFlags collects repeated --config name=value flags.
type configFlags map[string]*string

func (c configFlags) String() string { return "" }

func (c configFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want name=value, got %q", v)
	}
	c[name] = &value
	return nil
}

func runTopics(args []string) error {
	if len(args) == 0 {
		fmt.Println(topicsHelp)
		return nil
	}
	fs := flag.NewFlagSet("topics "+args[0], flag.ContinueOnError)
	bootstrap := fs.String("bootstrap-server", "127.0.0.1:9092", "brokers to start from, host:port, comma-separated")
	topic := fs.String("topic", "", "the topic")
	partitions := fs.Int("partitions", -1, "partitions (-1: the broker's num.partitions)")
	rf := fs.Int("replication-factor", -1, "replication factor (-1: the broker's default.replication.factor)")
	configs := configFlags{}
	fs.Var(configs, "config", "a topic config, name=value; repeat for more")
	underReplicated := fs.Bool("under-replicated-partitions", false, "describe: only the partitions whose ISR is smaller than their replicas")
	unavailable := fs.Bool("unavailable-partitions", false, "describe: only the partitions with no leader")
	excludeInternal := fs.Bool("exclude-internal", false, "list, describe: leave out internal topics (__consumer_offsets), which kafka-topics shows unless asked")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*bootstrap, ",")...), kgo.RequestRetries(2))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	needTopic := func() error {
		if *topic == "" {
			return errors.New("--topic is required")
		}
		return nil
	}
	switch args[0] {
	case "create":
		if err := needTopic(); err != nil {
			return err
		}
		resp, err := adm.CreateTopic(ctx, int32(*partitions), int16(*rf), configs, *topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return fmt.Errorf("creating %s: %w", *topic, errorDetail(err, resp.ErrMessage))
		}
		fmt.Printf("Created topic %s.\n", *topic)
	case "list":
		topics, err := listTopics(ctx, adm, *excludeInternal)
		if err != nil {
			return err
		}
		for _, name := range topics.Names() {
			fmt.Println(name)
		}
	case "describe":
		var names []string
		if *topic != "" {
			names = []string{*topic}
		}
		var only func(kadm.PartitionDetail) bool
		switch {
		case *underReplicated:
			only = func(p kadm.PartitionDetail) bool { return len(p.ISR) < len(p.Replicas) }
		case *unavailable:
			only = func(p kadm.PartitionDetail) bool { return p.Leader < 0 }
		}
		return describeTopics(ctx, adm, names, *excludeInternal, only)
	case "delete":
		if err := needTopic(); err != nil {
			return err
		}
		resp, err := adm.DeleteTopic(ctx, *topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return fmt.Errorf("deleting %s: %w", *topic, errorDetail(err, resp.ErrMessage))
		}
		fmt.Printf("Deleted topic %s.\n", *topic)
	default:
		return errors.New("unknown topics command\n" + topicsHelp)
	}
	return nil
}

// errorDetail adds the broker's error message to a Kafka error code.
func errorDetail(err error, message string) error {
	if message != "" && !strings.Contains(err.Error(), message) {
		return fmt.Errorf("%w (%s)", err, message)
	}
	return err
}

// listTopics lists the named topics, or all of them: the internal ones
// too (__consumer_offsets) unless excludeInternal, as kafka-topics does
// (kadm's ListTopics leaves them out).
func listTopics(ctx context.Context, adm *kadm.Client, excludeInternal bool, names ...string) (kadm.TopicDetails, error) {
	if excludeInternal {
		return adm.ListTopics(ctx, names...)
	}
	return adm.ListTopicsWithInternal(ctx, names...)
}

// describeTopics prints topics as kafka-topics --describe does: a line per
// topic with the configs set on it, then a line per partition. With only,
// it prints the partitions only chooses, and no topic lines, as
// kafka-topics --under-replicated-partitions and --unavailable-partitions
// do: during a rolling restart, an empty answer says the next broker may go.
func describeTopics(ctx context.Context, adm *kadm.Client, names []string, excludeInternal bool, only func(kadm.PartitionDetail) bool) error {
	topics, err := listTopics(ctx, adm, excludeInternal, names...)
	if err != nil {
		return err
	}
	if err := topics.Error(); err != nil {
		return err
	}
	configs, err := adm.DescribeTopicConfigs(ctx, topics.Names()...)
	if err != nil {
		return err
	}
	for _, name := range topics.Names() {
		t := topics[name]
		var set []string
		if rc, err := configs.On(name, nil); err == nil {
			for _, c := range rc.Configs {
				if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
					set = append(set, c.Key+"="+c.MaybeValue())
				}
			}
		}
		sort.Strings(set)
		ps := t.Partitions.Sorted()
		rf := 0
		if len(ps) > 0 {
			rf = len(ps[0].Replicas)
		}
		if only == nil {
			fmt.Printf("Topic: %s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: %s\n",
				name, base64.RawURLEncoding.EncodeToString(t.ID[:]), len(ps), rf, strings.Join(set, ","))
		}
		for _, p := range ps {
			if only != nil && !only(p) {
				continue
			}
			leader := strconv.Itoa(int(p.Leader))
			if p.Leader < 0 {
				leader = "none"
			}
			fmt.Printf("\tTopic: %s\tPartition: %d\tLeader: %s\tReplicas: %s\tIsr: %s\n",
				name, p.Partition, leader, joinInts(p.Replicas), joinInts(p.ISR))
		}
	}
	return nil
}

func joinInts(xs []int32) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
