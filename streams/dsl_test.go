package streams_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/streams"
)

var t0 = time.UnixMilli(1_700_000_000_000)

func wordCount(input, output string) *streams.StreamsBuilder {
	b := streams.NewStreamsBuilder()
	lines := streams.Stream(b, input, streams.Consumed[string, string]{Key: streams.String, Value: streams.String})
	words := streams.FlatMapValues(lines, func(_ string, line string) []string { return strings.Fields(strings.ToLower(line)) })
	counts := streams.GroupBy(words, func(_, w string) string { return w }, streams.Grouped[string, string]{Key: streams.String, Value: streams.String}).
		Count(streams.Materialized[string, int64]{Name: "counts"})
	counts.ToStream().To(output, streams.Produced[string, int64]{})
	return b
}

func TestDSLWordCount(t *testing.T) {
	topo, err := wordCount("text", "counts").Build()
	require.NoError(t, err)
	t.Log(topo.Describe())
	d, err := streams.NewTestDriver(topo, streams.TestDriverOptions{ApplicationID: "wc"})
	require.NoError(t, err)
	defer d.Close()
	in := streams.InputTopic(d, "text", streams.String, streams.String)
	out := streams.OutputTopic(d, "counts", streams.String, streams.Int64)
	require.NoError(t, in.Pipe("", "Hello Kafka", t0))
	require.NoError(t, in.Pipe("", "hello streams", t0))
	kvs, err := out.ReadKeyValues()
	require.NoError(t, err)
	require.Equal(t, []streams.KeyValue[string, int64]{{"hello", 1}, {"kafka", 1}, {"hello", 2}, {"streams", 1}}, kvs)
	rep, err := streams.OutputTopic(d, "wc-counts-repartition", streams.String, streams.String).ReadKeyValues()
	require.NoError(t, err)
	require.Len(t, rep, 4)
}

func TestDSLSplitAndJoin(t *testing.T) {
	b := streams.NewStreamsBuilder()
	users := streams.Table(b, "users", streams.Consumed[string, string]{Key: streams.String, Value: streams.String}, streams.Materialized[string, string]{Name: "users"})
	clicks := streams.Stream(b, "clicks", streams.Consumed[string, int64]{Key: streams.String, Value: streams.Int64})
	branches := clicks.Split("c-").Branch("big", func(_ string, n int64) bool { return n > 10 }).DefaultBranch("small")
	enriched := streams.Join(branches["c-big"], users, func(n int64, region string) string { return region }, streams.Joined[string, int64]{})
	enriched.To("big-clicks-by-region", streams.Produced[string, string]{Value: streams.String})
	branches["c-small"].To("small", streams.Produced[string, int64]{})
	topo, err := b.Build()
	require.NoError(t, err)
	t.Log(topo.Describe())
	d, err := streams.NewTestDriver(topo, streams.TestDriverOptions{})
	require.NoError(t, err)
	defer d.Close()
	u := streams.InputTopic(d, "users", streams.String, streams.String)
	c := streams.InputTopic(d, "clicks", streams.String, streams.Int64)
	require.NoError(t, u.Pipe("alice", "eu", t0))
	require.NoError(t, c.Pipe("alice", 20, t0))
	require.NoError(t, c.Pipe("bob", 30, t0))
	require.NoError(t, c.Pipe("alice", 3, t0))
	big, err := streams.OutputTopic(d, "big-clicks-by-region", streams.String, streams.String).ReadKeyValues()
	require.NoError(t, err)
	require.Equal(t, []streams.KeyValue[string, string]{{"alice", "eu"}}, big)
	small, err := streams.OutputTopic(d, "small", streams.String, streams.Int64).ReadKeyValues()
	require.NoError(t, err)
	require.Equal(t, []streams.KeyValue[string, int64]{{"alice", 3}}, small)
}

// pipeStrings pipes key/value pairs into topic.
func pipeStrings(t *testing.T, d *streams.TestDriver, topic string, kvs ...string) {
	t.Helper()
	in := streams.InputTopic(d, topic, streams.String, streams.String)
	for i := 0; i < len(kvs); i += 2 {
		if kvs[i+1] == "-" {
			require.NoError(t, in.PipeTombstone(kvs[i], t0))
		} else {
			require.NoError(t, in.Pipe(kvs[i], kvs[i+1], t0))
		}
	}
}

