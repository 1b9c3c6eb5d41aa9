package groups_test

// Consumer groups against klab's own brokers, on loopback ports, with real
// clients: franz-go's group consumer and the course's, a member that dies
// without a word, and a coordinator killed while a client commits.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
	"klab.dev/klab/consumer"
)

// startBroker starts one klab broker whose groups form at once, with a
// small __consumer_offsets and sessions as short as 1 s allowed, and a
// topic "t" of 4 partitions holding records v0..v(n-1), round-robin.
func startBroker(t *testing.T, n int) string {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	// The broker's errors go to the test's log: a client sees only
	// UNKNOWN_SERVER_ERROR where your code failed, the broker says why.
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))
	for _, kv := range [][2]string{{"group.initial.rebalance.delay.ms", "0"}, {"offsets.topic.num.partitions", "3"}, {"group.min.session.timeout.ms", "1000"}} {
		require.NoError(t, cfg.Set(kv[0], kv[1]))
	}
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("t"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	_, err = kadm.NewClient(cl).CreateTopics(ctx(t), 4, 1, nil, "t")
	require.NoError(t, err)
	produceTo(t, cl, 0, n)
	requireGroups(t, cl)
	return b.Addr()
}

// requireGroups fails the test at once if the broker cannot form a group
// (one member joins a group of its own and leaves), rather than after the
// test's own wait: a client only retries an UNKNOWN_SERVER_ERROR, and the
// broker's log above says why it failed.
func requireGroups(t *testing.T, cl *kgo.Client) {
	t.Helper()
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType = "probe", "consumer"
	join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 10000, 10000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
	for {
		resp, err := join.RequestWith(ctx(t), cl)
		require.NoError(t, err)
		if resp.ErrorCode == kerr.MemberIDRequired.Code {
			join.MemberID = resp.MemberID
			continue
		}
		require.Zero(t, resp.ErrorCode, "a JoinGroup to a new group fails: %v", kerr.ErrorForCode(resp.ErrorCode))
		leave := kmsg.NewPtrLeaveGroupRequest()
		leave.Group = "probe"
		leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: resp.MemberID}}
		_, err = leave.RequestWith(ctx(t), cl)
		require.NoError(t, err)
		return
	}
}

// testWriter writes to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func produceTo(t *testing.T, cl *kgo.Client, from, n int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, kgo.StringRecord(fmt.Sprintf("v%d", i)))
	}
	if len(recs) > 0 {
		require.NoError(t, cl.ProduceSync(ctx(t), recs...).FirstErr())
	}
}

// owner is a franz-go group member that polls in the background and keeps
// track of the partitions of "t" it owns and the values it read.
type owner struct {
	cl   *kgo.Client
	mu   sync.Mutex
	owns map[int32]bool
	read []string
}

func newOwner(t *testing.T, addr, group string, opts ...kgo.Opt) *owner {
	t.Helper()
	o := &owner{owns: map[int32]bool{}}
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics("t"),
		kgo.Balancers(kgo.RangeBalancer()), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			o.mu.Lock()
			defer o.mu.Unlock()
			for _, p := range a["t"] {
				o.owns[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, cl *kgo.Client, r map[string][]int32) {
			cl.CommitUncommittedOffsets(context.Background()) // what was read is done
			o.mu.Lock()
			defer o.mu.Unlock()
			for _, p := range r["t"] {
				delete(o.owns, p)
			}
		}),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	require.NoError(t, err)
	o.cl = cl
	t.Cleanup(cl.Close)
	go func() {
		for cl.Context().Err() == nil {
			fs := cl.PollFetches(cl.Context())
			o.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) { o.read = append(o.read, string(r.Value)) })
			o.mu.Unlock()
		}
	}()
	return o
}

func (o *owner) owned() []int32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ps []int32
	for p := range o.owns {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

func (o *owner) values() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.read)
}

