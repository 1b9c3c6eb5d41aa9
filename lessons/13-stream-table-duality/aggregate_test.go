package streams_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/streams"
)

// purchases: key = customer, value = amount.
func purchases(b *streams.StreamsBuilder) streams.KGroupedStream[string, int64] {
	return streams.Stream(b, "purchases", streams.Consumed[string, int64]{Key: str, Value: i64}).
		GroupByKey(streams.Grouped[string, int64]{})
}

func pipePurchases(t *testing.T, d *streams.TestDriver, customerAmount ...any) {
	t.Helper()
	in := streams.InputTopic(d, "purchases", str, i64)
	for i := 0; i < len(customerAmount); i += 2 {
		require.NoError(t, in.Pipe(customerAmount[i].(string), int64(customerAmount[i+1].(int)), at(0)))
	}
}

func int64s(t *testing.T, d *streams.TestDriver, topic string) []streams.KeyValue[string, int64] {
	t.Helper()
	kvs, err := streams.OutputTopic(d, topic, str, i64).ReadKeyValues()
	require.NoError(t, err)
	return kvs
}

func kv(k string, v int64) streams.KeyValue[string, int64] {
	return streams.KeyValue[string, int64]{Key: k, Value: v}
}

// TestCountTurnsAStreamIntoATableOfRunningCounts: counting is reading the
// key's count from the store, adding one and writing it back. The result
// is a table: its store holds the latest count of each key, and its
// stream of updates is each key's running count.
func TestCountTurnsAStreamIntoATableOfRunningCounts(t *testing.T) {
	b := streams.NewStreamsBuilder()
	purchases(b).Count(streams.Materialized[string, int64]{Name: "counts"}).ToStream().To("counts", streams.Produced[string, int64]{})
	topo, err := b.Build()
	d := start(t, topo, err, streams.TestDriverOptions{})
	pipePurchases(t, d, "ann", 5, "bob", 7, "ann", 1, "ann", 3)
	require.Equal(t, []streams.KeyValue[string, int64]{kv("ann", 1), kv("bob", 1), kv("ann", 2), kv("ann", 3)}, int64s(t, d, "counts"))
	require.Equal(t, map[string]int64{"ann": 3, "bob": 1}, contents(t, d, "counts", i64))
	log, err := streams.OutputTopic(d, streams.ChangelogTopic("app", "counts"), str, i64).ReadKeyValues()
	require.NoError(t, err)
	require.Equal(t, []streams.KeyValue[string, int64]{kv("ann", 1), kv("bob", 1), kv("ann", 2), kv("ann", 3)}, log,
		"each new count is written to the changelog too")
}

// TestAggregateStartsEachKeyFromItsInitializer: Aggregate folds the values
// of a key into an aggregate of another type; a key's first record starts
// from init(), the later ones from the stored aggregate.
func TestAggregateStartsEachKeyFromItsInitializer(t *testing.T) {
	b := streams.NewStreamsBuilder()
	inits := 0
	streams.Aggregate(purchases(b), func() string { inits++; return "total:" },
		func(_ string, amount int64, agg string) string { return agg + strings.Repeat("+", int(amount)) },
		streams.Materialized[string, string]{Name: "bars", Key: str, Value: str}).
		ToStream().To("bars", streams.Produced[string, string]{})
	topo, err := b.Build()
	d := start(t, topo, err, streams.TestDriverOptions{})
	pipePurchases(t, d, "ann", 2, "bob", 1, "ann", 3)
	require.Equal(t, []entry{{"ann", "total:++", false}, {"bob", "total:+", false}, {"ann", "total:+++++", false}}, records(t, d, "bars"))
	require.Equal(t, 2, inits, "init is called once per new key")
	require.Equal(t, map[string]string{"ann": "total:+++++", "bob": "total:+"}, contents(t, d, "bars", str))
}