type strRecord struct {
	Key, Value string
	Tombstone  bool
}

func readStrings(t *testing.T, d *streams.TestDriver, topic string) []strRecord {
	t.Helper()
	rs, err := streams.OutputTopic(d, topic, streams.String, streams.String).ReadRecords()
	require.NoError(t, err)
	var out []strRecord
	for _, r := range rs {
		out = append(out, strRecord{r.Key, r.Value, r.Tombstone})
	}
	return out
}

func newDriver(t *testing.T, b *streams.StreamsBuilder) *streams.TestDriver {
	t.Helper()
	topo, err := b.Build()
	require.NoError(t, err)
	d, err := streams.NewTestDriver(topo, streams.TestDriverOptions{ApplicationID: "app"})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

var stringsConsumed = streams.Consumed[string, string]{Key: streams.String, Value: streams.String}

// The stateless operators: each record in, zero or more out, in order.
func TestDSLStatelessOperators(t *testing.T) {
	b := streams.NewStreamsBuilder()
	in := streams.Stream(b, "in", stringsConsumed)
	var peeked []string
	in.Filter(func(_, v string) bool { return v != "skip" }).
		FilterNot(func(_, v string) bool { return v == "drop" }).
		Peek(func(k, v string) { peeked = append(peeked, k+"="+v) }).
		To("filtered", streams.Produced[string, string]{})
	streams.Map(in, func(k, v string) (string, string) { return v, k }).To("swapped", streams.Produced[string, string]{Key: streams.String, Value: streams.String})
	streams.MapValues(in, func(_, v string) int64 { return int64(len(v)) }).To("lengths", streams.Produced[string, int64]{Value: streams.Int64})
	streams.FlatMap(in, func(k, v string) []streams.KeyValue[string, string] {
		var out []streams.KeyValue[string, string]
		for _, w := range strings.Fields(v) {
			out = append(out, streams.KeyValue[string, string]{Key: w, Value: k})
		}
		return out
	}).To("words", streams.Produced[string, string]{Key: streams.String, Value: streams.String})
	streams.SelectKey(in, func(_, v string) string { return strings.ToUpper(v) }).To("upper-keyed", streams.Produced[string, string]{Key: streams.String})
	var seen []string
	in.ForEach(func(k, v string) { seen = append(seen, k) })
	other := streams.Stream(b, "other", stringsConsumed)
	in.Merge(other).To("merged", streams.Produced[string, string]{})

	d := newDriver(t, b)
	pipeStrings(t, d, "in", "a", "x y", "b", "skip", "c", "drop")
	pipeStrings(t, d, "other", "o", "1")
	require.Equal(t, []strRecord{{"a", "x y", false}}, readStrings(t, d, "filtered"))
	require.Equal(t, []string{"a=x y"}, peeked)
	require.Equal(t, []strRecord{{"x y", "a", false}, {"skip", "b", false}, {"drop", "c", false}}, readStrings(t, d, "swapped"))
	lengths, err := streams.OutputTopic(d, "lengths", streams.String, streams.Int64).ReadKeyValues()
	require.NoError(t, err)
	require.Equal(t, []streams.KeyValue[string, int64]{{"a", 3}, {"b", 4}, {"c", 4}}, lengths)
	require.Equal(t, []strRecord{{"x", "a", false}, {"y", "a", false}, {"skip", "b", false}, {"drop", "c", false}}, readStrings(t, d, "words"))
	require.Equal(t, []strRecord{{"X Y", "x y", false}, {"SKIP", "skip", false}, {"DROP", "drop", false}}, readStrings(t, d, "upper-keyed"))
	require.Equal(t, []string{"a", "b", "c"}, seen)
	require.Equal(t, []strRecord{{"a", "x y", false}, {"b", "skip", false}, {"c", "drop", false}, {"o", "1", false}}, readStrings(t, d, "merged"))
}

// A table's filter turns a key that no longer passes into a delete; its
// mapValues keeps deletes as deletes.
func TestDSLTableFilterAndMapValues(t *testing.T) {
	b := streams.NewStreamsBuilder()
	table := streams.Table(b, "prices", stringsConsumed, streams.Materialized[string, string]{Name: "prices"})
	table.Filter(func(_, v string) bool { return len(v) > 1 }).ToStream().To("expensive", streams.Produced[string, string]{})
	table.FilterNot(func(_, v string) bool { return len(v) > 1 }).ToStream().To("cheap", streams.Produced[string, string]{})
	streams.TableMapValues(table, func(_, v string) string { return v + "0" }).ToStream().To("times-ten", streams.Produced[string, string]{Value: streams.String})
	d := newDriver(t, b)
	pipeStrings(t, d, "prices", "tea", "12", "tea", "3", "milk", "-")
	require.Equal(t, []strRecord{{"tea", "12", false}, {"tea", "", true}, {"milk", "", true}}, readStrings(t, d, "expensive"),
		"tea fell to 3: the filtered table deletes it")
	require.Equal(t, []strRecord{{"tea", "", true}, {"tea", "3", false}, {"milk", "", true}}, readStrings(t, d, "cheap"))
	require.Equal(t, []strRecord{{"tea", "120", false}, {"tea", "30", false}, {"milk", "", true}}, readStrings(t, d, "times-ten"))
}

// A stream-table join and left join look the table up; a table update
// joins nothing by itself.
func TestDSLStreamTableJoins(t *testing.T) {
	b := streams.NewStreamsBuilder()
	users := streams.Table(b, "users", stringsConsumed, streams.Materialized[string, string]{Name: "users"})
	clicks := streams.Stream(b, "clicks", stringsConsumed)
	streams.Join(clicks, users, func(page, region string) string { return page + "@" + region }, streams.Joined[string, string]{}).
		To("joined", streams.Produced[string, string]{Value: streams.String})
	streams.LeftJoin(clicks, users, func(page, region string, found bool) string {
		if !found {
			return page + "@?"
		}
		return page + "@" + region
	}, streams.Joined[string, string]{}).To("left-joined", streams.Produced[string, string]{Value: streams.String})
	d := newDriver(t, b)
	pipeStrings(t, d, "clicks", "ann", "/a")
	pipeStrings(t, d, "users", "ann", "eu")
	pipeStrings(t, d, "clicks", "ann", "/b", "bob", "/c")
	pipeStrings(t, d, "users", "ann", "-")
	pipeStrings(t, d, "clicks", "ann", "/d")
	require.Equal(t, []strRecord{{"ann", "/b@eu", false}}, readStrings(t, d, "joined"))
	require.Equal(t, []strRecord{{"ann", "/a@?", false}, {"ann", "/b@eu", false}, {"bob", "/c@?", false}, {"ann", "/d@?", false}}, readStrings(t, d, "left-joined"))
}

// A table-table join is updated from either side, and deleted when
// either side deletes a key both had; a key only one side has makes no
// output.
func TestDSLTableTableJoin(t *testing.T) {
	b := streams.NewStreamsBuilder()
	names := streams.Table(b, "names", stringsConsumed, streams.Materialized[string, string]{Name: "names"})
	emails := streams.Table(b, "emails", stringsConsumed, streams.Materialized[string, string]{Name: "emails"})
	streams.TableJoin(names, emails, func(n, e string) string { return n + " <" + e + ">" }).ToStream().
		To("contacts", streams.Produced[string, string]{Value: streams.String})
	d := newDriver(t, b)
	pipeStrings(t, d, "names", "1", "Ann")
	pipeStrings(t, d, "emails", "1", "ann@x", "2", "bob@x")
	pipeStrings(t, d, "names", "1", "Anne", "2", "Bob")
	pipeStrings(t, d, "emails", "1", "-")
	require.Equal(t, []strRecord{
		{"1", "Ann <ann@x>", false}, {"1", "Anne <ann@x>", false}, {"2", "Bob <bob@x>", false}, {"1", "", true},
	}, readStrings(t, d, "contacts"), "no output for a key the other side lacks; a delete of a joined key deletes the result")
	topo, err := b.Build()
	require.NoError(t, err)
	_, err = topo.Tasks("app", map[string]int32{"names": 3, "emails": 4})
	require.ErrorContains(t, err, "co-partitioned")
	tasks, err := topo.Tasks("app", map[string]int32{"names": 3, "emails": 3})
	require.NoError(t, err)
	require.Len(t, tasks, 3, "both tables and the join are one sub-topology: three tasks")
}
