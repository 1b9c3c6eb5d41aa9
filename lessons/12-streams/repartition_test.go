package streams_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/streams"
)

// Page views: key = user, value = the page's URL.
func pageViews(b *streams.StreamsBuilder) streams.KStream[string, string] {
	return streams.Stream(b, "views", streams.Consumed[string, string]{Key: str, Value: str})
}

func pipeViews(t *testing.T, d *streams.TestDriver, userPage ...string) {
	t.Helper()
	in := streams.InputTopic(d, "views", str, str)
	for i := 0; i < len(userPage); i += 2 {
		require.NoError(t, in.Pipe(userPage[i], userPage[i+1], at(0)))
	}
}

// TestGroupByWritesTheNewKeyToARepartitionTopicFirst: counting views per
// page regroups records keyed by user: a page's views are in every
// partition of "views", but its count must be kept in one place. So the
// records go through <application.id>-<name>-repartition, keyed by page —
// the cluster puts each page in one partition of it — and the count is
// done by the tasks reading that topic: a sub-topology of its own.
func TestGroupByWritesTheNewKeyToARepartitionTopicFirst(t *testing.T) {
	b := streams.NewStreamsBuilder()
	byPage := streams.GroupBy(pageViews(b), func(_, page string) string { return page }, streams.Grouped[string, string]{Key: str, Value: str, Name: "by-page"})
	byPage.Count(streams.Materialized[string, int64]{Name: "page-counts"}).ToStream().To("page-counts", streams.Produced[string, int64]{})
	topo, err := b.Build()
	d := driver(t, topo, err)
	pipeViews(t, d, "ann", "/home", "bob", "/home", "ann", "/docs")

	require.Equal(t, []streams.KeyValue[string, string]{kv("/home", "/home"), kv("/home", "/home"), kv("/docs", "/docs")},
		read(t, d, "app-by-page-repartition"), "the records go through app-by-page-repartition, keyed by page")
	require.Equal(t, []streams.KeyValue[string, int64]{kv("/home", int64(1)), kv("/home", int64(2)), kv("/docs", int64(1))}, counts(t, d, "page-counts"))

	desc := topo.Describe()
	require.Contains(t, desc, "Sub-topology: 1", "the repartition topic splits the topology in two sub-topologies")
	require.Contains(t, desc, "    Sink: by-page-repartition-sink (topic: by-page-repartition)\n")
	require.Contains(t, desc, "    Source: by-page-repartition-source (topics: [by-page-repartition])\n")
	require.Equal(t, []string{"views", "app-by-page-repartition"}, topo.SourceTopics("app"),
		"the repartition topic is the application's own: named with its application.id")
}

// TestGroupByKeyOfAnUnchangedKeyNeedsNoRepartition: records still keyed as
// they were read are in their key's partition already: a repartition
// would copy every record through the cluster for nothing. MapValues,
// Filter and Peek do not change the key.
func TestGroupByKeyOfAnUnchangedKeyNeedsNoRepartition(t *testing.T) {
	b := streams.NewStreamsBuilder()
	views := streams.MapValues(pageViews(b), func(_, page string) string { return strings.TrimPrefix(page, "/") }).
		Filter(func(_, page string) bool { return page != "" }).
		Peek(func(string, string) {})
	views.GroupByKey(streams.Grouped[string, string]{}).Count(streams.Materialized[string, int64]{Name: "per-user"}).
		ToStream().To("views-per-user", streams.Produced[string, int64]{})
	topo, err := b.Build()
	d := driver(t, topo, err)
	pipeViews(t, d, "ann", "/home", "bob", "/", "ann", "/docs")
	require.Equal(t, []streams.KeyValue[string, int64]{kv("ann", int64(1)), kv("ann", int64(2))}, counts(t, d, "views-per-user"))
	require.NotContains(t, topo.Describe(), "repartition")
	require.NotContains(t, topo.Describe(), "Sub-topology: 1", "one sub-topology: no repartition topic splits it")
	require.Equal(t, []string{"views"}, topo.SourceTopics("app"))
}

// TestAKeyChangedByMapOrSelectKeyRepartitionsBeforeGroupByKey: Map,
// SelectKey and FlatMap may change the key, so a GroupByKey after them
// repartitions, however late it comes (here after a MapValues, which does
// not change the key back). Without a name, the repartition topic is named
// after the aggregation's store.
func TestAKeyChangedByMapOrSelectKeyRepartitionsBeforeGroupByKey(t *testing.T) {
	for name, rekey := range map[string]func(streams.KStream[string, string]) streams.KStream[string, string]{
		"SelectKey": func(s streams.KStream[string, string]) streams.KStream[string, string] {
			return streams.SelectKey(s, func(_, page string) string { return page })
		},
		"Map": func(s streams.KStream[string, string]) streams.KStream[string, string] {
			return streams.Map(s, func(user, page string) (string, string) { return page, user })
		},
		"FlatMap": func(s streams.KStream[string, string]) streams.KStream[string, string] {
			return streams.FlatMap(s, func(user, page string) []streams.KeyValue[string, string] {
				return []streams.KeyValue[string, string]{{Key: page, Value: user}}
			})
		},
	} {
		t.Run(name, func(t *testing.T) {
			b := streams.NewStreamsBuilder()
			s := streams.MapValues(rekey(pageViews(b)), func(_, v string) string { return v })
			s.GroupByKey(streams.Grouped[string, string]{Key: str, Value: str}).
				Count(streams.Materialized[string, int64]{Name: "per-page"}).ToStream().To("out", streams.Produced[string, int64]{})
			topo, err := b.Build()
			d := driver(t, topo, err)
			pipeViews(t, d, "ann", "/home", "bob", "/home")
			require.Len(t, read(t, d, "app-per-page-repartition"), 2, "the records went through app-per-page-repartition")
			require.Equal(t, []streams.KeyValue[string, int64]{kv("/home", int64(1)), kv("/home", int64(2))}, counts(t, d, "out"))
		})
	}
}

