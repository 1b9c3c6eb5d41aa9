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
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const groupsHelp = `klab groups list [--state [S,S...]]
  every consumer group, one per line; --state adds each group's state, and
  --state Stable,Empty (say) lists only the groups in those states.
klab groups describe (--group G ... | --all-groups) [--offsets | --members [--verbose] | --state]
  --offsets (the default): each partition's committed offset, log end offset,
    lag and owner; --members: the members and what they own; --state: the
    coordinator, assignment strategy, state and member count.
klab groups delete --group G [--group G2 ...]
  delete groups that have no active members, and their committed offsets.
klab groups delete-offsets --group G --topic T[:P,P] [--topic ...]
  forget an inactive group's committed offsets on some partitions
  (OffsetDelete); a group still subscribed to a topic keeps them.
klab groups reset-offsets --group G (--topic T[:P,P] ... | --all-topics)
    (--to-earliest | --to-latest | --to-offset N | --shift-by N |
     --to-datetime YYYY-MM-DDTHH:mm:SS.sss | --to-current) [--dry-run | --execute]
  move an inactive group's committed offsets; prints the plan and writes
  nothing unless --execute is given.
All take --bootstrap-server host:port (default 127.0.0.1:9092), as
kafka-consumer-groups.sh does.`

// groupsTimeout bounds a whole groups command: long enough for a group
// coordinator that is still loading its offsets, short enough that a wrong
// address is an error and not a hang.
const groupsTimeout = 15 * time.Second

// runGroups is kafka-consumer-groups.sh: list, describe, delete and reset
// the offsets of consumer groups.
func runGroups(args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Println(groupsHelp)
		return nil
	}
	switch args[0] {
	case "list":
		return groupsList(args[1:])
	case "describe":
		return groupsDescribe(args[1:])
	case "delete":
		return groupsDelete(args[1:])
	case "delete-offsets":
		return groupsDeleteOffsets(args[1:])
	case "reset-offsets":
		return groupsResetOffsets(args[1:])
	}
	fmt.Println(groupsHelp)
	return fmt.Errorf("unknown groups command %q", args[0])
}

// stringsFlag collects a flag given more than once, such as --group a
// --group b.
type stringsFlag []string

// String is the values given so far, comma-separated, as flag.Value asks.
func (s *stringsFlag) String() string { return strings.Join(*s, ",") }

// Set appends one value; flag calls it once per occurrence.
func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// groupsFlags is the flag set every groups command starts from: its name for
// errors and the --bootstrap-server flag.
func groupsFlags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("groups "+name, flag.ContinueOnError)
	bootstrap := fs.String("bootstrap-server", "127.0.0.1:9092", "brokers to start from, host:port, comma-separated")
	return fs, bootstrap
}

// connect returns an admin client and a context bounded by groupsTimeout,
// after checking that some broker answers. Without the check, an unreachable
// cluster would surface as a group request retrying until the deadline, with
// an error that says little; with it, the user reads where klab tried to
// connect.
func connect(bootstrap string) (*kadm.Client, context.Context, func(), error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(bootstrap, ",")...),
		kgo.RequestRetries(2),
		kgo.DialTimeout(3*time.Second),
	)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupsTimeout)
	done := func() { cancel(); cl.Close() }
	adm := kadm.NewClient(cl)
	pingCtx, pingCancel := context.WithTimeout(ctx, 5*time.Second)
	defer pingCancel()
	if _, err := adm.BrokerMetadata(pingCtx); err != nil {
		done()
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, nil, nil, fmt.Errorf("cannot reach the cluster at %s: no answer within 5s", bootstrap)
		}
		return nil, nil, nil, fmt.Errorf("cannot reach the cluster at %s: %w", bootstrap, err)
	}
	return adm, ctx, done, nil
}

// groupStates are the states of a classic group, as ListGroups and
// DescribeGroups spell them.
var groupStates = []string{"PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Empty"}

// stateFlag is list's --state: given alone, a bool that adds the STATE
// column; given a value (--state=Stable,Empty, or --state Stable,Empty, which
// groupsList reads from the arguments left after the flags), the states to
// list. kafka-consumer-groups.sh's --state takes its value optionally, and Go's
// flag package knows that only for bool flags.
type stateFlag struct {
	set    bool
	states []string
}