// TestReduceCombinesEachValueWithTheKeysAggregate: Reduce's first value of
// a key is its aggregate; each later one is combined with it.
func TestReduceCombinesEachValueWithTheKeysAggregate(t *testing.T) {
	b := streams.NewStreamsBuilder()
	purchases(b).Reduce(func(agg, v int64) int64 { return max(agg, v) }, streams.Materialized[string, int64]{Name: "largest"}).
		ToStream().To("largest", streams.Produced[string, int64]{})
	topo, err := b.Build()
	d := start(t, topo, err, streams.TestDriverOptions{})
	pipePurchases(t, d, "ann", 5, "ann", 2, "ann", 9, "bob", 4)
	require.Equal(t, []streams.KeyValue[string, int64]{kv("ann", 5), kv("ann", 5), kv("ann", 9), kv("bob", 4)}, int64s(t, d, "largest"))
	require.Equal(t, map[string]int64{"ann": 9, "bob": 4}, contents(t, d, "largest", i64))
}

// TestAggregationsSkipRecordsWithoutAKeyOrAValue: a record with no key has
// no aggregate to go to, and one with no value has nothing to add: Kafka's
// aggregations skip both, and neither counts.
func TestAggregationsSkipRecordsWithoutAKeyOrAValue(t *testing.T) {
	b := streams.NewStreamsBuilder()
	purchases(b).Count(streams.Materialized[string, int64]{Name: "counts"}).ToStream().To("counts", streams.Produced[string, int64]{})
	topo, err := b.Build()
	d := start(t, topo, err, streams.TestDriverOptions{})
	require.NoError(t, d.Pipe("purchases", nil, i64bytes(4), at(0)))
	require.NoError(t, d.Pipe("purchases", []byte("ann"), nil, at(0)))
	pipePurchases(t, d, "ann", 1)
	require.NoError(t, d.Pipe("purchases", []byte("ann"), nil, at(0)))
	pipePurchases(t, d, "ann", 1)
	require.Equal(t, []streams.KeyValue[string, int64]{kv("ann", 1), kv("ann", 2)}, int64s(t, d, "counts"),
		"a record without a value neither counts nor deletes the count: a stream's tombstone is not a table's")
	require.Equal(t, map[string]int64{"ann": 2}, contents(t, d, "counts", i64))
	for _, r := range rawChangelog(t, d, "counts") {
		require.False(t, r.Tombstone, "the changelog gets no delete")
	}
}

func i64bytes(n int64) []byte {
	b, _ := i64.Serialize("", n)
	return b
}

// TestATablesUpdatesFeedTheNextTable: a table's stream of updates can be
// grouped and aggregated like any stream: here each profile update that
// names a city counts as a move to it (a delete names none, and is
// filtered out), and the profile table itself drops the deleted user.
func TestATablesUpdatesFeedTheNextTable(t *testing.T) {
	b := streams.NewStreamsBuilder()
	table := streams.Table(b, "profiles", streams.Consumed[string, string]{Key: str, Value: str}, streams.Materialized[string, string]{Name: "profiles"})
	streams.GroupBy(table.ToStream().Filter(func(_, city string) bool { return city != "" }), func(_, city string) string { return city },
		streams.Grouped[string, string]{Key: str, Value: str, Name: "by-city"}).
		Count(streams.Materialized[string, int64]{Name: "moves-to-city"}).ToStream().To("moves", streams.Produced[string, int64]{})
	topo, err := b.Build()
	d := start(t, topo, err, streams.TestDriverOptions{})
	pipeProfiles(t, d, "ann", "Oslo", "bob", "Oslo", "ann", "-")
	require.Equal(t, []streams.KeyValue[string, int64]{kv("Oslo", 1), kv("Oslo", 2)}, int64s(t, d, "moves"))
	require.Equal(t, map[string]string{"bob": "Oslo"}, contents(t, d, "profiles", str))
}

