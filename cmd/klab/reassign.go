package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/admin"
	"klab.dev/klab/broker/controller"
	"klab.dev/klab/broker/metadata"
)

const reassignHelp = `klab reassign --generate --topics-to-move-json-file F --broker-list 1,2,3
  print the topics' current assignment, and a proposed one on the brokers
  listed, placed as the controller places a new topic's replicas.
klab reassign --execute --reassignment-json-file F [--throttle BYTES_PER_SEC]
  start moving the partitions; prints the current assignment, to save for
  a rollback. --throttle caps the replication traffic of the move.
klab reassign --verify --reassignment-json-file F [--preserve-throttles]
  whether each move is complete; once all are, removes the throttles.
klab reassign --cancel --reassignment-json-file F [--preserve-throttles]
  stop the moves in progress: the partitions keep their old replicas.
klab reassign --list
  every reassignment in progress.
All take --bootstrap-server host:port (default 127.0.0.1:9092), as
kafka-reassign-partitions.sh does. The JSON formats are Kafka's:
  topics to move: {"topics":[{"topic":"orders"}],"version":1}
  reassignment:   {"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[1,2]}]}`

// The throttle configs kafka-reassign-partitions.sh sets (KIP-73): a rate
// on each broker taking part, and on each topic the replicas it applies to.
const (
	leaderThrottledRate       = "leader.replication.throttled.rate"
	followerThrottledRate     = "follower.replication.throttled.rate"
	leaderThrottledReplicas   = "leader.replication.throttled.replicas"
	followerThrottledReplicas = "follower.replication.throttled.replicas"
)

// reassignTimeout bounds one reassign command; the moves themselves go on
// in the cluster after it returns.
const reassignTimeout = 30 * time.Second

// reassignFlags are kafka-reassign-partitions.sh's flags.
type reassignFlags struct {
	bootstrap, topicsFile, reassignmentFile, brokerList string
	generate, execute, verify, cancel, list             bool
	preserveThrottles                                   bool
	throttle                                            int64
}

// runReassign is kafka-reassign-partitions.sh: generate, execute, verify,
// cancel and list partition reassignments.
func runReassign(args []string) error {
	if len(args) == 0 {
		fmt.Println(reassignHelp)
		return nil
	}
	fs := flag.NewFlagSet("reassign", flag.ContinueOnError)
	var f reassignFlags
	fs.StringVar(&f.bootstrap, "bootstrap-server", "127.0.0.1:9092", "brokers to start from, host:port, comma-separated")
	fs.BoolVar(&f.generate, "generate", false, "propose an assignment of the topics on the brokers")
	fs.BoolVar(&f.execute, "execute", false, "start the reassignment")
	fs.BoolVar(&f.verify, "verify", false, "check whether the reassignment is complete")
	fs.BoolVar(&f.cancel, "cancel", false, "cancel the reassignment")
	fs.BoolVar(&f.list, "list", false, "list the reassignments in progress")
	fs.StringVar(&f.topicsFile, "topics-to-move-json-file", "", "with --generate: the topics")
	fs.StringVar(&f.brokerList, "broker-list", "", "with --generate: the brokers to place replicas on, 1,2,3")
	fs.StringVar(&f.reassignmentFile, "reassignment-json-file", "", "the reassignment")
	fs.Int64Var(&f.throttle, "throttle", -1, "with --execute: bytes per second the move may replicate, per broker")
	fs.BoolVar(&f.preserveThrottles, "preserve-throttles", false, "with --verify and --cancel: leave the throttles in place")
	if err := fs.Parse(args); err != nil {
		return err
	}
	actions := 0
	for _, a := range []bool{f.generate, f.execute, f.verify, f.cancel, f.list} {
		if a {
			actions++
		}
	}
	if actions != 1 {
		return errors.New("give one of --generate, --execute, --verify, --cancel and --list\n" + reassignHelp)
	}
	adm := admin.New(admin.Options{Bootstrap: strings.Split(f.bootstrap, ",")})
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), reassignTimeout)
	defer cancel()
	switch {
	case f.generate:
		return reassignGenerate(ctx, adm, f)
	case f.execute:
		return reassignExecute(ctx, adm, f)
	case f.verify:
		return reassignVerify(ctx, adm, f)
	case f.cancel:
		return reassignCancel(ctx, adm, f)
	default:
		return reassignList(ctx, adm)
	}
}