// IsBoolFlag lets --state stand without a value.
func (f *stateFlag) IsBoolFlag() bool { return true }

// String is the states given, comma-separated, as flag.Value asks.
func (f *stateFlag) String() string { return strings.Join(f.states, ",") }

// Set takes "true" (--state alone) or a list of states.
func (f *stateFlag) Set(v string) error {
	f.set = true
	if v == "true" {
		return nil
	}
	return f.add(v)
}

// add appends the comma-separated states in v, spelled as the broker spells
// them whatever their case was (Kafka's tool accepts "stable").
func (f *stateFlag) add(v string) error {
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		i := slices.IndexFunc(groupStates, func(g string) bool { return strings.EqualFold(g, s) })
		if i < 0 {
			return fmt.Errorf("--state %q: a group's state is one of %s", s, strings.Join(groupStates, ", "))
		}
		f.states = append(f.states, groupStates[i])
	}
	return nil
}

// groupsList prints every group's id, as kafka-consumer-groups.sh --list;
// with --state, in two columns, GROUP and STATE, and only the groups in the
// states given, if some are.
func groupsList(args []string) error {
	fs, bootstrap := groupsFlags("list")
	var state stateFlag
	fs.Var(&state, "state", "print each group's state; with a value (Stable,Empty), list only groups in those states")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// --state Stable,Empty: the flag package stopped at "Stable,Empty", as
	// after any bool flag. Read it as --state's value, then the flags after.
	if state.set && fs.NArg() > 0 {
		if err := state.add(fs.Arg(0)); err != nil {
			return err
		}
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	adm, ctx, done, err := connect(*bootstrap)
	if err != nil {
		return err
	}
	defer done()
	// The broker filters by state (ListGroups v4, KIP-518).
	listed, err := adm.ListGroups(ctx, state.states...)
	if err != nil {
		return fmt.Errorf("listing groups: %w", err)
	}
	if !state.set {
		for _, g := range listed.Groups() {
			fmt.Println(g)
		}
		return nil
	}
	tw := newTable(os.Stdout)
	row(tw, "GROUP", "STATE")
	for _, g := range listed.Sorted() {
		row(tw, g.Group, g.State)
	}
	return tw.Flush()
}

// newTable returns a writer that aligns tab-separated columns, as
// kafka-consumer-groups.sh pads its columns to the widest value.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// row writes one line of a table, one cell per column; an empty value is
// written "-", as Kafka writes a missing one.
func row(w io.Writer, cells ...string) {
	line := make([]string, len(cells))
	for i, c := range cells {
		line[i] = c
		if c == "" {
			line[i] = "-"
		}
	}
	fmt.Fprintln(w, strings.Join(line, "\t"))
}

// groupsDescribe prints one of three views of groups: their partitions and
// lag (the default), their members, or their state.
func groupsDescribe(args []string) error {
	fs, bootstrap := groupsFlags("describe")
	var groups stringsFlag
	fs.Var(&groups, "group", "a group to describe; repeat for more")
	all := fs.Bool("all-groups", false, "describe every group")
	members := fs.Bool("members", false, "print the members")
	verbose := fs.Bool("verbose", false, "with --members: print each member's partitions")
	state := fs.Bool("state", false, "print the state, coordinator and assignment strategy")
	offsets := fs.Bool("offsets", false, "print each partition's offsets and lag (the default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *all == (len(groups) > 0) {
		return errors.New("give --group G (one or more) or --all-groups, not both")
	}
	views := 0
	for _, v := range []bool{*members, *state, *offsets} {
		if v {
			views++
		}
	}
	if views > 1 {
		return errors.New("--offsets, --members and --state are one view each: give one")
	}
	if *verbose && !*members {
		return errors.New("--verbose goes with --members")
	}
	adm, ctx, done, err := connect(*bootstrap)
	if err != nil {
		return err
	}
	defer done()
	if *all {
		listed, err := adm.ListGroups(ctx)
		if err != nil {
			return fmt.Errorf("listing groups: %w", err)
		}
		groups = listed.Groups()
	}
	if len(groups) == 0 {
		return nil // --all-groups on a cluster without groups: nothing to print
	}
	described, err := adm.DescribeGroups(ctx, groups...)
	if err != nil {
		return fmt.Errorf("describing groups: %w", err)
	}
	var missing []string
	for _, name := range groups {
		g, ok := described[name]
		switch {
		case !ok:
			return fmt.Errorf("no answer for group %s", name)
		case errors.Is(g.Err, kerr.GroupIDNotFound) || g.Err == nil && g.State == "Dead":
			// Kafka's coordinator answers Dead for a group it does not
			// know; newer ones answer GROUP_ID_NOT_FOUND.
			fmt.Fprintf(os.Stderr, "Error: Consumer group '%s' does not exist.\n", name)
			missing = append(missing, name)
			continue
		case g.Err != nil:
			return fmt.Errorf("describing group %s: %w", name, errorDetail(g.Err, g.ErrMessage))
		}
		// As Kafka does, a note on standard error says why a group's table
		// is empty or may change (scripts reading standard output see only
		// the tables), and a blank line starts each table.
		switch g.State {
		case "Empty":
			fmt.Fprintf(os.Stderr, "\nConsumer group '%s' has no active members.\n", name)
		case "PreparingRebalance", "CompletingRebalance":
			fmt.Fprintf(os.Stderr, "\nWarning: Consumer group '%s' is rebalancing.\n", name)
		}
		fmt.Println()
		switch {
		case *members:
			printMembers(g, *verbose)
		case *state:
			printState(g)
		default:
			if err := printOffsets(ctx, adm, g); err != nil {
				return err
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no consumer group %s", strings.Join(missing, ", "))
	}
	return nil
}

// assigned returns the partitions a member owns, by topic; nil if the group
// is not a consumer group (a Connect cluster's members own no partitions).
func assigned(m kadm.DescribedGroupMember) map[string][]int32 {
	a, ok := m.Assigned.AsConsumer()
	if !ok {
		return nil
	}
	owned := make(map[string][]int32)
	for _, t := range a.Topics {
		owned[t.Topic] = append(owned[t.Topic], t.Partitions...)
	}
	return owned
}

// printMembers prints the --members view: a line per member, with the
// partitions it owns as topic(p,p,...) under --verbose.
func printMembers(g kadm.DescribedGroup, verbose bool) {
	if len(g.Members) == 0 {
		return // the note "has no active members" said it all
	}
	tw := newTable(os.Stdout)
	header := []string{"GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"}
	if verbose {
		header = append(header, "ASSIGNMENT")
	}
	row(tw, header...)
	for _, m := range g.Members {
		owned := assigned(m)
		n := 0
		var parts []string
		for topic, ps := range owned {
			n += len(ps)
			slices.Sort(ps)
			parts = append(parts, topic+"("+joinInts(ps)+")")
		}
		sort.Strings(parts)
		cells := []string{g.Group, m.MemberID, m.ClientHost, m.ClientID, strconv.Itoa(n)}
		if verbose {
			cells = append(cells, strings.Join(parts, ","))
		}
		row(tw, cells...)
	}
	tw.Flush()
}

// printState prints the --state view: the coordinator as host:port (id),
// the partition assignor the members agreed on, the state, and the number of
// members.
func printState(g kadm.DescribedGroup) {
	tw := newTable(os.Stdout)
	row(tw, "GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS")
	c := g.Coordinator
	coordinator := fmt.Sprintf("%s:%d (%d)", c.Host, c.Port, c.NodeID)
	row(tw, g.Group, coordinator, g.Protocol, g.State, strconv.Itoa(len(g.Members)))
	tw.Flush()
}

// partitionRow is one line of the offsets view.
type partitionRow struct {
	topic                    string
	partition                int32
	committed, logEnd        int64 // -1: none
	consumer, host, clientID string
}

// printOffsets prints the default view: for each partition a member owns or
// the group has committed an offset for, the committed offset, the log end
// offset (the high watermark) and the lag between the two, and the owner.
func printOffsets(ctx context.Context, adm *kadm.Client, g kadm.DescribedGroup) error {
	committed, err := adm.FetchOffsets(ctx, g.Group)
	if err != nil {
		return fmt.Errorf("fetching the offsets of %s: %w", g.Group, err)
	}
	rows := make(map[string]map[int32]*partitionRow)
	at := func(topic string, p int32) *partitionRow {
		if rows[topic] == nil {
			rows[topic] = make(map[int32]*partitionRow)
		}
		r := rows[topic][p]
		if r == nil {
			r = &partitionRow{topic: topic, partition: p, committed: -1, logEnd: -1}
			rows[topic][p] = r
		}
		return r
	}
	for _, m := range g.Members {
		for topic, ps := range assigned(m) {
			for _, p := range ps {
				r := at(topic, p)
				r.consumer, r.host, r.clientID = m.MemberID, m.ClientHost, m.ClientID
			}
		}
	}
	committed.Each(func(o kadm.OffsetResponse) {
		// An error or offset -1 means no commit: such a partition gets a
		// line only if a member owns it.
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
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("listing log end offsets: %w", err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if r := rows[o.Topic][o.Partition]; r != nil && o.Err == nil {
			r.logEnd = o.Offset
		}
	})

	var sorted []*partitionRow
	for _, ps := range rows {
		for _, r := range ps {
			sorted = append(sorted, r)
		}
	}
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		return a.topic < b.topic || a.topic == b.topic && a.partition < b.partition
	})
	tw := newTable(os.Stdout)
	row(tw, "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID")
	for _, r := range sorted {
		lag := ""
		if r.committed >= 0 && r.logEnd >= 0 {
			lag = strconv.FormatInt(r.logEnd-r.committed, 10)
		}
		row(tw, g.Group, r.topic, strconv.Itoa(int(r.partition)), offsetCell(r.committed), offsetCell(r.logEnd), lag, r.consumer, r.host, r.clientID)
	}
	return tw.Flush()
}

// offsetCell is an offset as a table cell: empty, so "-", when unknown.
func offsetCell(o int64) string {
	if o < 0 {
		return ""
	}
	return strconv.FormatInt(o, 10)
}

// groupsDelete deletes groups, as kafka-consumer-groups.sh --delete: the
// coordinator refuses a group that still has members (NON_EMPTY_GROUP).
func groupsDelete(args []string) error {
	fs, bootstrap := groupsFlags("delete")
	var groups stringsFlag
	fs.Var(&groups, "group", "a group to delete; repeat for more")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(groups) == 0 {
		return errors.New("--group is required")
	}
	adm, ctx, done, err := connect(*bootstrap)
	if err != nil {
		return err
	}
	defer done()
	resps, err := adm.DeleteGroups(ctx, groups...)
	if err != nil {
		return fmt.Errorf("deleting groups: %w", err)
	}
	var deleted, failed []string
	for _, name := range groups {
		r, ok := resps[name]
		switch {
		case !ok:
			failed = append(failed, fmt.Sprintf("* Group '%s' could not be deleted due to: no answer from its coordinator", name))
		case r.Err != nil:
			failed = append(failed, fmt.Sprintf("* Group '%s' could not be deleted due to: %v", name, errorDetail(r.Err, r.ErrMessage)))
		default:
			deleted = append(deleted, name)
		}
	}
	if len(failed) == 0 {
		fmt.Printf("Deletion of requested consumer groups (%s) was successful.\n", quoteAll(deleted))
		return nil
	}
	fmt.Fprintln(os.Stderr, "Error: Deletion of some consumer groups failed:")
	for _, f := range failed {
		fmt.Println(f)
	}
	if len(deleted) > 0 {
		fmt.Printf("\nThese consumer groups were deleted successfully: %s\n", quoteAll(deleted))
	}
	return fmt.Errorf("%d of %d groups not deleted", len(failed), len(groups))
}

// quoteAll is names as Kafka lists them in a message: 'a', 'b'.
func quoteAll(names []string) string {
	return "'" + strings.Join(names, "', '") + "'"
}

// groupsDeleteOffsets is kafka-consumer-groups.sh --delete-offsets: it
// forgets a group's committed offsets on the partitions given, so that the
// group's next consumer of them starts from auto.offset.reset. The
// coordinator refuses partitions of a topic the group's members still
// subscribe to (GROUP_SUBSCRIBED_TO_TOPIC): they would commit again.
func groupsDeleteOffsets(args []string) error {
	fs, bootstrap := groupsFlags("delete-offsets")
	group := fs.String("group", "", "the group")
	var topics stringsFlag
	fs.Var(&topics, "topic", "a topic, or topic:p,p for some of its partitions; repeat for more")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *group == "" || len(topics) == 0 {
		return errors.New("--group and --topic are required")
	}
	chosen, err := parseTopicPartitions(topics)
	if err != nil {
		return err
	}
	adm, ctx, done, err := connect(*bootstrap)
	if err != nil {
		return err
	}
	defer done()
	if err := fillPartitions(ctx, adm, chosen); err != nil {
		return err
	}
	set := make(kadm.TopicsSet)
	names := make([]string, 0, len(chosen))
	for topic, ps := range chosen {
		set.Add(topic, ps...)
		names = append(names, topic)
	}
	sort.Strings(names)
	resps, err := adm.DeleteOffsets(ctx, *group, set)
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		return fmt.Errorf("'%s' does not exist", *group)
	case errors.Is(err, kerr.NonEmptyGroup):
		return fmt.Errorf("deleting offsets of a consumer group '%s' is forbidden if the group is not empty", *group)
	case err != nil:
		return fmt.Errorf("deleting offsets: %w", err)
	}
	failed := 0
	for _, ps := range resps {
		for _, perr := range ps {
			if perr != nil {
				failed++
			}
		}
	}
	if failed == 0 {
		fmt.Printf("Request succeed for deleting offsets with topic %s group %s\n", strings.Join(names, ", "), *group)
	} else {
		fmt.Fprintln(os.Stderr, "Error: Encounter some partition level error, see the follow-up details:")
	}
	fmt.Println()
	tw := newTable(os.Stdout)
	row(tw, "TOPIC", "PARTITION", "STATUS")
	for _, tp := range set.Sorted() {
		for _, p := range tp.Partitions {
			status := "Successful"
			if perr, ok := resps.Lookup(tp.Topic, p); !ok {
				status = "Error: no answer"
			} else if perr != nil {
				status = "Error: " + perr.Error()
			}
			row(tw, tp.Topic, strconv.Itoa(int(p)), status)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d partitions' offsets not deleted", failed)
	}
	return nil
}

// resetSpec is where reset-offsets moves each partition: the flag that
// chose the rule, and its number (--to-offset, --shift-by) or time
// (--to-datetime).
type resetSpec struct {
	rule   string // "to-earliest", "to-latest", "to-current", "to-offset", "shift-by", "to-datetime"
	n      int64
	millis int64
}

// groupsResetOffsets is kafka-consumer-groups.sh --reset-offsets: it works
// out a new committed offset for each chosen partition, prints the plan, and
// commits it only under --execute. Like Kafka, it refuses a group with
// active members: they would overwrite the reset with their next commit.
func groupsResetOffsets(args []string) error {
	fs, bootstrap := groupsFlags("reset-offsets")
	group := fs.String("group", "", "the group")
	var topics stringsFlag
	fs.Var(&topics, "topic", "a topic, or topic:p,p for some of its partitions; repeat for more")
	allTopics := fs.Bool("all-topics", false, "every topic the group has committed offsets for")
	fs.Bool("to-earliest", false, "reset to the log start offset")
	fs.Bool("to-latest", false, "reset to the log end offset")
	fs.Bool("to-current", false, "reset to the committed offset (the log end where there is none)")
	toOffset := fs.Int64("to-offset", 0, "reset to this offset")
	shiftBy := fs.Int64("shift-by", 0, "move the committed offset by N (negative: back)")
	toDatetime := fs.String("to-datetime", "", "reset to the first offset at or after YYYY-MM-DDTHH:mm:SS.sss (local time, or with Z or ±hh:mm)")
	dryRun := fs.Bool("dry-run", false, "print the new offsets, commit nothing (the default)")
	execute := fs.Bool("execute", false, "commit the new offsets")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *group == "" {
		return errors.New("--group is required")
	}
	if *allTopics == (len(topics) > 0) {
		return errors.New("give --topic T (one or more) or --all-topics, not both")
	}
	if *dryRun && *execute {
		return errors.New("--dry-run and --execute: give one")
	}
	// Which rule: the one --to-* or --shift-by flag that was given.
	var spec resetSpec
	var rules []string
	fs.Visit(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "to-") || f.Name == "shift-by" {
			rules = append(rules, "--"+f.Name)
			spec.rule = f.Name
		}
	})
	if len(rules) != 1 {
		return errors.New("give one of --to-earliest, --to-latest, --to-offset, --shift-by, --to-datetime, --to-current")
	}
	switch spec.rule {
	case "to-offset":
		spec.n = *toOffset
	case "shift-by":
		spec.n = *shiftBy
	case "to-datetime":
		t, err := parseResetTime(*toDatetime)
		if err != nil {
			return err
		}
		spec.millis = t.UnixMilli()
	}
	chosen, err := parseTopicPartitions(topics)
	if err != nil {
		return err
	}

	adm, ctx, done, err := connect(*bootstrap)
	if err != nil {
		return err
	}
	defer done()
	described, err := adm.DescribeGroups(ctx, *group)
	if err != nil {
		return fmt.Errorf("describing group %s: %w", *group, err)
	}
	g, ok := described[*group]
	if !ok {
		return fmt.Errorf("no answer for group %s", *group)
	}
	// A group Kafka does not know is Dead (or GROUP_ID_NOT_FOUND): resetting
	// it commits its first offsets, as Kafka allows.
	if g.Err != nil && !errors.Is(g.Err, kerr.GroupIDNotFound) {
		return fmt.Errorf("describing group %s: %w", *group, errorDetail(g.Err, g.ErrMessage))
	}
	if g.Err == nil && g.State != "Empty" && g.State != "Dead" {
		return fmt.Errorf("assignments can only be reset if the group '%s' is inactive, but the current state is %s", *group, g.State)
	}
	committed, err := adm.FetchOffsets(ctx, *group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return fmt.Errorf("fetching the offsets of %s: %w", *group, err)
	}
	current := make(map[string]map[int32]int64)
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At >= 0 {
			if current[o.Topic] == nil {
				current[o.Topic] = make(map[int32]int64)
			}
			current[o.Topic][o.Partition] = o.At
		}
	})
	if *allTopics {
		chosen = make(map[string][]int32)
		for topic, ps := range current {
			for p := range ps {
				chosen[topic] = append(chosen[topic], p)
			}
		}
	}
	if err := fillPartitions(ctx, adm, chosen); err != nil {
		return err
	}
	plan, err := planReset(ctx, adm, chosen, current, spec)
	if err != nil {
		return err
	}

	if *execute {
		resps, err := adm.CommitOffsets(ctx, *group, plan)
		if err != nil {
			return fmt.Errorf("committing offsets: %w", err)
		}
		if err := resps.Error(); err != nil {
			return fmt.Errorf("committing offsets: %w", err)
		}
	} else if !*dryRun {
		fmt.Fprintln(os.Stderr, "WARN: No action will be performed as the --execute option is missing. Add --dry-run to say so, or --execute to reset.")
	}
	fmt.Println()
	tw := newTable(os.Stdout)
	row(tw, "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET")
	for _, o := range plan.Sorted() {
		row(tw, *group, o.Topic, strconv.Itoa(int(o.Partition)), strconv.FormatInt(o.At, 10))
	}
	return tw.Flush()
}