// Two franz-go members of a group split the topic's four partitions, two
// each, and read every record once between them; they commit and leave. A
// new member of the group reads only what was produced after: the group
// resumes from its committed offsets.
func TestTwoMembersSplitATopicAndTheGroupResumesFromItsCommits(t *testing.T) {
	addr := startBroker(t, 40)
	a := newOwner(t, addr, "billing")
	waitFor(t, 20*time.Second, "the first member to own all four partitions", func() bool { return len(a.owned()) == 4 })
	b := newOwner(t, addr, "billing")
	waitFor(t, 20*time.Second, "two partitions each", func() bool { return len(a.owned()) == 2 && len(b.owned()) == 2 })
	waitFor(t, 20*time.Second, "the forty records read", func() bool { return len(a.values())+len(b.values()) >= 40 })
	assert.ElementsMatch(t, valuesOf(0, 40), append(a.values(), b.values()...), "every record read once")
	for _, o := range []*owner{a, b} {
		require.NoError(t, o.cl.CommitUncommittedOffsets(ctx(t)))
		o.cl.Close()
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("t"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	produceTo(t, cl, 40, 8)
	c := newOwner(t, addr, "billing")
	waitFor(t, 20*time.Second, "the eight new records", func() bool { return len(c.values()) >= 8 })
	assert.ElementsMatch(t, valuesOf(40, 48), c.values(), "only what came after the commits")
}

func valuesOf(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("v%d", i))
	}
	return out
}

// A member that dies without leaving (it stops heartbeating: a crash, a
// network cut) holds its partitions until its session times out; then the
// coordinator removes it and the survivor, told to rejoin by its next
// heartbeat, owns every partition.
func TestADeadMembersPartitionsGoToTheSurvivorAfterItsSession(t *testing.T) {
	addr := startBroker(t, 0)
	survivor := newOwner(t, addr, "workers", kgo.SessionTimeout(2*time.Second), kgo.HeartbeatInterval(200*time.Millisecond))
	waitFor(t, 20*time.Second, "the survivor to own all four partitions", func() bool { return len(survivor.owned()) == 4 })

	// The doomed member speaks the protocol by hand: JoinGroup (twice:
	// KIP-394's MEMBER_ID_REQUIRED), SyncGroup, then silence.
	raw, err := kgo.NewClient(kgo.SeedBrokers(addr))
	require.NoError(t, err)
	defer raw.Close()
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType = "workers", "consumer"
	join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 2000, 10000
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"t"}
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	var joined *kmsg.JoinGroupResponse
	for {
		joined, err = join.RequestWith(ctx(t), raw)
		require.NoError(t, err)
		if joined.ErrorCode != kerr.MemberIDRequired.Code {
			break
		}
		join.MemberID = joined.MemberID
	}
	require.Zero(t, joined.ErrorCode, "JoinGroup: %v", kerr.ErrorForCode(joined.ErrorCode))
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "workers", joined.MemberID, joined.Generation
	synced, err := sync.RequestWith(ctx(t), raw)
	require.NoError(t, err)
	require.Zero(t, synced.ErrorCode, "SyncGroup: %v", kerr.ErrorForCode(synced.ErrorCode))
	waitFor(t, 10*time.Second, "the survivor to give up partitions to the newcomer", func() bool { return len(survivor.owned()) == 2 })

	died := time.Now() // no heartbeat from now on
	waitFor(t, 20*time.Second, "the survivor to own every partition again", func() bool { return len(survivor.owned()) == 4 })
	t.Logf("the survivor owned every partition %v after the member's last word (session.timeout.ms 2s)", time.Since(died).Round(10*time.Millisecond))
}

