package streams

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"klab.dev/klab/admin"
	"klab.dev/klab/broker"
	"klab.dev/klab/consumer"
	"klab.dev/klab/consumer/assign"
)

// TestRestoreRecords applies changelog records with the gaps compaction
// leaves: puts, tombstones, records before the position (skipped), and a
// record at the end offset, which ends the restore without being applied.
func TestRestoreRecords(t *testing.T) {
	s := NewMemoryStore("s")
	rec := func(offset int64, key, value string) consumer.Record {
		r := consumer.Record{Offset: offset, Key: []byte(key)}
		if value != "" {
			r.Value = []byte(value)
		}
		return r
	}
	next, done, err := restoreRecords(s, []consumer.Record{rec(3, "a", "1"), rec(5, "b", "2")}, 4, 9)
	require.NoError(t, err)
	assert.Equal(t, int64(6), next)
	assert.False(t, done, "offsets 6 to 8 may still hold records")
	v, _ := s.Get([]byte("a"))
	assert.Nil(t, v, "offset 3 is before the position: not applied")

	next, done, err = restoreRecords(s, []consumer.Record{rec(6, "b", ""), rec(8, "c", "3"), rec(9, "d", "4")}, next, 9)
	require.NoError(t, err)
	assert.Equal(t, int64(9), next)
	assert.True(t, done)
	for key, want := range map[string][]byte{"b": nil, "c": []byte("3"), "d": nil} {
		got, _ := s.Get([]byte(key))
		assert.Equal(t, want, got, "key %s", key)
	}

	next, done, err = restoreRecords(s, nil, 9, 9)
	require.NoError(t, err)
	assert.Equal(t, int64(9), next)
	assert.True(t, done, "nothing to restore is done at once")
}

// joinTopology reads "left" and "right" in one sub-topology, as a join
// does, and marks them co-partitioned.
func joinTopology() *Topology {
	pass := ProcessorFunc(func(ctx *ProcessorContext, r Record) error { return ctx.Forward(r) })
	topo := NewTopology().
		AddSource(Source{Name: "l", Topics: []string{"left"}}).
		AddSource(Source{Name: "r", Topics: []string{"right"}}).
		AddProcessor("join", pass.Supplier(), "l", "r").
		AddSink(Sink{Name: "out", Topic: "joined", Parents: []string{"join"}})
	topo.copartitioned = [][]string{{"left", "right"}}
	return topo
}

// TestAssignorDealsTasks: each member gets whole tasks, the same-numbered
// partitions of both inputs together, and its task ids in its user data.
func TestAssignorDealsTasks(t *testing.T) {
	var failed error
	a := &streamsAssignor{topo: joinTopology(), appID: "app", fail: func(err error) { failed = err }}
	members := []assign.Member{{ID: "m2", Topics: []string{"left", "right"}}, {ID: "m1", Topics: []string{"left", "right"}}}
	plan, userData := a.AssignUserData(members, map[string]int32{"left": 3, "right": 3})
	require.NoError(t, failed)
	assert.Equal(t, assign.Plan{
		"m1": {"left": {0, 2}, "right": {0, 2}},
		"m2": {"left": {1}, "right": {1}},
	}, plan)
	info, err := DecodeAssignmentInfo(userData["m1"])
	require.NoError(t, err)
	assert.Equal(t, []AssignedTask{{ID: TaskID{0, 0}, Topics: []string{"left", "right"}}, {ID: TaskID{0, 2}, Topics: []string{"left", "right"}}}, info.Tasks)

	plan, _ = a.AssignUserData(members, map[string]int32{"left": 3, "right": 2})
	require.ErrorContains(t, failed, "must be co-partitioned")
	assert.Empty(t, plan["m1"])
}

// TestInternalTopics: a repartition topic is as wide as the widest input
// of the sub-topology that writes it; a changelog has a partition per task
// of its store's sub-topology.
func TestInternalTopics(t *testing.T) {
	pass := ProcessorFunc(func(ctx *ProcessorContext, r Record) error { return ctx.Forward(r) })
	topo := NewTopology().
		AddSource(Source{Name: "in", Topics: []string{"a", "b"}}).
		AddSink(Sink{Name: "to-rep", Topic: "rep-repartition", Parents: []string{"in"}}).
		AddSource(Source{Name: "from-rep", Topics: []string{"rep-repartition"}}).
		AddProcessor("agg", pass.Supplier(), "from-rep").
		AddStateStore(StoreSpec{Name: "agg-store"}, "agg").
		AddStateStore(StoreSpec{Name: "scratch", LoggingDisabled: true}, "agg")
	require.NoError(t, topo.Err())
	topo.internal["rep-repartition"] = true
	got := internalTopics(topo, "app", map[string]int32{"a": 2, "b": 5})
	assert.Equal(t, []internalTopic{
		{name: "app-rep-repartition", partitions: 5, configs: map[string]string{"cleanup.policy": "delete", "retention.ms": "-1", "segment.bytes": "52428800"}},
		{name: "app-agg-store-changelog", partitions: 5, configs: map[string]string{"cleanup.policy": "compact"}},
	}, got)
}