// parseTopicPartitions reads --topic values, T or T:P,P,...; a topic without
// partitions maps to nil, meaning all of its partitions.
func parseTopicPartitions(values []string) (map[string][]int32, error) {
	chosen := make(map[string][]int32)
	for _, v := range values {
		topic, list, hasList := strings.Cut(v, ":")
		if topic == "" {
			return nil, fmt.Errorf("--topic %q: no topic name", v)
		}
		if _, ok := chosen[topic]; !ok {
			chosen[topic] = nil
		}
		if !hasList {
			continue
		}
		for _, s := range strings.Split(list, ",") {
			p, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
			if err != nil || p < 0 {
				return nil, fmt.Errorf("--topic %q: %q is not a partition number", v, s)
			}
			chosen[topic] = append(chosen[topic], int32(p))
		}
	}
	return chosen, nil
}

// fillPartitions replaces each topic given without partitions by all of
// its partitions, from the cluster's metadata.
func fillPartitions(ctx context.Context, adm *kadm.Client, chosen map[string][]int32) error {
	var whole []string
	for topic, ps := range chosen {
		if ps == nil {
			whole = append(whole, topic)
		}
	}
	if len(whole) == 0 {
		return nil
	}
	listed, err := adm.ListTopics(ctx, whole...)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	for _, topic := range whole {
		td, ok := listed[topic]
		if !ok || td.Err != nil {
			err := error(kerr.UnknownTopicOrPartition)
			if ok {
				err = td.Err
			}
			return fmt.Errorf("topic %s: %w", topic, err)
		}
		for _, p := range td.Partitions.Sorted() {
			chosen[topic] = append(chosen[topic], p.Partition)
		}
	}
	return nil
}