// picky is a serde of int64 that refuses to write refuseWrite and to read
// refuseRead: a serde's error is the task's error, never a value taken
// for another.
func picky(refuseWrite, refuseRead int64) streams.Serde[int64] {
	return streams.Serde[int64]{
		Serialize: func(topic string, v int64) ([]byte, error) {
			if v == refuseWrite {
				return nil, errorf("picky serde: will not write %d", v)
			}
			return i64.Serialize(topic, v)
		},
		Deserialize: func(topic string, b []byte) (int64, error) {
			v, err := i64.Deserialize(topic, b)
			if err == nil && v == refuseRead {
				return 0, errorf("picky serde: will not read %d", v)
			}
			return v, err
		},
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// TestAStoreOrSerdeErrorStopsTheAggregation: when the aggregate cannot be
// read back or written, the record is not counted as if it were the
// key's first: the error stops the task, and names what failed.
func TestAStoreOrSerdeErrorStopsTheAggregation(t *testing.T) {
	for _, c := range []struct {
		name        string
		serde       streams.Serde[int64]
		wantErrText string
	}{
		{"reading the aggregate", picky(-1, 2), "will not read 2"},
		{"writing the aggregate", picky(3, -1), "will not write 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := streams.NewStreamsBuilder()
			purchases(b).Count(streams.Materialized[string, int64]{Name: "counts", Value: c.serde}).ToStream().To("counts", streams.Produced[string, int64]{Value: i64})
			topo, err := b.Build()
			d := start(t, topo, err, streams.TestDriverOptions{})
			in := streams.InputTopic(d, "purchases", str, i64)
			var last error
			for range 3 {
				if last = in.Pipe("ann", 1, at(0)); last != nil {
					break
				}
			}
			require.ErrorContains(t, last, c.wantErrText)
		})
	}
}

// TestATablesSerdeErrorStopsTheTask: a value the table's store cannot
// write stops the task; the table does not skip it silently.
func TestATablesSerdeErrorStopsTheTask(t *testing.T) {
	for _, side := range []string{"key", "value"} {
		t.Run(side, func(t *testing.T) {
			refuse := streams.Serde[string]{
				Serialize: func(topic, v string) ([]byte, error) {
					if v == "bad" {
						return nil, errorf("refusing %q", v)
					}
					return []byte(v), nil
				},
				Deserialize: func(_ string, b []byte) (string, error) { return string(b), nil },
			}
			m := streams.Materialized[string, string]{Name: "t", Key: str, Value: str}
			if side == "key" {
				m.Key = refuse
			} else {
				m.Value = refuse
			}
			b := streams.NewStreamsBuilder()
			streams.Table(b, "profiles", streams.Consumed[string, string]{Key: str, Value: str}, m)
			topo, err := b.Build()
			d := start(t, topo, err, streams.TestDriverOptions{})
			require.ErrorContains(t, streams.InputTopic(d, "profiles", str, str).Pipe("bad", "bad", at(0)), `refusing "bad"`)
		})
	}
}

// TestAnAggregatesUpdateHasItsRecordsTimestamp: the new aggregate goes
// downstream stamped with the event time of the record that changed it.
func TestAnAggregatesUpdateHasItsRecordsTimestamp(t *testing.T) {
	b := streams.NewStreamsBuilder()
	purchases(b).Count(streams.Materialized[string, int64]{Name: "counts"}).ToStream().To("counts", streams.Produced[string, int64]{})
	topo, err := b.Build()
	d := start(t, topo, err, streams.TestDriverOptions{})
	require.NoError(t, streams.InputTopic(d, "purchases", str, i64).Pipe("ann", 1, at(9*time.Second)))
	rs, err := streams.OutputTopic(d, "counts", str, i64).ReadRecords()
	require.NoError(t, err)
	require.Len(t, rs, 1)
	require.Equal(t, at(9*time.Second), rs[0].Timestamp)
}