// TestInternalTopicsCopartitioned: a repartition topic a join reads with
// an external topic is as wide as the external topic, whatever the width
// of the sub-topology that writes it, and so are the changelogs of the
// join's sub-topology; a join of two repartition topics makes both as
// wide as the wider.
func TestInternalTopicsCopartitioned(t *testing.T) {
	pass := ProcessorFunc(func(ctx *ProcessorContext, r Record) error { return ctx.Forward(r) })
	topo := NewTopology().
		AddSource(Source{Name: "in", Topics: []string{"stream"}}).
		AddSink(Sink{Name: "to-rep", Topic: "rep-repartition", Parents: []string{"in"}}).
		AddSource(Source{Name: "from-rep", Topics: []string{"rep-repartition"}}).
		AddSource(Source{Name: "table", Topics: []string{"table"}}).
		AddProcessor("join", pass.Supplier(), "from-rep", "table").
		AddStateStore(StoreSpec{Name: "table-store"}, "join")
	require.NoError(t, topo.Err())
	topo.internal["rep-repartition"] = true
	topo.copartitioned = [][]string{{"rep-repartition", "table"}}
	counts := map[string]int32{"stream": 6, "table": 3}
	got := internalTopics(topo, "app", counts)
	require.Len(t, got, 2)
	assert.Equal(t, "app-rep-repartition", got[0].name)
	assert.Equal(t, int32(3), got[0].partitions, "as wide as the table it is joined with")
	assert.Equal(t, "app-table-store-changelog", got[1].name)
	assert.Equal(t, int32(3), got[1].partitions)
	counts["app-rep-repartition"] = got[0].partitions
	_, err := topo.Tasks("app", counts)
	require.NoError(t, err, "co-partitioned")

	// Two repartition topics joined: both as wide as the wider.
	topo = NewTopology().
		AddSource(Source{Name: "a", Topics: []string{"a"}}).
		AddSink(Sink{Name: "to-ra", Topic: "ra-repartition", Parents: []string{"a"}}).
		AddSource(Source{Name: "b", Topics: []string{"b"}}).
		AddSink(Sink{Name: "to-rb", Topic: "rb-repartition", Parents: []string{"b"}}).
		AddSource(Source{Name: "from-ra", Topics: []string{"ra-repartition"}}).
		AddSource(Source{Name: "from-rb", Topics: []string{"rb-repartition"}}).
		AddProcessor("join", pass.Supplier(), "from-ra", "from-rb")
	require.NoError(t, topo.Err())
	topo.internal["ra-repartition"], topo.internal["rb-repartition"] = true, true
	topo.copartitioned = [][]string{{"ra-repartition", "rb-repartition"}}
	got = internalTopics(topo, "app", map[string]int32{"a": 2, "b": 4})
	require.Len(t, got, 2)
	assert.Equal(t, int32(4), got[0].partitions, got[0].name)
	assert.Equal(t, int32(4), got[1].partitions, got[1].name)
}

// TestStartCopartitionMismatch: inputs a join reads with different
// partition counts stop the application at Start, saying which.
func TestStartCopartitionMismatch(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := admin.New(admin.Options{Bootstrap: []string{b.Addr()}})
	defer adm.Close()
	_, err = adm.CreateTopics(ctx,
		admin.NewTopic{Name: "left", Partitions: 2, ReplicationFactor: 1},
		admin.NewTopic{Name: "right", Partitions: 3, ReplicationFactor: 1})
	require.NoError(t, err)

	sc := DefaultConfig()
	sc.ApplicationID, sc.BootstrapServers, sc.StateDir = "join", []string{b.Addr()}, t.TempDir()
	sc.Logger = t.Logf
	app, err := New(joinTopology(), sc)
	require.NoError(t, err)
	defer app.Close()
	err = app.Start(ctx)
	require.ErrorContains(t, err, "topics left (2 partitions) and right (3 partitions) must be co-partitioned")
	assert.Equal(t, Error, app.State())
}

// TestLockTaskDir: a task directory is used by one task of the process at
// a time; the next waits for its release.
func TestLockTaskDir(t *testing.T) {
	dir := t.TempDir()
	release, err := lockTaskDir(context.Background(), dir)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = lockTaskDir(ctx, dir)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	got := make(chan func())
	go func() {
		again, err := lockTaskDir(context.Background(), dir)
		assert.NoError(t, err)
		got <- again
	}()
	release()
	(<-got)()
}