// planReset works out each partition's new offset under spec, clamped into
// [log start, log end] as Kafka clamps it: an offset outside the log would
// only be reset again by the consumer's auto.offset.reset.
func planReset(ctx context.Context, adm *kadm.Client, chosen map[string][]int32, current map[string]map[int32]int64, spec resetSpec) (kadm.Offsets, error) {
	topics := make([]string, 0, len(chosen))
	for t := range chosen {
		topics = append(topics, t)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing log start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing log end offsets: %w", err)
	}
	var atTime kadm.ListedOffsets
	if spec.rule == "to-datetime" {
		if atTime, err = adm.ListOffsetsAfterMilli(ctx, spec.millis, topics...); err != nil {
			return nil, fmt.Errorf("listing offsets by time: %w", err)
		}
	}
	plan := make(kadm.Offsets)
	for topic, ps := range chosen {
		for _, p := range ps {
			start, ok1 := starts.Lookup(topic, p)
			end, ok2 := ends.Lookup(topic, p)
			switch {
			case !ok1 || !ok2:
				return nil, fmt.Errorf("%s-%d: %w", topic, p, kerr.UnknownTopicOrPartition)
			case start.Err != nil:
				return nil, fmt.Errorf("%s-%d: %w", topic, p, start.Err)
			case end.Err != nil:
				return nil, fmt.Errorf("%s-%d: %w", topic, p, end.Err)
			}
			cur, hasCommit := current[topic][p]
			var target int64
			switch spec.rule {
			case "to-earliest":
				target = start.Offset
			case "to-latest":
				target = end.Offset
			case "to-offset":
				target = spec.n
			case "to-current":
				// Kafka's rule: a partition without a commit goes to the
				// log end, where a new consumer reading "latest" starts.
				target = end.Offset
				if hasCommit {
					target = cur
				}
			case "shift-by":
				if !hasCommit {
					return nil, fmt.Errorf("cannot shift the offset of %s-%d: the group has no committed offset there", topic, p)
				}
				target = cur + spec.n
			case "to-datetime":
				// No record at or after the time: the log end.
				target = end.Offset
				if o, ok := atTime.Lookup(topic, p); ok && o.Err == nil && o.Offset >= 0 {
					target = o.Offset
				}
			}
			switch {
			case target < start.Offset:
				fmt.Fprintf(os.Stderr, "New offset (%d) is lower than earliest offset for %s-%d. Value will be set to %d\n", target, topic, p, start.Offset)
				target = start.Offset
			case target > end.Offset:
				fmt.Fprintf(os.Stderr, "New offset (%d) is higher than latest offset for %s-%d. Value will be set to %d\n", target, topic, p, end.Offset)
				target = end.Offset
			}
			plan.Add(kadm.Offset{Topic: topic, Partition: p, At: target, LeaderEpoch: -1})
		}
	}
	return plan, nil
}

// parseResetTime reads --to-datetime as Kafka does: YYYY-MM-DDTHH:mm:SS.sss,
// in local time unless a zone (Z or ±hh:mm) follows.
func parseResetTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.000Z07:00", "2006-01-02T15:04:05Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.000", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--to-datetime %q: want YYYY-MM-DDTHH:mm:SS.sss, optionally with Z or ±hh:mm", s)
}