// TestARecordWithoutAKeyIsDroppedBeforeTheRepartitionTopic: a record whose
// new key is none has no partition to go to; it is dropped, and the others
// go on.
func TestARecordWithoutAKeyIsDroppedBeforeTheRepartitionTopic(t *testing.T) {
	b := streams.NewStreamsBuilder()
	byRef := streams.SelectKey(pageViews(b), func(_, page string) []byte {
		if page == "" {
			return nil
		}
		return []byte(page)
	})
	byRef.GroupByKey(streams.Grouped[[]byte, string]{Key: streams.Bytes, Value: str, Name: "by-ref"}).
		Count(streams.Materialized[[]byte, int64]{Name: "refs"}).ToStream().To("refs", streams.Produced[[]byte, int64]{})
	topo, err := b.Build()
	d := driver(t, topo, err)
	pipeViews(t, d, "ann", "", "bob", "/a", "cy", "")
	require.Equal(t, []streams.KeyValue[string, string]{kv("/a", "/a")}, read(t, d, "app-by-ref-repartition"), "records without a key never reach the topic")
	require.Equal(t, []streams.KeyValue[string, int64]{kv("/a", int64(1))}, counts(t, d, "refs"))
}

// TestARepartitionNeedsSerdesForTheNewKey: the repartition topic holds
// bytes, so the grouping must say how to write the new key and the value;
// without serdes, building the topology fails and says where to give them.
func TestARepartitionNeedsSerdesForTheNewKey(t *testing.T) {
	b := streams.NewStreamsBuilder()
	byLength := streams.SelectKey(pageViews(b), func(_, page string) int64 { return int64(len(page)) })
	byLength.GroupByKey(streams.Grouped[int64, string]{}).Count(streams.Materialized[int64, int64]{})
	_, err := b.Build()
	require.ErrorContains(t, err, "repartition")
	require.ErrorContains(t, err, "Grouped")

	b = streams.NewStreamsBuilder()
	byLength = streams.SelectKey(pageViews(b), func(_, page string) int64 { return int64(len(page)) })
	byLength.GroupByKey(streams.Grouped[int64, string]{Key: streams.Int64, Value: str}).Count(streams.Materialized[int64, int64]{}).
		ToStream().To("lengths", streams.Produced[int64, int64]{})
	topo, err := b.Build()
	d := driver(t, topo, err)
	pipeViews(t, d, "ann", "/home")
	out, err := streams.OutputTopic(d, "lengths", streams.Int64, streams.Int64).ReadKeyValues()
	require.NoError(t, err)
	require.Equal(t, []streams.KeyValue[int64, int64]{{Key: 5, Value: 1}}, out)
}

// TestAJoinAfterAKeyChangeRepartitionsTheStreamSide: a stream-table join
// looks each record's key up in the table's store, which holds the keys of
// its task's partition only: a stream keyed otherwise must be repartitioned
// first, and its topic and the table's must have as many partitions.
func TestAJoinAfterAKeyChangeRepartitionsTheStreamSide(t *testing.T) {
	b := streams.NewStreamsBuilder()
	titles := streams.Table(b, "titles", streams.Consumed[string, string]{Key: str, Value: str}, streams.Materialized[string, string]{Name: "titles"})
	byPage := streams.Map(pageViews(b), func(user, page string) (string, string) { return page, user })
	joined := streams.Join(byPage, titles, func(user, title string) string { return user + " read " + title },
		streams.Joined[string, string]{Key: str, Value: str, Name: "views-by-page"})
	joined.To("reads", streams.Produced[string, string]{Value: str})
	topo, err := b.Build()
	d := driver(t, topo, err)
	require.NoError(t, streams.InputTopic(d, "titles", str, str).Pipe("/home", "Home", at(0)))
	pipeViews(t, d, "ann", "/home", "bob", "/nowhere")
	require.Len(t, read(t, d, "app-views-by-page-repartition"), 2)
	require.Equal(t, []streams.KeyValue[string, string]{kv("/home", "ann read Home")}, read(t, d, "reads"))

	_, err = topo.Tasks("app", map[string]int32{"views": 6, "titles": 3, "app-views-by-page-repartition": 6})
	require.ErrorContains(t, err, "co-partitioned", "the repartition topic (6 partitions) and titles (3) cannot be joined partition by partition")
	tasks, err := topo.Tasks("app", map[string]int32{"views": 6, "titles": 3, "app-views-by-page-repartition": 3})
	require.NoError(t, err)
	require.Len(t, tasks, 6+3, "six tasks read views, three join the repartition topic with titles")
}