// Two of the course's own consumers subscribed with the range assignor:
// the group's leader, one of them, runs your Range.Assign, and each gets a
// consecutive range of two partitions.
func TestCourseConsumersSplitATopicWithRange(t *testing.T) {
	addr := startBroker(t, 0)
	newConsumer := func() *consumer.Consumer {
		cfg := consumer.DefaultConfig()
		cfg.BootstrapServers = []string{addr}
		for _, kv := range [][2]string{{"group.id", "course"}, {"partition.assignment.strategy", "range"}, {"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "200"}} {
			require.NoError(t, cfg.Set(kv[0], kv[1]))
		}
		c, err := consumer.New(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		require.NoError(t, c.Subscribe("t"))
		return c
	}
	cs := []*consumer.Consumer{newConsumer(), newConsumer()}
	var mu sync.Mutex
	assigned := map[int][]int32{}
	var wg sync.WaitGroup
	pollCtx, stop := context.WithCancel(ctx(t))
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pollCtx.Err() == nil {
				pc, cancel := context.WithTimeout(pollCtx, 200*time.Millisecond)
				c.Poll(pc) // rebalances happen in Poll
				cancel()
				var ps []int32
				for _, tp := range c.Assignment() {
					ps = append(ps, tp.Partition)
				}
				slices.Sort(ps)
				mu.Lock()
				assigned[i] = ps
				mu.Unlock()
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()
	waitFor(t, 30*time.Second, "two partitions each", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(assigned[0]) == 2 && len(assigned[1]) == 2
	})
	mu.Lock()
	defer mu.Unlock()
	ranges := [][]int32{assigned[0], assigned[1]}
	slices.SortFunc(ranges, func(a, b []int32) int { return int(a[0] - b[0]) })
	assert.Equal(t, [][]int32{{0, 1}, {2, 3}}, ranges, "range gives consecutive partitions")
}

// The coordinator of a group is killed while a client commits: the
// client finds the new coordinator, and every acknowledged commit is
// there, none gone back.
func TestCommitsSurviveTheCoordinatorsDeath(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: func(cfg *broker.Config) {
		cfg.Groups.InitialRebalanceDelay = 0
		cfg.OffsetsTopicPartitions = 3
	}})
	c.CreateTopic("t", 2, 3, nil, nil)
	adm := kadm.NewClient(c.Client(kgo.RetryTimeout(30 * time.Second)))
	coordinator := func() int32 {
		var id int32 = -1
		waitFor(t, 20*time.Second, "a coordinator", func() bool {
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorKey = "ledger"
			resp, err := req.RequestWith(ctx(t), c.Client())
			if err != nil || resp.ErrorCode != 0 {
				return false
			}
			id = resp.NodeID
			return true
		})
		return id
	}
	first := coordinator()
	var acked int64
	start, killed := time.Now(), false
	for next := int64(1); next <= 60; next++ {
		if next == 20 && !killed {
			c.Kill(first)
			killed = true
		}
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: "t", Partition: 0, At: next, LeaderEpoch: -1})
		os.Add(kadm.Offset{Topic: "t", Partition: 1, At: 2 * next, LeaderEpoch: -1})
		committed, err := adm.CommitOffsets(ctx(t), "ledger", os)
		if err == nil {
			err = committed.Error()
		}
		require.NotErrorIs(t, err, kerr.UnknownServerError, "commit %d: the coordinator failed it (its log above says why)", next)
		if err != nil {
			// The client may give up on the dead coordinator before the
			// cluster has moved the group: an application commits again.
			require.Less(t, time.Since(start), 45*time.Second, "commit %d still failing: %v", next, err)
			t.Logf("commit %d: %v (again)", next, err)
			next--
			continue
		}
		acked = next
	}
	assert.NotEqual(t, first, coordinator(), "another broker coordinates the group")
	fetched, err := adm.FetchOffsets(ctx(t), "ledger")
	require.NoError(t, err)
	at := func(p int32) int64 { o, _ := fetched.Lookup("t", p); return o.At }
	assert.Equal(t, acked, at(0))
	assert.Equal(t, 2*acked, at(1))
}