// assignment is a replica list per partition.
type assignment map[admin.TopicPartition][]int32

// reassignmentJSON is Kafka's reassignment file.
type reassignmentJSON struct {
	Version    int                     `json:"version"`
	Partitions []reassignmentPartition `json:"partitions"`
}

type reassignmentPartition struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Replicas  []int32  `json:"replicas"`
	LogDirs   []string `json:"log_dirs,omitempty"`
}

// formatAssignment is an assignment as Kafka's tool prints it: one line of
// JSON, partitions in order, each replica's log dir "any".
func formatAssignment(a assignment) string {
	out := reassignmentJSON{Version: 1, Partitions: []reassignmentPartition{}}
	for _, tp := range slices.SortedFunc(maps.Keys(a), compareTopicPartitions) {
		dirs := make([]string, len(a[tp]))
		for i := range dirs {
			dirs[i] = "any"
		}
		out.Partitions = append(out.Partitions, reassignmentPartition{Topic: tp.Topic, Partition: tp.Partition, Replicas: a[tp], LogDirs: dirs})
	}
	b, _ := json.Marshal(out) // plain strings and ints: cannot fail
	return string(b)
}

// readReassignment reads a --reassignment-json-file and checks it as
// Kafka's tool does: each partition once, each with replicas, none twice.
func readReassignment(path string) (assignment, error) {
	if path == "" {
		return nil, errors.New("--reassignment-json-file is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var in reassignmentJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(in.Partitions) == 0 {
		return nil, fmt.Errorf("%s: the partition reassignment has no partitions", path)
	}
	out := assignment{}
	for _, p := range in.Partitions {
		tp := admin.TopicPartition{Topic: p.Topic, Partition: p.Partition}
		if _, dup := out[tp]; dup {
			return nil, fmt.Errorf("%s: partition %s is there twice", path, tp)
		}
		if len(p.Replicas) == 0 {
			return nil, fmt.Errorf("%s: partition %s has an empty replica list", path, tp)
		}
		for i, r := range p.Replicas {
			if slices.Contains(p.Replicas[:i], r) {
				return nil, fmt.Errorf("%s: partition %s lists broker %d twice", path, tp, r)
			}
		}
		out[tp] = p.Replicas
	}
	return out, nil
}

// currentAssignment is the replica lists of the partitions of topics, from
// Metadata.
func currentAssignment(ctx context.Context, adm *admin.Client, topics []string) (assignment, error) {
	described, err := adm.DescribeTopics(ctx, topics...)
	if err != nil {
		return nil, err
	}
	out := assignment{}
	for _, t := range described {
		for _, p := range t.Partitions {
			out[admin.TopicPartition{Topic: t.Name, Partition: p.Partition}] = p.Replicas
		}
	}
	return out, nil
}

// topicsOf lists the topics of an assignment, in order.
func topicsOf(a assignment) []string {
	var topics []string
	for tp := range a {
		if !slices.Contains(topics, tp.Topic) {
			topics = append(topics, tp.Topic)
		}
	}
	slices.Sort(topics)
	return topics
}

// reassignGenerate proposes a new assignment of the topics on the brokers
// listed, placed by the controller's own placement (controller.Assign):
// racks alternate, and preferred leaders spread from a random start, as
// Kafka's tool does, so two runs may propose different assignments.
func reassignGenerate(ctx context.Context, adm *admin.Client, f reassignFlags) error {
	topics, err := readTopicsToMove(f.topicsFile)
	if err != nil {
		return err
	}
	brokers, err := generateBrokers(ctx, adm, f.brokerList)
	if err != nil {
		return err
	}
	current, err := currentAssignment(ctx, adm, topics)
	if err != nil {
		return err
	}
	proposed := assignment{}
	for _, topic := range topics {
		if err := proposeTopic(proposed, current, topic, brokers); err != nil {
			return err
		}
	}
	fmt.Printf("Current partition replica assignment\n%s\n\n", formatAssignment(current))
	fmt.Printf("Proposed partition reassignment configuration\n%s\n", formatAssignment(proposed))
	return nil
}

// proposeTopic places a topic's partitions on brokers, with the replication
// factor it has now.
func proposeTopic(proposed, current assignment, topic string, brokers []metadata.Broker) error {
	var partitions, rf int
	for tp, replicas := range current {
		if tp.Topic == topic {
			partitions++
			rf = len(replicas)
		}
	}
	placed, err := controller.Assign(brokers, partitions, rf, rand.IntN(len(brokers)))
	if err != nil {
		return fmt.Errorf("topic %s: %w", topic, err)
	}
	for p, replicas := range placed {
		proposed[admin.TopicPartition{Topic: topic, Partition: int32(p)}] = replicas
	}
	return nil
}

// readTopicsToMove reads --topics-to-move-json-file:
// {"topics":[{"topic":"orders"}],"version":1}.
func readTopicsToMove(path string) ([]string, error) {
	if path == "" {
		return nil, errors.New("--generate needs --topics-to-move-json-file")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var in struct {
		Topics []struct {
			Topic string `json:"topic"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var topics []string
	for _, t := range in.Topics {
		if !slices.Contains(topics, t.Topic) {
			topics = append(topics, t.Topic)
		}
	}
	if len(topics) == 0 {
		return nil, fmt.Errorf("%s names no topics", path)
	}
	return topics, nil
}

// generateBrokers are the brokers of --broker-list, with their racks, from
// DescribeCluster: a broker that is not in the cluster is an error.
func generateBrokers(ctx context.Context, adm *admin.Client, list string) ([]metadata.Broker, error) {
	ids, err := parseBrokerList(list)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errors.New("--generate needs --broker-list")
	}
	cluster, err := adm.DescribeCluster(ctx)
	if err != nil {
		return nil, err
	}
	var brokers []metadata.Broker
	for _, id := range ids {
		i := slices.IndexFunc(cluster.Brokers, func(b admin.BrokerDescription) bool { return b.ID == id })
		if i < 0 {
			return nil, fmt.Errorf("broker %d is not in the cluster", id)
		}
		brokers = append(brokers, metadata.Broker{ID: id, Rack: cluster.Brokers[i].Rack})
	}
	slices.SortFunc(brokers, func(a, b metadata.Broker) int { return int(a.ID) - int(b.ID) })
	return brokers, nil
}

// reassignExecute starts the reassignment: it prints the current
// assignment (the file to give --execute to roll back), sets the throttle
// if asked, and asks the controller to move the partitions.
func reassignExecute(ctx context.Context, adm *admin.Client, f reassignFlags) error {
	target, err := readReassignment(f.reassignmentFile)
	if err != nil {
		return err
	}
	current, err := currentAssignment(ctx, adm, topicsOf(target))
	if err != nil {
		return err
	}
	rollback := assignment{}
	for tp := range target {
		replicas, ok := current[tp]
		if !ok {
			return fmt.Errorf("partition %s does not exist", tp)
		}
		rollback[tp] = replicas
	}
	fmt.Printf("Current partition replica assignment\n\n%s\n\nSave this to use as the --reassignment-json-file option during rollback\n", formatAssignment(rollback))
	if f.throttle >= 0 {
		fmt.Println("Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is removed.")
		if err := setThrottles(ctx, adm, rollback, target, f.throttle); err != nil {
			return err
		}
		fmt.Printf("The inter-broker throttle limit was set to %d B/s\n", f.throttle)
	}
	results, err := adm.AlterPartitionReassignments(ctx, target)
	if err != nil {
		return reassignmentErrors(results, err)
	}
	fmt.Printf("Successfully started partition reassignment%s for %s\n", plural(len(target)), joinPartitions(slices.SortedFunc(maps.Keys(target), compareTopicPartitions), ","))
	return nil
}

// reassignmentErrors is the error of a reassignment some partitions
// refused, one line each, as Kafka's tool prints it.
func reassignmentErrors(results map[admin.TopicPartition]error, err error) error {
	var lines []string
	for _, tp := range slices.SortedFunc(maps.Keys(results), compareTopicPartitions) {
		if results[tp] != nil {
			lines = append(lines, fmt.Sprintf("%s: %v", tp, results[tp]))
		}
	}
	if len(lines) == 0 {
		return err
	}
	return errors.New("Error reassigning partition(s):\n" + strings.Join(lines, "\n"))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// setThrottles caps the replication of a move as Kafka's tool does: on each
// topic, the replicas to throttle (as "partition:broker" pairs): the
// current replicas as leaders, since any of them may be sending, and the
// new replicas as followers, since they are the ones fetching; on each
// broker taking part, the rate.
func setThrottles(ctx context.Context, adm *admin.Client, current, target assignment, rate int64) error {
	leaders, followers := map[string][]string{}, map[string][]string{}
	brokers := map[int32]bool{}
	for tp, replicas := range target {
		if slices.Equal(replicas, current[tp]) {
			continue // not moving
		}
		for _, b := range current[tp] {
			leaders[tp.Topic] = append(leaders[tp.Topic], fmt.Sprintf("%d:%d", tp.Partition, b))
			brokers[b] = true
		}
		for _, b := range replicas {
			if !slices.Contains(current[tp], b) {
				followers[tp.Topic] = append(followers[tp.Topic], fmt.Sprintf("%d:%d", tp.Partition, b))
			}
			brokers[b] = true
		}
	}
	for _, topic := range slices.Sorted(maps.Keys(leaders)) {
		slices.Sort(leaders[topic])
		slices.Sort(followers[topic])
		err := adm.IncrementalAlterConfigs(ctx, admin.ConfigResource{Type: admin.TopicResource, Name: topic},
			admin.ConfigChange{Op: admin.SetConfig, Name: leaderThrottledReplicas, Value: strings.Join(leaders[topic], ",")},
			admin.ConfigChange{Op: admin.SetConfig, Name: followerThrottledReplicas, Value: strings.Join(followers[topic], ",")})
		if err != nil {
			return err
		}
	}
	value := strconv.FormatInt(rate, 10)
	for _, id := range slices.Sorted(maps.Keys(brokers)) {
		err := adm.IncrementalAlterConfigs(ctx, admin.ConfigResource{Type: admin.BrokerResource, Name: strconv.Itoa(int(id))},
			admin.ConfigChange{Op: admin.SetConfig, Name: leaderThrottledRate, Value: value},
			admin.ConfigChange{Op: admin.SetConfig, Name: followerThrottledRate, Value: value})
		if err != nil {
			return err
		}
	}
	return nil
}

// reassignVerify prints whether each partition's move is complete and,
// once all are, removes the throttles, as Kafka's tool does: nothing else
// would, and a throttle left behind slows every later catch-up.
func reassignVerify(ctx context.Context, adm *admin.Client, f reassignFlags) error {
	target, err := readReassignment(f.reassignmentFile)
	if err != nil {
		return err
	}
	moving, err := adm.ListPartitionReassignments(ctx, slices.Collect(maps.Keys(target))...)
	if err != nil {
		return err
	}
	current, err := settledAssignment(ctx, adm, target, moving)
	if err != nil {
		return err
	}
	fmt.Println("Status of partition reassignment:")
	for _, tp := range slices.SortedFunc(maps.Keys(target), compareTopicPartitions) {
		_, inProgress := moving[tp]
		switch {
		case inProgress:
			fmt.Printf("Reassignment of partition %s is still in progress.\n", tp)
		case slices.Equal(current[tp], target[tp]):
			fmt.Printf("Reassignment of partition %s is completed.\n", tp)
		default:
			fmt.Printf("There is no active reassignment of partition %s, but replica set is %s rather than %s.\n",
				tp, joinInts(current[tp]), joinInts(target[tp]))
		}
	}
	if len(moving) > 0 || f.preserveThrottles {
		return nil
	}
	return clearThrottles(ctx, adm, target)
}

// settledAssignment is the current assignment of the target's partitions,
// read again for a moment while a partition that is no longer moving does
// not show its target replicas: Metadata comes from any broker, which may
// not have applied the controller's last change yet, and a finished move
// would then look like a move that ended elsewhere.
func settledAssignment(ctx context.Context, adm *admin.Client, target assignment, moving map[admin.TopicPartition]admin.Reassignment) (assignment, error) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		current, err := currentAssignment(ctx, adm, topicsOf(target))
		if err != nil || time.Now().After(deadline) {
			return current, err
		}
		settled := true
		for tp, replicas := range target {
			if _, inProgress := moving[tp]; !inProgress && !slices.Equal(current[tp], replicas) {
				settled = false
			}
		}
		if settled {
			return current, nil
		}
		time.Sleep(100 * time.Millisecond) // polling another broker's catch-up, with the deadline above
	}
}

// clearThrottles removes the throttle configs from every broker of the
// cluster and of the reassignment, and from the reassignment's topics.
// Every broker, because the brokers a throttle was set on may not be those
// of this file (an earlier --execute, another file).
func clearThrottles(ctx context.Context, adm *admin.Client, target assignment) error {
	brokers, err := throttledBrokers(ctx, adm, target)
	if err != nil {
		return err
	}
	fmt.Printf("Clearing broker-level throttles on broker%s %s\n", plural(len(brokers)), joinInts(brokers))
	for _, id := range brokers {
		r := admin.ConfigResource{Type: admin.BrokerResource, Name: strconv.Itoa(int(id))}
		err := adm.IncrementalAlterConfigs(ctx, r,
			admin.ConfigChange{Op: admin.DeleteConfig, Name: leaderThrottledRate},
			admin.ConfigChange{Op: admin.DeleteConfig, Name: followerThrottledRate})
		if errors.Is(err, kerr.BrokerNotAvailable) {
			// A broker that is down keeps its throttle: say how to clear it
			// and go on with the others.
			fmt.Fprintf(os.Stderr, "broker %d is not available, so it keeps its throttle; once it is back: klab configs --alter --entity-type brokers --entity-name %d --delete-config %s,%s\n",
				id, id, leaderThrottledRate, followerThrottledRate)
			continue
		}
		if err != nil {
			return err
		}
	}
	topics := topicsOf(target)
	fmt.Printf("Clearing topic-level throttles on topic%s %s\n", plural(len(topics)), strings.Join(topics, ","))
	for _, topic := range topics {
		err := adm.IncrementalAlterConfigs(ctx, admin.ConfigResource{Type: admin.TopicResource, Name: topic},
			admin.ConfigChange{Op: admin.DeleteConfig, Name: leaderThrottledReplicas},
			admin.ConfigChange{Op: admin.DeleteConfig, Name: followerThrottledReplicas})
		if err != nil {
			return err
		}
	}
	return nil
}

// throttledBrokers are the live brokers and the reassignment's, in order.
func throttledBrokers(ctx context.Context, adm *admin.Client, target assignment) ([]int32, error) {
	cluster, err := adm.DescribeCluster(ctx)
	if err != nil {
		return nil, err
	}
	var ids []int32
	for _, b := range cluster.Brokers {
		ids = append(ids, b.ID)
	}
	for _, replicas := range target {
		ids = append(ids, replicas...)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// reassignCancel cancels the file's reassignments that are in progress:
// the partitions keep their original replicas, and the replicas being
// added are dropped.
func reassignCancel(ctx context.Context, adm *admin.Client, f reassignFlags) error {
	target, err := readReassignment(f.reassignmentFile)
	if err != nil {
		return err
	}
	moving, err := adm.ListPartitionReassignments(ctx, slices.Collect(maps.Keys(target))...)
	if err != nil {
		return err
	}
	if len(moving) == 0 {
		fmt.Println("None of the specified partition reassignments are active.")
	} else {
		cancels := assignment{}
		for tp := range moving {
			cancels[tp] = nil // nil: cancel
		}
		results, err := adm.AlterPartitionReassignments(ctx, cancels)
		if err != nil {
			return reassignmentErrors(results, err)
		}
		fmt.Printf("Successfully cancelled partition reassignment%s for: %s\n", plural(len(cancels)),
			joinPartitions(slices.SortedFunc(maps.Keys(cancels), compareTopicPartitions), ","))
	}
	if f.preserveThrottles {
		return nil
	}
	return clearThrottles(ctx, adm, target)
}

// reassignList prints the reassignments in progress as Kafka's tool does.
func reassignList(ctx context.Context, adm *admin.Client) error {
	moving, err := adm.ListPartitionReassignments(ctx)
	if err != nil {
		return err
	}
	if len(moving) == 0 {
		fmt.Println("No partition reassignments found.")
		return nil
	}
	fmt.Println("Current partition reassignments:")
	for _, tp := range slices.SortedFunc(maps.Keys(moving), compareTopicPartitions) {
		r := moving[tp]
		line := fmt.Sprintf("%s: replicas: %s.", tp, joinInts(r.Replicas))
		if len(r.Adding) > 0 {
			line += fmt.Sprintf(" adding: %s.", joinInts(r.Adding))
		}
		if len(r.Removing) > 0 {
			line += fmt.Sprintf(" removing: %s.", joinInts(r.Removing))
		}
		fmt.Println(line)
	}
	return nil
}
