package broker_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker"
)

// groupSettings make a group form at once and __consumer_offsets small, so
// that group tests are quick; everything else is Kafka's default.
var groupSettings = []string{"group.initial.rebalance.delay.ms", "0", "offsets.topic.num.partitions", "4"}

// produceValues writes values round-robin over a topic's partitions.
func produceValues(t *testing.T, b *broker.Broker, topic string, n int) {
	t.Helper()
	cl := client(t, b, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, kgo.StringRecord(fmt.Sprint(i)))
	}
	require.NoError(t, cl.ProduceSync(ctxT(t), recs...).FirstErr())
}

// consumeInGroup reads n records as a member of group with franz-go, and
// commits them (kgo commits on Close, and every 5 s).
func consumeInGroup(t *testing.T, b *broker.Broker, group, topic string, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic))
	require.NoError(t, err)
	defer cl.Close()
	var got []string
	ctx := ctxT(t)
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "read %d of %d records", len(got), n)
		fs.EachError(func(topic string, p int32, err error) { t.Logf("%s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	require.NoError(t, cl.CommitUncommittedOffsets(ctx))
	return got
}

// A franz-go group consumer reads every record of a topic, commits, and a
// second one in the same group starts after what the first committed: a
// group shares its offsets.
func TestAGroupConsumerCommitsAndTheNextResumes(t *testing.T) {
	b := start(t, t.TempDir(), groupSettings...)
	_, err := kadm.NewClient(client(t, b)).CreateTopics(ctxT(t), 3, 1, nil, "orders")
	require.NoError(t, err)
	produceValues(t, b, "orders", 30)

	got := consumeInGroup(t, b, "billing", "orders", 30)
	assert.Len(t, got, 30)

	adm := kadm.NewClient(client(t, b))
	committed, err := adm.FetchOffsets(ctxT(t), "billing")
	require.NoError(t, err)
	var total int64
	committed.Each(func(o kadm.OffsetResponse) {
		require.NoError(t, o.Err)
		total += o.At
	})
	assert.Equal(t, int64(30), total, "the commits add up to the records read")

	produceValues(t, b, "orders", 6)
	next := consumeInGroup(t, b, "billing", "orders", 6)
	sort.Strings(next)
	assert.Equal(t, []string{"0", "1", "2", "3", "4", "5"}, next, "only the new records")

	groups, err := adm.ListGroups(ctxT(t))
	require.NoError(t, err)
	assert.Contains(t, groups.Groups(), "billing")
	described, err := adm.DescribeGroups(ctxT(t), "billing")
	require.NoError(t, err)
	assert.Equal(t, "Empty", described["billing"].State)
}

// The coordinator's answers to requests that break the rules, as Kafka
// gives them.
func TestGroupRequestsGetKafkasErrors(t *testing.T) {
	b := start(t, t.TempDir(), groupSettings...)
	cl := client(t, b)
	ctx := ctxT(t)

	find := kmsg.NewFindCoordinatorRequest()
	find.CoordinatorKey = "g"
	resp, err := find.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Zero(t, resp.ErrorCode, "%v", resp.ErrorMessage)
	assert.Equal(t, b.ID(), resp.NodeID)

	join := kmsg.NewJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "g", "consumer", 1000, 60000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
	jr, err := join.RequestWith(ctx, cl)
	require.NoError(t, err)
	assert.Equal(t, kerr.InvalidSessionTimeout.Code, jr.ErrorCode, "under group.min.session.timeout.ms")

	join.SessionTimeoutMillis = 45000
	jr, err = join.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Equal(t, kerr.MemberIDRequired.Code, jr.ErrorCode, "KIP-394")
	join.MemberID = jr.MemberID
	jr, err = join.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Zero(t, jr.ErrorCode)
	assert.Equal(t, int32(1), jr.Generation)
	assert.Equal(t, jr.MemberID, jr.LeaderID)

	commit := kmsg.NewOffsetCommitRequest()
	commit.Group, commit.Generation, commit.MemberID = "g", -1, ""
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "no-such-topic"
	ct.Partitions = []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}
	commit.Topics = append(commit.Topics, ct)
	cr, err := commit.RequestWith(ctx, cl)
	require.NoError(t, err)
	assert.Equal(t, kerr.UnknownMemberID.Code, cr.Topics[0].Partitions[0].ErrorCode, "a commit from outside the group while it has members")

	commit.Generation, commit.MemberID = jr.Generation, jr.MemberID
	cr, err = commit.RequestWith(ctx, cl)
	require.NoError(t, err)
	assert.Equal(t, kerr.RebalanceInProgress.Code, cr.Topics[0].Partitions[0].ErrorCode, "joined but not synced")

	del := kmsg.NewDeleteGroupsRequest()
	del.Groups = []string{"g", "never-was"}
	dr, err := del.RequestWith(ctx, cl)
	require.NoError(t, err)
	assert.Equal(t, kerr.NonEmptyGroup.Code, dr.Groups[0].ErrorCode)
	assert.Equal(t, kerr.GroupIDNotFound.Code, dr.Groups[1].ErrorCode)
}

// kcat's group consumer (librdkafka, -G) reads a topic in a group and
// commits; run again, it reads only what came after.
func TestKcatConsumesInAGroup(t *testing.T) {
	b := start(t, t.TempDir(), groupSettings...)
	_, err := kadm.NewClient(client(t, b)).CreateTopics(ctxT(t), 2, 1, nil, "events")
	require.NoError(t, err)
	produceValues(t, b, "events", 10)

	out := kcat(t, "", "-b", b.Addr(), "-G", "kcat-group", "-e", "-q", "-f", `%s\n`, "-X", "auto.offset.reset=earliest", "events")
	assert.ElementsMatch(t, strings.Fields("0 1 2 3 4 5 6 7 8 9"), strings.Fields(out))

	produceValues(t, b, "events", 3)
	out = kcat(t, "", "-b", b.Addr(), "-G", "kcat-group", "-e", "-q", "-f", `%s\n`, "-X", "auto.offset.reset=earliest", "events")
	assert.ElementsMatch(t, strings.Fields("0 1 2"), strings.Fields(out), "resumed from the commits")
	_ = context.Background
	_ = time.Second
}

// __consumer_offsets is internal: Metadata says so, and a client may not
// write to it (its records would be read as commits).
func TestTheOffsetsTopicIsInternal(t *testing.T) {
	b := start(t, t.TempDir(), groupSettings...)
	cl := client(t, b)
	find := kmsg.NewFindCoordinatorRequest()
	find.CoordinatorKey = "g"
	fr, err := find.RequestWith(ctxT(t), cl) // creates __consumer_offsets
	require.NoError(t, err)
	require.Zero(t, fr.ErrorCode)
	meta := kmsg.NewMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("__consumer_offsets")
	var mr *kmsg.MetadataResponse
	meta.Topics = append(meta.Topics, mt)
	mr, err = meta.RequestWith(ctxT(t), cl)
	require.NoError(t, err)
	require.Len(t, mr.Topics, 1)
	require.Zero(t, mr.Topics[0].ErrorCode)
	assert.True(t, mr.Topics[0].IsInternal)
	assert.Len(t, mr.Topics[0].Partitions, 4, "offsets.topic.num.partitions")

	err = cl.ProduceSync(ctxT(t), &kgo.Record{Topic: "__consumer_offsets", Value: []byte("x")}).FirstErr()
	assert.ErrorIs(t, err, kerr.InvalidTopicException)
}

// offsets.retention.minutes: a group without members loses the offsets it
// has not committed for that long (tombstones in __consumer_offsets), and
// then the group itself; a group with a member keeps its offsets.
func TestOffsetsOfAnEmptyGroupExpire(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(testLog{t}, nil))
	cfg.Groups.InitialRebalanceDelay = 0
	cfg.OffsetsTopicPartitions = 2
	cfg.OffsetsRetention = time.Second
	cfg.OffsetsRetentionCheckInterval = 100 * time.Millisecond
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	adm := kadm.NewClient(client(t, b))
	_, err = adm.CreateTopics(ctxT(t), 1, 1, nil, "t")
	require.NoError(t, err)

	member := client(t, b, kgo.ConsumerGroup("active"), kgo.ConsumeTopics("t"))
	go func() {
		for member.Context().Err() == nil {
			member.PollFetches(member.Context())
		}
	}()
	require.Eventually(t, func() bool {
		d, err := adm.DescribeGroups(ctxT(t), "active")
		return err == nil && d["active"].State == "Stable"
	}, 20*time.Second, 10*time.Millisecond)
	for _, g := range []string{"idle", "active"} {
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: "t", Partition: 0, At: 1, LeaderEpoch: -1})
		if g == "active" {
			var commitErr error
			member.CommitOffsetsSync(ctxT(t), map[string]map[int32]kgo.EpochOffset{"t": {0: {Epoch: -1, Offset: 1}}},
				func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
					commitErr = err
				})
			require.NoError(t, commitErr)
			continue
		}
		committed, err := adm.CommitOffsets(ctxT(t), g, os)
		require.NoError(t, err)
		require.NoError(t, committed.Error())
	}

	require.Eventually(t, func() bool {
		listed, err := adm.ListGroups(ctxT(t))
		return err == nil && !slices.Contains(listed.Groups(), "idle")
	}, 20*time.Second, 10*time.Millisecond, "the idle group's offsets expire, and the group with them")
	fetched, err := adm.FetchOffsets(ctxT(t), "idle")
	require.NoError(t, err)
	_, ok := fetched.Lookup("t", 0)
	assert.False(t, ok, "no offset left")
	fetched, err = adm.FetchOffsets(ctxT(t), "active")
	require.NoError(t, err)
	o, ok := fetched.Lookup("t", 0)
	assert.True(t, ok && o.At == 1, "the group with a member keeps its offsets: %+v", o)
}

