package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/streams"
)

const streamsHelp = `klab streams describe --application-id A [--state-dir D]
  a streams application: its group's state, each member (a stream thread)
  with its tasks and input partitions, each input partition's committed
  offset, end offset and lag, and, from the status file an instance keeps
  in <state-dir>/<application-id> on this machine, each store's restore
  state. --state-dir defaults to Kafka's, <tmp>/kafka-streams.
Takes --bootstrap-server host:port (default 127.0.0.1:9092).`

// runStreams is the streams command: what kafka-streams-groups.sh
// --describe shows of a Kafka Streams application.
func runStreams(args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Println(streamsHelp)
		return nil
	}
	if args[0] == "describe" {
		return streamsDescribe(args[1:], os.Stdout)
	}
	fmt.Println(streamsHelp)
	return fmt.Errorf("unknown streams command %q", args[0])
}

// streamsMember is one member of an application's group: a stream thread,
// its tasks (from its assignment's user data) and its partitions.
type streamsMember struct {
	kadm.DescribedGroupMember
	tasks []streams.AssignedTask
	owned map[string][]int32
}

// streamsDescribe prints the describe view of one application to w.
func streamsDescribe(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("streams describe", flag.ContinueOnError)
	bootstrap := fs.String("bootstrap-server", "127.0.0.1:9092", "brokers to start from, host:port, comma-separated")
	appID := fs.String("application-id", "", "the application.id of the application")
	stateDir := fs.String("state-dir", streams.DefaultConfig().StateDir, "the state.dir of an instance on this machine")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *appID == "" {
		return errors.New("give --application-id")
	}
	adm, ctx, done, err := connect(*bootstrap)
	if err != nil {
		return err
	}
	defer done()
	described, err := adm.DescribeGroups(ctx, *appID)
	if err != nil {
		return fmt.Errorf("describing the group of %s: %w", *appID, err)
	}
	g, ok := described[*appID]
	switch {
	case !ok:
		return fmt.Errorf("no answer for group %s", *appID)
	case errors.Is(g.Err, kerr.GroupIDNotFound) || g.Err == nil && g.State == "Dead":
		return fmt.Errorf("no streams application %s: its group does not exist", *appID)
	case g.Err != nil:
		return fmt.Errorf("describing the group of %s: %w", *appID, errorDetail(g.Err, g.ErrMessage))
	}
	if g.State == "Empty" {
		fmt.Fprintf(os.Stderr, "\nStreams application '%s' has no active members.\n", *appID)
	} else if g.State == "PreparingRebalance" || g.State == "CompletingRebalance" {
		fmt.Fprintf(os.Stderr, "\nWarning: streams application '%s' is rebalancing.\n", *appID)
	}

	tw := newTable(w)
	fmt.Fprintln(w)
	row(tw, "APPLICATION", "STATE", "ASSIGNMENT-STRATEGY", "#MEMBERS")
	row(tw, *appID, g.State, g.Protocol, strconv.Itoa(len(g.Members)))
	tw.Flush()

	members := streamsMembers(g)
	if len(members) > 0 {
		fmt.Fprintln(w)
		tw = newTable(w)
		row(tw, "CLIENT-ID", "HOST", "#TASKS", "TASKS", "PARTITIONS")
		for _, m := range members {
			var tasks []string
			for _, task := range m.tasks {
				tasks = append(tasks, task.ID.String())
			}
			row(tw, m.ClientID, m.ClientHost, strconv.Itoa(len(m.tasks)), strings.Join(tasks, ","), ownedList(m.owned))
		}
		tw.Flush()
	}
	if err := printStreamsLag(ctx, adm, g.Group, members, w); err != nil {
		return err
	}
	printStoreStatus(*stateDir, *appID, w)
	return nil
}