// Retention counts from when the group became empty (KIP-211), not from
// the commit: a member that committed once and then stayed longer than the
// retention keeps the offset, and the group keeps it for the retention
// after the member leaves.
func TestOffsetsExpireCountedFromWhenTheGroupEmptied(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(testLog{t}, nil))
	cfg.Groups.InitialRebalanceDelay = 0
	cfg.Groups.MinSessionTimeout = time.Second
	cfg.OffsetsTopicPartitions = 2
	cfg.OffsetsRetention = 2 * time.Second
	cfg.OffsetsRetentionCheckInterval = 50 * time.Millisecond
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	adm := kadm.NewClient(client(t, b))
	_, err = adm.CreateTopics(ctxT(t), 1, 1, nil, "t")
	require.NoError(t, err)

	member, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t"),
		kgo.SessionTimeout(time.Second), kgo.HeartbeatInterval(100*time.Millisecond))
	require.NoError(t, err)
	go func() {
		for member.Context().Err() == nil {
			member.PollFetches(member.Context())
		}
	}()
	committed := func() bool {
		fetched, err := adm.FetchOffsets(ctxT(t), "g")
		if err != nil {
			return false
		}
		_, ok := fetched.Lookup("t", 0)
		return ok
	}
	require.Eventually(t, func() bool {
		var commitErr error
		member.CommitOffsetsSync(ctxT(t), map[string]map[int32]kgo.EpochOffset{"t": {0: {Epoch: -1, Offset: 1}}},
			func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
				commitErr = err
			})
		return commitErr == nil && committed()
	}, 20*time.Second, 50*time.Millisecond, "the member commits")
	committedAt := time.Now()
	for time.Since(committedAt) < 3*time.Second { // past the retention, with a member
		require.True(t, committed(), "expired while the group had a member")
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
	member.Close() // leaves: the group is empty from now on
	emptied := time.Now()
	assert.True(t, committed(), "the commit is older than the retention, but the group just emptied")
	require.Eventually(t, func() bool { return !committed() }, 20*time.Second, 50*time.Millisecond, "the offsets expire after the retention")
	assert.GreaterOrEqual(t, time.Since(emptied), 1500*time.Millisecond, "not before the retention counted from the group's emptying")
}