// streamsMembers decodes each member's assignment, sorted by client id.
// A member whose user data is not the streams assignor's shows no tasks.
func streamsMembers(g kadm.DescribedGroup) []streamsMember {
	var out []streamsMember
	for _, m := range g.Members {
		sm := streamsMember{DescribedGroupMember: m, owned: assigned(m)}
		if a, ok := m.Assigned.AsConsumer(); ok && len(a.UserData) > 0 {
			if info, err := streams.DecodeAssignmentInfo(a.UserData); err == nil {
				sm.tasks = info.Tasks
			}
		}
		out = append(out, sm)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out
}

// ownedList writes partitions as topic(p,p),topic(p), sorted.
func ownedList(owned map[string][]int32) string {
	var parts []string
	for topic, ps := range owned {
		ps = slices.Sorted(slices.Values(ps))
		parts = append(parts, topic+"("+joinInts(ps)+")")
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// endOffsetsWait bounds the wait for the input partitions' end offsets.
const endOffsetsWait = 5 * time.Second

// printStreamsLag prints, for each input partition the application owns
// or has committed, its committed offset, end offset, lag, and the member
// and task that read it.
func printStreamsLag(ctx context.Context, adm *kadm.Client, group string, members []streamsMember, w io.Writer) error {
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("fetching the offsets of %s: %w", group, err)
	}
	type lagRow struct {
		topic             string
		partition         int32
		committed, logEnd int64
		clientID, task    string
	}
	rows := map[string]map[int32]*lagRow{}
	at := func(topic string, p int32) *lagRow {
		if rows[topic] == nil {
			rows[topic] = map[int32]*lagRow{}
		}
		if rows[topic][p] == nil {
			rows[topic][p] = &lagRow{topic: topic, partition: p, committed: -1, logEnd: -1}
		}
		return rows[topic][p]
	}
	for _, m := range members {
		for topic, ps := range m.owned {
			for _, p := range ps {
				r := at(topic, p)
				r.clientID = m.ClientID
				for _, task := range m.tasks {
					if task.ID.Partition == p && slices.Contains(task.Topics, topic) {
						r.task = task.ID.String()
					}
				}
			}
		}
	}
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At >= 0 {
			at(o.Topic, o.Partition).committed = o.At
		}
	})
	if len(rows) == 0 {
		return nil
	}
	topics := make([]string, 0, len(rows))
	for t := range rows {
		topics = append(topics, t)
	}
	// A partition without a leader has no end offset to give: its row
	// shows "-", and the others are shown all the same. Its broker is not
	// waited for long.
	ectx, cancel := context.WithTimeout(ctx, endOffsetsWait)
	ends, err := adm.ListEndOffsets(ectx, topics...)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\nWarning: some end offsets are unknown (a partition without a leader?), shown as -: %v\n", err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if r := rows[o.Topic][o.Partition]; r != nil && o.Err == nil {
			r.logEnd = o.Offset
		}
	})
	var sorted []*lagRow
	for _, ps := range rows {
		for _, r := range ps {
			sorted = append(sorted, r)
		}
	}
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		return a.topic < b.topic || a.topic == b.topic && a.partition < b.partition
	})
	fmt.Fprintln(w)
	tw := newTable(w)
	row(tw, "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "TASK", "CLIENT-ID")
	for _, r := range sorted {
		lag := ""
		if r.committed >= 0 && r.logEnd >= 0 {
			lag = strconv.FormatInt(r.logEnd-r.committed, 10)
		}
		row(tw, r.topic, strconv.Itoa(int(r.partition)), offsetCell(r.committed), offsetCell(r.logEnd), lag, r.task, r.clientID)
	}
	return tw.Flush()
}

// printStoreStatus prints the stores of the instance whose status file is
// in stateDir, if there is one: each task's stores and how far their
// restore is. An instance elsewhere has its status file on its machine.
func printStoreStatus(stateDir, appID string, w io.Writer) {
	st, err := streams.ReadStatus(stateDir, appID)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "\nNo instance of %s keeps its state in %s on this machine: no store states to show.\n", appID, stateDir)
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "\nReading the status of %s: %v\n", appID, err)
		return
	}
	fmt.Fprintln(w)
	age := time.Since(st.Updated).Round(time.Second)
	fmt.Fprintf(w, "Local instance %s (pid %d): %s, updated %v ago\n", st.ClientID, st.PID, st.State, age)
	if st.Error != "" {
		fmt.Fprintf(w, "Error: %s\n", st.Error)
	}
	tw := newTable(w)
	row(tw, "THREAD", "TASK", "PARTITIONS", "STORE", "STATE", "RESTORED")
	for _, th := range st.Threads {
		for _, task := range th.Tasks {
			partitions := strings.Join(task.Partitions, ",")
			if len(task.Stores) == 0 {
				row(tw, th.Name, task.ID.String(), partitions, "", "", "")
			}
			for _, s := range task.Stores {
				restored := ""
				if s.State != streams.StoreUnlogged {
					restored = fmt.Sprintf("%d of %d", s.Restored, s.Total)
				}
				row(tw, th.Name, task.ID.String(), partitions, s.Name, s.State, restored)
			}
		}
	}
	tw.Flush()
	for _, th := range st.Threads {
		for _, task := range th.Tasks {
			if task.Dropped > 0 {
				fmt.Fprintf(w, "Task %s dropped %d records with a timestamp before 1970.\n", task.ID, task.Dropped)
			}
		}
	}
}
